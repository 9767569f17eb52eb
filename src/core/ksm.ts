// KSM: ksmd's scan merging identical pages of MADV_MERGEABLE mappings into write-protected KSM
// pages (stable tree by content, unstable tree per pass, write_protect_page + replace_page).

import {
  HPAGE_PMD_NR, PG_ANON, PG_ANON_EXCLUSIVE, PG_INUSE, PG_KSM, PG_LARGE, PG_SWAPCACHE, PTE_DIRTY, PTE_PRESENT, PTE_PROTNONE, PTE_SPECIAL, PTE_WRITE,
  PTE_YOUNG, VM_MERGEABLE,
} from './constants.js';
import { mmuNotify } from './exclusive.js';
import { pageMaybeDmaPinned } from './page.js';
import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import { forEachPte } from './mmap.js';
import { wpPageCopy } from './fault.js';
import { userfaultfdPteWp } from './userfaultfd.js';
import { breakCowRange } from './cowpt.js';
import { followSlot, slotPfn, splitHugePage } from './huge.js';
import { pmdLeafSlot, pteSlot } from './walk.js';

/**
 * write_protect_page(): KSM may take a page only if it is not a KSM page already and nothing but
 * its mappings (and the swap cache) references it — no GUP reference or pin; then its PTE is
 * write-protected and cleaned and the page stops being exclusive. The reference check runs only for a PTE that is writable, dirty
 * or maps a PageAnonExclusive page: a clean read-only PTE of a shared page (a read fault's mapping
 * write-protected by fork) is taken as it is, extra references (a pipe buffer, GUP) and all.
 */
function writeProtectPage(k: Kernel, mm: Mm, slot: number, vpn: number): boolean {
  const f = k.frames;
  const pfn = k.tables.entry[slot]!;
  const bits = k.tables.bits[slot]!;
  // page_address_in_vma() finds no anon_vma for a KSM folio (folio_anon_vma: its mapping is a
  // stable node, NULL for break_cow's leftover): -EFAULT, so such a page is never merged again
  // and, as the unstable tree's page, refuses the merge of the page met later.
  if (f.flags[pfn]! & PG_KSM) return false;
  const exclusive = k.profile.anonExclusive && (f.flags[pfn]! & PG_ANON_EXCLUSIVE) !== 0;
  // write_protect_page(): nothing to do (and nothing checked) unless pte_write || pte_dirty || anon_exclusive.
  if (!(bits & (PTE_WRITE | PTE_DIRTY)) && !exclusive) return true;
  const swapcache = f.flags[pfn]! & PG_SWAPCACHE ? 1 : 0;
  if (f.mapcount[pfn]! + swapcache !== f.refcount[pfn]) return false;
  if (exclusive && pageMaybeDmaPinned(k, pfn)) return false;
  if (bits & PTE_WRITE) mmuNotify(k, mm.id, vpn, vpn + 1, 'KSM write-protect');
  f.setFlags(pfn, f.flags[pfn]! & ~PG_ANON_EXCLUSIVE);
  k.tables.setBits(slot, bits & ~(PTE_WRITE | PTE_DIRTY));
  return true;
}

/**
 * replace_page(): map the KSM page here instead, read-only; the old page loses this mapping. The
 * new PTE is made from vm_page_prot (mk_pte(kpage, vma->vm_page_prot)): none of the old PTE's
 * bits is carried (x86's PAGE_COPY is present, user, accessed: so young, clean, not soft-dirty,
 * without uffd-wp). So a protected page merged here takes its next write without the monitor
 * (every kernel with uffd-wp; seen on a 6.18 kernel: pagemap's PM_UFFD_WP drops at the merge and
 * the write is not reported), and an old PTE (a child's after fork) is young from the merge on.
 * (A PROT_NONE mapping's PAGE_NONE, accessed too, keeps PTE_PROTNONE.)
 */
function replacePage(k: Kernel, slot: number, kpfn: number): void {
  const f = k.frames;
  const t = k.tables;
  const old = t.entry[slot]!;
  f.addRefcount(kpfn, 1);
  f.addMapcount(kpfn, 1);
  t.setPte(slot, kpfn, PTE_PRESENT | PTE_YOUNG | (t.bits[slot]! & PTE_PROTNONE));
  f.addMapcount(old, -1);
  k.putPage(old);
}

/**
 * replace_page() with the zero page as kpage (use_zero_pages): the PTE maps the shared zero page,
 * pte_mkspecial(pfn_pte(zero_pfn, vm_page_prot)) (young, read-only, no reference or mapcount on
 * it: a later write copies it as any zero-page PTE, fork shares it, ksmd's walk skips it), and
 * the old page loses this mapping (dec_mm_counter(MM_ANONPAGES)). From 6.6 the PTE is also made
 * dirty to mark it KSM's (ksm_zero_pages, break_ksm's is_ksm_zero_pte): not modelled, so
 * mremap, whose prep_move_vma() unshares such PTEs, is n/a over them (hasKsmPage).
 */
function replaceWithZeroPage(k: Kernel, mm: Mm, slot: number): void {
  const f = k.frames;
  const t = k.tables;
  const old = t.entry[slot]!;
  t.setPte(slot, 0, PTE_PRESENT | PTE_SPECIAL | PTE_YOUNG | (t.bits[slot]! & PTE_PROTNONE));
  mm.rssAnon--;
  f.addMapcount(old, -1);
  k.putPage(old);
}

/** /sys/kernel/mm/ksm/max_page_sharing's default (4.13+): the most mappings one KSM page takes. */
export const KSM_MAX_PAGE_SHARING = 256;

/**
 * __is_page_sharing_candidate(): a stable node with n rmap items takes `more` mappings besides
 * those: one still hangs on it ("otherwise there's no much point to merge and share with this
 * stable_node, as the underlying tree_page of the other sharer is going to be freed soon") and
 * n + more stays below max_page_sharing.
 */
function isPageSharingCandidate(n: number, more: number): boolean {
  return n > 0 && n + more < KSM_MAX_PAGE_SHARING;
}

/**
 * ksmd at work until it has nothing left to merge (as `ksm merge` waits for it): full passes over
 * every mergeable mapping until one merges (or splits) nothing and changes no rmap item. A later pass matters: a page
 * scanned before the KSM page of its content existed merges into it from the stable tree, a page
 * whose checksum was new in one pass merges only in the next, and two pages of one THP merge
 * only once a pass has split it. With smart scan (ksmSmartScan) a pass that changed nothing can
 * still be followed by one that merges: the next pass leaves other pages out. Since nothing else
 * changes meanwhile, ksmd scans on until the items' ages and skips come round to a state a pass
 * since the last change began with: every later pass repeats one of those (at most about 30
 * passes, the ages stopping at KSM_AGE_CAP and the skips at 8). Returns the pages merged.
 */
export function ksmMerge(k: Kernel): number {
  let total = 0;
  let passes = 0;
  let skipped = 0;
  const smart = ksmSmartScanOn(k);
  // The skip states passes since the last change began with (smart scan only).
  const seen = new Set<string>();
  if (smart) seen.add(skipStates(k));
  for (;;) {
    passes++;
    const pass = ksmPass(k);
    total += pass.merged;
    skipped += pass.skipped;
    // A pass that only changed rmap items (a fork's mappings of a KSM page given theirs, a
    // checksum remembered) can make a KSM page a sharing candidate, or a page a merge candidate,
    // for the next: ksmd scans on.
    const changed = pass.merged !== 0 || pass.split !== 0 || pass.moved;
    if (!smart) {
      if (!changed) break;
      continue;
    }
    const states = skipStates(k);
    if (changed) seen.clear();
    else if (seen.has(states)) break;
    seen.add(states);
  }
  if (k.tracing) k.emit('note', -1, -1, -1, -1, `ksmd: ${total} page(s) merged in ${passes} pass(es) (the last merged nothing)${smart ? `; smart scan left ${skipped} page scan(s) out` : ''}`);
  return total;
}

/**
 * Whether ksmd skips pages by age (should_skip_rmap_item(): the profile's ksmSmartScan, unless
 * the scenario switched /sys/kernel/mm/ksm/smart_scan off with config.ksm_smart_scan 0).
 */
export function ksmSmartScanOn(k: Kernel): boolean {
  return k.profile.ksmSmartScan && k.config.ksmSmartScan !== false;
}

/** Every registered mm's rmap item ages and skips (Mm.ksmAges), as one text. */
function skipStates(k: Kernel): string {
  let s = '';
  for (const mm of k.mms) {
    if (!mm.alive || mm.ksmSlot === 0 || mm.ksmAges === null) continue;
    s += `${mm.id}:`;
    for (const [vpn, state] of mm.ksmAges) s += `${vpn}=${state},`;
  }
  return s;
}

/**
 * The age ksmd's smart scan counts to in the model: rmap_item->age counts the times ksmd met the
 * page as no KSM page, up to 255 (U8_MAX), but skip_age() and should_skip_rmap_item() tell no age
 * from 9 on from another, so the model stops at 9.
 */
export const KSM_AGE_CAP = 9;

/** An rmap item's smart scan state as Mm.ksmAges keeps it: its age and remaining_skips. */
export function ksmSkipState(age: number, remainingSkips: number): number {
  return age * 16 + remainingSkips;
}

/** The age of a smart scan state (ksmSkipState). */
export function ksmAgeOf(state: number): number {
  return state >> 4;
}

/** The remaining skips of a smart scan state (ksmSkipState). */
export function ksmSkipsOf(state: number): number {
  return state & 15;
}

/** skip_age(): the passes an item of this age may be left out of after the one it is met in. */
function skipAge(age: number): number {
  return age <= 3 ? 1 : age <= 5 ? 2 : age <= 8 ? 4 : 8;
}

/**
 * should_skip_rmap_item() for a page that is not a KSM page (a KSM page is never skipped and does
 * not age): whether ksmd leaves it out of this pass, given its item's state when met. An item
 * met fewer than four times is never left out; then, with no skips left, it is scanned and given
 * skip_age(age) of them, else one is spent and the page skipped.
 */
export function ksmSkips(state: number): boolean {
  return ksmAgeOf(state) >= 3 && ksmSkipsOf(state) > 0;
}

/** The item's state after should_skip_rmap_item() met it (the age one more, up to KSM_AGE_CAP). */
export function ksmSkipNext(state: number): number {
  const age = ksmAgeOf(state);
  const skips = ksmSkipsOf(state);
  const next = Math.min(age + 1, KSM_AGE_CAP);
  if (age < 3) return ksmSkipState(next, skips);
  return ksmSkipState(next, skips === 0 ? skipAge(age) : skips - 1);
}

/**
 * Whether no mm ever joined ksmd's list (__ksm_enter, at the first MADV_MERGEABLE): there is no
 * KSM page and no rmap item, ksmd_should_run() is false, and ksmMerge() changes nothing.
 */
export function ksmNeverEntered(k: Kernel): boolean {
  return k.ksmSlots === 0;
}

/**
 * The anonymous page ksmd's walk finds at vpn (ksm_next_page_pmd_entry; follow_page before 6.8):
 * a PTE's page, or the page of a PMD-mapped THP, which the walk takes as it is, without splitting
 * the PMD. -1: nothing present there, the zero page or huge zero page, not anonymous. A PROT_NONE
 * PTE is present and taken, except from 6.1 to 6.4 (ksmScansProtnone false: follow_page()
 * follows it only with FOLL_FORCE).
 */
function scannedPage(k: Kernel, mm: Mm, vpn: number): number {
  const slot = followSlot(k, mm, vpn);
  if (slot < 0) return -1;
  const bits = k.tables.bits[slot]!;
  if (!(bits & PTE_PRESENT) || bits & PTE_SPECIAL) return -1;
  if (bits & PTE_PROTNONE && !k.profile.ksmScansProtnone) return -1;
  const pfn = slotPfn(k, slot, vpn);
  return k.frames.flags[pfn]! & PG_ANON ? pfn : -1;
}

/** A KSM page of the stable tree (its folio->mapping names a stable node). */
export function isStableKsm(k: Kernel, pfn: number): boolean {
  return (k.frames.flags[pfn]! & (PG_KSM | PG_INUSE)) === (PG_KSM | PG_INUSE) && k.frames.inStableTree(pfn);
}

/**
 * A KSM page's place in the list of dups of its content's stable node chain: 1 for the head
 * (stable_node_dup() looks there first), 0 for a page in no stable tree. Which dup a later page
 * merges into follows it (the explorer's key holds it, not the orders, which a dup freed since
 * the last pass leaves a gap in). Order 1 is the head: no other page to look at.
 */
export function chainPlace(k: Kernel, pfn: number): number {
  if (!isStableKsm(k, pfn)) return 0;
  const f = k.frames;
  const order = f.stableOrder(pfn);
  if (order === 1) return 1;
  const value = f.value[pfn]!;
  let place = 1;
  for (let p = 1; p < f.top; p++) if (f.value[p] === value && f.stableOrder(p) < order && isStableKsm(k, p)) place++;
  return place;
}

/**
 * The page ksmd's walk finds at vpn that cmp_and_merge_page may merge: -1 also for a KSM page of
 * the stable tree (stable_tree_search finds the page itself, "ksm page forked"). A KSM page in no
 * tree (break_cow's leftover: no stable node) is scanned like any anonymous page
 * (cmp_and_merge_page takes it as an ordinary page), and write_protect_page then refuses it (no
 * anon_vma).
 */
function mergeablePage(k: Kernel, mm: Mm, vpn: number): number {
  const pfn = scannedPage(k, mm, vpn);
  return pfn >= 0 && isStableKsm(k, pfn) ? -1 : pfn;
}

/**
 * try_to_merge_one_page() from its start: a page of a large folio splits the folio first
 * (split_huge_page: its huge PMDs split, and on 6.12+ its zero-filled pages map the shared zero
 * page). Returns the PTE slot now mapping pfn at vpn, or -1 when the split is refused (a reference
 * besides the mappings: can_split_folio) or the page is no longer mapped there.
 */
function pageToMerge(k: Kernel, mm: Mm, vpn: number, pfn: number): number {
  if (k.frames.flags[pfn]! & PG_LARGE && !splitHugePage(k, pfn & ~(HPAGE_PMD_NR - 1), 'ksmd merges a page of it (try_to_merge_one_page)')) return -1;
  const slot = pteSlot(k, mm, vpn);
  if (slot < 0 || k.tables.entry[slot] !== pfn || !(k.tables.bits[slot]! & PTE_PRESENT) || k.tables.bits[slot]! & PTE_SPECIAL) return -1;
  return slot;
}

/**
 * One full ksmd pass over every mergeable mapping (scan_get_next_rmap_item ... cmp_and_merge_page).
 * Returns the pages merged, the THPs split (two pages of one folio, or try_to_merge_one_page's
 * split, merged or not), and whether an rmap item changed (Mm.ksmItems: set where a page merged or
 * a stable KSM page was met, gone where ksmd met another page or passed the address with none to
 * scan; Mm.ksmChecksums: set where a page's checksum differed from its item's, gone with the item),
 * and the page scans smart scan left out (Mm.ksmAges, which changes at every page met that is no
 * KSM page, does not count as an rmap item changed).
 */
function ksmPass(k: Kernel): { merged: number; split: number; moved: boolean; skipped: number } {
  const f = k.frames;
  // The stable tree: KSM pages by content; more than one (a stable node chain's dups) once one
  // holds max_page_sharing mappings, or once a KSM page no rmap item hangs on met its content
  // again. Each chain's dups in the order of its hlist, the head first (Frames.stableOrder).
  const stable = new Map<number, number[]>();
  for (let pfn = 1; pfn < f.top; pfn++) {
    if (!isStableKsm(k, pfn)) continue;
    const dups = stable.get(f.value[pfn]!);
    if (dups) dups.push(pfn);
    else stable.set(f.value[pfn]!, [pfn]);
  }
  for (const dups of stable.values()) if (dups.length > 1) dups.sort((a, b) => f.stableOrder(a) - f.stableOrder(b));
  // The list of registered mms, in its order (scan_get_next_rmap_item walks it from the head).
  // An exited mm's items are gone first (__ksm_exit moves its slot to the head).
  const list = k.mms.filter((m) => m.alive && m.ksmSlot > 0).sort((a, b) => a.ksmSlot - b.ksmSlot);
  // A stable node's rmap_hlist_len: the rmap items hanging on it (an item left on a page since
  // freed belongs to a stale node: it counts for nothing).
  const items = new Map<number, number>();
  for (const mm of list) mm.ksmItems?.forEach((p) => void (isStableKsm(k, p) && items.set(p, (items.get(p) ?? 0) + 1)));
  // The items as this pass leaves them: a new map per mm changed (clones share the old one).
  const work = new Map<Mm, Map<number, number>>();
  const itemsOf = (mm: Mm): Map<number, number> => {
    let m = work.get(mm);
    if (m === undefined) work.set(mm, (m = new Map(mm.ksmItems ?? [])));
    return m;
  };
  // The checksums as this pass leaves them, copied as the items are.
  const sumsWork = new Map<Mm, Map<number, number>>();
  const sumsOf = (mm: Mm): Map<number, number> => {
    let m = sumsWork.get(mm);
    if (m === undefined) sumsWork.set(mm, (m = new Map(mm.ksmChecksums ?? [])));
    return m;
  };
  // The smart scan states as this pass leaves them, copied as the items are.
  const agesWork = new Map<Mm, Map<number, number>>();
  const agesOf = (mm: Mm): Map<number, number> => {
    let m = agesWork.get(mm);
    if (m === undefined) agesWork.set(mm, (m = new Map(mm.ksmAges ?? [])));
    return m;
  };
  const smartScan = ksmSmartScanOn(k);
  let skipped = 0;
  let moved = false;
  /** remove_rmap_item_from_tree(): the item at vpn leaves its stable node. */
  const dropItem = (mm: Mm, vpn: number): void => {
    const m = work.get(mm) ?? mm.ksmItems;
    const p = m?.get(vpn);
    if (p === undefined) return;
    itemsOf(mm).delete(vpn);
    if (isStableKsm(k, p)) items.set(p, items.get(p)! - 1);
    moved = true;
  };
  /** stable_tree_append(): the item at vpn hangs on kpfn's stable node. */
  const setItem = (mm: Mm, vpn: number, kpfn: number): void => {
    if ((work.get(mm) ?? mm.ksmItems)?.get(vpn) === kpfn) return;
    dropItem(mm, vpn);
    itemsOf(mm).set(vpn, kpfn);
    items.set(kpfn, (items.get(kpfn) ?? 0) + 1);
    moved = true;
  };
  /** get_next_rmap_item() passing an address with no page to scan: its item is freed, checksum and all. */
  const freeItem = (mm: Mm, vpn: number): void => {
    dropItem(mm, vpn);
    if ((sumsWork.get(mm) ?? mm.ksmChecksums)?.has(vpn)) {
      sumsOf(mm).delete(vpn);
      moved = true;
    }
    if ((agesWork.get(mm) ?? mm.ksmAges)?.has(vpn)) agesOf(mm).delete(vpn);
  };
  /**
   * should_skip_rmap_item() (smart scan), for a page that is not a KSM page: the item ages, and
   * a page left out of this pass leaves its stable node (remove_rmap_item_from_tree) and goes no
   * further: no checksum, no tree. True: left out.
   */
  const skipsPage = (mm: Mm, vpn: number): boolean => {
    const state = (agesWork.get(mm) ?? mm.ksmAges)?.get(vpn) ?? 0;
    agesOf(mm).set(vpn, ksmSkipNext(state));
    if (!ksmSkips(state)) return false;
    dropItem(mm, vpn);
    skipped++;
    return true;
  };
  /**
   * cmp_and_merge_page(): calc_checksum() differs from rmap_item->oldchecksum (a new item's is
   * 0, no page's): the value is remembered and the page merges nowhere in this pass.
   */
  const checksumChanged = (mm: Mm, vpn: number, value: number): boolean => {
    if ((sumsWork.get(mm) ?? mm.ksmChecksums)?.get(vpn) === value) return false;
    sumsOf(mm).set(vpn, value);
    moved = true;
    return true;
  };
  // stable_tree_search() -> chain_prune() -> stable_node_dup(): the KSM page of this content a
  // page merges into, or -1 when none is a sharing candidate (the page then waits for a partner
  // in the unstable tree: a new dup at the chain's head). The walk goes from the head and takes
  // the first candidate; that dup moves to the head if it has room for one more besides this
  // merge. A walk that prunes (the chain's first search ksm_stable_node_chains_prune_millisecs,
  // 2 s, after its creation or last prune) goes over every dup and takes the candidate with the
  // most rmap items: timing the model has no clock for. A search of other content whose way
  // down the rbtree passes this chain's node moves its first candidate to the head too: not
  // modelled either (the tree's shape follows the pages' bytes).
  const stableDup = (value: number): number => {
    const dups = stable.get(value);
    if (dups === undefined) return -1;
    for (let i = 0; i < dups.length; i++) {
      const p = dups[i]!;
      const n = items.get(p) ?? 0;
      if (!isPageSharingCandidate(n, 0)) continue;
      if (i > 0 && isPageSharingCandidate(n, 1)) dups.unshift(...dups.splice(i, 1));
      return p;
    }
    return -1;
  };
  // The unstable tree: rmap items by content, looked up again when met (get_mergeable_page).
  const unstable = new Map<number, { mm: Mm; vpn: number }>();
  let merged = 0;
  let split = 0;
  // pageToMerge, counting the THP it split: a split that merges nothing still changes what the
  // next pass finds (small pages, 6.12's zero-filled ones on the zero page), so ksmd goes on.
  const toMerge = (mm: Mm, vpn: number, pfn: number): number => {
    const large = (f.flags[pfn]! & PG_LARGE) !== 0;
    const slot = pageToMerge(k, mm, vpn, pfn);
    if (large && !(f.flags[pfn]! & PG_LARGE)) split++;
    return slot;
  };
  // try_to_merge_with_zero_page() (6.11+; the same test inline in cmp_and_merge_page before):
  // with use_zero_pages, a page whose checksum is the empty page's (zero_checksum) goes to
  // try_to_merge_one_page() with the zero page as kpage: split if large, write_protect_page, then
  // replace_page(). Merged: the page is done (it joins no tree); failed (-EFAULT): it goes on to
  // the trees.
  const useZeroPages = k.config.ksmUseZeroPages === true;
  const mergedWithZeroPage = (mm: Mm, vpn: number, pfn: number): boolean => {
    if (f.value[pfn] !== 0) return false;
    const slot = toMerge(mm, vpn, pfn);
    if (slot < 0 || !writeProtectPage(k, mm, slot, vpn)) return false;
    replaceWithZeroPage(k, mm, slot);
    merged++;
    if (k.tracing) k.emit('note', mm.id, vpn, pfn, 0, 'KSM: a page of zeros merged with the shared zero page (use_zero_pages)');
    return true;
  };
  // The mm being scanned: the addresses its items were at when its scan began, the next one
  // ksmd has not passed yet, and the addresses scanned (get_next_rmap_item drops the items of
  // the addresses passed without a page to scan).
  let pending: number[] = [];
  let next = 0;
  const scanned = new Set<number>();
  const passTo = (mm: Mm, vpn: number): void => {
    for (; next < pending.length && pending[next]! < vpn; next++) if (!scanned.has(pending[next]!)) freeItem(mm, pending[next]!);
  };
  const scan = (mm: Mm, vpn: number): void => {
    passTo(mm, vpn);
    scanned.add(vpn);
    const found = scannedPage(k, mm, vpn);
    if (found < 0 || isStableKsm(k, found)) {
      // A stable KSM page: its own node's item, or a KSM page forked (stable_tree_append,
      // past max_page_sharing too). Nothing to scan: the item goes.
      if (found >= 0) setItem(mm, vpn, found);
      else freeItem(mm, vpn);
      return;
    }
    const pfn = found;
    // A KSM page in no tree (break_cow's leftover) is a KSM folio too: never skipped.
    if (smartScan && !(f.flags[pfn]! & PG_KSM) && skipsPage(mm, vpn)) return;
    const value = f.value[pfn]!;
    // cmp_and_merge_page() from 6.11: remove_rmap_item_from_tree() and the checksum before the
    // stable tree is searched, so a changed page searches no tree at all. Before, the search
    // came first and still counted the item on its stable node, removed just after it.
    const checksumFirst = k.profile.ksmChecksumFirst;
    if (checksumFirst) {
      dropItem(mm, vpn);
      if (checksumChanged(mm, vpn, value) || (useZeroPages && mergedWithZeroPage(mm, vpn, pfn))) return;
    }
    const kpfn = stableDup(value);
    if (!checksumFirst) dropItem(mm, vpn);
    if (kpfn >= 0) {
      // stable_tree_search() found identical content: merge into the KSM page.
      const slot = toMerge(mm, vpn, pfn);
      if (slot >= 0 && writeProtectPage(k, mm, slot, vpn)) {
        replacePage(k, slot, kpfn);
        setItem(mm, vpn, kpfn);
        merged++;
        if (k.tracing) k.emit('note', mm.id, vpn, pfn, kpfn, `KSM: merged into KSM page ${kpfn}`);
      }
      return;
    }
    // Before 6.11, only a page the stable tree had no room for has its checksum compared.
    if (!checksumFirst && (checksumChanged(mm, vpn, value) || (useZeroPages && mergedWithZeroPage(mm, vpn, pfn)))) return;
    const other = unstable.get(value);
    // get_mergeable_page(): a tree item whose page is gone or changed drops out of the tree.
    const tpfn = other ? mergeablePage(k, other.mm, other.vpn) : -1;
    if (!other || tpfn < 0 || f.value[tpfn] !== value) {
      unstable.set(value, { mm, vpn });
      return;
    }
    if (tpfn === pfn) return;
    if (f.flags[pfn]! & PG_LARGE && (pfn & ~(HPAGE_PMD_NR - 1)) === (tpfn & ~(HPAGE_PMD_NR - 1))) {
      // cmp_and_merge_page(): both pages in one THP: the merge fails (the tree page's reference
      // refuses the split), then the folio is split for a later pass to merge them.
      if (splitHugePage(k, pfn & ~(HPAGE_PMD_NR - 1), 'ksmd met two equal pages of it (cmp_and_merge_page)')) split++;
      return;
    }
    // try_to_merge_two_pages(): the page being scanned becomes the KSM page in place, then
    // the tree page is replaced by it; if that fails, break_cow() unshares the scanned page.
    const slot = toMerge(mm, vpn, pfn);
    if (slot < 0 || !writeProtectPage(k, mm, slot, vpn)) return;
    // try_to_merge_one_page(page, NULL): set_page_stable_node(page, NULL), a KSM page in no tree
    // (a page reuse_ksm_page took back, 5.1-5.8, still had its old order).
    f.setFlags(pfn, (f.flags[pfn]! | PG_KSM) & ~PG_ANON_EXCLUSIVE);
    f.setStableOrder(pfn, 0);
    const tslot = toMerge(other.mm, other.vpn, tpfn);
    if (tslot >= 0 && writeProtectPage(k, other.mm, tslot, other.vpn)) {
      replacePage(k, tslot, pfn);
      // stable_tree_insert(): only a merge of both pages puts the KSM page in the tree, a new
      // stable node (an item left on this pfn hangs on an older, stale one), then
      // stable_tree_append() of both rmap items. Of a content already in the tree, the node is
      // a new dup at the chain's head (stable_node_chain_add_dup: hlist_add_head).
      for (const m of list) {
        const its = work.get(m) ?? m.ksmItems;
        if (its !== null) for (const [v, p] of its) if (p === pfn) itemsOf(m).delete(v);
      }
      f.setStableOrder(pfn, 1);
      items.set(pfn, 0);
      setItem(other.mm, other.vpn, pfn);
      setItem(mm, vpn, pfn);
      const dups = stable.get(value);
      if (dups) dups.unshift(pfn);
      else stable.set(value, [pfn]);
      unstable.delete(value);
      merged++;
      if (k.tracing) k.emit('note', mm.id, vpn, tpfn, pfn, `KSM: page ${pfn} becomes a KSM page; page ${tpfn} merged into it`);
    } else {
      // break_cow(): a fault in ksmd's context (not counted to the process): an unshare fault
      // (6.2+), a read-only copy; before, a write fault, a writable copy (do_wp_page copies a
      // KSM page that break_ksm holds a reference on), unless the PTE is uffd-wp protected:
      // handle_userfault() fails without FAULT_FLAG_ALLOW_RETRY and the KSM page stays mapped.
      // The page stays a KSM page for its other mappings, in no tree: nothing merges into it.
      const vma = mm.findVma(vpn)!;
      const write = k.profile.ksmBreakCow === 'write';
      if (!write || !userfaultfdPteWp(vma, k.tables.bits[slot]!)) wpPageCopy(k, mm, vma, vpn, slot, !write);
      if (k.tracing) k.emit('note', mm.id, vpn, pfn, -1, `KSM: the other page could not be merged (a reference holds it): break_cow ${write ? 'breaks COW with a write fault' : 'unshares this one again'}; the KSM page is in no tree`);
    }
  };
  for (const mm of list) {
    // Its rmap items' addresses: those on stable nodes and those with a checksum.
    pending = mm.ksmItems === null ? [] : [...mm.ksmItems.keys()];
    if (mm.ksmChecksums !== null) for (const v of mm.ksmChecksums.keys()) if (mm.ksmItems?.has(v) !== true) pending.push(v);
    if (mm.ksmAges !== null) for (const v of mm.ksmAges.keys()) if (mm.ksmItems?.has(v) !== true && mm.ksmChecksums?.has(v) !== true) pending.push(v);
    pending.sort((a, b) => a - b);
    next = 0;
    scanned.clear();
    for (const vma of mm.vmas) {
      if (!(vma.flags & VM_MERGEABLE)) continue;
      breakCowRange(k, mm, vma.start, vma.end);
      // By address, 2 MiB at a time: every page of a huge PMD, or the PTEs of a table.
      for (let a = vma.start; a < vma.end;) {
        const end = Math.min(vma.end, a - (a % HPAGE_PMD_NR) + HPAGE_PMD_NR);
        if (pmdLeafSlot(k, mm, a) >= 0) for (let v = a; v < end; v++) scan(mm, v);
        else forEachPte(k, mm, a, end, (_slot, v) => scan(mm, v));
        a = end;
      }
    }
    // remove_trailing_rmap_items(): the items past the last page scanned.
    passTo(mm, Infinity);
  }
  // By address (the explorer's key lists them in this order).
  for (const [mm, m] of work) mm.ksmItems = m.size === 0 ? null : new Map([...m].sort((a, b) => a[0] - b[0]));
  for (const [mm, m] of sumsWork) mm.ksmChecksums = m.size === 0 ? null : new Map([...m].sort((a, b) => a[0] - b[0]));
  for (const [mm, m] of agesWork) mm.ksmAges = m.size === 0 ? null : new Map([...m].sort((a, b) => a[0] - b[0]));
  // Each chain's order as the pass leaves it, 1 the head (renumbered: no gap a dup freed left).
  for (const dups of stable.values()) {
    for (let i = 0; i < dups.length; i++) if (isStableKsm(k, dups[i]!)) f.setStableOrder(dups[i]!, i + 1);
  }
  // A KSM page only the swap cache holds, kept while an item hung on it, goes with its last one.
  for (const dups of stable.values()) {
    for (const p of dups) if (!(items.get(p)! > 0)) k.dropIfOnlySwapCache(p);
  }
  return { merged, split, moved, skipped };
}
