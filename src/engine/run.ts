// Runs a scenario on the model under one profile, beside the ideal semantics, and judges it.
// The Runner steps through the scenario; each step runs what its declaration (src/ops) names:
// functions of cpu.ts, handles.ts, grants.ts, mm-ops.ts, expect.ts and scheduler.ts (paths split
// into steps, the mmap lock). The record's events and snapshots are snapshot.ts's, the checks
// src/check's, the verdict judge.ts's.

import type { Kernel } from '../core/kernel.js';
import type { Profile } from '../core/profile.js';
import type { IdealMemory } from '../check/ideal.js';
import type { PinnedHandle } from '../check/pins.js';
import type { Expected, Scenario, Step } from '../scenario/ast.js';
import { judge } from './judge.js';
import { RESULT_FORMAT_VERSION, type RunResult, type StepRecord, type Violation } from './result.js';
import { globalStats } from './stats.js';
import type { ValueTable } from './values.js';
import { allStats } from './expect.js';
import { grantTouchedOf } from './grants.js';
import { exitProc } from './mm-ops.js';
import { finishTask, heldByTasks, startAsync } from './scheduler.js';
import { declOf } from '../ops/index.js';
import { collectEvents, traceChanges } from './snapshot.js';
import { emptyRecord, resetRecord, type LiveHandle, NotApplicable, type Proc, type RunOptions, RunState } from './state.js';
import { drainUffd } from './uffd.js';

export type { LiveHandle, Proc, RunOptions } from './state.js';

export class Runner {
  private s: RunState;

  /** `s`: clone()'s copy of the state (a copy is constructed too: the hidden class of a constructed Runner). */
  constructor(scenario: Scenario, profile: Profile, opts: RunOptions = {}, s?: RunState) {
    this.s = s ?? new RunState(scenario, profile, opts);
  }

  // ---- what other modules read -----------------------------------------------------------------

  get scenario(): Scenario { return this.s.scenario; }
  get profile(): Profile { return this.s.profile; }
  /** The model. Tests may change it to inject a fault; other readers only read it. */
  get k(): Kernel { return this.s.k; }
  /** The ideal memory (what a program may rely on). */
  get ideal(): IdealMemory { return this.s.ideal; }
  /** Value names and ids. */
  get values(): ValueTable { return this.s.values; }
  /** The threads by name (a process is its first thread). */
  get procs(): ReadonlyMap<string, Proc> { return this.s.procs; }
  /** The live handles (GUP references, pins, device grants) by name. */
  get handles(): ReadonlyMap<string, LiveHandle> { return this.s.handles; }
  /** Every violation found so far. */
  get violations(): readonly Violation[] { return this.s.violations; }
  /** The thread whose kernel path is taking a step right now (for the web page's event names), else null. */
  get acting(): string | null { return this.s.acting; }
  /** Which pages of a grant the owner's CPU touched (for the explorer's state keys). */
  grantTouchedOf(name: string): Uint8Array | undefined { return grantTouchedOf(this.s, name); }

  /**
   * A deep copy of the whole state, for the explorer. The scenario and options are shared. With
   * `dst` (a copy no longer needed), it is the copy: its object and its kernel's typed arrays are reused.
   */
  clone(dst?: Runner): Runner {
    const s = this.s.clone(dst?.s);
    if (dst === undefined || dst === this) return new Runner(s.scenario, s.profile, s.opts, s);
    dst.s = s;
    return dst;
  }

  // ---- running -------------------------------------------------------------------------------

  /**
   * Run one step (its index names it in violations): execute, check pin coherence and the
   * accounting invariants. Returns the record, and the n/a reason when the profile lacks it.
   * With `accounting` false the accounting invariants, a function of the state alone, are left
   * to the caller's checkInvariants() (the explorer checks each state once, not per transition).
   */
  step(step: Step, i: number, accounting = true): { record: StepRecord; na: string | null } {
    const s = this.s;
    s.stepIndex = i;
    s.record = s.opts.reuseRecord ? resetRecord(s.record, i, step.pos.line, step.pos.col, step.text) : emptyRecord(i, step.pos.line, step.pos.col, step.text);
    let na: string | null = null;
    try {
      exec(s, step);
    } catch (e) {
      if (!(e instanceof NotApplicable)) throw e;
      s.record.summary = `n/a on ${s.profile.name}: ${e.message}`;
      na = e.message;
    }
    drainUffd(s);
    if (na === null) checkPins(s);
    collectEvents(s);
    if (s.changesBase !== null) traceChanges(s, declOf(step.op).observing === true);
    if (na === null && accounting && (s.opts.checkEveryStep ?? true)) checkAccounting(s, false, true);
    if (s.opts.countersEveryStep) s.record.counters = allStats(s);
    return { record: s.record, na };
  }

  /** The accounting invariants step() left out (`accounting` false), on the state the last step left. */
  checkInvariants(): void {
    if (this.s.opts.checkEveryStep ?? true) checkAccounting(this.s, false);
  }

  /** The end-of-scenario checks (every process exits; frame leaks). Mutates: call on a clone to keep going. */
  end(): StepRecord {
    const steps: StepRecord[] = [];
    this.finish(steps);
    return steps[0]!;
  }

  run(): RunResult {
    const t0 = performance.now();
    const steps: StepRecord[] = [];
    let na: RunResult['na'] = null;
    const s = this.s;
    const sc = s.scenario;
    for (let i = 0; i < sc.steps.length; i++) {
      const step = sc.steps[i]!;
      const r = this.step(step, i);
      steps.push(r.record);
      if (r.na !== null) {
        na = { step: i, line: step.pos.line, reason: r.na };
        break;
      }
    }
    const stats = globalStats(s.k);
    if (na === null) this.finish(steps);
    const status = na !== null ? 'n/a' : s.violations.length > 0 ? 'violation' : 'ok';
    const expected = expectedFor(sc, s.profile.name);
    const { verdict, reason } = judge(status, s.violations, expected);
    return {
      format: RESULT_FORMAT_VERSION,
      file: sc.file,
      scenario: sc.name,
      profile: s.profile.name,
      status,
      na,
      steps,
      violations: s.violations,
      stats,
      expected,
      verdict,
      verdictReason: reason,
      elapsedMs: performance.now() - t0,
    };
  }

  /** After the last step: every remaining process exits; no frame may be left in use but by handles. */
  private finish(steps: StepRecord[]): void {
    const s = this.s;
    const alive = [...s.procs.values()].filter((p) => p.alive);
    s.stepIndex = -1;
    s.record = emptyRecord(steps.length, 0, 0, '(end)');
    for (const p of alive) if (p.task) finishTask(s, p);
    for (const p of alive) exitProc(s, p);
    collectEvents(s);
    traceChanges(s, false);
    checkAccounting(s, true, true);
    s.record.summary = alive.length > 0
      ? `end of scenario: ${alive.map((p) => p.name).join(', ')} exit; ${s.k.frames.used} frame(s) still in use`
      : `end of scenario: ${s.k.frames.used} frame(s) still in use`;
    steps.push(s.record);
  }
}

/** One step on the model and the ideal memory: its declaration's `run` (or, with `&`, its `start`). */
function exec(s: RunState, step: Step): void {
  const d = declOf(step.op);
  if ('async' in step && step.async) return startAsync(s, step, d.start);
  d.run(s, step);
}

/** Pin coherence and pinned pages' exclusivity (src/check/pins.ts). */
function checkPins(s: RunState): void {
  if (s.handles.size === 0) return;
  // The handles as the checker sees them, in objects reused from step to step (it reads them at
  // once); by name, then looked up: no entry pair is made per handle and step.
  let n = 0;
  for (const name of s.handles.keys()) {
    const hs = s.handles.get(name)!;
    const p = s.procs.get(hs.proc);
    const o = (pinned[n++] ??= { name, h: hs.h, holder: '', mm: null });
    o.name = name;
    o.h = hs.h;
    o.holder = p?.name ?? hs.proc;
    o.mm = p?.alive ? p.mm : null;
  }
  if (pinned.length !== n) pinned.length = n;
  for (const v of s.pins.check(s.k, pinned, s.ideal)) s.violation(v.kind, v.message, [v.proc], v.frames);
}
const pinned: PinnedHandle[] = [];

/**
 * The accounting invariants (src/check/accounting.ts). `incremental`: the checker keeps the
 * tables' counts from the last check and reads only what was written since (a run's steps); the
 * explorer's checkInvariants() checks states it copies in turn, each from scratch.
 */
function checkAccounting(s: RunState, final: boolean, incremental = false): void {
  const problems = s.checker.check(s.k, final, heldByTasks(s, held), incremental);
  for (let i = 0; i < problems.length; i++) {
    const p = problems[i]!;
    s.violation(p.kind, p.message, p.mm >= 0 ? [s.mmNames[p.mm] ?? '?'] : [], p.pfn >= 0 ? [p.pfn] : []);
  }
}

/** heldByTasks()'s triples, reused from check to check. */
const held: number[] = [];

export function expectedFor(sc: Scenario, profile: string): Expected | null {
  return sc.outcomes.get(profile)?.expected ?? sc.outcomes.get('*')?.expected ?? null;
}

/** Run one scenario on one profile. */
export function runScenario(sc: Scenario, profile: Profile, opts: RunOptions = {}): RunResult {
  return new Runner(sc, profile, opts).run();
}
