// KSM: ksmd's scan merging identical pages of MADV_MERGEABLE mappings into write-protected KSM
// pages (stable tree by content, unstable tree per pass, write_protect_page + replace_page).

import {
  PG_ANON, PG_ANON_EXCLUSIVE, PG_INUSE, PG_KSM, PG_SWAPCACHE, PTE_PRESENT, PTE_SPECIAL, PTE_UFFD_WP, PTE_WRITE,
  VM_MERGEABLE,
} from './constants.js';
import { mmuNotify } from './exclusive.js';
import { pageMaybeDmaPinned } from './page.js';
import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import { forEachPte } from './mmap.js';
import { wpPageCopy } from './fault.js';
import { breakCowRange } from './cowpt.js';

/**
 * write_protect_page(): KSM may take a page only if nothing but its mappings (and the swap
 * cache) references it — no GUP reference or pin; then its PTE is write-protected and the page
 * stops being exclusive.
 */
function writeProtectPage(k: Kernel, mm: Mm, slot: number, vpn: number): boolean {
  const f = k.frames;
  const pfn = k.tables.entry[slot]!;
  const swapcache = f.flags[pfn]! & PG_SWAPCACHE ? 1 : 0;
  if (f.mapcount[pfn]! + swapcache !== f.refcount[pfn]) return false;
  if (k.profile.anonExclusive && f.flags[pfn]! & PG_ANON_EXCLUSIVE && pageMaybeDmaPinned(k, pfn)) return false;
  if (k.tables.bits[slot]! & PTE_WRITE) mmuNotify(k, mm.id, vpn, vpn + 1, 'KSM write-protect');
  f.flags[pfn] = f.flags[pfn]! & ~PG_ANON_EXCLUSIVE;
  k.tables.bits[slot] = k.tables.bits[slot]! & ~PTE_WRITE;
  return true;
}

/**
 * replace_page(): map the KSM page here instead, read-only; the old page loses this mapping. The
 * new PTE is made from vm_page_prot (mk_pte): the old PTE's uffd-wp bit is not carried, so a
 * protected page merged here takes its next write without the monitor (every kernel with uffd-wp;
 * seen on a 6.18 kernel: pagemap's PM_UFFD_WP drops at the merge and the write is not reported).
 */
function replacePage(k: Kernel, slot: number, kpfn: number): void {
  const f = k.frames;
  const t = k.tables;
  const old = t.entry[slot]!;
  f.refcount[kpfn]!++;
  f.mapcount[kpfn]!++;
  t.entry[slot] = kpfn;
  t.bits[slot] = t.bits[slot]! & ~(PTE_WRITE | PTE_UFFD_WP);
  f.mapcount[old]!--;
  k.putPage(old);
}

/**
 * ksmd at work until it has nothing left to merge (as `ksm merge` waits for it): full passes over
 * every mergeable mapping until one merges nothing. A later pass matters: a page scanned before
 * the KSM page of its content existed merges into it from the stable tree. Returns the pages merged.
 */
export function ksmMerge(k: Kernel): number {
  let total = 0;
  let passes = 0;
  for (;;) {
    passes++;
    const merged = ksmPass(k);
    total += merged;
    if (merged === 0) break;
  }
  k.emit('note', -1, -1, -1, -1, `ksmd: ${total} page(s) merged in ${passes} pass(es) (the last merged nothing)`);
  return total;
}

/** One full ksmd pass over every mergeable mapping (scan_get_next_rmap_item ... cmp_and_merge_page). Returns the pages merged. */
function ksmPass(k: Kernel): number {
  const f = k.frames;
  const t = k.tables;
  // The stable tree: KSM pages by content.
  const stable = new Map<number, number>();
  for (let pfn = 1; pfn < f.top; pfn++) {
    if ((f.flags[pfn]! & (PG_KSM | PG_INUSE)) === (PG_KSM | PG_INUSE) && f.inStableTree(pfn) && !stable.has(f.value[pfn]!)) stable.set(f.value[pfn]!, pfn);
  }
  const unstable = new Map<number, { mm: Mm; vpn: number; slot: number }>();
  let merged = 0;
  // The list of registered mms, in its order (scan_get_next_rmap_item walks it from the head).
  const list = k.mms.filter((m) => m.alive && m.ksmSlot > 0).sort((a, b) => a.ksmSlot - b.ksmSlot);
  for (const mm of list) {
    for (const vma of mm.vmas) {
      if (!(vma.flags & VM_MERGEABLE)) continue;
      breakCowRange(k, mm, vma.start, vma.end);
      forEachPte(k, mm, vma.start, vma.end, (slot, vpn) => {
        const bits = t.bits[slot]!;
        if (!(bits & PTE_PRESENT) || bits & PTE_SPECIAL) return;
        const pfn = t.entry[slot]!;
        if (!(f.flags[pfn]! & PG_ANON) || f.flags[pfn]! & PG_KSM) return;
        const value = f.value[pfn]!;
        const kpfn = stable.get(value);
        if (kpfn !== undefined) {
          // stable_tree_search() found identical content: merge into the KSM page.
          if (writeProtectPage(k, mm, slot, vpn)) {
            replacePage(k, slot, kpfn);
            merged++;
            k.emit('note', mm.id, vpn, pfn, kpfn, `KSM: merged into KSM page ${kpfn}`);
          }
          return;
        }
        const other = unstable.get(value);
        if (other && k.tables.entry[other.slot] !== pfn) {
          // try_to_merge_two_pages(): the page being scanned becomes the KSM page in place, then
          // the tree page is replaced by it; if that fails, break_cow() unshares the scanned page.
          if (writeProtectPage(k, mm, slot, vpn)) {
            f.flags[pfn] = (f.flags[pfn]! | PG_KSM) & ~PG_ANON_EXCLUSIVE;
            if (writeProtectPage(k, other.mm, other.slot, other.vpn)) {
              const tpfn = k.tables.entry[other.slot]!;
              replacePage(k, other.slot, pfn);
              // stable_tree_insert(): only a merge of both pages puts the KSM page in the tree.
              f.setStableTree(pfn, true);
              stable.set(value, pfn);
              unstable.delete(value);
              merged++;
              k.emit('note', mm.id, vpn, tpfn, pfn, `KSM: page ${pfn} becomes a KSM page; page ${tpfn} merged into it`);
            } else {
              // break_cow(): an unshare fault in ksmd's context (not counted to the process). The
              // page stays a KSM page for its other mappings, in no tree: nothing merges into it.
              wpPageCopy(k, mm, vma, vpn, slot, true);
              k.emit('note', mm.id, vpn, pfn, -1, 'KSM: the other page could not be merged (a reference holds it): break_cow unshares this one again; the KSM page is in no tree');
            }
          }
          return;
        }
        if (!other) unstable.set(value, { mm, vpn, slot });
      });
    }
  }
  return merged;
}
