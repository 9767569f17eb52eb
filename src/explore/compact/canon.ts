// The canonical key of a compact state: the state with frames, cells and values renumbered by
// first appearance and processes put in an order that does not depend on their creation (a
// signature sort, ties by creation), so states that differ only by names share one key.
// Processes that are gone and hold nothing count only in number; values nothing can return
// any more are dropped from what processes once held.

import {
  F_FLAGS, F_MAP, F_REF, F_VAL, H_BOUND, H_HOLDER, H_KIND, H_LONG, H_ORIGIN, H_PAGE, H_PFN, H_REFS, H_REPORTED, H_SEEN,
  H_SIZE, H_WRITE, type Layout, MAX_VALUES, P_HELD, P_PINNED, P_STATUS, PG_CELL, PG_PTE, PG_VMA, PROC_SLOTS, ptePfn,
  S_NHANDLES, S_NPROCS, ST_ALIVE,
} from './layout.js';

/** Scratch space for keys of one layout (no allocation per state). */
export class Canon {
  readonly key: Int32Array;
  private frameNum: Int32Array;
  private frameOrder: Int32Array;
  private cellNum: Int32Array;
  private cellOrder: Int32Array;
  private valNum = new Int32Array(MAX_VALUES);
  private sig = new Int32Array(PROC_SLOTS);
  private order = new Int32Array(PROC_SLOTS);
  private rank = new Int32Array(PROC_SLOTS);
  private horder: Int32Array;
  private nFrames = 0;
  private nCells = 0;
  private nVals = 0;

  constructor(readonly L: Layout) {
    this.key = new Int32Array(L.size + 8);
    this.frameNum = new Int32Array(L.frames);
    this.frameOrder = new Int32Array(L.frames);
    this.cellNum = new Int32Array(L.cells);
    this.cellOrder = new Int32Array(L.cells);
    this.horder = new Int32Array(Math.max(1, L.handles));
  }

  private frame(pfn: number): number {
    if (pfn <= 0) return pfn === 0 ? -2 : -1;
    let n = this.frameNum[pfn]!;
    if (n < 0) {
      n = this.nFrames++;
      this.frameNum[pfn] = n;
      this.frameOrder[n] = pfn;
    }
    return n;
  }

  private cell(c: number): number {
    if (c < 0) return -1;
    let n = this.cellNum[c]!;
    if (n < 0) {
      n = this.nCells++;
      this.cellNum[c] = n;
      this.cellOrder[n] = c;
    }
    return n;
  }

  private value(v: number): number {
    let n = this.valNum[v]!;
    if (n < 0) this.valNum[v] = n = this.nVals++;
    return n;
  }

  /** A set of values (a bit each) renumbered; with `known`, values not numbered yet are dropped. */
  private mask(mask: number, known: boolean): number {
    let out = 0;
    for (let v = 0; v < MAX_VALUES; v++) {
      if (!(mask & (1 << v))) continue;
      if (known && this.valNum[v]! < 0) continue;
      out |= 1 << this.value(v);
    }
    return out;
  }

  /** A signature of process p that ignores every number that names something. */
  private signature(s: Int32Array, p: number): number {
    const L = this.L;
    let h = (s[L.proc(p) + P_STATUS]! * 7 + s[L.proc(p) + P_PINNED]!) | 0;
    for (let i = 0; i < L.pages; i++) {
      const at = L.page(p, i);
      const pte = s[at + PG_PTE]!;
      let x = s[at + PG_VMA]! * 8 + (s[at + PG_CELL]! >= 0 ? 4 : 0);
      if (pte !== 0) {
        const pfn = ptePfn(pte);
        x = x * 4 + (pfn === 0 ? 1 : 2 + (pte & 1));
        if (pfn > 0) {
          const fb = L.frame(pfn);
          x = ((x * 31 + s[fb + F_REF]!) * 31 + s[fb + F_MAP]!) * 4 + s[fb + F_FLAGS]!;
        }
      }
      h = Math.imul(h ^ x, 0x9e3779b1) + i;
    }
    const nh = s[S_NHANDLES]!;
    for (let k = 0, hb = L.handleBase; k < nh; k++, hb += H_SIZE) if (s[hb + H_HOLDER] === p) h = Math.imul(h ^ (s[hb + H_KIND]! + 3 * s[hb + H_PAGE]!), 0x85ebca6b);
    return h;
  }

  /** Write the key of state s into this.key; returns its length. */
  build(s: Int32Array): number {
    const L = this.L;
    const key = this.key;
    this.frameNum.fill(-1);
    this.cellNum.fill(-1);
    this.valNum.fill(-1);
    this.valNum[0] = 0;
    this.nFrames = 0;
    this.nCells = 0;
    this.nVals = 1;
    const np = s[S_NPROCS]!;
    const nh = s[S_NHANDLES]!;
    // Processes that matter: the live ones and the holders of handles.
    let n = 0;
    for (let p = 0; p < np; p++) {
      let relevant = s[L.proc(p) + P_STATUS] === ST_ALIVE;
      for (let k = 0, hb = L.handleBase; k < nh && !relevant; k++, hb += H_SIZE) if (s[hb + H_HOLDER] === p) relevant = true;
      if (!relevant) continue;
      const sg = this.signature(s, p);
      // Insertion sort by (signature, creation).
      let j = n++;
      while (j > 0 && this.sig[j - 1]! > sg) {
        this.sig[j] = this.sig[j - 1]!;
        this.order[j] = this.order[j - 1]!;
        j--;
      }
      this.sig[j] = sg;
      this.order[j] = p;
    }
    let o = 0;
    key[o++] = np;
    key[o++] = n;
    key[o++] = nh;
    for (let r = 0; r < n; r++) {
      const p = this.order[r]!;
      this.rank[p] = r;
      key[o++] = s[L.proc(p) + P_STATUS]!;
      key[o++] = s[L.proc(p) + P_PINNED]!;
      for (let i = 0; i < L.pages; i++) {
        const at = L.page(p, i);
        const pte = s[at + PG_PTE]!;
        key[o++] = s[at + PG_VMA]!;
        key[o++] = pte === 0 ? -3 : this.frame(ptePfn(pte)) * 2 + (pte & 1);
        key[o++] = this.cell(s[at + PG_CELL]!);
      }
    }
    // Handles by holder rank and page; ties keep the order they were taken in.
    for (let k = 0; k < nh; k++) {
      const hb = L.handle(k);
      const w = this.rank[s[hb + H_HOLDER]!]! * 64 + s[hb + H_PAGE]! * 4 + s[hb + H_KIND]!;
      let j = k;
      while (j > 0) {
        const pb = L.handle(this.horder[j - 1]!);
        if (this.rank[s[pb + H_HOLDER]!]! * 64 + s[pb + H_PAGE]! * 4 + s[pb + H_KIND]! <= w) break;
        this.horder[j] = this.horder[j - 1]!;
        j--;
      }
      this.horder[j] = k;
    }
    for (let k = 0; k < nh; k++) {
      const hb = L.handle(this.horder[k]!);
      key[o++] = s[hb + H_KIND]!;
      key[o++] = this.rank[s[hb + H_HOLDER]!]!;
      key[o++] = s[hb + H_PAGE]!;
      key[o++] = this.frame(s[hb + H_PFN]!);
      key[o++] = s[hb + H_REFS]!;
      key[o++] = s[hb + H_WRITE]! * 2 + s[hb + H_LONG]!;
      key[o++] = this.cell(s[hb + H_ORIGIN]!);
      key[o++] = s[hb + H_BOUND]! * 4 + s[hb + H_REPORTED]!;
    }
    // Frames and cells in the order they were named, with their values numbered.
    for (let k = 0; k < this.nFrames; k++) {
      const fb = L.frame(this.frameOrder[k]!);
      key[o++] = s[fb + F_REF]!;
      key[o++] = s[fb + F_MAP]!;
      key[o++] = s[fb + F_FLAGS]!;
      key[o++] = this.value(s[fb + F_VAL]!);
    }
    for (let k = 0; k < this.nCells; k++) key[o++] = this.value(s[L.cellBase + this.cellOrder[k]!]!);
    for (let k = 0; k < nh; k++) key[o++] = this.mask(s[L.handle(this.horder[k]!) + H_SEEN]!, false);
    for (let r = 0; r < n; r++) key[o++] = this.mask(s[L.proc(this.order[r]!) + P_HELD]!, true);
    return o;
  }
}

/** A 32-bit hash of key[0..n). */
export function hashKey(key: Int32Array, n: number): number {
  let h = 0x811c9dc5 ^ n;
  for (let i = 0; i < n; i++) {
    h = Math.imul(h ^ key[i]!, 0x01000193);
    h ^= h >>> 15;
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}
