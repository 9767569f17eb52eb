// Transparent huge pages mapped by a PMD (mm/huge_memory.c): the fault that maps one
// (do_huge_pmd_anonymous_page), its write fault (do_huge_pmd_wp_page, do_huge_zero_wp_pmd), fork's
// copy (copy_huge_pmd) and the PMD split (__split_huge_pmd) that hands the folio to the 4 KiB paths.
//
// A PMD leaf sits in a PMD-level slot of the table arena: `entry` = the folio's head pfn (0 for the
// huge zero page), `bits` = PMD_LEAF plus the PTE bit layout. The folio's counts are in frames.ts.
// Paths that know no PMD leaves split them first (splitHugePmdRange), as the kernel does for a
// partial range; zap (zapHugePmds) and mprotect (changeHugePmds) keep a PMD they cover whole.

import {
  HPAGE_PMD_NR, isCowMapping, LEVEL_PTE, OK, PG_ANON, PG_ANON_EXCLUSIVE, PG_HUGETLB, PG_INUSE, PG_LARGE, PMD_LEAF, PTE_DIRTY, PTE_PRESENT,
  PTE_DEVICE_EXCLUSIVE, PTE_PROTNONE, PTE_SOFT_DIRTY, PTE_SPECIAL, PTE_UFFD_WP, PTE_WRITE, PTE_YOUNG, TABLE_SHIFT, VM_HUGEPAGE, VM_HUGETLB, VM_NOHUGEPAGE, VM_SHARED, VM_MAYSHARE,
  VM_READ, VM_WRITE,
} from './constants.js';
import type { Kernel } from './kernel.js';
import { HUGE_ZERO_FAULT } from './events.js';
import { anonVmaPrepare, type Mm, type Vma } from './mm.js';
import { canChangePteWritable, forkMayCopy, forkMustCopy, newPageBits, wpPageReuseBits } from './page.js';
import { exclusiveEntryMapped, migrateExclusiveEntry } from './exclusive.js';
import { forEachPteTable, pmdLeafSlot, pmdSlotAlloc, pteSlot, setPte } from './walk.js';

/** What doHugePmdWpPage() did when it left the fault to the PTE level: the PMD was split. */
export const VM_FAULT_FALLBACK = -2;

export type ThpMode = 'always' | 'madvise' | 'never';

/**
 * thp_vma_allowable_order() / __transparent_hugepage_enabled() with thp_vma_suitable_order(): may a
 * fault at vpn map a 2 MiB folio? Private anonymous memory only, the aligned 2 MiB around vpn
 * inside the VMA, no MADV_NOHUGEPAGE, and the sysfs mode (`always`, or `madvise` with MADV_HUGEPAGE).
 */
export function thpVmaAllowable(k: Kernel, vma: Vma, vpn: number): boolean {
  if (vma.shm !== null || vma.flags & (VM_SHARED | VM_MAYSHARE | VM_NOHUGEPAGE)) return false;
  const mode = k.config.thp ?? 'madvise';
  if (mode === 'never' || (mode === 'madvise' && !(vma.flags & VM_HUGEPAGE))) return false;
  const base = vpn - (vpn & (HPAGE_PMD_NR - 1));
  return base >= vma.start && base + HPAGE_PMD_NR <= vma.end;
}

/** The frame a PMD leaf maps at vpn (the 4 KiB zero page for the huge zero PMD, whose pages all read as zeroes). */
export function hugePmdPfn(k: Kernel, pmdSlot: number, vpn: number): number {
  const head = k.tables.entry[pmdSlot]!;
  return k.tables.bits[pmdSlot]! & PTE_SPECIAL ? 0 : head + (vpn & (HPAGE_PMD_NR - 1));
}

/** follow_page_mask(): the PTE slot of vpn, or the slot of the huge PMD mapping it, or -1. */
export function followSlot(k: Kernel, mm: Mm, vpn: number): number {
  const slot = pteSlot(k, mm, vpn);
  return slot >= 0 ? slot : pmdLeafSlot(k, mm, vpn);
}

/** The frame followSlot's slot maps at vpn: a PTE's entry, or the page of a huge PMD's folio. */
export function slotPfn(k: Kernel, slot: number, vpn: number): number {
  return k.tables.bits[slot]! & PMD_LEAF ? hugePmdPfn(k, slot, vpn) : k.tables.entry[slot]!;
}

/** The PTE-layout bits of a PMD leaf. */
export function hugePmdBits(k: Kernel, pmdSlot: number): number {
  return k.tables.bits[pmdSlot]! & ~PMD_LEAF;
}

/** is_huge_zero_pmd(). */
function isHugeZeroPmd(k: Kernel, s: number): boolean {
  return (k.tables.bits[s]! & PTE_SPECIAL) !== 0;
}

/**
 * Which page of the huge zero folio mm maps at vpn (through the huge zero PMD), or -1. hugePmdPfn
 * gives the 4 KiB zero page for all 512 (they read as zeroes), but they are 512 frames of their
 * own: a page of the huge zero folio is not the 4 KiB zero page, nor another page of the folio.
 */
export function hugeZeroIndex(k: Kernel, mm: Mm, vpn: number): number {
  const s = pmdLeafSlot(k, mm, vpn);
  return s >= 0 && isHugeZeroPmd(k, s) ? vpn & (HPAGE_PMD_NR - 1) : -1;
}

/** A PMD leaf installed (set_pmd_at) with its deposited PTE table charged (pgtable_trans_huge_deposit). */
function setHugePmd(k: Kernel, mm: Mm, s: number, head: number, bits: number): void {
  setPte(k, s, head, bits | PMD_LEAF);
  mm.nrTables++;
  mm.hugePmds++;
}

/**
 * A fresh 2 MiB anonymous folio for vma (vma_alloc_folio + folio_add_new_anon_rmap(RMAP_EXCLUSIVE)):
 * PAE on the head (5.19+), one PMD mapping; -1 when no 512 frames are free.
 */
function allocAnonThp(k: Kernel, mm: Mm, vma: Vma): number {
  const head = k.frames.allocLarge(PG_ANON);
  if (head < 0) return -1;
  if (k.profile.anonExclusive) k.frames.setFlags(head, k.frames.flags[head]! | PG_ANON_EXCLUSIVE);
  k.frames.addNewRmapPmd(head, mm.id);
  anonVmaPrepare(k, mm, vma);
  mm.rssAnon += HPAGE_PMD_NR;
  return head;
}

/**
 * do_huge_pmd_anonymous_page(): the first touch of an empty, THP-eligible PMD. A read fault maps
 * the huge zero page when the machine allows it; otherwise a zeroed 2 MiB folio is mapped by the
 * PMD. Returns OK, or VM_FAULT_FALLBACK when the 4 KiB path must run (a PTE table is there already,
 * or no 512 frames are free).
 */
export function doHugePmdAnonymousPage(k: Kernel, mm: Mm, vma: Vma, vpn: number, write: boolean): number {
  const s = pmdSlotAlloc(k, mm, vpn);
  if (k.tables.entry[s] !== 0 || k.tables.bits[s] !== 0) return VM_FAULT_FALLBACK; // pmd_none() fails
  // anon_vma_prepare() (vmf_anon_prepare() from 6.10) comes first, before the huge zero page is
  // chosen: a VMA that maps only the huge zero PMD has an anon_vma, so fork copies that PMD
  // (vma_needs_copy). The 4 KiB zero page takes none (do_anonymous_page maps it before).
  anonVmaPrepare(k, mm, vma);
  if (!write && k.profile.thpUseZeroPage && !k.profile.mmForbidsZeropage) {
    // mm_get_huge_zero_folio(): a read-only PMD of the huge zero page; no refcount, no mapcount.
    setHugePmd(k, mm, s, 0, PTE_PRESENT | PTE_SPECIAL | PTE_YOUNG);
    k.emit('zero-fault', mm.id, vpn, 0, -1, HUGE_ZERO_FAULT);
    return OK;
  }
  const head = allocAnonThp(k, mm, vma);
  if (head < 0) {
    k.emit('note', mm.id, vpn, -1, -1, 'no free 2 MiB folio: the fault falls back to 4 KiB pages');
    return VM_FAULT_FALLBACK;
  }
  setHugePmd(k, mm, s, head, newPageBits(vma));
  k.emit('anon-fault', mm.id, vpn, head, -1, write
    ? 'write to untouched THP-enabled memory allocates a zeroed 2 MiB folio, mapped by one PMD'
    : 'read of untouched THP-enabled memory allocates a zeroed 2 MiB folio (no huge zero page here)');
  return OK;
}

/**
 * The reuse test of do_huge_pmd_wp_page() on a PMD-mapped anonymous folio, per profile
 * (thpWpReuse): reuse_swap_page() on the compound page (<= 5.17), the folio refcount (5.18),
 * PAE on the head else the refcount (5.19+).
 */
function hugePmdCanReuse(k: Kernel, head: number): boolean {
  const f = k.frames;
  switch (k.profile.thpWpReuse) {
    case 'mapcount':
      return f.folioMaxMapcount(head) <= 1;
    case 'refcount':
      return f.folioRefcount(head) === 1;
    case 'anon-exclusive':
      return (f.flags[head]! & PG_ANON_EXCLUSIVE) !== 0 || f.folioRefcount(head) === 1;
  }
}

/**
 * do_huge_pmd_wp_page(): a write (or unshare) fault on a write-protected huge PMD at slot s. Reuse
 * makes the PMD writable (unshare: only exclusive); otherwise the whole folio is copied (thpWpCopy
 * `huge`) or the PMD is split and VM_FAULT_FALLBACK returned for the PTE level to copy 4 KiB.
 * The huge zero PMD goes to doHugeZeroWpPmd.
 */
export function doHugePmdWpPage(k: Kernel, mm: Mm, vma: Vma, vpn: number, s: number, unshare: boolean): number {
  if (isHugeZeroPmd(k, s)) return doHugeZeroWpPmd(k, mm, vma, vpn, s, unshare);
  const t = k.tables;
  const f = k.frames;
  const head = t.entry[s]!;
  if (hugePmdCanReuse(k, head)) {
    const was = (f.flags[head]! & PG_ANON_EXCLUSIVE) !== 0;
    // folio_move_anon_rmap() + SetPageAnonExclusive (5.19+).
    if (k.profile.anonExclusive) f.setFlags(head, f.flags[head]! | PG_ANON_EXCLUSIVE);
    if (unshare) {
      k.emit('wp-reuse', mm.id, vpn, head, -1, 'unshare of a huge PMD: the THP is exclusive now; the PMD stays read-only');
      return OK;
    }
    t.setBits(s, wpPageReuseBits(vma, t.bits[s]!)); // a write fault: the VMA is writable (FOLL_FORCE's made so for it)
    k.stats.reuses++;
    k.emit('wp-reuse', mm.id, vpn, head, -1, k.tracing ? hugeReuseReason(k, head, was) : '');
    return OK;
  }
  const why = k.tracing ? hugeCopyReason(k, head) : '';
  if (k.profile.thpWpCopy === 'huge' && !unshare) {
    // <= 5.7: do_huge_pmd_wp_page() copies all 512 pages into a new THP (copy_user_huge_page).
    const n = f.allocLarge(PG_ANON);
    if (n >= 0) {
      f.copyValues(n, head, HPAGE_PMD_NR);
      f.addNewRmapPmd(n, mm.id);
      t.setPte(s, n, newPageBits(vma) | PMD_LEAF);
      f.removeRmapPmd(head, mm.id);
      k.putPage(head);
      k.stats.cowCopies += HPAGE_PMD_NR;
      if (k.tracing) k.emit('wp-copy', mm.id, vpn, head, n, `${why}: the whole 2 MiB folio is copied (copy_user_huge_page)`);
      return OK;
    }
    // do_huge_pmd_wp_page_fallback() copies into 4 KiB pages; the model splits and copies the one page.
  }
  splitHugePmd(k, mm, s, vpn, `${unshare ? 'unshare' : 'write'} fault on a huge PMD: ${why}; split, the 4 KiB page is copied at PTE level`);
  return VM_FAULT_FALLBACK;
}

function hugeReuseReason(k: Kernel, head: number, wasExclusive: boolean): string {
  if (wasExclusive) return 'huge PMD: PageAnonExclusive head, the THP is reused';
  if (k.profile.thpWpReuse === 'mapcount') return `huge PMD: largest page mapcount ${k.frames.folioMaxMapcount(head)}, the THP is reused (reuse_swap_page)`;
  return `huge PMD: folio refcount ${k.frames.folioRefcount(head)}, the THP is reused`;
}

function hugeCopyReason(k: Kernel, head: number): string {
  if (k.profile.thpWpReuse === 'mapcount') return `largest page mapcount ${k.frames.folioMaxMapcount(head)} > 1`;
  return `folio refcount ${k.frames.folioRefcount(head)} > 1`;
}

/**
 * A write fault on the huge zero PMD: hugeZeroWp `huge` (<= 5.7; 6.13+ do_huge_zero_wp_pmd) maps a
 * zeroed THP writable; `split` (5.8-6.12) splits into 512 zero-page PTEs and falls back. An unshare
 * fault always falls back (the PTE level unshares the zero page, or leaves it).
 */
function doHugeZeroWpPmd(k: Kernel, mm: Mm, vma: Vma, vpn: number, s: number, unshare: boolean): number {
  if (k.profile.hugeZeroWp === 'huge' && !unshare) {
    const head = allocAnonThp(k, mm, vma);
    if (head >= 0) {
      k.tables.setPte(s, head, newPageBits(vma) | PMD_LEAF);
      k.stats.cowCopies++;
      k.emit('wp-copy', mm.id, vpn, 0, head, 'write to the huge zero page: a zeroed 2 MiB folio replaces it');
      return OK;
    }
  }
  splitHugePmd(k, mm, s, vpn, 'write to the huge zero page: the PMD is split into 512 PTEs of the zero page');
  return VM_FAULT_FALLBACK;
}

/**
 * __split_huge_pmd_locked(): the PMD leaf at slot s becomes a PTE table (the deposited one, already
 * charged) of 512 PTEs with the PMD's bits, each mapping its page: per-page mapcount +1 and one
 * reference per PTE, then the PMD mapping goes (entire mapcount -1, its reference dropped). PAE of
 * the head is copied to every page (5.19+). The huge zero PMD becomes 512 zero-page PTEs.
 */
export function splitHugePmd(k: Kernel, mm: Mm, s: number, vpn: number, why: string): void {
  const t = k.tables;
  const f = k.frames;
  const head = t.entry[s]!;
  if (k.frames.flags[head]! & PG_HUGETLB) {
    k.emit('bug', mm.id, vpn, head, -1, `model bug: a hugetlb huge PTE reached __split_huge_pmd (${why})`);
    return;
  }
  const bits = t.bits[s]! & ~PMD_LEAF;
  const pte = t.alloc(LEVEL_PTE); // may reallocate the arena's arrays: index them afresh below
  t.setOwner(pte, mm.id);
  t.setPte(s, pte, 0);
  mm.hugePmds--;
  const base = pte << TABLE_SHIFT;
  const zero = (bits & PTE_SPECIAL) !== 0;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    t.setPte(base + i, zero ? 0 : head + i, bits);
  }
  t.setFilled(pte, HPAGE_PMD_NR);
  if (!zero) {
    const pae = k.profile.anonExclusive && (f.flags[head]! & PG_ANON_EXCLUSIVE) !== 0;
    for (let p = head; p < head + HPAGE_PMD_NR; p++) {
      f.addMapcount(p, 1);
      f.addRefcount(p, 1);
      if (pae) f.setFlags(p, f.flags[p]! | PG_ANON_EXCLUSIVE);
    }
    // __split_huge_pmd_locked(): the 512 PTE mappings are added before the PMD mapping goes.
    f.folioAddLargeMapcount(head, mm.id, HPAGE_PMD_NR);
    f.removeRmapPmd(head, mm.id);
    f.addRefcount(head, -1);
  }
  if (k.tracing) k.emit('note', mm.id, vpn, zero ? 0 : head, -1, `__split_huge_pmd: ${why}`);
}

/**
 * The PMD leaves of mm overlapping [lo, hi) split (__split_huge_pmd over a range): what a path
 * that handles only PTEs does first. Nothing to do in an mm without huge PMDs.
 */
export function splitHugePmdRange(k: Kernel, mm: Mm, lo: number, hi: number, why: string): void {
  if (mm.hugePmds === 0) return;
  for (let a = lo - (lo & (HPAGE_PMD_NR - 1)); a < hi; a += HPAGE_PMD_NR) {
    const s = pmdLeafSlot(k, mm, a);
    if (s >= 0) splitHugePmd(k, mm, s, a, why);
  }
}

/**
 * zap_huge_pmd(): a zap (munmap, MADV_DONTNEED, exit) that covers the whole PMD leaf at slot s
 * drops it without splitting: the PMD is cleared, its deposited table freed
 * (zap_deposited_table), and the folio loses its PMD mapping and that reference
 * (folio_remove_rmap_pmd, MM_ANONPAGES -= 512). The huge zero PMD only goes. Returns the pages
 * unmapped (0 for the huge zero page).
 */
export function zapHugePmd(k: Kernel, mm: Mm, s: number): number {
  const t = k.tables;
  const head = t.entry[s]!;
  const zero = (t.bits[s]! & PTE_SPECIAL) !== 0;
  setPte(k, s, 0, 0);
  mm.nrTables--;
  mm.hugePmds--;
  if (zero) return 0;
  k.frames.removeRmapPmd(head, mm.id);
  mm.rssAnon -= HPAGE_PMD_NR;
  // Frees inside a zap are summarised by its caller, not recorded one by one.
  const tracing = k.tracing;
  k.tracing = false;
  k.putPage(head);
  k.tracing = tracing;
  return HPAGE_PMD_NR;
}

/**
 * zap_pmd_range() meeting huge PMDs in [lo, hi): one covered whole is dropped (zapHugePmd), one
 * covered in part is split (__split_huge_pmd) for the PTE level to zap. Returns the pages the
 * whole-PMD drops unmapped.
 */
export function zapHugePmdRange(k: Kernel, mm: Mm, lo: number, hi: number, why: string): number {
  if (mm.hugePmds === 0) return 0;
  let zapped = 0;
  for (let a = lo - (lo & (HPAGE_PMD_NR - 1)); a < hi; a += HPAGE_PMD_NR) {
    const s = pmdLeafSlot(k, mm, a);
    if (s < 0) continue;
    if (a >= lo && a + HPAGE_PMD_NR <= hi) zapped += zapHugePmd(k, mm, s);
    else splitHugePmd(k, mm, s, a, why);
  }
  return zapped;
}

/**
 * vma_adjust_trans_huge(): a VMA boundary at `at` inside a huge PMD (not 2 MiB-aligned) splits it.
 */
export function splitHugePmdAt(k: Kernel, mm: Mm, at: number, why: string): void {
  if (mm.hugePmds === 0 || (at & (HPAGE_PMD_NR - 1)) === 0) return;
  const s = pmdLeafSlot(k, mm, at);
  if (s >= 0) splitHugePmd(k, mm, s, at, why);
}

/** Every PMD leaf of mm split (for a path that walks the whole address space by PTE tables). */
export function splitAllHugePmds(k: Kernel, mm: Mm, why: string): void {
  if (mm.hugePmds === 0) return;
  for (const vma of mm.vmas) if (!(vma.flags & VM_HUGETLB)) splitHugePmdRange(k, mm, vma.start, vma.end, why);
}

/**
 * change_huge_pmd(): mprotect of the huge PMDs vma covers whole (a PMD across its boundaries was
 * split before, vma_adjust_trans_huge): PROT_NONE, write-protected, or (mprotectWritablePmd, 6.2
 * can_change_pmd_writable) writable at once when the head is PAE and no soft-dirty tracking waits.
 */
export function changeHugePmds(k: Kernel, mm: Mm, vma: Vma): void {
  if (mm.hugePmds === 0) return;
  const t = k.tables;
  for (let a = vma.start + ((HPAGE_PMD_NR - (vma.start & (HPAGE_PMD_NR - 1))) & (HPAGE_PMD_NR - 1)); a + HPAGE_PMD_NR <= vma.end; a += HPAGE_PMD_NR) {
    const s = pmdLeafSlot(k, mm, a);
    if (s < 0) continue;
    const old = t.bits[s]!;
    if (!(vma.flags & VM_READ)) {
      t.setBits(s, (old & ~PTE_WRITE) | PTE_PROTNONE);
      continue;
    }
    const bits = old & ~PTE_PROTNONE;
    t.setBits(s, vma.flags & VM_WRITE ? bits : bits & ~PTE_WRITE);
    // can_change_pmd_writable(): can_change_pte_writable()'s tests on the PMD (userfaultfd_huge_pmd_wp, the head's PAE).
    if (!(vma.flags & VM_WRITE) || bits & PTE_WRITE || !k.profile.mprotectWritablePmd) continue;
    if (canChangePteWritable(k, vma, bits, t.entry[s]!)) t.setBits(s, bits | PTE_WRITE);
  }
}

/**
 * clear_soft_dirty_pmd() (clear_refs with CLEAR_REFS_SOFT_DIRTY): every huge PMD of mm is
 * write-protected and loses its soft-dirty bit, staying a PMD. Returns how many.
 */
export function clearSoftDirtyPmds(k: Kernel, mm: Mm): number {
  if (mm.hugePmds === 0) return 0;
  let n = 0;
  for (const vma of mm.vmas) {
    if (vma.flags & VM_HUGETLB) continue; // clear_refs has no hugetlb_entry: huge PTEs stay as they are
    for (let a = vma.start - (vma.start & (HPAGE_PMD_NR - 1)); a < vma.end; a += HPAGE_PMD_NR) {
      const s = pmdLeafSlot(k, mm, a);
      if (s < 0) continue;
      k.tables.setBits(s, k.tables.bits[s]! & ~(PTE_WRITE | PTE_SOFT_DIRTY));
      n++;
    }
  }
  return n;
}

/**
 * split_huge_page(): the large folio at head becomes 512 small folios. Every huge PMD mapping it
 * is split first (the kernel's rmap walk; here each live mm's leaves that map it); the pages
 * keep their PAE, counts and contents, and a page nothing maps any more is freed. Refused (false)
 * while references other than mappings hold it (a pin, a GUP reference, a pipe buffer:
 * can_split_folio).
 */
export function splitHugePage(k: Kernel, head: number, why: string): boolean {
  const f = k.frames;
  if (f.folioRefcount(head) !== f.folioMapcount(head)) return false;
  for (const mm of k.mms) {
    if (!mm.alive || mm.hugePmds === 0) continue;
    for (const vma of mm.vmas) {
      for (let a = vma.start - (vma.start & (HPAGE_PMD_NR - 1)); a < vma.end; a += HPAGE_PMD_NR) {
        const s = pmdLeafSlot(k, mm, a);
        if (s >= 0 && k.tables.entry[s] === head && !isHugeZeroPmd(k, s)) splitHugePmd(k, mm, s, a, why);
      }
    }
  }
  // unmap_folio() + remap_page(): present PTEs come back as they were; 6.15's device-exclusive entries do not.
  if (exclusiveEntryMapped(k.profile)) migrateExclusiveEntries(k, head);
  f.entireMapcount[head >>> 9] = 0;
  f.pincount[head >>> 9] = 0;
  f.clearMmIds(head >>> 9);
  for (let p = head; p < head + HPAGE_PMD_NR; p++) f.setFlags(p, f.flags[p]! & ~PG_LARGE);
  if (k.profile.thpSplitZeropage) remapZeroFilled(k, head);
  for (let p = head; p < head + HPAGE_PMD_NR; p++) if (f.refcount[p] === 0 && f.flags[p]! & PG_INUSE) f.free(p);
  if (k.tracing) k.emit('note', -1, -1, head, -1, `split_huge_page: ${why}; the 2 MiB folio is now 512 small pages`);
  return true;
}

/**
 * Each PTE that names a page of the folio at head (present or not), in every live mm, in table
 * order: the rmap walks of the split (unmap_folio/remap_page) over the folio's mappings.
 */
function forEachFolioPte(k: Kernel, head: number, fn: (mm: Mm, vpn: number, slot: number, bits: number, pfn: number) => void): void {
  const t = k.tables;
  for (const mm of k.mms) {
    if (!mm.alive) continue;
    forEachPteTable(k, mm, (base, table) => {
      const b = table << TABLE_SHIFT;
      for (let i = 0; i < HPAGE_PMD_NR; i++) {
        const p = t.entry[b + i]!;
        if (p >= head && p < head + HPAGE_PMD_NR && t.bits[b + i]! !== 0) fn(mm, base + i, b + i, t.bits[b + i]!, p);
      }
    });
  }
}

/** Every device-exclusive entry of a page of the folio at head, in every live mm, migrated and mapped again (migrateExclusiveEntry). */
function migrateExclusiveEntries(k: Kernel, head: number): void {
  forEachFolioPte(k, head, (mm, vpn, slot, bits) => {
    if (bits & PTE_DEVICE_EXCLUSIVE) migrateExclusiveEntry(k, mm, vpn, slot);
  });
}

/**
 * remap_page(RMP_USE_SHARED_ZEROPAGE) after split_huge_page() (thpSplitZeropage, 6.12): every
 * PTE mapping a page of the split folio that holds only zeroes maps the shared zero page
 * instead, read-only, keeping its soft-dirty and uffd-wp bits (try_to_map_unused_to_zeropage);
 * the page loses that mapping and reference, and the process its RSS. Freed pages are freed by
 * the caller.
 */
function remapZeroFilled(k: Kernel, head: number): void {
  const t = k.tables;
  const f = k.frames;
  let n = 0;
  forEachFolioPte(k, head, (mm, _vpn, slot, bits, p) => {
    if (!(bits & PTE_PRESENT) || bits & PTE_SPECIAL || f.value[p] !== 0) return;
    t.setPte(slot, 0, PTE_PRESENT | PTE_SPECIAL | PTE_YOUNG | (bits & (PTE_SOFT_DIRTY | PTE_UFFD_WP)));
    f.addMapcount(p, -1);
    f.addRefcount(p, -1);
    mm.rssAnon--;
    n++;
  });
  if (n > 0 && k.tracing) k.emit('note', -1, -1, head, -1, `split_huge_page: ${n} mapping(s) of zero-filled pages now map the shared zero page (remap_page, RMP_USE_SHARED_ZEROPAGE)`);
}

/** MADV_PAGEOUT's "mapped elsewhere" test of the large folio of pfn (the PMD's head or the PTE's page): pageoutLargeShared. */
function pageoutLargeShared(k: Kernel, pfn: number): boolean {
  const f = k.frames;
  switch (k.profile.pageoutLargeShared) {
    case 'page-mapcount':
      return f.pageMapcount(pfn) !== 1;
    case 'first-page':
      return f.pageMapcount(pfn & ~(HPAGE_PMD_NR - 1)) !== 1;
    case 'folio':
      // folio_maybe_mapped_shared() with MM-id tracking (6.15+: the shared bit can outlive a third
      // mm's mappings); before, the page mapcounts.
      return f.mmIds ? f.folioMaybeMappedShared(pfn) : f.folioMaxMapcount(pfn) > 1;
    case 'total':
      // 6.3's folio_mapcount(): every PTE of the folio counts, also the one process's own.
      return f.folioMapcount(pfn) !== 1;
  }
}

/** The PTE bits folio_pte_batch() ignores when it compares PTEs (__pte_batch_clear_ignored, as MADV_PAGEOUT asks it). */
const PTE_BATCH_IGNORED = PTE_DIRTY | PTE_SOFT_DIRTY | PTE_WRITE | PTE_YOUNG;

/**
 * madvise_folio_pte_batch() (6.10+): how many PTEs of mm from vpn on, below `limit` (within
 * vpn's PTE table), map the pages of one large folio in order from the page vpn's PTE maps, up
 * to the folio's last page, with the same bits but for dirty, soft-dirty, write and young. vpn's
 * PTE must map a page of a large folio.
 */
export function folioPteBatch(k: Kernel, mm: Mm, vpn: number, limit: number): number {
  const t = k.tables;
  const s = pteSlot(k, mm, vpn);
  const pfn = t.entry[s]!;
  const bits = t.bits[s]! & ~PTE_BATCH_IGNORED;
  const max = Math.min(limit - vpn, HPAGE_PMD_NR - (pfn & (HPAGE_PMD_NR - 1)));
  let n = 1;
  while (n < max && t.entry[s + n] === pfn + n && (t.bits[s + n]! & ~PTE_BATCH_IGNORED) === bits) n++;
  return n;
}

/**
 * MADV_PAGEOUT / reclaim meeting a page of a THP at vpn: the folio is split into small pages
 * first (the kernel swaps a whole PMD mapped once as one folio but ends with 512 PTE swap
 * entries all the same; swap-in brings 4 KiB pages back). Null when split (or nothing to split);
 * else why not: `not-present`, the huge zero PMD (left as it is); `shared`, mapped by more than
 * one mapping (madvise_cold_or_pageout_pte_range skips a folio that may be mapped shared); or
 * `pinned`, held by a reference its mappings do not explain (a pin, a GUP reference:
 * split_folio() refuses, can_split_folio). `whole`: 6.10+'s PTE loop found the folio mapped
 * whole by its batch of PTEs (folioPteBatch): it asks not pageoutLargeShared but whether
 * folio_mapcount() is the folio's number of pages, every mapping one of those PTEs (the kernel
 * then reclaims the folio unsplit; shrink_folio_list() keeps one can_split_folio() refuses).
 */
export function splitForSwap(k: Kernel, mm: Mm, vpn: number, whole = false): 'not-present' | 'shared' | 'pinned' | null {
  const s = mm.hugePmds > 0 ? pmdLeafSlot(k, mm, vpn) : -1;
  let pfn: number;
  if (s >= 0) {
    // madvise_cold_or_pageout_pte_range() leaves a huge zero PMD alone (5.4's MADV_PAGEOUT on):
    // nothing there to reclaim, and no split.
    if (isHugeZeroPmd(k, s)) return 'not-present';
    pfn = k.tables.entry[s]!;
  } else {
    const ps = pteSlot(k, mm, vpn);
    if (ps < 0 || !(k.tables.bits[ps]! & PTE_PRESENT) || k.tables.bits[ps]! & PTE_SPECIAL) return null;
    pfn = k.tables.entry[ps]!;
    if (!(k.frames.flags[pfn]! & PG_LARGE)) return null;
  }
  if (whole ? k.frames.folioMapcount(pfn) !== HPAGE_PMD_NR : pageoutLargeShared(k, pfn)) return 'shared';
  return splitHugePage(k, pfn & ~(HPAGE_PMD_NR - 1), 'swap-out of a THP') ? null : 'pinned';
}

/** copy_huge_pmd()'s outcome: the PMD was shared with the child, or split (copy the PTEs next). */
export const HUGE_PMD_SHARED = 0;
export const HUGE_PMD_SPLIT = 1;

/**
 * copy_huge_pmd(): fork meets a PMD leaf of the parent at srcSlot. The huge zero PMD is copied as
 * it is. A maybe-pinned THP (exact pin count > 0, PAE head from 5.19) in an mm that has pinned is
 * split (d042035eaf5f, 5.9: forkEarlyCow) and the PTE level copies its pages for the child;
 * otherwise the folio is shared: refcount and entire mapcount +1, PAE cleared, both PMDs
 * write-protected, the child's old, the child charged 512 pages and a deposited table. The child's
 * PMD keeps the uffd-wp bit only when `keepUffdWp` (the huge zero PMD too).
 */
export function copyHugePmd(k: Kernel, src: Mm, dst: Mm, srcVma: Vma, srcSlot: number, vpn: number, keepUffdWp: boolean): number {
  const t = k.tables;
  const f = k.frames;
  const head = t.entry[srcSlot]!;
  const bits = t.bits[srcSlot]!;
  const zero = (bits & PTE_SPECIAL) !== 0;
  // folio_try_dup_anon_rmap_pmd() refuses it as copy_present_pte()'s test does a small page (forkMustCopy).
  if (forkMayCopy(k, src) && forkMustCopy(k, bits, head)) {
    splitHugePmd(k, src, srcSlot, vpn, 'fork of a maybe-pinned THP in an mm that has pinned: split, its pages are copied for the child');
    return HUGE_PMD_SPLIT;
  }
  const cow = isCowMapping(srcVma.flags);
  let cbits = bits;
  if (!zero) {
    f.addRefcount(head, 1);
    f.addRmapPmd(head, dst.id);
    f.setFlags(head, f.flags[head]! & ~PG_ANON_EXCLUSIVE);
    dst.rssAnon += HPAGE_PMD_NR;
    if (cow && bits & PTE_WRITE) {
      t.setBits(srcSlot, bits & ~PTE_WRITE);
      cbits &= ~PTE_WRITE;
    }
    cbits &= ~PTE_YOUNG;
  }
  // pmd_clear_uffd_wp() unless the VMA forkKeepsUffdWp asks is registered (uffdWpForkVma).
  if (!keepUffdWp) cbits &= ~PTE_UFFD_WP;
  const ds = pmdSlotAlloc(k, dst, vpn);
  setHugePmd(k, dst, ds, head, cbits & ~PMD_LEAF);
  return HUGE_PMD_SHARED;
}

/**
 * move_huge_pmd() (mremap, move_page_tables with a 2 MiB extent on both sides): the PMD leaf at
 * oldSlot moves to the empty PMD slot newSlot of the same mm, made soft-dirty
 * (move_soft_dirty_pmd); the folio's counts, its PAE and pins are untouched, and the deposited
 * table goes with it (same mm: no charge changes). False, nothing moved, when newSlot is not
 * empty (the kernel then splits and moves PTEs).
 */
export function moveHugePmd(k: Kernel, oldSlot: number, newSlot: number, clearUffdWp: boolean): boolean {
  const t = k.tables;
  if (t.entry[newSlot] !== 0 || t.bits[newSlot] !== 0) return false;
  const head = t.entry[oldSlot]!;
  // clear_uffd_wp_pmd() when the old VMA is registered without the remap event (mremapClearsUffdWp).
  const bits = clearUffdWp ? t.bits[oldSlot]! & ~PTE_UFFD_WP : t.bits[oldSlot]!;
  setPte(k, oldSlot, 0, 0);
  setPte(k, newSlot, head, bits | PTE_SOFT_DIRTY);
  return true;
}

/** Is pfn a page of a large folio? */
export function isLargePage(k: Kernel, pfn: number): boolean {
  return (k.frames.flags[pfn]! & PG_LARGE) !== 0;
}

/** Does a huge PMD, or a PTE mapping a page of a large folio, lie in [lo, hi) of mm? */
export function hugeIn(k: Kernel, mm: Mm, lo: number, hi: number): boolean {
  if (mm.hugePmds > 0 && hugePmdIn(k, mm, lo, hi)) return true;
  for (let v = lo; v < hi; v++) {
    const s = pteSlot(k, mm, v);
    if (s >= 0 && k.tables.bits[s]! & PTE_PRESENT && !(k.tables.bits[s]! & PTE_SPECIAL) && k.frames.flags[k.tables.entry[s]!]! & PG_LARGE) return true;
  }
  return false;
}

/** Is a huge PMD in [lo, hi) of mm? */
export function hugePmdIn(k: Kernel, mm: Mm, lo: number, hi: number): boolean {
  if (mm.hugePmds === 0) return false;
  for (let a = lo - (lo & (HPAGE_PMD_NR - 1)); a < hi; a += HPAGE_PMD_NR) if (pmdLeafSlot(k, mm, a) >= 0) return true;
  return false;
}
