// The C helper (oracle/*.c): compiled at first use with the system C compiler into a cache
// directory, keyed by a hash of its source, the compiler and the flags.

import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The oracle cannot run here (not Linux, no C compiler, the helper does not build). */
export class OracleUnavailable extends Error {}

const FLAGS = ['-D_GNU_SOURCE', '-O2', '-Wall', '-Wextra', '-std=gnu11', '-pthread'];
const BINARY = 'cowlab-oracle';

export interface BuildOptions {
  /** The compiler to use (default: $CC, then cc, gcc, clang). */
  cc?: string;
  /** Where compiled helpers are kept (default: $COWLAB_CACHE_DIR, else ~/.cache/cowlab). */
  cacheDir?: string;
  /** The helper's source directory (default: oracle/ of this package). */
  sourceDir?: string;
  /** The platform to assume (tests). */
  platform?: string;
}

/** oracle/ next to dist/ (this file is dist/src/oracle/build.js once compiled). */
export function helperSourceDir(): string {
  return fileURLToPath(new URL('../../../oracle/', import.meta.url));
}

function cacheRoot(opts: BuildOptions): string {
  if (opts.cacheDir) return opts.cacheDir;
  if (process.env.COWLAB_CACHE_DIR) return process.env.COWLAB_CACHE_DIR;
  const xdg = process.env.XDG_CACHE_HOME;
  const home = xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.cache');
  return join(home, 'cowlab');
}

function findCompiler(opts: BuildOptions): { cc: string; version: string } {
  const tried: string[] = [];
  const candidates = opts.cc ? [opts.cc] : [process.env.CC, 'cc', 'gcc', 'clang'].filter((c): c is string => !!c);
  for (const cc of candidates) {
    tried.push(cc);
    const r = spawnSync(cc, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return { cc, version: (r.stdout ?? '').split('\n')[0] ?? '' };
  }
  throw new OracleUnavailable(
    `cowlab oracle needs a C compiler to build its helper, and none was found (tried ${tried.join(', ')}); install gcc (e.g. apt-get install gcc) or set CC`,
  );
}

/** The path of the compiled helper, building it first when the cache has none for this source. */
export function ensureHelper(opts: BuildOptions = {}): string {
  const platform = opts.platform ?? process.platform;
  if (platform !== 'linux') {
    throw new OracleUnavailable(`cowlab oracle replays scenarios on the live Linux kernel; this system is ${platform}, so there is no kernel to compare with (the model commands work everywhere)`);
  }
  const src = opts.sourceDir ?? helperSourceDir();
  if (!existsSync(src)) throw new OracleUnavailable(`the oracle helper's source is missing (looked in ${src})`);
  const files = readdirSync(src).filter((f) => f.endsWith('.c') || f.endsWith('.h')).sort();
  if (!files.some((f) => f.endsWith('.c'))) throw new OracleUnavailable(`no C source in ${src}`);
  const { cc, version } = findCompiler(opts);
  const h = createHash('sha256');
  h.update(`${cc}\n${version}\n${FLAGS.join(' ')}\n`);
  for (const f of files) h.update(`${f}\n`).update(readFileSync(join(src, f))).update('\n');
  const dir = join(cacheRoot(opts), `oracle-${h.digest('hex').slice(0, 16)}`);
  const bin = join(dir, BINARY);
  try {
    accessSync(bin, constants.X_OK);
    return bin;
  } catch {
    // not built yet
  }
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new OracleUnavailable(`cannot create the cache directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)} (set COWLAB_CACHE_DIR)`);
  }
  // Build beside the final name, then rename: concurrent first uses do not see half a file.
  const tmp = `${bin}.tmp-${process.pid}`;
  const r = spawnSync(cc, [...FLAGS, '-o', tmp, ...files.filter((f) => f.endsWith('.c')).map((f) => join(src, f))], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    const why = r.error ? String(r.error.message) : (r.stderr || r.stdout || `exit status ${r.status}`).trim();
    throw new OracleUnavailable(`the oracle helper did not build with ${cc}:\n${why}`);
  }
  renameSync(tmp, bin);
  return bin;
}
