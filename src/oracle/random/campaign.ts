// `cowlab oracle --random N`: generated scenarios, expectations from the model, replayed on the
// kernel; every disagreement is shrunk and written out as a replayable scenario file.
// The campaign gives the event loop a turn after every replay, so that a signal handler can
// stop it (opts.signal): it then ends with what it found so far, failures written as they are.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Profile } from '../../core/profile.js';
import { probedProfile } from '../probed.js';
import { oracleScenario, type OracleCounts, type OracleResult, type OracleRow } from '../oracle.js';
import { addCounts, ZERO_COUNTS } from '../report.js';
import type { OracleSession } from '../session.js';
import type { Facilities } from '../facilities.js';
import { fillFromModel, type Filled, scenarioText } from './expect.js';
import { type Gap, generateLines, type GenLine } from './generate.js';
import { rngFrom, scenarioSeed } from './rng.js';
import { shrinker } from './shrink.js';

export interface CampaignOptions {
  count: number;
  seed: number;
  ops: readonly string[];
  /** Known model gaps not to generate. */
  avoid: readonly Gap[];
  /** Where disagreeing scenarios are written (created when needed); null: not written. */
  outDir: string | null;
  /** Once aborted, the campaign stops after the replay in flight (which is not counted if the signal cut it short). */
  signal?: AbortSignal;
}

export interface CampaignFailure {
  name: string;
  file: string | null;
  status: 'disagree' | 'error';
  steps: number;
  originalSteps: number;
  /** The first disagreement (or the error), in a sentence. */
  first: string;
}

export interface CampaignSummary {
  seed: number;
  avoid: readonly Gap[];
  scenarios: number;
  agree: number;
  disagree: number;
  errors: number;
  /** Scenarios the live kernel could not replay here (e.g. `could not reserve N huge page(s)`): not compared, not failures. */
  skipped: number;
  /** The distinct reasons for them (at most 10). */
  skipReasons: string[];
  /** Generated lines that did not make a valid scenario (a generator bug if ever non-zero). */
  invalid: number;
  invalidReasons: string[];
  /** Scenarios in which the model itself reported a violation. */
  modelViolations: number;
  counts: OracleCounts;
  failures: CampaignFailure[];
  /** Stopped by opts.signal: fewer scenarios than asked, or the last shrink cut short. */
  interrupted: boolean;
}

/** A turn of the event loop: signal handlers run in it. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * After a replay: a turn of the event loop, and after a failed replay a short wait too. A Ctrl-C
 * reaches the agent and the scenario's processes as well, and the replay can fail at a process
 * they took with them before this process's handler has run: the wait lets the handler say so.
 */
export async function settle(r: { status: string }): Promise<void> {
  await turn();
  if (r.status === 'error') await new Promise((resolve) => setTimeout(resolve, 100));
}

/** A replay the signal cut short: an error (the agent got the signal too), seen after the turn that ran the handler. */
function cutShort(signal: AbortSignal | undefined, r: OracleResult): boolean {
  return !!signal?.aborted && r.status === 'error';
}

function firstProblem(r: OracleResult): { sig: string; text: string } {
  if (r.status === 'error') return { sig: 'error', text: r.error ?? 'error' };
  for (const s of r.steps) {
    const row: OracleRow | undefined = s.rows.find((x) => x.verdict === 'disagree');
    if (row) return { sig: row.kind, text: `\`${s.text}\`: model ${row.model ?? '—'}, kernel ${row.kernel ?? '—'}` };
  }
  return { sig: 'none', text: '' };
}

/**
 * The generated lines with the config the live machine stands for (the model fills the
 * expectations with it, and a written failure replays with it): KSM's use_zero_pages when on.
 */
function withLiveConfig(lines: GenLine[], f: Facilities): GenLine[] {
  return f.ksm?.useZeroPages === true ? [...lines, { text: 'ksm_use_zero_pages: 1', fill: 'none', config: true }] : lines;
}

export async function randomCampaign(session: OracleSession, base: Profile, opts: CampaignOptions, progress?: (line: string) => void): Promise<CampaignSummary> {
  // Scenarios are filled from, and compared with, the model of what the probe found.
  const profile = probedProfile(base, session.facilities);
  const sum: CampaignSummary = {
    seed: opts.seed, avoid: opts.avoid, scenarios: 0, agree: 0, disagree: 0, errors: 0, skipped: 0, skipReasons: [], invalid: 0, invalidReasons: [], modelViolations: 0,
    counts: ZERO_COUNTS, failures: [], interrupted: false,
  };
  const signal = opts.signal;
  // A profile without PG_anon_exclusive answers n/a to anon-exclusive checks.
  const ops = profile.anonExclusive ? opts.ops : opts.ops.filter((o) => o !== 'expect-exclusive');
  for (let i = 0; i < opts.count; i++) {
    if (signal?.aborted) break;
    const name = `random-${opts.seed}-${i}`;
    const file = opts.outDir ? join(opts.outDir, `${name}.scn.yaml`) : `${name}.scn.yaml`;
    const description = `Generated by cowlab oracle --random (seed ${opts.seed}, scenario ${i}); every expectation is what the model (${profile.name}) observes.`;
    const lines = withLiveConfig(generateLines(rngFrom(scenarioSeed(opts.seed, i)), ops, opts.avoid), session.facilities);
    const filled = fillFromModel(lines, profile, name, description, file);
    if (typeof filled === 'string') {
      sum.invalid++;
      if (sum.invalidReasons.length < 10) sum.invalidReasons.push(`${name}: ${filled}`);
      continue;
    }
    const r = oracleScenario(session, filled.scenario, profile, { model: filled.model });
    await settle(r);
    if (cutShort(signal, r)) break;
    sum.scenarios++;
    if (filled.model.violations.length > 0) sum.modelViolations++;
    sum.counts = addCounts(sum.counts, r.counts);
    if (r.status === 'skipped') {
      sum.skipped++;
      const why = r.skip ?? 'skipped';
      if (sum.skipReasons.length < 10 && !sum.skipReasons.includes(why)) sum.skipReasons.push(why);
    } else if (r.status === 'agree' || r.status === 'n/a') sum.agree++;
    else {
      if (r.status === 'disagree') sum.disagree++;
      else sum.errors++;
      sum.failures.push(await record(session, profile, filled, r, name, description, file, opts.outDir, signal));
      progress?.(`  ${r.status}: ${name}: ${sum.failures[sum.failures.length - 1]!.first}`);
    }
    if (progress && (i + 1) % 100 === 0 && i + 1 < opts.count) {
      progress(`  ${i + 1}/${opts.count}: ${sum.agree} agree, ${sum.disagree} disagree, ${sum.errors} error(s)`);
    }
  }
  sum.interrupted = !!signal?.aborted;
  return sum;
}

/** Shrinks a failing scenario (until the signal, if it comes first) and writes it out. */
async function record(
  session: OracleSession, profile: Profile, filled: Filled, r: OracleResult,
  name: string, description: string, file: string, outDir: string | null, signal: AbortSignal | undefined,
): Promise<CampaignFailure> {
  const want = firstProblem(r);
  let best: { filled: Filled; result: OracleResult } = { filled, result: r };
  // The last candidate that still failed is the shrunk scenario: keep its filled text and result.
  const shrink = shrinker(filled.lines);
  for (let step = shrink.next(); !step.done && !signal?.aborted; ) {
    const cand: GenLine[] = step.value;
    const f = fillFromModel(cand, profile, name, description, file);
    const res = typeof f === 'string' ? null : oracleScenario(session, f.scenario, profile, { model: f.model });
    await turn();
    if (signal?.aborted) break;
    const fails = res !== null && typeof f !== 'string' && firstProblem(res).sig === want.sig;
    if (fails) best = { filled: f, result: res };
    step = shrink.next(fails);
  }
  const first = firstProblem(best.result);
  let written: string | null = null;
  if (outDir !== null) {
    mkdirSync(outDir, { recursive: true });
    const note = `${description}\nThe live kernel (${session.facilities.kernel}) disagrees: ${first.text}.\nShrunk from ${filled.lines.length} to ${best.filled.lines.length} steps${signal?.aborted ? ' (the shrinking was cut short by a signal)' : ''}. Replay: npx cowlab oracle ${file}`;
    writeFileSync(file, scenarioText(name, note, best.filled.texts, profile.name, best.filled.config));
    written = file;
  }
  return {
    name, file: written, status: r.status === 'error' ? 'error' : 'disagree',
    steps: best.filled.lines.length, originalSteps: filled.lines.length, first: first.text,
  };
}
