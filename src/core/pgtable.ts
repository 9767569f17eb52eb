// Page tables as one arena of 512-entry tables (struct of arrays).
// Upper levels (PGD, PUD, PMD) hold a child table index in `entry` (0 = none);
// the PTE level holds a pfn (or swap slot) in `entry` and the PTE bits in `bits` (0 = pte_none).

import { PTRS_PER_TABLE, TABLE_SHIFT } from './constants.js';
import { copyPrefix, copyPrefix32, copyPrefix8, growTypedArray } from './frames.js';

const INITIAL_TABLES = 64;

export class TableArena {
  entry: Int32Array;
  bits: Uint16Array;
  /** Per table: its level (0 = PTE ... 3 = PGD). */
  level: Uint8Array;
  /** Per table: how many of its entries are not none. */
  filled: Int32Array;
  /** Per table: free-list link. */
  nextFree: Int32Array;
  /** Per PTE table: how many PMD entries point at it (COW page tables share one table). */
  share: Int32Array;
  /** Per PTE table: the mm charged for it and its pages (RSS, page-table bytes), or -1. */
  owner: Int32Array;
  /** Tables ever handed out; table 0 is the null table and never used. */
  top = 1;
  freeHead = -1;
  /** Tables in use. */
  used = 0;

  constructor(capacity = INITIAL_TABLES) {
    const cap = Math.max(2, capacity);
    this.entry = new Int32Array(cap * PTRS_PER_TABLE);
    this.bits = new Uint16Array(cap * PTRS_PER_TABLE);
    this.level = new Uint8Array(cap);
    this.filled = new Int32Array(cap);
    this.nextFree = new Int32Array(cap);
    this.share = new Int32Array(cap);
    this.owner = new Int32Array(cap).fill(-1);
  }

  get capacity(): number {
    return this.level.length;
  }

  reserve(tables: number): void {
    if (tables <= this.capacity) return;
    let cap = this.capacity;
    while (cap < tables) cap *= 2;
    this.entry = growTypedArray(this.entry, cap * PTRS_PER_TABLE);
    this.bits = growTypedArray(this.bits, cap * PTRS_PER_TABLE);
    this.level = growTypedArray(this.level, cap);
    this.filled = growTypedArray(this.filled, cap);
    this.nextFree = growTypedArray(this.nextFree, cap);
    this.share = growTypedArray(this.share, cap);
    this.owner = growTypedArray(this.owner, cap);
  }

  /** pte_alloc_one() / pmd_alloc_one() ...: a zeroed table of the given level. */
  alloc(level: number): number {
    let t = this.freeHead;
    if (t >= 0) {
      this.freeHead = this.nextFree[t]!;
    } else {
      t = this.top;
      if (t >= this.capacity) this.reserve(t + 1);
      this.top = t + 1;
    }
    this.used++;
    this.level[t] = level;
    this.filled[t] = 0;
    this.share[t] = 1;
    this.owner[t] = -1;
    return t;
  }

  /** Free a table; its entries must already be none. */
  free(t: number): void {
    const base = t << TABLE_SHIFT;
    this.entry.fill(0, base, base + PTRS_PER_TABLE);
    this.bits.fill(0, base, base + PTRS_PER_TABLE);
    this.filled[t] = 0;
    this.nextFree[t] = this.freeHead;
    this.freeHead = t;
    this.used--;
  }

  /** A copy; into `dst` (its arrays reused when large enough) when given: the explorer copies a state per transition. */
  clone(dst?: TableArena): TableArena {
    if (dst !== undefined && dst !== this && dst.holds(this.top + 4)) return this.copyInto(dst);
    const c = dst ?? (Object.create(TableArena.prototype) as TableArena);
    // Room for a few more tables, so the copy does not regrow at its first allocation.
    const cap = this.top + 4;
    // Entries past `top` are zero (a table is handed out zeroed); a reused array is zeroed only where the old copy used it.
    c.entry = copyEntries(this.entry, this.top, cap, dst);
    c.bits = copyEntries(this.bits, this.top, cap, dst);
    // Per-table arrays hold nothing past top in a copy: only the spare's first `top` are cleared.
    const used = dst !== undefined && dst !== this ? dst.top : undefined;
    c.level = copyPrefix8(this.level, this.top, cap, dst?.level, used);
    c.filled = copyPrefix32(this.filled, this.top, cap, dst?.filled, used);
    c.nextFree = copyPrefix32(this.nextFree, this.top, cap, dst?.nextFree, used);
    c.share = copyPrefix32(this.share, this.top, cap, dst?.share, used);
    c.owner = copyPrefix32(this.owner, this.top, cap, dst?.owner, used);
    c.top = this.top;
    c.freeHead = this.freeHead;
    c.used = this.used;
    return c;
  }

  /** Every array has room for `cap` tables: clone() copies into this arena in one pass (copyInto). */
  private holds(cap: number): boolean {
    return this.entry.length >= cap * PTRS_PER_TABLE && this.bits.length >= cap * PTRS_PER_TABLE && this.level.length >= cap
      && this.filled.length >= cap && this.nextFree.length >= cap && this.share.length >= cap && this.owner.length >= cap;
  }

  /**
   * clone() into `c`, an arena done with whose arrays hold this one's tables (holds()): the
   * entries copied at once, the per-table arrays in one loop (a call per array of a few tables
   * cost more than the copying). Past this arena's top, c's arrays are cleared where c used them.
   */
  private copyInto(c: TableArena): TableArena {
    const top = this.top;
    const used = c.top;
    c.entry.set(entryPrefix(this.entry, top * PTRS_PER_TABLE));
    c.bits.set(bitsPrefix(this.bits, top * PTRS_PER_TABLE));
    if (used > top) {
      c.entry.fill(0, top * PTRS_PER_TABLE, used * PTRS_PER_TABLE);
      c.bits.fill(0, top * PTRS_PER_TABLE, used * PTRS_PER_TABLE);
    }
    const lv = c.level, fi = c.filled, nf = c.nextFree, sh = c.share, ow = c.owner;
    const lv0 = this.level, fi0 = this.filled, nf0 = this.nextFree, sh0 = this.share, ow0 = this.owner;
    for (let t = 0; t < top; t++) {
      lv[t] = lv0[t]!;
      fi[t] = fi0[t]!;
      nf[t] = nf0[t]!;
      sh[t] = sh0[t]!;
      ow[t] = ow0[t]!;
    }
    for (let t = top; t < used; t++) {
      lv[t] = 0;
      fi[t] = 0;
      nf[t] = 0;
      sh[t] = 0;
      ow[t] = 0;
    }
    c.top = top;
    c.freeHead = this.freeHead;
    c.used = this.used;
    return c;
  }
}

/** The entries of the first `top` tables, into `dst`'s array when it has room for `cap` tables. */
function copyEntries<T extends Int32Array | Uint16Array>(a: T, top: number, cap: number, dst: TableArena | undefined): T {
  const reuse = (a instanceof Int32Array ? dst?.entry : dst?.bits) as T | undefined;
  if (dst === undefined || reuse === undefined || reuse === a || reuse.length < cap * PTRS_PER_TABLE) return copyPrefix(a, top * PTRS_PER_TABLE, cap * PTRS_PER_TABLE);
  reuse.set(prefixView(a, top * PTRS_PER_TABLE));
  if (dst.top > top) reuse.fill(0, top * PTRS_PER_TABLE, dst.top * PTRS_PER_TABLE);
  return reuse;
}

// The last prefix view made of an entry and of a bits array: the explorer copies one state into
// each of its children in turn, and a view per copy was most of what a copy allocated.
let entrySrc: Int32Array | null = null;
let entryView: Int32Array = new Int32Array(0);
let bitsSrc: Uint16Array | null = null;
let bitsView: Uint16Array = new Uint16Array(0);

/** a.subarray(0, n), the same view as last time when it is of the same array and length. */
function prefixView<T extends Int32Array | Uint16Array>(a: T, n: number): T {
  return (a instanceof Int32Array ? entryPrefix(a, n) : bitsPrefix(a as Uint16Array, n)) as T;
}

/** prefixView of an entry array (no instanceof: it walks the prototype chain, per copy). */
function entryPrefix(a: Int32Array, n: number): Int32Array {
  if (entrySrc !== a || entryView.length !== n) {
    entrySrc = a;
    entryView = a.subarray(0, n);
  }
  return entryView;
}

/** prefixView of a bits array. */
function bitsPrefix(a: Uint16Array, n: number): Uint16Array {
  if (bitsSrc !== a || bitsView.length !== n) {
    bitsSrc = a;
    bitsView = a.subarray(0, n);
  }
  return bitsView;
}
