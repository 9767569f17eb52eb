// FrameTable's notes of the frames written (startTouched), which run --trace's capture compares
// instead of every frame (src/engine/changes-live.ts): every write of a reported array (refcount,
// mapcount, flags, value) through a setter or alloc/free is noted, each frame once until cleared,
// and a copy into the table stops the noting.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameTable } from '../../src/core/frames.js';
import { HPAGE_PMD_NR, PG_ANON, PG_ANON_EXCLUSIVE } from '../../src/core/constants.js';

const noted = (f: FrameTable): number[] => [...f.touchedFrames].sort((a, b) => a - b);

test('each setter, alloc and free notes the frame it writes, once until clearTouched', () => {
  const f = new FrameTable(100);
  const [a, b, c, d, e, g] = [0, 1, 2, 3, 4, 5].map(() => f.alloc(PG_ANON)) as [number, number, number, number, number, number];
  assert.equal(f.tracksTouched, false);
  f.setValue(a, 7);
  assert.deepEqual(noted(f), [], 'nothing is noted before startTouched');
  f.startTouched();
  assert.equal(f.tracksTouched, true);
  f.setValue(a, 8);
  f.addRefcount(b, 1024);
  f.addRefcount(b, -1024);
  f.setRefcount(c, 2);
  f.addMapcount(d, 1);
  f.addRmapPte(e, 0);
  f.setFlags(g, f.flags[g]! | PG_ANON_EXCLUSIVE);
  assert.deepEqual(noted(f), [a, b, c, d, e, g], 'each frame written, once (b was written twice)');
  f.clearTouched();
  assert.deepEqual(noted(f), []);
  f.removeRmapPte(e, 0);
  f.setMapcount(d, 0);
  f.free(c);
  assert.deepEqual(noted(f), [c, d, e]);
  f.clearTouched();
  const h = f.alloc(PG_ANON);
  assert.equal(h, c, 'the frame freed last is handed out again');
  f.free(a);
  assert.deepEqual(noted(f), [a, c]);
});

test('a large folio allocated or freed notes its 512 frames, and a copy of its contents the copy\'s', () => {
  const f = new FrameTable(4096);
  f.startTouched();
  const head = f.allocLarge(PG_ANON);
  const range = (h: number): number[] => Array.from({ length: HPAGE_PMD_NR }, (_, i) => h + i);
  assert.deepEqual(noted(f), range(head));
  f.clearTouched();
  const copy = f.allocLarge(PG_ANON);
  f.clearTouched();
  f.copyValues(copy, head, HPAGE_PMD_NR);
  assert.deepEqual(noted(f), range(copy));
  f.clearTouched();
  f.freeLarge(head);
  assert.deepEqual(noted(f), range(head));
});

test('frames past the capacity at startTouched are noted too (the list grows with the table)', () => {
  const f = new FrameTable(10000, 4);
  f.startTouched();
  const got: number[] = [];
  for (let i = 0; i < 3000; i++) got.push(f.alloc(PG_ANON));
  assert.ok(f.capacity >= 3001);
  assert.deepEqual(noted(f), got);
});

test('a copy made into the table stops the noting; a new copy does not note', () => {
  const f = new FrameTable(100);
  const a = f.alloc(PG_ANON);
  f.startTouched();
  const spare = new FrameTable(100);
  spare.startTouched();
  f.clone(spare);
  assert.equal(spare.tracksTouched, false, 'the copy no longer follows: its capture starts over');
  assert.equal(f.tracksTouched, true, 'the source still notes');
  const fresh = f.clone();
  assert.equal(fresh.tracksTouched, false);
  fresh.setValue(a, 3);
  fresh.startTouched();
  fresh.setValue(a, 4);
  assert.deepEqual(noted(fresh), [a]);
  assert.deepEqual(noted(f), [], 'a copy\'s writes are not the source\'s');
});
