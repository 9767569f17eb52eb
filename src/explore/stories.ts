// Which known story a counterexample is: the scenarios of scenarios/seeds and
// scenarios/kernel-tests, compared with it up to renaming.
//
// A counterexample C *is* story S on a kernel when
//   1. C's steps (after its start mapping) are, with processes, pages and handles renamed one to
//      one, a subsequence of S's steps: each of C's steps is a step of S with the same operation
//      and the same modes (R/W or R/O, longterm, fast, split with `&`), in the same order; S may
//      have more steps (set-up writes, reads with `expect`, checks); values are not compared;
//   2. S, run on the same kernel, violates at the step C's last step is matched to, with a
//      violation kind C has; and every page C uses is in a private writable mapping of S.
// `exact` when S has no step C lacks up to that point (mappings, checks and `expect` steps
// aside). At a fork, C's parent may play S's child and the other way round (both go on from
// the same state). Among several stories: an exact one first, then the one with the fewest
// steps C lacks, then the linux-mm seeds before the kernel's selftests, then the one with the
// fewest steps up to its violation, then by name. Stories are read from the repository's scenarios/ folder; where it
// is absent (an installed package), nothing is matched.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Profile } from '../core/profile.js';
import { runScenario } from '../engine/run.js';
import { parseScenario, type MmapStep, type Scenario, type Step } from '../scenario/index.js';

export interface StoryMatch {
  name: string;
  /** The story's file, relative to the repository. */
  file: string;
  /** C has every step of S up to S's violation (mappings and checks aside). */
  exact: boolean;
  /** Steps of S up to its violation, and how many of them C has. */
  storySteps: number;
  matched: number;
}

const STORY_DIRS = ['scenarios/seeds', 'scenarios/kernel-tests'];

/** Steps that only look: left out of the comparison. */
const LOOKS = new Set(['mmap', 'check', 'expect-frame', 'expect-mapped', 'expect-exclusive', 'expect-stat', 'stats']);

let stories: { sc: Scenario; file: string }[] | null = null;

function repoRoot(): string {
  // dist/src/explore/stories.js, or src/explore/stories.ts under a loader: three levels up.
  return fileURLToPath(new URL('../../../', import.meta.url));
}

/** The stories, parsed once (those that do not parse, none there: left out). */
export function loadStories(root = repoRoot()): { sc: Scenario; file: string }[] {
  if (stories !== null) return stories;
  stories = [];
  for (const dir of STORY_DIRS) {
    const abs = join(root, dir);
    if (!existsSync(abs)) continue;
    for (const f of readdirSync(abs).filter((n) => n.endsWith('.scn.yaml')).sort()) {
      const file = `${dir}/${f}`;
      const r = parseScenario(readFileSync(join(abs, f), 'utf8'), file);
      if (r.ok) stories.push({ sc: r.scenario, file });
    }
  }
  return stories;
}

/** Per story and kernel: the kinds of violation at each step. */
const runs = new Map<string, Map<number, Set<string>>>();

function violationsOf(sc: Scenario, file: string | null, profile: Profile): Map<number, Set<string>> {
  const key = `${file}\n${JSON.stringify(profile)}`;
  let m = file === null ? undefined : runs.get(key);
  if (m) return m;
  m = new Map();
  try {
    const res = runScenario(sc, profile, { trace: false, maxEventsPerStep: 0 });
    if (res.status !== 'n/a') {
      for (const v of res.violations) {
        if (v.step < 0) continue;
        let s = m.get(v.step);
        if (!s) m.set(v.step, (s = new Set()));
        s.add(v.kind);
      }
    }
  } catch {
    // a story this kernel cannot run: it matches nothing
  }
  if (file !== null) runs.set(key, m);
  return m;
}

type Maps = { procs: Map<string, string>; pages: Map<string, string>; handles: Map<string, string> };

function bind(m: Map<string, string>, a: string, b: string): boolean {
  const cur = m.get(a);
  if (cur !== undefined) return cur === b;
  for (const v of m.values()) if (v === b) return false;
  m.set(a, b);
  return true;
}

function copy(m: Maps): Maps {
  return { procs: new Map(m.procs), pages: new Map(m.pages), handles: new Map(m.handles) };
}

type AnyStep = Step & {
  proc?: string; child?: string; thread?: string; handle?: string; write?: boolean; longterm?: boolean; fast?: boolean; prot?: string; advice?: string; async?: boolean;
  sel?: { region: string; lo: number; hi: number; all: boolean }; ref?: { handle: string; index: number };
};

/**
 * The ways C's step `c` matches S's step `s` under `m`: the extended renamings (none: no match).
 * After a fork parent and child go on from the same state, so C's parent may play S's child.
 */
function matches(c: AnyStep, s: AnyStep, m: Maps, privatePages: Set<string>): Maps[] {
  const out: Maps[] = [];
  const m1 = copy(m);
  if (stepMatches(c, s, m1, privatePages)) out.push(m1);
  if (c.op === 'fork' && s.op === 'fork' && m.procs.get(c.proc) === s.proc && ![...m.procs.values()].includes(s.child)) {
    const m2 = copy(m);
    m2.procs.set(c.proc, s.child);
    if (bind(m2.procs, c.child, s.proc) && !(c as { cowpt?: boolean }).cowpt === !(s as { cowpt?: boolean }).cowpt && !!c.async === !!s.async) out.push(m2);
  }
  return out;
}

/** Does C's step `c` match S's step `s` under `m` (extended in place when it does)? */
function stepMatches(c: AnyStep, s: AnyStep, m: Maps, privatePages: Set<string>): boolean {
  if (c.op !== s.op) return false;
  if (c.op === 'pin' && (c.write !== s.write || c.longterm !== s.longterm || !!c.fast !== !!s.fast)) return false;
  if (c.op === 'gup' && (c.write !== s.write || !!c.fast !== !!s.fast)) return false;
  if (c.op === 'mprotect' && c.prot !== s.prot) return false;
  if (c.op === 'madvise' && c.advice !== s.advice) return false;
  if (c.op === 'fork' && (c as { cowpt?: boolean }).cowpt !== (s as { cowpt?: boolean }).cowpt) return false;
  if (!!c.async !== !!s.async) return false;
  if (c.proc !== undefined && (s.proc === undefined || !bind(m.procs, c.proc, s.proc))) return false;
  if (c.child !== undefined && (s.child === undefined || !bind(m.procs, c.child, s.child))) return false;
  if (c.thread !== undefined && (s.thread === undefined || !bind(m.procs, c.thread, s.thread))) return false;
  if (c.handle !== undefined && (s.handle === undefined || !bind(m.handles, c.handle, s.handle))) return false;
  if (c.ref !== undefined) {
    if (s.ref === undefined || c.ref.index !== s.ref.index || !bind(m.handles, c.ref.handle, s.ref.handle)) return false;
  }
  if (c.sel !== undefined) {
    if (s.sel === undefined || c.sel.lo !== c.sel.hi) return false;
    const cp = `${c.sel.region}[${c.sel.lo}]`;
    const bound = m.pages.get(cp);
    if (bound !== undefined) {
      // C's page is already named in S: S's selection must cover it.
      const [region, page] = [bound.slice(0, bound.indexOf('[')), Number(bound.slice(bound.indexOf('[') + 1, -1))];
      if (region !== s.sel.region || page < s.sel.lo || page > s.sel.hi) return false;
    } else {
      const sp = `${s.sel.region}[${s.sel.lo}]`;
      if (!privatePages.has(s.sel.region) || !bind(m.pages, cp, sp)) return false;
    }
  }
  return true;
}

/**
 * The story `ceLines` (a counterexample's steps after its start lines `start`) is, on `profile`,
 * up to renaming; null when none. `kinds`: the violation kinds that count (null: all).
 */
export function matchStory(start: readonly string[], ceLines: readonly string[], profile: Profile, kinds: Set<string> | null): StoryMatch | null {
  const all = loadStories();
  if (all.length === 0) return null;
  const text = `name: counterexample\nsteps: |\n${[...start, ...ceLines].map((l) => `  ${l}`).join('\n')}\n`;
  const parsed = parseScenario(text, '(counterexample)');
  if (!parsed.ok) return null;
  const c = parsed.scenario.steps.filter((s) => !LOOKS.has(s.op)) as AnyStep[];
  const ceRun = violationsOf(parsed.scenario, null, profile);
  const lastIdx = parsed.scenario.steps.length - 1;
  const ceKinds = [...(ceRun.get(lastIdx) ?? [])].filter((k) => kinds === null || kinds.has(k));
  if (c.length === 0 || ceKinds.length === 0) return null;
  let best: StoryMatch | null = null;
  for (const { sc, file } of all) {
    if (sc.config.frames !== null || sc.config.pinBias !== null) continue;
    const viol = violationsOf(sc, file, profile);
    if (viol.size === 0) continue;
    const privatePages = new Set(sc.steps.filter((s): s is MmapStep => s.op === 'mmap' && !s.shared && s.prot === 'rw').map((s) => s.region));
    const sSteps = sc.steps.map((s, i) => ({ s: s as AnyStep, i })).filter((x) => !LOOKS.has(x.s.op));
    // Backtracking subsequence match; the last of C's steps must land on a violating step of S.
    const go = (ci: number, si: number, m: Maps): number => {
      for (let j = si; j < sSteps.length; j++) {
        for (const m2 of matches(c[ci]!, sSteps[j]!.s, m, privatePages)) {
          if (ci === c.length - 1) {
            const at = viol.get(sSteps[j]!.i);
            if (at && ceKinds.some((k) => at.has(k))) return j;
            continue;
          }
          const end = go(ci + 1, j + 1, m2);
          if (end >= 0) return end;
        }
      }
      return -1;
    };
    const end = go(0, 0, { procs: new Map(), pages: new Map(), handles: new Map() });
    if (end < 0) continue;
    const storySteps = end + 1;
    const cand: StoryMatch = { name: sc.name, file, exact: storySteps === c.length, storySteps, matched: c.length };
    if (best === null || better(cand, best)) best = cand;
  }
  return best;
}

/** Exact first, then the linux-mm seeds before the kernel's tests, then fewer steps, then by name. */
function better(a: StoryMatch, b: StoryMatch): boolean {
  if (a.exact !== b.exact) return a.exact;
  if (a.storySteps - a.matched !== b.storySteps - b.matched) return a.storySteps - a.matched < b.storySteps - b.matched;
  const sa = a.file.startsWith('scenarios/seeds/');
  const sb = b.file.startsWith('scenarios/seeds/');
  if (sa !== sb) return sa;
  if (a.storySteps !== b.storySteps) return a.storySteps < b.storySteps;
  return a.name < b.name;
}

/** "this is NAME" or "this is NAME, in fewer steps (4 of its 6)". */
export function storyText(m: StoryMatch): string {
  return m.exact ? `this is ${m.name} (${m.file})` : `this is ${m.name} (${m.file}), in ${m.matched} of its ${m.storySteps} steps`;
}
