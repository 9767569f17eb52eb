// mmap (with MAP_POPULATE), mprotect, madvise and clear_refs on anonymous memory.

import { doMadvCollapse } from './collapse.js';
import {
  EINVAL, HPAGE_PMD_NR, isCowMapping, LEVEL_SPAN, VM_HUGETLB, PTE_DEVEXCL_WRITE, PTE_PROTNONE, MMAP_LIMIT_VPN, OK, OOM, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_SPECIAL, PTE_WRITE, TABLE_MASK, TABLE_SHIFT, VM_DONTCOPY, VM_MAYREAD,
  VM_MAYSHARE, VM_MAYWRITE, VM_READ, VM_SHARED, VM_SOFTDIRTY, VM_WIPEONFORK, VM_WRITE, NA, VM_MERGEABLE, VM_HUGEPAGE, VM_NOHUGEPAGE,
  PTE_SWAP, PTE_DEVICE_EXCLUSIVE,
} from './constants.js';
import { doAnonymousPage, FAULT_FLAG_WRITE, handlePteFault } from './fault.js';
import type { Kernel } from './kernel.js';
import { type Mm, Vma } from './mm.js';
import { canChangePteWritable, pageMaybeDmaPinned, vmPageProtWrite } from './page.js';
import { pmdLeafSlot, pteTableAlloc, pteTableOf } from './walk.js';
import { zapRange } from './zap.js';
import { mmuNotify } from './exclusive.js';
import { pageoutRange } from './swap.js';
import { breakCowRange } from './cowpt.js';
import { hugetlbChangeProtection, hugetlbIn, hugetlbPopulate, hugetlbReservePages, hugetlbVmOpSplit } from './hugetlb.js';
import { changeHugePmds, clearSoftDirtyPmds, doHugePmdAnonymousPage, splitHugePmdAt, thpVmaAllowable } from './huge.js';

export type ProtName = 'rw' | 'ro' | 'none';

export function protFlags(prot: ProtName): number {
  return prot === 'rw' ? VM_READ | VM_WRITE : prot === 'ro' ? VM_READ : 0;
}

export interface MmapResult {
  err: number;
  start: number;
  /** Pages populate faulted in before stopping. */
  populated: number;
}

/** get_unmapped_area(): a fresh range of `pages` pages (bottom-up), or -1 when none is left. */
export function getUnmappedArea(mm: Mm, pages: number): number {
  let start = mm.mmapNext;
  // Mappings of a PMD or more are PMD-aligned (thp_get_unmapped_area, 6.7+).
  if (pages >= LEVEL_SPAN[0]) start = Math.ceil(start / LEVEL_SPAN[0]) * LEVEL_SPAN[0];
  if (start + pages > MMAP_LIMIT_VPN) return -1;
  mm.mmapNext = start + pages;
  return start;
}

/**
 * do_mmap() of anonymous memory; MAP_POPULATE faults every page in (__mm_populate). `thpFlags`:
 * VM_HUGEPAGE / VM_NOHUGEPAGE, or VM_HUGETLB for MAP_HUGETLB (hugetlb.ts: pages a multiple of 512,
 * the reservation taken here; OOM when the pool cannot give it, NA for a shared one).
 */
export function doMmap(k: Kernel, mm: Mm, pages: number, prot: ProtName, shared: boolean, populate: boolean, thpFlags = 0): MmapResult {
  if (thpFlags & VM_HUGETLB) return doMmapHugetlb(k, mm, pages, prot, shared, populate);
  const start = getUnmappedArea(mm, pages);
  if (start < 0) return { err: OOM, start: -1, populated: 0 };
  // A new VMA is all soft-dirty (VM_SOFTDIRTY) until clear_refs arms tracking.
  const flags = protFlags(prot) | VM_MAYREAD | VM_MAYWRITE | VM_SOFTDIRTY | (shared ? VM_SHARED | VM_MAYSHARE : 0) | thpFlags;
  const vma = new Vma(start, start + pages, flags, false, shared ? k.newShmem(pages) : null, 0);
  if (vma.shm) vma.shm.users = 1;
  mm.insertVma(vma);
  mm.mergeVmas(k);
  const merged = mm.findVma(start)!;
  let populated = 0;
  if (populate && prot !== 'none') populated = populateRange(k, mm, merged, start, start + pages);
  return { err: OK, start, populated };
}

/** do_mmap() with MAP_HUGETLB (hugetlbfs_file_mmap): a VM_HUGETLB VMA of its own, its huge pages reserved. */
function doMmapHugetlb(k: Kernel, mm: Mm, pages: number, prot: ProtName, shared: boolean, populate: boolean): MmapResult {
  if (shared || pages % HPAGE_PMD_NR !== 0) return { err: NA, start: -1, populated: 0 };
  const start = getUnmappedArea(mm, pages);
  if (start < 0) return { err: OOM, start: -1, populated: 0 };
  const vma = new Vma(start, start + pages, protFlags(prot) | VM_MAYREAD | VM_MAYWRITE | VM_SOFTDIRTY | VM_HUGETLB, false, null, 0);
  const err = hugetlbReservePages(k, vma);
  if (err !== OK) return { err, start: -1, populated: 0 };
  mm.insertVma(vma);
  const populated = populate && prot !== 'none' ? hugetlbPopulate(k, mm, vma) : 0;
  return { err: OK, start, populated };
}

/**
 * populate_vma_page_range(): fault each page in, as GUP does for MAP_POPULATE: a write fault in
 * private writable mappings, a read fault otherwise. Stops at the first failure. Tracing is
 * summarised into one event.
 */
export function populateRange(k: Kernel, mm: Mm, vma: Vma, lo: number, hi: number): number {
  const write = (vma.flags & (VM_WRITE | VM_SHARED)) === VM_WRITE;
  const tracing = k.tracing;
  k.tracing = false;
  const span = LEVEL_SPAN[0];
  let done = 0;
  let failed = false;
  if (write) k.frames.reserve(k.frames.top + (hi - lo));
  for (let a = lo; a < hi && !failed; ) {
    const next = Math.min(hi, a - (a % span) + span);
    // populate through handle_mm_fault(): an eligible empty PMD gets a THP.
    if (a % span === 0 && pteTableOf(k, mm, a) === 0 && thpVmaAllowable(k, vma, a) && pmdLeafSlot(k, mm, a) < 0
      && doHugePmdAnonymousPage(k, mm, vma, a, write) === OK) {
      done += next - a;
      a = next;
      continue;
    }
    if (pmdLeafSlot(k, mm, a) >= 0) {
      done += next - a;
      a = next;
      continue;
    }
    const table = pteTableAlloc(k, mm, a);
    const base = table << TABLE_SHIFT;
    for (let v = a; v < next; v++) {
      const slot = base | (v & TABLE_MASK);
      const err = write && k.tables.bits[slot] === 0
        ? doAnonymousPage(k, mm, vma, v, slot, true)
        : handlePteFault(k, mm, vma, v, slot, write ? FAULT_FLAG_WRITE : 0);
      if (err !== OK) {
        failed = true;
        break;
      }
      done++;
    }

    a = next;
  }
  // Each page faulted in counts as a fault of this process (mm_account_fault), failures do not.
  mm.minflt += done;
  k.stats.faults += done;
  k.tracing = tracing;
  if (k.tracing) k.emit('note', mm.id, lo, -1, -1, `MAP_POPULATE: ${done} page(s) faulted in with ${write ? 'write' : 'read'} faults${failed ? ', then an allocation failed' : ''}`);
  return done;
}

/** mprotect(): new protection on [lo, hi); change_protection() on the PTEs. OK, OOM (a hole), EINVAL or NA (hugetlbVmOpSplit). */
export function doMprotect(k: Kernel, mm: Mm, lo: number, hi: number, prot: ProtName): number {
  // do_mprotect_pkey(): ENOMEM if the range starts in a hole; a later hole stops it there.
  const end = mappedExtent(mm, lo, hi);
  if (end === lo) return OOM;
  const want = protFlags(prot);
  // vma_adjust_trans_huge(): a huge PMD across the new VMA boundaries is split, where the VMA
  // is split: mprotect_fixup() leaves a VMA that already has the protection alone.
  const changes = (v: Vma | null): boolean => mprotectChanges(v, prot);
  // A hugetlb VMA splits only on a huge page boundary (EINVAL, nothing changed).
  const split = hugetlbVmOpSplit(mm, lo, end, changes);
  if (split !== OK) return split;
  if (changes(mm.findVma(lo))) splitHugePmdAt(k, mm, lo, 'mprotect of part of a THP');
  if (changes(mm.findVma(end - 1))) splitHugePmdAt(k, mm, end, 'mprotect of part of a THP');
  // mprotect_fixup(): a VMA that has the protection already is left alone (not split, no
  // change_protection, so no MMU notifier: a device keeps its exclusive access there, and a
  // COW-shared page table stays shared).
  const vmas = mm.splitRange(k, lo, end, changes);
  for (const vma of vmas) {
    breakCowRange(k, mm, vma.start, vma.end);
    mmuNotify(k, mm.id, vma.start, vma.end, 'mprotect');
    const old = vma.flags;
    vma.flags = (vma.flags & ~(VM_READ | VM_WRITE)) | want;
    if (vma.flags & VM_HUGETLB) {
      // mprotect_fixup(): flags unchanged, nothing is done (a writable huge PTE stays writable).
      if (vma.flags !== old) hugetlbChangeProtection(k, mm, vma);
      continue;
    }
    changeHugePmds(k, mm, vma);
    changeProtection(k, mm, vma);
  }
  mm.mergeVmas(k);
  if (k.tracing) k.emit('mprotect', mm.id, lo, -1, -1, `mprotect ${prot} on ${end - lo} page(s)${end < hi ? ': ENOMEM at the hole after them' : ''}`);
  return end < hi ? OOM : OK;
}

/**
 * Whether mprotect(prot) changes VMA v: mprotect_fixup() returns at once for a VMA that has the
 * protection already (newflags == oldflags: not split, no change_protection, no MMU notifier).
 */
export function mprotectChanges(v: Vma | null, prot: ProtName): boolean {
  return v !== null && (v.flags & (VM_READ | VM_WRITE)) !== protFlags(prot);
}

/** The end of the mapped run of pages starting at lo (lo itself when lo is not mapped). */
export function mappedExtent(mm: Mm, lo: number, hi: number): number {
  let end = lo;
  for (const v of mm.vmas) {
    if (v.end <= end) continue;
    if (v.start > end) break;
    end = Math.min(v.end, hi);
    if (end >= hi) break;
  }
  return end;
}

/** change_pte_range(): write-protect, or (where allowed) make writable, each present PTE. */
function changeProtection(k: Kernel, mm: Mm, vma: Vma): void {
  const t = k.tables;
  const writable = (vma.flags & VM_WRITE) !== 0;
  const shared = (vma.flags & VM_SHARED) !== 0;
  const upgradePrivate = k.profile.mprotectWritable;
  forEachPte(k, mm, vma.start, vma.end, (slot) => {
    const old = t.bits[slot]!;
    if (!(old & PTE_PRESENT)) {
      if (!writable && old & PTE_DEVEXCL_WRITE) t.setBits(slot, old & ~PTE_DEVEXCL_WRITE);
      return;
    }
    if (!(vma.flags & VM_READ)) {
      t.setBits(slot, (old & ~PTE_WRITE) | PTE_PROTNONE); // PAGE_NONE
      return;
    }
    const bits = old & ~PTE_PROTNONE;
    t.setBits(slot, bits);
    if (!writable) {
      t.setBits(slot, bits & ~PTE_WRITE);
      return;
    }
    if (shared) {
      // pte_modify() gives the PTE vm_page_prot's write bit (vmPageProtWrite), and nothing
      // upgrades it (vma_wants_manual_pte_write_upgrade() asks vma_wants_writenotify() with the
      // old, read-only vm_page_prot: false). PAGE_SHARED makes every PTE writable, a uffd-wp
      // protected one too (its bit kept: 5.19 to 6.1.7); with writenotify (soft-dirty tracking
      // armed; uffd-wp registration from 6.2 and 6.1.8) every PTE stays read-only.
      t.setBits(slot, vmPageProtWrite(k, vma) ? bits | PTE_WRITE : bits & ~PTE_WRITE);
      return;
    }
    // MM_CP_TRY_CHANGE_WRITABLE (6.0+): pte_modify keeps the uffd-wp bit, and a PTE whose bit
    // mremap carried into an unregistered VMA (before 6.13) is no longer tracked: it may be upgraded.
    if (upgradePrivate && !(bits & PTE_WRITE) && canChangePteWritable(k, vma, bits, t.entry[slot]!)) t.setBits(slot, bits | PTE_WRITE);
  });
}

/** Visit every existing PTE slot in [lo, hi). Not for hot paths (one closure call per slot). */
export function forEachPte(k: Kernel, mm: Mm, lo: number, hi: number, fn: (slot: number, vpn: number) => void): void {
  const span = LEVEL_SPAN[0];
  for (let a = lo; a < hi; ) {
    const next = Math.min(hi, a - (a % span) + span);
    const table = pteTableOf(k, mm, a);
    if (table !== 0 && k.tables.filled[table]! > 0) {
      const base = table << TABLE_SHIFT;
      for (let v = a; v < next; v++) fn(base | (v & TABLE_MASK), v);
    }
    a = next;
  }
}

export type AdviceName = 'dontfork' | 'dofork' | 'wipeonfork' | 'keeponfork' | 'dontneed' | 'mergeable' | 'pageout' | 'hugepage' | 'nohugepage' | 'collapse';

/** madvise(). Returns OK, EINVAL or NA (advice whose semantics come with a later issue). */
export function doMadvise(k: Kernel, mm: Mm, lo: number, hi: number, advice: AdviceName): number {
  const changes = (v: Vma | null): boolean => madviseChanges(v, advice);
  if (hugetlbIn(mm, lo, hi)) {
    // hugetlb: only MADV_DONTFORK / MADV_DOFORK are modelled; the VMAs they change split only on
    // a huge page boundary (EINVAL, nothing changed).
    if (advice !== 'dontfork' && advice !== 'dofork') return NA;
    const split = hugetlbVmOpSplit(mm, lo, hi, changes);
    if (split !== OK) return split;
  }
  if (advice === 'collapse') return doMadvCollapse(k, mm, lo, hi).err; // MADV_COLLAPSE (collapse.ts)
  if (advice === 'pageout') {
    if (!k.profile.swap) return NA;
    const out = pageoutRange(k, mm, lo, hi, null);
    if (k.tracing) k.emit('note', mm.id, lo, -1, -1, `MADV_PAGEOUT: ${out} of ${hi - lo} page(s) swapped out`);
    return OK;
  }
  if (advice === 'mergeable' && !k.profile.ksm) return NA;
  // madvise_walk_vmas(): no VMA in the range, nothing is done (the kernel's ENOMEM is not
  // modelled: the model and the ideal memory take the call as done).
  if (mm.mapsNothing(lo, hi)) {
    if (k.tracing) k.emit('note', mm.id, lo, -1, -1, `madvise ${advice} on ${hi - lo} page(s): no mapping there, nothing done`);
    return OK;
  }
  if (advice === 'dontneed') {
    if (mm.cowPgtable && k.profile.cowptDontneed === 'ignored') {
      // On-Demand Fork d8ccd3c: madvise_dontneed_free() returns 0 for an ODF mm, zapping nothing.
      k.emit('note', mm.id, lo, -1, -1, 'MADV_DONTNEED in a process with COW page tables (On-Demand Fork): ignored, nothing zapped');
      return OK;
    }
    // MADV_DONTNEED: zap the range; the VMAs (and their page tables) stay.
    mmuNotify(k, mm.id, lo, hi, 'MADV_DONTNEED');
    const used = k.frames.used;
    let zapped = 0;
    for (const vma of mm.vmas) {
      const a = Math.max(lo, vma.start);
      const b = Math.min(hi, vma.end);
      if (a < b) zapped += zapRange(k, mm, a, b, true);
    }
    if (k.tracing) k.emit('zap', mm.id, lo, -1, -1, `MADV_DONTNEED: ${zapped} mapped page(s) dropped, ${used - k.frames.used} frame(s) freed`);
    return OK;
  }
  // MADV_WIPEONFORK is refused for shared mappings (EINVAL).
  if (advice === 'wipeonfork') {
    for (const vma of mm.vmas) {
      if (vma.end > lo && vma.start < hi && vma.flags & (VM_SHARED | VM_MAYSHARE)) return EINVAL;
    }
  }
  breakCowRange(k, mm, lo, hi); // __split_vma() breaks a shared table at the split
  // vma_adjust_trans_huge(): a huge PMD across a VMA boundary is split, but only where the VMA
  // is split (`changes`).
  if (changes(mm.findVma(lo))) splitHugePmdAt(k, mm, lo, 'VMA split by madvise');
  if (changes(mm.findVma(hi - 1))) splitHugePmdAt(k, mm, hi, 'VMA split by madvise');
  if (advice === 'mergeable') {
    // ksm_madvise() returns at once for a mapping that has VM_MERGEABLE already or is shared
    // (vma_ksm_compatible): it is not split, and the mm joins ksmd's list only for one it marks.
    const parts = mm.splitRange(k, lo, hi, changes);
    for (const part of parts) part.flags |= VM_MERGEABLE;
    if (parts.length > 0) k.ksmEnter(mm);
    mm.mergeVmas(k);
    if (k.tracing) k.emit('note', mm.id, lo, -1, -1, `madvise mergeable on ${hi - lo} page(s)`);
    return OK;
  }
  for (const vma of mm.splitRange(k, lo, hi, changes)) vma.flags = adviseFlags(vma.flags, advice);
  mm.mergeVmas(k);
  if (k.tracing) k.emit('note', mm.id, lo, -1, -1, `madvise ${advice} on ${hi - lo} page(s)`);
  return OK;
}

/**
 * Whether an advice that sets VMA flags changes VMA v: madvise_update_vma() leaves a VMA whose
 * flags it would not change alone, unsplit (new_flags == vma->vm_flags; ksm_madvise() a shared
 * one too: vma_ksm_compatible). False for every advice that sets no flag (dontneed, pageout, collapse).
 */
export function madviseChanges(v: Vma | null, advice: AdviceName): boolean {
  return v !== null && adviseFlags(v.flags, advice) !== v.flags && !(advice === 'mergeable' && v.flags & (VM_SHARED | VM_MAYSHARE));
}

/** The VMA flags madvise_vma_behavior() asks for (hugepage_madvise() for the THP advice). */
function adviseFlags(flags: number, advice: AdviceName): number {
  switch (advice) {
    case 'dontfork': return flags | VM_DONTCOPY;
    case 'dofork': return flags & ~VM_DONTCOPY;
    case 'wipeonfork': return flags | VM_WIPEONFORK;
    case 'keeponfork': return flags & ~VM_WIPEONFORK;
    case 'mergeable': return flags | VM_MERGEABLE;
    case 'hugepage': return (flags & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
    case 'nohugepage': return (flags & ~VM_HUGEPAGE) | VM_NOHUGEPAGE;
    default: return flags;
  }
}

/**
 * clear_refs_write() with CLEAR_REFS_SOFT_DIRTY: write-protect every present PTE and clear its
 * soft-dirty bit so the next write faults; pinned pages of COW mappings are skipped from 5.11.
 */
export function clearSoftDirty(k: Kernel, mm: Mm): number {
  const t = k.tables;
  let wp = 0;
  mmuNotify(k, mm.id, 0, 2 ** 36, 'clear_refs soft-dirty');
  for (const vma of mm.vmas) breakCowRange(k, mm, vma.start, vma.end);
  clearSoftDirtyPmds(k, mm);
  for (const vma of mm.vmas) {
    vma.flags &= ~VM_SOFTDIRTY;
    const cow = isCowMapping(vma.flags);
    forEachPte(k, mm, vma.start, vma.end, (slot) => {
      const bits = t.bits[slot]!;
      if (!(bits & PTE_PRESENT)) {
        // clear_soft_dirty(): a swap or device-exclusive entry loses its bit too (pte_swp_clear_soft_dirty),
        // so the page it brings back is write-protected for tracking (pte_needs_soft_dirty_wp).
        if (bits & (PTE_SWAP | PTE_DEVICE_EXCLUSIVE)) t.setBits(slot, bits & ~PTE_SOFT_DIRTY);
        return;
      }
      // pte_is_pinned(): MMF_HAS_PINNED, a COW mapping, a writable PTE, a maybe-pinned page.
      if (k.profile.clearRefsSkipPinned && mm.hasPinned && cow && bits & PTE_WRITE && !(bits & PTE_SPECIAL) &&
        pageMaybeDmaPinned(k, t.entry[slot]!)) return;
      t.setBits(slot, bits & ~(PTE_WRITE | PTE_SOFT_DIRTY));
      if (bits & PTE_WRITE) wp++;
    });
  }
  if (k.tracing) k.emit('note', mm.id, -1, -1, -1, `clear_refs soft-dirty: ${wp} PTE(s) write-protected`);
  return OK;
}
