// The explorer's operations, from the declarations: which are enabled in a state (each a packed
// integer, so a state's path costs 4 bytes) and the step each decodes to against the state it
// applies to. src/explore/ops.ts gives these to the search under their old names.

import { profileHas, type Profile } from '../core/profile.js';
import type { Proc, Runner } from '../engine/run.js';
import type { Region } from '../engine/state.js';
import type { PageSel, Step } from '../scenario/ast.js';
import { DECLS } from './index.js';
import type { ExploreArgs, ExploreOp } from './types.js';

/** Every explorer operation, in the order of their codes. */
export const EXPLORE_OPS: readonly ExploreOp[] = DECLS.flatMap((d) => d.explore ?? []).sort((a, b) => a.code - b.code);

/**
 * Codes left free on purpose, for an operation being added on another branch, so that the codes
 * of both stay what they are when the branches meet (none today: mremap took 31).
 */
export const RESERVED_CODES: readonly number[] = [];

/** The explorer operations by code. */
const BY_CODE: readonly (ExploreOp | undefined)[] = EXPLORE_OPS.reduce<(ExploreOp | undefined)[]>((a, e) => {
  a[e.code] = e;
  return a;
}, []);

/** Operation names for --ops, in the order of their codes. */
export const OP_NAMES: readonly string[] = EXPLORE_OPS.map((e) => e.name);

/** The --ops default. */
export const DEFAULT_OPS: readonly string[] = EXPLORE_OPS.filter((e) => e.default).map((e) => e.name);

/** Names given to processes in creation order. */
export const PROC_NAMES = ['P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W'];

export interface ExploreShape {
  /** Most processes alive at once. */
  procs: number;
  /** Most threads per process (v1.1 interleavings). */
  threads: number;
  /** Most handles live at once. */
  handles: number;
  ops: readonly string[];
  /**
   * The page operations touch only the first `pageLimit` pages of the explored region (default:
   * all of them): a THP start maps 512 pages, of which the search tries the first few (the head
   * and its first tails) while every state still holds the whole folio.
   */
  pageLimit?: number;
}

const pack = (code: number, proc: number, page: number, extra: number): number =>
  (code << 24) | (proc << 20) | (page << 4) | extra;

const BY_NAME = new Map(EXPLORE_OPS.map((e) => [e.name, e]));

/** The name of a thread's region first in name order, the one the explorer's page operations use (undefined: none). */
function firstRegionName(p: Proc): string | undefined {
  let name: string | undefined;
  for (const n of p.regions.keys()) if (name === undefined || n < name) name = n;
  return name;
}

/** A thread's region first in name order (undefined: none). */
function firstRegion(p: Proc): Region | undefined {
  const name = firstRegionName(p);
  return name === undefined ? undefined : p.regions.get(name);
}

/**
 * The threads of the state enabledOps() is looking at, in creation order; the indices (in procs) of
 * those free to start an operation, and their first regions: arrays reused from state to state.
 */
const scratch = { procs: [] as Proc[], alive: [] as number[], firstRegions: [] as (Region | undefined)[] };

/**
 * Every operation enabled in this state, in a fixed order (the order of shape.ops), into `out`
 * (its elements replaced; default: a new array), which is returned. With `skipNoops`, not the
 * instances the kernel returns from changing nothing (ExploreOn's `noop`; the search's, past the
 * start state).
 */
export function enabledOps(r: Runner, shape: ExploreShape, out: number[] = [], skipNoops = false): number[] {
  const n = enabledOpsInto(r, shape, out, skipNoops);
  if (out.length !== n) out.length = n;
  return out;
}

/**
 * enabledOps() written to out[0..n), n returned: `out` is not cut to length, so an array reused
 * from state to state (the explorer's) keeps its storage and is written in bounds once grown.
 */
export function enabledOpsInto(r: Runner, shape: ExploreShape, out: number[], skipNoops = false): number {
  const { procs, alive, firstRegions } = scratch;
  let count = 0;
  procs.length = 0;
  alive.length = 0;
  // A kernel path in progress: a step may run it to its end first (waitForMmapLock), so none is a no-op.
  let busy = false;
  for (const p of r.procs.values()) {
    // A thread inside a kernel path started with `&` can only take its next step.
    if (p.alive && !p.task) alive.push(procs.length);
    else if (p.alive) busy = true;
    procs.push(p);
  }
  const noops = skipNoops && !busy;
  const groupsAlive = groupsAliveOf(procs);
  // A `fork &` in progress has its child (a process, a name) when it ends: counted already.
  let forking = 0;
  for (const p of procs) if (p.alive && p.task?.kind === 'fork') forking++;
  const handles = r.handles.size;
  let regionsFound = false;
  for (const name of shape.ops) {
    const e = BY_NAME.get(name);
    if (!e) continue;
    const code = e.code;
    const on = e.on;
    switch (on.kind) {
      case 'fork':
        if (groupsAlive + forking < shape.procs && procs.length + forking < PROC_NAMES.length) {
          for (const pi of alive) out[count++] = pack(code, pi, 0, 0);
        }
        break;
      case 'thread':
        if (procs.length + forking < PROC_NAMES.length) {
          for (const pi of alive) if (threadsAliveIn(procs, procs[pi]!.group) < shape.threads) out[count++] = pack(code, pi, 0, 0);
        }
        break;
      case 'pending':
        for (let i = 0; i < procs.length; i++) if (procs[i]!.alive && procs[i]!.task) out[count++] = pack(code, i, 0, 0);
        break;
      case 'once':
        if (!(noops && on.noop?.(r.k))) out[count++] = pack(code, 0, 0, 0);
        break;
      case 'proc':
        for (const pi of alive) {
          const p = procs[pi]!;
          if (on.when && !on.when(p)) continue;
          if (noops && on.noop) {
            const reg = firstRegion(p);
            if (reg !== undefined && on.noop(r.k, p, reg)) continue;
          }
          out[count++] = pack(code, pi, 0, 0);
        }
        break;
      case 'handle': {
        let i = 0;
        for (const lh of r.handles.values()) {
          if (on.accepts(lh.h)) out[count++] = pack(code, Math.max(0, holderOf(procs, lh.proc)), 0, i);
          i++;
        }
        break;
      }
      case 'page': {
        if (on.takesHandle && handles >= shape.handles) break;
        // One region is explored: the first in name order (found once per state).
        if (!regionsFound) {
          firstRegions.length = 0;
          for (const pi of alive) firstRegions.push(firstRegion(procs[pi]!));
          regionsFound = true;
        }
        for (let ai = 0; ai < alive.length; ai++) {
          const reg = firstRegions[ai];
          if (reg === undefined) continue;
          const pi = alive[ai]!;
          const p = procs[pi]!;
          for (let pg = 0, n = Math.min(reg.n, shape.pageLimit ?? reg.n); pg < n; pg++) {
            if (on.when && !on.when(p, reg.start + pg)) continue;
            for (let v = 0; v < (on.variants ?? 1); v++) {
              if (noops && on.noop && on.noop(r.k, p, reg.start + pg, v)) continue;
              out[count++] = pack(code, pi, pg, v);
            }
          }
        }
      }
    }
  }
  return count;
}

/** How many processes (thread groups) have a live thread. */
function groupsAliveOf(procs: readonly Proc[]): number {
  let n = 0;
  for (let i = 0; i < procs.length; i++) {
    const p = procs[i]!;
    if (!p.alive) continue;
    let before = false;
    for (let j = 0; j < i && !before; j++) before = procs[j]!.alive && procs[j]!.group === p.group;
    if (!before) n++;
  }
  return n;
}

/** The live threads of a process. */
function threadsAliveIn(procs: readonly Proc[], group: Proc['group']): number {
  let n = 0;
  for (const q of procs) if (q.alive && q.group === group) n++;
  return n;
}

/** The index of the thread named `name` (-1: none). */
function holderOf(procs: readonly Proc[], name: string): number {
  for (let i = 0; i < procs.length; i++) if (procs[i]!.name === name) return i;
  return -1;
}

/** The position of every decoded step (shared: nothing writes a step's position). */
const POS = { line: 0, col: 1 };

/**
 * The arguments decodeOp gives an operation's decode and text, reused from one call to the next
 * (they read them while they run; the step keeps only strings and the new `sel`): no closures
 * are made per transition.
 */
class DecodeArgs implements ExploreArgs {
  r!: Runner;
  readonly pos = POS;
  /** The thread the operation acts as (undefined: none there). */
  p: Proc | undefined;
  region = 'buf';
  proc = 'P';
  sel!: PageSel;
  regionPages = 1;
  handle = 'h';
  extra = 0;

  newHandle(): string {
    for (let i = 1; ; i++) {
      const name = handleName(i);
      if (!this.r.handles.has(name) && !this.pending(name, 'handle')) return name;
    }
  }

  newProc(): string {
    for (const n of PROC_NAMES) if (!this.r.procs.has(n) && !this.pending(n, 'child')) return n;
    throw new Error('internal error: no process name left');
  }

  /**
   * True if a kernel path in progress (a thread's taskStep) makes `name` when it ends: a handle
   * (`handle`), or a forked child (`child`). Looked up without a set: there are few threads.
   */
  private pending(name: string, what: 'handle' | 'child'): boolean {
    for (const p of this.r.procs.values()) {
      const t = p.taskStep;
      if (!t) continue;
      if (what === 'handle' ? 'handle' in t && t.handle === name : t.op === 'fork' && t.child === name) return true;
    }
    return false;
  }

  newRegion(): string {
    const regions = this.p?.regions;
    let n = 1;
    while (regions?.has(`${this.region}_m${n}`)) n++;
    return `${this.region}_m${n}`;
  }

  fresh(prefix: string): string {
    return this.r.values.name(this.r.values.fresh(prefix));
  }

  /** Made when a text asks for it. */
  get at(): string {
    return `${this.region}[${this.sel.lo}]`;
  }
}

const args = new DecodeArgs();

/** Handle names `h0`.. made once: newHandle() looks them up on every transition that takes a handle. */
const HANDLE_NAMES: readonly string[] = Array.from({ length: 32 }, (_, i) => `h${i}`);

/** The name of the i-th handle (`h${i}`). */
function handleName(i: number): string {
  return HANDLE_NAMES[i] ?? `h${i}`;
}

/**
 * Decode a packed operation against the state it applies to. Without `text` the step's text is
 * left empty, and so is its record's (recordsText): the explorer's transitions, of which the
 * search reads only the violations; a counterexample's steps are decoded again with their text.
 */
export function decodeOp(r: Runner, op: number, text = true): Step {
  const code = op >>> 24;
  const procIdx = (op >>> 20) & 15;
  const page = (op >>> 4) & 0xffff;
  const extra = op & 15;
  const e = BY_CODE[code]!;
  // The procIdx-th thread, its first region in name order, the extra-th handle: looked up
  // without arrays.
  let p: Proc | undefined;
  let i = 0;
  for (const q of r.procs.values()) {
    if (i++ === procIdx) {
      p = q;
      break;
    }
  }
  const region = (p && firstRegionName(p)) ?? 'buf';
  let handle = 'h';
  i = 0;
  for (const name of r.handles.keys()) {
    if (i++ === extra) {
      handle = name;
      break;
    }
  }
  args.r = r;
  args.p = p;
  args.region = region;
  args.proc = p?.name ?? 'P';
  args.sel = { region, all: false, lo: page, hi: page, pos: POS };
  args.regionPages = p?.regions.get(region)?.n ?? 1;
  args.handle = handle;
  args.extra = extra;
  // A new object, with its pos and an empty text (ExploreOp.decode).
  const step = e.decode(args);
  if (text) step.text = e.text(args, step);
  return step as unknown as Step;
}

/**
 * The operations of `ops` the profile has the kernel part for, and those it does not (ExploreOp's
 * `needs`: each of their transitions would be n/a there, so the search leaves them out).
 */
export function opsOnProfile(ops: readonly string[], profile: Profile): { kept: string[]; lacking: string[] } {
  const kept: string[] = [];
  const lacking: string[] = [];
  for (const o of ops) {
    const needs = BY_NAME.get(o)?.needs;
    (needs === undefined || profileHas(profile, needs) ? kept : lacking).push(o);
  }
  return { kept, lacking };
}
