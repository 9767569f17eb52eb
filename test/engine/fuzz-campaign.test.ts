// The bounded fuzz campaign of `npm test` (test/fuzz/campaign.ts): random scenarios over every
// operation of the language, each run on the model on one built-in profile (all profiles in
// turn); any internal error fails, with the shrunk scenario. The long mode is
// `npm run fuzz -- --count N`. COWLAB_SEED picks the seed (test/engine/seed.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BUILTIN_PROFILES } from '../../src/profiles/builtin.js';
import { parseScenario, STEP_OPS, type StepOp } from '../../src/scenario/index.js';
import { checkProgram, InternalError, runCampaign } from '../fuzz/campaign.js';
import { programArb, programText } from '../fuzz/generate.js';
import { SEED } from './seed.js';

/** Scenarios of the bounded campaign (each on one profile). */
const CI_COUNT = 30000;

test('every kind of step the AST has is generated, with every option word and both forms of read', () => {
  const seen = new Set<StepOp>();
  const words = new Set<string>();
  let async = 0;
  for (const prog of fc.sample(programArb(), { seed: 7, numRuns: 3000 })) {
    const r = parseScenario(programText(prog, false), 'fuzz.scn.yaml');
    assert.ok(r.ok, `the generator wrote a scenario the parser rejects:\n${r.ok ? '' : r.errors.map((e) => e.format()).join('\n')}\n${programText(prog, false)}`);
    for (const s of r.scenario.steps) {
      seen.add(s.op);
      for (const w of s.text.split(' ')) words.add(w);
      if ('async' in s && s.async) async++;
    }
  }
  const missing = STEP_OPS.filter((op) => !seen.has(op));
  assert.deepEqual(missing, [], `kinds of step never generated: ${missing.join(', ')}`);
  for (const w of ['rw', 'ro', 'none', 'shared', 'populate', 'nothp', 'cowpt', 'longterm', 'short', 'fast', 'dontfork', 'wipeonfork', 'pageout', 'mergeable', 'revoked', 'denied', 'fault', '&']) {
    assert.ok(words.has(w), `the word '${w}' is never generated`);
  }
  assert.ok(async > 0);
});

test('an internal error fails the campaign, with the scenario in the report', () => {
  // A profile the model cannot run with (every switch throws when read): the failure must
  // surface as an InternalError naming the profile and carrying the scenario.
  const v57 = BUILTIN_PROFILES[0]!;
  const broken = new Proxy(v57, {
    get(t, k) {
      if (k === 'name') return t.name;
      throw new Error('boom');
    },
  });
  const prog = fc.sample(programArb(), { seed: 3, numRuns: 1 })[0]!;
  assert.throws(
    () => checkProgram(prog, [broken]),
    (e: unknown) => e instanceof InternalError && e.message.startsWith('internal error on v5.7: Error: boom') && e.message.includes('--- scenario ---\nname: fuzz'),
  );
});

test(`fuzz campaign: ${CI_COUNT} random scenarios over every operation, across every profile, without an internal error`, () => {
  const stats = runCampaign({ count: CI_COUNT, seed: SEED, everyProfile: false });
  assert.equal(stats.scenarios, CI_COUNT);
  // Every profile got its share, and the runs got past the first steps (not all n/a).
  for (const p of BUILTIN_PROFILES) assert.ok(stats.kinds[p.name] !== undefined, `no run on ${p.name} found a violation (did it run?)`);
  assert.ok((stats.status.ok ?? 0) > CI_COUNT / 4, JSON.stringify(stats.status));
  assert.ok((stats.status.violation ?? 0) > 0, JSON.stringify(stats.status));
});
