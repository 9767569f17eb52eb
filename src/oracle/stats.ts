// Counters on the live kernel, counted over the scenario's own mappings so that the helper's
// footprint never enters them:
//   rss.P          pages present in P's scenario mappings, the zero page and the huge zero page
//                  not counted (pagemap, kpageflags)
//   minflt.P       minor faults P took inside scenario operations (getrusage around each one)
//   PageTables_kB  per live process: VmPTE minus the helper's own tables, plus its PGD (4 kB),
//                  as the model counts it (the scenario's mappings sit in their own PGD slot)
//   AnonPages_kB   distinct anonymous frames mapped by live processes (pagemap + kpageflags)
//   AnonHugePages_kB  2 MiB per distinct THP some live process maps by a PMD (PAGEMAP_SCAN's
//                  PAGE_IS_HUGE, the huge zero page not counted; a THP shared after fork once)
//   frames_used    distinct frames mapped by live processes or held by live handles (the zero
//                  page and the huge zero page not counted)
//   pt_copies      0: Linux has no COW page tables
// cow_copies has no per-scenario source in the kernel and is not compared.

import { mapsHugeZeroPage, NO_KPAGEFLAGS, NO_PFNS } from './facilities.js';
import { hasFlag, KPF_ANON, KPF_ZERO_PAGE, kpageflags, pagemap, vmPteKb } from './procfs.js';
import type { Replay } from './replay.js';
import type { KProc } from './types.js';
import { readFileSync } from 'node:fs';

/** A count from /proc/meminfo (HugePages_Free ...), or null. */
function meminfoNumber(name: string): number | null {
  try {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export interface Measured {
  value: number | null;
  /** Why the value is not compared (shown for information when value is not null). */
  why: string | null;
}

function framesOf(r: Replay, p: KProc): number[] {
  const out: number[] = [];
  const f = r.facilities;
  // The huge zero page's frames are no more counted than the 4 KiB zero page (RSS leaves out a
  // special PMD; the model maps frame 0): known by KPF_ZERO_PAGE, which /proc/kpageflags sets
  // on every page of the huge zero folio too. Asked once per 2 MiB block (per block head: is it
  // the huge zero page), and only where a read fault may map it.
  const blocks = f.kpageflags && mapsHugeZeroPage(f) !== false ? new Map<number, boolean>() : null;
  for (const g of p.ranges) {
    // hugetlb pages are HugePages_*, not RSS, AnonPages or frames_used (as in the model).
    if (g.hugetlb) continue;
    for (const e of pagemap(p.pid, g.vpn, g.n)) {
      if (!e.present || e.pfn === 0 || e.pfn === f.zeroPfn) continue;
      if (blocks !== null) {
        const head = e.pfn - (e.pfn % 512);
        let hugeZero = blocks.get(head);
        if (hugeZero === undefined) {
          const fl = kpageflags(e.pfn);
          blocks.set(head, (hugeZero = fl !== null && hasFlag(fl, KPF_ZERO_PAGE)));
        }
        if (hugeZero) continue;
      }
      out.push(e.pfn);
    }
  }
  return out;
}

export function measureStat(r: Replay, stat: string, proc: string | null): Measured {
  const f = r.facilities;
  if (stat.startsWith('minflt.') && proc !== null) {
    const p = r.procOf(proc);
    return { value: p ? r.minflt(p) : 0, why: null };
  }
  if (stat.startsWith('uffd_faults.') && proc !== null) {
    const p = r.procOf(proc);
    return { value: p ? r.uffdFaults(p) : 0, why: null };
  }
  if (stat.startsWith('rss.') && proc !== null) {
    if (!f.pfns) return { value: null, why: NO_PFNS };
    const p = r.procOf(proc);
    return { value: p && r.isLive(proc) ? framesOf(r, p).length : 0, why: null };
  }
  switch (stat) {
    case 'PageTables_kB': {
      let kb = 0;
      for (const p of r.liveProcs()) {
        const now = vmPteKb(p.pid);
        if (now === null) return { value: null, why: `cannot read VmPTE of process ${p.pid}` };
        kb += now - p.helperPt + 4;
      }
      return { value: kb, why: null };
    }
    case 'AnonPages_kB': {
      if (!f.pfns) return { value: null, why: NO_PFNS };
      if (!f.kpageflags) return { value: null, why: NO_KPAGEFLAGS };
      const anon = new Set<number>();
      for (const p of r.liveProcs()) {
        for (const pfn of framesOf(r, p)) {
          const fl = kpageflags(pfn);
          if (fl !== null && hasFlag(fl, KPF_ANON)) anon.add(pfn);
        }
      }
      return { value: anon.size * 4, why: null };
    }
    case 'AnonHugePages_kB': {
      if (!f.pfns) return { value: null, why: NO_PFNS };
      if (f.thpInfo === null) return { value: 0, why: null };
      if (!f.thpInfo.pagemapScan) return { value: null, why: 'this kernel has no PAGEMAP_SCAN (Linux 6.7+): which pages a huge PMD maps cannot be seen' };
      const heads = new Set<number>();
      for (const p of r.liveProcs()) {
        for (const g of p.ranges) {
          const runs = r.hugeRuns(p, g);
          if (runs === null) return { value: null, why: `PAGEMAP_SCAN failed on process ${p.pid}` };
          for (const [lo, hi, zero] of runs) {
            if (zero) continue;
            const pages = pagemap(p.pid, g.vpn + lo, hi - lo + 1);
            for (const e of pages) if (e.present && e.pfn !== 0) heads.add(e.pfn - (e.pfn % 512));
          }
        }
      }
      return { value: heads.size * 2048, why: null };
    }
    case 'frames_used': {
      if (!f.pfns) return { value: null, why: NO_PFNS };
      if (r.anySharedMapping) {
        return { value: null, why: 'with shared mappings, pages of the shmem object that no process maps are invisible to pagemap' };
      }
      const all = new Set<number>();
      for (const p of r.liveProcs()) for (const pfn of framesOf(r, p)) all.add(pfn);
      for (const h of r.handles.values()) for (const pfn of h.pfns) all.add(pfn);
      return { value: all.size, why: null };
    }
    case 'pt_copies':
      return { value: 0, why: null };
    case 'HugePages_Free':
    case 'HugePages_Rsvd': {
      // The pool was set for this scenario (oracle/hugetlb.c): meminfo's counters are its own.
      const v = meminfoNumber(stat);
      return v === null ? { value: null, why: `cannot read ${stat} in /proc/meminfo` } : { value: v, why: null };
    }
    case 'cow_copies':
      return { value: null, why: 'the kernel keeps no per-scenario count of COW copies (/proc/vmstat counters are system-wide)' };
    default:
      return { value: null, why: `${stat} is not measured on the live kernel` };
  }
}
