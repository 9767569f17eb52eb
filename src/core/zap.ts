// Tearing mappings down: zap_pte_range (munmap, MADV_DONTNEED, exit), free_pgtables, exit_mmap.

import {
  EINVAL, LEVEL_PGD, LEVEL_PTE, LEVEL_SPAN, PG_ANON, PTE_DEVICE_EXCLUSIVE, PTE_MARKER, PTE_PRESENT, PTE_SPECIAL, PTE_SWAP, PTE_UFFD_WP,
  TABLE_MASK, TABLE_SHIFT, VM_HUGETLB, VM_UFFD_WP, OK,
} from './constants.js';
import type { Kernel } from './kernel.js';
import type { Mm, Vma } from './mm.js';
import { zapHugePmdRange } from './huge.js';
import { hugetlbVmOpClose, hugetlbVmOpSplit, unmapHugepageRange } from './hugetlb.js';
import { PMD_WP, pmdSlotOf, pmdWriteProtected, pteTableOf } from './walk.js';
import { breakCowPte, charge, coversTable, releaseTable } from './cowpt.js';
import { freeSwapAndCache, swapFree } from './swapcache.js';
import { mmuNotify, zapExclusiveEntry } from './exclusive.js';

/** zap_pte_range() over [lo, hi) of one VMA: drop every mapping and its reference. */
export function zapRange(k: Kernel, mm: Mm, lo: number, hi: number, dontneed = false): number {
  const span = LEVEL_SPAN[0];
  const t = k.tables;
  const f = k.frames;
  // unmap_single_vma(): a hugetlb VMA is torn down by __unmap_hugepage_range (huge PTEs, never split).
  if (mm.hugePmds > 0) {
    const vma = mm.findVma(lo);
    if (vma !== null && vma.flags & VM_HUGETLB) return unmapHugepageRange(k, mm, lo, hi);
  }
  // zap_pmd_range(): a huge PMD covered whole is dropped with its deposited table (zap_huge_pmd),
  // one covered in part is split and its PTEs zapped below (mm/memory.c, 6.18).
  let zapped = zapHugePmdRange(k, mm, lo, hi, dontneed ? 'MADV_DONTNEED of part of a huge PMD' : 'zap of part of a huge PMD');
  // Frees inside a zap are summarised by the caller, not recorded one by one.
  const tracing = k.tracing;
  k.tracing = false;
  for (let a = lo; a < hi; ) {
    const next = Math.min(hi, a - (a % span) + span);
    if (mm.cowPgtable && pmdWriteProtected(k, mm, a)) {
      const vma = mm.findVma(a);
      if (vma !== null && zapCowPte(k, mm, vma, a, next, dontneed)) {
        a = next;
        continue;
      }
    }
    const table = pteTableOf(k, mm, a);
    if (table !== 0 && t.filled[table]! > 0) {
      const base = table << TABLE_SHIFT;
      const first = a & TABLE_MASK;
      const last = first + (next - a);
      let cleared = 0;
      for (let i = first; i < last; i++) {
        const bits = t.bits[base + i]!;
        if (bits === 0) continue;
        const pfn = t.entry[base + i]!;
        t.setEntry(base + i, 0);
        // zap_install_uffd_wp_if_needed() (5.19+): MADV_DONTNEED keeps a protected shmem page's protection as a marker.
        if (dontneed && bits & PTE_UFFD_WP && keepsUffdWpMarker(k, mm, a + (i - first))) {
          t.setBits(base + i, PTE_MARKER | PTE_UFFD_WP);
          if (bits & PTE_MARKER) continue;
        } else {
          t.setBits(base + i, 0);
          cleared++;
        }
        if (!(bits & PTE_PRESENT)) {
          if (bits & PTE_SWAP) freeSwapAndCache(k, pfn);
          else if (bits & PTE_DEVICE_EXCLUSIVE) zapExclusiveEntry(k, mm, pfn);
          continue;
        }
        if (bits & PTE_SPECIAL) continue; // the zero page holds no reference
        if (f.flags[pfn]! & PG_ANON) mm.rssAnon--;
        else mm.rssShmem--;
        k.pageRefDropped(pfn, f.zapRmapPte(pfn, mm.id));
        zapped++;
      }
      t.addFilled(table, -cleared);
      // reclaim_pt (ptReclaim, 6.14): MADV_DONTNEED over the table's whole 2 MiB frees it once empty.
      if (dontneed && k.profile.ptReclaim && first === 0 && last === 512 && t.filled[table] === 0 && !mm.cowPgtable) {
        const ps = pmdSlotOf(k, mm, a);
        t.setEntry(ps, 0);
        t.addFilled(ps >>> TABLE_SHIFT, -1);
        t.free(table);
        mm.nrTables--;
      }
    }
    a = next;
  }
  k.tracing = tracing;
  return zapped;
}

/** pte_install_uffd_wp_if_needed(): a uffd-wp registered shmem mapping (anonymous memory never gets markers). */
function keepsUffdWpMarker(k: Kernel, mm: Mm, vpn: number): boolean {
  const vma = mm.findVma(vpn);
  return k.profile.uffdWpShmem && vma !== null && vma.shm !== null && (vma.flags & VM_UFFD_WP) !== 0;
}

/** Drop a VMA's hold on its shmem object; the last one truncates it (frees the page-cache references). */
export function releaseVma(k: Kernel, vma: Vma): void {
  if (vma.hugetlb !== null) hugetlbVmOpClose(k, vma);
  const obj = vma.shm;
  if (obj === null) return;
  obj.users--;
  if (obj.users > 0) return;
  for (let i = 0; i < obj.pages.length; i++) {
    const pfn = obj.pages[i]!;
    if (pfn >= 0) {
      obj.pages[i] = -1;
      k.putPage(pfn);
    }
    if (obj.swapped[i]! >= 0) {
      swapFree(k, obj.swapped[i]!);
      obj.swapped[i] = -1;
    }
  }
}

/**
 * free_pgtables() for [lo, hi) after its VMAs went: free every table whose whole span lies in
 * [floor, ceiling), the gap between the neighbouring VMAs (free_pgd_range's rule).
 */
export function freePgtables(k: Kernel, mm: Mm, lo: number, hi: number, floor: number, ceiling: number): void {
  freeLevel(k, mm, mm.pgd, LEVEL_PGD, 0, lo, hi, floor, ceiling);
}

function freeLevel(
  k: Kernel, mm: Mm, table: number, level: number, base: number, lo: number, hi: number, floor: number, ceiling: number,
): void {
  const t = k.tables;
  const childSpan = LEVEL_SPAN[level - 1]!;
  const firstIdx = Math.max(0, Math.floor((lo - base) / childSpan));
  const lastIdx = Math.min(TABLE_MASK, Math.floor((hi - 1 - base) / childSpan));
  // Stop once every filled entry was seen (upper levels' counts are kept by walk.ts, as the
  // accounting walk relies on too): exit's range covers every table whole, most of it none.
  let left = t.filled[table]!;
  for (let i = firstIdx; i <= lastIdx && left > 0; i++) {
    const slot = (table << TABLE_SHIFT) | i;
    const child = t.entry[slot]!;
    if (child === 0) continue;
    left--;
    const cBase = base + i * childSpan;
    if (level - 1 > LEVEL_PTE) freeLevel(k, mm, child, level - 1, cBase, lo, hi, floor, ceiling);
    if (cBase >= floor && cBase + childSpan <= ceiling) {
      if (t.filled[child]! !== 0) {
        k.emit('bug', mm.id, cBase, -1, -1, `free_pgtables: a level-${level - 1} table still has entries`);
        continue;
      }
      t.free(child);
      t.setEntry(slot, 0);
      t.addFilled(table, -1);
      mm.nrTables--;
    }
  }
}

/**
 * munmap()'s core: split, zap, drop the VMAs, free the page tables no VMA needs any more. OK, or
 * EINVAL when a hugetlb VMA would be split inside a huge page (hugetlbVmOpSplit: nothing done).
 */
export function unmapRegion(k: Kernel, mm: Mm, lo: number, hi: number, what = 'munmap'): number {
  // do_vmi_munmap(): vma_find(vmi, end) finds nothing, it returns 0 (no split, no MMU notifier).
  if (mm.mapsNothing(lo, hi)) return OK;
  if (hugetlbVmOpSplit(mm, lo, hi) !== OK) return EINVAL;
  // __split_vma() breaks a shared COW page table at a split point (handle_cow_pte).
  if (mm.cowPgtable) {
    for (const at of [lo, hi]) {
      const vma = mm.findVma(at);
      if (vma !== null && vma.start < at && at < vma.end) breakCowPte(k, mm, vma, at);
    }
  }
  const vmas = mm.splitRange(k, lo, hi);
  if (vmas.length === 0) return OK;
  mmuNotify(k, mm.id, lo, hi, what);
  const used = k.frames.used;
  let zapped = 0;
  for (const vma of vmas) {
    zapped += zapRange(k, mm, vma.start, vma.end);
    releaseVma(k, vma);
  }
  mm.vmas = mm.vmas.filter((v) => !vmas.includes(v));
  let floor = 0;
  let ceiling = 2 ** 36;
  for (const v of mm.vmas) {
    if (v.end <= lo) floor = Math.max(floor, v.end);
    else if (v.start >= hi) ceiling = Math.min(ceiling, v.start);
  }
  freePgtables(k, mm, lo, hi, floor, ceiling);
  if (k.tracing) k.emit('zap', mm.id, lo, -1, -1, `${what}: ${zapped} mapped page(s) dropped, ${used - k.frames.used} frame(s) freed`);
  return OK;
}

/** exit_mmap(): zap everything, free every table including the PGD. */
export function exitMmap(k: Kernel, mm: Mm): void {
  mmuNotify(k, mm.id, 0, 2 ** 36, 'exit');
  const used = k.frames.used;
  const tables = mm.nrTables;
  let zapped = 0;
  for (const vma of mm.vmas) {
    zapped += zapRange(k, mm, vma.start, vma.end);
    releaseVma(k, vma);
  }
  mm.vmas = [];
  freePgtables(k, mm, 0, 2 ** 36, 0, 2 ** 36);
  k.tables.free(mm.pgd);
  mm.nrTables--;
  mm.pgd = 0;
  mm.alive = false;
  // check_mm(): every counter must be back to zero once the address space is gone.
  if (mm.rssAnon !== 0) k.emit('bug', mm.id, -1, -1, -1, `BUG: Bad rss-counter state mm:${mm.id} type:MM_ANONPAGES val:${mm.rssAnon}`);
  if (mm.rssShmem !== 0) k.emit('bug', mm.id, -1, -1, -1, `BUG: Bad rss-counter state mm:${mm.id} type:MM_SHMEMPAGES val:${mm.rssShmem}`);
  if (mm.nrTables !== 0) k.emit('bug', mm.id, -1, -1, -1, `BUG: non-zero pgtables_bytes on freeing mm: ${mm.nrTables * 4096}`);
  if (k.tracing) k.emit('zap', mm.id, -1, -1, -1, `exit_mmap: ${zapped} mapped page(s) dropped, ${used - k.frames.used} frame(s) and ${tables} page table(s) freed`);
}

/**
 * zap_cow_pte() (COW page tables, see cowpt.ts): zap of [lo, hi) in a shared PTE table (share > 1, or write-protected PMD). Returns true when
 * it dealt with the range itself (the caller must not zap the PTEs).
 */
export function zapCowPte(k: Kernel, mm: Mm, vma: Vma, lo: number, hi: number, dontneed: boolean): boolean {
  const t = k.tables;
  const ps = pmdSlotOf(k, mm, lo);
  if (ps < 0) return false;
  const table = t.entry[ps]!;
  if (table === 0 || !(t.bits[ps]! & PMD_WP)) return false;
  if (k.profile.cowPageTables === 'odf') {
    const start = lo - (lo % 512);
    // cowptDontneed 'vma' (8d43667 zap_pmd_range): a VMA covering the table drops all of it,
    // whatever part the MADV_DONTNEED covers.
    const byVma = dontneed && k.profile.cowptDontneed === 'vma';
    if (!(lo <= start && hi >= start + 512) && !(byVma && coversTable(vma, lo))) {
      // A part of the table: copy it first, then zap as usual.
      breakCowPte(k, mm, vma, lo);
      if (byVma) {
        // 8d43667: tfork_one_pte_table() leaves the zapping VMA out of the new table, so its
        // other entries there go as well (their pages stay with the other users).
        const from = Math.max(vma.start, start);
        const to = Math.min(vma.end, start + 512);
        if (from < lo) zapRange(k, mm, from, lo);
        if (hi < to) zapRange(k, mm, hi, to);
        if (k.tracing) k.emit('note', mm.id, lo, -1, -1, `COW page table: MADV_DONTNEED of part of a mapping drops all ${to - from} page(s) the mapping has in the shared table`);
      }
      return false;
    }
    t.share[table]!--;
    clearPmd(k, ps);
    if (t.share[table] === 0) {
      // The last user releases the pages (and its RSS).
      releaseTable(k, mm, table);
      t.free(table);
    } else if (t.owner[table] === mm.id) {
      // ODF has no hand-over: the page-table charge goes with the mapping, the RSS charge stays.
      mm.nrTables--;
    }
    return true;
  }
  // RFC v1 zap_pmd_range(): behind a write-protected PMD the PTEs are left alone, whatever part
  // of the table the zap covers, and zap_cow_pte() drops this mm's reference to the table.
  if (t.share[table]! > 1) {
    t.share[table]!--;
    if (t.owner[table] === mm.id) {
      t.setOwner(table, -1);
      charge(k, mm, table, -1);
    }
    clearPmd(k, ps);
    if (k.tracing) k.emit('note', mm.id, lo, -1, -1, `COW page table: zap drops this process's reference to the whole shared table (${dontneed ? 'MADV_DONTNEED of part of it' : 'unmap'})`);
    return true;
  }
  // Count 1: pmd_put_pte() falls back to reusing the table; its PTEs were not zapped.
  t.setBits(ps, t.bits[ps]! & ~PMD_WP);
  if (t.owner[table] !== mm.id) {
    if (t.owner[table]! >= 0) charge(k, k.mms[t.owner[table]!]!, table, -1);
    t.setOwner(table, mm.id);
    charge(k, mm, table, 1);
  }
  if (dontneed) {
    // The pages stay mapped: the MADV_DONTNEED is lost.
    k.emit('note', mm.id, lo, -1, -1, 'COW page table: MADV_DONTNEED on a table whose count is 1 falls back to reuse (pmd_put_pte) and zaps nothing');
    return true;
  }
  // munmap/exit: the table is freed later with its entries, the pages never released.
  const base = table << TABLE_SHIFT;
  for (let v = lo; v < hi; v++) {
    const i = v & 511;
    if (t.bits[base + i] !== 0) {
      t.setPte(base + i, 0, 0);
      t.addFilled(table, -1);
    }
  }
  k.emit('note', mm.id, lo, -1, -1, 'COW page table: zap of a table whose count is 1 falls back to reuse (pmd_put_pte) and leaves its pages referenced');
  return true;
}

function clearPmd(k: Kernel, ps: number): void {
  const t = k.tables;
  t.setPte(ps, 0, 0);
  t.addFilled(ps >>> TABLE_SHIFT, -1);
}
