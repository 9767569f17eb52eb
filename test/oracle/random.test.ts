// Generated scenarios on the live kernel with a fixed seed, swap, KSM, THPs (collapse and mremap
// included) and hugetlb included (forks that fail at a pinned hugetlb page too): all agree with
// v6 (OPEN_GAPS, the gaps the generator avoids by default, is empty now). The gaps' reproductions stay as tests, here and in swap-ksm.test.ts.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { oracleScenario } from '../../src/oracle/oracle.js';
import { randomCampaign } from '../../src/oracle/random/campaign.js';
import { DEFAULT_OPS, GAPS, OPEN_GAPS } from '../../src/oracle/random/generate.js';
import { builtinProfile } from '../../src/profiles/resolve.js';
import { openLive, parse, steps, v6 } from './helpers.js';

const live = openLive();
after(() => live.session?.close());

test('250 random scenarios (seed 20240611) agree with v6, swap and KSM included', async (t) => {
  if (!live.session) {
    t.skip(live.reason);
    return;
  }
  const sum = await randomCampaign(live.session, v6(), { count: 250, seed: 20240611, ops: DEFAULT_OPS, avoid: OPEN_GAPS, outDir: null });
  assert.equal(sum.invalid, 0, `invalid generated scenarios: ${sum.invalidReasons.join('; ')}`);
  assert.deepEqual(sum.failures.map((f) => `${f.name}: ${f.first}`), []);
  assert.equal(sum.agree, 250);
  assert.ok(sum.counts.compared > 250 * 5, `only ${sum.counts.compared} observations compared`);
  t.diagnostic(`${sum.counts.compared} observations compared, ${sum.counts.agree} agree, ${sum.counts.skipped} skipped`);
});

test('a disagreement is shrunk and written as a replayable scenario', async (t) => {
  if (!live.session) {
    t.skip(live.reason);
    return;
  }
  const { mkdtempSync, readdirSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'cowlab-oracle-test-'));
  try {
    // v5.7 decides reuse by mapcount: the kernel of this machine does not, so this disagrees.
    const sum = await randomCampaign(live.session, builtinProfile('v5.7')!, { count: 60, seed: 3, ops: DEFAULT_OPS, avoid: GAPS, outDir: dir });
    assert.ok(sum.disagree > 0, 'v5.7 should disagree with the live kernel somewhere');
    const files = readdirSync(dir);
    assert.equal(files.length, sum.disagree + sum.errors);
    const f = sum.failures[0]!;
    assert.ok(f.steps <= f.originalSteps);
    const text = readFileSync(join(dir, files[0]!), 'utf8');
    assert.match(text, /^name: random-3-\d+$/m);
    assert.match(text, /The live kernel .* disagrees/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The gaps the oracle found (docs/oracle.md, "Findings"), each closed in the model since: the
// reproductions must agree with the live kernel.
describe('gaps the oracle found, closed', () => {
  const cases: [string, string[]][] = [
    ['protnone-gup-fast: vmsplice of a PROT_NONE page is EFAULT', [
      'P mmap a 1 rw private', 'P write a = 1', 'P mprotect a none', 'P vmsplice a[0] as p',
    ]],
    ['mprotect-hole: mprotect from a hole changes nothing (ENOMEM)', [
      'P mmap a 4 rw private', 'P munmap a[0..2]', 'P mprotect a ro', 'P write a[3] = 5',
    ]],
    ['mprotect-hole: mprotect stops at a hole in the middle', [
      'P mmap a 3 rw private', 'P write a = 1', 'P munmap a[1]', 'P mprotect a ro', 'P write a[0] = 2', 'P write a[2] = 3',
    ]],
    ['vma-boundaries: adjacent mappings merge, so fork copies the zero-page PTE', [
      'P mmap a 1 rw private', 'P mmap b 1 rw private', 'P write a = 1', 'P read b[0]', 'P fork Q', 'expect Q b[0] same-frame P b[0]',
    ]],
    ['vma-boundaries: fork copies the page tables of a merged, never-written mapping', [
      'P mmap a 2 rw private', 'P mmap b 1 rw private', 'P write b = 1', 'P madvise b[0] dontfork', 'P fork Q', 'expect stat PageTables_kB == 32',
    ]],
    ['shmem-fault-around: a read fault on shared memory maps the cached neighbours', [
      'P mmap s 2 rw shared', 'P write s = 1', 'P fork Q', 'Q read s[0]', 'expect Q s[1] same-frame P s[1]', 'expect stat rss.Q == 2', 'Q read s[1]', 'expect stat minflt.Q == 1',
    ]],
    ['vma-boundaries: a madvise that changes nothing does not split the VMA', [
      'P mmap a 2 rw private', 'P read a[0]', 'P madvise a[1] dofork', 'P write a[1] = 1', 'P fork Q', 'expect Q a[0] same-frame P a[0]', 'Q read a[0]', 'expect stat minflt.Q == 0',
    ]],
  ];
  for (const [name, lines] of cases) {
    test(name, (t) => {
      if (!live.session) {
        t.skip(live.reason);
        return;
      }
      const r = oracleScenario(live.session, steps('gap', ...lines), v6());
      assert.equal(r.status, 'agree', r.steps.flatMap((s) => s.rows.filter((x) => x.verdict === 'disagree').map((x) => `${s.text}: model ${x.model}, kernel ${x.kernel}`)).join('; '));
    });
  }
});

// Found since and closed (docs/oracle.md, Findings): copyPresentPage() mapped the copy present
// without PTE_PROTNONE, so gup-fast took it; Linux maps it with the VMA's PAGE_NONE.
test('protnone-gup-fast: the early-COW copy a child gets of a pinned PROT_NONE page is PROT_NONE too', (t) => {
  if (!live.session) {
    t.skip(live.reason);
    return;
  }
  const r = oracleScenario(live.session, steps('gap', 'P mmap a 1 rw private', 'P pin a as h', 'P mprotect a none', 'P fork R', 'R vmsplice a[0] as p'), v6());
  assert.equal(r.status, 'agree', r.steps.flatMap((s) => s.rows.filter((x) => x.verdict === 'disagree').map((x) => `${s.text}: model ${x.model}, kernel ${x.kernel}`)).join('; '));
});

// Found by `--random` with the huge-page draws (docs/oracle.md, "Huge pages in --random") and
// closed: each reproduction, shrunk by the campaign, agrees with the live kernel.
describe('huge-page draws: findings closed', () => {
  const cases: [string, string][] = [
    ['MADV_COLLAPSE over a range mremap emptied is ENOMEM (madvise_walk_vmas: a hole)', `name: collapse-hole
steps: |
  P mmap a 1 rw private
  P write a = 1
  P mmap t 512 rw private thp
  P write t = 2
  P mremap t[0..511] as m1
  P madvise t collapse
  P read m1[7] expect 2
`],
    ['MADV_COLLAPSE of a THP region PTE-mapped by a partial mprotect, refused while split in two VMAs, then collapsed', `name: collapse-split
steps: |
  P mmap t 512 rw private thp
  P write t = 3
  P mprotect t[5] ro
  P madvise t collapse
  P mprotect t[5] rw
  P madvise t collapse
  P read t[5] expect 3
`],
    ['a pin or a vmsplice of a hugetlb page adds no frame to frames_used (hugetlb pages are HugePages_*)', `name: hugetlb-frames
config:
  hugepages: 2
steps: |
  P mmap h 512 rw private hugetlb
  P pin h[398..405] as h1 rw longterm
  P vmsplice h[130] as p1
  expect stat frames_used == 0
`],
    ['a uffd-wp marker on a never-touched shared page is no swapped page', `name: uffd-marker
steps: |
  P mmap a 3 rw shared
  P uffd register a wp
  P uffd protect a[1]
  swapout P a
`],
  ];
  for (const [name, text] of cases) {
    test(name, (t) => {
      if (!live.session) {
        t.skip(live.reason);
        return;
      }
      const r = oracleScenario(live.session, parse(text), v6());
      if (r.status === 'skipped') return t.skip(r.skip ?? '');
      assert.equal(r.status, 'agree', r.steps.flatMap((s) => s.rows.filter((x) => x.verdict === 'disagree').map((x) => `${s.text}: model ${x.model}, kernel ${x.kernel}`)).join('; '));
      assert.ok(r.counts.compared >= 2, `only ${r.counts.compared} observation(s) compared`);
    });
  }
});
