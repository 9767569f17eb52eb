// What a step record shows of the model: the step's kernel events (with the thread that caused
// each), the frames and PTEs they name as they are now, and (`run --trace`) every PTE and frame
// the step changed.

import type { KEvent } from '../core/events.js';
import { frameFlagNames, pteBitNames } from '../core/names.js';
import { followSlot, slotPfn } from '../core/huge.js';
import { objectArray } from '../core/copy.js';
import type { EventRecord } from './result.js';
import { capture, diffCaptures, type Namer } from './changes.js';
import { advance, follow, following } from './changes-live.js';
import type { RunState } from './state.js';

/** Move the kernel's events into the record (kernel bugs become violations), with a snapshot. */
export function collectEvents(s: RunState): void {
  // Nothing to move and no snapshot to take (the explorer's steps without tracing, most of them).
  if (s.k.events.length === 0 && !s.k.tracing && s.actors.size === 0) return;
  const evs = s.k.events;
  s.k.events = objectArray();
  const max = s.opts.maxEventsPerStep ?? 200;
  if (s.k.tracing) snapshot(s, evs);
  for (const e of evs) {
    if (e.type === 'bug') s.violation('kernel-bug', e.why, e.mm >= 0 ? [s.mmNames[e.mm] ?? '?'] : [], e.pfn >= 0 ? [e.pfn] : []);
    if (s.record.events.length < max) {
      s.record.events.push({ ...e, proc: s.actors.get(e) ?? actorOf(s, e.mm) } satisfies EventRecord);
    } else {
      s.record.eventsDropped++;
    }
  }
  if (s.actors.size > 0) s.actors.clear(); // clear() makes a new table even when empty
}

/** Who did what an event says: the thread running the step when the mm is its own, else the process. */
function actorOf(s: RunState, mm: number): string | null {
  if (mm < 0) return null;
  const step = s.stepIndex >= 0 ? s.scenario.steps[s.stepIndex] : undefined;
  const name = step && 'proc' in step && typeof step.proc === 'string' ? step.proc : null;
  if (name !== null && s.procs.get(name)?.mm.id === mm) return name;
  return s.mmNames[mm] ?? null;
}

/** Every PTE and frame the step changed (RunOptions.changes); `observing`: the step only looked (no capture). */
export function traceChanges(s: RunState, observing: boolean): void {
  if (s.changesBase === null || !s.k.tracing || observing) return;
  const names: Namer = {
    proc: (mm) => s.mmNames[mm] ?? `mm ${mm}`,
    page: (mm, vpn) => s.pageOfMm(mm, vpn),
    value: (v) => s.values.name(v),
  };
  // This state's own capture, following the model: brought up to it (changes-live.ts).
  if (s.changesBase.owner === s && following(s.changesBase, s.k)) {
    s.record.changes = advance(s.changesBase, s.k, names);
    return;
  }
  // Else (a copy of the state shares it) a new one, which follows from now on. The capture
  // before the last (this state's own, no copy of it sees it) is refilled.
  const spare = s.changesSpare !== null && s.changesSpare.owner === s ? s.changesSpare : null;
  s.changesSpare = null;
  const now = capture(s.k, s, spare);
  s.record.changes = diffCaptures(s.changesBase, now, names);
  s.changesSpare = s.changesBase;
  s.changesBase = now;
  follow(now, s.k);
}

/** Frames and PTEs named by the step's events and violations, as they are now. */
function snapshot(s: RunState, evs: KEvent[]): void {
  const pfns = new Set<number>();
  const ptes = new Map<string, [number, number]>();
  for (const e of evs.slice(0, 64)) {
    if (e.pfn >= 0) pfns.add(e.pfn);
    if (e.pfn2 >= 0 && e.type !== 'fork') pfns.add(e.pfn2);
    if (e.mm >= 0 && e.vpn >= 0 && e.type !== 'zap' && e.type !== 'note' && e.type !== 'mprotect') ptes.set(`${e.mm}:${e.vpn}`, [e.mm, e.vpn]);
  }
  for (const v of s.record.violations) for (const f of v.frames) pfns.add(f);
  const k = s.k;
  for (const pfn of [...pfns].sort((a, b) => a - b)) {
    const fl = k.frames.flags[pfn] ?? 0;
    s.record.frames.push({
      pfn,
      refcount: k.frames.refcount[pfn] ?? 0,
      mapcount: k.frames.mapcount[pfn] ?? 0,
      flags: frameFlagNames(fl),
      value: s.values.name(k.frames.value[pfn] ?? 0),
    });
  }
  for (const [mmId, vpn] of ptes.values()) {
    const mm = k.mms[mmId]!;
    const name = s.mmNames[mmId] ?? '?';
    const slot = mm.alive ? followSlot(k, mm, vpn) : -1;
    const bits = slot >= 0 ? k.tables.bits[slot]! : 0;
    s.record.ptes.push({
      proc: name, page: s.pageName(name, vpn), vpn,
      pfn: bits === 0 ? null : slotPfn(k, slot, vpn), bits: pteBitNames(bits),
    });
  }
}
