// Page faults on anonymous memory: handle_mm_fault -> handle_pte_fault -> do_anonymous_page /
// do_shared_fault / do_wp_page -> wp_page_reuse | wp_page_copy.

import {
  NA, OK, OOM, PG_ANON, PG_ANON_EXCLUSIVE, PG_KSM, PG_LARGE, PG_SHMEM, PG_SWAPCACHE, PTE_DIRTY, PTE_PRESENT, PTE_SOFT_DIRTY,
  PTE_SPECIAL, PTE_UFFD_WP, PTE_WRITE, PTE_YOUNG, SIGSEGV, PTE_SWAP, PTE_DEVICE_EXCLUSIVE, VM_HUGEPAGE, VM_HUGETLB, VM_MAYSHARE, VM_READ, VM_SHARED, VM_UFFD_WP, VM_WRITE,
  PTE_MARKER, RETRY, VM_FAULT_WRITE,
} from './constants.js';
import { handleUserfault, userfaultfdPteWp } from './userfaultfd.js';
import type { Kernel } from './kernel.js';
import { doSwapPage, shmemSwapIn } from './swap.js';
import { tryToFreeSwap } from './swapcache.js';
import { removeDeviceExclusiveEntry } from './exclusive.js';
import { anonVmaPrepare, type Mm, type Vma } from './mm.js';
import { pmdLeafSlot, pmdWriteProtected, pteSlot, pteSlotAlloc, setPte } from './walk.js';
import { doHugePmdAnonymousPage, doHugePmdWpPage, thpVmaAllowable, VM_FAULT_FALLBACK } from './huge.js';
import { hugetlbFault } from './hugetlb.js';
import { allocCopy, newPageBits, vmPageProtBits, vmPageProtWrite, wpPageReuseBits } from './page.js';
import { breakCowPte } from './cowpt.js';

export const FAULT_FLAG_WRITE = 1;
/** GUP asks for an exclusive page without writing (R/O pins, 5.19+). */
export const FAULT_FLAG_UNSHARE = 2;
/**
 * Seed 001's FAULT_FLAG_BREAK_COW (v5.9-rc4+pin-cow): a FOLL_PIN breaks COW like a write, but
 * is no real write: userfaultfd_pte_wp() ignores it, and wp_page_copy() carries the uffd-wp bit.
 */
export const FAULT_FLAG_BREAK_COW = 4;
/**
 * The fault may return VM_FAULT_RETRY (dropping mmap_lock): a CPU fault always; GUP only where
 * its caller lets it drop the lock (gupAllowsRetry). handle_userfault() waits for the monitor
 * only with it.
 */
export const FAULT_FLAG_ALLOW_RETRY = 8;
const COW_FLAGS = FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE | FAULT_FLAG_BREAK_COW;
const WRITE_FLAGS = FAULT_FLAG_WRITE | FAULT_FLAG_BREAK_COW;

/**
 * wp_page_copy() split around its copy (the copy is made outside the page-table lock): the PTE
 * it saw and the copy it made. A fault given one stops after the copy (FAULT_COPY_MADE);
 * wpPageCopyFinish installs it later, as the synchronous path does at once. In between the fault
 * holds a reference on the page it copies (seenPfn; none on the zero page): do_wp_page() takes
 * it before dropping the page-table lock (get_page, folio_get from 6.x) and wp_page_copy() drops
 * it at its end, installed or not. So reclaim meanwhile leaves the page in the swap cache, and its
 * frame cannot be freed and handed out again under the same PTE value (pte_same would take it).
 */
export interface WpCopy {
  seenBits: number;
  seenPfn: number;
  newPfn: number;
}

/** The page a split wp_page_copy() holds between its two parts (WpCopy), or -1: the zero page is not held. */
export function wpCopyHeldPage(c: WpCopy): number {
  return c.seenBits & PTE_SPECIAL ? -1 : c.seenPfn;
}

/** handleMmFault() with a WpCopy: wp_page_copy() made its copy; wpPageCopyFinish() ends the fault. */
export const FAULT_COPY_MADE = -1;

/**
 * handle_mm_fault(): resolve a fault at vpn in mm's context. Returns OK, SIGSEGV, OOM, NA or
 * (hugetlb) SIGBUS;
 * with `split`, FAULT_COPY_MADE when the fault stopped after wp_page_copy()'s copy.
 */
export function handleMmFault(k: Kernel, mm: Mm, vpn: number, flags: number, split: WpCopy | null = null): number {
  const err = handleMmFaultFlags(k, mm, vpn, flags, split);
  // VM_FAULT_RETRY (handed to userfaultfd and resolved): the access retries. VM_FAULT_WRITE: done.
  return err === RETRY || err === VM_FAULT_WRITE ? OK : err;
}

/**
 * handle_mm_fault() with what the fault did, as GUP's faultin_page() reads it: VM_FAULT_WRITE
 * when a write (or break-COW) fault broke COW; RETRY when a
 * userfault the monitor resolved took the fault (VM_FAULT_RETRY: nothing done, no
 * VM_FAULT_WRITE); otherwise as handleMmFault().
 */
export function handleMmFaultFlags(k: Kernel, mm: Mm, vpn: number, flags: number, split: WpCopy | null = null): number {
  const vma = mm.findVma(vpn);
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  if (vma === null || !(vma.flags & (write ? VM_WRITE : VM_READ))) {
    k.emit('segv', mm.id, vpn, -1, -1, vma === null ? 'no mapping at this address' : write ? 'mapping is not writable' : 'mapping is not readable');
    return SIGSEGV;
  }
  // sanitize_fault_flags(): unshare only makes sense in COW mappings.
  if (vma.flags & (VM_SHARED | VM_MAYSHARE)) flags &= ~FAULT_FLAG_UNSHARE;
  // A fault in a COW-shared PTE table breaks it first (handle_cow_pte_fault).
  if (mm.cowPgtable && pmdWriteProtected(k, mm, vpn)) {
    const err = breakCowPte(k, mm, vma, vpn);
    if (err !== OK) return err;
  }
  let err = VM_FAULT_FALLBACK;
  // hugetlb_fault(): a hugetlb VMA has huge PTEs only.
  // 5.8's follow_hugetlb_page() has no FOLL_COW (it follows a huge PTE once writable): a write the
  // hugetlb fault completed is reported done, so a read-only VMA's forced break is done once.
  if (vma.flags & VM_HUGETLB) err = writeDone(hugetlbFault(k, mm, vma, vpn, (flags & WRITE_FLAGS) !== 0, (flags & FAULT_FLAG_UNSHARE) !== 0), flags & WRITE_FLAGS);
  else if (mm.hugePmds > 0 || vma.flags & VM_HUGEPAGE || k.config.thp === 'always') err = handleHugeFault(k, mm, vma, vpn, flags);
  if (err === VM_FAULT_FALLBACK) err = handlePteFault(k, mm, vma, vpn, pteSlotAlloc(k, mm, vpn), flags, split);
  // VM_FAULT_RETRY (handed to userfaultfd and resolved): not accounted.
  if (err === RETRY) return RETRY;
  // mm_account_fault(): only faults that did not fail count (min_flt).
  if (err === OK || err === VM_FAULT_WRITE) {
    mm.minflt++;
    k.stats.faults++;
  }
  return err;
}

/**
 * VM_FAULT_WRITE for a fault that completed (OK) with a write asked (`write`: its write flags),
 * where the kernel's own report needs a second fault or has no FOLL_COW to read it (the callers say which).
 */
function writeDone(err: number, write: number): number {
  return err === OK && write !== 0 ? VM_FAULT_WRITE : err;
}

/**
 * __handle_mm_fault()'s PMD level: a huge PMD takes the fault (do_huge_pmd_wp_page for a write or
 * unshare of a read-only one, else only marked young/dirty); an empty PMD in a THP-eligible range
 * gets a THP (do_huge_pmd_anonymous_page). VM_FAULT_FALLBACK: go on at the PTE level.
 */
function handleHugeFault(k: Kernel, mm: Mm, vma: Vma, vpn: number, flags: number): number {
  const s = pmdLeafSlot(k, mm, vpn);
  if (s < 0) {
    if (flags & FAULT_FLAG_UNSHARE || pteSlot(k, mm, vpn) >= 0 || !thpVmaAllowable(k, vma, vpn)) return VM_FAULT_FALLBACK;
    // do_huge_pmd_anonymous_page() reports no VM_FAULT_WRITE, as do_anonymous_page() (below).
    return doHugePmdAnonymousPage(k, mm, vma, vpn, (flags & WRITE_FLAGS) !== 0);
  }
  const bits = k.tables.bits[s]!;
  // Seed 001's FAULT_FLAG_BREAK_COW reaches do_huge_pmd_wp_page() as a write fault does (wp_huge_pmd()).
  if (flags & COW_FLAGS && !(bits & PTE_WRITE)) {
    // wp_huge_pmd(): a real write to a uffd-wp huge PMD goes to the monitor first
    // (userfaultfd_huge_pmd_wp), whose answer splits the PMD to un-protect the one page.
    if (!(flags & (FAULT_FLAG_UNSHARE | FAULT_FLAG_BREAK_COW)) && userfaultfdPteWp(vma, bits)) return handleUserfault(k, mm, vpn, (flags & FAULT_FLAG_ALLOW_RETRY) !== 0);
    // do_huge_pmd_wp_page(): VM_FAULT_WRITE once it reused or copied the THP (a split falls back).
    return writeDone(doHugePmdWpPage(k, mm, vma, vpn, s, (flags & FAULT_FLAG_UNSHARE) !== 0), flags & WRITE_FLAGS);
  }
  // huge_pmd_set_accessed()
  k.tables.setBits(s, bits | PTE_YOUNG | (flags & FAULT_FLAG_WRITE ? PTE_DIRTY | PTE_SOFT_DIRTY : 0));
  return OK;
}

/** handle_pte_fault(). */
export function handlePteFault(k: Kernel, mm: Mm, vma: Vma, vpn: number, slot: number, flags: number, split: WpCopy | null = null): number {
  const bits = k.tables.bits[slot]!;
  if (bits === 0) {
    if (vma.shm !== null) return doSharedFault(k, mm, vma, vpn, slot, flags);
    if (flags & FAULT_FLAG_UNSHARE) return OK; // nothing mapped: nothing to unshare
    // do_anonymous_page() reports no VM_FAULT_WRITE: in a read-only VMA (GUP's forced COW break,
    // 5.8) FOLL_COW stays clear, can_follow_write_pte() refuses the read-only PTE, and GUP faults
    // again: do_wp_page() reuses the page (VM_FAULT_WRITE). Two faults (gup.ts).
    return doAnonymousPage(k, mm, vma, vpn, slot, (flags & FAULT_FLAG_WRITE) !== 0);
  }
  if (!(bits & PTE_PRESENT)) {
    let err: number;
    if (bits & PTE_MARKER) return doPteMarker(k, mm, vma, vpn, slot, flags, split);
    // do_swap_page(): is_device_exclusive_entry() -> remove_device_exclusive_entry(), then
    // `goto out`: the fault ends with the PTE restored (old: restore_exclusive_pte's pte_mkold).
    // The access retries: a store the restored PTE does not allow faults again, into do_wp_page.
    if (bits & PTE_DEVICE_EXCLUSIVE) return removeDeviceExclusiveEntry(k, mm, vma, vpn, slot);
    if (bits & PTE_SWAP) err = doSwapPage(k, mm, vma, vpn, slot, (flags & FAULT_FLAG_WRITE) !== 0);
    else return NA;
    // VM_FAULT_WRITE: do_swap_page() did the write (reuse_swap_page, up to 5.17) and cleared
    // FAULT_FLAG_WRITE: no do_wp_page(), the fault ends, for every caller. GUP reads it
    // (faultin_page: FOLL_COW in a read-only VMA); an access retries, and where a uffd-wp bit left
    // the PTE read-only its store faults again, into do_wp_page() and the monitor.
    if (err !== OK) return err;
    // The PTE is present now: go on as for a present one (do_swap_page's own do_wp_page for a write).
    return handlePteFault(k, mm, vma, vpn, slot, flags, split);
  }
  if (flags & COW_FLAGS) {
    if (!(bits & PTE_WRITE)) return doWpPage(k, mm, vma, vpn, slot, (flags & FAULT_FLAG_UNSHARE) !== 0, split, (flags & FAULT_FLAG_BREAK_COW) !== 0, (flags & FAULT_FLAG_ALLOW_RETRY) !== 0);
    // pte_mkdirty(): x86 sets _PAGE_SOFT_DIRTY with _PAGE_DIRTY.
    if (flags & FAULT_FLAG_WRITE) k.tables.setBits(slot, bits | PTE_DIRTY | PTE_SOFT_DIRTY | PTE_YOUNG);
    return OK;
  }
  k.tables.setBits(slot, bits | PTE_YOUNG);
  return OK;
}

/**
 * do_pte_marker() -> pte_marker_handle_uffd_wp(): a uffd-wp marker of a shmem page: the page is
 * mapped again with the uffd-wp bit (write-protected, do_set_pte), then the fault goes on as for
 * a present PTE (a write reaches the monitor). In an anonymous mapping the marker is dropped.
 */
function doPteMarker(k: Kernel, mm: Mm, vma: Vma, vpn: number, slot: number, flags: number, split: WpCopy | null): number {
  setPte(k, slot, 0, 0);
  if (vma.shm === null) return handlePteFault(k, mm, vma, vpn, slot, flags, split);
  // pte_marker_handle_uffd_wp() -> do_pte_missing() -> do_fault(): finish_fault() maps the page
  // with the marker's uffd-wp bit, write-protected, and the fault completes (accounted); a write
  // faults again on that PTE and reaches the monitor then (do_wp_page).
  const err = doSharedFault(k, mm, vma, vpn, slot, flags);
  if (err !== OK) return err;
  k.tables.setBits(slot, (k.tables.bits[slot]! & ~PTE_WRITE) | PTE_UFFD_WP);
  return OK;
}

/** do_anonymous_page(): first touch of private anonymous memory. */
export function doAnonymousPage(k: Kernel, mm: Mm, vma: Vma, vpn: number, slot: number, write: boolean): number {
  if (!write && !k.profile.mmForbidsZeropage) {
    // Read fault: map the shared zero page read-only (no refcount, no mapcount, no anon_vma).
    setPte(k, slot, 0, PTE_PRESENT | PTE_SPECIAL | PTE_YOUNG);
    k.emit('zero-fault', mm.id, vpn, 0, -1, 'read of untouched anonymous memory maps the shared zero page');
    return OK;
  }
  // A write fault, or a read fault where mm_forbids_zeropage(): a new exclusive page, mapped
  // writable and dirty whenever the VMA is, whichever access faulted; in a read-only VMA clean
  // (pte_mkwrite(pte_mkdirty()) only under VM_WRITE: 5.7.14 to 6.18.2), which 6.0-6.1's mprotect
  // upgrade reads (can_change_pte_writable wants pte_dirty).

  const pfn = k.frames.alloc(PG_ANON | (k.profile.anonExclusive ? PG_ANON_EXCLUSIVE : 0));
  if (pfn < 0) {
    k.emit('oom', mm.id, vpn, -1, -1, 'no free frame for an anonymous page (config.frames)');
    return OOM;
  }
  anonVmaPrepare(k, mm, vma);
  k.frames.setMapcount(pfn, 1);
  mm.rssAnon++;
  setPte(k, slot, pfn, vma.flags & VM_WRITE ? newPageBits(vma) : vmPageProtBits(vma));
  k.emit('anon-fault', mm.id, vpn, pfn, -1, write
    ? 'write to untouched anonymous memory allocates a zeroed page'
    : 'read of untouched anonymous memory allocates a zeroed page (mm_forbids_zeropage: no shared zero page here)');
  return OK;
}

/** do_read_fault() / do_shared_fault() on a shmem (shared anonymous) mapping. */
export function doSharedFault(k: Kernel, mm: Mm, vma: Vma, vpn: number, slot: number, flags: number): number {
  const obj = vma.shm!;
  const idx = vma.shmOffset + (vpn - vma.start);
  let pfn = obj.pages[idx]!;
  const f = k.frames;
  let fresh = false;
  if (pfn < 0 && obj.swapped[idx]! >= 0) {
    pfn = shmemSwapIn(k, obj, idx);
    if (pfn < 0) {
      k.emit('oom', mm.id, vpn, -1, -1, 'no free frame to swap a shmem page in (config.frames)');
      return OOM;
    }
    k.emit('note', mm.id, vpn, pfn, -1, 'shmem page read back from swap');
  }
  if (pfn < 0) {
    // shmem_get_folio(): a new zeroed page in the object's page cache (the cache holds one reference).
    pfn = f.alloc(PG_SHMEM);
    if (pfn < 0) {
      k.emit('oom', mm.id, vpn, -1, -1, 'no free frame for a shmem page (config.frames)');
      return OOM;
    }
    obj.pages[idx] = pfn;
    fresh = true;
  }
  f.addRefcount(pfn, 1);
  f.addMapcount(pfn, 1);
  mm.rssShmem++;
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  setPte(k, slot, pfn, sharedPteBits(k, vma, write));
  k.emit('shared-fault', mm.id, vpn, pfn, -1, fresh ? 'first touch of the shared object allocates its page' : 'maps the shared object\'s page');
  // should_fault_around() -> uffd_disable_fault_around(): no fault-around in a VMA registered for
  // uffd-wp (5.19+, with uffd-wp on shmem), so a read maps the faulting page alone.
  if (!write && !(vma.flags & VM_UFFD_WP)) faultAround(k, mm, vma, vpn);
  return OK;
}

/**
 * set_pte_range() (do_set_pte() before 6.5): the PTE of a shared mapping's fault (finish_fault)
 * or fault-around (filemap_map_pages), young, dirty when the fault writes, with the write bit of
 * vm_page_prot (vmPageProtWrite) unless the fault writes (maybe_mkwrite). vm_page_prot is
 * read-only while writenotify is wanted (soft-dirty tracking armed; uffd-wp registration from 6.2
 * and 6.1.8): a read-mapped page's next write faults. Otherwise it is PAGE_SHARED: a read fault
 * maps the page writable.
 */
function sharedPteBits(k: Kernel, vma: Vma, write: boolean): number {
  const w = (write && vma.flags & VM_WRITE) || vmPageProtWrite(k, vma) ? PTE_WRITE : 0;
  return PTE_PRESENT | PTE_YOUNG | (write ? PTE_DIRTY | PTE_SOFT_DIRTY : 0) | w;
}

/** Pages do_fault_around() maps around a read fault (fault_around_bytes 64 KiB). */
export const FAULT_AROUND_PAGES = 16;

/**
 * do_fault_around() / filemap_map_pages(): a read fault on shmem also maps the neighbouring
 * pages of its aligned 64 KiB window that are already in the page cache and not mapped yet.
 */
function faultAround(k: Kernel, mm: Mm, vma: Vma, vpn: number): void {
  const obj = vma.shm!;
  const f = k.frames;
  const t = k.tables;
  const lo = Math.max(vma.start, vpn - (vpn % FAULT_AROUND_PAGES));
  const hi = Math.min(vma.end, vpn - (vpn % FAULT_AROUND_PAGES) + FAULT_AROUND_PAGES);
  let mapped = 0;
  for (let v = lo; v < hi; v++) {
    if (v === vpn) continue;
    const pfn = obj.pages[vma.shmOffset + (v - vma.start)]!;
    if (pfn < 0) continue;
    const slot = pteSlotAlloc(k, mm, v);
    if (t.bits[slot] !== 0) continue;
    f.addRefcount(pfn, 1);
    f.addMapcount(pfn, 1);
    mm.rssShmem++;
    setPte(k, slot, pfn, sharedPteBits(k, vma, false));
    mapped++;
  }
  if (mapped && k.tracing) k.emit('note', mm.id, vpn, -1, -1, `fault-around: ${mapped} neighbouring page(s) of the page cache mapped too`);
}

/** Why the reuse test refused, for the trace. */
function copyReason(k: Kernel, pfn: number): string {
  const f = k.frames;
  const p = k.profile;
  if (f.flags[pfn]! & PG_KSM) return 'KSM page: always copied';
  if (p.wpReuse === 'mapcount') {
    const swapped = f.flags[pfn]! & PG_SWAPCACHE ? k.swap.count[f.priv[pfn]!]! : 0;
    return swapped ? `mapcount ${f.mapcount[pfn]} + swap count ${swapped} > 1: another process maps or swapped it` : `mapcount ${f.mapcount[pfn]} > 1: another process maps it`;
  }
  const ref = f.refcount[pfn]!;
  const map = f.mapcount[pfn]!;
  if (map > 1) return `refcount ${ref}, mapcount ${map}: another process maps it`;
  return `refcount ${ref} > 1 with mapcount ${map}: an extra reference (GUP, pin or pipe) holds it`;
}

/** The reuse decision of do_wp_page() for a private anonymous page, per profile (mm: whose fault). */
export function wpCanReuse(k: Kernel, pfn: number, mm: Mm | null = null): boolean {
  const f = k.frames;
  const flags = f.flags[pfn]!;
  if (flags & PG_LARGE && !(flags & PG_ANON_EXCLUSIVE)) return wpCanReuseLarge(k, pfn, mm);
  switch (k.profile.wpReuse) {
    case 'anon-exclusive':
      // PageAnonExclusive() or wp_can_reuse_anon_folio(): only our own mapping references it
      // (the swap cache's reference discounted when the cache entry can be freed).
      if (flags & PG_ANON_EXCLUSIVE) return true;
      if (flags & PG_KSM && k.profile.wpCopiesKsm) return false;
      return refcountWithoutSwapcache(k, pfn) === 1;
    case 'pagecount':
      // 5.9 simplification (seed 003): page_count == 1, mapcount == 1, not KSM; 5.18 frees the
      // swap cache first and drops the mapcount test.
      if (flags & PG_KSM && k.profile.wpCopiesKsm) return false;
      if (k.profile.wpFreeSwapcache) return refcountWithoutSwapcache(k, pfn) === 1;
      return f.refcount[pfn] === 1 && f.mapcount[pfn] === 1;
    case 'mapcount': {
      // reuse_swap_page(): mapcount + swap count <= 1; other references do not count.
      // reuse_ksm_page(): a KSM page with a stable node (not break_cow's leftover), ours the only reference.
      if (flags & PG_KSM) return k.profile.ksmReuse && f.refcount[pfn] === 1 && !(flags & PG_SWAPCACHE) && f.inStableTree(pfn);
      const swapped = flags & PG_SWAPCACHE ? k.swap.count[f.priv[pfn]!]! : 0;
      return f.mapcount[pfn]! + swapped <= 1;
    }
  }
}

/**
 * do_wp_page() on a page of a PTE-mapped large folio without PAE, per profile (wpReuseLarge):
 * `as-small` applies wpReuse with the folio's counts (page_count is the folio refcount;
 * reuse_swap_page() looks at the largest page mapcount), `never` copies (6.10-6.14
 * wp_can_reuse_anon_folio()), `mm-exclusive` is 6.15's __wp_can_reuse_large_anon_folio(): two or
 * more mappings, all from this mm (the MM-id slots, FrameTable.mmIds: tracked on the profiles
 * with this rule), and no reference that is not a mapping.
 */
function wpCanReuseLarge(k: Kernel, pfn: number, mm: Mm | null): boolean {
  const f = k.frames;
  switch (k.profile.wpReuseLarge) {
    case 'never':
      return false;
    case 'mm-exclusive': {
      const mapped = f.folioMapcount(pfn);
      if (mapped <= 1 || mm === null || mapped !== f.folioRefcount(pfn)) return false;
      // The MM-ids shared bit clear: one slot, this mm's (it maps the page), holds every mapping.
      return f.mmIdsShared[pfn >>> 9] === 0;
    }
    case 'as-small':
      switch (k.profile.wpReuse) {
        case 'mapcount':
          return f.folioMaxMapcount(pfn) <= 1;
        case 'pagecount':
        case 'anon-exclusive':
          return f.folioRefcount(pfn) === 1;
      }
  }
}

/**
 * The refcount once the swap cache lets go (5.18+: folio_free_swap() when no swap entry names
 * the slot); without wpFreeSwapcache, the cache's reference stays.
 */
function refcountWithoutSwapcache(k: Kernel, pfn: number): number {
  const f = k.frames;
  if (f.flags[pfn]! & PG_SWAPCACHE && k.profile.wpFreeSwapcache && k.swap.count[f.priv[pfn]!] === 0) return f.refcount[pfn]! - 1;
  return f.refcount[pfn]!;
}

/**
 * do_wp_page(): a write (or unshare, or seed 001's break-COW) fault on a present, write-protected
 * PTE. VM_FAULT_WRITE when it reused or copied a private page for a write or break-COW.
 */
export function doWpPage(
  k: Kernel, mm: Mm, vma: Vma, vpn: number, slot: number, unshare: boolean, split: WpCopy | null, breakCow: boolean, allowRetry: boolean,
): number {
  const t = k.tables;
  const bits = t.bits[slot]!;
  const pfn = t.entry[slot]!;
  // userfaultfd_pte_wp(): a real write to a write-protected page goes to the monitor first.
  // An unshare fault never asks: do_wp_page() tests userfaultfd_pte_wp() only when !unshare.
  if (!unshare && !breakCow && userfaultfdPteWp(vma, bits)) return handleUserfault(k, mm, vpn, allowRetry);
  if (vma.flags & (VM_SHARED | VM_MAYSHARE)) {
    // wp_page_shared(): a shared mapping is never copied; wp_page_reuse() makes the PTE writable
    // (not counted as an anonymous page's reuse).
    t.setBits(slot, wpPageReuseBits(vma, bits));
    k.emit('wp-shared', mm.id, vpn, pfn, -1, 'shared mapping: the page is made writable in place');
    return OK;
  }
  if (!(bits & PTE_SPECIAL) && k.frames.flags[pfn]! & PG_ANON && wpCanReuse(k, pfn, mm)) {
    const f = k.frames;
    const wasExclusive = (f.flags[pfn]! & PG_ANON_EXCLUSIVE) !== 0;
    // reuse_swap_page() / folio_free_swap(): a reused page leaves the swap cache when no entry
    // names it; from 5.19 a PageAnonExclusive page is reused before that (do_wp_page: goto reuse).
    if (f.flags[pfn]! & PG_SWAPCACHE && (k.profile.wpReuse === 'mapcount' || (k.profile.wpFreeSwapcache && !wasExclusive))) tryToFreeSwap(k, pfn);
    if (f.flags[pfn]! & PG_KSM && k.profile.wpReuse === 'mapcount') {
      // reuse_ksm_page(): page_move_anon_rmap() makes it an ordinary anonymous page again.
      f.setFlags(pfn, f.flags[pfn]! & ~PG_KSM);
    }
    if (k.profile.anonExclusive && !(f.flags[pfn]! & PG_KSM)) f.setFlags(pfn, f.flags[pfn]! | PG_ANON_EXCLUSIVE);
    if (unshare) {
      k.emit('wp-reuse', mm.id, vpn, pfn, -1, 'unshare: the page is already exclusive; it stays read-only');
      return OK;
    }
    wpPageReuse(k, vma, slot);
    k.emit('wp-reuse', mm.id, vpn, pfn, -1, reuseReason(k, pfn, wasExclusive));
    return VM_FAULT_WRITE;
  }
  const err = wpPageCopy(k, mm, vma, vpn, slot, unshare, split, breakCow);
  // wp_page_copy(): VM_FAULT_WRITE once copied (an unshare's copy is no write: 0).
  return err === OK && !unshare ? VM_FAULT_WRITE : err;
}

function reuseReason(k: Kernel, pfn: number, wasExclusive: boolean): string {
  if (!k.tracing) return '';
  if (wasExclusive) return 'PageAnonExclusive: the page is ours alone, reused';
  const f = k.frames;
  if (k.profile.wpReuse === 'mapcount') return `mapcount ${f.mapcount[pfn]}: the only mapping, reused`;
  return `refcount ${f.refcount[pfn]}: the only reference, reused`;
}

/** wp_page_reuse() of a private anonymous page: the PTE made writable in place (wpPageReuseBits), counted as a reuse. */
export function wpPageReuse(k: Kernel, vma: Vma, slot: number): void {
  k.stats.reuses++;
  k.tables.setBits(slot, wpPageReuseBits(vma, k.tables.bits[slot]!));
}

/**
 * wp_page_copy(): give this mapping its own copy (a zeroed page when it mapped the zero page):
 * allocate and copy (outside the page-table lock), then install it if the PTE is unchanged.
 * With `split`, only the first part: FAULT_COPY_MADE, and wpPageCopyFinish() does the rest.
 */
export function wpPageCopy(
  k: Kernel, mm: Mm, vma: Vma, vpn: number, slot: number, unshare: boolean, split: WpCopy | null = null, breakCow = false,
): number {
  const t = k.tables;
  const bits = t.bits[slot]!;
  const old = t.entry[slot]!;
  const fromZero = (bits & PTE_SPECIAL) !== 0;
  const why = k.tracing ? (fromZero ? 'write to the shared zero page' : copyReason(k, old)) : '';
  const pfn = allocCopy(k, fromZero ? -1 : old);
  if (pfn < 0) {
    k.emit('oom', mm.id, vpn, old, -1, 'no free frame for the copy (config.frames)');
    return OOM;
  }
  if (split) {
    split.seenBits = bits;
    split.seenPfn = old;
    split.newPfn = pfn;
    const held = wpCopyHeldPage(split);
    if (held >= 0) k.frames.addRefcount(held, 1); // do_wp_page(): folio_get() before the lock is dropped
    return FAULT_COPY_MADE;
  }
  wpPageCopyInstall(k, mm, vma, vpn, slot, bits, old, pfn, unshare, unshare ? `unshare: ${why}` : breakCow ? `GUP break-COW: ${why}` : why);
  return OK;
}

/**
 * wp_page_copy()'s second part for a fault that returned FAULT_COPY_MADE: the page-table lock
 * retaken, the copy is installed if the PTE is still the one seen (pte_same), else dropped and
 * false returned (the access faults again). The fault is accounted (mm_account_fault).
 */
export function wpPageCopyFinish(k: Kernel, mm: Mm, vpn: number, c: WpCopy): boolean {
  const vma = mm.findVma(vpn)!;
  const done = wpPageCopyInstall(k, mm, vma, vpn, pteSlot(k, mm, vpn), c.seenBits, c.seenPfn, c.newPfn, false,
    'write fault: copied (the copy was made outside the page-table lock)');
  // wp_page_copy()'s folio_put(old_folio): the reference do_wp_page() took (wpPageCopy).
  const held = wpCopyHeldPage(c);
  if (held >= 0) k.putPage(held);
  c.newPfn = -1;
  mm.minflt++;
  k.stats.faults++;
  return done;
}

/** wp_page_copy() once the copy `n` of what the PTE mapped (seenBits, seenPfn) is made: install it, or drop it when the PTE changed. */
function wpPageCopyInstall(
  k: Kernel, mm: Mm, vma: Vma, vpn: number, slot: number, seenBits: number, seenPfn: number, n: number, unshare: boolean, why: string,
): boolean {
  const t = k.tables;
  const f = k.frames;
  const bits = slot < 0 ? 0 : t.bits[slot]!;
  const old = slot < 0 ? -1 : t.entry[slot]!;
  if (bits !== seenBits || old !== seenPfn) {
    k.putPage(n);
    k.emit('note', mm.id, vpn, old, -1, 'wp_page_copy: the PTE changed while the copy was made (!pte_same): the copy is dropped, the fault retried');
    return false;
  }
  const fromZero = (bits & PTE_SPECIAL) !== 0;
  anonVmaPrepare(k, mm, vma);
  f.setMapcount(n, 1);
  const keep = bits & (PTE_SOFT_DIRTY | PTE_UFFD_WP);
  // wp_page_copy() (mm/memory.c, 6.18; the same in 5.19 and 6.1): the copy's PTE is built from
  // vma->vm_page_prot (folio_mk_pte, mk_pte before 6.12), so in a PROT_NONE VMA it is PAGE_NONE
  // whatever the fault (ksmd's break_cow reaches one: break_ksm faults without looking at the
  // protection). An unshare copy (FAULT_FLAG_UNSHARE, 5.19+) is no write: read-only and clean,
  // with only the old PTE's soft-dirty and uffd-wp bits; a write's is maybe_mkwrite(pte_mkdirty()).
  let nbits = unshare ? vmPageProtBits(vma) | keep : newPageBits(vma);
  // Seed 001's wp_page_copy(): the copy keeps the uffd-wp bit, write-protected (pte_mkuffd_wp(pte_wrprotect())).
  if (k.profile.gupCowBreak === 'pin' && bits & PTE_UFFD_WP) nbits = (nbits & ~PTE_WRITE) | PTE_UFFD_WP;
  setPte(k, slot, n, nbits);
  if (fromZero) {
    mm.rssAnon++;
  } else {
    // folio_remove_rmap_pte() after the new PTE is set, then drop the old page's reference.
    f.removeRmapPte(old, mm.id);
    k.putPage(old);
  }
  k.stats.cowCopies++;
  k.emit('wp-copy', mm.id, vpn, fromZero ? 0 : old, n, why);
  return true;
}
