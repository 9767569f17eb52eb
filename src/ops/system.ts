// Operations of the system rather than of one process: reclaim (swapout), ksmd (ksm merge), and
// the steps that only look (check, stats).

import { hugeIn } from '../core/huge.js';
import type { Kernel } from '../core/kernel.js';
import { ksmNeverEntered } from '../core/ksm.js';
import { pageoutSkip } from '../core/swap.js';
import { stats } from '../engine/expect.js';
import type { Proc } from '../engine/state.js';
import { ksmMergeAll, swapout } from '../engine/mm-ops.js';
import { defineOp } from './types.js';

/**
 * The explorer's swapout of a page is a no-op: swapOutPage() returns before it changes anything,
 * there being no mapping there, or (with no COW-shared page table to break and no THP to split
 * first) no page its PTE checks take (pageoutSkip).
 */
function swapoutNoop(k: Kernel, p: Proc, vpn: number): boolean {
  const mm = p.mm;
  return mm.findVma(vpn) === null || (!mm.cowPgtable && !hugeIn(k, mm, vpn, vpn + 1) && pageoutSkip(k, mm, vpn) !== null);
}

/** `swapout P SEL` (reclaim of P's pages: MADV_PAGEOUT). */
export const swapoutOp = defineOp({
  op: 'swapout',
  syntax: {
    subject: 'system', words: ['swapout'],
    parse(c, base) {
      const p = c.liveProc("the process after 'swapout'");
      const sel = c.sel(p, null);
      c.end();
      return { op: 'swapout', ...base, proc: p.name, sel };
    },
  },
  run: swapout,
  explore: [{
    name: 'swapout', code: 25, needs: 'swap', on: { kind: 'page', noop: swapoutNoop },
    decode: (a) => ({ op: 'swapout', proc: a.proc, sel: a.sel, pos: a.pos, text: '' }),
    text: (a) => `swapout ${a.proc} ${a.at}`,
  }],
  replay: (o, step) => o.swapout(step.proc, step.sel),
  exportC(x, step) {
    const s = x.system('swapout');
    return { code: `rp_swapout(${x.proc(step.proc)}, ${x.region(step.sel)}, ${step.sel.lo}, ${step.sel.hi}, ${x.str(`${step.proc} ${x.label(step.sel)}`)}, ${x.str(s.reason)}, ${x.str(s.did)}, ${s.mask});`, skipped: null };
  },
  fuzz(w, c) {
    const ps = w.named();
    const p = ps[c.a % ps.length];
    const r = p && w.region(p, c.b);
    return p && r ? `swapout ${p.name} ${w.sel(r, c.c, c.d, c.f).text}` : null;
  },
  random: [{
    name: 'swapout', order: 14, weight: 4,
    draw(g, p) {
      const s = g.sel(p, false);
      // shmem-pageout: Linux pages out shmem pages mapped once; the model keeps them.
      if (g.avoids('shmem-pageout') && s.pages.some((x) => x.shared)) return false;
      // ksm-swapout: Linux swaps a KSM page mapped once out; the model keeps it.
      if (g.avoids('ksm-swapout') && s.pages.some((x) => x.ksm)) return false;
      const pinned = g.held('pin');
      for (const x of s.pages) {
        // Reclaim takes a private page mapped once that no pin holds (a pipe's page goes too).
        if (x.mapped && !x.shared && x.content === 'data' && !x.ksm && g.refs(x.frame) === 1 && !pinned.has(x.frame)) x.swapped = true;
      }
      g.add(g.rng() < 0.3 ? `${p.name} madvise ${s.text} pageout` : `swapout ${p.name} ${s.text}`);
      return true;
    },
  }],
});

/** `ksm merge` (ksmd runs until it has merged what it can). */
export const ksmMergeOp = defineOp({
  op: 'ksm-merge',
  syntax: {
    subject: 'system', words: ['ksm', 'merge'],
    parse(c, base) {
      c.end();
      return { op: 'ksm-merge', ...base };
    },
  },
  run: (s) => ksmMergeAll(s),
  explore: [{
    // Not tried before any mm has been registered with ksmd: it has nothing to merge.
    name: 'ksm-merge', code: 27, needs: 'ksm', on: { kind: 'once', noop: ksmNeverEntered },
    decode: (a) => ({ op: 'ksm-merge', pos: a.pos, text: '' }),
    text: () => 'ksm merge',
  }],
  replay: (o) => o.ksmMerge(),
  exportC(x) {
    const s = x.system('ksm-merge');
    return { code: `rp_ksm_merge(${x.str(s.reason)}, ${x.str(s.did)}, ${s.mask});`, skipped: null };
  },
  fuzz: () => 'ksm merge',
  random: [{
    // Pages are marked mergeable first (a madvise), then merged.
    name: 'ksm', order: 15, weight: 6,
    draw(g, p) {
      if (!g.mergeable || g.rng() < 0.35) {
        const s = g.sel(p, false);
        // mergeable-shared: Linux ignores MADV_MERGEABLE on a shared mapping (no VMA split); the model splits it.
        if (g.avoids('mergeable-shared') && s.pages.some((x) => x.shared)) return false;
        // thp-ksm (fixed): ksmd splits a THP to merge its pages (try_to_merge_one_page); the model's KSM once left large folios alone.
        if (g.avoids('thp-ksm') && s.pages.some((x) => x.huge)) return false;
        g.mergeable = true;
        for (const x of s.pages) if (x.mapped && !x.shared) x.mergeable = true;
        g.add(`${p.name} madvise ${s.text} mergeable`);
      } else {
        // ksm-merge-order (fixed, kept to bisect): Linux makes the page it scans second the KSM
        // page and acts on it first (try_to_merge_two_pages, the same from 5.4 to 6.18), as the
        // model does now; the model once took the first. It showed once a fork shares the frames
        // (which other mappings map the KSM page) and when a pinned or spliced partner cannot be
        // merged (which page is left write-protected).
        if (g.avoids('ksm-merge-order') && !g.ksmMerge(true)) return false;
        g.ksmMerge(false);
        g.add('ksm merge');
      }
      return true;
    },
  }],
});

/** `check` (the invariants, which every step checks anyway). */
export const checkOp = defineOp({
  op: 'check',
  syntax: {
    subject: 'system', words: ['check'],
    parse(c, base) {
      c.end();
      return { op: 'check', ...base };
    },
  },
  run(s) {
    s.record.summary = 'invariants checked';
  },
  observing: true,
  replay: () => {},
  exportC: () => ({ code: '/* nothing to do on the kernel */', skipped: null }),
  fuzz: () => 'check',
});

/** `stats` (the counters, into the step's record). */
export const statsOp = defineOp({
  op: 'stats',
  syntax: {
    subject: 'system', words: ['stats'],
    parse(c, base) {
      c.end();
      return { op: 'stats', ...base };
    },
  },
  run: (s) => stats(s),
  observing: true,
  replay: () => {},
  exportC: () => ({ code: '/* nothing to do on the kernel */', skipped: null }),
  fuzz: () => 'stats',
});
