// Physical frames as a struct of arrays: refcount, mapcount, flags and the page's value.
// Frame 0 is the shared zero page; it is never allocated or freed.
//
// Large folios (2 MiB THPs): 512 frames at a 512-aligned pfn, every one flagged PG_LARGE, so the
// head is `pfn & ~511` and no array maps a frame to its folio. Per-folio counts live in arrays
// indexed by block (`pfn >>> 9`): the entire mapcount (PMD mappings) and the exact pin count.
// The folio's refcount (page_count() of any of its pages) is kept spread over its frames: each
// reference sits on the frame it was taken through (a PTE mapping or a GUP reference of a sub-page
// on that sub-page, a PMD mapping on the head), and folioRefcount() sums them. The kernel keeps
// one counter on the head; the sum is the same number, and every 4 KiB path that takes or drops
// a reference on a frame stays as it is.
//
// What run --trace reports of a frame (its refcount, mapcount, flags and value) is written here
// only: outside this file those four arrays are read only (FrameWords), and every write goes
// through a setter that, while a capture follows this table (startTouched), notes the frame
// written (once until the capture takes the list, StampList). The capture then compares only
// the frames noted, not every frame at every step (src/engine/changes-live.ts), which made a
// long traced run quadratic. Noting at the write is exact by construction (the compiler finds
// any write that bypasses the setters); finding the frames from the PTEs that changed would
// not be: a GUP pin, a store to a mapped page, the swap cache or ksmd change frames and no PTE.
// When no capture follows (the explorer, a plain run), a write costs one well-predicted test
// of `touching` more (fork's per-page path, dupRmapPte, notes once for its three writes). The
// other arrays (next, priv, the per-block ones) are not in the report and are not tracked. The
// accounting check that keeps its counts from step to step (src/check/incremental.ts) takes a
// second list of the same writes (startLog), so that it looks at the frames written alone.

import { HPAGE_PMD_NR, PG_HUGETLB, PG_INUSE, PG_LARGE, PG_ZERO } from './constants.js';
import { StampList } from './stamplist.js';

const INITIAL_CAPACITY = 1024;

/** A frame array as the model outside this file sees it: read only (FrameTable's setters write it). */
export interface FrameWords {
  readonly [i: number]: number;
  readonly length: number;
}

/** The frame arrays run --trace's capture copies (FrameTable.copyStateOut). */
export interface FrameState {
  refcount: Int32Array;
  mapcount: Int32Array;
  flags: Uint16Array;
  value: Int32Array;
}

export class FrameTable {
  /** Per frame: page_count(). Read only: setRefcount/addRefcount. */
  refcount: FrameWords;
  /** Per frame: PTE mappings of the page. Read only: setMapcount/addRmapPte/removeRmapPte. */
  mapcount: FrameWords;
  /** Per frame: PG_* flags. Read only: setFlags. */
  flags: FrameWords;
  /** The same arrays as refcount, mapcount, flags and value, written here only. */
  private rc: Int32Array;
  private mc: Int32Array;
  private fl: Uint16Array;
  private val: Int32Array;
  /** Per 512-frame block: PMD mappings of the large folio there (folio->_entire_mapcount). */
  entireMapcount: Int32Array;
  /** Per 512-frame block: pins on the large folio's pages (folio->_pincount, exact). */
  pincount: Int32Array;
  /**
   * MM-id tracking of large folios (!hugetlb, 6.15+; on when the profile's wpReuseLarge is
   * `mm-exclusive`, the same series): per 512-frame block the two MM-id slots (folio->_mm_id[2],
   * here the mm id + 1, 0 = MM_ID_DUMMY), their mapcounts (folio->_mm_id_mapcount[2] + 1: 0 for
   * a free slot) and the "maybe mapped shared" bit (FOLIO_MM_IDS_SHARED_BIT).
   */
  mmIds = false;
  mmId0: Int32Array;
  mmId1: Int32Array;
  mmIdCount0: Int32Array;
  mmIdCount1: Int32Array;
  mmIdsShared: Uint8Array;
  /** Free 512-frame blocks (head pfns), linked through `next`; -1 = none. */
  freeBlockHead = -1;
  /** The page's content: an interned value id (0 = zero-fill). Read only: setValue. */
  value: FrameWords;
  /** Free-list link of a free frame. */
  next: Int32Array;
  /** page->private: the swap slot of a swap-cache page, else -1. */
  priv: Int32Array;
  /** Frames ever handed out (indices below this exist). */
  top = 1;
  freeHead = -1;
  /** Frames in use, the zero page excluded. */
  used = 0;
  /** Allocation limit (config.frames): allocating past it fails like the kernel's ENOMEM. */
  limit: number;
  /**
   * run --trace's change capture (src/engine/changes-live.ts), when it follows this table: the
   * frames whose refcount, mapcount, flags or value were written since it last took them. A
   * copy made into this table stops it (the capture starts over).
   */
  private touching = false;
  private touched = new StampList();
  /**
   * The accounting check's log, when it keeps its counts from step to step
   * (src/check/incremental.ts): the frames written since it last took them. A copy made into
   * this table stops it and marks it lost (the check starts over).
   */
  private logging = false;
  private logged = new StampList();
  /** The log no longer says what changed (a copy was made into this table): the check starts over. */
  logLost = false;

  constructor(limit: number, capacity = INITIAL_CAPACITY) {
    this.limit = limit;
    const cap = Math.max(2, capacity);
    this.refcount = this.rc = new Int32Array(cap);
    this.mapcount = this.mc = new Int32Array(cap);
    this.flags = this.fl = new Uint16Array(cap);
    this.value = this.val = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.priv = new Int32Array(cap).fill(-1);
    this.entireMapcount = new Int32Array((cap >>> 9) + 1);
    this.pincount = new Int32Array((cap >>> 9) + 1);
    this.mmId0 = new Int32Array((cap >>> 9) + 1);
    this.mmId1 = new Int32Array((cap >>> 9) + 1);
    this.mmIdCount0 = new Int32Array((cap >>> 9) + 1);
    this.mmIdCount1 = new Int32Array((cap >>> 9) + 1);
    this.mmIdsShared = new Uint8Array((cap >>> 9) + 1);
    this.fl[0] = PG_ZERO | PG_INUSE;
  }

  get capacity(): number {
    return this.refcount.length;
  }

  /** Make room for at least `n` frames in total without reallocating per frame. */
  reserve(n: number): void {
    if (n <= this.capacity) return;
    let cap = this.capacity;
    while (cap < n) cap *= 2;
    this.refcount = this.rc = grow(this.rc, cap);
    this.mapcount = this.mc = grow(this.mc, cap);
    this.flags = this.fl = grow(this.fl, cap);
    this.value = this.val = grow(this.val, cap);
    this.next = grow(this.next, cap);
    const old = this.priv.length;
    this.priv = grow(this.priv, cap);
    this.priv.fill(-1, old);
    this.entireMapcount = grow(this.entireMapcount, (cap >>> 9) + 1);
    this.pincount = grow(this.pincount, (cap >>> 9) + 1);
    this.mmId0 = grow(this.mmId0, (cap >>> 9) + 1);
    this.mmId1 = grow(this.mmId1, (cap >>> 9) + 1);
    this.mmIdCount0 = grow(this.mmIdCount0, (cap >>> 9) + 1);
    this.mmIdCount1 = grow(this.mmIdCount1, (cap >>> 9) + 1);
    this.mmIdsShared = grow(this.mmIdsShared, (cap >>> 9) + 1);
    if (this.touching) this.touched.grow(cap);
    if (this.logging) this.logged.grow(cap);
  }

  /** Frame pfn's refcount, mapcount, flags or value is being written: noted while a capture follows. */
  private note(pfn: number): void {
    if (this.touching) this.touched.add(pfn);
    if (this.logging) this.logged.add(pfn);
  }

  /** Frames [start, end) are being written (note). */
  private noteRange(start: number, end: number): void {
    if (this.touching) for (let p = start; p < end; p++) this.touched.add(p);
    if (this.logging) for (let p = start; p < end; p++) this.logged.add(p);
  }

  /** set_page_count(): frame pfn's refcount is n. */
  setRefcount(pfn: number, n: number): void {
    this.rc[pfn] = n;
    this.note(pfn);
  }

  /** page_ref_add() (d < 0: page_ref_sub()): d references more on frame pfn. */
  addRefcount(pfn: number, d: number): void {
    this.rc[pfn] += d;
    this.note(pfn);
  }

  /** page_ref_sub_return(): refs references fewer on frame pfn; returns the count left (put_page()'s path). */
  refSubReturn(pfn: number, refs: number): number {
    const left = (this.rc[pfn]! - refs) | 0;
    this.rc[pfn] = left;
    this.note(pfn);
    return left;
  }

  /** Frame pfn's PTE mapcount is n (a new page's first mapping, folio_add_new_anon_rmap()). */
  setMapcount(pfn: number, n: number): void {
    this.mc[pfn] = n;
    this.note(pfn);
  }

  /** atomic_add() on page->_mapcount: d PTE mappings more of frame pfn (d < 0: fewer), with no MM-id slot kept (addRmapPte keeps it). */
  addMapcount(pfn: number, d: number): void {
    this.mc[pfn] += d;
    this.note(pfn);
  }

  /** Frame pfn's flags are v (set_bit/clear_bit on page->flags). */
  setFlags(pfn: number, v: number): void {
    this.fl[pfn] = v;
    this.note(pfn);
  }

  /** Frame pfn's content is value v (a store to the page, copy_user_highpage(), swap-in). */
  setValue(pfn: number, v: number): void {
    this.val[pfn] = v;
    this.note(pfn);
  }

  /** copy_user_large_folio(): the contents of the n frames from src copied to the n from dst. */
  copyValues(dst: number, src: number, n: number): void {
    this.val.copyWithin(dst, src, src + n);
    this.noteRange(dst, dst + n);
  }

  /** The first n frames' flags into dst (a read, for the accounting check's copy of them). */
  copyFlagsOut(n: number, dst: Uint16Array): void {
    dst.set(this.fl.subarray(0, n));
  }

  /** Start noting the frames written (or start over: those noted before are forgotten), for run --trace's change capture. */
  startTouched(): void {
    this.touching = true;
    this.touched.restart(this.capacity);
  }

  /** Whether the frames written are noted since startTouched (no copy was made into this table since). */
  get tracksTouched(): boolean {
    return this.touching;
  }

  /** The frames written since startTouched or clearTouched, each once, in the order first written (a view, valid until the next write). */
  get touchedFrames(): Int32Array {
    return this.touched.listed;
  }

  /** Forget the frames noted: the next ones are those written from now on. */
  clearTouched(): void {
    this.touched.clear();
  }

  /** Start logging the frames written (or restart: those logged before are forgotten), for the accounting check. */
  startLog(): void {
    this.logging = true;
    this.logLost = false;
    this.logged.restart(this.capacity);
  }

  /** Whether the frames written are logged (startLog, and no copy made into this table since). */
  get logs(): boolean {
    return this.logging;
  }

  /** The frames written since startLog or clearLog, each once (a view, valid until the next write). */
  get loggedFrames(): Int32Array {
    return this.logged.listed;
  }

  /** Forget the frames logged: the next ones are those written from now on. */
  clearLog(): void {
    this.logged.clear();
  }

  /** A copy was made into this table: the log no longer says what changed. */
  private stopLog(): void {
    if (this.logged === undefined) this.logged = new StampList();
    this.logging = false;
    this.logLost = true;
  }

  /** The first n frames' refcount, mapcount, flags and value, into `dst`'s arrays where they have room (else new ones as long as the table's): a read, for run --trace's capture. */
  copyStateOut(n: number, dst?: FrameState): FrameState {
    return {
      refcount: copyOut32(this.rc, n, dst?.refcount), mapcount: copyOut32(this.mc, n, dst?.mapcount),
      flags: copyOut16(this.fl, n, dst?.flags), value: copyOut32(this.val, n, dst?.value),
    };
  }

  /**
   * Whether a KSM page is in ksmd's stable tree (its folio->mapping names a stable node). A page
   * made KSM by a two-page merge whose second half failed is KSM but in no tree. `next` is the
   * free-list link of a free frame, this word of an allocated one (a union, as in struct page):
   * 0 in no tree, else the stable node's order in its chain's list of dups (ksm.ts).
   */
  inStableTree(pfn: number): boolean {
    return this.next[pfn]! > 0;
  }

  /** A stable-tree KSM page's order in its stable node chain: 1 the head, the higher the further back (0: in no tree). */
  stableOrder(pfn: number): number {
    return this.next[pfn]!;
  }

  setStableOrder(pfn: number, order: number): void {
    this.next[pfn] = order;
  }

  /** alloc_page(): a zeroed frame with refcount 1 and the given flags, or -1 past the limit. */
  alloc(flags: number): number {
    if (this.used >= this.limit) return -1;
    let pfn = this.freeHead;
    if (pfn >= 0) {
      this.freeHead = this.next[pfn]!;
    } else {
      pfn = this.top;
      if (pfn >= this.capacity) this.reserve(pfn + 1);
      this.top = pfn + 1;
    }
    this.used++;
    this.next[pfn] = 0;
    this.rc[pfn] = 1;
    this.mc[pfn] = 0;
    this.fl[pfn] = flags | PG_INUSE;
    this.val[pfn] = 0;
    this.priv[pfn] = -1;
    this.note(pfn);
    return pfn;
  }

  /** free_page(): back on the free list; its state is wiped. */
  free(pfn: number): void {
    this.fl[pfn] = 0;
    this.rc[pfn] = 0;
    this.mc[pfn] = 0;
    this.val[pfn] = 0;
    this.note(pfn);
    this.next[pfn] = this.freeHead;
    this.freeHead = pfn;
    this.used--;
  }

  /**
   * folio_alloc(order 9): a zeroed 2 MiB folio, 512 frames at a 512-aligned pfn, all PG_LARGE with
   * `flags`; refcount 1 on the head; counted as 512 frames against the limit. Returns the head, or
   * -1 past the limit (the caller falls back to 4 KiB pages, as the kernel does). A hugetlb folio
   * (PG_HUGETLB in `flags`) comes from the huge page pool (hugetlb.ts counts it): not charged here.
   */
  allocLarge(flags: number): number {
    const charged = (flags & PG_HUGETLB) === 0;
    if (charged && this.used + HPAGE_PMD_NR > this.limit) return -1;
    let head = this.freeBlockHead;
    if (head >= 0) {
      this.freeBlockHead = this.next[head]!;
    } else {
      // A fresh block above `top`; the frames skipped to align it go on the small free list.
      head = Math.ceil(this.top / HPAGE_PMD_NR) * HPAGE_PMD_NR;
      if (head + HPAGE_PMD_NR > this.capacity) this.reserve(head + HPAGE_PMD_NR);
      // They were never handed out: their state is none already (nothing to note).
      for (let p = this.top; p < head; p++) {
        this.fl[p] = 0;
        this.next[p] = this.freeHead;
        this.freeHead = p;
      }
      this.top = head + HPAGE_PMD_NR;
    }
    if (charged) this.used += HPAGE_PMD_NR;
    const end = head + HPAGE_PMD_NR;
    this.rc.fill(0, head, end);
    this.mc.fill(0, head, end);
    this.fl.fill(flags | PG_INUSE | PG_LARGE, head, end);
    this.val.fill(0, head, end);
    this.next.fill(0, head, end);
    this.priv.fill(-1, head, end);
    this.rc[head] = 1;
    this.noteRange(head, end);
    this.entireMapcount[head >>> 9] = 0;
    this.pincount[head >>> 9] = 0;
    this.clearMmIds(head >>> 9);
    return head;
  }

  /** free_transhuge_page(): the whole block back on the block free list. */
  freeLarge(head: number): void {
    const end = head + HPAGE_PMD_NR;
    const charged = (this.flags[head]! & PG_HUGETLB) === 0;
    this.fl.fill(0, head, end);
    this.rc.fill(0, head, end);
    this.mc.fill(0, head, end);
    this.val.fill(0, head, end);
    this.noteRange(head, end);
    this.entireMapcount[head >>> 9] = 0;
    this.pincount[head >>> 9] = 0;
    this.clearMmIds(head >>> 9);
    this.next[head] = this.freeBlockHead;
    this.freeBlockHead = head;
    if (charged) this.used -= HPAGE_PMD_NR;
  }

  /** folio_ref_count(page_folio(pfn)): the frame's refcount, or the sum over a large folio's frames. */
  folioRefcount(pfn: number): number {
    if (!(this.flags[pfn]! & PG_LARGE)) return this.refcount[pfn]!;
    const head = pfn & ~(HPAGE_PMD_NR - 1);
    let n = 0;
    for (let p = head; p < head + HPAGE_PMD_NR; p++) n += this.refcount[p]!;
    return n;
  }

  /** folio_mapcount(): PTE mappings of all the folio's pages plus its PMD mappings (large folios). */
  folioMapcount(pfn: number): number {
    if (!(this.flags[pfn]! & PG_LARGE)) return this.mapcount[pfn]!;
    const head = pfn & ~(HPAGE_PMD_NR - 1);
    let n = this.entireMapcount[head >>> 9]!;
    for (let p = head; p < head + HPAGE_PMD_NR; p++) n += this.mapcount[p]!;
    return n;
  }

  /**
   * folio_precise_page_mapcount(): the page's PTE mappings plus its folio's PMD mappings (what
   * pagemap's PM_MMAP_EXCLUSIVE compares with 1 under CONFIG_PAGE_MAPCOUNT).
   */
  pageMapcount(pfn: number): number {
    if (!(this.flags[pfn]! & PG_LARGE)) return this.mapcount[pfn]!;
    return this.mapcount[pfn]! + this.entireMapcount[pfn >>> 9]!;
  }

  /** The largest page_mapcount() of any page of the folio (PTE mapcount + entire mapcount): reuse_swap_page()'s test on a compound page. */
  folioMaxMapcount(pfn: number): number {
    if (!(this.flags[pfn]! & PG_LARGE)) return this.mapcount[pfn]!;
    const head = pfn & ~(HPAGE_PMD_NR - 1);
    let m = 0;
    for (let p = head; p < head + HPAGE_PMD_NR; p++) if (this.mapcount[p]! > m) m = this.mapcount[p]!;
    return m + this.entireMapcount[head >>> 9]!;
  }

  /** Both MM-id slots free, the shared bit clear (a fresh folio, or one split into small pages). */
  clearMmIds(b: number): void {
    this.mmId0[b] = 0;
    this.mmId1[b] = 0;
    this.mmIdCount0[b] = 0;
    this.mmIdCount1[b] = 0;
    this.mmIdsShared[b] = 0;
  }

  /** Whether pfn's folio is a large folio whose mappings MM-id tracking follows (not hugetlb). */
  tracksMmIds(pfn: number): boolean {
    return this.mmIds && (this.flags[pfn]! & (PG_LARGE | PG_HUGETLB)) === PG_LARGE;
  }

  /** folio_set_large_mapcount(): a new large folio mapped `n` times by mm `mmId` alone (slot 0). */
  private folioSetLargeMapcount(pfn: number, mmId: number, n: number): void {
    if (!this.tracksMmIds(pfn)) return;
    const b = pfn >>> 9;
    this.clearMmIds(b);
    this.mmId0[b] = mmId + 1;
    this.mmIdCount0[b] = n;
  }

  /**
   * folio_add_return_large_mapcount(): `diff` mappings of the folio added in mm `mmId`. Called
   * after the mapcounts were raised (folioMapcount() is the new total).
   */
  folioAddLargeMapcount(pfn: number, mmId: number, diff: number): void {
    if (!this.tracksMmIds(pfn)) return;
    const b = pfn >>> 9;
    const id = mmId + 1;
    if (this.mmId0[b] === id) this.mmIdCount0[b]! += diff;
    else if (this.mmId1[b] === id) this.mmIdCount1[b]! += diff;
    else if (this.mmId0[b] === 0) {
      this.mmId0[b] = id;
      this.mmIdCount0[b] = diff;
      // Other mappings may exist already.
      if (this.folioMapcount(pfn) !== diff) this.mmIdsShared[b] = 1;
    } else if (this.mmId1[b] === 0) {
      this.mmId1[b] = id;
      this.mmIdCount1[b] = diff;
      this.mmIdsShared[b] = 1;
    }
    // Both slots taken by other mms: only the total counts it (the shared bit is set already).
  }

  /**
   * folio_sub_return_large_mapcount(): `diff` mappings removed in mm `mmId`, after the mapcounts
   * were lowered. A slot that would go below zero is freed (mappings added while no slot was
   * free); the shared bit clears when a slot holds every mapping left, and only then.
   */
  folioSubLargeMapcount(pfn: number, mmId: number, diff: number): void {
    if (!this.tracksMmIds(pfn)) return;
    const b = pfn >>> 9;
    const id = mmId + 1;
    if (this.mmId0[b] === id) {
      this.mmIdCount0[b]! -= diff;
      if (this.mmIdCount0[b]! > 0) return;
      this.mmId0[b] = 0;
      this.mmIdCount0[b] = 0;
    } else if (this.mmId1[b] === id) {
      this.mmIdCount1[b]! -= diff;
      if (this.mmIdCount1[b]! > 0) return;
      this.mmId1[b] = 0;
      this.mmIdCount1[b] = 0;
    }
    const total = this.folioMapcount(pfn);
    if (this.mmIdCount0[b] === total || this.mmIdCount1[b] === total) this.mmIdsShared[b] = 0;
  }

  /** folio_add_new_anon_rmap() of a PMD-mapped large folio: its one mapping, a PMD of mm `mmId`. */
  addNewRmapPmd(head: number, mmId: number): void {
    this.entireMapcount[head >>> 9] = 1;
    this.folioSetLargeMapcount(head, mmId, 1);
  }

  /** folio_add_rmap_pmd(): one PMD mapping of the large folio at head more, in mm `mmId`. */
  addRmapPmd(head: number, mmId: number): void {
    this.entireMapcount[head >>> 9]!++;
    this.folioAddLargeMapcount(head, mmId, 1);
  }

  /** folio_remove_rmap_pmd(): one PMD mapping fewer, in mm `mmId`. */
  removeRmapPmd(head: number, mmId: number): void {
    this.entireMapcount[head >>> 9]!--;
    this.folioSubLargeMapcount(head, mmId, 1);
  }

  /** folio_add_rmap_pte(): one PTE mapping of pfn more, in mm `mmId` (its mapcount, and its large folio's MM-id slot). */
  addRmapPte(pfn: number, mmId: number): void {
    this.mc[pfn]!++;
    this.note(pfn);
    // A small page has no slots: no call on fork's and zap's per-page paths.
    if (this.mmIds && this.flags[pfn]! & PG_LARGE) this.folioAddLargeMapcount(pfn, mmId, 1);
  }

  /**
   * folio_get() and folio_try_dup_anon_rmap_pte() / folio_dup_file_rmap_pte() (fork's
   * copy_present_pte() sharing a page): one reference and one PTE mapping of pfn more, in mm
   * `mmId`, its flags now `flags` (an anon page's PageAnonExclusive cleared). Fork's per-page
   * path, in one call: the frame is noted once.
   */
  dupRmapPte(pfn: number, mmId: number, flags: number): void {
    this.rc[pfn]!++;
    this.mc[pfn]!++;
    this.fl[pfn] = flags;
    // The rest out of line: fork's copy loop inlines this call whole.
    if (this.touching || this.logging || (this.mmIds && flags & PG_LARGE)) this.dupRmapPteRest(pfn, mmId, flags);
  }

  /** dupRmapPte's large-folio mapcount and its note, where either is needed. */
  private dupRmapPteRest(pfn: number, mmId: number, flags: number): void {
    if (this.mmIds && flags & PG_LARGE) this.folioAddLargeMapcount(pfn, mmId, 1);
    this.note(pfn);
  }

  /**
   * folio_remove_rmap_pte() and the drop of the reference the mapping held (zap_present_pte()'s
   * put, done at once): one PTE mapping and one reference of pfn fewer, in mm `mmId`; returns
   * the refcount left (the caller frees the frame at 0: Kernel.pageRefDropped). Zap's per-page
   * path, in one call: the frame is noted once.
   */
  zapRmapPte(pfn: number, mmId: number): number {
    this.mc[pfn]!--;
    const left = (this.rc[pfn]! - 1) | 0;
    this.rc[pfn] = left;
    this.note(pfn);
    if (this.mmIds && this.fl[pfn]! & PG_LARGE) this.folioSubLargeMapcount(pfn, mmId, 1);
    return left;
  }

  /** folio_remove_rmap_pte(): one PTE mapping of pfn fewer, in mm `mmId`. */
  removeRmapPte(pfn: number, mmId: number): void {
    this.mc[pfn]!--;
    this.note(pfn);
    if (this.mmIds && this.flags[pfn]! & PG_LARGE) this.folioSubLargeMapcount(pfn, mmId, 1);
  }

  /**
   * folio_maybe_mapped_shared() with MM-id tracking: a small or hugetlb folio when mapped more
   * than once; a large one when mapped more than once and the MM-ids shared bit is set.
   */
  folioMaybeMappedShared(pfn: number): boolean {
    const mapcount = this.folioMapcount(pfn);
    if (!this.tracksMmIds(pfn)) return mapcount > 1;
    if (mapcount <= 1) return false;
    return this.mmIdsShared[pfn >>> 9] !== 0;
  }

  inUse(pfn: number): boolean {
    return pfn > 0 && pfn < this.top && (this.flags[pfn]! & PG_INUSE) !== 0;
  }

  /** A copy; into `dst` (its arrays reused when large enough) when given: the explorer copies a state per transition. */
  clone(dst?: FrameTable): FrameTable {
    if (dst !== undefined && dst !== this && dst.holds(this.top + 8, this.mmIds)) return this.copyInto(dst);
    // A new one by the constructor (its arrays the smallest, replaced below): the hidden class constructed tables have.
    const c = dst ?? new FrameTable(this.limit, 2);
    c.limit = this.limit;
    // Room for a few more frames, so the copy does not regrow at its first allocation.
    const cap = this.top + 8;
    // A table's arrays hold nothing at and past its top (priv: -1): only the spare's first
    // `top` frames are cleared.
    const used = dst !== undefined && dst !== this ? dst.top : undefined;
    c.refcount = c.rc = copyPrefix32(this.rc, this.top, cap, dst?.rc, used);
    c.mapcount = c.mc = copyPrefix32(this.mc, this.top, cap, dst?.mc, used);
    c.flags = c.fl = copyPrefix16(this.fl, this.top, cap, dst?.fl, used);
    c.value = c.val = copyPrefix32(this.val, this.top, cap, dst?.val, used);
    c.next = copyPrefix32(this.next, this.top, cap, dst?.next, used);
    const priv = copyPrefix32(this.priv, this.top, cap, dst?.priv, used);
    // priv is -1 past top: a new array is filled, a reused one only where it was used (or zeroed).
    priv.fill(-1, this.top, priv !== dst?.priv ? priv.length : Math.max(this.top, used!));
    c.priv = priv;
    // Per-block arrays as long as the frame arrays are (a reused dst's may be longer than cap):
    // allocLarge() grows them only with the frames.
    const blocks = (c.refcount.length >>> 9) + 1;
    const n = (this.top >>> 9) + 1;
    c.entireMapcount = copyPrefix32(this.entireMapcount, n, blocks, dst?.entireMapcount, undefined);
    c.pincount = copyPrefix32(this.pincount, n, blocks, dst?.pincount, undefined);
    if (!this.mmIds && dst !== undefined && dst !== this && !dst.mmIds) {
      // Without MM-id tracking the slots are never set (tracksMmIds() is false): all zero in both.
      c.mmId0 = zeroed(dst.mmId0, blocks);
      c.mmId1 = zeroed(dst.mmId1, blocks);
      c.mmIdCount0 = zeroed(dst.mmIdCount0, blocks);
      c.mmIdCount1 = zeroed(dst.mmIdCount1, blocks);
      c.mmIdsShared = dst.mmIdsShared.length >= blocks ? dst.mmIdsShared : new Uint8Array(blocks);
    } else {
      c.mmId0 = copyPrefix32(this.mmId0, n, blocks, dst?.mmId0, undefined);
      c.mmId1 = copyPrefix32(this.mmId1, n, blocks, dst?.mmId1, undefined);
      c.mmIdCount0 = copyPrefix32(this.mmIdCount0, n, blocks, dst?.mmIdCount0, undefined);
      c.mmIdCount1 = copyPrefix32(this.mmIdCount1, n, blocks, dst?.mmIdCount1, undefined);
      c.mmIdsShared = copyPrefix8(this.mmIdsShared, n, blocks, dst?.mmIdsShared, undefined);
    }
    c.mmIds = this.mmIds;
    c.freeBlockHead = this.freeBlockHead;
    c.top = this.top;
    c.freeHead = this.freeHead;
    c.used = this.used;
    // Frames written are no longer noted: run --trace's capture starts over (a new table has
    // its own list; a reused one keeps its list's arrays).
    c.touching = false;
    if (c.touched === undefined) c.touched = new StampList();
    c.stopLog();
    return c;
  }

  /**
   * Every array has room for `cap` frames (and their blocks), and with `mmIds` false neither
   * table tracks MM ids: clone() copies into this table in one pass (copyInto).
   */
  private holds(cap: number, mmIds: boolean): boolean {
    const blocks = (cap >>> 9) + 1;
    return this.rc.length >= cap && this.mc.length >= cap && this.fl.length >= cap && this.val.length >= cap
      && this.next.length >= cap && this.priv.length >= cap && this.entireMapcount.length >= blocks && this.pincount.length >= blocks
      && (mmIds || this.mmIds ? this.mmId0.length >= blocks && this.mmId1.length >= blocks && this.mmIdCount0.length >= blocks
        && this.mmIdCount1.length >= blocks && this.mmIdsShared.length >= blocks : true);
  }

  /**
   * clone() into `c`, a table done with whose arrays hold this one's frames (holds()): every
   * per-frame array in one loop, and the per-block ones in another (a call per array of a few
   * frames cost more than the copying). Past this table's top, c's arrays are cleared where c used them.
   */
  private copyInto(c: FrameTable): FrameTable {
    const top = this.top;
    const used = c.top;
    const rc = c.rc, mc = c.mc, fl = c.fl, val = c.val, nx = c.next, pv = c.priv;
    const rc0 = this.rc, mc0 = this.mc, fl0 = this.fl, val0 = this.val, nx0 = this.next, pv0 = this.priv;
    for (let i = 0; i < top; i++) {
      rc[i] = rc0[i]!;
      mc[i] = mc0[i]!;
      fl[i] = fl0[i]!;
      val[i] = val0[i]!;
      nx[i] = nx0[i]!;
      pv[i] = pv0[i]!;
    }
    for (let i = top; i < used; i++) {
      rc[i] = 0;
      mc[i] = 0;
      fl[i] = 0;
      val[i] = 0;
      nx[i] = 0;
      pv[i] = -1;
    }
    // Per block: the blocks up to top's are copied, the rest of c's cleared (as copyPrefix does).
    const n = (top >>> 9) + 1;
    copyBlocks(this.entireMapcount, c.entireMapcount, n);
    copyBlocks(this.pincount, c.pincount, n);
    // Without MM-id tracking in either, the slots are never set (tracksMmIds() is false): all zero in both.
    if (this.mmIds || c.mmIds) {
      copyBlocks(this.mmId0, c.mmId0, n);
      copyBlocks(this.mmId1, c.mmId1, n);
      copyBlocks(this.mmIdCount0, c.mmIdCount0, n);
      copyBlocks(this.mmIdCount1, c.mmIdCount1, n);
      copyBlocks8(this.mmIdsShared, c.mmIdsShared, n);
    }
    c.limit = this.limit;
    c.mmIds = this.mmIds;
    c.freeBlockHead = this.freeBlockHead;
    c.top = top;
    c.freeHead = this.freeHead;
    c.used = this.used;
    // Frames written are no longer noted: run --trace's capture starts over.
    c.touching = false;
    c.stopLog();
    return c;
  }
}

/** src[0..n) copied into dst when it is long enough, else into a new array as long as src. */
function copyOut32(src: Int32Array, n: number, dst: Int32Array | undefined): Int32Array {
  const out = dst !== undefined && dst.length >= n ? dst : new Int32Array(src.length);
  out.set(src.subarray(0, n));
  return out;
}

/** copyOut32 of a Uint16Array. */
function copyOut16(src: Uint16Array, n: number, dst: Uint16Array | undefined): Uint16Array {
  const out = dst !== undefined && dst.length >= n ? dst : new Uint16Array(src.length);
  out.set(src.subarray(0, n));
  return out;
}

/** The first n blocks of `a` into `b`, the rest of b zero. */
function copyBlocks(a: Int32Array, b: Int32Array, n: number): void {
  for (let i = 0; i < n; i++) b[i] = a[i]!;
  for (let i = n; i < b.length; i++) b[i] = 0;
}

/** copyBlocks of a byte array (one element type per function: its loads and stores stay monomorphic). */
function copyBlocks8(a: Uint8Array, b: Uint8Array, n: number): void {
  for (let i = 0; i < n; i++) b[i] = a[i]!;
  for (let i = n; i < b.length; i++) b[i] = 0;
}

/**
 * An array of at least `cap` elements holding the first `n` of `a`, zero after them: `reuse` when
 * it is large enough, else a new one. `reuseUsed`: how many of reuse's first elements may be
 * non-zero (default: all); the rest of it is zero already and not cleared again.
 */
export function copyPrefix<T extends Int32Array | Uint8Array | Uint16Array>(a: T, n: number, cap: number, reuse?: T, reuseUsed?: number): T {
  // One copier per element type: element loads and stores of one type stay monomorphic (a loop
  // over arrays of three types is several times slower).
  if (a instanceof Int32Array) return copyPrefix32(a, n, cap, reuse as Int32Array | undefined, reuseUsed) as T;
  if (a instanceof Uint16Array) return copyPrefix16(a, n, cap, reuse as Uint16Array | undefined, reuseUsed) as T;
  return copyPrefix8(a as Uint8Array, n, cap, reuse as Uint8Array | undefined, reuseUsed) as T;
}

/** copyPrefix of one element type (callers that know it skip the dispatch). */
export function copyPrefix32(a: Int32Array, n: number, cap: number, reuse: Int32Array | undefined, reuseUsed: number | undefined): Int32Array {
  const fresh = reuse === undefined || reuse === a || reuse.length < cap;
  const b = fresh ? new Int32Array(cap) : reuse;
  // A loop for a few elements (a subarray view costs more than copying them).
  if (n > 64) b.set(a.subarray(0, n));
  else for (let i = 0; i < n; i++) b[i] = a[i]!;
  if (!fresh) clearTail(b, n, reuseUsed ?? b.length);
  return b;
}

/** copyPrefix of one element type (callers that know it skip the dispatch). */
export function copyPrefix16(a: Uint16Array, n: number, cap: number, reuse: Uint16Array | undefined, reuseUsed: number | undefined): Uint16Array {
  const fresh = reuse === undefined || reuse === a || reuse.length < cap;
  const b = fresh ? new Uint16Array(cap) : reuse;
  if (n > 64) b.set(a.subarray(0, n));
  else for (let i = 0; i < n; i++) b[i] = a[i]!;
  if (!fresh) clearTail(b, n, reuseUsed ?? b.length);
  return b;
}

/** copyPrefix of one element type (callers that know it skip the dispatch). */
export function copyPrefix8(a: Uint8Array, n: number, cap: number, reuse: Uint8Array | undefined, reuseUsed: number | undefined): Uint8Array {
  const fresh = reuse === undefined || reuse === a || reuse.length < cap;
  const b = fresh ? new Uint8Array(cap) : reuse;
  if (n > 64) b.set(a.subarray(0, n));
  else for (let i = 0; i < n; i++) b[i] = a[i]!;
  if (!fresh) clearTail(b, n, reuseUsed ?? b.length);
  return b;
}

/** `reuse`, all zero, when it holds `n` elements, else a new zeroed array of `n`. */
function zeroed(reuse: Int32Array, n: number): Int32Array {
  return reuse.length >= n ? reuse : new Int32Array(n);
}

/** b[n..used) = 0 (nothing when used <= n). */
function clearTail(b: Int32Array | Uint16Array | Uint8Array, n: number, used: number): void {
  if (used > n) b.fill(0, n, used);
}

function grow<T extends Int32Array | Uint8Array | Uint16Array>(a: T, cap: number): T {
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a);
  return b;
}

export { grow as growTypedArray };
