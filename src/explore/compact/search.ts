// Breadth-first search on compact states: the same search as src/explore/search.ts (same
// operations, order, bounds and results), with states as Int32Arrays stored once each instead
// of Runners rebuilt by replay. Every counterexample is replayed on the Runner, the full model,
// and must show the same violation kinds there; a difference is an internal error.

import type { Profile } from '../../core/profile.js';
import type { Runner } from '../../engine/run.js';
import type { ExploreShape } from '../ops.js';
import { replayPath, Visited, type Counterexample, type Progress, type SearchBounds, type SearchResult, type ViolationSink } from '../search.js';
import { SearchBudget, SearchTree, type StopFlag } from '../tree.js';
import { Canon, hashKey } from './canon.js';
import { Layout, MAX_VALUES, S_NPROCS } from './layout.js';
import { CompactBoundError, EVENT_NAMES, Machine, VIOLATION_NAMES } from './machine.js';
import { applyOp, COMPACT_OPS, enabledOps, opCodes } from './step.js';
import { StateQueue, VisitedSet } from './store.js';

/** Why the compact engine cannot run this search (null: it can). */
export function compactUnsupported(shape: ExploreShape, pages: number, depth: number, fromScenario: boolean): string | null {
  if (fromScenario) return 'the start state comes from a scenario (--from)';
  const other = shape.ops.filter((o) => !COMPACT_OPS.includes(o));
  if (other.length > 0) return `operation ${other.join(', ')} is not in the compact engine`;
  const perState = shape.procs * pages + shape.handles;
  if (shape.handles > 15 || perState > 31) return 'more pages, processes or handles than a compact state holds';
  // Values are made only by writes, one per operation at most: depth of them, and zero.
  if (depth >= MAX_VALUES) return `depth ${depth} could need more values than a compact state names (${MAX_VALUES - 1})`;
  return null;
}

/** Violation kinds as bits. */
function kindBits(kinds: Set<string> | null): number {
  let bits = 0;
  for (const [b, name] of VIOLATION_NAMES) if (kinds === null || kinds.has(name)) bits |= b;
  return bits;
}

export function compactSearch(
  root: Runner, profile: Profile, shape: ExploreShape, pages: number, bounds: SearchBounds, progress?: Progress, stopFlag?: StopFlag,
  sink?: ViolationSink,
): SearchResult {
  const budget = new SearchBudget(bounds, progress, stopFlag);
  const tree = new SearchTree();
  const L = new Layout(pages, shape.handles, shape.procs);
  const m = new Machine(L, profile, root.k.config.pinBias);
  // Which anon_vma a VMA has decides only whether VMAs merge again, after mprotect.
  const canon = new Canon(L, shape.ops.includes('mprotect'));
  // The visited set: 64-bit fingerprints of the keys, as the full engine keeps (16-24 bytes a
  // state), or with --exact the keys themselves.
  const exact = bounds.exact ?? false;
  const visited = exact ? new VisitedSet() : null;
  const fingerprints = exact ? null : new Visited(false);
  /** Add a key (its first len words): true if it is new. */
  const isNew = (len: number): boolean => (visited ? !visited.has(canon.key, len, hashKey(canon.key, len)) : fingerprints!.addWords(canon.key, len));
  const queue = new StateQueue();
  const codes = opCodes(shape);
  const cur = new Int32Array(L.size);
  const work = new Int32Array(L.size);
  const ops = new Int32Array(codes.length * (8 * Math.max(pages, 1) + 16));
  const scratch = new Int32Array(2 * L.frames);
  const counted = kindBits(bounds.kinds);

  const start = L.start();
  const len0 = canon.build(start);
  isNew(len0);
  queue.put(0, start, L.used(start));
  const counterexamples: Counterexample[] = [];
  let found = 0;
  let reachedBits = 0;

  /** Replay a path on the full model; its violations must be the compact engine's. */
  const confirm = (path: number[], bits: number): Counterexample => {
    const { r, lines } = replayPath(root, path);
    const last = path.length - 1;
    const vs = r.violations.filter((v) => v.step === last && (bounds.kinds === null || bounds.kinds.has(v.kind)));
    const want = VIOLATION_NAMES.filter(([b]) => bits & b).map(([, n]) => n).sort();
    const got = [...new Set(vs.map((v) => v.kind))].sort();
    if (want.join() !== got.join()) {
      throw new Error(`internal error: the compact explorer found ${want.join(', ')} after\n  ${lines.join('\n  ')}\n` +
        `but the model reports ${got.join(', ') || 'nothing'} there; rerun with --engine full, and please report this`);
    }
    return { steps: lines, violations: vs, depth: path.length };
  };

  let stop = false;
  let transitions = 0;
  try {
    for (let id = 0; id < tree.count && !stop; id++) {
      const d = tree.depth(id);
      budget.expanding(d);
      if (d >= bounds.depth) continue;
      queue.get(id, cur, L.procBase + queue.header(id, S_NPROCS) * L.procSize);
      m.s = cur;
      const n = enabledOps(m, shape, codes, ops);
      m.s = work;
      for (let k = 0; k < n; k++) {
        const op = ops[k]!;
        work.set(cur);
        applyOp(m, op, scratch);
        transitions++;
        if (m.events & ~reachedBits) {
          for (const [b, name] of EVENT_NAMES) if (m.events & b) budget.reach(name, d + 1);
          reachedBits |= m.events;
        }
        const viol = m.viol & counted;
        if (viol !== 0 && sink) {
          if (sink(tree.path(id, op), VIOLATION_NAMES.filter(([b]) => viol & b).map(([, n]) => n).sort())) {
            stop = true;
            break;
          }
          continue;
        }
        if (viol !== 0) {
          if (viol & ~found) {
            found |= viol;
            counterexamples.push(confirm(tree.path(id, op), viol));
            if (!bounds.all) {
              stop = true;
              break;
            }
          }
          continue; // a violating state is not expanded further
        }
        if (!m.changed) continue; // a read that changed nothing: the state is its parent
        const len = canon.build(work);
        if (!isNew(len)) continue;
        const child = tree.add(id, op);
        if (d + 1 < bounds.depth) queue.put(child, work, L.used(work)); // states at the depth bound are never expanded
        if (budget.full(tree.count)) {
          stop = true;
          break;
        }
        if (visited?.full) {
          budget.stoppedBy = 'memory'; // 8 GiB of keys: as far as the visited set reaches
          stop = true;
          break;
        }
      }
      if ((id & 1023) === 0) queue.dropBefore(id);
      // The clock every 64 expansions (an expansion here takes microseconds).
      if ((id & 63) === 0 && budget.due() && budget.check(tree.count, id, d)) stop = true;
    }
  } catch (e) {
    if (e instanceof CompactBoundError) throw new Error(`internal error in the compact explorer: ${e.message}; rerun with --engine full`);
    throw e;
  }
  budget.transitions = transitions;
  return { counterexamples, stats: budget.stats(tree, stop, 'compact', { visited: exact ? 'exact' : 'fingerprints', bytes: (visited ? visited.bytes : fingerprints!.bytes) + tree.bytes + queue.bytes, workers: 1 }) };
}
