// `run --trace`'s capture follows the model from step to step (src/engine/changes-live.ts)
// instead of being made again. With liveOptions.verify on, every step's report is compared with
// diffCaptures' over the capture before and one made anew, and the followed capture with the new
// one (or it throws): every scenario of scenarios/ on the profiles of the eras. A copy of a
// running state (Runner.clone) makes both start over from a new capture, with the same reports.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { liveOptions } from '../../src/engine/changes-live.js';
import { runScenario, Runner } from '../../src/engine/run.js';
import { builtinProfile } from '../../src/profiles/builtin.js';
import { parseScenario, type Scenario } from '../../src/scenario/index.js';

const PROFILES = ['v6', 'v5.8', 'cowpt-rfc', 'odf', '6.12'];

function files(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : n.endsWith('.scn.yaml') ? [p] : [];
  });
}

function parse(text: string, file: string): Scenario {
  const r = parseScenario(text, file);
  if (!r.ok) assert.fail(r.errors.map((e) => e.format()).join('\n'));
  return r.scenario;
}

for (const profile of PROFILES) {
  test(`every scenario on ${profile}: each step's changes, from the followed capture, are those of a new capture`, () => {
    const p = builtinProfile(profile)!;
    const before = liveOptions.verified;
    const { listed, scanned } = liveOptions;
    liveOptions.verify = true;
    try {
      for (const file of files('scenarios')) runScenario(parse(readFileSync(file, 'utf8'), file), p, { trace: true, changes: true });
    } finally {
      liveOptions.verify = false;
    }
    const n = liveOptions.verified - before;
    assert.ok(n > 1000, `only ${n} steps compared`);
    // Both ways of comparing frames are checked: the frames noted written (most steps), and every
    // frame (a step that wrote most of a large model's, as pagetables-1gib's fork).
    assert.ok(liveOptions.listed - listed > 1000, `only ${liveOptions.listed - listed} steps compared the frames written alone`);
    assert.ok(liveOptions.scanned > scanned, 'no step compared every frame');
  });
}

const TREE = `name: tree
steps: |
  P mmap buf 4 rw private
  P write buf[0..3] = 1
  P fork C1
  C1 write buf[1] = 2
  P fork C2
  C2 munmap buf[2]
  C1 exit
  P write buf[0] = 3
  C2 write buf[3] = 4
  P fork C3
  C3 write buf[0] = 5
`;

/** Each step's change report of a run of sc, with a copy of the state taken after step `cloneAt` (and run on) if given. */
function reports(sc: Scenario, cloneAt: number | null): string[] {
  let cur = new Runner(sc, builtinProfile('v6')!, { trace: true, changes: true });
  const out: string[] = [];
  sc.steps.forEach((s, i) => {
    out.push(JSON.stringify(cur.step(s, i).record.changes));
    if (i === cloneAt) cur = cur.clone();
  });
  return out;
}

/** The scenario run with --trace's change capture on v6, each step's report checked against a new capture (liveOptions.verify). */
function runVerified(sc: Scenario): ReturnType<typeof runScenario> {
  liveOptions.verify = true;
  try {
    return runScenario(sc, builtinProfile('v6')!, { trace: true, changes: true });
  } finally {
    liveOptions.verify = false;
  }
}

test('a copy of a traced state (Runner.clone) reports the changes of the steps after it as the state not copied does', () => {
  const sc = parse(TREE, 'tree.scn.yaml');
  const plain = reports(sc, null);
  // A write changes PTEs and frames in every step of the tree: a report that lost them would show.
  assert.ok(plain.every((r, i) => i === 0 || r.includes('"ptesChanged":') && !r.includes('"ptesChanged":0,')), 'every step but the mmap changes a PTE');
  for (const at of [0, 3, 6]) assert.deepEqual(reports(sc, at), plain, `copied after step ${at + 1}`);
});

test('a fork tree of 300 children: the followed capture reports each fork and each child\'s copy', () => {
  const steps = ['P mmap buf 4 rw private', 'P write buf[0] = 1'];
  for (let i = 1; i <= 300; i++) steps.push(`P fork C${i}`, `C${i} write buf[0] = ${i + 1}`);
  const sc = parse(['name: fork-tree', 'steps: |', ...steps.map((s) => `  ${s}`), ''].join('\n'), 'fork-tree.scn.yaml');
  const res = runVerified(sc);
  // The last child's write: its buf[0] PTE now names a new frame, made writable. Each child before
  // it copied the page at its write and dropped its mapping of P's: P's frame is mapped by P and
  // C300 alone, and C300's copy leaves it to P.
  const last = res.steps.find((s) => s.text === 'C300 write buf[0] = 301')!.changes!;
  assert.equal(last.ptesChanged, 1);
  assert.equal(last.ptes[0]!.proc, 'C300');
  assert.match(last.ptes[0]!.change, /now frame \d+, made writable/);
  assert.ok(last.frames.some((f) => f.change === 'refcount 2 → 1, mapcount 2 → 1'), JSON.stringify(last.frames));
  assert.ok(last.frames.some((f) => f.change.startsWith('allocated: refcount 1, mapcount 1')), JSON.stringify(last.frames));
});

test('frames changed through no page table change (a store to a mapped page, a GUP pin and unpin) are reported, by the followed capture', () => {
  // 64 frames in use: the capture compares the frames noted written, not every frame.
  const sc = parse(`name: no-table
steps: |
  P mmap buf 64 rw private
  P write buf[0..63] = 1
  P write buf[5] = 2
  P pin buf[7] as h
  P unpin h
`, 'no-table.scn.yaml');
  const before = liveOptions.verified;
  const res = runVerified(sc);
  // Every step's report came from the followed capture (advance: verified), equal to a new capture's.
  assert.equal(liveOptions.verified - before, res.steps.length);
  const of = (text: string) => res.steps.find((s) => s.text === text)!.changes!;
  const store = of('P write buf[5] = 2');
  assert.equal(store.ptesChanged, 0, 'the PTE was dirty and young already');
  assert.equal(store.framesChanged, 1);
  assert.equal(store.frames[0]!.change, 'value 1 → 2');
  const pin = of('P pin buf[7] as h');
  assert.equal(pin.framesChanged, 1);
  assert.equal(pin.frames[0]!.change, 'refcount 1 → 1025');
  const unpin = of('P unpin h');
  assert.equal(unpin.ptesChanged, 0);
  assert.equal(unpin.framesChanged, 1);
  assert.equal(unpin.frames[0]!.change, 'refcount 1025 → 1');
  assert.equal(unpin.frames[0]!.pfn, pin.frames[0]!.pfn);
});
