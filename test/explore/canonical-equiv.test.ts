// The canonical encoding computes each thread's words once and translates them into the global
// numbering: over random operation sequences (every operation, three processes with threads,
// every kernel profile, the THP start, stores racing with a fork) it must equal, word for word,
// the reference encoding that ran each thread's key again with the global numbering
// (canonical-ref.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalWords } from '../../src/explore/canonical.js';
import { decodeOp, enabledOps, OP_NAMES, type ExploreShape, type OpName } from '../../src/explore/ops.js';
import { startState, thpStartScenario } from '../../src/explore/explore.js';
import { BUILTIN_PROFILES } from '../../src/profiles/builtin.js';
import { parseScenario, type Scenario } from '../../src/scenario/index.js';
import { assertProperty } from '../engine/seed.js';
import { refCanonicalWords } from './canonical-ref.js';
import { input } from './helpers.js';

const PROFILES = BUILTIN_PROFILES.map((p) => p.name);

/** Walk `choices` from the start state (or the end state of `start`), comparing the two encodings at every state. */
function walk(profile: string, pages: number, thp: boolean, choices: number[], ops: readonly OpName[] = OP_NAMES, start: Scenario | null = null): void {
  const inp = input(profile, { pages });
  const from = thp ? { ...inp, from: thpStartScenario() } : start ? { ...inp, from: start } : inp;
  const shape: ExploreShape = { procs: 3, threads: 2, handles: 2, ops, ...(thp ? { pageLimit: 2 } : {}) };
  let r = startState(from).runner;
  const trail: string[] = [];
  assert.deepEqual(canonicalWords(r), refCanonicalWords(r), 'the start state');
  for (const c of choices) {
    const en = enabledOps(r, shape);
    if (en.length === 0) break;
    const next = r.clone();
    const step = decodeOp(next, en[c % en.length]!);
    const { na } = next.step(step, trail.length);
    if (na !== null) continue;
    trail.push(step.text);
    assert.deepEqual(canonicalWords(next), refCanonicalWords(next), `on ${profile} after:\n  ${trail.join('\n  ')}`);
    r = next;
  }
}

test('property: the encoding equals the reference encoding word for word (every profile and operation)', () => {
  const arb = fc.record({
    profile: fc.constantFrom(...PROFILES),
    pages: fc.integer({ min: 1, max: 3 }),
    choices: fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 14 }),
  });
  assertProperty('canonical encoding = reference', arb, ({ profile, pages, choices }) => walk(profile, pages, false, choices), 600);
});

test('property: the encoding equals the reference encoding from the THP start', () => {
  const arb = fc.record({
    profile: fc.constantFrom('v6', 'v6.15', 'v5.7', 'odf'),
    choices: fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 10 }),
  });
  assertProperty('canonical encoding = reference (THP)', arb, ({ profile, choices }) => walk(profile, 1, true, choices), 60);
});

/** Operations that make processes, threads and pending paths often: states with three threads. */
const MANY: OpName[] = ['fork', 'thread', 'fork&', 'write&', 'pin-fast&', 'step', 'write', 'exit', 'pin', 'gup', 'vmsplice', 'unpin', 'device-write', 'swapout', 'mergeable', 'ksm-merge', 'munmap', 'fork-cowpt', 'mremap'];

test('property: the encoding equals the reference encoding with several processes and threads', () => {
  const arb = fc.record({
    profile: fc.constantFrom(...PROFILES),
    pages: fc.integer({ min: 1, max: 3 }),
    choices: fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 14 }),
  });
  assertProperty('canonical encoding = reference (many threads)', arb, ({ profile, pages, choices }) => walk(profile, pages, false, choices, MANY), 600);
});

/**
 * P's page written, a thread T of P, and P's `fork &` begun: T's stores before the fork copies
 * the page may or may not reach the child, which holds them as a sorted run of values (a race
 * with a fork is the explorer's only way to such a run: a short-term pin's device writes make
 * one too, but its pins are long-term). P comes before the child in the key and numbers the last
 * store first, so the child's run, translated into P's numbering, is out of order until sorted
 * again: about one walk in ten gets there (35 of these 300); the walks above hardly ever do.
 */
function forkRace(): Scenario {
  const text = 'name: canonical-fork-race\nsteps: |\n  P mmap buf 1 rw private\n  P write buf = 1\n  P thread T\n  P fork Q &\n';
  const r = parseScenario(text, '(fork race)');
  if (!r.ok) throw new Error(r.errors[0]!.format());
  return r.scenario;
}

test('property: the encoding equals the reference encoding when stores race with a fork (the child\'s sorted runs)', () => {
  const start = forkRace();
  const arb = fc.record({
    profile: fc.constantFrom(...PROFILES),
    choices: fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 14, size: 'max' }),
  });
  // Only P's steps and T's stores: the race's window is the fork's first steps.
  assertProperty('canonical encoding = reference (fork race)', arb, ({ profile, choices }) => walk(profile, 1, false, choices, ['step', 'write'], start), 300);
});
