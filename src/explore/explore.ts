// The explorer's stages: build the start state (an empty process or a scenario's end state),
// search, and write a counterexample as a replayable scenario file.

import { Runner } from '../engine/run.js';
import type { Profile } from '../core/profile.js';
import { parseScenario, type Scenario } from '../scenario/index.js';
import type { ExploreShape } from './ops.js';
import { compactSearch, compactUnsupported } from './compact/search.js';
import type { StopFlag } from './tree.js';
import { search, type Counterexample, type Progress, type SearchBounds, type SearchResult } from './search.js';

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
  /**
   * `compact`: the compact engine (src/explore/compact), `full`: a Runner per state; `auto`
   * (the default): compact where it supports the operations and bounds, else full.
   */
  engine?: 'auto' | 'compact' | 'full';
}

/** Which engine a search runs on, and why the compact one cannot (null when it can). */
export function chooseEngine(input: ExploreInput): { engine: 'compact' | 'full'; why: string | null } {
  const why = compactUnsupported(input.shape, input.pages, input.bounds.depth, input.from !== null);
  const want = input.engine ?? 'auto';
  if (want === 'full') return { engine: 'full', why };
  return { engine: why === null ? 'compact' : 'full', why };
}

export interface ExploreOutcome {
  status: 'ok' | 'violation';
  start: string[];
  result: SearchResult;
}

/** The start state: `P mmap buf N rw private`, or the end state of `from`. */
export function startState(input: ExploreInput): { runner: Runner; lines: string[] } {
  let sc: Scenario;
  if (input.from) {
    sc = input.from;
  } else {
    const text = `name: explore-start\nsteps: |\n  P mmap buf ${input.pages} rw private\n`;
    const r = parseScenario(text, '(explore)');
    if (!r.ok) throw new Error(r.errors[0]!.format());
    sc = r.scenario;
  }
  const runner = new Runner(sc, input.profile, { trace: false, maxEventsPerStep: 0 });
  sc.steps.forEach((s, i) => runner.step(s, i));
  return { runner, lines: sc.steps.map((s) => s.text) };
}

/** Search; `stopFlag` (shared memory, word 0 set non-zero) ends the search early as `interrupted`. */
export function explore(input: ExploreInput, progress?: Progress, stopFlag?: StopFlag): ExploreOutcome {
  const { runner, lines } = startState(input);
  const { engine, why } = chooseEngine(input);
  if (input.engine === 'compact' && why !== null) throw new CompactUnsupportedError(why);
  const result = engine === 'compact'
    ? compactSearch(runner, input.profile, input.shape, input.pages, input.bounds, progress, stopFlag)
    : search(runner, input.shape, input.bounds, progress, stopFlag);
  return { status: result.counterexamples.length > 0 ? 'violation' : 'ok', start: lines, result };
}

/** `--engine compact` asked for something the compact engine does not model. */
export class CompactUnsupportedError extends Error {}

/** A counterexample as a scenario file that `cowlab run` replays with the same violation. */
export function counterexampleFile(input: ExploreInput, start: string[], ce: Counterexample, result: SearchResult): string {
  const kinds = [...new Set(ce.violations.map((v) => v.kind))];
  const whatIf = input.sets.length > 0;
  const cfg = input.from?.config;
  const lines = [
    `name: counterexample-${input.baseName.replace(/[^a-z0-9]+/g, '-')}-${kinds.join('-')}`,
    'description: >',
    `  Found by cowlab explore on ${input.profile.name}: ${kinds.join(', ')} after ${ce.depth} operation(s)`,
    `  (a shortest such sequence; ${result.stats.states} states searched).`,
    ...(whatIf ? [`  Replay with: npx cowlab run FILE --kernel ${input.baseName} ${input.sets.map((s) => `--set ${s}`).join(' ')}`] : []),
    `kernel: ${input.baseName}`,
  ];
  if (cfg && (cfg.frames !== null || cfg.pinBias !== null)) {
    lines.push('config:');
    if (cfg.frames !== null) lines.push(`  frames: ${cfg.frames}`);
    if (cfg.pinBias !== null) lines.push(`  pin_bias: ${cfg.pinBias}`);
  }
  if (!whatIf) lines.push('outcomes:', `  ${JSON.stringify(input.baseName)}: [${kinds.join(', ')}]`);
  lines.push('steps: |');
  for (const s of start) lines.push(`  ${s}`);
  ce.steps.forEach((s, i) => {
    const v = ce.violations.filter(() => i === ce.steps.length - 1);
    lines.push(`  ${s}${v.length ? `    # ${[...new Set(v.map((x) => x.kind))].join(', ')}` : ''}`);
  });
  return lines.join('\n') + '\n';
}

export type { SearchBounds };
