// mmap, mprotect, madvise and clear_refs on anonymous memory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NA, OK, PTE_UFFD_WP, SIGSEGV, VM_DONTCOPY, VM_MERGEABLE, VM_SOFTDIRTY, VM_UFFD_WP } from '../../src/core/constants.js';
import { doMremap } from '../../src/core/mremap.js';
import { swapOutPage } from '../../src/core/swap.js';
import { uffdRegister, uffdWriteprotect } from '../../src/core/userfaultfd.js';
import { pteSlot } from '../../src/core/walk.js';
import { dupMmap } from '../../src/core/fork.js';
import { getUserPages } from '../../src/core/gup.js';
import { exitMmap } from '../../src/core/zap.js';
import { Kernel } from '../../src/core/kernel.js';
import { builtinProfile } from '../../src/profiles/builtin.js';
import type { Mm } from '../../src/core/mm.js';
import { clearSoftDirty, doMadvise, doMmap, doMprotect } from '../../src/core/mmap.js';
import { assertConsistent, frame, kernel, presentPte, proc, read, readOk, write, writeOk } from './helpers.js';

test('mmap places mappings one after another, PMD-sized ones PMD-aligned, without faulting anything in', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  const a = doMmap(k, mm, 3, 'rw', false, false);
  const b = doMmap(k, mm, 2, 'rw', false, false);
  const c = doMmap(k, mm, 1024, 'rw', false, false);
  assert.deepEqual([a.err, b.err, c.err], [OK, OK, OK]);
  assert.equal(b.start, a.start + 3);
  assert.equal(c.start % 512, 0);
  assert.ok(c.start >= b.start + 2);
  assert.equal(k.frames.used, 0);
  assert.equal(mm.nrTables, 1);
  assert.equal(mm.vmas.length, 2, 'a and b are neighbours with the same flags: one VMA (vma_merge); c is not adjacent');
});

test('MAP_POPULATE write-faults a private writable mapping and read-faults a read-only one', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  const rw = doMmap(k, mm, 4, 'rw', false, true);
  assert.equal(rw.populated, 4);
  assert.equal(k.frames.used, 4);
  assert.equal(presentPte(k, mm, rw.start + 3).write, true);
  const ro = doMmap(k, mm, 4, 'ro', false, true);
  assert.equal(ro.populated, 4);
  assert.equal(k.frames.used, 4, 'read faults map the zero page');
  assert.equal(presentPte(k, mm, ro.start).pfn, 0);
  assertConsistent(k);
});

test('MAP_POPULATE stops at the first allocation failure', () => {
  const k = kernel('v6', { frames: 2 });
  const mm = k.newMm();
  const r = doMmap(k, mm, 4, 'rw', false, true);
  assert.equal(r.err, OK, 'mmap itself succeeds');
  assert.equal(r.populated, 2);
  assert.equal(k.frames.used, 2);
  assertConsistent(k);
});

// ---- mprotect -----------------------------------------------------------------------------------

test('mprotect ro write-protects the PTEs: stores fault, loads work, exclusivity is kept', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 2);
  const a = writeOk(k, mm, vpn, 1);
  readOk(k, mm, vpn + 1);
  assert.equal(doMprotect(k, mm, vpn, vpn + 2, 'ro'), OK);
  assert.equal(presentPte(k, mm, vpn).write, false);
  assert.equal(write(k, mm, vpn, 2).err, SIGSEGV);
  assert.equal(write(k, mm, vpn + 1, 2).err, SIGSEGV);
  assert.equal(readOk(k, mm, vpn), 1);
  assert.equal(frame(k, a).exclusive, true);
  assert.equal(frame(k, a).value, 1);
  assertConsistent(k);
});

test('mprotect none: even loads fault; the page stays mapped and comes back with rw', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 1);
  const a = writeOk(k, mm, vpn, 1);
  doMprotect(k, mm, vpn, vpn + 1, 'none');
  assert.equal(read(k, mm, vpn).err, SIGSEGV);
  doMprotect(k, mm, vpn, vpn + 1, 'rw');
  assert.equal(readOk(k, mm, vpn), 1);
  assert.equal(presentPte(k, mm, vpn).pfn, a);
});

/** P writes page 0, reads page 1 (zero page), writes page 2 and forks Q (page 2 shared); then mprotect ro, rw. */
function roThenRw(name: string): { k: Kernel; mm: Mm; vpn: number; own: number; sharedPfn: number } {
  const k = kernel(name);
  const { mm, vpn } = proc(k, 3);
  const sharedPfn = writeOk(k, mm, vpn + 2, 3);
  dupMmap(k, mm);
  const own = writeOk(k, mm, vpn, 1); // page 0 written after the fork: exclusive
  readOk(k, mm, vpn + 1);
  doMprotect(k, mm, vpn, vpn + 3, 'ro');
  doMprotect(k, mm, vpn, vpn + 3, 'rw');
  return { k, mm, vpn, own, sharedPfn };
}

test('v6: mprotect rw maps exclusive anonymous pages writable at once, and nothing else', () => {
  const { k, mm, vpn, own, sharedPfn } = roThenRw('v6');
  assert.equal(presentPte(k, mm, vpn).write, true, 'exclusive page: writable (can_change_pte_writable)');
  assert.equal(presentPte(k, mm, vpn + 1).write, false, 'the zero page stays read-only');
  assert.equal(presentPte(k, mm, vpn + 1).pfn, 0);
  assert.equal(presentPte(k, mm, vpn + 2).write, false, 'a shared page stays read-only');
  assert.equal(write(k, mm, vpn, 5).faults, 0);
  assert.equal(presentPte(k, mm, vpn).pfn, own);
  const r = write(k, mm, vpn + 2, 6);
  assert.equal(r.faults, 1);
  assert.notEqual(r.pfn, sharedPfn, 'and its write copies it');
  assertConsistent(k);
});

for (const name of ['v5.9', 'v5.19']) {
  test(`${name}: mprotect rw leaves private PTEs read-only; the next write faults and reuses the page`, () => {
    const { k, mm, vpn, own } = roThenRw(name);
    assert.equal(presentPte(k, mm, vpn).write, false);
    const r = write(k, mm, vpn, 5);
    assert.equal(r.faults, 1);
    assert.equal(r.pfn, own, 'reused (sole mapper, sole reference)');
    assertConsistent(k);
  });
}

test('v6: mprotect rw does not upgrade a PTE whose soft-dirty bit is clear while tracking is on', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 1);
  writeOk(k, mm, vpn, 1);
  clearSoftDirty(k, mm);
  doMprotect(k, mm, vpn, vpn + 1, 'ro');
  doMprotect(k, mm, vpn, vpn + 1, 'rw');
  assert.equal(presentPte(k, mm, vpn).write, false, 'the write must fault to be tracked');
  assert.equal(write(k, mm, vpn, 2).faults, 1);
});

// can_change_pte_writable() in 6.0.1 and 6.1.166 (mm/mprotect.c) returns false for a clean PTE
// (!pte_dirty); 6.2.12's tests only PageAnonExclusive for a private mapping ("mm/mprotect: allow
// clean exclusive anon pages to be writable"). do_swap_page() of 6.1.166 maps a page read back by
// a read fault exclusive (the swap entry's exclusive bit) but clean and read-only; 5.19-6.10's
// wp_page_copy() maps an unshare's copy clean too.
for (const [name, upgraded] of [['6.1', false], ['v6.2', true]] as const) {
  test(`${name}: mprotect rw ${upgraded ? 'upgrades' : 'leaves read-only'} the clean PTE of an exclusive page swapped in by a read fault`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 2);
    writeOk(k, mm, vpn, 1);
    writeOk(k, mm, vpn + 1, 2);
    assert.equal(swapOutPage(k, mm, vpn), null);
    assert.equal(readOk(k, mm, vpn), 1);
    const back = presentPte(k, mm, vpn);
    assert.deepEqual([back.write, back.dirty, frame(k, back.pfn).exclusive], [false, false, true], 'read back: read-only, clean, exclusive');
    doMprotect(k, mm, vpn, vpn + 2, 'ro');
    doMprotect(k, mm, vpn, vpn + 2, 'rw');
    assert.equal(presentPte(k, mm, vpn).write, upgraded);
    assert.equal(presentPte(k, mm, vpn + 1).write, true, 'the dirty PTE of an exclusive page: writable on both');
    const r = write(k, mm, vpn, 5);
    assert.equal(r.faults, upgraded ? 0 : 1);
    assert.equal(r.pfn, back.pfn, upgraded ? 'written in place' : 'the write fault reuses the exclusive page');
    assertConsistent(k);
  });

  test(`${name}: mprotect rw ${upgraded ? 'upgrades' : 'leaves read-only'} the clean copy a R/O pin's unshare made`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 1);
    const shared = writeOk(k, mm, vpn, 1);
    dupMmap(k, mm);
    const pin = getUserPages(k, mm, vpn, vpn + 1, { pin: true, write: false, longterm: true, fast: false, kind: 'pin' });
    assert.equal(pin.err, OK);
    const copy = presentPte(k, mm, vpn);
    assert.notEqual(copy.pfn, shared, 'FAULT_FLAG_UNSHARE copied the shared page');
    assert.deepEqual([copy.write, copy.dirty], [false, false]);
    doMprotect(k, mm, vpn, vpn + 1, 'ro');
    doMprotect(k, mm, vpn, vpn + 1, 'rw');
    assert.equal(presentPte(k, mm, vpn).write, upgraded);
  });
}

// do_anonymous_page() (5.7.14, 6.1.166, 6.18.2) makes the PTE writable and dirty only under
// VM_WRITE: where the zero page is forbidden, a read fault in a read-only mapping maps its new
// exclusive page clean, so 6.1's mprotect rw leaves it read-only and 6.2's makes it writable.
for (const [name, upgraded] of [['6.1', false], ['v6.2', true]] as const) {
  test(`${name} with mm_forbids_zeropage: a read fault in a read-only mapping maps a clean page; mprotect rw ${upgraded ? 'upgrades' : 'does not upgrade'} it`, () => {
    const k = kernel(name, { sets: ['mmForbidsZeropage=true'] });
    const { mm, vpn } = proc(k, 1, 'ro');
    assert.equal(readOk(k, mm, vpn), 0);
    const p = presentPte(k, mm, vpn);
    assert.deepEqual([p.write, p.dirty, p.softDirty, frame(k, p.pfn).exclusive], [false, false, false, true]);
    doMprotect(k, mm, vpn, vpn + 1, 'rw');
    assert.equal(presentPte(k, mm, vpn).write, upgraded);
    assert.equal(write(k, mm, vpn, 1).faults, upgraded ? 0 : 1);
    assert.equal(presentPte(k, mm, vpn).pfn, p.pfn);
    assertConsistent(k);
  });
}

// userfaultfd_pte_wp() (6.2.12's include/linux/userfaultfd_k.h) asks the VMA too: after mremap
// without UFFD_FEATURE_EVENT_REMAP the new VMA is not registered (mremap_userfaultfd_prep), and
// before 6.13 move_ptes() keeps the PTE's uffd-wp bit; can_change_pte_writable() no longer
// refuses that PTE, so mprotect ro then rw maps the exclusive page writable.
for (const name of ['6.1', 'v6.2', '6.6']) {
  test(`${name}: mprotect rw upgrades a PTE whose uffd-wp bit mremap carried out of the registered mapping`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 2);
    writeOk(k, mm, vpn, 1);
    assert.equal(uffdRegister(k, mm, vpn, vpn + 2), OK);
    assert.equal(uffdWriteprotect(k, mm, vpn, vpn + 2, true), OK);
    const m = doMremap(k, mm, vpn, vpn + 1);
    assert.equal(m.err, OK);
    assert.equal(mm.findVma(m.start)!.flags & VM_UFFD_WP, 0, 'the new mapping is not registered');
    assert.notEqual(k.tables.bits[pteSlot(k, mm, m.start)]! & PTE_UFFD_WP, 0, 'the bit moved with the PTE (before 6.13)');
    doMprotect(k, mm, m.start, m.start + 1, 'ro');
    doMprotect(k, mm, m.start, m.start + 1, 'rw');
    assert.equal(presentPte(k, mm, m.start).write, true);
    assert.equal(write(k, mm, m.start, 2).faults, 0);
    assert.equal(mm.uffdFaults, 0);
  });
}

test('mprotect rw of a mapping that is rw already changes nothing (mprotect_fixup: newflags == oldflags): a read-only PTE of an exclusive page stays read-only', () => {
  // The page stops being shared (the child exits); an R/O long-term pin then unshares it by
  // reuse (wp_can_reuse_anon_folio: refcount 1): PG_anon_exclusive again, the PTE read-only
  // (FAULT_FLAG_UNSHARE never maps writable), soft-dirty (VM_SOFTDIRTY: no clear_refs ran).
  // mprotect(PROT_READ | PROT_WRITE) on the rw mapping returns before change_protection(): the
  // PTE stays read-only (the model once upgraded it, as for a ro -> rw change).
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 1);
  const own = writeOk(k, mm, vpn, 1);
  exitMmap(k, dupMmap(k, mm).child!);
  const pin = getUserPages(k, mm, vpn, vpn + 1, { pin: true, write: false, longterm: true, fast: false, kind: 'pin' });
  assert.equal(pin.err, OK);
  assert.equal(presentPte(k, mm, vpn).pfn, own, 'reused, not copied');
  assert.equal(presentPte(k, mm, vpn).write, false);
  assert.equal(doMprotect(k, mm, vpn, vpn + 1, 'rw'), OK);
  assert.equal(presentPte(k, mm, vpn).write, false, 'flags unchanged: no change_protection');
  // A real change (ro, then rw) does upgrade it (can_change_pte_writable: exclusive, soft-dirty).
  doMprotect(k, mm, vpn, vpn + 1, 'ro');
  doMprotect(k, mm, vpn, vpn + 1, 'rw');
  assert.equal(presentPte(k, mm, vpn).write, true);
});

test('mprotect of part of a mapping splits it into three', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 4);
  doMprotect(k, mm, vpn + 1, vpn + 3, 'ro');
  assert.equal(mm.vmas.length, 3);
  assert.equal(write(k, mm, vpn, 1).err, OK);
  assert.equal(write(k, mm, vpn + 1, 1).err, SIGSEGV);
  assert.equal(write(k, mm, vpn + 3, 1).err, OK);
});

// ---- madvise ------------------------------------------------------------------------------------

test('madvise dontfork / dofork and wipeonfork / keeponfork set and clear their flags on the range only', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 3);
  doMadvise(k, mm, vpn + 1, vpn + 2, 'dontfork');
  assert.equal(mm.vmas.length, 3);
  assert.ok(mm.findVma(vpn + 1)!.flags & VM_DONTCOPY);
  assert.equal(mm.findVma(vpn)!.flags & VM_DONTCOPY, 0);
  doMadvise(k, mm, vpn, vpn + 3, 'dofork');
  for (const v of mm.vmas) assert.equal(v.flags & VM_DONTCOPY, 0);
  const q = dupMmap(k, mm).child!;
  assert.ok(q.findVma(vpn + 1));
});

test('madvise mergeable marks the mapping for KSM; pageout swaps a page mapped once out to a slot', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 1);
  writeOk(k, mm, vpn, 5);
  assert.equal(doMadvise(k, mm, vpn, vpn + 1, 'mergeable'), OK);
  assert.notEqual(mm.findVma(vpn)!.flags & VM_MERGEABLE, 0);
  const used = k.frames.used;
  assert.equal(doMadvise(k, mm, vpn, vpn + 1, 'pageout'), OK);
  assert.equal(k.frames.used, used - 1, 'nothing else held the page: it left memory');
  assert.equal(k.swap.inUse, 1, 'its data is in one swap slot');
  assert.equal(mm.rssAnon, 0);
  const r = write(k, mm, vpn, 6);
  assert.equal(r.err, OK);
  assert.equal(r.faults, 1, 'one fault swaps it back in, writable: it was exclusive (SWP_EXCLUSIVE)');
  assert.equal(k.swap.inUse, 0, 'the slot is free again once nothing names it');
});

test('a profile without swap or KSM says so (n/a) instead of doing nothing', () => {
  const k = new Kernel({ ...builtinProfile('v6')!, swap: false, ksm: false }, { frames: 100, pinBias: 1024 });
  const { mm, vpn } = proc(k, 1);
  assert.equal(doMadvise(k, mm, vpn, vpn + 1, 'mergeable'), NA);
  assert.equal(doMadvise(k, mm, vpn, vpn + 1, 'pageout'), NA);
});

// ---- clear_refs (soft-dirty) --------------------------------------------------------------------

for (const name of ['v5.9', 'v6']) {
  test(`${name}: clear-softdirty write-protects private PTEs; the next write faults and reuses the page`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 2);
    const a = writeOk(k, mm, vpn, 1);
    readOk(k, mm, vpn + 1);
    clearSoftDirty(k, mm);
    assert.equal(presentPte(k, mm, vpn).write, false);
    assert.equal(presentPte(k, mm, vpn).softDirty, false);
    assert.equal(mm.findVma(vpn)!.flags & VM_SOFTDIRTY, 0, 'tracking is on');
    const r = write(k, mm, vpn, 2);
    assert.equal(r.faults, 1);
    assert.equal(r.pfn, a);
    assert.equal(presentPte(k, mm, vpn).softDirty, true, 'the write is recorded');
    assert.equal(presentPte(k, mm, vpn + 1).pfn, 0, 'the zero page is left as it was');
    assertConsistent(k);
  });
}

/** P writes a page and a pin is taken on it by hand (refcount + bias, MMF_HAS_PINNED). */
function pinned(name: string): { k: Kernel; mm: Mm; vpn: number; pfn: number } {
  const k = kernel(name);
  const { mm, vpn } = proc(k, 1);
  const pfn = writeOk(k, mm, vpn, 1);
  k.frames.addRefcount(pfn, k.config.pinBias);
  mm.hasPinned = true;
  return { k, mm, vpn, pfn };
}

for (const name of ['v5.14', 'v6']) {
  test(`${name}: clear-softdirty skips a maybe-pinned page (9348b73c2e1b): its PTE stays writable`, () => {
    const { k, mm, vpn, pfn } = pinned(name);
    clearSoftDirty(k, mm);
    assert.equal(presentPte(k, mm, vpn).write, true);
    const r = write(k, mm, vpn, 2);
    assert.equal(r.faults, 0);
    assert.equal(r.pfn, pfn, 'the pin and the mapping still share the page');
  });
}

test('v5.9: clear-softdirty write-protects a pinned page, and the next write copies it away from the pin', () => {
  const { k, mm, vpn, pfn } = pinned('v5.9');
  clearSoftDirty(k, mm);
  assert.equal(presentPte(k, mm, vpn).write, false);
  const r = write(k, mm, vpn, 2);
  assert.notEqual(r.pfn, pfn, 'page_count != 1: copied; the pinned page no longer is the process\'s');
  assert.equal(frame(k, pfn).value, 1);
});

test('v6: clear-softdirty skips a page only if the mm has pinned (pte_is_pinned checks MMF_HAS_PINNED)', {
}, () => {
  // Two GUP (FOLL_GET) references with pin_bias 3: refcount 3 looks pinned, but nothing ever
  // pinned in this mm, so the kernel write-protects the PTE as for any page.
  const k = kernel('v6', { pinBias: 3 });
  const { mm, vpn } = proc(k, 1);
  const pfn = writeOk(k, mm, vpn, 1);
  k.frames.addRefcount(pfn, 2);
  assert.equal(mm.hasPinned, false);
  clearSoftDirty(k, mm);
  assert.equal(presentPte(k, mm, vpn).write, false, 'write-protected for soft-dirty tracking');
});

test('clear-softdirty write-protects shared mappings too (clear_refs walks every VMA)', {
}, () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 1, 'rw', true);
  const pfn = writeOk(k, mm, vpn, 1);
  clearSoftDirty(k, mm);
  assert.equal(presentPte(k, mm, vpn).write, false, 'write-protected for soft-dirty tracking');
  const r = write(k, mm, vpn, 2);
  assert.equal(r.faults, 1, 'the write is caught by a fault');
  assert.equal(r.pfn, pfn, 'and made writable in place (wp_page_shared): no copy');
});

test('soft-dirty tracking armed on a shared mapping write-protects its vm_page_prot (vma_wants_writenotify): a read fault maps read-only, mprotect ro then rw leaves PTEs read-only; untracked, both are writable', () => {
  for (const name of ['v5.7', 'v6']) {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 3, 'rw', true);
    readOk(k, mm, vpn);
    assert.equal(presentPte(k, mm, vpn).write, true, `${name}: untracked, a read fault maps PAGE_SHARED: writable`);
    clearSoftDirty(k, mm);
    readOk(k, mm, vpn + 1);
    assert.equal(presentPte(k, mm, vpn + 1).write, false, `${name}: tracked, a read fault maps read-only`);
    writeOk(k, mm, vpn + 1, 5);
    const after = presentPte(k, mm, vpn + 1);
    assert.ok(after.write && after.softDirty, `${name}: the write faulted and marked the page soft-dirty`);
    assert.equal(doMprotect(k, mm, vpn, vpn + 3, 'ro'), OK);
    assert.equal(doMprotect(k, mm, vpn, vpn + 3, 'rw'), OK);
    assert.equal(presentPte(k, mm, vpn + 1).write, false, `${name}: mprotect rw gives the tracked mapping's read-only vm_page_prot`);
    assertConsistent(k);
  }
});
