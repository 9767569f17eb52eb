// The fuzz campaign: random scenarios over every operation (generate.ts), parsed and run on the
// model directly (no CLI), on every built-in profile. An internal error anywhere (the parser
// throwing or rejecting a generated scenario, the runner throwing, a result the report or the
// JSON output cannot render) fails the property, and fast-check shrinks the program to a
// minimal scenario, printed whole. On v6, without a frames limit, a violation other than a
// failed `expect` fails it too: the newest kernel keeps every promise of the ideal semantics.
//
// Used by test/engine/fuzz-campaign.test.ts (a bounded run in `npm test`) and by
// bench/fuzz.ts (`npm run fuzz -- --count N`, the long mode).

import fc from 'fast-check';
import { renderRun } from '../../src/cli/report.js';
import type { Profile } from '../../src/core/profile.js';
import type { RunResult } from '../../src/engine/result.js';
import { runScenario } from '../../src/engine/run.js';
import { BUILTIN_PROFILES } from '../../src/profiles/builtin.js';
import { parseScenario, VIOLATION_KINDS } from '../../src/scenario/index.js';
import { type Program, programArb, programText } from './generate.js';

export interface CampaignOptions {
  /** Scenarios to generate. */
  count: number;
  seed: number;
  /** Run each scenario on every profile (true), or on one, in turn (false). */
  everyProfile: boolean;
  /** Most steps a scenario has. */
  maxSteps?: number;
  /** The profiles (default: every built-in one). */
  profiles?: readonly Profile[];
  /** Violation kinds that fail the campaign too, on any profile (to find and shrink one: `--fail-on`). */
  failOn?: readonly string[];
  /** Called after each chunk of scenarios. */
  progress?: (done: number, stats: CampaignStats) => void;
}

export interface CampaignStats {
  scenarios: number;
  runs: number;
  /** Runs per status. */
  status: Record<string, number>;
  /** Runs with each violation kind, per profile. */
  kinds: Record<string, Record<string, number>>;
}

/** A failure of the model or the parser on one scenario (an internal error, not a violation). */
export class InternalError extends Error {}

/** The profile on which no scenario may break the ideal semantics (the newest behaviour modelled). */
const CLEAN_PROFILE = 'v6';
const STATUSES = new Set(['ok', 'violation', 'n/a']);
const KINDS = new Set<string>(VIOLATION_KINDS);

/** Everything a command does with a run's result: the text report and the JSON. */
function render(r: RunResult, profile: Profile): void {
  if (!STATUSES.has(r.status)) throw new InternalError(`status '${String(r.status)}'`);
  if (r.verdict !== 'pass' && r.verdict !== 'fail') throw new InternalError(`verdict '${String(r.verdict)}'`);
  for (const v of r.violations) if (!KINDS.has(v.kind)) throw new InternalError(`violation kind '${v.kind}'`);
  renderRun(r, profile, 'frames=? pin_bias=?', { trace: true, stats: true, description: null });
  JSON.stringify(r);
}

/**
 * Parses the program's scenario and runs it on `profiles`; throws an InternalError (with the
 * scenario) on any internal error. Returns the results.
 */
export function checkProgram(prog: Program, profiles: readonly Profile[], traceEvery = 8, failOn: readonly string[] = []): RunResult[] {
  const text = programText(prog);
  const fail = (what: string, e?: unknown): never => {
    const why = e instanceof Error ? (e.stack ?? e.message) : e === undefined ? '' : String(e);
    throw new InternalError(`${what}${why ? `: ${why}` : ''}\n--- scenario ---\n${text}`);
  };
  let parsed;
  try {
    parsed = parseScenario(text, 'fuzz.scn.yaml');
  } catch (e) {
    return fail('parseScenario threw', e);
  }
  if (!parsed.ok) {
    // A mutated program may be refused, with errors inside the file; an unmutated one must parse.
    const lines = text.split('\n').length;
    const outside = parsed.errors.filter((e) => e.line < 1 || e.line > lines || e.col < 1 || e.message.includes('\n'));
    if (prog.mutations.length === 0 || outside.length > 0) {
      return fail(`the generated scenario does not parse:\n${parsed.errors.map((e) => e.format()).join('\n')}`);
    }
    return [];
  }
  const out: RunResult[] = [];
  profiles.forEach((profile, i) => {
    // The trace (events, frames, PTEs per step) costs time: one run in `traceEvery` records it.
    const trace = (prog.steps.length + i) % traceEvery === 0;
    let r: RunResult;
    try {
      r = runScenario(parsed.scenario, profile, { trace });
      render(r, profile);
    } catch (e) {
      return fail(`internal error on ${profile.name}`, e);
    }
    // v6 stays clean: without a frames limit (no OOM), only the scenario's own `expect`s may fail.
    const dirty = r.violations.filter((v) => v.kind !== 'expect');
    if (profile.name === CLEAN_PROFILE && prog.frames === null && dirty.length > 0) {
      return fail(`a violation on ${CLEAN_PROFILE}, which must stay clean: ${dirty.map((v) => `L${v.line} ${v.kind}: ${v.message}`).join('; ')}`);
    }
    const asked = r.violations.filter((v) => failOn.includes(v.kind));
    if (asked.length > 0) return fail(`${asked[0]!.kind} on ${profile.name} (--fail-on): ${asked.map((v) => `L${v.line} ${v.kind}: ${v.message}`).join('; ')}`);
    out.push(r);
  });
  return out;
}

function count(stats: CampaignStats, results: RunResult[]): void {
  for (const r of results) {
    stats.runs++;
    stats.status[r.status] = (stats.status[r.status] ?? 0) + 1;
    for (const k of new Set(r.violations.map((v) => v.kind))) {
      const per = (stats.kinds[r.profile] ??= {});
      per[k] = (per[k] ?? 0) + 1;
    }
  }
}

const CHUNK = 1000;

/**
 * Runs the campaign; throws (fast-check's report: the seed, the path, the shrunk program and
 * its scenario text) on the first internal error.
 */
export function runCampaign(opts: CampaignOptions): CampaignStats {
  const stats: CampaignStats = { scenarios: 0, runs: 0, status: {}, kinds: {} };
  const arb = programArb(opts.maxSteps);
  const profiles = opts.profiles ?? BUILTIN_PROFILES;
  for (let done = 0, chunk = 0; done < opts.count; chunk++) {
    const n = Math.min(CHUNK, opts.count - done);
    const seed = (opts.seed + chunk * 7919) | 0;
    // The profile of a one-profile run is part of the generated value, so that shrinking keeps it.
    fc.assert(
      fc.property(arb, fc.nat({ max: profiles.length - 1 }), (prog, pi) => {
        count(stats, checkProgram(prog, opts.everyProfile ? profiles : [profiles[pi]!], 8, opts.failOn));
        stats.scenarios++;
      }),
      { seed, numRuns: n, endOnFailure: false, includeErrorInReport: true },
    );
    done += n;
    opts.progress?.(done, stats);
  }
  return stats;
}
