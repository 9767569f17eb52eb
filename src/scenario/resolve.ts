// Name resolution of steps: which processes, regions and handles exist at each step.
// One pass in step order; every check is a map lookup, so parsing stays linear.

import type { Pos } from './ast.js';
import { closest } from './errors.js';

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
}

export interface ProcInfo {
  name: string;
  createdAt: Pos;
  exitedAt: Pos | null;
  regions: Map<string, RegionInfo>;
}

export interface HandleInfo {
  name: string;
  kind: HandleKind;
  /** Number of pages the handle covers, indexed from 0. */
  pages: number;
  /** The process that took it. */
  proc: string;
  pos: Pos;
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
      const p: ProcInfo = { name, createdAt: pos, exitedAt: null, regions: new Map() };
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

  /** A process that exists (exited or not). */
  knownProc(name: string, pos: Pos): ProcInfo {
    const p = this.procs.get(name);
    if (p === undefined) {
      throw new StepFail(pos, `unknown process '${name}' (a process is created by its first mmap, or by fork)`);
    }
    return p;
  }

  /** A process that exists and has not exited. */
  liveProc(name: string, pos: Pos): ProcInfo {
    const p = this.knownProc(name, pos);
    if (p.exitedAt !== null) {
      throw new StepFail(pos, `process '${name}' has exited (at line ${p.exitedAt.line}); it can do nothing more`);
    }
    return p;
  }

  bindRegion(p: ProcInfo, region: string, pages: number, pos: Pos): void {
    p.regions.set(region, { pages, pos });
  }

  /** The size in pages of region `name` of `p`. */
  region(p: ProcInfo, name: string, pos: Pos): number {
    const r = p.regions.get(name);
    if (r !== undefined) return r.pages;
    const names = [...p.regions.keys()];
    const guess = closest(name, names);
    const hint = guess === null ? '' : `; did you mean '${guess}'?`;
    const have = names.length === 0 ? `${p.name} has no regions` : `regions of ${p.name}: ${names.join(', ')}`;
    throw new StepFail(pos, `unknown region '${name}' of process '${p.name}' (${have}; a region is bound by mmap)${hint}`);
  }

  /** fork: the child gets every region of the parent. */
  fork(parent: ProcInfo, child: string, pos: Pos): ProcInfo {
    const old = this.procs.get(child);
    if (old !== undefined) {
      throw new StepFail(pos, `process '${child}' already exists (since line ${old.createdAt.line}); fork needs a new process name`);
    }
    const regions = new Map<string, RegionInfo>();
    for (const [k, v] of parent.regions) regions.set(k, v);
    const p: ProcInfo = { name: child, createdAt: pos, exitedAt: null, regions };
    this.procs.set(child, p);
    return p;
  }

  exit(p: ProcInfo, pos: Pos): void {
    p.exitedAt = pos;
  }

  /** Binds handle `name` (by pin, gup, vmsplice, device exclusive). */
  bindHandle(name: string, kind: HandleKind, pages: number, proc: string, pos: Pos): void {
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
    this.handles.set(name, { name, kind, pages, proc, pos });
  }

  /** Whether `name` is a live handle. */
  isHandle(name: string): boolean {
    return this.handles.has(name);
  }

  /** A live handle. */
  handle(name: string, pos: Pos): HandleInfo {
    const h = this.handles.get(name);
    if (h !== undefined) return h;
    throw new StepFail(pos, this.missingHandle(name));
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
    return `unknown handle '${name}' (${have}; a handle is bound by 'as NAME')${hint}`;
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
