// Defects a fresh-eyes review of the command line found, each a test that failed before its fix:
// bad values that were accepted (an empty --ops, --kinds or --kernels), an --out that failed only
// after the search (an internal error), a --profiles directory that crashed `serve`, what-if names
// `explore` refused, parseArgs's own messages, progress of long compare and run, and help texts
// that left out options and exit statuses.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, type Outcome, ROOT, tempFiles } from './helpers.js';
import { main } from '../../src/cli/main.js';

const BIN = join(ROOT, 'bin', 'cowlab.js');
const SEEDS = join(ROOT, 'scenarios', 'seeds');
const { dir: TMP } = tempFiles('cowlab-review-', (n) => `s${n}.scn.yaml`);

/** Bad input: exit 2, the message says `fragment` on one line, no stack trace, no internal error. */
function usageError(o: Outcome, fragment: RegExp): void {
  assert.equal(o.code, 2, `exit code (stderr: ${o.err})`);
  assert.match(o.err, fragment);
  assert.doesNotMatch(o.err, /^\s*at /m, 'no stack trace');
  assert.doesNotMatch(o.err, /internal error/);
}

test('explore --out naming a directory or a missing folder: exit 2 before the search, not an internal error after it', () => {
  const d = join(TMP, 'found.scn.yaml');
  mkdirSync(d);
  for (const out of [d, join(TMP, 'no-such-folder', 'x.scn.yaml')]) {
    const o = cli('explore', '--kernel', 'v5.9-rc4', '--depth', '3', '--out', out);
    usageError(o, /--out: /);
    assert.doesNotMatch(o.out, /searched/, 'refused before the search');
  }
});

test('explore with no operation (--ops "") or no kind (--kinds ","): exit 2, not a search of the start state called a bound', () => {
  usageError(cli('explore', '--ops', ''), /--ops: no operation given/);
  usageError(cli('explore', '--ops', ' , '), /--ops: no operation given/);
  usageError(cli('explore', '--kinds', ','), /--kinds: no violation kind given/);
});

test('compare --kernels "": exit 2, not an empty matrix that exits 0', () => {
  usageError(cli('compare', SEEDS, '--kernels', ''), /--kernels: no profile given/);
});

test('explore takes a what-if name as run prints it: the same search as --kernel BASE --set', () => {
  const named = cli('explore', '--kernel', 'v5.9+forkEarlyCow=false', '--depth', '3', '--json');
  const set = cli('explore', '--kernel', 'v5.9', '--set', 'forkEarlyCow=false', '--depth', '3', '--json');
  assert.equal(named.code, set.code, named.err);
  const a = JSON.parse(named.out);
  const b = JSON.parse(set.out);
  assert.equal(a.profile, 'v5.9+forkEarlyCow=false');
  assert.deepEqual([a.profile, a.stats.states, a.stats.transitions, a.counterexamples.map((c: { scenario: string }) => c.scenario)],
    [b.profile, b.stats.states, b.stats.transitions, b.counterexamples.map((c: { scenario: string }) => c.scenario)]);
  const base = cli('explore', '--kernel', 'v5.9-rc4', '--baseline', 'v5.8+forkEarlyCow=false', '--depth', '2');
  assert.notEqual(base.code, 2, base.err);
  usageError(cli('explore', '--kernel', 'v5.9+forkEarlyCow=maybe'), /--kernel: switch forkEarlyCow/);
});

test('serve --profiles naming a directory or a malformed file: exit 2 with the file, before serving', () => {
  usageError(cli('serve', SEEDS, '--port', '0', '--profiles', TMP), /cannot read profile file: a directory/);
  const bad = join(TMP, 'bad-profile.yaml');
  spawnSync('sh', ['-c', `printf 'name: [x\\n' > '${bad}'`]);
  usageError(cli('serve', SEEDS, '--port', '0', '--profiles', bad), /bad-profile\.yaml:\d+:\d+: error/);
});

test("an option's missing or dashed value is said in one line of cowlab's words, not parseArgs's", () => {
  const cases: [string[], RegExp][] = [
    [['explore', '--depth', '-1'], /^cowlab explore: --depth needs a value; one that starts with '-' is written --depth=VALUE/],
    [['run', 'x.scn.yaml', '--kernel'], /^cowlab run: --kernel needs a value/],
    [['export', 'x.scn.yaml', '-o'], /^cowlab export: -o, --output needs a value/],
    [['run', 'x.scn.yaml', '--quiet=1'], /^cowlab run: --quiet takes no value/],
  ];
  for (const [argv, re] of cases) {
    const o = cli(...argv);
    usageError(o, re);
    assert.equal(o.err.split('\n').length, 1, o.err);
    assert.doesNotMatch(o.err, /Option '|<value>/, o.err);
  }
});

test('compare and run of several files with --progress: a line on stderr per scenario done', () => {
  const files = ['cve-2020-29374-vmsplice-leak.scn.yaml', 'rdma-pin-fork-child-exits.scn.yaml'].map((f) => join(SEEDS, f));
  const c = spawnSync(process.execPath, [BIN, 'compare', ...files, '--kernels', 'v5.7,v6', '--progress'], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stderr, /^progress: compare: 1 of 2 scenario\(s\), [\d.]+ s \(.*cve-2020-29374-vmsplice-leak\.scn\.yaml\)$/m);
  assert.match(c.stderr, /^progress: compare: 2 of 2 scenario\(s\)/m);
  assert.doesNotMatch(c.stdout, /progress/);
  const r = spawnSync(process.execPath, [BIN, 'run', ...files, '--quiet', '--progress'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.match(/^progress: run: \d of 2 scenario\(s\)/gm)?.length, 2, r.stderr);
  // Without --progress and without a terminal, nothing on stderr.
  const q = spawnSync(process.execPath, [BIN, 'compare', ...files, '--kernels', 'v6'], { encoding: 'utf8' });
  assert.equal(q.stderr, '');
});

test('every command\'s --help lists its options with -h, --help and its exit status; 70 (an internal error) is documented', () => {
  for (const c of ['run', 'compare', 'explore', 'profiles', 'oracle', 'export', 'serve']) {
    const h = cli(c, '--help');
    assert.equal(h.code, 0, c);
    assert.match(h.out, /\noptions:\n/, `${c} --help: no options`);
    assert.match(h.out, /^ {2}-h, --help {2,}this text$/m, `${c} --help: no -h, --help`);
    assert.match(h.out, /\nexit status: /, `${c} --help: no exit status`);
  }
  for (const c of ['run', 'compare', 'explore']) assert.match(cli(c, '--help').out, /\b70 (an\s+internal\s+error|some cell is an ERROR)/, `${c} --help: exit 70`);
  assert.match(cli('--help').out, /\b70 an internal\s+error/);
  assert.match(cli('--help').out, /^ +cowlab --version$/m, 'the main help names --version');
  assert.equal(cli('--version').out, 'cowlab 0.1.0');
  assert.match(readFileSync(join(ROOT, 'README.md'), 'utf8'), /\b70 when cowlab itself failed/);
});

test('a pin_bias past 16384 is refused at its line (two pins at 2^30 wrapped the 32-bit refcount: a false accounting violation)', () => {
  const { file } = tempFiles('cowlab-review-bias-', () => 'bias.scn.yaml');
  const f = file('name: bias\nconfig:\n  pin_bias: 1073741824\nsteps: |\n  P mmap buf 1\n  P write buf[0] = 1\n  P pin buf[0] as a\n  P pin buf[0] as b\n');
  usageError(cli('run', f), /bias\.scn\.yaml:3:13: error: expected 'pin_bias' to be at most 16384/);
  const ok = file('name: bias\nconfig:\n  pin_bias: 16384\nsteps: |\n  P mmap buf 1\n  P write buf[0] = 1\n  P pin buf[0] as a\n  P pin buf[0] as b\n', 'ok.scn.yaml');
  assert.equal(cli('run', ok).code, 0);
});

test('expect stat with an integer too large to compare exactly: the message gives the range, not "expected an integer"', () => {
  const { file } = tempFiles('cowlab-review-stat-', () => 'stat.scn.yaml');
  const f = file('name: stat\nsteps: |\n  P mmap buf 1\n  expect stat cow_copies == 99999999999999999999\n');
  usageError(cli('run', f), /stat\.scn\.yaml:4:29: error: expected an integer from -9007199254740991 to 9007199254740991 after '=='/);
});

test('explore --from a scenario n/a on the kernel searched (or the baseline): exit 2 at the step it lacks, not a search from a truncated start', () => {
  const from = join(ROOT, 'scenarios', 'kernel-tests', 'hmm-exclusive-cow.scn.yaml');
  const o = cli('explore', '--kernel', 'v5.9', '--from', from, '--depth', '1');
  usageError(o, /hmm-exclusive-cow\.scn\.yaml:\d+:\d+: error: --from: the start scenario is n\/a on v5\.9 \(--kernel\) at this step: .*device-exclusive/);
  assert.doesNotMatch(o.out, /searched/);
  usageError(cli('explore', '--kernel', 'v6', '--baseline', 'v5.9', '--from', from, '--depth', '1'), /n\/a on v5\.9 \(--baseline\)/);
  assert.equal(cli('explore', '--kernel', 'v6', '--from', from, '--depth', '1').code, 0);
});

test('a misspelt profile name gets a did-you-mean, on the command line and in the file (kernel:, outcomes)', () => {
  usageError(cli('run', join(SEEDS, 'cve-2020-29374-vmsplice-leak.scn.yaml'), '--kernel', 'v5.9rc4'), /unknown profile 'v5\.9rc4': did you mean 'v5\.9-rc4'\? \(known: v5\.7/);
  usageError(cli('compare', SEEDS, '--kernels', 'v5.7,v5.19x'), /--kernels: unknown profile 'v5\.19x': did you mean 'v5\.19'\?/);
  usageError(cli('explore', '--kernel', 'v5.9rc4'), /did you mean 'v5\.9-rc4'\?/);
  usageError(cli('profiles', 'v5.9rc4'), /did you mean 'v5\.9-rc4'\?/);
  const { file } = tempFiles('cowlab-review-prof-', () => 'prof.scn.yaml');
  const f = file('name: prof\nkernel: v5.19.1\noutcomes:\n  v5.7x: ok\nsteps: |\n  P mmap b 1\n');
  const o = cli('run', f);
  usageError(o, /prof\.scn\.yaml:2:9: error: unknown profile 'v5\.19\.1': did you mean 'v5\.19'\?/);
  assert.match(o.err, /prof\.scn\.yaml:4:3: error: outcomes: unknown profile 'v5\.7x': did you mean 'v5\.7'\?/);
});

test("a switch without a value: '--set: 'x': expected SWITCH=VALUE', not '--set: --set ...' (nor '--kernel: --set ...' for a what-if name)", () => {
  const f = join(SEEDS, 'cve-2020-29374-vmsplice-leak.scn.yaml');
  usageError(cli('run', f, '--set', 'forkEarlyCow'), /^cowlab run: --set: 'forkEarlyCow': expected SWITCH=VALUE$/);
  usageError(cli('run', f, '--kernel', 'v5.9+forkEarlyCow=true,gupCowBreak'), /^cowlab run: --kernel: 'gupCowBreak': expected SWITCH=VALUE$/);
});

test('an internal error under --json still prints a JSON document (error: internal error ...), exit 70', () => {
  // The failure is injected where every command ends: the first write of its output throws.
  const out: string[] = [];
  const err: string[] = [];
  let first = true;
  const io = {
    out: (t: string) => {
      if (first) {
        first = false;
        throw new Error('injected');
      }
      out.push(t);
    },
    err: (t: string) => void err.push(t),
  };
  const code = main(['profiles', '--json'], io);
  assert.equal(code, 70);
  const doc = JSON.parse(out.join('\n'));
  assert.deepEqual(doc, { format: 1, error: 'internal error: injected', errors: [] });
  assert.match(err.join('\n'), /cowlab: internal error: injected/);
});

test('a file that cannot be opened says why in words, with the errno (it said only ENOENT)', () => {
  const missing = join(TMP, 'no-such.scn.yaml');
  usageError(cli('explore', '--from', missing), /no-such\.scn\.yaml: error: cannot read: no such file or directory \(ENOENT\)$/);
  usageError(cli('run', SEEDS, '--profiles', missing), /no-such\.scn\.yaml: cannot read profile file: no such file or directory \(ENOENT\)$/);
  usageError(cli('explore', '--out', join(TMP, 'no-such-dir', 'x.scn.yaml')), /--out: cannot write into '.*no-such-dir': no such file or directory \(ENOENT\)$/);
  usageError(cli('export', join(SEEDS, 'cve-2020-29374-vmsplice-leak.scn.yaml'), '-o', join(TMP, 'no-such-dir', 'x.c')), /cowlab export: cannot write .*x\.c: no such file or directory \(ENOENT\)$/);
});

test('profiles NAME takes a what-if name as a run prints it, and shows its switches (it was an unknown profile)', () => {
  const o = cli('profiles', 'v5.9+forkEarlyCow=false');
  assert.equal(o.code, 0, o.err);
  assert.match(o.out, /^v5\.9\+forkEarlyCow=false: v5\.9 with forkEarlyCow=false\n/);
  assert.match(o.out, /\n {4}forkEarlyCow {9}false /);
  assert.equal(JSON.parse(cli('profiles', 'v5.9+forkEarlyCow=false', '--json').out).profile.forkEarlyCow, false);
  usageError(cli('profiles', 'v5.9+forkEarlyCow=maybe'), /^cowlab profiles: switch forkEarlyCow: 'maybe' is not one of true, false$/);
  usageError(cli('profiles', 'v5.9rc4'), /^cowlab profiles: unknown profile 'v5\.9rc4': did you mean 'v5\.9-rc4'\?/);
});

test('explore --from FILE with --pages N: the page operations touch the first N pages of each region (a 512-page hugetlb start has 2 choices per operation, not 512)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cowlab-pages-'));
  const f = join(dir, 'huge-start.scn.yaml');
  writeFileSync(f, 'name: huge-start\nconfig:\n  hugepages: 2\nsteps: |\n  P mmap h 512 rw private hugetlb\n  P write h[0] = 1\n');
  const args = ['explore', '--from', f, '--ops', 'write,read,fork', '--depth', '1', '--json'];
  const limited = cli(...args, '--pages', '2');
  assert.equal(limited.code, 0, limited.err);
  const all = cli(...args);
  assert.equal(all.code, 0, all.err);
  const states = (o: { out: string }): number => JSON.parse(o.out).stats.states;
  // One operation from the start: a write of each page touched, a read of each, a fork.
  assert.ok(states(limited) <= 6, `limited: ${states(limited)} states`);
  assert.ok(states(all) > 500, `all pages: ${states(all)} states, limited ${states(limited)}`);
  usageError(cli(...args, '--pages', '0'), /--pages/);
});

test('run --quiet with --trace or --stats: refused (they were accepted and showed nothing)', () => {
  const f = join(ROOT, 'scenarios', 'basic', 'fork-isolation.scn.yaml');
  usageError(cli('run', f, '--quiet', '--trace'), /^cowlab run: --quiet prints only the verdict line per file, so --trace would show nothing: give one or the other$/);
  usageError(cli('run', f, '--stats', '--quiet'), /so --stats would show nothing/);
  assert.equal(cli('run', f, '--quiet', '--trace', '--json').code, 0, 'with --json they go into the document');
});
