// uffdWpForkVma per profile, with the release that has it: 8f34f1eac382 "mm/userfaultfd: fix
// uffd-wp special cases for fork()" (merged for 5.14-rc1; backported to 5.10.y as 9e1cf2d1ed37 in
// 5.10.53) makes copy_present_pte(), copy_nonpresent_pte(), copy_present_page() and
// copy_huge_pmd() ask the child's VMA (userfaultfd_wp(dst_vma)); before, copy_present_pte() and
// copy_huge_pmd() asked the parent's VMA flags (b569a1760782, 5.7), swap entries kept their bit and
// fork's early COW copy was mapped without it (read in the 5.12.9 sources). The kernel-tests
// wp-fork stories pass from 5.14 and on 5.10 and fail before, and the switch is the difference.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { runScenario } from '../../src/engine/run.js';
import { BUILTIN_PROFILES, LTS_PROFILES } from '../../src/profiles/builtin.js';
import { builtinProfile, ProfileRegistry, resolveKernel } from '../../src/profiles/resolve.js';
import { parseScenario, type Scenario } from '../../src/scenario/index.js';
import { ROOT } from '../cli/helpers.js';

/** The release (mainline, or the stable point release of a long-term series) each profile stands for, and the switch it has there. */
const EXPECTED: Record<string, { vma: 'src-vma' | 'dst-vma'; why: string }> = {
  'v5.7': { vma: 'src-vma', why: 'b569a1760782 (5.7): the parent VMA' },
  'v5.8': { vma: 'src-vma', why: '5.8.1 copy_one_pte reads the parent VMA flags' },
  'v5.9-rc4': { vma: 'src-vma', why: 'before 8f34f1eac382' },
  'v5.9-rc4+pin-cow': { vma: 'src-vma', why: 'seed 001 on v5.9-rc4' },
  'v5.9': { vma: 'src-vma', why: '5.9.1 copy_present_pte reads src_vma->vm_flags' },
  'v5.14': { vma: 'dst-vma', why: '8f34f1eac382 merged for 5.14-rc1 (5.14.2 reads userfaultfd_wp(dst_vma))' },
  'v5.18': { vma: 'dst-vma', why: 'from v5.14' },
  'v5.19': { vma: 'dst-vma', why: 'from v5.14' },
  'v6.2': { vma: 'dst-vma', why: 'from v5.14' },
  'v6.15': { vma: 'dst-vma', why: 'from v5.14' },
  'v6': { vma: 'dst-vma', why: '6.18.2 reads userfaultfd_wp(dst_vma)' },
  'cowpt-rfc': { vma: 'dst-vma', why: 'seed 004 on the v5.18 rules' },
  'odf': { vma: 'src-vma', why: 'on the v5.6 rules (and no uffd-wp)' },
  'odf-2021': { vma: 'src-vma', why: 'on the v5.6 rules (and no uffd-wp)' },
  '5.4': { vma: 'src-vma', why: '5.4 has no uffd-wp at all' },
  '5.10': { vma: 'dst-vma', why: '9e1cf2d1ed37 in 5.10.53 (absent in 5.10.52; present in 5.10.53 to 5.10.265)' },
  '5.15': { vma: 'dst-vma', why: '5.15.0, 5.15.167, 5.15.215 read userfaultfd_wp(dst_vma)' },
  '6.1': { vma: 'dst-vma', why: '6.1.158, 6.1.166' },
  '6.6': { vma: 'dst-vma', why: '6.6.87, 6.6.150' },
  '6.12': { vma: 'dst-vma', why: '6.12.19' },
};

function scenarioFile(path: string): Scenario {
  const r = parseScenario(readFileSync(new URL(path, `file://${ROOT}`), 'utf8'), path);
  if (!r.ok) throw new Error(r.errors.map((e) => e.format()).join('; '));
  return r.scenario;
}

/** The violation kinds of a run (sorted), 'ok', or 'n/a'. */
function outcome(sc: Scenario, kernel: string): string {
  const { profile } = resolveKernel(new ProfileRegistry(), kernel, []);
  const r = runScenario(sc, profile, { trace: false, maxEventsPerStep: 0 });
  if (r.status === 'n/a' || r.status === 'ok') return r.status;
  return [...new Set(r.violations.map((v) => v.kind))].sort().join('+');
}

test('uffdWpForkVma of every built-in and long-term profile is that of the release it stands for', () => {
  const names = [...BUILTIN_PROFILES, ...LTS_PROFILES].map((p) => p.name);
  assert.deepEqual(names.slice().sort(), Object.keys(EXPECTED).sort(), 'every profile is pinned here');
  for (const n of names) assert.equal(builtinProfile(n)!.uffdWpForkVma, EXPECTED[n]!.vma, `${n}: ${EXPECTED[n]!.why}`);
});

test('the profiles that gained the fix say so in their source, with the release', () => {
  assert.match(builtinProfile('v5.14')!.source, /8f34f1eac382[^;]*5\.14-rc1/);
  assert.match(builtinProfile('5.10')!.source, /8f34f1eac382 as 9e1cf2d1ed37 \(5\.10\.53/);
  assert.match(builtinProfile('5.10')!.summary, /5\.10\.0-5\.10\.52: --kernel 5\.10\+uffdWpForkVma=src-vma/);
  assert.doesNotMatch(builtinProfile('v5.18')!.source, /8f34f1eac382/, 'v5.18 inherits it from v5.14');
});

test('wp-fork and the early COW story: fixed from v5.14 and on 5.10 (5.10.53), broken on v5.9 and on 5.10.0-5.10.52', () => {
  const fork = scenarioFile('scenarios/kernel-tests/uffd-wp-fork.scn.yaml');
  const early = scenarioFile('scenarios/seeds/uffd-wp-fork-early-cow.scn.yaml');
  const thp = scenarioFile('scenarios/basic/uffd-wp-thp-fork-no-event.scn.yaml');
  for (const k of ['v5.14', '5.10', '5.15']) {
    assert.equal(outcome(fork, k), 'ok', `${k}: the unregistered child's PTE and swap entry lose the bit`);
    assert.equal(outcome(early, k), 'ok', `${k}: the early COW copy keeps the bit, write-protected`);
    assert.equal(outcome(thp, k), 'ok', `${k}: copy_huge_pmd drops the bit of an unregistered child`);
  }
  for (const k of ['v5.9', '5.10+uffdWpForkVma=src-vma', 'v5.14+uffdWpForkVma=src-vma']) {
    assert.equal(outcome(fork, k), 'expect', `${k}: a stale bit in the child`);
    assert.equal(outcome(early, k), 'expect+uffd-wp-bypass', `${k}: the copy is writable behind the monitor`);
    assert.equal(outcome(thp, k), 'expect', `${k}: a stale bit on the child's PMD`);
  }
});
