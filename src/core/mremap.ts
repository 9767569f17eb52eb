// mremap(MREMAP_MAYMOVE | MREMAP_FIXED) of anonymous memory to a fresh range (mm/mremap.c):
// move_vma() = copy_vma() + move_page_tables() + do_munmap() of the old range. The PTEs move,
// they are not copied: frames, their refcount, mapcount, PG_anon_exclusive and pins stay as
// they were, swap entries keep their slot, RSS is unchanged; page tables are allocated at the
// destination. Page tables move one PMD extent at a time: a PTE table moves whole when the extent
// covers it on both sides (move_normal_pmd); a huge PMD (THP) moves as one entry when the extent is
// a whole 2 MiB on both sides (move_huge_pmd), else it is split first and its PTEs move
// (split_huge_pmd in move_page_tables). The moved sub-pages stay in their folio: refcount,
// mapcounts and pins are unchanged, and the folio is then mapped from two VMAs.
//
// Where NEW lands (getUnmappedArea, the model's pick, replayed by the oracle with MREMAP_FIXED):
// bottom-up after the last mapping, PMD-aligned when the range is 512 pages or more. So a whole
// aligned THP (buf[0..511] of a THP region) moves as a PMD; a part of one (buf[256..511]), or
// 512 pages not aligned in the source, is split and moves by PTEs.

import {
  EFAULT, NA, OK, OOM, PG_KSM, PMD_LEAF, PTE_MARKER, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_UFFD_WP, PTE_SPECIAL, PTRS_PER_TABLE, TABLE_MASK, TABLE_SHIFT, VM_MERGEABLE, VM_UFFD_WP,
} from './constants.js';
import { breakCowPte, breakCowRange } from './cowpt.js';
import { mmuNotify } from './exclusive.js';
import { handleVpn, type Kernel } from './kernel.js';
import { anonVmaTreeInsert, type Mm, type Vma } from './mm.js';
import { getUnmappedArea } from './mmap.js';
import { moveHugePmd, splitHugePmd } from './huge.js';
import { PMD_WP, pmdSlotAlloc, pmdSlotOf, pteTableAlloc } from './walk.js';
import { unmapRegion } from './zap.js';

export interface MremapResult {
  /** OK, EFAULT (the range is not one mapping), OOM (no address space left), NA (not modelled). */
  err: number;
  /** First page of the new range (reserved even when the move failed, so NEW names nothing mapped); -1 on OOM. */
  start: number;
  /** Entries (present, swap, device-exclusive) that changed place. */
  moved: number;
  /** PTE tables moved whole (move_normal_pmd). */
  tablesMoved: number;
  /** Huge PMDs moved whole (move_huge_pmd). */
  pmdsMoved?: number;
  /** With NA: what is not modelled. */
  why?: string;
}

/**
 * do_mremap() -> mremap_to() -> move_vma(): move pages [lo, hi) of mm to a fresh range. Before
 * 6.17 the range must lie in one VMA; from 6.17 (mremapMultiVma) it may span several, and the
 * gaps between them, each VMA moved on its own to the same offset in the new range.
 */
export function doMremap(k: Kernel, mm: Mm, lo: number, hi: number): MremapResult {
  const n = hi - lo;
  const start = getUnmappedArea(mm, n);
  if (start < 0) return { err: OOM, start: -1, moved: 0, tablesMoved: 0 };
  // check_prep_vma() / remap_is_valid(): old_address must be mapped; before 6.17 the whole
  // range must lie in that VMA ("We can't remap across vm area boundaries").
  const vma = mm.findVma(lo);
  if (vma === null || (hi > vma.end && !k.profile.mremapMultiVma)) {
    if (k.tracing) k.emit('note', mm.id, lo, -1, -1, `mremap: EFAULT, ${vma === null ? 'the first page is not mapped' : 'the range spans more than one mapping'}`);
    return { err: EFAULT, start, moved: 0, tablesMoved: 0 };
  }
  // The VMAs (their parts in [lo, hi)) to move, in address order.
  const parts = mm.vmas.filter((v) => v.end > lo && v.start < hi).map((v) => [Math.max(lo, v.start), Math.min(hi, v.end)] as const);
  // remap_move() -> vma_multi_allowed(): a VMA registered with userfaultfd (userfaultfd_armed)
  // moves only alone: as the first VMA with the range ending inside it, else EFAULT.
  const armed = parts.findIndex(([a]) => (mm.findVma(a)!.flags & VM_UFFD_WP) !== 0);
  if (armed === 0 && vma.end < hi) {
    k.emit('note', mm.id, lo, -1, -1, 'mremap: EFAULT, the range goes past a userfaultfd-registered mapping (vma_multi_allowed)');
    return { err: EFAULT, start, moved: 0, tablesMoved: 0 };
  }
  // A later registered VMA fails the call after the VMAs before it have moved.
  if (armed > 0) return { err: NA, start, moved: 0, tablesMoved: 0, why: 'mremap of several mappings with a userfaultfd-registered one after the first (remap_move moves the ones before it, then fails) is not modelled yet' };
  // prep_move_vma(): ksm_madvise(MADV_UNMERGEABLE) unmerges KSM pages in the range first.
  for (const [a, b] of parts) {
    if (!(mm.findVma(a)!.flags & VM_MERGEABLE)) continue;
    const ksm = hasKsmPage(k, mm, a, b);
    if (ksm === 'page') return { err: NA, start, moved: 0, tablesMoved: 0 };
    if (ksm === 'zero') return { err: NA, start, moved: 0, tablesMoved: 0, why: 'mremap of a mergeable range mapping the zero page with ksm_use_zero_pages on is not modelled yet (prep_move_vma unshares the zero pages KSM placed, 6.6+; the model does not mark them)' };
  }
  // move_page_tables(): mmu_notifier_invalidate_range_start(MMU_NOTIFY_UNMAP) on the old range.
  mmuNotify(k, mm.id, lo, hi, 'mremap');
  if (mm.cowPgtable && k.profile.cowptMremap === 'unshare') {
    // COW page tables: the shared tables of the old range are unshared before their PTEs move.
    const err = breakCowRange(k, mm, lo, hi);
    if (err !== OK) return { err, start, moved: 0, tablesMoved: 0 };
  }
  const c: MoveCount = { moved: 0, tablesMoved: 0, pmdsMoved: 0 };
  for (const [a, b] of parts) {
    // vma_has_uffd_without_event_remap(): asked of the old VMA before mremap_userfaultfd_prep().
    const clearUffdWp = k.profile.mremapClearsUffdWp && (mm.findVma(a)!.flags & VM_UFFD_WP) !== 0;
    const nv = copyVma(k, mm, mm.findVma(a)!, a, start + (a - lo), b - a);
    movePageTables(k, mm, nv, a, start + (a - lo), b - a, c, clearUffdWp);
  }
  moveHandles(k, mm, lo, hi, start);
  if (k.tracing) k.emit('note', mm.id, start, -1, -1,
    `mremap (move_page_tables): ${n} page(s)${parts.length > 1 ? ` of ${parts.length} mappings` : ''} moved to a new range; ${c.moved} entr${c.moved === 1 ? 'y' : 'ies'} moved${c.tablesMoved > 0 ? ` (${c.tablesMoved} whole PTE table(s))` : ''}${c.pmdsMoved > 0 ? ` (${c.pmdsMoved} huge PMD(s) moved whole, move_huge_pmd)` : ''}, no page copied`);
  // The old range is unmapped (do_vmi_munmap): what is left there is empty, its tables may go.
  unmapRegion(k, mm, lo, hi, 'mremap, then munmap of the old range');
  mm.mergeVmas(k);
  return { err: OK, start, moved: c.moved, tablesMoved: c.tablesMoved, pmdsMoved: c.pmdsMoved };
}

/** Does a present PTE of [lo, hi) map a KSM page ('page'), or the zero page where KSM may have placed it ('zero')? */
function hasKsmPage(k: Kernel, mm: Mm, lo: number, hi: number): 'page' | 'zero' | null {
  const t = k.tables;
  for (let a = lo; a < hi; a++) {
    const ps = pmdSlotOf(k, mm, a);
    const table = ps < 0 || t.bits[ps]! & PMD_LEAF ? 0 : t.entry[ps]!;
    if (table === 0) continue;
    const slot = (table << TABLE_SHIFT) | (a & TABLE_MASK);
    const bits = t.bits[slot]!;
    if (bits & PTE_PRESENT && !(bits & PTE_SPECIAL) && k.frames.flags[t.entry[slot]!]! & PG_KSM) return 'page';
    // A zero-page PTE KSM may have placed (replaceWithZeroPage): the model cannot tell.
    if (bits & PTE_PRESENT && bits & PTE_SPECIAL && t.entry[slot] === 0 && k.config.ksmUseZeroPages === true) return 'zero';
  }
  return null;
}

/**
 * copy_vma(): the VMA of the new range: the old one's flags (VM_DONTCOPY, VM_WIPEONFORK,
 * VM_SOFTDIRTY as they were), its anon_vma (anon_vma_clone) and its pgoff, so anonymous pages
 * keep their index; a shared mapping keeps its object and offset.
 */
function copyVma(k: Kernel, mm: Mm, vma: Vma, lo: number, start: number, n: number): Vma {
  const nv = vma.clone(vma.shm);
  nv.start = start;
  nv.end = start + n;
  nv.shmOffset = vma.shmOffset + (lo - vma.start);
  // An anonymous mapping never faulted (no anon_vma) takes the pgoff of its new address, "to
  // increase its chance of merging"; else it keeps the page offset of the moved range.
  nv.pgoffShift = vma.shm === null && !vma.anonVma ? 0 : vma.pgoffShift + (lo - start);
  if (nv.shm) nv.shm.users++;
  anonVmaTreeInsert(k, nv); // copy_vma() -> anon_vma_clone(new_vma, vma); a merge re-inserts below
  mm.insertVma(nv);
  // vma_merge_new_range(): the new range merges with a neighbour that has the same flags (so the
  // same userfaultfd registration) and a page offset lining up. That neighbour may be the
  // source mapping itself (no anon_vma, the new range right after it): copy_vma() then hands
  // back the source VMA ("source vma may have been merged into new_vma").
  mm.mergeVmas(k);
  const merged = mm.findVma(start)!;
  // copy_vma_and_data() -> mremap_userfaultfd_prep(new_vma): without UFFD_FEATURE_EVENT_REMAP
  // (not modelled) userfaultfd_reset_ctx() drops the context of the VMA copy_vma() returned, the
  // merged one as a whole: a registered source merged with its new range ends unregistered.
  if (merged.flags & VM_UFFD_WP && merged.end - merged.start > n) {
    if (k.tracing) k.emit('note', mm.id, merged.start, -1, -1, `mremap: the new range merged with a registered mapping (copy_vma), whose ${merged.end - merged.start} page(s) all lose their userfaultfd registration (mremap_userfaultfd_prep)`);
  }
  merged.flags &= ~VM_UFFD_WP;
  return merged;
}

interface MoveCount {
  moved: number;
  tablesMoved: number;
  pmdsMoved: number;
}

/** move_page_tables(): one PMD extent at a time (get_extent: up to the next PMD boundary of either range). */
function movePageTables(k: Kernel, mm: Mm, nv: Vma, from: number, to: number, n: number, c: MoveCount, clearUffdWp: boolean): void {
  for (let done = 0; done < n; ) {
    const o = from + done;
    const d = to + done;
    const extent = Math.min(n - done, PTRS_PER_TABLE - (o & TABLE_MASK), PTRS_PER_TABLE - (d & TABLE_MASK));
    done += extent;
    movePmdExtent(k, mm, nv, o, d, extent, c, clearUffdWp);
  }
}

/**
 * One PMD extent: a huge PMD moves whole (move_huge_pmd) when the extent is 2 MiB on both sides,
 * else it is split (split_huge_pmd) and its PTEs move; a PTE table moves whole (move_normal_pmd,
 * HAVE_MOVE_PMD, x86-64) when it is a whole table on both sides, else move_ptes(). `clearUffdWp`
 * (mremapClearsUffdWp, a registered old VMA): the moved entries lose their uffd-wp state, and a
 * PTE table never moves whole.
 */
function movePmdExtent(k: Kernel, mm: Mm, nv: Vma, o: number, d: number, extent: number, c: MoveCount, clearUffdWp: boolean): void {
  const t = k.tables;
  // get_old_pmd(): nothing mapped there, nothing to move (and nothing allocated at the destination).
  // (The huge zero PMD has entry 0 and the leaf bit.)
  const old = pmdSlotOf(k, mm, o);
  if (old < 0 || (t.entry[old] === 0 && !(t.bits[old]! & PMD_LEAF))) return;
  const nps = pmdSlotAlloc(k, mm, d); // alloc_new_pmd()
  if (t.bits[pmdSlotOf(k, mm, o)]! & PMD_LEAF) {
    const ops = pmdSlotOf(k, mm, o);
    if (extent === PTRS_PER_TABLE && moveHugePmd(k, ops, nps, clearUffdWp)) {
      c.moved += PTRS_PER_TABLE;
      c.pmdsMoved++;
      return;
    }
    splitHugePmd(k, mm, ops, o, 'mremap of part of a huge PMD (move_page_tables): split, its PTEs move');
  }
  const ops = pmdSlotOf(k, mm, o);
  const table = t.entry[ops]!;
  if (extent === PTRS_PER_TABLE && t.entry[nps] === 0 && !clearUffdWp) {
    // move_normal_pmd(): the PMD entry changes place; pmd_populate() makes a fresh, writable one.
    // The PTEs are untouched, so they are not marked soft-dirty.
    t.setPte(nps, table, 0);
    t.addFilled(nps >>> TABLE_SHIFT, 1);
    t.setPte(ops, 0, 0);
    t.addFilled(ops >>> TABLE_SHIFT, -1);
    c.moved += t.filled[table]!;
    c.tablesMoved++;
    return;
  }
  // The destination's table, shared with another mm, is unshared before it changes (as any PTE change).
  if (mm.cowPgtable && k.profile.cowptMremap === 'unshare' && t.entry[nps] !== 0 && t.bits[nps]! & PMD_WP) breakCowPte(k, mm, nv, d);
  const dst = pteTableAlloc(k, mm, d); // pte_alloc()
  const src = t.entry[pmdSlotOf(k, mm, o)]!;
  const sb = src << TABLE_SHIFT;
  const db = dst << TABLE_SHIFT;
  let moved = 0;
  // move_ptes(): each entry is taken out of the old table and set in the new one, soft-dirty
  // (move_soft_dirty_pte: pte_mksoft_dirty, or pte_swp_mksoft_dirty for swap-format entries).
  for (let i = 0; i < extent; i++) {
    const s = sb | ((o + i) & TABLE_MASK);
    const bits = t.bits[s]!;
    if (bits === 0) continue;
    const pfn = t.entry[s]!;
    t.setPte(s, 0, 0);
    // A uffd-wp marker is dropped (pte_clear); other entries lose the bit (pte_clear_uffd_wp, pte_swp_clear_uffd_wp).
    if (clearUffdWp && bits & PTE_MARKER) {
      t.addFilled(src, -1);
      continue;
    }
    const dd = db | ((d + i) & TABLE_MASK);
    t.setPte(dd, pfn, (clearUffdWp ? bits & ~PTE_UFFD_WP : bits) | PTE_SOFT_DIRTY);
    moved++;
  }
  t.addFilled(src, -moved);
  t.addFilled(dst, moved);
  c.moved += moved;
}

/** GUP handles of mm on moved pages: they keep their frames; the page is now at its new address. */
function moveHandles(k: Kernel, mm: Mm, lo: number, hi: number, start: number): void {
  for (const h of k.handles) {
    if (h.released || h.mm !== mm.id) continue;
    for (let i = 0; i < h.frames.length; i++) {
      const v = handleVpn(h, i);
      if (v < lo || v >= hi) continue;
      if (!h.vpns) h.vpns = Int32Array.from(h.frames, (_, j) => h.vpn + j);
      h.vpns[i] = start + (v - lo);
    }
  }
}
