// A worker of the parallel search (src/explore/parallel.ts): expands the chunks of each depth
// it is sent and answers each chunk as soon as it is done: the states it found new (not in the
// visited set as read now, not found before in this depth by this worker), the violating
// transitions and the events reached, each placed among the chunk's transitions.

import { workerData } from 'node:worker_threads';
import type { Runner } from '../engine/run.js';
import { canonicalEncode, fingerprint, type Words } from './canonical.js';
import { startState } from './explore.js';
import { C_NEXT, C_POSTED, C_STOP, CHUNK, type ChunkAnswer, type LevelEnd, type LevelTask, type WorkerSetup } from './parallel.js';
import { Expander, kindsOf, StateCache, type ExpandTarget, type StateSet } from './search.js';
import { SearchTree } from './tree.js';
import { FingerprintReader, FingerprintSet, VisitedSet } from './visited.js';

const setup = workerData as WorkerSetup;
const control = new Int32Array(setup.control);
const exact = setup.input.bounds.exact ?? false;
const tree = new SearchTree();

/** New in this depth: not visited before (fingerprints only: with --exact the caller decides), not found by this worker in it. */
class DepthFilter implements StateSet {
  readonly fp = new Int32Array(2);
  words: Words | null = null;
  before: FingerprintReader | null = null;
  private fps = new FingerprintSet();
  private keys = new VisitedSet();
  /** Where lookup() found the last state would go. */
  private slot = -1;

  next(task: LevelTask): void {
    this.before = task.fingerprints ? new FingerprintReader(task.fingerprints) : null;
    this.fps = new FingerprintSet();
    if (exact) this.keys = new VisitedSet();
  }

  lookup(r: Runner): boolean {
    const w = (this.words = canonicalEncode(r));
    fingerprint(w.a, this.fp, w.n);
    if (exact) this.slot = this.keys.find(w.a, w.n, this.fp[0]!);
    else this.slot = this.before!.has(this.fp[0]!, this.fp[1]!) ? -1 : this.fps.find(this.fp[0]!, this.fp[1]!);
    return this.slot >= 0;
  }

  add(): void {
    const w = this.words!;
    if (exact) this.keys.insert(this.slot, w.a, w.n, this.fp[0]!);
    else this.fps.insert(this.slot, this.fp[0]!, this.fp[1]!);
  }
}

const filter = new DepthFilter();
let ex: Expander | null = null;
/** The events reached in the chunk being expanded, with the transitions of the chunk up to each. */
let events: ChunkAnswer['reached'] = [];
let chunkStart = 0;

/** The expander, made at the first depth (an error there is answered like any other). */
function expander(): Expander {
  if (ex) return ex;
  const root = startState(setup.input, setup.profile).runner;
  const e = new Expander(root, setup.input.shape, setup.input.bounds, new StateCache(root, tree), filter);
  // An event is set once, when first reached: note where.
  const set = e.reached.set.bind(e.reached);
  e.reached.set = (event, depth) => {
    events.push({ event, depth, at: e.transitions - chunkStart });
    return set(event, depth);
  };
  return (ex = e);
}

function post(m: ChunkAnswer | LevelEnd, transfer: ArrayBuffer[] = []): void {
  setup.port.postMessage(m, transfer);
  Atomics.add(control, C_POSTED, 1);
  Atomics.notify(control, C_POSTED);
}

function level(m: LevelTask): void {
  const ex = expander();
  for (let i = 0; i < m.parents.length; i++) tree.add(m.parents[i]!, m.ops[i]!);
  filter.next(m);
  let parents: number[] = [];
  let ops: number[] = [];
  let at: number[] = [];
  let found: number[] = [];
  let violations: ChunkAnswer['violations'] = [];
  const target: ExpandTarget = {
    fresh: (id, op) => {
      parents.push(id);
      ops.push(op);
      at.push(ex.transitions - chunkStart);
      if (exact) {
        const w = filter.words!;
        found.push(w.n);
        for (let i = 0; i < w.n; i++) found.push(w.a[i]!);
      } else {
        found.push(filter.fp[0]!, filter.fp[1]!);
      }
      return false;
    },
    violation: (id, op, _child, fresh) => {
      violations.push({ id, op, kinds: kindsOf(fresh), fresh: parents.length, at: ex.transitions - chunkStart });
      return false;
    },
    due: () => Atomics.load(control, C_STOP) !== 0,
  };
  for (let stop = false; !stop;) {
    const c = Atomics.add(control, C_NEXT, 1);
    const a = m.from + c * CHUNK;
    if (a >= m.to) break;
    chunkStart = ex.transitions;
    for (let id = a; id < Math.min(m.to, a + CHUNK) && !stop; id++) stop = ex.expand(id, m.depth, target);
    const words = Int32Array.from(found);
    const answer: ChunkAnswer = {
      kind: 'chunk', c, parents: Int32Array.from(parents), ops: Int32Array.from(ops), fps: exact ? null : words, keys: exact ? words : null,
      at: Int32Array.from(at), violations, reached: events, transitions: ex.transitions - chunkStart,
    };
    post(answer, [answer.parents.buffer, answer.ops.buffer, words.buffer, answer.at.buffer] as ArrayBuffer[]);
    parents = [];
    ops = [];
    at = [];
    found = [];
    violations = [];
    events = [];
  }
}

setup.port.on('message', (m: LevelTask) => {
  try {
    level(m);
    post({ kind: 'end' });
  } catch (e) {
    post({ kind: 'end', error: e instanceof Error ? e.stack ?? e.message : String(e) });
  }
});
