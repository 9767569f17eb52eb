// What the search on one thread (search.ts) and on several (parallel.ts) share: the search tree
// (parent and packed operation of every state, so a path costs 8 bytes a state; a state's depth
// is known from where each depth starts), the bounds that stop a search, and its statistics.
//
// The tree can spill to a file (the search on one thread, when the process's resident memory
// passes SPILL_FRACTION of --max-memory): its records, 8 bytes a state in id order, go to the
// file one chunk at a time and only the chunk being filled stays in memory. A breadth-first search reads
// the tree in increasing id order within each depth (the states of a depth are expanded in id
// order, and StateCache rebuilds each one's ancestors, whose ids increase too), so each depth has
// a small read buffer over the file, refilled forward; a counterexample's path walk reads single
// records (positional reads, rare).

import { closeSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Progress, SearchBounds, SearchStats } from './search.js';
import { collisionProbability } from './visited.js';

/** States a chunk of the tree holds (a power of two). */
const CHUNK = 1 << 16;
/** States a depth's read buffer over a spilled tree holds. */
const WINDOW = 1 << 13;
/** The tree spills when the process's resident memory passes this fraction of --max-memory. */
export const SPILL_FRACTION = 0.8;

/** A file name for a spilled tree, unique to this process and call, in `dir` (default: the system's temporary directory). */
export function spillFileName(dir: string = tmpdir()): string {
  return join(dir, `cowlab-explore-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}.tree`);
}

/** The spill file could not be made or written (a full disk, a directory not writable). */
export class TreeSpillError extends Error {}

/** A depth's read buffer over the spilled records: records start..start+len-1. */
interface Window {
  start: number;
  len: number;
  buf: Int32Array;
}

/** The states found so far, in breadth-first order: state 0 is the start. */
export class SearchTree {
  /** Chunk k: the (parent, op) pairs of states k*chunk.. interleaved; null once spilled. */
  private chunks: (Int32Array | null)[];
  private readonly shift: number;
  private readonly mask: number;
  private readonly chunk: number;
  /** starts[d]: the first state of depth d. */
  private readonly starts: number[] = [0];
  private lastDepth = 0;
  count = 1;
  depthReached = 0;
  /** The spill file's descriptor (-1: not spilling), and how many states it holds (whole chunks). */
  private fd = -1;
  private flushed = 0;
  private windows: Window[] = [];
  private readonly one = new Int32Array(2);
  /** In a path walk: spilled records are read one by one, not through the windows. */
  private walking = false;
  /** The spill file's path once spilling started (kept after close, for the report). */
  spillPath: string | null = null;
  /** States in the tree when it began to spill. */
  spilledAt = 0;

  /** `chunk`: states a chunk holds, a power of two (small ones in tests, to spill often). */
  constructor(chunk = CHUNK) {
    if (!(chunk >= 2 && (chunk & (chunk - 1)) === 0)) throw new Error(`internal error: tree chunk ${chunk} is not a power of two`);
    this.chunk = chunk;
    this.shift = Math.log2(chunk);
    this.mask = chunk - 1;
    this.chunks = [new Int32Array(2 * chunk)];
    this.chunks[0]![0] = -1;
  }

  /** A new state, reached from `parent` by `op`; its id. States are added in breadth-first order. */
  add(parent: number, op: number): number {
    const id = this.count;
    const d = this.depth(parent) + 1;
    if (d > this.depthReached) {
      if (d !== this.depthReached + 1) throw new Error(`internal error: state ${id} at depth ${d} after depth ${this.depthReached}`);
      this.starts.push(id);
      this.depthReached = d;
    } else if (d < this.depthReached) {
      throw new Error(`internal error: state ${id} at depth ${d} after depth ${this.depthReached}: the tree takes states in breadth-first order`);
    }
    const k = id >>> this.shift;
    let c = this.chunks[k];
    if (c === undefined) {
      // A new chunk; when spilling, the full one before it goes to the file and its array is reused.
      const prev = this.chunks[k - 1]!;
      if (this.fd >= 0) {
        this.writeChunk(prev);
        this.chunks[k - 1] = null;
        c = prev;
      } else {
        c = new Int32Array(2 * this.chunk);
      }
      this.chunks[k] = c;
    }
    const j = (id & this.mask) << 1;
    c![j] = parent;
    c![j + 1] = op;
    this.count = id + 1;
    return id;
  }

  depth(id: number): number {
    const s = this.starts;
    let d = this.lastDepth;
    if (id >= s[d]! && (d + 1 === s.length || id < s[d + 1]!)) return d;
    d = s.length - 1;
    while (s[d]! > id) d--;
    this.lastDepth = d;
    return d;
  }

  parentOf(id: number): number {
    const c = this.chunks[id >>> this.shift];
    return c ? c[(id & this.mask) << 1]! : this.spilled(id, 0);
  }

  opOf(id: number): number {
    const c = this.chunks[id >>> this.shift];
    return c ? c[((id & this.mask) << 1) + 1]! : this.spilled(id, 1);
  }

  /** The parents and operations of states from..to-1 (copies). */
  slice(from: number, to: number): { parents: Int32Array; ops: Int32Array } {
    const parents = new Int32Array(Math.max(0, to - from));
    const ops = new Int32Array(parents.length);
    for (let i = from; i < to; i++) {
      parents[i - from] = this.parentOf(i);
      ops[i - from] = this.opOf(i);
    }
    return { parents, ops };
  }

  /** Bytes the tree occupies in memory. */
  get bytes(): number {
    let n = 0;
    for (const c of this.chunks) if (c) n += c.byteLength;
    for (const w of this.windows) if (w) n += w.buf.byteLength;
    return n;
  }

  /** The operations from the start to state `id`, then `last` if given. */
  path(id: number, last?: number): number[] {
    const ops: number[] = last === undefined ? [] : [last];
    this.walking = true;
    try {
      for (let i = id; i > 0; i = this.parentOf(i)) ops.push(this.opOf(i));
    } finally {
      this.walking = false;
    }
    return ops.reverse();
  }

  /** True once the tree spills to a file. */
  get spilling(): boolean {
    return this.fd >= 0;
  }

  /** States whose records are in the spill file. */
  get spilledStates(): number {
    return this.flushed;
  }

  /**
   * Spill from now on: create `file` (it must not exist), write every full chunk to it and free
   * them. Each chunk is written once it is full.
   */
  spill(file: string): void {
    if (this.fd >= 0 || this.spillPath !== null) return;
    try {
      this.fd = openSync(file, 'wx+', 0o600);
    } catch (e) {
      throw new TreeSpillError(`cannot create the spill file ${file}: ${(e as Error).message}`);
    }
    this.spillPath = file;
    this.spilledAt = this.count;
    const full = this.count >>> this.shift; // chunks 0..full-1 are full; chunk `full` is being filled
    let spare: Int32Array | null = null;
    for (let k = 0; k < full; k++) {
      this.writeChunk((spare = this.chunks[k]!));
      this.chunks[k] = null;
    }
    // The next state's chunk: the one being filled, or (the tree ended a chunk) the last one written, reused.
    this.chunks[full] ??= spare!;
  }

  /** Close and remove the spill file (the tree can no longer read spilled states). */
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    if (this.spillPath !== null) {
      try {
        unlinkSync(this.spillPath);
      } catch {
        // already removed
      }
    }
    this.windows = [];
  }

  /** Append a full chunk to the file. */
  private writeChunk(c: Int32Array): void {
    const bytes = new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
    try {
      for (let done = 0; done < bytes.length;) done += writeSync(this.fd, bytes, done, bytes.length - done, this.flushed * 8 + done);
    } catch (e) {
      throw new TreeSpillError(`cannot write the spill file ${this.spillPath}: ${(e as Error).message}`);
    }
    this.flushed += this.chunk;
  }

  /** Field f (0 parent, 1 op) of a spilled state: from its depth's window, refilled forward when id is past it. */
  private spilled(id: number, f: number): number {
    if (this.fd < 0) throw new Error(`internal error: state ${id} of a closed tree`);
    const d = this.depth(id);
    let w = this.windows[d];
    if (w === undefined) w = this.windows[d] = { start: 0, len: 0, buf: new Int32Array(2 * Math.min(WINDOW, this.chunk)) };
    if (id >= w.start && id < w.start + w.len) return w.buf[((id - w.start) << 1) + f]!;
    if (this.walking) {
      // A path walk: one record, the window kept for the depth's sequential reader.
      this.read(this.one, id, 1);
      return this.one[f]!;
    }
    w.start = id;
    w.len = Math.min(w.buf.length >>> 1, this.flushed - id);
    this.read(w.buf, id, w.len);
    return w.buf[f]!;
  }

  /** Records from..from+n-1 of the file into `to`. */
  private read(to: Int32Array, from: number, n: number): void {
    const bytes = new Uint8Array(to.buffer, to.byteOffset, n * 8);
    for (let done = 0; done < bytes.length;) {
      const got = readSync(this.fd, bytes, done, bytes.length - done, from * 8 + done);
      if (got === 0) throw new Error(`internal error: the spilled search tree ${this.spillPath} ends before state ${from + n - 1}`);
      done += got;
    }
  }
}

/** How often (ms) a search looks at the clock's bounds: --time, --max-memory, a stop request. */
export const CHECK_MS = 25;
/** Most calls of SearchBudget.dueNow() between two clock reads. */
const STRIDE_MAX = 64;
/** How often check() reads the process's resident memory (--max-memory, the tree's spill). */
const RSS_MS = 100;

/**
 * A request to stop a search from outside (a signal seen by another thread): an Int32Array over
 * shared memory whose word 0 is set to non-zero. The search reads it on its clock checks.
 */
export type StopFlag = Int32Array;

/**
 * The bounds of one search (--max-states, --time, --max-memory, a stop request), progress
 * reports, statistics. The bounds are checked by the clock, not by a count of expansions: a
 * search calls due() often (cheap: one clock read; dueNow() before each transition, cheaper) and
 * check() when it says so, at most every CHECK_MS, so a search stops within about CHECK_MS plus
 * one transition of its bound (RSS_MS for --max-memory).
 */
export class SearchBudget {
  readonly t0 = performance.now();
  private lastProgress = this.t0;
  private nextCheck = this.t0 + CHECK_MS;
  private nextRss = this.t0;
  stoppedBy: SearchStats['stoppedBy'] = null;
  /** Events reached ("sometimes" properties): name -> shortest depth. */
  readonly reached = new Map<string, number>();
  transitions = 0;
  depthComplete = 0;

  constructor(private readonly bounds: SearchBounds, private readonly progress?: Progress, private readonly stopFlag?: StopFlag) {}

  /**
   * Called once, when the process's resident memory passes SPILL_FRACTION of --max-memory (the
   * search on one thread spills its tree then); null: nothing is done before the bound.
   */
  onPressure: ((rssMB: number) => void) | null = null;

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

  /** Calls of dueNow() left before it reads the clock again, and the calls it lets pass between reads. */
  private skip = 1;
  private stride = 1;
  private lastRead = this.t0;

  /**
   * due() for a caller that asks before every transition, without a clock read each time (one
   * costs about as much as the rest of the bookkeeping of a transition): the clock is read every
   * `stride` calls. The stride doubles (up to STRIDE_MAX) while reads come less than CHECK_MS / 32
   * apart and drops to 1 when one comes more than CHECK_MS / 8 after the last (a transition on a
   * large state can be slow), so check() still comes within about CHECK_MS of the last.
   */
  dueNow(): boolean {
    if (--this.skip > 0) return false;
    const now = performance.now();
    const gap = now - this.lastRead;
    this.lastRead = now;
    if (gap > CHECK_MS / 8) this.stride = 1;
    else if (gap < CHECK_MS / 32 && this.stride < STRIDE_MAX) this.stride <<= 1;
    this.skip = this.stride;
    return now >= this.nextCheck;
  }

  /** --time, --max-memory (the process's resident memory), a stop request; a progress report. True: stop. */
  check(count: number, id: number, depth: number): boolean {
    const now = performance.now();
    this.nextCheck = now + CHECK_MS;
    if (this.stopFlag && Atomics.load(this.stopFlag, 0) !== 0) this.stoppedBy = 'interrupted';
    else if (now - this.t0 > this.bounds.timeSec * 1000) this.stoppedBy = 'time';
    else if (now >= this.nextRss) {
      // Resident memory every RSS_MS (a read costs a system call; memory does not grow fast enough to pass the bound unseen).
      this.nextRss = now + RSS_MS;
      const rss = process.memoryUsage.rss() / 2 ** 20;
      if (rss > this.bounds.maxMemoryMB) {
        this.stoppedBy = 'memory';
      } else if (this.onPressure !== null && rss > SPILL_FRACTION * this.bounds.maxMemoryMB) {
        const f = this.onPressure;
        this.onPressure = null;
        f(Math.round(rss));
      }
    }
    if (this.progress && now - this.lastProgress > 250) {
      this.lastProgress = now;
      this.progress({ states: count, depth, frontier: count - id, statesPerSec: count / ((now - this.t0) / 1000) });
    }
    return this.stoppedBy !== null;
  }

  /** A progress note (a line of its own), with the counts of now. */
  note(text: string, count: number, id: number, depth: number): void {
    const s = (performance.now() - this.t0) / 1000;
    this.progress?.({ states: count, depth, frontier: count - id, statesPerSec: count / Math.max(s, 1e-3), note: text });
  }

  /** The statistics of the search (`engine` is always `full`: the explorer has one engine, the field stays for --json). */
  stats(tree: SearchTree, stopped: boolean, store: { visited: SearchStats['visited']; bytes: number; workers: number }): SearchStats {
    const elapsedMs = performance.now() - this.t0;
    return {
      states: tree.count, transitions: this.transitions, depthReached: tree.depthReached,
      // Not stopped: it went to the depth bound, or ran out of new states before it (every sequence was searched either way).
      depthComplete: stopped ? this.depthComplete : this.bounds.depth,
      elapsedMs, statesPerSec: Math.round(tree.count / Math.max(elapsedMs / 1000, 1e-3)), stoppedBy: this.stoppedBy,
      reached: Object.fromEntries([...this.reached].sort((a, b) => a[1] - b[1])),
      engine: 'full',
      visited: store.visited,
      collisionProbability: store.visited === 'exact' ? 0 : collisionProbability(tree.count),
      bytesPerState: Math.round(store.bytes / tree.count),
      workers: store.workers,
      spill: tree.spillPath === null ? null : { states: tree.spilledStates, bytes: tree.spilledStates * 8, atStates: tree.spilledAt, file: tree.spillPath },
    };
  }
}
