// The explorer's stages: build the start state (an empty process or a scenario's end state),
// search, and write a counterexample as a replayable scenario file.

import { Runner } from '../engine/run.js';
import type { Profile } from '../core/profile.js';
import { configLines, parseScenario, type Scenario } from '../scenario/index.js';
import { opsOnProfile, type ExploreShape } from './ops.js';
import type { StopFlag } from './tree.js';
import { parallelSearch } from './parallel.js';
import { search, type Counterexample, type Progress, type SearchBounds, type SearchResult, type ViolationSink } from './search.js';
import { causeOf, isFaultDecision, newReplayCache } from './cause.js';
import { matchStory } from './stories.js';
import { propertyReport, searchOutcome, type PropertyReport, type SearchOutcome } from './properties.js';
import type { Step } from '../scenario/ast.js';

export interface ExploreInput {
  profile: Profile;
  /** The profile's base name, for `kernel:` and `outcomes` in counterexample files. */
  baseName: string;
  /** `--set` overrides, repeated in the reproduce line. */
  sets: string[];
  shape: ExploreShape;
  pages: number;
  bounds: SearchBounds;
  /** Start from this scenario's end state instead of an empty process. */
  from: Scenario | null;
  /** Threads that expand states (default 1); more than one: src/explore/parallel.ts. */
  workers?: number;
  /**
   * Regression search (`--baseline`): report only sequences that violate on one kernel and are
   * clean on the other. Without `reverse`, they violate on `profile` and are clean on this one;
   * with it, the other way round (what `profile` fixed).
   */
  baseline?: { profile: Profile; name: string; sets: string[]; reverse: boolean } | null;
  /**
   * false: `--all` keeps one counterexample per violation kind, as the search finds them, with
   * no replay for causes (the tests' comparisons of whole searches); default true.
   */
  causes?: boolean;
}

export interface ExploreOutcome {
  status: 'ok' | 'violation';
  /** The result: `ok` | `violation` | `bound` (stopped at a limit before completing), for every worker count. */
  verdict: SearchOutcome;
  /** The `always` and `sometimes` properties (src/explore/properties.ts). */
  properties: PropertyReport;
  start: string[];
  result: SearchResult;
  /** Violating sequences seen (each replayed to find its cause, or checked on the baseline). */
  violating: number;
  /** Distinct causes among them. */
  causes: number;
}

/** The start state: `P mmap buf N rw private`, or the end state of `from`. */
export function startState(input: ExploreInput, profile: Profile = input.profile, trace = false): { runner: Runner; lines: string[] } {
  let sc: Scenario;
  if (input.from) {
    sc = input.from;
  } else {
    const text = `name: explore-start\nsteps: |\n  P mmap buf ${input.pages} rw private\n`;
    const r = parseScenario(text, '(explore)');
    if (!r.ok) throw new Error(r.errors[0]!.format());
    sc = r.scenario;
  }
  // Both options objects of one shape (every field): the replays run the search's code.
  const runner = new Runner(sc, profile, trace ? { trace: true, maxEventsPerStep: 10_000, reuseRecord: false } : { trace: false, maxEventsPerStep: 0, reuseRecord: true });
  sc.steps.forEach((s, i) => runner.step(s, i));
  // The search's states are copies of the start (Runner.clone), and so is the start: its arrays
  // at a copy's sizes (a copy is made by the constructors, so it has a constructed state's hidden classes).
  return { runner: runner.clone(), lines: sc.steps.map((s) => s.text) };
}

/**
 * Search; `stopFlag` (shared memory, word 0 set non-zero) ends the search early as `interrupted`.
 * Every violating sequence goes through one sink: replayed on a tracing Runner for its cause
 * (and, with a baseline, on the other kernel); the first is kept, or with `--all` the first of
 * each cause.
 */
export function explore(input: ExploreInput, progress?: Progress, stopFlag?: StopFlag): ExploreOutcome {
  const base = input.baseline ?? null;
  const reverse = base?.reverse ?? false;
  // The kernel whose search this is, and the one each violating sequence is checked on.
  const searched = reverse ? base!.profile : input.profile;
  const other = base === null ? null : reverse ? input.profile : base.profile;
  const { runner, lines } = startState(input, searched);
  // The tracing start, for the replays of violating sequences: made at the first one.
  let tracedRoot: Runner | null = null;
  const traced = (): Runner => (tracedRoot ??= startState(input, searched, true).runner);
  const otherRoot = other === null ? null : startState(input, other).runner;
  const kept: Counterexample[] = [];
  const causes = new Set<string>();
  let violating = 0;
  const cache = newReplayCache();
  const kinds0 = new Set<string>();
  // With a baseline every cause is reported: a reviewer wants each thing the change broke.
  const all = input.bounds.all || base !== null;
  const sink: ViolationSink = (path, kinds) => {
    violating++;
    const { cause, steps, lines: stepLines, violations } = causeOf(traced(), path, cache);
    const vs = violations.filter((v) => input.bounds.kinds === null || input.bounds.kinds.has(v.kind));
    const got = [...new Set(vs.map((v) => v.kind))].sort();
    if (got.join() !== kinds.join()) {
      throw new Error(`internal error: the explorer found ${kinds.join(', ')} after\n  ${stepLines.join('\n  ')}\n` +
        `but its replay with the trace reports ${got.join(', ') || 'nothing'} there; please report this`);
    }
    if (otherRoot !== null && !cleanOn(otherRoot, steps, input.bounds.kinds)) return false;
    // The first sequence of each violation kind is kept too, so --all still shows every kind
    // at its shortest depth.
    const newKind = got.some((k) => !kinds0.has(k));
    for (const k of got) kinds0.add(k);
    const newCause = !causes.has(cause.key);
    causes.add(cause.key);
    // A finding whose decisions include all of an earlier one's is that one with more going on.
    if (!newKind && (!newCause || kept.some((k) => subsumes(cause.decisions, k.cause!.decisions)))) return false;
    kept.push({ steps: stepLines, violations: vs, depth: path.length, cause, firstOfKind: newKind });
    return !all;
  };
  const perKind = input.causes === false && base === null;
  const workers = input.workers ?? 1;
  // Not the operations whose every transition would be n/a on the searched kernel.
  const shape = { ...input.shape, ops: opsOnProfile(input.shape.ops, searched).kept };
  const result = workers > 1
    ? parallelSearch({ ...input, shape }, searched, runner, workers, progress, stopFlag, perKind ? undefined : sink)
    : search(runner, shape, input.bounds, progress, stopFlag, perKind ? undefined : sink);
  const judged = (): Pick<ExploreOutcome, 'verdict' | 'properties'> => ({
    verdict: searchOutcome(result.counterexamples, result.stats, input.bounds.depth),
    properties: propertyReport(shape.ops, input.bounds.kinds, result.counterexamples, result.stats),
  });
  if (perKind) return { status: result.counterexamples.length > 0 ? 'violation' : 'ok', ...judged(), start: lines, result, violating: 0, causes: 0 };
  // The same within one depth, where a larger set of decisions may have come first.
  result.counterexamples = kept.filter((c) => c.firstOfKind || !kept.some((k) => k !== c && k.cause!.decisions.length < c.cause!.decisions.length && subsumes(c.cause!.decisions, k.cause!.decisions)));
  for (const ce of result.counterexamples) {
    delete ce.firstOfKind;
    // Not after a stop request: the worker must answer within its grace period (background.ts).
    if (input.from === null && result.stats.stoppedBy !== 'interrupted') ce.story = matchStory(lines, ce.steps, searched, input.bounds.kinds);
  }
  return { status: kept.length > 0 ? 'violation' : 'ok', ...judged(), start: lines, result, violating, causes: causes.size };
}

/**
 * `more` is the finding `fewer` with more going on: it has every decision of `fewer` (which has
 * some), and its other decisions are no fault or fork-copy decision (another pin, fork, a zero-page
 * fault on the way).
 */
function subsumes(more: readonly string[], fewer: readonly string[]): boolean {
  return fewer.length > 0 && fewer.every((d) => more.includes(d)) && more.every((d) => fewer.includes(d) || !isFaultDecision(d));
}

/**
 * The same steps on the other kernel: true when every one applies there and none violates
 * (counting only `kinds`). A step the other kernel lacks makes the sequence incomparable: false.
 */
export function cleanOn(root: Runner, steps: readonly Step[], kinds: Set<string> | null): boolean {
  const r = root.clone();
  const base = r.violations.length;
  for (let i = 0; i < steps.length; i++) {
    try {
      if (r.step(steps[i]!, i).na !== null) return false;
    } catch {
      return false; // a name the other kernel never made (a handle whose GUP failed there)
    }
    if (r.violations.slice(base).some((v) => kinds === null || kinds.has(v.kind))) return false;
  }
  return true;
}

/** A counterexample as a scenario file that `cowlab run` replays with the same violation. */
export function counterexampleFile(input: ExploreInput, start: string[], ce: Counterexample, result: SearchResult): string {
  const kinds = [...new Set(ce.violations.map((v) => v.kind))];
  const base = input.baseline ?? null;
  // The kernel the sequence violates on, and (with --baseline) the one it is clean on.
  const bad = base?.reverse ? { name: base.name, sets: base.sets, profile: base.profile } : { name: input.baseName, sets: input.sets, profile: input.profile };
  const good = base === null ? null : base.reverse ? { name: input.baseName, sets: input.sets, profile: input.profile } : { name: base.name, sets: base.sets, profile: base.profile };
  const whatIf = bad.sets.length > 0;
  const cfg = input.from?.config;
  const setArgs = (sets: string[]): string => sets.map((s) => `--set ${s}`).join(' ');
  const lines = [
    `name: counterexample-${bad.name.replace(/[^a-z0-9]+/g, '-')}-${kinds.join('-')}`,
    'description: >',
    `  Found by cowlab explore on ${bad.profile.name}: ${kinds.join(', ')} after ${ce.depth} operation(s)`,
    `  (a shortest such sequence; ${result.stats.states} states searched).`,
    ...(good !== null ? [`  The same steps are clean on ${good.profile.name}.`] : []),
    ...(ce.cause ? [`  Cause: ${ce.cause.name}.`] : []),
    ...(ce.story ? [`  It is the story ${ce.story.name} (${ce.story.file})${ce.story.exact ? '' : `, in ${ce.story.matched} of its ${ce.story.storySteps} steps`}.`] : []),
    ...(whatIf ? [`  Replay with: npx cowlab run FILE --kernel ${bad.name} ${setArgs(bad.sets)}`] : []),
    ...(good !== null && good.sets.length > 0 ? [`  Clean with: npx cowlab run FILE --kernel ${good.name} ${setArgs(good.sets)}`] : []),
    `kernel: ${bad.name}`,
  ];
  // Every key the start scenario set (a counter of the pool needs config.hugepages to replay).
  if (cfg) lines.push(...configLines(cfg));
  const outcomes: string[] = [];
  if (!whatIf) outcomes.push(`  ${JSON.stringify(bad.name)}: [${kinds.join(', ')}]`);
  if (good !== null && good.sets.length === 0 && good.name !== bad.name) outcomes.push(`  ${JSON.stringify(good.name)}: ok`);
  if (outcomes.length > 0) lines.push('outcomes:', ...outcomes);
  lines.push('steps: |');
  for (const s of start) lines.push(`  ${s}`);
  ce.steps.forEach((s, i) => {
    const v = ce.violations.filter(() => i === ce.steps.length - 1);
    lines.push(`  ${s}${v.length ? `    # ${[...new Set(v.map((x) => x.kind))].join(', ')}` : ''}`);
  });
  return lines.join('\n') + '\n';
}

export type { SearchBounds };

/**
 * `explore --start thp`: P starts with one PMD-mapped, exclusive THP (`buf`, 512 pages, its first
 * page written): a start scenario, searched as `--from` is (every state holds the whole
 * folio), with the page operations on its first pages only (ExploreShape.pageLimit).
 */
export function thpStartScenario(): Scenario {
  const text = 'name: explore-start-thp\nsteps: |\n  P mmap buf 512 rw private thp\n  P write buf[0] = 1\n';
  const r = parseScenario(text, '(explore --start thp)');
  if (!r.ok) throw new Error(r.errors[0]!.format());
  return r.scenario;
}
