// The channel to the helper's agent: one command a line, one answer a line, synchronously.
// Node has no blocking pipes of its own, so the agent's stdin and stdout are FIFOs that this
// side reads and writes with blocking fs calls; the order of the replies is the order of the
// commands, and when the agent dies the next read sees end of file.
//
// A watchdog thread stands beside the blocking calls: an agent that has not answered a command
// within its deadline is taken for stuck and SIGKILLed, which ends the blocked read. Whenever
// the agent is found gone without having said `bye` (killed by the watchdog, by a signal, or
// crashed), `cowlab-oracle reclaim` puts back what it may have left changed on the machine: its
// swap file, enabled or not, and KSM's settings if it died in the middle of a merge.

import { spawn, execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { swapDirs } from './system.js';

/** The helper failed, or answered something unexpected, while replaying a scenario. */
export class OracleError extends Error {}

/**
 * How long a command may go unanswered before the watchdog kills the agent. The agent bounds
 * its own waits (a scenario operation 120 s, a lock 60 s, a KSM merge 10 s), so only an agent
 * that is stuck gets there.
 */
export const WATCHDOG_MS = 180_000;

export interface AgentOptions {
  /** The watchdog's deadline for one command (default WATCHDOG_MS). */
  watchdogMs?: number;
  /** The agent's environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

// The watchdog's shared words: the command in flight (a generation, 0: none), stop, the
// deadline in ms, the agent's pid, and whether it fired.
const W_GEN = 0;
const W_STOP = 1;
const W_DEADLINE = 2;
const W_PID = 3;
const W_FIRED = 4;

const WATCHDOG_SOURCE = `
const { workerData } = require('node:worker_threads');
const s = new Int32Array(workerData);
let seen = 0;
let since = 0;
for (;;) {
  Atomics.wait(s, ${W_STOP}, 0, 100);
  if (Atomics.load(s, ${W_STOP}) !== 0) break;
  const gen = Atomics.load(s, ${W_GEN});
  const now = Date.now();
  if (gen === 0 || gen !== seen) {
    seen = gen;
    since = now;
  } else if (now - since > Atomics.load(s, ${W_DEADLINE}) && Atomics.load(s, ${W_FIRED}) === 0) {
    Atomics.store(s, ${W_FIRED}, 1);
    try { process.kill(Atomics.load(s, ${W_PID}), 'SIGKILL'); } catch {}
  }
}
`;

/** Gone, or a zombie waiting for its parent (us) to reap it. */
function processGone(pid: number): boolean {
  try {
    return /^\d+ \(.*\) [ZX]/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

export class Agent {
  private pending = '';
  private closed = false;
  /** The agent is gone and reclaim has run. */
  private lost = false;
  private gen = 0;
  readonly pid: number;

  private constructor(
    private readonly binary: string,
    private readonly toAgent: number,
    private readonly fromAgent: number,
    pid: number,
    private readonly dog: { words: Int32Array; worker: Worker },
    private readonly deadlineMs: number,
  ) {
    this.pid = pid;
  }

  /** Starts `BINARY agent` with its stdin and stdout on two FIFOs, and its watchdog. */
  static start(binary: string, opts: AgentOptions = {}): Agent {
    const dir = mkdtempSync(join(tmpdir(), 'cowlab-oracle-'));
    const cmdPath = join(dir, 'cmd');
    const repPath = join(dir, 'rep');
    let toAgent = -1;
    let fromAgent = -1;
    try {
      execFileSync(binary, ['mkfifo', cmdPath, repPath], { stdio: ['ignore', 'ignore', 'pipe'] });
      // Open order matters: a read-write open never blocks, and each one-way open then finds
      // its other end already there. The agent reopens its ends one-way (see agent.c).
      const cmdRW = openSync(cmdPath, constants.O_RDWR);
      toAgent = openSync(cmdPath, constants.O_WRONLY);
      const repRW = openSync(repPath, constants.O_RDWR);
      fromAgent = openSync(repPath, constants.O_RDONLY);
      const child = spawn(binary, ['agent'], { stdio: [cmdRW, repRW, 'inherit'], env: opts.env ?? process.env });
      closeSync(cmdRW);
      closeSync(repRW);
      child.unref();
      if (child.pid === undefined) throw new OracleError(`cannot start the oracle helper ${binary}`);
      const words = new Int32Array(new SharedArrayBuffer(8 * 4));
      const deadline = opts.watchdogMs ?? WATCHDOG_MS;
      Atomics.store(words, W_DEADLINE, deadline);
      Atomics.store(words, W_PID, child.pid);
      const worker = new Worker(WATCHDOG_SOURCE, { eval: true, workerData: words.buffer });
      worker.unref();
      return new Agent(binary, toAgent, fromAgent, child.pid, { words, worker }, deadline);
    } catch (e) {
      for (const fd of [toAgent, fromAgent]) if (fd >= 0) closeSync(fd);
      if (e instanceof OracleError) throw e;
      throw new OracleError(`cannot start the oracle helper ${binary}: ${(e as Error).message}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Sends one command and returns the words of its answer. */
  call(line: string): string[] {
    if (this.closed) throw new OracleError('the oracle helper was already stopped');
    return this.exchange(line, line).split(' ');
  }

  /** One command and its answer line, under the watchdog. */
  private exchange(line: string, what: string): string {
    if (this.lost) throw new OracleError(`the oracle helper is gone at: ${what}`);
    const w = this.dog.words;
    Atomics.store(w, W_GEN, ++this.gen > 0x3fffffff ? (this.gen = 1) : this.gen);
    try {
      try {
        writeSync(this.toAgent, `${line}\n`);
      } catch (e) {
        this.reclaim();
        throw new OracleError(`the oracle helper is gone (${(e as NodeJS.ErrnoException).code ?? String(e)}) at: ${what}`);
      }
      return this.readLine(what);
    } finally {
      Atomics.store(w, W_GEN, 0);
    }
  }

  private readLine(cmd: string): string {
    const buf = Buffer.alloc(4096);
    for (;;) {
      const nl = this.pending.indexOf('\n');
      if (nl >= 0) {
        const line = this.pending.slice(0, nl);
        this.pending = this.pending.slice(nl + 1);
        return line;
      }
      let n: number;
      try {
        n = readSync(this.fromAgent, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN' || (e as NodeJS.ErrnoException).code === 'EINTR') continue;
        this.reclaim();
        throw new OracleError(`reading from the oracle helper failed: ${(e as Error).message}`);
      }
      if (n === 0) {
        const fired = Atomics.load(this.dog.words, W_FIRED) !== 0;
        this.reclaim();
        throw new OracleError(fired
          ? `the oracle helper did not answer within ${this.deadlineMs / 1000} s and was killed (what it changed on the machine is put back) at: ${cmd}`
          : `the oracle helper exited unexpectedly at: ${cmd}`);
      }
      this.pending += buf.toString('utf8', 0, n);
    }
  }

  /**
   * The agent is gone (or stuck: then it is killed now): put back what it may have left
   * changed, with `cowlab-oracle reclaim`. It cleans up after itself on every way out it can
   * see; this is for the ones it cannot (SIGKILL, the watchdog).
   */
  private reclaim(): void {
    if (this.lost) return;
    this.lost = true;
    this.stopWatchdog();
    for (let i = 0; i < 500 && !processGone(this.pid); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    if (!processGone(this.pid)) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      for (let i = 0; i < 500 && !processGone(this.pid); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
    if (!existsSync(this.binary)) return;
    try {
      execFileSync(this.binary, ['reclaim', ...swapDirs()], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 60_000 });
    } catch {
      // it says on stderr what it could not do
    }
  }

  private stopWatchdog(): void {
    Atomics.store(this.dog.words, W_STOP, 1);
    Atomics.notify(this.dog.words, W_STOP);
  }

  /** Asks the agent to release everything and exit, and waits (under the watchdog) for it to say so. */
  quit(): void {
    if (this.closed) return;
    try {
      this.exchange('quit', 'quit');
    } catch {
      // already gone (its end of file did the same cleanup), or killed and reclaimed
    }
    this.close();
  }

  /** Closes the channel; the agent sees end of file, cleans up and exits. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWatchdog();
    closeSync(this.toAgent);
    closeSync(this.fromAgent);
  }
}
