// The generator (no kernel needed): valid scenarios, reproducible from the seed, within the
// bounds the issue sets, honouring --ops and the gaps to avoid.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fillFromModel } from '../../src/oracle/random/expect.js';
import { ALL_OPS, DEFAULT_OPS, type Gap, GAPS, generateLines, OPEN_GAPS, parseGaps, parseOps } from '../../src/oracle/random/generate.js';
import { rngFrom, scenarioSeed } from '../../src/oracle/random/rng.js';
import { shrinkLines } from '../../src/oracle/random/shrink.js';
import { v6 } from './helpers.js';

test('generated scenarios parse, have 2-4 processes and 1-8 pages (besides a THP and a hugetlb region), and pass on the model they took their expectations from', () => {
  for (let i = 0; i < 400; i++) {
    const lines = generateLines(rngFrom(scenarioSeed(7, i)), DEFAULT_OPS, OPEN_GAPS);
    const f = fillFromModel(lines, v6(), `g-${i}`, 'generated', `g-${i}.scn.yaml`);
    assert.ok(typeof f !== 'string', `scenario ${i}: ${String(f)}\n${lines.map((l) => l.text).join('\n')}`);
    const procs = new Set(['P', ...f.scenario.steps.flatMap((s) => (s.op === 'fork' ? [s.child] : []))]);
    assert.ok(procs.size >= 2 && procs.size <= 4, `scenario ${i}: ${procs.size} processes`);
    const pages = f.scenario.steps.filter((s) => s.op === 'mmap' && s.thp !== 'thp' && s.hugetlb !== true).reduce((n, s) => n + (s.op === 'mmap' ? s.pages : 0), 0);
    assert.ok(pages >= 1 && pages <= 8, `scenario ${i}: ${pages} pages`);
    const expects = f.model.violations.filter((v) => v.kind === 'expect');
    assert.deepEqual(expects.map((v) => v.message), [], `scenario ${i}: the model's own answers must hold`);
  }
});

test('the same seed gives the same scenario', () => {
  const a = generateLines(rngFrom(scenarioSeed(42, 3)), DEFAULT_OPS).map((l) => l.text);
  const b = generateLines(rngFrom(scenarioSeed(42, 3)), DEFAULT_OPS).map((l) => l.text);
  const c = generateLines(rngFrom(scenarioSeed(42, 4)), DEFAULT_OPS).map((l) => l.text);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('--ops limits the operations generated', () => {
  const ops = parseOps('write,read,fork');
  assert.ok(Array.isArray(ops));
  for (let i = 0; i < 100; i++) {
    for (const l of generateLines(rngFrom(i), ops)) {
      if (l.config) continue; // the hugetlb pool
      assert.match(l.text, /^(P mmap|[PQRS] (write|read|fork) )/, l.text);
    }
  }
  assert.match(String(parseOps('write,frobnicate')), /unknown operation 'frobnicate'/);
  assert.equal((parseOps(ALL_OPS.join(',')) as string[]).length, ALL_OPS.length);
});

test('avoiding the known gaps: no PROT_NONE vmsplice, no mprotect over a hole, every mapping written first, no shared mappings', () => {
  assert.deepEqual(parseGaps('known'), [...GAPS]);
  assert.match(String(parseGaps('nope')), /unknown gap 'nope'/);
  let forking = 0;
  for (let i = 0; i < 300; i++) {
    const lines = generateLines(rngFrom(scenarioSeed(9, i)), DEFAULT_OPS, GAPS).map((l) => l.text);
    if (lines.some((l) => / fork /.test(l))) forking++;
    assert.ok(!lines.some((l) => / shared/.test(l)), 'no shared mapping when avoiding shmem-fault-around');
    // A crude check of the first gap: no vmsplice right after an mprotect none of the same selector.
    for (let k = 1; k < lines.length; k++) {
      const m = /^(\w+) mprotect (\S+) none$/.exec(lines[k - 1]!);
      if (m) assert.notEqual(lines[k], `${m[1]} vmsplice ${m[2]} as p1`);
    }
  }
  assert.ok(forking > 270, `only ${forking} of 300 scenarios fork`);
  const shared = Array.from({ length: 100 }, (_, i) => generateLines(rngFrom(scenarioSeed(9, i)), DEFAULT_OPS)).filter((ls) => ls.some((l) => / shared/.test(l.text)));
  assert.ok(shared.length > 10, 'without --avoid, shared mappings are generated too');
});

test('swap and KSM are generated; avoiding the swap/KSM gaps keeps them off shared memory', () => {
  const avoid = ['shmem-pageout', 'ksm-swapout', 'mergeable-shared', 'ksm-merge-order'] as const;
  let swaps = 0;
  let merges = 0;
  let mergesAfterFork = 0;
  for (let i = 0; i < 300; i++) {
    const lines = generateLines(rngFrom(scenarioSeed(11, i)), DEFAULT_OPS, avoid).map((l) => l.text);
    const shared = new Set(lines.flatMap((l) => /^P mmap (\w+) \d+ rw shared/.exec(l)?.slice(1) ?? []));
    let forked = false;
    for (const l of lines) {
      if (/ fork /.test(l)) forked = true;
      const swap = /^(?:swapout \w+ (\w+)|\w+ madvise (\w+)\S* pageout)/.exec(l);
      const mergeable = /^\w+ madvise (\w+)\S* mergeable$/.exec(l);
      if (swap) {
        swaps++;
        assert.ok(!shared.has(swap[1] ?? swap[2]!), `scenario ${i}: ${l} on shared memory`);
      }
      if (mergeable) assert.ok(!shared.has(mergeable[1]!), `scenario ${i}: ${l} on shared memory`);
      if (l === 'ksm merge') {
        merges++;
        if (forked) mergesAfterFork++;
      }
    }
  }
  assert.ok(swaps > 100 && merges > 10 && mergesAfterFork > 5, `${swaps} swapouts, ${merges} merges (${mergesAfterFork} after a fork) in 300 scenarios`);
});

test('with only the open gaps avoided, swap-out reaches shared memory too', () => {
  // No gap is open now: nothing keeps swap-out away from shared memory.
  assert.deepEqual([...OPEN_GAPS], []);
  let onShared = 0;
  for (let i = 0; i < 300; i++) {
    const lines = generateLines(rngFrom(scenarioSeed(11, i)), DEFAULT_OPS, OPEN_GAPS).map((l) => l.text);
    const shared = new Set(lines.flatMap((l) => /^P mmap (\w+) \d+ rw shared/.exec(l)?.slice(1) ?? []));
    for (const l of lines) {
      const swap = /^(?:swapout \w+ (\w+)|\w+ madvise (\w+)\S* pageout)/.exec(l);
      if (swap && shared.has(swap[1] ?? swap[2]!)) onShared++;
    }
  }
  assert.ok(onShared > 10, `only ${onShared} swap-outs of shared memory in 300 scenarios`);
});

test('THP regions come often, with the advice and partial ranges that split them, and the open THP gaps avoided', () => {
  let thp = 0;
  let written = 0;
  let advice = 0;
  let partial = 0;
  let mergeableThp = 0;
  for (let i = 0; i < 300; i++) {
    const lines = generateLines(rngFrom(scenarioSeed(11, i)), DEFAULT_OPS, OPEN_GAPS).map((l) => l.text);
    if (!lines.includes('P mmap t 512 rw private thp')) continue;
    thp++;
    if (lines.some((l) => /^P write t = \d+$/.test(l))) written++;
    advice += lines.filter((l) => /madvise t\S* (no)?hugepage$/.test(l)).length;
    partial += lines.filter((l) => /^\w+ (mprotect|munmap|madvise) t\[\d+(\.\.\d+)?\]/.test(l)).length;
    // thp-ksm, thp-uffd-wp and thp-mremap are fixed: the THP region may be made mergeable, registered or moved.
    if (lines.some((l) => /madvise t\S* mergeable$/.test(l))) mergeableThp++;
  }
  assert.ok(thp > 60 && written > thp / 2 && advice > 5 && partial > 30, `${thp} THP regions (${written} written), ${advice} THP advice, ${partial} partial range ops`);
  assert.ok(mergeableThp > 5, `only ${mergeableThp} THP regions made mergeable`);
});

test('the THP region is collapsed (mostly all of it, often after a split) and moved by mremap, whole and in part', () => {
  let collapse = 0;
  let collapseAfterSplit = 0;
  let moveWhole = 0;
  let movePart = 0;
  for (let i = 0; i < 300; i++) {
    const lines = generateLines(rngFrom(scenarioSeed(11, i)), DEFAULT_OPS, OPEN_GAPS).map((l) => l.text);
    let split = false;
    for (const l of lines) {
      if (/^\w+ (mprotect|munmap|madvise|mremap) t\[/.test(l)) split = true;
      if (/^\w+ madvise t(\[\d+(\.\.\d+)?\])? collapse$/.test(l)) {
        collapse++;
        if (split) collapseAfterSplit++;
      }
      if (/^\w+ mremap t\[0\.\.511\] as m\d+$/.test(l)) moveWhole++;
      else if (/^\w+ mremap t\[\d+(\.\.\d+)?\] as m\d+$/.test(l)) movePart++;
    }
  }
  assert.ok(collapse > 10 && collapseAfterSplit > 3 && moveWhole > 3 && movePart > 3, `${collapse} collapses (${collapseAfterSplit} after a split), ${moveWhole} whole and ${movePart} partial moves of the THP region`);
});

test('a hugetlb region comes in some scenarios, with a small pool, and only with the operations the model has for hugetlb', () => {
  let regions = 0;
  const ops = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    const gen = generateLines(rngFrom(scenarioSeed(7, i)), DEFAULT_OPS, OPEN_GAPS);
    const lines = gen.map((l) => l.text);
    if (!lines.includes('P mmap h 512 rw private hugetlb')) {
      assert.ok(!gen.some((l) => l.config), `scenario ${i}: a config entry without a hugetlb region`);
      continue;
    }
    regions++;
    const pool = gen.filter((l) => l.config).map((l) => l.text);
    assert.equal(pool.length, 1);
    assert.match(pool[0]!, /^hugepages: [123]$/);
    for (const l of lines) {
      const m = /^(?:\w+ (\S+)|expect \w+|device \S+ \w+|swapout \w+) h(\[[^\]]*\])?(?: (.*))?$/.exec(l);
      if (!m || l.startsWith('P mmap h ')) continue;
      const [, op, range, rest] = m;
      const key = op ?? l.split(' ')[0]!;
      ops.set(key, (ops.get(key) ?? 0) + 1);
      // Whole huge pages only for what changes the mapping; no op the model makes n/a on hugetlb.
      assert.ok(!['swapout', 'mremap', 'uffd', 'device'].includes(key), l);
      if (key === 'munmap' || key === 'mprotect' || key === 'madvise') assert.equal(range, undefined, l);
      if (key === 'madvise') assert.match(rest!, /^(dontfork|dofork)$/, l);
    }
  }
  assert.ok(regions > 50, `${regions} hugetlb regions in 300 scenarios`);
  for (const op of ['write', 'read', 'pin', 'vmsplice', 'madvise']) assert.ok((ops.get(op) ?? 0) > 3, `${op} on the hugetlb region: ${ops.get(op) ?? 0} (${[...ops].join(', ')})`);
});

test('hugetlb-fork-enomem is fixed: by default a process holding a pinned hugetlb page is forked (some forks fail), and the model\'s answers hold; --avoid hugetlb-fork-enomem still keeps such forks out', () => {
  /** The scenarios (of 300, seed 7) whose fork fails on the model, and whose steps the model itself contradicts. */
  const failedForks = (avoid: readonly Gap[]): { failed: number; contradicted: number } => {
    let failed = 0;
    let contradicted = 0;
    for (let i = 0; i < 300; i++) {
      const lines = generateLines(rngFrom(scenarioSeed(7, i)), DEFAULT_OPS, avoid);
      if (!lines.some((l) => /^\w+ pin h/.test(l.text))) continue;
      const f = fillFromModel(lines, v6(), `g-${i}`, 'generated', `g-${i}.scn.yaml`);
      assert.ok(typeof f !== 'string', `scenario ${i}: ${String(f)}`);
      if (f.model.steps.some((st) => /fork failed with ENOMEM/.test(st.summary))) failed++;
      if (f.model.violations.some((v) => v.kind === 'expect')) contradicted++;
    }
    return { failed, contradicted };
  };
  const dflt = failedForks(OPEN_GAPS);
  assert.ok(dflt.failed >= 3, `only ${dflt.failed} failed forks in 300 scenarios`);
  assert.equal(dflt.contradicted, 0);
  assert.equal(failedForks(['hugetlb-fork-enomem']).failed, 0, 'avoided: no fork of a process holding a pinned hugetlb page');
});

test('shrinking keeps what still fails and drops the rest', () => {
  const lines = Array.from({ length: 20 }, (_, i) => ({ text: `step ${i}`, fill: 'none' as const }));
  const needed = new Set(['step 0', 'step 7', 'step 13']);
  const out = shrinkLines(lines, (cand) => [...needed].every((n) => cand.some((l) => l.text === n)));
  assert.deepEqual(out.map((l) => l.text), ['step 0', 'step 7', 'step 13']);
});
