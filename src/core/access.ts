// The CPU side: a load or store at a virtual page, taking the page fault the MMU would raise;
// and a store split into atomic steps (`write ... &`): the same MMU test, the same fault
// handler, stopped after wp_page_copy()'s copy (made outside the page-table lock) and resumed
// at the next step, which installs the copy or retries when the PTE changed (!pte_same).

import { OK, PTE_DIRTY, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_WRITE, PTE_YOUNG, VM_READ, VM_WRITE, SIGSEGV } from './constants.js';
import { FAULT_COPY_MADE, FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_WRITE, handleMmFault, wpPageCopyFinish } from './fault.js';
import type { Kernel, TaskState } from './kernel.js';
import type { Mm } from './mm.js';
import { pmdWriteProtected } from './walk.js';
import { followSlot, slotPfn } from './huge.js';

export interface AccessResult {
  /** OK, SIGSEGV, OOM or NA. */
  err: number;
  /** The value read (loads), or -1. */
  value: number;
  /** The frame accessed, or -1. */
  pfn: number;
  /** Faults taken. */
  faults: number;
}

const MAX_RETRIES = 4;

/** Would the MMU allow this access without a fault? */
export function mmuAllows(k: Kernel, mm: Mm, vpn: number, write: boolean): boolean {
  return mmuSlot(k, mm, vpn, write) >= 0;
}

/**
 * The PTE slot when the MMU allows this access without a fault (present, and writable for a
 * store), else -1. The one test of every CPU access, synchronous (cpuAccess) or split (tasks.ts).
 */
export function mmuSlot(k: Kernel, mm: Mm, vpn: number, write: boolean): number {
  const vma = mm.findVma(vpn);
  // PROT_NONE / read-only VMAs: the PTE carries no access the VMA lacks.
  if (vma === null || !(vma.flags & (write ? VM_WRITE : VM_READ))) return -1;
  const slot = followSlot(k, mm, vpn); // a huge PMD maps the page itself
  if (slot < 0) return -1;
  const bits = k.tables.bits[slot]!;
  if (!(bits & PTE_PRESENT)) return -1;
  if (write && !(bits & PTE_WRITE)) return -1;
  // x86 ANDs R/W across levels: a write-protected PMD (a shared COW PTE table) makes writes fault.
  if (write && mm.cowPgtable && pmdWriteProtected(k, mm, vpn)) return -1;
  return slot;
}

/** The store itself, through a PTE (or huge PMD) the MMU allows it through (mmuSlot): marked dirty and young. */
export function cpuStore(k: Kernel, slot: number, vpn: number, value: number): void {
  k.tables.setBits(slot, k.tables.bits[slot]! | PTE_DIRTY | PTE_YOUNG | PTE_SOFT_DIRTY);
  k.frames.setValue(slotPfn(k, slot, vpn), value);
}

/**
 * The arch fault handler's handle_mm_fault(): when the fault went to userfaultfd's monitor
 * (VM_FAULT_RETRY, not accounted), it calls handle_mm_fault() again at once (FAULT_FLAG_TRIED),
 * and that retry is accounted as a fault even when the PTE now allows the access.
 */
function cpuFault(k: Kernel, mm: Mm, vpn: number, flags: number, split: FaultTask | null = null): number {
  const before = mm.uffdFaults;
  // The arch handler's faults may always be retried (FAULT_FLAG_DEFAULT has FAULT_FLAG_ALLOW_RETRY).
  const f = flags | FAULT_FLAG_ALLOW_RETRY;
  const err = handleMmFault(k, mm, vpn, f, split);
  return err === OK && mm.uffdFaults !== before ? handleMmFault(k, mm, vpn, f, split) : err;
}

/** A CPU load or store: fault until the MMU allows it, then touch the frame. */
export function cpuAccess(k: Kernel, mm: Mm, vpn: number, write: boolean, value: number): AccessResult {
  let faults = 0;
  for (let tries = 0; tries <= MAX_RETRIES; tries++) {
    const slot = mmuSlot(k, mm, vpn, write);
    if (slot >= 0) {
      const pfn = slotPfn(k, slot, vpn);
      if (write) {
        cpuStore(k, slot, vpn, value);
        return { err: OK, value: -1, pfn, faults };
      }
      k.tables.setBits(slot, k.tables.bits[slot]! | PTE_YOUNG);
      return { err: OK, value: k.frames.value[pfn]!, pfn, faults };
    }
    faults++;
    const err = cpuFault(k, mm, vpn, write ? FAULT_FLAG_WRITE : 0);
    if (err !== OK) return { err, value: -1, pfn: -1, faults };
  }
  k.emit('bug', mm.id, vpn, -1, -1, 'the fault handler returned success but the access still faults');
  return { err: SIGSEGV, value: -1, pfn: -1, faults };
}

// ---- a store split into atomic steps -------------------------------------------------------

export interface FaultTask {
  kind: 'write';
  mm: number;
  lo: number;
  hi: number;
  vpn: number;
  value: number;
  phase: 'fault' | 'install' | 'store';
  /** wp_page_copy()'s state between its two parts (a WpCopy). */
  seenBits: number;
  seenPfn: number;
  newPfn: number;
  /** Values stored so far (vpns), for the caller's ideal memory. */
  stored: number[];
  err: number;
  /** mmap_lock held for read (between wp_page_copy()'s two parts). */
  locked: boolean;
}

export function startWrite(_k: Kernel, mm: Mm, lo: number, hi: number, value: number): FaultTask {
  return newFaultTask(mm.id, lo, hi, value);
}

/** A store not begun: every field, in one order (startWrite and cloneTask make each FaultTask here: one hidden class). */
export function newFaultTask(mm: number, lo: number, hi: number, value: number): FaultTask {
  return { kind: 'write', mm, lo, hi, vpn: lo, value, phase: 'fault', seenBits: 0, seenPfn: -1, newPfn: -1, stored: [], err: OK, locked: false };
}

/**
 * One atomic step of a store to [lo, hi): `fault` (the MMU test; if it faults, the fault
 * handler under mmap_lock for read, stopped after wp_page_copy()'s copy), `install`
 * (wp_page_copy()'s second part), `store` (the instruction again, through the same MMU test).
 */
export function stepWrite(k: Kernel, t: FaultTask): TaskState {
  const mm = k.mms[t.mm]!;
  switch (t.phase) {
    case 'fault': {
      const vma = mm.findVma(t.vpn);
      if (vma === null || !(vma.flags & VM_WRITE)) {
        t.err = handleMmFault(k, mm, t.vpn, FAULT_FLAG_WRITE); // SIGSEGV, before any lock
        return 'done';
      }
      if (mmuSlot(k, mm, t.vpn, true) >= 0) {
        t.phase = 'store';
        return stepWrite(k, t); // no fault: the store itself is this step
      }
      // A fault: mmap_lock for read (a fork holding it for write blocks us).
      if (mm.mmapWriter >= 0) return 'blocked';
      const err = cpuFault(k, mm, t.vpn, FAULT_FLAG_WRITE, t);
      if (err === FAULT_COPY_MADE) {
        // wp_page_copy()'s copy is made; mmap_lock stays held until it is installed.
        mm.mmapReaders++;
        t.locked = true;
        t.phase = 'install';
        return 'running';
      }
      if (err !== OK) {
        t.err = err;
        return 'done';
      }
      t.phase = 'store';
      return 'running';
    }
    case 'install': {
      // The page-table lock retaken: installed, or dropped and the fault retried (!pte_same).
      t.phase = wpPageCopyFinish(k, mm, t.vpn, t) ? 'store' : 'fault';
      mm.mmapReaders--;
      t.locked = false;
      return 'running';
    }
    case 'store': {
      // The faulting instruction runs again, through the same MMU test as a synchronous store:
      // if the PTE (or the PMD of a shared COW PTE table) lost write access meanwhile, it faults again.
      const slot = mmuSlot(k, mm, t.vpn, true);
      if (slot < 0) {
        t.phase = 'fault';
        return 'running';
      }
      cpuStore(k, slot, t.vpn, t.value);
      t.stored.push(t.vpn);
      t.vpn++;
      if (t.vpn < t.hi) {
        t.phase = 'fault';
        return 'running';
      }
      return 'done';
    }
  }
}
