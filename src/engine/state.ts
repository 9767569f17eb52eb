// The state of one run (the model, the ideal memory, the names the scenario gave) and the helpers
// every step uses to name pages and to record what it saw. The Runner (run.ts) owns one; the
// step modules (scheduler, grants, cpu, handles, mm-ops, expect, snapshot) work on it. Nothing
// outside src/engine (and the operation registry) touches it: others read through the Runner.

import { PTE_PRESENT } from '../core/constants.js';
import type { KEvent } from '../core/events.js';
import { DEFAULT_FRAMES, DEFAULT_PIN_BIAS, type Handle, Kernel } from '../core/kernel.js';
import type { Mm } from '../core/mm.js';
import { lacksText, profileHas, type Feature, type Profile } from '../core/profile.js';
import { cloneTask, type Task } from '../core/tasks.js';
import { followSlot, slotPfn } from '../core/huge.js';
import { AccountingChecker } from '../check/accounting.js';
import { IdealMemory } from '../check/ideal.js';
import { PinChecker } from '../check/pins.js';
import type { PageSel, Scenario, Step, ViolationKind } from '../scenario/ast.js';
import type { Observation, StepRecord, Violation } from './result.js';
import { ValueTable } from './values.js';
import { type Capture, capture } from './changes.js';
import { follow } from './changes-live.js';
import { classCopier, copyArrayInto, objectArray, templateCopier } from '../core/copy.js';

export interface RunOptions {
  /** Check the accounting invariants after every step (default true). */
  checkEveryStep?: boolean;
  /** Record the counters after every step (`run --stats`). */
  countersEveryStep?: boolean;
  /** Events kept per step (default 200). */
  maxEventsPerStep?: number;
  /** Record kernel events at all (default true). */
  trace?: boolean;
  /** Record every PTE and frame each step changed, before and after (`run --trace`; needs trace). */
  changes?: boolean;
  /**
   * Each step's record is the last one, emptied (the explorer, which reads a step's record, if at
   * all, before the next step): a transition makes no record.
   */
  reuseRecord?: boolean;
}

export interface Region {
  start: number;
  n: number;
}

export interface LiveHandle {
  h: Handle;
  /** The process that took it. */
  proc: string;
}

/** A thread. newProc makes every one (one field order: one hidden class); RunState.clone copies every field. */
export interface Proc {
  /** The thread's name (a process is its first thread). */
  name: string;
  /** The process (thread group) it belongs to: the name the ideal semantics knows it by. */
  group: string;
  /** Kernel thread id (for locks held by its pending kernel path). */
  tid: number;
  mm: Mm;
  /** Shared by the threads of one process. */
  regions: Map<string, Region>;
  alive: boolean;
  /** A kernel path started with `&`, and the step that started it. */
  task: Task | null;
  taskStep: Step | null;
  /** For a pending async write: how many stored pages the ideal memory has seen. */
  taskApplied: number;
  /** For a pending GUP: which pages the ideal handle was bound to when they were grabbed; else null. */
  taskBound: boolean[] | null;
}

/** A live thread with no kernel path pending: every field, in one order. */
function newProc(name: string, group: string, tid: number, mm: Mm, regions: Map<string, Region>): Proc {
  return { name, group, tid, mm, regions, alive: true, task: null, taskStep: null, taskApplied: 0, taskBound: null };
}

/**
 * Thrown by a step the profile does not have (the run ends `n/a`). It is caught by the runner and
 * never shown with a stack, so none is captured (the explorer throws one per inapplicable transition).
 */
export class NotApplicable extends Error {
  constructor(message: string) {
    // V8's Error.stackTraceLimit (Node, Chromium); elsewhere a harmless property.
    const E = Error as ErrorConstructor & { stackTraceLimit?: number };
    const limit = E.stackTraceLimit;
    E.stackTraceLimit = 0;
    super(message);
    E.stackTraceLimit = limit;
  }
}

/** A step needing a feature the profile lacks is n/a (the one test of it: profileHas). */
export function needFeature(s: { profile: Profile }, f: Feature): void {
  if (!profileHas(s.profile, f)) throw new NotApplicable(lacksText(s.profile, f));
}

export function emptyRecord(index: number, line: number, col: number, text: string): StepRecord {
  return { index, line, col, text, summary: '', events: objectArray(), eventsDropped: 0, observations: objectArray(), violations: objectArray(), stats: null, frames: objectArray(), ptes: objectArray() };
}

/** `r` emptied, as emptyRecord would make it (RunOptions.reuseRecord). */
export function resetRecord(r: StepRecord, index: number, line: number, col: number, text: string): StepRecord {
  r.index = index;
  r.line = line;
  r.col = col;
  r.text = text;
  r.summary = '';
  if (r.events.length !== 0) r.events.length = 0;
  r.eventsDropped = 0;
  if (r.observations.length !== 0) r.observations.length = 0;
  if (r.violations.length !== 0) r.violations.length = 0;
  r.stats = null;
  if (r.frames.length !== 0) r.frames.length = 0;
  if (r.ptes.length !== 0) r.ptes.length = 0;
  // Absent unless asked for (a `delete` of an absent field would still slow every later access).
  if (r.counters !== undefined) delete r.counters;
  if (r.changes !== undefined) delete r.changes;
  return r;
}

export class RunState {
  k: Kernel;
  ideal = new IdealMemory();
  values = new ValueTable();
  procs = new Map<string, Proc>();
  checker = new AccountingChecker();
  pins = new PinChecker();
  mmNames: string[] = objectArray();
  record: StepRecord = emptyRecord(0, 0, 0, '');
  stepIndex = 0;
  violations: Violation[] = objectArray();
  handles = new Map<string, LiveHandle>();
  nextTid = 0;
  /** A thread other than a process's first was made (addProc): else each process is its group alone. */
  threaded = false;
  /** A kernel path was started in steps (startAsync): else no thread has a task. */
  tasksStarted = false;
  /** Per device-exclusive grant page: 1 once the owner's CPU accessed the page. */
  grantTouched = new Map<string, Uint8Array>();
  /** Values written by device atomics (a wrong read of one is an `exclusive` violation). */
  atomicValues: ReadonlySet<number> = new Set<number>();
  /** Threads whose pending fork has begun (the ideal child exists). */
  forking: ReadonlySet<string> = new Set<string>();
  /** The model as the last step left it (RunOptions.changes). */
  changesBase: Capture | null = null;
  /** The capture before changesBase, for the next capture to refill (when its owner is this state). */
  changesSpare: Capture | null = null;
  /** The thread whose kernel path emitted an event (threads share their process's mm). */
  actors = new Map<KEvent, string>();
  /** The thread whose kernel path is taking a step right now (for the web page's event names), else null. */
  acting: string | null = null;
  /**
   * The threads' regions maps and grantTouched are shared with a copy (clone) until either
   * changes them: regionsOf() and touchedOf() copy them first.
   */
  private regionsShared = false;
  private touchedShared = false;

  constructor(
    readonly scenario: Scenario,
    readonly profile: Profile,
    readonly opts: RunOptions = {},
    /**
     * clone()'s copy of the kernel: a copy is constructed too (its fields then copied), so that
     * copies and constructed states share one hidden class, as the code run on both sees them.
     */
    k?: Kernel,
  ) {
    if (k !== undefined) {
      this.k = k;
      return;
    }
    this.k = new Kernel(profile, {
      frames: scenario.config.frames ?? DEFAULT_FRAMES,
      pinBias: scenario.config.pinBias ?? DEFAULT_PIN_BIAS,
      thp: scenario.config.thp ?? 'madvise',
      ...(scenario.config.hugepages != null ? { hugepages: scenario.config.hugepages } : {}),
      ...(scenario.config.ksmUseZeroPages ? { ksmUseZeroPages: true } : {}),
      ...(scenario.config.ksmSmartScan === 0 ? { ksmSmartScan: false } : {}),
    });
    this.k.tracing = opts.trace ?? true;
    if (opts.changes && this.k.tracing) follow((this.changesBase = capture(this.k, this)), this.k);
  }

  /**
   * A deep copy, for the explorer. The scenario and options are shared. With `dst` (a copy no
   * longer needed) the copy is made in it: its object and typed arrays are reused, so a
   * transition allocates little. Every field is first copied by reference (copyRunState: a field
   * added later is at least shared, as Object.assign did), then the state's own containers deeply.
   */
  clone(dst?: RunState): RunState {
    // dst's parts are reused: each is copied into dst's before dst's fields are overwritten.
    const d = dst !== undefined && dst !== this ? dst : undefined;
    const k = this.k.clone(d?.k);
    const ideal = this.ideal.clone(d?.ideal);
    const values = this.values.clone(d?.values);
    const pins = this.pins.clone(d?.pins);
    const mmNames = copyArrayInto(this.mmNames, d?.mmNames);
    const violations = copyArrayInto(this.violations, d?.violations);
    // Scratch for one step, empty between steps (collectEvents clears it): a fresh one only if not.
    const actors = this.actors.size === 0 && d !== undefined ? d.actors : new Map<KEvent, string>();
    // dst's maps of threads and handles, and the objects in them (nothing else holds them).
    const oldProcs = d !== undefined && d.procs !== this.procs ? d.procs : undefined;
    const oldHandles = d !== undefined && d.handles !== this.handles ? d.handles : undefined;
    const c = copyRunState(d ?? new RunState(this.scenario, this.profile, this.opts, k), this);
    c.k = k;
    c.ideal = ideal;
    c.values = values;
    c.pins = pins;
    c.mmNames = mmNames;
    c.violations = violations;
    c.actors = actors;
    // dst's maps when their names are those of this state in the same order, or these with
    // some more or fewer at the end (siblings mostly are so: a handle taken, a thread made):
    // their objects take the copies. Else new maps: clearing a map costs more than making one.
    // forEach, not for-of: no iterator result or entry pair per element; the visitors are made
    // once (cloneInto names the copy).
    cloneInto = c;
    if (oldProcs !== undefined && fitKeys(this.procs, oldProcs)) {
      c.procs = procsInto = oldProcs;
      this.procs.forEach(copyProcInPlace);
    } else {
      c.procs = procsInto = new Map<string, Proc>();
      this.procs.forEach(copyProc);
    }
    c.regionsShared = this.regionsShared = true;
    if (oldHandles !== undefined && fitKeys(this.handles, oldHandles)) {
      c.handles = handlesInto = oldHandles;
      this.handles.forEach(copyLiveHandleInPlace);
    } else {
      c.handles = handlesInto = new Map<string, LiveHandle>();
      this.handles.forEach(copyLiveHandle);
    }
    cloneInto = null;
    c.grantTouched = this.grantTouched;
    c.touchedShared = this.touchedShared = true;
    // Never changed in place (a change makes a new set): shared.
    c.atomicValues = this.atomicValues;
    c.forking = this.forking;
    // `run --trace`'s captures, now seen by both: neither may refill them (traceChanges).
    if (this.changesBase !== null) this.changesBase.owner = null;
    if (this.changesSpare !== null) this.changesSpare.owner = null;
    return c;
  }

  /** A thread's regions, to change (and its process's other threads'): copied first while shared with a copy. */
  regionsOf(p: Proc): Map<string, Region> {
    if (this.regionsShared) {
      this.regionsShared = false;
      // One copy per map: the threads of a process keep sharing theirs.
      const copies = new Map<Map<string, Region>, Map<string, Region>>();
      this.procs.forEach((q) => {
        let c = copies.get(q.regions);
        if (c === undefined) copies.set(q.regions, (c = new Map(q.regions)));
        q.regions = c;
      });
    }
    return p.regions;
  }

  /** Per device-exclusive grant, the pages its owner's CPU touched, to change: copied first while shared with a copy. */
  touchedOf(): Map<string, Uint8Array> {
    if (this.touchedShared) {
      this.touchedShared = false;
      const touched = new Map<string, Uint8Array>();
      this.grantTouched.forEach((a, n) => touched.set(n, a.slice()));
      this.grantTouched = touched;
    }
    return this.grantTouched;
  }

  violation(kind: ViolationKind, message: string, procs: string[] = [], frames: number[] = []): void {
    const step = this.stepIndex >= 0 ? this.scenario.steps[this.stepIndex] : undefined;
    const v: Violation = {
      kind, step: this.stepIndex, file: this.scenario.file, line: step?.pos.line ?? 0, col: step?.pos.col ?? 0,
      procs, frames, message,
    };
    this.violations.push(v);
    this.record.violations.push(v);
  }

  observe(kind: Observation['kind'], what: string, actual: string, ideal: string | null): void {
    this.record.observations.push({ kind, what, actual, ideal } satisfies Observation);
  }

  /** A new thread (a process is its first thread). */
  addProc(name: string, group: string, mm: Mm, regions: Map<string, Region>): Proc {
    const p = newProc(name, group, this.nextTid++, mm, regions);
    if (name !== group) this.threaded = true;
    this.procs.set(name, p);
    return p;
  }

  /** A thread of the process (its address space) is alive: the address space lives until its last thread exits. */
  groupAlive(group: string): boolean {
    // Without threads the group is its process alone: no walk over every thread (the end of a
    // run exits each process, and this was the square of their number).
    if (!this.threaded) return this.procs.get(group)?.alive === true;
    for (const q of this.procs.values()) if (q.alive && q.group === group) return true;
    return false;
  }

  /** The live thread a step names, or null (the step is skipped, the summary says why). */
  proc(name: string): Proc | null {
    const p = this.procs.get(name);
    if (!p) {
      this.record.summary = `${name} does not exist (its fork failed): step skipped`;
      return null;
    }
    if (!p.alive) {
      this.record.summary = `${name} has exited: step skipped`;
      return null;
    }
    return p;
  }

  liveHandle(name: string): LiveHandle | null {
    const hs = this.handles.get(name);
    if (!hs) this.record.summary = `handle ${name} does not exist (taking it failed): step skipped`;
    return hs ?? null;
  }

  /** [lo, hi) page numbers of a selector in a process (which must have the region: see firstPage). */
  range(p: Proc, sel: PageSel): [number, number] {
    const r = p.regions.get(sel.region);
    if (r === undefined) throw new Error(`internal error: ${p.name} has no region ${sel.region}`);
    return [r.start + sel.lo, r.start + sel.hi + 1];
  }

  /**
   * The first page number a selector names, or -1 when there is no such process or it never got
   * the region (it died before mapping it): what `expect` steps read as 'not mapped'.
   */
  firstPage(p: Proc | undefined, sel: PageSel): number {
    const r = p?.regions.get(sel.region);
    return r === undefined ? -1 : r.start + sel.lo;
  }

  label(sel: PageSel, i?: number): string {
    if (i !== undefined) return `${sel.region}[${i}]`;
    if (sel.all) return `${sel.region}[*]`;
    return sel.lo === sel.hi ? `${sel.region}[${sel.lo}]` : `${sel.region}[${sel.lo}..${sel.hi}]`;
  }

  /** The frame a page maps (0: the zero page), or -1 when not present. */
  pfnOf(p: Proc, vpn: number): number {
    if (!p.alive || vpn < 0) return -1;
    const slot = followSlot(this.k, p.mm, vpn);
    if (slot < 0 || !(this.k.tables.bits[slot]! & PTE_PRESENT)) return -1;
    return slotPfn(this.k, slot, vpn);
  }

  pageName(proc: string, vpn: number): string {
    const p = this.procs.get(proc);
    if (p) for (const [name, r] of p.regions) if (vpn >= r.start && vpn < r.start + r.n) return `${name}[${vpn - r.start}]`;
    return `0x${(vpn * 4096).toString(16)}`;
  }

  /** A page of an address space by its region name; a child still being forked has its parent's regions. */
  pageOfMm(mm: number, vpn: number): string {
    const name = this.mmNames[mm];
    if (name !== undefined && this.procs.has(name)) return this.pageName(name, vpn);
    for (const p of this.procs.values()) {
      if (p.task?.kind === 'fork' && p.task.child === mm) return this.pageName(p.name, vpn);
    }
    return this.pageName(name ?? '', vpn);
  }
}

/** RunState.clone's shallow copy of every field. */
const copyRunState = classCopier<RunState>();

/** The copy RunState.clone is making, and its maps of threads and handles, for the visitors below. */
let cloneInto: RunState | null = null;
let procsInto = new Map<string, Proc>();
let handlesInto = new Map<string, LiveHandle>();

/** Proc's fields, each copied by reference (copyProcInto then copies what a copy does not share). */
const copyProcFields = templateCopier(newProc('', '', 0, null!, null!));

/**
 * `q` made a copy of thread `p`, on the copy's kernel. The regions maps are shared (threads of
 * one process share one), copied at a change.
 */
function copyProcInto(q: Proc, p: Proc): void {
  copyProcFields(q, p);
  q.mm = cloneInto!.k.mms[p.mm.id]!;
  q.task = p.task ? cloneTask(p.task) : null;
  q.taskBound = p.taskBound ? p.taskBound.slice() : null;
}

/** A thread's copy, a new object, in procsInto. */
const copyProc = (p: Proc, n: string): void => {
  const q = newProc(p.name, p.group, p.tid, p.mm, p.regions);
  copyProcInto(q, p);
  procsInto.set(n, q);
};

/** copyProc into the thread of that name in procsInto (a reused map: the thread is the done-with copy's own), if it has one. */
const copyProcInPlace = (p: Proc, n: string): void => {
  const q = procsInto.get(n);
  if (q === undefined) return copyProc(p, n);
  copyProcInto(q, p);
};

const copyLiveHandle = (h: LiveHandle, n: string): void => {
  handlesInto.set(n, { h: cloneInto!.k.handles[h.h.id]!, proc: h.proc });
};

/** copyLiveHandle into the handle of that name in handlesInto (a reused map), if it has one. */
const copyLiveHandleInPlace = (h: LiveHandle, n: string): void => {
  const q = handlesInto.get(n);
  if (q === undefined) return copyLiveHandle(h, n);
  q.h = cloneInto!.k.handles[h.h.id]!;
  q.proc = h.proc;
};

/**
 * The keys of the map fitKeys() reuses, in order (an array kept at its length: one emptied by
 * `length = 0` gives up its storage), how many, the next one to write or compare, and whether one differed.
 */
const keysOf: string[] = [];
let keysCount = 0;
let keyAt = 0;
let keysDiffer = false;
const pushKey = (_v: unknown, k: string): void => {
  keysOf[keyAt++] = k;
};
const matchKey = (_v: unknown, k: string): void => {
  if (keyAt < keysCount && keysOf[keyAt] !== k) keysDiffer = true;
  keyAt++;
};

/**
 * Whether `old`, a done-with copy's map, can take `from`'s entries in place: true when the keys of
 * one are the first keys of the other, in the same order (compared without iterators); old's
 * keys past from's are then deleted, and from's past old's are to be added (at the end, in order).
 */
function fitKeys(from: ReadonlyMap<string, unknown>, old: Map<string, unknown>): boolean {
  keyAt = 0;
  old.forEach(pushKey);
  keysCount = old.size;
  keyAt = 0;
  keysDiffer = false;
  from.forEach(matchKey);
  if (keysDiffer) return false;
  for (let i = from.size; i < keysCount; i++) old.delete(keysOf[i]!);
  return true;
}

