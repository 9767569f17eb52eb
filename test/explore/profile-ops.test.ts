// Operations whose kernel part the searched profile lacks (ExploreOp's `needs`: COW page tables,
// device-exclusive entries, userfaultfd write-protect, swap, KSM) are left out of the search: each
// of their transitions would be n/a. And a search that runs out of new states before its depth
// bound has searched every sequence up to that bound: its result is `ok`, not `bound`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explore } from '../../src/explore/explore.js';
import { OP_NAMES, opsOnProfile } from '../../src/explore/ops.js';
import { input, profileOf } from './helpers.js';

test('each profile keeps the operations it has the kernel part for', () => {
  assert.deepEqual(opsOnProfile(OP_NAMES, profileOf('v6')).lacking, ['fork-cowpt']);
  assert.deepEqual(opsOnProfile(OP_NAMES, profileOf('cowpt-rfc')).lacking.includes('fork-cowpt'), false);
  // v5.8: no device-exclusive entries (5.14) and no COW page tables.
  assert.deepEqual(opsOnProfile(['write', 'device-exclusive', 'fork-cowpt', 'device-atomic'], profileOf('v5.8')),
    { kept: ['write', 'device-atomic'], lacking: ['device-exclusive', 'fork-cowpt'] });
  // A what-if without swap or KSM loses reclaim and ksmd, not MADV_MERGEABLE.
  assert.deepEqual(opsOnProfile(['swapout', 'mergeable', 'ksm-merge'], profileOf('v6', ['swap=false', 'ksm=false'])).lacking, ['swapout', 'ksm-merge']);
});

test('a lacking operation makes no transition: the search is the one without it', () => {
  const ops = ['write', 'fork', 'pin', 'device-exclusive', 'fork-cowpt'];
  const a = explore(input('v5.8', { ops, depth: 3 })).result.stats;
  const b = explore(input('v5.8', { ops: ['write', 'fork', 'pin'], depth: 3 })).result.stats;
  assert.equal(a.states, b.states);
  assert.equal(a.transitions, b.transitions);
  // On v6 device-exclusive stays, and finds states v5.8 cannot have.
  const c = explore(input('v6', { ops, depth: 3 })).result.stats;
  assert.ok(c.states > explore(input('v6', { ops: ['write', 'fork', 'pin'], depth: 3 })).result.stats.states);
});

test('a search that runs out of new states before its bound is complete to the bound: ok', () => {
  // One process reading and writing two pages: after two operations nothing new is reachable.
  const out = explore(input('v6', { procs: 1, ops: ['read', 'write'], depth: 6 }));
  const st = out.result.stats;
  assert.ok(st.depthReached < 6, `new states stop at depth ${st.depthReached}`);
  assert.equal(st.depthComplete, 6);
  assert.equal(out.verdict, 'ok');
  // Nothing to try at all (v5.8 has no device-exclusive entries): the start state is all there is.
  const none = explore(input('v5.8', { ops: ['device-exclusive'], depth: 3 }));
  assert.equal(none.result.stats.states, 1);
  assert.equal(none.verdict, 'ok');
});
