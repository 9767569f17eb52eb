// One Kernel instance holds all state of the model: frames, page tables, address spaces,
// shmem objects, GUP handles, counters. No I/O here; the explorer can clone it.

import { FrameTable } from './frames.js';
import { TableArena } from './pgtable.js';
import { Mm, type MmCounterLog, ShmemObject, Vma } from './mm.js';
import type { Profile } from './profile.js';
import type { KEvent, KEventType } from './events.js';
import { HPAGE_PMD_NR, LEVEL_PGD, PG_HUGETLB, PG_KSM, PG_LARGE, PG_SWAPCACHE } from './constants.js';
import { SwapDevice } from './swapdev.js';
import { classCopier, copyArrayInto, objectArray, templateCopier } from './copy.js';

export const DEFAULT_FRAMES = 1 << 30;
export const DEFAULT_PIN_BIAS = 1024;

export interface KernelConfig {
  /** Physical frames available (config.frames). */
  frames: number;
  /** GUP_PIN_COUNTING_BIAS (config.pin_bias). */
  pinBias: number;
  /** /sys/kernel/mm/transparent_hugepage/enabled (config.thp); absent: `madvise`. */
  thp?: 'always' | 'madvise' | 'never';
  /** Free 2 MiB huge pages in the hugetlb pool at start (config.hugepages); absent: unlimited. */
  hugepages?: number;
  /** /sys/kernel/mm/ksm/use_zero_pages (config.ksm_use_zero_pages): ksmd merges pages of zeros with the zero page; absent: off. */
  ksmUseZeroPages?: boolean;
  /** /sys/kernel/mm/ksm/smart_scan (config.ksm_smart_scan) where the profile has it (ksmSmartScan): false switches it off; absent: on, the kernel's default. */
  ksmSmartScan?: boolean;
}

/**
 * The hstate of the 2 MiB pool (struct hstate): HugePages_Total is `total` (Infinity: unlimited),
 * HugePages_Free `total - used`, HugePages_Rsvd `resv` (reserved by mmap, not yet faulted in).
 */
export class HugetlbPool {
  constructor(
    public total: number,
    /** Huge pages allocated (nr_huge_pages - free_huge_pages). */
    public used = 0,
    /** resv_huge_pages. */
    public resv = 0,
    /** An mmap has reserved huge pages (hugetlbReservePages): else no VMA holds a reservation. */
    public everReserved = false,
  ) {}

  get free(): number {
    return this.total - this.used;
  }

  clone(): HugetlbPool {
    return new HugetlbPool(this.total, this.used, this.resv, this.everReserved);
  }
}

/** Where a kernel path split into atomic steps stands after one step (tasks.ts). */
export type TaskState = 'running' | 'blocked' | 'done';

/**
 * References that GUP users hold on frames (pins, FOLL_GET references, pipe buffers, device
 * grants). Kernel.clone copies each field (copyHandle and copyHandleInto: a field added here
 * is added to both). Every field is set when a handle is made (newHandle, copyHandle; null for
 * an absent array), so all handles share one hidden class.
 */
export interface Handle {
  id: number;
  kind: 'pin' | 'gup' | 'pipe' | 'exclusive';
  /** The mm it was taken on. */
  mm: number;
  /** First page number it covers. */
  vpn: number;
  /**
   * Frame per page (-1 where nothing was taken). Plain arrays of small integers, as refs: a
   * handle is made per GUP and copied with its state, and an Int32Array costs ~200 bytes, a
   * short array ~30.
   */
  frames: number[];
  /** What each frame's refcount was raised by (1, or the pin bias). */
  refs: number[];
  write: boolean;
  longterm: boolean;
  released: boolean;
  /** Device-exclusive grants: per page, 1 once the device was notified it lost exclusive access; else null. */
  revoked: Uint8Array | null;
  /** Per page, where the holder's mm maps it now, once mremap moved some of its pages (else null: vpn + i). */
  vpns: Int32Array | null;
}

/** The page number at which page i of a handle is mapped in its holder's mm now (mremap moves pages). */
export function handleVpn(h: Handle, i: number): number {
  return h.vpns ? h.vpns[i]! : h.vpn + i;
}

export interface KernelStats {
  /** Pages copied by write/unshare faults and by early COW at fork. */
  cowCopies: number;
  /** Write faults that reused the page in place. */
  reuses: number;
  /** Early COW copies at fork. */
  earlyCow: number;
  /** Page tables copied (COW page tables). */
  ptCopies: number;
  /** All faults taken. */
  faults: number;
}

/** A kernel's counters, all 0. */
function newStats(): KernelStats {
  return { cowCopies: 0, reuses: 0, earlyCow: 0, ptCopies: 0, faults: 0 };
}

/** Kernel.clone's copy of the counters (Object.assign is generic and slow). */
const copyStats = templateCopier(newStats());
const copyMm = classCopier<Mm>();
const copyPool = classCopier<HugetlbPool>();
const copyKernel = classCopier<Kernel>();

export class Kernel {
  frames: FrameTable;
  tables: TableArena;
  mms: Mm[] = objectArray();
  /** Given to each new mm (Mm.counterLog): the accounting check that keeps counts from step to step, else null. */
  mmCounterLog: MmCounterLog | null = null;
  /** mm slots ksmd's list has had (the next registered mm gets this + 1). */
  ksmSlots = 0;
  /** anon_vma interval-tree insertions so far (AnonVmaClock: each VMA's anonSeq orders its ties). */
  anonVmaSeq = 0;
  shm: ShmemObject[] = objectArray();
  handles: Handle[] = objectArray();
  swap = new SwapDevice();
  /** The hugetlb pool (config.hugepages). */
  hugetlb: HugetlbPool;
  stats: KernelStats = newStats();
  /**
   * (mm, vpn) pairs of the write-protect userfaults the monitor resolved (un-protected), kept
   * whether tracing or not: the runner drains them into the ideal semantics after each step.
   */
  uffdResolved: number[] = [];
  /** Records of what the kernel did, when tracing. */
  events: KEvent[] = objectArray();
  tracing = true;

  constructor(
    public profile: Profile,
    public config: KernelConfig,
    frames?: FrameTable,
    tables?: TableArena,
  ) {
    this.frames = frames ?? new FrameTable(config.frames);
    // MM-id tracking came with __wp_can_reuse_large_anon_folio() (6.15, one series).
    this.frames.mmIds = profile.wpReuseLarge === 'mm-exclusive';
    this.tables = tables ?? new TableArena();
    this.hugetlb = new HugetlbPool(config.hugepages ?? Infinity);
  }

  /**
   * Record an event; kernel assertions (`bug`) are recorded even when not tracing. A caller whose
   * text is a template guards the call with `k.tracing`: else the text is built, then dropped, per step.
   */
  emit(type: KEventType, mm: number, vpn: number, pfn: number, pfn2: number, why: string): void {
    if (this.tracing || type === 'bug') this.events.push({ type, mm, vpn, pfn, pfn2, why });
  }

  /** mm_alloc() + pgd_alloc(): a new empty address space. */
  newMm(): Mm {
    const mm = new Mm(this.mms.length);
    mm.counterLog = this.mmCounterLog;
    mm.pgd = this.tables.alloc(LEVEL_PGD);
    mm.nrTables = 1;
    this.mms.push(mm);
    return mm;
  }

  newShmem(pages: number): ShmemObject {
    const obj = new ShmemObject(this.shm.length, new Int32Array(pages).fill(-1));
    this.shm.push(obj);
    return obj;
  }

  /** put_page(): drop one reference; frees the frame when it was the last. */
  putPage(pfn: number, refs = 1): void {
    const f = this.frames;
    if (pfn === 0) {
      // The shared zero page is never freed; its refcount counts GUP references only.
      f.setRefcount(0, (f.refcount[0]! - refs) | 0);
      return;
    }
    this.pageRefDropped(pfn, f.refSubReturn(pfn, refs));
  }

  /** put_page()'s end, after the refcount of pfn (not the zero page) went down to `left`: the frame freed at 0. */
  pageRefDropped(pfn: number, left: number): void {
    const f = this.frames;
    if (left === 0) {
      if (f.flags[pfn]! & PG_LARGE) {
        // A large folio's references are spread over its frames (frames.ts): freed when all are gone.
        if (f.folioRefcount(pfn) === 0) {
          // free_huge_folio(): a hugetlb folio goes back to the pool.
          if (f.flags[pfn]! & PG_HUGETLB) this.hugetlb.used--;
          f.freeLarge(pfn & ~(HPAGE_PMD_NR - 1));
          this.emit('free', -1, -1, pfn & ~(HPAGE_PMD_NR - 1), -1, 'refcount of the large folio reached 0: its 512 frames are freed');
        }
        return;
      }
      f.free(pfn);
      this.emit('free', -1, -1, pfn, -1, 'refcount reached 0');
    } else if (left === 1) {
      this.dropIfOnlySwapCache(pfn);
    } else if (left < 0) {
      this.emit('bug', -1, -1, pfn, -1, `VM_BUG_ON_PAGE: refcount of frame ${pfn} went negative`);
    }
  }

  /**
   * When only the swap cache holds pfn (its one reference) and no swap entry names it, reclaim
   * drops it (done at once here). Not a KSM page an rmap item of a registered mm still hangs on:
   * ksmd may map it again (a stable node with an item is a sharing candidate;
   * ksm_might_need_to_copy and should_try_to_free_swap leave a KSM page in the swap cache), so it
   * goes with its last item.
   */
  dropIfOnlySwapCache(pfn: number): void {
    const f = this.frames;
    if (f.refcount[pfn] !== 1 || !(f.flags[pfn]! & PG_SWAPCACHE) || this.swap.count[f.priv[pfn]!] !== 0) return;
    if (f.flags[pfn]! & PG_KSM && this.ksmItemOn(pfn)) return;
    this.leaveSwapCache(pfn);
    f.setRefcount(pfn, 0);
    f.free(pfn);
    this.emit('free', -1, -1, pfn, -1, 'only the swap cache held it');
  }

  /** Whether an rmap item of a registered mm hangs on KSM page pfn (Mm.ksmItems). */
  ksmItemOn(pfn: number): boolean {
    for (const mm of this.mms) {
      if (!mm.alive || mm.ksmSlot === 0 || mm.ksmItems === null) continue;
      for (const p of mm.ksmItems.values()) if (p === pfn) return true;
    }
    return false;
  }

  /** The frame leaves the swap cache (its slot freed when nothing else names it); the cache's reference is the caller's to drop. */
  leaveSwapCache(pfn: number): void {
    const f = this.frames;
    const s = f.priv[pfn]!;
    this.swap.cache[s] = -1;
    f.setFlags(pfn, f.flags[pfn]! & ~PG_SWAPCACHE);
    f.priv[pfn] = -1;
    this.swap.maybeFree(s);
  }

  /**
   * __ksm_enter(): the mm joins ksmd's list. With ksmd stopped or merging, the new slot goes just
   * behind the scanning cursor; between passes the cursor is at the list head, so at the tail:
   * ksmd scans mms in the order they registered.
   */
  ksmEnter(mm: Mm): void {
    if (mm.ksmSlot === 0) mm.ksmSlot = ++this.ksmSlots;
  }

  /**
   * A deep copy for the explorer (snapshot/restore). With `dst` (a copy no longer needed) the copy
   * is made in it: its object, address-space objects and typed arrays are reused.
   */
  clone(dst?: Kernel): Kernel {
    // dst's parts are reused: each part is copied into dst's before dst's fields are overwritten.
    const d = dst !== undefined && dst !== this ? dst : undefined;
    const frames = this.frames.clone(d?.frames);
    const tables = this.tables.clone(d?.tables);
    const shm = this.shm.length === 0 ? (d !== undefined && d.shm.length === 0 && d.shm !== this.shm ? d.shm : objectArray<ShmemObject>()) : this.shm.map((s) => s.clone());
    // The spare's array of mms and its Mm objects (nothing else holds them).
    const oldMms = d?.mms;
    const mms = oldMms !== undefined && oldMms !== this.mms ? oldMms : objectArray<Mm>();
    // Shrunk by its length, grown by assignment at its end (copyArrayInto says why).
    if (mms.length > this.mms.length) mms.length = this.mms.length;
    for (let i = 0; i < this.mms.length; i++) {
      const m = this.mms[i]!;
      const old = i < mms.length ? mms[i]! : undefined;
      const reused = old !== undefined && old !== m;
      // A new one by the constructor (not Object.create): the hidden class newMm's have.
      const c = reused ? old : new Mm(m.id);
      // The spare's VMAs (its own: every copy makes its VMAs) take the copies.
      const spareVmas = reused && c.vmas !== m.vmas ? c.vmas : undefined;
      copyMm(c, m);
      // A copy logs nothing until a check that keeps counts takes it (it starts over on a copy).
      c.counterLog = null;
      c.vmas = copyVmas(m.vmas, spareVmas, shm);
      mms[i] = c;
    }
    const handles = copyHandles(this.handles, d?.handles);
    let stats = d?.stats;
    if (stats === undefined || stats === this.stats) stats = newStats();
    copyStats(stats, this.stats);
    const swap = this.swap.clone(d?.swap);
    const hugetlb = d !== undefined && d.hugetlb !== this.hugetlb ? copyPool(d.hugetlb, this.hugetlb) : this.hugetlb.clone();
    const uffdResolved = copyArrayInto(this.uffdResolved, d?.uffdResolved);
    // Events are not copied: a copy starts with none (what the next step emits).
    const events = d !== undefined && d.events !== this.events ? d.events : objectArray<KEvent>();
    if (events.length !== 0) events.length = 0;
    // A new one by the constructor (not Object.create): the hidden class constructed kernels have.
    const k = copyKernel(d ?? new Kernel(this.profile, this.config, frames, tables), this);
    k.mmCounterLog = null;
    k.frames = frames;
    k.tables = tables;
    k.shm = shm;
    k.mms = mms;
    k.handles = handles;
    k.stats = stats;
    k.swap = swap;
    k.hugetlb = hugetlb;
    k.uffdResolved = uffdResolved;
    k.events = events;
    return k;
  }
}

/** Copies of the VMAs, on the copy's shmem objects; into `reuse` (the VMAs of a copy done with) and its Vma objects when given. */
function copyVmas(from: readonly Vma[], reuse: Vma[] | undefined, shm: readonly ShmemObject[]): Vma[] {
  const to = reuse ?? objectArray<Vma>();
  const old = to.length;
  // Shrunk by its length, grown by assignment at its end (copyArrayInto says why).
  if (old > from.length) to.length = from.length;
  for (let i = 0; i < from.length; i++) {
    const v = from[i]!;
    const s = v.shm ? shm[v.shm.id]! : null;
    to[i] = i < old ? v.cloneInto(to[i]!, s) : v.clone(s);
  }
  return to;
}

/**
 * The handles' copies, in `reuse` (the handles of a copy done with) when given: a released handle
 * never changes again and is shared; another is copied into the reused array's handle at its
 * place when that one is the copy's own (not released) and has the same arrays.
 */
function copyHandles(from: readonly Handle[], reuse: Handle[] | undefined): Handle[] {
  const to = reuse === undefined || reuse === from ? objectArray<Handle>() : reuse;
  const old = to.length;
  // Shrunk by its length, grown by assignment at its end (copyArrayInto says why).
  if (old > from.length) to.length = from.length;
  for (let i = 0; i < from.length; i++) {
    const h = from[i]!;
    const c = i < old ? to[i]! : undefined;
    if (h.released) to[i] = h;
    else if (c !== undefined && c !== h && !c.released && sameShape(c, h)) copyHandleInto(c, h);
    else to[i] = copyHandle(h);
  }
  return to;
}

/** Arrays of one length, and the same optional ones. */
function sameShape(a: Handle, b: Handle): boolean {
  return a.frames.length === b.frames.length && (a.revoked === null) === (b.revoked === null) && (a.vpns === null) === (b.vpns === null);
}

/** copyHandle into `c`, a handle of the same shape that nothing else holds. */
function copyHandleInto(c: Handle, h: Handle): void {
  c.id = h.id;
  c.kind = h.kind;
  c.mm = h.mm;
  c.vpn = h.vpn;
  for (let i = 0; i < h.frames.length; i++) {
    c.frames[i] = h.frames[i]!;
    c.refs[i] = h.refs[i]!;
  }
  c.write = h.write;
  c.longterm = h.longterm;
  c.released = false;
  if (h.revoked) c.revoked!.set(h.revoked);
  if (h.vpns) c.vpns!.set(h.vpns);
}

/**
 * A deep copy of a handle, field by field (a spread of handles of several shapes is slow). A
 * released handle is never changed again (releaseHandle is the last write; every path skips
 * released handles): copies share it.
 */
export function copyHandle(h: Handle): Handle {
  if (h.released) return h;
  const c: Handle = {
    id: h.id, kind: h.kind, mm: h.mm, vpn: h.vpn, frames: h.frames.slice(), refs: h.refs.slice(),
    write: h.write, longterm: h.longterm, released: h.released, revoked: h.revoked ? h.revoked.slice() : null, vpns: h.vpns ? h.vpns.slice() : null,
  };
  return c;
}
