// copyFields (src/core/copy.ts): the shallow copy of every field the explorer's state copies use,
// Kernel.clone into a spare copy (the copy is independent of the original and of the spare's
// old contents), and IdealMemory.clone (the copy shares its parts until one of the two changes them).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFields } from '../../src/core/copy.js';
import { Kernel } from '../../src/core/kernel.js';
import { IdealMemory } from '../../src/check/ideal.js';
import { builtinProfile } from '../../src/profiles/builtin.js';

class Sample {
  a = 1;
  b: number[] = [1, 2];
  c: string | undefined;
  constructor(public d: string) {}
}

test('copyFields copies every field by reference, declared ones without a value too', () => {
  const src = new Sample('x');
  src.c = 'set';
  const dst = new Sample('y');
  dst.a = 9;
  copyFields(dst, src);
  assert.deepEqual({ ...dst }, { ...src });
  assert.equal(dst.b, src.b, 'by reference, as Object.assign');
  const bare = copyFields(Object.create(Sample.prototype) as Sample, src);
  assert.deepEqual(Object.keys(bare).sort(), ['a', 'b', 'c', 'd']);
  src.a = 2;
  assert.equal(bare.a, 1);
});

test('Kernel.clone into a spare copy: the copy has the original\'s state, the original and the copy change apart', () => {
  const k = new Kernel(builtinProfile('v6')!, { frames: 64, pinBias: 1024 });
  const mm = k.newMm();
  mm.rssAnon = 3;
  const pfn = k.frames.alloc(0);
  k.frames.setRefcount(pfn, 2);
  const spare = k.clone();
  spare.newMm(); // the spare's old contents: an extra mm
  const other = spare.frames.alloc(0);
  spare.frames.setRefcount(other, 5);
  const c = k.clone(spare);
  assert.equal(c, spare, 'made in the spare');
  assert.equal(c.mms.length, 1);
  assert.equal(c.mms[0]!.rssAnon, 3);
  assert.notEqual(c.mms[0], mm);
  assert.equal(c.frames.refcount[pfn], 2);
  assert.equal(c.frames.refcount[other], 0, 'the spare\'s frame beyond the original\'s is gone');
  assert.equal(c.frames.top, k.frames.top);
  c.mms[0]!.rssAnon = 7;
  c.frames.setRefcount(pfn, 1);
  assert.equal(mm.rssAnon, 3);
  assert.equal(k.frames.refcount[pfn], 2);
});

test('IdealMemory.clone: the copy and the original share nothing they change, whichever changes first', () => {
  const a = new IdealMemory();
  a.mmap('P', 16, 2, 'rw', false);
  a.write('P', 16, 5);
  a.takeHandle('h1', 'P', 17, 1, false); // a short-term reference watches page 17's cell
  const b = a.clone();
  // The copy changes: a write, a fork, an munmap, a handle released.
  b.write('P', 17, 6);
  b.fork('P', 'Q');
  b.munmap('P', 16, 17);
  b.releaseHandle('h1');
  assert.equal(a.access('P', 16, false), 'ok', 'the original keeps its page');
  assert.equal(a.read('P', 16), 5);
  assert.equal(a.read('P', 17), 0);
  assert.equal(a.everHeld('P', 6), false);
  assert.deepEqual(a.heldBy('Q'), []);
  assert.equal(a.handleState('h1')?.seen[0]?.includes(6), false, 'the original handle did not see the copy\'s write');
  assert.equal(b.access('P', 16, false), 'fault');
  assert.equal(b.read('Q', 17), 6);
  assert.equal(b.handleState('h1'), null);
  // The original changes after the copy was made: the copy does not see it.
  const c = a.clone();
  a.write('P', 17, 7);
  assert.deepEqual(a.handleState('h1')?.seen[0]?.sort(), [0, 7]);
  assert.equal(c.read('P', 17), 0);
  assert.deepEqual(c.handleState('h1')?.seen[0], [0]);
  assert.equal(c.everHeld('P', 7), false);
  // A process changed in one copy (mprotect, exit) stays as it was in the other.
  a.mprotect('P', 16, 18, 'ro');
  assert.equal(c.access('P', 16, true), 'ok');
  c.exit('P');
  assert.equal(a.access('P', 16, false), 'ok');
  assert.equal(c.access('P', 16, false), 'fault');
});
