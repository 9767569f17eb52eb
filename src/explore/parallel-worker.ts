// A worker thread of the parallel search (src/explore/parallel.ts): builds the start state, keeps
// its own copy of the search tree (the states of each depth are sent with it), and expands the
// chunks of each depth with a ChunkExpander (chunk.ts), answering each chunk as soon as it is done.

import { workerData } from 'node:worker_threads';
import { startState } from './explore.js';
import { ChunkExpander, C_POSTED, type ChunkAnswer, type LevelTask } from './chunk.js';
import type { LevelEnd, WorkerSetup } from './parallel.js';
import { SearchTree } from './tree.js';

const setup = workerData as WorkerSetup;
const control = new Int32Array(setup.control);
const tree = new SearchTree();
let ex: ChunkExpander | null = null;

/** The expander, made at the first depth (an error there is answered like any other). */
function expander(): ChunkExpander {
  return (ex ??= new ChunkExpander(startState(setup.input, setup.profile).runner, setup.input.shape, setup.input.bounds, tree, control));
}

function post(m: ChunkAnswer | LevelEnd, transfer: ArrayBuffer[] = []): void {
  setup.port.postMessage(m, transfer);
  Atomics.add(control, C_POSTED, 1);
  Atomics.notify(control, C_POSTED);
}

function level(m: LevelTask): void {
  const ex = expander();
  for (let i = 0; i < m.parents.length; i++) tree.add(m.parents[i]!, m.ops[i]!);
  ex.level(m);
  for (let a; (a = ex.nextChunk()) !== null;) {
    post(a, [a.parents.buffer, a.ops.buffer, (a.fps ?? a.keys)!.buffer, a.at.buffer] as ArrayBuffer[]);
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
