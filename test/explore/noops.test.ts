// Operations the kernel returns from changing nothing (ExploreOn's `noop`, src/ops/types.ts): the
// search does not make their transitions. Each is told by the predicate the kernel function uses
// (an mprotect to the protection the mapping has, MADV_COLLAPSE of a range holding no whole
// 2 MiB, ksmd before any mm registered, reclaim of a page it would not take, a flag the mapping
// has, a page no mapping covers); the search finds the same states with fewer transitions.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Runner } from '../../src/engine/run.js';
import { explore, startState, thpStartScenario } from '../../src/explore/explore.js';
import { decodeOp, enabledOps, type ExploreShape, type OpName } from '../../src/explore/ops.js';
import { Visited } from '../../src/explore/search.js';
import { input, runnerAfter } from './helpers.js';

const NOOP_OPS: OpName[] = ['mprotect', 'collapse', 'ksm-merge', 'swapout', 'dontfork', 'wipeonfork'];
const shape = (ops: readonly OpName[]): ExploreShape => ({ procs: 2, threads: 2, handles: 2, ops });

/** The scenario lines of the operations enabled in r (skipping no-ops or not). */
function texts(r: Runner, ops: readonly OpName[], skip: boolean): string[] {
  return enabledOps(r, shape(ops), [], skip).map((op) => decodeOp(r, op).text);
}

test('two fresh pages: no collapse, no ksm merge, no swapout, no mprotect rw; the others stay', () => {
  const r = runnerAfter(['P mmap buf 2 rw private']);
  assert.deepEqual(texts(r, NOOP_OPS, true), [
    'P mprotect buf[0] ro', 'P mprotect buf[1] ro', 'P madvise buf[0] dontfork', 'P madvise buf[1] dontfork',
    'P madvise buf[0] wipeonfork', 'P madvise buf[1] wipeonfork',
  ]);
  // Without skipping, every instance is there.
  assert.equal(texts(r, NOOP_OPS, false).length, 4 + 1 + 1 + 2 + 2 + 2);
});

test('an instance is made again once it changes something', () => {
  const r = runnerAfter(['P mmap buf 2 rw private', 'P write buf[0] = 1', 'P madvise buf mergeable', 'P madvise buf[1] dontfork', 'P mprotect buf[1] ro']);
  const t = texts(r, NOOP_OPS, true);
  // A present page mapped once is reclaimed; ksmd has an mm to scan; buf[1] is read-only and MADV_DONTFORK.
  for (const line of ['swapout P buf[0]', 'ksm merge', 'P mprotect buf[0] ro', 'P mprotect buf[1] rw', 'P madvise buf[0] dontfork']) assert.ok(t.includes(line), `${line} in ${t.join('; ')}`);
  for (const line of ['swapout P buf[1]', 'P mprotect buf[1] ro', 'P mprotect buf[0] rw', 'P madvise buf[1] dontfork']) assert.ok(!t.includes(line), `${line} not in ${t.join('; ')}`);
});

test('MADV_MERGEABLE where the mapping has VM_MERGEABLE: not made (ksm_madvise() returns at once); elsewhere made', () => {
  const r = runnerAfter(['P mmap buf 2 rw private', 'P write buf[0] = 1', 'P madvise buf[0] mergeable']);
  assert.deepEqual(texts(r, ['mergeable'], true), ['P madvise buf[1] mergeable']);
  assert.equal(texts(r, ['mergeable'], false).length, 2);
});

test('a page no mapping covers: no mprotect (ENOMEM at once), no munmap (nothing to unmap)', () => {
  const r = runnerAfter(['P mmap buf 2 rw private', 'P munmap buf[1]']);
  assert.deepEqual(texts(r, ['mprotect', 'munmap'], true), ['P mprotect buf[0] ro', 'P munmap buf[0]']);
  assert.deepEqual(texts(r, ['mprotect', 'munmap'], false), [
    'P mprotect buf[0] ro', 'P mprotect buf[0] rw', 'P mprotect buf[1] ro', 'P mprotect buf[1] rw', 'P munmap buf[0]', 'P munmap buf[1]',
  ]);
});

test('madvise of a page no mapping covers: not made (doMadvise returns at once)', () => {
  const ops: OpName[] = ['dontneed', 'dontfork', 'wipeonfork', 'mergeable'];
  const r = runnerAfter(['P mmap buf 2 rw private', 'P munmap buf[1]']);
  assert.deepEqual(texts(r, ops, true), ['P madvise buf[0] dontneed', 'P madvise buf[0] dontfork', 'P madvise buf[0] wipeonfork', 'P madvise buf[0] mergeable']);
  assert.equal(texts(r, ops, false).length, 8);
});

test('uffd register of a region with a page no mapping covers: not made (EINVAL before anything changes)', () => {
  const r = runnerAfter(['P mmap buf 2 rw private', 'P munmap buf[1]']);
  assert.deepEqual(texts(r, ['uffd-register'], true), []);
  assert.deepEqual(texts(r, ['uffd-register'], false), ['P uffd register buf wp']);
  assert.deepEqual(texts(runnerAfter(['P mmap buf 2 rw private']), ['uffd-register'], true), ['P uffd register buf wp']);
});

test('a region holding a whole 2 MiB is collapsed; a page of a THP is reclaimed (after a split)', () => {
  const r = startState({ ...input('v6'), from: thpStartScenario() }).runner;
  const t = enabledOps(r, { ...shape(['collapse', 'swapout']), pageLimit: 2 }, [], true).map((op) => decodeOp(r, op).text);
  assert.deepEqual(t, ['P madvise buf collapse', 'swapout P buf[0]', 'swapout P buf[1]']);
});

test('a kernel path in progress: nothing is skipped (the step would run it to its end first)', () => {
  const r = runnerAfter(['P mmap buf 2 rw private', 'P thread T', 'T write buf[0] = 1 &']);
  const t = texts(r, NOOP_OPS, true);
  assert.deepEqual(t, texts(r, NOOP_OPS, false));
  assert.ok(t.includes('ksm merge') && t.includes('P madvise buf collapse'), t.join('; '));
});

/** States and transitions of a breadth-first search to `depth`, by hand: every instance tried, or the no-ops skipped past the start. */
function byHand(ops: readonly OpName[], depth: number, skip: boolean): { states: number; transitions: number } {
  const root = startState(input('v6')).runner;
  const visited = new Visited(true);
  visited.addState(root);
  let frontier = [root];
  let states = 1;
  let transitions = 0;
  for (let d = 0; d < depth; d++) {
    const next: Runner[] = [];
    for (const r of frontier) {
      for (const op of enabledOps(r, shape(ops), [], skip && d > 0)) {
        const c = r.clone();
        transitions++;
        if (c.step(decodeOp(c, op, false), d, false).na !== null || !visited.lookup(c)) continue;
        visited.add();
        next.push(c);
      }
    }
    states += next.length;
    frontier = next;
  }
  return { states, transitions };
}

test('the search skips the no-ops: the same states, fewer transitions', () => {
  const ops: OpName[] = ['write', 'fork', 'read', ...NOOP_OPS];
  const i = input('v6', { ops, depth: 3 });
  const st = explore({ ...i, bounds: { ...i.bounds, exact: true }, causes: false }).result.stats;
  const every = byHand(ops, 3, false);
  const skipped = byHand(ops, 3, true);
  assert.equal(st.states, every.states);
  assert.equal(skipped.states, every.states);
  assert.equal(st.transitions, skipped.transitions);
  assert.ok(st.transitions < every.transitions * 0.8, `${st.transitions} transitions, ${every.transitions} with every no-op`);
});
