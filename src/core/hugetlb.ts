// hugetlb (mm/hugetlb.c): MAP_HUGETLB mappings of 2 MiB huge pages taken from a pool of
// preallocated pages (config.hugepages), never split, never swapped.
//
// A huge page is mapped by a huge PTE, which on x86-64 is a PMD leaf: the model keeps it like a
// THP's PMD leaf (PMD_LEAF in a PMD-level slot, `entry` = the head pfn), counted in mm.hugePmds so
// that followSlot() and GUP find it, and in mm.hugetlbPages (HugetlbPages, not RSS). Its folio is a
// PG_LARGE | PG_HUGETLB block: refcount on the head (+1 per mapping), the entire mapcount (one per
// mapping; hugetlb pages are never PTE-mapped), the exact pin count, PG_anon_exclusive on the
// head (5.19+). Paths that meet a VM_HUGETLB VMA branch here first, as the kernel's
// is_vm_hugetlb_page() tests do (fault, fork, zap, mprotect); the THP paths never see its leaves.
//
// Rules (docs/design/huge-pages.md section 11, read in 5.4 to 6.18):
// - mmap(MAP_PRIVATE) reserves one huge page per huge page of the range (hugetlb_reserve_pages)
//   and owns the reservation (HPAGE_RESV_OWNER); a fault consumes it; a forked child's VMA owns
//   none (hugetlb_dup_vma_private / reset_vma_resv_huge_pages); closing the VMA gives back what
//   was not consumed (hugetlb_vm_op_close).
// - The write fault reuses by mapcount in every era (hugetlb_cow <= 5.18, hugetlb_wp 5.19+),
//   deliberately not by refcount; a copy needs a free page outside the reserves: the owner then
//   takes the page back from the others (unmap_ref_private), anyone else gets SIGBUS.
// - fork shares and write-protects (copy_hugetlb_page_range); from 5.12 (4eae4efa2c29,
//   hugetlbForkEarlyCow) a maybe-pinned page is copied for the child, and fork fails when no
//   huge page is free.

import {
  EINVAL, HPAGE_PMD_NR, isCowMapping, NA, OK, OOM, PG_ANON, PG_ANON_EXCLUSIVE, PG_HUGETLB, PMD_LEAF, PTE_DIRTY, PTE_PRESENT,
  PTE_PROTNONE, PTE_SOFT_DIRTY, PTE_WRITE, PTE_YOUNG, SIGBUS, VM_HUGETLB, VM_MAYSHARE, VM_READ, VM_WRITE,
} from './constants.js';
import type { Kernel } from './kernel.js';
import { anonVmaPrepare, type Mm, type Vma } from './mm.js';
import { forkMayCopy, forkMustCopy } from './page.js';
import { pmdLeafSlot, pmdSlotAlloc, setPte } from './walk.js';

/** is_vm_hugetlb_page(). */
export function isVmHugetlbPage(vma: Vma): boolean {
  return (vma.flags & VM_HUGETLB) !== 0;
}

/** Does any VMA of mm overlapping [lo, hi) map hugetlb pages? */
export function hugetlbIn(mm: Mm, lo: number, hi: number): boolean {
  for (const v of mm.vmas) if (v.end > lo && v.start < hi && v.flags & VM_HUGETLB) return true;
  return false;
}

/** hugetlb_vm_op_split(), the vm_ops->may_split of a hugetlb VMA: may it be split at page `at`? Only on a huge page boundary (else __split_vma() fails with EINVAL). */
export function hugetlbMaySplitAt(at: number): boolean {
  return (at & (HPAGE_PMD_NR - 1)) === 0;
}

/**
 * Is a munmap of pages [lo, hi) refused with EINVAL, nothing unmapped? munmap splits the VMAs at
 * both ends of its range before it unmaps anything, and a hugetlb VMA splits only on a huge page
 * boundary (hugetlbMaySplitAt). `insideLo` / `insideHi`: a hugetlb VMA maps page lo / hi and
 * starts before it. mprotect and madvise ask the same of the VMAs whose flags they change. The
 * model (hugetlbVmOpSplit, on VMAs) and the scenario checker (NameEnv, on a region's pages) both ask here.
 */
export function hugetlbSplitRefused(lo: number, hi: number, insideLo: boolean, insideHi: boolean): boolean {
  return (insideLo && !hugetlbMaySplitAt(lo)) || (insideHi && !hugetlbMaySplitAt(hi));
}

/**
 * hugetlbSplitRefused() on mm's VMAs: OK, EINVAL or NA. munmap splits the VMAs at both ends of
 * its range (`changes` null) before it unmaps anything; mprotect and madvise only the VMAs whose
 * flags they change (`changes`: mprotect_fixup() and madvise_update_vma() leave the others alone,
 * unsplit: Mm.splitRange), one VMA after the other, and stop at the error (do_mprotect_pkey(),
 * madvise_walk_vmas()): a refused split at `hi` comes after the VMAs before the last were changed,
 * which the model does not do (NA). The split at `lo` a refused split at `hi` of the same VMA
 * follows stays in the kernel; hugetlb VMAs never merge, so it changes nothing one can observe and
 * the model leaves it out.
 */
export function hugetlbVmOpSplit(mm: Mm, lo: number, hi: number, changes: ((v: Vma) => boolean) | null = null): number {
  if (!hugetlbSplitRefused(lo, hi, splitsHugetlb(mm, lo, changes), splitsHugetlb(mm, hi, changes))) return OK;
  if (changes === null || (!hugetlbMaySplitAt(lo) && splitsHugetlb(mm, lo, changes))) return EINVAL;
  const last = mm.findVma(hi)!;
  for (const v of mm.vmas) if (v.end > lo && v.start < last.start && changes(v)) return NA;
  return EINVAL;
}

/** Would the call split a hugetlb VMA at `at` (one that maps `at`, starts before it, and whose flags it changes)? */
function splitsHugetlb(mm: Mm, at: number, changes: ((v: Vma) => boolean) | null): boolean {
  const v = mm.findVma(at);
  return v !== null && v.start !== at && (v.flags & VM_HUGETLB) !== 0 && (changes === null || changes(v));
}

/**
 * hugetlb_reserve_pages() for a new private hugetlb VMA: one reservation per huge page, taken from
 * the free pages nobody reserved yet (hugetlb_acct_memory / gather_surplus_pages, no overcommit);
 * the VMA owns them (HPAGE_RESV_OWNER). OOM (ENOMEM) when the pool is too small; NA for a shared
 * mapping (hugetlbfs page cache, not modelled).
 */
export function hugetlbReservePages(k: Kernel, vma: Vma): number {
  if (vma.flags & VM_MAYSHARE) return NA;
  const need = (vma.end - vma.start) / HPAGE_PMD_NR;
  const pool = k.hugetlb;
  if (pool.free - pool.resv < need) {
    if (k.tracing) k.emit('oom', -1, vma.start, -1, -1, `hugetlb_reserve_pages: ${need} huge page(s) asked, ${pool.free - pool.resv} free and unreserved (config.hugepages): mmap fails with ENOMEM`);
    return OOM;
  }
  pool.resv += need;
  pool.everReserved = true;
  vma.hugetlb = { owner: true, unmapped: false, consumed: [] };
  return OK;
}

/** The reservations of an owner VMA over [lo, hi) that no fault consumed yet. */
function unconsumed(vma: Vma, lo: number, hi: number): number {
  const r = vma.hugetlb;
  if (r === null || !r.owner) return 0;
  let n = 0;
  for (let a = lo; a < hi; a += HPAGE_PMD_NR) if (!r.consumed.includes(a)) n++;
  return n;
}

/** hugetlb_vm_op_close(): the VMA goes (munmap, exit); its unconsumed reservations go back to the pool. */
export function hugetlbVmOpClose(k: Kernel, vma: Vma): void {
  k.hugetlb.resv -= unconsumed(vma, vma.start, vma.end);
}

/** The reservations live VMAs hold (the accounting checker compares it with resv_huge_pages). */
export function hugetlbReservedByVmas(k: Kernel): number {
  // Every VMA's reservation is one an mmap made (a split or fork copies it or owns none): with
  // none made, no VMA has one, and the check after every step need not look at every VMA.
  if (!k.hugetlb.everReserved) return 0;
  let n = 0;
  for (const mm of k.mms) if (mm.alive) for (const v of mm.vmas) if (v.flags & VM_HUGETLB) n += unconsumed(v, v.start, v.end);
  return n;
}

/**
 * alloc_hugetlb_folio() (alloc_huge_page before 6.3): a zeroed huge page for vma at haddr. The
 * owner's first fault of a page consumes its reservation; everything else (a child, a COW with
 * avoid_reserve, fork's early copy) needs a page nobody reserved (dequeue_hugetlb_folio_vma:
 * free_huge_pages - resv_huge_pages > 0). -1 when none: -ENOSPC.
 */
function allocHugetlbFolio(k: Kernel, vma: Vma, haddr: number, avoidReserve: boolean): number {
  const pool = k.hugetlb;
  const r = vma.hugetlb;
  const useResv = !avoidReserve && r !== null && r.owner && !r.consumed.includes(haddr);
  if (!useResv && pool.free - pool.resv <= 0) return -1;
  const head = k.frames.allocLarge(PG_ANON | PG_HUGETLB);
  pool.used++;
  if (useResv) {
    pool.resv--;
    r.consumed.push(haddr);
  }
  // hugetlb_add_new_anon_rmap(): a new anonymous huge page is exclusive (5.19+), mapped once.
  if (k.profile.anonExclusive) k.frames.setFlags(head, k.frames.flags[head]! | PG_ANON_EXCLUSIVE);
  k.frames.entireMapcount[head >>> 9] = 1;
  return head;
}

/** Install a huge PTE at the PMD-level slot s (set_huge_pte_at + hugetlb_count_add). */
function setHugePte(k: Kernel, mm: Mm, s: number, head: number, bits: number): void {
  setPte(k, s, head, bits | PMD_LEAF);
  mm.hugePmds++;
  mm.hugetlbPages += HPAGE_PMD_NR;
}

/** make_huge_pte() for a private mapping's new page, writable when the fault was a write (hugetlb_no_page, hugetlb_wp's copy, fork's early-COW copy). */
function newHugePteBits(vma: Vma, write: boolean): number {
  if (!(vma.flags & VM_READ)) return PTE_PRESENT | PTE_PROTNONE;
  return PTE_PRESENT | PTE_YOUNG | PTE_SOFT_DIRTY | (write && vma.flags & VM_WRITE ? PTE_WRITE | PTE_DIRTY : 0);
}

/**
 * hugetlb_fault(): a fault at vpn in a hugetlb VMA. An empty huge PTE goes to hugetlb_no_page(); a
 * write or unshare fault on a write-protected one to hugetlb_wp(); otherwise the PTE is only
 * marked young (and dirty). Returns OK, SIGBUS or NA.
 */
export function hugetlbFault(k: Kernel, mm: Mm, vma: Vma, vpn: number, write: boolean, unshare: boolean): number {
  if (vma.flags & VM_MAYSHARE) return NA;
  const haddr = vpn - (vpn & (HPAGE_PMD_NR - 1));
  const s = pmdSlotAlloc(k, mm, haddr);
  const t = k.tables;
  const bits = t.bits[s]!;
  if (bits === 0) {
    if (t.entry[s] !== 0) {
      k.emit('bug', mm.id, vpn, -1, -1, 'a PTE table under a hugetlb mapping');
      return NA;
    }
    if (unshare) return OK; // nothing mapped: nothing to unshare
    return hugetlbNoPage(k, mm, vma, vpn, s, write);
  }
  if ((write || unshare) && !(bits & PTE_WRITE)) return hugetlbWp(k, mm, vma, vpn, s, unshare);
  t.setBits(s, bits | PTE_YOUNG | (write ? PTE_DIRTY | PTE_SOFT_DIRTY : 0));
  return OK;
}

/**
 * hugetlb_no_page(): the first touch of a huge page. A VMA the reservation owner took a page
 * from (HPAGE_RESV_UNMAPPED) gets SIGBUS ("killed due to inadequate hugepage pool"); else a
 * zeroed page from the pool (the owner's reservation, or a free unreserved page; none: SIGBUS),
 * mapped read-only on a read fault and writable on a write (the COW without a second fault).
 */
function hugetlbNoPage(k: Kernel, mm: Mm, vma: Vma, vpn: number, s: number, write: boolean): number {
  const haddr = vpn - (vpn & (HPAGE_PMD_NR - 1));
  if (vma.hugetlb?.unmapped) {
    k.emit('segv', mm.id, vpn, -1, -1, 'hugetlb_no_page: the reservation owner took this mapping\'s huge page back (HPAGE_RESV_UNMAPPED): SIGBUS, the process is killed');
    return SIGBUS;
  }
  const head = allocHugetlbFolio(k, vma, haddr, false);
  if (head < 0) {
    k.emit('oom', mm.id, vpn, -1, -1, 'hugetlb_no_page: no free huge page in the pool (config.hugepages) and no reservation: SIGBUS, the process is killed');
    return SIGBUS;
  }
  anonVmaPrepare(k, mm, vma);
  setHugePte(k, mm, s, head, newHugePteBits(vma, write));
  if (k.tracing) k.emit('anon-fault', mm.id, vpn, head, -1, `hugetlb_no_page: ${write ? 'write' : 'read'} fault on an untouched hugetlb page: zeroed 2 MiB huge page ${head} from the pool${vma.hugetlb?.owner ? ' (the mmap\'s reservation)' : ''}${write ? '' : ', mapped read-only'}`);
  return OK;
}

/**
 * hugetlb_wp() (hugetlb_cow() before 5.19): a write (or unshare) fault on a write-protected huge
 * PTE. Reuse when the folio is mapped once (folio_mapcount == 1) in every era - never a refcount
 * test, so a FOLL_GET reference (vmsplice) does not stop it; reuse sets PG_anon_exclusive (5.19+)
 * and, unless unsharing, makes the PTE writable. Otherwise copy into a page from the pool outside
 * the reserves; when none is free the reservation owner takes the page back from every other
 * mapper (unmap_ref_private) and reuses it, anyone else gets SIGBUS.
 */
function hugetlbWp(k: Kernel, mm: Mm, vma: Vma, vpn: number, s: number, unshare: boolean): number {
  const t = k.tables;
  const f = k.frames;
  const haddr = vpn - (vpn & (HPAGE_PMD_NR - 1));
  for (let tries = 0; tries < 2; tries++) {
    const head = t.entry[s]!;
    const mapcount = f.entireMapcount[head >>> 9]!;
    if (mapcount === 1) {
      if (k.profile.anonExclusive) f.setFlags(head, f.flags[head]! | PG_ANON_EXCLUSIVE);
      if (unshare) {
        if (k.tracing) k.emit('wp-reuse', mm.id, vpn, head, -1, `hugetlb_wp (unshare): huge page ${head} is mapped once: exclusive now, the PTE stays read-only`);
        return OK;
      }
      if (vma.flags & VM_WRITE) t.setBits(s, t.bits[s]! | PTE_WRITE | PTE_DIRTY | PTE_SOFT_DIRTY | PTE_YOUNG);
      k.stats.reuses++;
      k.emit('wp-reuse', mm.id, vpn, head, -1, k.tracing
        ? `hugetlb_wp: huge page ${head} has mapcount 1: reused in place (refcount ${f.folioRefcount(head)}: other references do not count for hugetlb)`
        : '');
      return OK;
    }
    const owner = vma.hugetlb?.owner === true;
    const n = allocHugetlbFolio(k, vma, haddr, owner);
    if (n < 0) {
      if (owner && tries === 0) {
        unmapRefPrivate(k, mm, head, haddr);
        continue;
      }
      if (k.tracing) k.emit('oom', mm.id, vpn, head, -1, `hugetlb_wp: mapcount ${mapcount}, a copy needs a free huge page and the pool has none: SIGBUS, the process is killed`);
      return SIGBUS;
    }
    f.copyValues(n, head, HPAGE_PMD_NR);
    t.setEntry(s, n);
    // make_huge_pte(vma, page, !unshare) (hugetlb_wp, 5.19 and 6.18): a write's copy writable and
    // dirty (a write fault's VMA is writable); an unshare's read-only and clean (huge_pte_wrprotect,
    // no pte_mkdirty), as wp_page_copy's unshare copy.
    t.setBits(s, PMD_LEAF | newHugePteBits(vma, !unshare));
    anonVmaPrepare(k, mm, vma);
    // hugetlb_remove_rmap() + folio_put() of the old page.
    f.entireMapcount[head >>> 9]!--;
    k.putPage(head);
    k.stats.cowCopies += HPAGE_PMD_NR;
    if (k.tracing) k.emit('wp-copy', mm.id, vpn, head, n, `${unshare ? 'hugetlb_wp (unshare)' : 'hugetlb_wp'}: huge page ${head} has mapcount ${mapcount}: copied to huge page ${n}${owner ? ' (outside the owner\'s reservation)' : ''}`);
    return OK;
  }
  return SIGBUS;
}

/**
 * unmap_ref_private(): the reservation owner could not copy: the huge page at haddr is unmapped
 * from every other process mapping it privately without a reservation of its own, and their
 * VMAs are marked HPAGE_RESV_UNMAPPED (their next fault there is a SIGBUS).
 */
function unmapRefPrivate(k: Kernel, mm: Mm, head: number, haddr: number): void {
  for (const other of k.mms) {
    if (!other.alive || other === mm) continue;
    const v = other.findVma(haddr);
    if (v === null || !(v.flags & VM_HUGETLB) || v.flags & VM_MAYSHARE || v.hugetlb?.owner) continue;
    const s = pmdLeafSlot(k, other, haddr);
    if (s < 0 || k.tables.entry[s] !== head) continue;
    zapHugePte(k, other, s);
    v.hugetlb = { owner: false, unmapped: true, consumed: v.hugetlb?.consumed ?? [] };
    k.emit('zap', other.id, haddr, head, -1, 'unmap_ref_private: the reservation owner found the pool empty and takes its huge page back from this process (HPAGE_RESV_UNMAPPED: its next access here is a SIGBUS)');
  }
}

/** Clear the huge PTE at s and drop its mapping and reference (huge_ptep_get_and_clear + hugetlb_remove_rmap + put). */
function zapHugePte(k: Kernel, mm: Mm, s: number): void {
  const head = k.tables.entry[s]!;
  const prot = k.tables.bits[s]!;
  setPte(k, s, 0, 0);
  mm.hugePmds--;
  mm.hugetlbPages -= HPAGE_PMD_NR;
  if (prot & PTE_PRESENT) {
    k.frames.entireMapcount[head >>> 9]!--;
    k.putPage(head);
  }
}

/** __unmap_hugepage_range() over [lo, hi) of a hugetlb VMA (munmap, exit): every huge PTE dropped. Returns pages unmapped. */
export function unmapHugepageRange(k: Kernel, mm: Mm, lo: number, hi: number): number {
  let n = 0;
  for (let a = lo - (lo & (HPAGE_PMD_NR - 1)); a < hi; a += HPAGE_PMD_NR) {
    const s = pmdLeafSlot(k, mm, a);
    if (s < 0) continue;
    zapHugePte(k, mm, s);
    n += HPAGE_PMD_NR;
  }
  return n;
}

/**
 * hugetlb_change_protection() (mprotect): each huge PTE takes the VMA's new vm_page_prot, which for
 * a private mapping is never writable (huge_pte_modify): read-only, or PROT_NONE. The next write
 * faults and reuses or copies (hugetlb_wp); there is no mprotect shortcut to writable for hugetlb.
 */
export function hugetlbChangeProtection(k: Kernel, mm: Mm, vma: Vma): void {
  const t = k.tables;
  for (let a = vma.start; a < vma.end; a += HPAGE_PMD_NR) {
    const s = pmdLeafSlot(k, mm, a);
    if (s < 0) continue;
    const old = t.bits[s]!;
    t.setBits(s, vma.flags & VM_READ ? old & ~(PTE_WRITE | PTE_PROTNONE) : (old & ~PTE_WRITE) | PTE_PROTNONE);
  }
}

/**
 * copy_hugetlb_page_range() (fork): each huge PTE of the parent's VMA is shared with the child,
 * both write-protected in a COW mapping (refcount and mapcount +1, PG_anon_exclusive cleared). From
 * 5.12 (4eae4efa2c29, hugetlbForkEarlyCow) a maybe-pinned page in an mm that has pinned (and, 5.19+,
 * exclusive: page_try_dup_anon_rmap refuses it) is copied for the child instead, from a free
 * unreserved page; none free: fork fails (OOM: ENOMEM, dup_mm's error). The child's VMA owns no
 * reservation (hugetlb_dup_vma_private).
 */
export function copyHugetlbPageRange(k: Kernel, src: Mm, dst: Mm, srcVma: Vma, dstVma: Vma): number {
  const t = k.tables;
  const f = k.frames;
  const cow = isCowMapping(srcVma.flags);
  const mayCopy = k.profile.hugetlbForkEarlyCow && cow && forkMayCopy(k, src);
  for (let a = srcVma.start; a < srcVma.end; a += HPAGE_PMD_NR) {
    const s = pmdLeafSlot(k, src, a);
    if (s < 0) continue;
    const head = t.entry[s]!;
    const bits = t.bits[s]!;
    // hugetlb_try_dup_anon_rmap(): the test copy_present_pte() makes of a small page (forkMustCopy).
    if (mayCopy && forkMustCopy(k, bits, head)) {
      const n = allocHugetlbFolio(k, dstVma, a, true);
      if (n < 0) {
        k.emit('oom', src.id, a, head, -1, 'copy_hugetlb_page_range: a maybe-pinned huge page must be copied for the child and no free huge page is left: fork fails');
        return OOM;
      }
      f.copyValues(n, head, HPAGE_PMD_NR);
      // hugetlb_install_folio(): the copy is the child's, mapped writable.
      setHugePte(k, dst, pmdSlotAlloc(k, dst, a), n, newHugePteBits(dstVma, true));
      k.stats.earlyCow++;
      k.stats.cowCopies += HPAGE_PMD_NR;
      if (k.tracing) k.emit('early-cow', src.id, a, head, n, `copy_hugetlb_page_range: huge page ${head} is maybe pinned (pin count ${f.pincount[head >>> 9]}) in an mm that has pinned: the child gets a copy now, huge page ${n}`);
      continue;
    }
    f.addRefcount(head, 1);
    f.entireMapcount[head >>> 9]!++;
    f.setFlags(head, f.flags[head]! & ~PG_ANON_EXCLUSIVE);
    let cbits = bits & ~PMD_LEAF;
    if (cow && bits & PTE_WRITE) {
      t.setBits(s, bits & ~PTE_WRITE);
      cbits &= ~PTE_WRITE;
    }
    setHugePte(k, dst, pmdSlotAlloc(k, dst, a), head, cbits);
  }
  return OK;
}

/** The child's VMA of a hugetlb mapping at fork: no reservation of its own (hugetlb_dup_vma_private). */
export function hugetlbDupVmaPrivate(vma: Vma): void {
  if (vma.hugetlb !== null) vma.hugetlb = { owner: false, unmapped: false, consumed: [] };
}

/** MAP_POPULATE of a hugetlb VMA: fault every huge page in (write faults when writable). Returns pages populated. */
export function hugetlbPopulate(k: Kernel, mm: Mm, vma: Vma): number {
  let done = 0;
  const write = (vma.flags & VM_WRITE) !== 0;
  for (let a = vma.start; a < vma.end; a += HPAGE_PMD_NR) {
    if (hugetlbFault(k, mm, vma, a, write, false) !== OK) break;
    done += HPAGE_PMD_NR;
    mm.minflt++;
    k.stats.faults++;
  }
  return done;
}
