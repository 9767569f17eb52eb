// The ideal semantics of the scenario language (spec: "What is checked"): what a program may rely
// on whatever the kernel. Each page of a private mapping is a cell per process; a shared mapping's
// page is one cell for all. Kept apart from the model and written as plainly as possible.

import { classifyRead, type ReadCheck } from './reads.js';
import { classCopier, objectArray } from '../core/copy.js';

const P_READ = 1;
const P_WRITE = 2;
const P_DONTFORK = 4;
const P_WIPEONFORK = 8;
/** MADV_MERGEABLE: no different to a program, but it splits the kernel's VMA (mremap needs one VMA). */
const P_MERGEABLE = 16;
/** The userfaultfd monitor write-protected this page: a write must reach the monitor first. */
const P_UFFD_WP = 32;

// The parts of an IdealMemory a copy shares with the state it was copied from until either
// changes them (IdealMemory.shared): each is copied by the first change.
const S_PROCS = 1;
const S_CELLS = 2;
const S_HOLDERS = 4;
const S_SHARED_USERS = 8;
const S_HANDLES = 16;
const S_MAYBE = 32;
const S_UFFD = 64;
const S_ALL = 127;

class Segment {
  constructor(
    public start: number,
    public n: number,
    public shared: boolean,
    /** Cell of each page, -1 where unmapped. */
    public cells: number[],
    /** Per page: P_READ | P_WRITE | P_DONTFORK | P_WIPEONFORK. */
    public flags: number[],
  ) {}
}

// A segment's pages are plain arrays of small integers, as the cell values: a process is copied
// on its first change after a state copy, and copying a short array is much cheaper than making
// a typed array.

/** An array of n times v (made at its size: an array grown by push() takes room for 16). */
function filled(n: number, v: number): number[] {
  const a = new Array<number>(n);
  for (let i = 0; i < n; i++) a[i] = v;
  return a;
}

/** The segment of process p holding page vpn, or null. */
function segIn(p: IdealProc, vpn: number): Segment | null {
  const segs = p.segs;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    if (vpn >= seg.start && vpn < seg.start + seg.n) return seg;
  }
  return null;
}

/** The set {v}, shared: the sets of seen values are never changed in place, and most hold one value. */
function only(v: number): ReadonlySet<number> {
  return (singletons[v] ??= new Set<number>().add(v));
}
const singletons: ReadonlySet<number>[] = [];
const NOTHING: ReadonlySet<number> = new Set<number>();

export interface IdealProc {
  name: string;
  alive: boolean;
  segs: Segment[];
  /** The generation (IdealMemory.gen) of the copy that may change it in place; any other copy copies it first. */
  gen: number;
}

/** A set of process names tagged with the generation of the copy that may change it in place (withProc). */
type OwnedSet = Set<string> & { gen: number };

/** Generations of IdealMemory copies: each clone gives both the original and the copy a new one. */
let generations = 0;

export type Access = 'ok' | 'fault';

/**
 * A handle as the ideal semantics sees it: per page, its origin cell and what it may return. Its
 * sets are never changed in place (a change makes a new set), so a copy of the handle shares them.
 */
interface IdealHandle {
  name: string;
  holder: string;
  longterm: boolean;
  /** Per handle page, the holder's page it is bound to now (taken there; mremap moves it). */
  at: number[];
  /** Origin cell per page (-1: nothing was taken there). */
  origin: number[];
  /**
   * Longterm pins: still bound to the origin (the holder has not unmapped or dropped it). Once
   * unbound the origin cell lives on as the pinned buffer: no process of the holder maps it
   * any more (a shared page's other users still do), the device reads and writes it.
   */
  bound: boolean[];
  /** Short-term references: every value the origin held since the handle was taken, and those written through it. */
  seen: ReadonlySet<number>[];
  /** Values written through the handle (by the device). */
  written: ReadonlySet<number>;
  /** The generation (IdealMemory.gen) of the copy that may change it in place; any other copy copies it first. */
  gen: number;
}


/** Where the element named `name` is in `xs` (processes, handles: few, looked up along the array), -1 if nowhere. */
function indexByName(xs: readonly { name: string }[], name: string): number {
  for (let j = 0; j < xs.length; j++) if (xs[j]!.name === name) return j;
  return -1;
}

/** The element named `name` in `xs`, to read. */
function byName<T extends { name: string }>(xs: readonly T[], name: string): T | undefined {
  const j = indexByName(xs, name);
  return j < 0 ? undefined : xs[j];
}

/** IdealMemory.clone's shallow copy of every field (its copier looked up once, not per copy). */
const copyIdealMemory = classCopier<IdealMemory>();

export class IdealMemory {
  /** The processes (looked up by name along the array while few, else in procIndex; copied by slice()). */
  private procs: IdealProc[] = objectArray();
  /**
   * Each process's place in `procs`, once the list is long (a run of many processes: every
   * access looks its process up); null: not made yet, or a copy's (clone() drops it: a copy's
   * list grows on its own). A process keeps its place (the list is appended to or replaced in place).
   */
  private procIndex: Map<string, number> | null = null;
  /**
   * The value of each cell. A plain array of small integers: a state has a few cells, and copying
   * a short array is much cheaper than making a typed array (a buffer of its own) per copy.
   */
  private cellValue: number[] = [];
  /**
   * Per value id: the processes that ever legitimately held it in one of their cells. The sets
   * of holders, sharedUsers and maybe are never changed in place once a copy may see them (a
   * change makes a new set, withProc), so the explorer's copies of a state share them. Indexed by value id (ids are small and
   * dense: the value table numbers them in order), undefined where nobody held it.
   */
  private holders: (ReadonlySet<string> | undefined)[] = objectArray();
  /** Per shared cell: the processes that map it (so a write is visible to all of them). */
  private sharedUsers = new Map<number, ReadonlySet<string>>();
  /** The handles (few: looked up by name along the array, copied by slice()), in the order they were taken. */
  private handles: IdealHandle[] = objectArray();
  /** Per cell: values a short-term device write may have put there besides the cell's own. */
  private maybe = new Map<number, ReadonlySet<number>>();
  /** Processes whose userfaultfd context asked for the fork event (a child inherits the protection). */
  private uffdForkEvent = new Set<string>();
  /**
   * The parts (S_*) shared with a copy: a copy shares everything with the state it was copied
   * from, and whichever of the two changes a part first copies it (own()). Most explorer
   * transitions change little of the ideal memory, so most copies copy little.
   */
  private shared = 0;
  /** Processes and handles tagged with this generation are this copy's own (procMut(), handleMut()). */
  private gen = 0;

  /**
   * A copy (the explorer branches states), sharing every part with this one until either changes
   * it. Nothing is copied up front: of `dst` (a copy no longer needed) only the object is reused.
   */
  clone(dst?: IdealMemory): IdealMemory {
    const c = copyIdealMemory(dst !== undefined && dst !== this ? dst : new IdealMemory(), this);
    c.shared = S_ALL;
    this.shared = S_ALL;
    c.procIndex = null;
    // Neither may change a process or handle in place any more: they are shared one by one.
    c.gen = ++generations;
    this.gen = ++generations;
    return c;
  }

  /** The place of the process named `name` in `procs`, or -1. */
  private procIndexOf(name: string): number {
    const xs = this.procs;
    // A few (the explorer's states): the search costs less than a map.
    if (xs.length <= 8) return indexByName(xs, name);
    let m = this.procIndex;
    if (m === null) {
      this.procIndex = m = new Map<string, number>();
      for (let j = 0; j < xs.length; j++) m.set(xs[j]!.name, j);
    }
    return m.get(name) ?? -1;
  }

  /** The process named `name`, or undefined. */
  private procOf(name: string): IdealProc | undefined {
    const j = this.procIndexOf(name);
    return j < 0 ? undefined : this.procs[j];
  }

  /** A new process at the end of `procs` (its map made its own first: own(S_PROCS)). */
  private pushProc(p: IdealProc): void {
    const j = this.procs.push(p) - 1;
    if (this.procIndex !== null) this.procIndex.set(p.name, j);
  }

  /** A process, to change: the map of processes made this copy's own, and the process copied if another copy may see it. */
  private procMut(proc: string): IdealProc | undefined {
    this.own(S_PROCS);
    const j = this.procIndexOf(proc);
    if (j < 0) return undefined;
    const p = this.procs[j]!;
    if (p.gen === this.gen) return p;
    // Made by slice() (packed, as every process's segs; an array made at its size, or map() in
    // optimised code, is holey), each segment then replaced by its copy.
    const segs = p.segs.slice();
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i]!;
      segs[i] = new Segment(s.start, s.n, s.shared, s.cells.slice(), s.flags.slice());
    }
    return (this.procs[j] = { name: p.name, alive: p.alive, segs, gen: this.gen });
  }

  /** A handle, to change (by name). */
  private handleMut(name: string): IdealHandle | undefined {
    const j = indexByName(this.handles, name);
    return j < 0 ? undefined : this.handleMutAt(j);
  }

  /** The handle at j, to change: the array of handles made this copy's own, and the handle copied if another copy may see it. */
  private handleMutAt(j: number): IdealHandle {
    this.own(S_HANDLES);
    const h = this.handles[j]!;
    if (h.gen === this.gen) return h;
    return (this.handles[j] = {
      name: h.name, holder: h.holder, longterm: h.longterm, at: h.at.slice(), origin: h.origin.slice(), bound: h.bound.slice(), seen: h.seen.slice(), written: h.written, gen: this.gen,
    });
  }

  /** Make the parts `parts` (S_*) this object's own before changing them: a shared one is copied. */
  private own(parts: number): void {
    const p = parts & this.shared;
    if (p === 0) return;
    this.shared &= ~p;
    // The map of processes only: each process is copied when changed (procMut).
    if (p & S_PROCS) this.procs = this.procs.slice();
    if (p & S_CELLS) this.cellValue = this.cellValue.slice();
    // The sets these maps hold are changed in place only by the copy that made them (withProc): shared.
    if (p & S_HOLDERS) this.holders = this.holders.slice();
    if (p & S_SHARED_USERS) this.sharedUsers = new Map(this.sharedUsers);
    if (p & S_MAYBE) this.maybe = new Map(this.maybe);
    if (p & S_UFFD) this.uffdForkEvent = new Set(this.uffdForkEvent);
    // The handles only: each is copied when changed (handleMut).
    if (p & S_HANDLES) this.handles = this.handles.slice();
  }

  /** Every value id this process ever legitimately held (for canonical state keys). */
  heldBy(proc: string): number[] {
    const out: number[] = [];
    this.forEachHeld(proc, (v) => out.push(v));
    return out.sort((a, b) => a - b);
  }

  /** The cell value at a process page, or -1 when unmapped (for canonical state keys). */
  cellAt(proc: string, vpn: number): { value: number; cell: number; flags: number; shared: boolean } | null {
    const at = this.find(proc, vpn);
    if (!at) return null;
    const cell = at.seg.cells[at.i]!;
    return { value: cell >= 0 ? this.cellValue[cell]! : -1, cell, flags: at.seg.flags[at.i]!, shared: at.seg.shared };
  }

  /** A handle's ideal state (for canonical state keys). */
  handleState(name: string): { bound: boolean[]; values: number[]; own: Int32Array; seen: number[][]; origin: readonly number[] } | null {
    const h = byName(this.handles, name);
    if (!h) return null;
    const values = [...h.origin].map((c) => (c >= 0 ? this.cellValue[c]! : -1));
    // `own`: the value each page holds for the handle (the same as `values`; kept for callers).
    return { bound: h.bound, values, own: Int32Array.from(values), seen: h.seen.map((s) => [...s]), origin: h.origin };
  }

  /**
   * The cell at a process page, for canonical state keys without allocating: writes its value,
   * cell, flags and whether it is shared (1/0) to out[0..3]; false when the page has no cell slot.
   */
  cellInto(proc: string, vpn: number, out: Int32Array): boolean {
    return this.cellsInto(proc, vpn, 1, out) && out[1] !== -2;
  }

  /**
   * cellInto for the n pages from `start` at once (one lookup of the process): page i's four
   * words at out[4i..4i+3], and out[4i + 1] = -2 where the page has no cell slot. False when the
   * process is gone or unknown (no page has a slot).
   */
  cellsInto(proc: string, start: number, n: number, out: Int32Array): boolean {
    const p = this.procOf(proc);
    if (!p || !p.alive) return false;
    let seg: Segment | null = null;
    for (let i = 0; i < n; i++) {
      const vpn = start + i;
      if (seg === null || vpn < seg.start || vpn >= seg.start + seg.n) seg = segIn(p, vpn);
      if (seg === null) {
        out[4 * i + 1] = -2;
        continue;
      }
      const cell = seg.cells[vpn - seg.start]!;
      out[4 * i] = cell >= 0 ? this.cellValue[cell]! : -1;
      out[4 * i + 1] = cell;
      out[4 * i + 2] = seg.flags[vpn - seg.start]!;
      out[4 * i + 3] = seg.shared ? 1 : 0;
    }
    return true;
  }

  /** The value ids the process ever legitimately held, in no particular order (canonical keys). */
  forEachHeld(proc: string, fn: (value: number) => void): void {
    const holders = this.holders;
    for (let v = 0; v < holders.length; v++) if (holders[v]?.has(proc)) fn(v);
  }

  /** The values a short-term device write may have put in a cell besides its own (canonical keys; read only). */
  maybeOf(cell: number): ReadonlySet<number> | undefined {
    return this.maybe.get(cell);
  }

  /** A handle's ideal state as kept (canonical keys; read only): per page, bound, origin cell and the values seen. */
  handleView(name: string): { readonly bound: readonly boolean[]; readonly origin: readonly number[]; readonly seen: readonly ReadonlySet<number>[] } | undefined {
    return byName(this.handles, name);
  }

  /** The value a cell holds now. */
  cellValueOf(cell: number): number {
    return this.cellValue[cell]!;
  }

  maybeAt(cell: number): number[] {
    return [...(this.maybe.get(cell) ?? [])];
  }

  private newCell(value: number): number {
    this.own(S_CELLS);
    return this.cellValue.push(value) - 1;
  }

  private hold(value: number, proc: string): void {
    if (value === 0) return; // zero-fill belongs to everyone
    const s = this.holders[value];
    if (s?.has(proc)) return;
    this.own(S_HOLDERS);
    // Kept without holes (a holey array is slower to read).
    while (this.holders.length < value) this.holders.push(undefined);
    this.holders[value] = this.withProc(s, proc, true);
  }

  /**
   * `s` with `proc` added (or removed): changed in place when this copy made it since it was last
   * copied (its generation), else a new set of this copy's. A fork of a value's holder adds the child
   * to the value's holders: a new set each time made N forks cost N^2 (and as much the exits of N
   * processes sharing a page), while the explorer's copies still never see a shared set change.
   */
  private withProc(s: ReadonlySet<string> | undefined, proc: string, add: boolean): ReadonlySet<string> {
    let out = s as OwnedSet | undefined;
    if (out === undefined || out.gen !== this.gen) {
      out = new Set(s) as OwnedSet;
      out.gen = this.gen;
    }
    if (add) out.add(proc);
    else out.delete(proc);
    return out;
  }

  private find(proc: string, vpn: number): { seg: Segment; i: number } | null {
    const seg = this.segOf(proc, vpn);
    return seg === null ? null : { seg, i: vpn - seg.start };
  }

  /** The segment holding this page of the process, null if none (find() without an object per call: the page is vpn - start). */
  private segOf(proc: string, vpn: number): Segment | null {
    const p = this.procOf(proc);
    return !p || !p.alive ? null : segIn(p, vpn);
  }

  private forRange(proc: string, lo: number, hi: number, fn: (seg: Segment, i: number) => void): void {
    const p = this.procOf(proc);
    if (!p || !p.alive) return;
    for (const seg of p.segs) {
      const a = Math.max(lo, seg.start);
      const b = Math.min(hi, seg.start + seg.n);
      for (let v = a; v < b; v++) if (seg.cells[v - seg.start]! >= 0) fn(seg, v - seg.start);
    }
  }

  mmap(proc: string, start: number, n: number, prot: 'rw' | 'ro' | 'none', shared: boolean): void {
    this.own(S_PROCS | S_SHARED_USERS);
    let p = this.procMut(proc);
    if (!p) this.pushProc((p = { name: proc, alive: true, segs: objectArray(), gen: this.gen }));
    const cells = filled(n, 0);
    const flags = filled(n, protBits(prot));
    if (shared) {
      for (let i = 0; i < n; i++) {
        cells[i] = this.newCell(0);
        this.sharedUsers.set(cells[i]!, new Set([proc]));
      }
    } else {
      // Private cells are created lazily in bulk: a contiguous run.
      const first = this.cellValue.length;
      for (let i = 0; i < n; i++) this.newCell(0);
      for (let i = 0; i < n; i++) cells[i] = first + i;
    }
    p.segs.push(new Segment(start, n, shared, cells, flags));
  }

  munmap(proc: string, lo: number, hi: number): void {
    this.procMut(proc);
    this.unbind(proc, lo, hi);
    // forRange()'s walk, without a closure per call: every exit unmaps everything.
    const p = this.procOf(proc);
    if (!p || !p.alive) return;
    for (const seg of p.segs) {
      const b = Math.min(hi, seg.start + seg.n) - seg.start;
      for (let i = Math.max(lo, seg.start) - seg.start; i < b; i++) {
        const cell = seg.cells[i]!;
        if (cell < 0) continue;
        const users = seg.shared ? this.sharedUsers.get(cell) : undefined;
        if (users?.has(proc)) {
          this.own(S_SHARED_USERS);
          this.sharedUsers.set(cell, this.withProc(users, proc, false));
        }
        seg.cells[i] = -1;
        seg.flags[i] = seg.flags[i]! & ~P_UFFD_WP;
      }
    }
  }

  /**
   * mprotect(): the pages from lo up to the first unmapped one change; false (ENOMEM) when the
   * range has a hole (nothing changes if lo itself is unmapped).
   */
  mprotect(proc: string, lo: number, hi: number, prot: 'rw' | 'ro' | 'none'): boolean {
    this.procMut(proc);
    for (let v = lo; v < hi; v++) {
      const at = this.find(proc, v);
      if (!at || at.seg.cells[at.i]! < 0) return false;
      at.seg.flags[at.i] = (at.seg.flags[at.i]! & ~(P_READ | P_WRITE)) | protBits(prot);
    }
    return true;
  }

  /** madvise(); returns false where the kernel refuses it (EINVAL: wipeonfork on shared memory). */
  madvise(proc: string, lo: number, hi: number, advice: string): boolean {
    if (advice === 'wipeonfork' && this.mapsShared(proc, lo, hi)) return false;
    this.procMut(proc);
    if (advice === 'dontneed') this.unbind(proc, lo, hi);
    // forRange()'s walk, without a closure per call (madvise is a frequent explorer step).
    const p = this.procOf(proc);
    if (!p || !p.alive) return true;
    for (const seg of p.segs) {
      const b = Math.min(hi, seg.start + seg.n) - seg.start;
      for (let i = Math.max(lo, seg.start) - seg.start; i < b; i++) {
        if (seg.cells[i]! < 0) continue;
        const f = seg.flags[i]!;
        if (advice === 'dontfork') seg.flags[i] = f | P_DONTFORK;
        else if (advice === 'dofork') seg.flags[i] = f & ~P_DONTFORK;
        else if (advice === 'wipeonfork') seg.flags[i] = f | P_WIPEONFORK;
        else if (advice === 'keeponfork') seg.flags[i] = f & ~P_WIPEONFORK;
        else if (advice === 'mergeable' && !seg.shared) seg.flags[i] = f | P_MERGEABLE;
        else if (advice === 'dontneed' && !seg.shared) {
          seg.cells[i] = this.newCell(0); // the old page lives on only in handles
          seg.flags[i] = f & ~P_UFFD_WP; // the discarded data was what the monitor protected
        }
        // dontneed on a shared mapping drops only this process's mapping: the data stays.
      }
    }
    return true;
  }

  /** Does the process map a page of [lo, hi) from a shared mapping? */
  private mapsShared(proc: string, lo: number, hi: number): boolean {
    const p = this.procOf(proc);
    if (!p || !p.alive) return false;
    for (const seg of p.segs) {
      if (!seg.shared) continue;
      const b = Math.min(hi, seg.start + seg.n) - seg.start;
      for (let i = Math.max(lo, seg.start) - seg.start; i < b; i++) if (seg.cells[i]! >= 0) return true;
    }
    return false;
  }

  /**
   * mremap of [lo, hi) to [start, start + hi - lo): whether the kernel's result is allowed, and
   * (done) the move. The first page must be mapped; pages of one mapping with the same flags
   * throughout must move. Anything else (pages of different mmaps or flags, which the kernel
   * may keep in different VMAs; unmapped pages after the first) fails before 6.17 and moves
   * mapping by mapping, gaps kept, from 6.17: either result is allowed. The cells move with the
   * pages, unchanged (a shared cell stays shared); handles stay bound to them. The moved pages
   * lose the monitor's write protection: without UFFD_FEATURE_EVENT_REMAP the new range is not
   * registered (mremap_userfaultfd_prep).
   */
  mremap(proc: string, lo: number, hi: number, start: number, done: boolean): boolean {
    const first = this.find(proc, lo);
    if (!first || first.seg.cells[first.i]! < 0) return !done;
    let oneMapping = true;
    for (let v = lo + 1; v < hi && oneMapping; v++) {
      const at = this.find(proc, v);
      if (!at || at.seg !== first.seg || at.seg.cells[at.i]! < 0 || at.seg.flags[at.i] !== first.seg.flags[first.i]) oneMapping = false;
    }
    if (!done) return !oneMapping;
    const p = this.procMut(proc)!;
    for (let v = lo; v < hi; ) {
      const from = this.find(proc, v);
      if (!from || from.seg.cells[from.i]! < 0) {
        v++;
        continue;
      }
      // One new segment per run of mapped pages from the same old segment.
      let end = v + 1;
      while (end < hi && this.find(proc, end)?.seg === from.seg && from.seg.cells[from.i + (end - v)]! >= 0) end++;
      const n = end - v;
      // The flags cleared in their slice, not by map(): a segment's arrays are filled()'s (holey) kind.
      const flags = from.seg.flags.slice(from.i, from.i + n);
      for (let i = 0; i < flags.length; i++) flags[i] = flags[i]! & ~P_UFFD_WP;
      p.segs.push(new Segment(start + (v - lo), n, from.seg.shared, from.seg.cells.slice(from.i, from.i + n), flags));
      from.seg.cells.fill(-1, from.i, from.i + n);
      v = end;
    }
    for (let j = 0; j < this.handles.length; j++) {
      const h = this.handles[j]!;
      if (h.holder !== proc) continue;
      for (let i = 0; i < h.at.length; i++) if (h.at[i]! >= lo && h.at[i]! < hi) this.handleMutAt(j).at[i] = h.at[i]! - lo + start;
    }
    return true;
  }

  fork(parent: string, child: string): void {
    this.own(S_PROCS | S_SHARED_USERS | S_MAYBE | S_UFFD);
    const p = this.procOf(parent)!;
    const c: IdealProc = { name: child, alive: true, segs: objectArray(), gen: this.gen };
    for (const seg of p.segs) {
      const cells = filled(seg.n, -1);
      for (let i = 0; i < seg.n; i++) {
        const cell = seg.cells[i]!;
        if (cell < 0 || seg.flags[i]! & P_DONTFORK) continue;
        if (seg.shared) {
          cells[i] = cell;
          this.sharedUsers.set(cell, this.withProc(this.sharedUsers.get(cell)!, child, true));
        } else if (seg.flags[i]! & P_WIPEONFORK) {
          cells[i] = this.newCell(0);
        } else {
          const v = this.cellValue[cell]!;
          cells[i] = this.newCell(v);
          this.hold(v, child);
          // What the parent's page may also hold (short-term device writes), the child's copy may too.
          const m = this.maybe.get(cell);
          if (m) {
            this.maybe.set(cells[i]!, m);
            for (const x of m) this.hold(x, child);
          }
        }
      }
      const flags = seg.flags.slice();
      // The fork event (UFFD_FEATURE_EVENT_FORK) hands the child to the monitor, protection included.
      const inherit = this.uffdForkEvent.has(parent);
      for (let i = 0; i < seg.n; i++) if (!inherit || (!seg.shared && seg.flags[i]! & P_WIPEONFORK)) flags[i] = flags[i]! & ~P_UFFD_WP;
      c.segs.push(new Segment(seg.start, seg.n, seg.shared, cells, flags));
    }
    const j = this.procIndexOf(child);
    if (j < 0) this.pushProc(c);
    else this.procs[j] = c;
    if (this.uffdForkEvent.has(parent)) this.uffdForkEvent.add(child);
  }

  // ---- userfaultfd write-protection (what the monitor asked for) ----

  /** UFFDIO_WRITEPROTECT: the monitor protected these pages (those that had data to protect). */
  uffdProtect(proc: string, vpns: readonly number[]): void {
    this.procMut(proc);
    for (const v of vpns) {
      const at = this.find(proc, v);
      if (at && at.seg.cells[at.i]! >= 0) at.seg.flags[at.i] = at.seg.flags[at.i]! | P_UFFD_WP;
    }
  }

  /** The monitor un-protected [lo, hi) (UFFDIO_WRITEPROTECT without MODE_WP, or its answer to a fault). */
  uffdUnprotect(proc: string, lo: number, hi: number): void {
    this.procMut(proc);
    this.forRange(proc, lo, hi, (seg, i) => {
      seg.flags[i] = seg.flags[i]! & ~P_UFFD_WP;
    });
  }

  uffdSetForkEvent(proc: string, on: boolean): void {
    this.own(S_UFFD);
    if (on) this.uffdForkEvent.add(proc);
    else this.uffdForkEvent.delete(proc);
  }

  /** Is this page write-protected by the monitor (a write must reach it first)? */
  uffdProtected(proc: string, vpn: number): boolean {
    const seg = this.segOf(proc, vpn);
    return seg !== null && seg.cells[vpn - seg.start]! >= 0 && (seg.flags[vpn - seg.start]! & P_UFFD_WP) !== 0;
  }

  exit(proc: string): void {
    if (this.procIndexOf(proc) < 0) return;
    this.munmap(proc, 0, 2 ** 36);
    this.procMut(proc)!.alive = false;
  }

  /** Must this CPU access succeed, or fault? */
  access(proc: string, vpn: number, write: boolean): Access {
    const seg = this.segOf(proc, vpn);
    if (!seg || seg.cells[vpn - seg.start]! < 0) return 'fault';
    return seg.flags[vpn - seg.start]! & (write ? P_WRITE : P_READ) ? 'ok' : 'fault';
  }

  /** The value a load must return (the access must be allowed). */
  read(proc: string, vpn: number): number {
    const seg = this.segOf(proc, vpn)!;
    return this.cellValue[seg.cells[vpn - seg.start]!]!;
  }

  write(proc: string, vpn: number, value: number): void {
    const seg = this.segOf(proc, vpn)!;
    this.writeCell(seg.cells[vpn - seg.start]!, value, proc, seg.shared);
  }

  /** A store into a cell (CPU, or a device through a bound pin): visible to whoever maps it. */
  private writeCell(cell: number, value: number, proc: string, shared: boolean): void {
    this.setCell(cell, value);
    if (shared) for (const q of this.sharedUsers.get(cell) ?? []) this.hold(value, q);
    else this.hold(value, proc);
  }

  private setCell(cell: number, value: number): void {
    this.own(S_CELLS | (this.maybe.has(cell) ? S_MAYBE : 0));
    this.cellValue[cell] = value;
    this.maybe.delete(cell);
    // The short-term handle pages taken on this cell see the value.
    for (let j = 0; j < this.handles.length; j++) {
      const h = this.handles[j]!;
      if (h.longterm) continue;
      for (let i = 0; i < h.origin.length; i++) {
        if (h.origin[i] === cell && !h.seen[i]!.has(value)) this.see(j, i, value);
      }
    }
  }

  /** Page i of the short-term handle at j saw `value` (its origin held it, or the device wrote it). */
  private see(j: number, i: number, value: number): void {
    const h = this.handleMutAt(j);
    h.seen[i] = new Set(h.seen[i]).add(value);
  }

  /** A value this page may also hold (a write that raced with a fork may or may not be in the child). */
  addMaybe(proc: string, vpn: number, value: number): void {
    const at = this.find(proc, vpn);
    if (!at) return;
    const cell = at.seg.cells[at.i]!;
    if (cell < 0) return;
    this.own(S_MAYBE);
    this.maybe.set(cell, new Set(this.maybe.get(cell)).add(value));
    this.hold(value, proc);
  }

  /** Values a CPU load of this page may also return (short-term device writes that may have landed). */
  maybeValues(proc: string, vpn: number): ReadonlySet<number> | undefined {
    const seg = this.segOf(proc, vpn);
    return seg ? this.maybe.get(seg.cells[vpn - seg.start]!) : undefined;
  }

  // ---- handles ------------------------------------------------------------------------------

  /** A handle taken by `holder` on its pages [vpn, vpn + n), all at once. */
  takeHandle(name: string, holder: string, vpn: number, n: number, longterm: boolean): void {
    this.beginHandle(name, holder, vpn, n, longterm);
    for (let i = 0; i < n; i++) this.bindHandlePage(name, i);
  }

  /** A handle being taken (a GUP in progress): its pages are bound one by one as they are grabbed. */
  beginHandle(name: string, holder: string, vpn: number, n: number, longterm: boolean): void {
    // Plain loops: Array.from over an array-like with a mapping function is several times slower.
    // Made at their size (an array grown by push() takes room for 16).
    const at = new Array<number>(n);
    const bound = new Array<boolean>(n);
    const seen = new Array<ReadonlySet<number>>(n);
    for (let i = 0; i < n; i++) {
      at[i] = vpn + i;
      bound[i] = false;
      seen[i] = only(0);
    }
    const h: IdealHandle = { name, holder, longterm, at, origin: filled(n, -1), bound, seen, written: NOTHING, gen: this.gen };
    // A handle taken again under its name keeps its place (as in a Map).
    const j = indexByName(this.handles, name);
    if (j >= 0) {
      this.own(S_HANDLES);
      this.handles[j] = h;
      return;
    }
    // A new array, one longer, this copy's own (own() would copy the array and push() take room
    // for 16 more); by concat, which makes it at its size and packed (an array made at its size is holey).
    this.handles = this.handles.concat([h]);
    this.shared &= ~S_HANDLES;
  }

  /** Page i of a handle was grabbed now: it refers to the cell its holder has there now. */
  bindHandlePage(name: string, i: number): void {
    const h = this.handleMut(name);
    if (!h) return;
    const seg = this.segOf(h.holder, h.at[i]!);
    const cell = seg ? seg.cells[h.at[i]! - seg.start]! : -1;
    h.origin[i] = cell;
    h.bound[i] = h.longterm && cell >= 0;
    const m = cell >= 0 ? this.maybe.get(cell) : undefined;
    h.seen[i] = cell < 0 ? only(0) : m === undefined ? only(this.cellValue[cell]!) : new Set<number>([this.cellValue[cell]!, ...m]);
  }

  releaseHandle(name: string): void {
    const j = indexByName(this.handles, name);
    if (j < 0) return;
    this.own(S_HANDLES);
    this.handles.splice(j, 1);
  }

  /** The holder unmapped, dropped or exited these pages: their longterm pins become buffers of their own. */
  private unbind(proc: string, lo: number, hi: number): void {
    // Looked for first: the handles become this copy's own only when one changes.
    if (!this.unbinds(proc, lo, hi, false)) return;
    this.unbinds(proc, lo, hi, true);
  }

  /** Whether unbind() changes a pin; with `apply`, the change. */
  private unbinds(proc: string, lo: number, hi: number, apply: boolean): boolean {
    let changed = false;
    for (let j = 0; j < this.handles.length; j++) {
      const h = this.handles[j]!;
      if (h.holder !== proc || !h.longterm) continue;
      for (let i = 0; i < h.origin.length; i++) {
        const vpn = h.at[i]!;
        if (!h.bound[i] || vpn < lo || vpn >= hi) continue;
        if (!apply) return true;
        this.handleMutAt(j).bound[i] = false;
        changed = true;
      }
    }
    return changed;
  }

  /** Is page `i` of this handle a longterm pin still bound to its origin? */
  isBound(name: string, i: number): boolean {
    return byName(this.handles, name)?.bound[i] ?? false;
  }

  /**
   * A read by `proc` of its page at vpn (the mapping allows it) saw `value`: the page's value or
   * one a racing write may have put there. `atomics`: values written by device atomics.
   */
  checkRead(proc: string, vpn: number, value: number, atomics?: ReadonlySet<number>): ReadCheck {
    const ideal = this.read(proc, vpn);
    const m = this.maybeValues(proc, vpn);
    const allowed = m === undefined ? [ideal] : [ideal, ...m];
    return classifyRead(value, allowed, { mayKnow: this.everHeld(proc, value), atomicLost: atomics?.has(ideal) ?? false });
  }

  /** A read through a handle (device read, pipe drain, driver read) observed `value` on behalf of `observer`. */
  checkHandleRead(name: string, i: number, value: number, observer: string): ReadCheck {
    const h = byName(this.handles, name)!;
    let allowed: number[];
    if (h.longterm) {
      allowed = [this.cellValue[h.origin[i]!]!, ...(this.maybe.get(h.origin[i]!) ?? [])];
    } else {
      // A short-term reference: what its origin held since it was taken, what was written through
      // it, and what other short-term device writes may have put in the same page.
      allowed = [...h.seen[i]!, ...(h.origin[i]! >= 0 ? this.maybe.get(h.origin[i]!) ?? [] : [])];
    }
    const mayKnow = this.everHeld(observer, value) || this.everHeld(h.holder, value) || h.written.has(value);
    return classifyRead(value, allowed, { mayKnow, boundPin: h.longterm && h.bound[i] === true });
  }

  /** A device write through a handle. */
  handleWrite(name: string, i: number, value: number): void {
    const h = this.handleMut(name)!;
    if (!h.written.has(value)) h.written = new Set(h.written).add(value);
    const cell = h.origin[i]!;
    if (h.longterm) {
      // Bound or not, the pinned page is the origin cell (orphaned once the holder let go of it).
      if (cell >= 0) this.writeCell(cell, value, h.holder, this.sharedUsers.has(cell));
      return;
    }
    // Short-term: the origin may or may not see it; the handle itself does.
    if (!h.seen[i]!.has(value)) this.see(indexByName(this.handles, name), i, value);
    if (cell >= 0) {
      this.own(S_MAYBE);
      this.maybe.set(cell, new Set(this.maybe.get(cell)).add(value));
      this.hold(value, h.holder);
    }
  }

  /** Has this process (or anything it may see) ever legitimately held this value? */
  everHeld(proc: string, value: number): boolean {
    return value === 0 || (this.holders[value]?.has(proc) ?? false);
  }
}

function protBits(prot: 'rw' | 'ro' | 'none'): number {
  return prot === 'rw' ? P_READ | P_WRITE : prot === 'ro' ? P_READ : 0;
}
