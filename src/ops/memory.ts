// Address-space operations of a process: mmap, munmap, mremap, mprotect, madvise, clear-softdirty.

import { holdsWholeHpage } from '../core/collapse.js';
import type { Kernel } from '../core/kernel.js';
import { madviseChanges, mappedExtent, mprotectChanges } from '../core/mmap.js';
import type { Proc } from '../engine/state.js';
import { clearSoftdirty, madvise, mmap, mprotect, mremap, munmap } from '../engine/mm-ops.js';
import type { Prot } from '../scenario/ast.js';
import { ADVICES, OPTIONS, PROTS } from '../scenario/words.js';
import { defineOp, type ExploreArgs } from './types.js';

/** `P mmap REGION N [rw|ro|none] [private|shared] [populate] [thp|nothp]` (mmap(2); the first one creates P). */
export const mmapOp = defineOp({
  op: 'mmap',
  syntax: {
    subject: 'process', words: ['mmap'], creates: true,
    parse(c, base, p) {
      const rt = c.nameTok("a region name after 'mmap'");
      const nt = c.peek();
      const n = c.pageCount('after the region name');
      // Bound before the options are read: a line with a bad option still binds its name.
      c.env.bindRegion(p, rt.text, n, c.at(rt));
      const [prot, share, populate, page] = c.options('mmap', OPTIONS.mmap);
      const hugetlb = page === 'hugetlb';
      if (hugetlb) c.env.markHugetlb(p, rt.text);
      // v1.2: MAP_HUGETLB maps whole 2 MiB huge pages.
      if (hugetlb && n % 512 !== 0) c.fail(nt, `expected the number of pages of a hugetlb mapping to be a multiple of 512 (2 MiB huge pages of 4 KiB pages), got ${n}`);
      return {
        op: 'mmap', ...base, proc: p.name, region: rt.text, pages: n, prot: (prot ?? 'rw') as Prot,
        shared: share === 'shared', populate: populate === 'populate', thp: (hugetlb ? null : page ?? null) as 'thp' | 'nothp' | null,
        ...(hugetlb ? { hugetlb: true } : {}),
      };
    },
  },
  run: mmap,
  replay: (o, step) => o.mmap(step),
  exportC(x, step) {
    if (step.hugetlb) {
      return { code: `rp_mmap_hugetlb(${x.proc(step.proc)}, ${x.regionName(step.region)}, ${step.pages} /* pages */, ${x.mmapProt(step.prot)} /* ${step.prot} */, ${step.populate ? 1 : 0} /* populate */);`, skipped: null };
    }
    const thp = x.system('mmap-thp');
    return {
      code: `rp_mmap(${x.proc(step.proc)}, ${x.regionName(step.region)}, ${step.pages} /* pages */, ${x.mmapProt(step.prot)} /* ${step.prot} */, ${step.shared ? '1 /* shared */' : '0 /* private */'}, ${step.populate ? 1 : 0} /* populate */, ${step.thp === 'thp' ? `1 /* thp */, ${x.str(thp.reason)}` : '0 /* no thp */, NULL'});`,
      skipped: step.thp === 'thp' ? thp.reason : null,
    };
  },
  fuzz(w, c) {
    const p = w.pick(c.a);
    if (!p || p.regions.length >= w.maxRegions) return null;
    const r = { name: w.newRegionName(), pages: 1 + (c.b % 4) };
    p.regions.push(r);
    // THP is n/a (not modelled): rarely, so that most runs go on.
    // hugetlb needs 512-page mappings (and the fuzzer's regions are 1-4 pages): never drawn here.
    return `${p.name} mmap ${r.name} ${r.pages}${w.options(OPTIONS.mmap, c.f, (word, f) => word === 'hugetlb' || (word === 'thp' && (f & 0x7000) !== 0))}`;
  },
});

/** `P munmap SEL` (munmap(2)). */
export const munmapOp = defineOp({
  op: 'munmap',
  syntax: {
    subject: 'process', words: ['munmap'],
    parse(c, base, p) {
      const sel = c.sel(p, null);
      c.end();
      // The kernel may refuse it (EINVAL: an end inside a huge page of a hugetlb region); the
      // memory estimate then counts no pages freed.
      const refused = !c.env.unmapRegion(p, sel.region, sel.lo, sel.hi);
      return { op: 'munmap', ...base, proc: p.name, sel, ...(refused ? { refused: true } : {}) };
    },
  },
  run: munmap,
  explore: [{
    // Not where no mapping is (munmap returns at once: Mm.mapsNothing).
    name: 'munmap', code: 4, default: true, on: { kind: 'page', noop: (_k, p, vpn) => p.mm.mapsNothing(vpn, vpn + 1) },
    decode: (a) => ({ op: 'munmap', proc: a.proc, sel: a.sel, pos: a.pos, text: '' }),
    text: (a) => `${a.proc} munmap ${a.at}`,
  }],
  replay: (o, step) => o.rangeOp(step),
  exportC: (x, step) => ({ code: `rp_munmap(${x.proc(step.proc)}, ${x.region(step.sel)}, ${step.sel.lo}, ${step.sel.hi});`, skipped: null }),
  fuzz(w, c) {
    const p = w.pick(c.a);
    const r = p && w.region(p, c.b);
    return p && r ? `${p.name} munmap ${w.sel(r, c.c, c.d, c.f).text}` : null;
  },
  random: [{
    name: 'munmap', order: 4, weight: 2, hugetlb: true,
    draw(g, p) {
      const s = g.wholeHugetlb(p, g.sel(p, false));
      for (const x of s.pages) Object.assign(x, { ...g.empty, mapped: false, mergeable: false });
      g.add(`${p.name} munmap ${s.text}`);
      return true;
    },
  }],
});

/** The note move_page_tables' summary starts with (src/core/mremap.ts). */
const MREMAP_NOTE = 'mremap (move_page_tables): ';

/** v1.2 `P mremap SEL as NEW` (mremap(2) with MREMAP_MAYMOVE|MREMAP_FIXED to a fresh range, region NEW). */
export const mremapOp = defineOp({
  op: 'mremap',
  syntax: {
    subject: 'process', words: ['mremap'],
    parse(c, base, p) {
      const sel = c.sel(p, null);
      c.expectToken('as', 'after the pages (mremap buf[RANGE] as NEW)');
      const nt = c.nameTok("the new region name after 'as'");
      c.end();
      c.env.mremapRegion(p, sel.region, sel.lo, sel.hi, nt.text, c.at(nt));
      return { op: 'mremap', ...base, proc: p.name, sel, region: nt.text };
    },
  },
  run: mremap,
  explore: [{
    // The page moves to a new region named after the explored one; that one (the first in
    // name order) stays the one explored, the moved page is reached through handles and fork.
    name: 'mremap', code: 31, on: { kind: 'page' },
    decode: (a) => ({ op: 'mremap', proc: a.proc, sel: a.sel, region: a.newRegion(), pos: a.pos, text: '' }),
    text: (a, step) => `${a.proc} mremap ${a.at} as ${step.region}`,
  }],
  replay: (o, step) => o.mremap(step),
  exportC: (x, step) => ({
    code: `rp_mremap(${x.proc(step.proc)}, ${x.region(step.sel)}, ${step.sel.lo}, ${step.sel.hi}, ${x.regionName(step.region)}, ${x.str(`${step.proc} mremap ${x.label(step.sel)}`)});`,
    skipped: null,
  }),
  keyNote: {
    // The one kernel path that moves PTEs instead of copying or dropping them.
    prefix: MREMAP_NOTE,
    explain: (who, detail) =>
      `${who} mremap: move_vma copied the mapping to the new range (same flags, same anon_vma and page offset) and move_page_tables moved its entries there: ` +
      `${detail}. Each frame keeps its refcount, mapcount, PG_anon_exclusive and pins, ` +
      'a write-protected (COW-shared) PTE stays write-protected, swap entries keep their slot, and move_ptes marks each moved entry soft-dirty; the old range is then unmapped, with nothing left in it',
  },
  fuzz(w, c) {
    const p = w.pick(c.a);
    const r = p && w.region(p, c.b);
    if (!p || !r || p.regions.length >= w.maxRegions) return null;
    const s = w.sel(r, c.c, c.d, c.f);
    const moved = { name: w.newRegionName(), pages: s.pages };
    p.regions.push(moved);
    return `${p.name} mremap ${s.text} as ${moved.name}`;
  },
  random: [{
    name: 'mremap', order: 20, weight: 3,
    draw(g, p) {
      // A range of one region moves to a new region (its first page mapped: from 6.17 the
      // range may span mappings and holes, which move as they are). KSM pages would be
      // unmerged first, which the model does not do.
      const [region, all] = g.pickOf([...p.regions]);
      // hugetlb: the model is n/a on mremap of it.
      if (all.some((x) => x.hugetlb)) return false;
      // The THP region: often all of it (a whole aligned PMD moves as one, move_huge_pmd), else part (a split).
      const whole = all.some((x) => x.huge) && g.rng() < 0.4;
      const lo = whole ? 0 : g.intIn(0, all.length - 1);
      const hi = whole ? all.length - 1 : g.rng() < 0.5 ? lo : g.intIn(lo, all.length - 1);
      if (p.regions.size >= 4 || !all[lo]!.mapped || all.slice(lo, hi + 1).some((x) => x.ksm)) return false;
      // thp-mremap (closed: the model's move_huge_pmd moves a whole aligned PMD): kept to bisect a regression.
      if (g.avoids('thp-mremap') && all[lo]!.huge) return false;
      // uffd-mremap (fixed): a never-faulted registered source that merges with its new range
      // (copy_vma) loses its registration as a whole; once the model did not merge them.
      if (g.avoids('uffd-mremap') && p.uffd.has(region)) return false;
      const name = g.nextRegion();
      p.regions.set(name, all.slice(lo, hi + 1));
      for (let i = lo; i <= hi; i++) all[i] = { ...all[i]!, ...g.empty, mapped: false, mergeable: false };
      g.add(`${p.name} mremap ${lo === hi ? `${region}[${lo}]` : `${region}[${lo}..${hi}]`} as ${name}`);
      return true;
    },
  }],
});

/** The protection of the explorer's mprotect, by variant. */
const exploredProt = (extra: number): 'ro' | 'rw' => (extra === 0 ? 'ro' : 'rw');

/**
 * The explorer's mprotect of a page is a no-op: no mapping is there (do_mprotect_pkey() returns
 * ENOMEM at once: doMprotect's mappedExtent), or its mapping has the protection already
 * (mprotect_fixup() returns at once) and the vma_merge the model's doMprotect ends with finds
 * nothing to join.
 */
function mprotectNoop(_k: Kernel, p: Proc, vpn: number, extra: number): boolean {
  if (mappedExtent(p.mm, vpn, vpn + 1) === vpn) return true;
  const v = p.mm.findVma(vpn);
  return v !== null && !mprotectChanges(v, exploredProt(extra)) && !p.mm.mergePending();
}

/** `P mprotect SEL rw|ro|none` (mprotect(2)). */
export const mprotectOp = defineOp({
  op: 'mprotect',
  syntax: {
    subject: 'process', words: ['mprotect'],
    parse(c, base, p) {
      const sel = c.sel(p, null);
      const prot = c.oneOf(PROTS, 'protection', 'after the pages');
      c.end();
      return { op: 'mprotect', ...base, proc: p.name, sel, prot };
    },
  },
  run: mprotect,
  explore: [{
    name: 'mprotect', code: 5, on: { kind: 'page', variants: 2, noop: mprotectNoop },
    decode: (a) => ({ op: 'mprotect', proc: a.proc, sel: a.sel, prot: exploredProt(a.extra), pos: a.pos, text: '' }),
    text: (a, step) => `${a.proc} mprotect ${a.at} ${step.prot}`,
  }],
  replay: (o, step) => o.rangeOp(step),
  exportC: (x, step) => ({ code: `rp_mprotect(${x.proc(step.proc)}, ${x.region(step.sel)}, ${step.sel.lo}, ${step.sel.hi}, ${x.prot(step.prot)});`, skipped: null }),
  fuzz(w, c) {
    const p = w.pick(c.a);
    const r = p && w.region(p, c.b);
    return p && r ? `${p.name} mprotect ${w.sel(r, c.c, c.d, c.f).text} ${PROTS[(c.f >> 4) % PROTS.length]}` : null;
  },
  random: [{
    name: 'mprotect', order: 5, weight: 4, hugetlb: true,
    draw(g, p) {
      const s = g.wholeHugetlb(p, g.sel(p, false));
      // mprotect-hole: Linux refuses (ENOMEM) a range that starts in a hole; the model applies it.
      if (g.avoids('mprotect-hole') && s.pages.some((x) => !x.mapped)) return false;
      const prot = g.pickOf(['ro', 'rw', 'rw', 'none'] as const);
      for (const x of s.pages) if (x.mapped) x.prot = prot;
      g.add(`${p.name} mprotect ${s.text} ${prot}`);
      return true;
    },
  }],
});

/**
 * The explorer's madvise of a page with an advice that sets a VMA flag is a no-op: no mapping is
 * there (doMadvise returns at once: Mm.mapsNothing), or its mapping has
 * the flag already (madvise_update_vma() returns at once; ksm_madvise() too for MADV_MERGEABLE),
 * no COW-shared page table is there for doMadvise to break, and the vma_merge it ends with finds
 * nothing to join.
 */
const flagNoop = (advice: 'dontfork' | 'wipeonfork' | 'mergeable') => (_k: Kernel, p: Proc, vpn: number): boolean => {
  if (p.mm.mapsNothing(vpn, vpn + 1)) return true;
  const v = p.mm.findVma(vpn);
  return v !== null && !madviseChanges(v, advice) && !p.mm.cowPgtable && !p.mm.mergePending();
};

/** MADV_DONTNEED of a page no mapping covers: doMadvise returns at once (Mm.mapsNothing). */
const dontneedNoop = (_k: Kernel, p: Proc, vpn: number): boolean => p.mm.mapsNothing(vpn, vpn + 1);

/** The explorer's madvise of a page (not where it changes nothing: flagNoop, dontneedNoop). */
const adviseOn = (name: 'dontfork' | 'wipeonfork' | 'dontneed' | 'mergeable', code: number) => ({
  name, code, on: { kind: 'page', noop: name === 'dontneed' ? dontneedNoop : flagNoop(name) } as const,
  decode: (a: ExploreArgs) => ({ op: 'madvise', proc: a.proc, sel: a.sel, advice: name, pos: a.pos, text: '' }),
  text: (a: ExploreArgs) => `${a.proc} madvise ${a.at} ${name}`,
});

/** `P madvise SEL ADVICE` (madvise(2)). */
export const madviseOp = defineOp({
  op: 'madvise',
  syntax: {
    subject: 'process', words: ['madvise'],
    parse(c, base, p) {
      const sel = c.sel(p, null);
      const advice = c.oneOf(ADVICES, 'advice', 'after the pages');
      c.end();
      if (advice === 'dontfork' || advice === 'dofork') c.env.markDontfork(p, sel.region, sel.lo, sel.hi, advice === 'dontfork');
      return { op: 'madvise', ...base, proc: p.name, sel, advice };
    },
  },
  run: madvise,
  explore: [adviseOn('dontfork', 6), adviseOn('wipeonfork', 7), adviseOn('dontneed', 8), adviseOn('mergeable', 26), {
    // MADV_COLLAPSE over the whole explored region (each whole 2 MiB of it PTE-mapped becomes a
    // new THP): the operation of a THP start (`explore --start thp`), beside the splitting ones.
    // Not tried on a region holding no whole aligned 2 MiB (it collapses nothing).
    name: 'collapse', code: 36, on: { kind: 'proc', noop: (_k, _p, reg) => !holdsWholeHpage(reg.start, reg.start + reg.n) },
    decode: (a) => ({ op: 'madvise', proc: a.proc, sel: { region: a.sel.region, all: true, lo: 0, hi: a.regionPages - 1, pos: a.sel.pos }, advice: 'collapse', pos: a.pos, text: '' }),
    text: (a) => `${a.proc} madvise ${a.sel.region} collapse`,
  }],
  replay: (o, step) => o.rangeOp(step),
  exportC(x, step) {
    if (step.advice === 'pageout') {
      const s = x.system('madvise-pageout');
      return { code: `rp_swapout(${x.proc(step.proc)}, ${x.region(step.sel)}, ${step.sel.lo}, ${step.sel.hi}, ${x.str(`${step.proc} ${x.label(step.sel)}`)}, ${x.str(s.reason)}, ${x.str(s.did)}, ${s.mask});`, skipped: null };
    }
    return { code: `rp_madvise(${x.proc(step.proc)}, ${x.region(step.sel)}, ${step.sel.lo}, ${step.sel.hi}, ${x.advice(step.advice)}, ${step.advice === 'mergeable' ? 1 : 0});`, skipped: null };
  },
  fuzz(w, c) {
    const p = w.pick(c.a);
    const r = p && w.region(p, c.b);
    return p && r ? `${p.name} madvise ${w.sel(r, c.c, c.d, c.f).text} ${ADVICES[(c.f >> 4) % ADVICES.length]}` : null;
  },
  random: [{
    name: 'madvise', order: 6, weight: 5, hugetlb: true,
    draw(g, p) {
      // Often on the THP region when there is one (for MADV_COLLAPSE below).
      const thpRegion = [...p.regions].find(([, pg]) => pg.some((x) => x.huge));
      const onThp = thpRegion !== undefined && g.rng() < 0.4;
      let s = onThp ? { text: thpRegion[0], pages: thpRegion[1] } : g.sel(p, false);
      const thp = s.pages.some((x) => x.huge);
      // hugetlb: only dontfork and dofork, over whole huge pages (the model is n/a on the others).
      if (s.pages.some((x) => x.hugetlb)) {
        s = g.wholeHugetlb(p, s);
        const advice = g.pickOf(['dontfork', 'dofork'] as const);
        for (const x of s.pages) if (x.mapped) x.dontfork = advice === 'dontfork';
        g.add(`${p.name} madvise ${s.text} ${advice}`);
        return true;
      }
      // MADV_COLLAPSE on the THP region, mostly all of it (a range collapses only the whole
      // 2 MiB extents it covers): after a partial mprotect, munmap or dontneed has PTE-mapped it.
      if (onThp && g.rng() < 0.8) {
        const region = thpRegion[0];
        if (g.rng() < 0.3) s = g.sel(p, false); // any range (of any region: a small one collapses nothing)
        if (s.pages.some((x) => x.hugetlb || x.shared)) return false; // n/a on hugetlb and shared memory
        const whole = s.pages === p.regions.get(region);
        // Each page of a collapsed extent is in the new THP (a copy; an empty one zero-filled).
        if (whole && s.pages.every((x) => x.mapped && !x.swapped && x.prot === s.pages[0]!.prot)) {
          for (const x of s.pages) Object.assign(x, { frame: g.fresh(), content: 'data', value: x.value ?? 0, ksm: false });
        }
        g.add(`${p.name} madvise ${s.text} collapse`);
        return true;
      }
      const advice = g.pickOf(['dontfork', 'dofork', 'wipeonfork', 'keeponfork', 'dontneed', 'dontneed', ...(thp ? ['hugepage', 'nohugepage', 'hugepage', 'nohugepage'] as const : [])]);
      for (const x of s.pages) {
        if (!x.mapped) continue;
        if (advice === 'dontneed') {
          if (!x.shared) Object.assign(x, g.empty);
        } else if (advice === 'dontfork' || advice === 'dofork') x.dontfork = advice === 'dontfork';
        else if (!x.shared) x.wipe = advice === 'wipeonfork'; // shared: EINVAL
      }
      g.add(`${p.name} madvise ${s.text} ${advice}`);
      return true;
    },
  }],
});

/** `P clear-softdirty` (echo 4 > /proc/P/clear_refs). */
export const clearSoftdirtyOp = defineOp({
  op: 'clear-softdirty',
  syntax: {
    subject: 'process', words: ['clear-softdirty'],
    parse(c, base, p) {
      c.end();
      return { op: 'clear-softdirty', ...base, proc: p.name };
    },
  },
  run: clearSoftdirty,
  explore: [{
    name: 'clear-softdirty', code: 19, on: { kind: 'proc' },
    decode: (a) => ({ op: 'clear-softdirty', proc: a.proc, pos: a.pos, text: '' }),
    text: (a) => `${a.proc} clear-softdirty`,
  }],
  replay: (o, step) => o.clearSoftdirty(step),
  exportC: (x, step) => ({ code: `rp_clear_softdirty(${x.proc(step.proc)}, ${step.pos.line});`, skipped: null }),
  fuzz(w, c) {
    const p = w.pick(c.a);
    return p ? `${p.name} clear-softdirty` : null;
  },
});
