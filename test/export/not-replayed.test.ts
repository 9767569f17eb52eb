// A swapout, pageout or ksm merge the exported program cannot replay (here: run as an
// unprivileged user, who can set up no swap file and cannot switch KSM on): the note after it
// says what the model did, from the model's own swap or KSM row in the program, in the oracle's
// words (src/oracle/replay.ts modelDid; test/oracle/not-replayed.test.ts has the oracle's side).
// The read through a pipe after it is a short-term reference, which an unprivileged user still
// compares (frame numbers and counters are hidden from it).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportScenario } from '../../src/export/export.js';
import { parse, v6 } from '../oracle/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'cowlab-export-notreplayed-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TAIL = ' and this run could not: frame sharing, counters and what short-term references see may differ from here on';

/** Why this machine cannot run a program as another user (null: it can). */
function noSetpriv(): string | null {
  if (spawnSync('gcc', ['--version']).status !== 0) return 'no gcc on this machine';
  if (process.getuid?.() !== 0) return 'needs root, to run the program as another user';
  if (spawnSync('setpriv', ['--version']).status !== 0) return 'no setpriv (util-linux) to drop root';
  return null;
}

/** The scenario exported, compiled, and run as nobody: its output. */
function runAsNobody(name: string, lines: string[]): string {
  chmodSync(dir, 0o755);
  const sc = parse(`name: ${name}\nsteps: |\n${lines.map((l) => `  ${l}\n`).join('')}`);
  const b = join(dir, name);
  writeFileSync(`${b}.c`, exportScenario(sc, v6()).source);
  const cc = spawnSync('gcc', ['-O0', '-Wall', '-Wextra', '-Werror', '-o', b, `${b}.c`], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', b], { encoding: 'utf8', timeout: 60_000 });
  assert.doesNotMatch(r.stdout, /^(FAIL|ERROR) /m, r.stdout);
  return r.stdout;
}

// Each case: the scenario's lines, the line of its last step (the read through p), and the note.
const CASES: [string, string[], number, string][] = [
  ['a swapout where the model swaps out every page', ['P mmap a 2 rw private', 'P write a = 1', 'P vmsplice a as p', 'swapout P a', 'P read p[0]'],
    7, 'the model swapped out every page of P a[*] at line 6'],
  ['a swapout where the model swaps out none (mapped twice after fork)', ['P mmap a 2 rw private', 'P write a = 1', 'P fork C', 'P vmsplice a as p', 'swapout P a', 'P read p[0]'],
    8, 'the model swapped out none of P a[*] at line 7 (present)'],
  ['a swapout where the model swaps out part (a[1] never touched)', ['P mmap a 2 rw private', 'P write a[0] = 1', 'P vmsplice a[0] as p', 'swapout P a', 'P read p[0]'],
    7, 'the model swapped out part of P a[*] at line 6 (a[0] swapped, a[1] not mapped)'],
  ['a madvise pageout', ['P mmap a 2 rw private', 'P write a = 1', 'P vmsplice a as p', 'P madvise a pageout', 'P read p[0]'],
    7, 'the model swapped out every page of P a[*] at line 6'],
  ['a ksm merge where the model merges', ['P mmap a 2 rw private', 'P write a = 1', 'P madvise a mergeable', 'ksm merge', 'P vmsplice a as p', 'P read p[0]'],
    8, 'the model\'s ksm merge at line 6 left P a[0..1] mapping a KSM page'],
  ['a ksm merge where the model merges nothing (two different values)', ['P mmap a 2 rw private', 'P write a[0] = 1', 'P write a[1] = 2', 'P madvise a mergeable', 'ksm merge', 'P vmsplice a as p', 'P read p[0]'],
    9, 'the model\'s ksm merge at line 7 left no page mapping a KSM page'],
];

for (const [what, lines, last, says] of CASES) {
  test(`not root: ${what} is not replayed, and the note says what the model did`, (t) => {
    const why = noSetpriv();
    if (why !== null) return t.skip(why);
    const out = runAsNobody('not-replayed', lines);
    assert.match(out, /^# .*; not root;/m);
    const line = out.split('\n').find((l) => l.startsWith(`SKIP line ${last} [handle-read] P reads p[0]: `));
    assert.ok(line, out);
    assert.equal(line.slice(`SKIP line ${last} [handle-read] P reads p[0]: `.length), `${says}${TAIL}`);
  });
}
