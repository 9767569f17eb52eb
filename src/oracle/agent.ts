// The channel to the helper's agent: one command a line, one answer a line, synchronously.
// Node has no blocking pipes of its own, so the agent's stdin and stdout are FIFOs that this
// side reads and writes with blocking fs calls; the order of the replies is the order of the
// commands, and when the agent dies the next read sees end of file.

import { spawn, execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The helper failed, or answered something unexpected, while replaying a scenario. */
export class OracleError extends Error {}

export class Agent {
  private pending = '';
  private closed = false;
  readonly pid: number;

  private constructor(
    private readonly toAgent: number,
    private readonly fromAgent: number,
    pid: number,
  ) {
    this.pid = pid;
  }

  /** Starts `BINARY agent` with its stdin and stdout on two FIFOs. */
  static start(binary: string): Agent {
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
      const child = spawn(binary, ['agent'], { stdio: [cmdRW, repRW, 'inherit'] });
      closeSync(cmdRW);
      closeSync(repRW);
      child.unref();
      if (child.pid === undefined) throw new OracleError(`cannot start the oracle helper ${binary}`);
      return new Agent(toAgent, fromAgent, child.pid);
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
    try {
      writeSync(this.toAgent, `${line}\n`);
    } catch (e) {
      throw new OracleError(`the oracle helper is gone (${(e as NodeJS.ErrnoException).code ?? String(e)}) at: ${line}`);
    }
    return this.readLine(line).split(' ');
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
        throw new OracleError(`reading from the oracle helper failed: ${(e as Error).message}`);
      }
      if (n === 0) throw new OracleError(`the oracle helper exited unexpectedly at: ${cmd}`);
      this.pending += buf.toString('utf8', 0, n);
    }
  }

  /** Asks the agent to release everything and exit, and waits for it to say so. */
  quit(): void {
    if (this.closed) return;
    try {
      writeSync(this.toAgent, 'quit\n');
      this.readLine('quit');
    } catch {
      // already gone: its end of file did the same cleanup
    }
    this.close();
  }

  /** Closes the channel; the agent sees end of file, cleans up and exits. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.toAgent);
    closeSync(this.fromAgent);
  }
}
