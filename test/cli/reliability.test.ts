// Issue 15: no crash and no hang on any input: special files, big files, terminal escapes,
// an internal error in one cell of `compare`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cellText, runCell } from '../../src/cli/commands/compare.js';
import { builtinProfile } from '../../src/profiles/builtin.js';
import { parseScenario } from '../../src/scenario/index.js';
import { cli, tempFiles } from './helpers.js';

const { dir, file } = tempFiles('cowlab-rel-', (n) => `s${n}.scn.yaml`);
const ESC = '\u001b';
const OK = 'name: fine\nsteps: |\n  P mmap a 1\n  P write a = 1\n';

function fifo(path: string): string {
  execFileSync('mkfifo', [path]);
  return path;
}

test('a read through a device-exclusive grant is an error at the line (was an internal error, exit 70)', () => {
  const f = file('name: x\nsteps: |\n  P mmap a 1\n  device exclusive P a as x\n  P read x[0]\n');
  for (const k of ['v5.14', 'v6']) {
    const r = cli('run', f, '--kernel', k);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /:5:10: error: a read through a handle needs a pin or a gup reference or a pipe \(vmsplice\); 'x' is a device-exclusive grant/);
    assert.doesNotMatch(r.err, /internal error/);
  }
});

test('a FIFO named like a scenario: a clear error, no wait for a writer', { timeout: 20000 }, () => {
  const f = fifo(join(dir, 'pipe.scn.yaml'));
  const r = cli('run', f);
  assert.equal(r.code, 2);
  assert.match(r.err, /pipe\.scn\.yaml: error: cannot read: a FIFO \(named pipe\), not a scenario file \(only regular files are read\)/);
});

test('a device: a clear error, nothing read', { timeout: 20000 }, () => {
  const r = cli('run', '/dev/zero');
  assert.equal(r.code, 2);
  assert.equal(r.err, '/dev/zero: error: cannot read: a character device, not a scenario file (only regular files are read)');
});

test('a folder holding a FIFO and a directory named like scenarios: each a clear error, the good file read', { timeout: 20000 }, () => {
  const d = join(dir, 'mixed');
  mkdirSync(d);
  mkdirSync(join(d, 'dir.scn.yaml'));
  fifo(join(d, 'fifo.scn.yaml'));
  file(OK, 'mixed/good.scn.yaml');
  const r = cli('run', d);
  assert.equal(r.code, 2);
  assert.match(r.err, /dir\.scn\.yaml: error: cannot read: a directory, not a scenario file/);
  assert.match(r.err, /fifo\.scn\.yaml: error: cannot read: a FIFO/);
  assert.doesNotMatch(r.err, /good\.scn\.yaml/);
});

test('a file over 1 MiB is refused; one of 1 MiB is read', () => {
  const big = file(`${OK}${'#'.repeat((1 << 20) - OK.length + 1)}`, 'big.scn.yaml');
  const r = cli('run', big);
  assert.equal(r.code, 2);
  assert.match(r.err, /big\.scn\.yaml: error: cannot read: 1048577 bytes, more than the limit of 1048576 \(1 MiB\)/);
  const edge = file(`${OK}${'#'.repeat((1 << 20) - OK.length)}`, 'edge.scn.yaml');
  assert.equal(cli('run', edge).code, 0);
});

test('a profile file that is a FIFO: a clear error', { timeout: 20000 }, () => {
  const f = fifo(join(dir, 'profiles.yaml'));
  const r = cli('run', file(OK), '--profiles', f);
  assert.equal(r.code, 2);
  assert.match(r.err, /profiles\.yaml: cannot read profile file: a FIFO/);
});

test('a profile file nested a thousand deep: a positioned YAML error, no engine message', () => {
  const prof = file(`profiles:\n  x: ${'['.repeat(1000)}${']'.repeat(1000)}\n`, 'deep-profiles.yaml');
  const r = cli('run', file(OK), '--profiles', prof);
  assert.equal(r.code, 2);
  assert.match(r.err, /deep-profiles\.yaml:2:\d+: error: invalid YAML: collections nested too deeply/);
  assert.doesNotMatch(r.err, /Maximum call stack|RangeError/);
});

test('terminal escapes in a file are printed escaped: errors, descriptions, file names, JSON', () => {
  const bad = file(`name: "a${ESC}[31mRED${ESC}]0;PWNED\u0007"\nsteps: |\n  P mmap a 1\n`);
  const r1 = cli('run', bad);
  assert.equal(r1.code, 2);
  assert.ok(!r1.err.includes(ESC) && !r1.err.includes('\u0007'), JSON.stringify(r1.err));
  assert.match(r1.err, /a\\x1b\[31mRED\\x1b\]0;PWNED\\x07/);
  const desc = file(`name: d\ndescription: "see ${ESC}]0;PWNED\u0007 and \u009b31m"\nsteps: |\n  P mmap a 1\n`, `n${ESC}[1m.scn.yaml`);
  const r2 = cli('run', desc, '--stats');
  assert.equal(r2.code, 0, r2.err);
  assert.ok(!/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(r2.out), JSON.stringify(r2.out));
  assert.match(r2.out, /see \\x1b\]0;PWNED\\x07 and \\u009b31m/);
  assert.match(r2.out, /n\\x1b\[1m\.scn\.yaml/);
  const r3 = cli('run', desc, '--json');
  assert.ok(!/[\u007f-\u009f]/.test(r3.out));
  const j = JSON.parse(r3.out) as { results: { file: string }[] };
  assert.equal(j.results[0]!.file, desc); // the JSON still carries the name as it is
});

test('compare: an internal error costs one cell (ERROR), not the table', () => {
  const r = parseScenario(OK, 'ok.scn.yaml');
  assert.ok(r.ok);
  const v6 = builtinProfile('v6')!;
  const cell = runCell(r.scenario, v6, () => {
    throw new TypeError("Cannot read properties of undefined (reading 'longterm')");
  });
  assert.equal(cell.status, 'error');
  assert.equal(cellText(cell), 'ERROR');
  assert.match(cell.reason, /^internal error: Cannot read properties/);
  assert.equal(runCell(r.scenario, v6).status, 'ok');
});
