// The first CLI stages: find the scenario files, read and parse them, check their profile names.

import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { ProfileError, ProfileRegistry, resolveKernel } from '../profiles/resolve.js';
import { parseScenario, type Scenario } from '../scenario/index.js';
import { errnoText, UsageError } from './errors.js';

const SUFFIX = '.scn.yaml';

/** The largest scenario (or profile) file read: 1 MiB, as `cowlab serve` serves. */
export const MAX_INPUT_BYTES = 1 << 20;

/** What a file that is not a regular file is, for messages. */
function fileType(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * The text of a regular file of at most MAX_INPUT_BYTES, or why not (a message without the
 * file's name). Opened without blocking (a FIFO would wait for a writer forever) and checked
 * on the open descriptor, so a file swapped for a FIFO or a device after a check is caught too.
 */
export function readInputFile(file: string): { text: string } | { error: string } {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    return { error: `cannot read: ${errnoText(e)}` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { error: `cannot read: ${fileType(st)}, not a scenario file (only regular files are read)` };
    if (st.size > MAX_INPUT_BYTES) return { error: `cannot read: ${st.size} bytes, more than the limit of ${MAX_INPUT_BYTES} (1 MiB)` };
    // Read at most one byte past the limit: the file may grow after fstat.
    const buf = Buffer.alloc(Math.min(st.size, MAX_INPUT_BYTES) + 1);
    let n = 0;
    for (let got = -1; got !== 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
    if (n > MAX_INPUT_BYTES) return { error: `cannot read: more than the limit of ${MAX_INPUT_BYTES} bytes (1 MiB)` };
    return { text: buf.subarray(0, n).toString('utf8') };
  } catch (e) {
    return { error: `cannot read: ${errnoText(e)}` };
  } finally {
    closeSync(fd);
  }
}

/**
 * Files named on the command line; a directory stands for every *.scn.yaml below it. Anything
 * named like a scenario below a directory is listed (a directory, FIFO or device so named
 * included), so that reading it reports what it is rather than passing over it in silence.
 */
export function expandPaths(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new UsageError(`${p}: no such file or directory`);
    }
    if (st.isDirectory()) {
      const found = walk(p);
      if (found.length === 0) throw new UsageError(`${p}: no *${SUFFIX} files in this directory`);
      out.push(...found);
    } else {
      out.push(p);
    }
  }
  return out;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new UsageError(`${dir}: cannot read this directory: ${errnoText(e)}`);
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.name.endsWith(SUFFIX)) out.push(p);
    else if (e.isDirectory()) out.push(...walk(p));
  }
  return out;
}

/** Read and parse every file; all errors of all files are reported together. */
export function loadScenarios(files: readonly string[], profiles: ProfileRegistry): Scenario[] {
  const out: Scenario[] = [];
  const errors: { file: string; line: number; col: number; message: string }[] = [];
  for (const file of files) {
    const read = readInputFile(file);
    if ('error' in read) {
      errors.push({ file, line: 0, col: 0, message: read.error });
      continue;
    }
    const r = parseScenario(read.text, file);
    if (!r.ok) {
      for (const e of r.errors) errors.push({ file: e.file, line: e.line, col: e.col, message: e.message });
      continue;
    }
    const sc = r.scenario;
    if (sc.kernel !== null && !profiles.has(sc.kernel)) {
      // A what-if name (`v6+mmForbidsZeropage=true`, as `--kernel` takes it) is a kernel too.
      try {
        resolveKernel(profiles, sc.kernel);
      } catch (e) {
        if (!(e instanceof ProfileError)) throw e;
        // A what-if name's own fault (its base, a switch, a value) is the resolver's message, not 'unknown profile NAME'.
        const whatIf = e.message.startsWith(`'${sc.kernel}'`) ? e.message : `kernel '${sc.kernel}': ${e.message}`;
        const message = sc.kernel.includes('=') ? whatIf : profiles.unknown(sc.kernel, ', or a what-if name: PROFILE+SWITCH=VALUE,...');
        errors.push({ file, line: sc.kernelPos?.line ?? 1, col: sc.kernelPos?.col ?? 1, message });
      }
    }
    for (const [name, o] of sc.outcomes) {
      if (name !== '*' && !profiles.has(name)) {
        errors.push({ file, line: o.pos.line, col: o.pos.col, message: `outcomes: ${profiles.unknown(name, ', or "*"')}` });
      }
    }
    out.push(sc);
  }
  if (errors.length > 0) {
    const text = errors.map((e) => (e.line > 0 ? `${e.file}:${e.line}:${e.col}: error: ${e.message}` : `${e.file}: error: ${e.message}`)).join('\n');
    throw new UsageError(text, errors);
  }
  return out;
}
