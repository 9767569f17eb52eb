// GUP handles: pin (pin_user_pages), gup (get_user_pages), vmsplice (a pipe's references), and
// their release (unpin, put).

import { gup, release } from '../engine/handles.js';
import { gupRequest, startGupTask } from '../engine/scheduler.js';
import { OPTIONS } from '../scenario/words.js';
import type { ProcInfo } from '../scenario/resolve.js';
import type { LineParser, StepBase } from '../scenario/steps.js';
import { defineOp, type ExploreOp, type RandomGen, type RandomProc } from './types.js';

/** Why the live kernel has no lasting user-space path to a pin like this one (null: io_uring gives one). */
function pinWithoutPath(write: boolean, longterm: boolean): string | null {
  if (!write) return 'R/O longterm pins have no lasting user-space path (io_uring registers buffers with FOLL_WRITE; process_vm_readv pins only for the call)';
  if (!longterm) return 'short-term pins (pin ... short) have no lasting user-space path';
  return null;
}
/**
 * Why a slow `pin` over a page the userfaultfd monitor protected (on the live kernel) is not
 * replayed (the oracle's Replay.slowPinRefused, the exported program's rp_take): the kernel's
 * io_uring registration may not be the same call. It says nothing of the model's pin, which may
 * differ where the model's page is not protected (the oracle's note after it says what the model holds).
 */
export const SLOW_PIN_UFFD = 'a slow pin_user_pages() cannot wait for the userfaultfd monitor (no FAULT_FLAG_ALLOW_RETRY): its write to a protected page fails with EFAULT; io_uring\'s buffer registration is not that call on every kernel (6.18\'s io_pin_pages() uses pin_user_pages_fast(), whose fallback lets the monitor answer; 6.3 and before called pin_user_pages())';
const GUP_WITHOUT_PATH = 'get_user_pages references (FOLL_GET) have no lasting user-space path on their own';

const pinOn = (name: string, code: number, write: boolean, fast: boolean, async: boolean, dflt: boolean): ExploreOp => ({
  name, code, on: { kind: 'page', takesHandle: true }, ...(dflt ? { default: true } : {}),
  decode: (a) => ({ op: 'pin', proc: a.proc, sel: a.sel, handle: a.newHandle(), write, longterm: true, fast, ...(async ? { async: true } : {}), pos: a.pos, text: '' }),
  text: (a, step) => `${a.proc} pin ${a.at} as ${step.handle} ${write ? 'rw' : 'ro'} longterm${fast ? ' fast' : ''}${async ? ' &' : ''}`,
});

/** `P pin SEL as H [rw|ro] [longterm|short] [fast] [&]` (pin_user_pages, FOLL_PIN). */
export const pinOp = defineOp({
  op: 'pin',
  syntax: {
    subject: 'process', words: ['pin'],
    parse(c, base, p) {
      const { sel, handle } = c.taking(p, 'pin', 'pin');
      const [prot, term, fast] = c.options('pin', OPTIONS.pin);
      return c.async({ op: 'pin', ...base, proc: p.name, sel, handle, write: prot !== 'ro', longterm: term !== 'short', fast: fast === 'fast' });
    },
  },
  run: (s, step) => gup(s, step.proc, step.sel, step.handle, gupRequest(step)),
  start: startGupTask,
  creates: (step) => ({ kind: 'handle', name: step.handle, holder: step.proc, async: step.async === true }),
  explore: [
    pinOn('pin', 9, true, false, false, true), pinOn('pin-ro', 10, false, false, false, true),
    pinOn('pin-fast', 11, true, true, false, false), pinOn('pin-fast&', 22, true, true, true, false),
  ],
  replay(o, step) {
    const why = pinWithoutPath(step.write, step.longterm) ?? o.noUring();
    if (why !== null) return o.missingHandle(step.proc, step.sel, step.handle, 'pins', step.pos.line, step.write, why);
    // The model's slow pin fails on a protected page; io_uring's may wait for the monitor: not replayed.
    if (!step.fast && o.slowPinRefused(step.proc, step.sel)) return o.missingHandle(step.proc, step.sel, step.handle, 'pins', step.pos.line, step.write, SLOW_PIN_UFFD);
    o.take(step.proc, step.sel, step.handle, 'ring');
  },
  exportC(x, step) {
    const what = `${step.proc} pins ${x.label(step.sel)}`;
    const why = pinWithoutPath(step.write, step.longterm);
    if (why !== null) return { code: `rp_missing_handle(${x.proc(step.proc)}, ${x.handle(step.handle)}, ${x.str(what)}, ${step.write ? 1 : 0}, ${x.str(why)});`, skipped: why };
    // A slow pin: the program checks for protected pages (PM_UFFD_WP) when it gets there, as the oracle does.
    return { code: `rp_take(${x.proc(step.proc)}, ${x.region(step.sel)}, ${step.sel.lo}, ${step.sel.hi}, ${x.handle(step.handle)}, 0, ${x.str(what)}, ${step.fast ? 'NULL' : x.str(SLOW_PIN_UFFD)});`, skipped: null };
  },
  fuzz: (w, c) => w.taking(c, 'pin', (p, s, h) => `${p.name} pin ${s} as ${h}${w.options(OPTIONS.pin, c.f >> 4)}`),
  random: [{
    name: 'pin', order: 7, weight: 5, hugetlb: true,
    draw(g, p) {
      const s = g.sel(p, false);
      // hugetlb-fork-enomem (fixed): no hugetlb pin while forks are still to come (see fork).
      if (g.avoids('hugetlb-fork-enomem') && s.pages.some((x) => x.hugetlb) && g.procs.length < g.maxProcs) return false;
      const name = g.nextHandle('pin');
      if (g.written(s.pages, null)) g.handles.push({ name, kind: 'pin', holder: p.name, pages: s.pages.length, frames: s.pages.map((x) => x.frame) });
      g.add(`${p.name} pin ${s.text} as ${name} rw longterm${g.rng() < 0.3 ? ' fast' : ''}`);
      return true;
    },
  }],
});

/** `P gup SEL as H [rw|ro] [fast] [&]` (get_user_pages, FOLL_GET). */
export const gupOp = defineOp({
  op: 'gup',
  syntax: {
    subject: 'process', words: ['gup'],
    parse(c, base, p) {
      const { sel, handle } = c.taking(p, 'gup', 'gup');
      const [prot, fast] = c.options('gup', OPTIONS.gup);
      return c.async({ op: 'gup', ...base, proc: p.name, sel, handle, write: prot !== 'ro', fast: fast === 'fast' });
    },
  },
  run: (s, step) => gup(s, step.proc, step.sel, step.handle, gupRequest(step)),
  start: startGupTask,
  creates: (step) => ({ kind: 'handle', name: step.handle, holder: step.proc, async: step.async === true }),
  explore: [{
    name: 'gup', code: 12, on: { kind: 'page', takesHandle: true },
    decode: (a) => ({ op: 'gup', proc: a.proc, sel: a.sel, handle: a.newHandle(), write: false, fast: false, pos: a.pos, text: '' }),
    text: (a, step) => `${a.proc} gup ${a.at} as ${step.handle} ro`,
  }],
  replay: (o, step) => o.missingHandle(step.proc, step.sel, step.handle, 'takes references on', step.pos.line, step.write, GUP_WITHOUT_PATH),
  exportC: (x, step) => ({
    code: `rp_missing_handle(${x.proc(step.proc)}, ${x.handle(step.handle)}, ${x.str(`${step.proc} takes references on ${x.label(step.sel)}`)}, ${step.write ? 1 : 0}, ${x.str(GUP_WITHOUT_PATH)});`,
    skipped: GUP_WITHOUT_PATH,
  }),
  fuzz: (w, c) => w.taking(c, 'gup', (p, s, h) => `${p.name} gup ${s} as ${h}${w.options(OPTIONS.gup, c.f >> 4)}`),
});

/** `P vmsplice SEL as H [&]` (vmsplice(2) into a pipe: FOLL_GET references through gup-fast). */
export const vmspliceOp = defineOp({
  op: 'vmsplice',
  syntax: {
    subject: 'process', words: ['vmsplice'],
    parse(c, base, p) {
      const { sel, handle } = c.taking(p, 'vmsplice', 'pipe');
      c.end();
      return c.async({ op: 'vmsplice', ...base, proc: p.name, sel, handle });
    },
  },
  run: (s, step) => gup(s, step.proc, step.sel, step.handle, gupRequest(step)),
  start: startGupTask,
  creates: (step) => ({ kind: 'handle', name: step.handle, holder: step.proc, async: step.async === true }),
  explore: [{
    name: 'vmsplice', code: 13, default: true, on: { kind: 'page', takesHandle: true },
    decode: (a) => ({ op: 'vmsplice', proc: a.proc, sel: a.sel, handle: a.newHandle(), pos: a.pos, text: '' }),
    text: (a, step) => `${a.proc} vmsplice ${a.at} as ${step.handle}`,
  }],
  replay: (o, step) => o.take(step.proc, step.sel, step.handle, 'pipe'),
  exportC: (x, step) => ({ code: `rp_take(${x.proc(step.proc)}, ${x.region(step.sel)}, ${step.sel.lo}, ${step.sel.hi}, ${x.handle(step.handle)}, 1, ${x.str(`${step.proc} vmsplices ${x.label(step.sel)}`)}, NULL);`, skipped: null }),
  fuzz: (w, c) => w.taking(c, 'pipe', (p, s, h) => `${p.name} vmsplice ${s} as ${h}`),
  random: [{
    name: 'vmsplice', order: 11, weight: 4, hugetlb: true,
    draw(g, p) {
      const s = g.sel(p, false);
      // protnone-gup-fast: the model's gup-fast takes pages from PROT_NONE PTEs; Linux's does not.
      if (g.avoids('protnone-gup-fast') && s.pages.some((x) => x.mapped && x.prot === 'none')) return false;
      const name = g.nextHandle('pipe');
      let ok = true;
      for (const x of s.pages) {
        if (!x.mapped || x.prot === 'none') ok = false;
        else if (ok) g.readFault(x);
      }
      if (ok) g.handles.push({ name, kind: 'pipe', holder: p.name, pages: s.pages.length, frames: s.pages.map((x) => (x.content === 'data' ? x.frame : 0)) });
      g.add(`${p.name} vmsplice ${s.text} as ${name}`);
      return true;
    },
  }],
});

const releaseSyntax = (how: 'unpin' | 'put') => ({
  subject: 'process' as const, words: [how] as const,
  parse(c: LineParser, base: StepBase, p: ProcInfo) {
    const ht = c.nameTok(`the handle to ${how}`);
    c.env.release(ht.text, how, c.at(ht));
    c.end();
    return how === 'unpin' ? { op: 'unpin' as const, ...base, proc: p.name, handle: ht.text } : { op: 'put' as const, ...base, proc: p.name, handle: ht.text };
  },
});

/** The random generator's release of a pin (unpin) or a pipe (put). */
const releaseDraw = (how: 'unpin' | 'put', order: number, weight: number) => ({
  name: how, order, weight,
  draw(g: RandomGen, p: RandomProc): boolean {
    const pool = g.handles.filter((h) => h.kind === (how === 'unpin' ? 'pin' : 'pipe'));
    if (pool.length === 0) return false;
    const h = g.pickOf(pool);
    const holder = g.procs.find((q) => q.name === h.holder)!;
    g.handles.splice(g.handles.indexOf(h), 1);
    g.add(`${holder.alive ? holder.name : p.name} ${how} ${h.name}`);
    return true;
  },
});

/** `P unpin H` (unpin_user_pages). */
export const unpinOp = defineOp({
  op: 'unpin',
  syntax: releaseSyntax('unpin'),
  run: (s, step) => release(s, step.proc, step.handle, true),
  explore: [{
    name: 'unpin', code: 14, default: true, on: { kind: 'handle', accepts: (h) => h.kind === 'pin' },
    decode: (a) => ({ op: 'unpin', proc: a.proc, handle: a.handle, pos: a.pos, text: '' }),
    text: (a) => `${a.proc} unpin ${a.handle}`,
  }],
  replay: (o, step) => o.release(step.handle),
  exportC: (x, step) => ({ code: `rp_release(${x.handle(step.handle)});`, skipped: null }),
  fuzz: (w, c) => w.release(c, 'unpin', ['pin']),
  random: [releaseDraw('unpin', 8, 3)],
});

/** `P put H` (put_page on each page of a gup or vmsplice handle). */
export const putOp = defineOp({
  op: 'put',
  syntax: releaseSyntax('put'),
  run: (s, step) => release(s, step.proc, step.handle, false),
  explore: [{
    name: 'put', code: 15, default: true, on: { kind: 'handle', accepts: (h) => h.kind !== 'pin' && h.kind !== 'exclusive' },
    decode: (a) => ({ op: 'put', proc: a.proc, handle: a.handle, pos: a.pos, text: '' }),
    text: (a) => `${a.proc} put ${a.handle}`,
  }],
  replay: (o, step) => o.release(step.handle),
  exportC: (x, step) => ({ code: `rp_release(${x.handle(step.handle)});`, skipped: null }),
  fuzz: (w, c) => w.release(c, 'put', ['gup', 'pipe']),
  random: [releaseDraw('put', 13, 2)],
});
