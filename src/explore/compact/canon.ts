// The canonical key of a compact state: the state with frames, cells and values renumbered by
// first appearance and processes put in an order that does not depend on their creation (a
// signature sort, ties by creation), so states that differ only by names share one key.
// Processes that are gone and hold nothing count only in number; values nothing can return
// any more are dropped from what processes once held.

import {
  ANON_SHIFT, F_FLAGS, F_MAP, F_REF, F_VAL, H_BOUND, H_HOLDER, H_KIND, H_LONG, H_ORIGIN, H_PAGE, H_PFN, H_REFS, H_REPORTED, H_SEEN,
  H_SIZE, H_WRITE, type Layout, MAX_VALUES, P_HELD, P_PAGES, P_PINNED, P_STATUS, PG_CELL, PG_PTE, PG_SIZE, PG_VMA, PROC_SLOTS, ptePfn,
  S_NHANDLES, S_NPROCS, ST_ALIVE, VMA_DONTCOPY, VMA_START,
} from './layout.js';

/** Scratch space for keys of one layout (no allocation per state). */
export class Canon {
  readonly key: Int32Array;
  /** Numbers given to frames, cells and values in this key: valid where the stamp is this key's. */
  private frameNum: Int32Array;
  private frameStamp: Int32Array;
  private frameOrder: Int32Array;
  private cellNum: Int32Array;
  private cellStamp: Int32Array;
  private cellOrder: Int32Array;
  private valNum = new Int32Array(MAX_VALUES);
  private valStamp = new Int32Array(MAX_VALUES);
  private gen = 0;
  private sig = new Int32Array(PROC_SLOTS);
  private order = new Int32Array(PROC_SLOTS);
  private rank = new Int32Array(PROC_SLOTS);
  private horder: Int32Array;
  /** The anon_vma ids met in the process being written, in order. */
  private anonSeen: Int32Array;
  private nFrames = 0;
  private nCells = 0;
  private nVals = 0;

  /**
   * `anonIds`: whether which anon_vma a VMA has matters (VMAs can merge, with mprotect), or
   * only whether it has one.
   */
  constructor(readonly L: Layout, private readonly anonIds = true) {
    this.key = new Int32Array(L.size + 8);
    this.frameNum = new Int32Array(L.frames);
    this.frameStamp = new Int32Array(L.frames);
    this.frameOrder = new Int32Array(L.frames);
    this.cellNum = new Int32Array(L.cells);
    this.cellStamp = new Int32Array(L.cells);
    this.cellOrder = new Int32Array(L.cells);
    this.horder = new Int32Array(Math.max(1, L.handles));
    this.anonSeen = new Int32Array(L.pages);
  }

  /** A frame's code in the key: 0 none, 1 the zero page, 2 + its number. */
  private frame(pfn: number): number {
    if (pfn <= 0) return pfn + 1;
    if (this.frameStamp[pfn] !== this.gen) {
      this.frameStamp[pfn] = this.gen;
      this.frameNum[pfn] = this.nFrames;
      this.frameOrder[this.nFrames++] = pfn;
    }
    return this.frameNum[pfn]! + 2;
  }

  /** A cell's code: 0 none, 1 + its number. */
  private cell(c: number): number {
    if (c < 0) return 0;
    if (this.cellStamp[c] !== this.gen) {
      this.cellStamp[c] = this.gen;
      this.cellNum[c] = this.nCells;
      this.cellOrder[this.nCells++] = c;
    }
    return this.cellNum[c]! + 1;
  }

  private value(v: number): number {
    if (this.valStamp[v] !== this.gen) {
      this.valStamp[v] = this.gen;
      this.valNum[v] = this.nVals++;
    }
    return this.valNum[v]!;
  }

  /** A set of values (a bit each) renumbered; with `known`, values not numbered yet are dropped. */
  private mask(mask: number, known: boolean): number {
    let out = 0;
    for (let rest = mask; rest !== 0; rest &= rest - 1) {
      const v = 31 - Math.clz32(rest & -rest);
      if (known && this.valStamp[v] !== this.gen) continue;
      out |= 1 << this.value(v);
    }
    return out;
  }

  /** A signature of process p that ignores every number that names something. */
  private signature(s: Int32Array, p: number): number {
    const L = this.L;
    const pb = L.proc(p);
    let h = (s[pb + P_STATUS]! * 7 + s[pb + P_PINNED]!) | 0;
    for (let i = 0, at = pb + P_PAGES; i < L.pages; i++, at += PG_SIZE) {
      const pte = s[at + PG_PTE]!;
      const vw = s[at + PG_VMA]!;
      // Mapped, has an anon_vma, the flags (where VMAs start follows from the rest).
      const v = (vw & ((1 << ANON_SHIFT) - 1) & ~(VMA_START | VMA_DONTCOPY)) | (vw & VMA_DONTCOPY ? 256 : 0) | (vw >>> ANON_SHIFT ? 2 : 0);
      let x = v * 8 + (s[at + PG_CELL]! >= 0 ? 4 : 0);
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

  /** Write the key of state s into this.key; returns its length. Small fields are packed into one int. */
  build(s: Int32Array): number {
    const L = this.L;
    const key = this.key;
    this.gen++;
    this.valStamp[0] = this.gen;
    this.valNum[0] = 0;
    this.nFrames = 0;
    this.nCells = 0;
    this.nVals = 1;
    const np = s[S_NPROCS]!;
    const nh = s[S_NHANDLES]!;
    // Processes that matter: the live ones and the holders of handles.
    let held = 0;
    for (let k = 0, hb = L.handleBase; k < nh; k++, hb += H_SIZE) held |= 1 << s[hb + H_HOLDER]!;
    let n = 0;
    for (let p = 0, pb = L.procBase; p < np; p++, pb += L.procSize) {
      if (s[pb + P_STATUS] !== ST_ALIVE && !(held & (1 << p))) continue;
      const sg = n === 0 && p + 1 === np ? 0 : this.signature(s, p);
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
    key[o++] = np | (n << 4) | (nh << 8);
    for (let r = 0; r < n; r++) {
      const p = this.order[r]!;
      const pb = L.proc(p);
      this.rank[p] = r;
      key[o++] = s[pb + P_STATUS]! | (s[pb + P_PINNED]! << 2);
      // anon_vma ids are the process's own: numbered by first appearance (where VMAs can merge;
      // elsewhere only whether there is one matters).
      let anons = 0;
      for (let i = 0, at = pb + P_PAGES; i < L.pages; i++, at += PG_SIZE) {
        const pte = s[at + PG_PTE]!;
        const pc = pte === 0 ? 0 : (this.frame(ptePfn(pte)) << 1) | (pte & 1);
        const vw = s[at + PG_VMA]!;
        const id = vw >>> ANON_SHIFT;
        let an = id !== 0 && !this.anonIds ? 1 : 0;
        if (id !== 0 && this.anonIds) {
          for (let j = 0; j < anons && an === 0; j++) if (this.anonSeen[j] === id) an = j + 1;
          if (an === 0) {
            this.anonSeen[anons++] = id;
            an = anons;
          }
        }
        key[o++] = (vw & ((1 << ANON_SHIFT) - 1)) | (pc << 5) | (this.cell(s[at + PG_CELL]!) << 12) | (an << 18);
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
      key[o++] = s[hb + H_KIND]! | (this.rank[s[hb + H_HOLDER]!]! << 2) | (s[hb + H_PAGE]! << 5) | (this.frame(s[hb + H_PFN]!) << 10) |
        ((s[hb + H_WRITE]! * 2 + s[hb + H_LONG]!) << 16) | (this.cell(s[hb + H_ORIGIN]!) << 18) | ((s[hb + H_BOUND]! * 4 + s[hb + H_REPORTED]!) << 24);
      key[o++] = s[hb + H_REFS]!;
    }
    // Frames and cells in the order they were named, with their values numbered.
    for (let k = 0; k < this.nFrames; k++) {
      const fb = L.frame(this.frameOrder[k]!);
      key[o++] = s[fb + F_REF]! | (s[fb + F_MAP]! << 20) | (s[fb + F_FLAGS]! << 24) | (this.value(s[fb + F_VAL]!) << 26);
    }
    for (let k = 0; k < this.nCells; k += 6) {
      let x = 0;
      for (let j = k; j < k + 6 && j < this.nCells; j++) x |= this.value(s[L.cellBase + this.cellOrder[j]!]!) << (5 * (j - k));
      key[o++] = x;
    }
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
