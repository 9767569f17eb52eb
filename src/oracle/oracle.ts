// One scenario on the model and on the live kernel, step by step: the model's observations
// paired with the kernel's, each agreeing, disagreeing, or skipped with the reason.

import type { Profile } from '../core/profile.js';
import type { Observation, RunResult } from '../engine/result.js';
import { runScenario } from '../engine/run.js';
import type { Scenario } from '../scenario/index.js';
import type { OracleSession } from './session.js';
import type { KernelStep } from './types.js';

export const ORACLE_FORMAT = 1;

export type Verdict = 'agree' | 'disagree' | 'skipped';

export interface OracleRow {
  kind: string;
  what: string;
  /** The model's answer (null: the model made no such observation). */
  model: string | null;
  /** The kernel's answer (null: not observed). */
  kernel: string | null;
  verdict: Verdict;
  /** Why skipped, or what the disagreement is. */
  reason: string | null;
}

export interface OracleStep {
  index: number;
  line: number;
  text: string;
  /** The model's one-sentence summary of the step. */
  model: string;
  /** What the helper did. */
  kernel: string;
  /** Why the kernel did not replay this step. */
  skip: string | null;
  rows: OracleRow[];
}

export interface OracleCounts {
  steps: number;
  compared: number;
  agree: number;
  disagree: number;
  skipped: number;
}

export type OracleStatus = 'agree' | 'disagree' | 'n/a' | 'error';

export interface OracleResult {
  format: number;
  file: string;
  scenario: string;
  profile: string;
  kernel: string;
  /** agree: every comparable observation agrees; n/a: the model is n/a from some step on (the steps before are compared). */
  status: OracleStatus;
  na: { step: number; line: number; reason: string } | null;
  error: string | null;
  /** How the model run differs from `cowlab run` (model-only limits dropped). */
  notes: string[];
  /** Violations the model reports on this run (the oracle compares observations, not verdicts). */
  modelViolations: number;
  steps: OracleStep[];
  counts: OracleCounts;
}

/** The scenario as the model runs it for the oracle: without limits the kernel cannot have. */
export function withoutModelLimits(sc: Scenario, notes: string[]): Scenario {
  if (sc.config.frames === null && sc.config.pinBias === null) return sc;
  if (sc.config.frames !== null) notes.push(`config.frames (${sc.config.frames}) limits the model only: both sides run without it here`);
  if (sc.config.pinBias !== null) notes.push(`config.pin_bias (${sc.config.pinBias}) is the model's: the kernel's GUP_PIN_COUNTING_BIAS is 1024, so the model runs with 1024 here`);
  return { ...sc, config: { frames: null, pinBias: null } };
}

function pair(m: Observation[], k: KernelStep): OracleRow[] {
  const rows: OracleRow[] = [];
  const n = Math.max(m.length, k.observations.length);
  for (let i = 0; i < n; i++) {
    const mo = m[i];
    const ko = k.observations[i];
    if (mo && ko) {
      const skip = ko.skip ?? (ko.actual === null ? 'not observed on the kernel' : null);
      const same = mo.kind === ko.kind && mo.what === ko.what && mo.actual === ko.actual;
      rows.push({
        kind: mo.kind, what: mo.what, model: mo.actual, kernel: ko.actual,
        verdict: skip !== null ? 'skipped' : same ? 'agree' : 'disagree',
        reason: skip ?? (same ? null : mo.what !== ko.what ? `the kernel observed ${ko.what}` : null),
      });
    } else if (mo) {
      rows.push({
        kind: mo.kind, what: mo.what, model: mo.actual, kernel: null,
        verdict: k.skip !== null ? 'skipped' : 'disagree',
        reason: k.skip ?? 'the kernel made no such observation',
      });
    } else if (ko) {
      rows.push({
        kind: ko.kind, what: ko.what, model: null, kernel: ko.actual,
        verdict: ko.skip !== null ? 'skipped' : 'disagree',
        reason: ko.skip ?? 'the model made no such observation',
      });
    }
  }
  return rows;
}

export interface OracleOptions {
  /** A model run already made (same scenario without model limits, same profile). */
  model?: RunResult;
}

/** Runs one scenario on the model and on the kernel and pairs their observations. */
export function oracleScenario(session: OracleSession, sc: Scenario, profile: Profile, opts: OracleOptions = {}): OracleResult {
  const notes: string[] = [];
  const msc = withoutModelLimits(sc, notes);
  const model = opts.model ?? runScenario(msc, profile, { trace: false, maxEventsPerStep: 0 });
  const count = model.na !== null ? model.na.step : sc.steps.length;
  const kernel = session.replay(sc, count);
  const steps: OracleStep[] = [];
  const counts: OracleCounts = { steps: count, compared: 0, agree: 0, disagree: 0, skipped: 0 };
  for (let i = 0; i < count; i++) {
    const step = sc.steps[i]!;
    const mrec = model.steps[i];
    const krec = kernel.steps[i] ?? { index: i, observations: [], note: '', skip: 'not replayed' };
    const rows = pair(mrec?.observations ?? [], krec);
    for (const r of rows) {
      if (r.verdict === 'skipped') counts.skipped++;
      else {
        counts.compared++;
        if (r.verdict === 'agree') counts.agree++;
        else counts.disagree++;
      }
    }
    steps.push({ index: i, line: step.pos.line, text: step.text, model: mrec?.summary ?? '', kernel: krec.note, skip: krec.skip, rows });
  }
  const status: OracleStatus = kernel.error !== null ? 'error' : counts.disagree > 0 ? 'disagree' : model.na !== null ? 'n/a' : 'agree';
  return {
    format: ORACLE_FORMAT,
    file: sc.file,
    scenario: sc.name,
    profile: profile.name,
    kernel: session.facilities.kernel,
    status,
    na: model.na,
    error: kernel.error,
    notes,
    modelViolations: model.violations.length,
    steps,
    counts,
  };
}
