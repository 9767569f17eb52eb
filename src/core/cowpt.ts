// Copy-on-write page tables (seed 004 and On-Demand Fork): fork shares PTE tables through
// write-protected PMD entries; a table is copied (or taken back when no one else uses it) on
// the paths that change it. Two designs, by profile:
//  - `rfc`: the COW-PTE RFC v1 (seed 004, on 5.18): a table refcount and an owner (the mm
//    charged for the table and its pages); the break is copy_pte_range() from the shared
//    table, so it write-protects the shared PTEs as fork would, and early-COWs pinned pages
//    of an mm that has pinned; an owner that breaks gives up its charge; zap of a shared
//    table only drops this mm's reference, and zap of one whose count is 1 falls back to
//    reuse without releasing its pages (zap_cow_pte / pmd_put_pte as posted).
//  - `odf`: On-Demand Fork (paper code, on 5.6): the child is not charged at fork; a copy
//    write-protects the PTEs of the new copy only and charges the copier; the last mm to drop a
//    table releases its pages and its RSS.
// Rules that changed within ODF's history are switches of their own: which tables fork shares
// (`cowPteShare`), when a table whose count is 1 is taken back (`cowPteTakeBack`), and what
// MADV_DONTNEED of part of a shared table drops (`cowptDontneed`).

import {
  isCowMapping, LEVEL_PTE, OK, OOM, PG_ANON, PG_SHMEM, PTE_DEVICE_EXCLUSIVE,
  PTE_PRESENT, PTE_SPECIAL, PTE_SWAP, PTE_WRITE, TABLE_SHIFT, VM_WRITE,
} from './constants.js';
import { allocCopy, dupPresentPage, forkMayCopy, forkMustCopy, installCopiedPage } from './page.js';
import type { Kernel } from './kernel.js';
import type { Mm, Vma } from './mm.js';
import { copySwapPte, freeSwapAndCache } from './swapcache.js';
import { PMD_WP, pmdSlotOf } from './walk.js';

/** Present anonymous and shmem pages a PTE table maps (its RSS charge). */
function tableRss(k: Kernel, table: number): { anon: number; shmem: number } {
  const t = k.tables;
  const f = k.frames;
  const base = table << TABLE_SHIFT;
  let anon = 0;
  let shmem = 0;
  for (let i = 0; i < 512; i++) {
    const bits = t.bits[base + i]!;
    if (bits & PTE_DEVICE_EXCLUSIVE) anon++;
    if (!(bits & PTE_PRESENT) || bits & PTE_SPECIAL) continue;
    const fl = f.flags[t.entry[base + i]!]!;
    if (fl & PG_ANON) anon++;
    else if (fl & PG_SHMEM) shmem++;
  }
  return { anon, shmem };
}

export function charge(k: Kernel, mm: Mm, table: number, sign: 1 | -1): void {
  const r = tableRss(k, table);
  mm.rssAnon += sign * r.anon;
  mm.rssShmem += sign * r.shmem;
  mm.nrTables += sign;
}

/** Does vma cover the whole 2 MiB range of the PTE table that maps vpn? */
export function coversTable(vma: Vma, vpn: number): boolean {
  const start = vpn - (vpn % 512);
  return vma.start <= start && start + 512 <= vma.end;
}

/**
 * copy_pmd_range() with MMF_COW_PGTABLE (RFC) / copy_pmd_range_tfork() (ODF): the child's PMD
 * entries point at the parent's PTE tables, write-protected in both; nothing is done per page.
 * Returns true when every table of the mapping was shared; false when the caller must copy the
 * rest page by page (copy_page_range, which skips the tables the child shares now).
 */
export function shareTables(k: Kernel, parent: Mm, child: Mm, vma: Vma): boolean {
  const t = k.tables;
  const design = k.profile.cowPageTables;
  // ODF write-protects (and shares) only tables of writable mappings; others are copied as usual.
  if (design === 'odf' && !(vma.flags & VM_WRITE)) return false;
  // cowPteShare 'whole-table' (ODF d8ccd3c): a table the mapping covers only in part is copied.
  const wholeOnly = k.profile.cowPteShare === 'whole-table';
  let all = true;
  const PMD_SPAN = 512 * 512;
  let shared = 0;
  // One PMD table (1 GiB) at a time; within it, one PMD entry (2 MiB, a PTE table) per step.
  for (let a = vma.start - (vma.start % 512); a < vma.end; ) {
    const nextPmdTable = a - (a % PMD_SPAN) + PMD_SPAN;
    const ps = pmdSlotOf(k, parent, a);
    if (ps < 0) {
      a = nextPmdTable;
      continue;
    }
    const cs = childPmdSlot(k, child, a);
    const entry = t.entry;
    const bits = t.bits;
    const pBase = ps - (ps & 511);
    const cBase = cs - (cs & 511);
    const cTable = cBase >>> TABLE_SHIFT;
    const last = Math.min(vma.end, nextPmdTable);
    for (let i = ps & 511; a < last; i++, a += 512) {
      const table = entry[pBase + i]!;
      if (table === 0) continue;
      if (entry[cBase + i] !== 0) {
        // The child reaches a table here already. The parent's: shared for a mapping before this
        // one in the table ("already COW this time"). One of its own: a mapping before this one
        // was copied page by page into it (ODF's read-only mappings, uffd-wp ones), so this
        // mapping is copied into it too (sharing nothing would lose its pages in the child).
        if (entry[cBase + i] !== table) all = false;
        continue;
      }
      if (wholeOnly && !coversTable(vma, a)) {
        all = false;
        continue;
      }
      if (design === 'rfc' && t.owner[table]! < 0) {
        // No owner any more (the old owner broke COW): the parent takes the table back and its charge.
        t.setOwner(table, parent.id);
        charge(k, parent, table, 1);
      }
      t.setBits(pBase + i, bits[pBase + i]! | PMD_WP);
      t.share[table]!++;
      t.setPte(cBase + i, table, PMD_WP);
      t.addFilled(cTable, 1);
      shared++;
    }
    a = Math.max(a, nextPmdTable);
  }
  if (k.tracing) {
    if (k.tracing) k.emit('note', parent.id, vma.start, -1, child.id, `COW page tables: the child shares ${shared} PTE table(s) of a ${vma.end - vma.start}-page mapping; ${all
      ? 'nothing copied per page' : 'the tables the mapping covers only in part are copied as by a normal fork'}`);
  }
  return all;
}

function childPmdSlot(k: Kernel, mm: Mm, vpn: number): number {
  // Allocate PUD/PMD tables as needed, without a PTE table.
  const s = pmdSlotOf(k, mm, vpn);
  if (s >= 0) return s;
  const t = k.tables;
  const pgdSlot = (mm.pgd << TABLE_SHIFT) | ((vpn >>> 27) & 511);
  if (t.entry[pgdSlot] === 0) {
    const pud = t.alloc(2);
    t.setEntry(pgdSlot, pud);
    t.addFilled(mm.pgd, 1);
    t.setOwner(pud, mm.id);
    mm.nrTables++;
  }
  const pud = t.entry[pgdSlot]!;
  const pudSlot = (pud << TABLE_SHIFT) | ((vpn >>> 18) & 511);
  if (t.entry[pudSlot] === 0) {
    const pmd = t.alloc(1);
    t.setEntry(pudSlot, pmd);
    t.addFilled(pud, 1);
    t.setOwner(pmd, mm.id);
    mm.nrTables++;
  }
  return pmdSlotOf(k, mm, vpn);
}

/** May a write to a shared table whose count is 1 take it back without a copy (cowPteTakeBack)? */
function mayTakeBack(k: Kernel, vma: Vma, vpn: number): boolean {
  const rule = k.profile.cowPteTakeBack;
  // ODF 8d43667 __handle_mm_fault(): only a VMA covering the whole table repossesses it.
  return rule === 'any' || (rule === 'whole-table' && coversTable(vma, vpn));
}

/**
 * handle_cow_pte_fault() (RFC) / ODF's test of a write-protected PMD in __handle_mm_fault():
 * vpn's PTE table is shared through a write-protected PMD entry and this mm is about to change
 * it. Count 1, where the profile allows it: take it back (PMD writable). Else copy it
 * (tfork_one_pte_table for ODF); the copier that drops the last reference frees the old table.
 */
export function breakCowPte(k: Kernel, mm: Mm, vma: Vma, vpn: number): number {
  const t = k.tables;
  const ps = pmdSlotOf(k, mm, vpn);
  if (ps < 0) return OK;
  const table = t.entry[ps]!;
  if (table === 0 || !(t.bits[ps]! & PMD_WP)) return OK;
  const design = k.profile.cowPageTables;
  if (t.share[table] === 1 && mayTakeBack(k, vma, vpn)) {
    // cow_pte_fallback() / ODF's repossession: the table is ours alone again.
    t.setBits(ps, t.bits[ps]! & ~PMD_WP);
    if (design === 'rfc' && t.owner[table] !== mm.id) {
      if (t.owner[table]! >= 0) charge(k, k.mms[t.owner[table]!]!, table, -1);
      t.setOwner(table, mm.id);
      charge(k, mm, table, 1);
    }
    k.emit('note', mm.id, vpn, -1, -1, 'COW page table: no other user left; the table is taken back without a copy');
    return OK;
  }
  const nt = t.alloc(LEVEL_PTE);
  t.setOwner(nt, mm.id);
  const sb = table << TABLE_SHIFT;
  const db = nt << TABLE_SHIFT;
  const cow = isCowMapping(vma.flags);
  // ODF's tfork_one_pte_table() copies the table VMA by VMA (copy_pte_range_tfork), each with
  // its own flags; the model's RFC break copies it with the faulting VMA's.
  const tableVpn = vpn - (vpn % 512);
  let filled = 0;
  let anon = 0;
  let shmem = 0;
  for (let i = 0; i < 512; i++) {
    const bits = t.bits[sb + i]!;
    if (bits === 0) continue;
    // ODF's tfork_one_pte_table() copies the copier's mappings only: an entry where this mm has
    // none (a MADV_DONTFORK mapping of the parent's, in the table the child shares) is left out.
    if (design === 'odf' && mm.findVma(tableVpn + i) === null) continue;
    filled++;
    const pfn = t.entry[sb + i]!;
    if (bits & PTE_SWAP) {
      t.setPte(db + i, pfn, copySwapPte(k, sb + i));
      continue;
    }
    if (!(bits & PTE_PRESENT)) {
      // Device-exclusive entries are not shared by the model's COW tables (break before making them).
      t.setPte(db + i, pfn, bits);
      continue;
    }
    if (design === 'rfc' && forkMayCopy(k, mm) && forkMustCopy(k, bits, pfn)) {
      // copy_present_page() inside copy_pte_range(): the pinned page is copied for this mm.
      const n = allocCopy(k, pfn);
      if (n < 0) {
        k.emit('oom', mm.id, vpn, pfn, -1, 'no frame to copy a pinned page while breaking a COW page table');
        return OOM;
      }
      installCopiedPage(k, vma, db + i, n);
      anon++;
      continue;
    }
    const rss = dupPresentPage(k.frames, bits, pfn, mm.id);
    if (rss === PG_ANON) anon++;
    else if (rss !== 0) shmem++;
    let nbits = bits;
    const entryCow = design === 'odf' ? isCowMapping(mm.findVma(tableVpn + i)?.flags ?? 0) : cow;
    if (entryCow && bits & PTE_WRITE) {
      nbits &= ~PTE_WRITE;
      // RFC: copy_pte_range write-protects the source (the shared table) too. ODF: the copy only.
      if (design === 'rfc') t.setBits(sb + i, bits & ~PTE_WRITE);
    }
    t.setPte(db + i, pfn, nbits);
  }
  t.setFilled(nt, filled);
  mm.rssAnon += anon;
  mm.rssShmem += shmem;
  mm.nrTables++;
  t.share[table]!--;
  if (design === 'rfc' && t.owner[table] === mm.id) {
    // The owner broke COW: it gives up its charge for the shared table.
    t.setOwner(table, -1);
    charge(k, mm, table, -1);
  }
  t.setPte(ps, nt, t.bits[ps]! & ~PMD_WP);
  if (t.share[table] === 0) {
    // Nobody else used it (count 1, not taken back): the old table is freed and its pages'
    // references dropped. ODF's dereference_pte_table() decrements the copier's RSS for them;
    // RFC's owner gave its charge back above (a what-if: RFC v1 always takes the table back).
    releaseTable(k, mm, table, design === 'odf');
    t.free(table);
  }
  k.stats.ptCopies++;
  if (k.tracing) k.emit('note', mm.id, vpn, -1, -1, `COW page table: the shared PTE table was copied for this process (${filled} entries)`);
  return OK;
}

/** Release every page of a table that nobody else maps any more, charging mm's RSS (when `charged`). */
export function releaseTable(k: Kernel, mm: Mm, table: number, charged = true): void {
  const t = k.tables;
  const f = k.frames;
  const base = table << TABLE_SHIFT;
  for (let i = 0; i < 512; i++) {
    const bits = t.bits[base + i]!;
    if (bits === 0) continue;
    const pfn = t.entry[base + i]!;
    t.setPte(base + i, 0, 0);
    if (bits & PTE_SWAP) {
      freeSwapAndCache(k, pfn);
      continue;
    }
    if (!(bits & PTE_PRESENT) || bits & PTE_SPECIAL) continue;
    if (charged) {
      if (f.flags[pfn]! & PG_ANON) mm.rssAnon--;
      else mm.rssShmem--;
    }
    f.removeRmapPte(pfn, mm.id);
    k.putPage(pfn);
  }
  t.setFilled(table, 0);
  if (charged && t.owner[table] === mm.id) mm.nrTables--;
}

/** Break every shared PTE table in [lo, hi) of mm (the paths that change PTEs in place). */
export function breakCowRange(k: Kernel, mm: Mm, lo: number, hi: number): number {
  if (!mm.cowPgtable) return OK;
  for (let a = lo - (lo % 512); a < hi; a += 512) {
    const vma = mm.findVma(Math.max(a, lo));
    if (vma === null) continue;
    const err = breakCowPte(k, mm, vma, Math.max(a, lo));
    if (err !== OK) return err;
  }
  return OK;
}
