// Swap: MADV_PAGEOUT reclaim (add_to_swap, try_to_unmap, pageout), swap-in (do_swap_page) with
// each era's rule for mapping the page writable, swap entries at fork and zap.

import {
  HPAGE_PMD_NR, OK, OOM, PG_ANON, PG_ANON_EXCLUSIVE, PG_KSM, PG_SHMEM, PG_SWAPCACHE, PTE_DIRTY, PTE_PRESENT, PTE_SOFT_DIRTY,
  PTE_SPECIAL, PTE_SWAP, PTE_SWP_EXCLUSIVE, PTE_UFFD_WP, PTE_WRITE, PTE_YOUNG, VM_FAULT_WRITE, VM_SOFTDIRTY, VM_WRITE,
} from './constants.js';
import { pageMaybeDmaPinned } from './page.js';
import { folioPteBatch, hugeIn, hugePmdIn, splitForSwap } from './huge.js';
import { deleteFromSwapCache, swapFree, tryToFreeSwap } from './swapcache.js';
import type { Kernel } from './kernel.js';
import { anonVmaPrepare, type Mm, type ShmemObject, type Vma } from './mm.js';
import { pteSlot, setPte } from './walk.js';
import { breakCowRange } from './cowpt.js';

/**
 * Why a page was not swapped out (null: it was). `walk-ended`: pageoutRange's walk of its PMD
 * stopped before it, at a large folio it left alone (pageoutLargeWalk `break`).
 */
export type SwapoutSkip = 'not-present' | 'not-anon' | 'shared' | 'pinned' | 'walk-ended' | null;

/**
 * pageOut's verdict on a page of a large folio met through a PTE and left alone: mapped elsewhere
 * (pageoutLargeShared, or 6.10+'s folio_mapcount() test of a folio its batch maps whole), or
 * split_folio() refused (a pin or GUP reference).
 */
type LeftLarge = 'large-shared' | 'large-pinned';

/**
 * Where madvise_cold_or_pageout_pte_range()'s PTE loop that reaches vpn ends: the end of the
 * range, of the VMA (walk_page_range() walks each VMA's part) or of the PMD, the first of them.
 */
function walkEnd(vma: Vma, vpn: number, hi: number): number {
  return Math.min(hi, vma.end, (vpn | (HPAGE_PMD_NR - 1)) + 1);
}

/** Put a page in the swap cache (add_to_swap): a slot, and the cache's reference on the frame. */
function addToSwap(k: Kernel, pfn: number): number {
  const f = k.frames;
  if (f.flags[pfn]! & PG_SWAPCACHE) return f.priv[pfn]!;
  const s = k.swap.alloc();
  k.swap.cache[s] = pfn;
  f.setFlags(pfn, f.flags[pfn]! | PG_SWAPCACHE);
  f.priv[pfn] = s;
  f.addRefcount(pfn, 1);
  return s;
}

/**
 * MADV_PAGEOUT of one page: reclaim it to swap if it is an anonymous page mapped by this mm
 * only. Pinned pages stay (5.11+: not added to the swap cache; 5.19+: an exclusive page that
 * may be pinned cannot be unshared for unmapping).
 */
export function swapOutPage(k: Kernel, mm: Mm, vpn: number): SwapoutSkip {
  const r = pageOut(k, mm, vpn, vpn + 1);
  return r === 'large-shared' ? 'shared' : r === 'large-pinned' ? 'pinned' : r;
}

/**
 * MADV_PAGEOUT of [lo, hi) of mm: walk_page_range() over each VMA's part of the range, and
 * madvise_cold_or_pageout_pte_range() over each PMD's part of that, a page at a time
 * (swapOutPage). At a large folio mapped by a PTE, pageoutLargeWalk: `break` (5.4-6.9), where the
 * loop leaves it alone (shared, or not split) the PTE loop of that PMD ends, and no later page
 * under the same PMD, up to the end of the range or of the VMA, is paged out (`walk-ended`); the
 * walk goes on at the next PMD. `batch` (6.10+): a folio its batch of PTEs maps whole is paged out
 * when every mapping of it is one of those PTEs; one left alone is stepped past, the batch's PTEs
 * and no more. `skipped`, when given, hears each page not paged out and why. Returns the pages
 * paged out.
 */
export function pageoutRange(k: Kernel, mm: Mm, lo: number, hi: number, skipped: ((vpn: number, why: Exclude<SwapoutSkip, null>) => void) | null): number {
  let out = 0;
  for (let v = lo; v < hi; v++) {
    const r = pageOut(k, mm, v, hi);
    if (r === null) {
      out++;
      continue;
    }
    if (r !== 'large-shared' && r !== 'large-pinned') {
      if (skipped) skipped(v, r);
      continue;
    }
    const why = r === 'large-shared' ? 'shared' : 'pinned';
    const end = walkEnd(mm.findVma(v)!, v, hi);
    if (k.profile.pageoutLargeWalk === 'batch') {
      // `continue` with nr the batch: the loop steps past the folio's PTEs (left as they were).
      const nr = folioPteBatch(k, mm, v, end);
      if (skipped) for (let w = v; w < v + nr; w++) skipped(w, why);
      v += nr - 1;
      continue;
    }
    if (skipped) skipped(v, why);
    // `break`, then pte_unmap_unlock(): the walk's next pmd_entry call is at the next PMD (or
    // the next VMA's part of the range).
    if (k.tracing && end > v + 1) k.emit('note', mm.id, v, -1, -1, `MADV_PAGEOUT: the PTE loop stops at a large folio it leaves alone (break): ${end - v - 1} later page(s) under this PMD not paged out`);
    if (skipped) for (let w = v + 1; w < end; w++) skipped(w, 'walk-ended');
    v = end - 1;
  }
  return out;
}

/**
 * swapOutPage of vpn, reached by a walk of a range ending at hi, telling a large folio met
 * through a PTE and left alone (LeftLarge) apart.
 */
function pageOut(k: Kernel, mm: Mm, vpn: number, hi: number): SwapoutSkip | LeftLarge {
  // No mapping, nothing to reclaim: a PTE there is another process's, seen through a COW-shared
  // table (a MADV_DONTFORK mapping of the parent's, in a table On-Demand Fork shares whole).
  const vma = mm.findVma(vpn);
  if (vma === null) return 'not-present';
  if (breakCowRange(k, mm, vpn, vpn + 1) !== OK) return 'not-present';
  // A page of a THP: the folio is split into small pages first (not a shared, GUP-held or pinned one).
  if (hugeIn(k, mm, vpn, vpn + 1)) {
    if (hugePmdIn(k, mm, vpn, vpn + 1)) {
      // Under a huge PMD the walk's PMD path decides for every page of the PMD (the folio's) at once.
      const unsplit = splitForSwap(k, mm, vpn);
      if (unsplit !== null) return unsplit;
    } else {
      // madvise_folio_pte_batch() (6.10+): does this PTE begin a batch that maps the folio whole?
      const whole = k.profile.pageoutLargeWalk === 'batch' && folioPteBatch(k, mm, vpn, walkEnd(vma, vpn, hi)) === HPAGE_PMD_NR;
      const unsplit = splitForSwap(k, mm, vpn, whole);
      if (unsplit !== null) return unsplit === 'shared' ? 'large-shared' : 'large-pinned';
    }
  }
  const skip = pageoutSkip(k, mm, vpn);
  if (skip !== null) return skip;
  const t = k.tables;
  const f = k.frames;
  const slot = pteSlot(k, mm, vpn);
  const bits = t.bits[slot]!;
  const pfn = t.entry[slot]!;
  const fl = f.flags[pfn]!;
  if (fl & PG_SHMEM) return swapOutShmemPage(k, mm, vpn, slot, pfn);
  // shrink_folio_list(): the maybe-pinned check guards add_to_swap() only; a page already in the
  // swap cache (swapped in by a read fault, say) goes on to try_to_unmap().
  if (k.profile.reclaimSkipsPinned && !(fl & PG_SWAPCACHE) && pageMaybeDmaPinned(k, pfn)) return 'pinned';
  // try_to_unmap_one(): an exclusive page must be unshared first (folio_try_share_anon_rmap_pte).
  let exclusive = false;
  if (k.profile.anonExclusive && fl & PG_ANON_EXCLUSIVE) {
    if (pageMaybeDmaPinned(k, pfn)) return 'pinned';
    f.setFlags(pfn, f.flags[pfn]! & ~PG_ANON_EXCLUSIVE);
    exclusive = true;
  }
  const s = addToSwap(k, pfn);
  // try_to_unmap() of a KSM page walks its stable node's rmap items (rmap_walk_ksm); a KSM page in
  // no tree (left by break_cow) has none: it stays mapped, now in the swap cache.
  if (fl & PG_KSM && !f.inStableTree(pfn)) return 'shared';
  setPte(k, slot, s, PTE_SWAP | (exclusive ? PTE_SWP_EXCLUSIVE : 0) | (bits & (PTE_SOFT_DIRTY | PTE_UFFD_WP)));
  k.swap.count[s]!++;
  mm.rssAnon--;
  f.removeRmapPte(pfn, mm.id);
  k.putPage(pfn);
  // pageout(): the data goes to the slot; then the page leaves memory unless someone holds it.
  k.swap.data[s] = f.value[pfn]!;
  if (f.refcount[pfn] === 1) {
    deleteFromSwapCache(k, pfn);
    if (k.tracing) k.emit('note', mm.id, vpn, pfn, -1, `swapped out to slot ${s}; the frame is freed`);
  } else {
    if (k.tracing) k.emit('note', mm.id, vpn, pfn, -1, `swapped out to slot ${s}; the frame stays in the swap cache (refcount ${f.refcount[pfn]}: someone holds it)`);
  }
  return null;
}

/**
 * Why MADV_PAGEOUT leaves the page at vpn alone, from its PTE and page alone: no PTE table, no
 * present page or the zero page there, not anonymous (nor shmem), or mapped more than once
 * (madvise_cold_or_pageout_pte_range(): only pages mapped once); null: swapOutPage goes on with
 * it. Asked with any COW-shared table broken and any THP split: swapOutPage asks it then, and
 * changes nothing before unless one of those is there.
 */
export function pageoutSkip(k: Kernel, mm: Mm, vpn: number): SwapoutSkip {
  const t = k.tables;
  const f = k.frames;
  const slot = pteSlot(k, mm, vpn);
  if (slot < 0) return 'not-present';
  const bits = t.bits[slot]!;
  if (!(bits & PTE_PRESENT) || bits & PTE_SPECIAL) return 'not-present';
  const pfn = t.entry[slot]!;
  const fl = f.flags[pfn]!;
  if (!(fl & (PG_ANON | PG_SHMEM))) return 'not-anon';
  // KSM pages are swapped out too (rmap_walk_ksm); swap-in gives an ordinary page back.
  if (f.mapcount[pfn] !== 1) return 'shared';
  return null;
}

/**
 * MADV_PAGEOUT of a shmem page mapped once (can_do_file_pageout: the caller owns the object):
 * the PTE is cleared, and shmem_writepage() moves the page to a swap slot kept in the object;
 * a page someone else still holds stays in the page cache.
 */
function swapOutShmemPage(k: Kernel, mm: Mm, vpn: number, slot: number, pfn: number): SwapoutSkip {
  const f = k.frames;
  // No pin check here: the maybe-pinned skip guards anon pages only. A pinned shmem page is
  // unmapped like any other and stays in the page cache (its pin keeps the refcount above 1).
  const vma = mm.findVma(vpn)!;
  const obj = vma.shm!;
  const idx = vma.shmOffset + (vpn - vma.start);
  setPte(k, slot, 0, 0);
  mm.rssShmem--;
  f.addMapcount(pfn, -1);
  k.putPage(pfn);
  if (f.refcount[pfn] !== 1) {
    k.emit('note', mm.id, vpn, pfn, -1, 'shmem page unmapped; it stays in the page cache (someone else holds it)');
    return null;
  }
  const s = k.swap.alloc();
  k.swap.data[s] = f.value[pfn]!;
  k.swap.count[s] = 1; // the object's swap entry
  obj.swapped[idx] = s;
  obj.pages[idx] = -1;
  k.putPage(pfn); // the page cache's reference: the frame is free
  if (k.tracing) k.emit('note', mm.id, vpn, pfn, -1, `shmem page written to swap slot ${s} (shmem_writepage); the frame is freed`);
  return null;
}

/** shmem_swapin_folio(): a shmem page read back from its swap slot into the page cache. */
export function shmemSwapIn(k: Kernel, obj: ShmemObject, idx: number): number {
  const s = obj.swapped[idx]!;
  const pfn = k.frames.alloc(PG_SHMEM);
  if (pfn < 0) return -1;
  k.frames.setValue(pfn, k.swap.data[s]!);
  obj.pages[idx] = pfn;
  obj.swapped[idx] = -1;
  swapFree(k, s);
  return pfn;
}

/**
 * do_swap_page(): a fault on a swap PTE (`write`: FAULT_FLAG_WRITE). VM_FAULT_WRITE when it did
 * the write itself (FAULT_FLAG_WRITE cleared: no do_wp_page() in this fault): reuse_swap_page()
 * up to 5.17, a page only we hold from 5.18, only where the PTE ends writable from 6.11.
 */
export function doSwapPage(k: Kernel, mm: Mm, vma: Vma, vpn: number, slot: number, write: boolean): number {
  const t = k.tables;
  const f = k.frames;
  const orig = t.bits[slot]!;
  const s = t.entry[slot]!;
  const sw = k.swap;
  let pfn = sw.cache[s]!;
  let fromCache = true;
  if (pfn < 0) {
    // swapin_readahead(): a new page read from the slot, added to the swap cache.
    pfn = f.alloc(PG_ANON | PG_SWAPCACHE);
    if (pfn < 0) {
      k.emit('oom', mm.id, vpn, -1, -1, 'no free frame to swap the page in (config.frames)');
      return OOM;
    }
    f.setValue(pfn, sw.data[s]!);
    f.priv[pfn] = s;
    sw.cache[s] = pfn; // the allocation's reference is the swap cache's
    fromCache = false;
  }
  const ksm = (f.flags[pfn]! & PG_KSM) !== 0;
  // The reference the fault holds on the page becomes the mapping's (taken before any cache change).
  f.addRefcount(pfn, 1);
  let writable = false;
  let exclusive = false;
  let writeDone = false;
  const p = k.profile;
  if (p.swapinReuse === 'reuse_swap_page') {
    // reuse_swap_page(): mapcount + swap count (ours included) <= 1; the cache entry goes.
    if (write && !ksm && f.mapcount[pfn]! + sw.count[s]! <= 1) {
      writable = true;
      exclusive = true;
      // The write is done here, whatever write bit the VMA and a uffd-wp bit leave the PTE
      // (vmf->flags &= ~FAULT_FLAG_WRITE, ret |= VM_FAULT_WRITE): no do_wp_page(), so no
      // userfault; 5.8's forced COW break in a read-only VMA ends here (FOLL_COW).
      writeDone = true;
    }
    swapFree(k, s);
    if (writable && f.flags[pfn]! & PG_SWAPCACHE) deleteFromSwapCache(k, pfn);
  } else {
    // 5.18+: swap_free, then free the swap cache if we are likely its only user, then the refcount decides.
    const swpExclusive = p.swapinReuse === 'exclusive-bit' && (orig & PTE_SWP_EXCLUSIVE) !== 0;
    swapFree(k, s);
    // should_try_to_free_swap(): a write fault where only the cache and we hold the page.
    if (write && !ksm && f.refcount[pfn] === 2) tryToFreeSwap(k, pfn);
    const onlyOurs = !(f.flags[pfn]! & PG_SWAPCACHE) && f.refcount[pfn] === 1;
    if (p.swapinReuse === 'refcount') {
      // 5.18 (c145e0b47c77): a write fault on a page only we hold does the write here, as
      // reuse_swap_page() did (maybe_mkwrite(pte_mkdirty()), FAULT_FLAG_WRITE cleared).
      writable = write && !ksm && onlyOurs;
      exclusive = writable;
      writeDone = writable;
    } else if (!ksm && (swpExclusive || onlyOurs)) {
      exclusive = true;
      if (p.swapinReadFaultWritable) {
        // 6.11 (c18160dba5ff): writable on any fault that the VMA, a uffd-wp bit and soft-dirty
        // tracking (pte_needs_soft_dirty_wp) allow; FAULT_FLAG_WRITE is cleared only then, so a
        // write they keep read-only goes on to do_wp_page() in this fault.
        const softDirtyWp = !(vma.flags & VM_SOFTDIRTY) && !(orig & PTE_SOFT_DIRTY);
        writable = (vma.flags & VM_WRITE) !== 0 && !(orig & PTE_UFFD_WP) && !softDirtyWp;
      } else {
        // 5.19 to 6.10: a write fault does the write here whatever the entry's uffd-wp bit then
        // leaves (maybe_mkwrite(pte_mkdirty()), FAULT_FLAG_WRITE cleared): a store it keeps
        // read-only is retried and faults again, into do_wp_page(); a read fault maps it read-only.
        writable = write;
        writeDone = write;
      }
    }
  }
  // pte_swp_uffd_wp(): the page comes back write-protected with the bit (every era since f45ec5ff16a7, 5.7);
  // the write is retried and reaches the monitor through do_wp_page().
  if (orig & PTE_UFFD_WP) writable = false;
  if (exclusive && p.anonExclusive) f.setFlags(pfn, f.flags[pfn]! | PG_ANON_EXCLUSIVE);
  f.addRmapPte(pfn, mm.id);
  mm.rssAnon++;
  anonVmaPrepare(k, mm, vma);
  // maybe_mkwrite(pte_mkdirty()): a write done here dirties the PTE even where it stays read-only.
  const w = writable && vma.flags & VM_WRITE;
  setPte(k, slot, pfn, PTE_PRESENT | PTE_YOUNG | (orig & (PTE_SOFT_DIRTY | PTE_UFFD_WP)) | (w ? PTE_WRITE : 0) |
    ((w && write) || writeDone ? PTE_DIRTY | PTE_SOFT_DIRTY : 0));
  k.emit('note', mm.id, vpn, pfn, -1,
    `do_swap_page: slot ${s} swapped in ${fromCache ? 'from the swap cache' : 'from the device'} as frame ${pfn}, mapped ${writable ? 'writable' : 'read-only'}${exclusive ? ', exclusive' : ''}${writeDone && !writable ? ' (the write done here: FAULT_FLAG_WRITE cleared)' : ''}`);
  return writeDone ? VM_FAULT_WRITE : OK;
}

export { copySwapPte, deleteFromSwapCache, freeSwapAndCache, swapFree, tryToFreeSwap } from './swapcache.js';
