// The explorer's mremap operation: appended to the operation codes (the others keep theirs),
// it moves one page of the explored region to a region of its own, and searches with it find
// the pin stories at the page's new address while a fixed kernel stays clean.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeOp, enabledOps, OP_NAMES, type OpName } from '../../src/explore/ops.js';
import { input, replay, run, runnerAfter } from './helpers.js';

test('mremap took code 31, after the codes before it, which are unchanged', () => {
  assert.equal(OP_NAMES.indexOf('fork-cowpt'), 30);
  assert.equal(OP_NAMES.indexOf('mremap'), 31);
});

test('mremap moves one page of the explored region to a new region named after it', () => {
  const r = runnerAfter(['P mmap buf 2', 'P write buf = 1']);
  const shape = { procs: 2, threads: 1, handles: 1, ops: ['mremap'] as OpName[] };
  const ops = enabledOps(r, shape);
  assert.equal(ops.length, 2, 'one per page of the explored region');
  const step = decodeOp(r, ops[1]!);
  assert.equal(step.text, 'P mremap buf[1] as buf_m1');
  r.step(step, 2);
  const again = decodeOp(r, enabledOps(r, shape)[0]!);
  assert.equal(again.text, 'P mremap buf[0] as buf_m2', 'a fresh name each time');
});

test('searches with mremap: v5.9-rc4 loses the pinned page at its new address; v6 stays clean', () => {
  const ops: OpName[] = ['write', 'pin', 'mremap', 'fork', 'device-write', 'device-read'];
  const o = { ops, kinds: ['pin-incoherent'], depth: 4, pages: 1 };
  const found = run(input('v5.9-rc4', o));
  assert.equal(found.out.status, 'violation');
  const { r } = replay(found.files[0]!, 'v5.9-rc4', []);
  assert.ok(r.violations.some((v) => v.kind === 'pin-incoherent'));
  const fixed = run(input('v6', o));
  assert.equal(fixed.out.status, 'ok', fixed.files[0]);
  const without = run(input('v6', { ...o, ops: ops.filter((x) => x !== 'mremap') }));
  assert.ok(fixed.out.result.stats.states > without.out.result.stats.states, 'mremap adds states of its own');
});
