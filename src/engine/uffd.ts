// userfaultfd write-protect, the monitor's side in the ideal memory: the faults the monitor
// resolved un-protect their pages, and every write (CPU, FOLL_WRITE GUP, device) checks that a
// page the monitor protected reached the monitor (a userfault) before it changed, or it is a
// `uffd-wp-bypass`. The monitor's requests (`P uffd ...`) are mm-ops.ts's.

import type { RunState } from './state.js';

/** The faults the monitor resolved since the last call: their pages are no longer protected in the ideal memory. */
export function drainUffd(s: RunState): void {
  const r = s.k.uffdResolved;
  if (r.length === 0) return;
  for (let i = 0; i < r.length; i += 2) {
    const name = s.mmNames[r[i]!];
    if (name !== undefined) s.ideal.uffdUnprotect(s.procs.get(name)?.group ?? name, r[i + 1]!, r[i + 1]! + 1);
  }
  r.length = 0;
}

/**
 * A write (by the CPU, through a write GUP, or by the device) landed on vpn of `group`: true if the
 * monitor had write-protected the page and was not told first (no userfault). The caller then
 * reports uffdBypass: its text is made only for a violation.
 */
export function bypassesUffd(s: RunState, group: string, vpn: number): boolean {
  drainUffd(s);
  return s.ideal.uffdProtected(group, vpn);
}

/** The violation of a write that bypassed the monitor (bypassesUffd): `who` changed `page`. */
export function uffdBypass(s: RunState, page: string, who: string, procs: string[], frames: number[] = []): void {
  s.violation('uffd-wp-bypass', `${who} changed ${page}, which the userfaultfd monitor had write-protected, without a userfault first`, procs, frames);
}

/**
 * The ideal memory's verdict on a GUP of `n` pages of `group` from lo (`failed`: it ended in
 * EFAULT): 'ok' where it must succeed, 'fault' where the mapping forbids the access, 'uffd' where
 * it failed on a page the monitor protected and was not told of: the kernel's answer to a
 * userfault the GUP could not wait for (no FAULT_FLAG_ALLOW_RETRY: pin_user_pages,
 * get_user_pages, a long-term pin's gup-fast fallback before 6.2), EFAULT, which is allowed.
 */
export function gupIdealVerdict(s: RunState, group: string, lo: number, n: number, write: boolean, failed: boolean): 'ok' | 'fault' | 'uffd' {
  for (let v = lo; v < lo + n; v++) if (s.ideal.access(group, v, write) === 'fault') return 'fault';
  if (!failed) return 'ok';
  drainUffd(s);
  for (let v = lo; v < lo + n; v++) if (s.ideal.uffdProtected(group, v)) return 'uffd';
  return 'ok';
}
