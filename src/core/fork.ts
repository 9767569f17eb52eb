// fork(): dup_mmap -> copy_page_range -> copy_pte_range -> copy_present_pte / copy_present_page.
//
// Written once for the two ways a fork runs: synchronously (dupMmap: forkBegin, the copy loop
// mapping by mapping and table by table, forkEnd) and as separate atomic steps (`fork &`, stepFork,
// driven by tasks.ts): both run the same begin, the same start of each mapping's copy in address
// order (copyPageRangeBegin: a hugetlb mapping is copied whole there), the same per-PTE functions (forkCheckPte; then
// copyPresentPte, or the early-COW copy's frame allocated with the page-table lock dropped, forkAllocCopy,
// and filled and installed when the PTE is decided again, forkInstallCopy) and the same end. The
// synchronous loop calls them in a plain loop over each PTE table (nothing allocated per page);
// the split path calls one of them per step, so other threads run in the windows the kernel
// leaves open (lockless gup-fast against fork's write-protect, seed 000's lock drop).
//
// A fork that fails (ENOMEM: no frame or huge page for an early-COW copy) stops at the mapping
// it failed in, as dup_mmap() does: the mappings before it are copied already (their COW pages
// shared and write-protected in the parent, PG_anon_exclusive cleared), those after it are not
// touched; the child is then torn down (forkFailed), which drops its references and tables.

import {
  isCowMapping, LEVEL_SPAN, NA, OK, OOM, PG_ANON, PG_LARGE, PG_SHMEM_SHIFT, PTE_DEVICE_EXCLUSIVE, PTE_PRESENT, PTE_SWAP, TABLE_SHIFT, VM_DONTCOPY, VM_SHARED,
  VM_WIPEONFORK,
  PTE_MARKER, VM_HUGETLB, VM_UFFD_WP,
} from './constants.js';
import type { Kernel, TaskState } from './kernel.js';
import { anonVmaTreeInsert, newAnonId, type Mm, type Vma } from './mm.js';
import { pmdLeafSlot, pteSlot, pteSlotAlloc, pteTableAlloc, pteTableOf, tableDepthOf, tablesAllocTo } from './walk.js';
import { copyHugePmd, HUGE_PMD_SHARED, splitAllHugePmds } from './huge.js';
import { copyHugetlbPageRange, hugetlbDupVmaPrivate } from './hugetlb.js';
import { exitMmap } from './zap.js';
import { copySwapPte } from './swapcache.js';
import { mmuNotify, restoreExclusivePte } from './exclusive.js';
import { shareTables } from './cowpt.js';
import { addRss, allocCopy, copyPresentPte, forkMayCopy, forkMustCopy, installCopiedPage } from './page.js';
import { dupUserfaultfd, forkKeepsUffdWp } from './userfaultfd.js';
import { objectArray } from './copy.js';

export interface ForkResult {
  /** OK, OOM (fork failed with ENOMEM: the child is gone) or NA. */
  err: number;
  child: Mm | null;
}

/** A fork in progress: the state both the synchronous loop and the split path keep. */
export interface ForkTask {
  kind: 'fork';
  parent: number;
  child: number;
  phase: 'begin' | 'check' | 'apply' | 'alloc' | 'install' | 'next' | 'end';
  /** Pairs of (parent VMA index, child VMA index) whose page tables are copied (copy_page_range), in address order, and the page being copied. */
  pairs: [number, number][];
  pair: number;
  /** The pairs whose copy has begun (copyPageRangeBegin ran for pairs[0 .. begun - 1]). */
  begun: number;
  vpn: number;
  /** The parent PTE as the check step saw it, and the early-COW copy's frame allocated while the lock was dropped. */
  seenBits: number;
  seenPfn: number;
  newPfn: number;
  err: number;
}

export function startFork(parent: Mm): ForkTask {
  return newForkTask(parent.id);
}

/** A fork not begun: every field, in one order (startFork and cloneTask make each ForkTask here: one hidden class). */
export function newForkTask(parent: number): ForkTask {
  return { kind: 'fork', parent, child: -1, phase: 'begin', pairs: objectArray(), pair: 0, begun: 0, vpn: 0, seenBits: 0, seenPfn: 0, newPfn: -1, err: OK };
}

/**
 * dup_mmap()'s VMA loop (mmap_lock held for write), its first half: the child's mm and its
 * mappings (all of them at once, as 6.8+'s __mt_dup; a failed fork tears them all down, so
 * which of them existed is not seen), and the list of mappings whose page tables are to be
 * copied (vma_needs_copy), in address order: the copy itself is copyPageRangeBegin's and the
 * PTE walk's, mapping by mapping (write_protect_seq is odd only while a COW mapping's tables are
 * copied: copyPageRangeBegin to copyPageRangeEnd).
 */
export function forkBegin(k: Kernel, t: ForkTask, cowpt: boolean, stepped = false): Mm {
  const parent = k.mms[t.parent]!;
  const child = k.newMm();
  child.mmapNext = parent.mmapNext;
  t.child = child.id;
  // CLONE_COW_PGTABLE / use_odf: MMF_COW_PGTABLE on both, never cleared.
  if (cowpt && k.profile.cowPageTables !== 'none') parent.cowPgtable = true;
  // Neither COW-page-table design shares PMD leaves, and the split-step fork copies PTE by PTE:
  // the model splits the parent's huge PMDs first for both (copy_huge_pmd there is a later step).
  if (parent.cowPgtable || stepped) splitAllHugePmds(k, parent, 'fork with COW page tables or in steps');
  child.cowPgtable = parent.cowPgtable;
  // ksm_fork(): the child of a registered mm joins ksmd's list too.
  if (parent.ksmSlot > 0) k.ksmEnter(child);
  for (let i = 0; i < parent.vmas.length; i++) {
    const vma = parent.vmas[i]!;
    if (vma.flags & VM_DONTCOPY) continue; // MADV_DONTFORK: the child has no mapping here
    const tmp = vma.clone(vma.shm);
    dupUserfaultfd(parent, child, tmp);
    if (vma.shm) vma.shm.users++;
    // anon_vma_fork(): the child's mapping gets its own anon_vma, its chain linking the parent's too.
    if (tmp.anonVma) {
      tmp.anonId = newAnonId();
      tmp.uncowedParents = true;
    }
    child.vmas.push(tmp);
    hugetlbDupVmaPrivate(tmp);
    if (vma.flags & VM_WIPEONFORK) {
      tmp.anonVma = false; // MADV_WIPEONFORK: the child's mapping starts empty, with no anon_vma
      tmp.anonId = 0;
      tmp.uncowedParents = false;
      continue;
    }
    // anon_vma_fork() -> anon_vma_clone(): the child's VMA enters the parent's anon_vma trees
    // (and its own) now, after every VMA there, the parent's among them.
    anonVmaTreeInsert(k, tmp);
    // vma_needs_copy(): only mappings with an anon_vma have PTEs worth copying; from 5.19 also a
    // child mapping registered for uffd-wp (c56d1b62cce8: its PTEs hold the protection).
    if (!vma.anonVma && !(k.profile.uffdWpShmem && tmp.flags & VM_UFFD_WP)) continue;
    t.pairs.push([i, child.vmas.length - 1]);
  }
  return child;
}

/**
 * copy_page_range() for pairs[p], its start: for COW mappings the MMU notifier tells devices
 * first (PROTECTION_PAGE) and write_protect_seq becomes odd (raw_write_seqcount_begin, 57efa1fe5957:
 * per COW mapping, so a gup-fast between two mappings' copies, or during a shared mapping's, sees
 * it even; copyPageRangeEnd makes it even again); a hugetlb mapping is copied whole here (copy_hugetlb_page_range: no
 * PTE to step through; it may fail, t.err); with COW page tables the PTE tables are shared (what
 * is not shared, ODF's read-only mappings and tables a mapping covers in part from d8ccd3c, is
 * copied as usual; a uffd-wp mapping too: its bits are decided per PTE); otherwise a child PTE
 * table for each table the parent has there (copy_pte_range's pte_alloc). True when the
 * mapping's PTEs are to be walked (copyPageRange, or the split path's steps); false when it is
 * done, or failed.
 */
export function copyPageRangeBegin(k: Kernel, t: ForkTask, p: number): boolean {
  const parent = k.mms[t.parent]!;
  const child = k.mms[t.child]!;
  const [pi, ci] = t.pairs[p]!;
  const vma = parent.vmas[pi]!;
  const cow = isCowMapping(vma.flags);
  if (cow) mmuNotify(k, parent.id, vma.start, vma.end, 'fork');
  if (vma.flags & VM_HUGETLB) {
    // copy_hugetlb_page_range() brackets its copy of a COW mapping with write_protect_seq itself
    // from 5.19 ("mm/hugetlb: take src_mm->write_protect_seq in copy_hugetlb_page_range()", patch 2 of the
    // PG_anon_exclusive series; before, hugetlb left it alone).
    const seq = cow && k.profile.anonExclusive;
    if (seq) parent.writeProtectSeq++;
    t.err = copyHugetlbPageRange(k, parent, child, vma, child.vmas[ci]!);
    if (seq) parent.writeProtectSeq++;
    return false;
  }
  if (cow) {
    parent.writeProtectSeq++; // raw_write_seqcount_begin(&src_mm->write_protect_seq)
  }
  if (parent.cowPgtable && cow && !(vma.flags & VM_UFFD_WP) && shareTables(k, parent, child, vma)) {
    copyPageRangeEnd(k, t);
    return false;
  }
  // copy_p4d_range() ... copy_pte_range(): the child gets a table at each level where the parent
  // has one over the mapping, before the walk looks at the entries below: pud_alloc() once the
  // parent's PGD entry is present, pmd_alloc() once its PUD entry is, pte_alloc() once its PMD
  // entry points at a PTE table; so a PUD or PMD table over nothing present is allocated too. A
  // table this child already shares (a second VMA in a COW-shared table) is not copied again.
  for (let a = vma.start; a < vma.end; a = a - (a % 512) + 512) {
    const depth = tableDepthOf(k, parent, a);
    if (depth < 3) tablesAllocTo(k, child, a, depth);
    else if (pteTableOf(k, child, a) !== pteTableOf(k, parent, a)) pteTableAlloc(k, child, a);
  }
  return true;
}

/**
 * copy_page_range()'s end, for the mapping being copied: a COW mapping's write_protect_seq even
 * again (raw_write_seqcount_end; only that mapping's copy made it odd, so odd means it is ours:
 * fork holds mmap_lock for write).
 */
export function copyPageRangeEnd(k: Kernel, t: ForkTask): void {
  const parent = k.mms[t.parent]!;
  if (!(parent.writeProtectSeq & 1)) return;
  parent.writeProtectSeq++;
}

/** The end of dup_mmap's copy (every mapping's copy_page_range has ended: write_protect_seq is even). */
export function forkEnd(k: Kernel, t: ForkTask): void {
  copyPageRangeEnd(k, t);
}

/**
 * The fork failed (ENOMEM, or a PTE kind the model does not copy) in pairs[t.pair]: the child is
 * torn down (dup_mm -> mmput -> exit_mmap), which drops what it took; what the copy did to the
 * parent's mappings before that one (write-protected PTEs, PG_anon_exclusive cleared) stays.
 */
export function forkFailed(k: Kernel, t: ForkTask, err: number): void {
  const parent = k.mms[t.parent]!;
  copyPageRangeEnd(k, t); // copy_page_range() ends its bracket on failure too
  exitMmap(k, k.mms[t.child]!);
  t.child = -1;
  t.err = err;
  const vma = t.pair < t.pairs.length ? parent.vmas[t.pairs[t.pair]![0]] : undefined;
  const where = vma ? ` in the mapping at 0x${(vma.start * 4096).toString(16)}${t.pair > 0 ? `, after ${t.pair} mapping(s) copied (their COW pages stay write-protected in the parent)` : ''}` : '';
  k.emit(err === OOM ? 'oom' : 'note', parent.id, -1, -1, -1,
    err === OOM ? `fork failed with ENOMEM${where}: no free frame or huge page for an early COW copy; the child was torn down` : 'fork of this non-present PTE kind is not modelled');
}

/** What forkCheckPte found. */
export const PTE_COPIED = 0;
/** The entry changed (a device-exclusive entry was restored): look at it again. */
export const PTE_AGAIN = 1;
/** A present PTE to share (copy_present_pte). */
export const PTE_SHARE = 2;
/** A present PTE whose page the child must get a copy of now (copy_present_page). */
export const PTE_EARLY_COW = 3;
/** A PTE kind the model does not copy. */
export const PTE_NA = 4;

/**
 * copy_pte_range() for one non-empty parent PTE `bits` at srcSlot, under the page-table lock:
 * a present PTE is shared (PTE_SHARE: copyPresentPte) unless its page must be copied
 * (PTE_EARLY_COW: forkAllocCopy, forkInstallCopy); other entries go to copyNonPresentPte.
 * `mayCopy`: forkMayCopy(k, src), the same for the whole fork.
 */
export function forkCheckPte(
  k: Kernel, src: Mm, srcVma: Vma, bits: number, srcSlot: number, dstSlot: number, vpn: number, mayCopy: boolean, keepUffdWp = false,
): number {
  if (bits & PTE_PRESENT) return mayCopy && forkMustCopy(k, bits, k.tables.entry[srcSlot]!) ? PTE_EARLY_COW : PTE_SHARE;
  return copyNonPresentPte(k, src, srcVma, srcSlot, dstSlot, vpn, keepUffdWp);
}

/**
 * copy_nonpresent_pte(): a swap entry is copied now; a device-exclusive entry is restored in
 * the parent first (try_restore_exclusive_pte; the page lock is always free in the model) and
 * looked at again (PTE_AGAIN).
 */
function copyNonPresentPte(k: Kernel, src: Mm, srcVma: Vma, srcSlot: number, dstSlot: number, vpn: number, keepUffdWp: boolean): number {
  const tb = k.tables;
  const bits = tb.bits[srcSlot]!;
  const pfn = tb.entry[srcSlot]!;
  if (bits & PTE_SWAP) {
    // A swap entry: one more user of the slot. Up to 5.13 its uffd-wp bit is copied whatever the
    // VMAs (copy_nonpresent_pte had no pte_swp_clear_uffd_wp() before 8f34f1eac382).
    tb.setPte(dstSlot, pfn, copySwapPte(k, srcSlot, keepUffdWp || k.profile.uffdWpForkVma === 'src-vma'));
    tb.addFilled(dstSlot >>> TABLE_SHIFT, 1);
    return PTE_COPIED;
  }
  if (bits & PTE_MARKER) {
    // copy_pte_marker(): a uffd-wp marker only into a child mapping that is registered.
    if (keepUffdWp) {
      tb.setPte(dstSlot, 0, bits);
      tb.addFilled(dstSlot >>> TABLE_SHIFT, 1);
    }
    return PTE_COPIED;
  }
  if (!(bits & PTE_DEVICE_EXCLUSIVE)) return PTE_NA;
  if (!isCowMapping(srcVma.flags)) {
    k.emit('bug', src.id, vpn, pfn, -1, 'VM_BUG_ON: a device-exclusive entry in a mapping that is not COW reached fork');
    return PTE_NA;
  }
  restoreExclusivePte(k, src, srcVma, vpn, srcSlot);
  return PTE_AGAIN;
}

/** What the split path's check step saw (the early-COW copy is made from it and re-checked against it). */
function seePte(k: Kernel, t: ForkTask, srcSlot: number): void {
  t.seenBits = k.tables.bits[srcSlot]!;
  t.seenPfn = k.tables.entry[srcSlot]!;
}

/**
 * copy_present_page(), first part (seed 000: copy_pte_range drops the page-table locks and
 * preallocates, folio_prealloc): a new frame for the copy, not filled yet. OK or OOM.
 */
export function forkAllocCopy(k: Kernel, t: ForkTask): number {
  const n = allocCopy(k, -1);
  if (n < 0) return OOM;
  t.newPfn = n;
  return OK;
}

/**
 * copy_present_page(), second part: copy_pte_range() walks again from this PTE with the locks
 * retaken and the prealloc in hand, and decides afresh (copy_present_ptes): if the page must
 * still be copied, it is copied now, under the lock (copy_mc_user_highpage: a store made since
 * the prealloc is in the copy), and the copy mapped in the child; true. Otherwise (the pin went
 * away meanwhile: "this could only happen if one pinned pte changed") the prealloc is freed and
 * false returned: the caller shares the PTE (copy_pte_range's folio_put(prealloc)).
 */
export function forkInstallCopy(k: Kernel, t: ForkTask, src: Mm, dst: Mm, dstVma: Vma, srcSlot: number, dstSlot: number, vpn: number): boolean {
  const bits = srcSlot < 0 ? 0 : k.tables.bits[srcSlot]!;
  const pfn = srcSlot < 0 ? -1 : k.tables.entry[srcSlot]!;
  if (!(bits & PTE_PRESENT) || !forkMustCopy(k, bits, pfn)) {
    k.putPage(t.newPfn);
    t.newPfn = -1;
    k.emit('note', src.id, vpn, pfn, -1, 'early COW: the page may no longer be pinned when copy_pte_range walks again: the preallocated copy is freed and the PTE shared');
    return false;
  }
  k.frames.setValue(t.newPfn, k.frames.value[pfn]!);
  installCopiedPage(k, dstVma, dstSlot, t.newPfn, bits);
  dst.rssAnon++;
  k.emit('early-cow', src.id, vpn, pfn, t.newPfn, k.frames.flags[pfn]! & PG_LARGE
    ? `maybe pinned (its large folio's pin count is ${k.frames.pincount[pfn >>> 9]}) in an mm that has pinned: the child gets a copy now`
    : `maybe pinned (refcount ${k.frames.refcount[pfn]} >= ${k.config.pinBias}) in an mm that has pinned: the child gets a copy now`);
  t.newPfn = -1;
  return true;
}

// ---- synchronous ---------------------------------------------------------------------------

/** dup_mmap(): the child's address space, VMA by VMA, in one go. */
export function dupMmap(k: Kernel, parent: Mm, cowpt = false): ForkResult {
  const t = startFork(parent);
  const before = k.stats.earlyCow;
  const child = forkBegin(k, t, cowpt);
  for (let p = 0; p < t.pairs.length; p++) {
    const [pi, ci] = t.pairs[p]!;
    // dup_mmap() copies mapping by mapping and stops at the first that fails.
    t.pair = p;
    const walk = copyPageRangeBegin(k, t, p);
    const err = walk ? copyPageRange(k, t, child, child.vmas[ci]!, parent, parent.vmas[pi]!) : t.err;
    if (walk) copyPageRangeEnd(k, t);
    if (err !== OK) {
      forkFailed(k, t, err);
      k.mms.pop();
      return { err, child: null };
    }
  }
  forkEnd(k, t);
  if (k.tracing) {
    let copied = 0;
    for (const vma of parent.vmas) if (!(vma.flags & (VM_DONTCOPY | VM_WIPEONFORK)) && vma.anonVma) copied += vma.end - vma.start;
    k.emit('fork', parent.id, -1, -1, child.id,
      `dup_mmap copied ${child.vmas.length} mapping(s) spanning ${copied} page(s); early COW copies: ${k.stats.earlyCow - before}`);
  }
  return { err: OK, child };
}

/** copy_page_range(): walk the parent's tables over the VMA, one PTE table at a time. */
function copyPageRange(k: Kernel, t: ForkTask, dst: Mm, dstVma: Vma, src: Mm, srcVma: Vma): number {
  const span = LEVEL_SPAN[0];
  for (let a = srcVma.start; a < srcVma.end; ) {
    const next = Math.min(srcVma.end, (a - (a % span)) + span);
    // copy_pmd_range(): a huge PMD is copied whole (copy_huge_pmd), unless it had to be split.
    const leaf = pmdLeafSlot(k, src, a);
    if (leaf >= 0) {
      if (copyHugePmd(k, src, dst, srcVma, leaf, a, forkKeepsUffdWp(k, srcVma, dstVma)) === HUGE_PMD_SHARED) {
        a = next;
        continue;
      }
      pteTableAlloc(k, dst, a); // -EAGAIN: copy_pte_range() on the split table
    }
    const srcTable = pteTableOf(k, src, a);
    if (srcTable !== 0) {
      const dstTable = pteTableOf(k, dst, a); // allocated by forkBegin (or shared: not copied again)
      if (dstTable !== srcTable) {
        const err = copyPteRange(k, t, dst, dstVma, src, srcVma, dstTable, srcTable, a, next);
        if (err !== OK) return err;
      }
    }
    a = next;
  }
  return OK;
}

/** copy_pte_range(): the hot loop of fork, one call of the per-PTE rules per present entry. */
function copyPteRange(
  k: Kernel, t: ForkTask, dst: Mm, dstVma: Vma, src: Mm, srcVma: Vma, dstTable: number, srcTable: number, lo: number, hi: number,
): number {
  // No PTE table is allocated in this loop: the arena's arrays stay where they are.
  const tb = k.tables;
  const f = k.frames;
  const bits = tb.bits;
  const entry = tb.entry;
  const cow = isCowMapping(srcVma.flags);
  const shared = (srcVma.flags & VM_SHARED) !== 0;
  const sBase = srcTable << TABLE_SHIFT;
  const dBase = dstTable << TABLE_SHIFT;
  const first = lo & 511;
  const last = first + (hi - lo);
  // The child's table count and RSS for shared pages, added once per table.
  let filled = 0;
  let anon = 0;
  let shmem = 0;
  const mayCopy = forkMayCopy(k, src);
  const keep = forkKeepsUffdWp(k, srcVma, dstVma);
  let err = OK;
  tb.holdTables(sBase + first, sBase + last, dBase + first, dBase + last);
  for (let i = first; i < last; i++) {
    const b = bits[sBase + i]!;
    if (b === 0) continue;
    const r = forkCheckPte(k, src, srcVma, b, sBase + i, dBase + i, lo + (i - first), mayCopy, keep);
    if (r === PTE_SHARE) {
      const rss = copyPresentPte(tb, f, b, entry[sBase + i]!, dst.id, sBase + i, dBase + i, cow, shared, keep);
      filled++;
      anon += rss & PG_ANON;
      shmem += rss >>> PG_SHMEM_SHIFT;
    } else if (r !== PTE_COPIED) {
      err = forkRareCase(k, t, r, src, srcVma, dst, dstVma, sBase + i, dBase + i, lo + (i - first), cow, shared, mayCopy);
      if (err !== OK) break;
    }
  }
  tb.releaseTables();
  tb.addFilled(dstTable, filled);
  dst.rssAnon += anon;
  dst.rssShmem += shmem;
  return err;
}

/**
 * The synchronous loop's other outcomes of forkCheckPte, out of its way: a restored
 * device-exclusive entry looked at again (and shared here, charged at once); an early COW (both
 * parts at once: nothing runs between them here, so the re-check always finds the PTE
 * unchanged); NA. Returns OK, OOM or NA.
 */
function forkRareCase(
  k: Kernel, t: ForkTask, r: number, src: Mm, srcVma: Vma, dst: Mm, dstVma: Vma, srcSlot: number, dstSlot: number, vpn: number,
  cow: boolean, shared: boolean, mayCopy: boolean,
): number {
  const tb = k.tables;
  const keep = forkKeepsUffdWp(k, srcVma, dstVma);
  while (r === PTE_AGAIN) r = forkCheckPte(k, src, srcVma, tb.bits[srcSlot]!, srcSlot, dstSlot, vpn, mayCopy, keep);
  switch (r) {
    case PTE_COPIED:
      return OK;
    case PTE_SHARE:
      addRss(dst, copyPresentPte(tb, k.frames, tb.bits[srcSlot]!, tb.entry[srcSlot]!, dst.id, srcSlot, dstSlot, cow, shared, keep));
      tb.addFilled(dstSlot >>> TABLE_SHIFT, 1);
      return OK;
    case PTE_EARLY_COW: {
      // Nothing runs between the two parts here: the page still needs its copy at the install.
      seePte(k, t, srcSlot);
      const err = forkAllocCopy(k, t);
      if (err === OK) forkInstallCopy(k, t, src, dst, dstVma, srcSlot, dstSlot, vpn);
      return err;
    }
    default:
      return NA;
  }
}

// ---- split into atomic steps (`fork &`) ----------------------------------------------------

/** What nextPte found: a PTE to copy; the end of a mapping's copy with another to come; the end (or a failure, t.err). */
const NEXT_PTE = 0;
const NEXT_MAPPING = 1;
const NEXT_DONE = 2;

/**
 * The next non-empty PTE of the parent at or after (pair, vpn). A mapping reached for the first
 * time has its copy begun on the way (copyPageRangeBegin: a hugetlb mapping is copied whole then,
 * within the step that got there); one whose walk is over has it ended (copyPageRangeEnd), and
 * the step stops there if another mapping follows: dup_mmap's loop between two copy_page_range()
 * calls is a window too (write_protect_seq even, mmap_lock still held for write).
 */
function nextPte(k: Kernel, t: ForkTask): number {
  const parent = k.mms[t.parent]!;
  for (; t.pair < t.pairs.length; t.pair++) {
    const vma = parent.vmas[t.pairs[t.pair]![0]]!;
    let walk = true;
    if (t.begun <= t.pair) {
      t.begun = t.pair + 1;
      t.vpn = vma.start;
      walk = copyPageRangeBegin(k, t, t.pair);
      if (!walk && t.err !== OK) return NEXT_DONE;
      // The window's edges, told in the split path only (a synchronous fork shows none of them).
      if (walk && k.tracing && k.profile.writeProtectSeq && parent.writeProtectSeq & 1) {
        if (k.tracing) k.emit('note', parent.id, vma.start, -1, t.child, `copy_page_range of the COW mapping at 0x${(vma.start * 4096).toString(16)}: write_protect_seq odd`);
      }
    }
    if (walk) {
      for (; t.vpn < vma.end; t.vpn++) {
        const slot = pteSlot(k, parent, t.vpn);
        if (slot >= 0 && k.tables.bits[slot] !== 0) return NEXT_PTE;
      }
      const odd = (parent.writeProtectSeq & 1) !== 0;
      copyPageRangeEnd(k, t);
      if (odd && k.tracing && k.profile.writeProtectSeq) k.emit('note', parent.id, -1, -1, t.child, 'copy_page_range done: write_protect_seq even');
    }
    if (t.pair + 1 < t.pairs.length) {
      t.pair++;
      return NEXT_MAPPING;
    }
  }
  return NEXT_DONE;
}

/**
 * One atomic step of a fork on behalf of thread `tid`, which holds mmap_lock for write from the
 * first step to the last: begin; per PTE, check, then apply (the PTL is held throughout, but a
 * lockless gup-fast may run in between) or, for an early COW, alloc (the lock dropped) and
 * install; end.
 */
export function stepFork(k: Kernel, t: ForkTask, tid: number): TaskState {
  const parent = k.mms[t.parent]!;
  switch (t.phase) {
    case 'begin': {
      if (parent.mmapReaders > 0 || (parent.mmapWriter >= 0 && parent.mmapWriter !== tid)) return 'blocked';
      parent.mmapWriter = tid;
      const child = forkBegin(k, t, false, true);
      k.emit('fork', parent.id, -1, -1, child.id, 'fork begins: mmap_lock taken for write');
      return toNextPte(k, t, tid);
    }
    case 'check': {
      const [pi, ci] = t.pairs[t.pair]!;
      const slot = pteSlot(k, parent, t.vpn);
      seePte(k, t, slot);
      const keep = forkKeepsUffdWp(k, parent.vmas[pi]!, k.mms[t.child]!.vmas[ci]!);
      const r = forkCheckPte(k, parent, parent.vmas[pi]!, t.seenBits, slot, pteSlotAlloc(k, k.mms[t.child]!, t.vpn), t.vpn, forkMayCopy(k, parent), keep);
      switch (r) {
        case PTE_COPIED:
          return advanceFork(k, t, tid);
        case PTE_AGAIN:
          return 'running'; // check the now present PTE again
        case PTE_NA:
          return failStep(k, t, tid, NA);
        case PTE_EARLY_COW:
          k.emit('note', parent.id, t.vpn, t.seenPfn, -1, 'copy_present_pte: maybe pinned: early COW; the page-table lock is dropped to allocate the copy');
          t.phase = 'alloc';
          return 'running';
        default:
          t.phase = 'apply'; // decided now, applied at the next step
          return 'running';
      }
    }
    case 'apply': {
      const vma = parent.vmas[t.pairs[t.pair]![0]]!;
      const child = k.mms[t.child]!;
      const dslot = pteSlotAlloc(k, child, t.vpn);
      const slot = pteSlot(k, parent, t.vpn);
      const keep = forkKeepsUffdWp(k, vma, child.vmas[t.pairs[t.pair]![1]]!);
      addRss(child, copyPresentPte(k.tables, k.frames, k.tables.bits[slot]!, k.tables.entry[slot]!, child.id, slot, dslot, isCowMapping(vma.flags), (vma.flags & VM_SHARED) !== 0, keep));
      k.tables.addFilled(dslot >>> TABLE_SHIFT, 1);
      return advanceFork(k, t, tid);
    }
    case 'alloc': {
      if (forkAllocCopy(k, t) !== OK) return failStep(k, t, tid, OOM);
      t.phase = 'install';
      return 'running';
    }
    case 'install': {
      const child = k.mms[t.child]!;
      const cvma = child.vmas[t.pairs[t.pair]![1]]!;
      const slot = pteSlot(k, parent, t.vpn);
      if (forkInstallCopy(k, t, parent, child, cvma, slot, pteSlotAlloc(k, child, t.vpn), t.vpn)) return advanceFork(k, t, tid);
      // No copy needed any more: shared in the same pass (copy_present_ptes), as the apply step does.
      if (slot < 0 || !(k.tables.bits[slot]! & PTE_PRESENT)) return toNextPte(k, t, tid);
      t.phase = 'apply';
      return stepFork(k, t, tid);
    }
    case 'next':
      return toNextPte(k, t, tid);
    case 'end': {
      forkEnd(k, t);
      parent.mmapWriter = -1;
      k.emit('fork', parent.id, -1, -1, t.child, 'fork ends: mmap_lock released');
      return 'done';
    }
  }
}

function advanceFork(k: Kernel, t: ForkTask, tid: number): TaskState {
  t.vpn++;
  return toNextPte(k, t, tid);
}

/** On to the next PTE to copy, or to the end; a mapping whose copy failed on the way (hugetlb) fails the fork. */
function toNextPte(k: Kernel, t: ForkTask, tid: number): TaskState {
  const r = nextPte(k, t);
  if (r === NEXT_PTE) {
    t.phase = 'check';
    return 'running';
  }
  if (r === NEXT_MAPPING) {
    t.phase = 'next';
    return 'running';
  }
  if (t.err !== OK) return failStep(k, t, tid, t.err);
  t.phase = 'end';
  return 'running';
}

function failStep(k: Kernel, t: ForkTask, tid: number, err: number): TaskState {
  const parent = k.mms[t.parent]!;
  forkFailed(k, t, err);
  if (parent.mmapWriter === tid) parent.mmapWriter = -1;
  return 'done';
}
