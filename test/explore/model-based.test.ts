// Model-based runs (fast-check commands, which shrink) of the explorer's transitions, over every
// operation it enumerates and every built-in profile: each command names an operation and picks
// one of its enabled instances (an index modulo how many there are; none enabled: nothing), and
// the explorer's own path takes it (the state copied into the arrays of a copy done with, as
// Expander does). After every command:
// - the state equals the one a plain copy reaches and the one a replay from the start reaches
//   (same canonical encoding and fingerprint, same violations): the copy into reused arrays
//   and the search tree's rebuild of a state from its parent are the model's own semantics;
// - for the operations the naive reference model knows (test/naive/model.ts: write, read,
//   fork, exit, munmap, mprotect, dontfork, wipeonfork, dontneed, the pins pin, pin-ro and
//   pin-fast, gup, vmsplice, unpin, put, device-write, device-read, handle-read, clear-softdirty, mremap,
//   swapout, and mergeable and ksm-merge (with swapout, in runs of their own without mremap, on v6,
//   6.2, 5.19, 5.18, 5.9, 5.8 and 5.7); fork-cowpt on odf and odf-2021; collapse on a 512-page region on
//   v6, 6.2 and 6.15, up to the first THP it makes; thread, and fork&, pin-fast& and write& each stepped
//   to its end at once, against the synchronous operation), on v6 and on every other built-in
//   profile (v5.8 and v5.9-rc4+pin-cow with GUP's forced COW break; cowpt-rfc without
//   fork-cowpt), on the long-term kernels, and on random what-if kernels (v6 with the switches the
//   naive model has options for drawn at random, WHAT_IF): every read sees what the naive model reads, or faults where it faults; a handle is
//   taken (or EFAULT) where the naive model takes it; the device reads through a pin what the
//   naive pin holds, and a process reads from a pipe what the naive pipe holds; reclaim swaps a
//   page out where the naive model does; mremap moves (or fails with EFAULT) where it does, and
//   each page it moved reads (on a throwaway copy of the state) what the naive page holds;
// - device-exclusive grants (device-exclusive, device-atomic, device-read through a grant; 6.15
//   rules on v6, 5.14's on 5.18, 5.19 and 6.2): a grant is made (or EFAULT, EBUSY) where the naive model
//   makes it, an atomic is ok, revoked or denied as there, a device read sees what it sees;
// - userfaultfd write-protect (uffd-register, uffd-protect, uffd-unprotect, uffd-fork-event; on
//   v6, 6.2, 5.19, 5.18, 5.9, 5.9-rc4 and 5.7): each request succeeds (or EINVAL, ENOENT) as
//   there, and after every step each live process's pages carry the uffd-wp bit (pagemap) where
//   the naive pages do and each process handed its monitor as many write faults;
// - the frames the explored pages map have the naive frames' refcount and mapcount.
// The runs count what they took (`tally`) and check that the operations they are for occurred.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SEED } from '../engine/seed.js';
import type { Observation } from '../../src/engine/result.js';
import type { Runner } from '../../src/engine/run.js';
import { PTE_UFFD_WP } from '../../src/core/constants.js';
import { followSlot } from '../../src/core/huge.js';
import { canonicalKey, canonicalWords, fingerprint } from '../../src/explore/canonical.js';
import { startState } from '../../src/explore/explore.js';
import { decodeOp, OP_NAMES, PROC_NAMES, type ExploreShape, type OpName } from '../../src/explore/ops.js';
import { TakeCommand } from './take.js';
import { replayPath } from '../../src/explore/search.js';
import { BUILTIN_PROFILES } from '../../src/profiles/builtin.js';
import {
  LTS_RULES, NaiveKernel, ODF_2021_RULES, ODF_RULES, pageKey, V5_14_RULES, V5_18_RULES, V5_19_RULES, V5_7_RULES, V5_8_RULES, V5_9_RC4_PIN_COW_RULES, V5_9_RC4_RULES, V5_9_RULES,
  V6_15_RULES, V6_2_RULES, V6_RULES, type NaiveOptions, type NProc, type NRegion,
} from '../naive/model.js';
import { input } from './helpers.js';
import { naiveCollapse, naiveProcOp, observedOnce, Tally, valueOf, type NaiveOp, type NaiveProcs, type NaiveStepArgs } from './naive-compare.js';
import { PTE_PRESENT, PTE_SPECIAL } from '../../src/core/constants.js';
import { pteSlot } from '../../src/core/walk.js';

const NAIVE_OPS: readonly OpName[] = [
  'write', 'read', 'fork', 'exit', 'munmap', 'mprotect', 'dontfork', 'wipeonfork', 'dontneed',
  'pin', 'pin-ro', 'pin-fast', 'gup', 'vmsplice', 'unpin', 'put', 'device-write', 'device-read', 'handle-read', 'clear-softdirty',
];
/** With swap (reclaim and swap-in). */
const NAIVE_SWAP_OPS: readonly OpName[] = [...NAIVE_OPS, 'swapout'];
/** With mremap of a page of the explored region to a new one. */
const NAIVE_V6_OPS: readonly OpName[] = [...NAIVE_SWAP_OPS, 'mremap'];
const PAGES = 2;

interface Naive extends NaiveProcs {
  /** MADV_COLLAPSE made a THP: the naive model (no THP semantics) compares nothing after that step. */
  done?: boolean;
}

interface Real {
  root: Runner;
  r: Runner;
  /** A state done with: the next copy goes into its arrays. */
  spare: Runner | undefined;
  path: number[];
  shape: ExploreShape;
  naive: Naive | null;
}

const fp = (r: Runner): string => {
  const out = new Int32Array(2);
  fingerprint(canonicalWords(r), out);
  return `${out[0]},${out[1]}`;
};
const kinds = (r: Runner): string[] => r.violations.map((v) => `${v.step}:${v.kind}`);

/**
 * What the naive runs took, to check that the draws reach what they are for: per operation
 * (`write`), per operation and outcome of its observation (`device-atomic:ok`), and the monitor's
 * write-protect faults (`uffd-fault`).
 */
const tally = new Tally();
const count = (key: string, by = 1): void => tally.count(key, by);

/**
 * One transition: the `pick`-th (modulo) of the enabled instances of operation `name` (none
 * enabled: nothing happens). One command kind per operation, so that each is drawn as often
 * as the others, however many instances (processes, pages, handles) it has.
 */
class Take extends TakeCommand<Real> {
  run(_m: object, real: Real): void {
    if (real.naive?.done === true) {
      this.text = '';
      return;
    }
    const taken = this.prepare(real.r, real.shape, real.spare);
    if (taken === null) return;
    const { op, child, step } = taken;
    const d = real.path.length;
    const res = child.step(step, d);
    if (real.naive) {
      // The naive comparison alone (the copy and replay checks are the other runs').
      if (res.na !== null) return;
      real.path.push(op);
      const opName = OP_NAMES[op >>> 24]!;
      count(opName);
      for (const o of res.record.observations) count(`${opName}:${o.actual}`);
      const faults = child.procs.get(PROC_NAMES[(op >>> 20) & 15]!)?.mm.uffdFaults ?? 0;
      count('uffd-fault', faults - (real.r.procs.get(PROC_NAMES[(op >>> 20) & 15]!)?.mm.uffdFaults ?? 0));
      // A kernel path started with `&` is stepped to its end at once (`T step` until it is done):
      // what it observes is the synchronous operation's, in the naive model.
      const record = this.name.endsWith('&') ? runToEnd(child, op, d, real.path, res.record) : res.record;
      const name = opName.replace(/&$/, '') as OpName;
      const p = real.naive.procs[(op >>> 20) & 15]!;
      naiveStep(real.naive, { name, op, p, step: step as unknown as NaiveStepArgs, obs: record.observations, summary: record.summary, after: child });
      checkMoved(real.naive, child, d);
      checkUffd(real.naive, child, step.text);
      if (!real.naive.done) checkCounts(real.naive, child, this.text);
      real.spare = real.r;
      real.r = child;
      return;
    }
    const plain = real.r.clone();
    const res2 = plain.step(decodeOp(plain, op), d);
    assert.equal(res.na, res2.na);
    assert.equal(canonicalKey(child), canonicalKey(plain), `after ${step.text}: the copy into reused arrays differs from a plain copy`);
    assert.equal(fp(child), fp(plain));
    assert.deepEqual(kinds(child), kinds(plain));
    if (res.na !== null) return;
    real.path.push(op);
    const { r: replayed } = replayPath(real.root, real.path);
    assert.equal(canonicalKey(replayed), canonicalKey(child), `after ${step.text}: the replay from the start differs`);
    assert.deepEqual(kinds(replayed), kinds(child));
    real.spare = real.r;
    real.r = child;
  }
}

const STEP_CODE = OP_NAMES.indexOf('step');

/**
 * `T step` on the thread that started the path (op's process index) until it has no path any
 * more; the observations of every step, the first one's included, in order.
 */
function runToEnd(r: Runner, op: number, d: number, path: number[], first: { observations: readonly Observation[] }): { observations: Observation[]; summary?: string } {
  const pi = (op >>> 20) & 15;
  const observations = [...first.observations];
  const thread = [...r.procs.values()][pi]!;
  for (let i = 1; thread.task; i++) {
    assert.ok(i < 10_000, 'the path never ends');
    const stepOp = (STEP_CODE << 24) | (pi << 20);
    const res = r.step(decodeOp(r, stepOp), d + i);
    assert.equal(res.na, null, 'a step of a path is n/a');
    path.push(stepOp);
    observations.push(...res.record.observations);
  }
  return { observations };
}

/**
 * The pages mremap moved are not explored (the explorer's page operations take the first region
 * in name order): after every step each live process's moved pages are read on a copy of the
 * state, thrown away, and must hold what the naive model's pages hold (read without a fault).
 */
function checkMoved(n: Naive, after: Runner, d: number): void {
  let c: Runner | undefined;
  n.moved.forEach((regions, pi) => {
    const p = n.procs[pi]!;
    if (!n.alive[pi]) return;
    for (const [name, r] of regions) {
      for (let i = 0; i < r.n; i++) {
        c ??= after.clone();
        const pos = { line: 0, col: 1 };
        const text = `${PROC_NAMES[pi]} read ${name}[${i}]`;
        const read = { op: 'read', proc: PROC_NAMES[pi]!, sel: { region: name, all: false, lo: i, hi: i, pos }, expect: null, pos, text };
        const got = observedOnce(c.step(read as unknown as Parameters<Runner['step']>[0], d + 1).record.observations, 'read')!;
        const want = n.k.peek(p, r, i);
        assert.equal(valueOf(n.values, got), want, `${text} (moved by mremap): the naive model holds ${want}, the model reads ${got}`);
      }
    }
  });
}

/**
 * userfaultfd, after every step: each live process's pages (the explored region's and those
 * mremap moved) carry the uffd-wp bit (pagemap's PM_UFFD_WP: of a present PTE, a swap or a
 * device-exclusive entry) where the naive model's do, and each process handed the monitor as
 * many write-protect faults.
 */
function checkUffd(n: Naive, after: Runner, text: string): void {
  n.procs.forEach((p, pi) => {
    const name = PROC_NAMES[pi]!;
    const proc = after.procs.get(name)!;
    assert.equal(proc.mm.uffdFaults, p.uffdFaults, `after ${text}: ${name} handed the monitor ${proc.mm.uffdFaults} fault(s), the naive model ${p.uffdFaults}`);
    if (!p.alive) return;
    const regions: [string, NRegion][] = [[[...proc.regions.keys()].sort()[0]!, n.region], ...n.moved[pi]!];
    for (const [rname, r] of regions) {
      const at = proc.regions.get(rname);
      for (let i = 0; i < r.n; i++) {
        const slot = at === undefined ? -1 : followSlot(after.k, proc.mm, at.start + i);
        const got = slot >= 0 && (after.k.tables.bits[slot]! & PTE_UFFD_WP) !== 0;
        assert.equal(got, n.k.uffdWp(p, r, i), `after ${text}: ${name} ${rname}[${i}] is ${got ? '' : 'not '}uffd-wp in the model, ${got ? 'not ' : ''}in the naive model`);
      }
    }
  });
}

/**
 * Each live process's pages of the explored region (the first two and the last) read, on a copy
 * of the state thrown away, what the naive model's pages hold (read without a fault).
 */
function checkRegion(n: Naive, after: Runner): void {
  const c = after.clone();
  const seen = new Set<NProc>();
  n.procs.forEach((p, pi) => {
    if (!n.alive[pi] || seen.has(p)) return;
    seen.add(p);
    for (const i of new Set([0, 1, n.region.n - 1])) {
      const pos = { line: 0, col: 1 };
      const text = `${PROC_NAMES[pi]} read buf[${i}]`;
      const read = { op: 'read', proc: PROC_NAMES[pi]!, sel: { region: 'buf', all: false, lo: i, hi: i, pos }, expect: null, pos, text };
      const got = observedOnce(c.step(read as unknown as Parameters<Runner['step']>[0], 0).record.observations, 'read')!;
      const want = n.k.peek(p, n.region, i);
      assert.equal(valueOf(n.values, got), want, `${text} after MADV_COLLAPSE: the naive model holds ${want}, the model reads ${got}`);
    }
  });
}

/**
 * The frames the explored pages map (the first two, and the last): present in the model where
 * the naive page maps a frame (not the zero page), with the same refcount and mapcount.
 */
function checkCounts(n: Naive, after: Runner, text: string): void {
  const procs = [...after.procs.values()];
  n.procs.forEach((p, pi) => {
    if (!n.alive[pi]) return;
    const q = procs[pi]!;
    const base = q.regions.get('buf')?.start;
    if (base === undefined) return;
    for (const i of new Set([0, 1, n.region.n - 1])) {
      // (Where the naive process has no mapping the model may still see an entry: a table On-Demand Fork shares whole.)
      const pg = p.pages.get(pageKey(n.region, i));
      if (pg === undefined) continue;
      const f = pg.pte?.frame ?? null;
      const slot = pteSlot(after.k, q.mm, base + i);
      const bits = slot < 0 ? 0 : after.k.tables.bits[slot]!;
      const pfn = bits & PTE_PRESENT && !(bits & PTE_SPECIAL) ? after.k.tables.entry[slot]! : -1;
      const where = `after ${text}: ${PROC_NAMES[pi]} buf[${i}]`;
      assert.equal(pfn >= 0, f !== null, `${where}: the naive page ${f === null ? 'maps no frame' : 'maps a frame'}, the model's ${pfn >= 0 ? 'does' : 'does not'}`);
      if (f === null) continue;
      assert.deepEqual([after.k.frames.refcount[pfn], after.k.frames.mapcount[pfn]], [f.refcount, f.mapcount], `${where}: [refcount, mapcount] of the model's frame, of the naive frame`);
    }
  });
}

/**
 * The same operation on the naive model; what the model observed must be what it says. Its own:
 * MADV_COLLAPSE, after which (a THP made) every page is read once and nothing more compared.
 */
function naiveStep(n: Naive, a: NaiveOp): void {
  if (a.name !== 'collapse') {
    naiveProcOp(n, a);
    return;
  }
  if (naiveCollapse(n, a) > 0) {
    // Every process's pages read what the naive pages hold (on a throwaway copy), then stop.
    checkRegion(n, a.after);
    n.done = true;
  }
}

interface Runs {
  /** The naive model's rules (null: no naive comparison, the copy and replay checks instead). */
  naive: NaiveOptions | null;
  numRuns: number;
  maxCommands: number;
  /** Commands every run starts with (not shrunk, not in the counterexample: the test's title says them). */
  prefix?: readonly [OpName, number][];
  /** The explored region's size (default PAGES), and how many of its first pages the page operations take (default: all). */
  pages?: number;
  pageLimit?: number;
  /** Switches set over the profile (`--set`): a what-if kernel. */
  sets?: readonly string[];
}

function runs(kernel: string, ops: readonly OpName[], o: Runs): void {
  const inp = runInput(kernel, ops, o);
  // size 'max': as many sequences of every length up to maxCommands (the default favours short ones).
  fc.assert(fc.property(fc.commands(takes(ops), { maxCommands: o.maxCommands, size: 'max' }), (cmds) => {
    runOnce(inp, o.naive, cmds, o);
  }), { seed: SEED, numRuns: o.numRuns, includeErrorInReport: true });
}

/** The explorer's input of a run of `kernel` (with o.sets) drawing `ops`. */
function runInput(kernel: string, ops: readonly OpName[], o: Omit<Runs, 'naive' | 'numRuns' | 'maxCommands'>): ReturnType<typeof input> {
  const inp = input(kernel, { ops: [...new Set(ops)], pages: o.pages ?? PAGES, procs: 3, handles: 2, threads: 2, ...(o.sets === undefined ? {} : { sets: [...o.sets] }) });
  if (o.pageLimit !== undefined) inp.shape = { ...inp.shape, pageLimit: o.pageLimit };
  return inp;
}

/** One command kind per operation (an operation named more than once is drawn more often). */
function takes(ops: readonly OpName[]): fc.Arbitrary<Take>[] {
  return ops.map((name) => fc.nat(1000).map((i) => new Take(name, i)));
}

/** One run: o.prefix then cmds from the start state, compared with the naive model under `rules` (null: copies and replays). */
function runOnce(inp: ReturnType<typeof input>, rules: NaiveOptions | null, cmds: Iterable<fc.Command<object, Real>>, o: Pick<Runs, 'prefix' | 'pages'>): void {
  const pages = o.pages ?? PAGES;
  const root = startState(inp).runner;
  let naive: Naive | null = null;
  if (rules) {
    const k = new NaiveKernel(rules);
    const p = k.spawn();
    naive = { k, procs: [p], region: k.mmap(p, pages), values: new Map(), handles: new Map(), moved: [new Map()], alive: [true] };
  }
  const pre = (o.prefix ?? []).map(([name, i]) => new Take(name, i));
  fc.modelRun(() => ({ model: {}, real: { root, r: root.clone(), spare: undefined, path: [], shape: inp.shape, naive } }), [...pre, ...cmds]);
}

test('model-based: every explorer operation, on every built-in profile: copies into reused arrays and replays agree', () => {
  for (const p of BUILTIN_PROFILES) runs(p.name, OP_NAMES, { naive: null, numRuns: 250, maxCommands: 20 });
});

test('model-based: on v6, reads agree with the naive reference model (write, read, fork, exit, munmap, mprotect, madvise, pins, gup, vmsplice, device I/O, pipe reads, swapout and swap-in, mremap)', () => {
  runs('v6', NAIVE_V6_OPS, { naive: V6_RULES, numRuns: 5000, maxCommands: 30 });
});

test('model-based: on v6 (and 5.18), reclaim and swap-in agree with the naive model (a swap-focused draw: the handles that keep a swapped-out page in the swap cache, fork sharing the swap entry)', () => {
  // Fewer operations than NAIVE_SWAP_OPS, so that the chains that show a swap rule (a write,
  // a pipe's or pin's reference, reclaim, a fault, a read through the handle) come often.
  const ops: OpName[] = ['write', 'read', 'fork', 'exit', 'swapout', 'vmsplice', 'gup', 'put', 'handle-read', 'pin-ro', 'unpin', 'device-read', 'dontneed'];
  runs('v6', ops, { naive: V6_RULES, numRuns: 8000, maxCommands: 20 });
  // 5.18's page-count rules at swap-in and in do_wp_page (between reuse_swap_page and SWP_EXCLUSIVE).
  runs('v5.18', ops, { naive: V5_18_RULES, numRuns: 3000, maxCommands: 20 });
});

test('model-based: on v6 (and 6.2, 5.19, 5.18, 5.9, 5.8, 5.7), KSM agrees with the naive model (MADV_MERGEABLE, ksmd merging identical pages, a write copying a KSM page, pins and references refusing a merge, fork sharing KSM pages, KSM pages swapped out and in)', () => {
  // No mremap (n/a on KSM pages).
  runs('v6', [...NAIVE_SWAP_OPS, 'mergeable', 'ksm-merge'], { naive: V6_RULES, numRuns: 1500, maxCommands: 30 });
  // A KSM-focused draw: every write stores a new value, so two frames hold the same content only
  // after a copy that keeps it (fork's early COW of a pinned page, an R/O pin's unshare, a R/W
  // pin's write fault on a shared page): fewer operations, so that such a chain, MADV_MERGEABLE
  // and a merge followed by a write, a reference or a device read come often.
  // Reclaim and swap-in of KSM pages and of the pages around them (swapout) too.
  const focus: OpName[] = [
    'write', 'write', 'fork', 'fork', 'mergeable', 'ksm-merge', 'ksm-merge', 'ksm-merge', 'pin', 'pin', 'pin-ro', 'unpin', 'unpin', 'unpin',
    'read', 'exit', 'dontneed', 'gup', 'vmsplice', 'put', 'handle-read', 'device-read', 'clear-softdirty', 'swapout', 'swapout',
  ];
  // Each run starts with P's two pages made mergeable (P madvise buf[0] mergeable, then buf[1]).
  const prefix: [OpName, number][] = [['mergeable', 0], ['mergeable', 1]];
  runs('v6', focus, { naive: V6_RULES, numRuns: 4000, maxCommands: 25, prefix });
  // The older rules, the same draw, fewer runs: 6.2 (break_cow unshares), 5.19 (PG_anon_exclusive;
  // break_cow a write fault), 5.18 and 5.9 (no PG_anon_exclusive, a KSM page always copied, R/O
  // pins hold KSM pages; 5.18's and 5.9's swap-in rules), 5.7 (reuse_ksm_page, reuse_swap_page,
  // no early COW at fork), 5.8 (5.7 with GUP's forced COW break: a reference or R/O pin on a KSM
  // page copies it, or takes it back by reuse_ksm_page).
  const older: [string, NaiveOptions][] = [
    ['v6.2', V6_2_RULES], ['v5.19', V5_19_RULES], ['v5.18', V5_18_RULES], ['v5.9', V5_9_RULES], ['v5.8', V5_8_RULES], ['v5.7', V5_7_RULES],
  ];
  for (const [kernel, rules] of older) runs(kernel, focus, { naive: rules, numRuns: 800, maxCommands: 25, prefix });
});

test('model-based: on the older profiles, reads agree with the naive model under their rules (5.7 mapcount reuse; 5.9-rc4 page count; 5.9-5.18 early COW; 5.18 page-count swap-in; 5.19 PG_anon_exclusive and unsharing)', () => {
  // Every built-in profile but v6 (its own runs), odf and odf-2021 (theirs below) and v5.8 and
  // v5.9-rc4+pin-cow (GUP's forced COW break, below): v5.14 is v5.9 with 5.11's pinned pages
  // kept from reclaim and clear_refs; v6.15 is v6 but for MADV_COLLAPSE (not drawn here);
  // cowpt-rfc is v5.18 but for `fork ... cowpt` (not drawn: the naive model has no RFC tables).
  const older: [string, NaiveOptions][] = [
    ['v5.7', V5_7_RULES], ['v5.9-rc4', V5_9_RC4_RULES], ['v5.9', V5_9_RULES], ['v5.14', V5_14_RULES], ['v5.18', V5_18_RULES],
    ['v5.19', V5_19_RULES], ['v6.2', V6_2_RULES], ['v6.15', V6_15_RULES], ['cowpt-rfc', V5_18_RULES],
  ];
  for (const [kernel, rules] of older) runs(kernel, NAIVE_V6_OPS, { naive: rules, numRuns: 800, maxCommands: 30 });
});

/** GUP and what makes a page shared or read-only around it (fork, mprotect, swap), for the forced COW break. */
const GUP_OPS: readonly OpName[] = [
  'write', 'write', 'read', 'fork', 'fork', 'exit', 'mprotect', 'mprotect', 'dontneed', 'swapout', 'pin', 'pin-ro', 'pin-ro', 'pin-fast',
  'gup', 'gup', 'vmsplice', 'vmsplice', 'unpin', 'put', 'device-write', 'device-read', 'handle-read',
];

test('model-based: GUP\'s forced COW break agrees with the naive model: v5.8 (17839856fd58: every FOLL_GET and FOLL_PIN breaks COW as a write fault, once in a read-only VMA; gup-fast takes writable PTEs only) and v5.9-rc4+pin-cow (seed 001: FOLL_PIN only, gup-fast as it was)', () => {
  const at = tally.since();
  for (const [kernel, rules] of [['v5.8', V5_8_RULES], ['v5.9-rc4+pin-cow', V5_9_RC4_PIN_COW_RULES]] as const) {
    // Every operation the naive model knows, then a GUP-focused draw (read-only VMAs, shared
    // pages after fork or swap, the pipe's and the pins' views of the page).
    runs(kernel, NAIVE_V6_OPS, { naive: rules, numRuns: 600, maxCommands: 30 });
    runs(kernel, GUP_OPS, { naive: rules, numRuns: 800, maxCommands: 20 });
  }
  // 5.8's break is a write fault: a uffd-wp bit hands it to the monitor (seed 001's is not; its
  // uffd-wp rules are not in the naive model: no userfaultfd run on v5.9-rc4+pin-cow), unless the
  // swap-in did the write: in a read-only VMA (mprotect) that break ends in do_swap_page
  // (reuse_swap_page: VM_FAULT_WRITE, FOLL_COW, no do_wp_page, no userfault). Both are
  // test/core/userfaultfd.test.ts's too.
  const uffd: OpName[] = [...UFFD_OPS.filter((o) => !o.startsWith('device')), 'pin-ro', 'gup', 'vmsplice', 'put', 'swapout', 'mremap'];
  runs('v5.8', uffd, { naive: V5_8_RULES, numRuns: 500, maxCommands: 25, prefix: [['uffd-fork-event', 0], ['uffd-register', 0]] });
  for (const key of ['gup', 'vmsplice', 'pin-ro', 'mprotect']) assert.ok(at(key) >= 200, `${key}: ${at(key)} times`);
  assert.ok(at('uffd-fault') >= 20, `uffd-fault: ${at('uffd-fault')} times`);
  console.log(`gup-cow-break runs: ${['gup', 'vmsplice', 'pin-ro', 'pin', 'mprotect', 'fork', 'uffd-fault'].map((k) => `${k} ${at(k)}`).join(', ')}`);
});

/** A what-if kernel: the switches set over the v6 profile (`--set`), and the naive rules that say the same. */
interface WhatIf {
  sets: string[];
  rules: NaiveOptions;
}

/**
 * What-if kernels whose every switch the naive model has an option for is drawn at random, in the
 * combinations the naive rules can express (each is one kernel rule, so a combination no kernel
 * had is still a combination of rules both models write down). Drawn: wpReuse (with
 * anonExclusive: PG_anon_exclusive is what 'anon-exclusive' reuses by, and the naive model's
 * `pae`), unshareRoPin, mprotectWritable, mprotectWritableClean, forkEarlyCow, swapinReuse, swapinReadFaultWritable,
 * wpFreeSwapcache, reclaimSkipsPinned, clearRefsSkipPinned, deviceExclusive, uffdWpForkVma,
 * uffdWpShmem (the naive uffdWpForkCopies: fork copying a registered mapping without anon_vma),
 * uffdUnprotectWritable, mremapClearsUffdWp, gupCowBreak, gupFastWritableOnly, gupFastLongtermRetry. Tied to the
 * reuse rule, because the rules that read PG_anon_exclusive need it kept: with 'anon-exclusive',
 * unshareRoPin is 'anon' or 'all' (with 'none' a R/O pin of a shared page would pin a page not
 * exclusive: VM_BUG_ON), forkEarlyCow on (5.19's fork cannot share a pinned exclusive page),
 * swapinReuse 'exclusive-bit' (the bit survives swap only in the swap entry), wpFreeSwapcache on
 * (5.19's do_wp_page frees the swap cache as 5.18's does), gupCowBreak 'none' (a forced break is
 * the older way to the same end); without it, unshareRoPin 'none', mprotectWritable,
 * swapinReadFaultWritable and uffdUnprotectWritable off and deviceExclusive not 'v6.15' (each maps
 * a page writable because it is PG_anon_exclusive), and swapinReuse 'reuse_swap_page' with
 * 'mapcount' (reuse_swap_page is the mapcount era's rule). Left out: the switches of what the
 * naive model does not model (THP, hugetlb, shmem, COW page tables, mremap of several mappings,
 * the zero page's pin count, write_protect_seq of the split paths) and KSM's and MADV_COLLAPSE's
 * (ksmReuse, wpCopiesKsm, ksmBreakCow, ksmScansProtnone, madvCollapse: their operations need
 * runs of their own, with prefixes or 512-page regions, which these draws do not make); they
 * keep v6's values.
 */
const WHAT_IF: fc.Arbitrary<WhatIf> = fc.record({
  reuse: fc.constantFrom('mapcount', 'pagecount', 'anon-exclusive'),
  unshareAll: fc.boolean(), mprotectUpgrade: fc.boolean(), mprotectClean: fc.boolean(), earlyCow: fc.boolean(), swapinRefcount: fc.boolean(), swapinReadWritable: fc.boolean(),
  wpFreeSwapcache: fc.boolean(), reclaimSkipsPinned: fc.boolean(), clearRefsSkipsPinned: fc.boolean(),
  deviceExclusive: fc.constantFrom('none', 'v5.14', 'v6.15'), uffdWpForkVma: fc.constantFrom('src-vma', 'dst-vma'),
  uffdWpForkCopies: fc.boolean(), uffdUnprotectWritable: fc.boolean(), mremapClearsUffdWp: fc.boolean(),
  gupCowBreak: fc.constantFrom('none', 'get-and-pin', 'pin'), gupFastWritableOnly: fc.boolean(), gupFastLongtermRetry: fc.boolean(),
} as const).map((d): WhatIf => {
  const pae = d.reuse === 'anon-exclusive';
  const rules: NaiveOptions = {
    reuse: d.reuse, pae,
    unshare: !pae ? 'none' : d.unshareAll ? 'all' : 'anon',
    mprotectUpgrade: pae && d.mprotectUpgrade, mprotectUpgradeClean: d.mprotectClean,
    earlyCow: pae || d.earlyCow,
    swapin: pae ? 'exclusive-bit' : d.reuse === 'pagecount' && d.swapinRefcount ? 'refcount' : 'reuse_swap_page',
    swapinReadWritable: pae && d.swapinReadWritable,
    wpFreeSwapcache: pae || (d.reuse === 'pagecount' && d.wpFreeSwapcache),
    reclaimSkipsPinned: d.reclaimSkipsPinned, clearRefsSkipsPinned: d.clearRefsSkipsPinned,
    ksmBreakCow: 'unshare',
    ...(d.deviceExclusive === 'none' || (d.deviceExclusive === 'v6.15' && !pae) ? {} : { deviceExclusive: d.deviceExclusive }),
    uffdWpForkVma: d.uffdWpForkVma, uffdWpForkCopies: d.uffdWpForkCopies,
    uffdUnprotectWritable: pae && d.uffdUnprotectWritable, mremapClearsUffdWp: d.mremapClearsUffdWp,
    ...(pae || d.gupCowBreak === 'none' ? {} : { gupCowBreak: d.gupCowBreak }), gupFastWritableOnly: d.gupFastWritableOnly,
    gupFastLongtermRetry: d.gupFastLongtermRetry,
  };
  const sets = [
    `wpReuse=${rules.reuse}`, `anonExclusive=${pae}`, `unshareRoPin=${rules.unshare}`, `mprotectWritable=${rules.mprotectUpgrade}`, `mprotectWritableClean=${rules.mprotectUpgradeClean!}`,
    `forkEarlyCow=${rules.earlyCow}`, `swapinReuse=${rules.swapin!}`, `swapinReadFaultWritable=${rules.swapinReadWritable!}`,
    `wpFreeSwapcache=${rules.wpFreeSwapcache!}`, `reclaimSkipsPinned=${rules.reclaimSkipsPinned!}`, `clearRefsSkipPinned=${rules.clearRefsSkipsPinned!}`,
    `deviceExclusive=${rules.deviceExclusive ?? 'none'}`, `uffdWpForkVma=${rules.uffdWpForkVma!}`, `uffdWpShmem=${rules.uffdWpForkCopies!}`,
    `uffdUnprotectWritable=${rules.uffdUnprotectWritable!}`, `mremapClearsUffdWp=${rules.mremapClearsUffdWp!}`,
    `gupCowBreak=${rules.gupCowBreak ?? 'none'}`, `gupFastWritableOnly=${rules.gupFastWritableOnly!}`, `gupFastLongtermRetry=${rules.gupFastLongtermRetry!}`,
  ];
  return { sets, rules };
});

/**
 * The commands of a what-if run less those the naive rules do not cover: seed 001's forced COW
 * break (gupCowBreak=pin) keeps the uffd-wp bit on its copy, which the naive model does not
 * write down (no userfaultfd run on v5.9-rc4+pin-cow either), so such kernels draw no
 * uffd-protect.
 */
function withinNaiveRules(rules: NaiveOptions, cmds: Iterable<fc.Command<object, Real>>): Iterable<fc.Command<object, Real>> {
  if (rules.gupCowBreak !== 'pin') return cmds;
  // (fast-check hands the commands wrapped: their text says which operation they take.)
  return [...cmds].filter((c) => !String(c).startsWith('take(uffd-protect,'));
}

test('model-based: random what-if kernels (v6 with every switch the naive model has an option for drawn at random) agree with the naive model under the matching rules', () => {
  const at = tally.since();
  const ops: OpName[] = [...NAIVE_V6_OPS, 'device-exclusive', 'device-atomic', 'uffd-register', 'uffd-protect', 'uffd-unprotect', 'uffd-fork-event'];
  const drawn = new Set<string>();
  // A new kernel for every run: the counterexample names its switches (`sets`). Half the runs
  // start registered for uffd-wp (with the fork event asked), so that protection meets the rest.
  const prefixes: (readonly [OpName, number][])[] = [[], [['uffd-fork-event', 0], ['uffd-register', 0]]];
  for (const prefix of prefixes) {
    fc.assert(fc.property(WHAT_IF, fc.commands(takes(ops), { maxCommands: 25, size: 'max' }), (w, cmds) => {
      for (const s of w.sets) drawn.add(s);
      runOnce(runInput('v6', ops, { sets: w.sets }), w.rules, withinNaiveRules(w.rules, cmds), { prefix });
    }), { seed: SEED, numRuns: 1000, includeErrorInReport: true });
  }
  // Every value of every drawn switch was drawn.
  assert.equal(drawn.size, 43, [...drawn].sort().join(' '));
  for (const key of ['gup', 'pin-ro', 'swapout', 'uffd-protect:ok', 'device-exclusive:ok']) assert.ok(at(key) >= 100, `${key}: ${at(key)} times`);
  console.log(`what-if runs: ${['write', 'gup', 'pin-ro', 'vmsplice', 'fork', 'mprotect', 'swapout', 'mremap:ok', 'uffd-protect:ok', 'uffd-fault', 'device-exclusive:ok', 'device-atomic:ok'].map((k) => `${k} ${at(k)}`).join(', ')}`);
});

/** Device-exclusive grants: made, used, revoked by what tells devices (the CPU, fork, munmap, mprotect, clear_refs, mremap). */
const DEVICE_OPS: readonly OpName[] = [
  'write', 'write', 'read', 'fork', 'exit', 'munmap', 'mprotect', 'dontneed', 'wipeonfork', 'pin', 'pin-ro', 'unpin', 'gup', 'put',
  'device-read', 'device-read', 'device-exclusive', 'device-exclusive', 'device-exclusive', 'device-atomic', 'device-atomic', 'device-atomic',
  'clear-softdirty',
];
/** userfaultfd write-protect: the monitor's requests, and what moves a protected page or its bit (fork, early COW, swap, mremap, a device). */
const UFFD_OPS: readonly OpName[] = [
  'write', 'write', 'write', 'read', 'fork', 'fork', 'exit', 'munmap', 'mprotect', 'dontneed', 'dontfork', 'wipeonfork', 'pin', 'pin-ro', 'unpin',
  'uffd-register', 'uffd-protect', 'uffd-protect', 'uffd-protect', 'uffd-unprotect', 'uffd-fork-event', 'uffd-fork-event', 'device-exclusive', 'device-atomic',
];


test('model-based: device-exclusive entries agree with the naive model on v6 (6.15 rules) and on 5.18, 5.19, 6.2 (5.14 rules): grants made or refused, atomics ok, revoked or denied, device reads, the CPU restoring the PTE, fork restoring it first', () => {
  const at = tally.since();
  runs('v6', [...DEVICE_OPS, 'swapout', 'swapout', 'mremap', 'mremap'], { naive: V6_RULES, numRuns: 2500, maxCommands: 25 });
  const older: [string, NaiveOptions, readonly OpName[]][] = [
    ['v5.18', V5_18_RULES, [...DEVICE_OPS, 'mremap']],
    ['v5.19', V5_19_RULES, [...DEVICE_OPS, 'swapout', 'mremap']], ['v6.2', V6_2_RULES, [...DEVICE_OPS, 'swapout', 'mremap']],
  ];
  for (const [kernel, rules, ops] of older) runs(kernel, ops, { naive: rules, numRuns: 800, maxCommands: 25 });
  // Grants, pins and userfaultfd together where a PTE's writability shows in values: 5.18 reuses
  // a page only when page_count == 1, so a read-only restored entry copies a pinned page away
  // from its pin (5.14-6.14: any change_protection, un-protecting too, makes a writable entry
  // readable). One page, so that the chain meets; each run starts registered (a prefix's operation must be among those drawn: the
  // explorer enables only those).
  const mixed: OpName[] = [
    'write', 'write', 'write', 'read', 'pin', 'unpin', 'device-read', 'device-read', 'device-exclusive', 'device-atomic',
    'uffd-register', 'uffd-protect', 'uffd-unprotect', 'uffd-unprotect', 'mprotect',
  ];
  const v518: NaiveOptions = V5_18_RULES;
  for (const [kernel, rules] of [['v5.18', v518], ['v6.2', V6_2_RULES], ['v6', V6_RULES]] as const) {
    runs(kernel, mixed, { naive: rules, numRuns: 1500, maxCommands: 12, pages: 1, prefix: [['uffd-register', 0]] });
  }
  // The draws reach what they are for.
  for (const key of ['device-exclusive:ok', 'device-atomic:ok', 'device-atomic:revoked', 'device-atomic:denied']) {
    assert.ok(at(key) >= 200, `${key}: ${at(key)} times`);
  }
  // A failed grant: EFAULT (GUP failed: make_device_exclusive_range()'s errno for its first page) or EBUSY (not converted).
  const failed = at('device-exclusive:EFAULT') + at('device-exclusive:EBUSY');
  assert.ok(failed >= 200, `device-exclusive failed: ${failed} times`);
  console.log(`device-exclusive runs: ${['device-exclusive', 'device-exclusive:ok', 'device-exclusive:EBUSY', 'device-exclusive:EFAULT', 'device-atomic:ok', 'device-atomic:revoked', 'device-atomic:denied', 'device-read'].map((k) => `${k} ${at(k)}`).join(', ')}`);
});

test('model-based: userfaultfd write-protect agrees with the naive model on v6 and on 5.7, 5.9-rc4, 5.9, 5.18 (with swap), 5.19, 6.2: uffd-wp bits (pagemap) after every step, the writes handed to the monitor, fork by the parent\'s or the child\'s VMA, swap, mremap', () => {
  const at = tally.since();
  runs('v6', [...UFFD_OPS, 'swapout', 'swapout', 'mremap', 'mremap'], { naive: V6_RULES, numRuns: 2500, maxCommands: 25 });
  // Each run starts registered (P uffd register buf wp), half of them with the fork event asked first.
  runs('v6', [...UFFD_OPS, 'swapout', 'mremap'], { naive: V6_RULES, numRuns: 1000, maxCommands: 25, prefix: [['uffd-register', 0]] });
  runs('v6', [...UFFD_OPS, 'swapout', 'mremap'], { naive: V6_RULES, numRuns: 1000, maxCommands: 25, prefix: [['uffd-fork-event', 0], ['uffd-register', 0]] });
  const older: [string, NaiveOptions, readonly OpName[]][] = [
    ['v5.7', V5_7_RULES, [...UFFD_OPS.filter((o) => !o.startsWith('device')), 'swapout', 'mremap']],
    ['v5.9-rc4', V5_9_RC4_RULES, [...UFFD_OPS.filter((o) => !o.startsWith('device')), 'swapout', 'mremap']],
    ['v5.9', V5_9_RULES, [...UFFD_OPS.filter((o) => !o.startsWith('device')), 'swapout', 'mremap']],
    ['v5.18', V5_18_RULES, [...UFFD_OPS, 'swapout', 'mremap']],
    ['v5.19', V5_19_RULES, [...UFFD_OPS, 'swapout', 'mremap']], ['v6.2', V6_2_RULES, [...UFFD_OPS, 'swapout', 'mremap']],
  ];
  for (const [kernel, rules, ops] of older) {
    runs(kernel, ops, { naive: rules, numRuns: 500, maxCommands: 25, prefix: [['uffd-fork-event', 0], ['uffd-register', 0]] });
  }
  // One page, registered from the start: protect, write, fork, swap and mremap meet more often
  // (the parent's or the child's VMA deciding the bit: 5.9 and v6).
  const focus: OpName[] = ['write', 'write', 'read', 'fork', 'fork', 'exit', 'uffd-protect', 'uffd-protect', 'uffd-unprotect', 'uffd-fork-event', 'pin', 'unpin', 'swapout', 'mremap'];
  for (const [kernel, rules] of [['v6', V6_RULES], ['v5.9', V5_9_RULES]] as const) {
    runs(kernel, [...focus, 'uffd-register'], { naive: rules, numRuns: 1000, maxCommands: 15, pages: 1, prefix: [['uffd-register', 0]] });
  }
  for (const key of ['uffd-register:ok', 'uffd-register:EINVAL', 'uffd-protect:ok', 'uffd-unprotect:ok', 'uffd-fork-event', 'uffd-fault']) {
    assert.ok(at(key) >= 200, `${key}: ${at(key)} times`);
  }
  console.log(`uffd runs: ${['uffd-register:ok', 'uffd-register:EINVAL', 'uffd-protect:ok', 'uffd-unprotect:ok', 'uffd-fork-event', 'uffd-fault', 'fork', 'swapout', 'mremap:ok'].map((k) => `${k} ${at(k)}`).join(', ')}`);
});

test('model-based: On-Demand Fork (odf, odf-2021): fork-cowpt agrees with the naive model (shared tables, the copy at the first fault or change, GUP through a shared writable PTE, MADV_DONTNEED by the VMA or ignored)', () => {
  // fork-cowpt drawn twice as often as each other operation. No mremap on odf (8d43667 moves
  // the PTEs out of the shared table itself, which the naive model does not do); no KSM (the
  // naive model has it under PG_anon_exclusive only).
  const ops: OpName[] = [...NAIVE_OPS, 'swapout', 'fork-cowpt', 'fork-cowpt'];
  runs('odf', ops, { naive: ODF_RULES, numRuns: 3000, maxCommands: 30 });
  runs('odf-2021', [...ops, 'mremap'], { naive: ODF_2021_RULES, numRuns: 1000, maxCommands: 30 });
  // A focused draw: P's two pages written first, so that a fork-cowpt shares a table with pages
  // in it, and the operations that meet a shared table (faults, pins through it, changes) often.
  const focus: OpName[] = [
    'fork-cowpt', 'fork-cowpt', 'fork-cowpt', 'fork', 'write', 'write', 'read', 'read', 'pin', 'pin-fast', 'pin-fast', 'pin-ro', 'vmsplice', 'gup',
    'handle-read', 'device-write', 'device-read', 'unpin', 'put', 'exit', 'dontneed', 'dontfork', 'wipeonfork', 'mprotect', 'munmap', 'swapout', 'clear-softdirty',
    'thread', 'write&', 'pin-fast&',
  ];
  runs('odf', focus, { naive: ODF_RULES, numRuns: 3000, maxCommands: 25, prefix: [['write', 0], ['write', 1]] });
  // A 512-page region covers its PTE table: 8d43667 takes a table whose count is 1 back (its
  // writable PTEs with it) and drops it whole at MADV_DONTNEED. The operations take its first two pages.
  runs('odf', focus, { naive: ODF_RULES, numRuns: 400, maxCommands: 25, prefix: [['write', 0], ['write', 1]], pages: 512, pageLimit: 2 });
  runs('odf-2021', focus, { naive: ODF_2021_RULES, numRuns: 400, maxCommands: 25, prefix: [['write', 0], ['write', 1]], pages: 512, pageLimit: 2 });
});

test('model-based: threads and kernel paths run in steps (thread, fork&, pin-fast&, write&, each stepped to its end at once) agree with the synchronous operations of the naive model', () => {
  // Only those operations, with reads and the device's and pipe's I/O to see the values.
  const only: OpName[] = ['thread', 'thread', 'fork&', 'fork&', 'pin-fast&', 'pin-fast&', 'write&', 'write&', 'write&', 'exit', 'read', 'device-write', 'device-read', 'unpin'];
  runs('v6', only, { naive: V6_RULES, numRuns: 2000, maxCommands: 25 });
  // Mixed with every operation the naive model knows, on v6 and on the older rule sets.
  const mixed: OpName[] = [...NAIVE_OPS, 'thread', 'fork&', 'pin-fast&', 'write&'];
  runs('v6', [...mixed, 'swapout', 'mremap'], { naive: V6_RULES, numRuns: 2000, maxCommands: 30 });
  for (const [kernel, rules] of [['v5.7', V5_7_RULES], ['v5.9', V5_9_RULES], ['v5.19', V5_19_RULES]] as const) {
    runs(kernel, mixed, { naive: rules, numRuns: 500, maxCommands: 30 });
  }
});

test('model-based: MADV_COLLAPSE (collapse) on a 512-page region agrees with the naive model (refused for a pinned or referenced page, EINVAL with no writable PTE up to 6.13, swapped-out pages swapped in, the values copied); nothing is compared after a collapse', () => {
  // The default 2-page region holds no aligned 2 MiB: collapse is always EINVAL there (in the
  // runs above it is not drawn). 512 pages cover one PMD; the page operations take the first two.
  const ops: OpName[] = ['collapse', 'collapse', 'write', 'read', 'fork', 'exit', 'pin', 'pin-ro', 'unpin', 'gup', 'vmsplice', 'put', 'mprotect', 'dontneed', 'munmap', 'swapout', 'clear-softdirty', 'wipeonfork', 'dontfork'];
  // Each run starts with P's write to buf[0] (an anon_vma and a PTE table, which MADV_COLLAPSE needs).
  const big = { numRuns: 600, maxCommands: 15, pages: 512, pageLimit: 2, prefix: [['write', 0]] as [OpName, number][] };
  runs('v6', ops, { naive: V6_RULES, ...big });
  runs('v6.2', ops, { naive: V6_2_RULES, ...big });
  // v6.15: v6 but for MADV_COLLAPSE, which still wants a writable PTE there.
  runs('v6.15', ops, { naive: V6_15_RULES, ...big, numRuns: 300 });
  runs('v6', ['collapse', 'write', 'fork', 'mprotect', 'pin', 'dontneed'], { naive: V6_RULES, numRuns: 300, maxCommands: 10 });
});

test('model-based: the long-term kernels (5.4, 5.10, 5.15, 6.1, 6.6, 6.12) agree with the naive model under their rules (reads, faults, handles, counts; device grants and userfaultfd where they have them)', () => {
  for (const [kernel, rules] of LTS_RULES) {
    runs(kernel, NAIVE_V6_OPS, { naive: rules, numRuns: 400, maxCommands: 30 });
    // 5.4 has no userfaultfd-wp (5.7) and no device-exclusive entries (5.14); 5.10 none of the latter.
    if (kernel === '5.4') continue;
    const ops: OpName[] = [...DEVICE_OPS.filter((o) => kernel !== '5.10' || !o.startsWith('device-')), ...UFFD_OPS.filter((o) => kernel !== '5.10' || !o.startsWith('device-')), 'swapout', 'mremap'];
    runs(kernel, ops, { naive: rules, numRuns: 300, maxCommands: 25, prefix: [['uffd-fork-event', 0], ['uffd-register', 0]] });
  }
});
