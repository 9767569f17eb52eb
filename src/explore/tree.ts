// What both search engines share: the search tree (parent, packed operation and depth of every
// state, so a path costs 4 bytes a state), the bounds that stop a search, and its statistics.

import type { Progress, SearchBounds, SearchStats } from './search.js';
import { collisionProbability } from './visited.js';

/** A growable Int32 column. */
export class Column {
  a = new Int32Array(1 << 16);
  set(i: number, v: number): void {
    if (i >= this.a.length) {
      const b = new Int32Array(Math.max(i + 1, this.a.length * 2));
      b.set(this.a);
      this.a = b;
    }
    this.a[i] = v;
  }
  get(i: number): number {
    return this.a[i]!;
  }
}

/** The states found so far, in breadth-first order: state 0 is the start. */
export class SearchTree {
  private parent = new Column();
  private ops = new Column();
  private depthOf = new Column();
  count = 1;
  depthReached = 0;

  constructor() {
    this.parent.set(0, -1);
    this.depthOf.set(0, 0);
  }

  /** A new state, reached from `parent` by `op`; its id. */
  add(parent: number, op: number): number {
    const id = this.count++;
    const d = this.depthOf.get(parent) + 1;
    this.parent.set(id, parent);
    this.ops.set(id, op);
    this.depthOf.set(id, d);
    if (d > this.depthReached) this.depthReached = d;
    return id;
  }

  depth(id: number): number {
    return this.depthOf.get(id);
  }

  parentOf(id: number): number {
    return this.parent.get(id);
  }

  opOf(id: number): number {
    return this.ops.get(id);
  }

  /** The parents and operations of states from..to-1 (copies). */
  slice(from: number, to: number): { parents: Int32Array; ops: Int32Array } {
    return { parents: this.parent.a.slice(from, to), ops: this.ops.a.slice(from, to) };
  }

  /** Bytes the tree occupies. */
  get bytes(): number {
    return this.parent.a.byteLength + this.ops.a.byteLength + this.depthOf.a.byteLength;
  }

  /** The operations from the start to state `id`, then `last` if given. */
  path(id: number, last?: number): number[] {
    const ops: number[] = last === undefined ? [] : [last];
    for (let i = id; this.parent.get(i) >= 0; i = this.parent.get(i)) ops.push(this.ops.get(i));
    return ops.reverse();
  }
}

/** How often (ms) a search looks at the clock's bounds: --time, --max-memory, a stop request. */
export const CHECK_MS = 25;

/**
 * A request to stop a search from outside (a signal seen by another thread): an Int32Array over
 * shared memory whose word 0 is set to non-zero. The search reads it on its clock checks.
 */
export type StopFlag = Int32Array;

/**
 * The bounds of one search (--max-states, --time, --max-memory, a stop request), progress
 * reports, statistics. The bounds are checked by the clock, not by a count of expansions: an
 * engine calls due() often (cheap: one clock read) and check() when it says so, at most every
 * CHECK_MS, so a search stops within CHECK_MS plus one transition of its bound.
 */
export class SearchBudget {
  readonly t0 = performance.now();
  private lastProgress = this.t0;
  private nextCheck = this.t0 + CHECK_MS;
  stoppedBy: SearchStats['stoppedBy'] = null;
  /** Events reached ("sometimes" properties): name -> shortest depth. */
  readonly reached = new Map<string, number>();
  transitions = 0;
  depthComplete = 0;

  constructor(private readonly bounds: SearchBounds, private readonly progress?: Progress, private readonly stopFlag?: StopFlag) {}

  /** Expanding a state at depth d: every state above d - 1 was expanded. */
  expanding(d: number): void {
    if (d > this.depthComplete + 1) this.depthComplete = d - 1;
  }

  reach(event: string, depth: number): void {
    if (!this.reached.has(event)) this.reached.set(event, depth);
  }

  /** True (the search stops) once `count` states are known and that is --max-states. */
  full(count: number): boolean {
    if (count < this.bounds.maxStates) return false;
    this.stoppedBy = 'states';
    return true;
  }

  /** Time for check(). */
  due(): boolean {
    return performance.now() >= this.nextCheck;
  }

  /** --time, --max-memory (the process's resident memory), a stop request; a progress report. True: stop. */
  check(count: number, id: number, depth: number): boolean {
    const now = performance.now();
    this.nextCheck = now + CHECK_MS;
    if (this.stopFlag && Atomics.load(this.stopFlag, 0) !== 0) this.stoppedBy = 'interrupted';
    else if (now - this.t0 > this.bounds.timeSec * 1000) this.stoppedBy = 'time';
    else if (process.memoryUsage.rss() / 2 ** 20 > this.bounds.maxMemoryMB) this.stoppedBy = 'memory';
    if (this.progress && now - this.lastProgress > 250) {
      this.lastProgress = now;
      this.progress({ states: count, depth, frontier: count - id, statesPerSec: count / ((now - this.t0) / 1000) });
    }
    return this.stoppedBy !== null;
  }

  stats(tree: SearchTree, stopped: boolean, engine: SearchStats['engine'], store: { visited: SearchStats['visited']; bytes: number; workers: number }): SearchStats {
    const elapsedMs = performance.now() - this.t0;
    return {
      states: tree.count, transitions: this.transitions, depthReached: tree.depthReached,
      depthComplete: stopped ? this.depthComplete : Math.min(this.bounds.depth, tree.depthReached),
      elapsedMs, statesPerSec: Math.round(tree.count / Math.max(elapsedMs / 1000, 1e-3)), stoppedBy: this.stoppedBy,
      reached: Object.fromEntries([...this.reached].sort((a, b) => a[1] - b[1])),
      engine,
      visited: store.visited,
      collisionProbability: store.visited === 'exact' ? 0 : collisionProbability(tree.count),
      bytesPerState: Math.round(store.bytes / tree.count),
      workers: store.workers,
    };
  }
}
