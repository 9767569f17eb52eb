// MADV_COLLAPSE (mm/khugepaged.c, 6.1+, 7d8faaf15545): a synchronous khugepaged collapse of each
// whole 2 MiB of a range. madvise_collapse() scans each PMD (hpage_collapse_scan_pmd); a range it
// accepts goes to collapse_huge_page(): a new 2 MiB folio gets a copy of each of the 512 pages (a
// none or zero-page PTE gives a zeroed page), the old pages lose this mm's mapping and reference
// (__collapse_huge_page_copy: page_remove_rmap + put; pages other processes map stay theirs, a
// PTE-mapped THP stays a large folio), the PTE table is deposited and a PMD maps the new folio,
// writable if the VMA is, dirty, PageAnonExclusive (page_add_new_anon_rmap).
//
// What MADV_COLLAPSE ignores, unlike khugepaged: the sysfs THP mode (enforce_sysfs false) and the
// max_ptes_none / max_ptes_shared / max_ptes_swap limits; pages shared with other processes are
// fine. What it refuses, per PMD (the last refusal is the errno, madvise_collapse_errno()):
// a page whose refcount is more than its mappings (+ swap cache) explain, that is a pin, a GUP
// reference or a pipe buffer (is_refcount_suitable 6.1, folio_expected_ref_count 6.18:
// SCAN_PAGE_COUNT, EAGAIN); a uffd-wp PTE (SCAN_PTE_UFFD_WP, EINVAL); a none PTE in a
// userfaultfd-registered VMA (SCAN_EXCEED_NONE_PTE: EBUSY as in 6.6 on; 6.1 said EINVAL, which the
// model does not tell apart: the errno shows only in the step's summary); no PTE
// table (SCAN_PMD_NONE / SCAN_PMD_NULL, EINVAL); before 6.18 (madvCollapse `writable-pte`) a
// range none of whose PTEs is writable (SCAN_PAGE_RO, EINVAL: fork write-protects them all); a
// range where two PTEs map one small folio, a KSM page (__collapse_huge_page_isolate() locks a
// folio at its first PTE, so folio_trylock() fails at the second: SCAN_PAGE_LOCK, EAGAIN). A
// PMD already mapping a THP counts as collapsed (SCAN_PMD_MAPPED). Swapped-out pages of the range
// are swapped in first (__collapse_huge_page_swapin) and the checks made again.

import {
  EAGAIN, EBUSY, EINVAL, HPAGE_PMD_NR, NA, OK, OOM, PG_ANON, PG_ANON_EXCLUSIVE, PG_LARGE, PG_SWAPCACHE, PMD_LEAF,
  PTE_MARKER, PTE_PRESENT, PTE_SPECIAL, PTE_SWAP, PTE_UFFD_WP, PTE_WRITE, TABLE_SHIFT,
  VM_MAYSHARE, VM_NOHUGEPAGE, VM_SHARED, VM_UFFD_WP, VM_WRITE,
} from './constants.js';
import { mmuNotify } from './exclusive.js';
import { doSwapPage } from './swap.js';
import type { Kernel } from './kernel.js';
import type { Mm, Vma } from './mm.js';
import { pmdSlotOf } from './walk.js';
import { newPageBits } from './page.js';

export interface CollapseResult {
  /** OK, EINVAL, EAGAIN, EBUSY, OOM (-ENOMEM), or NA (a case the model does not have). */
  err: number;
  /** PMDs collapsed into a new THP by this call. */
  collapsed: number;
  /** Why the last PMD was refused (the scan result), or, with NA, what is not modelled. */
  why: string;
}

/** A scan result: SCAN_SUCCEED / SCAN_PMD_MAPPED (done), or a refusal with its errno. */
interface Scan {
  ok: boolean;
  err: number;
  why: string;
}

function refuse(err: number, why: string): Scan {
  return { ok: false, err, why };
}

/**
 * madvise(MADV_COLLAPSE) over [lo, hi) of mm: madvise_walk_vmas() calls madvise_collapse() for
 * each VMA's part of the range and stops at the first error; a hole makes it ENOMEM.
 */
export function doMadvCollapse(k: Kernel, mm: Mm, lo: number, hi: number): CollapseResult {
  if (k.profile.madvCollapse === 'none') return { err: NA, collapsed: 0, why: `${k.profile.name} has no MADV_COLLAPSE (6.1)` };
  let collapsed = 0;
  // madvise_walk_vmas(): a hole in the range is skipped and makes the call fail with ENOMEM at the
  // end, unless a VMA's own error ends the walk first.
  let covered = lo;
  let hole = false;
  for (const vma of mm.vmas.filter((v) => v.end > lo && v.start < hi).sort((a, b) => a.start - b.start)) {
    if (vma.start > covered) hole = true;
    covered = vma.end;
    const r = madviseCollapse(k, mm, vma, Math.max(lo, vma.start), Math.min(hi, vma.end));
    collapsed += r.collapsed;
    if (r.err !== OK) return { ...r, collapsed };
  }
  if (hole || covered < hi) return { err: OOM, collapsed, why: 'part of the range is not mapped (madvise_walk_vmas: ENOMEM)' };
  return { err: OK, collapsed, why: '' };
}

/**
 * madvise_collapse(): one VMA's part [start, end). hugepage_vma_check() with enforce_sysfs false:
 * no VM_NOHUGEPAGE, anonymous (shared memory goes through the page cache, not modelled), an
 * anon_vma, and the aligned 2 MiB holding vm_end - 2 MiB inside the VMA (transhuge_vma_suitable).
 * Then every whole aligned 2 MiB in the range is scanned; the call succeeds when each one ends as
 * a THP (a range holding no whole 2 MiB succeeds at once).
 */
function madviseCollapse(k: Kernel, mm: Mm, vma: Vma, start: number, end: number): CollapseResult {
  if (vma.flags & (VM_SHARED | VM_MAYSHARE) || vma.shm !== null) {
    return { err: NA, collapsed: 0, why: 'MADV_COLLAPSE of shared memory (hpage_collapse_scan_file, the page cache) is not modelled' };
  }
  const last = vma.end - HPAGE_PMD_NR;
  const lastBase = last - (last & (HPAGE_PMD_NR - 1));
  if (vma.flags & VM_NOHUGEPAGE || !vma.anonVma || lastBase < vma.start) {
    const why = vma.flags & VM_NOHUGEPAGE ? 'MADV_NOHUGEPAGE' : !vma.anonVma ? 'no page was ever faulted in (no anon_vma)' : 'the mapping holds no aligned 2 MiB';
    if (k.tracing) k.emit('note', mm.id, start, -1, -1, `MADV_COLLAPSE: EINVAL, hugepage_vma_check refuses the mapping: ${why}`);
    return { err: EINVAL, collapsed: 0, why };
  }
  const hstart = hpageStart(start);
  const hend = hpageEnd(end);
  let thps = 0;
  let collapsed = 0;
  let lastFail: Scan = refuse(EINVAL, 'SCAN_FAIL');
  for (let a = hstart; a < hend; a += HPAGE_PMD_NR) {
    const r = hpageCollapseScanPmd(k, mm, vma, a);
    if (r.ok) {
      thps++;
      if (r.why === 'collapsed') collapsed++;
      continue;
    }
    if (r.err === NA) return { err: NA, collapsed, why: r.why };
    lastFail = r;
    if (k.tracing) k.emit('note', mm.id, a, -1, -1, `MADV_COLLAPSE refuses this 2 MiB: ${r.why}`);
    // The results madvise_collapse() goes on after; the others (no PTE table, no THP to be had) end the call.
    if (r.err === OOM || r.why.startsWith('SCAN_PMD_NONE')) break;
  }
  if (thps === (hend - hstart) / HPAGE_PMD_NR) return { err: OK, collapsed, why: '' };
  return { err: lastFail.err, collapsed, why: lastFail.why };
}

/** madvise_collapse()'s hstart: the first 2 MiB boundary at or after page `start`. */
function hpageStart(start: number): number {
  return Math.ceil(start / HPAGE_PMD_NR) * HPAGE_PMD_NR;
}

/** madvise_collapse()'s hend: the last 2 MiB boundary at or before page `end`. */
function hpageEnd(end: number): number {
  return end - (end & (HPAGE_PMD_NR - 1));
}

/**
 * Whether [lo, hi) holds a whole aligned 2 MiB: madvise_collapse() scans (and collapses) only
 * those, from hstart to hend; over a range that holds none, MADV_COLLAPSE changes nothing (it is
 * refused, or succeeds with nothing to do).
 */
export function holdsWholeHpage(lo: number, hi: number): boolean {
  return hpageStart(lo) < hpageEnd(hi);
}

/**
 * hpage_collapse_scan_pmd() then collapse_huge_page() for the aligned 2 MiB at `at`: the checks
 * on each PTE, then the copy into a new THP and its PMD.
 */
function hpageCollapseScanPmd(k: Kernel, mm: Mm, vma: Vma, at: number): Scan {
  const t = k.tables;
  // find_pmd_or_thp_or_none().
  const ps = pmdSlotOf(k, mm, at);
  if (ps < 0) return refuse(EINVAL, 'SCAN_PMD_NULL: nothing is mapped there (no page table)');
  if (t.entry[ps] === 0 && t.bits[ps] === 0) return refuse(EINVAL, 'SCAN_PMD_NONE: nothing is mapped there (no PTE table)');
  if (t.bits[ps]! & PMD_LEAF) return { ok: true, err: OK, why: 'SCAN_PMD_MAPPED: a huge PMD maps it already' };
  const r = scanPtes(k, vma, t.entry[ps]! << TABLE_SHIFT);
  if (!r.ok) return r;
  return collapseHugePage(k, mm, vma, at, ps, r.unmapped);
}

/**
 * The checks on each of the 512 PTEs, as hpage_collapse_scan_pmd() makes them and
 * __collapse_huge_page_isolate() makes them again once swapped-out pages are back: none and
 * zero-page PTEs are fine (not in a userfaultfd-registered VMA), swap entries are counted to be
 * swapped in (not uffd-wp ones), and every page must be an anonymous one whose folio's every
 * reference is a mapping (or the swap cache's); up to 6.13 one PTE at least must be writable.
 */
function scanPtes(k: Kernel, vma: Vma, base: number): Scan & { unmapped: number } {
  const t = k.tables;
  const f = k.frames;
  const armed = (vma.flags & VM_UFFD_WP) !== 0; // userfaultfd_armed()
  let writable = false;
  let unmapped = 0;
  const no = (sc: Scan): Scan & { unmapped: number } => ({ ...sc, unmapped });
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const bits = t.bits[base + i]!;
    const pfn = t.entry[base + i]!;
    if (bits & PTE_MARKER || (bits & PTE_UFFD_WP && !(bits & PTE_PRESENT))) return no(refuse(EINVAL, 'SCAN_PTE_UFFD_WP: a uffd-wp protected entry'));
    if (bits & PTE_SWAP) {
      unmapped++; // is_swap_pte(): swapped in by __collapse_huge_page_swapin()
      continue;
    }
    if (bits !== 0 && !(bits & PTE_PRESENT)) {
      return no({ ok: false, err: NA, why: 'MADV_COLLAPSE of a range with device-exclusive entries (restored first by __collapse_huge_page_swapin) is not modelled yet' });
    }
    if (bits === 0 || bits & PTE_SPECIAL) {
      if (armed) return no(refuse(EBUSY, 'SCAN_EXCEED_NONE_PTE: an empty PTE in a userfaultfd-registered mapping'));
      continue;
    }
    if (bits & PTE_UFFD_WP) return no(refuse(EINVAL, 'SCAN_PTE_UFFD_WP: a uffd-wp protected PTE'));
    if (bits & PTE_WRITE) writable = true;
    if (!(f.flags[pfn]! & PG_ANON)) return no(refuse(EINVAL, 'SCAN_PAGE_ANON: not an anonymous page'));
    // is_refcount_suitable() / folio_expected_ref_count(): every reference is a mapping (or the swap cache's).
    const expected = f.folioMapcount(pfn) + (f.flags[pfn]! & PG_SWAPCACHE ? (f.flags[pfn]! & PG_LARGE ? HPAGE_PMD_NR : 1) : 0);
    const refs = f.folioRefcount(pfn);
    if (refs !== expected) {
      return no(refuse(EAGAIN, `SCAN_PAGE_COUNT: the folio of page ${i} has refcount ${refs} where its mappings explain ${expected} (a pin, a GUP reference or a pipe holds it)`));
    }
  }
  if (!writable && k.profile.madvCollapse === 'writable-pte') return no(refuse(EINVAL, 'SCAN_PAGE_RO: no PTE of the range is writable'));
  return { ok: true, err: OK, why: '', unmapped };
}

/** The first page of the PTE table at `base` whose small folio an earlier page maps too, or -1. */
function firstRepeatedSmallPage(k: Kernel, base: number): number {
  const t = k.tables;
  const f = k.frames;
  let seen: Set<number> | null = null;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const bits = t.bits[base + i]!;
    if (!(bits & PTE_PRESENT) || bits & PTE_SPECIAL) continue;
    const pfn = t.entry[base + i]!;
    // Only a page mapped more than once can repeat (a small folio's mapcount counts its PTEs).
    if (f.flags[pfn]! & PG_LARGE || f.mapcount[pfn]! < 2) continue;
    seen ??= new Set();
    if (seen.has(pfn)) return i;
    seen.add(pfn);
  }
  return -1;
}

/**
 * collapse_huge_page(): a new THP (SCAN_ALLOC_HUGE_PAGE_FAIL, -ENOMEM, when none can be had),
 * the PMD cleared and the TLB flushed (mmu notifiers told), each page copied and its old
 * mapping dropped (__collapse_huge_page_copy), the PTE table deposited, the PMD set.
 */
function collapseHugePage(k: Kernel, mm: Mm, vma: Vma, at: number, ps: number, unmapped: number): Scan {
  const t = k.tables;
  const f = k.frames;
  const head = f.allocLarge(PG_ANON);
  if (head < 0) return refuse(OOM, 'SCAN_ALLOC_HUGE_PAGE_FAIL: no free 2 MiB folio');
  const table = t.entry[ps]!;
  const base = table << TABLE_SHIFT;
  if (unmapped > 0) {
    // __collapse_huge_page_swapin(): do_swap_page() on each swap entry (a read fault, counted
    // as no fault of the process); a failure gives up (SCAN_FAIL: EINVAL).
    for (let i = 0; i < HPAGE_PMD_NR; i++) {
      if (!(t.bits[base + i]! & PTE_SWAP)) continue;
      if (doSwapPage(k, mm, vma, at + i, base + i, false) !== OK) {
        k.putPage(head);
        return refuse(EINVAL, 'SCAN_FAIL: a page could not be swapped in');
      }
    }
    // __collapse_huge_page_isolate(): the same checks on the pages now present.
    const again = scanPtes(k, vma, base);
    if (!again.ok || again.unmapped > 0) {
      k.putPage(head);
      return again.ok ? refuse(EINVAL, 'SCAN_PTE_NON_PRESENT: an entry is still not present') : again;
    }
  }
  mmuNotify(k, mm.id, at, at + HPAGE_PMD_NR, 'MADV_COLLAPSE');
  // __collapse_huge_page_isolate(): each small folio is locked as its first PTE is met, so a
  // second PTE of the range mapping the same one (a KSM page merged within the range) fails
  // folio_trylock(): SCAN_PAGE_LOCK, and the PMD is put back as it was.
  const again = firstRepeatedSmallPage(k, base);
  if (again >= 0) {
    k.putPage(head);
    return refuse(EAGAIN, `SCAN_PAGE_LOCK: page ${again} maps a small folio an earlier page of the range maps (a KSM page), locked already`);
  }
  const tracing = k.tracing;
  k.tracing = false;
  let filled = 0;
  let copied = 0;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const bits = t.bits[base + i]!;
    const pfn = t.entry[base + i]!;
    t.setPte(base + i, 0, 0);
    if (bits === 0 || bits & PTE_SPECIAL) {
      // A zeroed page (clear_user_highpage): MM_ANONPAGES + 1.
      mm.rssAnon++;
      filled++;
      continue;
    }
    f.setValue(head + i, f.value[pfn]!); // copy_user_highpage
    f.removeRmapPte(pfn, mm.id); // page_remove_rmap
    k.putPage(pfn); // free_page_and_swap_cache / the compound page's reference
    copied++;
  }
  k.tracing = tracing;
  // The emptied PTE table becomes the PMD's deposited table (pgtable_trans_huge_deposit): it
  // stays charged; the model frees the arena table and setHugePmd charges the deposit again.
  t.setFilled(table, 0);
  t.free(table);
  t.setPte(ps, 0, 0);
  t.addFilled(ps >>> TABLE_SHIFT, -1);
  // page_add_new_anon_rmap(): exclusive (PAE on the head, 5.19+); one PMD mapping, refcount 1.
  if (k.profile.anonExclusive) f.setFlags(head, f.flags[head]! | PG_ANON_EXCLUSIVE);
  f.addNewRmapPmd(head, mm.id);
  // collapse_huge_page() (mm/khugepaged.c, 6.18): folio_mk_pmd(vm_page_prot) (mk_huge_pmd before
  // 6.12) + pmd_mkdirty + maybe_pmd_mkwrite; set_pmd_at(). A PROT_NONE VMA's PMD is PAGE_NONE:
  // nothing before it refuses such a range in 6.18 (thp_vma_allowable_order and the PTE scan do not
  // look at the protection; before 6.18 SCAN_PAGE_RO refuses it, none of its PTEs being writable).
  const bits = newPageBits(vma) | PMD_LEAF;
  t.setPte(ps, head, bits);
  t.addFilled(ps >>> TABLE_SHIFT, 1);
  mm.hugePmds++;
  k.emit('note', mm.id, at, head, -1,
    `MADV_COLLAPSE (collapse_huge_page): a new 2 MiB folio with ${copied} page(s) copied and ${filled} zeroed; the old pages lost this mapping; one PMD maps it${vma.flags & VM_WRITE ? ', writable' : ''}`);
  return { ok: true, err: OK, why: 'collapsed' };
}
