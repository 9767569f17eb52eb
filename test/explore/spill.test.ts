// The search tree spilled to a file (src/explore/tree.ts): a search made to spill
// (after a few states, in tiny chunks, so every read of an old state goes through the file) finds
// exactly what the same search in memory finds: the states, transitions, events and the
// counterexamples with their steps; the file is removed when the search ends. The tree read back
// out of order (path walks, reads behind a depth's buffer) gives the records written.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { explore, type ExploreInput } from '../../src/explore/explore.js';
import { OP_NAMES } from '../../src/explore/ops.js';
import { SearchBudget, SearchTree } from '../../src/explore/tree.js';
import type { Progress } from '../../src/explore/search.js';
import { cli } from '../cli/helpers.js';
import { input, type InputOptions } from './helpers.js';

function fullInput(kernel: string, o: InputOptions, spill: { afterStates: number; chunk: number } | null, causes = false): ExploreInput {
  const i = input(kernel, o);
  i.causes = causes;
  if (spill) i.bounds = { ...i.bounds, spillAfterStates: spill.afterStates, spillChunk: spill.chunk };
  return i;
}

/** The same search in memory and spilled: the same result; the spill file is gone. */
function same(kernel: string, o: InputOptions, spill: { afterStates: number; chunk: number }, causes = false): ReturnType<typeof explore> {
  const a = explore(fullInput(kernel, o, null, causes));
  const b = explore(fullInput(kernel, o, spill, causes));
  assert.equal(a.result.stats.spill, null, 'without the hook a small search does not spill');
  const sp = b.result.stats.spill;
  assert.ok(sp !== null, 'the search spilled');
  assert.ok(sp.states > 0 && sp.states % spill.chunk === 0, `whole chunks in the file: ${sp.states}`);
  assert.ok(sp.states <= b.result.stats.states && sp.states > b.result.stats.states - 2 * spill.chunk, 'every full chunk went to the file');
  assert.equal(sp.bytes, 8 * sp.states);
  assert.equal(existsSync(sp.file), false, 'the spill file is removed');
  for (const k of ['states', 'transitions', 'depthReached', 'depthComplete', 'stoppedBy'] as const) assert.equal(b.result.stats[k], a.result.stats[k], k);
  assert.deepEqual(b.result.stats.reached, a.result.stats.reached);
  assert.deepEqual(b.result.counterexamples.map((c) => c.steps), a.result.counterexamples.map((c) => c.steps));
  assert.deepEqual(b.result.counterexamples.map((c) => c.violations), a.result.counterexamples.map((c) => c.violations));
  assert.equal(b.violating, a.violating);
  return b;
}

test('v5.8 depth 5, spilled from the start in chunks of 4: the same states and the same 3-step counterexample', () => {
  const b = same('v5.8', { depth: 5 }, { afterStates: 1, chunk: 4 });
  // Spilled from the first states on: far more states than fit in one chunk were read back.
  assert.ok(b.result.stats.states > 100, `${b.result.stats.states} states`);
  assert.equal(b.result.counterexamples.length, 1);
  assert.equal(b.result.counterexamples[0]!.depth, 3);
});

test('v5.8 --all depth 4: every violating path is walked back through the file; the same findings', () => {
  // Spilling at a chunk boundary (8 = 2 chunks of 4) and in the middle of one (7).
  for (const afterStates of [7, 8]) {
    const b = same('v5.8', { depth: 4, all: true }, { afterStates, chunk: 4 }, true);
    assert.ok(b.violating > 1 && b.result.counterexamples.length > 1, `${b.violating} violating sequences, ${b.result.counterexamples.length} findings`);
    assert.equal(b.result.stats.spill!.atStates, afterStates);
  }
});

test('v6 --ops all depth 3, spilled in chunks of 64: the same states and transitions', () => {
  const b = same('v6', { depth: 3, ops: OP_NAMES }, { afterStates: 100, chunk: 64 });
  assert.ok(b.result.stats.states > 5000, `${b.result.stats.states} states`);
});

test('a spilled tree reads back what was written, in any order; close removes the file', () => {
  // A breadth-first tree: 1 + 3 + 9 + 27 + 81 states, op = 1000 * id + parent.
  const t = new SearchTree(4);
  const ref: { parent: number; op: number; depth: number }[] = [{ parent: -1, op: 0, depth: 0 }];
  const dir = mkdtempSync(join(tmpdir(), 'cowlab-spill-test-'));
  try {
    for (let from = 0, to = 1, d = 0; d < 4; d++) {
      for (let p = from; p < to; p++) {
        for (let k = 0; k < 3; k++) {
          const id = t.add(p, 1000 * t.count + p);
          ref[id] = { parent: p, op: 1000 * id + p, depth: d + 1 };
        }
        if (d === 1 && p === from + 1) t.spill(join(dir, 'tree'));
      }
      [from, to] = [to, t.count];
    }
    assert.equal(t.count, 121);
    assert.ok(t.spilling && t.spilledStates === 120, `${t.spilledStates} states in the file (whole chunks of 4)`);
    const check = (id: number): void => {
      assert.equal(t.parentOf(id), ref[id]!.parent, `parent of ${id}`);
      assert.equal(t.opOf(id), ref[id]!.op, `op of ${id}`);
      assert.equal(t.depth(id), ref[id]!.depth, `depth of ${id}`);
    };
    for (let id = 0; id < t.count; id++) check(id);
    for (let id = t.count - 1; id >= 0; id--) check(id);
    for (let i = 0; i < 500; i++) check((i * 7919) % t.count);
    for (let id = 1; id < t.count; id++) {
      const path: number[] = [];
      for (let i = id; i > 0; i = ref[i]!.parent) path.unshift(ref[i]!.op);
      assert.deepEqual(t.path(id, 5), [...path, 5]);
    }
    t.close();
    assert.equal(existsSync(join(dir, 'tree')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a tree given states out of breadth-first order says so', () => {
  const t = new SearchTree(4);
  t.add(0, 1);
  t.add(1, 2);
  assert.throws(() => t.add(0, 3), /breadth-first order/);
});

test('explore --spill-dir: a missing directory is bad input (exit 2)', () => {
  const o = cli('explore', '--depth', '1', '--spill-dir', '/nonexistent-cowlab-dir');
  assert.equal(o.code, 2);
  assert.match(o.err, /--spill-dir: '\/nonexistent-cowlab-dir' is not a directory/);
});

test('the budget calls for spilling once resident memory passes 80% of --max-memory, and stops past it', () => {
  const rss = process.memoryUsage.rss() / 2 ** 20;
  const bounds = { depth: 5, maxStates: 1e9, timeSec: 600, all: false, kinds: null };
  // --max-memory 1.11 times the resident memory: past 80% of it, under it.
  const b = new SearchBudget({ ...bounds, maxMemoryMB: rss / 0.9 });
  const calls: number[] = [];
  b.onPressure = (mb) => calls.push(mb);
  assert.equal(b.check(10, 0, 1), false, 'no stop under --max-memory');
  assert.equal(b.check(10, 0, 1), false);
  assert.equal(calls.length, 1, 'called once');
  assert.ok(Math.abs(calls[0]! - rss) < rss * 0.05, `the resident memory: ${calls[0]} MiB, ${rss} measured`);
  assert.equal(b.stoppedBy, null);
  // Past --max-memory: the bound, spilling or not.
  const c = new SearchBudget({ ...bounds, maxMemoryMB: rss / 2 });
  c.onPressure = (mb) => calls.push(mb);
  assert.equal(c.check(10, 0, 1), true);
  assert.equal(c.stoppedBy, 'memory');
  assert.equal(calls.length, 1);
  // Under 80%: nothing.
  const d = new SearchBudget({ ...bounds, maxMemoryMB: rss * 2 });
  d.onPressure = (mb) => calls.push(mb);
  assert.equal(d.check(10, 0, 1), false);
  assert.equal(calls.length, 1);
});

test('a spill file that cannot be made: the search stops at the memory bound and says why', () => {
  const i = fullInput('v5.8', { depth: 5 }, { afterStates: 20, chunk: 4 });
  i.bounds.spillFile = '/nonexistent-cowlab-dir/tree';
  const notes: string[] = [];
  const progress: Progress = (p) => {
    if (p.note) notes.push(p.note);
  };
  const o = explore(i, progress);
  assert.equal(o.result.stats.stoppedBy, 'memory');
  assert.equal(o.verdict, 'bound');
  assert.equal(o.result.stats.spill, null);
  assert.equal(o.result.stats.states, 20);
  assert.equal(notes.length, 1);
  assert.match(notes[0]!, /cannot create the spill file \/nonexistent-cowlab-dir\/tree/);
});
