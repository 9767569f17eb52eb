// The address space of a process (struct mm_struct) and its mappings (struct vm_area_struct).

import { MMAP_BASE_VPN } from './constants.js';
import { objectArray } from './copy.js';

/** A shared anonymous mapping's backing object (shmem): one frame per page, held by its page cache. */
export class ShmemObject {
  constructor(
    public id: number,
    /** Frame of each page, -1 while the page was never touched. */
    public pages: Int32Array,
    /** VMAs (in any mm) that map it; at 0 the object is truncated and its frames freed. */
    public users = 0,
    /** Swap slot of each page written out by reclaim (shmem_writepage), -1 otherwise. */
    public swapped: Int32Array = new Int32Array(pages.length).fill(-1),
  ) {}

  clone(): ShmemObject {
    return new ShmemObject(this.id, this.pages.slice(), this.users, this.swapped.slice());
  }
}

/**
 * A private hugetlb VMA's reservation state (vma_resv_map / vm_private_data flags): HPAGE_RESV_OWNER
 * (the mmap that reserved its huge pages), HPAGE_RESV_UNMAPPED (the owner took a page back from
 * this VMA: its next fault is a SIGBUS), and the huge pages (2 MiB-aligned page numbers) whose
 * reservation a fault consumed (the resv_map's regions).
 */
export interface HugetlbResv {
  owner: boolean;
  unmapped: boolean;
  consumed: number[];
}

export class Vma {
  constructor(
    /** First page number. */
    public start: number,
    /** One past the last page number. */
    public end: number,
    public flags: number,
    /** anon_vma exists: the mapping has had an anonymous fault or was copied at fork. */
    public anonVma: boolean,
    /** For shared anonymous mappings, the object and the page offset of `start` in it. */
    public shm: ShmemObject | null,
    public shmOffset: number,
  ) {}

  /** Which anon_vma (0: none); split parts share it, so they may merge again. */
  anonId = 0;
  /**
   * vma_had_uncowed_parents(): its anon_vma_chain also links a parent's anon_vma (anon_vma_fork
   * at fork; split and moved parts keep the chain), so it neither merges with a neighbour that has
   * no anon_vma nor lends its anon_vma to one (list_is_singular() fails).
   */
  uncowedParents = false;
  /**
   * vm_pgoff - vm_start (in pages) of a private mapping: 0 from mmap (pgoff = addr >> PAGE_SHIFT);
   * a range mremap moved keeps its old pgoff, so it merges only with what lines up with it.
   */
  pgoffShift = 0;
  /**
   * When it last entered its anon_vmas' interval trees (the Kernel's anonVmaSeq then; 0: never):
   * an equal vm_pgoff goes right there, so rmap_walk_anon() visits ties in this order.
   */
  anonSeq = 0;
  /** VM_HUGETLB mappings only: the reservation state (hugetlb.ts), else null. */
  hugetlb: HugetlbResv | null = null;

  clone(shm: ShmemObject | null): Vma {
    return this.cloneInto(new Vma(this.start, this.end, this.flags, this.anonVma, shm, this.shmOffset), shm);
  }

  /** This VMA's copy in `v`, a VMA that nothing else holds (the explorer reuses a copy done with). */
  cloneInto(v: Vma, shm: ShmemObject | null): Vma {
    v.start = this.start;
    v.end = this.end;
    v.flags = this.flags;
    v.anonVma = this.anonVma;
    v.shm = shm;
    v.shmOffset = this.shmOffset;
    v.anonId = this.anonId;
    v.uncowedParents = this.uncowedParents;
    v.pgoffShift = this.pgoffShift;
    v.anonSeq = this.anonSeq;
    v.hugetlb = this.hugetlb === null ? null : { ...this.hugetlb, consumed: this.hugetlb.consumed.slice() };
    return v;
  }
}

let nextAnonId = 1;

/** What counts the anon_vma interval trees' insertions: the Kernel (mm.ts does not import it). */
export interface AnonVmaClock {
  anonVmaSeq: number;
}

/**
 * anon_vma_interval_tree_insert() of every anon_vma_chain of vma (anon_vma_chain_link() at
 * anon_vma_prepare/clone/fork, anon_vma_interval_tree_post_update_vma() after its bounds
 * changed): it goes after every VMA already in those trees with its vm_pgoff.
 */
export function anonVmaTreeInsert(k: AnonVmaClock, vma: Vma): void {
  if (vma.anonVma) vma.anonSeq = ++k.anonVmaSeq;
}

/** vma_start_pgoff(): the page offset of the VMA's first page, the anon_vma interval tree's key. */
export function vmaStartPgoff(vma: Vma): number {
  return vma.start + vma.pgoffShift;
}

export function newAnonId(): number {
  return nextAnonId++;
}

/**
 * anon_vma_prepare(): give a private mapping an anon_vma, reusing a neighbour's when the two
 * could merge (find_mergeable_anon_vma), as Linux does.
 */
export function anonVmaPrepare(k: AnonVmaClock, mm: Mm, vma: Vma): void {
  if (vma.anonVma) return;
  vma.anonVma = true;
  anonVmaTreeInsert(k, vma); // __anon_vma_prepare() -> anon_vma_chain_link()
  const i = mm.vmas.indexOf(vma);
  for (const n of [mm.vmas[i - 1], mm.vmas[i + 1]]) {
    if (n && n.anonVma && !n.uncowedParents && n.flags === vma.flags && n.shm === null && vma.shm === null && (n.end === vma.start || vma.end === n.start)) {
      vma.anonId = n.anonId;
      return;
    }
  }
  vma.anonId = nextAnonId++;
}

/** vma_merge()'s test for two mappings, a just before b: Mm.mergeVmas() joins them. */
function vmasMerge(a: Vma, b: Vma): boolean {
  const sameBacking = a.shm === null ? b.shm === null && a.pgoffShift === b.pgoffShift : a.shm === b.shm && a.shmOffset + (a.end - a.start) === b.shmOffset;
  // is_mergeable_anon_vma(): the same anon_vma, or one side has none and the other's chain is singular.
  const anonOk = a.anonId === b.anonId || (a.anonId === 0 && !b.uncowedParents) || (b.anonId === 0 && !a.uncowedParents);
  // hugetlbfs sets VM_DONTEXPAND (VM_SPECIAL): its mappings never merge.
  return a.end === b.start && a.flags === b.flags && sameBacking && anonOk && a.hugetlb === null && b.hugetlb === null;
}

/** Where an mm notes that a counter the accounting check compares changed (Kernel.mmCounterLog). */
export interface MmCounterLog {
  counterChanged(id: number): void;
}

export class Mm {
  /** VMAs sorted by start, not overlapping. */
  vmas: Vma[] = objectArray();
  /** Root table (PGD) index in the table arena. */
  pgd = 0;
  /** The counters below (their accessors note each change in counterLog). */
  private anonPages = 0;
  private shmemPages = 0;
  private tablePages = 0;
  private hugetlbCount = 0;
  /** The accounting check that keeps counts from step to step (Kernel.mmCounterLog), else null. */
  counterLog: MmCounterLog | null = null;
  /** PMD leaves (huge PMDs) in this mm's tables: 0 lets the 4 KiB paths skip every huge check. */
  hugePmds = 0;
  /** MMF_HAS_PINNED (5.9 mm->has_pinned): FOLL_PIN has run on this mm; never cleared, not inherited. */
  hasPinned = false;
  /** mm->write_protect_seq: odd while fork copies this mm's COW mappings (5.10+). */
  writeProtectSeq = 0;
  /** mmap_lock: the thread holding it for write (fork), or -1; and how many hold it for read. */
  mmapWriter = -1;
  mmapReaders = 0;
  /**
   * MMF_VM_MERGEABLE: its place in ksmd's list of mms (__ksm_enter at the first MADV_MERGEABLE,
   * or at fork of a registered mm), 1 for the first registered; 0: not registered.
   */
  ksmSlot = 0;
  /**
   * KSM's rmap items on stable nodes (rmap_item->head): vpn -> the KSM page whose node the item
   * at that address hangs on; null: none. Only ksmd's pass changes them, by replacing the map
   * (clones share it).
   */
  ksmItems: Map<number, number> | null = null;
  /**
   * KSM's rmap_item->oldchecksum: vpn -> the value of the page at that address when ksmd last
   * computed its checksum (calc_checksum). No entry: no rmap item there, or one whose
   * oldchecksum is still the 0 of its allocation (kmem_cache_zalloc), which no page's checksum is
   * taken to equal. Only ksmd's pass changes it, by replacing the map (clones share it).
   */
  ksmChecksums: Map<number, number> | null = null;
  /**
   * KSM's smart scan state of each rmap item (rmap_item->age and remaining_skips, 6.7+):
   * vpn -> ksmSkipState(); no entry: an item of age 0 (none met yet), or no item. Only ksmd's
   * pass changes it, by replacing the map (clones share it).
   */
  ksmAges: Map<number, number> | null = null;
  /** MMF_COW_PGTABLE: forked with COW page tables; every later fork of it shares PTE tables too. */
  cowPgtable = false;
  /** A userfaultfd context is registered on this mm (UFFDIO_REGISTER succeeded at least once). */
  uffdCtx = false;
  /** The context asked for UFFD_FEATURE_EVENT_FORK: a child's mappings stay registered. */
  uffdForkEvent = false;
  /** Write-protect userfaults the monitor resolved for this mm (`uffd_faults.P`). */
  uffdFaults = 0;
  /** Faults taken in this process's context (min_flt). */
  minflt = 0;
  /** Where the next mmap goes (bottom-up). */
  mmapNext = MMAP_BASE_VPN;
  alive = true;

  constructor(public id: number) {}

  /** MM_ANONPAGES: present anonymous pages mapped. */
  get rssAnon(): number { return this.anonPages; }
  set rssAnon(v: number) {
    this.anonPages = v;
    if (this.counterLog !== null) this.counterLog.counterChanged(this.id);
  }

  /** MM_SHMEMPAGES: present shmem pages mapped. */
  get rssShmem(): number { return this.shmemPages; }
  set rssShmem(v: number) {
    this.shmemPages = v;
    if (this.counterLog !== null) this.counterLog.counterChanged(this.id);
  }

  /** Page-table pages owned by this mm, the PGD included (and the table deposited under each huge PMD). */
  get nrTables(): number { return this.tablePages; }
  set nrTables(v: number) {
    this.tablePages = v;
    if (this.counterLog !== null) this.counterLog.counterChanged(this.id);
  }

  /** HugetlbPages of this mm (hugetlb_count_add): 512 per huge page mapped; its leaves count in hugePmds too. */
  get hugetlbPages(): number { return this.hugetlbCount; }
  set hugetlbPages(v: number) {
    this.hugetlbCount = v;
    if (this.counterLog !== null) this.counterLog.counterChanged(this.id);
  }

  /** find_vma() for an exact page: the VMA containing vpn, or null. */
  findVma(vpn: number): Vma | null {
    const v = this.vmas;
    let lo = 0;
    let hi = v.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = v[mid]!;
      if (vpn < m.start) hi = mid - 1;
      else if (vpn >= m.end) lo = mid + 1;
      else return m;
    }
    return null;
  }

  /**
   * Whether no VMA overlaps [lo, hi): munmap returns at once (do_vmi_munmap's vma_find), madvise
   * too (madvise_walk_vmas), changing nothing.
   */
  mapsNothing(lo: number, hi: number): boolean {
    for (const v of this.vmas) if (v.start < hi && v.end > lo) return false;
    return true;
  }

  /**
   * vma_merge(): join neighbouring mappings that have the same flags, are private anonymous
   * (or the same shmem object at contiguous offsets) and compatible anon_vmas.
   */
  mergeVmas(k: AnonVmaClock): void {
    for (let i = 0; i + 1 < this.vmas.length; ) {
      const a = this.vmas[i]!;
      const b = this.vmas[i + 1]!;
      if (vmasMerge(a, b)) {
        a.end = b.end;
        if (!a.anonVma && b.anonVma) {
          a.anonVma = true;
          a.anonId = b.anonId;
        }
        // vma_merge() -> __vma_adjust() (5.x) / vma_expand(), vma_complete() (6.x): the VMA that
        // stays is re-inserted with its new bounds (an importer without anon_vma: anon_vma_clone()).
        anonVmaTreeInsert(k, a);
        if (b.shm) b.shm.users--;
        this.vmas.splice(i + 1, 1);
        continue;
      }
      i++;
    }
  }

  /**
   * Whether mergeVmas() would join two of the VMAs: a change that calls no vma_merge() (a fault's
   * anon_vma, clear_refs's VM_SOFTDIRTY) may have left two neighbours that merge at the next call.
   */
  mergePending(): boolean {
    for (let i = 0; i + 1 < this.vmas.length; i++) if (vmasMerge(this.vmas[i]!, this.vmas[i + 1]!)) return true;
    return false;
  }

  insertVma(vma: Vma): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i]!.start < vma.start) i++;
    this.vmas.splice(i, 0, vma);
  }

  /**
   * split_vma() at both ends of [start, end): afterwards every VMA is either wholly inside or
   * wholly outside the range. Returns the VMAs inside, in order. With `changes`, only the VMAs it
   * holds for are split and returned: mprotect_fixup() and madvise_update_vma() return before
   * splitting a VMA whose flags they leave as they are (a hugetlb VMA never merges back). The
   * array returned is reused by the next call (one per transition otherwise): the callers walk it
   * at once, and nothing they call splits VMAs.
   */
  splitRange(k: AnonVmaClock, start: number, end: number, changes: ((v: Vma) => boolean) | null = null): readonly Vma[] {
    const out = splitOut;
    // Written by index and cut to length at the end (`length = 0` would give up its storage).
    let count = 0;
    for (let i = 0; i < this.vmas.length; i++) {
      const v = this.vmas[i]!;
      if (v.end <= start || v.start >= end) continue;
      if (changes !== null && !changes(v)) continue;
      if (v.start < start) {
        this.splitAt(k, i, start);
        continue; // the right part is visited next
      }
      if (v.end > end) this.splitAt(k, i, end);
      out[count++] = v;
    }
    out.length = count;
    return out;
  }

  /**
   * __split_vma(): VMA i ends at `at`; a new VMA (same flags, anon_vma, object) starts there.
   * Both parts enter the anon_vma trees again, after their ties: the new one (the upper part here;
   * the kernel's new_below callers make it the lower one, and the two never share a vm_pgoff, so
   * only their place after the others counts), then the old one.
   */
  private splitAt(k: AnonVmaClock, i: number, at: number): void {
    const v = this.vmas[i]!;
    const right = v.clone(v.shm);
    right.start = at;
    right.shmOffset = v.shmOffset + (at - v.start);
    anonVmaTreeInsert(k, right); // anon_vma_clone(new, vma)
    v.end = at;
    anonVmaTreeInsert(k, v); // vma_adjust() / vma_prepare(), vma_complete(): the old one re-inserted
    if (v.shm) v.shm.users++;
    this.vmas.splice(i + 1, 0, right);
  }
}

/** The VMAs the last Mm.splitRange() call returned (reused: see there). */
const splitOut: Vma[] = [];
