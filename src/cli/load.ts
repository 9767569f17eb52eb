// The first CLI stages: find the scenario files, read and parse them, check their profile names.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ProfileError, ProfileRegistry, resolveKernel } from '../profiles/resolve.js';
import { parseScenario, type Scenario } from '../scenario/index.js';
import { UsageError } from './errors.js';

const SUFFIX = '.scn.yaml';

/** Files named on the command line; a directory stands for every *.scn.yaml below it. */
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
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.name.endsWith(SUFFIX)) out.push(p);
  }
  return out;
}

/** Read and parse every file; all errors of all files are reported together. */
export function loadScenarios(files: readonly string[], profiles: ProfileRegistry): Scenario[] {
  const out: Scenario[] = [];
  const errors: { file: string; line: number; col: number; message: string }[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      errors.push({ file, line: 0, col: 0, message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` });
      continue;
    }
    const r = parseScenario(text, file);
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
        errors.push({ file, line: sc.kernelPos?.line ?? 1, col: sc.kernelPos?.col ?? 1, message: `unknown profile '${sc.kernel}' (known: ${profiles.names().join(', ')}, or a what-if name: PROFILE+SWITCH=VALUE,...)` });
      }
    }
    for (const [name, o] of sc.outcomes) {
      if (name !== '*' && !profiles.has(name)) {
        errors.push({ file, line: o.pos.line, col: o.pos.col, message: `outcomes: unknown profile '${name}' (known: ${profiles.names().join(', ')}, or "*")` });
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
