// The canonical key of an explorer state: the whole state (model and ideal) written out with
// frames, values and shared cells renumbered by first appearance, and processes in an order
// that does not depend on their names. Two states with the same key behave the same. Left out,
// as nothing that can still happen depends on them: threads that are gone and hold nothing
// (they count only in number), and values a process held that nothing can return any more.

import { MMAP_BASE_VPN, PG_KSM, PG_SWAPCACHE, PTE_SOFT_DIRTY, VM_SOFTDIRTY, PTE_DEVICE_EXCLUSIVE, PTE_DIRTY, PTE_PRESENT, PTE_SPECIAL, PTE_SWAP, PTE_YOUNG, TABLE_MASK, TABLE_SHIFT } from '../core/constants.js';
import type { LiveHandle, Proc, Runner } from '../engine/run.js';
import type { Region } from '../engine/state.js';
import { vmaStartPgoff, type Vma } from '../core/mm.js';
import type { Kernel } from '../core/kernel.js';
import { hugePmdPfn } from '../core/huge.js';
import { chainPlace, isStableKsm } from '../core/ksm.js';
import { walksAnonRmap } from '../core/devexcl.js';
import { pmdLeafSlot, pmdSlotOf, pteTableOf } from '../core/walk.js';

type ProcT = Proc;

/** A growable buffer of 32-bit words with its length: an encoding is written here, nothing allocated per word. */
export class Words {
  a = new Int32Array(256);
  n = 0;
  push(x: number): this {
    // The growth out of line: push stays small enough to be inlined.
    if (this.n === this.a.length) this.grow(this.n + 1);
    this.a[this.n++] = x;
    return this;
  }
  /** Room for `extra` more words: a[n..n+extra) may then be written directly. */
  reserve(extra: number): void {
    if (this.n + extra > this.a.length) this.grow(this.n + extra);
  }
  /** Append another buffer's words (a loop: a subarray to set() from would be allocated per call). */
  append(w: Words): void {
    this.reserve(w.n);
    const a = this.a;
    const b = w.a;
    let n = this.n;
    for (let i = 0, m = w.n; i < m; i++) a[n++] = b[i]!;
    this.n = n;
  }
  /** Set word i (written before). */
  set(i: number, x: number): void {
    this.a[i] = x;
  }
  get length(): number {
    return this.n;
  }
  private grow(need: number): void {
    const b = new Int32Array(Math.max(need, this.a.length * 2));
    b.set(this.a);
    this.a = b;
  }
}

/** Small non-negative integers renumbered by first appearance, reset in O(1) (a stamp per entry): nothing allocated per key. */
class Renumber {
  private stamp = new Int32Array(64);
  private num = new Int32Array(64);
  private gen = 1;
  /** The integers numbered so far, in the order of their numbers: order.a[0..n). */
  readonly order = new Words();

  reset(): void {
    this.order.n = 0;
    if (++this.gen === 0x7fffffff) {
      this.stamp.fill(0);
      this.gen = 1;
    }
  }

  get(x: number): number {
    if (x >= this.stamp.length) {
      const n = Math.max(x + 1, this.stamp.length * 2);
      const s = new Int32Array(n);
      s.set(this.stamp);
      this.stamp = s;
      const m = new Int32Array(n);
      m.set(this.num);
      this.num = m;
    }
    if (this.stamp[x] === this.gen) return this.num[x]!;
    const n = this.order.n;
    this.stamp[x] = this.gen;
    this.num[x] = n;
    this.order.push(x);
    return n;
  }
}

/** The kinds of numbered integers (Numbering.get): frames, values, ideal cells, swap slots, page tables, anon_vmas. */
export const N_FRAME = 0;
export const N_VALUE = 1;
export const N_CELL = 2;
export const N_SLOT = 3;
export const N_TABLE = 4;
export const N_ANON = 5;

/** Frames, values, cells, slots, tables and anon_vmas, each kind renumbered by first appearance. */
export class Numbering {
  /** One renumbering per kind (N_*). */
  private readonly r = [new Renumber(), new Renumber(), new Renumber(), new Renumber(), new Renumber(), new Renumber()];

  reset(): void {
    for (let i = 0; i < this.r.length; i++) this.r[i]!.reset();
    this.r[N_VALUE]!.get(0); // value 0 (zero-fill) is always number 0
  }
  /** The number of integer x of kind `kind` (N_*), numbered now if it is new. */
  get(kind: number, x: number): number {
    return this.r[kind]!.get(x);
  }
  slot(s: number): number {
    return this.r[N_SLOT]!.get(s);
  }
  frame(pfn: number): number {
    return pfn === 0 ? -2 : this.r[N_FRAME]!.get(pfn); // -2: the zero page
  }
  value(v: number): number {
    return this.r[N_VALUE]!.get(v);
  }
  /** The frames numbered so far, in the order of their numbers: a[0..n). */
  get frameOrder(): Words {
    return this.r[N_FRAME]!.order;
  }
  /** The values numbered so far, in the order of their numbers: a[0..n). */
  get valueOrder(): Words {
    return this.r[N_VALUE]!.order;
  }
}

/**
 * The accessed and dirty bits never decide anything in the model, except a pending kernel
 * path's pte_same() re-check; while no path is pending they are left out of the key.
 */
let adMask = ~0;

/** Scratch buffers, reused by every key (a key is read, hashed or copied, before the next). */
let cells = new Int32Array(64);
const tmp = new Words();

/** A map's entries collected (by forEach: no entry pairs) into reused arrays, and sorted there. */
export class Entries<V> {
  readonly vals: V[] = [];
  readonly names: string[] = [];
  n = 0;
  readonly collect = (v: V, name: string): void => {
    this.vals[this.n] = v;
    this.names[this.n++] = name;
  };

  /** Insertion sort (a handful of entries): `after(a, b)` is true when a goes after b. */
  sort(after: (a: V, an: string, b: V, bn: string) => boolean): void {
    const { vals, names } = this;
    for (let i = 1; i < this.n; i++) {
      const v = vals[i]!;
      const name = names[i]!;
      let j = i - 1;
      while (j >= 0 && after(vals[j]!, names[j]!, v, name)) {
        vals[j + 1] = vals[j]!;
        names[j + 1] = names[j]!;
        j--;
      }
      vals[j + 1] = v;
      names[j + 1] = name;
    }
  }
}

const regions = new Entries<Region>();
const byRegionName = (_a: Region, an: string, _b: Region, bn: string): boolean => an > bn;

/** The numbering pushValue numbers with (forEach, not for-of: no iterator per set). */
let valueNum: Numbering | null = null;
const pushValue = (v: number): void => {
  tmp.push(valueNum!.value(v));
};

/** Push the numbers of `vals` (numbered in their order), sorted ascending; their count. */
function pushSortedValues(vals: ReadonlySet<number>, num: Numbering, out: Words): number {
  tmp.n = 0;
  valueNum = num;
  vals.forEach(pushValue);
  const n = tmp.n;
  insertionSort(tmp.a, n);
  for (let i = 0; i < n; i++) out.push(tmp.a[i]!);
  return n;
}

/** Sort a[0..n) ascending in place (a handful of numbers). */
export function insertionSort(a: Int32Array, n: number): void {
  for (let i = 1; i < n; i++) {
    const x = a[i]!;
    let j = i - 1;
    while (j >= 0 && a[j]! > x) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = x;
  }
}

/**
 * A thread's key with its own numbering (its signature), and where its numbered words are: per
 * integer numbered, in the order numbered, the word's position and kind, and the integer. The
 * thread's key in the global numbering is this one translated (translate()), not computed again.
 */
class ThreadKey {
  readonly w = new Words();
  readonly num = new Numbering();
  /** Pairs (position * 8 + kind (N_*), or -1 inside a sorted run; the integer numbered), in the order numbered. */
  readonly ents = new Words();
  /** Per sorted run of values (none empty): its first word's position, its length, its stride (2: a prefix before each). */
  readonly runs = new Words();

  reset(): void {
    this.w.n = 0;
    this.num.reset();
    this.ents.n = 0;
    this.runs.n = 0;
  }
}

/** Push the number of integer x of kind `kind` (N_*) to t's key, noting where it is. */
function pushNum(t: ThreadKey, kind: number, x: number): void {
  const e = t.ents;
  e.reserve(2);
  e.a[e.n++] = (t.w.n << 3) | kind;
  e.a[e.n++] = x;
  t.w.push(t.num.get(kind, x));
}

/** Push a frame's number: -2 for the zero page, -1 for none (pfn < 0). */
function pushFrame(t: ThreadKey, pfn: number): void {
  if (pfn <= 0) t.w.push(pfn === 0 ? -2 : -1);
  else pushNum(t, N_FRAME, pfn);
}

/** The raw value ids of a sorted run, gathered here (forEach, not for-of: no iterator per set). */
const gathered = new Words();
const gather = (v: number): void => {
  gathered.push(v);
};

/**
 * Number the values gathered (in the order gathered) and push their numbers sorted ascending,
 * each after `prefix` if given: a sorted run, which translate() sorts again in the global numbering.
 */
function pushRun(t: ThreadKey, prefix?: number): void {
  const n = gathered.n;
  if (n === 0) return;
  t.runs.push(t.w.n).push(n).push(prefix === undefined ? 1 : 2);
  tmp.n = 0;
  for (let i = 0; i < n; i++) {
    const v = gathered.a[i]!;
    t.ents.push(-1).push(v);
    tmp.push(t.num.get(N_VALUE, v));
  }
  insertionSort(tmp.a, n);
  const out = t.w;
  out.reserve(2 * n);
  for (let i = 0; i < n; i++) {
    if (prefix !== undefined) out.a[out.n++] = prefix;
    out.a[out.n++] = tmp.a[i]!;
  }
}

/**
 * Append t's key in the numbering `num` (which goes on numbering): its words, each numbered word
 * renumbered in the order t numbered them (so `num` numbers in the order a key computed with it
 * would), each sorted run sorted again.
 */
function translate(t: ThreadKey, num: Numbering, out: Words): void {
  const base = out.n;
  out.append(t.w);
  const o = out.a;
  const e = t.ents.a;
  const runs = t.runs.a;
  let ri = 0;
  for (let i = 0, ne = t.ents.n; i < ne; ) {
    const tag = e[i]!;
    if (tag >= 0) {
      o[base + (tag >> 3)] = num.get(tag & 7, e[i + 1]!);
      i += 2;
      continue;
    }
    const at = base + runs[ri]!;
    const n = runs[ri + 1]!;
    const stride = runs[ri + 2]!;
    ri += 3;
    tmp.n = 0;
    for (let j = 0; j < n; j++, i += 2) tmp.push(num.get(N_VALUE, e[i + 1]!));
    const s = tmp.a;
    insertionSort(s, n);
    for (let j = 0; j < n; j++) o[at + j * stride + stride - 1] = s[j]!;
  }
}

/** A thread's key (t reset before): the process, its pages, its pending path. */
function procKey(r: Runner, p: ProcT, t: ThreadKey): void {
  const k = r.k;
  const mm = p.mm;
  const out = t.w;
  out.push(p.alive ? 1 : 0).push(mm.cowPgtable ? 1 : 0).push(mm.hasPinned ? 1 : 0).push(mm.ksmSlot).push(mm.writeProtectSeq & 1).push(mm.mmapReaders).push(mm.mmapWriter === p.tid ? 1 : mm.mmapWriter >= 0 ? 2 : 0).push(mm.uffdForkEvent ? 1 : 0);
  // Where its next mapping goes (get_unmapped_area): whether it will neighbour one it has.
  out.push(mm.mmapNext - MMAP_BASE_VPN);
  // Before 6.15, each anon VMA's place among those with its vm_pgoff (the device-exclusive rmap
  // walk's order), by its start: how many there are, then theirs.
  if (walksAnonRmap(k)) {
    const at = out.n;
    out.push(0);
    let n = 0;
    for (const v of mm.vmas) {
      if (!v.anonVma) continue;
      out.push(v.start - MMAP_BASE_VPN).push(tieRank(k, v));
      n++;
    }
    out.set(at, n);
  }
  // The regions in name order.
  regions.n = 0;
  p.regions.forEach(regions.collect);
  regions.sort(byRegionName);
  const bitsOf = k.tables.bits;
  const entryOf = k.tables.entry;
  for (let ri = 0, nr = regions.n; ri < nr; ri++) {
    const reg = regions.vals[ri]!;
    if (!p.alive) {
      out.reserve(reg.n);
      for (let i = 0; i < reg.n; i++) out.a[out.n++] = -9;
      continue;
    }
    // Where the region is: which VMAs neighbour which (vma_merge) follows from the addresses.
    out.push(reg.start - MMAP_BASE_VPN);
    // The VMA and the PTE table of the last page, kept while the next page is in them.
    let vma: Vma | null = null;
    // Without a PTE table, the huge PMD mapping the page (pmd_trans_huge), if any: its bits
    // (PMD_LEAF among them) and the folio's page are the page's.
    let block = -1;
    let table = 0;
    let leaf = -1;
    // The ideal cells of the region's pages, looked up at once.
    if (cells.length < 4 * reg.n) cells = new Int32Array(8 * reg.n);
    const haveCells = r.ideal.cellsInto(p.name, reg.start, reg.n, cells);
    for (let i = 0; i < reg.n; i++) {
      const vpn = reg.start + i;
      if (vma === null || vpn < vma.start || vpn >= vma.end) vma = mm.findVma(vpn);
      if (vpn >>> TABLE_SHIFT !== block) {
        block = vpn >>> TABLE_SHIFT;
        table = pteTableOf(k, mm, vpn);
        leaf = table === 0 ? pmdLeafSlot(k, mm, vpn) : -1;
      }
      const slot = table === 0 ? leaf : (table << TABLE_SHIFT) | (vpn & TABLE_MASK);
      const bits = slot < 0 ? 0 : bitsOf[slot]!;
      out.push(vma === null ? -1 : vma.flags);
      // Which anon_vma (none: -1) and whether its chain links a parent's: they decide which
      // neighbours it merges with (is_mergeable_anon_vma) and whose anon_vma a fault reuses.
      if (vma === null || vma.anonId === 0) out.push(-1);
      else pushNum(t, N_ANON, vma.anonId);
      out.push(vma !== null && vma.uncowedParents ? 1 : 0);
      // Its page offset against its address (mremap keeps a moved range's): a neighbour merges
      // only when the offsets line up (is_mergeable_vma's pgoff test).
      out.push(vma === null ? 0 : vma.pgoffShift);
      if (mm.cowPgtable) {
        // COW page tables: whether this page goes through a shared table, which one, who is charged.
        const ps = pmdSlotOf(k, mm, vpn);
        const shared = ps < 0 ? 0 : entryOf[ps]!;
        out.push(-13).push(ps < 0 ? -1 : bitsOf[ps]!);
        if (shared === 0) out.push(-1);
        else pushNum(t, N_TABLE, shared);
        out.push(shared === 0 ? -1 : k.tables.share[shared]!).push(shared === 0 ? -1 : k.tables.owner[shared] === mm.id ? 1 : k.tables.owner[shared]! < 0 ? -1 : 0).push(mm.rssAnon).push(mm.nrTables);
      }
      // Soft-dirty bits matter only once clear_refs armed tracking (VM_SOFTDIRTY cleared).
      out.push(bits & adMask & (vma !== null && vma.flags & VM_SOFTDIRTY ? ~PTE_SOFT_DIRTY : ~0));
      if (bits & PTE_PRESENT) {
        if (bits & PTE_SPECIAL) out.push(-2);
        else pushFrame(t, slot === leaf ? hugePmdPfn(k, leaf, vpn) : entryOf[slot]!);
      } else if (bits & PTE_SWAP) {
        const s = entryOf[slot]!;
        const cached = k.swap.cache[s]!;
        pushNum(t, N_SLOT, s);
        pushNum(t, N_VALUE, k.swap.data[s]!);
        out.push(k.swap.count[s]!);
        pushFrame(t, cached);
      } else if (bits & PTE_DEVICE_EXCLUSIVE) pushFrame(t, entryOf[slot]!);
      const ci = 4 * i;
      if (!haveCells || cells[ci + 1]! < 0) {
        out.push(-1);
      } else {
        pushNum(t, N_VALUE, cells[ci]!);
        out.push(cells[ci + 2]!);
        if (cells[ci + 3]) pushNum(t, N_CELL, cells[ci + 1]!);
        else out.push(-1);
        const m = r.ideal.maybeOf(cells[ci + 1]!);
        if (m !== undefined) {
          gathered.n = 0;
          m.forEach(gather);
          pushRun(t, -3);
        }
      }
    }
  }
  // KSM's rmap items on stable nodes, by address (Mm.ksmItems): ksmd's next pass merges into a
  // KSM page only if one hangs on it. An item on a page no longer in the stable tree counts for
  // nothing.
  if (mm.ksmItems !== null && p.alive) {
    // Its own marker: -14 begins a large folio's MM-id slots in the frames part.
    out.push(-15);
    for (const [vpn, pfn] of mm.ksmItems) {
      if (!isStableKsm(k, pfn)) continue;
      out.push(vpn - MMAP_BASE_VPN);
      pushFrame(t, pfn);
    }
  }
  // KSM's remembered checksums, by address (Mm.ksmChecksums): a page merges only where its value
  // is the one remembered.
  if (mm.ksmChecksums !== null && p.alive) {
    // Its own marker: -16 begins a handle's moved pages in the held part.
    out.push(-17);
    for (const [vpn, value] of mm.ksmChecksums) {
      out.push(vpn - MMAP_BASE_VPN);
      pushNum(t, N_VALUE, value);
    }
  }
  // KSM's smart scan states, by address (Mm.ksmAges): which later passes leave a page out.
  if (mm.ksmAges !== null && p.alive) {
    out.push(-18);
    for (const [vpn, state] of mm.ksmAges) out.push(vpn - MMAP_BASE_VPN).push(state);
  }
  // What the process held comes at the end of the key (heldKey), once the values that can still
  // be read are numbered.
  taskKey(r, p, t);
}

/** A pending kernel path (v1.1 `&`): everything its next steps depend on. */
function taskKey(r: Runner, p: ProcT, t: ThreadKey): void {
  const task = p.task;
  const out = t.w;
  if (!task) {
    out.push(-7);
    return;
  }
  switch (task.kind) {
    case 'fork':
      out.push(-8).push(FORK_PHASES.indexOf(task.phase)).push(task.pair).push(task.vpn).push(task.seenBits);
      pushFrame(t, task.seenPfn);
      pushFrame(t, task.newPfn);
      out.push(task.child >= 0 ? 1 : 0);
      break;
    case 'gup':
      out.push(-9).push(GUP_PHASES.indexOf(task.phase)).push(task.page).push(task.lo).push(task.req.pin ? 1 : 0).push(task.req.write ? 1 : 0).push(task.req.fast ? 1 : 0).push(task.seq < 0 ? -1 : r.k.mms[task.mm]!.writeProtectSeq - task.seq).push(task.readBits);
      pushFrame(t, task.readPfn);
      for (let i = 0; i < task.handle.frames.length; i++) {
        pushFrame(t, task.handle.frames[i]!);
        out.push(task.handle.refs[i]!).push(task.fallback[i] ? 1 : 0);
      }
      break;
    case 'write':
      out.push(-10).push(WRITE_PHASES.indexOf(task.phase)).push(task.vpn).push(task.hi);
      pushNum(t, N_VALUE, task.value);
      out.push(task.seenBits);
      pushFrame(t, task.seenPfn);
      pushFrame(t, task.newPfn);
      out.push(task.locked ? 1 : 0);
      break;
  }
}

const FORK_PHASES: readonly string[] = ['begin', 'check', 'apply', 'alloc', 'install', 'next', 'end'];
const GUP_PHASES: readonly string[] = ['read', 'grab', 'end', 'slow'];
const WRITE_PHASES: readonly string[] = ['fault', 'install', 'store'];
const HANDLE_KINDS: readonly string[] = ['pin', 'gup', 'pipe', 'exclusive'];

/**
 * The values a process ever legitimately held (ideal), as the numbers of those something can
 * still return: a value no frame, swap slot, cell, handle or pending path of the key holds is
 * never read again (writes make new values), so whether the process held it decides no check.
 */
function heldKey(r: Runner, group: string, num: Numbering, out: Words): void {
  // The values numbered, in the order of their numbers: those held come out sorted. Value 0
  // (zero-fill, number 0) belongs to everyone and is never written as held.
  const values = num.valueOrder;
  const at = out.n + 1;
  out.push(-4).push(0);
  for (let i = 1, n = values.n; i < n; i++) if (r.ideal.everHeld(group, values.a[i]!)) out.push(i);
  out.set(at, out.n - at - 1);
}

/** Reused between calls: the encoding is read (hashed or copied) before the next one. */
const words = new Words();
/** Per-thread signatures (each thread's key with its own numbering), reused. */
const sigs: ThreadKey[] = [];
const procBuf: ProcT[] = [];
let nProcs = 0;
let pending = false;
const collectProc = (p: ProcT): void => {
  procBuf[nProcs++] = p;
  if (p.task !== null) pending = true;
};
const orderBuf: number[] = [];
const rankBuf: number[] = [];
const groupBuf: string[] = [];
const handles = new Entries<LiveHandle>();

/**
 * Signatures compared as their text (the words joined by commas) would compare, then by
 * position. The order decides which renamings share an encoding (the held values are written as
 * sorted numbers, so which thread is numbered first matters): this is the order of the text keys
 * the integer encoding replaced, so the states searched and counted stay theirs.
 */
function bySig(a: number, b: number): number {
  return textOrder(sigs[a]!.w, sigs[b]!.w) || a - b;
}

/** Two signatures' order as their text (the words joined by commas): < 0, 0 (equal), > 0. */
export function textOrder(x: Words, y: Words): number {
  const n = Math.min(x.n, y.n);
  const xa = x.a;
  const ya = y.a;
  for (let i = 0; i < n; i++) {
    const u = xa[i]!;
    const v = ya[i]!;
    if (u !== v) return textOrderOf(u, v);
  }
  return x.n - y.n;
}

/** Decimal digits of |x| (x a 32-bit integer). */
function digits(x: number): number {
  let d = 1;
  for (let m = Math.abs(x); m >= 10; m = Math.floor(m / 10)) d++;
  return d;
}

/**
 * The order of two different integers' texts, followed by a comma or the end (String(u) against
 * String(v), nothing allocated): '-' goes before any digit; two texts of one sign compare as their
 * digits, and when one's digits begin the other's, the shorter (followed by a comma or the end,
 * both before any digit) goes first.
 */
function textOrderOf(u: number, v: number): number {
  if (u < 0 !== v < 0) return u < 0 ? -1 : 1;
  const a = Math.abs(u);
  const b = Math.abs(v);
  const da = digits(a);
  const db = digits(b);
  // The first min(da, db) digits of each, as numbers of as many digits.
  const pa = da > db ? Math.floor(a / 10 ** (da - db)) : a;
  const pb = db > da ? Math.floor(b / 10 ** (db - da)) : b;
  return pa !== pb ? pa - pb : da - db;
}

/** Is this thread the holder of a handle (handles collected)? */
function holdsHandle(name: string): boolean {
  for (let i = 0; i < handles.n; i++) if (handles.vals[i]!.proc === name) return true;
  return false;
}

/** The threads restKey() writes the rest of a key for, and their ranks (its arguments). */
let keyProcs: readonly ProcT[] = procBuf;
let keyRanks: readonly number[] = rankBuf;
let nKeyProcs = 0;

function rankOf(name: string): number {
  for (let i = 0; i < nKeyProcs; i++) if (keyProcs[i]!.name === name) return keyRanks[i]!;
  return -1;
}

/** The MM-id slot words (mm id + 1) of mms no thread in the key has, in order of appearance (mmRankOf). */
const otherMms = new Words();

/**
 * The lowest rank of a thread whose mm has id `mmId + 1` (an MM-id slot's word; 0, a free slot:
 * -1). An mm no thread in the key has (its threads are gone) is -2 - its number among those,
 * by first appearance: no mm of a thread can be it, only another slot.
 */
function mmRankOf(slotId: number): number {
  if (slotId === 0) return -1;
  let best = -1;
  for (let i = 0; i < nKeyProcs; i++) {
    if (keyProcs[i]!.mm.id + 1 === slotId && (best < 0 || keyRanks[i]! < best)) best = keyRanks[i]!;
  }
  if (best >= 0) return best;
  for (let i = 0; i < otherMms.n; i++) if (otherMms.a[i] === slotId) return -2 - i;
  otherMms.push(slotId);
  return -1 - otherMms.n;
}

/** Handles in the order of their holder's rank, then address, kind and id. */
function byRank(a: LiveHandle, b: LiveHandle): number {
  const ra = rankOf(a.proc) - rankOf(b.proc);
  return ra !== 0 ? ra : a.h.vpn - b.h.vpn || (a.h.kind < b.h.kind ? -1 : a.h.kind > b.h.kind ? 1 : a.h.id - b.h.id);
}
const handleAfter = (a: LiveHandle, _an: string, b: LiveHandle): boolean => byRank(a, b) > 0;

/**
 * The canonical encoding of the runner's state as integers, in a buffer reused by the next call
 * (read words a[0..n) before it): two states with the same encoding behave the same.
 */
export function canonicalEncode(r: Runner): Words {
  const procs = procBuf;
  nProcs = 0;
  pending = false;
  r.procs.forEach(collectProc);
  adMask = pending ? ~0 : ~(PTE_YOUNG | PTE_DIRTY);
  collectHandles(r);
  const out = words;
  out.n = 0;
  // A thread that is gone and holds nothing (no handle, no pending path) counts only in number
  // (the explorer's limit on threads counts it): nothing can read what it left. Its process's
  // address space and what the process held are its live threads' or, once all are gone, nobody's.
  let gone = 0;
  for (let i = 0; i < nProcs; i++) {
    const p = procs[i]!;
    if (p.alive || p.task !== null || holdsHandle(p.name)) procs[i - gone] = p;
    else gone++;
  }
  nProcs -= gone;
  out.push(gone);
  // Order threads by a signature that ignores their names and global numbering (each one's key
  // with its own numbering): it decides which renamings share an encoding.
  while (sigs.length < Math.max(nProcs, 1)) sigs.push(new ThreadKey());
  const order = orderBuf;
  for (let i = 0; i < nProcs; i++) {
    const t = sigs[i]!;
    t.reset();
    procKey(r, procs[i]!, t);
    // Insertion sort by signature (a few threads).
    let j = i - 1;
    while (j >= 0 && bySig(order[j]!, i) > 0) {
      order[j + 1] = order[j]!;
      j--;
    }
    order[j + 1] = i;
  }
  for (let n = 0; n < nProcs; n++) rankBuf[order[n]!] = n;
  const groups = groupBuf;
  let nGroups = 0;
  // The first thread's key with the global numbering is its signature (both number from
  // nothing): its words are copied, and the numbering goes on from its signature's. The others'
  // keys are their signatures translated into it.
  if (nProcs === 0) {
    // No thread: an empty key, and the numbering from nothing.
    sigs[0]!.reset();
    order[0] = 0;
  } else groups[nGroups++] = procs[order[0]!]!.group;
  const num = sigs[order[0]!]!.num;
  if (nProcs > 0) out.push(-11).push(0);
  out.append(sigs[order[0]!]!.w);
  for (let n = 1; n < nProcs; n++) {
    const p = procs[order[n]!]!;
    let g = 0;
    while (g < nGroups && groups[g] !== p.group) g++;
    if (g === nGroups) groups[nGroups++] = p.group;
    out.push(-11).push(g);
    translate(sigs[order[n]!]!, num, out);
  }
  restKey(r, procs, rankBuf, nProcs, groups, nGroups, num, out);
  return out;
}

/**
 * How many live VMAs with vma's vm_pgoff entered the anon_vma trees before it (Vma.anonSeq, whose
 * values depend on the path): 5.14-6.14's device-exclusive rmap walk visits those first.
 */
function tieRank(k: Kernel, vma: Vma): number {
  const pgoff = vmaStartPgoff(vma);
  let rank = 0;
  for (const mm of k.mms) {
    if (!mm.alive) continue;
    for (const w of mm.vmas) if (w.anonVma && vmaStartPgoff(w) === pgoff && w.anonSeq < vma.anonSeq) rank++;
  }
  return rank;
}

/** Collect the runner's handles, for the thread filter and restKey(). */
export function collectHandles(r: Runner): void {
  handles.n = 0;
  r.handles.forEach(handles.collect);
}

/**
 * The key after the threads' (handles collected: collectHandles): the handles, by their holder's
 * rank (`ranks[i]`, of thread `procs[i]`, i < n) and address; the frames `num` numbered, in that
 * order; what each process of `groups[0..nGroups)` held, in that order.
 */
export function restKey(r: Runner, procs: readonly ProcT[], ranks: readonly number[], n: number, groups: readonly string[], nGroups: number, num: Numbering, out: Words): void {
  keyProcs = procs;
  keyRanks = ranks;
  nKeyProcs = n;
  // Handles, in an order given by their holder's rank and address (insertion sort: a few).
  handles.sort(handleAfter);
  for (let hi = 0; hi < handles.n; hi++) {
    const name = handles.names[hi]!;
    const lh = handles.vals[hi]!;
    const h = lh.h;
    // The page it was taken on: the pin checker compares the frame held with what the holder maps there.
    out.push(-5).push(HANDLE_KINDS.indexOf(h.kind)).push(rankOf(lh.proc)).push(h.vpn).push(h.write ? 1 : 0).push(h.longterm ? 1 : 0);
    for (let i = 0; i < h.frames.length; i++) out.push(h.frames[i]! < 0 ? -1 : num.frame(h.frames[i]!)).push(h.refs[i]!).push(h.revoked?.[i] ?? -1);
    // mremap moved some of its pages: where each is now, relative to where it was taken.
    if (h.vpns) {
      // Its own marker: -13 begins a page's COW page-table words in the threads part.
      out.push(-16);
      for (let i = 0; i < h.vpns.length; i++) out.push(h.vpns[i]! - h.vpn - i);
    }
    const touched = r.grantTouchedOf(name);
    if (touched) {
      out.push(-12);
      for (let i = 0; i < touched.length; i++) out.push(touched[i]!);
    }
    const st = r.ideal.handleView(name);
    if (st) {
      for (let i = 0; i < st.bound.length; i++) {
        const cell = st.origin[i]!;
        const v = cell >= 0 ? r.ideal.cellValueOf(cell) : -1;
        out.push(st.bound[i] ? 1 : 0).push(v < 0 ? -1 : num.value(v));
        const at = out.length;
        out.push(0);
        out.set(at, pushSortedValues(st.seen[i]!, num, out));
      }
    }
  }
  // Frames, in canonical order (no frame is numbered from here on).
  otherMms.n = 0;
  const f = r.k.frames;
  out.push(-6);
  const frames = num.frameOrder;
  for (let i = 0, n = frames.n; i < n; i++) {
    const pfn = frames.a[i]!;
    out.push(f.refcount[pfn]!).push(f.mapcount[pfn]!).push(f.flags[pfn]!).push(num.value(f.value[pfn]!)).push(f.flags[pfn]! & PG_KSM ? chainPlace(r.k, pfn) : 0);
    if (f.flags[pfn]! & PG_SWAPCACHE) out.push(num.slot(f.priv[pfn]!));
    // A large folio's MM-id slots (with the mm as its threads' rank) and shared bit, once per
    // run of its frames in canonical order.
    if (f.tracksMmIds(pfn) && (i === 0 || frames.a[i - 1]! >>> 9 !== pfn >>> 9)) {
      const b = pfn >>> 9;
      out.push(-14).push(f.mmIdsShared[b]!).push(mmRankOf(f.mmId0[b]!)).push(f.mmIdCount0[b]!).push(mmRankOf(f.mmId1[b]!)).push(f.mmIdCount1[b]!);
    }
  }
  // What each process held (ideal), per process in the order the threads gave: only the values
  // numbered above, which something can still return; no read can see the others again.
  for (let g = 0; g < nGroups; g++) heldKey(r, groups[g]!, num, out);
}

/** The canonical encoding of the runner's state, as a new array. */
export function canonicalWords(r: Runner): number[] {
  const w = canonicalEncode(r);
  return Array.from(w.a.subarray(0, w.n));
}

/** The canonical key of the runner's state, as text (tests, --exact keys are the words). */
export function canonicalKey(r: Runner): string {
  return canonicalWords(r).join(',');
}

/**
 * A 64-bit fingerprint of an encoding (its first n words), written to out[0] and out[1], each
 * made non-zero (zero marks an empty slot of the visited set): each word mixed as murmur3 mixes
 * its input, then into two accumulators (xxHash32's round, two sets of constants), finished by
 * murmur3's fmix. The mixing of a word is off the accumulators' chains of dependent operations,
 * which are short (an add or xor, a rotation, a multiply): 0.6 of the time of the two murmur3
 * hashes it replaced (100 ns to 165 for a key of 64 words), with as few collisions of each half
 * (a million keys differing in three small words: as many as a random 32-bit hash has).
 */
export function fingerprint(w: ArrayLike<number>, out: Int32Array, n = w.length): void {
  let h1 = 0x9747b28c ^ n;
  let h2 = 0x5bd1e995 ^ Math.imul(n, 0x27d4eb2d);
  for (let i = 0; i < n; i++) {
    let k = Math.imul(w[i]! | 0, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    h1 = (h1 + k) | 0;
    h1 = Math.imul((h1 << 13) | (h1 >>> 19), 0x9e3779b1);
    h2 ^= k;
    h2 = Math.imul((h2 << 17) | (h2 >>> 15), 0x27d4eb2f);
  }
  out[0] = fmix(h1) || 1;
  out[1] = fmix(h2 ^ h1) || 1;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
