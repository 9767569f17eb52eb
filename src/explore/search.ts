// Breadth-first search over operation sequences: the first violation found is at the smallest
// depth, so its path is a shortest counterexample. States are stored as (parent, op) pairs and
// rebuilt by replay when expanded; the visited set holds canonical keys, sharded below V8's
// 2^24-entries-per-Map limit.

import type { Runner } from '../engine/run.js';
import type { Violation } from '../engine/result.js';
import type { Step } from '../scenario/ast.js';
import { canonicalKey } from './canonical.js';
import type { StoryMatch } from './stories.js';
import { decodeOp, enabledOps, type ExploreShape } from './ops.js';
import { SearchBudget, SearchTree, type StopFlag } from './tree.js';

export interface SearchBounds {
  depth: number;
  maxStates: number;
  maxMemoryMB: number;
  timeSec: number;
  /** Keep searching after a violation and collect one counterexample per violation kind. */
  all: boolean;
  /** Violation kinds that count (default: all). */
  kinds: Set<string> | null;
}

export interface Counterexample {
  /** The steps from the start state, as scenario lines. */
  steps: string[];
  violations: Violation[];
  depth: number;
  /** The kernel decisions that produced the violation (src/explore/cause.ts). */
  cause?: { key: string; name: string; decisions: string[] };
  /** The story of scenarios/ it is, up to renaming (src/explore/stories.ts). */
  story?: StoryMatch | null;
  /** While a search runs: the first counterexample with one of its violation kinds. */
  firstOfKind?: boolean;
}

export interface SearchStats {
  states: number;
  transitions: number;
  depthReached: number;
  /** Depth fully explored (every state at depth <= this was expanded). */
  depthComplete: number;
  elapsedMs: number;
  statesPerSec: number;
  /** Why the search stopped early, or null. */
  stoppedBy: 'states' | 'memory' | 'time' | 'interrupted' | null;
  /** Events reached somewhere ("sometimes" properties): name -> shortest depth. */
  reached: Record<string, number>;
  /** Which engine searched: `compact` (src/explore/compact) or `full` (a Runner per state). */
  engine: 'compact' | 'full';
}

export interface SearchResult {
  counterexamples: Counterexample[];
  stats: SearchStats;
}

const SHARD_BITS = 4;

/** A set of string keys over several Maps (each Map holds at most 2^24 entries). */
export class KeySet {
  private shards: Map<string, number>[] = Array.from({ length: 1 << SHARD_BITS }, () => new Map());
  size = 0;
  private shard(key: string): Map<string, number> {
    let h = 0;
    for (let i = 0; i < key.length; i += 7) h = (Math.imul(h, 31) + key.charCodeAt(i)) | 0;
    return this.shards[h & ((1 << SHARD_BITS) - 1)]!;
  }
  get(key: string): number | undefined {
    return this.shard(key).get(key);
  }
  add(key: string, id: number): void {
    this.shard(key).set(key, id);
    this.size++;
  }
}

/**
 * Where a search sends its violating transitions instead of keeping one counterexample per kind:
 * the path (packed operations from the start) and the violation kinds counted there. Returns true
 * to stop the search. Used by `--all` (one counterexample per cause) and `--baseline`.
 */
export type ViolationSink = (path: number[], kinds: string[]) => boolean;

export type Progress = (s: { states: number; depth: number; frontier: number; statesPerSec: number }) => void;

/** Counters and flags that tell which interesting events a step reached. */
function reachedEvents(before: Runner, after: Runner, out: Set<string>): void {
  const a = before.k.stats;
  const b = after.k.stats;
  if (b.cowCopies - b.earlyCow > a.cowCopies - a.earlyCow) out.add('cow-copy');
  if (b.reuses > a.reuses) out.add('reuse');
  if (b.earlyCow > a.earlyCow) out.add('early-cow');
  if (after.handles.size > before.handles.size) {
    const names = { pin: 'pin', pipe: 'vmsplice', gup: 'gup', exclusive: 'device-exclusive' } as const;
    for (const [n, h] of after.handles) if (!before.handles.has(n)) out.add(names[h.h.kind]);
  }
  const groups = (r: Runner): number => new Set([...r.procs.values()].map((p) => p.group)).size;
  if (groups(after) > groups(before)) out.add('fork');
  else if (after.procs.size > before.procs.size) out.add('thread');
  // A frame mapped by two processes while a handle holds it: where COW and GUP meet.
  for (const [, lh] of after.handles) {
    for (const pfn of lh.h.frames) if (pfn > 0 && after.k.frames.mapcount[pfn]! >= 2) out.add('shared-page-with-extra-reference');
  }
}

/**
 * The line a replay file needs for a step: a `step` that ended its thread's kernel path is
 * written `finish`, which the parser needs to know the path is over.
 */
export function replayText(after: Runner, step: Step): string {
  if (step.op === 'step' && !after.procs.get(step.proc)?.task) return `${step.proc} finish`;
  return step.text;
}

/** A state rebuilt by replaying a path of packed operations on a copy of the root, with its scenario lines. */
export function replayPath(root: Runner, path: readonly number[]): { r: Runner; lines: string[] } {
  const r = root.clone();
  const lines: string[] = [];
  for (const op of path) {
    const step = decodeOp(r, op);
    lines.push(step.text);
    r.step(step, lines.length - 1);
    lines[lines.length - 1] = replayText(r, step);
  }
  return { r, lines };
}

export function search(root: Runner, shape: ExploreShape, bounds: SearchBounds, progress?: Progress, stopFlag?: StopFlag, sink?: ViolationSink): SearchResult {
  const budget = new SearchBudget(bounds, progress, stopFlag);
  const tree = new SearchTree();
  const visited = new KeySet();
  visited.add(canonicalKey(root), 0);
  const counterexamples: Counterexample[] = [];
  const foundKinds = new Set<string>();
  const baseViolations = root.violations.length;


  let stop = false;
  const events = new Set<string>();
  for (let id = 0; id < tree.count && !stop; id++) {
    const d = tree.depth(id);
    budget.expanding(d);
    if (d >= bounds.depth) continue;
    // The bounds are looked at before each transition: one transition on a large state (a
    // --from scenario) can take long, so an expansion may end part way.
    if (budget.due() && budget.check(tree.count, id, d)) {
      stop = true;
      break;
    }
    const { r, lines } = replayPath(root, tree.path(id));
    for (const op of enabledOps(r, shape)) {
      if (budget.due() && budget.check(tree.count, id, d)) {
        stop = true;
        break;
      }
      const child = r.clone();
      const step = decodeOp(child, op);
      const res = child.step(step, lines.length);
      budget.transitions++;
      if (res.na !== null) continue;
      events.clear();
      reachedEvents(r, child, events);
      for (const e of events) budget.reach(e, d + 1);
      const fresh = child.violations.slice(baseViolations).filter((v) => bounds.kinds === null || bounds.kinds.has(v.kind));
      if (fresh.length > 0 && sink) {
        if (sink(tree.path(id, op), [...new Set(fresh.map((v) => v.kind))].sort())) {
          stop = true;
          break;
        }
        continue;
      }
      if (fresh.length > 0) {
        const newKinds = fresh.filter((v) => !foundKinds.has(v.kind));
        if (newKinds.length > 0) {
          for (const v of fresh) foundKinds.add(v.kind);
          counterexamples.push({ steps: [...lines, replayText(child, step)], violations: fresh, depth: d + 1 });
          if (!bounds.all) {
            stop = true;
            break;
          }
        }
        continue; // a violating state is not expanded further
      }
      const key = canonicalKey(child);
      if (visited.get(key) !== undefined) continue;
      visited.add(key, tree.add(id, op));
      if (budget.full(tree.count)) {
        stop = true;
        break;
      }
    }
  }
  return { counterexamples, stats: budget.stats(tree, stop, 'full') };
}
