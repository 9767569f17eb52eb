// `cowlab run`: load -> parse -> resolve profile -> run -> report.

import { runScenario } from '../../engine/run.js';
import type { RunResult } from '../../engine/result.js';
import { RESULT_FORMAT_VERSION } from '../../engine/result.js';
import { DEFAULT_PIN_BIAS } from '../../core/kernel.js';
import { ProfileError, withOverrides } from '../../profiles/resolve.js';
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
  if (typeof values.kernel === 'string' && !registry.has(values.kernel)) {
    throw new UsageError(`cowlab run: --kernel: unknown profile '${values.kernel}' (known: ${registry.names().join(', ')})`);
  }
  const sets = (values.set ?? []) as string[];
  const scenarios = loadScenarios(expandPaths(positionals), registry);
  const results: RunResult[] = [];
  const texts: string[] = [];
  for (const sc of scenarios) {
    const base = registry.get((values.kernel as string | undefined) ?? sc.kernel ?? 'v6');
    let profile;
    try {
      profile = withOverrides(base, sets);
    } catch (e) {
      if (e instanceof ProfileError) throw new UsageError(`cowlab run: --set: ${e.message}`);
      throw e;
    }
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

function configLine(sc: Scenario): string {
  const frames = sc.config.frames === null ? 'unlimited' : String(sc.config.frames);
  return `frames=${frames} pin_bias=${sc.config.pinBias ?? DEFAULT_PIN_BIAS}`;
}

