// SIGINT and SIGTERM on the long commands, the cowlab bin run as a child process: the command
// stops soon, prints what it had found with the summary of a normal end (and writes its --out
// files), and exits 130.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempFiles } from './helpers.js';

const BIN = join(ROOT, 'bin', 'cowlab.js');
const { dir: TMP, file } = tempFiles('cowlab-signals-', (n) => `s${n}.scn.yaml`);

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
  /** From the signal to the exit. */
  afterSignalMs: number;
}

/**
 * Start `cowlab ARGS`, wait `delayMs` after its stdout matches `ready` (null: after the start),
 * send `sig`, and wait for the exit (killed after 150 s: a command that ignores the signal fails; a loaded machine may take a minute to reach the depth a test waits for).
 */
function interrupt(args: string[], sig: NodeJS.Signals, ready: RegExp | null, delayMs: number, readyOnStderr = false): Promise<Ended> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let sentAt = 0;
    const killer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    const send = (): void => {
      sentAt = -1;
      setTimeout(() => {
        sentAt = performance.now();
        child.kill(sig);
      }, delayMs);
    };
    if (ready === null) send();
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!readyOnStderr && sentAt === 0 && ready !== null && ready.test(out)) send();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (readyOnStderr && sentAt === 0 && ready !== null && ready.test(err)) send();
    });
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, out, err, afterSignalMs: sentAt > 0 ? performance.now() - sentAt : -1 });
    });
  });
}

test('explore --all: SIGINT after it found two counterexamples prints them with the summary, writes --out, exit 130', async () => {
  const out = join(TMP, 'ce.scn.yaml');
  // v5.7 has a stale pin at depth 2 and a leak at depth 4: both found once the search works on
  // depth 6 (its progress lines say so, however loaded the machine); depth 12 takes far longer.
  const e = await interrupt(['explore', '--kernel', 'v5.7', '--all', '--depth', '12', '--time', '140', '--progress', '--out', out], 'SIGINT', /^progress: \d+ states, depth (6|7|8|9|1\d),/m, 0, true);
  assert.equal(e.signal, null, `exited by itself, not killed by the signal (stderr: ${e.err})`);
  assert.equal(e.code, 130, `exit 130 (stdout: ${e.out.slice(0, 600)}; stderr: ${e.err})`);
  assert.ok(e.afterSignalMs > 0 && e.afterSignalMs < 5000, `stopped soon after the signal (${e.afterSignalMs} ms)`);
  assert.match(e.out, /^searched every sequence of up to \d+ operations and some of \d+ \(stopped by SIGINT\) on v5\.7: [\d,]+ states, [\d.]+ s; \d+ findings/m);
  assert.match(e.out, /^sometimes: .*fork covered/m);
  assert.match(e.out, /^ {3}after 2 operations: pin-incoherent/m);
  assert.match(e.out, /^ {3}after 4 operations: leak/m);
  const second = join(TMP, 'ce-2.scn.yaml');
  assert.match(e.out, new RegExp(`written to ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, `));
  assert.ok(existsSync(out) && existsSync(second), 'both --out files written');
  // Each file replays on v5.7 with the violation its outcomes name.
  for (const f of [out, second]) {
    assert.match(readFileSync(f, 'utf8'), /^outcomes:\n {2}"v5\.7": \[(pin-incoherent|leak)\]$/m);
    const r = spawnSync(process.execPath, [BIN, 'run', f, '--quiet'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${f} replays as its outcomes say: ${r.stdout}${r.stderr}`);
  }
});

test('explore --json: SIGTERM gives the document with stoppedBy "interrupted", exit 130', async () => {
  // Signalled once the search reports progress (its handlers are in place by then, however slow the start).
  const e = await interrupt(['explore', '--kernel', 'v6', '--depth', '12', '--time', '60', '--json', '--progress'], 'SIGTERM', /^progress: /m, 0, true);
  assert.equal(e.code, 130, `exit 130 (stderr: ${e.err})`);
  const doc = JSON.parse(e.out) as { status: string; stats: { stoppedBy: string; states: number } };
  assert.equal(doc.stats.stoppedBy, 'interrupted');
  assert.ok(doc.stats.states > 1);
  assert.equal(doc.status, 'ok');
});

/** A scenario that takes the model about a tenth of a second or more: 1 GiB populated, forked twice, written. */
const SLOW = (n: number): string => `name: slow-${n}
outcomes:
  "*": ok
steps: |
  P mmap big 262144 rw private populate nothp
  P fork Q
  Q write big[0..1023] = v${n}
  Q fork R
  R exit
  Q exit
`;

test('run of many files: SIGTERM reports the scenarios that finished with the count, exit 130', async () => {
  const files = Array.from({ length: 80 }, (_, i) => file(SLOW(i), `run-${String(i).padStart(2, '0')}.scn.yaml`));
  const e = await interrupt(['run', '--quiet', ...files], 'SIGTERM', null, 4000);
  assert.equal(e.signal, null, `exited by itself (stderr: ${e.err})`);
  assert.equal(e.code, 130, `exit 130 (stdout: ${e.out.slice(-600)}; stderr: ${e.err})`);
  assert.ok(e.afterSignalMs > 0 && e.afterSignalMs < 5000, `stopped soon after the signal (${e.afterSignalMs} ms)`);
  const m = /^(\d+) passed, 0 failed; stopped by SIGTERM after (\d+) of 80 scenario\(s\)$/m.exec(e.out);
  assert.ok(m, `the summary line: ${e.out.slice(-400)}`);
  const done = Number(m[2]);
  assert.equal(Number(m[1]), done);
  assert.ok(done < 80, 'stopped before the end');
  const passLines = e.out.split('\n').filter((l) => l.startsWith('PASS  '));
  assert.equal(passLines.length, done, 'one PASS line per scenario that finished');
  passLines.forEach((l, i) => assert.ok(l.includes(files[i]!), `in order: ${l}`));
});

test('compare: SIGINT prints the matrix of the scenarios that finished, exit 130', async () => {
  const files = Array.from({ length: 80 }, (_, i) => file(SLOW(i), `cmp-${String(i).padStart(2, '0')}.scn.yaml`));
  const e = await interrupt(['compare', '--kernels', 'v6,v5.7', ...files], 'SIGINT', null, 4000);
  assert.equal(e.code, 130, `exit 130 (stdout: ${e.out.slice(-600)}; stderr: ${e.err})`);
  const m = /^stopped by SIGINT after (\d+) of 80 scenario\(s\)$/m.exec(e.out);
  assert.ok(m, `the summary line: ${e.out.slice(-400)}`);
  const done = Number(m[1]);
  assert.ok(done < 80);
  const rows = e.out.split('\n').filter((l) => /^slow-\d+ /.test(l));
  assert.equal(rows.length, done, 'one row per scenario that finished');
  for (const r of rows) assert.match(r, /^slow-\d+\s+ok\s+ok$/);
  assert.match(e.out, /no cell of the scenarios that ran contradicts its outcomes/);
});
