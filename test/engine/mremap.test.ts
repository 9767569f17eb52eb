// mremap in runs: the ideal semantics moves the cells and the pins' bindings with the pages, and
// judges the kernel's EFAULT or success by the range; the model's accounting holds throughout.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdealMemory } from '../../src/check/ideal.js';
import { runScenario } from '../../src/engine/run.js';
import type { RunResult } from '../../src/engine/result.js';
import { builtinProfile } from '../../src/profiles/builtin.js';
import { withOverrides } from '../../src/profiles/resolve.js';
import { parseScenario, type Scenario } from '../../src/scenario/index.js';

function scenario(steps: string[]): Scenario {
  const r = parseScenario(['name: t', 'steps: |', ...steps.map((s) => `  ${s}`), ''].join('\n'), 't.scn.yaml');
  if (!r.ok) assert.fail(r.errors.map((e) => e.format()).join('\n'));
  return r.scenario;
}

function run(steps: string[], profile = 'v6', sets: string[] = []): RunResult {
  return runScenario(scenario(steps), withOverrides(builtinProfile(profile)!, sets), { trace: true });
}

const kinds = (r: RunResult): string[] => [...new Set(r.violations.map((v) => v.kind))].sort();

test('a bound pin stays bound to the moved page: device and process keep meeting there', () => {
  const r = run([
    'P mmap buf 2', 'P write buf = 1', 'P pin buf as mr', 'P mremap buf[1] as moved',
    'device write mr[1] = 5', 'P read moved[0] expect 5', 'P write moved[0] = 6', 'device read mr[1] expect 6',
    'device read mr[0] expect 1', 'P munmap moved', 'device write mr[1] = 7', 'device read mr[1] expect 7',
  ]);
  assert.deepEqual(kinds(r), [], JSON.stringify(r.violations));
});

test('pin coherence is checked at the new address: a COW of the moved page away from its pin is pin-incoherent', () => {
  // v5.9-rc4: no early COW at fork; the parent's write copies the pinned page (page_count).
  const r = run(['P mmap buf 1', 'P write buf = 1', 'P pin buf as mr', 'P mremap buf as moved', 'P fork Q', 'P write moved[0] = 2'], 'v5.9-rc4');
  assert.deepEqual(kinds(r), ['pin-incoherent']);
  assert.match(r.violations[0]!.message, /mr\[0\] pins frame \d+ but P now maps frame \d+ there/);
});

test('the old addresses fault, the new ones hold the values; an EFAULT leaves everything where it was', () => {
  const ok = run(['P mmap buf 3', 'P write buf = 4', 'P mremap buf[0..1] as nb', 'P read buf[0] expect fault', 'P read nb[1] expect 4', 'P read buf[2] expect 4', 'check']);
  assert.deepEqual(kinds(ok), []);
  const efault = run(['P mmap buf 2', 'P write buf = 4', 'P mprotect buf[1] ro', 'P mremap buf as nb', 'P read buf[1] expect 4', 'P read nb[0] expect fault'], 'v6.15');
  assert.deepEqual(kinds(efault), []);
  assert.equal(efault.steps[3]!.observations[0]!.actual, 'EFAULT');
});

test('the ideal semantics: the first page must be mapped; one mapping must move; more than one may go either way', () => {
  const m = new IdealMemory();
  m.mmap('P', 100, 4, 'rw', false);
  m.munmap('P', 101, 102);
  assert.equal(m.mremap('P', 101, 103, 200, true), false, 'success although the first page is unmapped');
  assert.equal(m.mremap('P', 101, 103, 200, false), true);
  assert.equal(m.mremap('P', 102, 104, 200, false), false, 'EFAULT on one mapping');
  assert.equal(m.mremap('P', 100, 103, 300, false), true, 'a hole after the first page: EFAULT allowed');
  m.write('P', 100, 9);
  assert.equal(m.mremap('P', 100, 103, 300, true), true, 'and so is the move');
  assert.equal(m.access('P', 300, false), 'ok');
  assert.equal(m.read('P', 300), 9);
  assert.equal(m.access('P', 301, false), 'fault', 'the hole moved as a hole');
  assert.equal(m.access('P', 100, false), 'fault');
});

test('a shared page moved in one process is still the page the other maps', () => {
  const r = run(['P mmap sh 1 rw shared', 'P write sh = 1', 'P fork Q', 'P mremap sh as moved', 'Q write sh[0] = 2', 'P read moved[0] expect 2', 'expect P moved[0] same-frame Q sh[0]']);
  assert.deepEqual(kinds(r), []);
});

test('a device-exclusive grant on a moved page is revoked (MMU notifier), and the device reads the page at its new place', () => {
  const r = run(['P mmap buf 1', 'P write buf = 3', 'device exclusive P buf as x', 'P mremap buf as moved', 'device atomic x[0] = 9 expect revoked', 'device read x[0] expect 3', 'P read moved[0] expect 3']);
  assert.deepEqual(kinds(r), []);
});

test('mremap of a KSM page is n/a (prep_move_vma unmerges it first, which is not modelled)', () => {
  const r = run(['P mmap a 2', 'P write a = 1', 'P madvise a mergeable', 'ksm merge', 'P mremap a[0] as m']);
  assert.equal(r.status, 'n/a');
  assert.match(r.na!.reason, /KSM/);
});

test('uffd without EVENT_REMAP: a never-faulted source merges with its new range (copy_vma) and loses its registration as a whole', () => {
  // No anon_vma: copy_vma() gives the new range the page offset of its address, so it merges with
  // the source right before it and mremap_userfaultfd_prep() resets that whole VMA.
  const fresh = run(['P mmap a 6', 'P uffd register a wp', 'P mremap a[5] as m1', 'P uffd protect a[0]', 'P uffd protect a[4]', 'P uffd protect m1[0]']);
  assert.deepEqual(fresh.steps.slice(3, 6).map((s) => s.observations[0]!.actual), ['ENOENT', 'ENOENT', 'ENOENT']);
  // A faulted source keeps its page offset at the new address: no merge, only the moved part is reset.
  const faulted = run(['P mmap a 6', 'P write a[2] = 1', 'P uffd register a wp', 'P mremap a[5] as m1', 'P uffd protect a[0..4]', 'P uffd protect m1[0]', 'P write a[2] = 2', 'expect stat uffd_faults.P == 1']);
  assert.deepEqual(faulted.steps.slice(4, 6).map((s) => s.observations[0]!.actual), ['ok', 'ENOENT']);
  assert.deepEqual(kinds(faulted), []);
  assert.equal(faulted.verdict, 'pass', faulted.verdictReason);
});
