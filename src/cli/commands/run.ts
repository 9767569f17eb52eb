// `cowlab run`: load -> parse -> resolve profile -> run -> report.

import type { Profile } from '../../core/profile.js';
import { runScenario, type RunOptions } from '../../engine/run.js';
import type { RunResult } from '../../engine/result.js';
import { RESULT_FORMAT_VERSION } from '../../engine/result.js';
import { DEFAULT_PIN_BIAS } from '../../core/kernel.js';
import { ProfileError, resolveKernel } from '../../profiles/resolve.js';
import { buildRegistry } from '../registry.js';
import type { Scenario } from '../../scenario/index.js';
import { EXIT_INTERRUPTED, ItemFailed, runScenariosInWorker, type StopSignal } from '../background.js';
import { EXIT_FAIL, EXIT_OK, UsageError } from '../errors.js';
import { checkScenarioMemory, guardMemory, isOutOfMemory, maxMemoryOpt, outOfMemory } from '../limits.js';
import { RUN_HELP } from '../help.js';
import { expandPaths, loadScenarios } from '../load.js';
import { renderRun } from '../report.js';
import type { Io } from '../io.js';
import { parseCommandArgs } from '../args.js';
import { runProgress } from '../progress.js';

interface Plan {
  values: Record<string, string | boolean | string[] | undefined>;
  maxMemory: number;
  /** `profile` is the one shown; `run` the one run, named like its base (a what-if kernel is judged like its base). */
  items: { sc: Scenario; profile: Profile; run: Profile; opts: RunOptions }[];
}

/** `cowlab run`, every scenario on this thread (tests, and the bin for a single scenario). */
export function runCommand(argv: string[], io: Io): number {
  const plan = runPlan(argv, io);
  if (typeof plan === 'number') return plan;
  return runReport(plan, io, runHere(plan), null);
}

function runHere(plan: Plan): RunResult[] {
  return plan.items.map((it) => guardMemory(it.sc, plan.maxMemory, () => runScenario(it.sc, it.run, it.opts)));
}

/**
 * `cowlab run` of several scenarios in a worker: SIGINT/SIGTERM stop it, the scenarios that
 * finished are reported with the summary, exit 130.
 */
export async function runCommandAsync(argv: string[], io: Io): Promise<number> {
  const plan = runPlan(argv, io);
  if (typeof plan === 'number') return plan;
  if (plan.items.length <= 1) return runReport(plan, io, runHere(plan), null);
  const progress = runProgress('run', plan.values, plan.items.map((it) => it.sc.file), 1);
  try {
    const { results, signal } = await runScenariosInWorker(plan.items.map(({ sc, run, opts }) => ({ sc, profile: run, opts })), false, progress?.ran);
    progress?.clear();
    return runReport(plan, io, results, signal);
  } catch (e) {
    progress?.clear();
    if (e instanceof ItemFailed) throw isOutOfMemory(e.error) ? outOfMemory(plan.items[e.index]!.sc, e.error, plan.maxMemory) : e.error;
    throw e;
  }
}

function runPlan(argv: string[], io: Io): Plan | number {
  const { values, positionals } = parseCommandArgs(argv, {
    kernel: { type: 'string' },
    set: { type: 'string', multiple: true },
    profiles: { type: 'string', multiple: true },
    trace: { type: 'boolean' },
    stats: { type: 'boolean' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
    'max-memory': { type: 'string' },
    progress: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, 'run');
  if (values.help) {
    io.out(RUN_HELP);
    return EXIT_OK;
  }
  // --quiet prints the verdict line only: a --trace or --stats beside it would be accepted and ignored (with --json they go into the document).
  if (values.quiet && !values.json && (values.trace || values.stats)) {
    throw new UsageError(`cowlab run: --quiet prints only the verdict line per file, so ${values.trace ? '--trace' : '--stats'} would show nothing: give one or the other`);
  }
  if (positionals.length === 0) throw new UsageError('cowlab run: no scenario given (try: npx cowlab run scenarios/basic/)');
  const registry = buildRegistry((values.profiles ?? []) as string[]);
  const maxMemory = maxMemoryOpt(values['max-memory'], 'run');
  const sets = (values.set ?? []) as string[];
  if (typeof values.kernel === 'string') kernelProfile(registry, values.kernel, sets);
  const scenarios = loadScenarios(expandPaths(positionals), registry);
  checkScenarioMemory(scenarios, maxMemory, values['max-memory'] !== undefined);
  const items: Plan['items'] = [];
  for (const sc of scenarios) {
    const { base, profile } = kernelProfile(registry, (values.kernel as string | undefined) ?? sc.kernel ?? 'v6', sets);
    // Outcomes are judged for the base profile's name (a what-if kernel is judged like its base).
    items.push({ sc, profile, run: { ...profile, name: base.name }, opts: { trace: !values.quiet || !!values.json, changes: !!values.trace, countersEveryStep: !!values.stats } });
  }
  return { values, maxMemory, items };
}

/** The reports of the scenarios that ran (the first results.length of the plan), stopped by `signal` or not. */
function runReport(plan: Plan, io: Io, ran: RunResult[], signal: StopSignal | null): number {
  const { values } = plan;
  const results: RunResult[] = [];
  const texts: string[] = [];
  ran.forEach((r, i) => {
    const { sc, profile } = plan.items[i]!;
    r.profile = profile.name;
    results.push(r);
    if (!values.json) {
      texts.push(values.quiet
        ? `${r.verdict === 'pass' ? 'PASS' : 'FAIL'}  ${sc.file}  [${profile.name}] ${r.verdictReason}`
        : renderRun(r, profile, configLine(sc), { trace: !!values.trace, stats: !!values.stats, description: sc.description }));
    }
  });
  const failed = results.filter((r) => r.verdict === 'fail').length;
  const stopped = signal === null ? '' : `; stopped by ${signal} after ${results.length} of ${plan.items.length} scenario(s)`;
  if (values.json) {
    io.out(JSON.stringify({
      format: RESULT_FORMAT_VERSION, command: 'run', results, passed: results.length - failed, failed,
      ...(signal === null ? {} : { interrupted: signal, notRun: plan.items.slice(results.length).map((it) => it.sc.file) }),
    }, null, 2));
  } else {
    if (texts.length > 0) io.out(texts.join(values.quiet ? '\n' : '\n\n'));
    if (plan.items.length > 1 || values.quiet || signal !== null) io.out(`\n${results.length - failed} passed, ${failed} failed${stopped}`);
  }
  if (signal !== null) return EXIT_INTERRUPTED;
  return failed > 0 ? EXIT_FAIL : EXIT_OK;
}

/** The profile of `--kernel NAME` (a what-if name like v5.9+forkEarlyCow=false included) with `--set`. */
function kernelProfile(registry: Parameters<typeof resolveKernel>[0], name: string, sets: readonly string[]): ReturnType<typeof resolveKernel> {
  try {
    resolveKernel(registry, name);
  } catch (e) {
    if (e instanceof ProfileError) throw new UsageError(`cowlab run: --kernel: ${e.message}`);
    throw e;
  }
  try {
    return resolveKernel(registry, name, sets);
  } catch (e) {
    if (e instanceof ProfileError) throw new UsageError(`cowlab run: --set: ${e.message}`);
    throw e;
  }
}

function configLine(sc: Scenario): string {
  const frames = sc.config.frames === null ? 'unlimited' : String(sc.config.frames);
  return `frames=${frames} pin_bias=${sc.config.pinBias ?? DEFAULT_PIN_BIAS}`;
}

