// A signal to the oracle's agent at any moment never leaves it blocked, and nothing is left
// behind: no process, no swap area, no temporary file; KSM's settings and nr_hugepages as
// before. The moments aimed at are the ones between fork() and the new child being recorded
// (the agent is kept busy starting and forking scenario processes); the loop runs
// COWLAB_SIGNAL_TRIES tries (20 by default; `npm run test:oracle-signals` runs 200).
// Also: the driver's watchdog kills an agent that stopped answering and puts back what it
// left, and `cowlab oracle --random` stops on SIGINT or SIGTERM with its summary, exit 130.

import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent, OracleError } from '../../src/oracle/agent.js';
import { ensureHelper } from '../../src/oracle/build.js';
import { swapDirs } from '../../src/oracle/system.js';
import { openLive, REPO } from './helpers.js';

const TRIES = Math.max(1, Number(process.env.COWLAB_SIGNAL_TRIES ?? 20) || 20);
/** A signalled agent that has not gone after this long is hung (it takes milliseconds). */
const HANG_MS = 10_000;

const live = openLive();
live.session?.close();

/** A directory of our own on a filesystem that takes swap files, for this file's swap files. */
const swapRoot = ((): string | null => {
  if (!live.session) return null;
  for (const d of swapDirs()) {
    try {
      return mkdtempSync(join(d, 'cowlab-signals-'));
    } catch {
      // next
    }
  }
  return null;
})();
after(() => {
  if (swapRoot) removeDir(swapRoot);
});

const KSM = '/sys/kernel/mm/ksm/';
/** KSM's settings the oracle changes, and nr_hugepages (which it never should). */
function machine(): string {
  const ksm = ['run', 'pages_to_scan', 'sleep_millisecs', 'smart_scan'].map((f) => (existsSync(KSM + f) ? `${f}=${readFileSync(KSM + f, 'utf8').trim()}` : ''));
  return [...ksm, `nr_hugepages=${readFileSync('/proc/sys/vm/nr_hugepages', 'utf8').trim()}`].join(' ');
}

/** The machine as before; another oracle's merge (the lead's tests) changes KSM for a moment only. */
async function machineAsBefore(before: string): Promise<string | null> {
  for (let i = 0; i < 60; i++) {
    const now = machine();
    if (now === before) return null;
    await sleep(50);
  }
  return machine();
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A deadline to race against: it does not keep the process alive once the race is won. */
function deadline(ms: number): Promise<null> {
  return new Promise((r) => setTimeout(() => r(null), ms).unref());
}

/** Processes whose environment carries TAG (every process an agent started inherits it). */
function tagged(tag: string): number[] {
  const needle = `COWLAB_SIGNALS_TAG=${tag}\0`;
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/environ`, 'latin1').includes(needle) && !/\) [ZX]/.test(readFileSync(`/proc/${p}/stat`, 'latin1'))) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}

/** Swap areas in /proc/swaps under DIR. */
function swapsUnder(dir: string): string[] {
  return readFileSync('/proc/swaps', 'utf8').split('\n').slice(1).map((l) => l.split(/\s+/)[0]!).filter((p) => p.startsWith(`${dir}/`));
}

/** Everything under DIR, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true }).map(String);
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
}

/** Leaves the machine clean after a failed try (an agent of the old kind hung). */
function forceClean(binary: string, tag: string, dir: string): void {
  for (const pid of tagged(tag)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  try {
    execFileSync(binary, ['reclaim', dir], { stdio: 'ignore', timeout: 30_000 });
  } catch {
    // a helper without reclaim (the old one): swapoff(8) below
  }
  for (const path of swapsUnder(dir)) {
    try {
      execFileSync('swapoff', [path], { stdio: 'ignore', timeout: 30_000 });
    } catch {
      // reported by the test as left
    }
  }
}

function removeDir(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // a swap file still on (reported)
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const ADDR = 2 ** 40;

/** Commands that keep the agent starting and forking scenario processes (and, some tries, merging). */
function burst(withKsm: boolean): string {
  const one = [
    'spawn 1', 'fork 1 2', `mmap 2 ${ADDR} 2 2`, `write 2 ${ADDR} 2 1`, 'fork 2 3', 'fork 1 4', 'exit 2', 'fork 3 5', 'reset',
  ];
  const merge = ['spawn 1', `mmap 1 ${ADDR} 2 2`, `write 1 ${ADDR} 2 7`, `madvise 1 ${ADDR} 2 mergeable`, 'ksmhold', 'ksm 2 400', 'reset'];
  const lines: string[] = [];
  for (let k = 0; k < 30; k++) {
    if (withKsm && k % 10 === 0) lines.push(...merge);
    lines.push(...one);
  }
  return `${lines.join('\n')}\n`;
}

test(`a signal to the agent at a random moment (${TRIES} tries): it goes, and leaves nothing behind`, { timeout: TRIES * (HANG_MS + 15_000) }, async (t) => {
  if (!live.session) return t.skip(live.reason);
  if (!swapRoot) return t.skip('no directory for a swap file');
  const binary = ensureHelper();
  const before = machine();
  const problems: string[] = [];
  let withSwap = 0;
  const answers: number[] = [];
  const bySignal: Record<string, number> = {};
  for (let i = 0; i < TRIES; i++) {
    const tag = `${process.pid}-${i}`;
    const dir = mkdtempSync(join(swapRoot, 'try-'));
    const agent = spawn(binary, ['agent'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, COWLAB_SIGNALS_TAG: tag } });
    let out = '';
    let err = '';
    agent.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    agent.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    agent.stdin!.on('error', () => {}); // EPIPE once it is gone
    const gone = exited(agent);
    agent.stdin!.write(`swapon 16 ${dir}\n`);
    for (let w = 0; w < 1000 && !out.includes('\n') && agent.exitCode === null; w++) await sleep(2);
    const swapLine = out.split('\n')[0] ?? '';
    if (swapLine.startsWith('ok ')) withSwap++;
    else if (i === 0) t.diagnostic(`no swap file in ${dir}: ${swapLine}`);
    const sent = out.length;
    agent.stdin!.write(burst(i % 4 === 3));
    await sleep(Math.random() * 30);
    const sig = SIGNALS[Math.floor(Math.random() * SIGNALS.length)]!;
    agent.kill(sig);
    const res = await Promise.race([gone, deadline(HANG_MS)]);
    answers.push(out.slice(sent).split('\n').length - 1);
    const what = `try ${i} (${sig} after ${answers[answers.length - 1]} answer(s))`;
    if (res === null) {
      problems.push(`${what}: the agent is still there ${HANG_MS / 1000} s later`);
      forceClean(binary, tag, dir);
      await gone;
    } else if (res.signal !== sig) {
      problems.push(`${what}: the agent ended with ${res.signal ?? `exit ${res.code}`}, not of the signal (${err.trim()})`);
    }
    bySignal[sig] = (bySignal[sig] ?? 0) + 1;
    const left = tagged(tag);
    if (left.length > 0) {
      problems.push(`${what}: process(es) left: ${left.join(', ')}`);
      forceClean(binary, tag, dir);
    }
    const swaps = swapsUnder(dir);
    if (swaps.length > 0) {
      problems.push(`${what}: swap area(s) left: ${swaps.join(', ')}`);
      forceClean(binary, tag, dir);
    }
    const files = filesUnder(dir);
    if (files.length > 0) problems.push(`${what}: file(s) left in ${dir}: ${files.join(', ')}`);
    const changed = await machineAsBefore(before);
    if (changed !== null) problems.push(`${what}: the machine is not as before: ${changed} (was ${before})`);
    removeDir(dir);
    if (problems.length >= 5) break;
  }
  answers.sort((a, b) => a - b);
  const at = (q: number): number => answers[Math.min(answers.length - 1, Math.floor(q * answers.length))] ?? 0;
  t.diagnostic(`${answers.length} tries (${Object.entries(bySignal).map(([s, n]) => `${n} ${s}`).join(', ')}), ${withSwap} with a swap file; ` +
    `answers before the signal: min ${at(0)}, median ${at(0.5)}, max ${at(1)}; ${problems.length} problem(s)`);
  assert.deepEqual(problems, []);
});

test('the watchdog kills an agent that stops answering, and its swap file and KSM settings are put back', { timeout: 60_000 }, async (t) => {
  if (!live.session) return t.skip(live.reason);
  if (!swapRoot) return t.skip('no directory for a swap file');
  if (!existsSync(`${KSM}run`)) return t.skip('this kernel has no KSM');
  if (readFileSync(`${KSM}run`, 'utf8').trim() !== '0') return t.skip('KSM runs on this machine already');
  const binary = ensureHelper();
  const before = machine();
  const tag = `${process.pid}-watchdog`;
  const dir = mkdtempSync(join(swapRoot, 'watchdog-'));
  const agent = Agent.start(binary, { watchdogMs: 500, env: { ...process.env, COWLAB_SIGNALS_TAG: tag } });
  try {
    const sw = agent.call(`swapon 16 ${dir}`);
    assert.equal(sw[0], 'ok', sw.join(' '));
    assert.equal(swapsUnder(dir).length, 1);
    assert.equal(agent.call('spawn 1')[0], 'ok');
    // A merge asked to make more full scans than ksmd can in 5 s: the agent is busy far
    // beyond the watchdog's 0.5 s, with KSM switched on and set to scan fast.
    const t0 = Date.now();
    assert.throws(() => agent.call('ksm 100000000 5000'), (e: unknown) => e instanceof OracleError && /did not answer within 0.5 s and was killed/.test(e.message));
    const took = Date.now() - t0;
    assert.ok(took < 4_000, `the watchdog took ${took} ms`);
    assert.ok(!existsSync(`/proc/${agent.pid}`) || /\) Z/.test(readFileSync(`/proc/${agent.pid}/stat`, 'utf8')), 'the agent is still running');
    assert.deepEqual(swapsUnder(dir), [], 'the swap file is still on');
    assert.deepEqual(filesUnder(dir), [], 'files are left');
    assert.equal(await machineAsBefore(before), null, 'KSM settings put back');
    // The scenario process sees its socket close and goes.
    for (let i = 0; i < 100 && tagged(tag).length > 0; i++) await sleep(20);
    assert.deepEqual(tagged(tag), []);
    assert.throws(() => agent.call('census'), OracleError);
  } finally {
    agent.close();
    forceClean(binary, tag, dir);
    removeDir(dir);
  }
});

test('reclaim removes the swap directory a dead agent left, and not a live agent\'s', (t) => {
  if (!live.session) return t.skip(live.reason);
  if (!swapRoot) return t.skip('no directory for a swap file');
  const dir = mkdtempSync(join(swapRoot, 'reclaim-'));
  try {
    // A process that has exited (and been reaped): its pid names a dead agent.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(dead.stdout);
    assert.ok(deadPid > 0 && !existsSync(`/proc/${deadPid}`));
    const deadDir = join(dir, `cowlab-swap.${deadPid}.AbC123`);
    const liveDir = join(dir, `cowlab-swap.${process.pid}.XyZ789`);
    const other = join(dir, `cowlab-swap.${deadPid}.notours`); // not named the way the agent names them
    for (const d of [deadDir, liveDir, other]) {
      mkdirSync(d);
      writeFileSync(join(d, 'swapfile'), 'x');
    }
    execFileSync(ensureHelper(), ['reclaim', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    assert.ok(!existsSync(deadDir), 'the dead agent\'s directory is still there');
    assert.ok(existsSync(join(liveDir, 'swapfile')), 'a live agent\'s file was removed');
    assert.ok(existsSync(join(other, 'swapfile')), 'a directory not named as the agent names them was removed');
  } finally {
    removeDir(dir);
  }
});

// Ctrl-C with --json on a model that disagrees with this kernel (v5.7: disagreements are found,
// shrunk and written as it goes), SIGTERM to the driver alone in text mode on v6.
const CLI_CASES = [
  { how: 'SIGINT to its process group (Ctrl-C)', args: ['--kernel', 'v5.7', '--seed', '3', '--json'] },
  { how: 'SIGTERM to the driver', args: ['--seed', '9'] },
] as const;

interface RandomDoc {
  interrupted: boolean;
  scenarios: number;
  agree: number;
  disagree: number;
  errors: number;
  failures: { file: string | null; status: string }[];
}

for (const { how, args } of CLI_CASES) {
  test(`cowlab oracle --random: ${how} stops it with what it found so far, exit 130, nothing left`, { timeout: 90_000 }, async (t) => {
    if (!live.session) return t.skip(live.reason);
    if (!swapRoot) return t.skip('no directory for a swap file');
    const before = machine();
    const tag = `${process.pid}-cli-${how.slice(0, 6)}`;
    const dir = mkdtempSync(join(swapRoot, 'cli-'));
    const outDir = join(dir, 'failures');
    const tmp = join(dir, 'tmp'); // its temporary directory (the FIFOs to its agent go there)
    mkdirSync(tmp);
    const child = spawn(process.execPath, [join(REPO, 'bin/cowlab.js'), 'oracle', '--random', '100000', ...args, '--out', outDir], {
      detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, COWLAB_SWAP_DIR: dir, TMPDIR: tmp, COWLAB_SIGNALS_TAG: tag },
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const gone = exited(child);
    try {
      // Running, with its swap file on: a swapout has been replayed.
      for (let i = 0; i < 1500 && swapsUnder(dir).length === 0 && child.exitCode === null; i++) await sleep(20);
      assert.equal(swapsUnder(dir).length, 1, `no swap file appeared (${err})`);
      // Long enough for v5.7's first disagreements (a third of the scenarios map 2 MiB regions).
      await sleep(3000 + Math.random() * 1000);
      const t0 = Date.now();
      if (how.startsWith('SIGINT')) process.kill(-child.pid!, 'SIGINT');
      else process.kill(child.pid!, 'SIGTERM');
      const res = await Promise.race([gone, deadline(20_000)]);
      assert.ok(res !== null, 'still running 20 s after the signal');
      t.diagnostic(`stopped ${Date.now() - t0} ms after the signal`);
      assert.equal(res.code, 130, err);
      const written = existsSync(outDir) ? readdirSync(outDir).map((f) => join(outDir, f)).sort() : [];
      if ((args as readonly string[]).includes('--json')) {
        const doc = JSON.parse(out) as RandomDoc;
        assert.equal(doc.interrupted, true);
        assert.ok(doc.scenarios > 0 && doc.scenarios < 100000, `scenarios: ${doc.scenarios}`);
        assert.equal(doc.agree + doc.disagree + doc.errors, doc.scenarios);
        assert.equal(doc.errors, 0, 'the scenario the signal cut short is not counted as an error');
        // What was found so far is reported, and written out as at a normal end.
        assert.ok(doc.disagree > 0, 'v5.7 disagrees with this kernel within the first scenarios');
        assert.deepEqual(doc.failures.map((f) => f.file).sort(), written);
        t.diagnostic(`${doc.scenarios} scenario(s), ${doc.disagree} disagreement(s) written`);
      } else {
        const m = /^interrupted: (\d+) of 100000 scenario\(s\) generated$/m.exec(out);
        assert.ok(m, out);
        const s = /^(\d+) random scenario\(s\), seed 9(?: \(avoiding [\w, -]+\))?, on model \S+ and Linux .*: (\d+) agree, (\d+) disagree, 0 error\(s\), (\d+) skipped, (\d+) not generated validly$/m.exec(out);
        assert.ok(s, out);
        assert.equal(Number(s[1]) + Number(s[5]), Number(m[1]));
        assert.ok(Number(s[1]) > 0);
        assert.match(out, /observation\(s\) compared/);
        assert.equal(written.length, Number(s[3]));
      }
      for (let i = 0; i < 100 && tagged(tag).length > 0; i++) await sleep(20);
      assert.deepEqual(tagged(tag), [], 'processes left');
      assert.deepEqual(swapsUnder(dir), [], 'swap area left');
      assert.deepEqual(filesUnder(dir).filter((f) => !f.startsWith('failures') && f !== 'tmp'), [], 'files left');
      assert.deepEqual(filesUnder(tmp), [], 'temporary files left');
      assert.equal(await machineAsBefore(before), null);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(-child.pid!, 'SIGKILL');
        await gone;
      }
      forceClean(ensureHelper(), tag, dir);
      removeDir(dir);
    }
  });
}
