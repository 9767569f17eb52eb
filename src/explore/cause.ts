// Why a counterexample violates: the kernel decisions that produced it. A counterexample is
// replayed on a tracing Runner; what the violation is about is found (the frames it names, the
// frame the last step's page maps, the handle it is about and that handle's frames), and every
// decision the kernel took on those frames becomes a label: the fault that reused or copied and
// the rule that decided (mapcount, refcount, PageAnonExclusive), what GUP pinned (the zero
// page, a shared page, an exclusive one), what fork did with a page a pin or a pipe held. Two
// counterexamples with the same labels are the same finding; its one-line name is the labels
// in path order (docs/explorer.md, "Findings").

import { PG_SWAPCACHE, PTE_PRESENT } from '../core/constants.js';
import type { KEvent } from '../core/events.js';
import { pteSlot } from '../core/walk.js';
import type { Runner } from '../engine/run.js';
import type { Violation } from '../engine/result.js';
import type { Step } from '../scenario/ast.js';
import { decodeOp } from './ops.js';
import { replayText } from './search.js';

export interface Cause {
  /** The identity of the finding: the decision labels (the violation kinds when there are none). */
  key: string;
  /** The decisions, in the order the path took them. */
  decisions: string[];
  /** One line: the decisions joined, or what was violated when no decision is involved. */
  name: string;
}

/** What a handle held when it was taken. */
interface HandleInfo {
  name: string;
  /** The step that took it. */
  at: number;
  kind: 'pin' | 'gup' | 'pipe' | 'exclusive';
  write: boolean;
  frames: number[];
}

interface StepInfo {
  step: Step;
  events: KEvent[];
  /** Handles this step created. */
  newHandles: HandleInfo[];
  /** Frames in use before and after the step: pfn -> [refcount, mapcount]. */
  before: Map<number, [number, number]>;
  after: Map<number, [number, number]>;
  /** Handles alive before the step, by frame: the kinds holding it. */
  heldBefore: Map<number, Set<string>>;
}

function frameCounts(r: Runner): Map<number, [number, number]> {
  const f = r.k.frames;
  const out = new Map<number, [number, number]>();
  for (let pfn = 0; pfn < f.top; pfn++) {
    if (f.refcount[pfn]! > 0 || f.mapcount[pfn]! > 0) out.set(pfn, [f.refcount[pfn]!, f.mapcount[pfn]!]);
  }
  return out;
}

function heldBy(r: Runner): Map<number, Set<string>> {
  const out = new Map<number, Set<string>>();
  for (const [, lh] of r.handles) {
    for (const pfn of lh.h.frames) {
      if (pfn < 0) continue;
      let s = out.get(pfn);
      if (!s) out.set(pfn, (s = new Set()));
      s.add(holderWord(lh.h.kind, lh.h.write));
    }
  }
  return out;
}

function holderWord(kind: HandleInfo['kind'], write: boolean): string {
  return handleWord({ kind, write } as HandleInfo);
}

/** The frame `proc` maps at page `page` of `region` now, or -1. */
function mappedFrame(r: Runner, proc: string, region: string, page: number): number {
  const p = r.procs.get(proc);
  const reg = p?.regions.get(region);
  if (!p || !reg || !p.mm.alive) return -1;
  const slot = pteSlot(r.k, p.mm, reg.start + page);
  if (slot < 0 || !(r.k.tables.bits[slot]! & PTE_PRESENT)) return -1;
  return r.k.tables.entry[slot]!;
}

/**
 * The last prefix replayed: a search meets the violating children of one state one after the
 * other, so their common prefix is replayed once.
 */
export interface ReplayCache {
  key: string;
  r: Runner | null;
  infos: StepInfo[];
  steps: Step[];
  lines: string[];
}

export function newReplayCache(): ReplayCache {
  return { key: '', r: null, infos: [], steps: [], lines: [] };
}

/** Replay `path` (packed operations) on `root`, which must trace events; what each step did. */
function replayTraced(root: Runner, path: readonly number[], cache?: ReplayCache): { r: Runner; infos: StepInfo[]; steps: Step[]; lines: string[] } {
  const prefix = path.slice(0, -1).join(',');
  let r: Runner;
  let infos: StepInfo[];
  let steps: Step[];
  let lines: string[];
  let from: number;
  if (cache && cache.r !== null && cache.key === prefix) {
    r = cache.r.clone();
    infos = cache.infos.slice();
    steps = cache.steps.slice();
    lines = cache.lines.slice();
    from = path.length - 1;
  } else {
    r = root.clone();
    infos = [];
    steps = [];
    lines = [];
    from = 0;
  }
  for (let i = from; i < path.length; i++) {
    if (cache && i === path.length - 1 && from === 0) {
      cache.key = prefix;
      cache.r = r.clone();
      cache.infos = infos.slice();
      cache.steps = steps.slice();
      cache.lines = lines.slice();
    }
    const step = decodeOp(r, path[i]!);
    const before = frameCounts(r);
    const heldBefore = heldBy(r);
    const had = new Set(r.handles.keys());
    const { record } = r.step(step, i);
    const newHandles: HandleInfo[] = [];
    for (const [name, lh] of r.handles) {
      if (!had.has(name)) newHandles.push({ name, at: i, kind: lh.h.kind, write: lh.h.write, frames: [...lh.h.frames] });
    }
    infos.push({ step, events: record.events, newHandles, before, after: frameCounts(r), heldBefore });
    steps.push(step);
    lines.push(replayText(r, step));
  }
  return { r, infos, steps, lines };
}

type LastStep = Step & { proc?: string; sel?: { region: string; lo: number }; ref?: { handle: string }; handle?: string };

/**
 * What the violation is about: `core`, the frames it names, the frame the last step's page maps
 * and the frames of the handle it is about; `primary`, that handle (the one the last step uses,
 * else the one the violation names, else the first taken on a frame of the story, following
 * copies back); null when no handle is involved.
 */
function focus(r: Runner, infos: StepInfo[], violations: Violation[]): { core: Set<number>; primary: HandleInfo | null } {
  const core = new Set<number>();
  for (const v of violations) for (const f of v.frames) if (f >= 0) core.add(f);
  const last = infos[infos.length - 1]!.step as LastStep;
  if (last.sel && last.proc) {
    const pfn = mappedFrame(r, last.proc, last.sel.region, last.sel.lo);
    if (pfn >= 0) core.add(pfn);
  }
  const taken = infos.flatMap((s) => s.newHandles);
  const byName = (n: string | undefined): HandleInfo | null => (n === undefined ? null : taken.find((h) => h.name === n) ?? null);
  let primary = byName(last.ref?.handle ?? (last.op === 'unpin' || last.op === 'put' ? last.handle : undefined));
  if (primary === null) {
    for (const v of violations) {
      const m = /\b([A-Za-z_][\w-]*)\[\d+\]/.exec(v.message);
      primary ??= byName(m?.[1]);
    }
  }
  if (primary === null) {
    // Follow copies back from the core: the first handle taken on one of those frames.
    const lineage = new Set(core);
    for (let i = infos.length - 1; i >= 0; i--) {
      for (const e of infos[i]!.events) {
        if ((e.type === 'wp-copy' || e.type === 'early-cow') && e.pfn2 >= 0 && lineage.has(e.pfn2) && e.pfn >= 0) lineage.add(e.pfn);
      }
    }
    primary = taken.find((h) => h.frames.some((f) => lineage.has(f))) ?? null;
  }
  if (primary !== null) for (const f of primary.frames) if (f >= 0) core.add(f);
  return { core, primary };
}

/** The state of a page as a pin/reference found it. */
function pageWord(pfn: number, counts: Map<number, [number, number]>): string {
  if (pfn === 0) return 'the zero page';
  const c = counts.get(pfn);
  if (c && c[1] > 1) return 'a page shared with another process';
  return 'an exclusive page';
}

function handleWord(h: HandleInfo): string {
  switch (h.kind) {
    case 'pin': return h.write ? 'R/W pin' : 'R/O pin';
    case 'gup': return 'GUP reference';
    case 'pipe': return 'vmsplice reference';
    case 'exclusive': return 'device-exclusive grant';
  }
}

/** A trace's rule, numbers and frame names left out. */
function plainWhy(why: string): string {
  return why.replace(/\b\d+\b/g, 'N').replace(/\s+/g, ' ').trim();
}

/** The labels of one step's decisions about the story's frames. */
function stepLabels(info: StepInfo, at: number, F: Set<number>, primary: HandleInfo | null, k: Runner['k']): string[] {
  const out: string[] = [];
  const { step } = info;
  // What held a frame before this step: the handle the violation is about, else another one.
  const holderOf = (pfn: number): string | null => {
    if (primary !== null && primary.at < at && primary.frames.includes(pfn)) return `the ${handleWord(primary)}`;
    const held = info.heldBefore.get(pfn);
    return held ? `a ${[...held].sort()[0]!}` : null;
  };
  for (const e of info.events) {
    // A copy counts when it moved a mapping away from a frame of the story (not when it only
    // made one: the history of a frame before it mattered is another story).
    const touches = e.type === 'wp-copy' || e.type === 'early-cow' ? e.pfn >= 0 && F.has(e.pfn) : (e.pfn >= 0 && F.has(e.pfn)) || (e.pfn2 >= 0 && F.has(e.pfn2));
    if (!touches) continue;
    switch (e.type) {
      case 'zero-fault':
        out.push('a read fault mapped the zero page');
        break;
      case 'wp-reuse': {
        const unshare = e.why.startsWith('unshare');
        const rule = e.why.startsWith('PageAnonExclusive') ? 'PageAnonExclusive'
          : e.why.startsWith('mapcount') ? 'mapcount' : e.why.startsWith('refcount') ? 'refcount' : unshare ? 'exclusive' : plainWhy(e.why);
        const c = info.after.get(e.pfn);
        const swapcache = k.frames.flags[e.pfn]! & PG_SWAPCACHE ? 1 : 0;
        const extra = c !== undefined && c[0] - swapcache > c[1];
        out.push(`${unshare ? 'an unshare fault kept' : 'a write fault reused'} the page (by ${rule})${extra ? ` while ${holderOf(e.pfn) ?? 'an extra reference'} still held it` : ''}`);
        break;
      }
      case 'wp-copy': {
        const unshare = e.why.startsWith('unshare: ');
        const why = unshare ? e.why.slice('unshare: '.length) : e.why;
        const what = unshare ? 'an unshare fault copied' : 'a write fault copied';
        let rule: string;
        if (e.pfn === 0 || why.startsWith('write to the shared zero page')) rule = 'away from the zero page';
        else if (why.startsWith('KSM')) rule = 'a KSM page';
        else if (/another process maps/.test(why)) rule = /swap count/.test(why) ? 'a page another process maps or swapped (mapcount + swap count)' : 'a page another process maps';
        else if (/extra reference/.test(why)) rule = 'a page mapped once that an extra reference holds (refcount rule)';
        else rule = `a page (${plainWhy(why)})`;
        out.push(`${what} ${rule}`);
        break;
      }
      case 'early-cow':
        out.push('fork copied a maybe-pinned page for the child (early COW)');
        break;
      case 'segv':
      case 'oom':
      case 'bug':
        out.push(`${e.type}: ${plainWhy(e.why)}`);
        break;
      default:
        break;
    }
  }
  if (primary !== null && info.newHandles.some((h) => h.name === primary.name)) {
    const on = primary.frames.find((f) => f >= 0);
    if (on !== undefined) out.push(`${handleWord(primary)} of ${pageWord(on, info.after)}`);
  }
  if (step.op === 'fork') {
    // copy_present_pte(): which of the story's frames the fork left shared, and what held them.
    for (const pfn of [...F].sort((a, b) => a - b)) {
      const b = info.before.get(pfn);
      const a = info.after.get(pfn);
      if (!b || !a || a[1] <= b[1] || pfn === 0) continue;
      // Only the handle the violation is about: another pin on the page is not this story.
      const h = holderOf(pfn);
      out.push(h?.startsWith('the ') ? `fork shared a page ${h} held` : 'fork shared the page');
    }
  }
  return out;
}

/** The cause of the violation at the end of `path` (a path from `root`, which must trace). */
export function causeOf(root: Runner, path: readonly number[], cache?: ReplayCache): { cause: Cause; steps: Step[]; lines: string[]; violations: Violation[] } {
  const base = root.violations.length;
  const { r, infos, steps, lines } = replayTraced(root, path, cache);
  const last = path.length - 1;
  const violations = r.violations.slice(base).filter((v) => v.step === last);
  const { core, primary } = focus(r, infos, violations);
  const decisions: string[] = [];
  for (const [i, info] of infos.entries()) for (const l of stepLabels(info, i, core, primary, r.k)) if (!decisions.includes(l)) decisions.push(l);
  const kinds = [...new Set(violations.map((v) => v.kind))].sort();
  const name = decisions.length > 0 ? capital(decisions.join('; ')) : `${kinds.join(', ')} with no COW decision involved`;
  // The decisions are the finding; with none (an accounting slip, a fault) the kinds are.
  const key = decisions.length > 0 ? decisions.join('|') : `(${kinds.join(',')})`;
  return { cause: { key, decisions, name }, steps, lines, violations };
}

/** A decision of a fault handler or of fork's copy: what tells one finding from another. */
export function isFaultDecision(d: string): boolean {
  return /^(a write fault|an unshare fault|fork copied)/.test(d);
}

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
