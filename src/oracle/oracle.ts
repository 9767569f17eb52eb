// One scenario on the model and on the live kernel, step by step: the model's observations
// paired with the kernel's, each agreeing, disagreeing, or skipped with the reason.
//
// After a swapout and a ksm merge the oracle also compares what the model's record has no
// observation for: which pages of the range are swapped out, which scenario pages are KSM
// pages. Their model side is read from the model's own page tables and frames, on a second
// run of the model stepped beside the first (only for scenarios with such steps).

import { HPAGE_PMD_NR, PG_INUSE, PG_KSM, PG_LARGE, PG_SWAPCACHE, PTE_PRESENT, PTE_SPECIAL, PTE_SWAP } from '../core/constants.js';
import { followSlot } from '../core/huge.js';
import type { Mm } from '../core/mm.js';
import type { Profile } from '../core/profile.js';
import { pteSlot } from '../core/walk.js';
import type { RunResult, StepRecord } from '../engine/result.js';
import { Runner, runScenario } from '../engine/run.js';
import type { PageSel, Scenario, Step } from '../scenario/index.js';
import { pageList, pageStates, label } from './names.js';
import { missingFacility, probedProfile } from './probed.js';
import type { OracleSession } from './session.js';
import { OracleError } from './agent.js';
import { hugetlbPoolFor } from './hugetlb.js';
import type { Facilities } from './facilities.js';
import { modelHugeMap, thpPlan, usesThp } from './thp.js';
import type { KernelStep, ModelHandle, ModelRow } from './types.js';
import { declOf } from '../ops/index.js';

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

export type OracleStatus = 'agree' | 'disagree' | 'n/a' | 'skipped' | 'error';

export interface OracleResult {
  format: number;
  file: string;
  scenario: string;
  profile: string;
  kernel: string;
  /**
   * agree: every comparable observation agrees; n/a: the model is n/a from some step on (the
   * steps before are compared); skipped: the scenario's point needs a facility this kernel lacks.
   */
  status: OracleStatus;
  /** Why the whole scenario was skipped (status `skipped`). */
  skip: string | null;
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
  const pool = hugetlbPoolFor(sc);
  if (pool !== null && sc.config.hugepages == null) notes.push(`the live hugetlb pool is set to ${pool} free huge page(s), enough for the scenario (the model's is unlimited)`);
  if (sc.config.frames === null && sc.config.pinBias === null) return sc;
  if (sc.config.frames !== null) notes.push(`config.frames (${sc.config.frames}) limits the model only: both sides run without it here`);
  if (sc.config.pinBias !== null) notes.push(`config.pin_bias (${sc.config.pinBias}) is the model's: the kernel's GUP_PIN_COUNTING_BIAS is 1024, so the model runs with 1024 here`);
  return { ...sc, config: { ...sc.config, frames: null, pinBias: null, thp: sc.config.thp ?? null, hugepages: sc.config.hugepages ?? null } };
}

/**
 * The scenario with the live kernel's KSM use_zero_pages as its config.ksm_use_zero_pages: the
 * model merges pages of zeros as ksmd here does (the oracle leaves the machine's setting as it is).
 */
export function withLiveKsmZeroPages(sc: Scenario, f: Facilities, notes: string[]): Scenario {
  const live = f.ksm?.useZeroPages === true ? 1 : 0;
  // Only ksmd reads it: a scenario without a ksm merge runs as written.
  if ((sc.config.ksmUseZeroPages ?? 0) === live || !sc.steps.some((s) => s.op === 'ksm-merge')) return sc;
  if (sc.config.ksmUseZeroPages != null) notes.push(`config.ksm_use_zero_pages is ${sc.config.ksmUseZeroPages}, this machine's /sys/kernel/mm/ksm/use_zero_pages ${live}: the model runs with ${live}`);
  return { ...sc, config: { ...sc.config, ksmUseZeroPages: live } };
}

/** An observation of the model, as paired with the kernel's. */
interface ModelObs {
  kind: string;
  what: string;
  actual: string;
}

/** What the model's second run says after a step. */
export interface ModelProbe {
  /** Observations of the kinds the model's record does not have (swap, ksm). */
  extra: ModelObs[];
  /** Frames the model keeps in the swap cache that no process maps and no handle holds. */
  hiddenSwapCache: number;
  /** Pages of partially mapped large folios that nothing maps (awaiting a deferred split). */
  hiddenLarge: number;
  /** The model's huge PMDs per `PROC REGION` (THP scenarios only). */
  huge: Map<string, string> | null;
  /** What the model holds after a step that takes a handle (when asked for: probeModel's `handles`). */
  handle: ModelHandle | null;
}

function isSwapout(step: Step): step is Extract<Step, { op: 'swapout' }> | Extract<Step, { op: 'madvise' }> {
  return step.op === 'swapout' || (step.op === 'madvise' && step.advice === 'pageout');
}

/** Per page of the range: swapped (a swap entry), present, or not mapped, in the model. */
function modelSwapRow(run: Runner, proc: string, sel: PageSel): ModelObs | null {
  const p = run.procs.get(proc);
  const r = p?.regions.get(sel.region);
  if (!p || !p.alive || !r) return null;
  const k = run.k;
  const states: string[] = [];
  for (let i = sel.lo; i <= sel.hi; i++) {
    // A page a huge PMD maps is present (followSlot finds the PMD leaf).
    const slot = followSlot(k, p.mm, r.start + i);
    const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
    states.push(bits & PTE_SWAP ? 'swapped' : bits & PTE_PRESENT ? 'present' : 'not mapped');
  }
  return { kind: 'swap', what: `${proc} ${label(sel)}`, actual: pageStates(sel.region, sel.lo, states) };
}

/** The scenario pages that map a KSM page in the model, by process (one name per address space). */
function modelKsmRow(run: Runner): ModelObs {
  const k = run.k;
  const seen = new Set<Mm>();
  const pages: { proc: string; region: string; index: number }[] = [];
  for (const p of run.procs.values()) {
    if (!p.alive || seen.has(p.mm)) continue;
    seen.add(p.mm);
    for (const [region, r] of p.regions) {
      for (let i = 0; i < r.n; i++) {
        const slot = pteSlot(k, p.mm, r.start + i);
        if (slot < 0) continue;
        const bits = k.tables.bits[slot]!;
        if (bits & PTE_PRESENT && !(bits & PTE_SPECIAL) && k.frames.flags[k.tables.entry[slot]!]! & PG_KSM) pages.push({ proc: p.group, region, index: i });
      }
    }
  }
  return { kind: 'ksm', what: 'KSM pages', actual: pageList(pages) };
}

/**
 * Pages of large folios still allocated that no PTE maps while no PMD maps their folio: the
 * kernel keeps them until a deferred split (deferred_split_folio), and pagemap cannot see them.
 */
function hiddenLarge(run: Runner): number {
  const f = run.k.frames;
  let n = 0;
  for (let head = HPAGE_PMD_NR; head < f.top; head += HPAGE_PMD_NR) {
    if (!(f.flags[head]! & PG_LARGE) || !(f.flags[head]! & PG_INUSE) || f.entireMapcount[head >>> 9]! > 0) continue;
    for (let p = head; p < head + HPAGE_PMD_NR; p++) if (f.mapcount[p] === 0) n++;
  }
  return n;
}

function hiddenSwapCache(run: Runner): number {
  const f = run.k.frames;
  const held = new Set<number>();
  for (const h of run.k.handles) if (!h.released) for (const pfn of h.frames) held.add(pfn);
  let n = 0;
  for (let pfn = 1; pfn < f.top; pfn++) {
    const fl = f.flags[pfn]!;
    if (fl & PG_INUSE && fl & PG_SWAPCACHE && f.mapcount[pfn] === 0 && !held.has(pfn)) n++;
  }
  return n;
}

/** The handle a step takes (pin, gup, vmsplice, device exclusive), or null. */
function handleTaken(step: Step): string | null {
  const c = declOf(step.op).creates?.(step as never);
  return c?.kind === 'handle' ? c.name : null;
}

/** What the model holds of `name` after the step that took it, with the step's answer (its `gup` observation). */
function modelHandle(run: Runner, name: string, step: Step, record: StepRecord): ModelHandle {
  const lh = run.handles.get(name);
  const answer = record.observations.find((o) => o.kind === 'gup')?.actual ?? null;
  const sel = (step as { sel: PageSel }).sel;
  const pages = sel.hi - sel.lo + 1;
  if (step.op === 'device-exclusive') {
    // The pages its grant still holds, as the model's summary counts them (the rest were never converted).
    return { exclusive: true, answer, held: lh ? lh.h.revoked!.filter((x) => x === 0).length : 0, pages };
  }
  return { exclusive: false, answer, held: lh ? lh.h.frames.length : 0, pages };
}

/**
 * The model stepped a second time, looked at after each step (scenarios with swapout, ksm merge
 * or THPs; with `handles`, also scenarios that take a handle, which the live run may not take).
 */
export function probeModel(sc: Scenario, profile: Profile, count: number, thp = usesThp(sc), handles = false): Map<number, ModelProbe> {
  const out = new Map<number, ModelProbe>();
  const steps = sc.steps.slice(0, count);
  if (!thp && !steps.some((s) => isSwapout(s) || s.op === 'ksm-merge') && !(handles && steps.some((s) => handleTaken(s) !== null))) return out;
  const run = new Runner(sc, profile, { trace: false, maxEventsPerStep: 0, checkEveryStep: false });
  for (let i = 0; i < count; i++) {
    const step = sc.steps[i]!;
    const { record, na } = run.step(step, i);
    if (na !== null) break;
    const taken = handles ? handleTaken(step) : null;
    const probe: ModelProbe = {
      extra: [], hiddenSwapCache: hiddenSwapCache(run), hiddenLarge: thp ? hiddenLarge(run) : 0, huge: thp ? modelHugeMap(run) : null,
      handle: taken === null ? null : modelHandle(run, taken, step, record),
    };
    if (isSwapout(step)) {
      const row = modelSwapRow(run, step.proc, step.sel);
      if (row) probe.extra.push(row);
    } else if (step.op === 'ksm-merge') {
      probe.extra.push(modelKsmRow(run));
    }
    out.set(i, probe);
  }
  return out;
}

function pair(m: readonly ModelObs[], k: KernelStep): OracleRow[] {
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

/**
 * Runs one scenario on the model and on the kernel and pairs their observations. The model is
 * `base` with what the probe found the live kernel doing (probedProfile()).
 */
export function oracleScenario(session: OracleSession, sc: Scenario, base: Profile, opts: OracleOptions = {}): OracleResult {
  const notes: string[] = [];
  const written = withoutModelLimits(sc, notes);
  const plan = thpPlan(written, session.facilities);
  // A THP mode this machine cannot give: the model runs with the one it has (never).
  const thpSc = plan.model === (written.config.thp ?? 'madvise') ? written : { ...written, config: { ...written.config, thp: plan.model } };
  if (plan.why !== null && usesThp(written)) notes.push(plan.why);
  const msc = withLiveKsmZeroPages(thpSc, session.facilities, notes);
  const profile = probedProfile(base, session.facilities);
  const model = opts.model && msc === written ? opts.model : runScenario(msc, profile, { trace: false, maxEventsPerStep: 0 });
  const pool = hugetlbPoolFor(msc);
  const unreplayed = (status: 'skipped' | 'error', why: string): OracleResult => ({
    format: ORACLE_FORMAT, file: sc.file, scenario: sc.name, profile: profile.name, kernel: session.facilities.kernel,
    status, skip: status === 'skipped' ? why : null, na: null, error: status === 'error' ? why : null, notes, modelViolations: 0, steps: [],
    counts: { steps: sc.steps.length, compared: 0, agree: 0, disagree: 0, skipped: 0 },
  });
  let skip: string | null;
  try {
    skip = plan.impossible ?? missingFacility(msc, base, profile, session.facilities, model, written) ?? (pool !== null ? session.system.hugetlb(pool) : null);
  } catch (e) {
    if (!(e instanceof OracleError)) throw e;
    // The helper died while the hugetlb pool was set up (a Ctrl-C to the process group reaches it
    // too): an error, as a replay's is, and the next scenario gets a new helper.
    const left = session.cleanSlate();
    return unreplayed('error', left === null ? e.message : `${e.message}; ${left}`);
  }
  if (skip !== null) return unreplayed('skipped', skip);
  const count = model.na !== null ? model.na.step : sc.steps.length;
  const thp = usesThp(msc) || plan.model === 'always';
  const probes = probeModel(msc, profile, count, thp, true);
  const huge = new Map<number, Map<string, string>>();
  const handles = new Map<number, ModelHandle>();
  const system = new Map<number, ModelRow>();
  for (const [i, p] of probes) {
    if (p.huge) huge.set(i, p.huge);
    if (p.handle) handles.set(i, p.handle);
    const row = p.extra.find((o) => o.kind === 'swap' || o.kind === 'ksm');
    if (row) system.set(i, row);
  }
  const kernel = session.replay(sc, count, { huge, handles, system });
  const steps: OracleStep[] = [];
  const counts: OracleCounts = { steps: count, compared: 0, agree: 0, disagree: 0, skipped: 0 };
  for (let i = 0; i < count; i++) {
    const step = sc.steps[i]!;
    const mrec = model.steps[i];
    const krec = kernel.steps[i] ?? { index: i, observations: [], note: '', skip: 'not replayed' };
    const probe = probes.get(i);
    // The model's side of the kernel's `thp` rows (made where either side's huge PMDs changed).
    const hugeRows = krec.observations.filter((o) => o.kind === 'thp')
      .map((o) => ({ kind: 'thp', what: o.what, actual: probe?.huge?.get(o.what) ?? 'no huge PMD' }));
    const rows = pair([...(mrec?.observations ?? []), ...(probe?.extra ?? []), ...hugeRows], krec);
    const hidden = probe === undefined ? null
      : probe.hiddenSwapCache > 0 ? `the model keeps ${probe.hiddenSwapCache} page(s) in the swap cache that nothing maps or holds; pagemap cannot see such pages`
      : probe.hiddenLarge > 0 ? `${probe.hiddenLarge} page(s) of partially mapped THPs are mapped by nothing and still allocated (until a deferred split); pagemap cannot see such pages`
      : null;
    if (hidden !== null) {
      for (const r of rows) {
        if (r.kind === 'stat' && r.what === 'frames_used' && r.verdict !== 'skipped') {
          r.verdict = 'skipped';
          r.reason = hidden;
        }
      }
    }
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
  const kskip = kernel.skip ?? null;
  const status: OracleStatus = kernel.error !== null ? 'error' : counts.disagree > 0 ? 'disagree' : kskip !== null ? 'skipped' : model.na !== null ? 'n/a' : 'agree';
  return {
    format: ORACLE_FORMAT,
    file: sc.file,
    scenario: sc.name,
    profile: profile.name,
    kernel: session.facilities.kernel,
    status,
    skip: kskip,
    na: model.na,
    error: kernel.error,
    notes,
    modelViolations: model.violations.length,
    steps,
    counts,
  };
}
