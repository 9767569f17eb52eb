// Reading what the kernel exposes about a process's pages: /proc/PID/pagemap (present bit 63,
// swapped bit 62, PM_MMAP_EXCLUSIVE bit 56, PFN bits 0-54), /proc/kpageflags, and VmPTE in
// /proc/PID/status.

import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { OracleError } from './agent.js';

export interface PageEntry {
  present: boolean;
  /** The frame number (0 when not present, or hidden without CAP_SYS_ADMIN). */
  pfn: number;
  /** PM_MMAP_EXCLUSIVE: the page is mapped exactly once. */
  mappedOnce: boolean;
  /** A swap entry (bit 62). */
  swapped: boolean;
  /** PM_UFFD_WP (bit 57): the entry carries userfaultfd's write-protect bit (a PTE, swap entry or marker). */
  uffdWp: boolean;
}

const PFN_MASK = (1n << 55n) - 1n;
/** kpageflags bits (include/uapi/linux/kernel-page-flags.h). */
export const KPF_ANON = 12n;
export const KPF_KSM = 21n;
/** A tail page of a compound page (of a THP: its flags word is the folio's, its head's). */
export const KPF_COMPOUND_TAIL = 16n;
export const KPF_THP = 22n;
export const KPF_ZERO_PAGE = 24n;
/** KPF_OWNER_2, which is PG_anon_exclusive on anonymous pages. */
export const KPF_ANON_EXCLUSIVE = 34n;

function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, buf, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return buf.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

/** Swap types from here on are no swap files (MAX_SWAPFILES is at most 32 - 8 with migration, device, hwpoison and marker entries). */
const SWP_FIRST_NON_FILE = 24;

/** The pagemap entries of n pages of process pid from page number vpn on. */
export function pagemap(pid: number, vpn: number, n: number): PageEntry[] {
  let buf: Buffer;
  try {
    buf = readAt(`/proc/${pid}/pagemap`, vpn * 8, n * 8);
  } catch (e) {
    // The process is gone (killed by a signal to the process group, say): the replay stops there.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') throw new OracleError(`process ${pid} is gone: its pagemap cannot be read`);
    throw e;
  }
  const out: PageEntry[] = [];
  for (let i = 0; i < n; i++) {
    if ((i + 1) * 8 > buf.length) {
      out.push({ present: false, pfn: 0, mappedOnce: false, swapped: false, uffdWp: false });
      continue;
    }
    const e = buf.readBigUInt64LE(i * 8);
    out.push({
      present: (e >> 63n & 1n) === 1n,
      pfn: (e >> 63n & 1n) === 1n ? Number(e & PFN_MASK) : 0,
      mappedOnce: (e >> 56n & 1n) === 1n,
      // A PTE marker (userfaultfd's uffd-wp marker on a none PTE of shared memory) is a swap-type
      // entry too: its type (bits 0-4, shown to root) is one past the swap files' (SWP_PTE_MARKER), no swap slot.
      swapped: (e >> 62n & 1n) === 1n && Number(e & 0x1fn) < SWP_FIRST_NON_FILE,
      uffdWp: (e >> 57n & 1n) === 1n,
    });
  }
  return out;
}

/** The kpageflags word of a frame, or null when it cannot be read. */
export function kpageflags(pfn: number): bigint | null {
  try {
    const b = readAt('/proc/kpageflags', pfn * 8, 8);
    return b.length === 8 ? b.readBigUInt64LE(0) : null;
  } catch {
    return null;
  }
}

/** /proc/kpagecount of a frame (folio_precise_page_mapcount under CONFIG_PAGE_MAPCOUNT), or null. */
export function kpagecount(pfn: number): number | null {
  try {
    const b = readAt('/proc/kpagecount', pfn * 8, 8);
    return b.length === 8 ? Number(b.readBigUInt64LE(0)) : null;
  } catch {
    return null;
  }
}

export function hasFlag(flags: bigint, bit: bigint): boolean {
  return (flags >> bit & 1n) === 1n;
}

/**
 * Whether KSM scans the process (its mm is on ksmd's list: MMF_VM_MERGEABLE), from
 * /proc/PID/ksm_stat's `ksm_mergeable` (Linux 6.9+); null when the kernel does not say.
 */
export function ksmMergeable(pid: number): boolean | null {
  try {
    const m = /^ksm_mergeable:\s+(yes|no)/m.exec(readFileSync(`/proc/${pid}/ksm_stat`, 'utf8'));
    return m ? m[1] === 'yes' : null;
  } catch {
    return null;
  }
}

/** /sys/kernel/mm/ksm/run now (`none`: no KSM in this kernel). */
export function ksmRun(): string {
  try {
    return readFileSync('/sys/kernel/mm/ksm/run', 'utf8').trim();
  } catch {
    return 'none';
  }
}

/** VmPTE of a process in kB (its page tables below the PGD), or null when it is gone. */
export function vmPteKb(pid: number): number | null {
  try {
    const m = /^VmPTE:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
