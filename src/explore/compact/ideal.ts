// The ideal side of the compact explorer: what a program may rely on (src/check/ideal.ts) for
// private mappings, pins and pipe buffers. A process page names a cell; a cell holds a value;
// values are bits, so "every value this process ever held" is one int per process.

import {
  CompactBoundError, type Machine, V_INCOHERENT, V_LEAK, V_LOST,
} from './machine.js';
import {
  F_FLAGS, F_SIZE, F_VAL, H_BOUND, H_HOLDER, H_LONG, H_ORIGIN, H_PAGE, H_SEEN, H_SIZE, MAX_VALUES, P_HELD, PG_CELL, PG_VMA, VMA_IDEAL_DONTFORK, VMA_IDEAL_RO, VMA_IDEAL_WIPE,
  PROC_SLOTS, S_NHANDLES, S_NPROCS,
} from './layout.js';

const bit = (v: number): number => 1 << v;

/** The cells some process page or handle refers to, a bit each. */
export function cellsInUse(m: Machine): number {
  const s = m.s;
  const L = m.L;
  let used = 0;
  const np = s[S_NPROCS]!;
  for (let p = 0; p < np; p++) {
    for (let i = 0, at = L.page(p, 0) + PG_CELL; i < L.pages; i++, at += 3) if (s[at]! >= 0) used |= bit(s[at]!);
  }
  const nh = s[S_NHANDLES]!;
  for (let h = 0, hb = L.handleBase; h < nh; h++, hb += H_SIZE) if (s[hb + H_ORIGIN]! >= 0) used |= bit(s[hb + H_ORIGIN]!);
  return used;
}

/** Values something can still return: in a frame, a cell in use, or a pipe buffer's allowed set. */
export function liveValues(m: Machine): number {
  const s = m.s;
  const L = m.L;
  let live = 1;
  for (let pfn = 1, b = L.frameBase + F_SIZE; pfn < L.frames; pfn++, b += F_SIZE) if (s[b + F_FLAGS] !== 0) live |= bit(s[b + F_VAL]!);
  const cells = cellsInUse(m);
  for (let c = 0; c < L.cells; c++) if (cells & bit(c)) live |= bit(s[L.cellBase + c]!);
  const nh = s[S_NHANDLES]!;
  for (let h = 0, hb = L.handleBase; h < nh; h++, hb += H_SIZE) live |= s[hb + H_SEEN]!;
  return live;
}

/**
 * A fresh value (every write writes one): the lowest id nothing can return any more. Whoever
 * held an old value of that id forgets it (it can never be read again, so nobody can tell).
 */
export function freshValue(m: Machine): number {
  const live = liveValues(m);
  for (let v = 1; v < MAX_VALUES; v++) {
    if (live & bit(v)) continue;
    for (let p = 0, at = m.L.procBase + P_HELD; p < PROC_SLOTS; p++, at += m.L.procSize) m.s[at] = m.s[at]! & ~bit(v);
    return v;
  }
  throw new CompactBoundError('more live values than the state can name');
}

/** A new cell holding `value`. */
export function newCell(m: Machine, value: number): number {
  const used = cellsInUse(m);
  for (let c = 0; c < m.L.cells; c++) {
    if (used & bit(c)) continue;
    m.s[m.L.cellBase + c] = value;
    return c;
  }
  throw new CompactBoundError('more ideal cells than the bounds allow');
}

/** IdealMemory.access(): must this access succeed? (While the process maps the page, and a write while it is writable.) */
export const idealAccess = (m: Machine, p: number, i: number, write: boolean): boolean =>
  m.s[m.L.page(p, i) + PG_CELL]! >= 0 && !(write && m.s[m.L.page(p, i) + PG_VMA]! & VMA_IDEAL_RO);

/** IdealMemory.madvise(dontfork / wipeonfork) of one page: the flag, where it is mapped. */
export function idealMadviseFlag(m: Machine, p: number, i: number, flag: number): void {
  const at = m.L.page(p, i);
  if (m.s[at + PG_CELL]! >= 0) m.s[at + PG_VMA] = m.s[at + PG_VMA]! | flag;
}

/** IdealMemory.mprotect() of one page: false (ENOMEM) where nothing is mapped. */
export function idealMprotect(m: Machine, p: number, i: number, ro: boolean): boolean {
  const at = m.L.page(p, i);
  if (m.s[at + PG_CELL]! < 0) return false;
  m.s[at + PG_VMA] = (m.s[at + PG_VMA]! & ~VMA_IDEAL_RO) | (ro ? VMA_IDEAL_RO : 0);
  return true;
}

export const idealRead = (m: Machine, p: number, i: number): number => m.s[m.L.cellBase + m.s[m.L.page(p, i) + PG_CELL]!]!;

function hold(m: Machine, v: number, p: number): void {
  if (v !== 0) m.s[m.L.proc(p) + P_HELD] = m.s[m.L.proc(p) + P_HELD]! | bit(v);
}

/** everHeld(): value 0 belongs to everyone. */
export const everHeld = (m: Machine, p: number, v: number): boolean => v === 0 || (m.s[m.L.proc(p) + P_HELD]! & bit(v)) !== 0;

/** setCell(): pipe buffers taken on the cell may return the new value too. */
function setCell(m: Machine, c: number, v: number): void {
  const s = m.s;
  s[m.L.cellBase + c] = v;
  const nh = s[S_NHANDLES]!;
  for (let h = 0, hb = m.L.handleBase; h < nh; h++, hb += H_SIZE) {
    if (s[hb + H_ORIGIN] === c && s[hb + H_LONG] === 0) s[hb + H_SEEN] = s[hb + H_SEEN]! | bit(v);
  }
}

/** IdealMemory.write(): a CPU store. */
export function idealWrite(m: Machine, p: number, i: number, v: number): void {
  setCell(m, m.s[m.L.page(p, i) + PG_CELL]!, v);
  hold(m, v, p);
}

/** IdealMemory.fork(): the child's pages are new cells holding the parent's values. */
export function idealFork(m: Machine, p: number, c: number): void {
  const s = m.s;
  const L = m.L;
  for (let i = 0; i < L.pages; i++) s[L.page(c, i) + PG_CELL] = -1;
  for (let i = 0; i < L.pages; i++) {
    const cell = s[L.page(p, i) + PG_CELL]!;
    const flags = s[L.page(p, i) + PG_VMA]!;
    if (cell < 0 || flags & VMA_IDEAL_DONTFORK) continue;
    if (flags & VMA_IDEAL_WIPE) {
      s[L.page(c, i) + PG_CELL] = newCell(m, 0);
      continue;
    }
    const v = s[L.cellBase + cell]!;
    s[L.page(c, i) + PG_CELL] = newCell(m, v);
    hold(m, v, c);
  }
}

/** IdealMemory.unbind(): the holder let go of page i; its long-term pins there become buffers of their own. */
function unbind(m: Machine, p: number, i: number): void {
  const s = m.s;
  const nh = s[S_NHANDLES]!;
  for (let h = 0, hb = m.L.handleBase; h < nh; h++, hb += H_SIZE) {
    if (s[hb + H_HOLDER] === p && s[hb + H_LONG] === 1 && s[hb + H_PAGE] === i) s[hb + H_BOUND] = 0;
  }
}

/** IdealMemory.munmap() of one page. */
export function idealUnmap(m: Machine, p: number, i: number): void {
  unbind(m, p, i);
  m.s[m.L.page(p, i) + PG_CELL] = -1;
}

/** IdealMemory.madvise(dontneed): the holder's pins there are unbound; the page is a new zero cell. */
export function idealDontneed(m: Machine, p: number, i: number): void {
  const s = m.s;
  unbind(m, p, i);
  const at = m.L.page(p, i) + PG_CELL;
  if (s[at]! >= 0) {
    s[at] = -1; // the old cell lives on only in handles
    s[at] = newCell(m, 0);
  }
}

/** IdealMemory.takeHandle(): handle h refers to the cell its holder has there now. */
export function idealTakeHandle(m: Machine, h: number): void {
  const s = m.s;
  const hb = m.L.handle(h);
  const cell = s[m.L.page(s[hb + H_HOLDER]!, s[hb + H_PAGE]!) + PG_CELL]!;
  s[hb + H_ORIGIN] = cell;
  s[hb + H_BOUND] = s[hb + H_LONG] === 1 && cell >= 0 ? 1 : 0;
  // What a pipe buffer may return; a long-term pin follows its cell instead.
  s[hb + H_SEEN] = s[hb + H_LONG] === 1 ? 0 : cell >= 0 ? bit(s[m.L.cellBase + cell]!) : 1;
}

/** IdealMemory.handleWrite() through a long-term pin: the pinned cell (bound or orphaned) changes. */
export function idealHandleWrite(m: Machine, h: number, v: number): void {
  const s = m.s;
  const hb = m.L.handle(h);
  const cell = s[hb + H_ORIGIN]!;
  if (cell >= 0) {
    setCell(m, cell, v);
    hold(m, v, s[hb + H_HOLDER]!);
  }
}

/** IdealMemory.checkHandleRead(): 0 when `value` is allowed, else the violation bit. */
export function idealCheckHandleRead(m: Machine, h: number, value: number, observer: number): number {
  const s = m.s;
  const hb = m.L.handle(h);
  const long = s[hb + H_LONG] === 1;
  const allowed = long ? bit(s[m.L.cellBase + s[hb + H_ORIGIN]!]!) : s[hb + H_SEEN]!;
  if (allowed & bit(value)) return 0;
  const holder = s[hb + H_HOLDER]!;
  // Values written through a handle are held by its holder, so that test covers them.
  if (!everHeld(m, observer, value) && !everHeld(m, holder, value)) return V_LEAK;
  return long && s[hb + H_BOUND] === 1 ? V_INCOHERENT : V_LOST;
}
