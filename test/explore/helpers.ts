// Helpers of the explorer tests: an ExploreInput built like `cowlab explore` builds it, the
// replay of a counterexample file, and a Runner brought to the end of a scenario text.

import assert from 'node:assert/strict';
import type { Profile } from '../../src/core/profile.js';
import { Runner } from '../../src/engine/run.js';
import type { RunResult } from '../../src/engine/result.js';
import { runScenario } from '../../src/engine/run.js';
import { counterexampleFile, explore, type ExploreInput, type ExploreOutcome } from '../../src/explore/explore.js';
import { DEFAULT_OPS, type OpName } from '../../src/explore/ops.js';
import { builtinProfile } from '../../src/profiles/builtin.js';
import { withOverrides } from '../../src/profiles/resolve.js';
import { parseScenario, type Scenario } from '../../src/scenario/index.js';

export interface InputOptions {
  sets?: string[];
  ops?: readonly OpName[];
  pages?: number;
  procs?: number;
  threads?: number;
  handles?: number;
  depth?: number;
  kinds?: string[];
  maxStates?: number;
  maxMemoryMB?: number;
  timeSec?: number;
  all?: boolean;
}

/** The profile `--kernel NAME --set ...` names. */
export function profileOf(name: string, sets: readonly string[] = []): Profile {
  const p = builtinProfile(name);
  assert.ok(p, `no built-in profile ${name}`);
  return withOverrides(p, sets);
}

/** An ExploreInput with the command line's defaults (procs 2, threads 2, handles 2, pages 2, depth 6). */
export function input(kernel: string, o: InputOptions = {}): ExploreInput {
  const sets = o.sets ?? [];
  return {
    profile: profileOf(kernel, sets),
    baseName: kernel,
    sets,
    shape: { procs: o.procs ?? 2, threads: o.threads ?? 2, handles: o.handles ?? 2, ops: o.ops ?? DEFAULT_OPS },
    pages: o.pages ?? 2,
    bounds: {
      depth: o.depth ?? 6,
      maxStates: o.maxStates ?? 5_000_000,
      maxMemoryMB: o.maxMemoryMB ?? 8192,
      timeSec: o.timeSec ?? 600,
      all: o.all ?? false,
      kinds: o.kinds ? new Set(o.kinds) : null,
    },
    from: null,
  };
}

export interface Found {
  out: ExploreOutcome;
  /** The counterexample scenario files, as `cowlab explore` prints them. */
  files: string[];
}

export function run(inp: ExploreInput): Found {
  const out = explore(inp);
  const files = out.result.counterexamples.map((ce) => counterexampleFile(inp, out.start, ce, out.result));
  return { out, files };
}

export function parse(text: string, file = 'ce.scn.yaml'): Scenario {
  const r = parseScenario(text, file);
  if (!r.ok) assert.fail(`${file} does not parse:\n${r.errors.map((e) => e.format()).join('\n')}\n---\n${text}`);
  return r.scenario;
}

/** Replays a counterexample file the way `cowlab run FILE --kernel BASE --set ...` does. */
export function replay(text: string, kernel: string, sets: readonly string[] = []): { sc: Scenario; r: RunResult } {
  const sc = parse(text);
  return { sc, r: runScenario(sc, profileOf(kernel, sets), { trace: false }) };
}

/** The scenario text of `steps` (one per line), with optional envelope lines. */
export function scenarioText(steps: readonly string[], envelope: readonly string[] = []): string {
  return ['name: t', ...envelope, 'steps: |', ...steps.map((s) => `  ${s}`), ''].join('\n');
}

/** A Runner that has run every step of the scenario (no end checks), which must all apply. */
export function runnerAfter(steps: readonly string[], profile = 'v6', sets: readonly string[] = [], clean = true): Runner {
  const sc = parse(scenarioText(steps), 't.scn.yaml');
  const r = new Runner(sc, profileOf(profile, sets), { trace: false, maxEventsPerStep: 0 });
  sc.steps.forEach((s, i) => {
    const { na } = r.step(s, i);
    assert.equal(na, null, `step ${i} (${s.text}) is n/a: ${na}`);
  });
  if (clean) assert.deepEqual(r.violations.map((v) => `${v.kind}: ${v.message}`), [], 'the setup itself is clean');
  return r;
}

/** Runs scenario steps (with optional envelope lines) on a profile, with the end checks. */
export function runSteps(steps: readonly string[], kernel = 'v6', sets: readonly string[] = [], envelope: readonly string[] = []): RunResult {
  return runScenario(parse(scenarioText(steps, envelope), 't.scn.yaml'), profileOf(kernel, sets), { trace: true });
}

/** The violation kinds of a run, sorted, each once. */
export function kindsOf(r: RunResult): string[] {
  return [...new Set(r.violations.map((v) => v.kind))].sort();
}
