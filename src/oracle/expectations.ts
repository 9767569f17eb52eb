// The `expect` steps measured on the live kernel: same-frame (pagemap PFNs), mapped-once
// (pagemap's PM_MMAP_EXCLUSIVE), anon-exclusive (kpageflags bit 34 on an anonymous page), uffd-wp
// (pagemap's PM_UFFD_WP) and the counters (stats.ts). Each gives one observation, skipped with the reason when the
// facility is missing or the aspect is no longer comparable.

import type { Step } from '../scenario/index.js';
import { NO_KPAGEFLAGS, NO_PFNS } from './facilities.js';
import { hasFlag, KPF_ANON, KPF_ANON_EXCLUSIVE, KPF_COMPOUND_TAIL, KPF_THP, kpagecount, kpageflags } from './procfs.js';
import { label } from './names.js';
import type { Replay } from './replay.js';
import { measureStat } from './stats.js';
import type { KernelObservation, ObservationKind } from './types.js';

type ExpectStep = Extract<Step, { op: 'expect-frame' | 'expect-mapped' | 'expect-exclusive' | 'expect-stat' | 'expect-uffd-wp' }>;

function observed(r: Replay, kind: ObservationKind, what: string, actual: string): KernelObservation {
  return { kind, what, actual, skip: r.comparable.forObservation(kind, what, false) };
}

function skipped(kind: ObservationKind, what: string, why: string, actual: string | null = null): KernelObservation {
  return { kind, what, actual, skip: why };
}

export function expectation(r: Replay, step: ExpectStep): KernelObservation {
  const f = r.facilities;
  switch (step.op) {
    case 'expect-frame': {
      const what = `${step.proc} ${label(step.sel)} vs ${step.otherProc} ${label(step.otherSel)}`;
      if (!f.pfns) return skipped('frame', what, NO_PFNS);
      const a = r.pageAt(step.proc, step.sel, step.sel.lo).pfn;
      const b = r.pageAt(step.otherProc, step.otherSel, step.otherSel.lo).pfn;
      return observed(r, 'frame', what, a >= 0 && a === b ? 'same-frame' : 'other-frame');
    }
    case 'expect-mapped': {
      // Bit 56 is shown without privilege too; the zero page is never "mapped once".
      const what = `${step.proc} ${label(step.sel)}`;
      const pg = r.pageAt(step.proc, step.sel, step.sel.lo);
      const flags = pg.pfn > 0 && f.kpageflags ? kpageflags(pg.pfn) : null;
      if (flags !== null && hasFlag(flags, KPF_THP) && !hasFlag(flags, 24n)) {
        // A page of a THP: pagemap_pmd_range() (fs/proc/task_mmu.c, 6.18) tests the head's
        // mapcount for every page a huge PMD maps; /proc/kpagecount has this page's own.
        const n = kpagecount(pg.pfn);
        if (n !== null) return observed(r, 'mapped', what, n === 1 ? 'mapped-once' : 'mapped-shared');
        if (hasFlag(flags, KPF_COMPOUND_TAIL) && r.pmdMapped(step.proc, step.sel, step.sel.lo) !== false) {
          return skipped('mapped', what, 'a sub-page of a PMD-mapped THP: pagemap tests its head\'s mapcount, and /proc/kpagecount is not readable here', pg.once ? 'mapped-once' : 'mapped-shared');
        }
      }
      return observed(r, 'mapped', what, pg.pfn < 0 ? 'not mapped' : pg.once ? 'mapped-once' : 'mapped-shared');
    }
    case 'expect-exclusive': {
      const what = `${step.proc} ${label(step.sel)}`;
      if (!f.pfns) return skipped('exclusive', what, NO_PFNS);
      if (!f.kpageflags) return skipped('exclusive', what, NO_KPAGEFLAGS);
      const { pfn } = r.pageAt(step.proc, step.sel, step.sel.lo);
      let excl = false;
      if (pfn > 0 && pfn !== f.zeroPfn) {
        const flags = kpageflags(pfn);
        if (flags === null) return skipped('exclusive', what, NO_KPAGEFLAGS);
        excl = hasFlag(flags, KPF_ANON) && hasFlag(flags, KPF_ANON_EXCLUSIVE);
        if (hasFlag(flags, KPF_THP) && hasFlag(flags, KPF_COMPOUND_TAIL) && r.pmdMapped(step.proc, step.sel, step.sel.lo) !== true) {
          // stable_page_flags() (fs/proc/page.c, 6.18) copies the folio's flags: bit 34 of a tail
          // is its head's, which is the whole folio's only while a PMD maps it.
          return skipped('exclusive', what, 'a sub-page of a PTE-mapped THP other than its head: /proc/kpageflags shows the folio\'s (head\'s) PG_anon_exclusive, not this page\'s', excl ? 'anon-exclusive' : 'not-anon-exclusive');
        }
      }
      return observed(r, 'exclusive', what, excl ? 'anon-exclusive' : 'not-anon-exclusive');
    }
    case 'expect-uffd-wp':
      // Bit 57 is shown without privilege.
      return observed(r, 'uffd-wp', `${step.proc} ${label(step.sel)}`, r.uffdWpAt(step.proc, step.sel, step.sel.lo) ? 'uffd-wp' : 'not-uffd-wp');
    case 'expect-stat': {
      const m = measureStat(r, step.stat, step.statProc);
      if (m.value === null) return skipped('stat', step.stat, m.why ?? 'not measurable');
      if (m.why !== null) return skipped('stat', step.stat, m.why, String(m.value));
      return observed(r, 'stat', step.stat, String(m.value));
    }
  }
}
