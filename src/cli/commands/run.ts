// `cowlab run`: load -> parse -> resolve profile -> run -> report.

import { runScenario } from '../../engine/run.js';
import type { RunResult } from '../../engine/result.js';
import { RESULT_FORMAT_VERSION } from '../../engine/result.js';
import { DEFAULT_PIN_BIAS } from '../../core/kernel.js';
import { ProfileError, resolveKernel } from '../../profiles/resolve.js';
import { buildRegistry } from '../registry.js';
import type { Scenario } from '../../scenario/index.js';
import { EXIT_FAIL, EXIT_OK, UsageError } from '../errors.js';
import { RUN_HELP } from '../help.js';
import { expandPaths, loadScenarios } from '../load.js';
import { renderRun } from '../report.js';
import type { Io } from '../io.js';
import { parseCommandArgs } from '../args.js';

export function runCommand(argv: string[], io: Io): number {
  const { values, positionals } = parseCommandArgs(argv, {
    kernel: { type: 'string' },
    set: { type: 'string', multiple: true },
    profiles: { type: 'string', multiple: true },
    trace: { type: 'boolean' },
    stats: { type: 'boolean' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, 'run');
  if (values.help) {
    io.out(RUN_HELP);
    return EXIT_OK;
  }
  if (positionals.length === 0) throw new UsageError('cowlab run: no scenario given (try: npx cowlab run scenarios/basic/)');
  const registry = buildRegistry((values.profiles ?? []) as string[]);
  const sets = (values.set ?? []) as string[];
  if (typeof values.kernel === 'string') kernelProfile(registry, values.kernel, sets);
  const scenarios = loadScenarios(expandPaths(positionals), registry);
  const results: RunResult[] = [];
  const texts: string[] = [];
  for (const sc of scenarios) {
    const { base, profile } = kernelProfile(registry, (values.kernel as string | undefined) ?? sc.kernel ?? 'v6', sets);
    // Outcomes are judged for the base profile's name (a what-if kernel is judged like its base).
    const r = runScenario(sc, { ...profile, name: base.name }, { trace: !values.quiet || !!values.json, countersEveryStep: !!values.stats });
    r.profile = profile.name;
    results.push(r);
    if (!values.json) {
      texts.push(values.quiet
        ? `${r.verdict === 'pass' ? 'PASS' : 'FAIL'}  ${sc.file}  [${profile.name}] ${r.verdictReason}`
        : renderRun(r, profile, configLine(sc), { trace: !!values.trace, stats: !!values.stats, description: sc.description }));
    }
  }
  const failed = results.filter((r) => r.verdict === 'fail').length;
  if (values.json) {
    io.out(JSON.stringify({ format: RESULT_FORMAT_VERSION, command: 'run', results, passed: results.length - failed, failed }, null, 2));
  } else {
    io.out(texts.join(values.quiet ? '\n' : '\n\n'));
    if (results.length > 1 || values.quiet) io.out(`\n${results.length - failed} passed, ${failed} failed`);
  }
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

