// The rules several paths share about one page or one PTE: whether a page may be pinned, the
// write bit of a shared mapping's vm_page_prot, the bits of a PTE mapping a page afresh or
// reusing it, copy_present_pte()'s test and its sharing of a page with a child, and
// copy_present_page()'s copy (allocate, copy, install). Fork (its synchronous loop and its
// interleaved steps, huge PMDs and hugetlb), COW page tables, the faults, mprotect and userfaultfd
// use these; this module imports none of them (a leaf of src/core, so the core has no import cycle).

import {
  PG_ANON, PG_ANON_EXCLUSIVE, PG_LARGE, PG_SHMEM, PTE_DIRTY, PTE_PRESENT, PTE_PROTNONE, PTE_SOFT_DIRTY, PTE_SPECIAL, PTE_UFFD_WP,
  PTE_WRITE, PTE_YOUNG, VM_READ, VM_WRITE,
  VM_UFFD_WP, VM_MAYSHARE, VM_SHARED, VM_SOFTDIRTY, PMD_LEAF,
} from './constants.js';
import type { FrameTable } from './frames.js';
import type { Kernel } from './kernel.js';
import type { TableArena } from './pgtable.js';
import type { Mm, Vma } from './mm.js';
import { setPte } from './walk.js';

/**
 * page_maybe_dma_pinned(): small pages: refcount >= GUP_PIN_COUNTING_BIAS; a page of a large folio:
 * the folio's exact pin count is not 0 (a pin on any of its pages makes the whole folio maybe pinned).
 * `plainRefs`: references known to be no pins, left out of a small page's count (the trace's
 * look at a page fork has just shared: the child's reference).
 */
export function pageMaybeDmaPinned(k: Kernel, pfn: number, plainRefs = 0): boolean {
  const f = k.frames;
  if (f.flags[pfn]! & PG_LARGE) return f.pincount[pfn >>> 9]! > 0;
  return f.refcount[pfn]! - plainRefs >= k.config.pinBias;
}

/**
 * PageAnonExclusive() as the paths that meet a page through a huge PMD see it: a PMD-mapped
 * folio's flag is its head's (a PMD split copies it to every page).
 */
export function pageAnonExclusive(k: Kernel, pfn: number): boolean {
  const f = k.frames;
  if (f.flags[pfn]! & PG_ANON_EXCLUSIVE) return true;
  return (f.flags[pfn]! & PG_LARGE) !== 0 && f.entireMapcount[pfn >>> 9]! > 0 && (f.flags[pfn & ~511]! & PG_ANON_EXCLUSIVE) !== 0;
}

/**
 * sanity_check_pinned_pages() (mm/gup.c, 6.18) on a pinned page: PageAnonExclusive, or for a
 * THP its head's (PMD-mapped when pinned) or its own (PTE-mapped), mapped or not any more.
 */
export function pinnedAnonExclusive(k: Kernel, pfn: number): boolean {
  const f = k.frames;
  if (f.flags[pfn]! & PG_ANON_EXCLUSIVE) return true;
  return (f.flags[pfn]! & PG_LARGE) !== 0 && (f.flags[pfn & ~511]! & PG_ANON_EXCLUSIVE) !== 0;
}

/**
 * vma_wants_writenotify() of a shared writable mapping: its vm_page_prot is write-protected
 * (vma_set_page_prot) so that the first write to each page faults, and so are the PTEs built from
 * it (a read fault's, mprotect's, uffd un-protect's): when soft-dirty tracking is armed
 * (vma_soft_dirty_enabled(): clear_refs cleared VM_SOFTDIRTY; every profile, as a kernel built
 * with CONFIG_MEM_SOFT_DIRTY), or when it is registered for uffd-wp (userfaultfd_wp(), from 6.2
 * and 6.1.8: uffdWpWritenotify, 51d3d5eb74ff). Otherwise vm_page_prot is PAGE_SHARED: writable.
 */
export function vmaWantsWritenotify(k: Kernel, vma: Vma): boolean {
  if (!vmGetPageProtWrite(vma.flags)) return false; // vma_is_shared_writable()
  return !(vma.flags & VM_SOFTDIRTY) || (k.profile.uffdWpWritenotify && (vma.flags & VM_UFFD_WP) !== 0);
}

/**
 * vm_get_page_prot(vm_flags)'s write bit (x86's protection_map): PAGE_SHARED, writable, for a
 * shared writable mapping; PAGE_COPY, read-only, for a private one (its writes fault: COW).
 */
export function vmGetPageProtWrite(vmFlags: number): boolean {
  return (vmFlags & (VM_SHARED | VM_WRITE)) === (VM_SHARED | VM_WRITE);
}

/**
 * The write bit of vma->vm_page_prot (vma_set_page_prot): vm_get_page_prot()'s, cleared when
 * vmaWantsWritenotify() (the first write to each page must fault). A shared mapping's PTEs built
 * from it (a read fault's, mprotect's, uffd un-protect's from 6.3) take this bit.
 */
export function vmPageProtWrite(k: Kernel, vma: Vma): boolean {
  return vmGetPageProtWrite(vma.flags) && !vmaWantsWritenotify(k, vma);
}

/**
 * mk_pte(page, vma->vm_page_prot) + pte_sw_mkyoung(): the PTE of a page the kernel maps for a VMA
 * afresh, before any pte_mkdirty or maybe_mkwrite: present, young (x86's protections all carry
 * _PAGE_ACCESSED: PAGE_COPY, PAGE_NONE, ...), read-only, and no access at all in a PROT_NONE VMA
 * (PAGE_NONE: PTE_PROTNONE). wp_page_copy()'s unshare copy is this PTE (with the old one's
 * soft-dirty and uffd-wp bits).
 */
export function vmPageProtBits(vma: Vma): number {
  return vma.flags & VM_READ ? PTE_PRESENT | PTE_YOUNG : PTE_PRESENT | PTE_YOUNG | PTE_PROTNONE;
}

/**
 * maybe_mkwrite(pte_mkdirty(vmPageProtBits())): a page mapped afresh for a write or an
 * allocation (do_anonymous_page, wp_page_copy's copy for a write fault, MADV_COLLAPSE's new PMD:
 * collapse_huge_page's folio_mk_pmd(vm_page_prot), pmd_mkdirty, maybe_pmd_mkwrite; a new huge PMD
 * adds PMD_LEAF): dirty (x86's pte_mkdirty sets soft-dirty too), writable when the VMA is; in a
 * PROT_NONE VMA still PTE_PROTNONE and never writable (no VM_WRITE).
 */
export function newPageBits(vma: Vma): number {
  return vmPageProtBits(vma) | PTE_DIRTY | PTE_SOFT_DIRTY | (vma.flags & VM_WRITE ? PTE_WRITE : 0);
}

/**
 * wp_page_reuse()'s PTE (maybe_mkwrite(pte_mkdirty(pte_mkyoung()))), and do_huge_pmd_wp_page()'s
 * reused PMD: young, dirty (x86's pte_mkdirty() sets the soft-dirty bit too), writable if the VMA is.
 */
export function wpPageReuseBits(vma: Vma, bits: number): number {
  return bits | PTE_DIRTY | PTE_SOFT_DIRTY | PTE_YOUNG | (vma.flags & VM_WRITE ? PTE_WRITE : 0);
}

/** userfaultfd_pte_wp(): a write to this PTE must go to the monitor first. */
export function userfaultfdPteWp(vma: Vma, bits: number): boolean {
  return (vma.flags & VM_UFFD_WP) !== 0 && (bits & PTE_UFFD_WP) !== 0;
}

/**
 * can_change_pte_writable() (6.0+; can_change_pmd_writable() for a huge PMD's bits, PMD_LEAF
 * set, 6.2+): a present, read-only entry may be made writable without a fault (mprotect, and
 * UFFDIO_WRITEPROTECT un-protecting from 6.3): VM_WRITE, not PROT_NONE, no soft-dirty tracking or
 * uffd-wp (userfaultfd_pte_wp: the bit in a registered VMA) waiting for the write; in a private
 * mapping an exclusive anonymous page (a PTE, not a PMD, dirty too before 6.2:
 * mprotectWritableClean), in a shared one a dirty entry (the filesystem was told of the write).
 */
export function canChangePteWritable(k: Kernel, vma: Vma, bits: number, pfn: number): boolean {
  if (!(vma.flags & VM_WRITE) || bits & (PTE_PROTNONE | PTE_SPECIAL) || userfaultfdPteWp(vma, bits)) return false;
  if (!(vma.flags & VM_SOFTDIRTY) && !(bits & PTE_SOFT_DIRTY)) return false;
  if (vma.flags & (VM_SHARED | VM_MAYSHARE) || !(k.profile.mprotectWritableClean || bits & PMD_LEAF)) {
    if (!(bits & PTE_DIRTY)) return false;
    if (vma.flags & (VM_SHARED | VM_MAYSHARE)) return true;
  }
  const f = k.frames.flags[pfn]!;
  return (f & PG_ANON) !== 0 && (f & PG_ANON_EXCLUSIVE) !== 0;
}

/**
 * page_needs_cow_for_dma()'s half about the mm, the same for every page of a fork: false when
 * no page of src can need an early COW (the kernel has no early COW, or src never pinned).
 */
export function forkMayCopy(k: Kernel, src: Mm): boolean {
  return k.profile.forkEarlyCow && src.hasPinned;
}

/**
 * copy_present_pte()'s test, given forkMayCopy(): folio_try_dup_anon_rmap_pte() refuses an
 * anonymous page that may be pinned (and is exclusive, from 5.19); the child must get a copy now
 * (copy_present_page). `bits`/`pfn`: a present PTE (or a huge PMD's, hugetlb's: the folio's head).
 */
export function forkMustCopy(k: Kernel, bits: number, pfn: number): boolean {
  return forkCopyTest(k, bits, pfn) === FORK_COPY;
}

/** forkCopyTest(): the page must be copied for the child (copy_present_page). */
export const FORK_COPY = 0;
/** forkCopyTest(): shared, not an anonymous page (the zero page, a special PTE, shmem). */
export const FORK_SHARE_NOT_ANON = 1;
/** forkCopyTest(): shared, not PageAnonExclusive (5.19+: shared already, so not pinned). */
export const FORK_SHARE_NOT_EXCLUSIVE = 2;
/** forkCopyTest(): shared, page_maybe_dma_pinned() is false. */
export const FORK_SHARE_NOT_PINNED = 3;

/** forkMustCopy()'s test, with the reason a page is shared (FORK_SHARE_*) or FORK_COPY. */
export function forkCopyTest(k: Kernel, bits: number, pfn: number): number {
  if (bits & PTE_SPECIAL) return FORK_SHARE_NOT_ANON;
  const flags = k.frames.flags[pfn]!;
  if (!(flags & PG_ANON)) return FORK_SHARE_NOT_ANON;
  if (k.profile.anonExclusive && !(flags & PG_ANON_EXCLUSIVE)) return FORK_SHARE_NOT_EXCLUSIVE;
  return pageMaybeDmaPinned(k, pfn) ? FORK_COPY : FORK_SHARE_NOT_PINNED;
}

/**
 * The page side of sharing a present page with another mapping (copy_present_pte, and the copy
 * of a COW page table): folio_try_dup_anon_rmap (the page is no longer exclusive) or
 * folio_dup_file_rmap, and get_page. Returns PG_ANON or PG_SHMEM for the new mapping's RSS
 * counter, or 0 (the zero page, special PTEs).
 */
export function dupPresentPage(f: FrameTable, bits: number, pfn: number, mmId: number): number {
  if (bits & PTE_SPECIAL) return 0;
  const flags = f.flags[pfn]!;
  if (flags & PG_ANON) {
    f.dupRmapPte(pfn, mmId, flags & ~PG_ANON_EXCLUSIVE);
    return PG_ANON;
  }
  f.dupRmapPte(pfn, mmId, flags);
  return flags & PG_SHMEM;
}

/**
 * copy_present_pte(), sharing the page (after forkMustCopy said no), on k.tables and k.frames:
 * the child's PTE at dstSlot maps `pfn`, the page of the parent's present PTE `bits` at srcSlot;
 * a COW mapping write-protects both; the child's is old (and clean in a shared mapping);
 * uffd-wp is dropped unless `keepUffdWp` (userfaultfd.ts forkKeepsUffdWp). The child's slot was empty: the caller
 * counts it in its table and charges the child's RSS by the result (as dupPresentPage's: PG_ANON,
 * PG_SHMEM or 0, so `anon += r & PG_ANON; shmem += r >>> PG_SHMEM_SHIFT` counts it).
 */
export function copyPresentPte(
  t: TableArena, f: FrameTable, bits: number, pfn: number, dstMmId: number, srcSlot: number, dstSlot: number, cow: boolean, shared: boolean,
  keepUffdWp = false,
): number {
  const rss = dupPresentPage(f, bits, pfn, dstMmId);
  let cbits = bits;
  if (cow && bits & PTE_WRITE) {
    t.setBits(srcSlot, bits & ~PTE_WRITE); // the parent loses write access too
    cbits &= ~PTE_WRITE;
  }
  if (shared) cbits &= ~PTE_DIRTY;
  cbits &= ~(PTE_YOUNG | (keepUffdWp ? 0 : PTE_UFFD_WP)); // pte_mkold(); pte_clear_uffd_wp() unless kept
  t.setPte(dstSlot, pfn, cbits);
  return rss;
}

/** Charge mm's RSS counter for one page of the kind dupPresentPage returned. */
export function addRss(mm: Mm, kind: number): void {
  if (kind === PG_ANON) mm.rssAnon++;
  else if (kind === PG_SHMEM) mm.rssShmem++;
}

/**
 * The page of a COW copy (copy_present_page, wp_page_copy): a new exclusive anonymous frame
 * holding src's contents (zeroes when src < 0: the zero page), or -1 when no frame is free.
 */
export function allocCopy(k: Kernel, src: number): number {
  const f = k.frames;
  const n = f.alloc(PG_ANON | (k.profile.anonExclusive ? PG_ANON_EXCLUSIVE : 0));
  if (n < 0) return -1;
  f.setValue(n, src < 0 ? 0 : f.value[src]!);
  return n;
}

/**
 * copy_present_page()'s install (fork's early COW, and the copy of a COW page table): the copy
 * `n` is mapped at slot afresh for dstVma; the original's mapping stays as it is. The caller
 * charges the RSS and reports it (the table's count is kept here).
 */
export function installCopiedPage(k: Kernel, dstVma: Vma, slot: number, n: number, srcBits = 0): void {
  k.frames.setMapcount(n, 1);
  let bits = newPageBits(dstVma);
  // 8f34f1eac382 (5.14, 5.10.53): the copy keeps the uffd-wp bit when the child's VMA is registered (write-protected).
  if (k.profile.uffdWpForkVma === 'dst-vma' && dstVma.flags & VM_UFFD_WP && srcBits & PTE_UFFD_WP) bits = (bits & ~PTE_WRITE) | PTE_UFFD_WP;
  setPte(k, slot, n, bits);
  k.stats.earlyCow++;
  k.stats.cowCopies++;
}
