// The CPU side: a load or store at a virtual page, taking the page fault the MMU would raise.

import { OK, PTE_DIRTY, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_WRITE, PTE_YOUNG, VM_READ, VM_WRITE, SIGSEGV } from './constants.js';
import { FAULT_FLAG_WRITE, handleMmFault } from './fault.js';
import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import { pmdWriteProtected, pteSlot } from './walk.js';

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
  const slot = pteSlot(k, mm, vpn);
  if (slot < 0) return -1;
  const bits = k.tables.bits[slot]!;
  if (!(bits & PTE_PRESENT)) return -1;
  if (write && !(bits & PTE_WRITE)) return -1;
  // x86 ANDs R/W across levels: a write-protected PMD (a shared COW PTE table) makes writes fault.
  if (write && mm.cowPgtable && pmdWriteProtected(k, mm, vpn)) return -1;
  return slot;
}

/** A CPU load or store: fault until the MMU allows it, then touch the frame. */
export function cpuAccess(k: Kernel, mm: Mm, vpn: number, write: boolean, value: number): AccessResult {
  let faults = 0;
  for (let tries = 0; tries <= MAX_RETRIES; tries++) {
    const slot = mmuSlot(k, mm, vpn, write);
    if (slot >= 0) {
      const pfn = k.tables.entry[slot]!;
      if (write) {
        k.tables.bits[slot] = k.tables.bits[slot]! | PTE_DIRTY | PTE_YOUNG | PTE_SOFT_DIRTY;
        k.frames.value[pfn] = value;
        return { err: OK, value: -1, pfn, faults };
      }
      k.tables.bits[slot] = k.tables.bits[slot]! | PTE_YOUNG;
      return { err: OK, value: k.frames.value[pfn]!, pfn, faults };
    }
    faults++;
    const err = handleMmFault(k, mm, vpn, write ? FAULT_FLAG_WRITE : 0);
    if (err !== OK) return { err, value: -1, pfn: -1, faults };
  }
  k.emit('bug', mm.id, vpn, -1, -1, 'the fault handler returned success but the access still faults');
  return { err: SIGSEGV, value: -1, pfn: -1, faults };
}
