// The huge-page and fault rows of `npm run bench` (issue 16), model and live kernel measured in
// the same run; also runnable alone:
//   node dist/bench/huge.js [--quick] [--json]
// - fork of 1 GiB populated with PMD-mapped THPs (MADV_HUGEPAGE): the model's copy_huge_pmd
//   over 512 PMDs beside the kernel's fork (bench/livebench.c);
// - fork of 1 GiB of hugetlb when the machine can reserve 512 huge pages (the model's side once
//   it has a `hugetlb` mmap option, found by parsing a tiny scenario);
// - the write faults after fork, 4 KiB and THP: the COW fault (the child alive) and the reuse
//   fault (the child gone), the kernel's side measured live (livebench faults).

import { spawnSync } from 'node:child_process';
import { freemem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cpuAccess } from '../src/core/access.js';
import { HPAGE_PMD_NR, VM_HUGEPAGE } from '../src/core/constants.js';
import { dupMmap } from '../src/core/fork.js';
import { Kernel } from '../src/core/kernel.js';
import type { Mm } from '../src/core/mm.js';
import type { Profile } from '../src/core/profile.js';
import { doMmap } from '../src/core/mmap.js';
import { exitMmap } from '../src/core/zap.js';
import { Runner } from '../src/engine/run.js';
import { builtinProfile } from '../src/profiles/builtin.js';
import { parseScenario } from '../src/scenario/index.js';
import { benchHelper } from './cc.js';
import type { Figure } from './explorer.js';

const GIB_PAGES = 262144;
const v6 = (): Profile => builtinProfile('v6')!;

// ---- the live kernel ---------------------------------------------------------------------------

export type Live = Record<string, number> | { skip: string };

/** One livebench measurement: its JSON line, or why it was not measured. */
export function live(args: string[], needMiB: number): Live {
  const bin = benchHelper('livebench');
  if (!bin) return { skip: 'no C compiler (or not Linux): the live kernel is not measured' };
  if (freemem() < needMiB * 2 ** 20 * 1.25) return { skip: `less than ${needMiB} MiB of free memory` };
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(last) as Record<string, unknown>;
  } catch {
    return { skip: `livebench ${args.join(' ')} failed (exit ${r.status ?? r.signal}): ${(r.stderr ?? '').trim()}` };
  }
  if (typeof j.skip === 'string') return { skip: j.skip };
  if (r.status !== 0 || typeof j.error === 'string') return { skip: `livebench ${args.join(' ')}: ${String(j.error ?? `exit ${r.status}`)}` };
  return j as Record<string, number>;
}

const skipped = (l: Live): l is { skip: string } => 'skip' in l;

// ---- the model ---------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/**
 * Forks of `mm` in the model, the child exiting after each: warm-up forks, then the median and
 * the best of `reps`. Before each fork the parent writes one page per `stride` (as the kernel
 * side does), so each fork finds writable, exclusive memory.
 */
function timeForks(k: Kernel, mm: Mm, start: number, pages: number, stride: number, warm: number, reps: number): { ms: number; minMs: number } {
  const times: number[] = [];
  for (let i = 0; i < warm + reps; i++) {
    for (let v = start; v < start + pages; v += stride) cpuAccess(k, mm, v, true, i);
    const t0 = performance.now();
    const c = dupMmap(k, mm).child!;
    const t = performance.now() - t0;
    exitMmap(k, c);
    if (i >= warm) times.push(t);
  }
  return { ms: median(times), minMs: Math.min(...times) };
}

/** A v6 model with `pages` of private memory populated (MADV_HUGEPAGE when thp), tracing off. */
function populated(pages: number, thp: boolean): { k: Kernel; mm: Mm; start: number } {
  const k = new Kernel(v6(), { frames: 2 ** 30, pinBias: 1024, thp: 'madvise' });
  k.tracing = false;
  const mm = k.newMm();
  const m = doMmap(k, mm, pages, 'rw', false, true, thp ? VM_HUGEPAGE : 0);
  if (thp && mm.hugePmds !== pages / HPAGE_PMD_NR) throw new Error(`the model mapped ${mm.hugePmds} of ${pages / HPAGE_PMD_NR} huge PMDs`);
  return { k, mm, start: m.start };
}

/** Fork of 1 GiB of PMD-mapped THPs in the model. */
export function modelThpFork(quick: boolean): { ms: number; minMs: number } {
  const { k, mm, start } = populated(GIB_PAGES, true);
  return timeForks(k, mm, start, GIB_PAGES, HPAGE_PMD_NR, quick ? 50 : 200, quick ? 20 : 50);
}

/**
 * The write faults after fork in the model, as livebench measures them: the child exits, the
 * parent writes (reuse faults); the child lives, the parent writes (COW faults). One write per
 * `stride` pages; the best average over `reps` fresh models, in microseconds per fault.
 */
export function modelFaults(pages: number, thp: boolean, reps: number): { reuseUs: number; cowUs: number } {
  const stride = thp ? HPAGE_PMD_NR : 1;
  let reuseUs = Infinity;
  let cowUs = Infinity;
  for (let r = 0; r < reps; r++) {
    const { k, mm, start } = populated(pages, thp);
    const writes = (value: number): number => {
      const t0 = performance.now();
      for (let v = start; v < start + pages; v += stride) cpuAccess(k, mm, v, true, value);
      return ((performance.now() - t0) * 1000) / (pages / stride);
    };
    exitMmap(k, dupMmap(k, mm).child!);
    reuseUs = Math.min(reuseUs, writes(2));
    const child = dupMmap(k, mm).child!;
    cowUs = Math.min(cowUs, writes(3));
    exitMmap(k, child);
  }
  return { reuseUs, cowUs };
}

/** The scenario that maps `pages` of hugetlb in the model, or why there is none on this branch. */
function hugetlbScenario(pages: number): { text: string } | { skip: string } {
  const probe = parseScenario('name: probe\nsteps: |\n  P mmap buf 512 rw private hugetlb\n', 'hugetlb-probe.scn.yaml');
  if (!probe.ok) return { skip: 'hugetlb not modelled on this branch (the scenario language has no `mmap ... hugetlb`)' };
  return {
    text: `name: bench-hugetlb-fork\nconfig:\n  frames: ${pages * 2 + 4096}\n  hugepages: ${pages / HPAGE_PMD_NR}\n` +
      `steps: |\n  P mmap buf ${pages} rw private hugetlb populate\n`,
  };
}

/** Fork of 1 GiB of hugetlb in the model (the mapping built by a scenario step), or why not. */
export function modelHugetlbFork(quick: boolean): { ms: number; minMs: number } | { skip: string } {
  const sc = hugetlbScenario(GIB_PAGES);
  if ('skip' in sc) return sc;
  const parsed = parseScenario(sc.text, 'bench-hugetlb-fork.scn.yaml');
  if (!parsed.ok) return { skip: `the hugetlb bench scenario does not parse here: ${JSON.stringify(parsed.errors[0] ?? '')}` };
  const runner = new Runner(parsed.scenario, v6(), { trace: false, checkEveryStep: false });
  const step = parsed.scenario.steps[0]!;
  const { na } = runner.step(step, 0);
  if (na !== null) return { skip: `the model has no hugetlb on v6: ${na}` };
  const p = runner.procs.get('P');
  const start = p?.regions.get('buf')?.start;
  if (!p || start === undefined) return { skip: 'the hugetlb bench scenario mapped nothing' };
  return timeForks(runner.k, p.mm, start, GIB_PAGES, HPAGE_PMD_NR, quick ? 50 : 200, quick ? 20 : 50);
}

// ---- the rows ----------------------------------------------------------------------------------

/** The live 4 KiB fault figures, for run.ts's COW and reuse rows (ns per fault), or why not. */
export function liveFaults4k(quick: boolean): Live {
  return live(['faults', '4k', quick ? '64' : '256', '3'], 2 * (quick ? 64 : 256));
}

export function hugeFigures(quick: boolean, log: (s: string) => void = () => {}): Figure[] {
  const out: Figure[] = [];
  const forkReps = quick ? '10' : '20';

  log('  THP fork 1 GiB: model ...');
  const m = modelThpFork(quick);
  log('  THP fork 1 GiB: live kernel ...');
  const kf = live(['thp-fork', '1024', forkReps], 1024);
  const kms = skipped(kf) ? null : kf.forkMinNs! / 1e6;
  out.push({
    name: 'fork 1 GiB THP (512 PMD-mapped 2 MiB folios)', unit: 'ms', model: m.ms, kernel: kms,
    ratio: kms ? m.ms / kms : null, target: 'model <= 0.5x kernel', met: kms ? m.ms / kms <= 0.5 : null,
    note: `model: median of warm forks (best ${m.minMs.toFixed(3)} ms); ` + (skipped(kf) ? `kernel not measured: ${kf.skip}`
      : `kernel: best of ${kf.reps} forks (median ${(kf.forkMedianNs! / 1e6).toFixed(2)} ms), ${kf.hugeKb} kB AnonHugePages`),
  });

  log('  hugetlb fork 1 GiB ...');
  const mh = modelHugetlbFork(quick);
  const kh = live(['hugetlb-fork', '1024', forkReps], 1024);
  const khms = skipped(kh) ? null : kh.forkMinNs! / 1e6;
  const mhms = 'skip' in mh ? null : mh.ms;
  out.push({
    name: 'fork 1 GiB hugetlb (512 2 MiB pages)', unit: 'ms', model: mhms, kernel: khms,
    ratio: mhms !== null && khms ? mhms / khms : null, target: null, met: null,
    note: [
      'skip' in mh ? `model: ${mh.skip}` : `model: median of warm forks (best ${mh.minMs.toFixed(3)} ms)`,
      skipped(kh) ? `kernel not measured: ${kh.skip}` : `kernel: best of ${kh.reps} forks (median ${(kh.forkMedianNs! / 1e6).toFixed(2)} ms), 512 huge pages reserved for the run and given back`,
    ].join('; '),
  });

  log('  THP write faults after fork: model and live kernel ...');
  modelFaults(GIB_PAGES / 8, true, 5); // warm-up: the fault paths compiled before they are timed
  const mt = modelFaults(GIB_PAGES, true, quick ? 3 : 5);
  const kt = live(['faults', 'thp', '1024', quick ? '2' : '3'], 2048);
  const faultRow = (name: string, modelUs: number, kernelNs: number | undefined, note: string): Figure => ({
    name, unit: 'faults/s', model: 1e6 / modelUs, kernel: kernelNs ? 1e9 / kernelNs : null,
    ratio: kernelNs ? (1e6 / modelUs) / (1e9 / kernelNs) : null, target: null, met: null,
    note: `model ${modelUs.toFixed(2)} us a fault` + (kernelNs ? `, kernel ${(kernelNs / 1000).toFixed(2)} us` : '') + `; ${note}`,
  });
  const ktNote = skipped(kt) ? `kernel not measured: ${kt.skip}` : `512 faults, one per 2 MiB, best of ${kt.reps} runs`;
  out.push(faultRow('COW fault throughput, THP (write to a shared huge PMD: split, 4 KiB copied)', mt.cowUs, skipped(kt) ? undefined : kt.cowNs,
    ktNote + (skipped(kt) ? '' : `; the kernel's AnonHugePages after: ${kt.hugeKbAfterCow} kB (the parent's PMDs split)`)));
  out.push(faultRow('reuse fault throughput, THP (refcount 1 after the child exits: the PMD made writable)', mt.reuseUs, skipped(kt) ? undefined : kt.reuseNs, ktNote));
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  const json = process.argv.includes('--json');
  const log = (t: string): void => {
    if (!json) process.stderr.write(t + '\n');
  };
  const figures = hugeFigures(quick, log);
  log('  4 KiB write faults after fork: model and live kernel ...');
  modelFaults(GIB_PAGES / 8, false, 3);
  const m4 = modelFaults(GIB_PAGES, false, 3);
  const k4 = liveFaults4k(quick);
  for (const [what, mus, kns] of [['COW', m4.cowUs, 'cowNs'], ['reuse', m4.reuseUs, 'reuseNs']] as const) {
    const kernel = skipped(k4) ? null : 1e9 / k4[kns]!;
    figures.push({
      name: `${what} fault throughput, 4 KiB (the parent writes)`, unit: 'faults/s', model: 1e6 / mus, kernel, ratio: kernel ? 1e6 / mus / kernel : null,
      target: null, met: null, note: skipped(k4) ? `kernel not measured: ${k4.skip}` : `kernel ${(k4[kns]! / 1000).toFixed(2)} us a fault over ${k4.faults} pages`,
    });
  }
  if (json) process.stdout.write(JSON.stringify({ format: 1, command: 'bench', figures }, null, 2) + '\n');
  else for (const f of figures) process.stdout.write(`${f.name}: model ${f.model} ${f.unit}, kernel ${f.kernel ?? '-'}, ratio ${f.ratio ?? '-'}${f.target ? ` (target ${f.target}: ${f.met ? 'met' : 'NOT met'})` : ''}\n  ${f.note ?? ''}\n`);
}
