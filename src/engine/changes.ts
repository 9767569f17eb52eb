// What a step changed, for `run --trace`: every PTE of every process and every frame whose state
// differs before and after the step, found by comparing two captures of the model (so no kernel
// path has to report its writes). Only runs when asked (RunOptions.changes): a capture walks the
// populated page tables of every live address space and copies the frame arrays.
//
// A large range (a fork of 1 GiB touches 262144 PTEs in each process and as many frames) is
// kept in full for its first few pages and counted for the rest, grouped by what changed.
//
// A run's captures after the first are not made again at each step: the capture follows the
// model (src/engine/changes-live.ts), comparing only the tables written since, the address
// spaces whose tables they are and the frames written since (FrameTable.startTouched), so that a
// long run's trace costs what its steps change.

import { PG_INUSE, PTE_DEVICE_EXCLUSIVE, PTE_PRESENT, PTE_SWAP, PTE_WRITE, PTRS_PER_TABLE, TABLE_SHIFT } from '../core/constants.js';
import type { Kernel } from '../core/kernel.js';
import type { Mm } from '../core/mm.js';
import { frameFlagNames, pteBitNames } from '../core/names.js';
import { forEachPteTable } from '../core/walk.js';
import type { ChangeLog, FrameChange, FrameState, PteChange, PteState } from './result.js';

/** Pages (virtual page numbers) whose PTE changes are kept in full; the rest are counted. */
export const DETAIL_PAGES = 4;
/** Changed frames kept in full beyond those the detailed PTEs name. */
export const DETAIL_FRAMES = 4;

/** An address space's PTE tables in address order: the first page each covers and its arena index. */
export interface MmTables {
  base: Float64Array;
  table: Int32Array;
  n: number;
  /** The upper tables its walk went through (PGD, PUDs, PMDs), up[0..nu). */
  up: Int32Array;
  nu: number;
}

/** What diffCaptures compares: PTE entries and bits by arena slot, and frames. */
export interface Slots {
  bits: ArrayLike<number>;
  /** `bits` as Int32 words, two entries each. */
  words: ArrayLike<number>;
  entry: ArrayLike<number>;
  refcount: ArrayLike<number>;
  mapcount: ArrayLike<number>;
  flags: ArrayLike<number>;
  value: ArrayLike<number>;
  /** Frames [0, top) are in the arrays. */
  top: number;
}

export interface Capture {
  mms: Map<number, MmTables>;
  /** Copies of the table arena's PTE bits and entries (every table, 512 slots each; longer when reused). */
  bits: Uint16Array;
  /** `bits` as Int32 words, two entries each (a view). */
  words: Int32Array;
  entry: Int32Array;
  refcount: Int32Array;
  mapcount: Int32Array;
  flags: Uint16Array;
  value: Int32Array;
  top: number;
  /** The state that may refill it (capture's `into`) once it is no longer its base; null once a copy of that state shares it. */
  owner: object | null;
  /**
   * The arena whose written tables it follows (changes-live.ts: it is then kept equal to the
   * model after each step, not made again), or null.
   */
  arena: object | null;
  /** The frame table whose written frames it follows (as `arena`'s tables), or null. */
  frameTable: object | null;
  /** While it follows an arena: per table, the address space (id + 1) whose walk reaches it, 0 for none, -1 for several. */
  reach: Int32Array;
  /** The address spaces the kernel had made (ids below this one) when it was made or last brought up to the model. */
  mmCount: number;
}

/**
 * The PTE tables of every live address space (in address order), a copy of their entries, and every
 * frame's state. With `into` (a capture no longer needed), its arrays are refilled instead of new
 * ones made: a fresh array of the whole arena a step cost eight times the copy (its pages zeroed
 * and faulted in), and `run --trace` captures after every step.
 */
export function capture(k: Kernel, owner: object | null = null, into: Capture | null = null): Capture {
  const mms = new Map<number, MmTables>();
  const t = k.tables;
  for (const mm of k.mms) {
    if (!mm.alive || mm.pgd <= 0) continue;
    mms.set(mm.id, mmTablesOf(k, mm, into?.mms.get(mm.id)));
  }
  const f = k.frames;
  const slots = t.top << TABLE_SHIFT;
  // Sized as the arena and the frame table are (they double as they grow): a refill rarely has to grow.
  const bits = t.copyBitsOut(slots, into?.bits);
  const fr = f.copyStateOut(f.top, into ?? undefined);
  return {
    mms, top: f.top, owner,
    bits, words: into?.bits === bits ? into.words : new Int32Array(bits.buffer, bits.byteOffset, bits.length >>> 1),
    entry: t.copyEntriesOut(slots, into?.entry),
    refcount: fr.refcount, mapcount: fr.mapcount, flags: fr.flags, value: fr.value,
    arena: null, frameTable: null, reach: into?.reach ?? NO_REACH, mmCount: k.mms.length,
  };
}

const NO_REACH = new Int32Array(0);

/**
 * An address space's PTE tables in address order and the upper tables above them, in `into`
 * when it has room.
 */
export function mmTablesOf(k: Kernel, mm: Mm, into?: MmTables): MmTables {
  tableList.length = 0;
  upList.length = 0;
  forEachPteTable(k, mm, collectTable, undefined, collectUpper);
  const n = tableList.length >>> 1;
  const nu = upList.length;
  const m: MmTables = into !== undefined && into.table.length >= n && into.up.length >= nu ? into : { base: new Float64Array(n), table: new Int32Array(n), n, up: new Int32Array(nu), nu };
  for (let i = 0; i < n; i++) {
    m.base[i] = tableList[2 * i]!;
    m.table[i] = tableList[2 * i + 1]!;
  }
  for (let i = 0; i < nu; i++) m.up[i] = upList[i]!;
  m.n = n;
  m.nu = nu;
  return m;
}

/** capture()'s list of one address space's PTE tables: (first vpn, table) pairs, reused. */
const tableList: number[] = [];
/** forEachPteTable()'s callback into tableList (one function, not a closure per capture). */
const collectTable = (vpnBase: number, table: number): void => {
  tableList.push(vpnBase, table);
};
/** mmTablesOf()'s list of one address space's upper tables, reused. */
const upList: number[] = [];
const collectUpper = (table: number): void => {
  upList.push(table);
};

/** How the Runner names things: the process of an address space, a page, a value. */
export interface Namer {
  proc(mm: number): string;
  page(mm: number, vpn: number): string;
  value(v: number): string;
}

/** What an entry names: `none`, `frame 3`, `zero page`, `swap slot 2`, `frame 3 (device-exclusive)`. */
function target(bits: number, entry: number): string {
  if (bits === 0) return 'none';
  if (bits & PTE_SWAP) return `swap slot ${entry}`;
  const fr = entry === 0 ? 'zero page' : `frame ${entry}`;
  if (bits & PTE_DEVICE_EXCLUSIVE) return `${fr} (device-exclusive)`;
  if (bits & PTE_PRESENT) return fr;
  return `entry ${entry}`;
}

function pteState(bits: number, entry: number): PteState {
  return { pfn: bits & (PTE_PRESENT | PTE_DEVICE_EXCLUSIVE) ? entry : null, target: target(bits, entry), bits: bits === 0 ? [] : pteBitNames(bits) };
}

/** What happened to a PTE, in words (for the summary, without frame numbers). */
function pteWords(b0: number, e0: number, b1: number, e1: number, numbers: boolean): string {
  if (b0 === 0) return 'new';
  if (b1 === 0) return 'cleared (pte_none)';
  const out: string[] = [];
  if (target(b0, e0) !== target(b1, e1)) out.push(numbers ? `now ${target(b1, e1)}` : 'now names another page or entry');
  const gone = b0 & ~b1;
  const added = b1 & ~b0;
  if (gone & PTE_WRITE && b1 & PTE_PRESENT) out.push('write-protected');
  if (added & PTE_WRITE) out.push('made writable');
  const others = [...bitList(gone & ~PTE_WRITE).map((n) => `-${n}`), ...bitList(added & ~PTE_WRITE).map((n) => `+${n}`)];
  if (others.length) out.push(others.join(' '));
  return out.join(', ');
}

function bitList(bits: number): string[] {
  return bits === 0 ? [] : pteBitNames(bits);
}

function frameState(a: Slots, pfn: number, name: (v: number) => string): FrameState {
  const inUse = pfn < a.top && (a.flags[pfn]! & PG_INUSE) !== 0;
  if (!inUse) return { refcount: 0, mapcount: 0, flags: ['free'], value: '' };
  return { refcount: a.refcount[pfn]!, mapcount: a.mapcount[pfn]!, flags: frameFlagNames(a.flags[pfn]!), value: name(a.value[pfn]!) };
}

const FLAG_WORDS: Record<string, string> = { 'anon-exclusive': 'anon-exclusive (PageAnonExclusive)' };

/** What happened to a frame, in words; without numbers, the deltas (for the summary). */
function frameWords(r0: number, m0: number, f0: number, v0: number, r1: number, m1: number, f1: number, v1: number, numbers: boolean, name: (v: number) => string): string {
  const in0 = (f0 & PG_INUSE) !== 0;
  const in1 = (f1 & PG_INUSE) !== 0;
  if (!in0 && in1) return numbers ? `allocated: refcount ${r1}, mapcount ${m1} [${frameFlagNames(f1).join(' ')}] value ${name(v1)}` : 'allocated';
  if (in0 && !in1) return numbers ? `freed (refcount ${r0} → 0)` : 'freed';
  const out: string[] = [];
  const delta = (d: number): string => (d > 0 ? `+${d}` : `${d}`);
  if (r0 !== r1) out.push(numbers ? `refcount ${r0} → ${r1}` : `refcount ${delta(r1 - r0)}`);
  if (m0 !== m1) out.push(numbers ? `mapcount ${m0} → ${m1}` : `mapcount ${delta(m1 - m0)}`);
  const gone = f0 & ~f1 & ~PG_INUSE;
  const added = f1 & ~f0 & ~PG_INUSE;
  for (const n of gone ? frameFlagNames(gone | PG_INUSE) : []) out.push(`${FLAG_WORDS[n] ?? n} cleared`);
  for (const n of added ? frameFlagNames(added | PG_INUSE) : []) out.push(`${FLAG_WORDS[n] ?? n} set`);
  if (v0 !== v1) out.push(numbers ? `value ${name(v0)} → ${name(v1)}` : 'value changed');
  return out.join(', ');
}

export const EMPTY: MmTables = { base: new Float64Array(0), table: new Int32Array(0), n: 0, up: new Int32Array(0), nu: 0 };

/**
 * Which address spaces diffCaptures compares and which of their tables, when not every one:
 * the ids in increasing order, each one's tables before (in `a`) and after (in `b`); the frames
 * that may have changed, in increasing order (null: every frame); and whether `a`'s frames are
 * made `b`'s as they are compared (a capture that follows the model).
 */
export interface DiffPlan {
  ids: readonly number[];
  before(id: number): MmTables;
  after(id: number): MmTables;
  frames: ArrayLike<number> | null;
  update: boolean;
}

/**
 * Compare two captures: the PTE changes of the first DETAIL_PAGES pages (every process), the
 * frames they name and the first DETAIL_FRAMES other changed frames in full; the rest counted.
 */
export function diffCaptures(a: Capture, b: Capture, names: Namer): ChangeLog {
  const ids = [...new Set([...a.mms.keys(), ...b.mms.keys()])].sort((x, y) => x - y);
  return diffSlots(a, b, names, { ids, before: (id) => a.mms.get(id) ?? EMPTY, after: (id) => b.mms.get(id) ?? EMPTY, frames: null, update: false });
}

/**
 * diffCaptures over what `plan` names: the address spaces with a change, the tables and frames
 * that may have one (an address space, table or frame left out has none); with plan.update,
 * `a`'s frames become `b`'s (a's arrays hold b.top frames).
 */
export function diffSlots(a: Slots, b: Slots, names: Namer, plan: DiffPlan): ChangeLog {
  const ids = plan.ids;
  // Pass 1: the first pages that changed, over every address space.
  const firstVpns: number[] = [];
  for (const id of ids) walk(a, plan.before(id), b, plan.after(id), (vpn) => {
    if (firstVpns.includes(vpn)) return true;
    firstVpns.push(vpn);
    firstVpns.sort((x, y) => x - y);
    if (firstVpns.length > DETAIL_PAGES) firstVpns.pop();
    return firstVpns.length < DETAIL_PAGES || vpn < firstVpns[firstVpns.length - 1]!;
  });
  const detail = new Set(firstVpns);
  // Pass 2: every change, in full for those pages, counted by what changed for the rest.
  const ptes: PteChange[] = [];
  // The rest, by a numeric signature of what changed, with one sample each for the words.
  const more = new Map<number | string, { count: number; what: () => string }>();
  const count = (key: number | string, what: () => string): void => {
    const m = more.get(key);
    if (m) m.count++;
    else more.set(key, { count: 1, what });
  };
  const named = new Set<number>();
  let ptesChanged = 0;
  for (const id of ids) {
    const proc = names.proc(id);
    walk(a, plan.before(id), b, plan.after(id), (vpn, b0, e0, b1, e1) => {
      ptesChanged++;
      if (detail.has(vpn)) {
        ptes.push({ proc, page: names.page(id, vpn), vpn, before: pteState(b0, e0), after: pteState(b1, e1), change: pteWords(b0, e0, b1, e1, true) });
        if (b0 & (PTE_PRESENT | PTE_DEVICE_EXCLUSIVE)) named.add(e0);
        if (b1 & (PTE_PRESENT | PTE_DEVICE_EXCLUSIVE)) named.add(e1);
      } else {
        const kinds = PTE_PRESENT | PTE_SWAP | PTE_DEVICE_EXCLUSIVE;
        const kind = b0 === 0 ? 0 : b1 === 0 ? 1 : e0 !== e1 || (b0 & kinds) !== (b1 & kinds) ? 2 : 3;
        count(((id * 4 + kind) * 4096 + (b0 & ~b1)) * 4096 + (b1 & ~b0), () => `${proc} PTE ${pteWords(b0, e0, b1, e1, false)}`);
      }
      return true;
    });
  }
  ptes.sort((x, y) => x.vpn - y.vpn);
  // Frames.
  const frames: FrameChange[] = [];
  let framesChanged = 0;
  let others = 0;
  const top = Math.max(a.top, b.top);
  const update = plan.update;
  const ar = a.refcount as Int32Array, am = a.mapcount as Int32Array, af = a.flags as Uint16Array, av = a.value as Int32Array;
  const list = plan.frames;
  for (let i = 0, n = list === null ? top : list.length; i < n; i++) {
    const pfn = list === null ? i : list[i]!;
    const inA = pfn < a.top;
    const inB = pfn < b.top;
    const r0 = inA ? a.refcount[pfn]! : 0;
    const m0 = inA ? a.mapcount[pfn]! : 0;
    const f0 = inA ? a.flags[pfn]! : 0;
    const v0 = inA ? a.value[pfn]! : 0;
    const r1 = inB ? b.refcount[pfn]! : 0;
    const m1 = inB ? b.mapcount[pfn]! : 0;
    const f1 = inB ? b.flags[pfn]! : 0;
    const v1 = inB ? b.value[pfn]! : 0;
    if (r0 === r1 && m0 === m1 && f0 === f1 && (v0 === v1 || !(f1 & PG_INUSE))) {
      // Not a change (a free frame's value says nothing), but a capture that follows the model holds it.
      if (update && v0 !== v1) av[pfn] = v1;
      continue;
    }
    framesChanged++;
    if (named.has(pfn) || (ptes.length === ptesChanged && others++ < DETAIL_FRAMES)) {
      frames.push({
        pfn, before: frameState(a, pfn, names.value), after: frameState(b, pfn, names.value),
        change: frameWords(r0, m0, f0, v0, r1, m1, f1, v1, true, names.value),
      });
    } else {
      const dr = r1 - r0;
      const dm = m1 - m0;
      const small = ((f0 & ~f1) << 9) | ((f1 & ~f0) << 1) | (v0 !== v1 ? 1 : 0);
      const key = Math.abs(dr) < 32768 && Math.abs(dm) < 32768 ? -(((dr + 32768) * 65536 + (dm + 32768)) * 2 ** 17 + small) - 1 : `${dr},${dm},${small}`;
      count(key, () => `frame ${frameWords(r0, m0, f0, v0, r1, m1, f1, v1, false, names.value)}`);
    }
    if (update) {
      ar[pfn] = r1;
      am[pfn] = m1;
      af[pfn] = f1;
      av[pfn] = v1;
    }
  }
  return {
    ptes, frames, ptesChanged, framesChanged,
    more: [...more.values()].map((m) => ({ what: m.what(), count: m.count })).sort((x, y) => y.count - x.count),
  };
}

type OnPte = (vpn: number, b0: number, e0: number, b1: number, e1: number) => boolean;

/** Merge two captures of one address space table by table; `on` gets every PTE that differs, and stops the walk by returning false. */
function walk(ca: Slots, a: MmTables, cb: Slots, b: MmTables, on: OnPte): void {
  let i = 0;
  let j = 0;
  while (i < a.n || j < b.n) {
    const va = i < a.n ? a.base[i]! : Infinity;
    const vb = j < b.n ? b.base[j]! : Infinity;
    const sa = va <= vb ? a.table[i]! << TABLE_SHIFT : -1;
    const sb = vb <= va ? b.table[j]! << TABLE_SHIFT : -1;
    const v = Math.min(va, vb);
    // Eight entries (four Int32 words of the bits) at a time: most of a table is none in both.
    const wa = sa >>> 1;
    const wb = sb >>> 1;
    for (let g = 0; g < PTRS_PER_TABLE; g += 8) {
      const noneA = sa < 0 || (ca.words[wa + (g >>> 1)]! | ca.words[wa + (g >>> 1) + 1]! | ca.words[wa + (g >>> 1) + 2]! | ca.words[wa + (g >>> 1) + 3]!) === 0;
      const noneB = sb < 0 || (cb.words[wb + (g >>> 1)]! | cb.words[wb + (g >>> 1) + 1]! | cb.words[wb + (g >>> 1) + 2]! | cb.words[wb + (g >>> 1) + 3]!) === 0;
      if (noneA && noneB) continue;
      for (let d = g; d < g + 8; d++) {
        const b0 = sa < 0 ? 0 : ca.bits[sa + d]!;
        const b1 = sb < 0 ? 0 : cb.bits[sb + d]!;
        if (b0 === 0 && b1 === 0) continue;
        const e0 = sa < 0 ? 0 : ca.entry[sa + d]!;
        const e1 = sb < 0 ? 0 : cb.entry[sb + d]!;
        if (b0 === b1 && e0 === e1) continue;
        if (!on(v + d, b0, b0 === 0 ? 0 : e0, b1, b1 === 0 ? 0 : e1)) return;
      }
    }
    if (va <= vb) i++;
    if (vb <= va) j++;
  }
}
