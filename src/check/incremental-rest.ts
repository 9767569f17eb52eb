// The frames' part of the accounting check (accounting.ts checkRest), kept from step to step for
// a run's steps, on top of the tables' counts (incremental.ts): per frame, the references held
// besides the tables' (the swap cache, the shmem page cache, handles, kernel paths in progress),
// whether the frame is one the check would report (in use, and held by nothing, or its refcount
// or mapcount not what is counted), whether it counts in frames_used and whether it is part of a
// large folio. A frame is decided again when it is written (the frame table's log) or the tables'
// counts of it change (both listed by IncrementalTables.countChanged), or when the references held
// besides the tables change; every frame after the tables' counts start over.
//
// It answers only "the rest of the check would find nothing" (quiet): anything else, and any
// large folio or hugetlb page (checkLargeFolios and checkMmIds look at those), leaves the answer
// to the full checkRest. What it still reads at every check: every swap slot, shmem page and
// handle, as checkRest does.

import { PG_HUGETLB, PG_INUSE, PG_LARGE } from '../core/constants.js';
import type { Kernel } from '../core/kernel.js';
import { growTypedArray } from '../core/frames.js';
import type { IncrementalTables } from './incremental.js';
import { heldRefs } from './held-refs.js';

export class IncrementalFrames {
  /** The tables' counts this was last brought up to date with (IncrementalTables.resets); -1: none. */
  private resets = -1;
  private inc: IncrementalTables | null = null;
  private k: Kernel | null = null;
  /** Per frame: references held besides the tables' (added up from `held`). */
  private extra = new Int32Array(0);
  /** The (frame, references) pairs added into `extra` at the last check, and this check's. */
  private held: number[] = [];
  private next: number[] = [];
  /** Per frame: 1 when checkRest's loop would report it; how many are. */
  private badF = new Uint8Array(0);
  private bad = 0;
  /** Per frame: 1 when it counts in frames_used (in use, not hugetlb); how many do. */
  private usedF = new Uint8Array(0);
  private used = 0;
  /** Per frame: 1 when in use and part of a large folio; how many are. */
  private largeF = new Uint8Array(0);
  private large = 0;
  /** Frames decided so far: [1, hi). */
  private hi = 1;
  /** The swap PTEs naming each slot, for heldRefs to add the shmem objects' to (scratch). */
  private swapCount = new Int32Array(0);
  /** heldRefs' triples (scratch). */
  private refs: number[] = [];
  /** Whether heldRefs found a problem this check. */
  private problem = false;
  private readonly flagProblem = (): void => {
    this.problem = true;
  };

  /** The swap PTEs naming slots [0, n) as the tables count them, in the scratch array. */
  private swapScratch(ptes: Int32Array, n: number): Int32Array {
    if (this.swapCount.length < n) this.swapCount = new Int32Array(n * 2);
    const m = Math.min(n, ptes.length);
    this.swapCount.set(ptes.subarray(0, m));
    this.swapCount.fill(0, m, n);
    return this.swapCount;
  }

  /** Start over at the next check (the tables' counts were not kept: a full check ran instead). */
  invalidate(): void {
    this.resets = -1;
  }

  /**
   * Would checkRest find nothing, given the tables' counts `inc` (just brought up to date) and the
   * references `held` by kernel paths in progress (triples: frame, references, pin)? The frames
   * written or counted again since the last check are inc.countChanged, cleared here.
   */
  quiet(k: Kernel, inc: IncrementalTables, heldByPaths: readonly number[]): boolean {
    const f = k.frames;
    const top = f.top;
    this.room(top);
    // The references besides the tables', as checkRest counts them (heldRefs); one naming a freed
    // frame, or a swap slot's count not what names it, is a problem.
    const sw = k.swap;
    const swapCount = this.swapScratch(inc.swap, sw.top);
    const refs = this.refs;
    refs.length = 0;
    this.problem = false;
    heldRefs(k, swapCount, heldByPaths, refs, this.flagProblem);
    // `next`: the pairs for the frames past the zero page, whose references the handles add up.
    const next = this.next;
    next.length = 0;
    let zeroRefs = 0;
    for (let i = 0; i < refs.length; i += 3) {
      if (refs[i] === 0) zeroRefs += refs[i + 1]!;
      else next.push(refs[i]!, refs[i + 1]!);
    }
    if (this.resets !== inc.resets || this.inc !== inc || this.k !== k) this.rebuild(k, inc, top);
    else this.update(k, top, inc.countChanged);
    inc.clearCountChanged();
    if (this.problem || this.bad !== 0 || this.large !== 0 || this.used !== f.used) return false;
    if (f.refcount[0] !== inc.expRef[0]! + zeroRefs) return false;
    // checkLargeFolios' pool checks, with no large folio in use.
    const pool = k.hugetlb;
    return pool.used === 0 && pool.resv === 0 && pool.free >= 0 && !pool.everReserved;
  }

  /** Every frame decided again, the references besides the tables' from `next` alone. */
  private rebuild(k: Kernel, inc: IncrementalTables, top: number): void {
    this.k = k;
    this.inc = inc;
    this.resets = inc.resets;
    this.extra.fill(0);
    this.badF.fill(0);
    this.usedF.fill(0);
    this.largeF.fill(0);
    this.bad = this.used = this.large = 0;
    const next = this.next;
    for (let i = 0; i < next.length; i += 2) this.extra[next[i]!]! += next[i + 1]!;
    this.hi = 1;
    for (let pfn = 1; pfn < top; pfn++) this.decide(k, pfn);
    this.hi = Math.max(top, 1);
    this.swapHeld();
  }

  /** The frames that may have changed decided again: written or counted differently (`changed`), held differently, new. */
  private update(k: Kernel, top: number, changed: Int32Array): void {
    const old = this.held;
    const next = this.next;
    const extra = this.extra;
    for (let i = 0; i < old.length; i += 2) extra[old[i]!]! -= old[i + 1]!;
    for (let i = 0; i < next.length; i += 2) extra[next[i]!]! += next[i + 1]!;
    for (let i = 0; i < old.length; i += 2) this.decide(k, old[i]!);
    for (let i = 0; i < next.length; i += 2) this.decide(k, next[i]!);
    for (let i = 0; i < changed.length; i++) this.decide(k, changed[i]!);
    for (let pfn = this.hi; pfn < top; pfn++) this.decide(k, pfn);
    if (top > this.hi) this.hi = top;
    this.swapHeld();
  }

  /** This check's pairs become the last check's. */
  private swapHeld(): void {
    const t = this.held;
    this.held = this.next;
    this.next = t;
  }

  /** Frame pfn as checkRest's loop sees it now: reported or not, in frames_used or not, large or not. */
  private decide(k: Kernel, pfn: number): void {
    if (pfn < 1 || pfn >= this.badF.length) return;
    const f = k.frames;
    const inc = this.inc!;
    const x = pfn < f.top ? f.flags[pfn]! : 0;
    let b = 0, u = 0, l = 0;
    if (x & PG_INUSE) {
      const refs = (pfn < inc.expRef.length ? inc.expRef[pfn]! : 0) + this.extra[pfn]!;
      const maps = pfn < inc.expMap.length ? inc.expMap[pfn]! : 0;
      b = (refs === 0 && !(x & PG_LARGE)) || f.refcount[pfn] !== refs || f.mapcount[pfn] !== maps ? 1 : 0;
      u = x & PG_HUGETLB ? 0 : 1;
      l = x & PG_LARGE ? 1 : 0;
    }
    this.bad += b - this.badF[pfn]!;
    this.badF[pfn] = b;
    this.used += u - this.usedF[pfn]!;
    this.usedF[pfn] = u;
    this.large += l - this.largeF[pfn]!;
    this.largeF[pfn] = l;
  }

  /** Room for frames [0, n). */
  private room(n: number): void {
    if (this.badF.length >= n) return;
    const cap = Math.max(n, this.badF.length * 2, 16);
    this.extra = growTypedArray(this.extra, cap);
    this.badF = growTypedArray(this.badF, cap);
    this.usedF = growTypedArray(this.usedF, cap);
    this.largeF = growTypedArray(this.largeF, cap);
  }
}
