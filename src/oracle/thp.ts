// Transparent huge pages in the live replay: the THP mode this machine runs (the probe's), how a
// scenario's `config.thp` is had on it (per-mapping MADV_HUGEPAGE / MADV_NOHUGEPAGE), and which
// pages of each scenario region a huge PMD maps, on the model and on the kernel (the `thp`
// observation, made after every step of a scenario that can have THPs).
//
// The kernel side reads PAGEMAP_SCAN's PAGE_IS_HUGE (Linux 6.7+) through the helper: pagemap and
// kpageflags cannot tell a PMD-mapped THP from a PTE-mapped one.

import { readFileSync } from 'node:fs';
import { HPAGE_PMD_NR, PTE_SPECIAL } from '../core/constants.js';
import { pmdLeafSlot } from '../core/walk.js';
import type { Runner } from '../engine/run.js';
import type { Scenario, Step } from '../scenario/index.js';
import type { Agent } from './agent.js';
import type { Facilities } from './facilities.js';

export type ThpMode = 'always' | 'madvise' | 'never';

/** The mode PMD-sized THPs follow on this machine ('never' also where there are none, or not of 2 MiB). */
export function liveThpMode(f: Facilities): ThpMode {
  const kb = f.thpInfo?.pmdKb ?? null;
  if (f.thp === 'always' || f.thp === 'madvise') return kb === 2048 || kb === null ? f.thp : 'never';
  return 'never';
}

/** Does the scenario ask for THPs anywhere (then the replay checks huge PMDs after every step)? */
export function usesThp(sc: Scenario): boolean {
  if (sc.config.thp === 'always') return true;
  return sc.steps.some((s) => (s.op === 'mmap' && s.thp === 'thp') || (s.op === 'madvise' && ['hugepage', 'collapse'].includes(s.advice)));
}

/**
 * How the scenario's THP mode is had on this machine. `model` is the mode the model runs with
 * (the scenario's, unless this machine cannot give it: then `never`, and `why` says so);
 * `mmapAdvice` the advice a new mapping gets; `madvise` what `madvise ... hugepage|nohugepage`
 * sends.
 */
export interface ThpPlan {
  model: ThpMode;
  why: string | null;
  /** The scenario's mode cannot be had at all here (the scenario is skipped with this reason). */
  impossible: string | null;
  mmapAdvice(flag: 'thp' | 'nothp' | null): 'thp' | 'nothp' | null;
  madvise(advice: string): string;
}

/**
 * The plan for a scenario: `always` is had on a `madvise` machine by MADV_HUGEPAGE on every
 * mapping not marked `nothp`; `madvise` on an `always` machine by MADV_NOHUGEPAGE on every
 * unmarked mapping; `never` on a machine with THPs by MADV_NOHUGEPAGE everywhere (MADV_HUGEPAGE
 * included); a machine without THPs (mode never, no THP, a PMD that is not 2 MiB) runs the model
 * with `never`.
 */
export function thpPlan(sc: Scenario, f: Facilities): ThpPlan {
  const want: ThpMode = sc.config.thp ?? 'madvise';
  const live = liveThpMode(f);
  const same = (flag: 'thp' | 'nothp' | null): 'thp' | 'nothp' | null => flag;
  const asIs = (a: string): string => a;
  if (live === 'never' || want === live) {
    const why = live === 'never' && want !== 'never'
      ? `this machine gives no 2 MiB THPs (${f.thp === null ? 'no THP in this kernel' : `THP mode ${f.thp}${f.thpInfo?.pmdKb && f.thpInfo.pmdKb !== 2048 ? `, PMD size ${f.thpInfo.pmdKb} kB` : ''}`}): the model runs with config.thp never`
      : null;
    return { model: live === 'never' ? 'never' : want, why, impossible: null, mmapAdvice: same, madvise: asIs };
  }
  if (want === 'madvise') return { model: want, why: null, impossible: null, mmapAdvice: (flag) => flag ?? 'nothp', madvise: asIs };
  if (want === 'always') return { model: want, why: null, impossible: null, mmapAdvice: (flag) => flag ?? 'thp', madvise: asIs };
  // want never, live madvise or always.
  const collapse = sc.steps.some((s) => s.op === 'madvise' && (s.advice as string) === 'collapse');
  return {
    model: want, why: null,
    impossible: collapse ? `config.thp never is had here (THP mode ${live}) by MADV_NOHUGEPAGE, which MADV_COLLAPSE refuses` : null,
    mmapAdvice: () => 'nothp',
    madvise: (a) => (a === 'hugepage' ? 'nohugepage' : a),
  };
}

/** Page runs of a region a huge PMD maps: [lo, hi, zero]. */
export type HugeRuns = [number, number, boolean][];

/** A region's huge PMDs as the `thp` observation writes them. */
export function hugeRunsText(region: string, runs: HugeRuns): string {
  if (runs.length === 0) return 'no huge PMD';
  return runs.map(([lo, hi, zero]) => `${region}[${lo}..${hi}]${zero ? ' (huge zero page)' : ''}`).join(', ');
}

/** Merges adjacent runs of the same kind. */
export function mergeRuns(runs: HugeRuns): HugeRuns {
  const out: HugeRuns = [];
  for (const r of [...runs].sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last && last[1] + 1 === r[0] && last[2] === r[2]) last[1] = r[1];
    else out.push([r[0], r[1], r[2]]);
  }
  return out;
}

/** The model's huge PMDs, per `PROC REGION` of each live address space (one name per mm). */
export function modelHugeMap(run: Runner): Map<string, string> {
  const k = run.k;
  const out = new Map<string, string>();
  const seen = new Set<unknown>();
  for (const p of run.procs.values()) {
    if (!p.alive || seen.has(p.mm)) continue;
    seen.add(p.mm);
    for (const [region, r] of p.regions) {
      const runs: HugeRuns = [];
      if (p.mm.hugePmds > 0) {
        for (let a = r.start - (r.start & (HPAGE_PMD_NR - 1)); a < r.start + r.n; a += HPAGE_PMD_NR) {
          const s = pmdLeafSlot(k, p.mm, a);
          if (s < 0) continue;
          const lo = Math.max(a, r.start) - r.start;
          const hi = Math.min(a + HPAGE_PMD_NR, r.start + r.n) - 1 - r.start;
          runs.push([lo, hi, (k.tables.bits[s]! & PTE_SPECIAL) !== 0]);
        }
      }
      out.set(`${p.group} ${region}`, hugeRunsText(region, mergeRuns(runs)));
    }
  }
  return out;
}

/** `thpscan`'s answer ("ok 0-511 1024-1535z") as runs clipped to [0, n). */
export function parseScan(words: string[], n: number): HugeRuns {
  const runs: HugeRuns = [];
  for (const w of words.slice(1)) {
    const m = /^(\d+)-(\d+)(z?)$/.exec(w);
    if (!m) continue;
    const lo = Math.max(0, Number(m[1]));
    const hi = Math.min(n - 1, Number(m[2]));
    if (lo <= hi) runs.push([lo, hi, m[3] === 'z']);
  }
  return mergeRuns(runs);
}

/** The THP fault-fallback counters of /proc/vmstat (a failed 2 MiB allocation counts there), or null. */
export function thpFallbacks(): number | null {
  try {
    const text = readFileSync('/proc/vmstat', 'utf8');
    let n = 0;
    for (const m of text.matchAll(/^thp_fault_fallback(?:_charge)? (\d+)$/gm)) n += Number(m[1]);
    return n;
  } catch {
    return null;
  }
}

/** Steps after which no huge PMD can have changed (they touch no memory of the scenario). */
export function thpQuietStep(step: Step): boolean {
  return step.op.startsWith('expect-') || ['thread', 'check', 'stats'].includes(step.op);
}

/**
 * Holds khugepaged asleep for the session (the agent's `khpause`, oracle/khugepaged.c): left
 * running, it collapses a PTE-mapped THP that a scenario made on purpose whenever its scan
 * comes by (every scan_sleep_millisecs), between two steps. The agent puts the machine's values
 * back when it ends (quit, end of input, SIGINT, SIGTERM, SIGHUP; a killed agent's are put back
 * by `cowlab-oracle reclaim`). Records the outcome in `f`; the machine's values, as the agent
 * recorded them, replace the probe's (another session may have paused khugepaged already).
 */
export function pauseKhugepaged(agent: Agent, f: Facilities): void {
  const t = f.thpInfo;
  if (t === null) return; // no THP: no khugepaged
  const r = agent.call('khpause');
  if (r[0] === 'ok') {
    t.khugepaged.scanSleepMs = Number(r[1]);
    t.khugepaged.pagesToScan = Number(r[2]);
    t.khugepagedPaused = { scanSleepMs: Number(r[3]), pagesToScan: Number(r[4]), settledMs: Number(r[5] ?? -1) };
    t.khugepagedWhy = null;
    return;
  }
  t.khugepagedPaused = null;
  t.khugepagedWhy = `khugepaged could not be held asleep (${r.slice(2).join(' ')}): it may collapse a PTE-mapped THP between two steps of a scenario (a disagreement no step caused)`;
}
