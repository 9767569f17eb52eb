// `npm run bench`: the model's speed and memory at scale, side by side with the live kernel of
// this machine measured in the same run; ratios against the targets of issue 8.
//   npm run bench [-- --json] [-- --quick]

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinProfile } from '../src/profiles/builtin.js';
import { benchHelper } from './cc.js';
import { explorerFigures, type Figure } from './explorer.js';
import { forksFigure } from './forks.js';
import { hugeFigures, live, liveFaults4k } from './huge.js';
import { runScenario } from '../src/engine/run.js';
import { parseScenario } from '../src/scenario/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const log = (s: string): void => {
  if (!json) process.stderr.write(s + '\n');
};

const GIB = 262144; // pages
const SIZES: [string, number][] = quick
  ? [['64 MiB', 16384], ['1 GiB', GIB]]
  : [['64 MiB', 16384], ['1 GiB', GIB], ['16 GiB', 16 * GIB], ['64 GiB', 64 * GIB]];

function modelRun(pages: number, cowpt: boolean): Record<string, number> {
  const r = spawnSync(process.execPath, ['--max-old-space-size=8192', join(here, 'model.js'), String(pages), ...(cowpt ? ['cowpt'] : [])], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`model bench failed for ${pages} pages: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

/** fork() of a populated region on the live kernel (bench/livebench.c fork), or null. */
function kernelFork(mib: number): { forkMinMs: number; forkMedianMs: number; populateMs: number } | null {
  const j = live(['fork', String(mib), String(mib <= 64 ? 20 : mib <= 1024 ? 10 : 3)], mib);
  if ('skip' in j) return null;
  return { forkMinMs: j.forkMinNs! / 1e6, forkMedianMs: j.forkMedianNs! / 1e6, populateMs: j.populateNs! / 1e6 };
}

const figures: Figure[] = [];
const round = (x: number | null, d = 3): number | null => (x === null ? null : Number(x.toPrecision(d + 1)));
const add = (f: Figure): void => {
  figures.push({ ...f, model: round(f.model), kernel: round(f.kernel), ratio: round(f.ratio) });
};

log(`cowlab bench${quick ? ' (quick)' : ''}: model and live kernel, one run`);
const bin = benchHelper('livebench');
if (!bin) log('  (no C compiler or not Linux: kernel figures left out)');

let fork1G: number | null = null;
for (const [label, pages] of SIZES) {
  log(`  ${label}: model ...`);
  const m = modelRun(pages, false);
  const mib = (pages * 4096) / 2 ** 20;
  let kf = null;
  if (bin && pages <= 16 * GIB) {
    log(`  ${label}: live kernel ...`);
    kf = kernelFork(mib);
  }
  add({ name: `populate ${label}`, unit: 'ms', model: m.populateMs!, kernel: kf?.populateMs ?? null, ratio: kf ? m.populateMs! / kf.populateMs : null, target: null, met: null });
  add({
    name: `fork ${label}`, unit: 'ms', model: m.forkMs!, kernel: kf?.forkMinMs ?? null, ratio: kf ? m.forkMs! / kf.forkMinMs : null,
    target: label === '1 GiB' ? 'model <= 0.5x kernel' : label === '64 GiB' ? '< 1000 ms' : null,
    met: label === '1 GiB' && kf ? m.forkMs! / kf.forkMinMs <= 0.5 : label === '64 GiB' ? m.forkMs! < 1000 : null,
    note: kf ? `kernel median ${kf.forkMedianMs.toFixed(2)} ms` : pages > 16 * GIB ? 'kernel not measured: more than this machine\'s memory' : undefined,
  });
  add({ name: `exit ${label}`, unit: 'ms', model: m.exitMs!, kernel: null, ratio: null, target: null, met: null });
  const perPage = m.peakRssBytes! / pages;
  add({
    name: `peak host memory per page, ${label}`, unit: 'bytes', model: perPage, kernel: null, ratio: perPage / 64,
    target: label === '64 GiB' ? '<= 64 bytes/page' : null, met: label === '64 GiB' ? perPage <= 64 : null,
    note: `peak RSS ${(m.peakRssBytes! / 2 ** 20).toFixed(0)} MiB, parent and child mapped`,
  });
  if (label === '1 GiB') {
    fork1G = m.forkMs!;
    // The kernel's side measured now (bench/livebench.c: write faults after fork, 4 KiB pages).
    log('  write faults after fork: live kernel ...');
    const kw = liveFaults4k(quick);
    for (const [name, rate, ns] of [['COW fault throughput', m.cowFaultsPerSec!, 'cowNs'], ['reuse fault throughput', m.reuseFaultsPerSec!, 'reuseNs']] as const) {
      const kernel = 'skip' in kw ? null : 1e9 / kw[ns]!;
      add({
        name, unit: 'faults/s', model: rate, kernel, ratio: kernel ? rate / kernel : null, target: null, met: null,
        note: 'skip' in kw ? `kernel not measured: ${kw.skip}` : `kernel: ${(kw[ns]! / 1000).toFixed(2)} us a fault (${kw.faults} pages, best of ${kw.reps} runs)`,
      });
    }
  }
}

for (const [label, pages] of SIZES.filter(([l]) => l !== '64 MiB')) {
  const c = modelRun(pages, true);
  const normal = label === '1 GiB' ? fork1G : null;
  add({
    name: `cowpt fork ${label}`, unit: 'ms', model: c.cowptForkMs!, kernel: null,
    ratio: normal ? c.cowptForkMs! / normal : null,
    target: label === '1 GiB' ? '<= 1/50 of a normal fork (model)' : null,
    met: label === '1 GiB' && normal ? c.cowptForkMs! / normal <= 1 / 50 : null,
    note: normal ? `normal fork ${normal.toFixed(2)} ms` : undefined,
  });
  if (label === '1 GiB') add({ name: 'first write after a cowpt fork (copies one PTE table)', unit: 'ms', model: c.firstWriteAfterCowptMs!, kernel: null, ratio: null, target: null, met: null });
}

// `run --trace` of the 1 GiB fork scenario (mmap populate, fork, exit, end: every PTE and
// frame each step changed, diffed) beside the same run without the changes (median of 3, warm).
// THP and hugetlb forks, and the THP write faults, beside the live kernel (bench/huge.ts).
for (const f of hugeFigures(quick, log)) add(f);

log('  run --trace, 1 GiB fork ...');
{
  const file = join(root, 'scenarios/basic/pagetables-1gib.scn.yaml');
  const parsed = parseScenario(readFileSync(file, 'utf8'), file);
  if (!parsed.ok) throw new Error(`${file} does not parse`);
  const v6 = builtinProfile('v6')!;
  const time = (changes: boolean): number => {
    const t0 = performance.now();
    runScenario(parsed.scenario, v6, { trace: true, changes });
    return performance.now() - t0;
  };
  time(false);
  time(true);
  const plain = [time(false), time(false), time(false)].sort((a, b) => a - b)[1]!;
  const traced = [time(true), time(true), time(true)].sort((a, b) => a - b)[1]!;
  add({
    name: 'run --trace of a 1 GiB fork (every PTE and frame changed, summarised)', unit: 'ms', model: traced, kernel: null,
    ratio: traced / plain, target: '<= 3x the run without --trace', met: traced <= 3 * plain,
    note: `without --trace: ${plain.toFixed(0)} ms; ratio: with / without`,
  });
}

// A run of a big process tree: 8,000 forks over 1,000 (bench/forks.ts), and the same with
// `run --trace`'s change log.
log('  run of a fork tree ...');
add(forksFigure(quick, log));
add(forksFigure(quick, log, true));

// The explorer's rows (issue 14): states per second on one core, 2 workers over 1, bytes per
// state, the depth-8 search (bench/explorer.ts).
log('  explorer ...');
for (const f of explorerFigures(quick, log)) add(f);

const doc = { format: 1, command: 'bench', node: process.version, quick, figures };
if (json) {
  process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
} else {
  const rows = figures.map((f) => [f.name, f.unit, fmt(f.model), fmt(f.kernel), f.ratio === null ? '' : `${f.ratio}`, f.target ?? '', f.met === null ? '' : f.met ? 'met' : 'NOT met']);
  const head = ['figure', 'unit', 'model', 'kernel', 'ratio', 'target', ''];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
  process.stdout.write([line(head), line(w.map((x) => '-'.repeat(x))), ...rows.map(line)].join('\n') + '\n');
  for (const f of figures) if (f.note) process.stdout.write(`  ${f.name}: ${f.note}\n`);
}
if (process.env.COWLAB_BENCH_OUT) writeFileSync(process.env.COWLAB_BENCH_OUT, JSON.stringify(doc, null, 2));

function fmt(x: number | null): string {
  return x === null ? '-' : Math.abs(x) >= 1000 ? Math.round(x).toString() : String(x);
}
