// The naive reference model checked by hand, against the kernel's rules and what a live 6.18
// kernel was seen to do (pagemap, fork, pins), so that a mistake in it cannot hide behind agreement
// with the model core.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NaiveKernel, pageKey, V5_7_RULES, V5_9_RULES, type NFrame, type NProc, type NRegion } from './model.js';

function frameOf(p: NProc, r: NRegion, i: number): NFrame | null {
  return p.pages.get(pageKey(r, i))?.pte?.frame ?? null;
}

test('A/D of §4: fork shares; each writer but the last copies; the last sharer reuses', () => {
  const n = new NaiveKernel();
  const p = n.spawn();
  const r = n.mmap(p, 1);
  n.write(p, r, 0, 1);
  const c1 = n.fork(p);
  const c2 = n.fork(p);
  const f = frameOf(p, r, 0)!;
  assert.deepEqual([f.mapcount, f.refcount, f.exclusive], [3, 3, false]);
  n.write(c1, r, 0, 2);
  n.write(c2, r, 0, 3);
  assert.equal(n.cowCopies, 2);
  assert.deepEqual([f.mapcount, f.refcount], [1, 1]);
  n.write(p, r, 0, 4);
  assert.equal(frameOf(p, r, 0), f, 'the last writer keeps the original frame');
  assert.equal(n.reuses, 1);
  assert.equal(f.exclusive, true);
  assert.deepEqual([n.read(p, r, 0), n.read(c1, r, 0), n.read(c2, r, 0)], [4, 2, 3]);
});

test('E of §4: the zero page is shared by a read, copied by each writer, never counted', () => {
  const n = new NaiveKernel();
  const p = n.spawn();
  const r = n.mmap(p, 2);
  assert.equal(n.read(p, r, 0), 0);
  assert.equal(frameOf(p, r, 0), null);
  assert.equal(p.rss, 0);
  assert.equal(n.frames.size, 0);
  n.write(p, r, 1, 1); // an anon_vma now: fork copies the zero-page PTE too
  const q = n.fork(p);
  assert.ok(q.pages.get(pageKey(r, 0))!.pte, 'inherited zero-page PTE');
  assert.equal(n.read(q, r, 0), 0);
  assert.equal(q.minflt, 0);
  n.write(q, r, 0, 5);
  assert.equal(n.cowCopies, 1);
  assert.equal(n.read(p, r, 0), 0);
});

test('a mapping only read before fork is not copied: the child faults again (vma_needs_copy)', () => {
  const n = new NaiveKernel();
  const p = n.spawn();
  const r = n.mmap(p, 1);
  n.read(p, r, 0);
  const q = n.fork(p);
  assert.equal(q.pages.get(pageKey(r, 0))!.pte, null);
  n.read(q, r, 0);
  assert.equal(q.minflt, 1);
});

test('§6: dontfork leaves no mapping in the child, wipeonfork an empty one; the parent is untouched', () => {
  const n = new NaiveKernel();
  const p = n.spawn();
  const r = n.mmap(p, 2);
  n.write(p, r, 0, 1);
  n.write(p, r, 1, 2);
  n.madvise(p, r, 0, 1, 'dontfork');
  n.madvise(p, r, 1, 2, 'wipeonfork');
  const q = n.fork(p);
  assert.equal(n.read(q, r, 0), null, 'SIGSEGV');
  assert.equal(n.read(q, r, 1), 0);
  assert.equal(p.pages.get(pageKey(r, 0))!.pte!.writable, true);
  assert.equal(p.pages.get(pageKey(r, 1))!.pte!.writable, true);
  assert.equal(frameOf(p, r, 0)!.exclusive, true);
  // The wipeonfork flag is inherited: the grandchild sees zeros again.
  n.write(q, r, 1, 9);
  const g = n.fork(q);
  assert.equal(n.read(g, r, 1), 0);
});

test('§5c: an extra reference makes the sole mapper copy; an exclusive page is reused regardless', () => {
  const n = new NaiveKernel();
  const p = n.spawn();
  const r = n.mmap(p, 2);
  n.write(p, r, 0, 1);
  n.write(p, r, 1, 1);
  const q = n.fork(p);
  n.exit(q);
  const f = frameOf(p, r, 0)!;
  const ref = n.gup(p, r, 0)!;
  assert.deepEqual([f.mapcount, f.refcount, f.exclusive], [1, 2, false]);
  n.write(p, r, 0, 2);
  assert.notEqual(frameOf(p, r, 0), f, 'copied away from the referenced page');
  assert.equal(ref.frame!.value, 1);
  n.putRef(ref);
  assert.equal(n.frames.has(f), false, 'freed by the last put');
  // Page 1 is reused (no extra reference), then exclusive: a reference no longer matters.
  n.write(p, r, 1, 2);
  const g = frameOf(p, r, 1)!;
  n.gup(p, r, 1);
  n.mprotect(p, r, 1, 2, 'ro');
  n.mprotect(p, r, 1, 2, 'rw');
  assert.equal(p.pages.get(pageKey(r, 1))!.pte!.writable, true, 'an exclusive page is made writable by mprotect');
  n.write(p, r, 1, 3);
  assert.equal(frameOf(p, r, 1), g);
});

test('the older rules: mapcount reuse ignores references (the leak), page-count reuse does not', () => {
  for (const [rules, reused] of [[V5_7_RULES, true], [V5_9_RULES, false]] as const) {
    const reuse = rules.reuse;
    const n = new NaiveKernel(rules);
    const p = n.spawn();
    const r = n.mmap(p, 1);
    n.write(p, r, 0, 1);
    const q = n.fork(p);
    const ref = n.gup(q, r, 0)!;
    n.munmap(q, r, 0, 1);
    n.write(p, r, 0, 2);
    assert.equal(ref.frame!.value === 2, reused, `${reuse}: the reference ${reused ? 'sees' : 'does not see'} the parent's new data`);
  }
});

test('munmap frees what only the process held; exit frees the rest; references keep frames alive', () => {
  const n = new NaiveKernel();
  const p = n.spawn();
  const r = n.mmap(p, 3);
  for (let i = 0; i < 3; i++) n.write(p, r, i, i + 1);
  const ref = n.gup(p, r, 2)!;
  n.munmap(p, r, 0, 1);
  assert.equal(n.frames.size, 2);
  assert.equal(p.rss, 2);
  assert.equal(n.read(p, r, 0), null);
  n.exit(p);
  assert.equal(n.frames.size, 1, 'the referenced page survives its last mapping');
  n.putRef(ref);
  assert.equal(n.frames.size, 0);
});

test('a range operation splits a VMA: an anon fault on one side gives an anon_vma to that side only', () => {
  const n = new NaiveKernel();
  const p = n.spawn();
  const r = n.mmap(p, 3);
  // mprotect ro of the middle page splits the VMA in three (an mprotect that changes nothing
  // would not: the split parts merge back).
  n.mprotect(p, r, 1, 2, 'ro');
  const vma = (i: number) => p.pages.get(pageKey(r, i))!.vma;
  assert.notEqual(vma(0), vma(1));
  assert.notEqual(vma(1), vma(2));
  n.write(p, r, 2, 1);
  assert.deepEqual([vma(0).anonVma, vma(1).anonVma, vma(2).anonVma], [false, false, true]);
});
