// userfaultfd in write-protect mode: the scenario's monitor registers ranges, write-protects and
// un-protects pages, and chooses whether a child is handed to it at fork (`P uffd ...`); and the
// pagemap bit that shows a protected entry (`expect P PAGE uffd-wp|not-uffd-wp`).

import { VM_UFFD_WP } from '../core/constants.js';
import { uffdRegisterRefused } from '../core/userfaultfd.js';
import type { Proc } from '../engine/state.js';
import { expectUffdWp } from '../engine/expect.js';
import { uffd } from '../engine/mm-ops.js';
import type { PageSel } from '../scenario/ast.js';
import { EXPECTATIONS, UFFD_ACTIONS } from '../scenario/words.js';
import { pageExpectOp } from './expect.js';
import { defineOp, type ExploreOp } from './types.js';

const pageText = (sel: PageSel): string =>
  sel.all ? `${sel.region}[*]` : `${sel.region}[${sel.lo}${sel.hi !== sel.lo ? `..${sel.hi}` : ''}]`;

/** The first region of p in name order (the one the explorer works on), or null. */
function firstRegion(p: Proc): { start: number; n: number } | null {
  return [...p.regions].sort((a, b) => (a[0] < b[0] ? -1 : 1))[0]?.[1] ?? null;
}

/** Page vpn of p is in a VMA registered in write-protect mode. */
const registered = (p: Proc, vpn: number): boolean => ((p.mm.findVma(vpn)?.flags ?? 0) & VM_UFFD_WP) !== 0;

const protectOn = (action: 'protect' | 'unprotect', code: number): ExploreOp => ({
  // A page of a registered region.
  name: `uffd-${action}`, code, needs: 'uffd-wp', on: { kind: 'page', when: registered },
  decode: (a) => ({ op: 'uffd', proc: a.proc, action, sel: a.sel, on: false, pos: a.pos, text: '' }),
  text: (a) => `${a.proc} uffd ${action} ${a.at}`,
});

/**
 * The operations of a userfaultfd write-protect search (`explore --ops uffd`): the monitor's
 * requests, and what may move a protected page or its bit (fork, early COW through a pin, swap,
 * a device).
 */
export const UFFD_EXPLORE_OPS: readonly string[] = [
  'write', 'read', 'fork', 'exit', 'pin', 'pin-ro', 'unpin', 'swapout', 'device-exclusive', 'dontneed',
  'uffd-register', 'uffd-protect', 'uffd-unprotect', 'uffd-fork-event',
];

/**
 * `P uffd register SEL wp` (UFFDIO_REGISTER_MODE_WP), `P uffd protect SEL` / `P uffd unprotect SEL`
 * (UFFDIO_WRITEPROTECT), `P uffd fork-event on|off` (UFFD_FEATURE_EVENT_FORK at UFFDIO_API).
 */
export const uffdOp = defineOp({
  op: 'uffd',
  syntax: {
    subject: 'process', words: ['uffd'], v11: true,
    parse(c, base, p) {
      const action = c.oneOf(UFFD_ACTIONS, 'userfaultfd action', "after 'uffd'");
      if (action === 'fork-event') {
        const on = c.oneOf(['on', 'off'] as const, 'fork-event setting', "after 'fork-event'");
        c.end();
        return { op: 'uffd', ...base, proc: p.name, action, sel: null, on: on === 'on' };
      }
      const sel = c.sel(p, null);
      if (action === 'register') c.oneOf(['wp'] as const, 'register mode (only write-protect mode is modelled)', 'after the pages');
      c.end();
      return { op: 'uffd', ...base, proc: p.name, action, sel, on: false };
    },
  },
  run: uffd,
  explore: [
    {
      // The first region as a whole, while a page of it is not registered; not while
      // userfaultfd_register() refuses it before changing anything (a page not mapped).
      name: 'uffd-register', code: 32, needs: 'uffd-wp',
      on: {
        kind: 'proc', when: (p) => { const r = firstRegion(p); return r !== null && (!registered(p, r.start) || !registered(p, r.start + r.n - 1)); },
        noop: (k, p, reg) => uffdRegisterRefused(k, p.mm, reg.start, reg.start + reg.n),
      },
      decode: (a) => ({ op: 'uffd', proc: a.proc, action: 'register', sel: { ...a.sel, all: true, lo: 0, hi: a.regionPages - 1 }, on: false, pos: a.pos, text: '' }),
      text: (a) => `${a.proc} uffd register ${a.sel.region} wp`,
    },
    protectOn('protect', 33),
    protectOn('unprotect', 34),
    {
      // UFFD_FEATURE_EVENT_FORK: asked once, by a process that has not yet.
      name: 'uffd-fork-event', code: 35, needs: 'uffd-wp', on: { kind: 'proc', when: (p) => !p.mm.uffdForkEvent },
      decode: (a) => ({ op: 'uffd', proc: a.proc, action: 'fork-event', sel: null, on: true, pos: a.pos, text: '' }),
      text: (a) => `${a.proc} uffd fork-event on`,
    },
  ],
  replay: (o, step) => o.uffd(step),
  exportC(x, step) {
    const action = UFFD_ACTIONS.indexOf(step.action);
    if (step.sel === null) return { code: `rp_uffd(${x.proc(step.proc)}, -1, 0, 0, ${action} /* fork-event */, ${step.on ? 1 : 0}, NULL);`, skipped: null };
    const what = x.str(`${step.proc} uffd ${step.action} ${x.label(step.sel)}`);
    return { code: `rp_uffd(${x.proc(step.proc)}, ${x.region(step.sel)}, ${step.sel.lo}, ${step.sel.hi}, ${action} /* ${step.action} */, 0, ${what});`, skipped: null };
  },
  explain(step, summary) {
    if (/ENOENT|EINVAL|skipped|n\/a/.test(summary)) return null;
    switch (step.action) {
      case 'register':
        return `UFFDIO_REGISTER only marks the VMA (VM_UFFD_WP): no page table entry changes until the monitor protects pages.`;
      case 'protect':
        return `UFFDIO_WRITEPROTECT: each entry of ${pageText(step.sel!)} that has a page gets the uffd-wp bit and loses write permission, so the next write faults and goes to the monitor; an untouched private page stays as it is.`;
      case 'unprotect':
        return `UFFDIO_WRITEPROTECT without MODE_WP: the uffd-wp bits of ${pageText(step.sel!)} are cleared; a write no longer goes to the monitor.`;
      case 'fork-event':
        return `UFFD_FEATURE_EVENT_FORK is a feature of ${step.proc}'s userfaultfd context: no page changes; at fork it decides whether the child's registered mappings stay registered, and protected.`;
    }
  },
  fuzz(w, c) {
    const p = w.pick(c.a);
    if (!p) return null;
    const action = UFFD_ACTIONS[(c.f >> 4) % UFFD_ACTIONS.length]!;
    if (action === 'fork-event') return `${p.name} uffd fork-event ${c.f & 1 ? 'on' : 'off'}`;
    const r = w.region(p, c.b);
    return r ? `${p.name} uffd ${action} ${w.sel(r, c.c, c.d, c.f).text}${action === 'register' ? ' wp' : ''}` : null;
  },
  random: [{
    // The monitor write-protects or un-protects part of a registered region.
    name: 'uffd', order: 21, weight: 6,
    // After the set-up, often: the fork event (chosen once, before the first registration: UFFDIO_API), and registrations.
    setup(g) {
      if (g.rng() >= 0.6) return;
      const p = g.procs[0]!;
      if (g.rng() < 0.5) {
        p.uffdForkEvent = true;
        g.add('P uffd fork-event on');
      }
      for (const [region, pages] of p.regions) {
        if (g.rng() >= 0.8) continue;
        // thp-uffd-wp (fixed): UFFDIO_WRITEPROTECT keeps a whole huge PMD, the uffd-wp bit on the PMD;
        // once the model split it first.
        if (g.avoids('thp-uffd-wp') && pages.some((x) => x.huge)) continue;
        // hugetlb: the model is n/a on userfaultfd there.
        if (pages.some((x) => x.hugetlb)) continue;
        p.uffd.add(region);
        g.add(`P uffd register ${region} wp`);
      }
    },
    draw(g, p) {
      const regs = [...p.uffd].filter((r) => p.regions.has(r));
      if (regs.length === 0) return false;
      const region = g.pickOf(regs);
      const all = p.regions.get(region)!;
      const lo = g.intIn(0, all.length - 1);
      const hi = g.rng() < 0.5 ? lo : g.intIn(lo, all.length - 1);
      // Only over mapped pages (UFFDIO_WRITEPROTECT on a hole is refused).
      if (all.slice(lo, hi + 1).some((x) => !x.mapped)) return false;
      const range = lo === hi ? `${region}[${lo}]` : `${region}[${lo}..${hi}]`;
      const protect = g.rng() < 0.7;
      g.add(`${p.name} uffd ${protect ? 'protect' : 'unprotect'} ${range}`);
      // Often a write to the protected pages follows: the fault goes to the monitor.
      if (protect && g.rng() < 0.5) {
        const v = g.nextValue();
        if (g.written(all.slice(lo, hi + 1), v)) g.add(`${p.name} write ${range} = ${v}`);
      }
      return true;
    },
  }],
});

/** `expect P PAGE uffd-wp|not-uffd-wp` (pagemap's PM_UFFD_WP, bit 57); parsed by `expect`. */
export const expectUffdWpOp = pageExpectOp({
  op: 'expect-uffd-wp', run: expectUffdWp, cCall: 'rp_expect_uffd_wp', words: [EXPECTATIONS[6], EXPECTATIONS[7]],
  // Only once some process registered with userfaultfd.
  random: { order: 22, weight: 4, fill: 'uffd-wp', applies: (g) => g.procs.some((q) => q.uffd.size > 0 || q.uffdForkEvent) },
});
