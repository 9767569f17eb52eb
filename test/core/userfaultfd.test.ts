// userfaultfd write-protect on PTEs: what UFFDIO_WRITEPROTECT's un-protect (MM_CP_UFFD_WP_RESOLVE)
// leaves in the write bit. Before 6.3 uffd_wp_range() / mwriteprotect_range() handed
// change_protection() vm_get_page_prot(vm_flags), and change_pte_range() built the PTE with
// pte_modify(), which keeps no write bit of the old PTE: read-only in a private mapping (PAGE_COPY),
// writable in a shared writable one (PAGE_SHARED). 6.3 (931298e103c2) uses vma->vm_page_prot and
// MM_CP_TRY_CHANGE_WRITABLE (uffdUnprotectWritable). Read in mm/userfaultfd.c and mm/mprotect.c of
// 5.7.14, 5.10.198, 5.15.215, 5.19, 6.1.158, 6.2.12 and 6.3.8 (docs/profiles.md).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EFAULT, OK, PTE_UFFD_WP } from '../../src/core/constants.js';
import { uffdRegister, uffdWriteprotect } from '../../src/core/userfaultfd.js';
import { getUserPages } from '../../src/core/gup.js';
import { doMprotect } from '../../src/core/mmap.js';
import { swapOutPage } from '../../src/core/swap.js';
import { pteSlot } from '../../src/core/walk.js';
import { dupMmap } from '../../src/core/fork.js';
import type { Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { assertConsistent, frame, kernel, presentPte, proc, pte, readOk, writeOk } from './helpers.js';

test('un-protecting a private page that was never protected: read-only before 6.3 (PAGE_COPY through pte_modify), so the next write faults and reuses the exclusive page; writable at once from 6.3', () => {
  const cases = [['v5.7', false], ['5.10', false], ['v5.14', false], ['v5.19', false], ['6.1', false], ['v6.2', false], ['6.6', true], ['v6', true]] as const;
  for (const [name, writable] of cases) {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 2);
    writeOk(k, mm, vpn, 1);
    const pfn = writeOk(k, mm, vpn + 1, 1);
    assert.equal(uffdRegister(k, mm, vpn, vpn + 2), OK, name);
    assert.equal(presentPte(k, mm, vpn + 1).write, true, `${name}: registering changes no PTE`);
    // The monitor protects page 0 only, then un-protects both pages.
    assert.equal(uffdWriteprotect(k, mm, vpn, vpn + 1, true), OK, name);
    assert.equal(uffdWriteprotect(k, mm, vpn, vpn + 2, false), OK, name);
    assert.equal(presentPte(k, mm, vpn).write, writable, `${name}: the page protected before`);
    assert.equal(presentPte(k, mm, vpn + 1).write, writable, `${name}: the page never protected`);
    const [minflt, reuses] = [mm.minflt, k.stats.reuses];
    assert.equal(writeOk(k, mm, vpn + 1, 2), pfn, `${name}: the same page`);
    assert.equal(mm.minflt - minflt, writable ? 0 : 1, `${name}: minor faults of the write`);
    assert.equal(k.stats.reuses - reuses, writable ? 0 : 1, `${name}: do_wp_page reuses the exclusive page`);
    assert.deepEqual([mm.uffdFaults, k.stats.cowCopies, readOk(k, mm, vpn + 1)], [0, 0, 2], name);
    assertConsistent(k);
  }
});

test('the monitor\'s answer to a write fault leaves the private page read-only before 6.3: the retried write goes through do_wp_page, which reuses it; one fault counted either way', () => {
  for (const [name, reused] of [['v5.19', 1], ['v6.2', 1], ['v6', 0]] as const) {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 1);
    const pfn = writeOk(k, mm, vpn, 1);
    assert.equal(uffdRegister(k, mm, vpn, vpn + 1), OK);
    assert.equal(uffdWriteprotect(k, mm, vpn, vpn + 1, true), OK);
    const [minflt, reuses] = [mm.minflt, k.stats.reuses];
    assert.equal(writeOk(k, mm, vpn, 2), pfn, name);
    // handle_userfault returns VM_FAULT_RETRY, which mm_account_fault does not count; the retry
    // counts once (as major from 5.10: FAULT_FLAG_TRIED; the stat adds both), whether do_wp_page
    // reuses the page (before 6.3) or finds it writable.
    assert.deepEqual([mm.uffdFaults, mm.minflt - minflt, k.stats.reuses - reuses], [1, 1, reused], name);
    assert.equal(presentPte(k, mm, vpn).write, true, name);
    assertConsistent(k);
  }
});

test('un-protecting a shared mapping (5.19 to 6.2): PAGE_SHARED maps every PTE of the range writable, a page only read too, so no write faults; from 6.3 they stay write-protected', () => {
  for (const [name, writable] of [['v5.19', true], ['6.1', true], ['v6.2', true], ['v6', false]] as const) {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 2, 'rw', true);
    writeOk(k, mm, vpn, 1);
    assert.equal(uffdRegister(k, mm, vpn, vpn + 2), OK, name);
    assert.equal(readOk(k, mm, vpn + 1), 0, name);
    assert.equal(uffdWriteprotect(k, mm, vpn, vpn + 1, true), OK, name);
    assert.equal(presentPte(k, mm, vpn).write, false, name);
    assert.equal(uffdWriteprotect(k, mm, vpn, vpn + 2, false), OK, name);
    assert.deepEqual([presentPte(k, mm, vpn).write, presentPte(k, mm, vpn + 1).write], [writable, writable], name);
    const minflt = mm.minflt;
    writeOk(k, mm, vpn, 2);
    writeOk(k, mm, vpn + 1, 2);
    assert.equal(mm.minflt - minflt, writable ? 0 : 2, name);
    assert.equal(mm.uffdFaults, 0, name);
    assertConsistent(k);
  }
});

test('v5.8\'s forced COW break in a read-only VMA: a GUP whose break fault the monitor answered breaks COW at the retry (FOLL_COW is set only once a fault reports VM_FAULT_WRITE), so the R/O pin holds a private copy the PTE maps, not the zero page; a pin that may not wait for the monitor fails', () => {
  const k = kernel('v5.8');
  const { mm, vpn } = proc(k, 1);
  assert.equal(uffdRegister(k, mm, vpn, vpn + 1), OK);
  assert.equal(doMprotect(k, mm, vpn, vpn + 1, 'ro'), OK);
  readOk(k, mm, vpn);
  assert.equal(presentPte(k, mm, vpn).pfn, 0, 'the read maps the zero page');
  assert.equal(uffdWriteprotect(k, mm, vpn, vpn + 1, true), OK);
  // pin_user_pages() (no `locked`) and a long-term pin_user_pages_fast() (5.8's
  // __gup_longterm_unlocked(): `locked` NULL) fault without FAULT_FLAG_ALLOW_RETRY: the break's
  // write fault is VM_FAULT_SIGBUS in handle_userfault(), the pin EFAULT, the monitor told nothing.
  for (const fast of [false, true]) {
    const refused = getUserPages(k, mm, vpn, vpn + 1, { pin: true, write: false, longterm: true, fast, kind: 'pin' });
    assert.equal(refused.err, EFAULT, `fast=${fast}`);
    assert.equal(mm.uffdFaults, 0, `fast=${fast}: the monitor is not told`);
    assert.equal(presentPte(k, mm, vpn).pfn, 0, `fast=${fast}: still the zero page`);
  }
  // A short-term pin_user_pages_fast(): its fallback is get_user_pages_unlocked(), which may drop mmap_lock.
  const r = getUserPages(k, mm, vpn, vpn + 1, { pin: true, write: false, longterm: false, fast: true, kind: 'pin' });
  assert.equal(r.err, OK);
  const pinned = r.handle!.frames[0]!;
  // 17839856fd58: the pin's break is a write fault; the uffd-wp bit hands the first to the monitor
  // (VM_FAULT_RETRY, no FOLL_COW), the retry copies the zero page.
  assert.equal(mm.uffdFaults, 1, 'one fault handed to the monitor');
  assert.notEqual(pinned, 0, 'the pin holds a private copy, not the zero page');
  assert.equal(presentPte(k, mm, vpn).pfn, pinned, 'the process maps the page it pinned');
  assert.equal(presentPte(k, mm, vpn).write, false, 'the VMA is read-only: the copy stays read-only');
  assertConsistent(k);
});

/** v5.8: a page written, taken by vmsplice, uffd-wp protected, mprotect'ed (`prot`), swapped out with the pipe's reference keeping it in the swap cache. */
function swappedProtectedPage(prot: 'ro' | 'rw') {
  const k = kernel('v5.8');
  const { mm, vpn } = proc(k, 1);
  const pfn = writeOk(k, mm, vpn, 7);
  // vmsplice: gup-fast takes the writable PTE's page (5.8: a FOLL_GET reference, write=1 for gup-fast).
  const pipe = getUserPages(k, mm, vpn, vpn + 1, { pin: false, write: false, longterm: false, fast: true, kind: 'pipe' });
  assert.equal(pipe.err, OK);
  assert.equal(pipe.handle!.frames[0], pfn, 'the pipe holds the page');
  assert.equal(uffdRegister(k, mm, vpn, vpn + 1), OK);
  assert.equal(uffdWriteprotect(k, mm, vpn, vpn + 1, true), OK);
  if (prot === 'ro') assert.equal(doMprotect(k, mm, vpn, vpn + 1, 'ro'), OK);
  // MADV_PAGEOUT: the swap PTE keeps the uffd-wp bit (pte_swp_mkuffd_wp); the pipe's reference
  // keeps the page in the swap cache (__remove_mapping fails on the extra reference).
  assert.equal(swapOutPage(k, mm, vpn), null);
  assert.equal(pte(k, mm, vpn)!.present, false, 'swapped out');
  return { k, mm, vpn, pfn };
}

test('v5.8\'s forced COW break swapping in a uffd-wp page of a read-only VMA: do_swap_page()\'s reuse_swap_page() does the write (VM_FAULT_WRITE, FOLL_COW) and calls no do_wp_page(), so the monitor gets no fault and the GUP takes the page the pipe holds', () => {
  const { k, mm, vpn, pfn } = swappedProtectedPage('ro');
  const copies = k.stats.cowCopies;
  const r = getUserPages(k, mm, vpn, vpn + 1, { pin: false, write: false, longterm: false, fast: true, kind: 'gup' });
  assert.equal(r.err, OK);
  // 17839856fd58: the read GUP faults as a write (FOLL_WRITE). do_swap_page() finds the page in the
  // swap cache; reuse_swap_page() counts mapcount 0 + swap count 1 <= 1 (the pipe's reference does
  // not count), deletes it from the swap cache and lets the fault do the write: pte_mkdirty,
  // maybe_mkwrite (no write bit: no VM_WRITE), then pte_mkuffd_wp + pte_wrprotect for the swap
  // entry's bit; FAULT_FLAG_WRITE cleared, VM_FAULT_WRITE, no do_wp_page(). faultin_page() sets
  // FOLL_COW (no VM_WRITE), and can_follow_write_pte() takes the dirty read-only PTE.
  assert.equal(mm.uffdFaults, 0, 'no fault handed to the monitor');
  assert.equal(r.handle!.frames[0], pfn, 'the GUP takes the page swapped back in: the one the pipe holds');
  assert.equal(k.stats.cowCopies, copies, 'no COW copy');
  const after = presentPte(k, mm, vpn);
  assert.deepEqual([after.pfn, after.write, after.dirty], [pfn, false, true], 'mapped read-only and dirty');
  assert.ok(k.tables.bits[pteSlot(k, mm, vpn)]! & PTE_UFFD_WP, 'the uffd-wp bit stays: the monitor never un-protected it');
  assert.deepEqual([frame(k, pfn).refcount, frame(k, pfn).mapcount], [3, 1], 'the mapping, the pipe and the GUP; out of the swap cache');
  assert.equal(readOk(k, mm, vpn), 7);
  assertConsistent(k);
});

test('v5.8\'s forced COW break swapping in a uffd-wp page of a writable VMA: reuse_swap_page() does the write but the PTE stays write-protected and FOLL_COW is not set (VM_WRITE), so GUP faults again and do_wp_page() hands the write to the monitor, then reuses the page', () => {
  const { k, mm, vpn, pfn } = swappedProtectedPage('rw');
  const copies = k.stats.cowCopies;
  const r = getUserPages(k, mm, vpn, vpn + 1, { pin: false, write: false, longterm: false, fast: true, kind: 'gup' });
  assert.equal(r.err, OK);
  // faultin_page() sets FOLL_COW only without VM_WRITE: follow_page_pte() refuses the read-only
  // PTE (FOLL_WRITE), the next fault reaches do_wp_page(), whose userfaultfd_pte_wp() hands it to
  // the monitor (VM_FAULT_RETRY); the retry reuses the page (mapcount 1, out of the swap cache).
  assert.equal(mm.uffdFaults, 1, 'one fault handed to the monitor');
  assert.equal(r.handle!.frames[0], pfn, 'the GUP takes the page the pipe holds');
  assert.equal(k.stats.cowCopies, copies, 'no COW copy');
  assert.deepEqual([presentPte(k, mm, vpn).pfn, presentPte(k, mm, vpn).write], [pfn, true], 'reused, writable');
  assertConsistent(k);
});

test('a CPU write to a uffd-wp swap entry up to 6.10: do_swap_page() does the write and clears FAULT_FLAG_WRITE (reuse_swap_page() up to 5.17, a page only we hold from 5.18: c145e0b47c77), so the fault ends with the PTE write-protected and dirty; the store faults again, into do_wp_page() and the monitor: two faults. From 6.11 (c18160dba5ff) the swap-in leaves the write to do_wp_page() in the same fault: one', () => {
  for (const [name, faults] of [['v5.9', 2], ['v5.14', 2], ['v5.18', 2], ['v5.19', 2], ['v6.2', 2], ['v6.15', 1], ['v6', 1]] as const) {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 1);
    writeOk(k, mm, vpn, 7);
    assert.equal(uffdRegister(k, mm, vpn, vpn + 1), OK);
    assert.equal(uffdWriteprotect(k, mm, vpn, vpn + 1, true), OK);
    assert.equal(swapOutPage(k, mm, vpn), null);
    assert.equal(pte(k, mm, vpn)!.present, false, `${name}: swapped out`);
    const before = mm.minflt;
    writeOk(k, mm, vpn, 8);
    // (The fault the monitor took returns VM_FAULT_RETRY, not counted; its retry is.)
    assert.equal(mm.minflt - before, faults, `${name}: faults of the write`);
    assert.equal(mm.uffdFaults, 1, `${name}: the monitor saw the write`);
    assert.equal(k.stats.cowCopies, 0, `${name}: the page reused`);
    assert.equal(readOk(k, mm, vpn), 8);
    assertConsistent(k);
  }
});

/** Whether the PTE of vpn carries the uffd-wp bit. */
function uffdWpBit(k: Kernel, mm: Mm, vpn: number): boolean {
  return (k.tables.bits[pteSlot(k, mm, vpn)]! & PTE_UFFD_WP) !== 0;
}

/** A written page of a registered mapping, write-protected by the monitor, on `name`. */
function protectedPage(name: string) {
  const k = kernel(name);
  const { mm, vpn } = proc(k, 1);
  const pfn = writeOk(k, mm, vpn, 1);
  assert.equal(uffdRegister(k, mm, vpn, vpn + 1), OK);
  assert.equal(uffdWriteprotect(k, mm, vpn, vpn + 1, true), OK);
  return { k, mm, vpn, pfn };
}

test('a FOLL_WRITE GUP on a page the monitor protected: pin_user_pages() and get_user_pages() never pass `locked` (5.7 to 6.18), so faultin_page() sets no FAULT_FLAG_ALLOW_RETRY and handle_userfault() answers VM_FAULT_SIGBUS: EFAULT, the monitor told nothing, the page still protected and not counted as a fault', () => {
  for (const name of ['v5.7', 'v5.8', '5.10', 'v5.19', '6.1', 'v6.2', '6.6', 'v6']) {
    for (const req of [{ pin: true, longterm: true, kind: 'pin' }, { pin: true, longterm: false, kind: 'pin' }, { pin: false, longterm: false, kind: 'gup' }] as const) {
      const { k, mm, vpn, pfn } = protectedPage(name);
      const [minflt, used] = [mm.minflt, k.frames.used];
      const r = getUserPages(k, mm, vpn, vpn + 1, { ...req, write: true, fast: false });
      const what = `${name} ${req.kind}${req.longterm ? ' longterm' : ''}`;
      assert.equal(r.err, EFAULT, what);
      assert.deepEqual([mm.uffdFaults, mm.minflt - minflt, k.frames.used - used], [0, 0, 0], `${what}: no userfault, no fault counted, nothing taken`);
      const after = presentPte(k, mm, vpn);
      assert.deepEqual([after.pfn, after.write, uffdWpBit(k, mm, vpn)], [pfn, false, true], `${what}: still protected`);
      assertConsistent(k);
    }
  }
});

test('pin_user_pages_fast() with FOLL_WRITE on a page the monitor protected: gup-fast refuses the read-only PTE; the fallback may wait for the monitor (a userfault, the pin taken) without FOLL_LONGTERM in every era, and with it from 6.2 (gupFastLongtermRetry); before, a long-term pin is EFAULT', () => {
  const cases = [['v5.7', false], ['v5.9', false], ['5.10', false], ['v5.19', false], ['6.1', false], ['v6.2', true], ['6.6', true], ['6.12', true], ['v6', true]] as const;
  for (const [name, longtermWaits] of cases) {
    for (const longterm of [false, true]) {
      const { k, mm, vpn, pfn } = protectedPage(name);
      const r = getUserPages(k, mm, vpn, vpn + 1, { pin: true, write: true, longterm, fast: true, kind: 'pin' });
      const waits = !longterm || longtermWaits;
      const what = `${name}${longterm ? ' longterm' : ' short'}`;
      assert.equal(r.err, waits ? OK : EFAULT, what);
      assert.equal(mm.uffdFaults, waits ? 1 : 0, `${what}: userfaults`);
      if (waits) assert.equal(r.handle!.frames[0], pfn, `${what}: the page itself, un-protected and reused`);
      assert.equal(uffdWpBit(k, mm, vpn), !waits, `${what}: the bit`);
      assertConsistent(k);
    }
  }
});

test('an unshare fault never asks the monitor (do_wp_page() tests uffd-wp only when !unshare): a R/O pin of a protected page shared with a child unshares it (5.19 on) without a userfault, the copy keeping the bit', () => {
  for (const name of ['v5.19', '6.1', 'v6']) {
    const { k, mm, vpn, pfn } = protectedPage(name);
    const child = dupMmap(k, mm).child!;
    const r = getUserPages(k, mm, vpn, vpn + 1, { pin: true, write: false, longterm: true, fast: false, kind: 'pin' });
    assert.equal(r.err, OK, name);
    assert.equal(mm.uffdFaults, 0, `${name}: no userfault`);
    const after = presentPte(k, mm, vpn);
    assert.notEqual(after.pfn, pfn, `${name}: unshared into a copy`);
    assert.deepEqual([after.write, uffdWpBit(k, mm, vpn)], [false, true], `${name}: the copy read-only, still protected`);
    assert.equal(presentPte(k, child, vpn).pfn, pfn, `${name}: the child keeps the old page`);
    assertConsistent(k);
  }
});
