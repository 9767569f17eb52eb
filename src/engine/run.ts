// Runs a scenario on the model under one profile, beside the ideal semantics, and judges it.

import {
  EINVAL, NA, OK, OOM, PG_ANON, PG_ANON_EXCLUSIVE, PTE_DEVICE_EXCLUSIVE, PTE_PRESENT, PTE_SWAP, PTE_UFFD_WP, SIGSEGV, VM_WRITE,
} from '../core/constants.js';
import { uffdRegister, uffdWriteprotect } from '../core/userfaultfd.js';
import type { KEvent } from '../core/events.js';
import { frameFlagNames, pteBitNames } from '../core/names.js';
import { cpuAccess, mmuAllows } from '../core/access.js';
import { dupMmap } from '../core/fork.js';
import { DEFAULT_FRAMES, DEFAULT_PIN_BIAS, type Handle, Kernel } from '../core/kernel.js';
import { getUserPages, type GupRequest, releaseHandle } from '../core/gup.js';
import { swapOutPage, type SwapoutSkip } from '../core/swap.js';
import { ksmMerge } from '../core/ksm.js';
import { makeDeviceExclusive } from '../core/devexcl.js';
import { cloneTask, startFork, startGup, startWrite, stepTask, type Task, type TaskState } from '../core/tasks.js';
import type { Mm } from '../core/mm.js';
import { clearSoftDirty, doMadvise, doMmap, doMprotect } from '../core/mmap.js';
import type { Profile } from '../core/profile.js';
import { exitMmap, unmapRegion } from '../core/zap.js';
import { pteSlot } from '../core/walk.js';
import { AccountingChecker } from '../check/accounting.js';
import { IdealMemory } from '../check/ideal.js';
import type { Expected, PageSel, Scenario, Step, ViolationKind } from '../scenario/ast.js';
import { judge } from './judge.js';
import {
  RESULT_FORMAT_VERSION, type EventRecord, type Observation, type RunResult, type StepRecord, type Violation,
} from './result.js';
import { globalStats } from './stats.js';
import { ValueTable } from './values.js';
import { type Capture, capture, diffCaptures } from './changes.js';
import { describeTaskStep } from './tasktrace.js';

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
}

interface Region {
  start: number;
  n: number;
}

interface LiveHandle {
  h: Handle;
  /** The process that took it. */
  proc: string;
}

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
  /** For a pending GUP: which pages the ideal handle was bound to when they were grabbed. */
  taskBound?: boolean[];
}

class NotApplicable extends Error {}

/** Steps that only look at the model (no capture for `changes`). */
const OBSERVING = new Set(['expect-frame', 'expect-mapped', 'expect-exclusive', 'expect-stat', 'check', 'stats']);

const SKIP_WHY: Record<Exclude<SwapoutSkip, null>, string> = {
  'not-present': 'not present', 'not-anon': 'not anonymous', shared: 'mapped by more than this process',
  pinned: 'maybe pinned',
};

export class Runner {
  k: Kernel;
  ideal = new IdealMemory();
  values = new ValueTable();
  procs = new Map<string, Proc>();
  private checker = new AccountingChecker();
  mmNames: string[] = [];
  private record!: StepRecord;
  private stepIndex = 0;
  violations: Violation[] = [];
  handles = new Map<string, LiveHandle>();
  private nextTid = 0;
  /** Per device-exclusive grant page: 1 once the owner's CPU accessed the page. */
  private grantTouched = new Map<string, Uint8Array>();
  /** Values written by device atomics (a wrong read of one is an `exclusive` violation). */
  private atomicValues = new Set<number>();
  /** Threads whose pending fork has begun (the ideal child exists). */
  private forking = new Set<string>();
  /** Pin pages already reported incoherent (reported once). */
  private incoherent = new Set<string>();
  /** The model as the last step left it (RunOptions.changes). */
  private changesBase: Capture | null = null;
  /** The thread whose kernel path emitted an event (threads share their process's mm). */
  private actors = new Map<KEvent, string>();
  /** The thread whose kernel path is taking a step right now (for the web page's event names), else null. */
  acting: string | null = null;

  constructor(
    readonly scenario: Scenario,
    readonly profile: Profile,
    readonly opts: RunOptions = {},
  ) {
    this.k = new Kernel(profile, {
      frames: scenario.config.frames ?? DEFAULT_FRAMES,
      pinBias: scenario.config.pinBias ?? DEFAULT_PIN_BIAS,
    });
    this.k.tracing = opts.trace ?? true;
    if (opts.changes && this.k.tracing) this.changesBase = capture(this.k);
  }

  /** A deep copy of the whole state, for the explorer. The scenario and options are shared. */
  clone(): Runner {
    const c = Object.create(Runner.prototype) as Runner;
    Object.assign(c, this);
    c.k = this.k.clone();
    c.ideal = this.ideal.clone();
    c.values = this.values.clone();
    const regionsByGroup = new Map<Map<string, Region>, Map<string, Region>>();
    c.procs = new Map([...this.procs].map(([n, p]) => {
      let regions = regionsByGroup.get(p.regions);
      if (!regions) regionsByGroup.set(p.regions, (regions = new Map(p.regions)));
      return [n, { ...p, mm: c.k.mms[p.mm.id]!, regions, task: p.task ? cloneTask(p.task) : null, ...(p.taskBound ? { taskBound: p.taskBound.slice() } : {}) }];
    }));
    c.mmNames = this.mmNames.slice();
    c.violations = this.violations.slice();
    c.handles = new Map([...this.handles].map(([n, h]) => [n, { h: c.k.handles[h.h.id]!, proc: h.proc }]));
    c.incoherent = new Set(this.incoherent);
    c.actors = new Map();
    c.forking = new Set(this.forking);
    c.grantTouched = new Map([...this.grantTouched].map(([n, a]) => [n, a.slice()]));
    c.atomicValues = new Set(this.atomicValues);
    return c;
  }

  /**
   * Run one step (its index names it in violations): execute, check pin coherence and the
   * accounting invariants. Returns the record, and the n/a reason when the profile lacks it.
   */
  step(step: Step, i: number): { record: StepRecord; na: string | null } {
    this.stepIndex = i;
    this.record = {
      index: i, line: step.pos.line, col: step.pos.col, text: step.text, summary: '',
      events: [], eventsDropped: 0, observations: [], violations: [], stats: null, frames: [], ptes: [],
    };
    let na: string | null = null;
    try {
      this.exec(step);
    } catch (e) {
      if (!(e instanceof NotApplicable)) throw e;
      this.record.summary = `n/a on ${this.profile.name}: ${e.message}`;
      na = e.message;
    }
    this.drainUffd();
    if (na === null) this.checkPins();
    this.collectEvents();
    this.traceChanges();
    if (na === null && (this.opts.checkEveryStep ?? true)) this.checkAccounting(false);
    if (this.opts.countersEveryStep) this.record.counters = this.allStats();
    return { record: this.record, na };
  }

  /** The end-of-scenario checks (every process exits; frame leaks). Mutates: call on a clone to keep going. */
  end(): StepRecord {
    const steps: StepRecord[] = [];
    this.finish(steps);
    return steps[0]!;
  }

  run(): RunResult {
    const t0 = performance.now();
    const steps: StepRecord[] = [];
    let na: RunResult['na'] = null;
    const sc = this.scenario;
    for (let i = 0; i < sc.steps.length; i++) {
      const step = sc.steps[i]!;
      const r = this.step(step, i);
      steps.push(r.record);
      if (r.na !== null) {
        na = { step: i, line: step.pos.line, reason: r.na };
        break;
      }
    }
    const stats = globalStats(this.k);
    if (na === null) this.finish(steps);
    const status = na !== null ? 'n/a' : this.violations.length > 0 ? 'violation' : 'ok';
    const expected = expectedFor(sc, this.profile.name);
    const { verdict, reason } = judge(status, this.violations, expected);
    return {
      format: RESULT_FORMAT_VERSION,
      file: sc.file,
      scenario: sc.name,
      profile: this.profile.name,
      status,
      na,
      steps,
      violations: this.violations,
      stats,
      expected,
      verdict,
      verdictReason: reason,
      elapsedMs: performance.now() - t0,
    };
  }

  /** After the last step: every remaining process exits; no frame may be left in use but by handles. */
  private finish(steps: StepRecord[]): void {
    const alive = [...this.procs.values()].filter((p) => p.alive);
    this.stepIndex = -1;
    this.record = {
      index: steps.length, line: 0, col: 0, text: '(end)', summary: '',
      events: [], eventsDropped: 0, observations: [], violations: [], stats: null, frames: [], ptes: [],
    };
    for (const p of alive) if (p.task) this.finishTask(p);
    for (const p of alive) this.exitProc(p);
    this.collectEvents();
    this.traceChanges();
    this.checkAccounting(true);
    this.record.summary = alive.length > 0
      ? `end of scenario: ${alive.map((p) => p.name).join(', ')} exit; ${this.k.frames.used} frame(s) still in use`
      : `end of scenario: ${this.k.frames.used} frame(s) still in use`;
    steps.push(this.record);
  }

  // ---- helpers -------------------------------------------------------------------------------

  private violation(kind: ViolationKind, message: string, procs: string[] = [], frames: number[] = []): void {
    const step = this.stepIndex >= 0 ? this.scenario.steps[this.stepIndex] : undefined;
    const v: Violation = {
      kind, step: this.stepIndex, file: this.scenario.file, line: step?.pos.line ?? 0, col: step?.pos.col ?? 0,
      procs, frames, message,
    };
    this.violations.push(v);
    this.record.violations.push(v);
  }

  private observe(kind: Observation['kind'], what: string, actual: string, ideal: string | null): void {
    this.record.observations.push({ kind, what, actual, ideal } satisfies Observation);
  }

  private collectEvents(): void {
    const evs = this.k.events;
    this.k.events = [];
    const max = this.opts.maxEventsPerStep ?? 200;
    if (this.k.tracing) this.snapshot(evs);
    for (const e of evs) {
      if (e.type === 'bug') this.violation('kernel-bug', e.why, e.mm >= 0 ? [this.mmNames[e.mm] ?? '?'] : [], e.pfn >= 0 ? [e.pfn] : []);
      if (this.record.events.length < max) {
        this.record.events.push({ ...e, proc: this.actors.get(e) ?? this.actorOf(e.mm) } satisfies EventRecord);
      } else {
        this.record.eventsDropped++;
      }
    }
    this.actors.clear();
  }

  /** Who did what an event says: the thread running the step when the mm is its own, else the process. */
  private actorOf(mm: number): string | null {
    if (mm < 0) return null;
    const step = this.stepIndex >= 0 ? this.scenario.steps[this.stepIndex] : undefined;
    const name = step && 'proc' in step && typeof step.proc === 'string' ? step.proc : null;
    if (name !== null && this.procs.get(name)?.mm.id === mm) return name;
    return this.mmNames[mm] ?? null;
  }

  /** Every PTE and frame the step changed (RunOptions.changes). */
  private traceChanges(): void {
    if (this.changesBase === null || !this.k.tracing) return;
    const op = this.stepIndex >= 0 ? this.scenario.steps[this.stepIndex]?.op : undefined;
    if (op !== undefined && OBSERVING.has(op)) return; // they change nothing: no capture
    const now = capture(this.k);
    this.record.changes = diffCaptures(this.changesBase, now, {
      proc: (mm) => this.mmNames[mm] ?? `mm ${mm}`,
      page: (mm, vpn) => this.pageOfMm(mm, vpn),
      value: (v) => this.values.name(v),
    });
    this.changesBase = now;
  }

  /** A page of an address space by its region name; a child still being forked has its parent's regions. */
  private pageOfMm(mm: number, vpn: number): string {
    const name = this.mmNames[mm];
    if (name !== undefined && this.procs.has(name)) return this.pageName(name, vpn);
    for (const p of this.procs.values()) {
      if (p.task?.kind === 'fork' && p.task.child === mm) return this.pageName(p.name, vpn);
    }
    return this.pageName(name ?? '', vpn);
  }

  /** Frames and PTEs named by the step's events and violations, as they are now. */
  private snapshot(evs: KEvent[]): void {
    const pfns = new Set<number>();
    const ptes = new Map<string, [number, number]>();
    for (const e of evs.slice(0, 64)) {
      if (e.pfn >= 0) pfns.add(e.pfn);
      if (e.pfn2 >= 0 && e.type !== 'fork') pfns.add(e.pfn2);
      if (e.mm >= 0 && e.vpn >= 0 && e.type !== 'zap' && e.type !== 'note' && e.type !== 'mprotect') ptes.set(`${e.mm}:${e.vpn}`, [e.mm, e.vpn]);
    }
    for (const v of this.record.violations) for (const f of v.frames) pfns.add(f);
    const k = this.k;
    for (const pfn of [...pfns].sort((a, b) => a - b)) {
      const fl = k.frames.flags[pfn] ?? 0;
      this.record.frames.push({
        pfn,
        refcount: k.frames.refcount[pfn] ?? 0,
        mapcount: k.frames.mapcount[pfn] ?? 0,
        flags: frameFlagNames(fl),
        value: this.values.name(k.frames.value[pfn] ?? 0),
      });
    }
    for (const [mmId, vpn] of ptes.values()) {
      const mm = k.mms[mmId]!;
      const name = this.mmNames[mmId] ?? '?';
      const slot = mm.alive ? pteSlot(k, mm, vpn) : -1;
      const bits = slot >= 0 ? k.tables.bits[slot]! : 0;
      this.record.ptes.push({
        proc: name, page: this.pageName(name, vpn), vpn,
        pfn: bits === 0 ? null : k.tables.entry[slot]!, bits: pteBitNames(bits),
      });
    }
  }

  private pageName(proc: string, vpn: number): string {
    const p = this.procs.get(proc);
    if (p) for (const [name, r] of p.regions) if (vpn >= r.start && vpn < r.start + r.n) return `${name}[${vpn - r.start}]`;
    return `0x${(vpn * 4096).toString(16)}`;
  }

  /** References held by kernel paths in progress. */
  private heldByTasks(): [number, number][] {
    const out: [number, number][] = [];
    for (const p of this.procs.values()) {
      const t = p.task;
      if (!t) continue;
      if (t.kind === 'gup') t.handle.frames.forEach((pfn, i) => out.push([pfn, t.handle.refs[i]!]));
      else if (t.newPfn > 0) out.push([t.newPfn, 1]);
    }
    return out;
  }

  private checkAccounting(final: boolean): void {
    for (const p of this.checker.check(this.k, final, this.heldByTasks())) {
      this.violation(p.kind, p.message, p.mm >= 0 ? [this.mmNames[p.mm] ?? '?'] : [], p.pfn >= 0 ? [p.pfn] : []);
    }
  }

  private proc(name: string): Proc | null {
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

  /** [lo, hi) page numbers of a selector in a process. */
  private range(p: Proc, sel: PageSel): [number, number] {
    const r = p.regions.get(sel.region)!;
    return [r.start + sel.lo, r.start + sel.hi + 1];
  }

  private label(sel: PageSel, i?: number): string {
    if (i !== undefined) return `${sel.region}[${i}]`;
    if (sel.all) return `${sel.region}[*]`;
    return sel.lo === sel.hi ? `${sel.region}[${sel.lo}]` : `${sel.region}[${sel.lo}..${sel.hi}]`;
  }

  /** The frame a page maps (0: the zero page), or -1 when not present. */
  private pfnOf(p: Proc, vpn: number): number {
    if (!p.alive) return -1;
    const slot = pteSlot(this.k, p.mm, vpn);
    if (slot < 0 || !(this.k.tables.bits[slot]! & PTE_PRESENT)) return -1;
    return this.k.tables.entry[slot]!;
  }

  /** A thread exits; the process's address space goes with its last thread. */
  private exitProc(p: Proc): void {
    if (p.task) this.finishTask(p);
    p.alive = false;
    for (const q of this.procs.values()) if (q.alive && q.group === p.group) return;
    exitMmap(this.k, p.mm);
    this.ideal.exit(p.group);
  }

  // ---- steps ---------------------------------------------------------------------------------

  private exec(step: Step): void {
    const k = this.k;
    if ('async' in step && step.async) return this.startAsync(step);
    switch (step.op) {
      case 'thread': {
        const p = this.proc(step.proc);
        if (!p) return;
        this.procs.set(step.thread, { ...p, name: step.thread, tid: this.nextTid++, task: null, taskStep: null, taskApplied: 0 });
        this.mmNames[p.mm.id] = this.mmNames[p.mm.id] ?? p.group;
        this.record.summary = `${p.name} creates thread ${step.thread} (it shares ${p.group}'s address space)`;
        return;
      }
      case 'step':
      case 'finish': {
        const p = this.proc(step.proc);
        if (!p) return;
        if (!p.task) {
          this.record.summary = `${p.name} has no kernel path in progress: nothing to do`;
          return;
        }
        const what = p.taskStep!.text;
        if (step.op === 'finish') {
          this.finishTask(p);
          this.record.summary = `${p.name} runs \`${what}\` to its end`;
        } else {
          const st = this.stepTaskOnce(p);
          this.record.summary = st === 'blocked'
            ? `${p.name}'s \`${what}\` is blocked (it waits for mmap_lock): nothing happens`
            : st === 'done' ? `${p.name}'s \`${what}\` takes its last step` : `${p.name}'s \`${what}\` takes one step`;
        }
        return;
      }
      case 'mmap': {
        let p = this.procs.get(step.proc);
        if (!p && this.procs.size > 0) {
          // Only the first process is created by mmap; another unknown name is a child whose fork failed.
          this.record.summary = `${step.proc} does not exist (its fork failed): step skipped`;
          return;
        }
        if (!p) {
          const mm = k.newMm();
          this.mmNames[mm.id] = step.proc;
          p = { name: step.proc, group: step.proc, tid: this.nextTid++, mm, regions: new Map(), alive: true, task: null, taskStep: null, taskApplied: 0 };
          this.procs.set(step.proc, p);
        } else if (!this.proc(step.proc)) return;
        this.waitForMmapLock(p);
        if (step.thp === 'thp') throw new NotApplicable('transparent huge pages are not modelled yet');
        const r = doMmap(k, p.mm, step.pages, step.prot, step.shared, step.populate);
        if (r.err !== OK) {
          this.record.summary = `mmap of ${step.pages} page(s) failed: no address space left`;
          this.violation('fault', 'mmap failed in the model');
          return;
        }
        p.regions.set(step.region, { start: r.start, n: step.pages });
        this.ideal.mmap(p.group, r.start, step.pages, step.prot, step.shared);
        this.record.summary = `${step.proc} maps ${step.region}: ${step.pages} page(s) ${step.prot} ${step.shared ? 'shared' : 'private'} at 0x${(r.start * 4096).toString(16)}` +
          (step.populate ? `, ${r.populated} populated` : '');
        return;
      }
      case 'munmap': {
        const p = this.proc(step.proc);
        if (!p) return;
        this.waitForMmapLock(p);
        const [lo, hi] = this.range(p, step.sel);
        unmapRegion(k, p.mm, lo, hi);
        this.ideal.munmap(p.group, lo, hi);
        this.record.summary = `${p.name} unmaps ${this.label(step.sel)}`;
        return;
      }
      case 'mprotect': {
        const p = this.proc(step.proc);
        if (!p) return;
        this.waitForMmapLock(p);
        const [lo, hi] = this.range(p, step.sel);
        const err = doMprotect(k, p.mm, lo, hi, step.prot);
        const idealOk = this.ideal.mprotect(p.group, lo, hi, step.prot);
        if ((err === OK) !== idealOk) this.violation('fault', `mprotect ${step.prot}: the model ${err === OK ? 'succeeded' : 'failed (ENOMEM)'}, it must ${idealOk ? 'succeed' : 'fail at a hole'}`, [p.name]);
        this.record.summary = `${p.name} mprotects ${this.label(step.sel)} ${step.prot}${err === OK ? '' : ': ENOMEM (a hole in the range; pages before it changed)'}`;
        return;
      }
      case 'madvise': {
        const p = this.proc(step.proc);
        if (!p) return;
        this.waitForMmapLock(p);
        const [lo, hi] = this.range(p, step.sel);
        const err = doMadvise(k, p.mm, lo, hi, step.advice);
        if (err === NA) throw new NotApplicable(`madvise ${step.advice} is not modelled yet`);
        const idealOk = this.ideal.madvise(p.group, lo, hi, step.advice);
        if ((err === OK) !== idealOk) this.violation('fault', `madvise ${step.advice}: the model ${err === OK ? 'accepted' : 'refused'} it`, [p.name]);
        this.record.summary = `${p.name} madvise ${this.label(step.sel)} ${step.advice}${err === EINVAL ? ': EINVAL' : ''}`;
        return;
      }
      case 'write':
        return this.cpuWrite(step.proc, step.sel, step.value);
      case 'read':
        return this.cpuRead(step.proc, step.sel, step.expect);
      case 'fork': {
        const p = this.proc(step.proc);
        if (!p) return;
        this.waitForMmapLock(p);
        if (step.cowpt && this.profile.cowPageTables === 'none') throw new NotApplicable(`${this.profile.name} has no COW page tables (fork ... cowpt)`);
        const r = dupMmap(k, p.mm, step.cowpt);
        if (r.err === NA) throw new NotApplicable('fork of non-present PTEs (swap, device-exclusive) is not modelled yet');
        this.observe('fork', `${p.name} forks ${step.child}`, r.err === OK ? 'ok' : 'ENOMEM', null);
        if (r.err !== OK || r.child === null) {
          this.record.summary = `${p.name} forks ${step.child}: fork failed with ENOMEM; ${step.child} does not exist`;
          return;
        }
        this.mmNames[r.child.id] = step.child;
        this.procs.set(step.child, { name: step.child, group: step.child, tid: this.nextTid++, mm: r.child, regions: new Map(p.regions), alive: true, task: null, taskStep: null, taskApplied: 0 });
        this.ideal.fork(p.group, step.child);
        this.record.summary = `${p.name} forks ${step.child}${p.mm.cowPgtable ? ` with COW page tables (${this.profile.cowPageTables})` : ''}`;
        return;
      }
      case 'exit': {
        const p = this.proc(step.proc);
        if (!p) return;
        this.waitForMmapLock(p);
        const before = k.frames.used;
        this.exitProc(p);
        this.record.summary = `${p.name} exits: ${before - k.frames.used} frame(s) freed`;
        return;
      }
      case 'clear-softdirty': {
        const p = this.proc(step.proc);
        if (!p) return;
        this.waitForMmapLock(p);
        clearSoftDirty(k, p.mm);
        this.record.summary = `${p.name} clears soft-dirty bits (clear_refs 4)`;
        return;
      }
      case 'check':
        this.record.summary = 'invariants checked';
        return;
      case 'stats':
        this.record.stats = this.allStats();
        this.record.summary = 'counters: ' + Object.entries(this.record.stats).map(([n, v]) => `${n}=${v}`).join(' ');
        return;
      case 'expect-frame':
        return this.expectFrame(step.proc, step.sel, step.same, step.otherProc, step.otherSel);
      case 'expect-mapped': {
        const p = this.procs.get(step.proc);
        const pfn = p ? this.pfnOf(p, this.range(p, step.sel)[0]) : -1;
        const once = pfn > 0 && k.frames.mapcount[pfn] === 1;
        const actual = pfn < 0 ? 'not mapped' : once ? 'mapped-once' : 'mapped-shared';
        const want = step.once ? 'mapped-once' : 'mapped-shared';
        this.observe('mapped', `${step.proc} ${this.label(step.sel)}`, actual, want);
        if (actual !== want) this.violation('expect', `${step.proc} ${this.label(step.sel)} is ${actual}, expected ${want}`, [step.proc], pfn > 0 ? [pfn] : []);
        this.record.summary = `${step.proc} ${this.label(step.sel)} is ${actual}` + (pfn > 0 ? ` (frame ${pfn}, mapcount ${k.frames.mapcount[pfn]})` : '');
        return;
      }
      case 'expect-exclusive': {
        if (!this.profile.anonExclusive) throw new NotApplicable(`${this.profile.name} has no PG_anon_exclusive (5.19 on)`);
        const p = this.procs.get(step.proc);
        const pfn = p ? this.pfnOf(p, this.range(p, step.sel)[0]) : -1;
        const excl = pfn > 0 && (k.frames.flags[pfn]! & PG_ANON_EXCLUSIVE) !== 0;
        const actual = excl ? 'anon-exclusive' : 'not-anon-exclusive';
        const want = step.exclusive ? 'anon-exclusive' : 'not-anon-exclusive';
        this.observe('exclusive', `${step.proc} ${this.label(step.sel)}`, actual, want);
        if (actual !== want) this.violation('expect', `${step.proc} ${this.label(step.sel)} is ${actual}, expected ${want}`, [step.proc], pfn > 0 ? [pfn] : []);
        this.record.summary = `${step.proc} ${this.label(step.sel)} is ${actual}` + (pfn >= 0 ? ` (frame ${pfn})` : ' (not mapped)');
        return;
      }
      case 'expect-stat': {
        const all = this.allStats();
        const actual = all[step.stat];
        if (actual === undefined) throw new NotApplicable(`counter ${step.stat} is not modelled`);
        const ok = compare(actual, step.cmp, step.number);
        this.observe('stat', step.stat, String(actual), `${step.cmp} ${step.number}`);
        if (!ok) this.violation('expect', `${step.stat} is ${actual}, expected ${step.cmp} ${step.number}`, step.statProc ? [step.statProc] : []);
        this.record.summary = `${step.stat} = ${actual} (expected ${step.cmp} ${step.number}${ok ? ': holds' : ': FAILS'})`;
        return;
      }
      case 'pin':
        return this.gup(step.proc, step.sel, step.handle, { pin: true, write: step.write, longterm: step.longterm, fast: step.fast, kind: 'pin' });
      case 'gup':
        return this.gup(step.proc, step.sel, step.handle, { pin: false, write: step.write, longterm: false, fast: step.fast, kind: 'gup' });
      case 'vmsplice':
        // vmsplice(2) takes FOLL_GET references through gup-fast (iov_iter_get_pages), read-only.
        return this.gup(step.proc, step.sel, step.handle, { pin: false, write: false, longterm: false, fast: true, kind: 'pipe' });
      case 'read-handle': {
        if (!this.proc(step.proc)) return;
        return this.handleRead(step.ref.handle, step.ref.index, step.expect, step.proc);
      }
      case 'device-read': {
        const hs = this.handles.get(step.ref.handle);
        if (hs?.h.kind === 'exclusive') return this.grantRead(step.ref.handle, step.ref.index, step.expect);
        return this.handleRead(step.ref.handle, step.ref.index, step.expect, null);
      }
      case 'device-write':
        return this.deviceWrite(step.ref.handle, step.ref.index, step.value);
      case 'unpin':
      case 'put': {
        const hs = this.handles.get(step.handle);
        if (!hs) {
          this.record.summary = `handle ${step.handle} does not exist (taking it failed): step skipped`;
          return;
        }
        const before = k.frames.used;
        releaseHandle(k, hs.h);
        this.ideal.releaseHandle(step.handle);
        this.handles.delete(step.handle);
        // A later handle may take the same name: it is checked afresh.
        for (let i = 0; i < hs.h.frames.length; i++) {
          this.incoherent.delete(`${step.handle}:${i}`);
          this.incoherent.delete(`x:${step.handle}:${i}`);
        }
        const what = step.op === 'unpin' ? 'unpin_user_pages' : hs.h.kind === 'pipe' ? 'the pipe is closed, its buffers put' : 'put_page';
        this.record.summary = `${step.proc} releases ${step.handle}: ${what}` + (before > k.frames.used ? `; ${before - k.frames.used} frame(s) freed` : '');
        return;
      }
      case 'device-exclusive':
        return this.deviceExclusive(step.proc, step.sel, step.handle);
      case 'device-atomic':
        return this.deviceAtomic(step.ref.handle, step.ref.index, step.value, step.expect);
      case 'swapout': {
        if (!this.profile.swap) throw new NotApplicable(`${this.profile.name} has no swap modelled`);
        const p = this.proc(step.proc);
        if (!p) return;
        this.waitForMmapLock(p, false, true); // MADV_PAGEOUT takes mmap_lock for read (P's own fork path holds it for write too)
        const [lo, hi] = this.range(p, step.sel);
        const skipped: string[] = [];
        let out = 0;
        for (let v = lo; v < hi; v++) {
          const why = swapOutPage(k, p.mm, v);
          if (why === null) out++;
          else skipped.push(`${this.label(step.sel, step.sel.lo + (v - lo))}: ${SKIP_WHY[why]}`);
        }
        this.record.summary = `reclaim (MADV_PAGEOUT) of ${p.name} ${this.label(step.sel)}: ${out} page(s) swapped out` +
          (skipped.length ? `; kept ${skipped.slice(0, 4).join(', ')}${skipped.length > 4 ? ', …' : ''}` : '');
        return;
      }
      case 'uffd':
        return this.uffd(step.proc, step.action, step.sel, step.on);
      case 'expect-uffd-wp': {
        const p = this.procs.get(step.proc);
        const vpn = p ? this.range(p, step.sel)[0] : -1;
        const slot = p?.alive ? pteSlot(k, p.mm, vpn) : -1;
        // pagemap's PM_UFFD_WP: a present PTE, a swap or device-exclusive entry, or a marker with the bit.
        const wp = slot >= 0 && (k.tables.bits[slot]! & PTE_UFFD_WP) !== 0;
        const actual = wp ? 'uffd-wp' : 'not-uffd-wp';
        const want = step.wp ? 'uffd-wp' : 'not-uffd-wp';
        this.observe('uffd-wp', `${step.proc} ${this.label(step.sel)}`, actual, want);
        if (actual !== want) this.violation('expect', `${step.proc} ${this.label(step.sel)} is ${actual}, expected ${want}`, [step.proc]);
        this.record.summary = `${step.proc} ${this.label(step.sel)} is ${actual}`;
        return;
      }
      case 'ksm-merge': {
        if (!this.profile.ksm) throw new NotApplicable(`${this.profile.name} has no KSM modelled`);
        for (const p of this.procs.values()) if (p.alive) this.waitForMmapLock(p, false, true); // ksmd takes each mm's mmap_lock for read
        const n = ksmMerge(k);
        this.record.summary = `ksmd: ${n} page(s) merged into KSM pages`;
        return;
      }
    }
  }

  private allStats(): Record<string, number> {
    const s = globalStats(this.k);
    for (const [name, p] of this.procs) {
      s[`rss.${name}`] = p.alive ? p.mm.rssAnon + p.mm.rssShmem : 0;
      s[`minflt.${name}`] = p.mm.minflt;
      s[`uffd_faults.${name}`] = p.mm.uffdFaults;
    }
    return s;
  }

  // ---- userfaultfd write-protect (the scenario's monitor) ------------------------------------

  /** `P uffd register|protect|unprotect SEL` and `P uffd fork-event on|off`. */
  private uffd(procName: string, action: 'register' | 'protect' | 'unprotect' | 'fork-event', sel: PageSel | null, on: boolean): void {
    if (!this.profile.uffdWp) throw new NotApplicable(`${this.profile.name} has no userfaultfd write-protect (5.7 on)`);
    const p = this.proc(procName);
    if (!p) return;
    if (action === 'fork-event') {
      p.mm.uffdForkEvent = on;
      this.ideal.uffdSetForkEvent(p.group, on);
      this.record.summary = `${p.name}'s userfaultfd context ${on ? 'asks for' : 'does without'} the fork event (UFFD_FEATURE_EVENT_FORK)`;
      return;
    }
    this.waitForMmapLock(p, action === 'register');
    const [lo, hi] = this.range(p, sel!);
    if (action === 'register') {
      const err = uffdRegister(this.k, p.mm, lo, hi);
      if (err === EINVAL && p.mm.findVma(lo)?.shm) throw new NotApplicable(`${this.profile.name} has no userfaultfd write-protect on shared memory (5.19 on)`);
      // The ideal: a range with a hole is refused (EINVAL), a mapped one registered.
      let mapped = true;
      for (let v = lo; v < hi; v++) if ((this.ideal.cellAt(p.group, v)?.cell ?? -1) < 0) mapped = false;
      this.observe('uffd', `${p.name} uffd register ${this.label(sel!)}`, err === OK ? 'ok' : 'EINVAL', mapped ? 'ok' : 'EINVAL');
      if ((err === OK) !== mapped) this.violation('fault', `${p.name}: UFFDIO_REGISTER of ${this.label(sel!)} ${err === OK ? 'succeeded over a hole' : 'failed (EINVAL) on a mapped range'}`, [p.name]);
      this.record.summary = `${p.name} registers ${this.label(sel!)} with userfaultfd in write-protect mode${err === OK ? '' : ': EINVAL'}`;
      return;
    }
    const touched: number[] = [];
    const err = uffdWriteprotect(this.k, p.mm, lo, hi, action === 'protect', touched);
    if (err === OK) {
      if (action === 'protect') this.ideal.uffdProtect(p.group, touched);
      else this.ideal.uffdUnprotect(p.group, lo, hi);
    }
    this.observe('uffd', `${p.name} uffd ${action} ${this.label(sel!)}`, err === OK ? 'ok' : 'ENOENT', null);
    this.record.summary = err === OK
      ? `${p.name} ${action === 'protect' ? `write-protects ${this.label(sel!)} (${touched.length} page(s) with data)` : `un-protects ${this.label(sel!)}`}`
      : `${p.name} uffd ${action} ${this.label(sel!)}: ENOENT (not registered in write-protect mode)`;
  }

  /** The faults the monitor resolved since the last call: their pages are no longer protected in the ideal semantics. */
  private drainUffd(): void {
    const r = this.k.uffdResolved;
    if (r.length === 0) return;
    for (let i = 0; i < r.length; i += 2) {
      const name = this.mmNames[r[i]!];
      if (name !== undefined) this.ideal.uffdUnprotect(this.procs.get(name)?.group ?? name, r[i + 1]!, r[i + 1]! + 1);
    }
    r.length = 0;
  }

  /** A write (by the CPU, through a write GUP, or by the device) landed on vpn of `group`: was the monitor told first? */
  private checkUffdWrite(group: string, vpn: number, page: string, who: string, procs: string[], frames: number[] = []): void {
    this.drainUffd();
    if (this.ideal.uffdProtected(group, vpn)) {
      this.violation('uffd-wp-bypass', `${who} changed ${page}, which the userfaultfd monitor had write-protected, without a userfault first`, procs, frames);
    }
  }

  // ---- kernel paths split into steps (v1.1 `&`) --------------------------------------------

  private startAsync(step: Step): void {
    const p = this.proc((step as { proc: string }).proc);
    if (!p) return;
    if (p.task) {
      this.record.summary = `${p.name} already has a kernel path in progress: step skipped`;
      return;
    }
    let task: Task;
    switch (step.op) {
      case 'fork':
        if (step.cowpt || p.mm.cowPgtable) throw new NotApplicable('a fork with COW page tables runs in one step (no `&`)');
        task = startFork(p.mm);
        break;
      case 'write': {
        const [lo, hi] = this.range(p, step.sel);
        task = startWrite(this.k, p.mm, lo, hi, this.values.id(step.value));
        break;
      }
      case 'pin':
      case 'gup':
      case 'vmsplice': {
        const [lo, hi] = this.range(p, step.sel);
        const req: GupRequest = step.op === 'pin'
          ? { pin: true, write: step.write, longterm: step.longterm, fast: step.fast, kind: 'pin' }
          : step.op === 'gup'
            ? { pin: false, write: step.write, longterm: false, fast: step.fast, kind: 'gup' }
            : { pin: false, write: false, longterm: false, fast: true, kind: 'pipe' };
        task = startGup(this.k, p.mm, lo, hi, req);
        // The ideal handle's pages are bound as the GUP grabs them (see stepTaskOnce).
        this.ideal.beginHandle(step.handle, p.group, lo, hi - lo, req.pin && req.longterm);
        p.taskBound = new Array<boolean>(hi - lo).fill(false);
        break;
      }
      default:
        throw new NotApplicable(`${step.op} cannot run in steps`);
    }
    p.task = task;
    p.taskStep = step;
    p.taskApplied = 0;
    this.record.summary = `${p.name} starts \`${step.text.replace(/\s*&$/, '')}\` as a kernel path of separate steps (${p.name} step / finish)`;
  }

  /** A write by `group` at vpn while that process is being forked: the child may or may not see it. */
  private raceWithFork(group: string, vpn: number, value: number): void {
    for (const q of this.procs.values()) {
      if (q.group === group && q.task?.kind === 'fork' && this.forking.has(q.name)) {
        this.ideal.addMaybe((q.taskStep as { child: string }).child, vpn, value);
      }
    }
  }

  /**
   * An operation that needs mmap_lock (for write: mmap, munmap, mprotect, madvise, fork, exit,
   * clear_refs; for read: a fault, slow GUP) while other threads' kernel paths hold it: the
   * thread waits, so those paths run to their end first.
   */
  private waitForMmapLock(p: Proc, write = true, byOther = false): void {
    const mm = p.mm;
    if (mm.mmapWriter < 0 && (!write || mm.mmapReaders === 0)) return;
    for (const q of this.procs.values()) {
      // byOther: the caller is not p's thread (reclaim, ksmd, a driver), so p's own path blocks it too.
      if ((q === p && !byOther) || !q.task || q.mm !== mm) continue;
      const holdsWrite = q.tid === mm.mmapWriter;
      const holdsRead = q.task.kind === 'write' && q.task.locked;
      if (holdsWrite || (write && holdsRead)) {
        this.k.emit('note', mm.id, -1, -1, -1, `${p.name} waits for mmap_lock: ${q.name}'s \`${q.taskStep!.text}\` runs to its end first`);
        this.finishTask(q);
      }
    }
  }

  /** One atomic step of p's path; on completion, its effects on names and the ideal memory. */
  private stepTaskOnce(p: Proc): TaskState {
    const t = p.task!;
    const k = this.k;
    const from = k.events.length;
    const prev = k.tracing ? cloneTask(t) : null;
    const outer = this.acting;
    this.acting = p.name;
    const st = stepTask(k, t, p.tid);
    if (t.kind === 'fork' && t.child >= 0 && !this.procs.has((p.taskStep as { child: string }).child) && !this.forking.has(p.name)) {
      // The ideal child is made when the copy begins: what the parent holds then.
      this.forking.add(p.name);
      this.mmNames[t.child] = (p.taskStep as { child: string }).child;
      this.ideal.fork(p.group, (p.taskStep as { child: string }).child);
    }
    if (t.kind === 'gup' && p.taskBound) {
      t.handle.frames.forEach((pfn, i) => {
        if (pfn >= 0 && !p.taskBound![i]) {
          this.ideal.bindHandlePage((p.taskStep as { handle: string }).handle, i);
          p.taskBound![i] = true;
        } else if (pfn < 0) p.taskBound![i] = false;
      });
    }
    if (t.kind === 'write') {
      for (; p.taskApplied < t.stored.length; p.taskApplied++) {
        this.checkUffdWrite(p.group, t.stored[p.taskApplied]!, `${p.name} page ${t.stored[p.taskApplied]!.toString(16)}`, `${p.name}'s write`, [p.name]);
        this.ideal.write(p.group, t.stored[p.taskApplied]!, t.value);
        this.raceWithFork(p.group, t.stored[p.taskApplied]!, t.value);
      }
    }
    if (prev !== null) {
      // What this step read and decided (after what the model said of it); every event of the step is this thread's.
      const lines = describeTaskStep(k, prev, t, st, {
        page: (mm, vpn) => this.pageOfMm(mm, vpn), proc: (mm) => this.mmNames[mm] ?? `mm ${mm}`, value: (v) => this.values.name(v),
      });
      for (const l of lines) k.emit('note', l.mm, l.vpn, l.pfn, -1, l.why);
      for (let i = from; i < k.events.length; i++) this.actors.set(k.events[i]!, p.name);
    }
    this.acting = outer;
    if (st === 'done') this.completeTask(p);
    return st;
  }

  private completeTask(p: Proc): void {
    const t = p.task!;
    const step = p.taskStep!;
    p.task = null;
    p.taskStep = null;
    this.forking.delete(p.name);
    switch (t.kind) {
      case 'fork': {
        const child = (step as { child: string }).child;
        this.observe('fork', `${p.name} forks ${child}`, t.child >= 0 ? 'ok' : 'ENOMEM', null);
        if (t.err === NA) throw new NotApplicable('fork of non-present PTEs (swap, device-exclusive) is not modelled yet');
        if (t.child < 0) {
          this.ideal.exit(child);
          return;
        }
        this.procs.set(child, { name: child, group: child, tid: this.nextTid++, mm: this.k.mms[t.child]!, regions: new Map(p.regions), alive: true, task: null, taskStep: null, taskApplied: 0 });
        return;
      }
      case 'gup': {
        const name = (step as { handle: string }).handle;
        const n = t.handle.frames.length;
        let idealOk = true;
        for (let v = t.lo; v < t.lo + n; v++) if (this.ideal.access(p.group, v, t.req.write) === 'fault') idealOk = false;
        this.observe('gup', `${p.name} ${step.op} as ${name}`, t.err === OK ? 'ok' : 'EFAULT', idealOk ? 'ok' : 'EFAULT');
        const bound = p.taskBound;
        p.taskBound = undefined;
        if (t.err !== OK) {
          this.ideal.releaseHandle(name);
          if (idealOk) this.violation('fault', `${p.name}: GUP for ${name} failed though the mapping allows it`, [p.name]);
          return;
        }
        this.handles.set(name, { h: t.handle, proc: p.name });
        if (t.req.write) for (let v = t.lo; v < t.lo + n; v++) this.checkUffdWrite(p.group, v, `${p.name} page ${v.toString(16)}`, `a FOLL_WRITE GUP (${name})`, [p.name]);
        // Pages grabbed in the last step (or never seen grabbed) are bound now.
        for (let i = 0; i < n; i++) if (!bound?.[i]) this.ideal.bindHandlePage(name, i);
        return;
      }
      case 'write': {
        const want = t.err === OK ? 'ok' : 'fault';
        this.observe('write', `${p.name} ${step.text}`, want, null);
        if (t.err !== OK && this.ideal.access(p.group, t.vpn, true) === 'ok') {
          this.violation('fault', `${p.name} write at ${t.vpn.toString(16)} failed though the mapping allows it`, [p.name]);
        }
        return;
      }
    }
  }

  /** Run p's path to its end; a step blocked on mmap_lock lets the holders' paths run first. */
  private finishTask(p: Proc): void {
    for (let guard = 0; p.task && guard < 100000; guard++) {
      if (this.stepTaskOnce(p) !== 'blocked') continue;
      let moved = false;
      for (const q of this.procs.values()) {
        if (q !== p && q.alive && q.task && q.mm === p.mm) {
          this.k.emit('note', p.mm.id, -1, -1, -1, `${p.name} waits for mmap_lock: ${q.name}'s \`${q.taskStep!.text}\` runs to its end first`);
          if (this.k.tracing) this.actors.set(this.k.events[this.k.events.length - 1]!, p.name);
          this.finishTask(q);
          moved = true;
        }
      }
      if (!moved) {
        this.violation('kernel-bug', `${p.name}'s kernel path is blocked on mmap_lock and nothing can release it (deadlock)`, [p.name]);
        p.task = null;
        return;
      }
    }
  }

  // ---- device-exclusive grants ---------------------------------------------------------------

  private deviceExclusive(procName: string, sel: PageSel, name: string): void {
    if (this.profile.deviceExclusive === 'none') throw new NotApplicable(`${this.profile.name} has no device-exclusive entries (5.14 on)`);
    const p = this.proc(procName);
    if (!p) return;
    this.waitForMmapLock(p, false, true); // the driver holds mmap_lock for read
    const [lo, hi] = this.range(p, sel);
    const r = makeDeviceExclusive(this.k, p.mm, lo, hi);
    if (r.err === NA || r.handle === null) throw new NotApplicable('device-exclusive entries are not modelled for this profile');
    this.handles.set(name, { h: r.handle, proc: p.name });
    this.grantTouched.set(name, new Uint8Array(hi - lo));
    // make_device_exclusive() write-faults each page (FOLL_WRITE): the device may write it from now on.
    for (let v = lo; v < hi; v++) {
      if (r.handle.frames[v - lo]! > 0 && !r.handle.revoked![v - lo]) this.checkUffdWrite(p.group, v, `${p.name} ${this.label(sel, sel.lo + (v - lo))}`, `the device's exclusive grant (${name})`, [p.name]);
    }
    const held = [...r.handle.revoked!].filter((x) => x === 0).length;
    this.observe('gup', `device exclusive ${p.name} ${this.label(sel)}`, r.err === OK ? 'ok' : 'EBUSY', null);
    this.record.summary = `the device takes ${p.name} ${this.label(sel)} exclusively as ${name}: ${held} of ${hi - lo} page(s) held` +
      (r.err === OK ? '' : ' (make_device_exclusive failed for the others: EBUSY)');
  }

  /** Which pages of a grant the owner's CPU touched (for the explorer's state keys). */
  grantTouchedOf(name: string): Uint8Array | undefined {
    return this.grantTouched.get(name);
  }

  /** A CPU access by `group` at vpn: grants on that page must have been revoked before it. */
  private touchGrants(p: Proc, vpn: number, pfn: number): void {
    for (const [name, lh] of this.handles) {
      if (lh.h.kind !== 'exclusive') continue;
      const holder = this.procs.get(lh.proc);
      const i = vpn - lh.h.vpn;
      if (holder?.group === p.group && i >= 0 && i < lh.h.frames.length) this.grantTouched.get(name)![i] = 1;
      // The CPU must never reach a page the device still holds exclusively.
      lh.h.frames.forEach((f, j) => {
        if (f === pfn && pfn > 0 && !lh.h.revoked![j]) {
          this.violation('exclusive', `${p.name} reached frame ${pfn} while the device holds it exclusively through ${name}[${j}]: the device was not notified`, [p.name], [pfn]);
        }
      });
    }
  }

  private deviceAtomic(name: string, i: number, value: string, expect: 'revoked' | 'denied' | null): void {
    const hs = this.liveHandle(name);
    if (!hs) return;
    if (hs.h.kind !== 'exclusive') {
      this.record.summary = `${name} is not a device-exclusive grant: nothing happens`;
      return;
    }
    const p = this.procs.get(hs.proc)!;
    const vpn = hs.h.vpn + i;
    const pfn = hs.h.frames[i]!;
    const vma = p.alive ? p.mm.findVma(vpn) : null;
    let result: 'ok' | 'revoked' | 'denied';
    if (vma === null || !(vma.flags & VM_WRITE)) result = 'denied';
    else if (hs.h.revoked![i] || pfn <= 0) result = 'revoked';
    else result = 'ok';
    const touched = this.grantTouched.get(name)![i] === 1;
    if (result === 'ok') {
      if (touched) {
        this.violation('exclusive', `the device's atomic through ${name}[${i}] went through although ${p.name} accessed the page since: the device was not notified`, [p.name], [pfn]);
      }
      const v = this.values.id(value);
      this.checkUffdWrite(p.group, vpn, `${p.name} page ${i} of ${name}`, `the device's atomic through ${name}[${i}]`, [p.name], [pfn]);
      this.k.frames.value[pfn] = v;
      this.ideal.write(p.group, vpn, v);
      this.atomicValues.add(v);
      if (this.pfnOfEntry(p, vpn) !== pfn) {
        this.violation('exclusive', `the device's atomic through ${name}[${i}] wrote frame ${pfn}, which ${p.name} no longer maps: the atomic is lost`, [p.name], [pfn]);
      }
    }
    this.observe('handle-read', `device atomic ${name}[${i}]`, result, expect ?? null);
    if (expect !== null && expect !== result) this.violation('expect', `the device's atomic through ${name}[${i}] ${result === 'ok' ? 'succeeded' : `was ${result}`}, expected ${expect}`, [p.name], pfn > 0 ? [pfn] : []);
    this.record.summary = result === 'ok'
      ? `the device's atomic writes ${value} into frame ${pfn} through ${name}[${i}]`
      : `the device's atomic through ${name}[${i}]: ${result}${result === 'revoked' ? ' (it was notified that it lost exclusive access)' : ' (the mapping is not writable)'}`;
  }

  /** A device read through a grant: the held page, or (revoked) the page the process maps now. */
  private grantRead(name: string, i: number, expect: string | null): void {
    const hs = this.liveHandle(name);
    if (!hs) return;
    const p = this.procs.get(hs.proc)!;
    const vpn = hs.h.vpn + i;
    let value: number;
    if (!hs.h.revoked![i] && hs.h.frames[i]! > 0) value = this.k.frames.value[hs.h.frames[i]!]!;
    else if (p.alive) {
      const r = cpuAccess(this.k, p.mm, vpn, false, 0); // hmm_range_fault() faults it in for the device
      value = r.err === OK ? r.value : 0;
    } else value = 0;
    const actual = this.values.name(value);
    const ideal = p.alive && this.ideal.access(p.group, vpn, false) === 'ok' ? this.ideal.read(p.group, vpn) : null;
    this.observe('handle-read', `the device reads ${name}[${i}]`, actual, ideal === null ? null : this.values.name(ideal));
    if (ideal !== null && ideal !== value && !this.ideal.maybeValues(p.group, vpn)?.has(value)) {
      const kind = this.ideal.everHeld(p.group, value) ? 'lost-write' : 'leak';
      this.violation(kind, `the device read ${actual} through ${name}[${i}], but ${p.name}'s page holds ${this.values.name(ideal)}`, [p.name]);
    }
    if (expect !== null && expect !== actual) this.violation('expect', `the device read ${actual} through ${name}[${i}], expected ${expect}`, [p.name]);
    this.record.summary = `the device reads ${name}[${i}]: ${actual}`;
  }

  /**
   * The frame a page names: present, held by a device-exclusive entry, or (a swap entry) the
   * page still in the swap cache, which swap-in maps again; -1 otherwise.
   */
  private pfnOfEntry(p: Proc, vpn: number): number {
    if (!p.alive) return -1;
    const slot = pteSlot(this.k, p.mm, vpn);
    const bits = slot < 0 ? 0 : this.k.tables.bits[slot]!;
    if (bits & PTE_SWAP) return this.k.swap.cache[this.k.tables.entry[slot]!]!;
    if (bits & (PTE_PRESENT | PTE_DEVICE_EXCLUSIVE)) return this.k.tables.entry[slot]!;
    // An empty PTE of a shared mapping: the next fault maps the page cache's page, so that page is the one shared.
    const vma = p.mm.findVma(vpn);
    if (bits === 0 && vma?.shm) return vma.shm.pages[vma.shmOffset + (vpn - vma.start)] ?? -1;
    return -1;
  }

  private gup(procName: string, sel: PageSel, name: string, req: GupRequest): void {
    const p = this.proc(procName);
    if (!p) return;
    this.waitForMmapLock(p, false);
    const [lo, hi] = this.range(p, sel);
    const r = getUserPages(this.k, p.mm, lo, hi, req);
    if (r.err === NA) throw new NotApplicable('GUP met a non-present PTE kind that is not modelled yet');
    let idealOk = true;
    for (let v = lo; v < hi; v++) if (this.ideal.access(p.group, v, req.write) === 'fault') idealOk = false;
    const what = req.kind === 'pin' ? 'pins' : req.kind === 'pipe' ? 'vmsplices' : 'takes references on';
    this.observe('gup', `${p.name} ${what} ${this.label(sel)}`, r.err === OK ? 'ok' : 'EFAULT', idealOk ? 'ok' : 'EFAULT');
    if (r.err !== OK || r.handle === null) {
      if (idealOk) this.violation('fault', `${p.name} ${what} ${this.label(sel)}: GUP failed (EFAULT) though the mapping allows it`, [p.name]);
      this.record.summary = `${p.name} ${what} ${this.label(sel)}: EFAULT, no handle ${name}` + (idealOk ? '' : ' (as it must)');
      return;
    }
    if (!idealOk) this.violation('fault', `${p.name} ${what} ${this.label(sel)}: GUP succeeded where the mapping forbids the access`, [p.name]);
    // A FOLL_WRITE GUP grants write access: on a protected page it must have gone to the monitor.
    if (req.write) for (let v = lo; v < hi; v++) this.checkUffdWrite(p.group, v, `${p.name} ${this.label(sel, sel.lo + (v - lo))}`, `a FOLL_WRITE GUP (${name})`, [p.name]);
    this.handles.set(name, { h: r.handle, proc: p.name });
    this.ideal.takeHandle(name, p.group, lo, hi - lo, req.pin && req.longterm);
    const frames = [...r.handle.frames].map((f) => (f === 0 ? 'zero page' : `frame ${f}`));
    this.record.summary = `${p.name} ${what} ${this.label(sel)} as ${name} (${frames.slice(0, 4).join(', ')}${frames.length > 4 ? ', …' : ''})`;
  }

  private liveHandle(name: string): LiveHandle | null {
    const hs = this.handles.get(name);
    if (!hs) this.record.summary = `handle ${name} does not exist (taking it failed): step skipped`;
    return hs ?? null;
  }

  /** A read through a handle: by a process (`P read H[K]`) or by the device (observer null: the holder). */
  private handleRead(name: string, i: number, expect: string | null, reader: string | null): void {
    const hs = this.liveHandle(name);
    if (!hs) return;
    const pfn = hs.h.frames[i]!;
    const value = pfn <= 0 ? 0 : this.k.frames.value[pfn]!;
    const observer = reader ?? hs.proc;
    const c = this.ideal.checkHandleRead(name, i, value, this.procs.get(observer)?.group ?? observer);
    const actual = this.values.name(value);
    const who = reader === null ? 'the device' : reader;
    this.observe('handle-read', `${who} reads ${name}[${i}]`, actual, c.allowed.map((v) => this.values.name(v)).join(' or '));
    if (!c.ok) {
      const allowed = c.allowed.map((v) => this.values.name(v)).join(' or ');
      const why = c.kind === 'leak' ? `${actual} only ever belonged to another process`
        : c.kind === 'pin-incoherent' ? `the pin no longer names ${hs.proc}'s page` : 'a write did not reach it';
      this.violation(c.kind, `${who} read ${actual} through ${name}[${i}], but it must see ${allowed} (${why})`, [observer], pfn > 0 ? [pfn] : []);
    }
    if (expect !== null && expect !== actual) this.violation('expect', `${who} read ${actual} through ${name}[${i}], expected ${expect}`, [observer], pfn > 0 ? [pfn] : []);
    this.record.summary = `${who} reads ${name}[${i}]: ${actual} (${pfn <= 0 ? 'the zero page' : `frame ${pfn}`})`;
  }

  private deviceWrite(name: string, i: number, value: string): void {
    const hs = this.liveHandle(name);
    if (!hs) return;
    const pfn = hs.h.frames[i]!;
    if (!hs.h.write || pfn <= 0) {
      this.record.summary = `the device cannot write through ${name}[${i}]: ${pfn <= 0 ? 'it holds the zero page' : 'a read-only handle gives no write access'}; nothing written`;
      return;
    }
    const v = this.values.id(value);
    this.k.frames.value[pfn] = v;
    this.ideal.handleWrite(name, i, v);
    const holder = this.procs.get(hs.proc);
    if (holder) this.raceWithFork(holder.group, hs.h.vpn + i, v);
    this.record.summary = `the device writes ${value} through ${name}[${i}] into frame ${pfn}`;
  }

  /** A bound longterm pin and its holder's mapping must name the same frame (pin coherence). */
  private checkPins(): void {
    for (const [name, hs] of this.handles) {
      // sanity_check_pinned_pages() (5.19+): a pinned anonymous page is PageAnonExclusive.
      if (this.profile.anonExclusive && hs.h.kind === 'pin') {
        hs.h.frames.forEach((pfn, i) => {
          const key = `x:${name}:${i}`;
          const fl = this.k.frames.flags[pfn] ?? 0;
          if (pfn > 0 && fl & PG_ANON && !(fl & PG_ANON_EXCLUSIVE) && !this.incoherent.has(key)) {
            this.incoherent.add(key);
            this.violation('kernel-bug', `VM_BUG_ON (sanity_check_pinned_pages): ${name}[${i}] pins anonymous frame ${pfn}, which is not PageAnonExclusive`, [hs.proc], [pfn]);
          }
        });
      }
      if (!hs.h.longterm) continue;
      const p = this.procs.get(hs.proc);
      if (!p || !p.alive) continue;
      for (let i = 0; i < hs.h.frames.length; i++) {
        const key = `${name}:${i}`;
        if (this.incoherent.has(key) || !this.ideal.isBound(name, i)) continue;
        const mapped = this.pfnOfEntry(p, hs.h.vpn + i);
        if (mapped !== hs.h.frames[i]) {
          this.incoherent.add(key);
          this.violation('pin-incoherent', `${name}[${i}] pins frame ${hs.h.frames[i]} but ${p.name} now maps ${mapped < 0 ? 'nothing' : `frame ${mapped}`} there: the device and the process no longer share the page`,
            [p.name], [hs.h.frames[i]!, ...(mapped > 0 ? [mapped] : [])]);
        }
      }
    }
  }

  private cpuWrite(procName: string, sel: PageSel, value: string): void {
    const p = this.proc(procName);
    if (!p) return;
    const [lo, hi] = this.range(p, sel);
    const v = this.values.id(value);
    let faults = 0;
    for (let vpn = lo; vpn < hi; vpn++) {
      const want = this.ideal.access(p.group, vpn, true);
      if (!mmuAllows(this.k, p.mm, vpn, true)) this.waitForMmapLock(p, false);
      const r = cpuAccess(this.k, p.mm, vpn, true, v);
      faults += r.faults;
      const page = this.label(sel, sel.lo + (vpn - lo));
      if (r.err === NA) throw new NotApplicable('a fault on a non-present PTE kind that is not modelled yet');
      if (r.err === OK) {
        this.touchGrants(p, vpn, r.pfn);
        this.checkUffdWrite(p.group, vpn, `${p.name} ${page}`, `${p.name}'s write`, [p.name], [r.pfn]);
        if (want === 'fault') this.violation('fault', `${p.name} wrote ${page} although the mapping does not allow it`, [p.name], [r.pfn]);
        else {
          this.ideal.write(p.group, vpn, v);
          this.raceWithFork(p.group, vpn, v);
        }
        continue;
      }
      if (r.err === OOM) {
        this.observe('write', `${p.name} ${page}`, 'oom', want);
        this.violation('fault', `${p.name} write to ${page}: out of memory (config.frames); the kernel would OOM-kill`, [p.name]);
        this.record.summary = `${p.name} writes ${value} to ${this.label(sel)}: out of memory at ${page}`;
        return;
      }
      // SIGSEGV
      this.observe('write', `${p.name} ${page}`, 'fault', want);
      if (want === 'ok') this.violation('fault', `${p.name} write to ${page} faulted (SIGSEGV) though the mapping allows it`, [p.name]);
      this.record.summary = `${p.name} writes ${value} to ${this.label(sel)}: SIGSEGV at ${page}` + (want === 'fault' ? ' (as it must)' : '');
      return;
    }
    this.observe('write', `${p.name} ${this.label(sel)}`, 'ok', 'ok');
    this.record.summary = `${p.name} writes ${value} to ${this.label(sel)}` + (faults ? ` (${faults} fault${faults > 1 ? 's' : ''})` : ' (no fault)');
  }

  private cpuRead(procName: string, sel: PageSel, expect: { kind: 'value'; value: string } | { kind: 'fault' } | null): void {
    const p = this.proc(procName);
    if (!p) return;
    const vpn = this.range(p, sel)[0];
    const page = this.label(sel, sel.lo);
    const want = this.ideal.access(p.group, vpn, false);
    if (!mmuAllows(this.k, p.mm, vpn, false)) this.waitForMmapLock(p, false);
    const r = cpuAccess(this.k, p.mm, vpn, false, 0);
    if (r.err === NA) throw new NotApplicable('a fault on a non-present PTE kind that is not modelled yet');
    if (r.err !== OK) {
      const what = r.err === SIGSEGV ? 'SIGSEGV' : 'out of memory';
      this.observe('read', `${p.name} ${page}`, 'fault', want === 'fault' ? 'fault' : this.values.name(this.ideal.read(p.group, vpn)));
      if (want === 'ok') this.violation('fault', `${p.name} read of ${page} faulted (${what}) though the mapping allows it`, [p.name]);
      if (expect?.kind === 'value') this.violation('expect', `${p.name} read of ${page} faulted, expected ${expect.value}`, [p.name]);
      this.record.summary = `${p.name} reads ${page}: ${what}` + (want === 'fault' ? ' (as it must)' : '');
      return;
    }
    const actual = this.values.name(r.value);
    this.touchGrants(p, vpn, r.pfn);
    if (want === 'fault') {
      this.observe('read', `${p.name} ${page}`, actual, 'fault');
      this.violation('fault', `${p.name} read ${page} although the mapping does not allow it`, [p.name], [r.pfn]);
    } else {
      const ideal = this.ideal.read(p.group, vpn);
      this.observe('read', `${p.name} ${page}`, actual, this.values.name(ideal));
      if (r.value !== ideal && !this.ideal.maybeValues(p.group, vpn)?.has(r.value)) {
        const kind = this.atomicValues.has(ideal) ? 'exclusive' : this.ideal.everHeld(p.group, r.value) ? 'lost-write' : 'leak';
        this.violation(kind, `${p.name} read ${actual} from ${page}, but its memory holds ${this.values.name(ideal)}` +
          (kind === 'leak' ? ` (${actual} only ever belonged to another process)` : ' (a write did not reach it)'), [p.name], [r.pfn]);
      }
    }
    if (expect?.kind === 'fault') this.violation('expect', `${p.name} read of ${page} returned ${actual}, expected a fault`, [p.name], [r.pfn]);
    if (expect?.kind === 'value' && expect.value !== actual) {
      this.violation('expect', `${p.name} read ${actual} from ${page}, expected ${expect.value}`, [p.name], [r.pfn]);
    }
    this.record.summary = `${p.name} reads ${page}: ${actual} (frame ${r.pfn}${r.pfn === 0 ? ', the zero page' : ''}${r.faults ? ', after a fault' : ''})`;
  }

  private expectFrame(a: string, selA: PageSel, same: boolean, b: string, selB: PageSel): void {
    const pa = this.procs.get(a);
    const pb = this.procs.get(b);
    const fa = pa ? this.pfnOf(pa, this.range(pa, selA)[0]) : -1;
    const fb = pb ? this.pfnOf(pb, this.range(pb, selB)[0]) : -1;
    const isSame = fa >= 0 && fa === fb;
    const desc = `${a} ${this.label(selA)} → ${fa < 0 ? 'not mapped' : `frame ${fa}`}, ${b} ${this.label(selB)} → ${fb < 0 ? 'not mapped' : `frame ${fb}`}`;
    this.observe('frame', `${a} ${this.label(selA)} vs ${b} ${this.label(selB)}`, isSame ? 'same-frame' : 'other-frame', same ? 'same-frame' : 'other-frame');
    if (isSame !== same) this.violation('expect', `expected ${same ? 'the same frame' : 'different frames'}: ${desc}`, [a, b], [fa, fb].filter((x) => x >= 0));
    this.record.summary = desc;
  }
}

function compare(a: number, op: string, b: number): boolean {
  switch (op) {
    case '==': return a === b;
    case '!=': return a !== b;
    case '<': return a < b;
    case '<=': return a <= b;
    case '>': return a > b;
    default: return a >= b;
  }
}

export function expectedFor(sc: Scenario, profile: string): Expected | null {
  return sc.outcomes.get(profile)?.expected ?? sc.outcomes.get('*')?.expected ?? null;
}

/** Run one scenario on one profile. */
export function runScenario(sc: Scenario, profile: Profile, opts: RunOptions = {}): RunResult {
  return new Runner(sc, profile, opts).run();
}
