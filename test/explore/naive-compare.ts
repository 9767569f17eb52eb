// What the model-based comparisons with the naive reference model share (model-based.test.ts,
// model-based-thp.test.ts, model-based-steps.test.ts): value names turned into the naive model's
// numbers, the one observation of a kind, the tally of what the runs took, and the naive form of
// the operations they take alike (naiveOp; naiveProcOp where the processes are a list), each
// compared with what the model observed. What a file does its own way (the steps runs' mmap_lock
// and split paths, MADV_COLLAPSE's end of a run) stays in its own switch, before these.

import assert from 'node:assert/strict';
import type { Observation } from '../../src/engine/result.js';
import type { Runner } from '../../src/engine/run.js';
import { PROC_NAMES, type OpName } from '../../src/explore/ops.js';
import type { NaiveKernel, NGrant, NPin, NProc, NRef, NRegion } from '../naive/model.js';

/** A value name the model observed -> the naive model's number (null: a fault; undefined: never written). */
export function valueOf(values: ReadonlyMap<string, number>, actual: string): number | null | undefined {
  return actual === 'fault' ? null : actual === '0' ? 0 : values.get(actual);
}

/** The naive model's number for a value name the explorer wrote (numbered in the order first seen). */
export function numberFor(values: Map<string, number>, name: string): number {
  if (!values.has(name)) values.set(name, values.size + 1);
  return values.get(name)!;
}

/** The one observation of a kind among those `keep` accepts (undefined: none). */
export function observedOnce<O extends { kind: string; actual: string }>(obs: readonly O[], kind: string, keep: (o: O) => boolean = () => true): string | undefined {
  const o = obs.filter((x) => x.kind === kind && keep(x));
  assert.ok(o.length <= 1, `more than one ${kind} observation`);
  return o[0]?.actual;
}

/** What the runs took (an operation, an outcome, a race), to check that the draws reach what they are for. */
export class Tally {
  readonly taken = new Map<string, number>();

  count(key: string, by = 1): void {
    this.taken.set(key, (this.taken.get(key) ?? 0) + by);
  }

  /** The counts taken from now on. */
  since(): (key: string) => number {
    const before = new Map(this.taken);
    return (key) => (this.taken.get(key) ?? 0) - (before.get(key) ?? 0);
  }
}

/** A handle of the naive model: a pin, a reference (gup, vmsplice's pipe), a device-exclusive grant. */
export type NHandle = { pin: NPin } | { ref: NRef } | { grant: NGrant };

/** The naive model's side of a run: its kernel, the explored region, value names and handles. */
export interface NaiveSide {
  k: NaiveKernel;
  region: NRegion;
  /** Value names the explorer wrote -> the naive model's numbers. */
  values: Map<string, number>;
  /** The naive model's handles by the explorer's handle names. */
  handles: Map<string, NHandle>;
}

/**
 * A naive side that keeps the explorer's processes as a list (model-based.test.ts,
 * model-based-thp.test.ts; the steps runs keep threads with paths instead).
 */
export interface NaiveProcs extends NaiveSide {
  /** By the explorer's index (a thread is a process of its own in the explorer's list, the same NProc here). */
  procs: NProc[];
  /** Per process or thread (by index), alive or not. */
  alive: boolean[];
  /** Per process (by index), the regions mremap made, by the explorer's names (a child inherits its parent's). */
  moved: Map<string, NRegion>[];
}

/** The fields of the decoded steps the naive model reads (each operation has some of them). */
export type NaiveStepArgs = { text: string; value?: string; handle?: string; proc?: string; ref?: { handle: string; index: number }; region?: string };

/** An operation the model took, for the naive model to take and compare. */
export interface NaiveOp {
  /** Its name (a stepped path's `&` taken off where it was run to its end). */
  name: OpName;
  /** The explorer's packed operation: the process's index, the page, mprotect's protection. */
  op: number;
  /** The naive process (of the thread) that takes it. */
  p: NProc;
  step: NaiveStepArgs;
  /** What the model observed, and its step's summary. */
  obs: readonly Observation[];
  summary: string | undefined;
  /** The model's state after the step. */
  after: Runner;
  /** Which observations are the operation's own (default: all). */
  keep?: (o: Observation) => boolean;
}

/** The naive handle named h (asserted to be there). */
function handleOf(n: NaiveSide, a: NaiveOp, h: string): NHandle {
  const x = n.handles.get(h);
  assert.ok(x, `${a.step.text}: the naive model has no handle ${h}`);
  return x;
}

/** The naive pin named h (asserted to be a pin). */
function pinOf(n: NaiveSide, a: NaiveOp, h: string): NPin {
  const x = handleOf(n, a, h);
  assert.ok('pin' in x, `${a.step.text}: ${h} is no pin in the naive model`);
  return x.pin;
}

/**
 * The naive form of a handle-taking operation: pin and pin-fast are R/W long-term pins
 * (pin-fast the naive pinFast: gup-fast looks at the PTE, not the VMA), pin-ro an R/O long-term
 * pin, gup a FOLL_GET reference, vmsplice a pipe's (null: EFAULT).
 */
function takeNaive(n: NaiveSide, name: OpName, p: NProc, pg: number): NHandle | null {
  if (name === 'gup' || name === 'vmsplice') {
    const ref = name === 'gup' ? n.k.gup(p, n.region, pg) : n.k.vmsplice(p, n.region, pg);
    return ref && { ref };
  }
  const o = { write: name !== 'pin-ro', longterm: true };
  const pin = name === 'pin-fast' ? n.k.pinFast(p, n.region, pg, o) : n.k.pin(p, n.region, pg, o);
  return pin && { pin };
}

/**
 * The naive form of an operation on the explored pages, the handles and the devices, compared
 * with what the model observed: what every model-based file takes the same way (a file's own form
 * of an operation, or what it does first, such as the steps runs' mmap_lock, goes before it).
 */
export function naiveOp(n: NaiveSide, a: NaiveOp): void {
  const { k, region } = n;
  const { name, op, p, step } = a;
  const pg = (op >>> 4) & 0xffff;
  const once = (kind: string) => observedOnce(a.obs, kind, a.keep);
  switch (name) {
    case 'write': {
      const ok = k.write(p, region, pg, numberFor(n.values, step.value!));
      const got = once('write');
      assert.equal(got, ok ? 'ok' : 'fault', `${step.text}: the naive model's store ${ok ? 'succeeds' : 'faults'}, the model's: ${got}`);
      return;
    }
    case 'read': {
      const want = k.read(p, region, pg);
      const got = once('read')!;
      assert.equal(valueOf(n.values, got), want, `${step.text}: the naive model reads ${want}, the model ${got}`);
      return;
    }
    case 'munmap':
      k.munmap(p, region, pg, pg + 1);
      return;
    case 'mprotect':
      k.mprotect(p, region, pg, pg + 1, (op & 15) === 0 ? 'ro' : 'rw');
      return;
    case 'dontfork':
    case 'wipeonfork':
    case 'dontneed':
    case 'mergeable':
      k.madvise(p, region, pg, pg + 1, name);
      return;
    case 'clear-softdirty':
      k.clearSoftdirty(p);
      return;
    case 'pin':
    case 'pin-fast':
    case 'pin-ro':
    case 'gup':
    case 'vmsplice': {
      const h = step.handle!;
      const x = takeNaive(n, name, p, pg);
      const got = once('gup');
      assert.equal(got, x === null ? 'EFAULT' : 'ok', `${step.text}: the naive model ${x === null ? 'fails (EFAULT)' : 'succeeds'}, the model says ${got}`);
      assert.equal(a.after.handles.has(h), x !== null, `${step.text}: handle ${h}`);
      if (x !== null) n.handles.set(h, x);
      return;
    }
    case 'unpin':
      k.unpin(pinOf(n, a, step.handle!));
      n.handles.delete(step.handle!);
      return;
    case 'put': {
      const x = handleOf(n, a, step.handle!);
      assert.ok('ref' in x, `${step.text}: ${step.handle} is no reference in the naive model`);
      k.putRef(x.ref);
      n.handles.delete(step.handle!);
      return;
    }
    case 'device-write':
      k.deviceWrite(pinOf(n, a, step.ref!.handle), numberFor(n.values, step.value!));
      return;
    case 'device-read': {
      const x = handleOf(n, a, step.ref!.handle);
      const want = 'grant' in x ? k.grantRead(x.grant) : k.deviceRead(pinOf(n, a, step.ref!.handle));
      const got = once('handle-read')!;
      assert.equal(valueOf(n.values, got), want, `${step.text}: the naive pin holds ${want}, the model reads ${got}`);
      return;
    }
    case 'swapout': {
      // Which page reclaim took: the model's summary counts them.
      const did = k.swapout(p, region, pg);
      const out = /: (\d+) page\(s\) swapped out/.exec(a.summary ?? '');
      assert.equal(out?.[1], did ? '1' : '0', `${step.text}: the naive model ${did ? 'swaps the page out' : 'keeps the page'}; the model: ${a.summary}`);
      return;
    }
    case 'ksm-merge':
      k.ksmMerge();
      return;
    case 'device-exclusive': {
      const g = k.makeDeviceExclusive(p, region, pg);
      const got = once('gup');
      assert.equal(got, g.err ?? 'ok', `${step.text}: the naive model ${g.revoked ? `fails (${g.err})` : 'grants the page'}, the model says ${got}`);
      assert.ok(a.after.handles.has(step.handle!), `${step.text}: handle ${step.handle}`);
      n.handles.set(step.handle!, { grant: g });
      return;
    }
    case 'device-atomic': {
      const x = handleOf(n, a, step.ref!.handle);
      assert.ok('grant' in x, `${step.text}: ${step.ref!.handle} is no grant in the naive model`);
      const want = k.deviceAtomic(x.grant, numberFor(n.values, step.value!));
      const got = once('handle-read');
      assert.equal(got, want, `${step.text}: the naive model's atomic is ${want}, the model's ${got}`);
      return;
    }
    case 'uffd-register': {
      const ok = k.uffdRegister(p, region);
      assert.equal(once('uffd'), ok ? 'ok' : 'EINVAL', `${step.text}: the naive model ${ok ? 'registers' : 'fails (EINVAL)'}`);
      return;
    }
    case 'uffd-protect':
    case 'uffd-unprotect': {
      const ok = k.uffdWriteprotect(p, region, pg, pg + 1, name === 'uffd-protect');
      assert.equal(once('uffd'), ok ? 'ok' : 'ENOENT', `${step.text}: the naive model ${ok ? 'succeeds' : 'fails (ENOENT)'}`);
      return;
    }
    case 'uffd-fork-event':
      k.uffdForkEventOn(p);
      return;
    default:
      throw new Error(`no naive form of ${name}`);
  }
}

/**
 * The naive MADV_COLLAPSE of the whole region, compared with the model's (its result, and how many
 * THPs it made, from the summary): how many THPs the naive model made. What follows is the caller's.
 */
export function naiveCollapse(n: NaiveSide, a: NaiveOp): number {
  const want = n.k.collapse(a.p, n.region, 0, n.region.n);
  assert.equal(observedOnce(a.obs, 'madvise', a.keep), want.err, `${a.step.text}: the naive model's MADV_COLLAPSE says ${want.err}; the model: ${a.summary}`);
  const made = /(\d+) new THP\(s\)/.exec(a.summary ?? '');
  assert.equal(Number(made?.[1] ?? 0), want.collapsed, `${a.step.text}: the naive model makes ${want.collapsed} THP(s); the model: ${a.summary}`);
  return want.collapsed;
}

/**
 * naiveOp, and the operations on the list of processes: fork (and On-Demand Fork's fork-cowpt),
 * thread, exit, a pipe's read by a process, mremap (its new region bound to the process).
 */
export function naiveProcOp(n: NaiveProcs, a: NaiveOp): void {
  const { name, p, step } = a;
  const pi = (a.op >>> 20) & 15;
  switch (name) {
    case 'fork':
    case 'fork-cowpt':
      n.procs.push(n.k.fork(p, name === 'fork-cowpt'));
      n.moved.push(new Map(n.moved[pi]));
      n.alive.push(true);
      assert.equal(observedOnce(a.obs, 'fork'), 'ok', `${step.text}: fork fails on the model`);
      return;
    case 'thread':
      // CLONE_VM: the same address space (and the same regions, mremap's too).
      n.procs.push(p);
      n.moved.push(n.moved[pi]!);
      n.alive.push(true);
      return;
    case 'exit':
      // The thread exits; the address space goes with the last of its threads.
      n.alive[pi] = false;
      if (!n.procs.some((q, i) => q === p && n.alive[i])) n.k.exit(p);
      return;
    case 'handle-read': {
      const x = handleOf(n, a, step.ref!.handle);
      assert.ok('ref' in x, `${step.text}: ${step.ref!.handle} is a pin in the naive model`);
      const got = observedOnce(a.obs, 'handle-read');
      // A process that has exited reads nothing (the step is skipped).
      if (!n.alive[PROC_NAMES.indexOf(step.proc!)]) {
        assert.equal(got, undefined, `${step.text}: ${step.proc} has exited`);
        return;
      }
      const want = n.k.pipeRead(x.ref);
      assert.equal(valueOf(n.values, got!), want, `${step.text}: the naive pipe holds ${want}, the model reads ${got}`);
      return;
    }
    case 'mremap': {
      const pg = (a.op >>> 4) & 0xffff;
      const moved = n.k.mremap(p, n.region, pg, pg + 1);
      const got = observedOnce(a.obs, 'mremap');
      assert.equal(got, moved ? 'ok' : 'EFAULT', `${step.text}: the naive model ${moved ? 'moves the page' : 'fails (EFAULT)'}, the model says ${got}`);
      // The name is bound either way; after EFAULT it maps nothing (a region of no mapped pages).
      n.moved[pi]!.set(step.region!, moved ?? { id: -1, n: 0, base: 0 });
      return;
    }
    default:
      naiveOp(n, a);
  }
}
