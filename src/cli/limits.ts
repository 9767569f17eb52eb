// Resource limits a user can ask past: the host memory a scenario needs (`run`, `compare`,
// `explore --from`), refused before anything is allocated.

import { totalmem } from 'node:os';
import { BYTES_PER_PAGE_MAPPING, estimateScenario } from '../engine/estimate.js';
import type { Scenario } from '../scenario/index.js';
import { UsageError } from './errors.js';

/** The default --max-memory: half of this machine's memory, in MiB. */
export function defaultMaxMemoryMB(): number {
  return Math.max(64, Math.floor(totalmem() / 2 / 2 ** 20));
}

/** --max-memory MiB, or the default. */
export function maxMemoryOpt(v: unknown, command: string): number {
  if (v === undefined) return defaultMaxMemoryMB();
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 64 || n > 2 ** 30) {
    throw new UsageError(`cowlab ${command}: --max-memory takes a whole number of MiB from 64 to ${2 ** 30}, got '${String(v)}'`);
  }
  return n;
}

const mib = (bytes: number): string => `${Math.ceil(bytes / 2 ** 20)} MiB`;

/**
 * Refuse (exit 2, FILE:LINE:COL of the step that passes the limit) every scenario whose
 * estimated host memory is above `limitMB`; all files' errors together.
 */
export function checkScenarioMemory(scenarios: readonly Scenario[], limitMB: number, given: boolean): void {
  const limitPages = Math.floor((limitMB * 2 ** 20) / BYTES_PER_PAGE_MAPPING);
  const errors: { file: string; line: number; col: number; message: string }[] = [];
  for (const sc of scenarios) {
    const e = estimateScenario(sc, limitPages);
    if (e.peakPages <= limitPages || e.peakAt === null) continue;
    errors.push({
      file: sc.file, line: e.peakAt.pos.line, col: e.peakAt.pos.col,
      message: `'${e.peakAt.text}' brings the scenario to ${e.peakPages} mapped pages, about ${mib(e.bytes)} of host memory ` +
        `(${BYTES_PER_PAGE_MAPPING} bytes a page), past the limit of ${limitMB} MiB ` +
        `(${given ? '--max-memory' : "half of this machine's memory; --max-memory MiB changes it"})`,
    });
  }
  if (errors.length > 0) throw new UsageError(errors.map((e) => `${e.file}:${e.line}:${e.col}: error: ${e.message}`).join('\n'), errors);
}

/**
 * The most pages an `explore --from` start state may map (summed over its processes): every
 * state of the search holds every page, and one transition on 4096 pages takes about 0.1 s (a copy of
 * the state and its canonical key of 150 KB), so the bounds, checked between transitions, still stop the
 * search within a second.
 */
export const MAX_FROM_PAGES = 4096;

export function checkExploreStart(sc: Scenario): void {
  const e = estimateScenario(sc, MAX_FROM_PAGES);
  if (e.peakPages <= MAX_FROM_PAGES || e.peakAt === null) return;
  const message = `'${e.peakAt.text}' brings the start state to ${e.peakPages} mapped pages; explore --from takes at most ` +
    `${MAX_FROM_PAGES} (every state of the search holds every page): start from a smaller scenario`;
  throw new UsageError(`${sc.file}:${e.peakAt.pos.line}:${e.peakAt.pos.col}: error: ${message}`,
    [{ file: sc.file, line: e.peakAt.pos.line, col: e.peakAt.pos.col, message }]);
}

/** The host refused the model a typed array (a ulimit, a container's limit below the default). */
export function isOutOfMemory(e: unknown): boolean {
  return e instanceof Error && /Array buffer allocation failed|Invalid typed array length|Invalid array buffer length/i.test(e.message);
}

/** Run `fn` (the runs of `sc`); an allocation the host refused becomes exit 2 naming the file. */
export function guardMemory<T>(sc: Scenario, limitMB: number, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isOutOfMemory(e)) throw outOfMemory(sc, e as Error, limitMB);
    throw e;
  }
}

export function outOfMemory(sc: Scenario, e: Error, limitMB: number): UsageError {
  const est = estimateScenario(sc);
  return new UsageError(`${sc.file}: error: out of host memory while running it (${e.message}): its estimate, ${mib(est.bytes)}, ` +
    `is under the limit of ${limitMB} MiB, but this process may not use that much (a ulimit or a container's limit?); ` +
    'give a lower --max-memory or map fewer pages', [{ file: sc.file, line: 0, col: 0, message: `out of host memory: ${e.message}` }]);
}
