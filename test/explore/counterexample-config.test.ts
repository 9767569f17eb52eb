// A counterexample file found from a start scenario keeps every config key of the start (frames,
// pin_bias, thp, hugepages, ksm_use_zero_pages, ksm_smart_scan): without config.hugepages the start's `expect stat HugePages_Rsvd`
// made the replay n/a, so the file did not replay to its violation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONFIG_KEYS } from '../../src/scenario/index.js';
import { input, parse, replay, run } from './helpers.js';

const START = `name: start
config:
  frames: 64
  pin_bias: 1024
  thp: never
  hugepages: 1
  ksm_use_zero_pages: 0
  ksm_smart_scan: 0
steps: |
  P mmap buf 2 rw private
  P mmap huge 512 rw private hugetlb
  expect stat HugePages_Rsvd == 1
`;

test('explore --from: the counterexample file has the start\'s whole config and replays to its violation', () => {
  const from = parse(START, 'start.scn.yaml');
  // v5.7: an R/O pin of the zero page, then a write (pin-incoherent), found after 2 operations.
  const f = run({ ...input('v5.7', { depth: 2 }), from });
  assert.equal(f.files.length, 1, 'one counterexample');
  const ce = f.out.result.counterexamples[0]!;
  const { sc, r } = replay(f.files[0]!, 'v5.7');
  assert.deepEqual(sc.config, from.config, `the file's config is the start's:\n${f.files[0]}`);
  for (const k of CONFIG_KEYS) assert.match(f.files[0]!, new RegExp(`^  ${k}: `, 'm'), `config key ${k} written`);
  assert.equal(r.na, null, `the replay applies on v5.7: ${r.na?.reason}`);
  assert.deepEqual([...new Set(r.violations.map((v) => v.kind))].sort(), [...new Set(ce.violations.map((v) => v.kind))].sort());
  assert.equal(r.verdict, 'pass', r.verdictReason);
});
