// The command line through main(argv, io) with a capturing io: exit codes (0 pass, 1 fail, 2 bad
// input), messages that name FILE:LINE:COL and never show a stack trace, and the --json document.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { cli, type Outcome, ROOT, tempFiles } from './helpers.js';

const BASIC = join(ROOT, 'scenarios', 'basic');
const { dir: TMP, file } = tempFiles('cowlab-cli-', (n) => `s${n}.scn.yaml`);

const GOOD = `name: good
kernel: v6
outcomes:
  "*": ok
steps: |
  P mmap buf 1
  P write buf[0] = 1
  P fork Q
  Q read buf[0] expect 1
`;

const FAILING = `name: failing
steps: |
  P mmap buf 1
  P read buf[0] expect 5
`;

const CVE = `name: cve
outcomes:
  v6: ok
steps: |
  P mmap buf 1
  P write buf[0] = 1
  P fork Q
  Q vmsplice buf[0] as pipe
  Q munmap buf
  P write buf[0] = 2
  Q read pipe[0] expect 1
`;

/** Bad input: exit 2, the message says `fragment`, and no stack trace is shown. */
function usageError(o: Outcome, fragment: RegExp): void {
  assert.equal(o.code, 2, `exit code (stderr: ${o.err})`);
  assert.match(o.err, fragment);
  assert.doesNotMatch(o.err, /^\s*at /m, 'no stack trace');
  assert.doesNotMatch(o.err, /internal error/);
}

// ---- exit codes ---------------------------------------------------------------------------------

test('run scenarios/basic/ passes: exit 0, a PASS verdict per file', () => {
  const o = cli('run', BASIC, '--quiet');
  assert.equal(o.code, 0, o.out);
  assert.match(o.out, /PASS/);
  assert.doesNotMatch(o.out, /FAIL /);
  assert.match(o.out, /\d+ passed, 0 failed/);
});

test('a scenario whose run matches its outcomes exits 0; the report says why', () => {
  const o = cli('run', file(GOOD));
  assert.equal(o.code, 0);
  assert.match(o.out, /verdict: PASS/);
  assert.match(o.out, /kernel v6/);
  assert.equal(o.err, '');
});

test('a scenario with a violation and no outcomes exits 1, and says how to reproduce it', () => {
  const f = file(FAILING);
  const o = cli('run', f);
  assert.equal(o.code, 1);
  assert.match(o.out, /verdict: FAIL/);
  assert.match(o.out, /expect/);
  assert.ok(o.out.includes(`npx cowlab run ${f} --kernel v6 --trace`));
});

test('several files: exit 1 as soon as one fails, with the count', () => {
  const o = cli('run', file(GOOD), file(FAILING), '--quiet');
  assert.equal(o.code, 1);
  assert.match(o.out, /1 passed, 1 failed/);
});

test('--kernel picks the profile; the file\'s outcomes judge it', () => {
  const f = file(CVE.replace('  v6: ok', '  v6: ok\n  v5.7: [leak]'));
  assert.equal(cli('run', f, '--kernel', 'v5.7').code, 0);
  assert.equal(cli('run', f, '--kernel', 'v6').code, 0);
  assert.equal(cli('run', f, '--kernel', 'v5.9').code, 0, 'v5.9 is not named in outcomes: judged as no outcomes');
});

test('--set makes a what-if kernel judged like its base: v6 with mapcount reuse leaks', () => {
  const f = file(CVE);
  const o = cli('run', f, '--set', 'wpReuse=mapcount', '--json');
  assert.equal(o.code, 1);
  const doc = JSON.parse(o.out);
  assert.equal(doc.results[0].profile, 'v6+wpReuse=mapcount');
  assert.ok(doc.results[0].violations.some((v: { kind: string }) => v.kind === 'leak'));
  assert.equal(cli('run', f).code, 0, 'without the override: ok');
});

// ---- --json -------------------------------------------------------------------------------------

test('--json prints one JSON document with every step of every run', () => {
  const o = cli('run', file(GOOD), file(FAILING), '--json');
  assert.equal(o.code, 1);
  const doc = JSON.parse(o.out);
  assert.equal(doc.format, 1);
  assert.equal(doc.command, 'run');
  assert.equal(doc.results.length, 2);
  assert.deepEqual([doc.passed, doc.failed], [1, 1]);
  const [good, bad] = doc.results;
  assert.ok(Array.isArray(good.steps));
  assert.equal(good.steps.length, 5, 'four steps and the end record');
  assert.equal(good.steps[0].text, 'P mmap buf 1');
  assert.equal(good.status, 'ok');
  assert.equal(good.verdict, 'pass');
  assert.equal(bad.verdict, 'fail');
  assert.equal(bad.violations[0].kind, 'expect');
  assert.equal(bad.violations[0].line, 4);
});

test('--json on bad input: exit 2, and the document carries the errors with their positions', () => {
  const f = file('name: bad\nsteps: |\n  P mmap buf 1\n  P frobnicate buf\n');
  const o = cli('run', f, '--json');
  assert.equal(o.code, 2);
  const doc = JSON.parse(o.out);
  assert.equal(doc.errors.length, 1);
  assert.equal(doc.errors[0].file, f);
  assert.equal(doc.errors[0].line, 4);
  assert.equal(doc.errors[0].col, 5);
});

// ---- bad input: exit 2, FILE:LINE:COL, no stack -------------------------------------------------

test('no command: the help, exit 2; --help and help COMMAND: exit 0', () => {
  const none = cli();
  assert.equal(none.code, 2);
  assert.match(none.out, /usage: cowlab/);
  assert.equal(cli('--help').code, 0);
  const h = cli('help', 'run');
  assert.equal(h.code, 0);
  assert.match(h.out, /usage: cowlab run/);
  assert.equal(cli('help').code, 0);
});

test('help with an unknown command, or more than one, is exit 2 and lists the commands', () => {
  usageError(cli('help', 'bogus'), /cowlab help: unknown command 'bogus'.*run, compare/);
  usageError(cli('help', 'toString'), /unknown command 'toString'/);
  usageError(cli('help', 'run', 'compare'), /at most one command/);
  usageError(cli('toString'), /unknown command 'toString'/);
});

test('an unknown command is exit 2 and lists the commands', () => {
  usageError(cli('frobnicate'), /unknown command 'frobnicate'.*run/);
});

test('an unknown option is exit 2 and names it', () => {
  usageError(cli('run', file(GOOD), '--bogus'), /unknown option '--bogus'/);
  usageError(cli('profiles', '--bogus'), /unknown option '--bogus'/);
});

test('an unknown profile is exit 2, on the command line and in the file (FILE:LINE:COL)', () => {
  usageError(cli('run', file(GOOD), '--kernel', 'v9'), /unknown profile 'v9'.*v5\.7/);
  const f = file(GOOD.replace('kernel: v6', 'kernel: v9'));
  usageError(cli('run', f), new RegExp(`${escape(f)}:2:9: error: unknown profile 'v9'`));
  const g = file(GOOD.replace('"*": ok', 'v99: ok'));
  usageError(cli('run', g), new RegExp(`${escape(g)}:4:3: error: outcomes: unknown profile 'v99'`));
});

test("a what-if kernel in the file with a bad switch, value or base says which, not 'unknown profile' of the whole name", () => {
  const sw = file(GOOD.replace('kernel: v6', 'kernel: v6+nope=1'));
  usageError(cli('run', sw), new RegExp(`${escape(sw)}:2:9: error: kernel 'v6\\+nope=1': unknown switch 'nope' \\(switches: `));
  const val = file(GOOD.replace('kernel: v6', 'kernel: v6+forkEarlyCow=maybe'));
  usageError(cli('run', val), new RegExp(`${escape(val)}:2:9: error: kernel 'v6\\+forkEarlyCow=maybe': switch forkEarlyCow: 'maybe' is not one of true, false$`));
  const base = file(GOOD.replace('kernel: v6', 'kernel: v99+forkEarlyCow=true'));
  usageError(cli('run', base), new RegExp(`${escape(base)}:2:9: error: kernel 'v99\\+forkEarlyCow=true': unknown profile 'v99'`));
  const eq = file(GOOD.replace('kernel: v6', "kernel: '=x'"));
  usageError(cli('run', eq), new RegExp(`${escape(eq)}:2:9: error: '=x': expected a profile name, or PROFILE\\+SWITCH=VALUE`));
});

test('a missing file or an empty directory is exit 2', () => {
  const missing = join(TMP, 'nope.scn.yaml');
  usageError(cli('run', missing), new RegExp(`${escape(missing)}: no such file`));
  const empty = mkdtempSync(join(TMP, 'empty-'));
  usageError(cli('run', empty), /no \*\.scn\.yaml files/);
  usageError(cli('run'), /no scenario given/);
});

test('a malformed scenario is exit 2 with FILE:LINE:COL for each error, and nothing is run', () => {
  const f = file('name: bad\nsteps: |\n  P mmap buf 1\n  P write buf[9] = 1\n  Q read buf[0]\n');
  const o = cli('run', f);
  usageError(o, new RegExp(`${escape(f)}:4:\\d+: error: `));
  assert.match(o.err, new RegExp(`${escape(f)}:5:3: error: unknown process 'Q'`));
  assert.doesNotMatch(o.out, /verdict/);
  const yaml = file('name: bad\nsteps: |\n  P mmap buf 1\n bogus: [\n');
  usageError(cli('run', yaml), new RegExp(`${escape(yaml)}:\\d+:\\d+: error: invalid YAML`));
  const noName = file('steps: |\n  P mmap buf 1\n');
  usageError(cli('run', noName), new RegExp(`${escape(noName)}:\\d+:\\d+: error: .*name`));
});

test('errors of several files are all reported together', () => {
  const a = file('name: a\nsteps: |\n  P munmap buf\n');
  const b = file('name: b\nsteps: |\n  P mmap buf 0\n');
  const o = cli('run', a, b);
  usageError(o, new RegExp(`${escape(a)}:3:`));
  assert.match(o.err, new RegExp(`${escape(b)}:3:`));
});

test('--set with an unknown switch or a bad value is exit 2', () => {
  usageError(cli('run', file(GOOD), '--set', 'wpReuse=bogus'), /wpReuse.*'bogus' is not one of mapcount, pagecount, anon-exclusive/);
  usageError(cli('run', file(GOOD), '--set', 'noSuchSwitch=true'), /unknown switch 'noSuchSwitch'/);
  usageError(cli('run', file(GOOD), '--set', 'wpReuse'), /expected SWITCH=VALUE/);
});

test('a what-if kernel: its "to reproduce" line is accepted by --kernel and gives the same run', () => {
  // v5.9 without early COW at fork is v5.9-rc4's RDMA story again: the child's exit leaves the
  // parent's page pinned but unmapped from the parent (seed 000).
  const rdma = join(ROOT, 'scenarios', 'seeds', 'rdma-pin-fork-child-exits.scn.yaml');
  const o = cli('run', rdma, '--kernel', 'v5.9', '--set', 'forkEarlyCow=false');
  assert.equal(o.code, 1, o.out);
  const line = /to reproduce: npx cowlab run (\S+) (.*)$/m.exec(o.out);
  assert.ok(line, o.out);
  assert.match(line[2]!, /--kernel v5\.9\+forkEarlyCow=false/);
  const again = cli('run', line[1]!, ...line[2]!.split(' ').filter((w) => w !== '--trace'));
  assert.equal(again.code, 1, again.err);
  assert.equal(again.out, o.out, 'the same run');
  const j = JSON.parse(cli('run', rdma, '--kernel', 'v5.9+forkEarlyCow=false', '--json').out);
  assert.equal(j.results[0].profile, 'v5.9+forkEarlyCow=false');
  assert.deepEqual(j.results[0].expected, { kind: 'ok' }, 'judged by the outcomes of v5.9');
  // A base whose own name holds '+', and several switches.
  const k = JSON.parse(cli('run', rdma, '--kernel', 'v5.9-rc4+pin-cow+forkEarlyCow=true,gupCowBreak=none', '--json').out);
  assert.equal(k.results[0].profile, 'v5.9-rc4+pin-cow+forkEarlyCow=true,gupCowBreak=none');
  assert.equal(k.results[0].status, 'ok', 'early COW at fork keeps the pin with the parent');
  usageError(cli('run', rdma, '--kernel', 'v9+forkEarlyCow=false'), /--kernel: unknown profile 'v9'/);
  usageError(cli('run', rdma, '--kernel', 'v5.9+nope=1'), /--kernel: unknown switch 'nope'/);
  usageError(cli('run', rdma, '--kernel', '=x'), /--kernel: '=x': expected a profile name/);
});

// ---- profiles -----------------------------------------------------------------------------------

test('profiles lists every built-in profile, v5.7 and v6 among them', () => {
  const o = cli('profiles');
  assert.equal(o.code, 0);
  assert.match(o.out, /^v5\.7 /m);
  assert.match(o.out, /^v6 /m);
  assert.match(o.out, /^v5\.9-rc4\+pin-cow /m);
  const json = JSON.parse(cli('profiles', '--json').out);
  assert.equal(json.format, 1);
  assert.equal(json.command, 'profiles');
  assert.deepEqual(json.switches.wpReuse, ['mapcount', 'pagecount', 'anon-exclusive']);
  const names = json.profiles.map((p: { name: string }) => p.name);
  for (const n of ['v5.7', 'v5.8', 'v5.9-rc4', 'v5.9', 'v5.19', 'v6.2', 'v6', 'cowpt-rfc', 'odf', 'odf-2021']) assert.ok(names.includes(n), n);
});

test('profiles NAME shows its switches; an unknown name is exit 2', () => {
  const o = cli('profiles', 'v5.9');
  assert.equal(o.code, 0);
  assert.match(o.out, /wpReuse\s+pagecount/);
  assert.match(o.out, /forkEarlyCow\s+true/);
  const j = JSON.parse(cli('profiles', 'v6', '--json').out);
  assert.equal(j.format, 1);
  assert.equal(j.command, 'profiles');
  assert.equal(j.profile.name, 'v6');
  assert.equal(j.profile.wpReuse, 'anon-exclusive');
  usageError(cli('profiles', 'v9'), /unknown profile 'v9'/);
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
