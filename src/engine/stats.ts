// The counters a scenario can assert (`expect stat`) and print (`stats`), meminfo-like.

import { PG_ANON, PG_HUGETLB, PG_INUSE, PG_LARGE } from '../core/constants.js';
import type { Kernel } from '../core/kernel.js';

/** Counters over the whole model. Per-process ones are `rss.P`, `minflt.P` and `uffd_faults.P` (expect.ts). */
export function globalStats(k: Kernel): Record<string, number> {
  // meminfo PageTables: physical page-table pages (a COW-shared PTE table counts once).
  // (v1.2) The table deposited under each huge PMD counts too (pgtable_trans_huge_deposit).
  let tables = k.tables.used;
  // (A hugetlb huge PTE has no deposited table.)
  for (const mm of k.mms) if (mm.alive) tables += mm.hugePmds - mm.hugetlbPages / 512;
  const f = k.frames;
  let anonMapped = 0;
  for (let pfn = 1; pfn < f.top; pfn++) {
    if ((f.flags[pfn]! & (PG_ANON | PG_INUSE)) === (PG_ANON | PG_INUSE) && f.mapcount[pfn]! > 0) anonMapped++;
  }
  // v1.2 (THP): a PMD-mapped folio's pages are mapped (AnonPages) though their PTE mapcounts are
  // 0; AnonHugePages (NR_ANON_THPS) counts each folio some PMD maps once.
  let hugeMapped = 0;
  for (let head = 512; head < f.top; head += 512) {
    // hugetlb pages are neither AnonPages nor AnonHugePages (meminfo counts them as HugePages_*).
    if (!(f.flags[head]! & PG_LARGE) || f.flags[head]! & PG_HUGETLB || f.entireMapcount[head >>> 9] === 0) continue;
    hugeMapped++;
    for (let p = head; p < head + 512; p++) if (f.mapcount[p] === 0) anonMapped++;
  }
  const pool = k.hugetlb;
  return {
    // (v1.2, hugetlb) meminfo's HugePages_Free and HugePages_Rsvd, when config.hugepages sets the pool.
    ...(Number.isFinite(pool.total) ? { HugePages_Free: pool.free, HugePages_Rsvd: pool.resv } : {}),
    PageTables_kB: tables * 4,
    AnonPages_kB: anonMapped * 4,
    AnonHugePages_kB: hugeMapped * 2048,
    frames_used: f.used,
    cow_copies: k.stats.cowCopies,
    pt_copies: k.stats.ptCopies,
    // References and pins GUP holds on the shared zero page (pins only before 6.5).
    zero_page_refs: f.refcount[0]!,
    reuses: k.stats.reuses,
    early_cow: k.stats.earlyCow,
    faults: k.stats.faults,
  };
}
