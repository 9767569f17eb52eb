// Helpers of the oracle tests: a live session where this machine can replay scenarios, or the
// reason it cannot (the tests then skip with that reason, never pass silently).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Profile } from '../../src/core/profile.js';
import { builtinProfile } from '../../src/profiles/resolve.js';
import { OracleUnavailable } from '../../src/oracle/build.js';
import { NO_KPAGEFLAGS, NO_PFNS } from '../../src/oracle/facilities.js';
import { OracleSession } from '../../src/oracle/session.js';
import { parseScenario, type Scenario } from '../../src/scenario/index.js';

export interface Live {
  session: OracleSession | null;
  /** Why there is no session. */
  reason: string;
}

/** A session with everything the oracle tests need: root, frame numbers, kpageflags, io_uring. */
export function openLive(): Live {
  if (process.platform !== 'linux') return { session: null, reason: `the oracle needs Linux; this is ${process.platform}` };
  let session: OracleSession;
  try {
    session = OracleSession.open();
  } catch (e) {
    if (e instanceof OracleUnavailable) return { session: null, reason: e.message };
    throw e;
  }
  const f = session.facilities;
  const missing: string[] = [];
  if (!f.root) missing.push('not running as root');
  if (!f.pfns) missing.push(NO_PFNS);
  if (!f.kpageflags) missing.push(NO_KPAGEFLAGS);
  if (!f.uring) missing.push(f.uringWhy ?? 'no io_uring');
  if (missing.length > 0) {
    session.close();
    return { session: null, reason: `this machine cannot run the live oracle tests: ${missing.join('; ')}` };
  }
  return { session, reason: '' };
}

export function v6(): Profile {
  return builtinProfile('v6')!;
}

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/** Every *.scn.yaml of a directory of the repository, parsed. */
export function scenariosIn(dir: string): Scenario[] {
  const abs = join(REPO, dir);
  return readdirSync(abs).filter((f) => f.endsWith('.scn.yaml')).sort().map((f) => parse(readFileSync(join(abs, f), 'utf8'), join(dir, f)));
}

export function parse(text: string, file = 't.scn.yaml'): Scenario {
  const r = parseScenario(text, file);
  if (!r.ok) throw new Error(`${file}: ${r.errors.map((e) => e.format()).join('; ')}`);
  return r.scenario;
}

/** A scenario from its steps (one a line). */
export function steps(name: string, ...lines: string[]): Scenario {
  return parse(`name: ${name}\nsteps: |\n${lines.map((l) => `  ${l}`).join('\n')}\n`, `${name}.scn.yaml`);
}

/** A process that is gone, or a zombie waiting for its parent. */
export function gone(pid: number): boolean {
  try {
    return !existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

/** Waits (at most 5 s) for a signalled process to be gone. */
export async function waitGone(pid: number): Promise<void> {
  for (let i = 0; i < 500 && !gone(pid); i++) await new Promise((r) => setTimeout(r, 10));
}
