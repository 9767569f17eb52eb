// A device's access to memory: DMA through a pin (device write, device read) and
// device-exclusive grants (device exclusive, device atomic; make_device_exclusive).

import { deviceAtomic, deviceExclusive } from '../engine/grants.js';
import { deviceRead, deviceWrite } from '../engine/handles.js';
import type { HandleKind } from '../scenario/resolve.js';
import { ATOMIC_OUTCOMES } from '../scenario/words.js';
import { defineOp } from './types.js';

/**
 * Device I/O (DMA) goes through a pin: the kernel keeps a FOLL_PIN page coherent with its
 * process across fork (early COW, unshare); a FOLL_GET reference (`gup`, a pipe's buffer)
 * gets no such promise, so DMA through it is a driver's misuse, not a kernel behaviour.
 */
const deviceNeedsPin = (h: string, kind: HandleKind): string =>
  kind === 'gup' || kind === 'pipe'
    ? `DMA goes through pin_user_pages (FOLL_PIN); the kernel promises nothing across fork for DMA through a FOLL_GET reference (take '${h}' with 'pin ... short' or 'pin ... longterm')`
    : '';

/** `device write H[K] = VALUE` (DMA into a pinned page). */
export const deviceWriteOp = defineOp({
  op: 'device-write',
  syntax: {
    subject: 'system', words: ['device', 'write'],
    parse(c, base) {
      const { ref } = c.handleRef(['pin'], 'device write', deviceNeedsPin);
      c.expectToken('=', 'after the handle page');
      const value = c.value("after '='");
      c.end();
      return { op: 'device-write', ...base, ref, value };
    },
  },
  run: (s, step) => deviceWrite(s, step.ref.handle, step.ref.index, step.value),
  explore: [{
    name: 'device-write', code: 17, default: true, on: { kind: 'handle', accepts: (h) => h.kind === 'pin' && h.write },
    decode: (a) => ({ op: 'device-write', ref: { handle: a.handle, index: 0, pos: a.sel.pos }, value: a.fresh('d'), pos: a.pos, text: '' }),
    text: (a, step) => `device write ${a.handle}[0] = ${step.value}`,
  }],
  replay: (o, step) => o.deviceWrite(step),
  exportC: (x, step) => ({ code: `rp_device_write(${x.handle(step.ref.handle)}, ${step.ref.index}, ${x.value(step.value)}, ${step.pos.line});`, skipped: null }),
  fuzz(w, c) {
    const hs = w.usable(['pin']);
    if (hs.length === 0) return null;
    const h = hs[c.b % hs.length]!;
    return `device write ${h.name}[${c.c % h.pages}] = ${w.value(c.f >> 8)}`;
  },
  random: [{
    name: 'device-write', order: 10, weight: 5,
    draw(g) {
      const pins = g.handles.filter((h) => h.kind === 'pin');
      if (pins.length === 0) return false;
      const h = g.pickOf(pins);
      const k = g.intIn(0, h.pages - 1);
      const v = g.nextValue();
      for (const x of g.livePages()) if (h.frames[k] !== 0 && x.frame === h.frames[k]) x.value = v;
      g.add(`device write ${h.name}[${k}] = ${v}`);
      return true;
    },
  }],
});

/** `device read H[K] [expect VALUE]` (DMA from a pinned page, or through a device-exclusive grant). */
export const deviceReadOp = defineOp({
  op: 'device-read',
  syntax: {
    subject: 'system', words: ['device', 'read'],
    parse(c, base) {
      const { ref } = c.handleRef(['pin', 'exclusive'], 'device read', deviceNeedsPin);
      const expect = c.optionalExpectValue('a device read');
      return { op: 'device-read', ...base, ref, expect };
    },
  },
  run: (s, step) => deviceRead(s, step.ref.handle, step.ref.index, step.expect),
  explore: [{
    name: 'device-read', code: 18, default: true, on: { kind: 'handle', accepts: (h) => h.kind === 'pin' || h.kind === 'exclusive' },
    decode: (a) => ({ op: 'device-read', ref: { handle: a.handle, index: 0, pos: a.sel.pos }, expect: null, pos: a.pos, text: '' }),
    text: (a) => `device read ${a.handle}[0]`,
  }],
  replay: (o, step) => o.handleRead(step.ref.handle, step.ref.index, null),
  exportC: (x, step) => ({ code: `rp_handle_read(${x.handle(step.ref.handle)}, ${step.ref.index}, -1, ${x.str(`the device reads ${step.ref.handle}[${step.ref.index}]`)});`, skipped: null }),
  fuzz(w, c) {
    const hs = w.usable(['pin', 'exclusive']);
    if (hs.length === 0) return null;
    const h = hs[c.b % hs.length]!;
    return `device read ${h.name}[${c.c % h.pages}]${(c.f & 1) ? ` expect ${w.value(c.f >> 8)}` : ''}`;
  },
  random: [{
    name: 'device-read', order: 9, weight: 5,
    draw(g) {
      const pins = g.handles.filter((h) => h.kind === 'pin');
      if (pins.length === 0) return false;
      const h = g.pickOf(pins);
      g.add(`device read ${h.name}[${g.intIn(0, h.pages - 1)}] {}`, 'read');
      return true;
    },
  }],
});

/** `device exclusive P SEL as H` (make_device_exclusive: the device holds the pages, the CPU faults on them). */
export const deviceExclusiveOp = defineOp({
  op: 'device-exclusive',
  syntax: {
    subject: 'system', words: ['device', 'exclusive'],
    parse(c, base) {
      const p = c.liveProc("the process after 'device exclusive'");
      const { sel, handle } = c.taking(p, 'device exclusive P', 'exclusive');
      c.end();
      return { op: 'device-exclusive', ...base, proc: p.name, sel, handle };
    },
  },
  run: (s, step) => deviceExclusive(s, step.proc, step.sel, step.handle),
  creates: (step) => ({ kind: 'handle', name: step.handle, holder: step.proc, async: false }),
  explore: [{
    name: 'device-exclusive', code: 28, needs: 'device-exclusive', on: { kind: 'page', takesHandle: true },
    decode: (a) => ({ op: 'device-exclusive', proc: a.proc, sel: a.sel, handle: a.newHandle(), pos: a.pos, text: '' }),
    text: (a, step) => `device exclusive ${a.proc} ${a.at} as ${step.handle}`,
  }],
  replay: (o, step) => o.deviceExclusive(step),
  exportC(x, step) {
    // What the model holds of it the program reads from the model's answers (its note says it).
    const s = x.system('device-exclusive');
    return { code: `rp_device_exclusive(${x.handle(step.handle)}, ${x.str(s.reason)});`, skipped: s.reason };
  },
  fuzz: (w, c) => w.taking(c, 'exclusive', (p, s, h) => `device exclusive ${p.name} ${s} as ${h}`),
});

/** `device atomic H[K] = VALUE [expect revoked|denied]` (an atomic through a device-exclusive grant). */
export const deviceAtomicOp = defineOp({
  op: 'device-atomic',
  syntax: {
    subject: 'system', words: ['device', 'atomic'],
    parse(c, base) {
      const { ref } = c.handleRef(['exclusive'], 'device atomic');
      c.expectToken('=', 'after the handle page');
      const value = c.value("after '='");
      const expect = c.optionalExpect(ATOMIC_OUTCOMES, 'atomic outcome', "after 'expect'");
      return { op: 'device-atomic', ...base, ref, value, expect };
    },
  },
  run: (s, step) => deviceAtomic(s, step.ref.handle, step.ref.index, step.value, step.expect),
  explore: [{
    name: 'device-atomic', code: 29, on: { kind: 'handle', accepts: (h) => h.kind === 'exclusive' },
    decode: (a) => ({ op: 'device-atomic', ref: { handle: a.handle, index: 0, pos: a.sel.pos }, value: a.fresh('a'), expect: null, pos: a.pos, text: '' }),
    text: (a, step) => `device atomic ${a.handle}[0] = ${step.value}`,
  }],
  replay: (o) => o.notReplayed('device-atomic'),
  exportC: (x) => x.notReplayed('device-atomic'),
  fuzz(w, c) {
    const hs = w.usable(['exclusive']);
    if (hs.length === 0) return null;
    const h = hs[c.b % hs.length]!;
    const expect = (c.f & 3) === 0 ? '' : (c.f & 3) === 3 ? '' : ` expect ${ATOMIC_OUTCOMES[(c.f & 3) - 1]}`;
    return `device atomic ${h.name}[${c.c % h.pages}] = ${w.value(c.f >> 8)}${expect}`;
  },
});
