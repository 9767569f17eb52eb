// What the oracle changes on the machine for `swapout` and `ksm merge`, asked of the helper's
// agent (oracle/system.c does the changing and always the putting back):
//   - a swap file of its own, set up at the first swapout of a session and kept until the
//     session ends: 64 MiB under $COWLAB_SWAP_DIR, the temporary directory or /var/tmp (the
//     first whose filesystem takes swap files), enabled at priority 32767 so that MADV_PAGEOUT
//     writes there first; removed by the agent on quit, at the end of its input (the driver
//     died), and on SIGINT, SIGTERM or SIGHUP; after an agent that could not (SIGKILL, the
//     watchdog: agent.ts), by `cowlab-oracle reclaim`. Swap the machine already had is never touched.
//   - KSM switched on for each `ksm merge` until ksmd has made KSM_PASSES full scans, then its
//     settings put back (run, pages_to_scan, sleep_millisecs, smart_scan), and every CPU's LRU
//     batches drained (ksmd's copies would wait in its CPU's batch, off the LRU).
// Oracles running side by side on one machine keep out of each other's way with two lock files
// the agent holds until the scenario ends: a scenario with mergeable mappings holds the KSM lock
// (no other oracle's ksm merge merges its pages meanwhile), one that swapped pages out holds the
// swap lock shared (no other oracle's swapoff pulls its pages back in meanwhile).

import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Agent } from './agent.js';
import type { Facilities } from './facilities.js';
import { reserveHugetlb } from './hugetlb.js';

/** The swap file's size in pages (64 MiB). */
export const SWAP_PAGES = 16384;
/**
 * Full scans to wait for. ksmd compares a page's checksum with the one of its previous scan
 * before it puts the page in the unstable tree, so a page merges at its second scan; a
 * process that asked for MADV_MERGEABLE while ksmd was stopped sits just behind its cursor, so
 * the first pass counted may not reach it. Three passes cover both.
 */
export const KSM_PASSES = 3;
export const KSM_TIMEOUT_MS = 10_000;

export interface KsmRun {
  scans: number;
  ms: number;
  /** The value of /sys/kernel/mm/ksm/run that was put back. */
  run: string;
  /** 0 when every CPU's LRU batches were drained after ksmd stopped, else the errno of the try. */
  drainErrno: number;
}

/** Where a swap file may go: $COWLAB_SWAP_DIR, the temporary directory, /var/tmp. */
export function swapDirs(): string[] {
  const dirs = [process.env.COWLAB_SWAP_DIR, tmpdir(), '/var/tmp'].filter((d): d is string => !!d && !/\s/.test(d) && existsSync(d));
  return [...new Set(dirs)];
}

export class SystemOps {
  /** The agent has a swap file enabled (facilities.swap stays as the record of it). */
  private enabled = false;

  constructor(
    private readonly agent: () => Agent,
    private readonly f: Facilities,
  ) {}

  /** Sets the swap file up when first needed; null when swap is ready, else why it cannot be. */
  swap(): string | null {
    if (this.enabled) return null;
    if (this.f.swapWhy) return this.f.swapWhy;
    if (!this.f.root) {
      this.f.swapWhy = 'swapout needs swap, and setting up a swap file needs root (swapon: CAP_SYS_ADMIN)';
      return this.f.swapWhy;
    }
    const dirs = swapDirs();
    if (dirs.length === 0) {
      this.f.swapWhy = 'swapout needs swap, and there is no directory for a swap file (set COWLAB_SWAP_DIR)';
      return this.f.swapWhy;
    }
    const r = this.agent().call(`swapon ${SWAP_PAGES} ${dirs.join(' ')}`);
    if (r[0] === 'ok') {
      this.f.swap = { path: r[1]!, pages: Number(r[2]), priority: Number(r[3]) };
      this.enabled = true;
      return null;
    }
    this.f.swapWhy = `swapout needs swap, and no swap file could be set up here: ${r.slice(2).join(' ')}`;
    return this.f.swapWhy;
  }

  /** This scenario may have pages out from now on: hold the swap lock (shared) until it ends. Why not, or null. */
  swapHold(): string | null {
    const r = this.agent().call('swaphold');
    return r[0] === 'ok' ? null : r.slice(2).join(' ');
  }

  /**
   * This scenario has mergeable mappings from now on: hold the KSM lock until it ends, so that
   * no other oracle's ksm merge touches them. Returns KSM's run value now (`none`: no KSM), or
   * why the lock could not be had.
   */
  ksmHold(): { run: string } | string {
    const r = this.agent().call('ksmhold');
    return r[0] === 'ok' ? { run: r[1] ?? 'none' } : r.slice(2).join(' ');
  }

  /** The hugetlb pool set to `n` free unreserved huge pages for this scenario (put back at its end); or why not. */
  hugetlb(n: number): string | null {
    return reserveHugetlb(this.agent(), this.f, n);
  }

  /** Pages still free in the oracle's swap file (null: unknown). */
  swapFree(): number | null {
    if (!this.enabled) return null;
    const r = this.agent().call('swapinfo');
    return r[0] === 'ok' ? Number(r[1]) - Number(r[2]) : null;
  }

  /**
   * ksmd switched on until it has made KSM_PASSES full scans, with smart_scan (where the kernel
   * has it) as `smartScan` says meanwhile, then put back; or why not.
   */
  ksmMerge(smartScan: boolean): KsmRun | string {
    if (!this.f.ksm) return 'ksm merge needs KSM, and this kernel has none (/sys/kernel/mm/ksm is missing: CONFIG_KSM is not set)';
    if (!this.f.root) return 'ksm merge needs KSM switched on for a moment, which needs root (/sys/kernel/mm/ksm/run)';
    const r = this.agent().call(`ksm ${KSM_PASSES} ${KSM_TIMEOUT_MS} ${smartScan ? 1 : 0}`);
    if (r[0] === 'ok') return { scans: Number(r[1]), ms: Number(r[2]), run: r[3] ?? '?', drainErrno: Number(r[4] ?? 0) };
    return `ksm merge could not be replayed: ${r.slice(2).join(' ')}`;
  }

  /** Removes the swap file now (the agent would at its end anyway); a problem, or null. */
  swapOff(): string | null {
    if (!this.enabled) return null;
    const r = this.agent().call('swapoff');
    if (r[0] !== 'ok') return `swapoff of ${this.f.swap?.path ?? 'the swap file'} failed: ${r.slice(1).join(' ')}`;
    this.enabled = false;
    return null;
  }

  /** The swap file is enabled now. */
  get swapOn(): boolean {
    return this.enabled;
  }

  /** A new agent: the old one removed its swap file when its input closed. */
  agentRestarted(): void {
    this.enabled = false;
    this.f.swapWhy = null;
  }
}
