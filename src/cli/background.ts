// SIGINT and SIGTERM on long commands (explore, compare, run of several files). A JavaScript
// signal handler runs only when the event loop turns, never in the middle of a synchronous
// search or run, so the work runs in a worker thread (worker.ts) and the main thread, idle,
// sees the signal at once:
// - scenarios (run, compare): each result is posted as it is ready; on a signal the worker is
//   ended where it is and the command reports the scenarios that finished;
// - a search (explore): the main thread sets a flag in shared memory, which the search reads on
//   its clock checks (every 25 ms, tree.ts) and stops as `interrupted`, with everything it found
//   so far; if it has not answered within GRACE_MS the worker is ended.
// A second signal ends the worker at once.

import { Worker } from 'node:worker_threads';
import type { Profile } from '../core/profile.js';
import type { RunResult } from '../engine/result.js';
import { type RunOptions, runScenario } from '../engine/run.js';
import type { ExploreInput, ExploreOutcome } from '../explore/explore.js';
import type { Progress } from '../explore/search.js';
import type { Scenario } from '../scenario/index.js';
import { isOutOfMemory } from './limits.js';
import type { WorkerTask } from './worker.js';

export type StopSignal = 'SIGINT' | 'SIGTERM';

/** Exit status of a command stopped by SIGINT or SIGTERM. */
export const EXIT_INTERRUPTED = 130;

/** How long a search may take to answer a stop request before its worker is ended. */
const GRACE_MS = 700;

interface Message {
  type: 'result' | 'outcome' | 'progress' | 'end';
  index?: number;
  result?: RunOutcome;
  outcome?: ExploreOutcome;
  progress?: Parameters<Progress>[0];
}

/**
 * Run `task` in a worker; `onMessage` sees each message. Resolves when the worker ends, with the
 * signal that stopped it (null: it ran to its end).
 */
function inWorker(task: WorkerTask, onMessage: (m: Message) => void, onSignal: (w: Worker, first: boolean) => void): Promise<StopSignal | null> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: task });
    let signal: StopSignal | null = null;
    const handler = (s: StopSignal): void => {
      const first = signal === null;
      signal ??= s;
      onSignal(w, first);
    };
    const onInt = (): void => handler('SIGINT');
    const onTerm = (): void => handler('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    let failed: Error | null = null;
    w.on('message', (m: Message) => onMessage(m));
    w.on('error', (e) => {
      failed = e instanceof Error ? e : new Error(String(e));
    });
    w.on('exit', () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      if (failed && signal === null) reject(failed);
      else resolve(signal);
    });
  });
}

/** A run, or the internal error (a bug in cowlab) it ended with, where the command goes on after one. */
export type RunOutcome = RunResult | { internalError: string };

/** One run; an internal error becomes its outcome (a host that refused memory still throws: that is the caller's). */
export function runOrError(it: { sc: Scenario; profile: Profile; opts: RunOptions }, run: typeof runScenario = runScenario): RunOutcome {
  try {
    return run(it.sc, it.profile, it.opts);
  } catch (e) {
    if (isOutOfMemory(e)) throw e;
    return { internalError: (e instanceof Error ? e.message : String(e)).split('\n')[0]! };
  }
}

/** A run in the worker threw: the error, and which item. */
export class ItemFailed extends Error {
  constructor(readonly index: number, readonly error: Error) {
    super(error.message);
  }
}

/**
 * Run scenarios in order; the results of those that finished, and the signal that stopped the
 * rest. A run that throws rejects with ItemFailed.
 */
export async function runScenariosInWorker(items: { sc: Scenario; profile: Profile; opts: RunOptions }[], keepGoing: false, onResult?: (index: number) => void): Promise<{ results: RunResult[]; signal: StopSignal | null }>;
export async function runScenariosInWorker(items: { sc: Scenario; profile: Profile; opts: RunOptions }[], keepGoing: true, onResult?: (index: number) => void): Promise<{ results: RunOutcome[]; signal: StopSignal | null }>;
/** With keepGoing, a run's internal error is its outcome and the others go on; `onResult` hears of each run done (progress). */
export async function runScenariosInWorker(items: { sc: Scenario; profile: Profile; opts: RunOptions }[], keepGoing: boolean, onResult?: (index: number) => void): Promise<{ results: RunOutcome[]; signal: StopSignal | null }> {
  const results: RunOutcome[] = [];
  let signal: StopSignal | null;
  try {
    signal = await inWorker({ kind: 'runs', items, keepGoing }, (m) => {
      if (m.type !== 'result') return;
      results[m.index!] = m.result!;
      onResult?.(m.index!);
    }, (w) => void w.terminate());
  } catch (e) {
    throw new ItemFailed(results.length, e as Error);
  }
  return { results, signal };
}

/** One search; its outcome (null when it had to be ended before it answered) and the signal, if any. */
export async function exploreInWorker(input: ExploreInput, progress?: Progress): Promise<{ outcome: ExploreOutcome | null; signal: StopSignal | null }> {
  const stop = new SharedArrayBuffer(4);
  let outcome: ExploreOutcome | null = null;
  let timer: NodeJS.Timeout | null = null;
  const signal = await inWorker({ kind: 'explore', input, stop, progress: progress !== undefined }, (m) => {
    if (m.type === 'progress') progress?.(m.progress!);
    else if (m.type === 'outcome') outcome = m.outcome!;
  }, (w, first) => {
    if (!first) {
      void w.terminate();
      return;
    }
    Atomics.store(new Int32Array(stop), 0, 1);
    timer = setTimeout(() => void w.terminate(), GRACE_MS);
  });
  if (timer) clearTimeout(timer);
  return { outcome, signal };
}
