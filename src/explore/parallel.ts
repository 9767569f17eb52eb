// The search on several threads (--workers N): breadth-first, one depth at a time. This thread
// and N - 1 worker threads expand the states of a depth, handed out in chunks of CHUNK from a
// shared counter (src/explore/chunk.ts). Each worker thread builds the start state itself and
// keeps its own copy of the search tree (parents and operations, sent at each depth), and answers
// each chunk as soon as it is expanded: the states it found new (not in the visited set as it was
// read, not found before in this depth by this worker) and the violating transitions, each with
// where in the chunk's transitions it came. This thread expands chunks too, on its own tree, and
// between two of them takes the chunks in chunk order (it waits for a missing one), adds
// their states to the visited set, numbers them and judges the violations in the order one
// thread would have met them: so the states, their numbers, the counterexamples and the counts
// (also when a violation or --max-states stops the search) are those of one thread, whichever
// worker ran first. The visited set is this thread's, in shared memory: the workers read it
// (a state it holds was numbered from an earlier chunk, so dropping it early changes nothing).
// With --exact the workers send the encodings of their new states instead of fingerprints.
//
// This thread waits with Atomics.wait and takes the workers' answers with receiveMessageOnPort:
// the search stays a synchronous function, like the one-thread search.

import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { Profile } from '../core/profile.js';
import type { Runner } from '../engine/run.js';
import type { ExploreInput } from './explore.js';
import { ChunkExpander, C_NEXT, C_POSTED, C_STOP, type ChunkAnswer, type LevelTask } from './chunk.js';
import { Visited, violationTarget, type Counterexample, type Progress, type SearchResult, type ViolationSink } from './search.js';
import { CHECK_MS, SearchBudget, SearchTree, type StopFlag } from './tree.js';

/** What a worker thread is started with. */
export interface WorkerSetup {
  input: ExploreInput;
  profile: Profile;
  control: SharedArrayBuffer;
  port: MessagePort;
}

/** A worker is done with the depth (it takes no more chunks of it), or failed. */
export interface LevelEnd {
  kind: 'end';
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
  // This thread is the first worker: the others are threads.
  const local = new ChunkExpander(root, input.shape, bounds, tree, control);
  for (let i = 1; i < workers; i++) {
    const { port1, port2 } = new MessageChannel();
    const setup: WorkerSetup = { input, profile, control: control.buffer as SharedArrayBuffer, port: port2 };
    threads.push(new Worker(new URL('./parallel-worker.js', import.meta.url), { workerData: setup, transferList: [port2] }));
    ports.push(port1);
  }
  const reached = new Map<string, number>();
  let transitions = 0;
  let stop = false;
  /** One chunk's answer, in chunk order: its violations judged and its new states added where one thread would have. True: stop. */
  const take = (ch: ChunkAnswer): boolean => {
    // The events reached up to the chunk's `upTo`-th transition, and those transitions counted.
    let r = 0;
    const upTo = (t: number): void => {
      for (; r < ch.reached.length && ch.reached[r]!.at <= t; r++) if (!reached.has(ch.reached[r]!.event)) reached.set(ch.reached[r]!.event, ch.reached[r]!.depth);
      transitions += t;
    };
    let v = 0;
    let k = 0;
    for (let i = 0; ; i++) {
      for (; v < ch.violations.length && ch.violations[v]!.fresh === i; v++) {
        const x = ch.violations[v]!;
        if (onViolation(x.id, x.op, x.kinds)) {
          upTo(x.at);
          return true;
        }
      }
      if (i === ch.parents.length) break;
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
        upTo(ch.at[i]!);
        return true;
      }
    }
    upTo(ch.transitions);
    return false;
  };
  let sent = 1; // the start state is in every tree
  let from = 0;
  let to = 1;
  try {
    for (let d = 0; d < bounds.depth && from < to && !stop; d++) {
      budget.expanding(d);
      Atomics.store(control, C_NEXT, 0);
      const task: LevelTask = { from, to, depth: d, ...tree.slice(sent, tree.count), fingerprints: visited.fingerprints?.buffer ?? null };
      sent = tree.count;
      for (const p of ports) p.postMessage(task);
      local.level(task);
      let expanding = true;
      // The chunks as they come, taken in chunk order; a worker's end comes after its last chunk.
      const waiting = new Map<number, ChunkAnswer>();
      let next = 0;
      let ended = 0;
      for (;;) {
        const posted = Atomics.load(control, C_POSTED);
        for (const p of ports) {
          for (let m; (m = receiveMessageOnPort(p)) !== undefined;) {
            const a = m.message as ChunkAnswer | LevelEnd;
            if (a.kind === 'end') {
              if (a.error !== undefined) throw new Error(a.error);
              ended++;
            } else {
              waiting.set(a.c, a);
            }
          }
        }
        for (let ch; !stop && (ch = waiting.get(next)) !== undefined; next++) {
          waiting.delete(next);
          if (take(ch)) {
            stop = true;
            Atomics.store(control, C_STOP, 1); // the workers need not finish the depth
          }
        }
        if (Atomics.load(control, C_STOP) === 0 && budget.due() && budget.check(tree.count, from, d)) Atomics.store(control, C_STOP, 1);
        // A worker that died (out of memory, killed) never answers: its threadId is -1 from then on.
        if (threads.some((w) => w.threadId === -1)) throw new Error('internal error: a worker of the search ended before it answered');
        if (expanding) {
          // This thread's own chunk, between takes of the others'.
          const a = local.nextChunk();
          if (a !== null) waiting.set(a.c, a);
          else expanding = false;
          continue;
        }
        if (ended === workers - 1) break;
        Atomics.wait(control, C_POSTED, posted, CHECK_MS);
      }
      // Stopped by a bound: the chunks expanded in part were taken, in order (every chunk a
      // worker took is answered, so there is no gap).
      if (Atomics.load(control, C_STOP) !== 0) stop = true;
      from = to;
      to = tree.count;
    }
  } finally {
    for (const w of threads) void w.terminate();
  }
  budget.transitions = transitions;
  for (const [e, at] of reached) budget.reach(e, at);
  return { counterexamples, stats: budget.stats(tree, stop, { visited: exact ? 'exact' : 'fingerprints', bytes: visited.bytes + tree.bytes, workers }) };
}
