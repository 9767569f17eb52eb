// Resource limits a user can ask past: a scenario's estimated host memory is refused before
// anything is allocated (exit 2 naming the step), and the explorer's --time is kept by the
// clock even when one expansion of a large --from state is long.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { cli, ROOT, tempFiles } from './helpers.js';

const BIN = join(ROOT, 'bin', 'cowlab.js');
const { file } = tempFiles('cowlab-limits-', (n) => `l${n}.scn.yaml`);

// 4 GiB populated (1 Mi pages, 48 MiB at 48 bytes a page), then forked: 96 MiB at the fork.
const FOUR_GIB = file(`name: four-gib
steps: |
  P mmap big 1048576 rw private populate
  P fork Q
`);

test('run: a 4 TiB mapping is refused before it is allocated: exit 2 at its line, the default limit named', () => {
  const f = file('name: huge\nsteps: |\n  P mmap small 4 rw private\n  P mmap big 1073741824 rw private populate\n');
  const r = spawnSync(process.execPath, [BIN, 'run', f], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 2, `exit 2 (signal ${r.signal}; stderr: ${r.stderr})`);
  assert.match(r.stderr, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4:3: error: 'P mmap big 1073741824 rw private populate' brings the scenario to 1073741828 mapped pages, about 49153 MiB of host memory \\(48 bytes a page\\), past the limit of \\d+ MiB \\(half of this machine's memory; --max-memory MiB changes it\\)$`, 'm'));
  assert.doesNotMatch(r.stderr, /internal error|^\s+at /m);
});

test('run and compare --max-memory: the step that passes it is named (the fork doubles the pages)', () => {
  for (const cmd of ['run', 'compare']) {
    const o = cli(cmd, FOUR_GIB, '--max-memory', '64');
    assert.equal(o.code, 2, `${cmd}: ${o.out} ${o.err}`);
    assert.match(o.err, new RegExp(`:4:3: error: 'P fork Q' brings the scenario to 2097152 mapped pages, about 96 MiB of host memory \\(48 bytes a page\\), past the limit of 64 MiB \\(--max-memory\\)$`));
  }
  const j = cli('run', FOUR_GIB, '--max-memory', '64', '--json');
  assert.equal(j.code, 2);
  const doc = JSON.parse(j.out) as { errors: { file: string; line: number; col: number }[] };
  assert.deepEqual(doc.errors.map((e) => [e.file, e.line, e.col]), [[FOUR_GIB, 4, 3]]);
  for (const bad of ['0', '63', 'lots', '1.5']) {
    const b = cli('run', FOUR_GIB, '--max-memory', bad);
    assert.equal(b.code, 2);
    assert.match(b.err, /--max-memory takes a whole number of MiB from 64/);
  }
});

test('run: a scenario under the limit runs; pages given back by munmap and exit count no more', () => {
  // 1 GiB (12 MiB) forked into three processes: 36 MiB at most, though 48 were ever mapped.
  const f = file(`name: under
outcomes:
  "*": ok
steps: |
  P mmap big 262144 rw private
  P fork Q
  Q exit
  P fork R
  R munmap big
  R fork S
  P write big[0] = v1
`);
  const o = cli('run', f, '--max-memory', '64', '--quiet');
  assert.equal(o.code, 0, o.out + o.err);
  const refused = cli('run', f, '--max-memory', '64', '--quiet', FOUR_GIB);
  assert.equal(refused.code, 2, 'one file past the limit: nothing runs');
  assert.equal(refused.out, '');
});

test('explore --from a 1 GiB scenario is refused at its mapping: every search state would hold every page', () => {
  const src = join(ROOT, 'scenarios', 'basic', 'pagetables-1gib.scn.yaml');
  const o = cli('explore', '--from', src, '--time', '10', '--max-memory', '500');
  assert.equal(o.code, 2, o.out + o.err);
  assert.match(o.err, /pagetables-1gib\.scn\.yaml:16:3: error: 'P mmap big 262144 rw private populate nothp' brings the start state to 262144 mapped pages; explore --from takes at most 4096/);
});

test('explore --time is kept by the clock when one expansion is long (a 4096-page --from state)', () => {
  // The start state has about 25 000 enabled operations, each a copy of 4096 pages and their
  // canonical key: its first expansion alone takes minutes.
  const f = file('name: big-start\nsteps: |\n  P mmap big 4096 rw private populate\n');
  const r = spawnSync(process.execPath, [BIN, 'explore', '--from', f, '--time', '1'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `exit 0 (signal ${r.signal}; stdout: ${r.stdout}; stderr: ${r.stderr})`);
  const m = /^searched some single operations \(stopped by the --time bound\) on v6: ([\d,]+) states, ([\d.]+) s; nothing found$/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.ok(Number(m[2]) < 2.5, `stopped within a second or so of the bound (${m[2]} s)`);
  assert.match(r.stdout, /^not every single operation was tried: nothing can be said of any length$/m);
});

test('run under a ulimit below the estimate: the refused allocation is exit 2 naming the file, not an internal error', { skip: process.platform !== 'linux' }, () => {
  // 64 Mi pages populated: about 3 GiB by the estimate, under the default limit of a machine
  // with 8 GiB or more, over a 3 GB address-space ulimit.
  const f = file('name: under-ulimit\nsteps: |\n  P mmap big 67108864 rw private populate\n');
  const small = join(ROOT, 'scenarios', 'basic', 'child-exit-parent-reuses.scn.yaml');
  for (const files of [[f], [small, f]]) {
    const r = spawnSync('bash', ['-c', `ulimit -v 3000000; exec "${process.execPath}" "${BIN}" run --quiet --max-memory 8192 ${files.map((x) => `"${x}"`).join(' ')}`], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, `exit 2 (signal ${r.signal}; stdout: ${r.stdout}; stderr: ${r.stderr})`);
    assert.match(r.stderr, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: error: out of host memory while running it \\(.+\\): its estimate, 3072 MiB, is under the limit of 8192 MiB`, 'm'));
    assert.doesNotMatch(r.stderr, /internal error/);
  }
});
