// `run --trace`'s capture, after the first, follows the model instead of being made again at
// every step: the table arena notes the tables written (TableArena.startTouched), and after a
// step only the address spaces that reach one of them, or that came or went, are looked at. Of
// those, one whose tables are where they were has only its written tables compared; one whose
// tables moved is compared in full, as diffCaptures would. The frame table notes the frames
// written (FrameTable.startTouched: its reported arrays are written through setters that note
// the frame), and only those are compared, so a step costs what it changed, not a pass over
// every frame. Then the capture is brought up to the model: the written tables and the changed
// frames copied, the moved address spaces' lists made again. What a step reports is
// diffCaptures' report for the capture before and one made after (verify compares the two at
// every step).
//
// A capture stops following (the next step makes a new one, which follows from then on) when a
// copy of the state shares it (RunState.clone) or a copy was made into the arena or the frame table.

import type { Kernel } from '../core/kernel.js';
import type { TableArena } from '../core/pgtable.js';
import { PTRS_PER_TABLE, TABLE_SHIFT } from '../core/constants.js';
import { growTypedArray } from '../core/frames.js';
import type { ChangeLog } from './result.js';
import { capture, diffCaptures, diffSlots, EMPTY, mmTablesOf, type Capture, type MmTables, type Namer, type Slots } from './changes.js';

/**
 * Tests: compare every step's report with diffCaptures' over a capture made anew (or throw);
 * count the steps verified, and of those, the steps whose frames written were compared from
 * the list (listed) and those that compared every frame (scanned).
 */
export const liveOptions = { verify: false, verified: 0, listed: 0, scanned: 0 };

/** Make c (a capture of k just made) follow k's arena from now on. */
export function follow(c: Capture, k: Kernel): void {
  const t = k.tables;
  const f = k.frames;
  c.arena = t;
  c.frameTable = f;
  c.reach = c.reach.length >= t.capacity ? c.reach.fill(0) : new Int32Array(t.capacity);
  for (const [id, m] of c.mms) claim(c, id, m);
  // Past the tables handed out, the arena's entries are none: so are the capture's (a refilled
  // capture's arrays may hold an older one's there), for a table handed out later and not written.
  growTables(c, t);
  c.entry.fill(0, t.top << TABLE_SHIFT);
  c.bits.fill(0, t.top << TABLE_SHIFT);
  // So are its frames past the model's top (a frame handed out later and not written reads as free).
  growFrames(c, f.top);
  c.refcount.fill(0, f.top);
  c.mapcount.fill(0, f.top);
  c.flags.fill(0, f.top);
  c.value.fill(0, f.top);
  t.startTouched();
  f.startTouched();
}

/**
 * Up to this many frames written in a step, advance() compares those alone, however many the
 * model has (most steps of the scenarios: on v6, 2,719 of them; the 7 that write most of a
 * large model's frames, as pagetables-1gib's fork and exit, compare every frame).
 */
const FEW_FRAMES = 4096;

/** advance()'s marks of the tables written in the step (cleared after it). */
let written = new Uint8Array(64);

/** Whether c follows k's arena (its report can be made by advance()). */
export function following(c: Capture, k: Kernel): boolean {
  return c.arena === k.tables && k.tables.tracksTouched && c.frameTable === k.frames && k.frames.tracksTouched;
}

/** Per table of m, m's id in c.reach (-1 where another's is there). */
function claim(c: Capture, id: number, m: MmTables): void {
  const r = c.reach;
  for (let i = 0; i < m.nu; i++) mark(r, m.up[i]!, id + 1);
  for (let i = 0; i < m.n; i++) mark(r, m.table[i]!, id + 1);
}

function mark(r: Int32Array, t: number, v: number): void {
  const cur = r[t]!;
  r[t] = cur === 0 || cur === v ? v : -1;
}

/** m's tables no longer reached by address space id (those several reach stay so: a table marked -1 is looked at more often, never less). */
function unclaim(c: Capture, id: number, m: MmTables): void {
  const r = c.reach;
  for (let i = 0; i < m.nu; i++) if (r[m.up[i]!] === id + 1) r[m.up[i]!] = 0;
  for (let i = 0; i < m.n; i++) if (r[m.table[i]!] === id + 1) r[m.table[i]!] = 0;
}

function sameTables(a: MmTables, b: MmTables): boolean {
  if (a.n !== b.n || a.nu !== b.nu) return false;
  for (let i = 0; i < a.n; i++) if (a.table[i] !== b.table[i] || a.base[i] !== b.base[i]) return false;
  for (let i = 0; i < a.nu; i++) if (a.up[i] !== b.up[i]) return false;
  return true;
}

/** Of m's tables, those written (marked in `written`), in address order. */
function writtenOf(m: MmTables, written: Uint8Array): MmTables {
  let n = 0;
  for (let i = 0; i < m.n; i++) if (written[m.table[i]!]) n++;
  const out: MmTables = { base: new Float64Array(n), table: new Int32Array(n), n, up: EMPTY.up, nu: 0 };
  for (let i = 0, j = 0; i < m.n; i++) {
    if (!written[m.table[i]!]) continue;
    out.base[j] = m.base[i]!;
    out.table[j++] = m.table[i]!;
  }
  return out;
}

/** The model's arena and frames, read as a capture. */
function liveSlots(k: Kernel): Slots {
  const t = k.tables;
  const f = k.frames;
  return { bits: t.bits, words: t.bitWords, entry: t.entry, refcount: f.refcount, mapcount: f.mapcount, flags: f.flags, value: f.value, top: f.top };
}

/**
 * What the step changed (c follows k: following()), and c brought up to the model. The report is
 * diffCaptures(c as it was, a capture of k now).
 */
export function advance(c: Capture, k: Kernel, names: Namer): ChangeLog {
  const before = liveOptions.verify ? copyCapture(c) : null;
  const t = k.tables;
  if (c.reach.length < t.capacity) c.reach = growTypedArray(c.reach, t.capacity);
  // The address spaces to look at: those made since, and those reaching a written table (an
  // address space that went freed its PGD, noted written).
  const ids = new Set<number>();
  for (let id = c.mmCount; id < k.mms.length; id++) ids.add(id);
  c.mmCount = k.mms.length;
  const nt = t.touchedCount;
  if (written.length < t.capacity) written = new Uint8Array(t.capacity);
  for (let i = 0; i < nt; i++) {
    const tb = t.touchedTable(i);
    written[tb] = 1;
    const r = c.reach[tb]!;
    if (r > 0) ids.add(r - 1);
    else if (r < 0) for (const [id, m] of c.mms) if (reaches(m, tb)) ids.add(id);
  }
  const sorted = [...ids].sort((x, y) => x - y);
  const beforeOf = new Map<number, MmTables>();
  const afterOf = new Map<number, MmTables>();
  const moved: number[] = [];
  for (const id of sorted) {
    const mm = k.mms[id];
    const old = c.mms.get(id) ?? EMPTY;
    const now = mm !== undefined && mm.alive && mm.pgd > 0 ? mmTablesOf(k, mm) : EMPTY;
    if (sameTables(old, now)) {
      const w = writtenOf(now, written);
      beforeOf.set(id, w);
      afterOf.set(id, w);
    } else {
      beforeOf.set(id, old);
      afterOf.set(id, now);
      moved.push(id);
    }
  }
  // The frames c holds: as many as the model has now (those past c.top read as free).
  const f = k.frames;
  growFrames(c, f.top);
  // The frames written, in increasing order (as diffCaptures goes through them: the report keeps
  // the first few in full), sorted where they are listed (the list's order is not used otherwise).
  // When they are many and most of the frames (a fork of 1 GiB writes all 262,144), every frame
  // is compared in order instead: no sort, no scattered reads, and no more work than the list's.
  const touched = f.touchedFrames;
  const frames = touched.length > FEW_FRAMES && touched.length * 2 > f.top ? null : touched.sort();
  const log = diffSlots(c, liveSlots(k), names, { ids: sorted, before: (id) => beforeOf.get(id)!, after: (id) => afterOf.get(id)!, frames, update: true });
  f.clearTouched();
  c.top = f.top;
  // The written tables' entries, and the moved address spaces' lists.
  growTables(c, t);
  const e = t.entry;
  const b = t.bits;
  for (let i = 0; i < nt; i++) {
    const tb = t.touchedTable(i);
    written[tb] = 0;
    for (let s = tb << TABLE_SHIFT, end = s + PTRS_PER_TABLE; s < end; s++) {
      c.entry[s] = e[s]!;
      c.bits[s] = b[s]!;
    }
  }
  t.clearTouched();
  for (const id of moved) {
    const old = c.mms.get(id);
    if (old !== undefined) unclaim(c, id, old);
    const now = afterOf.get(id)!;
    if (now === EMPTY) {
      c.mms.delete(id);
    } else {
      c.mms.set(id, now);
      claim(c, id, now);
    }
  }
  if (before !== null) {
    if (frames === null) liveOptions.scanned++;
    else liveOptions.listed++;
    verify(before, c, k, names, log);
  }
  return log;
}

function reaches(m: MmTables, t: number): boolean {
  for (let i = 0; i < m.nu; i++) if (m.up[i] === t) return true;
  for (let i = 0; i < m.n; i++) if (m.table[i] === t) return true;
  return false;
}

/** c's frame arrays hold at least n frames. */
function growFrames(c: Capture, n: number): void {
  if (c.refcount.length >= n) return;
  const cap = Math.max(n, c.refcount.length * 2);
  c.refcount = growTypedArray(c.refcount, cap);
  c.mapcount = growTypedArray(c.mapcount, cap);
  c.flags = growTypedArray(c.flags, cap);
  c.value = growTypedArray(c.value, cap);
}

/** c's entry arrays hold every table t has room for. */
function growTables(c: Capture, t: TableArena): void {
  const n = t.capacity << TABLE_SHIFT;
  if (c.entry.length >= n) return;
  c.entry = growTypedArray(c.entry, n);
  c.bits = growTypedArray(c.bits, n);
  c.words = new Int32Array(c.bits.buffer, c.bits.byteOffset, c.bits.length >>> 1);
}

/** A copy of c's contents (verify). */
function copyCapture(c: Capture): Capture {
  const bits = c.bits.slice();
  return {
    ...c, mms: new Map([...c.mms].map(([id, m]) => [id, { ...m, base: m.base.slice(), table: m.table.slice(), up: m.up.slice() }])),
    bits, words: new Int32Array(bits.buffer, 0, bits.length >>> 1), entry: c.entry.slice(),
    refcount: c.refcount.slice(), mapcount: c.mapcount.slice(), flags: c.flags.slice(), value: c.value.slice(), arena: null, frameTable: null,
  };
}

/**
 * liveOptions.verify: the report is diffCaptures' (the capture before, a new one of the model),
 * and c, brought up to the model, holds what a new capture holds.
 */
function verify(before: Capture, c: Capture, k: Kernel, names: Namer, log: ChangeLog): void {
  const now = capture(k);
  const want = JSON.stringify(diffCaptures(before, now, names));
  const got = JSON.stringify(log);
  if (got !== want) throw new Error(`run --trace: the followed capture reported\n${got}\nwhere a new one reports\n${want}`);
  const ids = [...new Set([...c.mms.keys(), ...now.mms.keys()])];
  for (const id of ids) {
    if (!sameTables(c.mms.get(id) ?? EMPTY, now.mms.get(id) ?? EMPTY)) throw new Error(`run --trace: the followed capture has other tables for address space ${id} than the model`);
  }
  const slots = k.tables.top << TABLE_SHIFT;
  for (let s = 0; s < slots; s++) {
    if (c.entry[s] !== now.entry[s] || c.bits[s] !== now.bits[s]) throw new Error(`run --trace: the followed capture differs from the model at slot ${s}`);
  }
  for (let pfn = 0; pfn < now.top; pfn++) {
    if (c.refcount[pfn] !== now.refcount[pfn] || c.mapcount[pfn] !== now.mapcount[pfn] || c.flags[pfn] !== now.flags[pfn] || c.value[pfn] !== now.value[pfn]) {
      throw new Error(`run --trace: the followed capture differs from the model at frame ${pfn}`);
    }
  }
  if (c.top !== now.top) throw new Error(`run --trace: the followed capture has ${c.top} frames, the model ${now.top}`);
  liveOptions.verified++;
}
