// `cowlab compare` and `cowlab explore` through main(argv, io): exit codes (0 / 1 / 2), user
// profile files (a new column; errors at FILE:LINE:COL), the explorer's counterexample written
// with --out and replayed by `cowlab run`, and the --json documents.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { cli, type Outcome, ROOT, tempFiles } from './helpers.js';

const SEEDS = join(ROOT, 'scenarios', 'seeds');
const { dir: TMP, file } = tempFiles('cowlab-cli2-', (n) => `f${n}.yaml`);

function usageError(o: Outcome, fragment: RegExp): void {
  assert.equal(o.code, 2, `exit code (stdout: ${o.out.slice(0, 400)} stderr: ${o.err})`);
  assert.match(o.err, fragment);
  assert.doesNotMatch(o.err, /^\s*at /m, 'no stack trace');
  assert.doesNotMatch(o.err, /internal error/);
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---- compare -----------------------------------------------------------------------------------------

test('compare scenarios/seeds: every cell agrees with its outcomes: exit 0', () => {
  const o = cli('compare', SEEDS);
  assert.equal(o.code, 0, o.out);
  assert.match(o.out, /no cell contradicts its outcomes/);
  assert.match(o.out, /^scenario\s+v5\.7\s+v5\.8\s/m);
  assert.match(o.out, /^gup-fast-fork-race\s/m);
  assert.doesNotMatch(o.out, /[a-z]!(\s|$)/m, 'no cell marked "!"');
});

test('compare exits 1 when a cell contradicts its outcomes, and names the cell', () => {
  const f = file(`name: wrong-claim
outcomes:
  v6: [leak]
  "*": ok
steps: |
  P mmap buf 1
  P write buf[0] = 1
  P fork Q
  Q read buf[0] expect 1
`, 'wrong.scn.yaml');
  const o = cli('compare', f, '--kernels', 'v5.7,v6');
  assert.equal(o.code, 1, o.out);
  assert.match(o.out, /^wrong-claim\s+ok\s+ok!/m, 'the v6 cell is marked');
  assert.match(o.out, /contradicted cells/);
  assert.ok(o.out.includes(`${f} on v6`), o.out);
  const j = JSON.parse(cli('compare', f, '--kernels', 'v5.7,v6', '--json').out);
  assert.equal(j.contradictions, 1);
  assert.equal(j.scenarios[0].cells.v6.verdict, 'fail');
  assert.equal(j.scenarios[0].cells['v5.7'].verdict, 'pass');
  assert.deepEqual(j.scenarios[0].cells.v6.expected, { kind: 'violations', kinds: ['leak'] });
  assert.deepEqual(j.scenarios[0].cells['v5.7'].expected, { kind: 'ok' });
});

test('compare --kernels takes what-if names as the matrix prints them, judged by their base', () => {
  const rdma = join(SEEDS, 'rdma-pin-fork-child-exits.scn.yaml');
  const j = JSON.parse(cli('compare', rdma, '--kernels', 'v5.9+forkEarlyCow=false,gupCowBreak=none,v5.9', '--json').out);
  assert.deepEqual(j.profiles, ['v5.9+forkEarlyCow=false,gupCowBreak=none', 'v5.9']);
  const cells = j.scenarios[0].cells;
  assert.deepEqual(cells['v5.9'].expected, { kind: 'ok' });
  assert.deepEqual(cells['v5.9+forkEarlyCow=false,gupCowBreak=none'].expected, { kind: 'ok' }, 'the outcome of v5.9');
  assert.equal(cells['v5.9+forkEarlyCow=false,gupCowBreak=none'].verdict, 'fail');
  usageError(cli('compare', rdma, '--kernels', 'v5.9+bogus=1'), /--kernels: unknown switch 'bogus'/);
});

test('compare --kernels with an unknown profile: exit 2, the known ones listed', () => {
  usageError(cli('compare', SEEDS, '--kernels', 'v5.7,v9'), /--kernels: unknown profile 'v9'.*v5\.7/);
  usageError(cli('compare'), /no scenario given/);
});

test('compare --profiles FILE: a user profile is one more column, judged by "*" or not at all', () => {
  const prof = file(`- name: v5.9-no-early-cow
  base: v5.9
  summary: v5.9 as if seed 000 had not been merged
  switches:
    forkEarlyCow: false
`, 'profiles.yaml');
  const sc = join(SEEDS, 'pin-fork-live-child.scn.yaml');
  const o = cli('compare', sc, '--profiles', prof);
  assert.equal(o.code, 0, o.out);
  assert.match(o.out, /v6\s+cowpt-rfc\s+odf\s+odf-2021\s+v5\.9-no-early-cow/, 'the user profile comes last');
  const j = JSON.parse(cli('compare', sc, '--profiles', prof, '--json').out);
  assert.equal(j.profiles.at(-1), 'v5.9-no-early-cow');
  const cells = j.scenarios[0].cells;
  assert.deepEqual(cells['v5.9'].kinds, [], 'v5.9 copies the pinned page for the child early');
  assert.ok(cells['v5.9-no-early-cow'].kinds.includes('pin-incoherent'), JSON.stringify(cells['v5.9-no-early-cow']));
  assert.equal(cells['v5.9-no-early-cow'].verdict, null, 'outcomes do not name it');
  // --kernels may pick it.
  const two = cli('compare', sc, '--profiles', prof, '--kernels', 'v5.9,v5.9-no-early-cow');
  assert.equal(two.code, 0);
  assert.match(two.out, /^scenario\s+v5\.9\s+v5\.9-no-early-cow$/m);
});

test('compare --profiles with a bad file: exit 2 with FILE:LINE:COL', () => {
  const bad = file(`- name: mine
  base: v5.9
  switches:
    forkEarlyCow: maybe
`, 'bad-profiles.yaml');
  usageError(cli('compare', SEEDS, '--profiles', bad), new RegExp(`${escape(bad)}:4:5: error: switch forkEarlyCow: 'maybe' is not one of true, false`));
  const unknownBase = file('name: mine\nbase: v9\n', 'bad-base.yaml');
  usageError(cli('compare', SEEDS, '--profiles', unknownBase), new RegExp(`${escape(unknownBase)}:2:7: error: expected 'base'`));
  const unknownSwitch = file('name: mine\nbase: v6\nswitches:\n  noSuch: true\n', 'bad-switch.yaml');
  usageError(cli('compare', SEEDS, '--profiles', unknownSwitch), new RegExp(`${escape(unknownSwitch)}:4:3: error: unknown switch 'noSuch'`));
  const yaml = file('- name: [\n', 'bad-yaml.yaml');
  usageError(cli('compare', SEEDS, '--profiles', yaml), new RegExp(`${escape(yaml)}:\\d+:\\d+: error: invalid YAML`));
  usageError(cli('compare', SEEDS, '--profiles', join(TMP, 'missing.yaml')), /missing\.yaml: cannot read profile file/);
});

// ---- explore -----------------------------------------------------------------------------------------

test('explore: a counterexample is exit 1 and is printed as a scenario with a replay hint', () => {
  const o = cli('explore', '--kernel', 'v5.9', '--kinds', 'pin-incoherent');
  assert.equal(o.code, 1, o.out);
  assert.match(o.out, /^exploring v5\.9: P with 2 page\(s\)/m);
  assert.match(o.out, /^   after \d+ operations?: pin-incoherent/m);
  assert.match(o.out, /^searched until the first violation on v5\.9: [\d,]+ states, [\d.]+ s; a violation after \d operations?, a shortest one \(every shorter sequence is clean; --all lists one per cause\)$/m);
  assert.match(o.out, /^name: counterexample-v5-9-pin-incoherent$/m);
  assert.match(o.out, /^kernel: v5\.9$/m);
  assert.match(o.out, /replay: /);
});

test('explore: clean within the bound is exit 0, and says how deep it searched', () => {
  const o = cli('explore', '--kernel', 'v6', '--depth', '3');
  assert.equal(o.code, 0, o.out);
  assert.match(o.out, /^searched every sequence of up to 3 operations on v6: [\d,]+ states, [\d.]+ s; nothing found$/m);
  assert.match(o.out, /^sometimes: .*fork covered \(after 1 operation\)/m);
  const stopped = cli('explore', '--kernel', 'v6', '--depth', '8', '--max-states', '500');
  assert.equal(stopped.code, 0);
  assert.match(stopped.out, /^searched every sequence of up to \d operations? and some of \d \(stopped by the --max-states bound\)/m);
  assert.match(stopped.out, /longer ones were not all searched/);
});

test('explore: bad input is exit 2 (depth out of range, unknown op, unknown kind, unknown kernel, stray argument)', () => {
  usageError(cli('explore', '--depth', '999'), /--depth takes a whole number from 1 to 40, got '999'/);
  usageError(cli('explore', '--depth', 'x'), /--depth/);
  usageError(cli('explore', '--ops', 'write,teleport'), /--ops: unknown operation 'teleport'/);
  usageError(cli('explore', '--kinds', 'leak,bogus'), /--kinds: unknown violation kind 'bogus'/);
  usageError(cli('explore', '--kernel', 'v9'), /--kernel: unknown profile 'v9'/);
  usageError(cli('explore', '--set', 'forkEarlyCow=maybe'), /--set: switch forkEarlyCow/);
  usageError(cli('explore', 'extra'), /unexpected argument 'extra'/);
  const j = cli('explore', '--ops', 'teleport', '--json');
  assert.equal(j.code, 2);
  assert.match(JSON.parse(j.out).error, /teleport/);
});

test('explore --ops all: every operation, the same search as the list of every operation written out', () => {
  const every = cli('explore', '--help').out.match(/^\s+all: every operation, (\S+)$/m)![1]!;
  assert.ok(every.split(',').length > 20 && every.includes('mremap'), every);
  const all = cli('explore', '--ops', 'all', '--depth', '2', '--json');
  const listed = cli('explore', '--ops', every, '--depth', '2', '--json');
  assert.equal(all.code, 0, all.err);
  const a = JSON.parse(all.out);
  const l = JSON.parse(listed.out);
  assert.equal(a.stats.engine, 'full');
  assert.deepEqual([a.stats.states, a.stats.transitions], [l.stats.states, l.stats.transitions]);
  // More than the default operations reach.
  assert.ok(a.stats.states > JSON.parse(cli('explore', '--depth', '2', '--json').out).stats.states);
});

test('explore has one engine: --engine (any value) is refused, not ignored; the header names none; --json says "full"', () => {
  for (const e of ['full', 'compact', 'auto']) usageError(cli('explore', '--engine', e), /--engine: the explorer has one engine since December 2026, the model itself \(the hand-written compact engine was removed\)/);
  const j = cli('explore', '--engine', 'full', '--json');
  assert.equal(j.code, 2);
  assert.match(JSON.parse(j.out).error, /one engine since December 2026/);
  assert.match(cli('explore', '--depth', '2').out, /; ops write,[a-z-,]+$/m);
  assert.match(cli('explore', '--depth', '2', '--workers', '2').out, availableParallelism() >= 2 ? /; ops write,[a-z-,]+; 2 workers$/m : /; 2 workers \(this machine has 1 CPU:/m);
  assert.equal(JSON.parse(cli('explore', '--kernel', 'v5.9', '--kinds', 'pin-incoherent', '--json').out).stats.engine, 'full');
});

test('explore --workers past the CPUs: the header says they do not search faster; the same states', () => {
  const cpus = availableParallelism();
  const many = cli('explore', '--depth', '2', '--workers', String(cpus + 1), '--json');
  const one = cli('explore', '--depth', '2', '--json');
  assert.equal(JSON.parse(many.out).stats.states, JSON.parse(one.out).stats.states);
  const text = cli('explore', '--depth', '1', '--workers', String(cpus + 1)).out;
  assert.match(text, new RegExp(`; ${cpus + 1} workers \\(this machine has ${cpus} CPUs?: workers beyond that share them and only add their start-up\\)$`, 'm'));
  // As many as the CPUs: no note.
  if (cpus >= 2) assert.match(cli('explore', '--depth', '1', '--workers', String(cpus)).out, new RegExp(`; ${cpus} workers$`, 'm'));
});

test('explore --out FILE writes the counterexample; `cowlab run FILE` replays it and passes its outcomes', () => {
  const out = join(TMP, 'ce.scn.yaml');
  const o = cli('explore', '--kernel', 'v5.9-rc4', '--ops', 'write,fork,exit,pin,device-write,read', '--kinds', 'lost-write', '--out', out);
  assert.equal(o.code, 1, o.out);
  assert.ok(existsSync(out));
  assert.match(o.out, new RegExp(`written to ${escape(out)}; replay: npx cowlab run ${escape(out)} --trace`));
  const text = readFileSync(out, 'utf8');
  assert.match(text, /^outcomes:\n {2}"v5\.9-rc4": \[lost-write\]$/m);
  const run = cli('run', out);
  assert.equal(run.code, 0, run.out);
  assert.match(run.out, /verdict: PASS/);
  assert.match(run.out, /lost-write/);
  const j = JSON.parse(cli('run', out, '--json').out);
  assert.ok(j.results[0].violations.some((v: { kind: string }) => v.kind === 'lost-write'));
});

test('explore --out with a what-if kernel: the file replays with the overrides it names', () => {
  const out = join(TMP, 'whatif.scn.yaml');
  const o = cli('explore', '--kernel', 'v6', '--set', 'forkEarlyCow=false', '--kinds', 'pin-incoherent', '--out', out);
  assert.equal(o.code, 1, o.out);
  assert.match(o.out, /--kernel v6 --set forkEarlyCow=false --trace/);
  const text = readFileSync(out, 'utf8');
  assert.match(text, /Replay with: npx cowlab run FILE --kernel v6 --set forkEarlyCow=false/);
  const replay = JSON.parse(cli('run', out, '--kernel', 'v6', '--set', 'forkEarlyCow=false', '--json').out);
  assert.ok(replay.results[0].violations.some((v: { kind: string }) => v.kind === 'pin-incoherent'));
  // On v6 itself the sequence is clean.
  assert.equal(cli('run', out, '--kernel', 'v6').code, 0);
});


test('explore --baseline: regressions in plain words, each named by its cause and story; --json says which kernel was searched', () => {
  const o = cli('explore', '--kernel', 'v5.9-rc4', '--baseline', 'v5.8', '--depth', '4');
  assert.equal(o.code, 1, o.out);
  assert.match(o.out, /^looking for regressions: sequences that violate on v5\.9-rc4 and are clean on v5\.8, searching v5\.9-rc4: /m);
  assert.match(o.out, /^searched every sequence of up to 4 operations on v5\.9-rc4: [\d,]+ states, [\d.]+ s; \d+ sequences \(distinct causes\) that violate on v5\.9-rc4 and are clean on v5\.8 \([\d,]+ violating sequences checked\)$/m);
  assert.match(o.out, /^\d+\. R\/W pin of an exclusive page; fork shared a page the R\/W pin held; a write fault copied a page mapped once that an extra reference holds \(refcount rule\)\n {3}this is rdma-pin-fork-child-exits \(scenarios\/seeds\/rdma-pin-fork-child-exits\.scn\.yaml\), in 4 of its 5 steps$/m);
  const j = JSON.parse(cli('explore', '--kernel', 'v5.8', '--baseline', 'v5.9-rc4', '--reverse', '--depth', '3', '--json').out);
  assert.deepEqual(j.baseline, { profile: 'v5.9-rc4', reverse: true, searched: 'v5.9-rc4', cleanOn: 'v5.8' });
  for (const ce of j.counterexamples) assert.equal(typeof ce.cause.name, 'string');
  const same = cli('explore', '--kernel', 'v5.7', '--baseline', 'v5.7', '--depth', '3');
  assert.equal(same.code, 0, same.out);
  assert.match(same.out, /; nothing violates on v5\.7 that is clean on v5\.7 \([\d,]+ violating sequences checked\)$/m);
  usageError(cli('explore', '--baseline', 'v9'), /--baseline: unknown profile 'v9'/);
  usageError(cli('explore', '--reverse'), /--reverse goes with --baseline KERNEL/);
  usageError(cli('explore', '--baseline', 'v6', '--baseline-set', 'forkEarlyCow=maybe'), /--baseline-set: switch forkEarlyCow/);
});

test('explore --all --out FILE: every counterexample written is replayable by `cowlab run`', () => {
  const out = join(TMP, 'all.scn.yaml');
  const o = cli('explore', '--kernel', 'v5.7', '--depth', '4', '--all', '--out', out, '--json');
  assert.equal(o.code, 1);
  assert.ok(JSON.parse(o.out).counterexamples.length >= 2);
  const run = cli('run', out);
  assert.equal(run.code, 0, run.err);
});

test('explore --json: one document with the stats and each counterexample\'s scenario text', () => {
  const o = cli('explore', '--kernel', 'v5.7', '--kinds', 'leak', '--json');
  assert.equal(o.code, 1);
  const doc = JSON.parse(o.out);
  assert.equal(doc.format, 1);
  assert.equal(doc.command, 'explore');
  assert.equal(doc.profile, 'v5.7');
  assert.equal(doc.status, 'violation');
  assert.ok(doc.stats.states > 0);
  assert.ok(doc.stats.transitions >= doc.stats.states - 1);
  assert.equal(doc.stats.stoppedBy, null);
  assert.equal(typeof doc.stats.reached, 'object');
  assert.equal(doc.counterexamples.length, 1);
  const ce = doc.counterexamples[0];
  assert.equal(ce.steps.length, ce.depth);
  assert.ok(ce.violations.some((v: { kind: string }) => v.kind === 'leak'));
  assert.match(ce.scenario, /^name: counterexample-v5-7-leak$/m);
  assert.doesNotMatch(o.out, /^exploring /m, 'nothing but the document on stdout');
  const clean = JSON.parse(cli('explore', '--kernel', 'v6', '--depth', '2', '--json').out);
  assert.equal(clean.status, 'ok');
  assert.deepEqual(clean.counterexamples, []);
  assert.equal(clean.stats.depthComplete, 2);
});

test('explore --from FILE starts from a scenario\'s end state', () => {
  const from = file(`name: start
steps: |
  P mmap buf 1 rw private
  P write buf[0] = 1
  P fork Q
  Q vmsplice buf[0] as pipe
`, 'from.scn.yaml');
  const o = cli('explore', '--kernel', 'v5.7', '--from', from, '--ops', 'munmap,write,handle-read', '--kinds', 'leak', '--json');
  assert.equal(o.code, 1, o.out);
  const doc = JSON.parse(o.out);
  const ce = doc.counterexamples[0];
  assert.equal(ce.depth, 3, `CVE-2020-29374 from its set-up: munmap, write, read the pipe: ${ce.steps.join('; ')}`);
  assert.match(ce.scenario, /Q vmsplice buf\[0\] as pipe/);
  const out = file(ce.scenario, 'from-ce.scn.yaml');
  assert.equal(cli('run', out).code, 0);
  assert.equal(cli('explore', '--kernel', 'v6', '--from', from, '--ops', 'munmap,write,handle-read', '--kinds', 'leak').code, 0);
});

test('compare --profiles: a user profile may not take a built-in\'s name, nor one defined before (exit 2, FILE:LINE:COL)', () => {
  // `v6` with v5.7's switches would be judged by the outcomes scenarios give the built-in v6.
  const builtin = file('- name: v6\n  base: v5.7\n', 'builtin-name.yaml');
  usageError(cli('compare', SEEDS, '--profiles', builtin), new RegExp(`${escape(builtin)}:1:9: error: 'v6' is a built-in profile: a user profile needs a name of its own`));
  const lts = file('name: "5.10"\nbase: v6\n', 'lts-name.yaml');
  usageError(cli('compare', SEEDS, '--profiles', lts), new RegExp(`${escape(lts)}:1:7: error: '5\\.10' is a built-in profile`));
  const twice = file('- name: mine\n  base: v6\n- name: mine\n  base: v5.7\n', 'twice.yaml');
  usageError(cli('compare', SEEDS, '--profiles', twice), new RegExp(`${escape(twice)}:3:9: error: profile 'mine' is already defined at ${escape(twice)}:1:9`));
  const other = file('name: mine\nbase: v5.9\n', 'other.yaml');
  usageError(cli('compare', SEEDS, '--profiles', other, '--profiles', other), new RegExp(`${escape(other)}:1:7: error: profile 'mine' is already defined at ${escape(other)}:1:7`));
});
