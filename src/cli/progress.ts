// Progress of `run` and `compare` over many scenarios, on stderr: the long work of those commands
// (every scenario of the repository on every profile takes most of a minute) says how far it got.

import { escapeControls } from '../scenario/errors.js';

/** What a command's worker loop calls: one more run finished; the line cleared before the report. */
export interface RunProgress {
  ran(index: number): void;
  clear(): void;
}

/**
 * With `--progress`, one line per scenario finished; on a terminal (and without --json), one
 * line rewritten in place; else nothing. `runsPerScenario` runs make one scenario (compare: one
 * per profile); `files` are the scenarios in their order.
 */
export function runProgress(command: string, values: { progress?: unknown; json?: unknown }, files: readonly string[], runsPerScenario: number,
  write: (text: string) => void = (t) => void process.stderr.write(t), tty = !!process.stderr.isTTY): RunProgress | undefined {
  const lines = !!values.progress;
  if (!lines && !(tty && !values.json)) return undefined;
  const start = Date.now();
  const text = (done: number): string => `${command}: ${done} of ${files.length} scenario(s), ${((Date.now() - start) / 1000).toFixed(1)} s (${escapeControls(files[done - 1]!)})`; // written past the io that escapes the rest
  return {
    ran: (index) => {
      if ((index + 1) % runsPerScenario !== 0) return;
      const done = (index + 1) / runsPerScenario;
      write(lines ? `progress: ${text(done)}\n` : `\r\x1b[K  ${text(done)}`);
    },
    clear: () => {
      if (!lines) write('\r\x1b[K');
    },
  };
}
