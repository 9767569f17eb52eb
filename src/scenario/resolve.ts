// Name resolution of steps: which processes, threads, regions and handles exist at each
// step, and (v1.1) which kernel paths started with `&` are still pending.
// One pass in step order; every check is a map lookup, so parsing stays linear.

import type { Pos } from './ast.js';
import { closest } from './errors.js';
import { hugetlbSplitRefused } from '../core/hugetlb.js';

/** A failed step: where, and what was wrong. Thrown inside the step parser, caught per line. */
export class StepFail {
  constructor(
    readonly pos: Pos,
    readonly message: string,
  ) {}
}

export type HandleKind = 'pin' | 'gup' | 'pipe' | 'exclusive';

export interface RegionInfo {
  pages: number;
  /** Where it was (last) mapped. */
  pos: Pos;
  /** Page ranges [lo, hi] no longer mapped (munmap; in a child, MADV_DONTFORK pages), merged. */
  gone: readonly (readonly [number, number])[];
  /** Page ranges [lo, hi] marked MADV_DONTFORK (a fork leaves them out of the child). */
  dontfork: readonly (readonly [number, number])[];
  /** (v1.2) MAP_HUGETLB: its VMAs split only on a huge page boundary (hugetlbSplitRefused). */
  hugetlb: boolean;
}

type Ranges = readonly (readonly [number, number])[];

/** The ranges with [lo, hi] added (add) or taken out (!add), sorted and merged. */
function editRanges(rs: Ranges, lo: number, hi: number, add: boolean): Ranges {
  const out: [number, number][] = [];
  for (const [a, b] of rs) {
    if (b < lo || a > hi) out.push([a, b]);
    else if (add) {
      lo = Math.min(lo, a);
      hi = Math.max(hi, b);
    } else {
      if (a < lo) out.push([a, lo - 1]);
      if (b > hi) out.push([hi + 1, b]);
    }
  }
  if (add) out.push([lo, hi]);
  out.sort((x, y) => x[0] - y[0]);
  const merged: [number, number][] = [];
  for (const r of out) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

/** Is page i in one of the ranges? */
function inRanges(rs: Ranges, i: number): boolean {
  for (const [a, b] of rs) if (a <= i && i <= b) return true;
  return false;
}

/**
 * Would a munmap (or, with `dontfork`, an madvise dontfork/dofork) of pages [lo, hi] of a hugetlb
 * region split one of its VMAs inside a huge page, which the kernel refuses (EINVAL, nothing
 * done)? Page `at` (lo, or hi + 1) lies inside a VMA when it is still mapped: every VMA of a
 * hugetlb region starts on a huge page boundary (the only splits allowed), so a mapped page off one
 * is past its VMA's start. madvise splits only the VMAs whose flag it changes.
 */
function refusesSplit(r: RegionInfo, lo: number, hi: number, dontfork: boolean | null = null): boolean {
  if (!r.hugetlb) return false;
  const inside = (at: number): boolean => at < r.pages && !inRanges(r.gone, at) && (dontfork === null || inRanges(r.dontfork, at) !== dontfork);
  return hugetlbSplitRefused(lo, hi + 1, inside(lo), inside(hi + 1));
}

/** Are all pages of the region unmapped (munmap, mremap'd away, or not inherited)? */
function allGone(r: RegionInfo): boolean {
  const g = r.gone;
  return g.length === 1 && g[0]![0] === 0 && g[0]![1] >= r.pages - 1;
}

/**
 * v1.1: a kernel path started with a trailing `&` and not yet ended by `finish`.
 * `child` and `handle` are set once the step has bound them.
 */
export interface PendingPath {
  /** The thread running it. */
  proc: string;
  /** The step as written, from its verb on: `fork Q &`. */
  text: string;
  /** Where the step starts. */
  pos: Pos;
  /** `fork ... &`: the child, which exists for name resolution only after `finish`. */
  child: string | null;
  /** `pin` / `gup` / `vmsplice ... &`: the handle, usable only after `finish`. */
  handle: string | null;
}

/** A process, or (v1.1) a thread: the names of the language share one namespace. */
export interface ProcInfo {
  name: string;
  createdAt: Pos;
  exitedAt: Pos | null;
  /**
   * The region table of its address space. v1.1: the threads of one process share this one
   * Map (an mmap by any of them is seen by all); fork gives the child a copy.
   */
  regions: Map<string, RegionInfo>;
  /** v1.1: the thread or process whose `thread` step created it; null for a process. */
  threadOf: string | null;
  /** v1.1: its kernel path started with `&` and not finished, or null. */
  pending: PendingPath | null;
  /** v1.1: its last finished path (for messages), or null. */
  finished: { start: Pos; end: Pos } | null;
  /** v1.1: while the `fork ... &` creating this process is pending: that path. */
  forking: PendingPath | null;
}

export interface HandleInfo {
  name: string;
  kind: HandleKind;
  /** Number of pages the handle covers, indexed from 0. */
  pages: number;
  /** The process that took it. */
  proc: string;
  pos: Pos;
  /** v1.1: while the `pin`/`gup`/`vmsplice ... &` taking it is pending: that path. */
  pending?: PendingPath | null;
}

const KIND_WORDS: Record<HandleKind, string> = {
  pin: 'a pin',
  gup: 'a gup reference',
  pipe: 'a pipe (vmsplice)',
  exclusive: 'a device-exclusive grant',
};

/** Describes a handle kind for messages: `a pin`, `a pipe (vmsplice)`. */
export function describeKind(kind: HandleKind): string {
  return KIND_WORDS[kind];
}

/** `process 'P'` or `thread 'T'`, for messages. */
export function describeProc(p: ProcInfo): string {
  return `${p.threadOf === null ? 'process' : 'thread'} '${p.name}'`;
}

const newProc = (name: string, createdAt: Pos, regions: Map<string, RegionInfo>, threadOf: string | null): ProcInfo => ({
  name,
  createdAt,
  exitedAt: null,
  regions,
  threadOf,
  pending: null,
  finished: null,
  forking: null,
});

/** The names live at a point of a scenario. Pass one to parseSteps to continue from it. */
export class NameEnv {
  readonly procs = new Map<string, ProcInfo>();
  /** Live handles. */
  readonly handles = new Map<string, HandleInfo>();
  /** Handles released and not bound again, with where and how. */
  readonly released = new Map<string, { kind: HandleKind; at: Pos; how: 'unpin' | 'put' }>();

  /** The process doing an mmap: the first mmap of a scenario creates it. */
  mmapProc(name: string, pos: Pos): ProcInfo {
    if (this.procs.size === 0) {
      const p = newProc(name, pos, new Map(), null);
      this.procs.set(name, p);
      return p;
    }
    if (!this.procs.has(name)) {
      const first = this.procs.keys().next().value;
      throw new StepFail(
        pos,
        `unknown process '${name}' (a process is created by its first mmap, or by fork); only the first process (${first}) is created by mmap, the others by fork`,
      );
    }
    return this.liveProc(name, pos);
  }

  /** A process or thread that exists (exited or not); not one whose `fork ... &` is pending. */
  knownProc(name: string, pos: Pos): ProcInfo {
    const p = this.procs.get(name);
    if (p === undefined) {
      throw new StepFail(pos, `unknown process '${name}' (a process is created by its first mmap, or by fork)`);
    }
    if (p.forking !== null) {
      throw new StepFail(pos, `${name} is being forked (line ${p.forking.pos.line}); it exists after \`${p.forking.proc} finish\``);
    }
    return p;
  }

  /** A process or thread that exists and has not exited. */
  liveProc(name: string, pos: Pos): ProcInfo {
    const p = this.knownProc(name, pos);
    if (p.exitedAt !== null) {
      throw new StepFail(pos, `${describeProc(p)} has exited (at line ${p.exitedAt.line}); it can do nothing more`);
    }
    return p;
  }

  /** `mmap NAME`: a new name, or one whose mapping is gone entirely (munmap, or a dontfork region in a child). */
  bindRegion(p: ProcInfo, region: string, pages: number, pos: Pos): void {
    const old = p.regions.get(region);
    if (old !== undefined) {
      if (!allGone(old)) {
        throw new StepFail(pos, `${describeProc(p)} still has region '${region}' mapped (since line ${old.pos.line}); mmap needs a new name, or one whose pages were all unmapped (munmap) first`);
      }
    }
    p.regions.set(region, { pages, pos, gone: [], dontfork: [], hugetlb: false });
  }

  /** (v1.2) `mmap NAME ... hugetlb`: the region just bound maps hugetlb pages. */
  markHugetlb(p: ProcInfo, region: string): void {
    const r = p.regions.get(region);
    if (r !== undefined) p.regions.set(region, { ...r, hugetlb: true });
  }

  /**
   * munmap of pages [lo, hi] of a region. False when the kernel refuses it (an end inside a huge
   * page of a hugetlb region: EINVAL, the pages stay mapped), as the model does (hugetlbVmOpSplit).
   */
  unmapRegion(p: ProcInfo, region: string, lo: number, hi: number): boolean {
    const r = p.regions.get(region);
    if (r === undefined) return true;
    if (refusesSplit(r, lo, hi)) return false;
    p.regions.set(region, { ...r, gone: editRanges(r.gone, lo, hi, true) });
    return true;
  }

  /**
   * v1.2 mremap of pages [lo, hi] of `region` to a new region `name` (bound at `pos`): the pages
   * leave the old region; the new one has them, with their MADV_DONTFORK marks.
   */
  mremapRegion(p: ProcInfo, region: string, lo: number, hi: number, name: string, pos: Pos): void {
    const r = p.regions.get(region)!;
    const old = p.regions.get(name);
    if (old !== undefined && !allGone(old)) {
      throw new StepFail(pos, `${describeProc(p)} still has region '${name}' mapped (since line ${old.pos.line}); mremap needs a new name for the moved pages, or one whose pages were all unmapped (munmap) first`);
    }
    const part = (rs: Ranges): Ranges => rs.filter(([a, b]) => b >= lo && a <= hi).map(([a, b]) => [Math.max(a, lo) - lo, Math.min(b, hi) - lo] as const);
    p.regions.set(region, { ...r, gone: editRanges(r.gone, lo, hi, true) });
    p.regions.set(name, { pages: hi - lo + 1, pos, gone: part(r.gone), dontfork: part(r.dontfork), hugetlb: r.hugetlb });
  }

  /** MADV_DONTFORK (on) / MADV_DOFORK (off) on pages [lo, hi] of a region; nothing when the kernel refuses it (as unmapRegion). */
  markDontfork(p: ProcInfo, region: string, lo: number, hi: number, on: boolean): void {
    const r = p.regions.get(region);
    if (r !== undefined && !refusesSplit(r, lo, hi, on)) p.regions.set(region, { ...r, dontfork: editRanges(r.dontfork, lo, hi, on) });
  }

  /** The size in pages of region `name` of `p`. */
  region(p: ProcInfo, name: string, pos: Pos): number {
    const r = p.regions.get(name);
    if (r !== undefined) return r.pages;
    const names = [...p.regions.keys()];
    const guess = closest(name, names);
    const hint = guess === null ? '' : `; did you mean '${guess}'?`;
    const have = names.length === 0 ? `${p.name} has no regions` : `regions of ${p.name}: ${names.join(', ')}`;
    throw new StepFail(pos, `unknown region '${name}' of ${describeProc(p)} (${have}; a region is bound by mmap)${hint}`);
  }

  /**
   * fork: the child gets a copy of the parent's region table (of its thread group's, when the
   * parent is a thread), as it is now. `pending`: the `fork ... &` path that creates it; the
   * child then exists for name resolution only once that path is finished.
   */
  fork(parent: ProcInfo, child: string, pos: Pos, pending: PendingPath | null = null): ProcInfo {
    const old = this.procs.get(child);
    if (old !== undefined) {
      throw new StepFail(pos, `${describeProc(old)} already exists (since line ${old.createdAt.line}); fork needs a new process name`);
    }
    // The child maps what the parent maps, but for MADV_DONTFORK pages.
    const regions = new Map<string, RegionInfo>();
    for (const [name, r] of parent.regions) {
      let gone = r.gone;
      for (const [lo, hi] of r.dontfork) gone = editRanges(gone, lo, hi, true);
      regions.set(name, { ...r, gone, dontfork: [] });
    }
    const p = newProc(child, pos, regions, null);
    this.procs.set(child, p);
    if (pending !== null) {
      pending.child = child;
      p.forking = pending;
    }
    return p;
  }

  /** v1.1 `P thread T`: T shares P's region table (the same Map, not a copy). */
  thread(creator: ProcInfo, name: string, pos: Pos): ProcInfo {
    const old = this.procs.get(name);
    if (old !== undefined) {
      throw new StepFail(pos, `${describeProc(old)} already exists (since line ${old.createdAt.line}); thread needs a new name`);
    }
    const t = newProc(name, pos, creator.regions, creator.name);
    this.procs.set(name, t);
    return t;
  }

  /** `X exit` ends X only: the region table lives on while another thread of X's process does. */
  exit(p: ProcInfo, pos: Pos): void {
    p.exitedAt = pos;
  }

  /**
   * v1.1: the error for an operation by `p` other than `step` / `finish` while `p` has a
   * pending path (starting another path included), or null when it has none.
   */
  busy(p: ProcInfo): string | null {
    const path = p.pending;
    if (path === null) return null;
    return `${p.name} is inside \`${path.text}\` started at line ${path.pos.line}: use \`${p.name} step\` or \`${p.name} finish\``;
  }

  /** v1.1: `p` starts the kernel path of step `text` (from its verb on) at `pos`. */
  startPath(p: ProcInfo, text: string, pos: Pos): PendingPath {
    const path: PendingPath = { proc: p.name, text, pos, child: null, handle: null };
    p.pending = path;
    return path;
  }

  /** v1.1: `p step` / `p finish` (at `pos`, the verb) needs a pending path. */
  pendingPath(p: ProcInfo, verb: 'step' | 'finish', pos: Pos): PendingPath {
    if (p.pending !== null) return p.pending;
    const last = p.finished === null ? '' : ` (its last one, started at line ${p.finished.start.line}, finished at line ${p.finished.end.line})`;
    throw new StepFail(
      pos,
      `\`${p.name} ${verb}\` needs a pending kernel path, and ${p.name} has none${last}; a path is started by a trailing '&' on write, fork, pin, gup or vmsplice`,
    );
  }

  /** v1.1: `p finish` at `pos`: the child of a fork now exists, the handle taken may be used. */
  finishPath(p: ProcInfo, pos: Pos): void {
    const path = p.pending;
    if (path === null) return;
    p.pending = null;
    p.finished = { start: path.pos, end: pos };
    if (path.child !== null) {
      const c = this.procs.get(path.child);
      if (c !== undefined && c.forking === path) c.forking = null;
    }
    if (path.handle !== null) {
      const h = this.handles.get(path.handle);
      if (h !== undefined && h.pending === path) h.pending = null;
    }
  }

  /**
   * Binds handle `name` (by pin, gup, vmsplice, device exclusive). `pending`: the `... &`
   * path taking it; the handle may then be used only once that path is finished.
   */
  bindHandle(name: string, kind: HandleKind, pages: number, proc: string, pos: Pos, pending: PendingPath | null = null): void {
    const old = this.handles.get(name);
    if (old !== undefined) {
      const how =
        old.kind === 'pin'
          ? 'unpin it first, or choose another name'
          : old.kind === 'exclusive'
            ? 'choose another name'
            : 'put it first, or choose another name';
      throw new StepFail(pos, `handle '${name}' is already bound (${describeKind(old.kind)} taken at line ${old.pos.line}); ${how}`);
    }
    this.released.delete(name);
    this.handles.set(name, pending === null ? { name, kind, pages, proc, pos } : { name, kind, pages, proc, pos, pending });
    if (pending !== null) pending.handle = name;
  }

  /** Whether `name` is a live handle. */
  isHandle(name: string): boolean {
    return this.handles.has(name);
  }

  /** A live handle, not one still being taken by a pending path. */
  handle(name: string, pos: Pos): HandleInfo {
    const h = this.handles.get(name);
    if (h === undefined) throw new StepFail(pos, this.missingHandle(name));
    const path = h.pending;
    if (path != null) {
      throw new StepFail(
        pos,
        `handle '${name}' is being taken by \`${path.proc} ${path.text}\` (line ${path.pos.line}); it may be used after \`${path.proc} finish\``,
      );
    }
    return h;
  }

  /** The message for a handle that is not live. */
  missingHandle(name: string): string {
    const gone = this.released.get(name);
    if (gone !== undefined) {
      return `handle '${name}' was released at line ${gone.at.line} (by ${gone.how}); it can no longer be used`;
    }
    const names = [...this.handles.keys()];
    const guess = closest(name, names);
    const hint = guess === null ? '' : `; did you mean '${guess}'?`;
    const have = names.length === 0 ? 'no handle is live' : `live handles: ${names.join(', ')}`;
    // `P put buf`: a region's name where a handle's goes (regions and handles are two name spaces).
    const owner = [...this.procs.values()].find((p) => p.regions.has(name));
    const region = owner === undefined ? '' : `; '${name}' is a region of ${owner.name}, not a handle`;
    return `unknown handle '${name}' (${have}; a handle is bound by 'as NAME')${region}${hint}`;
  }

  /** unpin (pins only) or put (gup references and pipes). */
  release(name: string, how: 'unpin' | 'put', pos: Pos): void {
    const h = this.handle(name, pos);
    if (how === 'unpin' && h.kind !== 'pin') {
      const instead = h.kind === 'exclusive' ? 'a grant is not released by a step' : `use 'put ${name}'`;
      throw new StepFail(pos, `cannot unpin '${name}': it is ${describeKind(h.kind)}, not a pin; ${instead}`);
    }
    if (how === 'put' && h.kind !== 'gup' && h.kind !== 'pipe') {
      const instead = h.kind === 'pin' ? `use 'unpin ${name}'` : 'a grant is not released by a step';
      throw new StepFail(pos, `cannot put '${name}': it is ${describeKind(h.kind)}, not a gup reference or a pipe; ${instead}`);
    }
    this.handles.delete(name);
    this.released.set(name, { kind: h.kind, at: pos, how });
  }
}
