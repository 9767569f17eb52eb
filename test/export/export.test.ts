// `cowlab export`: the C reproducer of a scenario. Its command line and what the file says about
// itself, then the point: on this machine's kernel every exported program, compiled with gcc
// (-Wall -Wextra -Werror), gives the verdicts `cowlab oracle` gives on the same checks.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import { exportScenario } from '../../src/export/export.js';
import { oracleScenario, type OracleResult } from '../../src/oracle/oracle.js';
import { assumeFacts } from '../../src/oracle/probed.js';
import { usesThp } from '../../src/oracle/thp.js';
import type { Scenario } from '../../src/scenario/index.js';
import { cli } from '../cli/helpers.js';
import { openLive, parse, scenariosIn, v6 } from '../oracle/helpers.js';

const work = mkdtempSync(join(tmpdir(), 'cowlab-export-'));
after(() => rmSync(work, { recursive: true, force: true }));

const DIRS = ['scenarios/basic', 'scenarios/seeds', 'scenarios/kernel-tests'];

const RO_PIN = `name: ro-pin
steps: |
  P mmap a 2 rw private
  P write a = 7
  P pin a[0] as h ro longterm
  P fork C
  C read a[0] expect 7
`;

test('export --help, and bad input exits 2 naming file:line:col', () => {
  const h = cli('export', '--help');
  assert.equal(h.code, 0);
  assert.match(h.out, /usage: cowlab export FILE/);
  assert.match(cli('help', 'export').out, /usage: cowlab export FILE/);
  assert.match(cli('--help').out, /export FILE/);
  const bad = join(work, 'bad.scn.yaml');
  writeFileSync(bad, 'name: bad\nsteps: |\n  P mmap a 2 rw private\n  P write b = 1\n');
  const r = cli('export', bad, '-o', join(work, 'bad.c'));
  assert.equal(r.code, 2);
  assert.match(r.err, new RegExp(`${basename(bad)}:4:\\d+: error`));
  assert.equal(cli('export', join(work, 'missing.scn.yaml')).code, 2);
  assert.equal(cli('export').code, 2);
  const good = join(work, 'ro-pin.scn.yaml');
  writeFileSync(good, RO_PIN);
  const k = cli('export', good, '--kernel', 'v99');
  assert.equal(k.code, 2);
  assert.match(k.err, /unknown profile 'v99'/);
  assert.equal(cli('export', good, '--json').code, 2, '--json needs -o FILE');
});

test('the program says what made it, how to build it, and which steps it skips and why', () => {
  const file = join(work, 'ro-pin.scn.yaml');
  writeFileSync(file, RO_PIN);
  const r = cli('export', file, '-o', '-');
  assert.equal(r.code, 0);
  const c = r.out;
  assert.match(c, /ro-pin: a reproducer exported by cowlab \d+\.\d+\.\d+/);
  assert.match(c, /kernel profile: v6/);
  assert.match(c, /gcc -O2 -o repro repro\.c && sudo \.\/repro/);
  assert.match(c, /line 5: skipped: R\/O longterm pins have no lasting user-space path/);
  assert.match(c, /zero page: {4}model v6\n \*   no zero page: model v6\+mmForbidsZeropage=true/);
  // one file: no include of anything but system headers
  assert.deepEqual(c.match(/^#include "[^"]*"/gm), null);
  assert.match(c, /SYS_io_uring_setup|__NR_io_uring_setup/);
  const out = join(work, 'ro-pin.c');
  const j = cli('export', file, '-o', out, '--kernel', 'v5.8', '--json');
  assert.equal(j.code, 0);
  const doc = JSON.parse(j.out) as { profile: string; skipped: { line: number }[]; variants: { profile: string }[] };
  assert.equal(doc.profile, 'v5.8');
  assert.deepEqual(doc.skipped.map((s) => s.line), [5]);
  assert.match(readFileSync(out, 'utf8'), /kernel profile: v5\.8/);
});

/** The program's verdict lines: `PASS line 12 [read] P a[0]: ...`. */
interface CLine {
  verdict: 'PASS' | 'FAIL' | 'SKIP';
  key: string;
}

function parseRun(out: string): CLine[] {
  const lines: CLine[] = [];
  for (const l of out.split('\n')) {
    const m = /^(PASS|FAIL|SKIP) line (\d+) \[([a-z-]+)\] (.*?): /.exec(l);
    if (m) lines.push({ verdict: m[1] as CLine['verdict'], key: `${m[2]} ${m[3]} ${m[4]}` });
  }
  return lines;
}

/** key (with its occurrence number) -> PASS/FAIL, for the compared checks. */
function numbered(items: { key: string; v: string }[]): Map<string, string> {
  const seen = new Map<string, number>();
  const out = new Map<string, string>();
  for (const { key, v } of items) {
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (v !== 'SKIP') out.set(`${key} #${n}`, v);
  }
  return out;
}

function oracleVerdicts(r: OracleResult): Map<string, string> {
  const items: { key: string; v: string }[] = [];
  for (const s of r.steps) {
    for (const row of s.rows) items.push({ key: `${s.line} ${row.kind} ${row.what}`, v: row.verdict === 'agree' ? 'PASS' : row.verdict === 'disagree' ? 'FAIL' : 'SKIP' });
  }
  return numbered(items);
}

function run(cmd: string, args: string[], timeoutMs: number, env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGTERM', env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

/** fn on every item, at most `n` at a time; one promise per item, in order. */
function pool<T, R>(items: T[], n: number, fn: (x: T) => Promise<R>): Promise<R>[] {
  let running = 0;
  const waiting: (() => void)[] = [];
  return items.map(async (x) => {
    if (running >= n) await new Promise<void>((go) => waiting.push(go));
    running++;
    try {
      return await fn(x);
    } finally {
      running--;
      waiting.shift()?.();
    }
  });
}

test('every exported reproducer agrees with the oracle on the live kernel', async (t) => {
  if (spawnSync('gcc', ['--version']).status !== 0) return t.skip('no gcc on this machine');
  const live = openLive();
  if (!live.session) return t.skip(live.reason);
  const session = live.session;
  const scenarios: Scenario[] = DIRS.flatMap((d) => scenariosIn(d));
  assert.ok(scenarios.length >= 50, `the three folders hold ${scenarios.length} scenarios`);

  // Export and compile every one (-O0 keeps the suite quick; one at -O2, where gcc's
  // format-truncation analysis runs, further down).
  const differ: number[] = [];
  const progs = scenarios.map((sc, i) => {
    const base = join(work, basename(sc.file, '.scn.yaml'));
    const e = exportScenario(sc, v6());
    if (e.variantsDiffer) differ.push(i);
    writeFileSync(`${base}.c`, e.source);
    return base;
  });
  // Compiling (two at a time) runs beside the runs, which mostly wait on the kernel.
  const compiled = pool(progs, 2, (b) => run('gcc', ['-O0', '-Wall', '-Wextra', '-Werror', '-o', b, `${b}.c`], 60_000));
  let checks = 0;
  let agreeing = 0;
  let skippedScenarios = 0;
  try {
    for (let i = 0; i < scenarios.length; i++) {
      const sc = scenarios[i]!;
      const cc = await compiled[i]!;
      assert.equal(cc.code, 0, `${sc.file} does not compile:\n${cc.err}`);
      // The reproducer does not replay THPs (its `mmap ... thp` says so); the oracle does: THP
      // scenarios are compared by the oracle alone (test/oracle/thp.test.ts).
      if (usesThp(sc)) continue;
      const oracle = oracleScenario(session, sc, v6());
      const r = await run(progs[i]!, [], 120_000);
      const where = `${sc.file}:\n${r.out}${r.err}`;
      if (oracle.status === 'skipped') {
        skippedScenarios++;
        assert.equal(r.code, 2, `the oracle skips ${sc.file}; the program must say it could not run: ${where}`);
        assert.match(r.out, /^SKIP scenario: /m, where);
        continue;
      }
      assert.notEqual(oracle.status, 'error', `the oracle failed on ${sc.file}: ${oracle.error}`);
      assert.match(r.out, /^SUMMARY: \d+ PASS, \d+ FAIL, \d+ SKIP$/m, where);
      const mine = numbered(parseRun(r.out).map((l) => ({ key: l.key, v: l.verdict })));
      const theirs = oracleVerdicts(oracle);
      assert.deepEqual(mine, theirs, `verdicts differ on ${where}`);
      const fails = [...mine.values()].filter((v) => v === 'FAIL').length;
      assert.equal(r.code, fails > 0 ? 1 : mine.size === 0 ? 2 : 0, `exit status of ${where}`);
      checks += theirs.size;
      agreeing += [...mine].filter(([k, v]) => theirs.get(k) === v).length;
    }
  } finally {
    session.close();
  }
  // The other kind of kernel, taken as given on both sides (oracle --zero-page, the program's
  // COWLAB_ZERO_PAGE): the expectations for it, in the same file, give the oracle's verdicts too.
  const other = openLive();
  assert.ok(other.session, other.reason);
  const forced = !other.session.facilities.zeroPage;
  assumeFacts(other.session.facilities, { zeroPage: forced });
  let otherChecks = 0;
  try {
    for (const i of differ) {
      const sc = scenarios[i]!;
      if (usesThp(sc)) continue;
      const oracle = oracleScenario(other.session, sc, v6());
      const r = await run(progs[i]!, [], 120_000, { COWLAB_ZERO_PAGE: forced ? 'yes' : 'no' });
      const where = `${sc.file} (zero page forced ${forced ? 'yes' : 'no'}):\n${r.out}${r.err}`;
      assert.match(r.out, /forced by COWLAB_ZERO_PAGE/, where);
      if (oracle.status === 'skipped') {
        assert.match(r.out, /^SKIP scenario: /m, where);
        continue;
      }
      const theirs = oracleVerdicts(oracle);
      assert.deepEqual(numbered(parseRun(r.out).map((l) => ({ key: l.key, v: l.verdict }))), theirs, `verdicts differ on ${where}`);
      otherChecks += theirs.size;
    }
  } finally {
    other.session.close();
  }
  assert.ok(differ.length >= 3, `only ${differ.length} scenarios depend on the zero page`);
  const o2 = await run('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', `${progs[0]}-O2`, `${progs[0]}.c`], 60_000);
  assert.equal(o2.code, 0, `-O2:\n${o2.err}`);
  assert.ok(checks > 200, `only ${checks} checks compared`);
  t.diagnostic(`${scenarios.length} scenarios exported and compiled; ${scenarios.length - skippedScenarios} run (${skippedScenarios} skipped by both); ${agreeing}/${checks} checks give the oracle's verdict; with the zero page forced ${forced ? 'yes' : 'no'}, ${differ.length} scenarios and ${otherChecks} checks agree too`);
});

test('a disagreement is a FAIL line and exit status 1', async (t) => {
  if (spawnSync('gcc', ['--version']).status !== 0) return t.skip('no gcc on this machine');
  const live = openLive();
  if (!live.session) return t.skip(live.reason);
  live.session.close();
  // An expectation no kernel meets: the model's answer in the program's table changed to a
  // value nobody wrote (the kernel reads back the 5 that was written).
  const sc = parse('name: wrong\nsteps: |\n  P mmap a 1 rw private\n  P write a = 5\n  P fork C\n  C read a[0] expect 5\n');
  const { source } = exportScenario(sc, v6());
  const broken = source.replace('{ "read", "C a[0]", "5" }', '{ "read", "C a[0]", "6" }');
  assert.notEqual(broken, source);
  const b = join(work, 'wrong');
  writeFileSync(`${b}.c`, broken);
  assert.equal((await run('gcc', ['-O0', '-Wall', '-Wextra', '-Werror', '-o', b, `${b}.c`], 60_000)).code, 0);
  const r = await run(b, [], 60_000);
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /^FAIL line 6 \[read\] C a\[0\]: expected 6, the kernel shows 5$/m);
  assert.match(r.out, /^SUMMARY: 2 PASS, 1 FAIL, 0 SKIP$/m);
});

test('not root: frame numbers are SKIP with the reason, values still compared, exit status 2', async (t) => {
  if (spawnSync('gcc', ['--version']).status !== 0) return t.skip('no gcc on this machine');
  if (process.getuid?.() !== 0) return t.skip('needs root, to run the program as another user');
  if (spawnSync('setpriv', ['--version']).status !== 0) return t.skip('no setpriv (util-linux) to drop root');
  const sc = parse('name: unprivileged\nsteps: |\n  P mmap a 1 rw private\n  P write a = 5\n  P fork C\n  expect P a[0] same-frame C a[0]\n  C read a[0] expect 5\n');
  const dir = mkdtempSync(join(tmpdir(), 'cowlab-export-nobody-'));
  try {
    chmodSync(dir, 0o755);
    const b = join(dir, 'unprivileged');
    writeFileSync(`${b}.c`, exportScenario(sc, v6()).source);
    assert.equal((await run('gcc', ['-O0', '-Wall', '-Wextra', '-Werror', '-o', b, `${b}.c`], 60_000)).code, 0);
    const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', b], 60_000);
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.out, /^# .*; not root;/m);
    assert.match(r.out, /^SKIP line 6 \[frame\] P a\[0\] vs C a\[0\]: pagemap hides frame numbers from this user/m);
    assert.match(r.out, /^PASS line 7 \[read\] C a\[0\]: 5$/m);
    assert.match(r.out, /^SUMMARY: 3 PASS, 0 FAIL, 1 SKIP$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a slow pin over a page the userfaultfd monitor protected: io_uring\'s may wait for the monitor, so the program skips it as the oracle does; the model\'s pin fails (EFAULT) and the note says so; the page stays protected on both sides, the device write through the handle nobody holds is skipped, nothing FAILs', async (t) => {
  if (spawnSync('gcc', ['--version']).status !== 0) return t.skip('no gcc on this machine');
  const live = openLive();
  if (!live.session) return t.skip(live.reason);
  const session = live.session;
  try {
    if (!session.facilities.uffdWp) return t.skip(session.facilities.uffdWhy ?? 'no userfaultfd write-protect here');
    const sc = parse(`name: uffd-pin-slow
steps: |
  P mmap a 2 rw private
  P write a = 1
  P uffd register a wp
  P uffd protect a[0]
  P pin a as h rw longterm
  expect P a[0] uffd-wp
  P pin a[1] as h2 rw longterm
  device write h2[0] = 6
  P read a[1] expect 6
  device write h[0] = 7
  P write a[0] = 2
  P read a[0] expect 2
  expect stat frames_used == 2
`);
    const b = join(work, 'uffd-pin-slow');
    writeFileSync(`${b}.c`, exportScenario(sc, v6()).source);
    assert.equal((await run('gcc', ['-O0', '-Wall', '-Wextra', '-Werror', '-o', b, `${b}.c`], 60_000)).code, 0);
    const r = await run(b, [], 60_000);
    assert.match(r.out, /^SKIP line 7 \[gup\] P pins a\[\*\]: .*FAULT_FLAG_ALLOW_RETRY/m, r.out);
    assert.match(r.out, /^PASS line 8 \[uffd-wp\] P a\[0\]: uffd-wp$/m, 'the kernel\'s page stays protected: nothing pinned it');
    assert.match(r.out, /^PASS line 9 \[gup\] P pins a\[1\]: ok$/m, 'a slow pin of an unprotected page is replayed');
    // The model's device wrote nothing through h (it has none): values stay comparable.
    assert.match(r.out, /^PASS line 14 \[read\] P a\[0\]: 2$/m);
    // The note says what the model did, from its own answer (its page is protected too).
    assert.match(r.out, /^SKIP line 15 \[stat\] frames_used: the model's GUP for h \(line 7\) failed with EFAULT \(no handle on either side\): /m);
    assert.doesNotMatch(r.out, /^FAIL /m, r.out);
    assert.equal(r.code, 0, r.out);
    const oracle = oracleScenario(session, sc, v6());
    assert.deepEqual(numbered(parseRun(r.out).map((l) => ({ key: l.key, v: l.verdict }))), oracleVerdicts(oracle), r.out);
  } finally {
    session.close();
  }
});
