// Expanding the chunks of a depth for the parallel search (src/explore/parallel.ts): the states a
// chunk found new (not in the visited set as read now, not found before in this depth by this
// expander), its violating transitions and the events it reached, each placed among the chunk's
// transitions, so that the coordinating thread can take the chunks in chunk order as one thread
// would have met them. A worker thread runs one (parallel-worker.ts), and so does the
// coordinating thread itself between taking the workers' answers: n workers are n threads.

import type { Runner } from '../engine/run.js';
import type { ExploreShape } from './ops.js';
import { Expander, kindsOf, StateCache, Visited, type ExpandTarget, type SearchBounds } from './search.js';
import type { SearchTree } from './tree.js';
import { FingerprintReader } from './visited.js';

/** States an expander takes at a time. */
export const CHUNK = 32;

/** Words of the shared control array. */
export const C_NEXT = 0; // the next chunk of the depth
export const C_POSTED = 1; // answers posted (chunks and depth ends): the coordinating thread waits on it
export const C_STOP = 2; // non-zero: stop the depth (a bound, a violation)

/**
 * A depth to expand: states from..to-1, the states added since the last depth, and the visited
 * fingerprints (their table: it moves when it grows).
 */
export interface LevelTask {
  from: number;
  to: number;
  depth: number;
  parents: Int32Array;
  ops: Int32Array;
  fingerprints: ArrayBufferLike | null;
}

/**
 * What an expander found in chunk c: its new states (parent, operation, fingerprint or encoding,
 * and the transitions of the chunk up to it), the violating transitions (with the new states and
 * transitions before each), the events it reached first there (in order, with their depth), and
 * the chunk's transitions.
 */
export interface ChunkAnswer {
  kind: 'chunk';
  c: number;
  parents: Int32Array;
  ops: Int32Array;
  fps: Int32Array | null;
  keys: Int32Array | null;
  at: Int32Array;
  violations: { id: number; op: number; kinds: string[]; fresh: number; at: number }[];
  reached: { event: string; depth: number; at: number }[];
  transitions: number;
}

/** One expander of chunks, on its own copy of the states (the tree it is given holds every depth up to the one expanded). */
export class ChunkExpander {
  private readonly exact: boolean;
  private readonly filter: Visited;
  private readonly ex: Expander;
  private readonly target: ExpandTarget;
  private task: LevelTask | null = null;
  private chunkStart = 0;
  private parents: number[] = [];
  private ops: number[] = [];
  private at: number[] = [];
  private found: number[] = [];
  private violations: ChunkAnswer['violations'] = [];
  private events: ChunkAnswer['reached'] = [];

  constructor(root: Runner, shape: ExploreShape, bounds: SearchBounds, tree: SearchTree, private readonly control: Int32Array) {
    const exact = (this.exact = bounds.exact ?? false);
    this.filter = new Visited(exact);
    const ex = (this.ex = new Expander(root, shape, bounds, new StateCache(root, tree), this.filter));
    // An event is set once, when first reached: note where.
    const set = ex.reached.set.bind(ex.reached);
    ex.reached.set = (event, depth) => {
      this.events.push({ event, depth, at: ex.transitions - this.chunkStart });
      return set(event, depth);
    };
    this.target = {
      fresh: (id, op) => {
        this.parents.push(id);
        this.ops.push(op);
        this.at.push(ex.transitions - this.chunkStart);
        if (exact) {
          const w = this.filter.words;
          this.found.push(w.n);
          for (let i = 0; i < w.n; i++) this.found.push(w.a[i]!);
        } else {
          this.found.push(this.filter.fp[0]!, this.filter.fp[1]!);
        }
        return false;
      },
      violation: (id, op, _child, fresh) => {
        this.violations.push({ id, op, kinds: kindsOf(fresh), fresh: this.parents.length, at: ex.transitions - this.chunkStart });
        return false;
      },
      due: () => Atomics.load(this.control, C_STOP) !== 0,
    };
  }

  /** The depth to expand next (its states are in the tree by now). */
  level(task: LevelTask): void {
    this.task = task;
    this.filter.startDepth(task.fingerprints ? new FingerprintReader(task.fingerprints) : null);
  }

  /** Take the next chunk of the depth and expand it; null when the depth has no chunk left. */
  nextChunk(): ChunkAnswer | null {
    const m = this.task!;
    if (Atomics.load(this.control, C_STOP) !== 0) return null;
    const c = Atomics.add(this.control, C_NEXT, 1);
    const a = m.from + c * CHUNK;
    if (a >= m.to) return null;
    this.chunkStart = this.ex.transitions;
    for (let id = a, stop = false; id < Math.min(m.to, a + CHUNK) && !stop; id++) stop = this.ex.expand(id, m.depth, this.target);
    const words = Int32Array.from(this.found);
    const exact = this.exact;
    const answer: ChunkAnswer = {
      kind: 'chunk', c, parents: Int32Array.from(this.parents), ops: Int32Array.from(this.ops), fps: exact ? null : words, keys: exact ? words : null,
      at: Int32Array.from(this.at), violations: this.violations, reached: this.events, transitions: this.ex.transitions - this.chunkStart,
    };
    this.parents = [];
    this.ops = [];
    this.at = [];
    this.found = [];
    this.violations = [];
    this.events = [];
    return answer;
  }
}
