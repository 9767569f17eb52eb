// Swap entries and the swap cache: the primitives that fork, zap, COW page tables and the fault
// path share (a leaf of src/core: no import of the paths that use it).

import { PTE_SWP_EXCLUSIVE, PTE_UFFD_WP, PG_SWAPCACHE } from './constants.js';
import type { Kernel } from './kernel.js';

/** delete_from_swap_cache(): the frame leaves the swap cache and the cache drops its reference. */
export function deleteFromSwapCache(k: Kernel, pfn: number): void {
  k.leaveSwapCache(pfn);
  k.putPage(pfn);
}

/** try_to_free_swap() / folio_free_swap(): only when no swap entry names the slot any more. */
export function tryToFreeSwap(k: Kernel, pfn: number): boolean {
  if (!(k.frames.flags[pfn]! & PG_SWAPCACHE)) return false;
  if (k.swap.count[k.frames.priv[pfn]!]! > 0) return false;
  deleteFromSwapCache(k, pfn);
  return true;
}

/** swap_free(): one swap PTE fewer names the slot. */
export function swapFree(k: Kernel, s: number): void {
  k.swap.count[s]!--;
  k.swap.maybeFree(s);
}

/** free_swap_and_cache(): a swap PTE was zapped; when no PTE names the slot, the cache entry goes. */
export function freeSwapAndCache(k: Kernel, s: number): void {
  const sw = k.swap;
  sw.count[s]!--;
  // __try_to_reclaim_swap(TTRS_UNMAPPED): the cached page goes only if no one maps it any more
  // (a mapped one leaves the cache when its last reference but the cache's goes: Kernel.putPage).
  const pfn = sw.cache[s]!;
  if (sw.count[s] === 0 && pfn >= 0 && k.frames.mapcount[pfn] === 0) deleteFromSwapCache(k, pfn);
  else sw.maybeFree(s);
}

/** copy_nonpresent_pte() for a swap entry: the slot gains a user; SWP_EXCLUSIVE is cleared in the parent. */
export function copySwapPte(k: Kernel, srcSlot: number, keepUffdWp = false): number {
  const t = k.tables;
  const bits = t.bits[srcSlot]!;
  k.swap.count[t.entry[srcSlot]!]!++;
  if (bits & PTE_SWP_EXCLUSIVE) t.setBits(srcSlot, bits & ~PTE_SWP_EXCLUSIVE);
  return bits & ~(PTE_SWP_EXCLUSIVE | (keepUffdWp ? 0 : PTE_UFFD_WP)); // pte_swp_clear_uffd_wp() unless kept
}

