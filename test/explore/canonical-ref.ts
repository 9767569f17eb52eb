// The canonical encoding written the straightforward way, as it was before the thread keys
// were computed once and translated (commit 4c74932's src/explore/canonical.ts, but for imports
// and names), with the pages huge PMDs map and the coarser key's rules (threads gone that hold
// nothing count only in number; what a process held is written last, only the values something
// can still return): the reference canonical-equiv.test.ts compares the encoding with, word for
// word.

import { PG_KSM, PG_SWAPCACHE, PTE_SOFT_DIRTY, VM_SOFTDIRTY, PTE_DEVICE_EXCLUSIVE, PTE_DIRTY, PTE_PRESENT, PTE_SPECIAL, PTE_SWAP, PTE_YOUNG } from '../../src/core/constants.js';
import type { LiveHandle, Proc, Runner } from '../../src/engine/run.js';
import type { Region } from '../../src/engine/state.js';
import { pmdSlotOf } from '../../src/core/walk.js';
import { followSlot, slotPfn } from '../../src/core/huge.js';

type ProcT = Proc;

/** A growable buffer of 32-bit words with its length: an encoding is written here, nothing allocated per word. */
export class Words {
  a = new Int32Array(256);
  n = 0;
  push(x: number): this {
    if (this.n === this.a.length) {
      const b = new Int32Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = x;
    return this;
  }
  /** Set word i (written before). */
  set(i: number, x: number): void {
    this.a[i] = x;
  }
  get length(): number {
    return this.n;
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

class Numbering {
  private readonly frames = new Renumber();
  readonly values = new Renumber();
  private readonly cells = new Renumber();
  private readonly slots = new Renumber();
  private readonly tables = new Renumber();
  private readonly anons = new Renumber();

  reset(): void {
    this.anons.reset();
    this.frames.reset();
    this.values.reset();
    this.values.get(0); // value 0 (zero-fill) is always number 0
    this.cells.reset();
    this.slots.reset();
    this.tables.reset();
  }
  anon(a: number): number {
    return this.anons.get(a);
  }
  table(t: number): number {
    return this.tables.get(t);
  }
  slot(s: number): number {
    return this.slots.get(s);
  }
  frame(pfn: number): number {
    return pfn === 0 ? -2 : this.frames.get(pfn); // -2: the zero page
  }
  value(v: number): number {
    return this.values.get(v);
  }
  cell(c: number): number {
    return this.cells.get(c);
  }
  /** The frames numbered so far, in the order of their numbers: a[0..n). */
  get frameOrder(): Words {
    return this.frames.order;
  }
}

/**
 * The accessed and dirty bits never decide anything in the model, except a pending kernel
 * path's pte_same() re-check; while no path is pending they are left out of the key.
 */
let adMask = ~0;

/** Scratch buffers, reused by every key (a key is read, hashed or copied, before the next). */
const cellBuf = new Int32Array(4);
const tmp = new Words();

/** A map's entries collected (by forEach: no entry pairs) into reused arrays, and sorted there. */
class Entries<V> {
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
let pushNum: Numbering | null = null;
const pushValue = (v: number): void => {
  tmp.push(pushNum!.value(v));
};

/** Push the numbers of `vals` (numbered in their order), sorted ascending, each after `prefix` if given; their count. */
function pushSortedValues(vals: ReadonlySet<number>, num: Numbering, out: Words, prefix?: number): number {
  tmp.n = 0;
  pushNum = num;
  vals.forEach(pushValue);
  return pushSorted(out, prefix);
}

/** Sort the numbers gathered in `tmp` and push them, each after `prefix` if given; their count. */
function pushSorted(out: Words, prefix?: number): number {
  const n = tmp.n;
  const t = tmp.a;
  insertionSort(t, n);
  for (let i = 0; i < n; i++) {
    if (prefix !== undefined) out.push(prefix);
    out.push(t[i]!);
  }
  return n;
}

/** Sort a[0..n) ascending in place (a handful of numbers). */
function insertionSort(a: Int32Array, n: number): void {
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

const heldRaw = new Words();
const pushHeld = (v: number): void => {
  heldRaw.push(v);
};

function procKey(r: Runner, p: ProcT, num: Numbering, out: Words): void {
  const k = r.k;
  const mm = p.mm;
  out.push(p.alive ? 1 : 0).push(mm.cowPgtable ? 1 : 0).push(mm.hasPinned ? 1 : 0).push(mm.ksmSlot).push(mm.writeProtectSeq & 1).push(mm.mmapReaders).push(mm.mmapWriter === p.tid ? 1 : mm.mmapWriter >= 0 ? 2 : 0).push(mm.uffdForkEvent ? 1 : 0);
  // The regions in name order.
  regions.n = 0;
  p.regions.forEach(regions.collect);
  regions.sort(byRegionName);
  for (let ri = 0, nr = regions.n; ri < nr; ri++) {
    const reg = regions.vals[ri]!;
    for (let i = 0; i < reg.n; i++) {
      const vpn = reg.start + i;
      if (!p.alive) {
        out.push(-9);
        continue;
      }
      const vma = p.mm.findVma(vpn);
      out.push(vma === null ? -1 : vma.flags);
      out.push(vma === null || vma.anonId === 0 ? -1 : num.anon(vma.anonId)).push(vma !== null && vma.uncowedParents ? 1 : 0);
      // A page a huge PMD maps: the PMD's bits and the folio's page.
      const slot = followSlot(k, p.mm, vpn);
      const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
      if (mm.cowPgtable) {
        // COW page tables: whether this page goes through a shared table, which one, who is charged.
        const ps = pmdSlotOf(k, mm, vpn);
        const table = ps < 0 ? 0 : k.tables.entry[ps]!;
        out.push(-13).push(ps < 0 ? -1 : k.tables.bits[ps]!).push(table === 0 ? -1 : num.table(table)).push(table === 0 ? -1 : k.tables.share[table]!).push(table === 0 ? -1 : k.tables.owner[table] === mm.id ? 1 : k.tables.owner[table]! < 0 ? -1 : 0).push(mm.rssAnon).push(mm.nrTables);
      }
      // Soft-dirty bits matter only once clear_refs armed tracking (VM_SOFTDIRTY cleared).
      out.push(bits & adMask & (vma !== null && vma.flags & VM_SOFTDIRTY ? ~PTE_SOFT_DIRTY : ~0));
      if (bits & PTE_PRESENT) out.push(bits & PTE_SPECIAL ? -2 : num.frame(slotPfn(k, slot, vpn)));
      else if (bits & PTE_SWAP) {
        const s = k.tables.entry[slot]!;
        const cached = k.swap.cache[s]!;
        out.push(num.slot(s)).push(num.value(k.swap.data[s]!)).push(k.swap.count[s]!).push(cached < 0 ? -1 : num.frame(cached));
      } else if (bits & PTE_DEVICE_EXCLUSIVE) out.push(num.frame(k.tables.entry[slot]!));
      const c = cellBuf;
      if (!r.ideal.cellInto(p.name, vpn, c) || c[1]! < 0) {
        out.push(-1);
      } else {
        out.push(num.value(c[0]!)).push(c[2]!).push(c[3] ? num.cell(c[1]!) : -1);
        const m = r.ideal.maybeOf(c[1]!);
        if (m !== undefined) pushSortedValues(m, num, out, -3);
      }
    }
  }
  taskKey(r, p, num, out);
}

/** A frame's number, -1 for none. */
function frameNum(pfn: number, num: Numbering): number {
  return pfn < 0 ? -1 : num.frame(pfn);
}

/** A pending kernel path (v1.1 `&`): everything its next steps depend on. */
function taskKey(r: Runner, p: ProcT, num: Numbering, out: Words): void {
  const t = p.task;
  if (!t) {
    out.push(-7);
    return;
  }
  switch (t.kind) {
    case 'fork':
      out.push(-8).push(FORK_PHASES.indexOf(t.phase)).push(t.pair).push(t.vpn).push(t.seenBits).push(frameNum(t.seenPfn, num)).push(frameNum(t.newPfn, num)).push(t.child >= 0 ? 1 : 0);
      break;
    case 'gup':
      out.push(-9).push(GUP_PHASES.indexOf(t.phase)).push(t.page).push(t.lo).push(t.req.pin ? 1 : 0).push(t.req.write ? 1 : 0).push(t.req.fast ? 1 : 0).push(t.seq < 0 ? -1 : r.k.mms[t.mm]!.writeProtectSeq - t.seq).push(t.readBits).push(frameNum(t.readPfn, num));
      for (let i = 0; i < t.handle.frames.length; i++) out.push(frameNum(t.handle.frames[i]!, num)).push(t.handle.refs[i]!).push(t.fallback[i] ? 1 : 0);
      break;
    case 'write':
      out.push(-10).push(WRITE_PHASES.indexOf(t.phase)).push(t.vpn).push(t.hi).push(num.value(t.value)).push(t.seenBits).push(frameNum(t.seenPfn, num)).push(frameNum(t.newPfn, num)).push(t.locked ? 1 : 0);
      break;
  }
}

const FORK_PHASES: readonly string[] = ['begin', 'check', 'apply', 'alloc', 'install', 'next', 'end'];
const GUP_PHASES: readonly string[] = ['read', 'grab', 'end', 'slow'];
const WRITE_PHASES: readonly string[] = ['fault', 'install', 'store'];
const HANDLE_KINDS: readonly string[] = ['pin', 'gup', 'pipe', 'exclusive'];

/** Reused between calls: the encoding is read (hashed or copied) before the next one. */
const words = new Words();
/** Per-process signatures (each process's key with its own numbering) and those numberings, reused. */
const sigs: Words[] = [];
const sigNums: Numbering[] = [];
const soleNum = new Numbering();
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
  const x = sigs[a]!;
  const y = sigs[b]!;
  const n = Math.min(x.n, y.n);
  for (let i = 0; i < n; i++) {
    const u = x.a[i]!;
    const v = y.a[i]!;
    if (u === v) continue;
    const su = String(u);
    const sv = String(v);
    const m = Math.min(su.length, sv.length);
    for (let j = 0; j < m; j++) if (su.charCodeAt(j) !== sv.charCodeAt(j)) return su.charCodeAt(j) - sv.charCodeAt(j);
    // One number's text is the start of the other's: the shorter is followed by a comma or the
    // end, both before any digit.
    return su.length - sv.length;
  }
  return x.n - y.n || a - b;
}

function rankOf(name: string): number {
  for (let i = 0; i < nProcs; i++) if (procBuf[i]!.name === name) return rankBuf[i]!;
  return -1;
}

/** The lowest rank of a thread whose mm has id `mmId + 1` (an MM-id slot's word; 0, a free slot: -1). */
const otherMms: number[] = [];
function mmRankOf(slotId: number): number {
  if (slotId === 0) return -1;
  let best = -1;
  for (let i = 0; i < nProcs; i++) {
    if (procBuf[i]!.mm.id + 1 === slotId && (best < 0 || rankBuf[i]! < best)) best = rankBuf[i]!;
  }
  if (best >= 0) return best;
  if (!otherMms.includes(slotId)) otherMms.push(slotId);
  return -2 - otherMms.indexOf(slotId);
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
export function refCanonicalEncode(r: Runner): Words {
  const procs = procBuf;
  nProcs = 0;
  pending = false;
  r.procs.forEach(collectProc);
  handles.n = 0;
  r.handles.forEach(handles.collect);
  let gone = 0;
  for (let i = 0; i < nProcs; i++) {
    const p = procs[i]!;
    let holds = false;
    for (let h = 0; h < handles.n; h++) if (handles.vals[h]!.proc === p.name) holds = true;
    if (p.alive || p.task !== null || holds) procs[i - gone] = p;
    else gone++;
  }
  nProcs -= gone;
  adMask = pending ? ~0 : ~(PTE_YOUNG | PTE_DIRTY);
  // Order threads by a signature that ignores their names and global numbering (each one's key
  // with its own numbering): it decides which renamings share an encoding.
  while (sigs.length < nProcs) {
    sigs.push(new Words());
    sigNums.push(new Numbering());
  }
  const order = orderBuf;
  order[0] = 0;
  // One thread needs no signature to be ordered.
  for (let i = 0; i < nProcs && nProcs > 1; i++) {
    const o = sigs[i]!;
    o.n = 0;
    sigNums[i]!.reset();
    procKey(r, procs[i]!, sigNums[i]!, o);
    // Insertion sort by signature (a few threads).
    let j = i - 1;
    while (j >= 0 && bySig(order[j]!, i) > 0) {
      order[j + 1] = order[j]!;
      j--;
    }
    order[j + 1] = i;
  }
  const out = words;
  out.n = 0;
  out.push(gone);
  for (let n = 0; n < nProcs; n++) rankBuf[order[n]!] = n;
  const groups = groupBuf;
  let nGroups = 0;
  // The first thread's key with the global numbering is its signature (both number from
  // nothing): its words are copied, and the numbering goes on from its signature's.
  let num = soleNum;
  let first = 0;
  if (nProcs > 1) {
    const o = sigs[order[0]!]!;
    num = sigNums[order[0]!]!;
    groups[nGroups++] = procs[order[0]!]!.group;
    out.push(-11).push(0);
    for (let i = 0; i < o.n; i++) out.push(o.a[i]!);
    first = 1;
  } else {
    num.reset();
  }
  for (let n = first; n < nProcs; n++) {
    const p = procs[order[n]!]!;
    let g = 0;
    while (g < nGroups && groups[g] !== p.group) g++;
    if (g === nGroups) groups[nGroups++] = p.group;
    out.push(-11).push(g);
    procKey(r, p, num, out);
  }
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
      out.push(-13);
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
  otherMms.length = 0;
  const f = r.k.frames;
  out.push(-6);
  const frames = num.frameOrder;
  for (let i = 0, n = frames.n; i < n; i++) {
    const pfn = frames.a[i]!;
    out.push(f.refcount[pfn]!).push(f.mapcount[pfn]!).push(f.flags[pfn]!).push(num.value(f.value[pfn]!)).push(f.flags[pfn]! & PG_KSM && f.inStableTree(pfn) ? 1 : 0);
    if (f.flags[pfn]! & PG_SWAPCACHE) out.push(num.slot(f.priv[pfn]!));
    // A large folio's MM-id slots (with the mm as its threads' rank) and shared bit, once per
    // run of its frames in canonical order.
    if (f.tracksMmIds(pfn) && (i === 0 || frames.a[i - 1]! >>> 9 !== pfn >>> 9)) {
      const b = pfn >>> 9;
      out.push(-14).push(f.mmIdsShared[b]!).push(mmRankOf(f.mmId0[b]!)).push(f.mmIdCount0[b]!).push(mmRankOf(f.mmId1[b]!)).push(f.mmIdCount1[b]!);
    }
  }
  // What each process held: the values numbered above, in number order.
  for (let g = 0; g < nGroups; g++) {
    heldRaw.n = 0;
    r.ideal.forEachHeld(groups[g]!, pushHeld);
    const known = new Set<number>(Array.from(num.values.order.a.subarray(0, num.values.order.n)));
    const nums = Array.from(heldRaw.a.subarray(0, heldRaw.n)).filter((v) => known.has(v)).map((v) => num.value(v)).sort((x, y) => x - y);
    out.push(-4).push(nums.length);
    for (const x of nums) out.push(x);
  }
  return out;
}

/** The reference encoding of the runner's state, as a new array. */
export function refCanonicalWords(r: Runner): number[] {
  const w = refCanonicalEncode(r);
  return Array.from(w.a.subarray(0, w.n));
}
