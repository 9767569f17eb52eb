// `cowlab export --kernel NAME`: a profile, or a what-if name as `run --kernel` takes it (the
// program then checks the live kernel against that model); not the zero-page switch, which
// the program probes on the machine. Writing the program does not touch the live kernel.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cli, ROOT } from './helpers.js';

const FILE = join(ROOT, 'scenarios/basic/fork-isolation.scn.yaml');

test('export --kernel takes a what-if name: the program names it and is checked against it', () => {
  // It was "unknown profile 'v5.9+forkEarlyCow=false'", exit 2.
  const r = cli('export', FILE, '--kernel', 'v5.9+forkEarlyCow=false', '-o', '-');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, / \* kernel profile: v5\.9\+forkEarlyCow=false\n/);
  assert.match(r.out, /model v5\.9\+forkEarlyCow=false/);
});

test('export --kernel: a what-if of the zero page is refused with why; bad switches as run says them; --json carries the error', () => {
  const z = cli('export', FILE, '--kernel', 'v6+mmForbidsZeropage=true', '-o', '-');
  assert.equal(z.code, 2);
  assert.match(z.err, /^cowlab export: --kernel: 'v6\+mmForbidsZeropage=true' sets mmForbidsZeropage: whether the kernel maps the zero page is a fact of the machine the program runs on: it probes it/);
  assert.equal(z.out, '');
  const s = cli('export', FILE, '--kernel', 'v6+nope=1', '-o', '/tmp/never-written.c', '--json');
  assert.equal(s.code, 2);
  assert.match(JSON.parse(s.out).error, /^cowlab export: --kernel: unknown switch 'nope'/);
  assert.match(cli('export', FILE, '--kernel', 'v5.9rc4').err, /unknown profile 'v5\.9rc4': did you mean 'v5\.9-rc4'\?/);
  assert.match(cli('export', '--help').out, /or a what-if\n\s+kernel PROFILE\+SWITCH=VALUE/);
});
