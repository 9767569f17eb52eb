// The search on several threads (--workers N): breadth-first, one depth at a time. Each worker
// builds the start state itself and keeps its own copy of the search tree (parents and
// operations, sent at each depth); the states of a depth are handed out in chunks of CHUNK from
// a shared counter. The visited set is this thread's, in shared memory: during a depth the
// workers read it (states of earlier depths) and keep their own set of the states they found
// in this depth; at its end this thread adds the workers' new states in chunk order, numbers
// them and judges the violations in that order. So the result does not depend on which thread
// ran first: the same states, counterexamples and counts as one thread. With --exact the
// workers send the encodings of their new states instead of fingerprints.
//
// This thread waits with Atomics.wait and takes the workers' answers with receiveMessageOnPort:
// the search stays a synchronous function, like the one-thread search.

import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { Profile } from '../core/profile.js';
import type { Runner } from '../engine/run.js';
import type { ExploreInput } from './explore.js';
import { Visited, violationTarget, type Counterexample, type Progress, type SearchResult, type ViolationSink } from './search.js';
import { CHECK_MS, SearchBudget, SearchTree, type StopFlag } from './tree.js';

/** States a worker takes at a time. */
export const CHUNK = 32;

/** Words of the shared control array. */
export const C_NEXT = 0; // the next chunk of the depth
export const C_DONE = 1; // workers done with the depth
export const C_STOP = 2; // non-zero: stop the depth (a bound)

/** What a worker is started with. */
export interface WorkerSetup {
  input: ExploreInput;
  profile: Profile;
  control: SharedArrayBuffer;
  port: MessagePort;
}

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

/** What a worker found in one depth: per chunk, its new states (parent, operation, and fingerprint or encoding). */
export interface LevelAnswer {
  chunks: { c: number; parents: Int32Array; ops: Int32Array; fps: Int32Array | null; keys: Int32Array | null }[];
  violations: { c: number; id: number; op: number; kinds: string[] }[];
  reached: [string, number][];
  transitions: number;
  error?: string;
}

export function parallelSearch(
  input: ExploreInput, profile: Profile, root: Runner, workers: number, progress?: Progress, stopFlag?: StopFlag, sink?: ViolationSink,
): SearchResult {
  const { bounds } = input;
  const budget = new SearchBudget(bounds, progress, stopFlag);
  const tree = new SearchTree();
  const exact = bounds.exact ?? false;
  const visited = new Visited(exact, true);
  visited.addState(root);
  const control = new Int32Array(new SharedArrayBuffer(16));
  const counterexamples: Counterexample[] = [];
  const onViolation = violationTarget(root, tree, bounds, counterexamples, sink);
  const ports: MessagePort[] = [];
  const threads: Worker[] = [];
  for (let i = 0; i < workers; i++) {
    const { port1, port2 } = new MessageChannel();
    const setup: WorkerSetup = { input, profile, control: control.buffer as SharedArrayBuffer, port: port2 };
    threads.push(new Worker(new URL('./parallel-worker.js', import.meta.url), { workerData: setup, transferList: [port2] }));
    ports.push(port1);
  }
  const reached = new Map<string, number>();
  let transitions = 0;
  let stop = false;
  let sent = 1; // the start state is in every tree
  let from = 0;
  let to = 1;
  try {
    for (let d = 0; d < bounds.depth && from < to && !stop; d++) {
      budget.expanding(d);
      Atomics.store(control, C_NEXT, 0);
      Atomics.store(control, C_DONE, 0);
      const task: LevelTask = { from, to, depth: d, ...tree.slice(sent, tree.count), fingerprints: visited.fingerprints?.buffer ?? null };
      sent = tree.count;
      for (const p of ports) p.postMessage(task);
      for (let done; (done = Atomics.load(control, C_DONE)) < workers;) {
        Atomics.wait(control, C_DONE, done, CHECK_MS);
        if (Atomics.load(control, C_STOP) === 0 && budget.due() && budget.check(tree.count, from, d)) Atomics.store(control, C_STOP, 1);
        // A worker that died (out of memory, killed) never answers: its threadId is -1 from then on.
        if (Atomics.load(control, C_DONE) < workers && threads.some((w) => w.threadId === -1)) throw new Error('internal error: a worker of the search ended before it answered');
      }
      const answers = ports.map((p) => receiveMessageOnPort(p)!.message as LevelAnswer);
      const failed = answers.find((a) => a.error !== undefined);
      if (failed) throw new Error(failed.error);
      if (Atomics.load(control, C_STOP) !== 0) stop = true;
      for (const a of answers) {
        transitions += a.transitions;
        for (const [e, at] of a.reached) if (!reached.has(e) || reached.get(e)! > at) reached.set(e, at);
      }
      // Violations before new states: one thread judges a depth's violations before it numbers the next depth's states.
      const violations = answers.flatMap((a) => a.violations).sort((a, b) => a.c - b.c || a.id - b.id);
      for (const v of violations) {
        if (onViolation(v.id, v.op, v.kinds)) {
          stop = true;
          break;
        }
      }
      const chunks = answers.flatMap((a) => a.chunks).sort((a, b) => a.c - b.c);
      add: for (const ch of chunks) {
        let k = 0;
        for (let i = 0; i < ch.parents.length; i++) {
          let isNew: boolean;
          if (ch.keys) {
            const n = ch.keys[k]!;
            isNew = visited.addWords(ch.keys.subarray(k + 1, k + 1 + n), n);
            k += n + 1;
          } else {
            isNew = visited.addFingerprint(ch.fps![2 * i]!, ch.fps![2 * i + 1]!);
          }
          if (!isNew) continue;
          tree.add(ch.parents[i]!, ch.ops[i]!);
          if (budget.full(tree.count)) {
            stop = true;
            break add;
          }
        }
      }
      from = to;
      to = tree.count;
    }
  } finally {
    for (const w of threads) void w.terminate();
  }
  budget.transitions = transitions;
  for (const [e, at] of [...reached].sort((a, b) => a[1] - b[1])) budget.reach(e, at);
  return { counterexamples, stats: budget.stats(tree, stop, 'full', { visited: exact ? 'exact' : 'fingerprints', bytes: visited.bytes + tree.bytes, workers }) };
}
