// Steps that only look at the model: `check`, `stats` and the `expect` assertions.

import { HPAGE_PMD_NR, PG_ANON_EXCLUSIVE, PG_HUGETLB, PTE_UFFD_WP } from '../core/constants.js';
import { pmdLeafSlot } from '../core/walk.js';
import { followSlot, hugeZeroIndex } from '../core/huge.js';
import type { PageSel, Step } from '../scenario/ast.js';
import { globalStats } from './stats.js';
import { NotApplicable, type RunState } from './state.js';

type StepOf<O extends Step['op']> = Extract<Step, { op: O }>;

/** The counters `stats` and `expect stat` read: the kernel's, and each process's rss, minflt and uffd_faults. */
export function allStats(s: RunState): Record<string, number> {
  const out = globalStats(s.k);
  for (const [name, p] of s.procs) {
    out[`rss.${name}`] = p.alive ? p.mm.rssAnon + p.mm.rssShmem : 0;
    out[`minflt.${name}`] = p.mm.minflt;
    out[`uffd_faults.${name}`] = p.mm.uffdFaults;
  }
  return out;
}

export function stats(s: RunState): void {
  s.record.stats = allStats(s);
  s.record.summary = 'counters: ' + Object.entries(s.record.stats).map(([n, v]) => `${n}=${v}`).join(' ');
}

export function expectFrame(s: RunState, a: string, selA: PageSel, same: boolean, b: string, selB: PageSel): void {
  const pa = s.procs.get(a);
  const pb = s.procs.get(b);
  const va = pa ? s.firstPage(pa, selA) : -1;
  const vb = pb ? s.firstPage(pb, selB) : -1;
  const fa = pa ? s.pfnOf(pa, va) : -1;
  const fb = pb ? s.pfnOf(pb, vb) : -1;
  // A page of the huge zero folio is a frame of its own (pagemap gives each its PFN), though the
  // model maps all 512 to the zero page's frame.
  const za = fa === 0 ? hugeZeroIndex(s.k, pa!.mm, va) : -1;
  const zb = fb === 0 ? hugeZeroIndex(s.k, pb!.mm, vb) : -1;
  const isSame = fa >= 0 && fa === fb && za === zb;
  const show = (f: number, z: number): string => (f < 0 ? 'not mapped' : z >= 0 ? `page ${z} of the huge zero page` : `frame ${f}`);
  const desc = `${a} ${s.label(selA)} → ${show(fa, za)}, ${b} ${s.label(selB)} → ${show(fb, zb)}`;
  s.observe('frame', `${a} ${s.label(selA)} vs ${b} ${s.label(selB)}`, isSame ? 'same-frame' : 'other-frame', same ? 'same-frame' : 'other-frame');
  if (isSame !== same) s.violation('expect', `expected ${same ? 'the same frame' : 'different frames'}: ${desc}`, [a, b], [fa, fb].filter((x) => x >= 0));
  s.record.summary = desc;
}

export function expectMapped(s: RunState, step: StepOf<'expect-mapped'>): void {
  const k = s.k;
  const p = s.procs.get(step.proc);
  const vpn = s.firstPage(p, step.sel);
  const pfn = p ? s.pfnOf(p, vpn) : -1;
  // pagemap's PM_MMAP_EXCLUSIVE: the page's precise mapcount is 1 (folio_precise_page_mapcount:
  // its PTE mappings plus, for a page of a large folio, hugetlb's included, the folio's PMD mappings).
  const once = pfn > 0 && k.frames.pageMapcount(pfn) === 1;
  const actual = pfn < 0 ? 'not mapped' : once ? 'mapped-once' : 'mapped-shared';
  const want = step.once ? 'mapped-once' : 'mapped-shared';
  s.observe('mapped', `${step.proc} ${s.label(step.sel)}`, actual, want);
  if (actual !== want) s.violation('expect', `${step.proc} ${s.label(step.sel)} is ${actual}, expected ${want}`, [step.proc], pfn > 0 ? [pfn] : []);
  s.record.summary = `${step.proc} ${s.label(step.sel)} is ${actual}` + (pfn > 0 ? ` (frame ${pfn}, mapcount ${k.frames.pageMapcount(pfn)})` : '');
}

export function expectExclusive(s: RunState, step: StepOf<'expect-exclusive'>): void {
  if (!s.profile.anonExclusive) throw new NotApplicable(`${s.profile.name} has no PG_anon_exclusive (5.19 on)`);
  const k = s.k;
  const p = s.procs.get(step.proc);
  const vpn = s.firstPage(p, step.sel);
  const pfn = p ? s.pfnOf(p, vpn) : -1;
  // v1.2: a page a huge PMD maps is exclusive when its folio's head is (PageAnonExclusive is
  // kept on the head while PMD-mapped: folio_add_new_anon_rmap, do_huge_pmd_wp_page); a hugetlb
  // page's is always its head's (PageAnonExclusive() of a tail looks there).
  const huge = pfn > 0 && ((k.frames.flags[pfn]! & PG_HUGETLB) !== 0 || (p !== undefined && p.mm.hugePmds > 0 && pmdLeafSlot(k, p.mm, vpn) >= 0));
  const head = huge ? pfn & ~(HPAGE_PMD_NR - 1) : pfn;
  const excl = pfn > 0 && (k.frames.flags[head]! & PG_ANON_EXCLUSIVE) !== 0;
  const actual = excl ? 'anon-exclusive' : 'not-anon-exclusive';
  const want = step.exclusive ? 'anon-exclusive' : 'not-anon-exclusive';
  s.observe('exclusive', `${step.proc} ${s.label(step.sel)}`, actual, want);
  if (actual !== want) s.violation('expect', `${step.proc} ${s.label(step.sel)} is ${actual}, expected ${want}`, [step.proc], pfn > 0 ? [pfn] : []);
  s.record.summary = `${step.proc} ${s.label(step.sel)} is ${actual}` + (pfn >= 0 ? ` (frame ${pfn})` : ' (not mapped)');
}

export function expectUffdWp(s: RunState, step: StepOf<'expect-uffd-wp'>): void {
  const p = s.procs.get(step.proc);
  const vpn = s.firstPage(p, step.sel);
  const slot = p?.alive && vpn >= 0 ? followSlot(s.k, p.mm, vpn) : -1;
  // pagemap's PM_UFFD_WP: a present PTE, a swap or device-exclusive entry, a marker, or a huge PMD (pagemap_pmd_range) with the bit.
  const wp = slot >= 0 && (s.k.tables.bits[slot]! & PTE_UFFD_WP) !== 0;
  const actual = wp ? 'uffd-wp' : 'not-uffd-wp';
  const want = step.wp ? 'uffd-wp' : 'not-uffd-wp';
  s.observe('uffd-wp', `${step.proc} ${s.label(step.sel)}`, actual, want);
  if (actual !== want) s.violation('expect', `${step.proc} ${s.label(step.sel)} is ${actual}, expected ${want}`, [step.proc]);
  s.record.summary = `${step.proc} ${s.label(step.sel)} is ${actual}`;
}

export function expectStat(s: RunState, step: StepOf<'expect-stat'>): void {
  const all = allStats(s);
  const actual = all[step.stat];
  if (actual === undefined) {
    if (step.statProc && !s.procs.has(step.statProc)) throw new NotApplicable(`counter ${step.stat}: ${step.statProc} was never created (the process that was to fork it had died)`);
    throw new NotApplicable(step.stat.startsWith('HugePages_')
      ? `counter ${step.stat} needs config.hugepages (without it the hugetlb pool is unlimited)`
      : `counter ${step.stat} is not modelled`);
  }
  const ok = compare(actual, step.cmp, step.number);
  s.observe('stat', step.stat, String(actual), `${step.cmp} ${step.number}`);
  if (!ok) s.violation('expect', `${step.stat} is ${actual}, expected ${step.cmp} ${step.number}`, step.statProc ? [step.statProc] : []);
  s.record.summary = `${step.stat} = ${actual} (expected ${step.cmp} ${step.number}${ok ? ': holds' : ': FAILS'})`;
}

function compare(a: number, op: string, b: number): boolean {
  switch (op) {
    case '==': return a === b;
    case '!=': return a !== b;
    case '<': return a < b;
    case '<=': return a <= b;
    case '>': return a > b;
    default: return a >= b;
  }
}
