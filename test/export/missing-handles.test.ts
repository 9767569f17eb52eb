// Handles the exported program cannot take (a short or R/O pin, a gup, a device-exclusive
// grant): the note that stops the comparison of frames and counters after them says what the
// model holds, from the model's own answer written into the program (probeModel's, as the
// oracle's replay gets it), and a device write through a handle the model does not hold leaves
// values compared. Each program's SKIP reasons are the oracle's, word for word.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Profile } from '../../src/core/profile.js';
import { exportScenario } from '../../src/export/export.js';
import { oracleScenario } from '../../src/oracle/oracle.js';
import { builtinProfile } from '../../src/profiles/resolve.js';
import { openLive, parse, v6 } from '../oracle/helpers.js';

const work = mkdtempSync(join(tmpdir(), 'cowlab-export-missing-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The program's verdict lines, `line kind what` -> [verdict, the rest (its reason where SKIP)]. */
function verdicts(out: string): Map<string, [string, string]> {
  const m = new Map<string, [string, string]>();
  for (const l of out.split('\n')) {
    const x = /^(PASS|FAIL|SKIP) line (\d+) \[([a-z-]+)\] (.*?): (.*)$/.exec(l);
    if (x) m.set(`${x[2]} ${x[3]} ${x[4]}`, [x[1]!, x[5]!]);
  }
  return m;
}

/**
 * The scenario exported on `profile`, compiled and run on this machine; its verdicts, after
 * checking that nothing FAILs and every SKIP reason is the oracle's for the same check. Null
 * (with t.skip) where this machine cannot run it.
 */
function runBoth(t: { skip(why: string): void }, name: string, profile: Profile, lines: string[]): Map<string, [string, string]> | null {
  if (spawnSync('gcc', ['--version']).status !== 0) {
    t.skip('no gcc on this machine');
    return null;
  }
  const live = openLive();
  if (!live.session) {
    t.skip(live.reason);
    return null;
  }
  const sc = parse(`name: ${name}\nsteps: |\n${lines.map((l) => `  ${l}\n`).join('')}`);
  let oracle;
  try {
    oracle = oracleScenario(live.session, sc, profile);
  } finally {
    live.session.close();
  }
  if (oracle.status === 'skipped') {
    t.skip(oracle.skip ?? '');
    return null;
  }
  const b = join(work, name);
  writeFileSync(`${b}.c`, exportScenario(sc, profile).source);
  const cc = spawnSync('gcc', ['-O0', '-Wall', '-Wextra', '-Werror', '-o', b, `${b}.c`], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  const r = spawnSync(b, [], { encoding: 'utf8', timeout: 60_000 });
  const mine = verdicts(r.stdout);
  assert.doesNotMatch(r.stdout, /^(FAIL|ERROR) /m, r.stdout);
  const theirs = new Map<string, [string, string]>();
  for (const s of oracle.steps) {
    for (const row of s.rows) {
      const v = row.verdict === 'agree' ? 'PASS' : row.verdict === 'disagree' ? 'FAIL' : 'SKIP';
      theirs.set(`${s.line} ${row.kind} ${row.what}`, [v, v === 'SKIP' ? row.reason ?? '' : '']);
    }
  }
  const skipsOnly = (m: Map<string, [string, string]>): Map<string, [string, string]> =>
    new Map([...m].map(([k, [v, why]]) => [k, [v, v === 'SKIP' ? why : '']]));
  assert.deepEqual(skipsOnly(mine), theirs, `the program's verdicts and reasons differ from the oracle's:\n${r.stdout}`);
  return mine;
}

/** The reason of a SKIP line. */
function skipOf(v: Map<string, [string, string]>, key: string): string {
  const x = v.get(key);
  assert.ok(x, `no check ${key}`);
  assert.equal(x[0], 'SKIP', `${key} is ${x[0]}`);
  return x[1];
}

test('the model\'s GUP fails (a short pin and a gup for writing of a read-only page): the note says so, not that the model holds h, and the device write through h leaves values compared', (t) => {
  const v = runBoth(t, 'export-gup-failed', v6(), [
    'P mmap a 1 ro private', 'P pin a as h rw short', 'P gup a as g rw', 'expect stat frames_used == 0', 'device write h[0] = 5', 'P read a[0]',
  ]);
  if (v === null) return;
  const note = skipOf(v, '6 stat frames_used');
  assert.match(note, /^the model's GUP for h \(line 4\) failed with EFAULT \(no handle on either side\): the faults and unsharing it did before failing may change/);
  assert.doesNotMatch(note, /model holds|did not try/);
  assert.deepEqual(v.get('8 read P a[0]'), ['PASS', '0'], 'the model\'s device wrote nothing through h: the read is compared');
});

test('a short pin the model holds: the note says so, and values are not compared after a device write through it', (t) => {
  const v = runBoth(t, 'export-pin-held', v6(), [
    'P mmap a 1 rw private', 'P write a = 1', 'P pin a as h rw short', 'expect stat frames_used == 1', 'device write h[0] = 5', 'P read a[0]',
  ]);
  if (v === null) return;
  assert.match(skipOf(v, '6 stat frames_used'), /^the model holds h \(line 5\), which this run could not take: its references and unsharing may change/);
  assert.equal(skipOf(v, '8 read P a[0]'), 'the model\'s device wrote through h (line 7), which this run could not take');
});

const PART = ['P mmap a 2 rw private', 'P write a = 1', 'P mprotect a[1] none', 'device exclusive P a as x', 'expect stat frames_used == 2'];

test('a device-exclusive request that stops at a PROT_NONE page, 6.15 on: the note says how many pages the model holds', (t) => {
  const v = runBoth(t, 'export-exclusive-part', v6(), PART);
  if (v === null) return;
  const note = skipOf(v, '7 stat frames_used');
  assert.match(note, /^the model holds 1 of the 2 pages of x \(line 6: its device-exclusive request ended EFAULT\), which this run could not take: its device-exclusive entries may change/);
  assert.doesNotMatch(note, /gave a device/);
});

test('the same request on 5.14 to 6.14 (--kernel v5.14: a short GUP count, the driver maps none): the note says the model\'s request failed with EBUSY', (t) => {
  const v = runBoth(t, 'export-exclusive-short', builtinProfile('v5.14')!, PART);
  if (v === null) return;
  const note = skipOf(v, '7 stat frames_used');
  assert.match(note, /^the model's device-exclusive request for x \(line 6\) failed with EBUSY: it holds none of its pages, and this run none either/);
  assert.doesNotMatch(note, /model holds|gave a device/);
});

test('a device-exclusive request of a PROT_NONE page: the model\'s fails with EFAULT, and the note says so', (t) => {
  const v = runBoth(t, 'export-exclusive-failed', v6(), ['P mmap a 1 none private', 'device exclusive P a as x', 'expect stat frames_used == 0']);
  if (v === null) return;
  assert.match(skipOf(v, '5 stat frames_used'), /^the model's device-exclusive request for x \(line 4\) failed with EFAULT: it holds none of its pages/);
});

test('the model\'s answer per handle-taking step is in the program, and only there', () => {
  const sc = parse(`name: tables\nsteps: |\n${PART.map((l) => `  ${l}\n`).join('')}`);
  const src = exportScenario(sc, builtinProfile('v5.14')!).source;
  assert.match(src, /static const struct mhandle H0 = \{ 1, "EBUSY", 0, 2 \};/);
  assert.match(src, /\{ 1, M\d+, 0, &H0 \}, \/\* line 6 \*\//);
  assert.match(src, /\{ 0, NULL, 0, NULL \}, \/\* line 5 \*\//);
  assert.doesNotMatch(src, /gave a device exclusive access/);
});
