// A worker of the parallel search (src/explore/parallel.ts): expands the chunks of each depth
// it is sent and answers with the states it found new (not in the visited set of the earlier
// depths, not found before in this depth by this worker) and the violating transitions.

import { workerData } from 'node:worker_threads';
import type { Runner } from '../engine/run.js';
import { canonicalEncode, fingerprint, type Words } from './canonical.js';
import { startState } from './explore.js';
import { C_DONE, C_NEXT, C_STOP, CHUNK, type LevelAnswer, type LevelTask, type WorkerSetup } from './parallel.js';
import { Expander, kindsOf, StateCache, type ExpandTarget, type StateSet } from './search.js';
import { SearchTree } from './tree.js';
import { FingerprintReader, FingerprintSet, VisitedSet } from './visited.js';

const setup = workerData as WorkerSetup;
const control = new Int32Array(setup.control);
const exact = setup.input.bounds.exact ?? false;
const tree = new SearchTree();

/** New in this depth: not visited before it (fingerprints only: with --exact the caller decides), not found by this worker in it. */
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

/** The expander, made at the first depth (an error there is answered like any other). */
function expander(): Expander {
  if (ex) return ex;
  const root = startState(setup.input, setup.profile).runner;
  return (ex = new Expander(root, setup.input.shape, setup.input.bounds, new StateCache(root, tree), filter));
}

function level(m: LevelTask): LevelAnswer {
  const ex = expander();
  for (let i = 0; i < m.parents.length; i++) tree.add(m.parents[i]!, m.ops[i]!);
  filter.next(m);
  const answer: LevelAnswer = { chunks: [], violations: [], reached: [], transitions: 0 };
  const t0 = ex.transitions;
  let c = 0;
  let parents: number[] = [];
  let ops: number[] = [];
  let found: number[] = [];
  const target: ExpandTarget = {
    fresh: (id, op) => {
      parents.push(id);
      ops.push(op);
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
      answer.violations.push({ c, id, op, kinds: kindsOf(fresh) });
      return false;
    },
    due: () => Atomics.load(control, C_STOP) !== 0,
  };
  for (let stop = false; !stop;) {
    c = Atomics.add(control, C_NEXT, 1);
    const a = m.from + c * CHUNK;
    if (a >= m.to) break;
    for (let id = a; id < Math.min(m.to, a + CHUNK) && !stop; id++) stop = ex.expand(id, m.depth, target);
    const words = Int32Array.from(found);
    answer.chunks.push({ c, parents: Int32Array.from(parents), ops: Int32Array.from(ops), fps: exact ? null : words, keys: exact ? words : null });
    parents = [];
    ops = [];
    found = [];
  }
  answer.transitions = ex.transitions - t0;
  answer.reached = [...ex.reached];
  return answer;
}

setup.port.on('message', (m: LevelTask) => {
  let answer: LevelAnswer;
  try {
    answer = level(m);
  } catch (e) {
    answer = { chunks: [], violations: [], reached: [], transitions: 0, error: e instanceof Error ? e.stack ?? e.message : String(e) };
  }
  setup.port.postMessage(answer);
  Atomics.add(control, C_DONE, 1);
  Atomics.notify(control, C_DONE);
});
