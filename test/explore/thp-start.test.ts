// The explorer on huge pages (`explore --start thp`): P starts with one PMD-mapped THP of 512
// pages, the page operations touch its first pages, and the ops that split it (partial
// mprotect, munmap, dontneed, mremap of a page) and collapse it (MADV_COLLAPSE) apply. The
// expected findings come from the THP rules (docs/design/huge-pages.md sections 3, 4 and 9).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { thpStartScenario } from '../../src/explore/explore.js';
import { decodeOp, enabledOps, OP_NAMES, type OpName } from '../../src/explore/ops.js';
import { pmdLeafSlot } from '../../src/core/walk.js';
import { input, replay, run, runnerAfter } from './helpers.js';

function thpInput(kernel: string, ops: OpName[], depth: number, kinds?: string[]): ReturnType<typeof input> {
  const inp = input(kernel, { ops, depth, kinds });
  return { ...inp, shape: { ...inp.shape, pageLimit: 2 }, from: thpStartScenario() };
}

test('collapse took code 36, after the codes before it', () => {
  assert.equal(OP_NAMES.indexOf('uffd-fork-event'), 35);
  assert.equal(OP_NAMES.indexOf('collapse'), 36);
});

test('the THP start maps one PMD; page operations touch only the first pageLimit pages; collapse is one operation on the whole region', () => {
  const r = runnerAfter(thpStartScenario().steps.map((s) => s.text));
  const p = r.procs.get('P')!;
  assert.ok(pmdLeafSlot(r.k, p.mm, p.regions.get('buf')!.start) >= 0, 'a PMD-mapped THP');
  const shape = { procs: 2, threads: 1, handles: 1, ops: ['munmap', 'collapse'] as OpName[], pageLimit: 2 };
  const texts = enabledOps(r, shape).map((op) => decodeOp(r, op).text);
  assert.deepEqual(texts, ['P munmap buf[0]', 'P munmap buf[1]', 'P madvise buf collapse']);
  const all = enabledOps(r, { ...shape, pageLimit: undefined, ops: ['munmap'] as OpName[] });
  assert.equal(all.length, 512, 'without a limit, every page of the region');
});

test('from a THP, v5.7 loses a R/O pin: fork shares the PMD and the write copies the whole folio (copy_user_huge_page); v6 stays clean', () => {
  const ops: OpName[] = ['write', 'fork', 'pin-ro'];
  const found = run(thpInput('v5.7', ops, 3, ['pin-incoherent']));
  assert.equal(found.out.status, 'violation');
  assert.equal(found.out.result.counterexamples[0]!.depth, 3);
  const { sc, r } = replay(found.files[0]!, 'v5.7');
  assert.equal(sc.steps[0]!.text, 'P mmap buf 512 rw private thp', 'the counterexample starts from the THP');
  assert.ok(r.violations.some((v) => v.kind === 'pin-incoherent'));
  const fixed = run(thpInput('v6', ops, 3, ['pin-incoherent']));
  assert.equal(fixed.out.status, 'ok', fixed.files[0]);
});

test('with the splitting operations and collapse, v6 keeps every invariant (depth 2)', () => {
  const ops: OpName[] = ['write', 'fork', 'mprotect', 'dontneed', 'pin', 'collapse', 'mremap'];
  const out = run(thpInput('v6', ops, 2));
  assert.equal(out.out.status, 'ok', out.files[0]);
  const without = run(thpInput('v6', ops.filter((o) => o !== 'collapse'), 2));
  assert.ok(out.out.result.stats.states > without.out.result.stats.states, 'collapse reaches states of its own');
});

test('from a THP, every operation up to depth 3 keeps the model consistent (accounting, frame leaks, use after free, kernel BUGs) on each era of the THP rules: the search that found a 6.15 device-exclusive zap leaving its MM-id mapping and a stepped gup-fast pin missing from the folio\'s pincount', () => {
  const kinds = ['accounting', 'frame-leak', 'use-after-free', 'kernel-bug'];
  for (const kernel of ['v5.14', 'v5.19', 'v6']) {
    const found = run({ ...thpInput(kernel, [...OP_NAMES] as OpName[], 3, kinds), bounds: { ...thpInput(kernel, [], 3, kinds).bounds, all: true } });
    assert.equal(found.out.status, 'ok', `${kernel}: ${found.files[0] ?? ''}`);
    assert.ok(found.out.result.stats.states > 10_000, `${kernel}: ${found.out.result.stats.states} states`);
    assert.ok('device-exclusive' in found.out.result.stats.reached && 'pin' in found.out.result.stats.reached, `${kernel}: the grants and pins were reached`);
  }
});
