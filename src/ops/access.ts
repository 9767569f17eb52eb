// CPU loads and stores of a process, and reads through a handle: write, read, read-handle.

import { cpuRead, cpuWrite } from '../engine/cpu.js';
import { handleRead } from '../engine/handles.js';
import { startWriteTask } from '../engine/scheduler.js';
import type { PageSel, ReadStep } from '../scenario/ast.js';
import { defineOp } from './types.js';

const pageText = (sel: PageSel): string =>
  sel.all ? `${sel.region}[*]` : `${sel.region}[${sel.lo}${sel.hi !== sel.lo ? `..${sel.hi}` : ''}]`;

/** `P write SEL = VALUE [&]` (CPU stores). */
export const writeOp = defineOp({
  op: 'write',
  syntax: {
    subject: 'process', words: ['write'],
    parse(c, base, p) {
      const sel = c.sel(p, null);
      c.expectToken('=', 'after the page selector');
      const value = c.value("after '='");
      c.end();
      return c.async({ op: 'write', ...base, proc: p.name, sel, value });
    },
  },
  run: (s, step) => cpuWrite(s, step.proc, step.sel, step.value),
  start: startWriteTask,
  explore: [
    {
      name: 'write', code: 0, default: true, on: { kind: 'page' },
      decode: (a) => ({ op: 'write', proc: a.proc, sel: a.sel, value: a.fresh('v'), pos: a.pos, text: '' }),
      text: (a, step) => `${a.proc} write ${a.at} = ${step.value}`,
    },
    {
      name: 'write&', code: 23, on: { kind: 'page' },
      decode: (a) => ({ op: 'write', proc: a.proc, sel: a.sel, value: a.fresh('v'), async: true, pos: a.pos, text: '' }),
      text: (a, step) => `${a.proc} write ${a.at} = ${step.value} &`,
    },
  ],
  replay: (o, step) => o.write(step.proc, step.sel, step.value),
  exportC: (x, step) => ({ code: `rp_write(${x.proc(step.proc)}, ${x.region(step.sel)}, ${step.sel.lo}, ${step.sel.hi}, ${x.value(step.value)}, ${x.str(`${step.proc} ${x.label(step.sel)}`)});`, skipped: null }),
  explain: (step, summary) => /SIGSEGV|out of memory|skipped/.test(summary) ? null
    : `No fault: ${step.proc}'s PTE for ${pageText(step.sel)} was already present and writable, so the CPU stored straight into the frame; the kernel was not involved.`,
  fuzz(w, c) {
    const p = w.pick(c.a);
    const r = p && w.region(p, c.b);
    return p && r ? w.amp(p, c, `${p.name} write ${w.sel(r, c.c, c.d, c.f).text} = ${w.value(c.f >> 8)}`) : null;
  },
  random: [{
    name: 'write', order: 2, weight: 20, hugetlb: true,
    draw(g, p) {
      const s = g.sel(p, false);
      const v = g.nextValue();
      g.written(s.pages, v);
      g.add(`${p.name} write ${s.text} = ${v}`);
      return true;
    },
  }],
});

/** `P read REGION[I] [expect VALUE | expect fault]` (a CPU load), or `P read H[K] [expect VALUE]` (read-handle). */
export const readOp = defineOp({
  op: 'read',
  syntax: {
    subject: 'process', words: ['read'],
    parse(c, base, p) {
      const xt = c.peek();
      if (xt.kind === 'word' && c.env.isHandle(xt.text)) {
        // A device-exclusive grant is held by the device, not by a process: no process reads through it.
        const { ref } = c.handleRef(['pin', 'gup', 'pipe'], 'a read through a handle', (h) =>
          `the device holds it (the device reads it with 'device read ${h}[0]'; the process reads its own page as a region)`);
        const expect = c.optionalExpectValue(`a read through handle '${ref.handle}'`);
        return { op: 'read-handle', ...base, proc: p.name, ref, expect };
      }
      if (xt.kind === 'word' && !p.regions.has(xt.text) && c.env.released.has(xt.text)) {
        c.fail(xt, c.env.missingHandle(xt.text));
      }
      const sel = c.sel(p, 'read');
      let expect: ReadStep['expect'] = null;
      const t = c.peek();
      if (t.kind !== 'end') {
        if (!c.isWord(t, 'expect')) c.fail(t, `expected 'expect' or the end of the step, got ${c.show(t)}`);
        c.next();
        if (c.isWord(c.peek(), 'fault')) {
          c.next();
          expect = { kind: 'fault' };
        } else {
          expect = { kind: 'value', value: c.value("or 'fault' after 'expect'") };
        }
        c.end();
      }
      return { op: 'read', ...base, proc: p.name, sel, expect };
    },
  },
  run: (s, step) => cpuRead(s, step.proc, step.sel, step.expect),
  explore: [{
    name: 'read', code: 1, default: true, on: { kind: 'page' },
    decode: (a) => ({ op: 'read', proc: a.proc, sel: a.sel, expect: null, pos: a.pos, text: '' }),
    text: (a) => `${a.proc} read ${a.at}`,
  }],
  replay: (o, step) => o.read(step),
  exportC: (x, step) => ({ code: `rp_read(${x.proc(step.proc)}, ${x.region(step.sel)}, ${step.sel.lo}, ${x.str(`${step.proc} ${x.label(step.sel, step.sel.lo)}`)});`, skipped: null }),
  explain: (step, summary) => /SIGSEGV|out of memory|skipped/.test(summary) ? null
    : `No fault: ${step.proc}'s PTE for ${pageText(step.sel)} was already present, so the CPU loaded straight from the frame.`,
  fuzz(w, c) {
    const p = w.pick(c.a);
    const r = p && w.region(p, c.b);
    if (!p || !r) return null;
    const expect = [``, ``, ` expect ${w.value(c.f >> 8)}`, ` expect fault`][(c.f >> 4) & 3];
    return `${p.name} read ${w.page(r, c.c)}${expect}`;
  },
  random: [{
    name: 'read', order: 3, weight: 12, hugetlb: true,
    draw(g, p) {
      const s = g.sel(p, true);
      g.readFault(s.pages[0]!);
      g.add(`${p.name} read ${s.text} {}`, 'read');
      return true;
    },
  }],
});

/** `P read H[K] [expect VALUE]`: a read through a handle (a pipe's buffer, a pinned buffer); parsed by `read`. */
export const readHandleOp = defineOp({
  op: 'read-handle',
  syntax: { sameAs: 'read' },
  run(s, step) {
    if (!s.proc(step.proc)) return;
    handleRead(s, step.ref.handle, step.ref.index, step.expect, step.proc);
  },
  explore: [{
    name: 'handle-read', code: 16, default: true, on: { kind: 'handle', accepts: (h) => h.kind === 'pipe' },
    decode: (a) => ({ op: 'read-handle', proc: a.proc, ref: { handle: a.handle, index: 0, pos: a.sel.pos }, expect: null, pos: a.pos, text: '' }),
    text: (a) => `${a.proc} read ${a.handle}[0]`,
  }],
  replay(o, step) {
    if (!o.isLive(step.proc)) return;
    o.handleRead(step.ref.handle, step.ref.index, step.proc);
  },
  exportC: (x, step) => ({ code: `rp_handle_read(${x.handle(step.ref.handle)}, ${step.ref.index}, ${x.proc(step.proc)}, ${x.str(`${step.proc} reads ${step.ref.handle}[${step.ref.index}]`)});`, skipped: null }),
  fuzz(w, c) {
    const p = w.pick(c.a);
    const hs = w.usable(['pin', 'gup', 'pipe']);
    if (!p || hs.length === 0) return null;
    const h = hs[c.b % hs.length]!;
    return `${p.name} read ${h.name}[${c.c % h.pages}]${(c.f & 1) ? ` expect ${w.value(c.f >> 8)}` : ''}`;
  },
  random: [{
    name: 'pipe-read', order: 12, weight: 5,
    draw(g) {
      const pipes = g.handles.filter((h) => h.kind === 'pipe' && g.procs.find((q) => q.name === h.holder)!.alive);
      if (pipes.length === 0) return false;
      const h = g.pickOf(pipes);
      g.add(`${h.holder} read ${h.name}[${g.intIn(0, h.pages - 1)}] {}`, 'read');
      return true;
    },
  }],
});
