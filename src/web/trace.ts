// The page's view of a run: the engine's RunResult plus a full snapshot of the model after every
// step and after every kernel event inside a step (every process's populated page-table paths,
// every frame in use, every handle). Pure: no DOM, no Node APIs, so it runs in the page (bundled
// by esbuild) and in node:test.
//
// The engine records, per step, only the frames and PTEs the step's events name. The page needs
// the whole picture at each position, so it drives the engine's own Runner and looks at its
// Kernel at two moments:
//   - after each kernel event: Kernel.emit is wrapped on the instance (a public method);
//   - at the end of each step: Runner's `collectEvents` (private; reached with element access,
//     which TypeScript checks, so a rename breaks the build rather than the page).
// A public `onStep`/`onEvent` hook in RunOptions would replace the second (see docs/web.md).

import { PG_INUSE, PTE_PRESENT, PTE_SPECIAL, PTE_WRITE, TABLE_SHIFT, VM_DONTCOPY, VM_READ, VM_SHARED, VM_WIPEONFORK, VM_WRITE } from '../core/constants.js';
import type { KEvent, KEventType } from '../core/events.js';
import { frameFlagNames, pteBitNames } from '../core/names.js';
import type { Mm } from '../core/mm.js';
import type { Profile } from '../core/profile.js';
import type { RunResult, StepRecord } from '../engine/result.js';
import { Runner } from '../engine/run.js';
import type { Scenario, Step } from '../scenario/ast.js';

/** PTEs shown per process (a populated 1 GiB mapping has 262144). */
export const MAX_PTES_PER_PROC = 256;
/** Frames shown per snapshot. */
export const MAX_FRAMES = 256;
/** Events inside one step that get a snapshot of their own (the rest show the step's end state). */
export const MAX_EVENT_SNAPSHOTS = 48;

export interface RegionView {
  name: string;
  /** First page number and size in pages. */
  start: number;
  pages: number;
  /** What the process's VMAs say now: 'rw private', 'ro shared', 'unmapped', ... */
  mode: string;
}

export interface PteView {
  vpn: number;
  /** `buf[0]`, or the address when outside the process's regions. */
  page: string;
  /** Indices at each level: PGD, PUD, PMD, PTE. */
  path: [number, number, number, number];
  /** The PTE table (arena index) holding this entry. */
  table: number;
  /** The frame it names (0: the zero page), or null when not present (swap and such). */
  pfn: number | null;
  bits: string[];
  present: boolean;
  writable: boolean;
  /** What the ideal semantics says this page holds (null when the ideal has no cell here). */
  ideal: string | null;
}

export interface ProcView {
  name: string;
  alive: boolean;
  regions: RegionView[];
  ptes: PteView[];
  /** PTEs not shown (past MAX_PTES_PER_PROC). */
  ptesHidden: number;
  /** Page-table pages this process owns (PGD included). */
  tables: number;
  rss: number;
  hasPinned: boolean;
}

export interface RefPart {
  /** 'mapping' (mapcount), 'pin', 'gup', 'pipe', 'exclusive', or 'other' (page cache, swap cache ...). */
  kind: string;
  /** The handle's name for handle references. */
  name: string | null;
  count: number;
}

export interface FrameView {
  pfn: number;
  refcount: number;
  mapcount: number;
  /** Live FOLL_PIN pins on it. */
  pins: number;
  flags: string[];
  value: string;
  /** Where the refcount comes from. */
  refs: RefPart[];
  /** `P buf[0]` for every PTE naming it. */
  mappedBy: string[];
}

export interface HandlePageView {
  index: number;
  /** The frame taken (-1: nothing was taken at this page). */
  pfn: number;
  /** The value of that frame now. */
  value: string;
  /** What the ideal semantics says a read through it must return ('2', '1 or 2', ...). */
  ideal: string | null;
  /** Longterm pins: still bound to the holder's page (ideal semantics). */
  bound: boolean | null;
}

export interface HandleView {
  name: string;
  /** pin, gup, pipe, exclusive. */
  kind: string;
  holder: string;
  /** The holder's page the handle starts at (`buf[0]`). */
  page: string;
  write: boolean;
  longterm: boolean;
  released: boolean;
  pages: HandlePageView[];
}

export interface Snapshot {
  procs: ProcView[];
  frames: FrameView[];
  framesHidden: number;
  handles: HandleView[];
  /** Frames in use (the zero page excluded). */
  framesUsed: number;
}

export interface EventView {
  type: KEventType;
  proc: string | null;
  /** The page as `buf[0]` when the event names one. */
  page: string | null;
  pfn: number;
  pfn2: number;
  why: string;
  /** The child's name for a fork event, the new frame's owner for early COW. */
  child: string | null;
  /** The model right after this event (null past MAX_EVENT_SNAPSHOTS). */
  snap: Snapshot | null;
}

export interface StepView {
  record: StepRecord;
  /** The step as parsed (null for the final `(end)` record). */
  step: Step | null;
  events: EventView[];
  /** The model after the step. */
  after: Snapshot;
}

export interface Trace {
  profile: Profile;
  result: RunResult;
  /** The model before the first step (empty). */
  initial: Snapshot;
  /** One per record of result.steps, the final `(end)` record included. */
  steps: StepView[];
}

/** Run the scenario on the profile and keep a snapshot at every step and event. */
export function traceScenario(sc: Scenario, profile: Profile): Trace {
  const runner = new Runner(sc, profile, { trace: true, maxEventsPerStep: 400 });
  const k = runner.k;
  const handleNames = new Map<number, { name: string; holder: string }>();
  let pending: EventView[] = [];
  const perStep: { events: EventView[]; after: Snapshot }[] = [];
  const mmNames: string[] = [];
  let stepNo = 0;

  const origEmit = k.emit.bind(k);
  k.emit = (type, mm, vpn, pfn, pfn2, why) => {
    const before = k.events.length;
    origEmit(type, mm, vpn, pfn, pfn2, why);
    if (k.events.length === before) return; // not tracing
    refreshNames(runner, mmNames);
    const e: KEvent = { type, mm, vpn, pfn, pfn2, why };
    const step = sc.steps[stepNo];
    pending.push({
      type,
      proc: mm >= 0 ? (mmNames[mm] ?? null) : null,
      page: mm >= 0 && vpn >= 0 ? pageName(runner, mmNames[mm] ?? '', vpn) : null,
      pfn,
      pfn2,
      why,
      child: e.type === 'fork' && step?.op === 'fork' ? step.child : e.type === 'early-cow' && step?.op === 'fork' ? step.child : null,
      snap: pending.length < MAX_EVENT_SNAPSHOTS ? snapshot(runner, handleNames, step) : null,
    });
  };

  // Element access to a private method is type-checked: a rename in the engine fails the build.
  const origCollect = runner['collectEvents'].bind(runner);
  runner['collectEvents'] = () => {
    origCollect();
    const step = sc.steps[stepNo];
    // A successful pin/gup/vmsplice added one handle: it carries the step's name.
    if (step && (step.op === 'pin' || step.op === 'gup' || step.op === 'vmsplice')) {
      const h = k.handles[k.handles.length - 1];
      if (h && !handleNames.has(h.id)) handleNames.set(h.id, { name: step.handle, holder: step.proc });
    }
    refreshNames(runner, mmNames);
    perStep.push({ events: pending, after: snapshot(runner, handleNames) });
    pending = [];
    stepNo++;
  };

  const initial = snapshot(runner, handleNames);
  const result = runner.run();
  const steps: StepView[] = result.steps.map((record, i) => ({
    record,
    step: i < sc.steps.length ? sc.steps[i]! : null,
    events: perStep[i]?.events ?? [],
    after: perStep[i]?.after ?? initial,
  }));
  return { profile, result, initial, steps };
}

/** The engine keeps mm ids to names privately; the Runner's public `procs` gives them. */
function refreshNames(runner: Runner, names: string[]): void {
  for (const [name, p] of runner.procs) names[p.mm.id] = name;
}

function pageName(runner: Runner, proc: string, vpn: number): string {
  return regionPage(runner.procs.get(proc)?.regions ?? new Map(), vpn);
}

function regionPage(regions: Map<string, { start: number; n: number }>, vpn: number): string {
  for (const [name, r] of regions) if (vpn >= r.start && vpn < r.start + r.n) return `${name}[${vpn - r.start}]`;
  return `0x${(vpn * 4096).toString(16)}`;
}

function regionMode(mm: Mm, alive: boolean, start: number, n: number): string {
  if (!alive) return 'gone';
  const modes = new Set<string>();
  for (let v = start; v < start + n; v++) {
    const vma = mm.findVma(v);
    if (!vma) {
      modes.add('unmapped');
      continue;
    }
    const f = vma.flags;
    const prot = f & VM_WRITE ? 'rw' : f & VM_READ ? 'ro' : 'none';
    let m = `${prot} ${f & VM_SHARED ? 'shared' : 'private'}`;
    if (f & VM_DONTCOPY) m += ' dontfork';
    if (f & VM_WIPEONFORK) m += ' wipeonfork';
    modes.add(m);
  }
  return [...modes].join(' / ');
}

/**
 * Every address space the kernel has, named: a fork's child is in the kernel before the Runner
 * names it (events inside the fork step), so it takes the fork step's child name and the
 * parent's regions until then.
 */
function namedMms(runner: Runner, step: Step | undefined): { name: string; mm: Mm; alive: boolean; regions: Map<string, { start: number; n: number }> }[] {
  const out = [];
  const byId = new Map<number, string>();
  for (const [name, p] of runner.procs) byId.set(p.mm.id, name);
  for (const mm of runner.k.mms) {
    const name = byId.get(mm.id);
    if (name !== undefined) {
      const p = runner.procs.get(name)!;
      out.push({ name, mm, alive: p.alive, regions: p.regions });
    } else if (step?.op === 'fork' && mm.alive) {
      const parent = runner.procs.get(step.proc);
      out.push({ name: step.child, mm, alive: true, regions: parent?.regions ?? new Map() });
    }
  }
  return out;
}

function snapshot(runner: Runner, handleNames: Map<number, { name: string; holder: string }>, step?: Step): Snapshot {
  const k = runner.k;
  const values = runner.values;
  const procs: ProcView[] = [];
  const mappedBy = new Map<number, string[]>();
  const t = k.tables;
  for (const p of namedMms(runner, step)) {
    const name = p.name;
    const regions: RegionView[] = [...p.regions].map(([rn, r]) => ({ name: rn, start: r.start, pages: r.n, mode: regionMode(p.mm, p.alive, r.start, r.n) }));
    const ptes: PteView[] = [];
    let hidden = 0;
    if (p.alive) {
      const mm = p.mm;
      for (let a = 0; a < 512; a++) {
        const pud = t.entry[(mm.pgd << TABLE_SHIFT) | a]!;
        if (pud === 0) continue;
        for (let b = 0; b < 512; b++) {
          const pmd = t.entry[(pud << TABLE_SHIFT) | b]!;
          if (pmd === 0) continue;
          for (let c = 0; c < 512; c++) {
            const pte = t.entry[(pmd << TABLE_SHIFT) | c]!;
            if (pte === 0) continue;
            for (let d = 0; d < 512; d++) {
              const slot = (pte << TABLE_SHIFT) | d;
              const bits = t.bits[slot]!;
              if (bits === 0) continue;
              const vpn = (a * 2 ** 27) + (b << 18) + (c << 9) + d;
              const present = (bits & PTE_PRESENT) !== 0;
              const pfn = present ? t.entry[slot]! : null;
              const page = regionPage(p.regions, vpn);
              if (pfn !== null) {
                const l = mappedBy.get(pfn) ?? [];
                l.push(`${name} ${page}`);
                mappedBy.set(pfn, l);
              }
              if (ptes.length >= MAX_PTES_PER_PROC) {
                hidden++;
                continue;
              }
              const cell = runner.ideal.cellAt(name, vpn);
              ptes.push({
                vpn, page, path: [a, b, c, d], table: pte, pfn, bits: pteBitNames(bits), present,
                writable: present && (bits & PTE_WRITE) !== 0 && !(bits & PTE_SPECIAL),
                ideal: cell && cell.cell >= 0 ? values.name(cell.value) : null,
              });
            }
          }
        }
      }
    }
    procs.push({ name, alive: p.alive, regions, ptes, ptesHidden: hidden, tables: p.alive ? p.mm.nrTables : 0, rss: p.alive ? p.mm.rssAnon + p.mm.rssShmem : 0, hasPinned: p.mm.hasPinned });
  }

  // Handles (live ones hold references; released ones are shown greyed for one step by the page).
  const handles: HandleView[] = [];
  const handleRefs = new Map<number, RefPart[]>();
  const pins = new Map<number, number>();
  for (const h of k.handles) {
    const named = handleNames.get(h.id) ?? { name: `#${h.id}`, holder: '?' };
    const st = runner.ideal.handleState(named.name);
    const pages: HandlePageView[] = [];
    for (let i = 0; i < h.frames.length; i++) {
      const pfn = h.frames[i]!;
      let ideal: string | null = null;
      let bound: boolean | null = null;
      if (st && st.origin[i]! >= 0) {
        if (h.longterm) {
          bound = st.bound[i] ?? false;
          if (bound) {
            const cell = runner.ideal.cellAt(named.holder, h.vpn + i);
            ideal = cell && cell.cell >= 0 ? values.name(cell.value) : null;
          } else {
            ideal = values.name(st.own[i]!);
          }
        } else {
          ideal = (st.seen[i] ?? []).map((v) => values.name(v)).join(' or ') || null;
        }
      }
      pages.push({ index: i, pfn, value: pfn >= 0 ? values.name(k.frames.value[pfn] ?? 0) : '', ideal, bound });
      if (!h.released && pfn >= 0 && h.refs[i]! > 0) {
        const parts = handleRefs.get(pfn) ?? [];
        parts.push({ kind: h.kind, name: named.name, count: h.refs[i]! });
        handleRefs.set(pfn, parts);
        if (h.kind === 'pin') pins.set(pfn, (pins.get(pfn) ?? 0) + 1);
      }
    }
    handles.push({
      name: named.name, kind: h.kind, holder: named.holder, page: pageName(runner, named.holder, h.vpn),
      write: h.write, longterm: h.longterm, released: h.released, pages,
    });
  }

  // Frames: every frame in use, and the zero page when something maps or holds it.
  const frames: FrameView[] = [];
  let framesHidden = 0;
  const f = k.frames;
  const want: number[] = [];
  if (mappedBy.has(0) || handleRefs.has(0)) want.push(0);
  for (let pfn = 1; pfn < f.top; pfn++) if (f.flags[pfn]! & PG_INUSE) want.push(pfn);
  for (const pfn of want) {
    if (frames.length >= MAX_FRAMES) {
      framesHidden++;
      continue;
    }
    const refcount = f.refcount[pfn]!;
    const mapcount = f.mapcount[pfn]!;
    const refs: RefPart[] = [];
    if (pfn !== 0) {
      if (mapcount > 0) refs.push({ kind: 'mapping', name: null, count: mapcount });
      const hr = handleRefs.get(pfn) ?? [];
      refs.push(...hr);
      const other = refcount - mapcount - hr.reduce((s, p) => s + p.count, 0);
      if (other !== 0) refs.push({ kind: 'other', name: null, count: other });
    }
    frames.push({
      pfn, refcount, mapcount, pins: pins.get(pfn) ?? 0, flags: frameFlagNames(f.flags[pfn]!),
      value: values.name(f.value[pfn]!), refs, mappedBy: mappedBy.get(pfn) ?? [],
    });
  }
  return { procs, frames, framesHidden, handles, framesUsed: f.used };
}
