// The explorer's search: known kernel bugs are found as shortest counterexamples whose scenario
// file replays with the same violation; a fixed kernel is clean within a bound and the search is
// not vacuous (the interesting events were reached); same arguments, same result; the bounds
// stop the search and say so.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OpName } from '../../src/explore/ops.js';
import { explore } from '../../src/explore/explore.js';
import { input, replay, run, type Found, type InputOptions } from './helpers.js';

const RACE_OPS: OpName[] = ['thread', 'fork&', 'pin-fast&', 'write', 'step'];

/**
 * The search found a counterexample with a violation of `kind`; its file replays on the same
 * kernel with that violation at its last step (and passes its own outcomes unless a what-if);
 * and no shorter sequence has one (a search one shorter is complete and clean).
 */
function assertShortestReplayable(kernel: string, o: InputOptions, kind: string, f: Found): number {
  assert.equal(f.out.status, 'violation', `no ${kind} found on ${kernel}`);
  assert.equal(f.out.result.counterexamples.length, 1, 'the search stops at the first violation');
  const ce = f.out.result.counterexamples[0]!;
  assert.ok(ce.violations.some((v) => v.kind === kind), `the counterexample shows ${kind}: ${ce.violations.map((v) => v.kind).join(', ')}`);
  assert.equal(ce.steps.length, ce.depth, 'one step per operation');
  const text = f.files[0]!;
  const sets = o.sets ?? [];
  const { sc, r } = replay(text, kernel, sets);
  assert.equal(sc.steps.length, f.out.start.length + ce.depth, 'the start steps, then the counterexample');
  assert.equal(r.status, 'violation');
  const first = r.violations.find((v) => v.kind === kind);
  assert.ok(first, `the replay on ${kernel} shows ${kind}:\n${text}\n${r.violations.map((v) => `${v.kind}: ${v.message}`).join('\n')}`);
  assert.equal(first.step, sc.steps.length - 1, `${kind} at the last step of the replay, as in the search`);
  // Other kinds (not counted by --kinds) may occur on the way; the counted ones only at the end.
  const counted = o.kinds ?? null;
  assert.ok(r.violations.every((v) => v.step === sc.steps.length - 1 || v.step === -1 || (counted !== null && !counted.includes(v.kind))),
    `no counted violation before the last step: ${r.violations.map((v) => `${v.step}:${v.kind}`).join(', ')}`);
  if (sets.length === 0) {
    assert.equal(r.verdict, 'pass', `the file's own outcomes judge the replay: ${r.verdictReason}`);
    assert.match(text, new RegExp(`^kernel: ${kernel.replace(/[.+]/g, '\\$&')}$`, 'm'));
  } else {
    assert.match(text, /Replay with: npx cowlab run FILE --kernel/);
  }
  // Shortest: every sequence one operation shorter was searched and none has the violation.
  const shorter = run(input(kernel, { ...o, depth: ce.depth - 1 }));
  assert.equal(shorter.out.status, 'ok', `a shorter ${kind} exists on ${kernel}:\n${shorter.files[0] ?? ''}`);
  assert.equal(shorter.out.result.stats.stoppedBy, null);
  assert.equal(shorter.out.result.stats.depthComplete, ce.depth - 1, 'the shorter search is complete');
  return ce.depth;
}

test('v5.7: --kinds leak finds a leak, a shortest one, that replays', () => {
  const o: InputOptions = { kinds: ['leak'] };
  const f = run(input('v5.7', o));
  const depth = assertShortestReplayable('v5.7', o, 'leak', f);
  assert.ok(depth <= 6);
  // The same search on v6 (early COW, PageAnonExclusive) finds no leak within the same bound.
  const fixed = run(input('v6', { ...o, depth }));
  assert.equal(fixed.out.status, 'ok', fixed.files[0]);
});

test('v5.9-rc4: write,fork,exit,pin,device-write,read with --kinds lost-write finds a lost DMA write', () => {
  const o: InputOptions = { ops: ['write', 'fork', 'exit', 'pin', 'device-write', 'read'], kinds: ['lost-write'] };
  const f = run(input('v5.9-rc4', o));
  assertShortestReplayable('v5.9-rc4', o, 'lost-write', f);
  const ce = f.out.result.counterexamples[0]!;
  // The shape of the RDMA regression (70e806e4e645): a R/W pin, a fork, then a device write.
  assert.ok(ce.steps.some((s) => / pin .* rw longterm/.test(s)), ce.steps.join('\n'));
  assert.ok(ce.steps.some((s) => / fork /.test(s)));
  assert.ok(ce.steps.some((s) => /^device write /.test(s)));
  // v5.9 (early COW at fork for pinned pages) is clean at that depth.
  const fixed = run(input('v5.9', { ...o, depth: ce.depth }));
  assert.equal(fixed.out.status, 'ok', fixed.files[0]);
});

test('v5.9: a stale read-only pin (pin-incoherent) is found', () => {
  const o: InputOptions = { kinds: ['pin-incoherent'] };
  const f = run(input('v5.9', o));
  assertShortestReplayable('v5.9', o, 'pin-incoherent', f);
  const ce = f.out.result.counterexamples[0]!;
  assert.ok(ce.steps.some((s) => / pin .* ro longterm/.test(s)), `a R/O pin: ${ce.steps.join('; ')}`);
});

test('v6 at depth 4: no violation, and the search reached COW copies, reuses, forks and pins', () => {
  const f = run(input('v6', { depth: 4 }));
  assert.equal(f.out.status, 'ok', f.files[0]);
  assert.deepEqual(f.out.result.counterexamples, []);
  const st = f.out.result.stats;
  assert.ok(st.states > 1, `states ${st.states}`);
  assert.ok(st.transitions >= st.states - 1);
  assert.equal(st.stoppedBy, null);
  assert.equal(st.depthReached, 4);
  assert.equal(st.depthComplete, 4);
  for (const e of ['cow-copy', 'reuse', 'fork', 'pin']) {
    assert.ok(e in st.reached, `${e} reached: ${JSON.stringify(st.reached)}`);
    assert.ok(st.reached[e]! >= 1 && st.reached[e]! <= 4);
  }
  assert.equal(st.reached.fork, 1);
  assert.equal(st.reached.pin, 1);
});

test('what-if: v6 without early COW at fork (forkEarlyCow=false) has a stale pin', () => {
  const o: InputOptions = { sets: ['forkEarlyCow=false'], kinds: ['pin-incoherent'] };
  const f = run(input('v6', o));
  assertShortestReplayable('v6', o, 'pin-incoherent', f);
  assert.match(f.out.result.counterexamples[0]!.violations[0]!.message, /pins frame/);
  // The what-if file names its kernel and the overrides; it carries no outcomes (they are v6's).
  assert.match(f.files[0]!, /--set forkEarlyCow=false/);
  assert.doesNotMatch(f.files[0]!, /^outcomes:/m);
});

test('the gup-fast/fork race: v5.9 has a stale pin at depth 11, v5.14 (write_protect_seq) has none', () => {
  const o: InputOptions = { ops: RACE_OPS, pages: 1, depth: 11, kinds: ['pin-incoherent'] };
  const f = run(input('v5.9', o));
  const ce = f.out.result.counterexamples[0];
  assert.ok(ce, 'found on v5.9');
  // Both kernel paths are interleaved: fork and the fast pin are started with `&` and stepped.
  assert.ok(ce.steps.some((s) => / fork \w+ &$/.test(s)), ce.steps.join('\n'));
  assert.ok(ce.steps.some((s) => / pin .* fast &$/.test(s)));
  assert.ok(ce.steps.some((s) => / step$/.test(s)));
  const { r } = replay(f.files[0]!, 'v5.9');
  assert.ok(r.violations.some((v) => v.kind === 'pin-incoherent'), r.violations.map((v) => v.message).join('\n'));
  assert.equal(r.verdict, 'pass', r.verdictReason);
  const fixed = run(input('v5.14', { ...o, kinds: undefined }));
  assert.equal(fixed.out.status, 'ok', fixed.files[0]);
  assert.equal(fixed.out.result.stats.depthComplete, 11);
  assert.ok('pin' in fixed.out.result.stats.reached && 'early-cow' in fixed.out.result.stats.reached,
    `the race was reached: ${JSON.stringify(fixed.out.result.stats.reached)}`);
});

test('determinism: the same arguments twice give the same stats and the same counterexample text', () => {
  const strip = (f: Found) => {
    const { elapsedMs: _e, statesPerSec: _s, ...rest } = f.out.result.stats;
    return rest;
  };
  for (const [kernel, o] of [
    ['v5.7', { kinds: ['leak'] }],
    ['v5.9-rc4', { ops: ['write', 'fork', 'exit', 'pin', 'device-write', 'read'] }],
    ['v6', { depth: 3 }],
  ] as [string, InputOptions][]) {
    const a = run(input(kernel, o));
    const b = run(input(kernel, o));
    assert.deepEqual(strip(a), strip(b), kernel);
    assert.deepEqual(a.files, b.files, kernel);
    assert.deepEqual(a.out.result.counterexamples.map((c) => c.steps), b.out.result.counterexamples.map((c) => c.steps));
  }
});

test('--all keeps one counterexample per cause, and every violation kind at its shortest depth', () => {
  const f = run(input('v5.7', { depth: 4, all: true }));
  const ces = f.out.result.counterexamples;
  assert.ok(ces.length >= 2, JSON.stringify(ces.map((c) => c.violations.map((v) => v.kind))));
  const keys = ces.map((c) => c.cause!.key);
  assert.equal(new Set(keys).size, keys.length, `one counterexample per cause: ${keys.join(' / ')}`);
  const first = new Map<string, number>();
  ces.forEach((ce, i) => {
    for (const v of ce.violations) if (!first.has(v.kind)) first.set(v.kind, ce.depth);
    // Each one alone replays with its kinds.
    const { r } = replay(f.files[i]!, 'v5.7');
    for (const v of ce.violations) assert.ok(r.violations.some((x) => x.kind === v.kind), `${v.kind}:\n${f.files[i]}`);
  });
  assert.ok(first.has('leak') && first.has('pin-incoherent'), [...first.keys()].join(', '));
  // Every kind at the depth a search for that kind alone finds first.
  for (const [kind, depth] of first) {
    const alone = run(input('v5.7', { depth: 4, kinds: [kind] })).out.result.counterexamples[0]!;
    assert.equal(depth, alone.depth, `${kind}: shortest depth`);
  }
  const depths = ces.map((c) => c.depth);
  assert.deepEqual(depths, [...depths].sort((a, b) => a - b), 'found in BFS order');
});

// ---- bounds ---------------------------------------------------------------------------------------

test('bounds: --max-states stops the search with stoppedBy "states"', () => {
  const f = run(input('v6', { depth: 8, maxStates: 40 }));
  const st = f.out.result.stats;
  assert.equal(f.out.status, 'ok');
  assert.equal(st.stoppedBy, 'states');
  assert.equal(st.states, 40);
  assert.ok(st.depthComplete < 8, `depth ${st.depthComplete} was not completed`);
});

test('bounds: --time stops the search with stoppedBy "time"', () => {
  const f = run(input('v6', { depth: 12, timeSec: 0.2 }));
  const st = f.out.result.stats;
  assert.equal(st.stoppedBy, 'time');
  assert.ok(st.elapsedMs < 5000, `stopped soon after the bound (${st.elapsedMs} ms)`);
  assert.ok(st.depthComplete < 12);
  assert.ok(st.states > 1);
});

test('bounds: --max-memory stops the search with stoppedBy "memory"', () => {
  const f = run(input('v6', { depth: 12, maxMemoryMB: 1 }));
  assert.equal(f.out.result.stats.stoppedBy, 'memory');
  assert.equal(f.out.status, 'ok');
});

test('bounds: a stop request (the shared flag a signal sets) ends the search as "interrupted"', () => {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  Atomics.store(flag, 0, 1);
  const st = explore(input('v6', { depth: 12 }), undefined, flag).result.stats;
  assert.equal(st.stoppedBy, 'interrupted');
  assert.ok(st.elapsedMs < 5000, `stopped at its first look at the clock (${st.elapsedMs} ms)`);
  assert.ok(st.depthComplete < 12);
});

test('visited states: fingerprints (the default) and --exact keys give the same search', () => {
  for (const [kernel, depth, all] of [['v6', 4, false], ['v5.8', 5, false], ['v5.8', 4, true]] as const) {
    const run = (exact: boolean) => {
      const i = input(kernel, { depth, all });
      return explore({ ...i, bounds: { ...i.bounds, exact }, causes: false }).result;
    };
    const fp = run(false);
    const ex = run(true);
    assert.equal(fp.stats.visited, 'fingerprints');
    assert.equal(ex.stats.visited, 'exact');
    assert.equal(fp.stats.states, ex.stats.states, `${kernel} depth ${depth}`);
    assert.equal(fp.stats.transitions, ex.stats.transitions, `${kernel} depth ${depth}`);
    assert.deepEqual(fp.counterexamples.map((c) => c.steps), ex.counterexamples.map((c) => c.steps));
    assert.ok(fp.stats.collisionProbability > 0 && fp.stats.collisionProbability < 1e-6);
  }
});

test('bounds: a violation found before the bound is still reported', () => {
  const f = run(input('v5.9', { kinds: ['pin-incoherent'], maxStates: 1000 }));
  assert.equal(f.out.status, 'violation');
  assert.equal(f.out.result.stats.stoppedBy, null);
});


test('reached: creating a thread is not a fork', () => {
  const f = run(input('v6', { ops: ['thread', 'write', 'read'], depth: 3 }));
  assert.equal(f.out.status, 'ok');
  assert.ok(!('fork' in f.out.result.stats.reached), JSON.stringify(f.out.result.stats.reached));
});

test('reached: a fork run as a split kernel path (fork& and its steps) counts as a fork once it completes', () => {
  const f = run(input('v6', { ops: ['fork&', 'step'], pages: 1, depth: 4 }));
  assert.equal(f.out.status, 'ok');
  assert.ok('fork' in f.out.result.stats.reached);
  assert.ok(f.out.result.stats.reached.fork! >= 2, 'not before the path has taken its steps');
});


test('v6 with threads and synchronous pins is clean at depth 4', () => {
  const f = run(input('v6', { ops: ['thread', 'write', 'pin', 'device-write', 'read'], pages: 1, depth: 4 }));
  assert.equal(f.out.status, 'ok', f.files[0]);
});
