// Breadth-first search over operation sequences on the model itself (a Runner per state): the
// first violation found is at the smallest depth, so its path is a shortest counterexample.
// States are kept as (parent, op) pairs (src/explore/tree.ts). A state is not replayed from the
// start when it is expanded: breadth-first order expands siblings one after the other, so the
// state of each depth last built is kept and a state is built from its parent with one step
// (StateCache). The visited set holds 64-bit fingerprints of canonical encodings, or with
// --exact the encodings (src/explore/visited.ts). Several workers: src/explore/parallel.ts.

import type { Proc, Runner } from '../engine/run.js';
import type { Violation } from '../engine/result.js';
import type { Step } from '../scenario/ast.js';
import { canonicalEncode, fingerprint, type Words } from './canonical.js';
import type { StoryMatch } from './stories.js';
import { decodeOp, enabledOpsInto, type ExploreShape } from './ops.js';
import { SearchBudget, SearchTree, SPILL_FRACTION, spillFileName, TreeSpillError, type StopFlag } from './tree.js';
import { FingerprintReader, FingerprintSet, VisitedSet } from './visited.js';

export interface SearchBounds {
  depth: number;
  maxStates: number;
  maxMemoryMB: number;
  timeSec: number;
  /** Keep searching after a violation and collect one counterexample per violation kind. */
  all: boolean;
  /** Violation kinds that count (default: all). */
  kinds: Set<string> | null;
  /** Keep the canonical encodings of visited states, not 64-bit fingerprints (--exact). */
  exact?: boolean;
  /**
   * Where the full engine's one-thread search spills its tree when memory runs short (a file
   * that must not exist; default: a new name in the system's temporary directory). It is
   * removed when the search ends.
   */
  spillFile?: string;
  /** Tests: spill once the tree has this many states, whatever the memory. */
  spillAfterStates?: number;
  /** Tests: states a chunk of the tree holds (a power of two; small ones spill chunk by chunk). */
  spillChunk?: number;
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
  /**
   * Always `full` (the model itself, a Runner per state): the explorer has had one engine since
   * December 2026; kept because `--json` documents it (docs/json-format.md).
   */
  engine: 'full';
  /** What the visited set holds: 64-bit fingerprints, or the exact encodings (--exact). */
  visited: 'fingerprints' | 'exact';
  /** With fingerprints: the probability that a collision made the search skip a state (about n^2 / 2^65). */
  collisionProbability: number;
  /** Memory of the search's own structures (visited set, tree) over the states. */
  bytesPerState: number;
  /** Threads that expanded states. */
  workers: number;
  /**
   * The tree spilled to a file (src/explore/tree.ts), or null: the states whose records went to
   * the file, its size, the states the tree had when it began, its path (removed at the end).
   */
  spill: { states: number; bytes: number; atStates: number; file: string } | null;
}

export interface SearchResult {
  counterexamples: Counterexample[];
  stats: SearchStats;
}

/**
 * Where a search sends its violating transitions instead of keeping one counterexample per kind:
 * the path (packed operations from the start) and the violation kinds counted there. Returns true
 * to stop the search. Used by `--all` (one counterexample per cause) and `--baseline`.
 */
export type ViolationSink = (path: number[], kinds: string[]) => boolean;

/** A progress report; with `note`, an event to print on a line of its own (the tree began to spill). */
export type Progress = (s: { states: number; depth: number; frontier: number; statesPerSec: number; note?: string }) => void;

/** What reachedEvents compares a step's result with: the counters of the state it stepped from. */
export class ReachBase {
  cowCopies = 0;
  earlyCow = 0;
  reuses = 0;
  handles = 0;
  procs = 0;
  groups = 0;

  /** The counters of r (taken before r steps: the explorer steps the last child in place). */
  of(r: Runner): this {
    const st = r.k.stats;
    this.cowCopies = st.cowCopies;
    this.earlyCow = st.earlyCow;
    this.reuses = st.reuses;
    this.handles = r.handles.size;
    this.procs = r.procs.size;
    this.groups = groupCount(r);
    return this;
  }
}

/** Counters and flags that tell which interesting events a step from `before` to `after` reached. */
export function reachedEvents(before: ReachBase, after: Runner, out: { add(event: string): unknown; has(event: string): boolean }): void {
  const b = after.k.stats;
  if (b.cowCopies - b.earlyCow > before.cowCopies - before.earlyCow) out.add('cow-copy');
  if (b.reuses > before.reuses) out.add('reuse');
  if (b.earlyCow > before.earlyCow) out.add('early-cow');
  // A step adds a handle at the end of the map (insertion order; a copy keeps the order), and
  // drops one only by ending it: with more handles than before, the last ones are the new ones.
  if (after.handles.size > before.handles) {
    let i = 0;
    for (const lh of after.handles.values()) if (i++ >= before.handles) out.add(HANDLE_EVENTS[lh.h.kind]);
  }
  // Threads are never removed (an exited one stays, dead) and never change process: with as
  // many threads as before, there are as many processes.
  if (after.procs.size > before.procs) {
    if (groupCount(after) > before.groups) out.add('fork');
    else out.add('thread');
  }
  // A frame mapped by two processes while a handle holds it: where COW and GUP meet. Once
  // reached, the search needs it no more (it keeps the first, shallowest, depth): not looked for.
  if (out.has(SHARED_HELD)) return;
  for (const lh of after.handles.values()) {
    for (const pfn of lh.h.frames) if (pfn > 0 && after.k.frames.mapcount[pfn]! >= 2) out.add(SHARED_HELD);
  }
}

const SHARED_HELD = 'shared-page-with-extra-reference';

/** The event a new handle of each kind reaches. */
const HANDLE_EVENTS = { pin: 'pin', pipe: 'vmsplice', gup: 'gup', exclusive: 'device-exclusive' } as const;

/** The distinct thread groups groupCount() met so far (reused: nothing allocated per count). */
const groupsSeen: string[] = [];
let nGroupsSeen = 0;
const countGroup = (p: Proc): void => {
  for (let i = 0; i < nGroupsSeen; i++) if (groupsSeen[i] === p.group) return;
  groupsSeen[nGroupsSeen++] = p.group;
};

/** How many processes (thread groups) a state has, counted without allocating (forEach: no iterator made). */
function groupCount(r: Runner): number {
  nGroupsSeen = 0;
  r.procs.forEach(countGroup);
  return nGroupsSeen;
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

/** A state's parent, and the state of each depth last built, to build the next from. */
export class StateCache {
  private ids: number[] = [];
  private states: Runner[] = [];
  constructor(private readonly root: Runner, private readonly tree: SearchTree) {}

  /** State `id`: its parent (built, or kept) stepped by the operation that reached it. */
  get(id: number): Runner {
    const d = this.tree.depth(id);
    if (d === 0) return this.root;
    if (this.ids[d] === id) return this.states[d]!;
    // The state this one replaces at its depth is done with: its arrays are reused.
    const r = this.get(this.tree.parentOf(id)).clone(this.states[d]);
    // The invariants held when the state was first reached (Expander): not checked again.
    r.step(decodeOp(r, this.tree.opOf(id), false), d - 1, false);
    this.ids[d] = id;
    this.states[d] = r;
    return r;
  }

  /**
   * State `id`, as get() last returned it, given up to the caller to change in place (it is
   * built again if asked for later); null for the start state, which is kept. Breadth-first, a
   * state is asked for once more only as the parent of states of the next depth.
   */
  take(id: number): Runner | null {
    const d = this.tree.depth(id);
    if (d === 0 || this.ids[d] !== id) return null;
    this.ids[d] = -1;
    return this.states[d]!;
  }
}

/**
 * The states an expansion looks its children up in: lookup() says whether a state is new, and
 * add() then adds it, once the state checks it needs have passed (a violating state is not
 * added: every transition to it is reported).
 */
export interface StateSet {
  /** True if the state is new (not seen up to renaming). */
  lookup(r: Runner): boolean;
  /** Add the state lookup() last found new (nothing was looked up or added since). */
  add(): void;
}

/**
 * The visited set of a search: fingerprints, or exact encodings. A worker's expander uses one per
 * depth (startDepth): new there means not among the fingerprints visited before the depth (read
 * from shared memory; with --exact the coordinator decides) and not found by this expander in it.
 */
export class Visited implements StateSet {
  /** The fingerprint of the last encoding looked up. */
  readonly fp = new Int32Array(2);
  private fps: FingerprintSet | null;
  private keys: VisitedSet | null;
  /** A worker's depth: the fingerprints visited before it (null: none to consult). */
  private before: FingerprintReader | null = null;
  /** The slot lookup() found for the last encoding, and the encoding (exact). */
  private slot = -1;
  private encoded: Words | null = null;
  /** `shared`: the fingerprints in shared memory, for workers to read (src/explore/parallel.ts). */
  constructor(private readonly exact: boolean, private readonly shared = false) {
    this.fps = exact ? null : new FingerprintSet(shared);
    this.keys = exact ? new VisitedSet() : null;
  }

  /** A worker's next depth: empty again, and `before` the fingerprints visited before it. */
  startDepth(before: FingerprintReader | null): void {
    this.before = before;
    if (this.exact) this.keys = new VisitedSet();
    else this.fps = new FingerprintSet(this.shared);
  }

  /** The encoding lookup() last made (valid until the next lookup). */
  get words(): Words {
    return this.encoded!;
  }

  /** Add the state's canonical encoding: true if it is new. */
  addState(r: Runner): boolean {
    const w = canonicalEncode(r);
    return this.addWords(w.a, w.n);
  }

  lookup(r: Runner): boolean {
    const w = (this.encoded = canonicalEncode(r));
    fingerprint(w.a, this.fp, w.n);
    if (this.keys) this.slot = this.keys.find(w.a, w.n, this.fp[0]!);
    else this.slot = this.before !== null && this.before.has(this.fp[0]!, this.fp[1]!) ? -1 : this.fps!.find(this.fp[0]!, this.fp[1]!);
    return this.slot >= 0;
  }

  add(): void {
    const w = this.encoded!;
    if (this.keys) this.keys.insert(this.slot, w.a, w.n, this.fp[0]!);
    else this.fps!.insert(this.slot, this.fp[0]!, this.fp[1]!);
  }

  /** Add an encoding (its first n words): true if it is new. */
  addWords(key: ArrayLike<number>, n: number): boolean {
    fingerprint(key, this.fp, n);
    if (this.keys) return !this.keys.has(key, n, this.fp[0]!);
    return this.fps!.add(this.fp[0]!, this.fp[1]!);
  }

  /** Add a fingerprint made elsewhere: true if it is new. */
  addFingerprint(hi: number, lo: number): boolean {
    return this.fps!.add(hi, lo);
  }

  /** The fingerprint set (null with --exact). */
  get fingerprints(): FingerprintSet | null {
    return this.fps;
  }

  get size(): number {
    return this.keys ? this.keys.size : this.fps!.size;
  }

  get bytes(): number {
    return this.keys ? this.keys.bytes : this.fps!.bytes;
  }
}

/** What expanding one state found, for whoever keeps the states (a search, or a worker). */
export interface ExpandTarget {
  /** A state not seen before, reached by `op` from `id`; true stops the search. */
  fresh(id: number, op: number, child: Runner): boolean;
  /** A violating transition with the counted violations; true stops the search. */
  violation(id: number, op: number, child: Runner, fresh: Violation[]): boolean;
  /** Look at the bounds now and then; true stops the search. */
  due(): boolean;
}

/** Expanding states: every enabled operation on a copy of the state, judged and looked up. */
export class Expander {
  transitions = 0;
  /** Events reached ("sometimes" properties): name -> shortest depth. */
  readonly reached = new Map<string, number>();
  /** Where reachedEvents records what a transition to depth `depth` reached (no set made or cleared per transition). */
  private depth = 0;
  private readonly events = {
    add: (e: string): void => {
      if (!this.reached.has(e)) this.reached.set(e, this.depth);
    },
    has: (e: string): boolean => this.reached.has(e),
  };
  private readonly base: number;
  /** The last child, done with: the next copy goes into its arrays. */
  private spare: Runner | undefined;
  /** The operations enabled in the state being expanded (reused from state to state). */
  private readonly ops: number[] = [];
  /** The counters of the state being expanded, for reachedEvents (reused from state to state). */
  private readonly base0 = new ReachBase();

  constructor(
    readonly root: Runner, private readonly shape: ExploreShape, private readonly bounds: SearchBounds,
    readonly states: StateCache, private readonly visited: StateSet,
  ) {
    this.base = root.violations.length;
  }

  /** Expand state `id` at depth d; true: the search stops. */
  expand(id: number, d: number, to: ExpandTarget): boolean {
    const r = this.states.get(id);
    // Past the start state, no operation the kernel returns from changing nothing (ExploreOn's noop).
    const ops = this.ops;
    const n = enabledOpsInto(r, this.shape, ops, d > 0);
    const base = this.base0.of(r);
    for (let i = 0; i < n; i++) {
      const op = ops[i]!;
      if (to.due()) return true;
      // The last operation steps the state itself (nothing reads it after its expansion); the
      // others a copy, made in the last copy's arrays.
      let child = i === n - 1 ? this.states.take(id) : null;
      if (child === null) {
        child = r.clone(this.spare);
        this.spare = child;
      }
      // The accounting invariants, a function of the state alone, are checked once per state: a
      // state seen before, up to renaming, passed them when first reached (at no greater depth),
      // and a violating one is never added, so every transition to it checks them again. (Pin
      // coherence stays per transition: the key does not tell which page a pin was taken on.)
      const res = child.step(decodeOp(child, op, false), d, false);
      this.transitions++;
      if (res.na !== null) continue;
      this.depth = d + 1;
      reachedEvents(base, child, this.events);
      // A step that found something itself is judged whether or not its state is new (the
      // invariants add theirs to it, as one step does); any other only when its state is new.
      const stepViolated = child.violations.length !== this.base;
      if (!stepViolated && !this.visited.lookup(child)) continue;
      child.checkInvariants();
      const j = this.judge(id, op, child, to);
      if (j === STOP) return true;
      if (j === VIOLATES) continue; // a violating state is not expanded further
      if (stepViolated && !this.visited.lookup(child)) continue;
      this.visited.add();
      if (to.fresh(id, op, child)) return true;
    }
    return false;
  }

  /** The child's counted violations (none: CLEAN), to the target (which may STOP the search). */
  private judge(id: number, op: number, child: Runner, to: ExpandTarget): number {
    if (child.violations.length === this.base) return CLEAN;
    const fresh = child.violations.slice(this.base).filter((v) => this.bounds.kinds === null || this.bounds.kinds.has(v.kind));
    if (fresh.length === 0) return CLEAN;
    return to.violation(id, op, child, fresh) ? STOP : VIOLATES;
  }
}

const CLEAN = 0;
const VIOLATES = 1;
const STOP = 2;

/** The violation kinds among violations, sorted, once each. */
export function kindsOf(vs: readonly Violation[]): string[] {
  return [...new Set(vs.map((v) => v.kind))].sort();
}

/**
 * Where violating transitions go: the sink, or (without one) a counterexample for the first
 * violation of each kind, with its lines replayed. True: the search stops.
 */
export function violationTarget(root: Runner, tree: SearchTree, bounds: SearchBounds, out: Counterexample[], sink?: ViolationSink): (id: number, op: number, kinds: string[]) => boolean {
  const foundKinds = new Set<string>();
  return (id, op, kinds) => {
    if (sink) return sink(tree.path(id, op), kinds);
    if (!kinds.some((k) => !foundKinds.has(k))) return false;
    for (const k of kinds) foundKinds.add(k);
    const path = tree.path(id, op);
    const { r, lines } = replayPath(root, path);
    out.push({ steps: lines, violations: r.violations.slice(root.violations.length).filter((v) => bounds.kinds === null || bounds.kinds.has(v.kind)), depth: path.length });
    return !bounds.all;
  };
}

export function search(root: Runner, shape: ExploreShape, bounds: SearchBounds, progress?: Progress, stopFlag?: StopFlag, sink?: ViolationSink): SearchResult {
  const budget = new SearchBudget(bounds, progress, stopFlag);
  const tree = new SearchTree(bounds.spillChunk);
  const visited = new Visited(bounds.exact ?? false);
  visited.addState(root);
  const counterexamples: Counterexample[] = [];
  const onViolation = violationTarget(root, tree, bounds, counterexamples, sink);
  const ex = new Expander(root, shape, bounds, new StateCache(root, tree), visited);
  let cur = 0;
  let d = 0;
  // Memory short (or the tests' count): the tree goes to a file, the visited set stays.
  let spillAt = bounds.spillAfterStates ?? Infinity;
  const spill = (why: string): void => {
    spillAt = Infinity;
    const file = bounds.spillFile ?? spillFileName();
    tree.spill(file);
    budget.note(`${why}: the search tree spills to ${file} (${tree.count} states; the visited set stays in memory)`, tree.count, cur, d);
  };
  budget.onPressure = (rss) => spill(`resident memory ${rss} MiB, past ${Math.round(SPILL_FRACTION * 100)}% of --max-memory (${bounds.maxMemoryMB} MiB)`);
  const target: ExpandTarget = {
    fresh: (id, op) => {
      tree.add(id, op);
      if (tree.count >= spillAt) spill(`${spillAt} states`);
      return budget.full(tree.count);
    },
    violation: (id, op, _child, fresh) => onViolation(id, op, kindsOf(fresh)),
    // The bounds are looked at before each transition: one transition on a large state (a
    // --from scenario) can take long, so an expansion may end part way.
    due: () => budget.dueNow() && budget.check(tree.count, cur, d),
  };
  let stop = false;
  try {
    for (; cur < tree.count && !stop; cur++) {
      d = tree.depth(cur);
      budget.expanding(d);
      if (d >= bounds.depth) break; // breadth-first: every later state is as deep
      stop = ex.expand(cur, d, target);
    }
  } catch (e) {
    if (!(e instanceof TreeSpillError)) throw e;
    // The tree could not go to its file: memory is the bound after all.
    budget.note(e.message, tree.count, cur, d);
    budget.stoppedBy = 'memory';
    stop = true;
  } finally {
    tree.close();
  }
  budget.transitions = ex.transitions;
  for (const [e, at] of ex.reached) budget.reach(e, at);
  return { counterexamples, stats: budget.stats(tree, stop, { visited: bounds.exact ? 'exact' : 'fingerprints', bytes: visited.bytes + tree.bytes, workers: 1 }) };
}
