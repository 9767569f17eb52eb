// `cowlab oracle` through main(argv, io): exit 0 when everything comparable agrees, 1 on a
// disagreement, 2 on bad input; the table, the --json document, --random with --out.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cli, cliAsync } from '../cli/helpers.js';
import { probedProfile } from '../../src/oracle/probed.js';
import { openLive, REPO, v6 } from './helpers.js';

const TMP = mkdtempSync(join(tmpdir(), 'cowlab-oracle-cli-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

// The live tests need what the session needs; the CLI opens its own.
const live = openLive();
live.session?.close();
/** The model the oracle compares with here: v6 plus what the probe found (either kind of machine). */
const model = (): string => probedProfile(v6(), live.session!.facilities).name;
const re = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('bad input is exit 2 with the place of the error', () => {
  const bad = join(TMP, 'bad.scn.yaml');
  writeFileSync(bad, 'name: bad\nsteps: |\n  P mmap a 1\n  P frobnicate a\n');
  const r = cli('oracle', bad);
  assert.equal(r.code, 2);
  assert.match(r.err, /bad\.scn\.yaml:4:\d+: error:/);
  assert.equal(cli('oracle').code, 2);
  assert.match(cli('oracle', '--kernel', 'v99', bad).err, /unknown profile 'v99'/);
  assert.match(cli('oracle', '--random', 'many').err, /--random takes a whole number/);
  assert.match(cli('oracle', '--random', '3', '--ops', 'write,nope').err, /unknown operation 'nope'/);
  assert.match(cli('oracle', '--seed', '3', bad).err, /--seed goes with --random/);
  assert.match(cli('oracle', '--random', '3', join(REPO, 'scenarios/basic')).err, /--random generates its scenarios/);
});

test('help', () => {
  const r = cli('oracle', '--help');
  assert.equal(r.code, 0);
  assert.match(r.out, /usage: cowlab oracle FILE\|DIR/);
  assert.match(cli('help', 'oracle').out, /--random N/);
});

test('scenarios that agree: exit 0, a table per scenario and a summary', async (t) => {
  if (!live.session) return t.skip(live.reason);
  const r = await cliAsync('oracle', join(REPO, 'scenarios/basic/fork-isolation.scn.yaml'), join(REPO, 'scenarios/kernel-tests/cow-ro-pin-on-shared.scn.yaml'));
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /line +step +model +kernel +agree\?/);
  assert.match(r.out, /expect P buf\[0\] same-frame Q buf\[0\] +same-frame +same-frame +yes/);
  assert.match(r.out, /skipped \[\d\]/);
  assert.match(r.out, /R\/O longterm pins have no lasting user-space path/);
  assert.match(r.out, new RegExp(`2 scenario\\(s\\) on model ${re(model())} and Linux .*: 2 agree, 0 disagree`));
  // The header says what the probe found and which model that makes.
  assert.match(r.out, /the probe found:\n {2}zero page on read fault +(yes|no)/);
  assert.match(r.out, new RegExp(`^model: ${re(model())}$`, 'm'));
});

test('a model that disagrees with the kernel: exit 1, the disagreement shown', async (t) => {
  if (!live.session) return t.skip(live.reason);
  // v5.7 reuses the page the pipe still holds: the child reads the parent's secret. Linux does not.
  const r = await cliAsync('oracle', '--kernel', 'v5.7', join(REPO, 'scenarios/seeds/cve-2020-29374-vmsplice-leak.scn.yaml'));
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.out, /Q read pipe\[0\] +secret +1 +NO/);
});

test('--json: one document with every step and observation', async (t) => {
  if (!live.session) return t.skip(live.reason);
  const r = await cliAsync('oracle', '--json', join(REPO, 'scenarios/basic/fork-isolation.scn.yaml'), join(REPO, 'scenarios/basic/zero-page-fork.scn.yaml'));
  assert.equal(r.code, 0);
  const doc = JSON.parse(r.out);
  assert.equal(doc.format, 1);
  assert.equal(doc.command, 'oracle');
  assert.equal(doc.model, model());
  assert.ok(doc.probe.some((f: { name: string }) => f.name === 'zero page on read fault'));
  const [fork, zero] = doc.results;
  assert.equal(fork.status, 'agree');
  assert.ok(fork.steps.some((s: { rows: { kind: string; verdict: string }[] }) => s.rows.some((x) => x.kind === 'frame' && x.verdict === 'agree')));
  // A zero-page story agrees where the kernel maps the zero page, and is skipped (not a
  // disagreement) where it does not.
  if (doc.facilities.zeroPage) {
    assert.equal(zero.status, 'agree');
    assert.equal(doc.scenarios.agree, 2);
  } else {
    assert.equal(zero.status, 'skipped');
    assert.match(zero.skip, /no shared zero page/);
    assert.equal(doc.scenarios.skipped, 1);
  }
  assert.equal(typeof doc.facilities.uring, 'boolean');
});

test('--random writes nothing when all agree, and reports its counts', async (t) => {
  if (!live.session) return t.skip(live.reason);
  const out = join(TMP, 'failures');
  const r = await cliAsync('oracle', '--random', '25', '--seed', '5', '--avoid', 'known', '--out', out);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`25 random scenario\\(s\\), seed 5 \\(avoiding .*\\), on model ${re(model())} and Linux .*: 25 agree, 0 disagree`));
  assert.throws(() => readdirSync(out));
});
