// The run of a big process tree, a row of `npm run bench`; also runnable alone:
//   node dist/bench/forks.js [--quick]
// A parent writes a page and forks N children, each of which writes its copy (a server forking
// workers), run as `cowlab run` runs it (events kept, the accounting invariants checked after
// every step). The row is the time of 8N forks over that of N: 8 when a run is linear in its
// steps; each step's whole-state invariant check makes it grow with the square (about 64).
// A second row: the same with `run --trace`'s change log (every PTE and frame each step
// changed), whose capture follows the model (src/engine/changes-live.ts), not made again.

import { fileURLToPath } from 'node:url';
import type { Figure } from './explorer.js';
import { runScenario } from '../src/engine/run.js';
import { builtinProfile } from '../src/profiles/builtin.js';
import { parseScenario } from '../src/scenario/index.js';

/** The scenario of n forks, each child writing its copy of the parent's page. */
export function forkTree(n: number): string {
  const steps = ['P mmap buf 4 rw private', 'P write buf[0] = 1'];
  for (let i = 1; i <= n; i++) steps.push(`P fork C${i}`, `C${i} write buf[0] = ${i + 1}`);
  return ['name: fork-tree', 'kernel: v6', 'steps: |', ...steps.map((s) => `  ${s}`), ''].join('\n');
}

/** CPU milliseconds of one run of the n-fork scenario (parsing left out); `changes`: as `run --trace` runs it. */
function runMs(n: number, changes = false): number {
  const parsed = parseScenario(forkTree(n), 'fork-tree.scn.yaml');
  if (!parsed.ok) throw new Error('the fork-tree scenario does not parse');
  const t0 = process.cpuUsage();
  const r = runScenario(parsed.scenario, builtinProfile('v6')!, { trace: true, changes });
  const u = process.cpuUsage(t0);
  if (r.status !== 'ok') throw new Error(`the fork-tree run of ${n} forks ended ${r.status}`);
  return (u.user + u.system) / 1000;
}

/**
 * The row: 8,000 forks over 1,000 (--quick: 4,000 over 500), CPU time, after a warm-up run;
 * `changes`: the row of `run --trace`.
 */
export function forksFigure(quick: boolean, log: (s: string) => void = () => {}, changes = false): Figure {
  const n = quick ? 500 : 1000;
  const what = changes ? 'run --trace' : 'run';
  runMs(n >>> 2, changes);
  log(`  ${what} of ${n} forks ...`);
  const small = runMs(n, changes);
  log(`  ${what} of ${8 * n} forks ...`);
  const big = runMs(8 * n, changes);
  const growth = big / small;
  return {
    name: `${what} of ${8 * n} forks over ${n} (each child writes a page): time ratio`, unit: 'x',
    model: growth, kernel: null, ratio: growth / 8, target: '<= 10x (linear: 8x)', met: growth <= 10,
    note: `CPU time: ${n} forks ${small.toFixed(0)} ms, ${8 * n} forks ${big.toFixed(0)} ms; ratio: the growth over 8`,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const changes of [false, true]) {
    const f = forksFigure(process.argv.includes('--quick'), (t) => process.stderr.write(t + '\n'), changes);
    process.stdout.write(`${f.name}: ${f.model} ${f.unit} (target ${f.target}: ${f.met ? 'met' : 'NOT met'})\n  ${f.note}\n`);
  }
}
