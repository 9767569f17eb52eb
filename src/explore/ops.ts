// The operations the explorer tries from a state: each a packed integer (so a state's path costs
// 4 bytes) that decodes, against the state it applies to, into a scenario Step and its text.

import type { PageSel, Step } from '../scenario/ast.js';
import type { Runner } from '../engine/run.js';
import { VM_UFFD_WP } from '../core/constants.js';

/** Operation names for --ops, in the order they are tried. */
export const OP_NAMES = [
  'write', 'read', 'fork', 'exit', 'munmap', 'mprotect', 'dontfork', 'wipeonfork', 'dontneed',
  'pin', 'pin-ro', 'pin-fast', 'gup', 'vmsplice', 'unpin', 'put', 'handle-read', 'device-write',
  'device-read', 'clear-softdirty', 'thread', 'fork&', 'pin-fast&', 'write&', 'step',
  'swapout', 'mergeable', 'ksm-merge', 'device-exclusive', 'device-atomic', 'fork-cowpt',
  'uffd-register', 'uffd-protect', 'uffd-unprotect', 'uffd-fork-event',
] as const;
export type OpName = (typeof OP_NAMES)[number];

export const DEFAULT_OPS: readonly OpName[] = [
  'write', 'read', 'fork', 'exit', 'munmap', 'pin', 'pin-ro', 'vmsplice', 'unpin', 'put', 'handle-read', 'device-write', 'device-read',
];

/**
 * The operations of a userfaultfd write-protect search (`--ops uffd`): the monitor's requests, and
 * what may move a protected page or its bit (fork, early COW through a pin, swap, a device).
 */
export const UFFD_EXPLORE_OPS: readonly OpName[] = [
  'write', 'read', 'fork', 'exit', 'pin', 'pin-ro', 'unpin', 'swapout', 'device-exclusive', 'dontneed',
  'uffd-register', 'uffd-protect', 'uffd-unprotect', 'uffd-fork-event',
];

/** Names given to processes in creation order. */
export const PROC_NAMES = ['P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W'];

export interface ExploreShape {
  /** Most processes alive at once. */
  procs: number;
  /** Most threads per process (v1.1 interleavings). */
  threads: number;
  /** Most handles live at once. */
  handles: number;
  ops: readonly OpName[];
}

const pack = (code: number, proc: number, page: number, extra: number): number =>
  (code << 24) | (proc << 20) | (page << 4) | extra;

/** Every operation enabled in this state, in a fixed order. */
export function enabledOps(r: Runner, shape: ExploreShape): number[] {
  const out: number[] = [];
  const procs = [...r.procs.values()];
  // A thread inside a kernel path started with `&` can only take its next step.
  const alive = procs.filter((p) => p.alive && !p.task);
  const groupsAlive = new Set(procs.filter((p) => p.alive).map((p) => p.group)).size;
  const handles = [...r.handles.keys()];
  for (const name of shape.ops) {
    const code = OP_NAMES.indexOf(name);
    switch (name) {
      case 'fork':
      case 'fork&':
      case 'fork-cowpt':
        if (groupsAlive < shape.procs && procs.length < PROC_NAMES.length) {
          for (const p of alive) out.push(pack(code, procs.indexOf(p), 0, 0));
        }
        break;
      case 'thread':
        if (procs.length < PROC_NAMES.length) {
          for (const p of alive) {
            if (procs.filter((q) => q.alive && q.group === p.group).length < shape.threads) out.push(pack(code, procs.indexOf(p), 0, 0));
          }
        }
        break;
      case 'step':
        procs.forEach((p, i) => {
          if (p.alive && p.task) out.push(pack(code, i, 0, 0));
        });
        break;
      case 'ksm-merge':
        out.push(pack(code, 0, 0, 0));
        break;
      case 'device-atomic':
        handles.forEach((h, i) => {
          const lh = r.handles.get(h)!;
          if (lh.h.kind !== 'exclusive') return;
          const holder = procs.findIndex((p) => p.name === lh.proc);
          out.push(pack(code, Math.max(0, holder), 0, i));
        });
        break;
      case 'exit':
      case 'clear-softdirty':
        for (const p of alive) out.push(pack(code, procs.indexOf(p), 0, 0));
        break;
      case 'uffd-fork-event':
        // UFFD_FEATURE_EVENT_FORK: asked once, by a process that has not yet.
        for (const p of alive) if (!p.mm.uffdForkEvent) out.push(pack(code, procs.indexOf(p), 0, 0));
        break;
      case 'uffd-register':
      case 'uffd-protect':
      case 'uffd-unprotect':
        // register: the first region as a whole, once; protect / unprotect: a page of a registered region.
        for (const p of alive) {
          const reg = [...p.regions].sort((a, b) => (a[0] < b[0] ? -1 : 1))[0]?.[1];
          if (!reg) continue;
          const registered = (pg: number): boolean => ((p.mm.findVma(reg.start + pg)?.flags ?? 0) & VM_UFFD_WP) !== 0;
          if (name === 'uffd-register') {
            if (!registered(0) || !registered(reg.n - 1)) out.push(pack(code, procs.indexOf(p), 0, 0));
          } else {
            for (let pg = 0; pg < reg.n; pg++) if (registered(pg)) out.push(pack(code, procs.indexOf(p), pg, 0));
          }
        }
        break;
      case 'unpin':
      case 'put':
      case 'handle-read':
      case 'device-write':
      case 'device-read':
        handles.forEach((h, i) => {
          const lh = r.handles.get(h)!;
          const kind = lh.h.kind;
          if (name === 'unpin' && kind !== 'pin') return;
          if (name === 'put' && (kind === 'pin' || kind === 'exclusive')) return;
          // Device I/O goes through a pin (docs/scenario-language.md, "Device I/O needs a pin").
          if (name === 'device-write' && (kind !== 'pin' || !lh.h.write)) return;
          if (name === 'device-read' && kind !== 'pin' && kind !== 'exclusive') return;
          if (name === 'handle-read' && kind !== 'pipe') return;
          const holder = procs.findIndex((p) => p.name === lh.proc);
          out.push(pack(code, Math.max(0, holder), 0, i));
        });
        break;
      default: {
        const takesHandle = name === 'pin' || name === 'pin-ro' || name === 'pin-fast' || name === 'pin-fast&' || name === 'gup' || name === 'vmsplice' || name === 'device-exclusive';
        if (takesHandle && handles.length >= shape.handles) break;
        for (const p of alive) {
          const pi = procs.indexOf(p);
          for (const [, reg] of [...p.regions].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
            for (let pg = 0; pg < reg.n; pg++) {
              if (name === 'mprotect') {
                out.push(pack(code, pi, pg, 0), pack(code, pi, pg, 1));
              } else {
                out.push(pack(code, pi, pg, 0));
              }
            }
            break; // one region is explored: the first in name order
          }
        }
      }
    }
  }
  return out;
}

/** Decode a packed operation against the state it applies to. */
export function decodeOp(r: Runner, op: number): Step {
  const code = op >>> 24;
  const procIdx = (op >>> 20) & 15;
  const page = (op >>> 4) & 0xffff;
  const extra = op & 15;
  const name = OP_NAMES[code]!;
  const procs = [...r.procs.values()];
  const proc = procs[procIdx]?.name ?? 'P';
  const region = [...(procs[procIdx]?.regions.keys() ?? ['buf'])].sort()[0]!;
  const pos = { line: 0, col: 1 };
  const sel: PageSel = { region, all: false, lo: page, hi: page, pos };
  const handleNames = [...r.handles.keys()];
  const handle = handleNames[extra] ?? 'h';
  const newHandle = (): string => {
    const pending = new Set([...r.procs.values()].flatMap((p) => (p.taskStep && 'handle' in p.taskStep ? [p.taskStep.handle] : [])));
    for (let i = 1; ; i++) if (!r.handles.has(`h${i}`) && !pending.has(`h${i}`)) return `h${i}`;
  };
  const mk = (s: Record<string, unknown>, text: string): Step => ({ ...s, pos, text }) as unknown as Step;
  const at = `${region}[${page}]`;
  switch (name) {
    case 'write': {
      const v = r.values.name(r.values.fresh('v'));
      return mk({ op: 'write', proc, sel, value: v }, `${proc} write ${at} = ${v}`);
    }
    case 'read':
      return mk({ op: 'read', proc, sel, expect: null }, `${proc} read ${at}`);
    case 'fork':
    case 'fork&':
    case 'fork-cowpt': {
      const pending = new Set([...r.procs.values()].flatMap((p) => (p.taskStep?.op === 'fork' ? [p.taskStep.child] : [])));
      const child = PROC_NAMES.find((n) => !r.procs.has(n) && !pending.has(n))!;
      const async = name === 'fork&';
      const cowpt = name === 'fork-cowpt';
      return mk({ op: 'fork', proc, child, cowpt, async }, `${proc} fork ${child}${async ? ' &' : ''}${cowpt ? ' cowpt' : ''}`);
    }
    case 'thread': {
      const pending = new Set([...r.procs.values()].flatMap((p) => (p.taskStep?.op === 'fork' ? [p.taskStep.child] : [])));
      const t = PROC_NAMES.find((n) => !r.procs.has(n) && !pending.has(n))!;
      return mk({ op: 'thread', proc, thread: t }, `${proc} thread ${t}`);
    }
    case 'step':
      return mk({ op: 'step', proc }, `${proc} step`);
    case 'write&': {
      const v = r.values.name(r.values.fresh('v'));
      return mk({ op: 'write', proc, sel, value: v, async: true }, `${proc} write ${at} = ${v} &`);
    }
    case 'pin-fast&': {
      const h = newHandle();
      return mk({ op: 'pin', proc, sel, handle: h, write: true, longterm: true, fast: true, async: true }, `${proc} pin ${at} as ${h} rw longterm fast &`);
    }
    case 'exit':
      return mk({ op: 'exit', proc }, `${proc} exit`);
    case 'clear-softdirty':
      return mk({ op: 'clear-softdirty', proc }, `${proc} clear-softdirty`);
    case 'munmap':
      return mk({ op: 'munmap', proc, sel }, `${proc} munmap ${at}`);
    case 'mprotect': {
      const prot = extra === 0 ? 'ro' : 'rw';
      return mk({ op: 'mprotect', proc, sel, prot }, `${proc} mprotect ${at} ${prot}`);
    }
    case 'dontfork':
    case 'wipeonfork':
    case 'dontneed':
      return mk({ op: 'madvise', proc, sel, advice: name }, `${proc} madvise ${at} ${name}`);
    case 'pin':
    case 'pin-ro':
    case 'pin-fast': {
      const h = newHandle();
      const write = name !== 'pin-ro';
      const fast = name === 'pin-fast';
      return mk({ op: 'pin', proc, sel, handle: h, write, longterm: true, fast },
        `${proc} pin ${at} as ${h} ${write ? 'rw' : 'ro'} longterm${fast ? ' fast' : ''}`);
    }
    case 'gup': {
      const h = newHandle();
      return mk({ op: 'gup', proc, sel, handle: h, write: false, fast: false }, `${proc} gup ${at} as ${h} ro`);
    }
    case 'vmsplice': {
      const h = newHandle();
      return mk({ op: 'vmsplice', proc, sel, handle: h }, `${proc} vmsplice ${at} as ${h}`);
    }
    case 'unpin':
      return mk({ op: 'unpin', proc, handle }, `${proc} unpin ${handle}`);
    case 'put':
      return mk({ op: 'put', proc, handle }, `${proc} put ${handle}`);
    case 'handle-read':
      return mk({ op: 'read-handle', proc, ref: { handle, index: 0, pos }, expect: null }, `${proc} read ${handle}[0]`);
    case 'device-write': {
      const v = r.values.name(r.values.fresh('d'));
      return mk({ op: 'device-write', ref: { handle, index: 0, pos }, value: v }, `device write ${handle}[0] = ${v}`);
    }
    case 'device-read':
      return mk({ op: 'device-read', ref: { handle, index: 0, pos }, expect: null }, `device read ${handle}[0]`);
    case 'swapout':
      return mk({ op: 'swapout', proc, sel }, `swapout ${proc} ${at}`);
    case 'mergeable':
      return mk({ op: 'madvise', proc, sel, advice: 'mergeable' }, `${proc} madvise ${at} mergeable`);
    case 'ksm-merge':
      return mk({ op: 'ksm-merge' }, 'ksm merge');
    case 'device-exclusive': {
      const h = newHandle();
      return mk({ op: 'device-exclusive', proc, sel, handle: h }, `device exclusive ${proc} ${at} as ${h}`);
    }
    case 'device-atomic': {
      const v = r.values.name(r.values.fresh('a'));
      return mk({ op: 'device-atomic', ref: { handle, index: 0, pos }, value: v, expect: null }, `device atomic ${handle}[0] = ${v}`);
    }
    case 'uffd-register': {
      const n = procs[procIdx]?.regions.get(region)?.n ?? 1;
      return mk({ op: 'uffd', proc, action: 'register', sel: { region, all: true, lo: 0, hi: n - 1, pos }, on: false }, `${proc} uffd register ${region} wp`);
    }
    case 'uffd-protect':
    case 'uffd-unprotect': {
      const action = name === 'uffd-protect' ? 'protect' : 'unprotect';
      return mk({ op: 'uffd', proc, action, sel, on: false }, `${proc} uffd ${action} ${at}`);
    }
    case 'uffd-fork-event':
      return mk({ op: 'uffd', proc, action: 'fork-event', sel: null, on: true }, `${proc} uffd fork-event on`);
  }
}
