// Page tables as one arena of 512-entry tables (struct of arrays).
// Upper levels (PGD, PUD, PMD) hold a child table index in `entry` (0 = none);
// the PTE level holds a pfn (or swap slot) in `entry` and the PTE bits in `bits` (0 = pte_none).

import { PTRS_PER_TABLE, TABLE_SHIFT } from './constants.js';
import { growTypedArray } from './frames.js';
import { StampList } from './stamplist.js';

const INITIAL_TABLES = 64;

/** The longest log of writes kept for the accounting check (numbers): past it the check starts over. */
const MAX_LOG = 1 << 24;

/**
 * A table array as the model outside this file sees it: read only. Writes go through
 * TableArena's setters, which note the table written, so that a copy into a copy of the same
 * source copies only the tables either wrote since (the explorer copies a state per transition).
 */
export interface TableWords<T> {
  readonly [i: number]: number;
  readonly length: number;
  slice(start?: number, end?: number): T;
}

export class TableArena {
  /** Per entry: a child table (upper levels), or a pfn or swap slot (PTE level). Read only: setEntry/setPte. */
  entry: TableWords<Int32Array>;
  /** Per entry: the PTE (or PMD) bits. Read only: setBits/setPte. */
  bits: TableWords<Uint16Array>;
  /** The same arrays as entry and bits, written here only. */
  private e: Int32Array;
  private b: Uint16Array;
  /** The bits as Int32 words, two entries each (free() looks for entries left eight at a time). */
  private bw: Int32Array;
  /** Per table: the generation (gen) in which it was last noted written; the tables noted, nDirty of them. */
  private stamp: Int32Array;
  private dirty: Int32Array;
  /** Per table noted: the lowest and highest slot written in this generation. */
  private lo: Int32Array;
  private hi: Int32Array;
  private nDirty = 0;
  /** The tables held noted by holdTables (-1: none). */
  private heldA = -1;
  private heldB = -1;
  private gen = 1;
  /** Counts writes to the entries: a copy made from this arena is still exact while it does not change. */
  private version = 0;
  /** The arena this one was last copied from and its version then (copyInto: what can be copied alone). */
  private src: TableArena | null = null;
  private srcVersion = -1;
  /** Per table: its level (0 = PTE ... 3 = PGD). */
  level: Uint8Array;
  /** Per table: how many of its entries are not none. Read only: setFilled/addFilled. */
  filled: TableWords<Int32Array>;
  /** The same array as filled, written here only. */
  private fi: Int32Array;
  /** Per table: free-list link. */
  nextFree: Int32Array;
  /** Per PTE table: how many PMD entries point at it (COW page tables share one table). */
  share: Int32Array;
  /** Per PTE table: the mm charged for it and its pages (RSS, page-table bytes), or -1. Read only: setOwner. */
  owner: TableWords<Int32Array>;
  /** The same array as owner, written here only. */
  private ow: Int32Array;
  /**
   * What changed since the accounting check last took it (takeWritten), when that check keeps
   * its counts from step to step (src/check/incremental.ts): each entry written (slot, entry and
   * bits before, after: five numbers), and the tables whose counts or owner changed or that were
   * allocated or freed (a stamp per table: listed once a round). Off (logged false) but where
   * that check asked for it: the explorer's copies log nothing.
   */
  logged = false;
  /** The log no longer says what changed (a copy was made into this arena, or it grew too long): the check starts over. */
  logLost = false;
  private writes = new Int32Array(0);
  private nWrites = 0;
  private readonly logTables = new StampList();
  /**
   * run --trace's change capture (src/engine/changes-live.ts), when it follows this arena: the
   * tables written since it last took them. A copy made into this arena stops it (the capture
   * starts over).
   */
  private touching = false;
  private readonly touched = new StampList();
  /** Tables ever handed out; table 0 is the null table and never used. */
  top = 1;
  freeHead = -1;
  /** Tables in use. */
  used = 0;

  constructor(capacity = INITIAL_TABLES) {
    const cap = Math.max(2, capacity);
    this.entry = this.e = new Int32Array(cap * PTRS_PER_TABLE);
    this.bits = this.b = new Uint16Array(cap * PTRS_PER_TABLE);
    this.bw = new Int32Array(this.b.buffer, 0, (cap * PTRS_PER_TABLE) >>> 1);
    this.stamp = new Int32Array(cap);
    this.dirty = new Int32Array(cap);
    this.lo = new Int32Array(cap);
    this.hi = new Int32Array(cap);
    this.level = new Uint8Array(cap);
    this.filled = this.fi = new Int32Array(cap);
    this.nextFree = new Int32Array(cap);
    this.share = new Int32Array(cap);
    this.owner = this.ow = new Int32Array(cap).fill(-1);
  }

  get capacity(): number {
    return this.level.length;
  }

  reserve(tables: number): void {
    if (tables <= this.capacity) return;
    let cap = this.capacity;
    while (cap < tables) cap *= 2;
    this.entry = this.e = growTypedArray(this.e, cap * PTRS_PER_TABLE);
    this.bits = this.b = growTypedArray(this.b, cap * PTRS_PER_TABLE);
    this.bw = new Int32Array(this.b.buffer, this.b.byteOffset, (cap * PTRS_PER_TABLE) >>> 1);
    this.stamp = growTypedArray(this.stamp, cap);
    this.dirty = growTypedArray(this.dirty, cap);
    this.lo = growTypedArray(this.lo, cap);
    this.hi = growTypedArray(this.hi, cap);
    this.level = growTypedArray(this.level, cap);
    this.filled = this.fi = growTypedArray(this.fi, cap);
    this.nextFree = growTypedArray(this.nextFree, cap);
    this.share = growTypedArray(this.share, cap);
    this.owner = this.ow = growTypedArray(this.ow, cap);
    if (this.logged) this.logTables.grow(cap);
    if (this.touching) this.touched.grow(cap);
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
    this.fi[t] = 0;
    this.share[t] = 1;
    this.ow[t] = -1;
    if (this.logged) this.logTables.add(t);
    return t;
  }

  /** Free a table; its entries must already be none. */
  free(t: number): void {
    // Entries left are wiped; only those are noted written (most often none: a copy then
    // copies nothing of the table).
    const base = t << TABLE_SHIFT;
    const e = this.e;
    const bw = this.bw;
    let left = 0;
    for (let s = base, w = base >>> 1; s < base + PTRS_PER_TABLE; s += 4, w += 2) left |= e[s]! | e[s + 1]! | e[s + 2]! | e[s + 3]! | bw[w]! | bw[w + 1]!;
    if (left !== 0) {
      const b = this.b;
      for (let s = base; s < base + PTRS_PER_TABLE; s++) if (e[s] !== 0 || b[s] !== 0) this.setPte(s, 0, 0);
    }
    this.fi[t] = 0;
    // A table freed is noted written even with no entry left: an address space whose PGD goes is gone.
    if (this.touching) this.touched.add(t);
    this.nextFree[t] = this.freeHead;
    this.freeHead = t;
    this.used--;
    if (this.logged) this.logTables.add(t);
  }

  /** Table t counts `n` entries not none. */
  setFilled(t: number, n: number): void {
    this.fi[t] = n;
    if (this.logged) this.logTables.add(t);
  }

  /** Table t counts `d` more entries not none (d < 0: fewer). */
  addFilled(t: number, d: number): void {
    this.fi[t] += d;
    if (this.logged) this.logTables.add(t);
  }

  /** PTE table t is charged to mm `id` (-1: none). */
  setOwner(t: number, id: number): void {
    this.ow[t] = id;
    if (this.logged) this.logTables.add(t);
  }

  // The three setters test holdTables' two tables themselves: that test in a helper of its own
  // (a call more in each) made fork of 1 GiB 8-17% slower (5.5 against 5.9-6.5 ms), as fork's
  // copy loop then no longer inlined its per-page calls whole.

  /** Entry `slot` (table << TABLE_SHIFT | index) names `v`: a child table, a pfn or a swap slot. */
  setEntry(slot: number, v: number): void {
    if (this.logged) this.logWrite(slot, v, this.b[slot]!);
    this.e[slot] = v;
    const t = slot >>> TABLE_SHIFT;
    if (t !== this.heldA && t !== this.heldB) this.note(slot);
  }

  /** Entry `slot`'s bits are `v`. */
  setBits(slot: number, v: number): void {
    if (this.logged) this.logWrite(slot, this.e[slot]!, v);
    this.b[slot] = v;
    const t = slot >>> TABLE_SHIFT;
    if (t !== this.heldA && t !== this.heldB) this.note(slot);
  }

  /** Entry `slot` names `entry` with bits `bits` (0 and 0: none). */
  setPte(slot: number, entry: number, bits: number): void {
    if (this.logged) this.logWrite(slot, entry, bits);
    this.e[slot] = entry;
    this.b[slot] = bits;
    const t = slot >>> TABLE_SHIFT;
    if (t !== this.heldA && t !== this.heldB) this.note(slot);
  }

  /** The first n entries, copied into dst when it has room (else a new array as long as the arena's): a read, for snapshots. */
  copyEntriesOut(n: number, dst?: Int32Array): Int32Array {
    const out = dst !== undefined && dst.length >= n ? dst : new Int32Array(this.e.length);
    out.set(entryPrefix(this.e, n));
    return out;
  }

  /** The first n entries' bits, as copyEntriesOut. */
  copyBitsOut(n: number, dst?: Uint16Array): Uint16Array {
    const out = dst !== undefined && dst.length >= n ? dst : new Uint16Array(this.b.length);
    out.set(bitsPrefix(this.b, n));
    return out;
  }

  /** Entry `slot` was written: a copy into an arena copied from this one copies it (copyInto). */
  private note(slot: number): void {
    this.version++;
    const t = slot >>> TABLE_SHIFT;
    if (this.touching) this.touched.add(t);
    if (this.stamp[t] !== this.gen) {
      this.stamp[t] = this.gen;
      this.dirty[this.nDirty++] = t;
      this.lo[t] = slot;
      this.hi[t] = slot;
    } else if (slot < this.lo[t]!) this.lo[t] = slot;
    else if (slot > this.hi[t]!) this.hi[t] = slot;
  }

  /**
   * Fork's copy loop (copy_pte_range) writes many slots of two tables in a row, the parent's and
   * the child's: slots [aLo, aHi) of one and [bLo, bHi) of the other are noted written at once
   * (a superset: a slot noted and not written is only copied for nothing), and the setters skip
   * noting each write to these two tables until releaseTables(). Their writes must stay within
   * those slots, and no copy may be made from or into the arena in between.
   */
  holdTables(aLo: number, aHi: number, bLo: number, bHi: number): void {
    if (aHi > aLo) {
      this.note(aLo);
      this.note(aHi - 1);
      this.heldA = aLo >>> TABLE_SHIFT;
    }
    if (bHi > bLo) {
      this.note(bLo);
      this.note(bHi - 1);
      this.heldB = bLo >>> TABLE_SHIFT;
    }
  }

  /** The end of holdTables(): each write is noted again. */
  releaseTables(): void {
    this.heldA = this.heldB = -1;
  }

  /** Start noting the tables written (or start over: those noted before are forgotten), for run --trace's change capture. */
  startTouched(): void {
    this.touching = true;
    this.touched.restart(this.capacity);
  }

  /** Whether the tables written are noted since startTouched (no copy was made into this arena since). */
  get tracksTouched(): boolean {
    return this.touching;
  }

  /** How many tables were written since startTouched or clearTouched. */
  get touchedCount(): number {
    return this.touched.n;
  }

  /** The i-th of them (i < touchedCount), in the order first written. */
  touchedTable(i: number): number {
    return this.touched.at(i);
  }

  /** Forget the tables noted: the next ones are those written from now on. */
  clearTouched(): void {
    this.touched.clear();
  }

  /** The bits as Int32 words, two entries each (a read: run --trace's capture skips empty runs of entries with it). */
  get bitWords(): TableWords<Int32Array> {
    return this.bw;
  }

  /** Start logging what changes (or restart: everything before is forgotten); takeWritten reads the log. */
  startLog(): void {
    this.logged = true;
    this.logLost = false;
    this.logTables.restart(this.capacity);
    this.nWrites = 0;
  }

  /** Entry `slot` is about to become (entry, bits). */
  private logWrite(slot: number, entry: number, bits: number): void {
    let w = this.writes;
    const n = this.nWrites;
    if (n + 5 > w.length) {
      // A log nobody takes stops growing: the check that takes it next starts over.
      if (w.length >= MAX_LOG) {
        this.logged = false;
        this.logLost = true;
        return;
      }
      this.writes = w = growTypedArray(w, Math.max(1024, w.length * 2));
    }
    w[n] = slot;
    w[n + 1] = this.e[slot]!;
    w[n + 2] = this.b[slot]!;
    w[n + 3] = entry;
    w[n + 4] = bits;
    this.nWrites = n + 5;
  }

  /**
   * What was logged since the last call: table(t) for each table whose counts or owner changed
   * (or was allocated or freed), then write(slot, entry and bits before, after) for each entry
   * written, in order; then the log starts over. The caller reads the arena meanwhile, and
   * writes nothing.
   */
  takeWritten(table: (t: number) => void, write: (slot: number, e0: number, b0: number, e1: number, b1: number) => void): void {
    const tl = this.logTables;
    for (let i = 0, n = tl.n; i < n; i++) table(tl.at(i));
    const w = this.writes;
    for (let i = 0, n = this.nWrites; i < n; i += 5) write(w[i]!, w[i + 1]!, w[i + 2]!, w[i + 3]!, w[i + 4]!);
    tl.clear();
    this.nWrites = 0;
  }

  /** Tests: check every copy that copied only the tables written against the source (checkCopy), and count them. */
  static verifyCopies = false;
  static partialCopiesChecked = 0;

  /** A copy; into `dst` (its arrays reused when large enough) when given: the explorer copies a state per transition. */
  clone(dst?: TableArena): TableArena {
    // Room for a few more tables, so the copy does not regrow at its first allocation.
    const c = dst !== undefined && dst !== this ? dst : new TableArena(this.top + 4);
    c.reserve(this.top + 4);
    return this.copyInto(c);
  }

  /**
   * clone() into `c`, whose arrays hold this arena's tables. When c was last copied from this
   * arena and this one has not been written since, only the entries c wrote since differ: in each
   * table c wrote, those from the lowest to the highest it wrote are copied (cleared, past this
   * arena's top). Otherwise the entries are copied at once.
   * The per-table arrays are copied in one loop (a call per array of a few tables cost more than
   * the copying); past this arena's top, c's are cleared where c used them.
   */
  private copyInto(c: TableArena): TableArena {
    const top = this.top;
    const used = c.top;
    const partial = c.src === this && c.srcVersion === this.version;
    if (partial) {
      // Each table c wrote, from the lowest slot it wrote to the highest (a few entries, most often).
      const d = c.dirty, lo = c.lo, hi = c.hi, ce = c.e, cb = c.b, se = this.e, sb = this.b;
      const end = top << TABLE_SHIFT;
      for (let i = 0, n = c.nDirty; i < n; i++) {
        const t = d[i]!;
        const last = hi[t]!;
        if (last < end) {
          for (let s = lo[t]!; s <= last; s++) {
            ce[s] = se[s]!;
            cb[s] = sb[s]!;
          }
        } else {
          for (let s = lo[t]!; s <= last; s++) {
            ce[s] = 0;
            cb[s] = 0;
          }
        }
      }
    } else {
      c.e.set(entryPrefix(this.e, top * PTRS_PER_TABLE));
      c.b.set(bitsPrefix(this.b, top * PTRS_PER_TABLE));
      if (used > top) {
        c.e.fill(0, top * PTRS_PER_TABLE, used * PTRS_PER_TABLE);
        c.b.fill(0, top * PTRS_PER_TABLE, used * PTRS_PER_TABLE);
      }
    }
    const lv = c.level, fi = c.fi, nf = c.nextFree, sh = c.share, ow = c.ow;
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
    // c is now this arena as it is: nothing written since, and a copy made from c before is stale.
    c.nDirty = 0;
    if (++c.gen === 0x7fffffff) {
      c.stamp.fill(0);
      c.gen = 1;
    }
    c.version++;
    c.src = this;
    c.srcVersion = this.version;
    // Every table may differ now, unlogged: an accounting check that kept counts starts over.
    if (c.logged) c.logLost = true;
    // Nor are the tables written noted any more: run --trace's capture starts over.
    c.touching = false;
    if (TableArena.verifyCopies && partial) this.checkCopy(c);
    return c;
  }

  /** verifyCopies: c, copied in part, must hold exactly this arena's entries and bits. */
  private checkCopy(c: TableArena): void {
    TableArena.partialCopiesChecked++;
    const n = Math.max(this.top, c.top) * PTRS_PER_TABLE;
    for (let i = 0; i < n; i++) {
      if (c.e[i] !== this.e[i] || c.b[i] !== this.b[i]) throw new Error(`TableArena copy differs at slot ${i} (table ${i >>> TABLE_SHIFT}): a write did not go through the setters`);
    }
  }
}

// The last prefix view made of an entry and of a bits array: the explorer copies one state into
// each of its children in turn, and a view per copy was most of what a copy allocated.
let entrySrc: Int32Array | null = null;
let entryView: Int32Array = new Int32Array(0);
let bitsSrc: Uint16Array | null = null;
let bitsView: Uint16Array = new Uint16Array(0);

/** a.subarray(0, n), the same view as last time when it is of the same array and length. */
function entryPrefix(a: Int32Array, n: number): Int32Array {
  if (entrySrc !== a || entryView.length !== n) {
    entrySrc = a;
    entryView = a.subarray(0, n);
  }
  return entryView;
}

/** entryPrefix of a bits array. */
function bitsPrefix(a: Uint16Array, n: number): Uint16Array {
  if (bitsSrc !== a || bitsView.length !== n) {
    bitsSrc = a;
    bitsView = a.subarray(0, n);
  }
  return bitsView;
}
