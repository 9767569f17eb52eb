// FrameTable: alloc_page / free_page with the config.frames limit; frame 0 is the zero page.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameTable } from '../../src/core/frames.js';
import { PG_ANON, PG_INUSE, PG_ZERO } from '../../src/core/constants.js';

test('frame 0 is the shared zero page: never handed out, not counted as used', () => {
  const f = new FrameTable(10);
  assert.ok(f.flags[0]! & PG_ZERO);
  assert.equal(f.used, 0);
  assert.equal(f.inUse(0), false, 'inUse() speaks of allocated frames; the zero page is not one');
  const got = [f.alloc(PG_ANON), f.alloc(PG_ANON), f.alloc(PG_ANON)];
  assert.ok(!got.includes(0), `frame 0 allocated: ${got}`);
  assert.equal(new Set(got).size, 3, 'three distinct frames');
});

test('alloc gives a zeroed frame with refcount 1, mapcount 0 and the flags asked for', () => {
  const f = new FrameTable(10);
  const pfn = f.alloc(PG_ANON);
  assert.equal(f.refcount[pfn], 1);
  assert.equal(f.mapcount[pfn], 0);
  assert.equal(f.value[pfn], 0);
  assert.equal(f.flags[pfn], PG_ANON | PG_INUSE);
  assert.equal(f.inUse(pfn), true);
  assert.equal(f.used, 1);
});

test('allocation past the limit fails with -1 (ENOMEM) and changes nothing', () => {
  const f = new FrameTable(3);
  for (let i = 0; i < 3; i++) assert.ok(f.alloc(PG_ANON) > 0);
  assert.equal(f.used, 3);
  assert.equal(f.alloc(PG_ANON), -1);
  assert.equal(f.alloc(PG_ANON), -1);
  assert.equal(f.used, 3);
});

test('a limit of 0 frames: the first allocation already fails', () => {
  const f = new FrameTable(0);
  assert.equal(f.alloc(PG_ANON), -1);
  assert.equal(f.used, 0);
});

test('a freed frame is reused, wiped, and the limit counts frames in use, not frames ever made', () => {
  const f = new FrameTable(2);
  const a = f.alloc(PG_ANON);
  const b = f.alloc(PG_ANON);
  f.setValue(a, 42);
  f.setMapcount(a, 3);
  f.setRefcount(a, 7);
  assert.equal(f.alloc(PG_ANON), -1, 'limit reached');
  f.free(a);
  assert.equal(f.used, 1);
  assert.equal(f.inUse(a), false);
  assert.equal(f.refcount[a], 0);
  const c = f.alloc(PG_ANON);
  assert.equal(c, a, 'the freed frame comes back');
  assert.deepEqual([f.refcount[c], f.mapcount[c], f.value[c]], [1, 0, 0], 'state of the previous life wiped');
  assert.equal(f.inUse(b), true);
  assert.equal(f.used, 2);
});

test('frames freed in some order come back last-freed first, and all of them before new ones', () => {
  const f = new FrameTable(100);
  const ps = [f.alloc(PG_ANON), f.alloc(PG_ANON), f.alloc(PG_ANON)];
  const top = f.top;
  f.free(ps[0]!);
  f.free(ps[2]!);
  const again = new Set([f.alloc(PG_ANON), f.alloc(PG_ANON)]);
  assert.deepEqual(again, new Set([ps[0], ps[2]]));
  assert.equal(f.top, top, 'no new frame was made while freed ones were available');
  assert.equal(f.alloc(PG_ANON), top);
});

test('the table grows past its initial capacity and keeps every frame state', () => {
  const f = new FrameTable(10_000, 2);
  const n = 3000;
  for (let i = 0; i < n; i++) {
    const pfn = f.alloc(PG_ANON);
    assert.equal(pfn, i + 1);
    f.setValue(pfn, i * 7);
    f.setMapcount(pfn, i % 5);
  }
  assert.ok(f.capacity > n);
  for (let pfn = 1; pfn <= n; pfn++) {
    assert.equal(f.value[pfn], (pfn - 1) * 7);
    assert.equal(f.mapcount[pfn], (pfn - 1) % 5);
    assert.equal(f.refcount[pfn], 1);
  }
  assert.ok(f.flags[0]! & PG_ZERO, 'growth keeps the zero page');
  assert.equal(f.used, n);
});

test('clone is a deep copy: the copies evolve apart', () => {
  const f = new FrameTable(5);
  const a = f.alloc(PG_ANON);
  f.setValue(a, 9);
  const c = f.clone();
  c.setValue(a, 10);
  c.alloc(PG_ANON);
  assert.equal(f.value[a], 9);
  assert.equal(f.used, 1);
  assert.equal(c.used, 2);
  f.free(a);
  assert.equal(c.inUse(a), true);
  assert.equal(c.limit, 5);
});
