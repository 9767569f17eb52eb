// `cowlab oracle`: the model beside the live Linux kernel, step by step (FILE|DIR...), or on
// generated scenarios (--random N) whose disagreements are shrunk and written out.
// SIGINT or SIGTERM stops it after the replay in flight (the loops give the event loop a turn
// after each one): what was found so far is reported as at a normal end, exit 130.

import type { Profile } from '../../core/profile.js';
import { OracleUnavailable } from '../../oracle/build.js';
import { ORACLE_FORMAT, oracleScenario, type OracleResult } from '../../oracle/oracle.js';
import { DEFAULT_OPS, type Gap, OPEN_GAPS, parseGaps, parseOps } from '../../oracle/random/generate.js';
import { randomCampaign, settle } from '../../oracle/random/campaign.js';
import { addCounts, countsText, renderOracle, statusWord, ZERO_COUNTS } from '../../oracle/report.js';
import { type Assumed, assumeFacts, PROBED_SWITCHES, probedFacts, probedProfile } from '../../oracle/probed.js';
import { OracleSession } from '../../oracle/session.js';
import { parseCommandArgs } from '../args.js';
import { EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, UsageError } from '../errors.js';
import { ORACLE_HELP } from '../help.js';
import type { Io } from '../io.js';
import { expandPaths, loadScenarios } from '../load.js';
import { buildRegistry, liveKernel } from '../registry.js';

function intOpt(v: unknown, name: string, lo: number, hi: number): number {
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < lo || n > hi) {
    throw new UsageError(`cowlab oracle: ${name} takes a whole number from ${lo} to ${hi}, got '${String(v)}'`);
  }
  return n;
}

/** SIGINT and SIGTERM abort `signal` while the command runs; a second one exits at once (the agent cleans up by itself). */
function interrupts(): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  const on = (sig: NodeJS.Signals): void => {
    if (ac.signal.aborted) process.exit(EXIT_INTERRUPTED);
    ac.abort(sig);
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    signal: ac.signal,
    done: () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}

function openSession(assume: Assumed): OracleSession {
  try {
    const session = OracleSession.open();
    assumeFacts(session.facilities, assume);
    return session;
  } catch (e) {
    if (e instanceof OracleUnavailable) throw new UsageError(`cowlab oracle: cannot run here: ${e.message}`);
    throw e;
  }
}

export function oracleCommand(argv: string[], io: Io): number | Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    kernel: { type: 'string' },
    profiles: { type: 'string', multiple: true },
    random: { type: 'string' },
    seed: { type: 'string' },
    ops: { type: 'string' },
    avoid: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
    'zero-page': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, 'oracle');
  if (values.help) {
    io.out(ORACLE_HELP);
    return EXIT_OK;
  }
  const zeroPage = values['zero-page'];
  if (zeroPage !== undefined && zeroPage !== 'yes' && zeroPage !== 'no') {
    throw new UsageError(`cowlab oracle: --zero-page takes yes or no, got '${String(zeroPage)}'`);
  }
  const assume = zeroPage === undefined ? {} : { zeroPage: zeroPage === 'yes' };
  const registry = buildRegistry((values.profiles ?? []) as string[]);
  const kernel = (values.kernel as string | undefined) ?? 'v6';
  const profile = liveKernel(registry, kernel, 'oracle', PROBED_SWITCHES,
    `the probe sets ${PROBED_SWITCHES.join(', ')} from what the live kernel does (they are facts of the machine, not rules of a kernel version), so a what-if of them would not be the model compared; --zero-page yes|no forces the zero page`);
  if (values.random !== undefined) {
    if (positionals.length > 0) throw new UsageError(`cowlab oracle: --random generates its scenarios; drop '${positionals[0]}'`);
    const n = intOpt(values.random, '--random', 1, 1_000_000);
    const seed = values.seed === undefined ? Date.now() % 1_000_000_007 : intOpt(values.seed, '--seed', 0, 2 ** 32 - 1);
    let ops = DEFAULT_OPS;
    if (typeof values.ops === 'string') {
      const parsed = parseOps(values.ops);
      if (typeof parsed === 'string') throw new UsageError(`cowlab oracle: --ops: ${parsed}`);
      ops = parsed;
    }
    // The model's open gaps are avoided unless --avoid names the gaps itself.
    let avoid: Gap[] = [...OPEN_GAPS];
    if (typeof values.avoid === 'string') {
      const parsed = parseGaps(values.avoid);
      if (typeof parsed === 'string') throw new UsageError(`cowlab oracle: --avoid: ${parsed}`);
      avoid = parsed;
    }
    const out = typeof values.out === 'string' ? values.out : 'oracle-failures';
    return randomMode(io, profile, n, seed, ops, avoid, out, !!values.json, !!values.quiet, assume);
  }
  for (const o of ['seed', 'ops', 'out', 'avoid'] as const) {
    if (values[o] !== undefined) throw new UsageError(`cowlab oracle: --${o} goes with --random N`);
  }
  if (positionals.length === 0) throw new UsageError('cowlab oracle: no scenario given (try: npx cowlab oracle scenarios/basic, or --random 100)');
  const scenarios = loadScenarios(expandPaths(positionals), registry);
  const session = openSession(assume);
  if (!values.json) io.out(probeHeader(session, profile));
  return filesMode(io, session, scenarios, profile, !!values.json, !!values.quiet);
}

async function filesMode(io: Io, session: OracleSession, scenarios: ReturnType<typeof loadScenarios>, profile: Profile, json: boolean, quiet: boolean): Promise<number> {
  const results: OracleResult[] = [];
  const stop = interrupts();
  try {
    for (const sc of scenarios) {
      const r = oracleScenario(session, sc, profile);
      await settle(r);
      if (stop.signal.aborted && r.status === 'error') break; // cut short by the signal
      results.push(r);
      if (!json) io.out(quiet ? `${statusWord(r).padEnd(12)}  ${sc.file}  ${countsText(r.counts)}` : `${renderOracle(r)}\n`);
      if (stop.signal.aborted) break;
    }
  } finally {
    session.close();
    stop.done();
  }
  const interrupted = stop.signal.aborted;
  const total = results.reduce((acc, r) => addCounts(acc, r.counts), ZERO_COUNTS);
  const bad = results.filter((r) => r.status === 'disagree' || r.status === 'error');
  const by = (s: string): number => results.filter((r) => r.status === s).length;
  if (json) {
    io.out(JSON.stringify({
      format: ORACLE_FORMAT, command: 'oracle', profile: profile.name, model: probedProfile(profile, session.facilities).name,
      kernel: session.facilities.kernel, interrupted, probe: probedFacts(session.facilities), facilities: session.facilities, totals: total,
      scenarios: { agree: by('agree'), disagree: by('disagree'), na: by('n/a'), skipped: by('skipped'), error: by('error') },
      results,
    }, null, 2));
  } else {
    if (interrupted) io.out(`interrupted: ${results.length} of ${scenarios.length} scenario(s) replayed`);
    io.out(`${results.length} scenario(s) on model ${probedProfile(profile, session.facilities).name} and Linux ${session.facilities.kernel}: ${by('agree')} agree, ${by('disagree')} disagree, ${by('n/a')} n/a on the model, ${by('skipped')} skipped, ${by('error')} error(s)`);
    io.out(countsText(total));
  }
  return interrupted ? EXIT_INTERRUPTED : bad.length > 0 ? EXIT_FAIL : EXIT_OK;
}

/** The header: the live kernel, what the probe found, and the model compared with it. */
function probeHeader(session: OracleSession, base: Profile): string {
  const f = session.facilities;
  const lines = [`cowlab oracle: Linux ${f.kernel}; the probe found:`];
  for (const fact of probedFacts(f)) lines.push(`  ${fact.name.padEnd(24)} ${fact.value}${fact.sets ? `  -> ${fact.sets}` : ''}`);
  lines.push(`model: ${probedProfile(base, f).name}`);
  return `${lines.join('\n')}\n`;
}

function randomMode(io: Io, profile: Profile, n: number, seed: number, ops: readonly string[], avoid: Gap[], out: string, json: boolean, quiet: boolean, assume: Assumed): Promise<number> {
  const session = openSession(assume);
  if (!json) io.out(probeHeader(session, profile));
  return randomRun(io, session, profile, n, seed, ops, avoid, out, json, quiet);
}

async function randomRun(io: Io, session: OracleSession, profile: Profile, n: number, seed: number, ops: readonly string[], avoid: Gap[], out: string, json: boolean, quiet: boolean): Promise<number> {
  const stop = interrupts();
  let summary;
  try {
    summary = await randomCampaign(session, profile, { count: n, seed, ops, avoid, outDir: out, signal: stop.signal }, json || quiet ? undefined : (line) => io.out(line));
  } finally {
    session.close();
    stop.done();
  }
  if (json) {
    io.out(JSON.stringify({
      format: ORACLE_FORMAT, command: 'oracle', mode: 'random', profile: profile.name, model: probedProfile(profile, session.facilities).name,
      kernel: session.facilities.kernel, probe: probedFacts(session.facilities), ...summary,
    }, null, 2));
  } else {
    if (summary.interrupted) io.out(`interrupted: ${summary.scenarios + summary.invalid} of ${n} scenario(s) generated`);
    io.out(`${summary.scenarios} random scenario(s), seed ${seed}${avoid.length ? ` (avoiding ${avoid.join(', ')})` : ''}, on model ${probedProfile(profile, session.facilities).name} and Linux ${session.facilities.kernel}: ` +
      `${summary.agree} agree, ${summary.disagree} disagree, ${summary.errors} error(s), ${summary.skipped} skipped, ${summary.invalid} not generated validly`);
    for (const why of summary.skipReasons) io.out(`  skipped: ${why}`);
    io.out(countsText(summary.counts));
    for (const f of summary.failures) io.out(`  ${f.status}: ${f.file} (${f.steps} step(s), shrunk from ${f.originalSteps}): ${f.first}`);
    if (summary.modelViolations > 0) io.out(`note: the model itself reported violations in ${summary.modelViolations} generated scenario(s)`);
  }
  if (summary.interrupted) return EXIT_INTERRUPTED;
  return summary.disagree + summary.errors > 0 ? EXIT_FAIL : EXIT_OK;
}
