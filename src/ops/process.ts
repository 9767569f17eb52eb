// Processes and threads: fork, exit, thread; and (v1.1) step and finish, which advance a kernel
// path a thread started with `&`.

import { exit, fork, thread } from '../engine/mm-ops.js';
import { advance, startForkTask } from '../engine/scheduler.js';
import { OPTIONS } from '../scenario/words.js';
import { defineOp, type ExploreOp } from './types.js';

/** The random generator's children, in fork order (it forks at most three). */
const RANDOM_CHILDREN = ['Q', 'R', 'S'];

const forkOn = (name: string, code: number, async: boolean, cowpt: boolean, dflt = false): ExploreOp => ({
  name, code, on: { kind: 'fork' }, ...(dflt ? { default: true } : {}), ...(cowpt ? { needs: 'cow-page-tables' as const } : {}),
  decode: (a) => ({ op: 'fork', proc: a.proc, child: a.newProc(), cowpt, ...(async ? { async: true } : {}), pos: a.pos, text: '' }),
  text: (a, step) => `${a.proc} fork ${step.child}${async ? ' &' : ''}${cowpt ? ' cowpt' : ''}`,
});

/** `P fork CHILD [cowpt] [&]` (fork(2): dup_mmap). */
export const forkOp = defineOp({
  op: 'fork',
  syntax: {
    subject: 'process', words: ['fork'],
    parse(c, base, p) {
      const ct = c.procTok("the child's process name after 'fork'");
      c.env.fork(p, ct.text, c.at(ct), c.path);
      const [cowpt] = c.options('fork', OPTIONS.fork);
      return c.async({ op: 'fork', ...base, proc: p.name, child: ct.text, cowpt: cowpt === 'cowpt' });
    },
  },
  run: fork,
  start: startForkTask,
  creates: (step) => ({ kind: 'child', name: step.child, parent: step.proc, async: step.async === true }),
  explore: [forkOn('fork', 2, false, false, true), forkOn('fork&', 21, true, false), forkOn('fork-cowpt', 30, false, true)],
  replay: (o, step) => o.fork(step.proc, step.child, step.cowpt),
  exportC(x, step) {
    const p = x.proc(step.proc);
    if (step.cowpt) {
      const s = x.notReplayed('fork-cowpt');
      return { code: `if (live(${p}))\n\t\t${s.code}`, skipped: s.skipped };
    }
    return { code: `rp_fork(${p}, ${x.proc(step.child)}, ${x.str(`${step.proc} forks ${step.child}`)});`, skipped: null };
  },
  fuzz(w, c) {
    const p = w.pick(c.a);
    if (!p || w.procs.filter((q) => q.alive).length >= w.maxProcs) return null;
    const child = { name: w.newProcName(false), alive: true, regions: p.regions.map((r) => ({ ...r })), pending: null, forking: false };
    w.procs.push(child);
    return w.amp(p, c, `${p.name} fork ${child.name}${w.options(OPTIONS.fork, (c.f & 0xf) === 0 ? 1 : 0)}`, { child });
  },
  random: [{
    name: 'fork', order: 0, weight: 0, hugetlb: true,
    draw(g, p) {
      if (g.procs.length >= g.maxProcs) return false;
      if (g.tired) return false; // it kept being refused: give up on it
      const child = RANDOM_CHILDREN[g.procs.length - 1]!;
      const pinned = g.held('pin');
      // A pinned hugetlb page is copied at fork (early COW): with the pool empty, fork fails (ENOMEM).
      const pinnedHuge = [...p.regions.values()].some((pg) => pg.some((x) => x.hugetlb && x.mapped && x.frame !== 0 && pinned.has(x.frame)));
      // hugetlb-fork-enomem (fixed): a fork that fails at the hugetlb VMA has already write-protected
      // the VMAs before it (dup_mmap copies in order; PG_anon_exclusive cleared); the model once did not.
      if (pinnedHuge && g.avoids('hugetlb-fork-enomem')) return false;
      const mayFail = p.mayNotExist === true || pinnedHuge;
      g.procs.push({
        name: child, alive: true, regions: new Map([...p.regions].map(([r, pg]) => [r, g.forkPages(pg, pinned)])),
        ...(mayFail ? { mayNotExist: true } : {}),
        // With the fork event the child's registrations stay (the monitor watches it too); without it, none.
        uffd: p.uffdForkEvent ? new Set(p.uffd) : new Set(), uffdForkEvent: p.uffdForkEvent && p.uffd.size > 0,
      });
      g.add(`${p.name} fork ${child}`);
      return true;
    },
  }],
});

/** `P exit` (the thread exits; the process's memory goes with its last thread). */
export const exitOp = defineOp({
  op: 'exit',
  syntax: {
    subject: 'process', words: ['exit'],
    parse(c, base, p) {
      c.end();
      c.env.exit(p, base.pos);
      return { op: 'exit', ...base, proc: p.name };
    },
  },
  run: exit,
  explore: [{
    name: 'exit', code: 3, default: true, on: { kind: 'proc' },
    decode: (a) => ({ op: 'exit', proc: a.proc, pos: a.pos, text: '' }),
    text: (a) => `${a.proc} exit`,
  }],
  replay: (o, step) => o.exit(step),
  exportC: (x, step) => ({ code: `rp_exit(${x.proc(step.proc)});`, skipped: null }),
  fuzz(w, c) {
    const p = w.pick(c.a);
    if (!p || w.procs.filter((q) => q.alive).length <= 1) return null;
    p.alive = false;
    return `${p.name} exit`;
  },
  random: [{
    name: 'exit', order: 1, weight: 3, hugetlb: true,
    draw(g, p) {
      if (g.live().length < 2) return false;
      p.alive = false;
      g.add(`${p.name} exit`);
      return true;
    },
  }],
});

/** v1.1: `P thread T`: a new thread T sharing P's address space (CLONE_VM). */
export const threadOp = defineOp({
  op: 'thread',
  syntax: {
    subject: 'process', words: ['thread'], v11: true,
    parse(c, base, p) {
      const tt = c.procTok("the new thread's name after 'thread'");
      c.env.thread(p, tt.text, c.at(tt));
      c.end();
      return { op: 'thread', ...base, proc: p.name, thread: tt.text };
    },
  },
  run: thread,
  explore: [{
    name: 'thread', code: 20, on: { kind: 'thread' },
    decode: (a) => ({ op: 'thread', proc: a.proc, thread: a.newProc(), pos: a.pos, text: '' }),
    text: (a, step) => `${a.proc} thread ${step.thread}`,
  }],
  replay: (o, step) => o.thread(step),
  exportC: (x, step) => ({ code: `rp_thread(${x.proc(step.proc)}, ${x.proc(step.thread)});`, skipped: null }),
  fuzz(w, c) {
    const p = w.pick(c.a);
    if (!p || w.procs.filter((q) => q.alive).length >= w.maxProcs) return null;
    const t = { name: w.newProcName(true), alive: true, regions: p.regions, pending: null, forking: false };
    w.procs.push(t);
    return `${p.name} thread ${t.name}`;
  },
});

/** v1.1: `T step`: T's pending kernel path runs one atomic step. */
export const stepOp = defineOp({
  op: 'step',
  syntax: {
    subject: 'process', words: ['step'], v11: true, whileBusy: true,
    parse(c, base, p) {
      c.env.pendingPath(p, 'step', c.at(c.verb!));
      c.end();
      return { op: 'step', ...base, proc: p.name };
    },
  },
  run: (s, step) => advance(s, step.proc, false),
  explore: [{
    name: 'step', code: 24, on: { kind: 'pending' },
    decode: (a) => ({ op: 'step', proc: a.proc, pos: a.pos, text: '' }),
    text: (a) => `${a.proc} step`,
  }],
  replay: (o) => o.notReplayed('step'),
  exportC: (x) => x.notReplayed('step'),
  fuzz(w, c) {
    const ps = w.procs.filter((p) => p.alive && p.pending !== null);
    return ps.length === 0 ? null : `${ps[c.a % ps.length]!.name} step`;
  },
});

/** v1.1: `T finish`: T's pending kernel path runs to its end. */
export const finishOp = defineOp({
  op: 'finish',
  syntax: {
    subject: 'process', words: ['finish'], v11: true, whileBusy: true,
    parse(c, base, p) {
      c.env.pendingPath(p, 'finish', c.at(c.verb!));
      // Finished before the end is checked, so that a typo after it does not leave the
      // thread inside its path for every later step.
      c.env.finishPath(p, base.pos);
      c.end();
      return { op: 'finish', ...base, proc: p.name };
    },
  },
  run: (s, step) => advance(s, step.proc, true),
  replay: (o) => o.notReplayed('finish'),
  exportC: (x) => x.notReplayed('finish'),
  fuzz(w, c) {
    const ps = w.procs.filter((p) => p.alive && p.pending !== null);
    if (ps.length === 0) return null;
    const p = ps[c.a % ps.length]!;
    if (p.pending!.child) p.pending!.child.forking = false;
    if (p.pending!.handle) p.pending!.handle.pending = false;
    p.pending = null;
    return `${p.name} finish`;
  },
});
