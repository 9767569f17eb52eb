// userfaultfd in write-protect mode (fs/userfaultfd.c, mm/userfaultfd.c): registering a range
// (UFFDIO_REGISTER_MODE_WP sets VM_UFFD_WP), write-protecting and un-protecting it
// (UFFDIO_WRITEPROTECT: change_protection() with MM_CP_UFFD_WP / MM_CP_UFFD_WP_RESOLVE), and the
// monitor's side of a write-protect fault (handle_userfault). The scenario's monitor resolves every
// fault at once by un-protecting the page, as QEMU's background snapshot or CRIU do after saving
// it; the faulting access is then retried. A leaf of src/core's paths (no import of fault.ts).

import {
  EINVAL, ENOENT, HPAGE_PMD_NR, NA, OK, PTE_DEVEXCL_WRITE, PTE_DEVICE_EXCLUSIVE, PTE_MARKER, PTE_PRESENT,
  PTE_SWAP, PTE_UFFD_WP, PTE_WRITE, RETRY, SIGBUS, VM_MAYSHARE, VM_SHARED,
  VM_UFFD_WP,
} from './constants.js';
import type { Kernel } from './kernel.js';
import type { Mm, Vma } from './mm.js';
import { mmuNotify } from './exclusive.js';
import { splitHugePmd } from './huge.js';
import { pmdLeafSlot, pteSlot, pteSlotAlloc, setPte } from './walk.js';
import { canChangePteWritable, vmGetPageProtWrite, vmPageProtWrite } from './page.js';

// userfaultfd_pte_wp() lives in page.ts beside can_change_pte_writable(), which asks it too.
export { userfaultfdPteWp } from './page.js';

/** vma_can_userfault() for VM_UFFD_WP: private anonymous memory; shmem from 5.19. */
function vmaCanUffdWp(k: Kernel, vma: Vma): boolean {
  return vma.shm === null || k.profile.uffdWpShmem;
}

/**
 * userfaultfd_register() with UFFDIO_REGISTER_MODE_WP on [lo, hi): every page must be mapped by
 * a VMA that allows it (EINVAL otherwise, nothing changed); the VMAs are split at the ends and
 * get VM_UFFD_WP. `forkEvent`: the context's UFFD_FEATURE_EVENT_FORK (UFFDIO_API). NA: no uffd-wp.
 */
export function uffdRegister(k: Kernel, mm: Mm, lo: number, hi: number): number {
  if (!k.profile.uffdWp) return NA;
  if (uffdRegisterRefused(k, mm, lo, hi)) return EINVAL;
  for (const v of mm.splitRange(k, lo, hi)) v.flags |= VM_UFFD_WP;
  mm.mergeVmas(k);
  mm.uffdCtx = true;
  if (k.tracing) k.emit('note', mm.id, lo, -1, -1, `UFFDIO_REGISTER (write-protect mode) on ${hi - lo} page(s): VM_UFFD_WP set`);
  return OK;
}

/**
 * userfaultfd_register()'s checks, made before anything changes: a page of [lo, hi) is not
 * mapped, or its VMA cannot take VM_UFFD_WP (vma_can_userfault): EINVAL.
 */
export function uffdRegisterRefused(k: Kernel, mm: Mm, lo: number, hi: number): boolean {
  let at = lo;
  for (const v of mm.vmas) {
    if (v.end <= at || v.start >= hi) continue;
    if (v.start > at || !vmaCanUffdWp(k, v)) return true;
    at = v.end;
  }
  return at < hi;
}

/**
 * mwriteprotect_range() -> uffd_wp_range() -> change_pte_range() with MM_CP_UFFD_WP(_RESOLVE):
 * `wp` sets the uffd-wp bit of every present PTE (write-protecting it), of every swap and
 * device-exclusive entry, and (shmem, 5.19+) installs a uffd-wp PTE marker in a none PTE; an
 * anonymous none PTE is left alone. Un-protecting clears the bits and drops the markers; from 6.3
 * an exclusive anonymous page is mapped writable at once (MM_CP_TRY_CHANGE_WRITABLE); before, each
 * present PTE takes vm_get_page_prot()'s write bit (vmGetPageProtWrite). ENOENT when
 * a page of the range is not registered in write-protect mode; NA without uffd-wp.
 * Returns the pages whose entry was not none (what the monitor protected) through `touched`.
 */
export function uffdWriteprotect(k: Kernel, mm: Mm, lo: number, hi: number, wp: boolean, touched: number[] | null = null): number {
  if (!k.profile.uffdWp) return NA;
  for (let v = lo; v < hi; v++) {
    const vma = mm.findVma(v);
    if (vma === null || !(vma.flags & VM_UFFD_WP)) return ENOENT;
  }
  // change_protection(): the MMU notifier tells devices first (MMU_NOTIFY_PROTECTION_VMA).
  mmuNotify(k, mm.id, lo, hi, wp ? 'UFFDIO_WRITEPROTECT' : 'UFFDIO_WRITEPROTECT resolve');
  if (mm.hugePmds > 0) uffdWpHugePmds(k, mm, lo, hi, wp, touched);
  const t = k.tables;
  for (let v = lo; v < hi; v++) {
    const vma = mm.findVma(v)!;
    let slot = pteSlot(k, mm, v);
    if (slot < 0 && mm.hugePmds > 0 && pmdLeafSlot(k, mm, v) >= 0) continue; // a whole huge PMD, done above
    const bits = slot < 0 ? 0 : t.bits[slot]!;
    if (bits === 0) {
      // A none PTE: only shmem keeps the protection, as a marker (PTE_MARKER_UFFD_WP).
      if (!wp || vma.shm === null) continue;
      slot = pteSlotAlloc(k, mm, v);
      setPte(k, slot, 0, PTE_MARKER | PTE_UFFD_WP);
      touched?.push(v);
      continue;
    }
    touched?.push(v);
    if (bits & PTE_MARKER) {
      if (!wp) setPte(k, slot, 0, 0); // the next fault runs without uffd trapping
      continue;
    }
    if (!(bits & PTE_PRESENT)) {
      // Swap and device-exclusive entries carry the bit in the entry (pte_swp_mkuffd_wp). Any
      // change_pte_range() turns a writable device-exclusive entry into a readable one (5.14-6.14),
      // un-protecting too: the CPU's next access restores the PTE read-only.
      if (bits & (PTE_SWAP | PTE_DEVICE_EXCLUSIVE)) t.setBits(slot, (wp ? bits | PTE_UFFD_WP : bits & ~PTE_UFFD_WP) & ~PTE_DEVEXCL_WRITE);
      continue;
    }
    if (wp) {
      t.setBits(slot, (bits & ~PTE_WRITE) | PTE_UFFD_WP); // pte_wrprotect(pte_mkuffd_wp())
      continue;
    }
    t.setBits(slot, bits & ~PTE_UFFD_WP);
    if (!k.profile.uffdUnprotectWritable) {
      // uffd_wp_range() before 6.3 (931298e103c2) passes change_protection() vm_get_page_prot(vm_flags),
      // not vm_page_prot: pte_modify() keeps no write bit of the old PTE (_PAGE_RW is not in
      // _PAGE_CHG_MASK) and nothing upgrades it (no MM_CP_DIRTY_ACCT, no MM_CP_TRY_CHANGE_WRITABLE).
      // A private mapping's PAGE_COPY leaves every present PTE un-protected read-only, protected
      // before or not; a shared writable mapping's PAGE_SHARED makes every one writable, whatever
      // writenotify vm_page_prot asks for.
      t.setBits(slot, vmGetPageProtWrite(vma.flags) ? t.bits[slot]! | PTE_WRITE : t.bits[slot]! & ~PTE_WRITE);
      continue;
    }
    if (vma.flags & (VM_SHARED | VM_MAYSHARE)) {
      // change_pte_range() gives the PTE the VMA's vm_page_prot, which uffd-wp registration made
      // write-protected (writenotify: userfaultfd_set_vm_flags), and no PTE is upgraded:
      // vma_wants_manual_pte_write_upgrade() asks vma_wants_writenotify() with that very
      // vm_page_prot, which it takes for a driver's own protection (false). So the next write
      // faults, protected before or not (6.18's mm/userfaultfd.c, mm/mmap.c; seen on a 6.18 kernel).
      // (Without writenotify, vm_page_prot would be PAGE_SHARED: writable.)
      if (vmPageProtWrite(k, vma)) t.setBits(slot, t.bits[slot]! | PTE_WRITE);
      else t.setBits(slot, t.bits[slot]! & ~PTE_WRITE);
    } else if (canChangePteWritable(k, vma, t.bits[slot]!, t.entry[slot]!)) {
      t.setBits(slot, t.bits[slot]! | PTE_WRITE);
    }
  }
  return OK;
}

/**
 * change_pmd_range() with MM_CP_UFFD_WP(_RESOLVE) over the huge PMDs of [lo, hi): one the range
 * covers whole stays a PMD (change_huge_pmd(), 5.7 on): protecting write-protects it and sets
 * the uffd-wp bit on the PMD; un-protecting clears the bit and, as for a PTE
 * (uffdUnprotectWritable, can_change_pmd_writable()), maps an exclusive THP writable at once;
 * before 6.3 pmd_modify() gives it vm_get_page_prot()'s write bit (read-only: private).
 * One the range covers in part is split first (__split_huge_pmd, the PTEs inheriting the PMD's
 * bits) for the PTE loop. Every page of a PMD kept whole goes to `touched`.
 */
function uffdWpHugePmds(k: Kernel, mm: Mm, lo: number, hi: number, wp: boolean, touched: number[] | null): void {
  const t = k.tables;
  for (let a = lo - (lo & (HPAGE_PMD_NR - 1)); a < hi; a += HPAGE_PMD_NR) {
    const s = pmdLeafSlot(k, mm, a);
    if (s < 0) continue;
    if (a < lo || a + HPAGE_PMD_NR > hi) {
      splitHugePmd(k, mm, s, Math.max(a, lo), 'userfaultfd write-protect of part of a huge PMD (change_pmd_range)');
      continue;
    }
    const bits = t.bits[s]!;
    if (wp) t.setBits(s, (bits & ~PTE_WRITE) | PTE_UFFD_WP); // pmd_wrprotect(pmd_mkuffd_wp())
    else {
      t.setBits(s, bits & ~PTE_UFFD_WP);
      const vma = mm.findVma(a)!;
      if (!k.profile.uffdUnprotectWritable) t.setBits(s, vmGetPageProtWrite(vma.flags) ? t.bits[s]! | PTE_WRITE : t.bits[s]! & ~PTE_WRITE); // pmd_modify()
      else if (canChangePteWritable(k, vma, t.bits[s]!, t.entry[s]!)) t.setBits(s, t.bits[s]! | PTE_WRITE);
    }
    for (let v = a; v < a + HPAGE_PMD_NR; v++) touched?.push(v);
  }
}

/**
 * handle_userfault(vmf, VM_UFFD_WP), and the scenario's monitor answering it: the fault is
 * counted for the mm, the monitor un-protects the page (UFFDIO_WRITEPROTECT without MODE_WP) and
 * wakes the thread, whose access is retried. Returns RETRY. A fault that may not be retried
 * (`allowRetry` false: FAULT_FLAG_ALLOW_RETRY missing, a GUP that cannot drop mmap_lock) cannot
 * wait for the monitor: VM_FAULT_SIGBUS at once, the monitor told nothing (SIGBUS; GUP: EFAULT).
 */
export function handleUserfault(k: Kernel, mm: Mm, vpn: number, allowRetry: boolean): number {
  if (!allowRetry) {
    k.emit('note', mm.id, vpn, -1, -1, 'userfaultfd: a write to a write-protected page by a fault that may not be retried (FAULT_FLAG_ALLOW_RETRY missing): VM_FAULT_SIGBUS, the monitor is not told');
    return SIGBUS;
  }
  mm.uffdFaults++;
  k.uffdResolved.push(mm.id, vpn);
  uffdWriteprotect(k, mm, vpn, vpn + 1, false);
  k.emit('uffd-fault', mm.id, vpn, -1, -1, 'userfaultfd: a write to a write-protected page; the monitor un-protects it and the write is retried');
  return RETRY;
}

/**
 * dup_userfaultfd(): without UFFD_FEATURE_EVENT_FORK the child's mapping is not registered
 * (VM_UFFD_WP cleared); with it the child gets a context of its own, with the same features.
 */
export function dupUserfaultfd(parent: Mm, child: Mm, vma: Vma): void {
  if (!(vma.flags & VM_UFFD_WP)) return;
  if (!parent.uffdForkEvent) {
    vma.flags &= ~VM_UFFD_WP;
    return;
  }
  child.uffdCtx = true;
  child.uffdForkEvent = true;
}

/**
 * Whether fork's copy of a PTE keeps its uffd-wp bit: copy_one_pte() asked the parent's VMA
 * (5.7-5.13, b569a1760782), copy_present_pte()/copy_nonpresent_pte() the child's (8f34f1eac382: 5.14+, 5.10.53+).
 */
export function forkKeepsUffdWp(k: Kernel, srcVma: Vma, dstVma: Vma): boolean {
  return ((k.profile.uffdWpForkVma === 'src-vma' ? srcVma : dstVma).flags & VM_UFFD_WP) !== 0;
}
