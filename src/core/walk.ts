// Page-table walks: find or allocate the PTE slot of a virtual page number.
// A PTE slot is an index into TableArena.entry/bits: (table << 9) | (vpn & 511).

import { LEVEL_PMD, LEVEL_PTE, LEVEL_PUD, PMD_LEAF, TABLE_MASK, TABLE_SHIFT } from './constants.js';
import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';

/** The PTE table covering vpn (0 when none is allocated). */
export function pteTableOf(k: Kernel, mm: Mm, vpn: number): number {
  const e = k.tables.entry;
  const pud = e[(mm.pgd << TABLE_SHIFT) | ((vpn >>> 27) & TABLE_MASK)]!;
  if (pud === 0) return 0;
  const pmd = e[(pud << TABLE_SHIFT) | ((vpn >>> 18) & TABLE_MASK)]!;
  if (pmd === 0) return 0;
  const s = (pmd << TABLE_SHIFT) | ((vpn >>> 9) & TABLE_MASK);
  // A huge PMD (pmd_trans_huge) has no PTE table under it: callers ask pmdLeafSlot() first.
  return k.tables.bits[s]! & PMD_LEAF ? 0 : e[s]!;
}

/** pmd_trans_huge(): the PMD slot of vpn when it is a leaf mapping a 2 MiB folio, else -1. */
export function pmdLeafSlot(k: Kernel, mm: Mm, vpn: number): number {
  if (mm.hugePmds === 0) return -1;
  const s = pmdSlotOf(k, mm, vpn);
  return s >= 0 && k.tables.bits[s]! & PMD_LEAF ? s : -1;
}

/** pte_offset_map(): the PTE slot of vpn, or -1 when its PTE table does not exist. */
export function pteSlot(k: Kernel, mm: Mm, vpn: number): number {
  const pte = pteTableOf(k, mm, vpn);
  return pte === 0 ? -1 : (pte << TABLE_SHIFT) | (vpn & TABLE_MASK);
}

function childAlloc(k: Kernel, mm: Mm, table: number, index: number, level: number): number {
  const slot = (table << TABLE_SHIFT) | index;
  const t = k.tables;
  let child = t.entry[slot]!;
  if (t.bits[slot]! & PMD_LEAF) throw new Error(`model bug: a PTE table asked for under a huge PMD (mm ${mm.id}): __split_huge_pmd() first`);
  if (child === 0) {
    child = t.alloc(level);
    // t.entry may have been reallocated by alloc(): index it afresh.
    t.setPte(slot, child, 0);
    t.addFilled(table, 1);
    t.setOwner(child, mm.id);
    mm.nrTables++;
  }
  return child;
}

/** pud_alloc() / pmd_alloc() / pte_alloc(): the PTE table covering vpn, allocated as needed. */
export function pteTableAlloc(k: Kernel, mm: Mm, vpn: number): number {
  const pud = childAlloc(k, mm, mm.pgd, (vpn >>> 27) & TABLE_MASK, LEVEL_PUD);
  const pmd = childAlloc(k, mm, pud, (vpn >>> 18) & TABLE_MASK, LEVEL_PMD);
  return childAlloc(k, mm, pmd, (vpn >>> 9) & TABLE_MASK, LEVEL_PTE);
}

/**
 * How deep mm's tables reach at vpn below its PGD: 0 no PUD table, 1 a PUD table, 2 a PMD table
 * (its entry for vpn none or a huge PMD), 3 a PTE table.
 */
export function tableDepthOf(k: Kernel, mm: Mm, vpn: number): number {
  const e = k.tables.entry;
  const pud = e[(mm.pgd << TABLE_SHIFT) | ((vpn >>> 27) & TABLE_MASK)]!;
  if (pud === 0) return 0;
  const pmd = e[(pud << TABLE_SHIFT) | ((vpn >>> 18) & TABLE_MASK)]!;
  if (pmd === 0) return 1;
  const s = (pmd << TABLE_SHIFT) | ((vpn >>> 9) & TABLE_MASK);
  return e[s] === 0 || k.tables.bits[s]! & PMD_LEAF ? 2 : 3;
}

/** pud_alloc() / pmd_alloc() / pte_alloc() to the given depth (tableDepthOf's numbers) at vpn. */
export function tablesAllocTo(k: Kernel, mm: Mm, vpn: number, depth: number): void {
  if (depth === 0) return;
  const pud = childAlloc(k, mm, mm.pgd, (vpn >>> 27) & TABLE_MASK, LEVEL_PUD);
  if (depth === 1) return;
  const pmd = childAlloc(k, mm, pud, (vpn >>> 18) & TABLE_MASK, LEVEL_PMD);
  if (depth === 3) childAlloc(k, mm, pmd, (vpn >>> 9) & TABLE_MASK, LEVEL_PTE);
}

/** alloc_new_pmd(): the PMD slot of vpn, allocating the PUD and PMD tables as needed (no PTE table). */
export function pmdSlotAlloc(k: Kernel, mm: Mm, vpn: number): number {
  const pud = childAlloc(k, mm, mm.pgd, (vpn >>> 27) & TABLE_MASK, LEVEL_PUD);
  const pmd = childAlloc(k, mm, pud, (vpn >>> 18) & TABLE_MASK, LEVEL_PMD);
  return (pmd << TABLE_SHIFT) | ((vpn >>> 9) & TABLE_MASK);
}

/** The PTE slot of vpn, allocating the tables on the way. */
export function pteSlotAlloc(k: Kernel, mm: Mm, vpn: number): number {
  return (pteTableAlloc(k, mm, vpn) << TABLE_SHIFT) | (vpn & TABLE_MASK);
}

/** Set a PTE (set_pte_at), keeping the table's filled count. */
export function setPte(k: Kernel, slot: number, pfn: number, bits: number): void {
  const t = k.tables;
  if (t.bits[slot] === 0 && bits !== 0) t.addFilled(slot >>> TABLE_SHIFT, 1);
  else if (t.bits[slot] !== 0 && bits === 0) t.addFilled(slot >>> TABLE_SHIFT, -1);
  t.setPte(slot, pfn, bits);
}

/** Bit in a PMD-level slot's `bits`: the PMD entry is write-protected (a shared COW PTE table). */
export const PMD_WP = 1;

/** The PMD slot (index into entry/bits) that points at vpn's PTE table, or -1. */
export function pmdSlotOf(k: Kernel, mm: Mm, vpn: number): number {
  const e = k.tables.entry;
  const pud = e[(mm.pgd << TABLE_SHIFT) | ((vpn >>> 27) & TABLE_MASK)]!;
  if (pud === 0) return -1;
  const pmd = e[(pud << TABLE_SHIFT) | ((vpn >>> 18) & TABLE_MASK)]!;
  if (pmd === 0) return -1;
  return (pmd << TABLE_SHIFT) | ((vpn >>> 9) & TABLE_MASK);
}

/** Is vpn's PTE table reached through a write-protected PMD entry (COW page tables)? */
export function pmdWriteProtected(k: Kernel, mm: Mm, vpn: number): boolean {
  if (!mm.cowPgtable) return false;
  const s = pmdSlotOf(k, mm, vpn);
  return s >= 0 && k.tables.entry[s] !== 0 && (k.tables.bits[s]! & (PMD_WP | PMD_LEAF)) === PMD_WP;
}

/**
 * walk_page_range() over a whole address space: fn(first vpn the table maps, PTE table index)
 * for each PTE table present, in address order (PGD -> PUD -> PMD; x86-64 4-level); `leaf`, if
 * given, for each huge PMD (its first vpn and PMD slot) in the same order; `upper`, if given,
 * for each upper table walked (the PGD, then each PUD and PMD before the tables below it).
 */
export function forEachPteTable(k: Kernel, mm: Mm, fn: (vpnBase: number, table: number) => void, leaf?: (vpnBase: number, pmdSlot: number) => void, upper?: (table: number) => void): void {
  const t = k.tables;
  if (mm.pgd <= 0) return;
  upper?.(mm.pgd);
  // Each upper table is read only to its last filled entry (walk.ts keeps their counts, as
  // freeLevel and the accounting walk rely on): most of an address space's upper tables is empty.
  for (let a = 0, leftA = t.filled[mm.pgd]!; a < 512 && leftA > 0; a++) {
    const pud = t.entry[(mm.pgd << TABLE_SHIFT) | a]!;
    if (pud === 0) continue;
    leftA--;
    upper?.(pud);
    for (let b = 0, leftB = t.filled[pud]!; b < 512 && leftB > 0; b++) {
      const pmd = t.entry[(pud << TABLE_SHIFT) | b]!;
      if (pmd === 0) continue;
      leftB--;
      upper?.(pmd);
      for (let c = 0, leftC = t.filled[pmd]!; c < 512 && leftC > 0; c++) {
        const slot = (pmd << TABLE_SHIFT) | c;
        if (t.bits[slot]! & PMD_LEAF) {
          leftC--;
          leaf?.(a * 2 ** 27 + (b << 18) + (c << 9), slot);
        } else if (t.entry[slot] !== 0) {
          leftC--;
          fn(a * 2 ** 27 + (b << 18) + (c << 9), t.entry[slot]!);
        }
      }
    }
  }
}
