// Model-based runs (fast-check commands, which shrink) of the kernel paths the model splits into
// atomic steps (`fork&`, `pin-fast&`, `write&`, with `thread`), under ARBITRARY interleavings:
// commands start paths and take single steps (`T step`) of any pending thread in any order,
// mixed with synchronous operations, and after every command the model core is compared with
// the naive reference model's split paths (test/naive/tasks.ts), written from the kernel's
// locking apart from src/core:
// - every `T step` does in both what it does (one step, blocked on mmap_lock, or the last step);
// - the same threads have a path in progress;
// - when a path ends (at its last step, or run to its end because another thread's operation
//   waited for the lock it held), it returned the same: the fork made its child, the pin its
//   handle (or EFAULT), the store succeeded (or SIGSEGV);
// - reads see what the naive model reads (or fault where it faults), handles are taken (or
//   EFAULT) where it takes them, the device reads through a pin what the naive pin holds, reclaim
//   swaps a page out where it does;
// - the frames the explored pages of every live thread map have the naive frames' refcount and
//   mapcount, and the PTEs are writable where the naive ones are.
// On v6 and the older rule sets the naive model has: 5.19 (PG_anon_exclusive), 5.14 (5.9's rules
// with write_protect_seq), 5.9 (early COW at fork, no write_protect_seq: gup-fast can pin a page
// fork is sharing), 5.7 (no early COW, mapcount reuse).
// A mix of its own puts under a fork& what else copy_pte_range meets: swap entries, KSM pages,
// device-exclusive entries (restored by fork), uffd-wp bits (kept or dropped by fork's rule), and
// read-only, MADV_DONTFORK and MADV_WIPEONFORK VMAs; there the uffd-wp bits (pagemap) and the
// faults handed to the userfaultfd monitor are compared too.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SEED } from '../engine/seed.js';
import type { Observation } from '../../src/engine/result.js';
import type { Runner } from '../../src/engine/run.js';
import { OK, PTE_PRESENT, PTE_SPECIAL, PTE_UFFD_WP, PTE_WRITE } from '../../src/core/constants.js';
import type { Task } from '../../src/core/tasks.js';
import { pteSlot } from '../../src/core/walk.js';
import { startState } from '../../src/explore/explore.js';
import { decodeOp, enabledOps, OP_NAMES, PROC_NAMES, type ExploreShape, type OpName } from '../../src/explore/ops.js';
import { TakeCommand } from './take.js';
import {
  NaiveKernel, pageKey, V5_19_RULES, V5_7_RULES, V5_9_RULES, V6_RULES, type NaiveOptions, type NProc,
} from '../naive/model.js';
import { NaiveForkTask, NaiveGupFastTask, NaiveSched, NaiveWriteTask, type NaiveTask, type StepRules, type StepState } from '../naive/tasks.js';
import { input, runnerAfter } from './helpers.js';
import { naiveOp, numberFor, observedOnce, Tally, valueOf, type NaiveSide, type NaiveStepArgs, type NHandle } from './naive-compare.js';

/** An observation of the command's own operation: a path that ended meanwhile observes too, its `what` naming the path's step (`&`). */
const notPath = (o: { what: string }): boolean => !o.what.endsWith('&');

const PAGES = 2;

interface NThread {
  p: NProc;
  alive: boolean;
  task: NaiveTask | null;
  /** The handle a pin-fast& path binds. */
  handle?: string;
}

/** A path that ended during a command: the thread, and what it returned. */
type Ended = { ti: number; kind: Task['kind']; result: string };

interface Naive extends NaiveSide {
  s: NaiveSched;
  /** By the explorer's thread index (its procs in creation order). */
  threads: NThread[];
  ended: Ended[];
}

interface Real {
  r: Runner;
  path: number;
  shape: ExploreShape;
  naive: Naive;
}

/** What the runs took: per operation, per step outcome, per path outcome. */
const tally = new Tally();
const count = (key: string, by = 1): void => tally.count(key, by);

// ---- the naive side's scheduler (the scenario language's rules, test/naive/tasks.ts's steps) ----

function naiveStepOnce(n: Naive, ti: number): StepState {
  const th = n.threads[ti]!;
  const st = th.task!.step();
  if (st === 'done') complete(n, ti);
  return st;
}

/** The path ended: its result, and what it made (the child, the handle). */
function complete(n: Naive, ti: number): void {
  const th = n.threads[ti]!;
  const t = th.task!;
  th.task = null;
  if (t instanceof NaiveForkTask) {
    n.threads.push({ p: t.child!, alive: true, task: null });
    n.ended.push({ ti, kind: 'fork', result: 'ok' });
  } else if (t instanceof NaiveGupFastTask) {
    if (t.pin !== null) n.handles.set(th.handle!, { pin: t.pin });
    n.ended.push({ ti, kind: 'gup', result: t.pin === null ? 'EFAULT' : 'ok' });
  } else if (t instanceof NaiveWriteTask) {
    n.ended.push({ ti, kind: 'write', result: t.result! });
  }
}

/** Run ti's path to its end; a blocked step lets the other paths of its address space run to their end first. */
function naiveFinish(n: Naive, ti: number): void {
  const th = n.threads[ti]!;
  for (let guard = 0; th.task; guard++) {
    assert.ok(guard < 10_000, 'a naive path never ends');
    if (naiveStepOnce(n, ti) !== 'blocked') continue;
    let moved = false;
    n.threads.forEach((q, qi) => {
      if (qi !== ti && q.alive && q.task && q.p === th.p) {
        naiveFinish(n, qi);
        moved = true;
      }
    });
    assert.ok(moved, 'a naive path is blocked and nothing can release it');
  }
}

/** An operation of thread ti that needs mmap_lock (for write, or read): the paths holding it run to their end first. */
function naiveWaitLock(n: Naive, ti: number, write: boolean, byOther = false): void {
  const p = n.threads[ti]!.p;
  const l = n.s.lockOf(p);
  if (l.writer < 0 && (!write || l.readers === 0)) return;
  n.threads.forEach((q, qi) => {
    if ((qi === ti && !byOther) || !q.task || q.p !== p) return;
    if (l.writer === qi || (write && q.task.holdsRead)) naiveFinish(n, qi);
  });
}

// ---- the comparison ----

/** What a model path returned, once it has ended (its task object, as it was when it ended). */
function modelResult(t: Task): string {
  switch (t.kind) {
    case 'fork': return t.child >= 0 ? 'ok' : 'ENOMEM';
    case 'gup': return t.err === OK ? 'ok' : 'EFAULT';
    case 'write': return t.err === OK ? 'ok' : 'fault';
  }
}

/**
 * After every command: the same threads, the same paths in progress; every path that ended
 * returned the same; the frames of the explored pages have the same counts and the PTEs the
 * same write access.
 */
function compare(n: Naive, before: (Task | null)[], after: Runner, text: string): void {
  const procs = [...after.procs.values()];
  assert.equal(procs.length, n.threads.length, `after ${text}: ${procs.length} threads in the model, ${n.threads.length} in the naive model`);
  const ended: Ended[] = [];
  before.forEach((t, i) => {
    if (t !== null && procs[i]!.task === null) ended.push({ ti: i, kind: t.kind, result: modelResult(t) });
  });
  const key = (e: Ended) => `${PROC_NAMES[e.ti]}:${e.kind}:${e.result}`;
  assert.deepEqual(ended.map(key).sort(), n.ended.map(key).sort(), `after ${text}: the paths that ended (thread:path:result), the model's, the naive model's`);
  for (const e of ended) count(`${e.kind}&:${e.result}`);
  n.ended = [];
  n.threads.forEach((th, i) => {
    const q = procs[i]!;
    assert.equal(q.mm.uffdFaults, th.p.uffdFaults, `after ${text}: ${q.name} handed the monitor ${q.mm.uffdFaults} fault(s), the naive model ${th.p.uffdFaults}`);
    assert.equal(q.task !== null, th.task !== null, `after ${text}: ${q.name} ${q.task ? 'has' : 'has no'} path in progress in the model, ${th.task ? 'has' : 'has no'} in the naive model`);
    if (!th.alive) return;
    const base = q.regions.get('buf')?.start;
    if (base === undefined) return;
    for (let i2 = 0; i2 < n.region.n; i2++) {
      const pg = th.p.pages.get(pageKey(n.region, i2));
      if (pg === undefined) continue;
      const f = pg.pte?.frame ?? null;
      const slot = pteSlot(after.k, q.mm, base + i2);
      const bits = slot < 0 ? 0 : after.k.tables.bits[slot]!;
      const where = `after ${text}: ${q.name} buf[${i2}]`;
      // pagemap's PM_UFFD_WP: the bit of a present PTE, a swap or a device-exclusive entry.
      const wp = (bits & PTE_UFFD_WP) !== 0;
      assert.equal(wp, n.k.uffdWp(th.p, n.region, i2), `${where}: uffd-wp in the model ${wp}, in the naive model ${n.k.uffdWp(th.p, n.region, i2)}`);
      assert.equal((bits & PTE_PRESENT) !== 0, pg.pte !== null, `${where}: present in the model ${(bits & PTE_PRESENT) !== 0}, in the naive model ${pg.pte !== null}`);
      if (pg.pte === null) continue;
      assert.equal((bits & PTE_WRITE) !== 0, pg.pte.writable, `${where}: writable in the model ${(bits & PTE_WRITE) !== 0}, in the naive model ${pg.pte.writable}`);
      const pfn = bits & PTE_PRESENT && !(bits & PTE_SPECIAL) ? after.k.tables.entry[slot]! : -1;
      assert.equal(pfn >= 0, f !== null, `${where}: the naive page ${f === null ? 'maps the zero page' : 'maps a frame'}, the model's ${pfn >= 0 ? 'a frame' : 'the zero page'}`);
      if (f === null) continue;
      assert.deepEqual([after.k.frames.refcount[pfn], after.k.frames.mapcount[pfn]], [f.refcount, f.mapcount], `${where}: [refcount, mapcount] of the model's frame, of the naive frame`);
    }
  });
}

/**
 * The command's operation on the naive model (op: the explorer's packed operation; res: the
 * model's record). Its own: the split paths and their steps, the threads (fork, exit), write and
 * read (the lock a fault takes; the accessed bit a path's recheck sees), the pins (gup-fast or
 * the slow path, as the PTE is), ksmd; for the rest, the mmap_lock the operation takes first
 * (the paths holding it run to their end), then naiveOp's form.
 */
function naiveStep(n: Naive, name: OpName, op: number, step: NaiveStepArgs, res: { observations: readonly Observation[]; summary?: string }, after: Runner, modelStep: StepState | null): void {
  const ti = (op >>> 20) & 15;
  const th = n.threads[ti]!;
  const p = th.p;
  const pg = (op >>> 4) & 0xffff;
  const page = () => p.pages.get(pageKey(n.region, pg));
  const obs = res.observations;
  switch (name) {
    case 'step': {
      const st = naiveStepOnce(n, ti);
      assert.equal(modelStep, st, `${step.text}: the model's step is ${modelStep}, the naive model's ${st}`);
      count(`step:${st}`);
      return;
    }
    case 'fork&':
      th.task = new NaiveForkTask(n.s, p, ti);
      return;
    case 'pin-fast&':
      th.task = new NaiveGupFastTask(n.s, p, ti, n.region, pg, { write: true, longterm: true });
      th.handle = step.handle!;
      return;
    case 'write&':
      th.task = new NaiveWriteTask(n.s, p, ti, n.region, pg, numberFor(n.values, step.value!));
      return;
    case 'thread':
      n.threads.push({ p, alive: true, task: null });
      return;
    case 'write': {
      const x = page();
      // A store through a present, writable PTE needs no lock; a fault takes mmap_lock for read.
      if (!(x?.prot === 'rw' && x.pte?.writable === true)) naiveWaitLock(n, ti, false);
      const ok = n.k.write(p, n.region, pg, numberFor(n.values, step.value!));
      n.s.touch(page());
      assert.equal(observedOnce(obs, 'write', notPath), ok ? 'ok' : 'fault', `${step.text}: the naive model's store ${ok ? 'succeeds' : 'faults'}`);
      return;
    }
    case 'read': {
      if (!page()?.pte) naiveWaitLock(n, ti, false);
      const want = n.k.read(p, n.region, pg);
      n.s.touch(page());
      const got = observedOnce(obs, 'read', notPath)!;
      assert.equal(valueOf(n.values, got), want, `${step.text}: the naive model reads ${want}, the model ${got}`);
      return;
    }
    case 'fork': {
      naiveWaitLock(n, ti, true);
      const child = n.s.fork(p);
      n.threads.push({ p: child, alive: true, task: null });
      return;
    }
    case 'exit':
      naiveWaitLock(n, ti, false); // exit_mm: mmap_lock for read
      th.alive = false;
      if (!n.threads.some((q) => q.p === p && q.alive)) n.k.exit(p);
      return;
    case 'pin':
    case 'pin-ro':
    case 'pin-fast':
    case 'gup': {
      naiveWaitLock(n, ti, false);
      let x: NHandle | null;
      if (name === 'gup') {
        const ref = n.k.gup(p, n.region, pg);
        x = ref && { ref };
      } else {
        const o = { write: name !== 'pin-ro', longterm: true };
        const pte = page()?.pte;
        // pin-fast: gup-fast pins a present, writable PTE as it is; anything else is the slow path's.
        const pin = name === 'pin-fast' && pte?.writable === true && pte.frame !== null ? n.k.pinFast(p, n.region, pg, o) : n.k.pin(p, n.region, pg, o);
        x = pin && { pin };
      }
      assert.equal(after.handles.has(step.handle!), x !== null, `${step.text}: the naive model ${x === null ? 'fails (EFAULT)' : 'takes the handle'}`);
      if (x !== null) n.handles.set(step.handle!, x);
      return;
    }
    case 'ksm-merge':
      // ksmd takes each mm's mmap_lock for read: a fork in progress anywhere runs to its end first.
      n.threads.forEach((q, qi) => {
        if (q.alive) naiveWaitLock(n, qi, false, true);
      });
      if (n.threads.some((q) => q.task?.holdsRead === true)) n.s.note('ksm:beside-fault');
      if (n.k.ksmMerge() > 0) n.s.note('ksm:merged');
      return;
    // The rest: the lock first, then naiveOp.
    case 'munmap':
    case 'mprotect':
    case 'clear-softdirty':
    case 'uffd-register':
    case 'mergeable':
      naiveWaitLock(n, ti, true);
      break;
    case 'dontfork':
    case 'wipeonfork':
    case 'dontneed':
      // MADV_DONTFORK and MADV_WIPEONFORK change VMA flags: mmap_lock for write; MADV_DONTNEED
      // zaps under it for read (madvise_need_mmap_write), beside a write fault holding it.
      naiveWaitLock(n, ti, name !== 'dontneed');
      if (name === 'dontneed' && n.threads.some((q) => q.task?.holdsRead === true)) n.s.note('dontneed:beside-fault');
      break;
    case 'swapout':
    case 'device-exclusive': // the driver holds mmap_lock for read
      naiveWaitLock(n, ti, false, true);
      break;
    case 'uffd-protect':
    case 'uffd-unprotect':
      naiveWaitLock(n, ti, false); // UFFDIO_WRITEPROTECT: mmap_lock for read, beside a fault holding it
      if (n.threads.some((q) => q.p === p && q.task?.holdsRead === true)) n.s.note('uffd-wp:beside-fault');
      break;
    case 'device-read': {
      const x = n.handles.get(step.ref!.handle);
      if (x !== undefined && 'grant' in x && (x.grant.revoked || x.grant.frame === null) && x.grant.p.alive) {
        // Revoked: the driver faults the page in (hmm_range_fault) under mmap_read_lock.
        naiveWaitLock(n, n.threads.findIndex((q) => q.p === x.grant.p), false, true);
      }
      break;
    }
    default:
      // No lock: unpin, put, device-write, device-atomic (through the grant), uffd-fork-event.
      break;
  }
  naiveOp(n, { name, op, p, step, obs, summary: res.summary, after, keep: notPath });
  if (name === 'device-atomic' && observedOnce(obs, 'handle-read', notPath) === 'revoked' && n.threads.some((q) => q.task?.kind === 'fork')) n.s.note('devx:revoked-in-fork');
}

const STEP_CODE = OP_NAMES.indexOf('step');

/** One command: the `pick`-th (modulo) enabled instance of operation `name` (none enabled: nothing). */
class Take extends TakeCommand<Real> {
  run(_m: object, real: Real): void {
    const taken = this.prepare(real.r, real.shape);
    if (taken === null) return;
    const { op, child, step } = taken;
    const before = [...child.procs.values()].map((p) => p.task);
    const ti = (op >>> 20) & 15;
    const res = child.step(step, real.path);
    if (res.na !== null) return;
    real.path++;
    count(this.name);
    // The one thing the naive model cannot decide (a freed page's pfn allocated again for the
    // same PTE before gup-fast grabs it): it goes the way the model's allocator went.
    real.naive.s.pfnReused = (tid) => {
      const t = before[tid];
      return t?.kind === 'gup' && t.fallback[0] === false;
    };
    let modelStep: StepState | null = null;
    if (op >>> 24 === STEP_CODE) {
      modelStep = /is blocked/.test(res.record.summary) ? 'blocked' : [...child.procs.values()][ti]!.task === null ? 'done' : 'running';
    }
    naiveStep(real.naive, this.name, op, step as unknown as NaiveStepArgs, res.record, child, modelStep);
    compare(real.naive, before, child, step.text);
    real.r = child;
  }
}

interface Runs {
  naive: NaiveOptions;
  steps: StepRules;
  numRuns: number;
  maxCommands: number;
  /** Commands every run starts with (not shrunk). */
  prefix?: readonly [OpName, number][];
  /** The explored region's size (default PAGES). */
  pages?: number;
  /** A failure's seed and path, to replay it. */
  replay?: { seed: number; path: string };
}

function runs(kernel: string, ops: readonly OpName[], o: Runs): void {
  const pages = o.pages ?? PAGES;
  const inp = input(kernel, { ops: [...new Set(ops)], pages, procs: 3, handles: 2, threads: 2 });
  const takes = ops.map((name) => fc.nat(1000).map((i) => new Take(name, i)));
  const what = `${kernel}, prefix ${(o.prefix ?? []).map(([n]) => n).join(' ')}, ${pages} page(s)`;
  const property = fc.property(fc.commands(takes, { maxCommands: o.maxCommands, size: 'max' }), (cmds) => {
    const root = startState(inp).runner;
    const k = new NaiveKernel(o.naive);
    const p = k.spawn();
    const naive: Naive = {
      k, s: new NaiveSched(k, o.steps), region: k.mmap(p, pages), values: new Map(), handles: new Map(), threads: [{ p, alive: true, task: null }], ended: [],
    };
    const pre = (o.prefix ?? []).map(([name, i]) => new Take(name, i));
    try {
      fc.modelRun(() => ({ model: {}, real: { r: root.clone(), path: 0, shape: inp.shape, naive } }), [...pre, ...cmds]);
    } finally {
      for (const [what, n] of naive.s.seen) count(what, n);
    }
  });
  try {
    fc.assert(property, { seed: SEED, numRuns: o.numRuns, includeErrorInReport: true, ...(o.replay ?? {}) });
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
}

/** The split paths, the steps (drawn often: most commands of a run step some path), and what races with them. */
const PATHS: readonly OpName[] = ['thread', 'fork&', 'fork&', 'pin-fast&', 'pin-fast&', 'write&', 'write&', 'step', 'step', 'step', 'step', 'step', 'step'];
const SYNC: readonly OpName[] = [
  'write', 'write', 'read', 'fork', 'exit', 'munmap', 'mprotect', 'dontfork', 'wipeonfork', 'dontneed', 'pin', 'pin-ro', 'pin-fast', 'gup',
  'unpin', 'put', 'device-write', 'device-read', 'swapout', 'clear-softdirty',
];
/** Every run starts with two threads, P writing both pages (a fork has PTEs to copy, a pin a page to pin). */
const PREFIX: [OpName, number][] = [['write', 0], ['write', 1], ['thread', 0]];
/** A focused draw: paths and steps, with pins and writes, so that the races come often (fork's early COW and a pin going away meanwhile). */
const FOCUS: readonly OpName[] = [...PATHS, 'pin', 'pin', 'unpin', 'unpin', 'write', 'read', 'device-write', 'device-read'];
/** Runs on one page that start with it shared with a child Q (a synchronous fork) and a thread of P: write faults copy, and race (pte_same). */
const COW_PREFIX: [OpName, number][] = [['write', 0], ['fork', 0], ['thread', 0]];
/** Runs on one page that start with it pinned by P, with a thread of P: fork's early COW, and the pin going away (or a store landing) while the copy is allocated. */
const PIN_PREFIX: [OpName, number][] = [['write', 0], ['thread', 0], ['pin', 0]];
const PIN_FOCUS: readonly OpName[] = ['thread', 'fork&', 'fork&', 'step', 'step', 'step', 'step', 'step', 'unpin', 'unpin', 'pin', 'write', 'write', 'read', 'device-write', 'device-read', 'pin-fast&', 'write&', 'exit'];
const COW_FOCUS: readonly OpName[] = ['fork', 'thread', 'write&', 'write&', 'write&', 'step', 'step', 'step', 'step', 'step', 'write', 'write', 'read', 'read', 'pin', 'pin-fast&', 'unpin', 'fork&', 'exit', 'device-read'];

const PATH_KEYS = ['step:running', 'step:blocked', 'step:done', 'fork&:ok', 'gup&:ok', 'gup&:EFAULT', 'write&:ok', 'write&:fault'];
/** What the naive paths met (NaiveSched.note). */
const RACE_KEYS = [
  'fork:early-cow', 'fork:install-shares', 'fork:shares-pinned', 'gup:seq-odd', 'gup:seq-changed', 'gup:pte-changed', 'gup:freed', 'gup:pfn-reused',
  'write:copy', 'write:pte-changed', 'fork:between-vmas', 'gup:seq-even-in-fork', 'dontneed:beside-fault',
];


/** 5.14: 5.9's rules + write_protect_seq (5.11), clear_refs and reclaim skipping pinned pages (5.11), fork asking the child's VMA about uffd-wp. */
const V5_14_RULES: NaiveOptions = { ...V5_9_RULES, clearRefsSkipsPinned: true, reclaimSkipsPinned: true, uffdWpForkVma: 'dst-vma' };

test('model-based steps: on v6, fork&, pin-fast& and write& stepped in any order among other threads\' operations agree with the naive model\'s split paths', () => {
  const at = tally.since();
  const v6 = { naive: V6_RULES, steps: { writeProtectSeq: true } };
  runs('v6', [...PATHS, ...SYNC], { ...v6, numRuns: 6000, maxCommands: 30, prefix: PREFIX });
  runs('v6', FOCUS, { ...v6, numRuns: 5000, maxCommands: 25, prefix: PREFIX });
  runs('v6', COW_FOCUS, { ...v6, numRuns: 5000, maxCommands: 25, prefix: COW_PREFIX, pages: 1 });
  runs('v6', PIN_FOCUS, { ...v6, numRuns: 5000, maxCommands: 20, prefix: PIN_PREFIX, pages: 1 });
  console.log(`v6 step runs: ${[...PATH_KEYS, ...RACE_KEYS].map((k) => `${k} ${at(k)}`).join(', ')}`);
  for (const key of ['step:running', 'step:blocked', 'step:done', 'fork&:ok', 'gup&:ok', 'write&:ok']) assert.ok(at(key) >= 100, `${key}: ${at(key)} times`);
  // The races the split paths are for, each taken (counted in the naive model's paths).
  // (A page freed between gup-fast's read and its grab takes a munmap, MADV_DONTNEED or reclaim by
  // another thread in that window: rarer. Its pfn given again to the same PTE is the allocator's
  // doing, and fork sharing a page pinned since its check needs no write_protect_seq: not on v6.)
  // (A gup-fast between two VMAs' copies, or after the last, takes an mprotect splitting the
  // VMA first; a MADV_DONTNEED beside a write fault holding mmap_lock for read, a thread in that
  // window: rarer too.)
  const rarer = ['gup:freed', 'fork:between-vmas', 'gup:seq-even-in-fork', 'dontneed:beside-fault'];
  for (const key of RACE_KEYS.filter((k) => !['fork:shares-pinned', 'gup:pfn-reused', ...rarer].includes(k))) assert.ok(at(key) >= 10, `${key}: ${at(key)} times`);
  for (const key of rarer) assert.ok(at(key) >= 1, `${key}: ${at(key)} times`);
});

test('model-based steps: on 5.19, 5.14, 5.9 and 5.7 the split paths agree with the naive model under their rules (write_protect_seq from 5.11; early COW at fork from 5.9; PG_anon_exclusive from 5.19)', () => {
  const older: [string, NaiveOptions, StepRules][] = [
    ['v5.19', V5_19_RULES, { writeProtectSeq: true }], ['v5.14', V5_14_RULES, { writeProtectSeq: true }],
    ['v5.9', V5_9_RULES, { writeProtectSeq: false }], ['v5.7', V5_7_RULES, { writeProtectSeq: false }],
  ];
  for (const [kernel, naive, steps] of older) {
    const at = tally.since();
    runs(kernel, [...PATHS, ...SYNC], { naive, steps, numRuns: 1200, maxCommands: 30, prefix: PREFIX });
    runs(kernel, FOCUS, { naive, steps, numRuns: 1200, maxCommands: 25, prefix: PREFIX });
    runs(kernel, COW_FOCUS, { naive, steps, numRuns: 1200, maxCommands: 25, prefix: COW_PREFIX, pages: 1 });
    runs(kernel, PIN_FOCUS, { naive, steps, numRuns: 1200, maxCommands: 20, prefix: PIN_PREFIX, pages: 1 });
    console.log(`${kernel} step runs: ${[...PATH_KEYS, ...RACE_KEYS].map((k) => `${k} ${at(k)}`).join(', ')}`);
    for (const key of ['write:copy', 'write:pte-changed', 'gup:pte-changed']) assert.ok(at(key) >= 1, `${kernel}: ${key}: ${at(key)} times`);
    if (steps.writeProtectSeq) {
      // (fork may still share a page a gup-fast that read the PTE before the fork began pins
      // meanwhile: its read_seqcount_retry then drops the pin.)
      assert.ok(at('gup:seq-odd') >= 1 && at('gup:seq-changed') >= 1, `${kernel}: gup-fast met write_protect_seq`);
    } else {
      // No write_protect_seq: gup-fast pins a page fork is about to share (5.9: the race 57efa1fe5957 closed; 5.7: no early COW at all).
      assert.ok(at('fork:shares-pinned') >= 1, `${kernel}: fork shared a pinned page`);
    }
    if (naive.earlyCow) assert.ok(at('fork:early-cow') >= 1 && at('fork:install-shares') >= 1, `${kernel}: fork's early COW, and a pin gone by the install`);
    else assert.equal(at('fork:early-cow'), 0, `${kernel}: no early COW`);
  }
});

/**
 * What else a fork& may meet under a PTE (copy_nonpresent_pte, copy_present_pte): swap entries
 * (swapout), KSM pages (mergeable, ksm-merge), device-exclusive entries (device-exclusive;
 * device-atomic through the grant fork revokes), userfaultfd write-protect (uffd-register,
 * uffd-protect, uffd-unprotect, uffd-fork-event: the uffd-wp bit and fork's rule for it), and
 * VMAs changed by mprotect, MADV_DONTFORK and MADV_WIPEONFORK; with the split paths and their
 * steps, and what shows values and pins.
 */
const ENTRY_OPS: readonly OpName[] = [
  'thread', 'fork&', 'fork&', 'fork&', 'pin-fast&', 'write&', 'step', 'step', 'step', 'step', 'step', 'step', 'step',
  'swapout', 'swapout', 'mergeable', 'ksm-merge', 'device-exclusive', 'device-exclusive', 'device-atomic', 'uffd-register', 'uffd-protect', 'uffd-protect',
  'uffd-unprotect', 'uffd-fork-event', 'mprotect', 'dontfork', 'wipeonfork', 'write', 'read', 'pin', 'pin-ro', 'unpin', 'device-read', 'fork', 'exit',
];
/**
 * Runs that start with P's pages written and a thread of P; also registered with userfaultfd and
 * page 0 protected; or both pages mergeable, page 0 pinned while P forks Q (fork's early COW gives
 * Q a copy of the same content, 5.9 on), unpinned and merged by ksmd: a KSM page P and Q map.
 */
const ENTRY_PREFIXES: readonly (readonly [OpName, number][])[] = [
  [['write', 0], ['write', 1], ['thread', 0]],
  [['write', 0], ['write', 1], ['uffd-register', 0], ['uffd-protect', 0], ['thread', 0]],
  [['mergeable', 0], ['mergeable', 1], ['write', 0], ['write', 1], ['pin', 0], ['fork', 0], ['unpin', 0], ['ksm-merge', 0], ['thread', 0]],
];
/**
 * Device-exclusive entries under a fork& in steps: P's page 0 held by the device, P's fork& begun;
 * the store, gup-fast and device operations that run between fork's restore of the entry and its
 * copy, or after the MMU notifier revoked the grant.
 */
const DEVX_OPS: readonly OpName[] = [
  'fork&', 'fork&', 'step', 'step', 'step', 'step', 'step', 'write', 'write', 'read', 'pin-fast&', 'pin', 'unpin', 'device-exclusive', 'device-atomic',
  'device-read', 'uffd-register', 'uffd-protect', 'mprotect', 'swapout', 'thread', 'fork', 'write&',
];
/** P's pages written, a thread of P, page 0 held by the device, and P's fork& begun (its next step restores the entry). */
const DEVX_PREFIX: readonly [OpName, number][] = [['write', 0], ['write', 1], ['thread', 0], ['device-exclusive', 0], ['fork&', 0], ['step', 0]];
/**
 * KSM pages under the split paths: P's pages mergeable, page 0 pinned while P forks Q (Q's early
 * COW copy holds the same content, 5.9 on), unpinned; P forks R (R's PTEs old: pte_mkold), ksmd
 * merges (Q's copy becomes the KSM page; P's and R's PTEs are replaced by one made from
 * vm_page_prot: young), and R has a thread: write& copies of KSM pages, the reads (accessed bit)
 * that race with them, more forks and merges.
 */
const KSM_OPS: readonly OpName[] = [
  'mergeable', 'pin', 'unpin', 'fork', 'fork', 'fork&', 'ksm-merge', 'ksm-merge', 'thread', 'thread', 'write&', 'write&', 'step', 'step', 'step', 'step', 'read', 'read', 'write',
];
const KSM_PREFIX: readonly [OpName, number][] = [['mergeable', 0], ['mergeable', 1], ['write', 0], ['write', 1], ['pin', 0], ['fork', 0], ['unpin', 0], ['fork', 0], ['ksm-merge', 0], ['thread', 2]];
/** What the split fork met (NaiveSched.note), and the races around it. */
const ENTRY_KEYS = [
  'fork:swap', 'fork:swap-uffd-wp', 'fork:devx-restored', 'fork:devx-changed', 'fork:uffd-wp-kept', 'fork:uffd-wp-dropped', 'fork:ksm', 'fork:ro-vma', 'fork:dontfork', 'fork:wipeonfork',
  'fork:early-cow', 'fork:install-shares', 'fork:between-vmas', 'devx:revoked-in-fork', 'write:devx-restored', 'write:uffd-wp', 'write:copy', 'write:pte-changed',
  'uffd-wp:beside-fault', 'ksm:merged', 'ksm:beside-fault', 'gup:seq-odd', 'gup:pte-changed',
];

test('model-based steps: fork& copying swap entries, KSM pages, device-exclusive entries and uffd-wp bits, in mprotect-ed, dontfork and wipeonfork VMAs, stepped among other threads\' operations, agrees with the naive model (v6, 5.19, 5.14, 5.9, 5.7)', () => {
  const kernels: [string, NaiveOptions, StepRules, number][] = [
    ['v6', V6_RULES, { writeProtectSeq: true }, 4000], ['v5.19', V5_19_RULES, { writeProtectSeq: true }, 1500],
    ['v5.14', { ...V5_14_RULES, deviceExclusive: 'v5.14' }, { writeProtectSeq: true }, 1500], ['v5.9', V5_9_RULES, { writeProtectSeq: false }, 1200],
    ['v5.7', V5_7_RULES, { writeProtectSeq: false }, 1200],
  ];
  for (const [kernel, naive, steps, numRuns] of kernels) {
    const at = tally.since();
    const ops = naive.deviceExclusive === undefined ? ENTRY_OPS.filter((o) => !o.startsWith('device-')) : ENTRY_OPS;
    for (const prefix of ENTRY_PREFIXES) runs(kernel, ops, { naive, steps, numRuns, maxCommands: 25, prefix });
    runs(kernel, KSM_OPS, { naive, steps, numRuns: 1500, maxCommands: 15, prefix: KSM_PREFIX });
    if (naive.deviceExclusive !== undefined) runs(kernel, DEVX_OPS, { naive, steps, numRuns: 1500, maxCommands: 12, prefix: DEVX_PREFIX });
    console.log(`${kernel} entry runs: ${[...PATH_KEYS, ...ENTRY_KEYS].map((k) => `${k} ${at(k)}`).join(', ')}`);
    for (const key of ['step:running', 'step:blocked', 'step:done', 'fork&:ok', 'gup&:ok', 'write&:ok']) assert.ok(at(key) >= 100, `${kernel}: ${key}: ${at(key)} times`);
    // What a fork& step met: a swap entry (with its uffd-wp bit too), a uffd-wp bit kept and one
    // dropped (the parent's VMA decides up to 5.13, the child's from 5.14; an early COW copy
    // drops it before 5.14), a read-only VMA, VMAs left out (MADV_DONTFORK) or empty
    // (MADV_WIPEONFORK); a write& through the monitor.
    const met = ['fork:swap', 'fork:swap-uffd-wp', 'fork:uffd-wp-kept', 'fork:uffd-wp-dropped', 'fork:ro-vma', 'fork:dontfork', 'fork:wipeonfork', 'fork:between-vmas', 'write:uffd-wp', 'write:copy'];
    // A device-exclusive entry fork restores (and a store or gup-fast through it before its
    // copy), the device's atomic revoked by the fork's MMU notifier, a write& restoring one.
    if (naive.deviceExclusive !== undefined) met.push('fork:devx-restored', 'fork:devx-changed', 'devx:revoked-in-fork', 'write:devx-restored');
    // A KSM page shared at fork (the prefix makes one from fork's early COW copy, 5.9 on).
    if (naive.earlyCow) met.push('fork:ksm', 'fork:early-cow');
    if (steps.writeProtectSeq) met.push('gup:seq-odd');
    for (const key of met) assert.ok(at(key) >= 1, `${kernel}: ${key}: ${at(key)} times`);
    for (const key of ['fork:swap', 'fork:ro-vma', 'fork:dontfork', 'fork:wipeonfork', ...(naive.deviceExclusive !== undefined ? ['fork:devx-restored'] : []), ...(naive.earlyCow ? ['fork:ksm'] : [])]) {
      assert.ok(at(key) >= 10, `${kernel}: ${key}: ${at(key)} times`);
    }
  }
});

test('the explorer counts the child of a `fork &` in progress: no fork past --procs, no thread or child without a name', () => {
  const shape: ExploreShape = { procs: 2, threads: 2, handles: 2, ops: ['fork', 'fork&', 'thread', 'step'] };
  const r = runnerAfter(['P mmap buf 1 rw private', 'P thread T', 'P fork Q &'], 'v6', [], false);
  const names = (code: string) => enabledOps(r, shape).filter((op) => op >>> 24 === OP_NAMES.indexOf(code)).map((op) => decodeOp(r, op).text);
  // Q will be the second process: T may not fork a third one meanwhile.
  assert.deepEqual([names('fork'), names('fork&')], [[], []]);
  assert.deepEqual(names('step'), ['P step']);
  // Eight names: with six threads and two forks in progress, no thread can be named.
  const full = runnerAfter(['P mmap buf 1 rw private', 'P thread A', 'A thread B', 'B thread C', 'C thread D', 'D thread E', 'P fork F &', 'A fork G &'], 'v6', [], false);
  const wide: ExploreShape = { procs: 8, threads: 8, handles: 2, ops: ['fork', 'thread'] };
  assert.deepEqual(enabledOps(full, wide).map((op) => decodeOp(full, op).text).filter((t) => /undefined/.test(t)), []);
  assert.equal(enabledOps(full, wide).length, 0, 'every name is taken or promised');
});
