// KSM: ksmd's scan merging identical pages of MADV_MERGEABLE mappings into write-protected KSM
// pages (stable tree by content, unstable tree per pass, write_protect_page + replace_page).

import {
  PG_ANON, PG_ANON_EXCLUSIVE, PG_INUSE, PG_KSM, PG_LARGE, PG_SWAPCACHE, PTE_DIRTY, PTE_PRESENT, PTE_SPECIAL, PTE_WRITE,
  PTE_UFFD_WP,
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
 * cache) references it — no GUP reference or pin; then its PTE is write-protected and cleaned and
 * the page stops being exclusive. The reference check runs only for a PTE that is writable, dirty
 * or maps a PageAnonExclusive page: a clean read-only PTE of a shared page (a read fault's mapping
 * write-protected by fork) is taken as it is, extra references (a pipe buffer, GUP) and all.
 */
function writeProtectPage(k: Kernel, mm: Mm, slot: number, vpn: number): boolean {
  const f = k.frames;
  const pfn = k.tables.entry[slot]!;
  const bits = k.tables.bits[slot]!;
  const exclusive = k.profile.anonExclusive && (f.flags[pfn]! & PG_ANON_EXCLUSIVE) !== 0;
  // write_protect_page(): nothing to do (and nothing checked) unless pte_write || pte_dirty || anon_exclusive.
  if (!(bits & (PTE_WRITE | PTE_DIRTY)) && !exclusive) return true;
  const swapcache = f.flags[pfn]! & PG_SWAPCACHE ? 1 : 0;
  if (f.mapcount[pfn]! + swapcache !== f.refcount[pfn]) return false;
  if (exclusive && pageMaybeDmaPinned(k, pfn)) return false;
  if (bits & PTE_WRITE) mmuNotify(k, mm.id, vpn, vpn + 1, 'KSM write-protect');
  f.flags[pfn] = f.flags[pfn]! & ~PG_ANON_EXCLUSIVE;
  k.tables.bits[slot] = bits & ~(PTE_WRITE | PTE_DIRTY);
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
  t.bits[slot] = t.bits[slot]! & ~(PTE_WRITE | PTE_DIRTY | PTE_UFFD_WP);
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
        // A page of a large folio: ksmd would split the folio first (split_huge_page), which the
        // model does not do yet; it is left alone.
        if (!(f.flags[pfn]! & PG_ANON) || f.flags[pfn]! & (PG_KSM | PG_LARGE)) return;
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
