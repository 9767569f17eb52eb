// The explorer's rows of `npm run bench` (issue 14), measured in one run; also runnable alone:
//   node dist/bench/explorer.js [--quick]
// - states per second on one core with every operation enabled, on v6 with 2 processes, 2
//   pages, 2 threads, 2 handles;
// - the same search on 2 workers over 1, each run as `cowlab explore` runs it, in a process of
//   its own (both start with their code not compiled yet; see workersFigure);
// - bytes per visited state (visited set and search tree, over the states);
// - the time to complete `explore --kernel v6 --procs 3 --pages 3 --depth 8 --workers 2` (the
//   machine's two cores), bounded by --time at twice the target: a search that does not
//   complete reports how far it got and the time extrapolated from depth 5; `--quick` gives
//   the extrapolation alone.

import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultMaxMemoryMB } from '../src/cli/limits.js';
import { explore, type ExploreInput } from '../src/explore/explore.js';
import { DEFAULT_OPS, OP_NAMES, type OpName } from '../src/explore/ops.js';
import type { SearchStats } from '../src/explore/search.js';
import { builtinProfile } from '../src/profiles/builtin.js';

/** A row of `npm run bench`. */
export interface Figure {
  name: string;
  unit: string;
  model: number | null;
  kernel: number | null;
  /** model / kernel, or the figure / its target for targets without a kernel side. */
  ratio: number | null;
  target: string | null;
  met: boolean | null;
  note?: string;
}

/** A search of the bench, on v6 with 2 threads and 2 handles; the bounds not given take these defaults. */
interface BenchSearch { procs: number; pages: number; depth: number; ops: readonly OpName[]; workers?: number; maxStates?: number; timeSec?: number; maxMemoryMB?: number }
const THREADS = 2;
const HANDLES = 2;
const bounds = (o: BenchSearch) => ({ maxStates: o.maxStates ?? 50_000_000, maxMemoryMB: o.maxMemoryMB ?? 8192, timeSec: o.timeSec ?? 1200, workers: o.workers ?? 1 });

/** The search in this process. */
function search(o: BenchSearch): SearchStats {
  const b = bounds(o);
  const input: ExploreInput = {
    profile: builtinProfile('v6')!, baseName: 'v6', sets: [],
    shape: { procs: o.procs, threads: THREADS, handles: HANDLES, ops: o.ops },
    pages: o.pages,
    bounds: { depth: o.depth, maxStates: b.maxStates, maxMemoryMB: b.maxMemoryMB, timeSec: b.timeSec, all: false, kinds: null },
    from: null, workers: b.workers, causes: false,
  };
  return explore(input).result.stats;
}

const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

export function explorerFigures(quick: boolean, log: (s: string) => void = () => {}): Figure[] {
  const out: Figure[] = [];
  const shape = { procs: 2, pages: 2, depth: quick ? 4 : 5, ops: OP_NAMES };
  // A search one depth shorter first, so that both timed searches find this thread's code
  // compiled, as in any search longer than a few seconds (a worker thread still compiles its own).
  log('  explorer: warming up (every operation, one depth less) ...');
  search({ ...shape, depth: shape.depth - 1 });
  log('  explorer: every operation, one worker ...');
  const one = search(shape);
  out.push({
    name: `explorer states per second, one core, every operation (v6, 2 processes, 2 pages, depth ${shape.depth})`, unit: 'states/s',
    model: one.statesPerSec, kernel: null, ratio: one.statesPerSec / 200000, target: '>= 200000 states/s', met: one.statesPerSec >= 200000,
    note: `${OP_NAMES.length} operations: ${one.states} states, ${one.transitions} transitions, depth ${one.depthComplete} complete, in ${s(one.elapsedMs)}`,
  });
  out.push(workersFigure(shape, one, log));
  out.push({
    name: 'explorer bytes per visited state (visited fingerprints and search tree)', unit: 'bytes',
    model: one.bytesPerState, kernel: null, ratio: one.bytesPerState / 64, target: '<= 64 bytes', met: one.bytesPerState <= 64,
    note: `the search above; ${one.visited}: collision probability ${one.collisionProbability.toExponential(1)}`,
  });
  out.push(quick ? depth8Extrapolated(log) : depth8Measured(log));
  return out;
}

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'cowlab.js');

/** The same search as `cowlab explore ... --json` runs it, in a process of its own: its figures, as the command reports them. */
function commandSearch(o: BenchSearch): SearchStats {
  const b = bounds(o);
  const args = [cli, 'explore', '--kernel', 'v6', '--procs', String(o.procs), '--pages', String(o.pages), '--threads', String(THREADS), '--handles', String(HANDLES),
    '--ops', o.ops.join(','), '--depth', String(o.depth), '--workers', String(b.workers),
    '--max-states', String(b.maxStates), '--max-memory', String(b.maxMemoryMB), '--time', String(b.timeSec), '--json'];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  // Exit 1: the search found a violation (it stops there, with either number of workers).
  if (r.status !== 0 && r.status !== 1) throw new Error(`cowlab explore --workers ${b.workers} exited ${r.status}: ${r.stderr.slice(0, 400)}`);
  return (JSON.parse(r.stdout) as { stats: SearchStats }).stats;
}

/**
 * 2 workers over 1, each search run as `cowlab explore` runs it, in a new process. In one
 * process the comparison is unequal: the one-worker search runs on this thread, compiled by the
 * searches before it, while the second worker of the two-worker search is a new thread that
 * compiles the search's code itself (2 to 4 seconds of processor time on a search of 15). In
 * new processes both start cold, as a user's do. The in-process figure is given in the note.
 */
function workersFigure(shape: BenchSearch, warmOne: SearchStats, log: (s: string) => void): Figure {
  log('  explorer: every operation, two workers, in this process ...');
  const warmTwo = search({ ...shape, workers: 2 });
  log('  explorer: every operation, one worker and two, each as `cowlab explore` in a process of its own ...');
  const one = commandSearch({ ...shape, workers: 1 });
  const two = commandSearch({ ...shape, workers: 2 });
  if (one.states !== two.states) throw new Error(`explorer bench: one worker searched ${one.states} states, two ${two.states}`);
  const speedup = two.statesPerSec / one.statesPerSec;
  const inProcess = warmTwo.statesPerSec / warmOne.statesPerSec;
  return {
    name: 'explorer, 2 workers over 1 worker (the same search, each as `cowlab explore` runs it)', unit: 'x',
    model: Number(speedup.toFixed(2)), kernel: null, ratio: Number((speedup / 1.6).toFixed(2)), target: '>= 1.6x', met: speedup >= 1.6,
    note: `new processes: 1 worker ${one.states} states in ${s(one.elapsedMs)} (${one.statesPerSec} states/s), 2 workers ${s(two.elapsedMs)} (${two.statesPerSec} states/s); `
      + `in this process, after a warm-up of its thread: 1 worker ${warmOne.statesPerSec} states/s, 2 workers ${warmTwo.statesPerSec} states/s (${inProcess.toFixed(2)}x, the second worker's thread new)`,
  };
}

/** `explore --kernel v6 --procs 3 --pages 3 --depth 8` as the command runs it (its defaults: one worker, no count of states), timed. */
function depth8Measured(log: (s: string) => void): Figure {
  log(`  explorer: explore --kernel v6 --procs 3 --pages 3 --depth 8 --workers 2, to the end or --time ${DEPTH8_BOUND} s ...`);
  const st = search({ procs: 3, pages: 3, depth: 8, ops: DEFAULT_OPS, workers: 2, maxStates: Number.MAX_SAFE_INTEGER, timeSec: DEPTH8_BOUND, maxMemoryMB: defaultMaxMemoryMB() });
  const secs = st.elapsedMs / 1000;
  const done = st.depthComplete === 8 && st.stoppedBy === null;
  if (done) {
    return {
      name: DEPTH8_NAME, unit: 's', model: Math.round(secs), kernel: null, ratio: Number((secs / 600).toFixed(2)), target: '<= 600 s', met: secs <= 600,
      note: `measured: every sequence of up to 8 operations, ${st.states} states in ${s(st.elapsedMs)} (${st.statesPerSec} states/s), ${st.bytesPerState} bytes a state`,
    };
  }
  // Not complete within the bound: the figure is the extrapolation, the note says how far the real search got.
  const est = depth8Extrapolated(log, st.statesPerSec);
  return {
    ...est, name: DEPTH8_NAME,
    note: `did not complete: stopped by the ${st.stoppedBy ?? 'depth'} bound after ${st.states} states, depth ${st.depthComplete} complete, in ${s(st.elapsedMs)} (${st.statesPerSec} states/s); the figure is extrapolated: ${est.note}`,
  };
}

/** The depth-8 search's bound in the full bench (twice the target), and its row's name. */
const DEPTH8_BOUND = 1200;
const DEPTH8_NAME = 'explore --kernel v6 --procs 3 --pages 3 --depth 8 --workers 2, time to complete';

/**
 * The same, extrapolated from depth 5 (`--quick`): each depth has about g times the states of the
 * one before. The time is the states over `rate` (default: depth 5's states a second, one worker).
 */
function depth8Extrapolated(log: (s: string) => void, rate?: number): Figure {
  const dmax = 5;
  log(`  explorer: procs 3, pages 3, to depth ${dmax} (extrapolated to depth 8) ...`);
  const [pp, prev, last] = [dmax - 2, dmax - 1, dmax].map((depth) => search({ procs: 3, pages: 3, depth, ops: DEFAULT_OPS })) as [SearchStats, SearchStats, SearchStats];
  const g = (last.states - prev.states) / Math.max(1, prev.states - pp.states);
  let states8 = last.states;
  let level = last.states - prev.states;
  for (let d = dmax + 1; d <= 8; d++) states8 += (level *= g);
  const perSec = rate ?? last.statesPerSec;
  const secs = states8 / perSec;
  return {
    name: `${DEPTH8_NAME} (extrapolated from depth 5)`, unit: 's',
    model: Math.round(secs), kernel: null, ratio: Number((secs / 600).toFixed(1)), target: '<= 600 s', met: secs <= 600,
    note: `measured to depth ${dmax} (${last.states} states, ${last.statesPerSec} states/s), the last depth ${g.toFixed(1)}x the states of the one before: about ${(states8 / 1e6).toFixed(0)} M states to depth 8, at ${perSec} states/s (${rate === undefined ? 'one worker at depth 5' : 'the rate of the depth-8 search'}); the full bench runs it to the end or to ${DEPTH8_BOUND} s`,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  for (const f of explorerFigures(quick, (t) => process.stderr.write(t + '\n'))) {
    process.stdout.write(`${f.name}: ${f.model} ${f.unit} (target ${f.target}: ${f.met ? 'met' : 'NOT met'})\n  ${f.note}\n`);
  }
}
