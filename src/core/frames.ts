// Physical frames as a struct of arrays: refcount, mapcount, flags and the page's value.
// Frame 0 is the shared zero page; it is never allocated or freed.

import { PG_INUSE, PG_ZERO } from './constants.js';

const INITIAL_CAPACITY = 1024;

export class FrameTable {
  refcount: Int32Array;
  mapcount: Int32Array;
  flags: Uint8Array;
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
    this.flags = new Uint8Array(cap);
    this.value = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.priv = new Int32Array(cap).fill(-1);
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
  }

  /**
   * Whether a KSM page is in ksmd's stable tree (its folio->mapping names a stable node). A page
   * made KSM by a two-page merge whose second half failed is KSM but in no tree. `next` is the
   * free-list link of a free frame, this bit of an allocated one (a union, as in struct page).
   */
  inStableTree(pfn: number): boolean {
    return this.next[pfn] === 1;
  }

  setStableTree(pfn: number, on: boolean): void {
    this.next[pfn] = on ? 1 : 0;
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

  inUse(pfn: number): boolean {
    return pfn > 0 && pfn < this.top && (this.flags[pfn]! & PG_INUSE) !== 0;
  }

  /** A copy; into `dst` (its arrays reused when large enough) when given: the explorer copies a state per transition. */
  clone(dst?: FrameTable): FrameTable {
    const c = dst ?? (Object.create(FrameTable.prototype) as FrameTable);
    c.limit = this.limit;
    // Room for a few more frames, so the copy does not regrow at its first allocation.
    const cap = this.top + 8;
    c.refcount = copyPrefix(this.refcount, this.top, cap, dst?.refcount);
    c.mapcount = copyPrefix(this.mapcount, this.top, cap, dst?.mapcount);
    c.flags = copyPrefix(this.flags, this.top, cap, dst?.flags);
    c.value = copyPrefix(this.value, this.top, cap, dst?.value);
    c.next = copyPrefix(this.next, this.top, cap, dst?.next);
    c.priv = copyPrefix(this.priv, this.top, cap, dst?.priv);
    c.priv.fill(-1, this.top);
    c.top = this.top;
    c.freeHead = this.freeHead;
    c.used = this.used;
    return c;
  }
}

/**
 * An array of at least `cap` elements holding the first `n` of `a`, zero after them: `reuse` when
 * it is large enough (zeroed past n), else a new one.
 */
export function copyPrefix<T extends Int32Array | Uint8Array | Uint16Array>(a: T, n: number, cap: number, reuse?: T): T {
  if (reuse !== undefined && reuse !== a && reuse.length >= cap) {
    reuse.set(a.subarray(0, n));
    reuse.fill(0, n);
    return reuse;
  }
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a.subarray(0, n));
  return b;
}

function grow<T extends Int32Array | Uint8Array | Uint16Array>(a: T, cap: number): T {
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a);
  return b;
}

export { grow as growTypedArray };
