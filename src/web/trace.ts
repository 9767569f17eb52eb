// The page's view of a run: the engine's RunResult plus a full snapshot of the model after every
// step and after every kernel event inside a step (every process's populated page-table paths,
// every frame in use, every handle, the ideal values). Pure: no DOM, no Node APIs, so it runs in
// the page (bundled by esbuild) and in node:test.
//
// The engine records, per step, only the frames and PTEs the step's events name. The page needs
// the whole picture at each position, so beside the engine's own run (which gives the records,
// the violations and the verdict) it drives a second Runner through its public API
// (`step(step, i)`, `end()`) and looks at its Kernel after each step, and after each kernel
// event by wrapping `Kernel.emit` on that instance. Names the Runner keeps privately (handle
// names, a fork child's name while its fork runs) are followed from the steps.

import { HPAGE_PMD_NR, PG_INUSE, PG_LARGE, PMD_LEAF, PTE_DEVICE_EXCLUSIVE, PTE_PRESENT, PTE_SPECIAL, PTE_SWAP, PTE_WRITE, TABLE_SHIFT, VM_DONTCOPY, VM_READ, VM_SHARED, VM_WIPEONFORK, VM_WRITE } from '../core/constants.js';
import type { KEventType } from '../core/events.js';
import { frameFlagNames, pteBitNames } from '../core/names.js';
import { handleVpn } from '../core/kernel.js';
import type { Mm } from '../core/mm.js';
import type { Profile } from '../core/profile.js';
import type { RunResult, StepRecord } from '../engine/result.js';
import { forEachPteTable } from '../core/walk.js';
import { Runner, runScenario } from '../engine/run.js';
import { declOf } from '../ops/index.js';
import type { Scenario, Step } from '../scenario/ast.js';

/** PTEs shown per process (a populated 1 GiB mapping has 262144). */
export const MAX_PTES_PER_PROC = 64;
/** Frames shown per snapshot (a large folio is one). */
export const MAX_FRAMES = 96;
/** Pages of one large folio listed under it (those mapped, referenced or written). */
export const MAX_FOLIO_PAGES = 64;
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
  /** `buf[0]` (`buf[0..511]` for a huge PMD), or the address when outside the process's regions. */
  page: string;
  /** Indices at each level: PGD, PUD, PMD, PTE (0 for a huge PMD). */
  path: [number, number, number, number];
  /** The PTE table (arena index) holding this entry; for a huge PMD, its PMD table. */
  table: number;
  /** A huge PMD (a PMD leaf): this one entry maps HPAGE_PMD_NR pages from vpn, a 2 MiB folio or the huge zero page. */
  huge: boolean;
  /** The frame it names (0: the zero page); for a device-exclusive entry the frame the device holds; null for swap. */
  pfn: number | null;
  /** A swap entry's slot on the swap device. */
  swapSlot: number | null;
  bits: string[];
  present: boolean;
  writable: boolean;
  /** What the ideal semantics says this page holds (null when the ideal has no cell here). */
  ideal: string | null;
}

export interface ProcView {
  /** The process (for threads: the thread group, named by its first thread). */
  name: string;
  /** Its threads, when it made any: they share this address space. */
  threads: string[];
  /** A fork's child whose fork has not finished yet. */
  forking: boolean;
  /** Kernel paths started with `&` and not finished, per thread. */
  paths: { thread: string; text: string; line: number }[];
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

export interface FolioView {
  /** Pages in the folio (HPAGE_PMD_NR). */
  pages: number;
  /** PMD mappings of the whole folio (folio->_entire_mapcount). */
  entireMapcount: number;
  /** Its pages worth listing (mapped by a PTE, referenced, or written), each with its own counts. */
  subpages: FrameView[];
  /** Such pages not listed (past MAX_FOLIO_PAGES). */
  subpagesHidden: number;
}

export interface FrameView {
  /** The frame; for a large folio, its head. */
  pfn: number;
  refcount: number;
  mapcount: number;
  /** Live FOLL_PIN pins on it. */
  pins: number;
  flags: string[];
  value: string;
  /** Where the refcount comes from. */
  refs: RefPart[];
  /** `P buf[0]` for every PTE naming it (among the PTEs shown). */
  mappedBy: string[];
  /**
   * A large folio: the counts above are the whole folio's (refcount and mapcount summed over its
   * pages, the entire mapcount included; pins: its exact pincount), its pages listed here. Null
   * for a small page.
   */
  folio: FolioView | null;
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
  /** Device-exclusive grants: the device was told it lost exclusive access. */
  revoked: boolean;
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
/** What the tracer knows beside the Runner's public state: names the Runner keeps privately. */
interface Ctx {
  runner: Runner;
  /** Handle id (Kernel.handles) -> its scenario name and the thread that took it. */
  handleNames: Map<number, { name: string; holder: string }>;
  /** pin/gup/vmsplice steps whose handle has not appeared yet (async ones until their finish). */
  pendingHandles: { name: string; holder: string; mm: number; async: boolean }[];
  /** fork steps whose child the Runner has not named yet (async forks until their finish). */
  pendingForks: { child: string; parent: string }[];
  /** The step being run (null: the end-of-run teardown). */
  step: Step | null;
}

/** Run the scenario on the profile and keep a snapshot at every step and event. */
export function traceScenario(sc: Scenario, profile: Profile): Trace {
  const opts = { trace: true, maxEventsPerStep: 400 };
  // The verdict, records and violations are the engine's own run; the snapshots come from a
  // second Runner driven step by step through its public API (the runs are deterministic).
  const result = runScenario(sc, profile, opts);
  const runner = new Runner(sc, profile, opts);
  const k = runner.k;
  const ctx: Ctx = { runner, handleNames: new Map(), pendingHandles: [], pendingForks: [], step: null };
  let pending: EventView[] = [];
  const perStep: { events: EventView[]; after: Snapshot }[] = [];

  const origEmit = k.emit.bind(k);
  k.emit = (type, mm, vpn, pfn, pfn2, why) => {
    const before = k.events.length;
    origEmit(type, mm, vpn, pfn, pfn2, why);
    if (k.events.length === before) return; // not tracing
    const step = ctx.step;
    const proc = mm >= 0 ? mmName(ctx, mm) : null;
    const forkChild = step?.op === 'fork' ? step.child : ctx.pendingForks[0]?.child ?? null;
    pending.push({
      type,
      proc,
      page: mm >= 0 && vpn >= 0 ? regionPage(mmRegions(ctx, mm), vpn) : null,
      pfn,
      pfn2,
      why,
      child: type === 'fork' || type === 'early-cow' ? forkChild : null,
      snap: pending.length < MAX_EVENT_SNAPSHOTS ? snapshot(ctx) : null,
    });
  };

  const initial = snapshot(ctx);
  let na = false;
  for (let i = 0; i < sc.steps.length && !na; i++) {
    const st = sc.steps[i]!;
    ctx.step = st;
    // What the step will create (its declaration's `creates`), followed until the Runner names it.
    const made = declOf(st.op).creates?.(st);
    if (made?.kind === 'handle') {
      const holder = runner.procs.get(made.holder);
      ctx.pendingHandles.push({ name: made.name, holder: made.holder, mm: holder?.mm.id ?? -1, async: made.async });
    }
    if (made?.kind === 'child') ctx.pendingForks.push({ child: made.name, parent: made.parent });
    na = runner.step(st, i).na !== null;
    afterStep(ctx, st);
    perStep.push({ events: pending, after: snapshot(ctx) });
    pending = [];
  }
  if (!na) {
    ctx.step = null;
    runner.end();
    perStep.push({ events: pending, after: snapshot(ctx) });
  }
  const steps: StepView[] = result.steps.map((record, i) => ({
    record,
    step: i < sc.steps.length ? sc.steps[i]! : null,
    events: perStep[i]?.events ?? [],
    after: perStep[i]?.after ?? initial,
  }));
  return { profile, result, initial, steps };
}

/** After a step: name the handles it created, forget what can no longer appear. */
function afterStep(ctx: Ctx, st: Step): void {
  const k = ctx.runner.k;
  for (const h of k.handles) {
    if (ctx.handleNames.has(h.id)) continue;
    const at = ctx.pendingHandles.findIndex((p) => p.mm === h.mm);
    if (at < 0) continue;
    const p = ctx.pendingHandles.splice(at, 1)[0]!;
    ctx.handleNames.set(h.id, { name: p.name, holder: p.holder });
  }
  // A synchronous GUP that failed leaves no handle; an async one is over at its thread's finish.
  ctx.pendingHandles = ctx.pendingHandles.filter((p) => p.async && !(st.op === 'finish' && st.proc === p.holder));
  const made = declOf(st.op).creates?.(st);
  ctx.pendingForks = ctx.pendingForks.filter((f) => !ctx.runner.procs.has(f.child) && !(st.op === 'finish' && st.proc === f.parent) && !(made?.kind === 'child' && !made.async && made.name === f.child));
}

/** The threads the Runner knows for an address space (first: the process itself). */
function threadsOf(runner: Runner, mmId: number): { name: string; group: string; alive: boolean; regions: Map<string, { start: number; n: number }>; path: Step | null }[] {
  const out = [];
  for (const [name, p] of runner.procs) {
    if (p.mm.id === mmId) out.push({ name, group: p.group, alive: p.alive, regions: p.regions, path: p.task !== null ? p.taskStep : null });
  }
  return out;
}

/** Who an event's mm is: the thread running the step when it is that thread's, else the process. */
function mmName(ctx: Ctx, mmId: number): string | null {
  // A kernel path in progress taking its step: its thread (a waiting thread can run another's path).
  const acting = ctx.runner.acting;
  if (acting !== null && ctx.runner.procs.get(acting)?.mm.id === mmId) return acting;
  const step = ctx.step;
  if (step && 'proc' in step && typeof step.proc === 'string' && ctx.runner.procs.get(step.proc)?.mm.id === mmId) return step.proc;
  const ts = threadsOf(ctx.runner, mmId);
  if (ts.length > 0) return ts[0]!.group;
  return ctx.pendingForks[0]?.child ?? null;
}

function mmRegions(ctx: Ctx, mmId: number): Map<string, { start: number; n: number }> {
  const ts = threadsOf(ctx.runner, mmId);
  if (ts.length > 0) return ts[0]!.regions;
  const f = ctx.pendingForks[0];
  return (f && ctx.runner.procs.get(f.parent)?.regions) ?? new Map();
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

interface NamedMm {
  /** The process (thread group) name. */
  name: string;
  /** Its threads, when it has more than itself. */
  threads: string[];
  mm: Mm;
  alive: boolean;
  /** A fork's child still being copied (its fork path has not finished). */
  forking: boolean;
  paths: { thread: string; text: string; line: number }[];
  regions: Map<string, { start: number; n: number }>;
}

/**
 * Every address space the kernel has, named by its process; threads share one. A fork's child
 * is in the kernel before the Runner names it (events inside the fork, an async fork's steps):
 * it takes the fork's child name and the parent's regions until then.
 */
function namedMms(ctx: Ctx): NamedMm[] {
  const out: NamedMm[] = [];
  let unnamed = 0;
  for (const mm of ctx.runner.k.mms) {
    const ts = threadsOf(ctx.runner, mm.id);
    if (ts.length > 0) {
      const group = ts[0]!.group;
      const names = ts.map((t) => t.name);
      out.push({
        name: group, threads: names.length > 1 || names[0] !== group ? names : [], mm,
        alive: mm.alive && ts.some((t) => t.alive), forking: false, regions: ts[0]!.regions,
        paths: ts.filter((t) => t.path !== null).map((t) => ({ thread: t.name, text: t.path!.text, line: t.path!.pos.line })),
      });
    } else if (mm.alive) {
      const f = ctx.pendingForks[unnamed++];
      if (!f) continue;
      out.push({ name: f.child, threads: [], mm, alive: true, forking: true, paths: [], regions: ctx.runner.procs.get(f.parent)?.regions ?? new Map() });
    }
  }
  return out;
}

function snapshot(ctx: Ctx): Snapshot {
  const { runner, handleNames } = ctx;
  const k = runner.k;
  const values = runner.values;
  const procs: ProcView[] = [];
  const mappedBy = new Map<number, string[]>();
  const t = k.tables;
  for (const p of namedMms(ctx)) {
    const name = p.name;
    const regions: RegionView[] = [...p.regions].map(([rn, r]) => ({ name: rn, start: r.start, pages: r.n, mode: regionMode(p.mm, p.alive, r.start, r.n) }));
    const ptes: PteView[] = [];
    let hidden = 0;
    if (p.alive) {
      forEachPteTable(k, p.mm, (vpnBase, pte) => {
        if (ptes.length >= MAX_PTES_PER_PROC) {
          // Past the cap only count (a populated 1 GiB mapping has 512 full PTE tables).
          hidden += t.filled[pte]!;
          return;
        }
        for (let d = 0; d < 512; d++) {
          const slot = (pte << TABLE_SHIFT) | d;
          const bits = t.bits[slot]!;
          if (bits === 0) continue;
          if (ptes.length >= MAX_PTES_PER_PROC) {
            hidden++;
            continue;
          }
          const vpn = vpnBase + d;
          const present = (bits & PTE_PRESENT) !== 0;
          const devExcl = (bits & PTE_DEVICE_EXCLUSIVE) !== 0;
          const swapSlot = (bits & PTE_SWAP) !== 0 ? t.entry[slot]! : null;
          const pfn = present || devExcl ? t.entry[slot]! : null;
          const page = regionPage(p.regions, vpn);
          if (pfn !== null) {
            const l = mappedBy.get(pfn) ?? [];
            l.push(`${name} ${page}`);
            mappedBy.set(pfn, l);
          }
          const cell = runner.ideal.cellAt(name, vpn);
          ptes.push({
            vpn, page, path: [Math.floor(vpnBase / 2 ** 27) % 512, Math.floor(vpnBase / 2 ** 18) % 512, Math.floor(vpnBase / 512) % 512, d], table: pte, huge: false, pfn, swapSlot, bits: pteBitNames(bits), present,
            writable: present && (bits & PTE_WRITE) !== 0 && !(bits & PTE_SPECIAL),
            ideal: cell && cell.cell >= 0 ? values.name(cell.value) : null,
          });
        }
      }, (vpnBase, slot) => {
        // A huge PMD: one entry for its 2 MiB (the page shows its PTE table once it is split).
        if (ptes.length >= MAX_PTES_PER_PROC) {
          hidden++;
          return;
        }
        const bits = t.bits[slot]! & ~PMD_LEAF;
        const pfn = bits & PTE_SPECIAL ? 0 : t.entry[slot]!;
        const page = regionPages(p.regions, vpnBase, HPAGE_PMD_NR);
        const l = mappedBy.get(pfn) ?? [];
        l.push(`${name} ${page}`);
        mappedBy.set(pfn, l);
        ptes.push({
          vpn: vpnBase, page, path: [Math.floor(vpnBase / 2 ** 27) % 512, Math.floor(vpnBase / 2 ** 18) % 512, Math.floor(vpnBase / 512) % 512, 0],
          table: slot >>> TABLE_SHIFT, huge: true, pfn, swapSlot: null, bits: pteBitNames(bits), present: (bits & PTE_PRESENT) !== 0,
          writable: (bits & PTE_PRESENT) !== 0 && (bits & PTE_WRITE) !== 0 && !(bits & PTE_SPECIAL), ideal: null,
        });
      });
    }
    procs.push({
      name, threads: p.threads, forking: p.forking, paths: p.paths, alive: p.alive, regions, ptes, ptesHidden: hidden,
      tables: p.alive ? p.mm.nrTables : 0, rss: p.alive ? p.mm.rssAnon + p.mm.rssShmem : 0, hasPinned: p.mm.hasPinned,
    });
  }

  // Handles (live ones hold references; released ones are shown greyed for one step by the page).
  const handles: HandleView[] = [];
  const handleRefs = new Map<number, RefPart[]>();
  const pins = new Map<number, number>();
  for (const h of k.handles) {
    const named = handleNames.get(h.id) ?? { name: `#${h.id}`, holder: '?' };
    const holder = runner.procs.get(named.holder);
    const group = holder?.group ?? named.holder;
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
            const cell = runner.ideal.cellAt(group, handleVpn(h, i));
            ideal = cell && cell.cell >= 0 ? values.name(cell.value) : null;
          } else {
            ideal = values.name(st.own[i]!);
          }
        } else {
          ideal = (st.seen[i] ?? []).map((v) => values.name(v)).join(' or ') || null;
        }
      }
      pages.push({ index: i, pfn, value: pfn >= 0 ? values.name(k.frames.value[pfn] ?? 0) : '', ideal, bound, revoked: (h.revoked?.[i] ?? 0) !== 0 });
      if (!h.released && pfn >= 0 && h.refs[i]! > 0) {
        const parts = handleRefs.get(pfn) ?? [];
        parts.push({ kind: h.kind, name: named.name, count: h.refs[i]! });
        handleRefs.set(pfn, parts);
        if (h.kind === 'pin') pins.set(pfn, (pins.get(pfn) ?? 0) + 1);
      }
    }
    handles.push({
      name: named.name, kind: h.kind, holder: named.holder, page: regionPage(holder?.regions ?? new Map(), handleVpn(h, 0)),
      write: h.write, longterm: h.longterm, released: h.released, pages,
    });
  }

  // Frames: every frame in use, and the zero page when something maps or holds it. Large
  // folios first (a huge-page story's subject; their frames are 512-aligned), each one entry
  // with its pages under it; then the small pages.
  const frames: FrameView[] = [];
  const f = k.frames;
  const want: number[] = [];
  if (mappedBy.has(0) || handleRefs.has(0)) want.push(0);
  let shown = 0;
  for (let head = HPAGE_PMD_NR; head < f.top && want.length < MAX_FRAMES; head += HPAGE_PMD_NR) {
    if ((f.flags[head]! & (PG_INUSE | PG_LARGE)) !== (PG_INUSE | PG_LARGE)) continue;
    want.push(head);
    shown += HPAGE_PMD_NR;
  }
  for (let pfn = 1; pfn < f.top && want.length < MAX_FRAMES; pfn++) {
    if ((f.flags[pfn]! & (PG_INUSE | PG_LARGE)) !== PG_INUSE) continue;
    want.push(pfn);
    shown++;
  }
  const framesHidden = f.used - shown;
  const small = (pfn: number): FrameView => {
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
    return {
      pfn, refcount, mapcount, pins: pins.get(pfn) ?? 0, flags: frameFlagNames(f.flags[pfn]!),
      value: values.name(f.value[pfn]!), refs, mappedBy: mappedBy.get(pfn) ?? [], folio: null,
    };
  };
  for (const pfn of want) frames.push(pfn !== 0 && f.flags[pfn]! & PG_LARGE ? folioView(k, pfn, small, mappedBy, handleRefs) : small(pfn));
  return { procs, frames, framesHidden, handles, framesUsed: f.used };
}

/**
 * A large folio as one frame: the folio's counts (folio_ref_count, folio_mapcount with the
 * entire mapcount, the exact pincount), where its references come from, and its pages worth
 * listing with their own counts.
 */
function folioView(
  k: Runner['k'], head: number, small: (pfn: number) => FrameView, mappedBy: Map<number, string[]>, handleRefs: Map<number, RefPart[]>,
): FrameView {
  const f = k.frames;
  const entire = f.entireMapcount[head >>> 9]!;
  const subpages: FrameView[] = [];
  let subpagesHidden = 0;
  const byHandle = new Map<string, RefPart>();
  const mappers: string[] = [...(mappedBy.get(head) ?? [])];
  for (let p = head; p < head + HPAGE_PMD_NR; p++) {
    const hr = handleRefs.get(p) ?? [];
    for (const r of hr) {
      const key = `${r.kind}:${r.name ?? ''}`;
      const agg = byHandle.get(key);
      if (agg) agg.count += r.count;
      else byHandle.set(key, { ...r });
    }
    if (p !== head) for (const m of mappedBy.get(p) ?? []) mappers.push(m);
    if (p !== head && f.mapcount[p] === 0 && f.refcount[p] === 0 && f.value[p] === 0 && hr.length === 0 && !mappedBy.has(p)) continue;
    if (subpages.length < MAX_FOLIO_PAGES) subpages.push(small(p));
    else subpagesHidden++;
  }
  const refcount = f.folioRefcount(head);
  const mapcount = f.folioMapcount(head);
  const refs: RefPart[] = [];
  if (mapcount > 0) refs.push({ kind: 'mapping', name: null, count: mapcount });
  refs.push(...byHandle.values());
  const other = refcount - refs.reduce((s, r) => s + r.count, 0);
  if (other !== 0) refs.push({ kind: 'other', name: null, count: other });
  return {
    pfn: head, refcount, mapcount, pins: f.pincount[head >>> 9]!, flags: frameFlagNames(f.flags[head]!),
    value: subpages[0]!.value, refs, mappedBy: mappers,
    folio: { pages: HPAGE_PMD_NR, entireMapcount: entire, subpages, subpagesHidden },
  };
}

/** `buf[0..511]` for n pages from vpn inside one region, else the address range. */
function regionPages(regions: Map<string, { start: number; n: number }>, vpn: number, n: number): string {
  for (const [name, r] of regions) if (vpn >= r.start && vpn + n <= r.start + r.n) return `${name}[${vpn - r.start}..${vpn - r.start + n - 1}]`;
  return `0x${(vpn * 4096).toString(16)}..0x${((vpn + n) * 4096 - 1).toString(16)}`;
}
