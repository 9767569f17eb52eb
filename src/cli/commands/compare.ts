// `cowlab compare`: every scenario on every profile; a matrix of verdicts, with the cells that
// contradict the file's `outcomes` marked.

import type { Profile } from '../../core/profile.js';
import type { Expected } from '../../scenario/index.js';
import { RESULT_FORMAT_VERSION, type RunResult } from '../../engine/result.js';
import { runScenario, type RunOptions } from '../../engine/run.js';
import type { Scenario } from '../../scenario/index.js';
import { ProfileError, resolveKernel, splitKernelList } from '../../profiles/resolve.js';
import { parseCommandArgs } from '../args.js';
import { runProgress } from '../progress.js';
import { EXIT_INTERRUPTED, ItemFailed, runOrError, type RunOutcome, runScenariosInWorker, type StopSignal } from '../background.js';
import { EXIT_FAIL, EXIT_INTERNAL, EXIT_OK, UsageError } from '../errors.js';
import { checkScenarioMemory, guardMemory, isOutOfMemory, maxMemoryOpt, outOfMemory } from '../limits.js';
import { COMPARE_HELP } from '../help.js';
import type { Io } from '../io.js';
import { expandPaths, loadScenarios } from '../load.js';
import { buildRegistry } from '../registry.js';

const SHORT: Record<string, string> = {
  leak: 'leak', 'lost-write': 'lost', 'pin-incoherent': 'pin', expect: 'exp', accounting: 'acct',
  'frame-leak': 'fleak', 'use-after-free': 'uaf', 'kernel-bug': 'bug', exclusive: 'excl', fault: 'fault',
  'uffd-wp-bypass': 'wpbypass',
};

export interface Cell {
  /** 'error': the model threw (a bug in cowlab); the other cells go on. */
  status: RunResult['status'] | 'error';
  kinds: string[];
  /** What outcomes says for this profile (as in a run's result), or null when not judged. */
  expected: Expected | null;
  /** pass / fail against outcomes; null when outcomes does not name this profile. */
  verdict: 'pass' | 'fail' | null;
  reason: string;
}

export function cellText(c: Cell): string {
  if (c.status === 'error') return 'ERROR';
  const base = c.status === 'n/a' ? 'n/a' : c.status === 'ok' ? 'ok' : c.kinds.map((k) => SHORT[k] ?? k).join('+');
  return c.verdict === 'fail' ? `${base}!` : base;
}

interface Plan {
  values: Record<string, string | boolean | string[] | undefined>;
  /** Per profile, the name whose outcomes judge it (a what-if kernel is judged like its base). */
  bases: string[];
  maxMemory: number;
  profiles: Profile[];
  scenarios: Scenario[];
}

/** The runs of a compare, scenario by scenario, each on every profile (judged by its base's outcomes). */
function runItems(plan: Plan): { sc: Scenario; profile: Profile; opts: RunOptions }[] {
  const opts: RunOptions = { trace: false, maxEventsPerStep: 0 };
  return plan.scenarios.flatMap((sc) => plan.profiles.map((p, i) => ({ sc, profile: { ...p, name: plan.bases[i]! }, opts })));
}

/** `cowlab compare` on this thread (tests; the bin runs compareCommandAsync). */
export function compareCommand(argv: string[], io: Io): number {
  const plan = comparePlan(argv, io);
  if (typeof plan === 'number') return plan;
  return compareReport(plan, io, runItems(plan).map((it) => guardMemory(it.sc, plan.maxMemory, () => runOrError(it))), null);
}

/** `cowlab compare` in a worker: SIGINT/SIGTERM stop it; the rows that finished are reported, exit 130. */
export async function compareCommandAsync(argv: string[], io: Io): Promise<number> {
  const plan = comparePlan(argv, io);
  if (typeof plan === 'number') return plan;
  const items = runItems(plan);
  const progress = runProgress('compare', plan.values, plan.scenarios.map((sc) => sc.file), plan.profiles.length);
  try {
    const { results, signal } = await runScenariosInWorker(items, true, progress?.ran);
    progress?.clear();
    return compareReport(plan, io, results, signal);
  } catch (e) {
    progress?.clear();
    if (e instanceof ItemFailed) throw isOutOfMemory(e.error) ? outOfMemory(items[e.index]!.sc, e.error, plan.maxMemory) : e.error;
    throw e;
  }
}

function comparePlan(argv: string[], io: Io): Plan | number {
  const { values, positionals } = parseCommandArgs(argv, {
    kernels: { type: 'string' },
    set: { type: 'string', multiple: true },
    profiles: { type: 'string', multiple: true },
    json: { type: 'boolean' },
    'max-memory': { type: 'string' },
    progress: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, 'compare');
  if (values.help) {
    io.out(COMPARE_HELP);
    return EXIT_OK;
  }
  if (positionals.length === 0) throw new UsageError('cowlab compare: no scenario given (try: npx cowlab compare scenarios/seeds)');
  const registry = buildRegistry((values.profiles ?? []) as string[]);
  // Default: every profile but the long-term kernels; in --kernels, `lts` stands for those six.
  const names = typeof values.kernels === 'string'
    ? [...new Set(splitKernelList(values.kernels).flatMap((n) => (n === 'lts' && !registry.has(n) ? registry.longTermNames() : [n])))]
    : registry.matrixNames();
  // An empty list would print an empty matrix and exit 0, as if every scenario had passed.
  if (names.length === 0) throw new UsageError(`cowlab compare: --kernels: no profile given (known: ${registry.names().join(', ')}, or lts)`);
  const sets = (values.set ?? []) as string[];
  const resolved = names.map((n) => {
    try {
      resolveKernel(registry, n);
    } catch (e) {
      if (e instanceof ProfileError) throw new UsageError(`cowlab compare: --kernels: ${e.message}`);
      throw e;
    }
    try {
      return resolveKernel(registry, n, sets);
    } catch (e) {
      if (e instanceof ProfileError) throw new UsageError(`cowlab compare: --set: ${e.message}`);
      throw e;
    }
  });
  const profiles: Profile[] = resolved.map((r) => r.profile);
  const bases = resolved.map((r) => r.base.name);
  const maxMemory = maxMemoryOpt(values['max-memory'], 'compare');
  const scenarios = loadScenarios(expandPaths(positionals), registry);
  checkScenarioMemory(scenarios, maxMemory, values['max-memory'] !== undefined);
  return { values, bases, maxMemory, profiles, scenarios };
}

/** The matrix of the rows whose every cell ran (results in runItems order), stopped by `signal` or not. */
function compareReport(plan: Plan, io: Io, ran: RunOutcome[], signal: StopSignal | null): number {
  const { values, profiles } = plan;
  const rows: { file: string; name: string; cells: Cell[] }[] = [];
  const done = Math.floor(ran.length / profiles.length);
  for (let s = 0; s < done; s++) {
    const sc = plan.scenarios[s]!;
    const cells = profiles.map((_, i) => cellOf(ran[s * profiles.length + i]!));
    rows.push({ file: sc.file, name: sc.name, cells });
  }
  const contradictions = rows.flatMap((r) => r.cells.map((c, i) => ({ r, c, p: profiles[i]! })).filter((x) => x.c.verdict === 'fail' && x.c.status !== 'error'));
  const errors = rows.flatMap((r) => r.cells.map((c, i) => ({ r, c, p: profiles[i]! })).filter((x) => x.c.status === 'error'));
  if (values.json) {
    io.out(JSON.stringify({
      format: RESULT_FORMAT_VERSION, command: 'compare', profiles: profiles.map((p) => p.name),
      scenarios: rows.map((r) => ({ file: r.file, name: r.name, cells: Object.fromEntries(r.cells.map((c, i) => [profiles[i]!.name, c])) })),
      contradictions: contradictions.length,
      errors: errors.length,
      ...(signal === null ? {} : { interrupted: signal, notRun: plan.scenarios.slice(done).map((sc) => sc.file) }),
    }, null, 2));
  } else {
    io.out(renderMatrix(rows, profiles.map((p) => p.name)));
    if (contradictions.length) {
      io.out('\ncontradicted cells (the model disagrees with the file\'s outcomes):');
      for (const x of contradictions) io.out(`  ${x.r.file} on ${x.p.name}: ${x.c.reason}`);
    } else {
      io.out(`\nno cell ${signal === null ? '' : 'of the scenarios that ran '}contradicts its outcomes.`);
    }
    if (errors.length) {
      io.out('\ncells where cowlab failed (an internal error: a bug in cowlab, please report it):');
      for (const x of errors) io.out(`  ${x.r.file} on ${x.p.name}: ${x.c.reason}`);
    }
    if (signal !== null) io.out(`stopped by ${signal} after ${done} of ${plan.scenarios.length} scenario(s)`);
  }
  if (signal !== null) return EXIT_INTERRUPTED;
  return errors.length ? EXIT_INTERNAL : contradictions.length ? EXIT_FAIL : EXIT_OK;
}

/** One cell: the scenario on one profile (`run` stands in for the model in tests). */
export function runCell(sc: Scenario, profile: Profile, run: typeof runScenario = runScenario): Cell {
  return cellOf(runOrError({ sc, profile, opts: { trace: false, maxEventsPerStep: 0 } }, run));
}

/** One cell: a run, or the internal error it ended with (one file cannot cost the whole table). */
function cellOf(r: RunOutcome): Cell {
  if ('internalError' in r) return { status: 'error', kinds: [], expected: null, verdict: 'fail', reason: `internal error: ${r.internalError}` };
  const kinds = [...new Set(r.violations.map((v) => v.kind))];
  const judged = r.expected !== null;
  return { status: r.status, kinds, expected: r.expected, verdict: judged ? r.verdict : null, reason: r.verdictReason };
}

function renderMatrix(rows: { name: string; cells: Cell[] }[], profiles: string[]): string {
  const texts = rows.map((r) => r.cells.map(cellText));
  const nameW = Math.max(8, ...rows.map((r) => r.name.length));
  const colW = profiles.map((p, i) => Math.max(p.length, ...texts.map((t) => t[i]!.length)));
  const line = (first: string, cols: string[]): string => `${first.padEnd(nameW)}  ${cols.map((c, i) => c.padEnd(colW[i]!)).join('  ')}`.trimEnd();
  const out = [line('scenario', profiles), line('-'.repeat(nameW), colW.map((w) => '-'.repeat(w)))];
  rows.forEach((r, i) => out.push(line(r.name, texts[i]!)));
  out.push('', 'cells: ok | n/a | violations (leak, lost = lost-write, pin = pin-incoherent, exp = expect, acct = accounting,',
    '       fleak = frame-leak, uaf = use-after-free, bug = kernel-bug, excl = exclusive, fault, wpbypass = uffd-wp-bypass); "!" = contradicts outcomes;',
    '       ERROR = cowlab failed on this cell (an internal error)');
  return out.join('\n');
}
