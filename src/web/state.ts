// The page's state that is not drawing: the URL (a link reproduces the view), the cursor over
// steps and the events inside them, and what changed between two snapshots. Pure, tested under
// node:test.

import type { FrameView, HandleView, PteView, Snapshot, Trace } from './trace.js';

/** What the URL holds. Steps and events are 1-based in the URL, as on the page. */
export interface ViewParams {
  /** A scenario file under the served PATH (relative, `/`-separated). */
  file: string | null;
  /** Scenario text given inline (a pasted or edited scenario, an explorer counterexample). */
  text: string | null;
  /** The profile, and the one beside it. */
  profile: string | null;
  vs: string | null;
  /** Step index (0-based here); null: the first step. */
  step: number | null;
  /** Event inside the step (0-based here); null: the state after the whole step. */
  ev: number | null;
}

export function parseParams(search: string): ViewParams {
  const q = new URLSearchParams(search);
  const int = (name: string): number | null => {
    const v = q.get(name);
    if (v === null || !/^\d{1,6}$/.test(v)) return null;
    const n = Number(v);
    return n >= 1 ? n - 1 : null;
  };
  return {
    file: q.get('file'),
    text: q.get('text'),
    profile: q.get('profile'),
    vs: q.get('vs') || null,
    step: int('step'),
    ev: int('ev'),
  };
}

export function formatParams(p: ViewParams): string {
  const q = new URLSearchParams();
  if (p.text !== null) q.set('text', p.text);
  else if (p.file !== null) q.set('file', p.file);
  if (p.profile) q.set('profile', p.profile);
  if (p.vs) q.set('vs', p.vs);
  if (p.step !== null) q.set('step', String(p.step + 1));
  if (p.ev !== null) q.set('ev', String(p.ev + 1));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Where the page stands: a step, and optionally an event inside it (null: after the step). */
export interface Cursor {
  step: number;
  ev: number | null;
}

function stepCount(traces: readonly Trace[]): number {
  return Math.max(1, ...traces.map((t) => t.steps.length));
}

function eventCount(traces: readonly Trace[], step: number): number {
  return Math.max(0, ...traces.map((t) => t.steps[step]?.events.length ?? 0));
}

export function clampCursor(traces: readonly Trace[], c: Cursor): Cursor {
  const step = Math.min(Math.max(0, c.step), stepCount(traces) - 1);
  const n = eventCount(traces, step);
  const ev = c.ev === null || n === 0 ? null : Math.min(Math.max(0, c.ev), n - 1);
  return { step, ev };
}

export function nextStep(traces: readonly Trace[], c: Cursor): Cursor {
  return clampCursor(traces, { step: c.ev === null ? c.step + 1 : c.step, ev: null });
}

export function prevStep(traces: readonly Trace[], c: Cursor): Cursor {
  return clampCursor(traces, { step: c.step - 1, ev: null });
}

/** Forward through events: (i, 0), (i, 1), ..., (i, after), (i+1, 0) ... */
export function nextEvent(traces: readonly Trace[], c: Cursor): Cursor {
  if (c.ev !== null) {
    return c.ev + 1 < eventCount(traces, c.step) ? { step: c.step, ev: c.ev + 1 } : { step: c.step, ev: null };
  }
  if (c.step + 1 >= stepCount(traces)) return c;
  const n = eventCount(traces, c.step + 1);
  return { step: c.step + 1, ev: n > 0 ? 0 : null };
}

export function prevEvent(traces: readonly Trace[], c: Cursor): Cursor {
  if (c.ev === null) {
    const n = eventCount(traces, c.step);
    if (n > 0) return { step: c.step, ev: n - 1 };
    return c.step > 0 ? { step: c.step - 1, ev: null } : c;
  }
  if (c.ev > 0) return { step: c.step, ev: c.ev - 1 };
  return c.step > 0 ? { step: c.step - 1, ev: null } : c;
}

/** The model at the cursor on one trace, and the one just before it (for change marks). */
export function snapshotsAt(t: Trace, c: Cursor): { now: Snapshot; before: Snapshot } {
  const i = Math.min(c.step, t.steps.length - 1);
  const s = t.steps[i]!;
  const prevAfter = i > 0 ? t.steps[i - 1]!.after : t.initial;
  if (c.ev === null || i !== c.step) return { now: s.after, before: prevAfter };
  const ev = Math.min(c.ev, s.events.length - 1);
  if (ev < 0) return { now: s.after, before: prevAfter };
  const now = s.events[ev]!.snap ?? s.after;
  let before = prevAfter;
  for (let j = ev - 1; j >= 0; j--) {
    const snap = s.events[j]!.snap;
    if (snap) {
      before = snap;
      break;
    }
  }
  return { now, before };
}

/** Cells that changed: key -> the old value as text ('' when the thing is new). */
export type Changes = Map<string, string>;

export const frameKey = (pfn: number, field: string): string => `frame:${pfn}:${field}`;
/** A page of a large folio, listed under it (its head's own row too: apart from the folio's counts). */
export const subpageKey = (pfn: number, field: string): string => `page:${pfn}:${field}`;
export const pteKey = (proc: string, vpn: number, field: string): string => `pte:${proc}:${vpn}:${field}`;
export const handleKey = (name: string, index: number, field: string): string => `handle:${name}:${index}:${field}`;

export interface Diff {
  changes: Changes;
  /** Frames present before and gone now (freed). */
  freed: FrameView[];
  /** PTEs present before and gone now (zapped), per process (among the PTEs shown). */
  zapped: { proc: string; pte: PteView }[];
  /** Frames in use before. */
  framesUsedBefore: number;
}

export function diffSnapshots(before: Snapshot, now: Snapshot): Diff {
  const changes: Changes = new Map();
  const oldFrames = new Map(before.frames.map((f) => [f.pfn, f]));
  for (const f of now.frames) {
    const o = oldFrames.get(f.pfn);
    if (!o) {
      changes.set(frameKey(f.pfn, 'new'), '');
      continue;
    }
    cmpCounts(changes, frameKey, o, f);
    cmp(changes, frameKey(f.pfn, 'flags'), o.flags.join(' '), f.flags.join(' '));
    if (f.folio) {
      // A large folio: its entire mapcount, and each of its pages listed.
      cmp(changes, frameKey(f.pfn, 'entire'), o.folio?.entireMapcount ?? '-', f.folio.entireMapcount);
      const oldPages = new Map((o.folio?.subpages ?? []).map((x) => [x.pfn, x]));
      for (const sp of f.folio.subpages) {
        const os = oldPages.get(sp.pfn);
        if (!os) {
          changes.set(subpageKey(sp.pfn, 'new'), '');
          continue;
        }
        cmpCounts(changes, subpageKey, os, sp);
      }
    }
  }
  const nowFrames = new Set(now.frames.map((f) => f.pfn));
  const freed = before.frames.filter((f) => !nowFrames.has(f.pfn) && f.pfn !== 0);

  const zapped: { proc: string; pte: PteView }[] = [];
  const oldProcs = new Map(before.procs.map((p) => [p.name, p]));
  for (const p of now.procs) {
    const o = oldProcs.get(p.name);
    if (!o) changes.set(`proc:${p.name}:new`, '');
    else if (o.alive !== p.alive) changes.set(`proc:${p.name}:alive`, String(o.alive));
    const oldPtes = new Map((o?.ptes ?? []).map((e) => [e.vpn, e]));
    for (const e of p.ptes) {
      const oe = oldPtes.get(e.vpn);
      if (!oe) {
        changes.set(pteKey(p.name, e.vpn, 'new'), '');
        continue;
      }
      cmp(changes, pteKey(p.name, e.vpn, 'pfn'), target(oe), target(e));
      cmp(changes, pteKey(p.name, e.vpn, 'bits'), oe.bits.join(' '), e.bits.join(' '));
      cmp(changes, pteKey(p.name, e.vpn, 'ideal'), oe.ideal ?? '-', e.ideal ?? '-');
    }
    const nowVpns = new Set(p.ptes.map((e) => e.vpn));
    for (const oe of o?.ptes ?? []) if (!nowVpns.has(oe.vpn)) zapped.push({ proc: p.name, pte: oe });
  }

  const oldHandles = new Map(before.handles.map((h) => [h.name, h]));
  for (const h of now.handles) {
    const o: HandleView | undefined = oldHandles.get(h.name);
    if (!o) {
      changes.set(handleKey(h.name, -1, 'new'), '');
      continue;
    }
    if (o.released !== h.released) changes.set(handleKey(h.name, -1, 'released'), String(o.released));
    for (const pg of h.pages) {
      const op = o.pages[pg.index];
      if (!op) continue;
      cmp(changes, handleKey(h.name, pg.index, 'value'), op.value, pg.value);
      cmp(changes, handleKey(h.name, pg.index, 'ideal'), op.ideal ?? '-', pg.ideal ?? '-');
      cmp(changes, handleKey(h.name, pg.index, 'bound'), String(op.bound), String(pg.bound));
    }
  }
  return { changes, freed, zapped, framesUsedBefore: before.framesUsed };
}

function target(e: PteView): string {
  if (e.swapSlot !== null) return `swap slot ${e.swapSlot}`;
  if (e.pfn === null) return 'none';
  return e.present ? frameName(e.pfn) : `${frameName(e.pfn)} (device-exclusive)`;
}

function frameName(pfn: number): string {
  return pfn === 0 ? 'zero page' : `frame ${pfn}`;
}

/** A frame's (or a folio page's) counts and value, old against new. */
function cmpCounts(changes: Changes, key: (pfn: number, field: string) => string, o: FrameView, f: FrameView): void {
  cmp(changes, key(f.pfn, 'refcount'), o.refcount, f.refcount);
  cmp(changes, key(f.pfn, 'mapcount'), o.mapcount, f.mapcount);
  cmp(changes, key(f.pfn, 'pins'), o.pins, f.pins);
  cmp(changes, key(f.pfn, 'value'), o.value, f.value);
}

function cmp(changes: Changes, key: string, a: string | number, b: string | number): void {
  if (a !== b) changes.set(key, String(a));
}
