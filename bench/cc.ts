// The bench's C timers (bench/*.c), built once with the system compiler into a cache directory
// keyed by a hash of the source; null when no compiler builds it (the kernel side is left out).

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is dist/bench/cc.js once compiled). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The compiled bench/<name>.c, or null (not Linux, no compiler, or it does not build). */
export function benchHelper(name: string): string | null {
  if (process.platform !== 'linux') return null;
  const src = join(ROOT, 'bench', `${name}.c`);
  const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12);
  const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cowlab');
  const bin = join(dir, `${name}-${hash}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang'].filter((c): c is string => !!c)) {
    // Built beside the final name, then renamed: a concurrent run never sees half a file.
    const tmp = `${bin}.tmp-${process.pid}`;
    try {
      execFileSync(cc, ['-O2', '-o', tmp, src], { stdio: 'ignore' });
      renameSync(tmp, bin);
      return bin;
    } catch {
      rmSync(tmp, { force: true }); // try the next compiler
    }
  }
  return null;
}
