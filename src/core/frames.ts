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

import { HPAGE_PMD_NR, PG_HUGETLB, PG_INUSE, PG_LARGE, PG_ZERO } from './constants.js';

const INITIAL_CAPACITY = 1024;

export class FrameTable {
  refcount: Int32Array;
  mapcount: Int32Array;
  flags: Uint16Array;
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
  /** The page's content: an interned value id (0 = zero-fill). */
  value: Int32Array;
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

  constructor(limit: number, capacity = INITIAL_CAPACITY) {
    this.limit = limit;
    const cap = Math.max(2, capacity);
    this.refcount = new Int32Array(cap);
    this.mapcount = new Int32Array(cap);
    this.flags = new Uint16Array(cap);
    this.value = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.priv = new Int32Array(cap).fill(-1);
    this.entireMapcount = new Int32Array((cap >>> 9) + 1);
    this.pincount = new Int32Array((cap >>> 9) + 1);
    this.mmId0 = new Int32Array((cap >>> 9) + 1);
    this.mmId1 = new Int32Array((cap >>> 9) + 1);
    this.mmIdCount0 = new Int32Array((cap >>> 9) + 1);
    this.mmIdCount1 = new Int32Array((cap >>> 9) + 1);
    this.mmIdsShared = new Uint8Array((cap >>> 9) + 1);
    this.flags[0] = PG_ZERO | PG_INUSE;
  }

  get capacity(): number {
    return this.refcount.length;
  }

  /** Make room for at least `n` frames in total without reallocating per frame. */
  reserve(n: number): void {
    if (n <= this.capacity) return;
    let cap = this.capacity;
    while (cap < n) cap *= 2;
    this.refcount = grow(this.refcount, cap);
    this.mapcount = grow(this.mapcount, cap);
    this.flags = grow(this.flags, cap);
    this.value = grow(this.value, cap);
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
    this.refcount[pfn] = 1;
    this.mapcount[pfn] = 0;
    this.flags[pfn] = flags | PG_INUSE;
    this.value[pfn] = 0;
    this.priv[pfn] = -1;
    return pfn;
  }

  /** free_page(): back on the free list; its state is wiped. */
  free(pfn: number): void {
    this.flags[pfn] = 0;
    this.refcount[pfn] = 0;
    this.mapcount[pfn] = 0;
    this.value[pfn] = 0;
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
      for (let p = this.top; p < head; p++) {
        this.flags[p] = 0;
        this.next[p] = this.freeHead;
        this.freeHead = p;
      }
      this.top = head + HPAGE_PMD_NR;
    }
    if (charged) this.used += HPAGE_PMD_NR;
    const end = head + HPAGE_PMD_NR;
    this.refcount.fill(0, head, end);
    this.mapcount.fill(0, head, end);
    this.flags.fill(flags | PG_INUSE | PG_LARGE, head, end);
    this.value.fill(0, head, end);
    this.next.fill(0, head, end);
    this.priv.fill(-1, head, end);
    this.refcount[head] = 1;
    this.entireMapcount[head >>> 9] = 0;
    this.pincount[head >>> 9] = 0;
    this.clearMmIds(head >>> 9);
    return head;
  }

  /** free_transhuge_page(): the whole block back on the block free list. */
  freeLarge(head: number): void {
    const end = head + HPAGE_PMD_NR;
    const charged = (this.flags[head]! & PG_HUGETLB) === 0;
    this.flags.fill(0, head, end);
    this.refcount.fill(0, head, end);
    this.mapcount.fill(0, head, end);
    this.value.fill(0, head, end);
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
    this.mapcount[pfn]!++;
    // A small page has no slots: no call on fork's and zap's per-page paths.
    if (this.mmIds && this.flags[pfn]! & PG_LARGE) this.folioAddLargeMapcount(pfn, mmId, 1);
  }

  /** folio_remove_rmap_pte(): one PTE mapping of pfn fewer, in mm `mmId`. */
  removeRmapPte(pfn: number, mmId: number): void {
    this.mapcount[pfn]!--;
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
    const c = dst ?? (Object.create(FrameTable.prototype) as FrameTable);
    c.limit = this.limit;
    // Room for a few more frames, so the copy does not regrow at its first allocation.
    const cap = this.top + 8;
    // A table's arrays hold nothing at and past its top (priv: -1): only the spare's first
    // `top` frames are cleared.
    const used = dst !== undefined && dst !== this ? dst.top : undefined;
    c.refcount = copyPrefix32(this.refcount, this.top, cap, dst?.refcount, used);
    c.mapcount = copyPrefix32(this.mapcount, this.top, cap, dst?.mapcount, used);
    c.flags = copyPrefix16(this.flags, this.top, cap, dst?.flags, used);
    c.value = copyPrefix32(this.value, this.top, cap, dst?.value, used);
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
    return c;
  }

  /**
   * Every array has room for `cap` frames (and their blocks), and with `mmIds` false neither
   * table tracks MM ids: clone() copies into this table in one pass (copyInto).
   */
  private holds(cap: number, mmIds: boolean): boolean {
    const blocks = (cap >>> 9) + 1;
    return this.refcount.length >= cap && this.mapcount.length >= cap && this.flags.length >= cap && this.value.length >= cap
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
    const rc = c.refcount, mc = c.mapcount, fl = c.flags, val = c.value, nx = c.next, pv = c.priv;
    const rc0 = this.refcount, mc0 = this.mapcount, fl0 = this.flags, val0 = this.value, nx0 = this.next, pv0 = this.priv;
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
    return c;
  }
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
