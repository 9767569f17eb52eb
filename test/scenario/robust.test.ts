// Whatever the input, the parser answers with a result or positioned errors, never a throw.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SEED } from '../engine/seed.js';
import { blockOrigin, parseScenario, parseSteps } from '../../src/scenario/index.js';

const WORDS = ['P', 'Q', 'mmap', 'buf', 'write', 'read', 'fork', 'pin', 'as', 'h', 'device', 'expect', 'stat', 'rss.P', '=', '==', '[', ']', '..', '*', '0', '1', '3', '-1', 'rw', 'ro', 'exit', 'unpin', 'put', 'gup', 'vmsplice', 'fault', '#', '4k', ';'];

const line = fc.array(fc.constantFrom(...WORDS), { maxLength: 8 }).map((ws) => ws.join(' '));

test('parseSteps never throws; every error lies within the text', () => {
  fc.assert(
    fc.property(fc.array(line, { maxLength: 12 }), (ls) => {
      const text = ['P mmap buf 4', ...ls].join('\n');
      const r = parseSteps(text, 'f', blockOrigin(1, 0));
      for (const e of r.errors) {
        assert.ok(e.line >= 1 && e.line <= ls.length + 1);
        const src = text.split('\n')[e.line - 1]!;
        assert.ok(e.col >= 1 && e.col <= src.length + 1, e.format());
        assert.ok(!e.message.includes('\n'));
      }
      for (const s of r.steps) assert.ok(s.text.length > 0);
    }),
    { seed: SEED, numRuns: 500 },
  );
});

test('parseScenario never throws on arbitrary text', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (text) => {
      const r = parseScenario(text, 'f');
      if (!r.ok) {
        for (const e of r.errors) assert.ok(e.line >= 1 && e.col >= 1);
      }
    }),
    { seed: SEED, numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.array(line, { maxLength: 6 }), (ls) => {
      parseScenario(`name: t\nsteps: |\n${ls.map((l) => `  ${l}`).join('\n')}\n`, 'f');
    }),
    { seed: SEED, numRuns: 300 },
  );
});

test('integer values canonicalise like BigInt', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.nat({ max: 3 }), (n, zeros) => {
      const digits = (n < 0n ? -n : n).toString();
      const written = `${n < 0n ? '-' : ''}${'0'.repeat(zeros)}${digits}`;
      const r = parseSteps(`P mmap b 1\nP write b = ${written}`, 'f', blockOrigin(1, 0));
      assert.equal(r.errors.length, 0);
      const w = r.steps[1]!;
      assert.ok(w.op === 'write' && w.value === n.toString());
    }),
    { seed: SEED },
  );
});
