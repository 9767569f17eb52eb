// Helpers of the CLI tests: main(argv, io) with a capturing io, and scenario files written into a
// temporary directory removed after the test file.

import { after } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';

/** The project root (the tests run from dist/test/...). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface Outcome {
  code: number;
  out: string;
  err: string;
}

/** Runs `cowlab ARGV...` in-process; stdout and stderr are captured. */
export function cli(...argv: string[]): Outcome {
  const out: string[] = [];
  const err: string[] = [];
  const code = main(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  if (typeof code !== 'number') throw new Error(`cowlab ${argv.join(' ')} answered a promise: use cliAsync`);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** The same, for a command that may answer a promise (one that runs long, such as oracle). */
export async function cliAsync(...argv: string[]): Promise<Outcome> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** A temporary directory (removed after the test file) and a writer of files into it. */
export function tempFiles(prefix: string, defaultName: (n: number) => string): { dir: string; file: (text: string, name?: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  return {
    dir,
    file: (text, name = defaultName(n++)) => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    },
  };
}
