// fork(): dup_mmap -> copy_page_range -> copy_pte_range -> copy_present_pte / copy_present_page.

import {
  isCowMapping, LEVEL_SPAN, OK, OOM, PG_ANON, PG_ANON_EXCLUSIVE, PG_SHMEM, PTE_DIRTY, PTE_PRESENT,
  PTE_SOFT_DIRTY, PTE_SPECIAL, PTE_UFFD_WP, PTE_WRITE, PTE_YOUNG, TABLE_SHIFT, VM_DONTCOPY, VM_SHARED, PTE_SWAP, PTE_DEVICE_EXCLUSIVE,
  PTE_PROTNONE, VM_READ,
  VM_WIPEONFORK, VM_WRITE, NA,
} from './constants.js';
import type { Kernel } from './kernel.js';
import { newAnonId, type Mm, type Vma } from './mm.js';
import { pteTableAlloc, pteTableOf } from './walk.js';
import { exitMmap } from './zap.js';
import { copySwapPte } from './swap.js';
import { mmuNotify, restoreExclusivePte } from './devexcl.js';
import { shareTables } from './cowpt.js';

export interface ForkResult {
  /** OK, OOM (fork failed with ENOMEM: the child is gone) or NA. */
  err: number;
  child: Mm | null;
}

/** page_maybe_dma_pinned(): exact for nothing here (small pages): refcount >= GUP_PIN_COUNTING_BIAS. */
export function pageMaybeDmaPinned(k: Kernel, pfn: number): boolean {
  return k.frames.refcount[pfn]! >= k.config.pinBias;
}

/** page_needs_cow_for_dma(): the mm has pinned (MMF_HAS_PINNED) and the page may be pinned. */
export function pageNeedsCowForDma(k: Kernel, src: Mm, pfn: number): boolean {
  return k.profile.forkEarlyCow && src.hasPinned && pageMaybeDmaPinned(k, pfn);
}

/** The PTE of a page the kernel maps for a VMA afresh (mk_pte with vm_page_prot): PAGE_NONE keeps no access. */
export function newPageBits(vma: Vma): number {
  if (!(vma.flags & VM_READ)) return PTE_PRESENT | PTE_DIRTY | PTE_SOFT_DIRTY | PTE_PROTNONE;
  return PTE_PRESENT | PTE_DIRTY | PTE_SOFT_DIRTY | (vma.flags & VM_WRITE ? PTE_WRITE : 0);
}

/** dup_mmap(): the child's address space, VMA by VMA. */
export function dupMmap(k: Kernel, parent: Mm, cowpt = false): ForkResult {
  const child = k.newMm();
  child.mmapNext = parent.mmapNext;
  // CLONE_COW_PGTABLE / use_odf: MMF_COW_PGTABLE on both, never cleared.
  if (cowpt && k.profile.cowPageTables !== 'none') parent.cowPgtable = true;
  child.cowPgtable = parent.cowPgtable;
  // ksm_fork(): the child of a registered mm joins ksmd's list too.
  if (parent.ksmSlot > 0) k.ksmEnter(child);
  const before = k.stats.earlyCow;
  let copied = 0;
  for (const vma of parent.vmas) {
    if (vma.flags & VM_DONTCOPY) continue; // MADV_DONTFORK: the child has no mapping here
    const tmp = vma.clone(vma.shm);
    if (vma.shm) vma.shm.users++;
    if (tmp.anonVma) tmp.anonId = newAnonId(); // anon_vma_fork(): the child's mapping gets its own anon_vma
    child.vmas.push(tmp);
    if (vma.flags & VM_WIPEONFORK) {
      tmp.anonVma = false; // MADV_WIPEONFORK: the child's mapping starts empty, with no anon_vma
      tmp.anonId = 0;
      continue;
    }
    // vma_needs_copy(): only mappings with an anon_vma have PTEs worth copying.
    if (!vma.anonVma) continue;
    // copy_page_range(): for COW mappings the MMU notifier tells devices first (PROTECTION_PAGE).
    if (isCowMapping(vma.flags)) mmuNotify(k, parent.id, vma.start, vma.end, 'fork');
    // COW page tables: share the PTE tables; what is not shared (ODF: read-only mappings, and
    // tables a mapping covers in part from d8ccd3c) is copied as usual below.
    if (parent.cowPgtable && isCowMapping(vma.flags) && shareTables(k, parent, child, vma)) {
      copied += vma.end - vma.start;
      continue;
    }
    const err = copyPageRange(k, child, tmp, parent, vma);
    if (err !== OK) {
      exitMmap(k, child);
      k.mms.pop();
      k.emit(err === OOM ? 'oom' : 'note', parent.id, -1, -1, -1,
        err === OOM ? 'fork failed with ENOMEM: no frame for an early COW copy; the child was torn down' : 'fork not modelled here');
      return { err, child: null };
    }
    copied += vma.end - vma.start;
  }
  k.emit('fork', parent.id, -1, -1, child.id,
    `dup_mmap copied ${child.vmas.length} mapping(s) spanning ${copied} page(s); early COW copies: ${k.stats.earlyCow - before}`);
  return { err: OK, child };
}

/** copy_page_range(): walk the parent's tables over the VMA, one PTE table at a time. */
export function copyPageRange(k: Kernel, dst: Mm, dstVma: Vma, src: Mm, srcVma: Vma): number {
  const span = LEVEL_SPAN[0];
  for (let a = srcVma.start; a < srcVma.end; ) {
    const next = Math.min(srcVma.end, (a - (a % span)) + span);
    const srcTable = pteTableOf(k, src, a);
    // A table this child already shares (a second VMA in a COW-shared table) is not copied again.
    if (srcTable !== 0 && pteTableOf(k, dst, a) !== srcTable) {
      const dstTable = pteTableAlloc(k, dst, a);
      const err = copyPteRange(k, dst, dstVma, src, srcVma, dstTable, srcTable, a, next);
      if (err !== OK) return err;
    }
    a = next;
  }
  return OK;
}

/** copy_pte_range() with copy_present_pte() inlined: the hot loop of fork. */
export function copyPteRange(
  k: Kernel, dst: Mm, dstVma: Vma, src: Mm, srcVma: Vma, dstTable: number, srcTable: number, lo: number, hi: number,
): number {
  const t = k.tables;
  const f = k.frames;
  const cow = isCowMapping(srcVma.flags);
  const shared = (srcVma.flags & VM_SHARED) !== 0;
  const anonExclusive = k.profile.anonExclusive;
  const earlyCowPossible = k.profile.forkEarlyCow && src.hasPinned;
  const bias = k.config.pinBias;
  const sBase = srcTable << TABLE_SHIFT;
  const dBase = dstTable << TABLE_SHIFT;
  const first = lo & 511;
  const last = first + (hi - lo);
  let filled = 0;
  let rssAnon = 0;
  let rssShmem = 0;
  for (let i = first; i < last; i++) {
    const bits = t.bits[sBase + i]!;
    if (bits === 0) continue;
    if (!(bits & PTE_PRESENT)) {
      if (bits & PTE_SWAP) {
        // copy_nonpresent_pte(), swap entry: one more user of the slot.
        t.entry[dBase + i] = t.entry[sBase + i]!;
        t.bits[dBase + i] = copySwapPte(k, sBase + i);
        filled++;
        continue;
      }
      if (!(bits & PTE_DEVICE_EXCLUSIVE)) return NA;
      // Device-exclusive entry: restored in the parent first (try_restore_exclusive_pte; the page
      // lock is always free in the model), then copied as the present PTE it is again.
      if (!cow) {
        k.emit('bug', src.id, lo + (i - first), t.entry[sBase + i]!, -1, 'VM_BUG_ON: a device-exclusive entry in a mapping that is not COW reached fork');
        return NA;
      }
      restoreExclusivePte(k, src, srcVma, lo + (i - first), sBase + i);
      i--;
      continue;
    }
    const pfn = t.entry[sBase + i]!;
    let cbits = bits;
    if (!(bits & PTE_SPECIAL)) {
      const pflags = f.flags[pfn]!;
      if (pflags & PG_ANON) {
        // folio_try_dup_anon_rmap_pte(): a maybe-pinned exclusive page cannot be shared.
        if (earlyCowPossible && f.refcount[pfn]! >= bias && (!anonExclusive || pflags & PG_ANON_EXCLUSIVE)) {
          const err = copyPresentPage(k, dstVma, src, lo + (i - first), dBase + i, pfn);
          if (err !== OK) {
            t.filled[dstTable]! += filled;
            dst.rssAnon += rssAnon;
            return err;
          }
          rssAnon++;
          filled++;
          continue;
        }
        f.flags[pfn] = pflags & ~PG_ANON_EXCLUSIVE;
        rssAnon++;
      } else if (pflags & PG_SHMEM) {
        rssShmem++;
      }
      f.refcount[pfn]!++;
      f.mapcount[pfn]!++;
    }
    if (cow && bits & PTE_WRITE) {
      t.bits[sBase + i] = bits & ~PTE_WRITE; // the parent loses write access too
      cbits &= ~PTE_WRITE;
    }
    if (shared) cbits &= ~PTE_DIRTY;
    cbits &= ~(PTE_YOUNG | PTE_UFFD_WP); // pte_mkold(); uffd-wp dropped unless the child registered
    t.entry[dBase + i] = pfn;
    t.bits[dBase + i] = cbits;
    filled++;
  }
  t.filled[dstTable]! += filled;
  dst.rssAnon += rssAnon;
  dst.rssShmem += rssShmem;
  return OK;
}

/** copy_present_page(): early COW at fork; the child gets its own copy, the parent's PTE is untouched. */
export function copyPresentPage(k: Kernel, dstVma: Vma, src: Mm, vpn: number, dstSlot: number, pfn: number): number {
  const f = k.frames;
  const n = f.alloc(PG_ANON | (k.profile.anonExclusive ? PG_ANON_EXCLUSIVE : 0));
  if (n < 0) return OOM;
  f.value[n] = f.value[pfn]!;
  f.mapcount[n] = 1;
  k.tables.entry[dstSlot] = n;
  k.tables.bits[dstSlot] = newPageBits(dstVma);
  k.stats.earlyCow++;
  k.stats.cowCopies++;
  k.emit('early-cow', src.id, vpn, pfn, n, `maybe pinned (refcount ${f.refcount[pfn]} >= ${k.config.pinBias}) in an mm that has pinned: the child gets a copy now`);
  return OK;
}
