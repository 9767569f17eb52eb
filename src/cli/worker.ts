// The worker thread of a long command (see background.ts): runs scenarios or one search and
// posts each result as it is ready. No output of its own.

import { parentPort, workerData } from 'node:worker_threads';
import type { Profile } from '../core/profile.js';
import type { RunOptions } from '../engine/run.js';
import type { ExploreInput } from '../explore/explore.js';
import type { Scenario } from '../scenario/index.js';

export type WorkerTask =
  | { kind: 'runs'; items: { sc: Scenario; profile: Profile; opts: RunOptions }[]; keepGoing: boolean }
  | { kind: 'explore'; input: ExploreInput; stop: SharedArrayBuffer; progress: boolean };

const task = workerData as WorkerTask;
const port = parentPort!;
// Each task loads only what it needs: the worker starts on every such command.
if (task.kind === 'runs') {
  const { runScenario } = await import('../engine/run.js');
  const { runOrError } = await import('./background.js');
  task.items.forEach((it, i) => port.postMessage({ type: 'result', index: i, result: task.keepGoing ? runOrError(it) : runScenario(it.sc, it.profile, it.opts) }));
} else {
  const { explore } = await import('../explore/explore.js');
  const progress = task.progress ? (p: unknown) => port.postMessage({ type: 'progress', progress: p }) : undefined;
  port.postMessage({ type: 'outcome', outcome: explore(task.input, progress, new Int32Array(task.stop)) });
}
port.postMessage({ type: 'end' });
