// The search on several worker threads (--workers N), and the result and properties every
// search reports. Breadth-first one depth at a time, the new states numbered in chunk order:
// two workers find what one finds (the same state count, exact or by fingerprints, and a
// counterexample of the same, shortest, length that replays to the same violation).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explore } from '../../src/explore/explore.js';
import type { OpName } from '../../src/explore/ops.js';
import { cli } from '../cli/helpers.js';
import { input, kindsOf, replay, run, type InputOptions } from './helpers.js';

const full = (kernel: string, workers: number, o: InputOptions & { exact?: boolean } = {}): ReturnType<typeof run> => {
  const inp = { ...input(kernel, o), workers };
  inp.bounds.exact = o.exact ?? false;
  return run(inp);
};

test('workers: two workers search the same states as one (exact keys and fingerprints), complete', () => {
  for (const exact of [true, false]) {
    const one = full('v6', 1, { depth: 4, exact });
    const two = full('v6', 2, { depth: 4, exact });
    assert.equal(one.out.verdict, 'ok');
    assert.equal(two.out.verdict, 'ok');
    assert.equal(two.out.result.stats.workers, 2);
    assert.equal(two.out.result.stats.states, one.out.result.stats.states, `exact: ${exact}`);
    assert.equal(two.out.result.stats.transitions, one.out.result.stats.transitions, `exact: ${exact}`);
    assert.equal(two.out.result.stats.depthComplete, 4);
    assert.deepEqual(two.out.result.stats.reached, one.out.result.stats.reached);
    // Events are listed in the order one thread reached them, not in the order the workers answered.
    assert.deepEqual(Object.keys(two.out.result.stats.reached), Object.keys(one.out.result.stats.reached));
    assert.equal(one.out.result.stats.visited, exact ? 'exact' : 'fingerprints');
  }
});

test('workers: with threads and split kernel paths, three workers and one find the same states (exact)', () => {
  const ops: OpName[] = ['write', 'fork&', 'step', 'thread', 'pin-fast&', 'unpin'];
  const one = full('v6', 1, { depth: 4, ops, exact: true });
  const two = full('v6', 3, { depth: 4, ops, exact: true });
  assert.equal(two.out.result.stats.states, one.out.result.stats.states);
});

test('workers: the shortest counterexample has the same length on two workers, and replays to its violation', () => {
  // v5.9-rc4: an R/O pin of the zero page, then a write fault copies away from it (2 operations).
  const one = full('v5.9-rc4', 1, { depth: 5 });
  const two = full('v5.9-rc4', 2, { depth: 5 });
  assert.equal(one.out.verdict, 'violation');
  assert.equal(two.out.verdict, 'violation');
  assert.equal(two.out.result.counterexamples[0]!.depth, one.out.result.counterexamples[0]!.depth);
  assert.deepEqual(two.out.result.counterexamples[0]!.steps, one.out.result.counterexamples[0]!.steps);
  // Stopped by the first violation part way through a depth: the workers stop where one thread stopped.
  assert.equal(two.out.result.stats.states, one.out.result.stats.states);
  assert.equal(two.out.result.stats.transitions, one.out.result.stats.transitions);
  const { r } = replay(two.files[0]!, 'v5.9-rc4');
  assert.deepEqual(kindsOf(r), [...new Set(two.out.result.counterexamples[0]!.violations.map((v) => v.kind))].sort());
  // --all: one counterexample per cause on each, the same causes.
  const allOne = full('v5.7', 1, { depth: 3, all: true });
  const allTwo = full('v5.7', 2, { depth: 3, all: true });
  assert.deepEqual(allTwo.out.result.counterexamples.map((c) => [c.depth, c.cause?.key]).sort(), allOne.out.result.counterexamples.map((c) => [c.depth, c.cause?.key]).sort());
});

test('result: ok (complete and clean), violation, bound (stopped at a limit before completing); the same on one worker and two', () => {
  assert.equal(explore(input('v6', { depth: 3 })).verdict, 'ok');
  assert.equal(explore(input('v5.9-rc4', { depth: 3 })).verdict, 'violation');
  const one = explore(input('v6', { depth: 6, maxStates: 200 }));
  assert.equal(one.verdict, 'bound');
  const two = explore({ ...input('v6', { depth: 6, maxStates: 200 }), workers: 2 });
  assert.equal(two.verdict, 'bound');
  // --max-states stops two workers at the state one thread stopped at, after as many transitions.
  assert.equal(two.result.stats.states, 200);
  assert.equal(two.result.stats.transitions, one.result.stats.transitions);
  assert.equal(two.result.stats.stoppedBy, 'states');
});

test('properties: each violation kind an always (broken at its counterexample depth), each event a sometimes (covered, or not within the bound)', () => {
  const ops: OpName[] = ['write', 'fork'];
  // Write, fork, the child writes (a COW copy), the parent writes (its page is its own again: reuse): 4 operations.
  const three = explore(input('v6', { depth: 3, ops }));
  const four = explore(input('v6', { depth: 4, ops }));
  const some = (o: typeof three, name: string): { covered: boolean; depth: number | null } | undefined => o.properties.sometimes.find((s) => s.name === name);
  assert.deepEqual(some(three, 'fork'), { name: 'fork', covered: true, depth: 1 });
  assert.deepEqual(some(three, 'cow-copy'), { name: 'cow-copy', covered: true, depth: 3 });
  assert.deepEqual(some(three, 'reuse'), { name: 'reuse', covered: false, depth: null });
  assert.deepEqual(some(four, 'reuse'), { name: 'reuse', covered: true, depth: 4 });
  // Pins are not among the operations: no pin property to cover.
  assert.equal(some(four, 'pin'), undefined);
  assert.ok(four.properties.always.every((a) => a.holds));
  const bad = explore(input('v5.9-rc4', { depth: 3 }));
  const broken = bad.properties.always.filter((a) => !a.holds);
  assert.deepEqual(broken, [{ name: 'pin-incoherent', holds: false, depth: 2 }]);
});

test('cli: --workers and --exact; --json carries the result, the properties and the fingerprint collision probability', () => {
  const o = cli('explore', '--kernel', 'v6', '--depth', '3', '--workers', '2', '--json');
  assert.equal(o.code, 0, o.out);
  const j = JSON.parse(o.out);
  assert.equal(j.result, 'ok');
  assert.equal(j.stats.workers, 2);
  assert.equal(j.stats.visited, 'fingerprints');
  assert.ok(j.stats.collisionProbability > 0 && j.stats.collisionProbability < 1e-6);
  assert.ok(j.properties.sometimes.some((s: { name: string; covered: boolean }) => s.name === 'fork' && s.covered));
  const e = cli('explore', '--kernel', 'v6', '--depth', '3', '--exact');
  assert.match(e.out, /^result: ok$/m);
  assert.match(e.out, /^visited states kept exactly/m);
  const t = cli('explore', '--kernel', 'v6', '--depth', '3');
  assert.match(t.out, /collision could have hidden a state with probability \d\.\de-\d+/);
  assert.equal(cli('explore', '--workers', '0').code, 2);
});
