// The naive reference model checked by hand, against the kernel's rules and what a live 6.18
// kernel was seen to do (pagemap, fork, pins), so that a mistake in it cannot hide behind agreement
// with the model core.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GUP_PIN_COUNTING_BIAS, NaiveKernel, ODF_2021_RULES, ODF_RULES, pageKey, V5_14_RULES, V5_18_RULES, V5_19_RULES, V5_7_RULES, V5_9_RULES, V6_2_RULES, V6_RULES, type NaiveOptions, type NFrame, type NProc, type NRegion,
} from './model.js';
import { parse, runnerAfter, scenarioText } from '../explore/helpers.js';

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

// ---- pins, vmsplice, device I/O ---------------------------------------------------------------

/** A kernel under `rules` with one process P and one region of `pages` pages. */
function oneProc(rules: NaiveOptions, pages: number): { n: NaiveKernel; p: NProc; r: NRegion } {
  const n = new NaiveKernel(rules);
  const p = n.spawn();
  return { n, p, r: n.mmap(p, pages) };
}

const pte = (p: NProc, r: NRegion, i: number) => p.pages.get(pageKey(r, i))!.pte!;

/**
 * One process, `pages` pages all MADV_MERGEABLE, pages 0 and 1 written `value`: ksmd's pass
 * merges them into one KSM page (two pages replaced), k.
 */
function mergedPair(rules: NaiveOptions, pages: number, value: number): { n: NaiveKernel; p: NProc; r: NRegion; k: NFrame } {
  const { n, p, r } = oneProc(rules, pages);
  n.madvise(p, r, 0, pages, 'mergeable');
  n.write(p, r, 0, value);
  n.write(p, r, 1, value);
  assert.equal(n.ksmMerge(), 2);
  return { n, p, r, k: frameOf(p, r, 0)! };
}

test('CVE-2020-29374 on v6: the child\'s pipe keeps the page it spliced; the parent\'s later write copies (no PAE after fork, refcount 2)', () => {
  const { n, p, r } = oneProc(V6_RULES, 1);
  n.write(p, r, 0, 1);
  const q = n.fork(p);
  const f = frameOf(p, r, 0)!;
  // vmsplice: FOLL_GET through gup-fast, read-only, no unshare: one more reference, nothing else.
  const pipe = n.vmsplice(q, r, 0)!;
  assert.equal(pipe.frame, f);
  assert.deepEqual([f.mapcount, f.refcount, f.exclusive], [2, 3, false]);
  n.munmap(q, r, 0, 1);
  assert.deepEqual([f.mapcount, f.refcount], [1, 2]);
  // do_wp_page: not PageAnonExclusive (fork cleared it), wp_can_reuse_anon_folio sees refcount 2: copy.
  n.write(p, r, 0, 2);
  assert.notEqual(frameOf(p, r, 0), f);
  assert.equal(n.cowCopies, 1);
  assert.equal(n.pipeRead(pipe), 1, 'the child reads what it spliced, not the parent\'s later write');
  assert.equal(n.read(p, r, 0), 2);
  n.closePipe(pipe);
  assert.equal(n.frames.has(f), false, 'the pipe held the last reference');
});

test('CVE-2020-29374 under the older reuse rules: mapcount reuse (5.7) leaks the parent\'s write into the pipe, page-count reuse (5.9) does not', () => {
  for (const [rules, leaks] of [[V5_7_RULES, true], [V5_9_RULES, false]] as const) {
    const { n, p, r } = oneProc(rules, 1);
    n.write(p, r, 0, 1);
    const q = n.fork(p);
    const pipe = n.vmsplice(q, r, 0)!;
    n.munmap(q, r, 0, 1);
    n.write(p, r, 0, 2);
    // 5.7 do_wp_page: reuse_swap_page -> mapcount 1: the parent writes into the pipe's page.
    // 5.9 do_wp_page: page_count 2 (the pipe's reference): copy.
    assert.equal(n.pipeRead(pipe), leaks ? 2 : 1, `${rules.reuse}`);
  }
});

test('vmsplice is no snapshot: the pipe holds the page, so a later write to an exclusive page shows in it (PAE reuse ignores the reference)', () => {
  const { n, p, r } = oneProc(V6_RULES, 2);
  n.write(p, r, 0, 1);
  const pipe = n.vmsplice(p, r, 0)!;
  n.write(p, r, 0, 2);
  assert.equal(n.cowCopies, 0, 'PageAnonExclusive: reused without looking at the refcount');
  assert.equal(n.pipeRead(pipe), 2);
  // An untouched page: gup-fast leaves the missing PTE to the slow path, which maps the zero
  // page for reading; the pipe holds the zero page (no count) and reads zeros ever after.
  const z = n.vmsplice(p, r, 1)!;
  assert.equal(z.frame, null);
  assert.equal(p.minflt, 2, 'the write fault of page 0 and the read fault of page 1');
  n.write(p, r, 1, 5);
  assert.equal(n.pipeRead(z), 0);
});

test('a R/W longterm pin stays coherent across fork on v6: early COW gives the child a copy, the parent keeps the pinned page exclusive and writable', () => {
  const { n, p, r } = oneProc(V6_RULES, 1);
  n.write(p, r, 0, 1);
  const pin = n.pin(p, r, 0, { write: true, longterm: true })!;
  const f = pin.frame!;
  assert.equal(f, frameOf(p, r, 0));
  // try_grab_folio(FOLL_PIN) on a small folio: + GUP_PIN_COUNTING_BIAS; mm_set_has_pinned_flag.
  assert.deepEqual([f.refcount, f.mapcount, p.hasPinned], [1 + GUP_PIN_COUNTING_BIAS, 1, true]);
  const q = n.fork(p);
  // copy_present_ptes: MMF_HAS_PINNED && folio_maybe_dma_pinned && PAE: copy_present_page for
  // the child; the parent's PTE is left writable and its page exclusive.
  assert.equal(n.forkCopies, 1);
  assert.notEqual(frameOf(q, r, 0), f);
  assert.equal(q.hasPinned, false, 'MMF_HAS_PINNED is not inherited');
  assert.deepEqual([f.mapcount, f.refcount, f.exclusive, pte(p, r, 0).writable], [1, 1 + GUP_PIN_COUNTING_BIAS, true, true]);
  assert.equal(pte(q, r, 0).writable, true, 'maybe_mkwrite: the child\'s copy is writable in a writable VMA');
  const faults = p.minflt;
  n.write(p, r, 0, 2);
  assert.equal(p.minflt, faults, 'no fault: the parent\'s PTE stayed writable');
  assert.equal(n.deviceWrite(pin, 3), true);
  assert.deepEqual([n.read(p, r, 0), n.read(q, r, 0), n.deviceRead(pin)], [3, 1, 3]);
});

test('without early COW (v5.9-rc4: page-count reuse, no has_pinned) the parent\'s write after fork leaves the pin; with it (v5.9) it does not', () => {
  for (const [rules, coherent] of [[{ ...V5_9_RULES, earlyCow: false }, false], [V5_9_RULES, true]] as const) {
    const { n, p, r } = oneProc(rules, 1);
    n.write(p, r, 0, 1);
    const pin = n.pin(p, r, 0, { write: true, longterm: true })!;
    const q = n.fork(p);
    n.exit(q);
    // Without early COW fork shared the pinned page and write-protected it: page_count is
    // 1 + the pin's 1024 > 1, so the parent's write copies it away from the pin.
    n.write(p, r, 0, 2);
    n.deviceWrite(pin, 3);
    assert.equal(n.read(p, r, 0), coherent ? 3 : 2, `earlyCow ${rules.earlyCow}`);
  }
});

test('a R/O longterm pin of a page shared after fork unshares it first on v6 (FAULT_FLAG_UNSHARE): the pin and the parent keep meeting', () => {
  const { n, p, r } = oneProc(V6_RULES, 1);
  n.write(p, r, 0, 1);
  const q = n.fork(p);
  const f = frameOf(p, r, 0)!;
  const faults = p.minflt;
  // gup_must_unshare: R/O FOLL_PIN, read-only PTE, anonymous page not PAE -> unshare fault;
  // do_wp_page(unshare): not exclusive, refcount 2 -> wp_page_copy, mapped read-only.
  const pin = n.pin(p, r, 0, { write: false, longterm: true })!;
  const g = frameOf(p, r, 0)!;
  assert.notEqual(g, f);
  assert.equal(pin.frame, g);
  assert.equal(p.minflt, faults + 1);
  assert.deepEqual([g.exclusive, g.refcount, pte(p, r, 0).writable], [true, 1 + GUP_PIN_COUNTING_BIAS, false]);
  assert.deepEqual([f.mapcount, f.refcount], [1, 1], 'the child\'s page lost the parent\'s mapping');
  // The parent's write: PageAnonExclusive -> reuse, in place; the child's: refcount 1 -> reuse.
  n.write(p, r, 0, 2);
  n.write(q, r, 0, 5);
  assert.equal(n.cowCopies, 1, 'only the unshare copied');
  assert.deepEqual([n.deviceRead(pin), n.read(p, r, 0), n.read(q, r, 0)], [2, 2, 5]);
  assert.equal(n.deviceWrite(pin, 9), false, 'a R/O pin gives the device no write access');
});

test('before 5.19 a R/O pin does not unshare: the parent\'s next write copies it away from the pinned page (the device reads stale data)', () => {
  const { n, p, r } = oneProc(V5_9_RULES, 1);
  n.write(p, r, 0, 1);
  n.fork(p);
  const pin = n.pin(p, r, 0, { write: false, longterm: true })!;
  assert.equal(pin.frame, frameOf(p, r, 0), 'pinned as it is, shared');
  n.write(p, r, 0, 2);
  assert.equal(n.deviceRead(pin), 1);
});

test('a R/O pin of an exclusive page does not unshare (already PAE), and a R/O pin of a reusable page only marks it exclusive', () => {
  const { n, p, r } = oneProc(V6_RULES, 2);
  n.write(p, r, 0, 1);
  n.write(p, r, 1, 1);
  n.mprotect(p, r, 0, 1, 'ro');
  const f = frameOf(p, r, 0)!;
  const faults = p.minflt;
  n.pin(p, r, 0, { write: false, longterm: true });
  assert.equal(frameOf(p, r, 0), f);
  assert.equal(p.minflt, faults, 'gup_must_unshare: PAE -> nothing to do');
  // Page 1: shared by fork, then the child is gone: not PAE but refcount 1. The unshare fault
  // reuses it (SetPageAnonExclusive) and leaves the PTE read-only, without a copy.
  const q = n.fork(p);
  n.exit(q);
  const g = frameOf(p, r, 1)!;
  assert.equal(g.exclusive, false);
  n.pin(p, r, 1, { write: false, longterm: true });
  assert.deepEqual([frameOf(p, r, 1) === g, g.exclusive, pte(p, r, 1).writable, n.cowCopies, n.reuses], [true, true, false, 0, 0]);
});

test('a R/O longterm pin of the zero page unshares into a fresh page on v6 (6.2); 5.19 pins the zero page and loses the next write', () => {
  for (const [rules, coherent] of [[V6_RULES, true], [V5_19_RULES, false]] as const) {
    const { n, p, r } = oneProc(rules, 1);
    const pin = n.pin(p, r, 0, { write: false, longterm: true })!;
    // v6: read fault (the zero page), then gup_must_unshare: not anonymous, long-term, COW
    // mapping -> unshare fault -> wp_page_copy into a zeroed exclusive page, read-only.
    assert.equal(pin.frame !== null, coherent, rules.unshare);
    assert.equal(p.minflt, coherent ? 2 : 1);
    assert.equal(p.rss, coherent ? 1 : 0);
    n.write(p, r, 0, 7);
    assert.equal(n.deviceRead(pin), coherent ? 7 : 0, rules.unshare);
  }
  // A short-term R/O pin of the zero page does not unshare on v6 either (!FOLL_LONGTERM).
  const { n, p, r } = oneProc(V6_RULES, 1);
  n.read(p, r, 0);
  assert.equal(n.pin(p, r, 0, { write: false, longterm: false })!.frame, null);
});

test('a R/W pin faults in for writing: a missing PTE, the zero page, a read-only exclusive page; FOLL_WRITE on a read-only VMA is EFAULT', () => {
  const { n, p, r } = oneProc(V5_19_RULES, 3); // no mprotect upgrade: the PTE stays read-only after mprotect rw
  const a = n.pin(p, r, 0, { write: true, longterm: true })!;
  assert.deepEqual([a.frame!.value, pte(p, r, 0).writable, p.minflt, p.rss], [0, true, 1, 1], 'do_anonymous_page, write');
  n.read(p, r, 1);
  const b = n.pin(p, r, 1, { write: true, longterm: true })!;
  assert.equal(b.frame, frameOf(p, r, 1), 'do_wp_page copied the zero page');
  assert.equal(n.cowCopies, 1);
  n.write(p, r, 2, 4);
  const g = frameOf(p, r, 2)!;
  n.mprotect(p, r, 2, 3, 'ro');
  assert.equal(n.pin(p, r, 2, { write: true, longterm: true }), null, 'check_vma_flags: FOLL_WRITE without VM_WRITE');
  assert.equal(g.refcount, 1, 'nothing grabbed');
  n.mprotect(p, r, 2, 3, 'rw');
  assert.equal(pte(p, r, 2).writable, false);
  const c = n.pin(p, r, 2, { write: true, longterm: true })!;
  assert.deepEqual([c.frame === g, pte(p, r, 2).writable, n.reuses], [true, true, 1], 'do_wp_page: PAE -> reuse');
});

test('a pinned page made read-only is reused by the next write on v6 (PAE), copied away from the pin under page-count reuse', () => {
  for (const [rules, coherent] of [[V5_19_RULES, true], [V5_9_RULES, false]] as const) {
    const { n, p, r } = oneProc(rules, 1);
    n.write(p, r, 0, 1);
    const pin = n.pin(p, r, 0, { write: true, longterm: true })!;
    n.mprotect(p, r, 0, 1, 'ro');
    n.mprotect(p, r, 0, 1, 'rw');
    n.write(p, r, 0, 2);
    assert.equal(n.deviceRead(pin), coherent ? 2 : 1, rules.reuse);
  }
});

test('early COW needs a page that may be pinned now: after unpin fork shares again though MMF_HAS_PINNED sticks', () => {
  const { n, p, r } = oneProc(V6_RULES, 1);
  n.write(p, r, 0, 1);
  const pin = n.pin(p, r, 0, { write: true, longterm: true })!;
  n.unpin(pin);
  const f = frameOf(p, r, 0)!;
  assert.deepEqual([f.refcount, p.hasPinned], [1, true]);
  const q = n.fork(p);
  assert.equal(n.forkCopies, 0);
  assert.equal(frameOf(q, r, 0), f);
  assert.deepEqual([f.mapcount, f.exclusive], [2, false]);
});

test('a pin outlives the mapping: the device still writes and reads the frame; unpin frees it; the process faults in a new page', () => {
  const { n, p, r } = oneProc(V6_RULES, 1);
  n.write(p, r, 0, 1);
  const pin = n.pin(p, r, 0, { write: true, longterm: true })!;
  const f = pin.frame!;
  n.madvise(p, r, 0, 1, 'dontneed');
  assert.deepEqual([f.mapcount, f.refcount, n.frames.has(f)], [0, GUP_PIN_COUNTING_BIAS, true]);
  n.deviceWrite(pin, 5);
  assert.equal(n.deviceRead(pin), 5);
  assert.equal(n.read(p, r, 0), 0, 'the zero page: the pinned frame is no longer mapped');
  n.unpin(pin);
  assert.equal(n.frames.size, 0);
});

// Swap (MADV_PAGEOUT reclaim, do_swap_page).

function swpOf(p: NProc, r: NRegion, i: number) {
  return p.pages.get(pageKey(r, i))!.swp;
}

test('swap-out of an exclusive page: a SWP_EXCLUSIVE entry, the frame freed; swap-in reads the value back into an exclusive page, writable on a read fault from 6.11 only', () => {
  for (const [rules, writableAfterRead] of [[V6_RULES, true], [V6_2_RULES, false], [V5_19_RULES, false]] as const) {
    const { n, p, r } = oneProc(rules, 1);
    n.write(p, r, 0, 7);
    const f = frameOf(p, r, 0)!;
    // try_to_unmap_one: PG_anon_exclusive moves into the swap entry; nothing else holds the
    // frame, so __remove_mapping frees it (the swap cache's reference was the last).
    assert.equal(n.swapout(p, r, 0), true);
    assert.equal(p.pages.get(pageKey(r, 0))!.pte, null);
    assert.deepEqual([swpOf(p, r, 0)!.exclusive, swpOf(p, r, 0)!.slot.count, swpOf(p, r, 0)!.slot.cache], [true, 1, null]);
    assert.equal(n.frames.has(f), false);
    assert.equal(p.rss, 0);
    // do_swap_page on a read fault: a new folio read from the slot; the entry was exclusive, so
    // RMAP_EXCLUSIVE, and pte_mkwrite on a read fault only from 6.11 (c18160dba5ff).
    assert.equal(n.read(p, r, 0), 7);
    const g = frameOf(p, r, 0)!;
    assert.deepEqual([g.exclusive, pte(p, r, 0).writable], [true, writableAfterRead]);
    // A later write reuses the page either way (do_wp_page: PG_anon_exclusive).
    n.write(p, r, 0, 8);
    assert.equal(frameOf(p, r, 0), g);
    assert.equal(n.cowCopies, 0);
  }
});

test('MADV_PAGEOUT leaves a page mapped by two processes, the zero page, an unmapped page and a maybe-pinned page alone', () => {
  const { n, p, r } = oneProc(V6_RULES, 4);
  n.write(p, r, 0, 1);
  n.read(p, r, 1); // the zero page: not an LRU page
  n.write(p, r, 3, 3);
  const q = n.fork(p);
  // madvise_cold_or_pageout_pte_range: folio_mapcount != 1, "do not interfere with other mappings".
  assert.equal(n.swapout(p, r, 0), false);
  assert.equal(n.swapout(p, r, 1), false);
  assert.equal(n.swapout(p, r, 2), false, 'never faulted: no PTE');
  n.exit(q);
  // A R/W pin: refcount >= GUP_PIN_COUNTING_BIAS, folio_maybe_dma_pinned; shrink_folio_list
  // keeps it off the swap cache (5.11 on), so the pin and the process keep sharing the frame.
  const pin = n.pin(p, r, 3, { write: true, longterm: true })!;
  assert.equal(n.swapout(p, r, 3), false);
  n.write(p, r, 3, 4);
  assert.equal(n.deviceRead(pin), 4);
  // With the child gone, page 0 is mapped once again: now it goes.
  assert.equal(n.swapout(p, r, 0), true);
  assert.equal(n.swapOuts, 1);
});

test('a swap entry shared by fork: not exclusive in either; the first writer copies out of the swap cache, the last reuses it', () => {
  const { n, p, r } = oneProc(V6_RULES, 1);
  n.write(p, r, 0, 1);
  n.swapout(p, r, 0);
  const q = n.fork(p);
  // copy_nonpresent_pte: swap_duplicate (count 2) and the parent's SWP_EXCLUSIVE is cleared.
  const slot = swpOf(p, r, 0)!.slot;
  assert.deepEqual([swpOf(p, r, 0)!.exclusive, swpOf(q, r, 0)!.exclusive, slot.count], [false, false, 2]);
  // P's write fault: swap-in into the swap cache (cache + ours = 2 references); Q's entry still
  // refers to the slot, so the cache cannot be freed; not exclusive: mapped R/O and do_wp_page
  // copies (refcount 2 != 1).
  n.write(p, r, 0, 2);
  assert.equal(n.cowCopies, 1);
  const cached = slot.cache!;
  assert.deepEqual([cached.value, cached.mapcount, cached.refcount], [1, 0, 1]);
  assert.notEqual(frameOf(p, r, 0), cached);
  // Q faults the cached frame in: the value it had, not P's.
  assert.equal(n.read(q, r, 0), 1);
  assert.equal(frameOf(q, r, 0), cached);
  // Its write: swap_free left the slot unused and the cached frame is not exclusive; do_wp_page
  // frees the swap cache (folio_free_swap) and the page is then Q's alone: reused.
  n.write(q, r, 0, 3);
  assert.equal(frameOf(q, r, 0), cached);
  assert.equal(n.cowCopies, 1);
  assert.equal(cached.swapcache, null);
  assert.deepEqual([n.read(p, r, 0), n.read(q, r, 0)], [2, 3]);
});

test('a pipe\'s reference keeps a swapped-out page in the swap cache: the swap-in finds the same frame, and an exclusive entry lets the write reuse it', () => {
  const { n, p, r } = oneProc(V6_RULES, 2);
  n.write(p, r, 0, 1);
  const pipe = n.vmsplice(p, r, 0)!;
  const f = pipe.frame!;
  // Unmapped (a FOLL_GET reference is no pin), but __remove_mapping sees the extra reference:
  // the frame stays in the swap cache (refcount: pipe + cache).
  assert.equal(n.swapout(p, r, 0), true);
  assert.deepEqual([f.refcount, f.mapcount, f.exclusive, swpOf(p, r, 0)!.exclusive], [2, 0, false, true]);
  // do_swap_page: the swap cache's frame; the entry was exclusive, so it is mapped exclusive and
  // writable at once though the pipe holds it (the reference was taken while it was ours).
  n.write(p, r, 0, 2);
  assert.equal(frameOf(p, r, 0), f);
  assert.equal(n.pipeRead(pipe), 2);
  // Page 1, shared by a fork's swap entry before the pipe takes it: the write copies away from it.
  n.write(p, r, 1, 5);
  n.swapout(p, r, 1);
  const q = n.fork(p);
  const ref = n.vmsplice(q, r, 1)!; // Q's read swap-in, the cached frame R/O and not exclusive
  n.write(p, r, 1, 6);
  assert.notEqual(frameOf(p, r, 1), ref.frame);
  assert.equal(n.pipeRead(ref), 5);
  assert.equal(n.read(q, r, 1), 5);
});

test('zap of swap entries: munmap and exit drop the slot\'s count; the last one frees the swap cache when nothing else holds the frame', () => {
  const { n, p, r } = oneProc(V6_RULES, 1);
  n.write(p, r, 0, 1);
  const ref = n.gup(p, r, 0)!;
  n.swapout(p, r, 0);
  const q = n.fork(p);
  const slot = swpOf(p, r, 0)!.slot;
  n.munmap(p, r, 0, 1);
  assert.equal(slot.count, 1);
  n.putRef(ref);
  assert.equal(slot.cache, ref.frame, 'still cached: Q\'s entry refers to the slot');
  n.exit(q);
  assert.equal(slot.count, 0);
  assert.equal(slot.cache, null, 'free_swap_and_cache');
  assert.equal(n.frames.size, 0);
});

// mremap (move_vma, move_page_tables).

test('mremap moves a page\'s entry, not its content: still the frame a fork child shares, the COW break happens at the new address; the old address faults', () => {
  const { n, p, r } = oneProc(V6_RULES, 4);
  for (let i = 0; i < 4; i++) n.write(p, r, i, 1);
  const q = n.fork(p);
  const f = frameOf(p, r, 1)!;
  const m = n.mremap(p, r, 1, 3)!;
  // move_page_tables: the same frame, still mapped by both, the PTE still write-protected.
  assert.equal(frameOf(p, m, 0), f);
  assert.deepEqual([f.mapcount, f.refcount, pte(p, m, 0).writable], [2, 2, false]);
  n.write(p, m, 0, 2);
  assert.equal(n.cowCopies, 1);
  assert.equal(n.read(q, r, 1), 1);
  assert.equal(n.read(p, r, 1), null, 'the old range is unmapped');
  assert.equal(n.write(p, r, 2, 5), false);
  assert.equal(n.read(p, m, 1), 1);
  assert.equal(p.rss, 4, 'nothing was copied or dropped: 4 pages, one of them now a copy');
  // A range that starts on an unmapped page: EFAULT (vma_lookup finds nothing).
  assert.equal(n.mremap(p, r, 1, 2), null);
});

test('mremap keeps pins, swap entries and PG_anon_exclusive with the page: the device writes what the new address reads; a swapped-out page swaps in there', () => {
  const { n, p, r } = oneProc(V6_RULES, 2);
  n.write(p, r, 0, 1);
  n.write(p, r, 1, 2);
  const pin = n.pin(p, r, 0, { write: true, longterm: true })!;
  n.swapout(p, r, 1);
  const m0 = n.mremap(p, r, 0, 1)!;
  const m1 = n.mremap(p, r, 1, 2)!;
  n.deviceWrite(pin, 9);
  assert.equal(n.read(p, m0, 0), 9, 'the pin still holds the page mapped at the new address');
  // The exclusive page is still writable in place: no copy away from the pin.
  n.write(p, m0, 0, 10);
  assert.equal(n.deviceRead(pin), 10);
  assert.equal(n.cowCopies, 0);
  // The SWP_EXCLUSIVE entry moved: the swap-in at the new address is exclusive, writable.
  assert.equal(swpOf(p, m1, 0)!.exclusive, true);
  assert.equal(n.peek(p, m1, 0), 2);
  n.write(p, m1, 0, 3);
  assert.deepEqual([n.read(p, m1, 0), n.cowCopies], [3, 0]);
});

test('before 5.11 a pinned page is reclaimed: a write fault reuses it (reuse_swap_page), a read fault then a write copies it away from the pin on 5.9 (page count), not on 5.7 (mapcount)', () => {
  for (const [rules, staleAfterRead] of [[V5_9_RULES, true], [V5_7_RULES, false]] as const) {
    const { n, p, r } = oneProc(rules, 2);
    n.write(p, r, 0, 1);
    n.write(p, r, 1, 1);
    const pins = [0, 1].map((i) => n.pin(p, r, i, { write: true, longterm: true })!);
    // No maybe-pinned check in shrink_page_list yet: unmapped, kept in the swap cache by the pin.
    assert.deepEqual([n.swapout(p, r, 0), n.swapout(p, r, 1)], [true, true]);
    // Page 0, a write fault: reuse_swap_page counts mappings (none) and swap entries (ours): 1.
    n.write(p, r, 0, 2);
    assert.equal(n.deviceRead(pins[0]!), 2);
    // Page 1, a read fault maps the cached page R/O; the write is do_wp_page's: 5.9 sees the pin's
    // and the swap cache's references (page_count != 1) and copies (the io_uring stale-buffer
    // bug that 5.11 closed in reclaim), 5.7 counts mappings and swap entries only and reuses.
    assert.equal(n.read(p, r, 1), 1);
    n.write(p, r, 1, 3);
    assert.equal(n.deviceRead(pins[1]!), staleAfterRead ? 1 : 3);
  }
});

test('the swap variant of CVE-2020-29374: a child\'s pipe keeps a swapped-in page the parent then reuses up to 5.17 (reuse_swap_page); 5.18 and v6 copy', () => {
  // 5.18: the parent's write fault finds the cached page with the cache's, the pipe's and its own
  // references (3): should_try_to_free_swap wants 2, so it stays cached and read-only, and
  // do_wp_page sees page_count 3 > 1 + PageSwapCache: a copy.
  for (const [rules, leaks] of [[V5_7_RULES, true], [V5_9_RULES, true], [V5_18_RULES, false], [V6_RULES, false]] as const) {
    const { n, p, r } = oneProc(rules, 1);
    n.write(p, r, 0, 1);
    n.swapout(p, r, 0);
    const q = n.fork(p);
    // The child swaps the page in read-only (into the swap cache), takes it into a pipe, unmaps.
    const pipe = n.vmsplice(q, r, 0)!;
    n.munmap(q, r, 0, 1);
    // The parent's write fault on its swap entry: up to 5.17 reuse_swap_page counts no mappings
    // and one swap entry (its own): writable in place, and the child's pipe sees the secret. On
    // v6 the entry lost SWP_EXCLUSIVE at fork and the child's reference counts: a copy.
    n.write(p, r, 0, 2);
    assert.equal(n.pipeRead(pipe), leaks ? 2 : 1);
    assert.equal(n.read(p, r, 0), 2);
  }
});

test('clear_refs (soft-dirty) write-protects every present PTE; the next write of an exclusive page reuses it, a shared one is copied (v6)', () => {
  const { n, p, r } = oneProc(V6_RULES, 3);
  n.write(p, r, 0, 1);
  assert.equal(n.read(p, r, 1), 0); // the zero page, read-only already
  n.write(p, r, 2, 2);
  const q = n.fork(p); // page 2 shared (not exclusive) from here; page 0 too
  n.write(p, r, 0, 3); // parent copies page 0 (the child holds the old one): exclusive, writable
  n.clearSoftdirty(p);
  assert.deepEqual([pte(p, r, 0).writable, pte(p, r, 1).writable, pte(p, r, 2).writable], [false, false, false]);
  const f0 = pte(p, r, 0).frame;
  const before = n.cowCopies;
  // do_wp_page: page 0 is PG_anon_exclusive -> wp_page_reuse, same frame; page 2 is mapped by
  // the child too -> wp_page_copy; the child keeps its values.
  n.write(p, r, 0, 4);
  assert.equal(pte(p, r, 0).frame, f0);
  n.write(p, r, 2, 5);
  assert.equal(n.cowCopies, before + 1);
  assert.deepEqual([n.read(p, r, 0), n.read(p, r, 2), n.read(q, r, 0), n.read(q, r, 2)], [4, 5, 1, 2]);
});

test('clear_refs and a pinned page: 5.11 on it is skipped (pte_is_pinned) and a write stays coherent with the pin; on 5.9 it is write-protected and the write copies it away from the pin (5.7: mapcount reuse, coherent)', () => {
  for (const [rules, coherent, wp] of [[V6_RULES, true, false], [V5_19_RULES, true, false], [{ ...V5_9_RULES, clearRefsSkipsPinned: true }, true, false], [V5_9_RULES, false, true], [V5_7_RULES, true, true]] as const) {
    const { n, p, r } = oneProc(rules, 2);
    n.write(p, r, 0, 1);
    n.write(p, r, 1, 1);
    const pin = n.pin(p, r, 0, { write: true, longterm: false })!; // O_DIRECT-like: the device reads later
    n.clearSoftdirty(p);
    assert.equal(pte(p, r, 0).writable, !wp, `${rules.reuse}: is the pinned PTE write-protected`);
    assert.equal(pte(p, r, 1).writable, false, 'an unpinned page is write-protected on every kernel');
    // The process writes its buffer, the device then reads it through the pin: on 5.9 the
    // write fault saw page_count > 1 (the pin) and copied; the pin holds the old value.
    n.write(p, r, 0, 2);
    assert.equal(n.deviceRead(pin), coherent ? 2 : 1);
    assert.equal(n.read(p, r, 0), 2);
    // The unpinned page: reused everywhere (exclusive, refcount 1, mapcount 1).
    const copies = n.cowCopies;
    n.write(p, r, 1, 3);
    assert.equal(n.cowCopies, copies);
    n.unpin(pin);
  }
});

test('clear_refs on 5.11+ skips only maybe-pinned pages of an mm with MMF_HAS_PINNED: a FOLL_GET reference is write-protected, and v6 reuses it at the write', () => {
  // pte_is_pinned tests MMF_HAS_PINNED first, then folio_maybe_dma_pinned: a gup reference sets
  // neither, so the PTE is write-protected like any other.
  const { n, p, r } = oneProc(V6_RULES, 1);
  n.write(p, r, 0, 1);
  const ref = n.gup(p, r, 0)!; // FOLL_GET: no MMF_HAS_PINNED, refcount 2
  n.clearSoftdirty(p);
  assert.equal(pte(p, r, 0).writable, false);
  // v6: still PG_anon_exclusive, so the write reuses the page and the reference sees it.
  n.write(p, r, 0, 2);
  assert.equal(n.pipeRead(ref), 2);
  n.putRef(ref);
});

/** Two processes' pages of equal content: p writes, forks; q's R/W pin copies the shared page (same value), then unpins. */
function ksmPair(): { n: NaiveKernel; p: NProc; q: NProc; r: NRegion } {
  const { n, p, r } = oneProc(V6_RULES, 1);
  n.madvise(p, r, 0, 1, 'mergeable');
  n.write(p, r, 0, 7);
  const q = n.fork(p); // VM_MERGEABLE inherited, q registered with KSM (ksm_fork)
  const pin = n.pin(q, r, 0, { write: true, longterm: true })!; // FOLL_WRITE: wp_page_copy, value kept
  n.unpin(pin);
  return { n, p, q, r };
}

test('KSM merges two equal anonymous pages of mergeable VMAs into one write-protected KSM page; a write always copies it, even when mapped once (v6)', () => {
  const { n, p, q, r } = ksmPair();
  assert.notEqual(frameOf(p, r, 0), frameOf(q, r, 0));
  // Scan order: p (registered first), then q. p's page goes to the unstable tree; q's page,
  // scanned second, becomes the KSM page and p's PTE is replaced by it (try_to_merge_two_pages).
  const qFrame = frameOf(q, r, 0)!;
  assert.equal(n.ksmMerge() > 0, true);
  const k = frameOf(p, r, 0)!;
  assert.equal(k, qFrame, 'the page scanned second is the KSM page');
  assert.equal(frameOf(q, r, 0), k);
  assert.deepEqual([k.ksm, k.stable, k.exclusive, k.mapcount, k.refcount], [true, true, false, 2, 2]);
  assert.deepEqual([pte(p, r, 0).writable, pte(q, r, 0).writable], [false, false]);
  // A gup reference on the KSM page (FOLL_GET never unshares), then q's write: copied.
  const ref = n.gup(p, r, 0)!;
  n.write(q, r, 0, 8);
  n.exit(q);
  // p now maps k alone, refcount 2 (the reference): still a KSM page, wp_can_reuse_anon_folio
  // refuses KSM pages, so p's write copies and the reference keeps the merged content.
  n.write(p, r, 0, 9);
  assert.notEqual(frameOf(p, r, 0), k);
  assert.deepEqual([n.read(p, r, 0), n.pipeRead(ref)], [9, 7]);
  n.putRef(ref);
});

test('KSM refuses a page with a reference besides its mappings (write_protect_page: mapcount + swap cache != refcount); after put it merges', () => {
  const { n, p, q, r } = ksmPair();
  // q's copy is exclusive: write_protect_page checks it. A pipe's reference refuses the merge.
  const pipe = n.vmsplice(q, r, 0)!;
  assert.equal(n.ksmMerge(), 0);
  assert.notEqual(frameOf(p, r, 0), frameOf(q, r, 0));
  // q writes: its page is exclusive and not KSM, so it is reused and the pipe sees the write.
  n.write(q, r, 0, 8);
  assert.equal(n.pipeRead(pipe), 8);
  n.closePipe(pipe);
  n.write(q, r, 0, 7); // equal again, nothing else holds it
  assert.equal(n.ksmMerge() > 0, true);
  assert.equal(frameOf(p, r, 0), frameOf(q, r, 0));
});

test('KSM and pins: a pinned page is never merged, and an R/O pin on a KSM page unshares it (not PG_anon_exclusive: a copy)', () => {
  const { n, p, q, r } = ksmPair();
  // p's page lost PG_anon_exclusive at fork and is mapped once now: the unshare fault reuses it
  // (refcount 1, marked exclusive), and the pin holds it.
  const pin = n.pin(p, r, 0, { write: false, longterm: true })!;
  assert.equal(n.ksmMerge(), 0, 'the pinned copy is refused; q\'s page has no partner');
  n.unpin(pin);
  n.ksmMerge();
  const k = frameOf(p, r, 0)!;
  assert.equal(k.ksm, true);
  const ro = n.pin(q, r, 0, { write: false, longterm: true })!;
  assert.notEqual(ro.frame, k, 'gup_must_unshare: a KSM page is never exclusive');
  assert.equal(n.deviceRead(ro), 7);
  assert.equal(frameOf(p, r, 0), k);
  n.unpin(ro);
});

test('KSM leaves alone the zero page, pages outside VM_MERGEABLE and a frame shared by fork (not merged with itself)', () => {
  const { n, p, r } = oneProc(V6_RULES, 3);
  n.madvise(p, r, 0, 2, 'mergeable');
  assert.equal(n.read(p, r, 0), 0); // the zero page: not anonymous, skipped
  n.write(p, r, 1, 5);
  n.write(p, r, 2, 5); // same content, but page 2's VMA is not mergeable
  const q = n.fork(p); // page 1's frame now mapped by p and q: the same frame, not a pair
  assert.equal(n.ksmMerge(), 0);
  assert.equal(frameOf(p, r, 0), null);
  assert.equal(frameOf(p, r, 1), frameOf(q, r, 1));
  assert.equal(frameOf(p, r, 1)!.ksm ?? false, false);
});

test('a clean read-only PTE of a shared page skips write_protect_page\'s reference check: KSM takes it with a pipe\'s reference on it (v6)', () => {
  // p writes, swaps out, forks (the swap entry is shared, not exclusive); q swaps in by a read
  // (read-only, clean: no pte_mkdirty) and splices it into a pipe; p's copy elsewhere has equal
  // content. The refcount check is skipped for q's clean R/O PTE of a non-exclusive page.
  const { n, p, r } = oneProc(V6_RULES, 2);
  n.madvise(p, r, 0, 2, 'mergeable');
  n.write(p, r, 0, 4);
  n.swapout(p, r, 0);
  const q = n.fork(p);
  assert.equal(n.read(q, r, 0), 4);
  const e = pte(q, r, 0);
  assert.deepEqual([e.writable, e.dirty, e.frame!.exclusive], [false, false, false]);
  const pipe = n.vmsplice(q, r, 0)!;
  // p's page 1: equal content, written (dirty, exclusive, no reference: the check passes).
  n.write(p, r, 1, 4);
  assert.ok(n.ksmMerge() > 0);
  assert.equal(frameOf(q, r, 0)!.ksm, true);
  assert.equal(n.pipeRead(pipe), 4);
  n.closePipe(pipe);
});

test('KSM\'s unstable-tree pair with a refused partner: the page scanned second was made a KSM page first, and break_cow unshares it again (a read-only copy); the first keeps its reference', () => {
  const { n, p, r } = oneProc(V6_RULES, 2);
  n.madvise(p, r, 0, 2, 'mergeable');
  n.write(p, r, 0, 6);
  n.write(p, r, 1, 6);
  const a = frameOf(p, r, 0)!;
  const b = frameOf(p, r, 1)!;
  const pipe = n.vmsplice(p, r, 0)!; // page 0: refcount 2, mapcount 1, exclusive: refused
  // try_to_merge_two_pages: page 1 (scanned second) write-protected and made PageKsm; page 0
  // refused by write_protect_page; break_cow on page 1: an unshare fault copies the KSM page.
  assert.equal(n.ksmMerge(), 0);
  assert.equal(frameOf(p, r, 0), a);
  assert.equal(pte(p, r, 0).writable, true, 'the refused page is left as it was (write_protect_page restores the PTE)');
  const b2 = frameOf(p, r, 1)!;
  assert.notEqual(b2, b);
  assert.deepEqual([b2.ksm ?? false, b2.exclusive, pte(p, r, 1).writable, b.refcount], [false, true, false, 0]);
  // The copy is exclusive: the next write reuses it; the pipe still sees page 0.
  const copies = n.cowCopies;
  n.write(p, r, 1, 8);
  n.write(p, r, 0, 9);
  assert.deepEqual([n.cowCopies, frameOf(p, r, 1), n.pipeRead(pipe)], [copies, b2, 9]);
  n.closePipe(pipe);
});

// 5.18's swap rules ("mm: COW fixes part 1", between 5.17's reuse_swap_page and 5.19's
// SWP_EXCLUSIVE): do_swap_page maps the page writable on a write fault only if, after swap_free
// and try_to_free_swap (tried when the fault is a write, the page not KSM and page_count == 2:
// the cache's and ours), page_count == 1; do_wp_page copies when page_count > 1 + PageSwapCache,
// else frees the swap cache (try_to_free_swap: no swap entry refers to the slot) and reuses the
// page if ours is then the only reference.

test('5.18: a page swapped in by a read fault is mapped read-only and stays in the swap cache; the write frees the cache and reuses it (5.9-5.17 copy it: page_count 2)', () => {
  for (const [rules, copies] of [[V5_18_RULES, 0], [V5_9_RULES, 1]] as const) {
    const { n, p, r } = oneProc(rules, 1);
    n.write(p, r, 0, 1);
    assert.equal(n.swapout(p, r, 0), true);
    // No SWP_EXCLUSIVE before 5.19; nothing else held the frame: freed with the swap cache's reference.
    assert.deepEqual([swpOf(p, r, 0)!.exclusive, swpOf(p, r, 0)!.slot.cache], [false, null]);
    // Read fault: a new frame in the swap cache (its reference) and mapped (ours); swap_free
    // leaves the slot with no entry; a read fault never tries to free the cache here.
    assert.equal(n.read(p, r, 0), 1);
    const f = frameOf(p, r, 0)!;
    assert.deepEqual([f.refcount, f.mapcount, f.swapcache !== null, pte(p, r, 0).writable], [2, 1, true, false]);
    // Write: 5.18's do_wp_page: 2 <= 1 + 1, try_to_free_swap frees the unused slot's cache,
    // page_count 1: wp_page_reuse. 5.9's: page_count 2 != 1: a copy.
    n.write(p, r, 0, 2);
    assert.equal(n.cowCopies, copies);
    assert.equal(frameOf(p, r, 0) === f, copies === 0);
    assert.equal(n.read(p, r, 0), 2);
    assert.equal(p.minflt, 3, 'the first write, the read, and the write to the read-only PTE');
  }
});

test('5.18: a write fault on a swap entry of a page mapped once frees the swap cache and maps it writable at once', () => {
  const { n, p, r } = oneProc(V5_18_RULES, 1);
  n.write(p, r, 0, 1);
  n.swapout(p, r, 0);
  // swap_free: the slot has no entry left; should_try_to_free_swap: a write, not KSM, page_count
  // 2 (cache + ours) -> try_to_free_swap; page_count 1: maybe_mkwrite(pte_mkdirty()).
  n.write(p, r, 0, 2);
  const f = frameOf(p, r, 0)!;
  assert.deepEqual([f.refcount, f.mapcount, f.swapcache, pte(p, r, 0).writable, pte(p, r, 0).dirty], [1, 1, null, true, true]);
  assert.deepEqual([n.cowCopies, n.reuses, p.minflt], [0, 0, 2]);
});

test('5.18: a swap entry shared by fork: the first writer cannot free the cache (the other entry) and copies; the last one frees it and reuses', () => {
  const { n, p, r } = oneProc(V5_18_RULES, 1);
  n.write(p, r, 0, 1);
  n.swapout(p, r, 0);
  const q = n.fork(p);
  const slot = swpOf(p, r, 0)!.slot;
  assert.equal(slot.count, 2);
  // P's write: cached frame + ours = 2, but Q's entry keeps the slot in use (try_to_free_swap
  // refuses: page_swapped): mapped read-only, then do_wp_page: 2 <= 1 + 1, the slot still
  // used, page_count 2 != 1: a copy.
  n.write(p, r, 0, 2);
  const cached = slot.cache!;
  assert.deepEqual([n.cowCopies, cached.refcount, cached.mapcount], [1, 1, 0]);
  // Q reads the old value from the cache, then writes: no entry left, the cache is freed, reused.
  assert.equal(n.read(q, r, 0), 1);
  n.write(q, r, 0, 3);
  assert.deepEqual([frameOf(q, r, 0), n.cowCopies, cached.swapcache], [cached, 1, null]);
  assert.deepEqual([n.read(p, r, 0), n.read(q, r, 0)], [2, 3]);
});

test('5.18: a pin keeps the reclaimed page out of swap (5.11); a FOLL_GET reference keeps it in the swap cache, and the write fault copies away from it', () => {
  const { n, p, r } = oneProc(V5_18_RULES, 2);
  n.write(p, r, 0, 1);
  n.write(p, r, 1, 1);
  const pin = n.pin(p, r, 0, { write: true, longterm: true })!;
  assert.equal(n.swapout(p, r, 0), false, 'folio_maybe_dma_pinned: kept (feb889fb40fa, 5.11)');
  const ref = n.gup(p, r, 1)!;
  assert.equal(n.swapout(p, r, 1), true);
  const f = ref.frame!;
  // Unmapped; the reference and the swap cache hold it (refcount 2).
  assert.deepEqual([f.refcount, f.mapcount, f.swapcache !== null], [2, 0, true]);
  // The write fault finds it cached: cache + reference + ours = 3, not 2: the cache stays, the
  // PTE read-only; do_wp_page: 3 > 1 + 1: a copy. The reference keeps the old value.
  n.write(p, r, 1, 2);
  assert.notEqual(frameOf(p, r, 1), f);
  assert.deepEqual([n.pipeRead(ref), n.read(p, r, 1), n.cowCopies], [1, 2, 1]);
  n.putRef(ref);
  n.unpin(pin);
});

// KSM before 5.19: no PG_anon_exclusive, so write_protect_page checks references only for a
// writable or dirty PTE (as after 5.19 for a non-exclusive page); do_wp_page copies a KSM page
// from 5.9 ("PageKsm() doesn't necessarily raise the page refcount"), 5.1-5.8 reuse a KSM page
// with a stable node and no other reference (reuse_ksm_page); GUP never unshares (an R/O pin
// holds the KSM page itself); break_cow faults with FAULT_FLAG_WRITE up to 6.1 (6cce3314b928,
// 6.2, made it FAULT_FLAG_UNSHARE).

/** One process whose two mergeable pages hold 7, merged into one KSM page (page 1, scanned second). */
function ksmOnce(rules: NaiveOptions): { n: NaiveKernel; p: NProc; r: NRegion; k: NFrame } {
  const { n, p, r } = oneProc(rules, 2);
  n.madvise(p, r, 0, 2, 'mergeable');
  n.write(p, r, 0, 7);
  n.write(p, r, 1, 7);
  const second = frameOf(p, r, 1)!;
  assert.equal(n.ksmMerge(), 2, 'one KSM page made, one page replaced');
  const k = frameOf(p, r, 0)!;
  assert.equal(k, second, 'try_to_merge_two_pages: the page scanned second is the KSM page');
  assert.equal(frameOf(p, r, 1), k);
  assert.deepEqual([k.ksm, k.stable, k.exclusive, k.mapcount, k.refcount], [true, true, false, 2, 2]);
  return { n, p, r, k };
}

test('KSM before 5.19: a write to a KSM page copies it on 5.9 to 5.18 even when mapped once; 5.7 reuses it then (reuse_ksm_page) and it stops being a KSM page', () => {
  for (const [rules, reusedOnce] of [[V5_9_RULES, false], [V5_18_RULES, false], [V5_7_RULES, true]] as const) {
    const { n, p, r, k } = ksmOnce(rules);
    // Mapped twice: copied on every kernel (5.7: page_count 2 != 1).
    n.write(p, r, 1, 8);
    assert.deepEqual([n.cowCopies, k.mapcount, k.refcount], [1, 1, 1]);
    n.write(p, r, 0, 9);
    if (reusedOnce) {
      // 5.7: not in the swap cache, a stable node, page_ref_freeze(page, 1) succeeds: reused
      // in place, page_move_anon_rmap makes it an ordinary anonymous page.
      assert.deepEqual([frameOf(p, r, 0), k.ksm, n.cowCopies, n.reuses], [k, false, 1, 1]);
    } else {
      assert.notEqual(frameOf(p, r, 0), k);
      assert.deepEqual([n.cowCopies, n.frames.has(k)], [2, false]);
    }
    assert.deepEqual([n.read(p, r, 0), n.read(p, r, 1), pte(p, r, 0).writable], [9, 8, true]);
  }
});

test('KSM before 5.19: write_protect_page refuses a dirty page with a FOLL_GET reference, and an R/O pin of a KSM page pins the KSM page itself (no unsharing)', () => {
  for (const rules of [V5_9_RULES, V5_7_RULES]) {
    const { n, p, r } = oneProc(rules, 3);
    n.madvise(p, r, 0, 3, 'mergeable');
    n.write(p, r, 0, 5);
    n.write(p, r, 1, 5);
    n.write(p, r, 2, 5);
    // Page 2: writable and dirty, mapcount 1 + no swap cache != refcount 2: refused (and left
    // writable) when it meets the stable KSM page that pages 0 and 1 made (page 1, scanned
    // second). (Were it page 0, the unstable tree's first page of that content, every later
    // equal page would pair with it and be broken again: nothing would merge.)
    const ref = n.gup(p, r, 2)!;
    const second = frameOf(p, r, 1)!;
    assert.equal(n.ksmMerge(), 2);
    const k = frameOf(p, r, 0)!;
    assert.deepEqual([k, k.ksm, frameOf(p, r, 2) === ref.frame, pte(p, r, 2).writable], [second, true, true, true]);
    // No gup_must_unshare before 5.19: the R/O pin takes the KSM page (refcount 2 + the bias).
    const pin = n.pin(p, r, 0, { write: false, longterm: true })!;
    assert.equal(pin.frame, k);
    assert.equal(k.refcount, 2 + GUP_PIN_COUNTING_BIAS);
    // The process's write copies (5.9: PageKsm; 5.7: page_count != 1): the pin keeps the merged value.
    n.write(p, r, 0, 6);
    assert.deepEqual([n.deviceRead(pin), n.read(p, r, 0), n.read(p, r, 1)], [5, 6, 5]);
    n.unpin(pin);
    n.putRef(ref);
  }
});

test('KSM\'s break_cow up to 6.1 is a write fault: the scanned page gets a writable, dirty copy and the next write takes no fault (v6: a read-only copy, one more fault)', () => {
  for (const [rules, mode] of [[V5_9_RULES, 'write'], [V5_7_RULES, 'write'], [V5_19_RULES, 'write'], [V6_RULES, 'unshare']] as const) {
    const { n, p, r } = oneProc(rules, 2);
    n.madvise(p, r, 0, 2, 'mergeable');
    n.write(p, r, 0, 3);
    n.write(p, r, 1, 3);
    const b = frameOf(p, r, 1)!;
    const pin = n.pin(p, r, 0, { write: true, longterm: true })!; // page 0 (the tree page): refused
    assert.equal(n.ksmMerge(), 0);
    // Page 1 was made PageKsm, then break_ksm faulted on it: do_wp_page always copies it (a KSM
    // page; break_ksm's own reference; on 5.7 no stable node for reuse_ksm_page).
    const c = frameOf(p, r, 1)!;
    assert.notEqual(c, b);
    assert.deepEqual([c.ksm ?? false, n.frames.has(b)], [false, false]);
    assert.deepEqual([pte(p, r, 1).writable, pte(p, r, 1).dirty], [mode === 'write', mode === 'write']);
    assert.equal(p.minflt, 2, 'ksmd\'s fault is not the process\'s');
    n.write(p, r, 1, 4);
    assert.equal(p.minflt, mode === 'write' ? 2 : 3);
    assert.deepEqual([frameOf(p, r, 1), n.read(p, r, 1), n.deviceRead(pin)], [c, 4, 3]);
    n.unpin(pin);
  }
});

// KSM and swap: reclaim unmaps a KSM page mapped once through its stable node (rmap_walk_ksm);
// swapped out and freed it comes back as an ordinary page; kept in the swap cache by a reference
// it comes back as the KSM page itself (ksm_might_need_to_copy: a stable KSM page needs no copy),
// read-only: do_swap_page never reuses or marks a KSM page exclusive, and a write copies it.

test('KSM and swap: a KSM page mapped once is swapped out and freed; the swap-in is an ordinary page, reused on write (v6, 5.18, 5.9, 5.7)', () => {
  for (const rules of [V6_RULES, V5_18_RULES, V5_9_RULES, V5_7_RULES]) {
    const { n, p, r, k } = ksmOnce(rules);
    n.write(p, r, 1, 8); // page 1 copies: k mapped once, refcount 1
    assert.equal(n.swapout(p, r, 0), true);
    // No SWP_EXCLUSIVE (a KSM page is never exclusive); the swap cache's reference was the last.
    assert.deepEqual([swpOf(p, r, 0)!.exclusive, n.frames.has(k)], [false, false]);
    const copies = n.cowCopies;
    // A write fault: a new page read from the slot (not KSM), the only user of the slot: v6 and
    // 5.18 free the swap cache and map it writable, 5.9 and 5.7 by reuse_swap_page (mapcount 0 +
    // our entry 1).
    n.write(p, r, 0, 9);
    const f = frameOf(p, r, 0)!;
    assert.deepEqual([f.ksm ?? false, f.swapcache, pte(p, r, 0).writable, n.cowCopies], [false, null, true, copies]);
    assert.deepEqual([n.read(p, r, 0), n.read(p, r, 1)], [9, 8]);
  }
});

test('KSM and swap: a pipe keeps a swapped-out KSM page in the swap cache; the swap-in maps the KSM page itself read-only, a write copies it, and it stays in the stable tree, but takes no new mapping once no rmap item is left (v6; 5.18, 5.9, 5.7: the page\'s own old item still counts)', () => {
  for (const rules of [V6_RULES, V5_18_RULES, V5_9_RULES, V5_7_RULES]) {
    const { n, p, r, k } = ksmOnce(rules);
    n.write(p, r, 1, 8);
    const pipe = n.vmsplice(p, r, 0)!; // FOLL_GET: no unsharing; the pipe holds k
    assert.equal(pipe.frame, k);
    assert.equal(n.swapout(p, r, 0), true);
    // Unmapped; the swap cache and the pipe hold it: still a KSM page, still in the stable tree.
    assert.deepEqual([k.mapcount, k.refcount, k.swapcache !== null, k.ksm, k.stable], [0, 2, true, true, true]);
    // A write fault: the cached KSM page (ksm_might_need_to_copy: no copy for a stable KSM page),
    // mapped read-only (never writable or exclusive at swap-in); do_wp_page copies it.
    const copies = n.cowCopies;
    n.write(p, r, 0, 9);
    assert.notEqual(frameOf(p, r, 0), k);
    assert.equal(n.cowCopies, copies + 1);
    assert.deepEqual([n.pipeRead(pipe), n.read(p, r, 0)], [7, 9]);
    // Page 1 written back to 7: from 6.11 it does not merge into k, ksmd drops the rmap items of
    // pages 0 and 1 (other pages there now) before its stable_tree_search for page 1, and a
    // stable node with no rmap item is no sharing candidate (is_page_sharing_candidate:
    // rmap_hlist_len 0). Up to 6.10 the search comes first, while page 1's own old item still
    // hangs on k: k is a candidate, and page 1 merges back into it.
    n.write(p, r, 1, 7);
    const one = frameOf(p, r, 1);
    const back = rules.ksmChecksumFirst !== true;
    assert.equal(n.ksmMerge(), back ? 1 : 0);
    assert.equal(frameOf(p, r, 1), back ? k : one);
    assert.deepEqual([k.mapcount, k.refcount, k.ksm, k.stable], back ? [1, 3, true, true] : [0, 2, true, true]);
    n.closePipe(pipe);
  }
});

// is_page_sharing_candidate(): stable_tree_search merges a page only into a KSM page whose stable
// node an rmap item still hangs on ("at least one mapping still exists, otherwise there's no much
// point to merge and share with this stable_node, as the underlying tree_page of the other sharer
// is going to be freed soon"). ksmd drops an address's item when it scans another page there
// (cmp_and_merge_page: remove_rmap_item_from_tree) or passes it with none (get_next_rmap_item).
test('KSM: a KSM page mapped nowhere (a GUP reference keeps it) takes no new mapping once ksmd dropped its rmap items; equal pages make a new KSM page (v6, 5.9, 5.7)', () => {
  for (const rules of [V6_RULES, V5_9_RULES, V5_7_RULES]) {
    const { n, p, r, k } = mergedPair(rules, 4, 7);
    const ref = n.gup(p, r, 0)!; // FOLL_GET: no unsharing; k stays held
    n.write(p, r, 0, 8);
    n.write(p, r, 1, 9);
    assert.deepEqual([k.mapcount, k.refcount, k.ksm, k.stable], [0, 1, true, true]);
    // Pages 2 and 3 get k's content: ksmd has passed pages 0 and 1 (their items gone) before it
    // searches the stable tree for page 2, so page 2 goes to the unstable tree, and page 3 merges
    // with it into a new KSM page (a dup of k's content).
    n.write(p, r, 2, 7);
    n.write(p, r, 3, 7);
    assert.equal(n.ksmMerge(), 2, 'a new KSM page made, one page replaced');
    const k2 = frameOf(p, r, 2)!;
    assert.notEqual(k2, k);
    assert.equal(frameOf(p, r, 3), k2);
    assert.deepEqual([k2.ksm, k2.stable, k2.mapcount, k.mapcount, k.refcount], [true, true, 2, 0, 1]);
    n.putRef(ref);
  }
});

// A fork's child maps its parent's KSM page with no rmap item (ksm_fork copies none); ksmd
// gives it one when it meets the page there ("ksm page forked": stable_tree_search finds the
// page itself, stable_tree_append). Scanned after the parent, the child's items come too late
// for the parent's equal page in that pass; ksmd scans on, and the next pass merges it.
test('KSM: a KSM page mapped only by a fork\'s child takes the parent\'s equal page once ksmd has given the child\'s mappings rmap items (the next pass) (v6, 5.9, 5.7)', () => {
  for (const rules of [V6_RULES, V5_9_RULES, V5_7_RULES]) {
    const { n, p, r, k } = mergedPair(rules, 3, 7);
    const q = n.fork(p);
    n.write(p, r, 0, 8);
    n.write(p, r, 1, 9);
    n.write(p, r, 2, 7);
    assert.deepEqual([frameOf(q, r, 0), frameOf(q, r, 1), k.mapcount], [k, k, 2]);
    assert.equal(n.ksmMerge(), 1);
    assert.equal(frameOf(p, r, 2), k);
    assert.deepEqual([k.mapcount, k.refcount], [3, 3]);
  }
});

// ksmd's checksum delay (cmp_and_merge_page): a page that is not a KSM page enters the unstable
// tree only when its checksum equals its rmap item's oldchecksum, the value remembered at its
// last scan; a new item's (0) matches no page, so a page new to ksmd pairs with none in that pass.
// From 6.11 (d58a361b0350) the comparison comes first and such a page searches no tree at all;
// up to 6.10 only after the stable tree search, which still counts the page's old item.
test('KSM\'s checksum delay: a page new to ksmd waits a pass, by when a fork\'s scan has given the KSM page its parent left items again, so new equal pages merge into it, not into a second KSM page (v6, 6.2, 5.9, 5.7)', () => {
  for (const rules of [V6_RULES, V6_2_RULES, V5_9_RULES, V5_7_RULES]) {
    const { n, p, r, k } = mergedPair(rules, 4, 1);
    assert.deepEqual([...p.ksmChecksums!], [[r.base, 1], [r.base + 1, 1]], 'both checksums remembered before they paired');
    const q = n.fork(p);
    n.madvise(p, r, 0, 2, 'dontneed');
    n.write(p, r, 2, 1);
    n.write(p, r, 3, 1);
    // Pass 1: p's items on k go (no page at a[0..1]: their checksums too), a[2..3] have their
    // checksums remembered, q's scan gives k items. Pass 2: a[2..3] find k in the stable tree.
    assert.equal(n.ksmMerge(), 2);
    assert.deepEqual([frameOf(p, r, 2), frameOf(p, r, 3), frameOf(q, r, 0)], [k, k, k]);
    assert.deepEqual([...p.ksmChecksums!].sort((a, b) => a[0] - b[0]), [[r.base + 2, 1], [r.base + 3, 1]]);
  }
});

test('KSM\'s checksum order: up to 6.10 the stable tree search still counts the item a page\'s address left on a KSM page, so the page merges back into it; from 6.11 the item goes first and the page pairs into a second KSM page (6.2, 5.9 vs v6)', () => {
  // v6 with smart scan off (smart_scan 0), as scenarios/basic/ksm-stable-search-counts-own-item:
  // with it, whether a[2] (aged, left out of 8 passes in 9) is compared in the second merge's first
  // pass is where ksmd stopped in the first.
  for (const [rules, back] of [[V6_2_RULES, true], [V5_9_RULES, true], [{ ...V6_RULES, ksmSmartScan: false }, false]] as const) {
    const { n, p, r } = oneProc(rules, 3);
    n.madvise(p, r, 0, 3, 'mergeable');
    n.write(p, r, 0, 1);
    n.write(p, r, 1, 1);
    n.write(p, r, 2, 1);
    const ref = n.gup(p, r, 2)!; // write_protect_page refuses a[2]
    n.ksmMerge();
    const k = frameOf(p, r, 0)!;
    assert.deepEqual([frameOf(p, r, 1), k.ksm, frameOf(p, r, 2) === k], [k, true, false]);
    n.putRef(ref);
    const q = n.fork(p);
    n.write(p, r, 0, 2);
    n.write(p, r, 1, 1); // a copy: its item still on k
    n.ksmMerge();
    assert.equal(frameOf(p, r, 1) === k, back);
    assert.equal(frameOf(p, r, 2) === k, back);
    assert.equal(frameOf(q, r, 1), k);
    if (!back) assert.equal(frameOf(p, r, 1), frameOf(p, r, 2), 'a[1] and a[2] paired into a second KSM page');
  }
});

// Device-exclusive entries (make_device_exclusive; 5.14-6.14 and the 6.15 rework).

const devx = (p: NProc, r: NRegion, i: number) => p.pages.get(pageKey(r, i))!.devx ?? null;

test('device-exclusive on v6 (6.15): the PTE becomes an entry, mapcount kept; the atomic writes the frame; a CPU read revokes the grant and maps the page again, writable', () => {
  const { n, p, r } = oneProc(V6_RULES, 1);
  n.write(p, r, 0, 1);
  const f = frameOf(p, r, 0)!;
  const g = n.makeDeviceExclusive(p, r, 0);
  // GUP(FOLL_GET|FOLL_WRITE) finds the writable exclusive PTE: no fault; its reference is put
  // once the entry is set; 6.15 keeps the mapping counted (no rmap change); the entry is no PTE.
  assert.deepEqual([g.revoked, g.frame, devx(p, r, 0)?.frame], [false, f, f]);
  assert.deepEqual([f.mapcount, f.refcount, p.rss], [1, 1, 1]);
  assert.equal(p.pages.get(pageKey(r, 0))!.pte, null);
  assert.equal(n.deviceAtomic(g, 2), 'ok');
  assert.equal(n.grantRead(g), 2, 'the device reads the frame it holds');
  const faults = p.minflt;
  // do_swap_page -> remove_device_exclusive_entry: MMU_NOTIFY_CLEAR revokes the grant, then
  // restore_exclusive_pte: VM_WRITE and PG_anon_exclusive (can_change_pte_writable): writable.
  assert.equal(n.read(p, r, 0), 2);
  assert.equal(p.minflt, faults + 1);
  assert.deepEqual([g.revoked, frameOf(p, r, 0), pte(p, r, 0).writable, f.mapcount], [true, f, true, 1]);
  assert.equal(n.deviceAtomic(g, 3), 'revoked', 'the driver must fault the page again');
  // A revoked grant's read is hmm_range_fault of the process's page now.
  n.write(p, r, 0, 4);
  assert.equal(n.grantRead(g), 4);
});

test('device-exclusive under 5.14 rules (v6.2): the entry drops the mapcount and remembers the PTE was writable; restore counts the mapping again and maps it writable', () => {
  const { n, p, r } = oneProc(V6_2_RULES, 1);
  n.write(p, r, 0, 1);
  const f = frameOf(p, r, 0)!;
  const g = n.makeDeviceExclusive(p, r, 0);
  // make_device_exclusive_range: the rmap walk finds one mapping (writable: the target), each
  // page_remove_rmap -> mapcount 0, so it succeeds; the entry keeps the mapping's reference.
  assert.deepEqual([g.revoked, f.mapcount, f.refcount, devx(p, r, 0)?.writable], [false, 0, 1, true]);
  n.write(p, r, 0, 5);
  // restore_exclusive_pte: page_add_anon_rmap, maybe_mkwrite of the writable kind: no further fault.
  assert.deepEqual([g.revoked, f.mapcount, frameOf(p, r, 0), pte(p, r, 0).writable, n.cowCopies], [true, 1, f, true, 0]);
  assert.equal(n.read(p, r, 0), 5);
});

test('device-exclusive of a COW-shared page breaks COW first (the GUP is FOLL_WRITE): the device holds the process\'s own copy; the other process keeps the old data', () => {
  for (const rules of [V6_RULES, V6_2_RULES, V5_19_RULES]) {
    const { n, p, r } = oneProc(rules, 1);
    n.write(p, r, 0, 1);
    const q = n.fork(p);
    const shared = frameOf(p, r, 0)!;
    const g = n.makeDeviceExclusive(p, r, 0);
    // do_wp_page: fork cleared PG_anon_exclusive and Q maps it too (refcount 2): a copy for P.
    assert.equal(n.cowCopies, 1);
    assert.notEqual(g.frame, shared);
    assert.equal(n.deviceAtomic(g, 2), 'ok');
    assert.deepEqual([n.read(q, r, 0), n.read(p, r, 0)], [1, 2]);
  }
});

test('fork restores a device-exclusive entry in the parent first and shares the page COW (hmm-tests exclusive_cow); the device loses its grant; each side then copies on its own', () => {
  for (const rules of [V6_RULES, V6_2_RULES]) {
    const { n, p, r } = oneProc(rules, 1);
    n.write(p, r, 0, 1);
    const g = n.makeDeviceExclusive(p, r, 0);
    n.deviceAtomic(g, 2);
    const q = n.fork(p);
    // copy_page_range of a COW mapping: the MMU notifier revokes the grant; copy_nonpresent_pte:
    // try_restore_exclusive_pte, then copy_present_pte shares the page, both read-only, not PAE.
    const f = g.frame!;
    assert.deepEqual([g.revoked, frameOf(p, r, 0), frameOf(q, r, 0), f.mapcount, f.exclusive], [true, f, f, 2, false]);
    assert.deepEqual([pte(p, r, 0).writable, pte(q, r, 0).writable], [false, false]);
    assert.deepEqual([n.read(p, r, 0), n.read(q, r, 0)], [2, 2]);
    n.write(q, r, 0, 3);
    n.write(p, r, 0, 4);
    // Q copies (refcount 2); then P is the only mapper: reused (refcount 1).
    assert.deepEqual([n.cowCopies, n.reuses, frameOf(p, r, 0)], [1, 1, f]);
    assert.deepEqual([n.read(p, r, 0), n.read(q, r, 0)], [4, 3]);
    assert.equal(n.deviceAtomic(g, 5), 'revoked');
  }
});

test('the device\'s atomic is denied where the mapping is not writable or gone; mprotect to the protection it has already keeps the grant (mprotect_fixup changes nothing); dontneed revokes it', () => {
  const { n, p, r } = oneProc(V6_RULES, 2);
  n.write(p, r, 0, 1);
  n.write(p, r, 1, 1);
  const g = n.makeDeviceExclusive(p, r, 0);
  n.mprotect(p, r, 0, 1, 'rw'); // newflags == oldflags: no change_protection, no notifier
  assert.equal(n.deviceAtomic(g, 2), 'ok');
  n.mprotect(p, r, 0, 1, 'ro');
  // hmm-tests exclusive_mprotect: the device cannot write through a read-only VMA (-EPERM).
  assert.equal(n.deviceAtomic(g, 3), 'denied');
  n.mprotect(p, r, 0, 1, 'rw');
  assert.equal(n.deviceAtomic(g, 3), 'revoked', 'mprotect ro told the device (PROTECTION_VMA)');
  const h = n.makeDeviceExclusive(p, r, 1);
  n.madvise(p, r, 1, 2, 'dontneed');
  // zap: the notifier revokes; the entry's reference goes and the frame is freed.
  assert.deepEqual([h.revoked, n.frames.has(h.frame!), p.rss], [true, false, 1]);
  assert.equal(n.grantRead(h), 0, 'hmm_range_fault of the zapped page: the zero page');
  n.munmap(p, r, 0, 1);
  assert.equal(n.deviceAtomic(g, 4), 'denied');
  n.exit(p);
  assert.equal(n.deviceAtomic(h, 5), 'denied');
  assert.equal(n.grantRead(g), 0);
});

test('make_device_exclusive fails on a read-only mapping (GUP FOLL_WRITE: EFAULT): the grant is revoked from the start; 5.14 rules: mprotect of a writable entry makes it readable, so the restored PTE is read-only', () => {
  const { n, p, r } = oneProc(V6_2_RULES, 2);
  n.write(p, r, 0, 1);
  n.mprotect(p, r, 0, 1, 'ro');
  const g = n.makeDeviceExclusive(p, r, 0);
  assert.deepEqual([g.revoked, g.frame, devx(p, r, 0)], [true, null, null]);
  n.write(p, r, 1, 1);
  const h = n.makeDeviceExclusive(p, r, 1);
  // change_pte_range: is_writable_device_exclusive_entry -> make_readable_device_exclusive_entry.
  n.mprotect(p, r, 1, 2, 'ro');
  n.mprotect(p, r, 1, 2, 'rw');
  assert.equal(devx(p, r, 1)!.writable, false);
  n.read(p, r, 1);
  assert.equal(pte(p, r, 1).writable, false, 'restore_exclusive_pte: a readable entry maps the page read-only');
  n.write(p, r, 1, 2);
  // do_wp_page: PG_anon_exclusive: reused, no copy.
  assert.deepEqual([frameOf(p, r, 1), n.cowCopies], [h.frame, 0]);
});

// userfaultfd write-protect.

test('uffd-wp: protect sets the bit and write-protects; a write goes to the monitor, which un-protects the page; from 6.3 that maps an exclusive page writable at once, before a do_wp_page reuses it', () => {
  for (const [rules, writableAtOnce] of [[V6_RULES, true], [V6_2_RULES, false]] as const) {
    const { n, p, r } = oneProc(rules, 2);
    n.write(p, r, 0, 1);
    assert.equal(n.uffdWriteprotect(p, r, 0, 1, true), false, 'ENOENT: not registered');
    assert.equal(n.uffdRegister(p, r), true);
    assert.equal(n.uffdWriteprotect(p, r, 0, 2, true), true);
    // Page 1 was never touched: an anonymous none PTE gets no marker, so it carries no bit.
    assert.deepEqual([n.uffdWp(p, r, 0), pte(p, r, 0).writable, n.uffdWp(p, r, 1)], [true, false, false]);
    const f = frameOf(p, r, 0)!;
    n.write(p, r, 0, 2);
    // handle_userfault: the monitor's UFFDIO_WRITEPROTECT resolve clears the bit; 6.3's
    // MM_CP_TRY_CHANGE_WRITABLE maps the PAE page writable; before, the retried write reuses it.
    assert.deepEqual([p.uffdFaults, n.uffdWp(p, r, 0), frameOf(p, r, 0), n.cowCopies], [1, false, f, 0]);
    assert.equal(n.reuses, writableAtOnce ? 0 : 1);
    assert.equal(n.read(p, r, 0), 2);
    n.write(p, r, 1, 3);
    assert.equal(p.uffdFaults, 1, 'a none PTE is not protected: do_anonymous_page maps it writable');
  }
  // A range with a hole cannot be registered (EINVAL).
  const { n, p, r } = oneProc(V6_RULES, 2);
  n.munmap(p, r, 1, 2);
  assert.equal(n.uffdRegister(p, r), false);
});

test('uffd-wp: un-protecting a page never protected maps it read-only before 6.3 (pte_modify with the private PAGE_COPY), so its next write faults and do_wp_page reuses it; 6.3 leaves it writable', () => {
  for (const [rules, writable] of [[V6_RULES, true], [V6_2_RULES, false], [V5_19_RULES, false], [V5_9_RULES, false], [V5_7_RULES, false]] as const) {
    const { n, p, r } = oneProc(rules, 2);
    n.write(p, r, 0, 1);
    n.write(p, r, 1, 1);
    n.uffdRegister(p, r);
    assert.equal(n.uffdWriteprotect(p, r, 0, 1, true), true);
    assert.equal(pte(p, r, 1).writable, true);
    assert.equal(n.uffdWriteprotect(p, r, 0, 2, false), true);
    assert.deepEqual([pte(p, r, 0).writable, pte(p, r, 1).writable], [writable, writable]);
    const f = frameOf(p, r, 1);
    n.write(p, r, 1, 2);
    assert.deepEqual([frameOf(p, r, 1), n.reuses, n.cowCopies, p.uffdFaults], [f, writable ? 0 : 1, 0, 0]);
    assert.equal(n.read(p, r, 1), 2);
  }
});

test('uffd-wp and mprotect ro then rw in a private mapping: the protected PTE stays read-only with its bit on every rule set (PAGE_COPY has no write bit; 6.0\'s can_change_pte_writable refuses a uffd-wp PTE), so its write reaches the monitor; 51d3d5eb74ff\'s writenotify (uffdWpWritenotify) concerns shared mappings only, which this model lacks', () => {
  for (const rules of [V6_RULES, V6_2_RULES, V5_19_RULES, V5_9_RULES]) {
    const { n, p, r } = oneProc(rules, 2);
    n.write(p, r, 0, 1);
    n.write(p, r, 1, 1);
    n.uffdRegister(p, r);
    assert.equal(n.uffdWriteprotect(p, r, 0, 1, true), true);
    n.mprotect(p, r, 0, 2, 'ro');
    n.mprotect(p, r, 0, 2, 'rw');
    assert.deepEqual([pte(p, r, 0).writable, n.uffdWp(p, r, 0), n.uffdWp(p, r, 1)], [false, true, false]);
    // 6.0 on (mprotectUpgrade): the exclusive page without the bit is made writable again.
    assert.equal(pte(p, r, 1).writable, rules.mprotectUpgrade);
    const f = frameOf(p, r, 0);
    n.write(p, r, 0, 2);
    assert.deepEqual([p.uffdFaults, frameOf(p, r, 0), n.cowCopies, n.read(p, r, 0)], [1, f, 0, 2]);
  }
});

test('uffd-wp and fork without the fork event: the child is not registered; 5.7-5.13 keep the bit by the parent\'s VMA (a stale bit that no longer traps), 5.14 on drop it by the child\'s', () => {
  for (const [rules, stale] of [[V5_9_RULES, true], [V5_7_RULES, true], [V6_RULES, false], [V5_19_RULES, false]] as const) {
    const { n, p, r } = oneProc(rules, 1);
    n.write(p, r, 0, 1);
    n.uffdRegister(p, r);
    n.uffdWriteprotect(p, r, 0, 1, true);
    const q = n.fork(p);
    assert.deepEqual([q.pages.get(pageKey(r, 0))!.uffd, q.uffdForkEvent], [false, false]);
    assert.equal(n.uffdWp(q, r, 0), stale, `${rules.uffdWpForkVma}`);
    assert.equal(n.uffdWp(p, r, 0), true, 'the parent keeps its bit');
    // Q's VMA is not registered: userfaultfd_pte_wp is false, the write just copies (mapcount 2).
    n.write(q, r, 0, 2);
    assert.deepEqual([q.uffdFaults, n.cowCopies, n.uffdWp(q, r, 0)], [0, 1, false]);
    // P's write still goes to its monitor.
    n.write(p, r, 0, 3);
    assert.deepEqual([p.uffdFaults, n.read(p, r, 0), n.read(q, r, 0)], [1, 3, 2]);
  }
});

test('uffd-wp and fork with the fork event: the child is registered with the event too, keeps the bit, and its write goes to the monitor; a pinned page\'s early COW copy keeps the bit from 5.14, is writable without it before', () => {
  for (const [rules, copyKeeps] of [[V6_RULES, true], [V5_9_RULES, false]] as const) {
    const { n, p, r } = oneProc(rules, 2);
    n.write(p, r, 0, 1);
    n.write(p, r, 1, 1);
    n.uffdForkEventOn(p);
    n.uffdRegister(p, r);
    n.pin(p, r, 1, { write: true, longterm: true });
    n.uffdWriteprotect(p, r, 0, 2, true);
    const q = n.fork(p);
    assert.deepEqual([q.uffdForkEvent, q.pages.get(pageKey(r, 0))!.uffd, n.uffdWp(q, r, 0)], [true, true, true]);
    // Page 1 is maybe pinned in an mm with MMF_HAS_PINNED: copy_present_page for the child. 5.14
    // on (8f34f1eac382): userfaultfd_pte_wp(dst_vma, src pte) -> pte_wrprotect(pte_mkuffd_wp());
    // before: mk_pte + maybe_mkwrite only.
    assert.equal(n.forkCopies, 1);
    assert.deepEqual([n.uffdWp(q, r, 1), pte(q, r, 1).writable], [copyKeeps, !copyKeeps]);
    n.write(q, r, 0, 2);
    n.write(q, r, 1, 2);
    assert.equal(q.uffdFaults, copyKeeps ? 2 : 1);
    assert.deepEqual([n.read(p, r, 0), n.read(q, r, 0), n.read(q, r, 1)], [1, 2, 2]);
  }
});

test('uffd-wp across swap: the swap entry keeps the bit, the swap-in maps the page read-only with it (even where a read fault would map it writable), and the write goes to the monitor', () => {
  for (const rules of [V6_RULES, V5_9_RULES]) {
    const { n, p, r } = oneProc(rules, 1);
    n.write(p, r, 0, 1);
    n.uffdRegister(p, r);
    n.uffdWriteprotect(p, r, 0, 1, true);
    assert.equal(n.swapout(p, r, 0), true);
    assert.equal(n.uffdWp(p, r, 0), true, 'try_to_unmap_one: pte_swp_mkuffd_wp');
    // do_swap_page: pte_swp_uffd_wp -> pte_mkuffd_wp + pte_wrprotect (6.11's read-fault writable excluded).
    assert.equal(n.read(p, r, 0), 1);
    assert.deepEqual([n.uffdWp(p, r, 0), pte(p, r, 0).writable], [true, false]);
    n.write(p, r, 0, 2);
    assert.deepEqual([p.uffdFaults, n.read(p, r, 0)], [1, 2]);
  }
});

test('uffd-wp and mremap: the new VMA is not registered (no UFFD_FEATURE_EVENT_REMAP); 6.13 on the moved entries lose their bits, before they keep them (no longer trapping)', () => {
  for (const [rules, cleared] of [[V6_RULES, true], [V6_2_RULES, false]] as const) {
    const { n, p, r } = oneProc(rules, 2);
    n.write(p, r, 0, 1);
    n.write(p, r, 1, 1);
    n.uffdRegister(p, r);
    n.uffdWriteprotect(p, r, 0, 2, true);
    const m = n.mremap(p, r, 0, 1)!;
    assert.deepEqual([p.pages.get(pageKey(m, 0))!.uffd, n.uffdWp(p, m, 0)], [false, !cleared]);
    // The page with an anon_vma keeps its page offset: the new range does not line up with buf[1]'s
    // VMA, so buf[1] stays registered and protected.
    assert.deepEqual([p.pages.get(pageKey(r, 1))!.uffd, n.uffdWp(p, r, 1)], [true, true]);
    n.write(p, m, 0, 2);
    n.write(p, r, 1, 2);
    assert.equal(p.uffdFaults, 1, 'only the write to the registered page traps');
  }
});

test('uffd-wp of the zero page in a mapping without anon_vma: from 5.19 fork copies it into a registered child with the bit (vma_needs_copy); before, the child\'s PTE is not copied at all', () => {
  for (const [rules, copied] of [[V6_RULES, true], [V5_19_RULES, true], [V5_9_RULES, false]] as const) {
    const { n, p, r } = oneProc(rules, 1);
    n.read(p, r, 0); // the zero page: no anon_vma
    n.uffdForkEventOn(p);
    n.uffdRegister(p, r);
    n.uffdWriteprotect(p, r, 0, 1, true);
    assert.equal(n.uffdWp(p, r, 0), true);
    const q = n.fork(p);
    assert.equal(n.uffdWp(q, r, 0), copied);
    // Copied: the write meets the bit and traps; not copied: a none PTE, do_anonymous_page.
    n.write(q, r, 0, 1);
    assert.equal(q.uffdFaults, copied ? 1 : 0);
    assert.equal(n.read(q, r, 0), 1);
  }
});

test('uffd-wp of a device-exclusive entry: the bit goes into the entry (5.14-6.14: made readable), the grant is revoked, the restored PTE is write-protected with the bit and a write traps', () => {
  for (const rules of [V6_RULES, V6_2_RULES]) {
    const { n, p, r } = oneProc(rules, 1);
    n.write(p, r, 0, 1);
    n.uffdRegister(p, r);
    const g = n.makeDeviceExclusive(p, r, 0);
    n.uffdWriteprotect(p, r, 0, 1, true);
    assert.deepEqual([g.revoked, devx(p, r, 0)!.uffdWp, devx(p, r, 0)!.writable, n.uffdWp(p, r, 0)], [true, true, false, true]);
    assert.equal(n.read(p, r, 0), 1);
    assert.deepEqual([pte(p, r, 0).writable, n.uffdWp(p, r, 0)], [false, true]);
    n.write(p, r, 0, 2);
    assert.deepEqual([p.uffdFaults, n.read(p, r, 0)], [1, 2]);
  }
});

test('5.14-6.14: un-protecting a device-exclusive entry makes it readable too (change_pte_range in any change_protection); under 5.18\'s page-count reuse the write after the restore then copies a pinned page away from its pin; 6.15 restores it writable', () => {
  const v518: NaiveOptions = V5_18_RULES;
  for (const [rules, coherent] of [[v518, false], [V6_RULES, true]] as const) {
    const { n, p, r } = oneProc(rules, 1);
    n.write(p, r, 0, 1);
    const pin = n.pin(p, r, 0, { write: true, longterm: true })!;
    n.uffdRegister(p, r);
    n.makeDeviceExclusive(p, r, 0);
    n.uffdWriteprotect(p, r, 0, 1, false);
    // 5.14 kind: make_readable_device_exclusive_entry; restore_exclusive_pte maps it read-only and
    // do_wp_page sees page_count 1 + GUP_PIN_COUNTING_BIAS: a copy. 6.15: one kind, restored
    // writable (can_change_pte_writable: PG_anon_exclusive): the write lands in the pinned frame.
    n.write(p, r, 0, 2);
    assert.equal(n.cowCopies, coherent ? 0 : 1);
    assert.equal(n.deviceRead(pin), coherent ? 2 : 1);
    assert.equal(n.read(p, r, 0), 2);
  }
});

// COW page tables as On-Demand Fork has them (rssys/on-demand-fork, branch
// paper-version-kernel-v5.6.19: 8d43667 "Initial Release" = ODF_RULES; eebe694 and d8ccd3c =
// ODF_2021_RULES), on the 5.6 rules (mapcount reuse, no early COW, no unsharing).

/** oneProc with its pages written 1, 2, ... (each an exclusive page, mapped writable). */
function written(rules: NaiveOptions, pages: number): { n: NaiveKernel; p: NProc; r: NRegion } {
  const o = oneProc(rules, pages);
  for (let i = 0; i < pages; i++) o.n.write(o.p, o.r, i, i + 1);
  return o;
}

test('ODF: fork cowpt shares the table (no page counted again, the child reads without a fault); the first fault of each copies the table, then do_wp_page copies by mapcount', () => {
  const { n, p, r } = written(ODF_RULES, 2);
  const f0 = frameOf(p, r, 0)!;
  const f1 = frameOf(p, r, 1)!;
  const q = n.fork(p, true);
  // copy_pmd_range_tfork only points the child's PMD at the parent's table (refcount 2) and
  // write-protects the PMD: no get_page, no page_dup_rmap, the PTEs stay writable.
  assert.deepEqual([f0.refcount, f0.mapcount, f1.refcount, f1.mapcount], [1, 1, 1, 1]);
  assert.equal(q.shared!.get(0), p.shared!.get(0));
  assert.equal(q.shared!.get(0)!.users.size, 2);
  assert.equal(pte(p, r, 0).writable, true);
  assert.deepEqual([n.read(q, r, 0), n.read(q, r, 1), q.minflt], [1, 2, 0], 'reads go through the shared table without a fault');
  // Q's store faults on the write-protected PMD (x86 ANDs R/W across levels): __handle_mm_fault
  // sees !pmd_iswrite, the table's count is 2: tfork_one_pte_table copies it for Q (each page
  // get_page + page_dup_rmap: 2 and 2; the copy's PTEs write-protected, copy_one_pte_tfork), then
  // handle_pte_fault: do_wp_page on buf[0], mapcount 2: copy.
  n.write(q, r, 0, 3);
  assert.equal(q.minflt, 1);
  assert.deepEqual([f0.refcount, f0.mapcount, f1.refcount, f1.mapcount], [1, 1, 2, 2], 'f0 lost Q\'s copy\'s mapping to the COW copy');
  assert.equal(pte(q, r, 1).writable, false, 'the copy\'s PTEs are read-only');
  assert.equal(pte(p, r, 1).writable, true, 'ODF write-protects the copy only: P\'s (still shared) PTE stays writable');
  assert.equal(n.cowCopies, 1);
  // P's store: count 1 now, but the 2-page VMA does not cover the 2 MiB table: no repossession,
  // a copy (f1 3, then the old table freed: 2), then do_wp_page on buf[1] (mapcount 2): copy.
  n.write(p, r, 1, 4);
  assert.equal(p.shared!.size, 0);
  assert.deepEqual([f0.refcount, f0.mapcount, f1.refcount, f1.mapcount], [1, 1, 1, 1]);
  assert.equal(n.cowCopies, 2);
  // buf[0] of P: mapped once now, read-only in P's copy: reuse (reuse_swap_page: mapcount 1).
  n.write(p, r, 0, 5);
  assert.equal(frameOf(p, r, 0), f0);
  assert.equal(n.reuses, 1);
  assert.deepEqual([n.read(p, r, 0), n.read(p, r, 1), n.read(q, r, 0), n.read(q, r, 1)], [5, 4, 3, 2]);
  n.exit(q);
  n.exit(p);
  assert.equal(n.frames.size, 0);
});

test('ODF: a R/W pin through a writable PTE of a shared table takes the shared page (GUP looks at the PTE only): the device\'s write shows in the child; a plain fork\'s pin breaks COW', () => {
  const { n, p, r } = oneProc(ODF_RULES, 2);
  n.write(p, r, 0, 1);
  const q = n.fork(p, true);
  // 8d43667 mm/gup.c is 5.6's: follow_page_pte() tests can_follow_write_pte(pte) (pte_write: the
  // shared table's PTE is writable) and never the PMD: no fault, the page is pinned as it is.
  const pin = n.pin(p, r, 0, { write: true, longterm: true })!;
  assert.equal(p.minflt, 1, 'only the first write faulted');
  assert.equal(pin.frame, frameOf(q, r, 0));
  n.deviceWrite(pin, 7);
  assert.equal(n.read(q, r, 0), 7, 'the child reads the device\'s write to the parent\'s buffer');
  // P's store: the table copied for P (mapcount 2), do_wp_page copies: P leaves the pinned page.
  n.write(p, r, 0, 8);
  assert.deepEqual([n.read(p, r, 0), n.read(q, r, 0), n.deviceRead(pin)], [8, 7, 7]);
  // A plain fork: copy_one_pte write-protects both PTEs, so FOLL_WRITE faults (do_wp_page,
  // mapcount 2: a copy) and the pin holds P's own page.
  const o = oneProc(ODF_RULES, 2);
  o.n.write(o.p, o.r, 0, 1);
  const oq = o.n.fork(o.p);
  const opin = o.n.pin(o.p, o.r, 0, { write: true, longterm: true })!;
  o.n.deviceWrite(opin, 7);
  assert.deepEqual([o.n.read(oq, o.r, 0), o.n.read(o.p, o.r, 0)], [1, 7]);
});

test('ODF 8d43667: a mapping covering its table takes it back at count 1 with its writable PTEs: the parent\'s store lands in the page the child maps; odf-2021 (eebe694) copies', () => {
  for (const [rules, qReads] of [[ODF_RULES, 3], [ODF_2021_RULES, 1]] as const) {
    const { n, p, r } = oneProc(rules, 512);
    n.write(p, r, 0, 1);
    const q = n.fork(p, true);
    assert.equal(q.shared!.size, 1, 'a 512-page mapping covers its table: shared by both rule sets');
    // Q copies (count 2): its buf[0] read-only, f mapped twice.
    n.write(q, r, 1, 2);
    const f = frameOf(p, r, 0)!;
    assert.equal(frameOf(q, r, 0), f);
    assert.deepEqual([f.refcount, f.mapcount], [2, 2]);
    // P's store: count 1. 8d43667: table_start >= vm_start && table_end <= vm_end && count == 1:
    // set_pmd_at(pmd_mkwrite): P's PTE is the old, writable one: the store goes into f.
    // eebe694 removed that: tfork_one_pte_table copies (f 3, then 2 once the old table goes),
    // do_wp_page (mapcount 2) copies.
    n.write(p, r, 0, 3);
    assert.equal(n.read(q, r, 0), qReads, rules === ODF_RULES ? 'the repossession leak' : 'isolated');
  }
});

test('odf-2021 (d8ccd3c): a mapping covering part of its table is not shared (copy_pte_range, a plain fork), and MADV_DONTNEED does nothing in a process using ODF, nor in its children', () => {
  const { n, p, r } = oneProc(ODF_2021_RULES, 2);
  n.write(p, r, 0, 1);
  const q = n.fork(p, true);
  const f = frameOf(p, r, 0)!;
  assert.equal(q.shared!.size, 0);
  assert.deepEqual([f.refcount, f.mapcount, pte(p, r, 0).writable, pte(q, r, 0).writable], [2, 2, false, false], 'copy_one_pte: a COW share');
  // madvise_dontneed_free() returns 0 when MMF_USE_ODF is set (it is on both, and on a child of Q).
  n.madvise(q, r, 0, 1, 'dontneed');
  n.madvise(p, r, 0, 1, 'dontneed');
  const g = n.fork(q);
  n.madvise(g, r, 0, 1, 'dontneed');
  assert.deepEqual([n.read(p, r, 0), n.read(q, r, 0), n.read(g, r, 0)], [1, 1, 1]);
  assert.deepEqual([f.refcount, f.mapcount], [3, 3]);
});

test('ODF 8d43667: MADV_DONTNEED of one page of a shared table takes every page of the mapping in it from the process (zap_pmd_range decides by the VMA); the other keeps them', () => {
  const { n, p, r } = written(ODF_RULES, 2);
  const q = n.fork(p, true);
  // The 2-page VMA covers part of the table: dereference_pte_table, then tfork_one_pte_table with
  // `exclude` set to the VMA's end: the copy has none of this VMA's entries.
  n.madvise(q, r, 0, 1, 'dontneed');
  assert.deepEqual([n.read(q, r, 0), n.read(q, r, 1)], [0, 0], 'buf[1] is gone too');
  assert.deepEqual([n.read(p, r, 0), n.read(p, r, 1)], [1, 2]);
  assert.deepEqual([frameOf(p, r, 0)!.mapcount, frameOf(p, r, 1)!.refcount], [1, 1], 'only P\'s (old) table maps them');
});

test('ODF: a fork of an mm that used ODF shares again (the same table, count 3); a VM_WIPEONFORK mapping in a shared table shows the parent\'s data to the child (the table is shared whole)', () => {
  const { n, p, r } = written(ODF_RULES, 2);
  n.madvise(p, r, 1, 2, 'wipeonfork');
  const q = n.fork(p, true);
  // dup_mmap_tfork skips copy_page_range_tfork for the VM_WIPEONFORK VMA, but buf[0]'s VMA
  // shares the 2 MiB table it sits in, buf[1]'s PTE included.
  assert.equal(n.read(q, r, 1), 2);
  const g = n.fork(p); // MMF_USE_ODF: fork() is redirected to dup_mm_tfork
  assert.equal(p.shared!.get(0)!.users.size, 3);
  assert.equal(g.shared!.get(0), p.shared!.get(0));
  // A plain fork on plain rules: the child's wipeonfork page is empty.
  const o = oneProc(V5_7_RULES, 2);
  o.n.write(o.p, o.r, 1, 2);
  o.n.madvise(o.p, o.r, 1, 2, 'wipeonfork');
  assert.equal(o.n.read(o.n.fork(o.p), o.r, 1), 0);
});

test('ODF: a read-only mapping first in a table is copied per page, so a writable one after it is too (nothing shared); writable first, the read-only one is seen through the shared table', () => {
  const { n, p, r } = written(ODF_RULES, 2);
  n.mprotect(p, r, 0, 1, 'ro');
  const q = n.fork(p, true);
  assert.equal(q.shared!.size, 0);
  assert.deepEqual([frameOf(p, r, 1)!.mapcount, n.read(q, r, 0), n.read(q, r, 1)], [2, 1, 2]);
  const o = written(ODF_RULES, 2);
  o.n.mprotect(o.p, o.r, 1, 2, 'ro');
  const oq = o.n.fork(o.p, true);
  assert.equal(oq.shared!.size, 1);
  assert.deepEqual([frameOf(o.p, o.r, 1)!.mapcount, o.n.read(oq, o.r, 1)], [1, 2]);
});

test('ODF: a MADV_DONTFORK page in a shared table is not copied by the child (tfork_one_pte_table copies the copier\'s VMAs): its counts stay the parent\'s', () => {
  const { n, p, r } = written(ODF_RULES, 2);
  n.madvise(p, r, 1, 2, 'dontfork');
  const q = n.fork(p, true);
  const f1 = frameOf(p, r, 1)!;
  n.write(q, r, 0, 3);
  assert.deepEqual([f1.refcount, f1.mapcount], [1, 1]);
  assert.equal(n.read(q, r, 1), null);
  n.exit(q);
  n.exit(p);
  assert.equal(n.frames.size, 0);
});

test('ODF: a swap entry in a shared table: the child\'s read fault copies the table (swap_duplicate: count 2), then swaps in; when both are gone the slot\'s count is 0 and the swap cache keeps the page until reclaim', () => {
  const { n, p, r } = oneProc(ODF_RULES, 2);
  n.write(p, r, 0, 1);
  assert.equal(n.swapout(p, r, 0), true);
  const slot = swpOf(p, r, 0)!.slot;
  const q = n.fork(p, true);
  assert.equal(slot.count, 1, 'one entry, in the one table');
  assert.equal(n.read(q, r, 0), 1);
  // The copy's entry took a count (2), the swap-in consumed it (1): P's entry in the old table.
  assert.equal(slot.count, 1);
  assert.equal(n.read(p, r, 0), 1);
  assert.equal(frameOf(p, r, 0), frameOf(q, r, 0), 'P\'s swap-in found Q\'s page in the swap cache');
  n.exit(q);
  n.exit(p);
  // Both entries were swapped in, none zapped: free_swap_and_cache never ran, so the swap cache
  // keeps the page (with its only reference) until reclaim, as after a plain fork.
  assert.equal(slot.count, 0);
  assert.deepEqual([...n.frames].map((f) => [f.refcount, f.mapcount, f.swapcache === slot]), [[1, 0, true]]);
});

test('ODF: gup-fast walks the page tables, not the VMAs: in the child, where it has no mapping (MADV_DONTFORK), a fast pin or vmsplice takes the parent\'s page from the shared table; the slow path fails (EFAULT)', () => {
  const { n, p, r } = written(ODF_RULES, 2);
  n.madvise(p, r, 1, 2, 'dontfork');
  const q = n.fork(p, true);
  // get_user_pages_fast -> gup_pgd_range ... gup_pte_range reads the PTE of Q's (shared) table:
  // present, writable (P's, never write-protected by ODF): pinned; no find_vma on this path.
  assert.equal(n.pin(q, r, 1, { write: true, longterm: true }), null, '__get_user_pages: find_extend_vma finds nothing: EFAULT');
  const pin = n.pinFast(q, r, 1, { write: true, longterm: true })!;
  assert.equal(pin.frame, frameOf(p, r, 1));
  n.deviceWrite(pin, 9);
  assert.equal(n.read(p, r, 1), 9, 'Q\'s device writes into P\'s page');
  const ref = n.vmsplice(q, r, 1)!;
  n.write(p, r, 1, 10); // P copies the table (mapcount 2 now: P's copy and the old table), then the page
  assert.equal(n.pipeRead(ref), 9, 'Q\'s pipe keeps the page P left');
  assert.equal(n.read(p, r, 1), 10);
  // A plain fork leaves no entry there: the fast path finds none, the slow path fails.
  const o = oneProc(ODF_RULES, 2);
  o.n.write(o.p, o.r, 1, 2);
  o.n.madvise(o.p, o.r, 1, 2, 'dontfork');
  const oq = o.n.fork(o.p);
  assert.deepEqual([o.n.pinFast(oq, o.r, 1, { write: true, longterm: true }), o.n.vmsplice(oq, o.r, 1)], [null, null]);
});

// Interleavings of kernel paths run in steps (`&`, `T step`, `T finish`) on the model core, each
// checked by hand against the kernel's code: where the kernel's locks and re-checks make the
// interleaving act as one order of the operations, the model core must read what the naive model
// reads when it runs them in that order; where they do not (5.9's gup-fast against fork), no
// order of the naive model gives what the model core reads.

/** The values (names) the model core reads with `reads` after `steps` (a read or a device read each). */
function coreReads(profile: string, steps: readonly string[], reads: readonly string[]): (string | undefined)[] {
  const r = runnerAfter(steps, profile, [], false);
  const sc = parse(scenarioText([...steps, ...reads]), 't.scn.yaml');
  return reads.map((_, i) => {
    const at = steps.length + i;
    return r.step(sc.steps[at]!, at).record.observations.find((o) => o.kind === 'read' || o.kind === 'handle-read')?.actual;
  });
}

test('interleaving: gup-fast FOLL_PIN inside a fork (write_protect_seq odd) falls back to the slow path after the fork: v6 reads what the naive model reads for fork, then pin', () => {
  // Thread Q of P pins buf[0] with gup-fast while P forks R. Steps: fork begins (mmap_lock for
  // write, raw_write_seqcount_begin: write_protect_seq odd), copy_present_pte decides to share
  // (page_maybe_dma_pinned false), gup-fast reads the PTE (present, writable) and pins the page,
  // fork shares it and write-protects the PTE, fork ends.
  const steps = ['P mmap buf 1 rw private', 'P thread Q', 'Q write buf[0] = 1', 'P fork R &', 'Q pin buf[0] as h rw longterm fast &',
    'P step', 'P step', 'Q step', 'Q step', 'P step', 'Q finish', 'P finish', 'Q write buf[0] = 2', 'device write h[0] = 3'];
  const reads = ['Q read buf[0]', 'R read buf[0]', 'device read h[0]'];
  // v6 (57efa1fe5957, 5.11): lockless_pages_from_mm() samples write_protect_seq before the walk
  // (odd: the fork had begun, so in 6.x it does not even walk; the model's 5.11-era re-check after
  // the walk drops the pin the same way), falls back to __gup_longterm_locked, which needs
  // mmap_lock for read: it runs after the fork. Then FOLL_WRITE on the write-protected PTE of a
  // page the fork shared (PG_anon_exclusive cleared, refcount 2): do_wp_page copies; the pin holds
  // Q's new page. Q's store and the device's go to that page; R keeps 1.
  const n = new NaiveKernel(V6_RULES);
  const p = n.spawn();
  const r = n.mmap(p, 1);
  n.write(p, r, 0, 1);
  const child = n.fork(p);
  const pin = n.pin(p, r, 0, { write: true, longterm: true })!;
  n.write(p, r, 0, 2);
  n.deviceWrite(pin, 3);
  assert.deepEqual([n.read(p, r, 0), n.read(child, r, 0), n.deviceRead(pin)], [3, 1, 3]);
  assert.deepEqual(coreReads('v6', steps, reads), ['3', '1', '3']);
  // v5.9 has no write_protect_seq: the pin stays on the page fork shared with R (the device's
  // write shows in R), and Q's store (page count 1 + 1024 + 1: copy) leaves it: Q reads 2.
  assert.deepEqual(coreReads('v5.9', steps, reads), ['2', '3', '3']);
  // No order of the two operations gives that on 5.9: pin then fork copies the pinned page for
  // the child (early COW: R keeps 1); fork then pin gives Q a copy of its own (R keeps 1).
  for (const pinFirst of [true, false]) {
    const m = new NaiveKernel(V5_9_RULES);
    const mp = m.spawn();
    const mr = m.mmap(mp, 1);
    m.write(mp, mr, 0, 1);
    let mpin = pinFirst ? m.pin(mp, mr, 0, { write: true, longterm: true })! : null;
    const mc = m.fork(mp);
    mpin ??= m.pin(mp, mr, 0, { write: true, longterm: true })!;
    m.write(mp, mr, 0, 2);
    m.deviceWrite(mpin, 3);
    assert.deepEqual([m.read(mp, mr, 0), m.read(mc, mr, 0), m.deviceRead(mpin)], [3, 1, 3], pinFirst ? 'pin, fork' : 'fork, pin');
  }
});

test('interleaving: a write fault whose copy was made outside the lock, then another thread\'s fault on the same PTE: !pte_same drops the copy and the access retries (T\'s write, then P\'s, in the naive model)', () => {
  // P's store faults (do_wp_page: shared after fork, so wp_page_copy: the copy is made with the
  // PTE lock dropped); thread T's store faults and installs a copy of its own; P's wp_page_copy
  // retakes the lock, finds !pte_same(orig_pte), frees its copy and returns; the store is
  // retried and finds T's copy writable: no second copy.
  const steps = ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'P thread T', 'P fork Q', 'P write buf[0] = 2 &', 'P step', 'T write buf[0] = 3', 'P finish'];
  const reads = ['P read buf[0]', 'T read buf[0]', 'Q read buf[0]'];
  for (const [profile, rules] of [['v6', V6_RULES], ['v5.9', V5_9_RULES], ['v5.7', V5_7_RULES]] as const) {
    const n = new NaiveKernel(rules);
    const p = n.spawn();
    const r = n.mmap(p, 1);
    n.write(p, r, 0, 1);
    const q = n.fork(p);
    n.write(p, r, 0, 3); // T's store: a copy
    n.write(p, r, 0, 2); // P's retried store: through the now writable PTE
    assert.equal(n.cowCopies, 1);
    assert.deepEqual([n.read(p, r, 0), n.read(q, r, 0)], [2, 1]);
    assert.deepEqual(coreReads(profile, steps, reads), ['2', '2', '1'], profile);
    const core = runnerAfter(steps, profile, [], false);
    assert.equal(core.k.stats.cowCopies, 1, `${profile}: the dropped copy is not counted`);
  }
});

test('interleaving: another thread\'s store while fork copies a PTE: before fork write-protects it, the store needs no fault and the child sees it (store, then fork); after, it faults and waits for fork\'s mmap_lock (fork, then store)', () => {
  // fork & steps on one PTE: begin (mmap_lock for write), check (copy_present_pte's decision),
  // apply (the child's PTE set, the parent's write-protected), end. T's store to a writable PTE
  // is the CPU's alone (no fault, no lock): it lands in the frame the child is about to share.
  // After the apply, the PTE is read-only: T faults, and the fault needs mmap_lock for read,
  // which the fork holds: the fork ends first, then do_wp_page copies for T.
  const start = ['P mmap buf 1 rw private', 'P thread T', 'T write buf[0] = 1', 'P fork Q &', 'P step', 'P step'];
  const reads = ['P read buf[0]', 'Q read buf[0]'];
  for (const [profile, rules] of [['v6', V6_RULES], ['v5.9', V5_9_RULES]] as const) {
    for (const afterApply of [false, true]) {
      const steps = [...start, ...(afterApply ? ['P step'] : []), 'T write buf[0] = 2', 'P finish'];
      const n = new NaiveKernel(rules);
      const p = n.spawn();
      const r = n.mmap(p, 1);
      n.write(p, r, 0, 1);
      let q: NProc;
      if (afterApply) {
        q = n.fork(p);
        n.write(p, r, 0, 2);
      } else {
        n.write(p, r, 0, 2);
        q = n.fork(p);
      }
      const want = [n.read(p, r, 0), n.read(q, r, 0)];
      assert.deepEqual(want, afterApply ? [2, 1] : [2, 2]);
      assert.deepEqual(coreReads(profile, steps, reads), want.map(String), `${profile}, T's store ${afterApply ? 'after' : 'before'} the apply`);
    }
  }
});

// MADV_COLLAPSE (madvise_collapse, mm/khugepaged.c; 6.1 on).

test('MADV_COLLAPSE of a 512-page mapping: every page copied into the new THP (none PTEs zeroed), exclusive and writable; P\'s old pages lose its mapping, a fork child keeps them', () => {
  const { n, p, r } = oneProc(V6_RULES, 512);
  n.write(p, r, 0, 1);
  n.write(p, r, 1, 2);
  const q = n.fork(p);
  const f0 = frameOf(p, r, 0)!;
  assert.deepEqual(n.collapse(p, r, 0, 512), { err: 'ok', collapsed: 1 });
  // collapse_huge_page: __collapse_huge_page_copy copies each page (copy_user_highpage; a none
  // or zero-page PTE gets clear_user_highpage), page_remove_rmap + release for the old ones;
  // page_add_new_anon_rmap: exclusive (the head); maybe_pmd_mkwrite on a VM_WRITE VMA: one huge PMD maps the 2 MiB.
  const pmd = p.pages.get(pageKey(r, 0))!.pmd!;
  assert.equal(p.pages.get(pageKey(r, 511))!.pmd, pmd);
  assert.deepEqual([f0.refcount, f0.mapcount], [1, 1], 'Q\'s mapping only');
  assert.deepEqual([pmd.folio.pages[0]!.exclusive, pmd.writable, pmd.folio.refcount, pmd.folio.entire], [true, true, 1, 1]);
  assert.deepEqual([n.read(p, r, 0), n.read(p, r, 1), n.read(p, r, 511), n.read(q, r, 0)], [1, 2, 0, 1]);
  // A THP already: SCAN_PMD_MAPPED counts as done.
  assert.deepEqual(n.collapse(p, r, 0, 512), { err: 'ok', collapsed: 0 });
});

test('MADV_COLLAPSE refuses a page with references its mappings do not explain (a pin, a GUP reference, a pipe: SCAN_PAGE_COUNT, EAGAIN); once released it collapses', () => {
  for (const take of ['pin', 'gup', 'vmsplice'] as const) {
    const { n, p, r } = oneProc(V6_RULES, 512);
    n.write(p, r, 0, 1);
    const pin = take === 'pin' ? n.pin(p, r, 0, { write: true, longterm: true })! : null;
    const ref = take === 'gup' ? n.gup(p, r, 0)! : take === 'vmsplice' ? n.vmsplice(p, r, 0)! : null;
    // is_refcount_suitable(): refcount 1 + 1024 (or + 1) against a mapcount of 1.
    assert.deepEqual(n.collapse(p, r, 0, 512), { err: 'EAGAIN', collapsed: 0 }, take);
    if (pin !== null) n.unpin(pin);
    if (ref !== null) n.putRef(ref);
    assert.deepEqual(n.collapse(p, r, 0, 512), { err: 'ok', collapsed: 1 }, take);
  }
});

test('MADV_COLLAPSE after fork (every PTE write-protected): EINVAL up to 6.13 (SCAN_PAGE_RO), collapsed on 6.18; a mapping with no aligned 2 MiB or no anon_vma: EINVAL', () => {
  for (const [rules, err] of [[V6_2_RULES, 'EINVAL'], [V6_RULES, 'ok']] as const) {
    const { n, p, r } = oneProc(rules, 512);
    n.write(p, r, 0, 1);
    n.fork(p);
    assert.equal(n.collapse(p, r, 0, 512).err, err);
  }
  // hugepage_vma_check -> transhuge_vma_suitable: a 2-page VMA holds no aligned 2 MiB.
  const small = oneProc(V6_RULES, 2);
  small.n.write(small.p, small.r, 0, 1);
  assert.equal(small.n.collapse(small.p, small.r, 0, 2).err, 'EINVAL');
  // No anonymous fault yet: no anon_vma (hugepage_vma_check's vma_is_anonymous && !anon_vma).
  const fresh = oneProc(V6_RULES, 512);
  fresh.n.read(fresh.p, fresh.r, 0);
  assert.equal(fresh.n.collapse(fresh.p, fresh.r, 0, 512).err, 'EINVAL');
});

test('MADV_COLLAPSE swaps swapped-out pages in first (__collapse_huge_page_swapin) and copies them', () => {
  const { n, p, r } = oneProc(V6_RULES, 512);
  n.write(p, r, 0, 1);
  n.write(p, r, 1, 2);
  assert.equal(n.swapout(p, r, 1), true);
  const slot = swpOf(p, r, 1)!.slot;
  assert.deepEqual(n.collapse(p, r, 0, 512), { err: 'ok', collapsed: 1 });
  assert.equal(swpOf(p, r, 1), null);
  assert.equal(slot.count, 0);
  assert.deepEqual([n.read(p, r, 0), n.read(p, r, 1)], [1, 2]);
});

test('soft-dirty and mprotect (6.0 on): rw on an rw mapping changes nothing; after clear_refs, ro -> rw leaves an exclusive page read-only until its next write; a swap entry loses the bit too', () => {
  const { n, p, r } = oneProc(V6_RULES, 2);
  n.write(p, r, 0, 1);
  n.clearSoftdirty(p); // clear_soft_dirty: write-protected, soft-dirty clear; VM_SOFTDIRTY clear
  // mprotect_fixup: newflags == oldflags: returns before change_protection.
  n.mprotect(p, r, 0, 1, 'rw');
  assert.equal(pte(p, r, 0).writable, false);
  // ro -> rw: can_change_pte_writable refuses a PTE whose soft-dirty bit is clear while the VMA
  // tracks soft-dirty (vma_soft_dirty_enabled): the next write must fault to be recorded.
  n.mprotect(p, r, 0, 1, 'ro');
  n.mprotect(p, r, 0, 1, 'rw');
  assert.equal(pte(p, r, 0).writable, false);
  n.write(p, r, 0, 2); // do_wp_page: reuse (PG_anon_exclusive); pte_mkdirty sets soft-dirty
  assert.equal(n.reuses, 1);
  n.mprotect(p, r, 0, 1, 'ro');
  n.mprotect(p, r, 0, 1, 'rw');
  assert.equal(pte(p, r, 0).writable, true, 'soft-dirty now: upgraded');
  // A swap entry keeps the bit (pte_swp_mksoft_dirty) and clear_refs clears it there too
  // (pte_swp_clear_soft_dirty): 6.11's read-fault swap-in then maps it read-only.
  n.write(p, r, 1, 3);
  n.swapout(p, r, 1);
  assert.equal(swpOf(p, r, 1)!.softDirty, true);
  n.clearSoftdirty(p);
  assert.equal(swpOf(p, r, 1)!.softDirty, false);
  assert.equal(n.read(p, r, 1), 3);
  assert.equal(pte(p, r, 1).writable, false, 'pte_needs_soft_dirty_wp');
});

test('THP (v6): a huge PMD shared at fork; a write fault on it splits the PMD and copies the one page; after the other mm exits, 6.15 reuses the PTE-mapped folio (mm-exclusive); a pin splits it at the next fork', () => {
  const n = new NaiveKernel(V6_RULES);
  const p = n.spawn();
  const r = n.mmap(p, 512, true);
  n.write(p, r, 0, 1);
  const pmd = p.pages.get(pageKey(r, 0))!.pmd!;
  const folio = pmd.folio;
  assert.deepEqual([folio.refcount, folio.entire, folio.large, folio.pages[0]!.exclusive, pmd.writable], [1, 1, 1, true, true], 'do_huge_pmd_anonymous_page');
  const q = n.fork(p);
  assert.deepEqual([folio.refcount, folio.entire, folio.shared, folio.pages[0]!.exclusive, pmd.writable], [2, 2, true, false, false], 'copy_huge_pmd');
  // Q's write: refcount 2, not exclusive: split Q's PMD, then do_wp_page copies buf[1] (maybe mapped shared).
  n.write(q, r, 1, 2);
  assert.equal(q.pages.get(pageKey(r, 0))!.pmd, null);
  assert.deepEqual([folio.refcount, folio.entire, folio.large, folio.pages[1]!.mapcount], [1 + 511, 1, 1 + 511, 0]);
  assert.deepEqual([n.read(p, r, 1), n.read(q, r, 1), n.read(q, r, 0)], [0, 2, 1]);
  n.exit(p);
  assert.equal(folio.shared, false, 'one slot holds every mapping');
  n.write(q, r, 0, 3);
  assert.equal(n.thpEvents.largeReuse, 1, '__wp_can_reuse_large_anon_folio');
  assert.equal(frameOf(q, r, 0), folio.pages[0]);
});

test('THP (v6): MADV_PAGEOUT of a page of a folio three mms mapped, two of them gone: the shared bit stays set but one mapping is "mapped exclusively" (folio_maybe_mapped_shared), so the folio is split and the page swapped out', () => {
  const n = new NaiveKernel(V6_RULES);
  const p = n.spawn();
  const r = n.mmap(p, 512, true);
  n.write(p, r, 0, 1);
  const folio = p.pages.get(pageKey(r, 0))!.pmd!.folio;
  const q = n.fork(p);
  const s = n.fork(p);
  // Two slots (P, Q); S has none, so the bit is set and stays set while S maps the folio.
  assert.deepEqual([folio.mmIds[0], folio.mmIds[1], folio.shared, folio.large], [p, q, true, 3]);
  // While two mms map it, pageout leaves it alone ("do not interfere with other mappings").
  n.exit(p);
  assert.equal(n.swapout(s, r, 0), false);
  n.exit(q);
  assert.deepEqual([folio.shared, folio.large], [true, 1], 'no slot held S\'s mapping: the bit is not cleared');
  assert.equal(n.swapout(s, r, 0), true, 'folio_maybe_mapped_shared: mapcount 1 is exclusive');
  assert.equal(n.thpEvents.folioSplit, 1);
  assert.equal(n.read(s, r, 0), 1, 'swapped back in');
  assert.equal(n.read(s, r, 1), 0);
});

test('mprotect rw upgrades a clean exclusive PTE from 6.2 only (6.0-6.1 can_change_pte_writable wants pte_dirty), and a PTE whose uffd-wp bit mremap carried out of the registered mapping', () => {
  // 6.1.166's do_swap_page maps a page read back by a read fault exclusive, clean and read-only.
  const v61: NaiveOptions = { ...V5_19_RULES, mprotectUpgrade: true };
  for (const [rules, upgraded] of [[v61, false], [V6_2_RULES, true]] as const) {
    const { n, p, r } = oneProc(rules, 1);
    n.write(p, r, 0, 1);
    assert.equal(n.swapout(p, r, 0), true);
    assert.equal(n.read(p, r, 0), 1);
    const pg = p.pages.get(pageKey(r, 0))!;
    assert.deepEqual([pg.pte!.writable, pg.pte!.dirty, pg.pte!.frame!.exclusive], [false, false, true]);
    n.mprotect(p, r, 0, 1, 'ro');
    n.mprotect(p, r, 0, 1, 'rw');
    assert.equal(p.pages.get(pageKey(r, 0))!.pte!.writable, upgraded);
  }
  // mremap without the remap event: the new mapping is not registered, the bit moves (before 6.13).
  for (const rules of [v61, V6_2_RULES]) {
    const { n, p, r } = oneProc(rules, 2);
    n.write(p, r, 0, 1);
    assert.equal(n.uffdRegister(p, r), true);
    assert.equal(n.uffdWriteprotect(p, r, 0, 2, true), true);
    const m = n.mremap(p, r, 0, 1)!;
    const moved = p.pages.get(pageKey(m, 0))!;
    assert.deepEqual([moved.uffd === true, moved.pte!.uffdWp === true], [false, true]);
    n.mprotect(p, m, 0, 1, 'ro');
    n.mprotect(p, m, 0, 1, 'rw');
    assert.equal(p.pages.get(pageKey(m, 0))!.pte!.writable, true);
  }
});

test('uffd-wp and GUP: a write fault of pin_user_pages()/get_user_pages() (no FAULT_FLAG_ALLOW_RETRY) on a protected page fails (EFAULT), the monitor told nothing, no fault counted; gup-fast\'s fallback waits for the monitor, a long-term pin\'s only from 6.2', () => {
  for (const [rules, longtermWaits] of [[V5_19_RULES, false], [V6_2_RULES, true], [V6_RULES, true]] as const) {
    for (const how of ['pin', 'pin-fast', 'pin-fast-short', 'device'] as const) {
      const { n, p, r } = oneProc(rules, 1);
      n.write(p, r, 0, 1);
      n.uffdRegister(p, r);
      n.uffdWriteprotect(p, r, 0, 1, true);
      const minflt = p.minflt;
      const got = how === 'pin' ? n.pin(p, r, 0, { write: true, longterm: true })
        : how === 'pin-fast' ? n.pinFast(p, r, 0, { write: true, longterm: true })
        : how === 'pin-fast-short' ? n.pinFast(p, r, 0, { write: true, longterm: false })
        : n.makeDeviceExclusive(p, r, 0).revoked ? null : {};
      const waits = how === 'pin-fast-short' || (how === 'pin-fast' && longtermWaits);
      assert.equal(got !== null, waits, `${how}`);
      assert.deepEqual([p.uffdFaults, n.uffdWp(p, r, 0)], waits ? [1, false] : [0, true], `${how}: the monitor`);
      if (!waits) assert.equal(p.minflt, minflt, `${how}: the failed fault is not counted`);
    }
  }
});

/** A THP whose head the device was granted (t[0] written 1): every PTE of the folio an exclusive entry. */
function headGranted(rules: typeof V6_2_RULES): { n: NaiveKernel; p: ReturnType<NaiveKernel['spawn']>; t: ReturnType<NaiveKernel['mmap']> } {
  const n = new NaiveKernel(rules);
  const p = n.spawn();
  const t = n.mmap(p, 512, true);
  n.write(p, t, 0, 1);
  n.makeDeviceExclusive(p, t, 0);
  return { n, p, t };
}

test('5.14-6.14: the THP head\'s rmap walk visits the folio\'s VMAs by vm_pgoff (anon_vma_interval_tree_foreach), not by address: a page mremap moved keeps its offset', () => {
  for (const rules of [V5_14_RULES, V5_18_RULES, V6_2_RULES]) {
    // t[1] restored, then moved to m (offset 1, above t): the walk converts t[0], then m (the
    // folio is then mapped nowhere) before t[2..511] (offset 2, whose entry would stop it). Held.
    {
      const { n, p, t } = headGranted(rules);
      n.write(p, t, 1, 2);
      const m = n.mremap(p, t, 1, 2)!;
      assert.ok(m.base > t.base, 'the new range lies above t');
      const g = n.makeDeviceExclusive(p, t, 0);
      assert.deepEqual([g.revoked, devx(p, m, 0) !== null], [false, true]);
      assert.equal(n.deviceAtomic(g, 7), 'ok');
      assert.deepEqual([n.read(p, t, 0), n.read(p, m, 0)], [7, 2]);
    }
    // t[2] restored, t[1] (an entry) moved to m: the walk converts t[0], then stops at m's entry
    // (offset 1) before t[2] (offset 2), which stays mapped: 5.18-6.14 ask folio_mapcount() (EBUSY),
    // 5.14-5.17 page_mapcount() of the head, which the walk unmapped (held).
    {
      const { n, p, t } = headGranted(rules);
      n.write(p, t, 2, 2);
      const m = n.mremap(p, t, 1, 2)!;
      const g = n.makeDeviceExclusive(p, t, 0);
      if (rules.deviceExclusiveHeld !== 'page') {
        assert.deepEqual([g.revoked, g.err, pte(p, t, 2).frame !== null], [true, 'EBUSY', true]);
        assert.equal(n.deviceAtomic(g, 7), 'revoked');
        assert.deepEqual([n.read(p, t, 0), n.read(p, t, 2), n.read(p, m, 0)], [1, 2, 0]);
      } else {
        assert.deepEqual([g.revoked, pte(p, t, 2).frame !== null], [false, true]);
        assert.equal(n.deviceAtomic(g, 7), 'ok');
        assert.equal(n.read(p, t, 0), 7);
      }
    }
  }
});

test('5.14-6.14: VMAs with the same vm_pgoff are walked in the order they last entered the anon_vma tree: a forked child\'s after its parent\'s, a parent\'s split after fork (munmap, mprotect) after the child\'s', () => {
  for (const rules of [V5_14_RULES, V5_18_RULES, V6_2_RULES]) {
    for (const change of ['none', 'munmap', 'mprotect'] as const) {
      // t's head not forked (dontfork): Q maps t[1..511] only, at P's offsets. A first grant makes
      // every PTE of both an entry; P writes t[0] back, Q reads t[1] back.
      const n = new NaiveKernel(rules);
      const p = n.spawn();
      const t = n.mmap(p, 512, true);
      n.write(p, t, 0, 1);
      n.madvise(p, t, 0, 1, 'dontfork');
      const q = n.fork(p);
      n.makeDeviceExclusive(p, t, 0);
      n.write(p, t, 0, 2);
      assert.equal(n.read(q, t, 1), 0);
      // __split_vma(): P's VMA at offset 1 is re-inserted, after Q's.
      if (change === 'munmap') n.munmap(p, t, 511, 512);
      if (change === 'mprotect') n.mprotect(p, t, 511, 512, 'ro');
      const g = n.makeDeviceExclusive(p, t, 0);
      if (change !== 'none') {
        // P's t[0], then Q's VMA: Q's t[1] converted, Q's t[2] ends the walk; nothing maps the folio.
        assert.deepEqual([g.revoked, devx(q, t, 1) !== null], [false, true], `${change}`);
        assert.equal(n.deviceAtomic(g, 7), 'ok');
        assert.equal(n.read(p, t, 0), 7);
      } else if (rules.deviceExclusiveHeld !== 'page') {
        // P's VMA first: its t[1] entry ends the walk, Q's t[1] still mapped (folio_mapcount: EBUSY).
        assert.deepEqual([g.revoked, g.err, devx(q, t, 1)], [true, 'EBUSY', null]);
        assert.equal(n.read(p, t, 0), 2);
      } else {
        assert.deepEqual([g.revoked, devx(q, t, 1)], [false, null]);
      }
    }
  }
});
