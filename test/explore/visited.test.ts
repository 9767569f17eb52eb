// The visited sets: 64-bit fingerprints (open addressing, growing), the reader other threads use,
// exact keys, and the collision probability the output states.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SEED } from '../engine/seed.js';
import { fingerprint } from '../../src/explore/canonical.js';
import { collisionProbability, FingerprintReader, FingerprintSet, VisitedSet } from '../../src/explore/visited.js';

test('fingerprint set: a fingerprint is new once, across growths; the reader of its shared table agrees', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 2 ** 31 - 1 })), { maxLength: 300 }), (pairs) => {
    // Small words so that some pairs repeat; bits 16 grows at 32,768: shrink the table to test growth.
    const set = new FingerprintSet(true, 4);
    const seen = new Set<string>();
    for (const [hi, lo] of pairs) {
      const key = `${hi},${lo}`;
      assert.equal(set.add(hi, lo), !seen.has(key));
      seen.add(key);
    }
    assert.equal(set.size, seen.size);
    const reader = new FingerprintReader(set.buffer);
    for (const [hi, lo] of pairs) assert.ok(reader.has(hi, lo) && set.has(hi, lo));
    assert.ok(!set.has(41, 1) && !reader.has(41, 1));
    assert.ok(set.buffer instanceof SharedArrayBuffer);
  }), { seed: SEED });
});

test('fingerprint set: a table of 2^28 and 2^29 slots (2 and 4 GiB, past 67 M fingerprints) is made, shared or not, and holds what is added', () => {
  // The table's bytes were `8 << bits`, a 32-bit integer: negative from 2^28 slots on, which
  // crashed a depth-8 search at 67 M states. Untouched pages of the table cost no memory.
  for (const [shared, bits] of [[true, 28], [false, 29]] as const) {
    const set = new FingerprintSet(shared, bits);
    assert.equal(set.bytes, 8 * 2 ** bits);
    assert.equal(set.add(7, 2 ** 31 - 1), true);
    assert.equal(set.add(7, 2 ** 31 - 1), false);
    assert.ok(set.has(7, 2 ** 31 - 1) && !set.has(8, 2 ** 31 - 1));
    assert.ok(new FingerprintReader(set.buffer).has(7, 2 ** 31 - 1));
  }
});

test('fingerprints: both words non-zero; equal encodings give equal fingerprints, a changed word another', () => {
  const a = new Int32Array(2);
  const b = new Int32Array(2);
  fc.assert(fc.property(fc.array(fc.integer({ min: -20, max: 1000 }), { minLength: 1, maxLength: 80 }), fc.nat(), (w, at) => {
    fingerprint(w, a);
    fingerprint([...w], b);
    assert.ok(a[0] !== 0 && a[1] !== 0);
    assert.deepEqual([...a], [...b]);
    const v = w.slice();
    v[at % v.length]! += 1;
    fingerprint(v, b);
    assert.notDeepEqual([...a], [...b]);
    // A prefix is another encoding.
    fingerprint(w, b, w.length - 1);
    assert.notDeepEqual([...a], [...b]);
  }), { seed: SEED });
});

test('exact keys: equal keys are one state, any difference another', () => {
  const s = new VisitedSet();
  assert.equal(s.has([1, 2, 3], 3, 7), false);
  assert.equal(s.has([1, 2, 3], 3, 7), true);
  assert.equal(s.has([1, 2, 4], 3, 7), false, 'same hash, another key');
  assert.equal(s.has([1, 2], 2, 7), false);
  assert.equal(s.size, 3);
});

test('collision probability: about n^2 / 2^65', () => {
  assert.equal(collisionProbability(2 ** 20), 2 ** 40 / 2 ** 65);
  assert.ok(Math.abs(collisionProbability(1e8) - 2.7e-4) < 0.1e-4);
  assert.equal(collisionProbability(2 ** 40), 1);
});
