// Page faults on private anonymous memory (do_anonymous_page, do_wp_page and its reuse rule by kernel):
// do_anonymous_page (zero page on read, a fresh exclusive page on write) and do_wp_page's reuse
// rule of each era: mapcount (<= 5.8), page count (5.9-5.18), PG_anon_exclusive first (5.19+).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OK, OOM, SIGSEGV, PG_ANON_EXCLUSIVE } from '../../src/core/constants.js';
import { FAULT_FLAG_UNSHARE, FAULT_FLAG_WRITE, handleMmFault } from '../../src/core/fault.js';
import { dupMmap } from '../../src/core/fork.js';
import { getUserPages } from '../../src/core/gup.js';
import type { Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { clearSoftDirty, doMadvise } from '../../src/core/mmap.js';
import { uffdRegister } from '../../src/core/userfaultfd.js';
import { exitMmap } from '../../src/core/zap.js';
import {
  assertConsistent, frame, kernel, map, presentPte, proc, pte, read, readOk, write, writeOk, type KernelOptions,
} from './helpers.js';

// ---- do_anonymous_page --------------------------------------------------------------------------

for (const name of ['v5.7', 'v5.9', 'v6']) {
  test(`${name}: a read of untouched private memory maps the zero page read-only, with no reference`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 1);
    const r = read(k, mm, vpn);
    assert.equal(r.err, OK);
    assert.equal(r.value, 0);
    assert.equal(r.pfn, 0, 'the shared zero page');
    assert.equal(r.faults, 1);
    const p = presentPte(k, mm, vpn);
    assert.equal(p.special, true, 'pte_special: vm_normal_page() is NULL for it');
    assert.equal(p.write, false);
    assert.equal(k.frames.used, 0, 'no frame allocated');
    assert.equal(k.frames.refcount[0], 0, 'the zero page is not refcounted');
    assert.equal(k.frames.mapcount[0], 0, 'nor mapcounted');
    assert.equal(mm.rssAnon, 0, 'the zero page is not in RSS');
    assert.equal(mm.findVma(vpn)!.anonVma, false, 'a read fault prepares no anon_vma');
    assert.equal(readOk(k, mm, vpn), 0);
    assert.equal(mm.minflt, 1, 'the second read takes no fault');
    assertConsistent(k);
  });
}

for (const [name, exclusive] of [['v5.7', false], ['v5.9', false], ['v5.18', false], ['v5.19', true], ['v6', true]] as const) {
  test(`${name}: a write to untouched memory allocates a page: refcount 1, mapcount 1, anon-exclusive ${exclusive}`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 1);
    const r = write(k, mm, vpn, 7);
    assert.equal(r.err, OK);
    assert.equal(r.faults, 1);
    assert.ok(r.pfn > 0);
    assert.deepEqual(frame(k, r.pfn), { refcount: 1, mapcount: 1, anon: true, exclusive, value: 7 });
    const p = presentPte(k, mm, vpn);
    assert.equal(p.pfn, r.pfn);
    assert.equal(p.write, true, 'VM_WRITE: mapped writable at once');
    assert.equal(p.dirty, true);
    assert.equal(p.special, false);
    assert.equal(mm.rssAnon, 1);
    assert.equal(k.frames.used, 1);
    assert.equal(mm.findVma(vpn)!.anonVma, true);
    // A second write hits the writable PTE: no fault.
    assert.equal(write(k, mm, vpn, 8).faults, 0);
    assert.equal(readOk(k, mm, vpn), 8);
    assert.equal(k.stats.cowCopies, 0);
    assertConsistent(k);
  });
}

for (const [name, exclusive] of [['v5.7', false], ['v5.9', false], ['v6', true]] as const) {
  test(`${name}: a write to the zero page copies to a fresh zeroed frame (wp_page_copy), the zero page untouched`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 2);
    readOk(k, mm, vpn);
    readOk(k, mm, vpn + 1);
    const r = write(k, mm, vpn, 5);
    assert.equal(r.err, OK);
    assert.equal(r.faults, 1);
    assert.ok(r.pfn > 0);
    assert.deepEqual(frame(k, r.pfn), { refcount: 1, mapcount: 1, anon: true, exclusive, value: 5 });
    assert.equal(presentPte(k, mm, vpn).write, true);
    assert.equal(presentPte(k, mm, vpn).special, false);
    assert.equal(k.stats.cowCopies, 1, 'a COW break of the zero page');
    assert.equal(mm.rssAnon, 1);
    // The other page still maps the zero page and reads 0.
    assert.equal(presentPte(k, mm, vpn + 1).pfn, 0);
    assert.equal(readOk(k, mm, vpn + 1), 0);
    assert.equal(k.frames.value[0], 0, 'nothing was ever written into the zero page');
    assertConsistent(k);
  });
}

test('a read-only mapping reads zeros, and a write to it is SIGSEGV without allocating', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 1, 'ro');
  assert.equal(readOk(k, mm, vpn), 0);
  const r = write(k, mm, vpn, 1);
  assert.equal(r.err, SIGSEGV);
  assert.equal(k.frames.used, 0);
  assert.equal(presentPte(k, mm, vpn).pfn, 0);
  assertConsistent(k);
});

test('PROT_NONE: both loads and stores fault', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 1, 'none');
  assert.equal(read(k, mm, vpn).err, SIGSEGV);
  assert.equal(write(k, mm, vpn, 1).err, SIGSEGV);
  assert.equal(k.frames.used, 0);
});

test('an address with no mapping faults (SIGSEGV) on load and store', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 1);
  const r = read(k, mm, vpn + 1);
  assert.equal(r.err, SIGSEGV);
  assert.equal(r.faults, 1, 'the CPU took one fault');
  assert.equal(write(k, mm, vpn - 1, 1).err, SIGSEGV);
  assert.equal(k.frames.used, 0);
});

test('a fault that fails (SIGSEGV, OOM) is not counted in min_flt', {
}, () => {
  // The arch fault handler sends SIGSEGV for a missing VMA or a write to a read-only one
  // (bad_area / access_error) before handle_mm_fault(); mm_account_fault() skips any fault whose
  // result has VM_FAULT_ERROR (OOM, SIGSEGV, SIGBUS). Only successful faults count in min_flt.
  const k = kernel('v6', { frames: 0 });
  const { mm, vpn } = proc(k, 1);
  const ro = map(k, mm, 1, 'ro');
  assert.equal(read(k, mm, vpn + 5).err, SIGSEGV);
  assert.equal(write(k, mm, ro, 1).err, SIGSEGV);
  assert.equal(write(k, mm, vpn, 1).err, OOM);
  assert.equal(mm.minflt, 0);
});

// ---- do_wp_page ---------------------------------------------------------------------------------

interface Shared {
  k: Kernel;
  p: Mm;
  q: Mm;
  vpn: number;
  pfn: number;
}

/** P writes 1 to a page and forks Q: the page is shared (mapcount 2, refcount 2, read-only in both). */
function shared(name: string, opts: KernelOptions = {}): Shared {
  const k = kernel(name, opts);
  const { mm: p, vpn } = proc(k, 1);
  const pfn = writeOk(k, p, vpn, 1);
  const r = dupMmap(k, p);
  assert.equal(r.err, OK);
  return { k, p, q: r.child!, vpn, pfn };
}

/** As shared(), then Q exits: P's PTE is still read-only but P is the only mapper (mapcount 1, refcount 1). */
function alone(name: string, opts: KernelOptions = {}): Shared {
  const s = shared(name, opts);
  exitMmap(s.k, s.q);
  assert.deepEqual([s.k.frames.mapcount[s.pfn], s.k.frames.refcount[s.pfn]], [1, 1]);
  assert.equal(presentPte(s.k, s.p, s.vpn).write, false);
  return s;
}

/** A reference that is not a mapping (a GUP reference, a pipe buffer): refcount + n. */
function extraRef(k: Kernel, pfn: number, n = 1): void {
  k.frames.addRefcount(pfn, n);
}

function expectCopy(s: Shared, value: number): number {
  const { k, p, vpn, pfn } = s;
  const copies = k.stats.cowCopies;
  const r = write(k, p, vpn, value);
  assert.equal(r.err, OK);
  assert.notEqual(r.pfn, pfn, 'the writer must get a new frame (copy)');
  assert.equal(k.stats.cowCopies, copies + 1);
  assert.equal(frame(k, r.pfn).mapcount, 1);
  assert.equal(frame(k, r.pfn).refcount, 1);
  assert.equal(presentPte(k, p, vpn).write, true);
  assert.equal(frame(k, pfn).value, 1, 'the old frame keeps the old value');
  return r.pfn;
}

function expectReuse(s: Shared, value: number): void {
  const { k, p, vpn, pfn } = s;
  const copies = k.stats.cowCopies;
  const reuses = k.stats.reuses;
  const r = write(k, p, vpn, value);
  assert.equal(r.err, OK);
  assert.equal(r.faults, 1, 'one write-protect fault');
  assert.equal(r.pfn, pfn, 'the page must be reused in place');
  assert.equal(k.stats.cowCopies, copies);
  assert.equal(k.stats.reuses, reuses + 1);
  assert.equal(presentPte(k, p, vpn).write, true);
  assert.equal(frame(k, pfn).value, value);
}

for (const name of ['v5.7', 'v5.9', 'v6']) {
  test(`${name}: a write to a page another process maps copies it; the other keeps the old frame`, () => {
    const s = shared(name);
    const { k, q, vpn, pfn } = s;
    expectCopy(s, 2);
    assert.deepEqual([k.frames.mapcount[pfn], k.frames.refcount[pfn]], [1, 1], 'the old frame lost one mapping and one reference');
    assert.equal(readOk(k, q, vpn), 1);
    assert.equal(presentPte(k, q, vpn).pfn, pfn);
    assertConsistent(k);
  });

  test(`${name}: the last mapper of a formerly shared page reuses it (no other mapping, no other reference)`, () => {
    const s = alone(name);
    expectReuse(s, 2);
    const excl = (s.k.frames.flags[s.pfn]! & PG_ANON_EXCLUSIVE) !== 0;
    assert.equal(excl, s.k.profile.anonExclusive, 'reuse sets PG_anon_exclusive again where it exists');
    assertConsistent(s.k);
  });
}

test('v6: fork clears PG_anon_exclusive; the reuse after the other mapper left sets it again', () => {
  const s = shared('v6');
  assert.equal(frame(s.k, s.pfn).exclusive, false);
  exitMmap(s.k, s.q);
  assert.equal(frame(s.k, s.pfn).exclusive, false, 'mapcount 1 alone does not make it exclusive');
  expectReuse(s, 2);
  assert.equal(frame(s.k, s.pfn).exclusive, true);
});

// An extra reference (GUP/pipe) on a page mapped once: the rule that tells the eras apart.
test('wpReuse mapcount (v5.7): an extra reference does not stop the reuse (reuse_swap_page counts mappings only)', () => {
  const s = alone('v5.7');
  extraRef(s.k, s.pfn);
  expectReuse(s, 2);
  assert.equal(frame(s.k, s.pfn).refcount, 2, 'the extra holder now sees the new data: the CVE-2020-29374 leak');
  s.k.putPage(s.pfn);
  assertConsistent(s.k);
});

test('wpReuse pagecount (v5.9): an extra reference forces a copy even at mapcount 1', () => {
  const s = alone('v5.9');
  extraRef(s.k, s.pfn);
  expectCopy(s, 2);
  assert.deepEqual([frame(s.k, s.pfn).mapcount, frame(s.k, s.pfn).refcount], [0, 1], 'only the extra reference holds the old page');
  s.k.putPage(s.pfn);
  assert.equal(s.k.frames.inUse(s.pfn), false, 'released by its last holder');
  assertConsistent(s.k);
});

test('wpReuse anon-exclusive (v6): a non-exclusive page with an extra reference is copied', () => {
  const s = alone('v6');
  extraRef(s.k, s.pfn);
  const n = expectCopy(s, 2);
  assert.equal(frame(s.k, n).exclusive, true, 'the copy is exclusive');
  assert.equal(frame(s.k, s.pfn).exclusive, false);
  s.k.putPage(s.pfn);
  assertConsistent(s.k);
});

test('the switch alone decides: v6 with wpReuse=mapcount reuses, v5.7 with wpReuse=pagecount copies', () => {
  const a = alone('v6', { sets: ['wpReuse=mapcount'] });
  extraRef(a.k, a.pfn);
  expectReuse(a, 2);
  const b = alone('v5.7', { sets: ['wpReuse=pagecount'] });
  extraRef(b.k, b.pfn);
  expectCopy(b, 2);
});

test('wpReuse mapcount: a page two processes map is copied even with no extra reference', () => {
  const s = shared('v5.7');
  expectCopy(s, 2);
});

/** P writes a page (exclusive where tracked), then clear_refs write-protects it: a R/O PTE on a page P alone maps. */
function writeProtectedOwn(name: string, sets: string[] = []): Shared {
  const k = kernel(name, { sets });
  const { mm: p, vpn } = proc(k, 1);
  const pfn = writeOk(k, p, vpn, 1);
  clearSoftDirty(k, p);
  assert.equal(presentPte(k, p, vpn).write, false);
  return { k, p, q: p, vpn, pfn };
}

test('v6: an anon-exclusive page with an extra reference is reused: PageAnonExclusive is checked first', () => {
  const s = writeProtectedOwn('v6');
  assert.equal(frame(s.k, s.pfn).exclusive, true);
  extraRef(s.k, s.pfn);
  expectReuse(s, 2);
  s.k.putPage(s.pfn);
  assertConsistent(s.k);
});

test('v5.9 and v6 with wpReuse=pagecount: the same page with an extra reference is copied', () => {
  for (const [name, sets] of [['v5.9', []], ['v6', ['wpReuse=pagecount']]] as const) {
    const s = writeProtectedOwn(name, [...sets]);
    extraRef(s.k, s.pfn);
    expectCopy(s, 2);
    s.k.putPage(s.pfn);
    assertConsistent(s.k);
  }
});

test('v5.9: a write-protected page mapped once with no other reference is reused', () => {
  const s = writeProtectedOwn('v5.9');
  expectReuse(s, 2);
  assertConsistent(s.k);
});

// ---- FAULT_FLAG_UNSHARE (5.19+) -----------------------------------------------------------------

test('v6: an unshare fault on a shared page gives the faulting process an exclusive copy mapped read-only', () => {
  const s = shared('v6');
  const { k, p, q, vpn, pfn } = s;
  assert.equal(handleMmFault(k, p, vpn, FAULT_FLAG_UNSHARE), OK);
  const pp = presentPte(k, p, vpn);
  assert.notEqual(pp.pfn, pfn);
  assert.equal(pp.write, false, 'unshare never maps writable');
  assert.deepEqual(frame(k, pp.pfn), { refcount: 1, mapcount: 1, anon: true, exclusive: true, value: 1 });
  assert.equal(presentPte(k, q, vpn).pfn, pfn);
  assert.deepEqual([frame(k, pfn).mapcount, frame(k, pfn).refcount], [1, 1]);
  assertConsistent(k);
});

test('v6: an unshare fault on an exclusive read-only page changes nothing', () => {
  const s = writeProtectedOwn('v6');
  const used = s.k.frames.used;
  assert.equal(handleMmFault(s.k, s.p, s.vpn, FAULT_FLAG_UNSHARE), OK);
  const p = presentPte(s.k, s.p, s.vpn);
  assert.equal(p.pfn, s.pfn);
  assert.equal(p.write, false);
  assert.equal(s.k.frames.used, used);
  assert.equal(s.k.stats.cowCopies, 0);
});

test('an unshare fault where nothing is mapped maps nothing', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 1);
  assert.equal(handleMmFault(k, mm, vpn, FAULT_FLAG_UNSHARE), OK);
  assert.equal(pte(k, mm, vpn), null);
  assert.equal(k.frames.used, 0);
});

test('v6: a read fault on shmem faults around the cached neighbours, except in a VMA registered for uffd-wp', () => {
  // should_fault_around() -> uffd_disable_fault_around() (5.19+).
  for (const registered of [false, true]) {
    const k = kernel('v6');
    const { mm: p, vpn } = proc(k, 3, 'rw', true);
    if (registered) assert.equal(uffdRegister(k, p, vpn, vpn + 3), OK);
    for (let i = 0; i < 3; i++) writeOk(k, p, vpn + i, 5);
    // MADV_DONTNEED drops the PTEs; the pages stay in the shmem object's page cache.
    assert.equal(doMadvise(k, p, vpn, vpn + 3, 'dontneed'), OK);
    assert.equal(readOk(k, p, vpn + 1), 5);
    const mapped = [0, 1, 2].filter((i) => pte(k, p, vpn + i)?.present === true).length;
    assert.equal(mapped, registered ? 1 : 3, registered ? 'the faulting page alone' : 'the page and its two cached neighbours');
    assertConsistent(k);
  }
});

test('wp_page_reuse marks the PTE dirty and soft-dirty (x86 pte_mkdirty sets _PAGE_SOFT_DIRTY): after clear_refs, a write fault that reuses the page leaves it soft-dirty before any store', () => {
  for (const name of ['v5.9', 'v6']) {
    const s = writeProtectedOwn(name);
    assert.equal(presentPte(s.k, s.p, s.vpn).softDirty, false, 'clear_refs cleared it');
    // The fault alone (a FOLL_WRITE GUP faults without storing): do_wp_page -> wp_page_reuse.
    assert.equal(handleMmFault(s.k, s.p, s.vpn, FAULT_FLAG_WRITE), OK);
    const p = presentPte(s.k, s.p, s.vpn);
    assert.deepEqual([p.write, p.softDirty, s.k.stats.reuses], [true, true, 1], name);
  }
});

// ---- GUP's forced COW break (5.8) on a page never touched, in a read-only mapping ---------------
// mm/gup.c and mm/memory.c of infuq/linux-5.8.1 at dc81b7b90160: __get_user_pages() adds FOLL_WRITE
// (should_force_cow_break: a COW mapping, FOLL_GET or FOLL_PIN) after check_vma_flags(), so a
// read-only VMA passes. follow_page_mask() finds no PTE: faultin_page() write-faults,
// do_anonymous_page() maps a new page read-only and clean (pte_mkwrite(pte_mkdirty()) only under
// VM_WRITE) and reports no VM_FAULT_WRITE, so FOLL_COW stays clear and can_follow_write_pte()
// (pte_write, or FOLL_COW and pte_dirty) refuses the PTE: a second write fault, do_wp_page()
// reuses the page (mapped once) through wp_page_reuse(): dirty, still read-only
// (maybe_mkwrite), VM_FAULT_WRITE; FOLL_COW is set and the dirty PTE is followed. Two faults
// (faultin_page() counts each in min_flt), one reuse, no copy; the GUP holds that page.

test('v5.8: a read GUP of a never-touched page of a read-only private mapping faults twice (do_anonymous_page, then do_wp_page reuse) and takes the new page, mapped read-only and dirty', () => {
  const k = kernel('v5.8');
  const { mm, vpn } = proc(k, 1, 'ro');
  for (const pin of [false, true]) {
    const r = getUserPages(k, mm, vpn, vpn + 1, { pin, write: false, longterm: false, fast: false, kind: pin ? 'pin' : 'gup' });
    assert.equal(r.err, OK);
    const p = presentPte(k, mm, vpn);
    assert.equal(r.handle!.frames[0], p.pfn, 'the GUP holds the page the process maps');
    if (pin) continue;
    assert.notEqual(p.pfn, 0, 'a new page, not the zero page (a write fault)');
    assert.equal(frame(k, p.pfn).anon, true);
    assert.equal(p.write, false, 'the VMA is read-only');
    assert.equal(p.dirty, true, 'wp_page_reuse() made it dirty (FOLL_COW follows a dirty PTE)');
    assert.equal(mm.minflt, 2, 'do_anonymous_page, then do_wp_page');
    assert.equal(k.stats.reuses, 1);
    assert.equal(k.stats.cowCopies, 0);
  }
  // The second GUP finds the dirty read-only PTE with FOLL_COW unset: one more write fault, a reuse.
  assert.equal(mm.minflt, 3);
  assert.equal(k.stats.reuses, 2);
  assert.equal(k.stats.cowCopies, 0);
  assertConsistent(k);
});
