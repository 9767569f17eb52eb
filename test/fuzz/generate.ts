// Random scenarios over every operation of the language, for the fuzz campaign (campaign.ts).
//
// The operations come from the parser's own declarations: STEP_OPS (every kind of Step, checked
// complete at compile time) and the word lists of steps.ts (protections, advices, option groups,
// counters, expectations). GENERATORS is a Record over every step kind, so a new kind of step
// does not compile until it has a generator, and the campaign's coverage test fails until the
// generator really produces it.
//
// A program is a list of choices (indices, flags), turned into text against the names that
// exist at each step (`index % live`): every program, and every program fast-check shrinks it
// to, is a scenario the parser accepts; a choice that does not apply is left out.

import fc from 'fast-check';
import {
  ADVICES, ATOMIC_OUTCOMES, EXPECTATIONS, OPTIONS, PROTS, STAT_NAMES, STAT_OPS, STEP_OPS, UFFD_ACTIONS, VIOLATION_KINDS,
  type StepOp,
} from '../../src/scenario/index.js';
import { BUILTIN_PROFILES } from '../../src/profiles/builtin.js';

/** One step's choices: what to do (op) and indices and flags to pick names, pages and words. */
export interface Choice {
  op: StepOp;
  a: number;
  b: number;
  c: number;
  d: number;
  /** Option words and variants, a bit field. */
  f: number;
  /** Start it as an asynchronous kernel path (`&`) where the operation allows one. */
  amp: boolean;
}

/**
 * A change to the written steps, so that scenarios outside the generator's own rules are run too
 * (a name used again after release, a step moved before what it needs, a word swapped): the
 * parser rejects most of them, and what it accepts must run.
 */
export interface Mutation {
  /** 0: copy line i after line j; 1: delete line i; 2: swap lines i and j; 3: put word k (of all the words) at word j of line i. */
  kind: number;
  i: number;
  j: number;
  k: number;
}

export interface Program {
  /** Changes to the written steps (none for most programs). */
  mutations: Mutation[];
  /** Pages of the first region. */
  pages: number;
  frames: number | null;
  pinBias: number | null;
  /** Index of an `outcomes` variant (0: none). */
  outcomes: number;
  steps: Choice[];
}

/** How often each kind of step is chosen (1 unless named). */
const WEIGHT: Partial<Record<StepOp, number>> = { write: 5, read: 3, fork: 3, pin: 2, 'device-write': 2, 'device-read': 2, step: 2 };

const ix = fc.nat({ max: 255 });

export function choiceArb(): fc.Arbitrary<Choice> {
  return fc.oneof(
    ...STEP_OPS.map((op) => ({
      weight: WEIGHT[op] ?? 1,
      arbitrary: fc.record({ op: fc.constant(op), a: ix, b: ix, c: ix, d: ix, f: fc.nat({ max: 0xffff }), amp: fc.constantFrom(false, false, false, true) }),
    })),
  );
}

const mutationArb: fc.Arbitrary<Mutation> = fc.record({ kind: fc.nat({ max: 3 }), i: ix, j: ix, k: ix });

export function programArb(maxSteps = 24): fc.Arbitrary<Program> {
  return fc.record({
    mutations: fc.oneof({ weight: 3, arbitrary: fc.constant<Mutation[]>([]) }, { weight: 1, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) }),
    pages: fc.integer({ min: 1, max: 4 }),
    frames: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 8 }) }),
    pinBias: fc.constantFrom(null, null, null, 2, 3),
    outcomes: fc.nat({ max: 5 }),
    steps: fc.array(choiceArb(), { minLength: 1, maxLength: maxSteps }),
  });
}

// ---- the names that exist while the text is written (what the parser's NameEnv tracks)

interface GRegion {
  name: string;
  pages: number;
}

interface GProc {
  name: string;
  alive: boolean;
  /** The region table: shared by the threads of a process, copied at fork. */
  regions: GRegion[];
  /** The kernel path it started with `&` and has not finished: the child or handle it makes. */
  pending: { child: GProc | null; handle: GHandle | null } | null;
  /** Created by a `fork ... &` not finished yet: not usable. */
  forking: boolean;
}

interface GHandle {
  name: string;
  kind: 'pin' | 'gup' | 'pipe' | 'exclusive';
  pages: number;
  /** Being taken by a path not finished yet: not usable. */
  pending: boolean;
}

const MAX_PROCS = 5;
const MAX_HANDLES = 4;
const MAX_REGIONS = 3;
const VALUES = ['0', '1', '2', '7', '-3', 'secret', 'x1'];

class Writer {
  lines: string[] = [];
  procs: GProc[] = [];
  handles: GHandle[] = [];
  private nRegions = 1;
  private nProcs = 0;
  private nHandles = 0;

  constructor(pages: number) {
    this.procs.push({ name: 'P', alive: true, regions: [{ name: 'r0', pages }], pending: null, forking: false });
    this.lines.push(`P mmap r0 ${pages}`);
  }

  /** Live processes and threads that may start an operation (no path pending, not being forked). */
  free(): GProc[] {
    return this.procs.filter((p) => p.alive && p.pending === null && !p.forking);
  }

  /** Live ones a system operation may name (a pending path of their own does not matter). */
  named(): GProc[] {
    return this.procs.filter((p) => p.alive && !p.forking);
  }

  usable(kinds: readonly GHandle['kind'][]): GHandle[] {
    return this.handles.filter((h) => !h.pending && kinds.includes(h.kind));
  }

  value(i: number): string {
    return VALUES[i % VALUES.length]!;
  }

  region(p: GProc, i: number): GRegion | null {
    return p.regions.length === 0 ? null : p.regions[i % p.regions.length]!;
  }

  /** A page selector of region r: `r`, `r[*]`, `r[i]` or `r[lo..hi]`, by f. */
  sel(r: GRegion, i: number, j: number, f: number): { text: string; pages: number } {
    const lo = i % r.pages;
    const hi = lo + (j % (r.pages - lo));
    switch (f & 3) {
      case 0: return { text: (f & 4) ? r.name : `${r.name}[*]`, pages: r.pages };
      case 1: return { text: `${r.name}[${lo}]`, pages: 1 };
      default: return { text: lo === hi ? `${r.name}[${lo}]` : `${r.name}[${lo}..${hi}]`, pages: hi - lo + 1 };
    }
  }

  page(r: GRegion, i: number): string {
    return `${r.name}[${i % r.pages}]`;
  }

  /** Option words: each group taken or not (by bits of f), in an order f picks too. */
  options(groups: readonly (readonly string[])[], f: number, skip: (w: string, f: number) => boolean = () => false): string {
    const words: string[] = [];
    groups.forEach((g, k) => {
      const bits = (f >> (2 * k)) & 3;
      if (bits === 0) return;
      const w = g[(bits - 1) % g.length]!;
      if (!skip(w, f)) words.push(w);
    });
    if (f & 0x8000) words.reverse();
    return words.length ? ` ${words.join(' ')}` : '';
  }

  newHandle(kind: GHandle['kind'], pages: number, pending: boolean): GHandle {
    const h: GHandle = { name: `h${this.nHandles++}`, kind, pages, pending };
    this.handles.push(h);
    return h;
  }

  newProcName(thread: boolean): string {
    return `${thread ? 'T' : 'C'}${++this.nProcs}`;
  }

  newRegionName(): string {
    return `r${this.nRegions++}`;
  }
}

/** An async-capable step: `&` at its end when chosen; returns the path record for the proc. */
function amp(p: GProc, c: Choice, text: string, made: { child?: GProc; handle?: GHandle } = {}): string {
  if (!c.amp) return text;
  p.pending = { child: made.child ?? null, handle: made.handle ?? null };
  if (made.child) made.child.forking = true;
  if (made.handle) made.handle.pending = true;
  return `${text} &`;
}

type Gen = (w: Writer, c: Choice) => string | null;

/** A live free process by index, or null. */
const pick = (w: Writer, i: number): GProc | null => {
  const l = w.free();
  return l.length === 0 ? null : l[i % l.length]!;
};

/** A step taking a handle (pin, gup, vmsplice, device exclusive) on a selector of a free process. */
function taking(w: Writer, c: Choice, kind: GHandle['kind'], verb: (p: GProc, sel: string, h: string) => string): string | null {
  if (w.handles.length >= MAX_HANDLES) return null;
  const p = kind === 'exclusive' ? (w.named()[c.a % Math.max(1, w.named().length)] ?? null) : pick(w, c.a);
  const r = p && w.region(p, c.b);
  if (!p || !r) return null;
  const s = w.sel(r, c.c, c.d, c.f);
  const h = w.newHandle(kind, s.pages, false);
  const text = verb(p, s.text, h.name);
  return kind === 'exclusive' ? text : amp(p, c, text, { handle: h });
}

/** Every kind of step: how to write one from a choice (null: it does not apply now). */
const GENERATORS: Record<StepOp, Gen> = {
  mmap: (w, c) => {
    const p = pick(w, c.a);
    if (!p || p.regions.length >= MAX_REGIONS) return null;
    const r = { name: w.newRegionName(), pages: 1 + (c.b % 4) };
    p.regions.push(r);
    // THP is n/a (not modelled): rarely, so that most runs go on.
    return `${p.name} mmap ${r.name} ${r.pages}${w.options(OPTIONS.mmap, c.f, (word, f) => word === 'thp' && (f & 0x7000) !== 0)}`;
  },
  munmap: (w, c) => {
    const p = pick(w, c.a);
    const r = p && w.region(p, c.b);
    return p && r ? `${p.name} munmap ${w.sel(r, c.c, c.d, c.f).text}` : null;
  },
  mprotect: (w, c) => {
    const p = pick(w, c.a);
    const r = p && w.region(p, c.b);
    return p && r ? `${p.name} mprotect ${w.sel(r, c.c, c.d, c.f).text} ${PROTS[(c.f >> 4) % PROTS.length]}` : null;
  },
  madvise: (w, c) => {
    const p = pick(w, c.a);
    const r = p && w.region(p, c.b);
    return p && r ? `${p.name} madvise ${w.sel(r, c.c, c.d, c.f).text} ${ADVICES[(c.f >> 4) % ADVICES.length]}` : null;
  },
  write: (w, c) => {
    const p = pick(w, c.a);
    const r = p && w.region(p, c.b);
    return p && r ? amp(p, c, `${p.name} write ${w.sel(r, c.c, c.d, c.f).text} = ${w.value(c.f >> 8)}`) : null;
  },
  read: (w, c) => {
    const p = pick(w, c.a);
    const r = p && w.region(p, c.b);
    if (!p || !r) return null;
    const expect = [``, ``, ` expect ${w.value(c.f >> 8)}`, ` expect fault`][(c.f >> 4) & 3];
    return `${p.name} read ${w.page(r, c.c)}${expect}`;
  },
  fork: (w, c) => {
    const p = pick(w, c.a);
    if (!p || w.procs.filter((q) => q.alive).length >= MAX_PROCS) return null;
    const child: GProc = { name: w.newProcName(false), alive: true, regions: p.regions.map((r) => ({ ...r })), pending: null, forking: false };
    w.procs.push(child);
    return amp(p, c, `${p.name} fork ${child.name}${w.options(OPTIONS.fork, (c.f & 0xf) === 0 ? 1 : 0)}`, { child });
  },
  exit: (w, c) => {
    const p = pick(w, c.a);
    if (!p || w.procs.filter((q) => q.alive).length <= 1) return null;
    p.alive = false;
    return `${p.name} exit`;
  },
  pin: (w, c) => taking(w, c, 'pin', (p, s, h) => `${p.name} pin ${s} as ${h}${w.options(OPTIONS.pin, c.f >> 4)}`),
  gup: (w, c) => taking(w, c, 'gup', (p, s, h) => `${p.name} gup ${s} as ${h}${w.options(OPTIONS.gup, c.f >> 4)}`),
  vmsplice: (w, c) => taking(w, c, 'pipe', (p, s, h) => `${p.name} vmsplice ${s} as ${h}`),
  'device-exclusive': (w, c) => taking(w, c, 'exclusive', (p, s, h) => `device exclusive ${p.name} ${s} as ${h}`),
  'read-handle': (w, c) => {
    const p = pick(w, c.a);
    const hs = w.usable(['pin', 'gup', 'pipe']);
    if (!p || hs.length === 0) return null;
    const h = hs[c.b % hs.length]!;
    return `${p.name} read ${h.name}[${c.c % h.pages}]${(c.f & 1) ? ` expect ${w.value(c.f >> 8)}` : ''}`;
  },
  unpin: (w, c) => release(w, c, 'unpin', ['pin']),
  put: (w, c) => release(w, c, 'put', ['gup', 'pipe']),
  'clear-softdirty': (w, c) => {
    const p = pick(w, c.a);
    return p ? `${p.name} clear-softdirty` : null;
  },
  uffd: (w, c) => {
    const p = pick(w, c.a);
    if (!p) return null;
    const action = UFFD_ACTIONS[(c.f >> 4) % UFFD_ACTIONS.length]!;
    if (action === 'fork-event') return `${p.name} uffd fork-event ${c.f & 1 ? 'on' : 'off'}`;
    const r = w.region(p, c.b);
    return r ? `${p.name} uffd ${action} ${w.sel(r, c.c, c.d, c.f).text}${action === 'register' ? ' wp' : ''}` : null;
  },
  'device-write': (w, c) => {
    const hs = w.usable(['pin']);
    if (hs.length === 0) return null;
    const h = hs[c.b % hs.length]!;
    return `device write ${h.name}[${c.c % h.pages}] = ${w.value(c.f >> 8)}`;
  },
  'device-read': (w, c) => {
    const hs = w.usable(['pin', 'exclusive']);
    if (hs.length === 0) return null;
    const h = hs[c.b % hs.length]!;
    return `device read ${h.name}[${c.c % h.pages}]${(c.f & 1) ? ` expect ${w.value(c.f >> 8)}` : ''}`;
  },
  'device-atomic': (w, c) => {
    const hs = w.usable(['exclusive']);
    if (hs.length === 0) return null;
    const h = hs[c.b % hs.length]!;
    const expect = (c.f & 3) === 0 ? '' : (c.f & 3) === 3 ? '' : ` expect ${ATOMIC_OUTCOMES[(c.f & 3) - 1]}`;
    return `device atomic ${h.name}[${c.c % h.pages}] = ${w.value(c.f >> 8)}${expect}`;
  },
  swapout: (w, c) => {
    const ps = w.named();
    const p = ps[c.a % ps.length];
    const r = p && w.region(p, c.b);
    return p && r ? `swapout ${p.name} ${w.sel(r, c.c, c.d, c.f).text}` : null;
  },
  'ksm-merge': () => 'ksm merge',
  check: () => 'check',
  stats: () => 'stats',
  'expect-frame': (w, c) => expectPage(w, c, [EXPECTATIONS[0], EXPECTATIONS[1]], true),
  'expect-mapped': (w, c) => expectPage(w, c, [EXPECTATIONS[2], EXPECTATIONS[3]], false),
  'expect-exclusive': (w, c) => expectPage(w, c, [EXPECTATIONS[4], EXPECTATIONS[5]], false),
  'expect-uffd-wp': (w, c) => expectPage(w, c, [EXPECTATIONS[6], EXPECTATIONS[7]], false),
  'expect-stat': (w, c) => {
    const known = w.procs.filter((p) => !p.forking);
    let stat: string = STAT_NAMES[c.a % STAT_NAMES.length]!;
    if (stat.endsWith('.P')) stat = `${stat.slice(0, -1)}${known[c.b % known.length]!.name}`;
    return `expect stat ${stat} ${STAT_OPS[c.c % STAT_OPS.length]} ${c.d % 40}`;
  },
  thread: (w, c) => {
    const p = pick(w, c.a);
    if (!p || w.procs.filter((q) => q.alive).length >= MAX_PROCS) return null;
    const t: GProc = { name: w.newProcName(true), alive: true, regions: p.regions, pending: null, forking: false };
    w.procs.push(t);
    return `${p.name} thread ${t.name}`;
  },
  step: (w, c) => {
    const ps = w.procs.filter((p) => p.alive && p.pending !== null);
    return ps.length === 0 ? null : `${ps[c.a % ps.length]!.name} step`;
  },
  finish: (w, c) => {
    const ps = w.procs.filter((p) => p.alive && p.pending !== null);
    if (ps.length === 0) return null;
    const p = ps[c.a % ps.length]!;
    if (p.pending!.child) p.pending!.child.forking = false;
    if (p.pending!.handle) p.pending!.handle.pending = false;
    p.pending = null;
    return `${p.name} finish`;
  },
};

function release(w: Writer, c: Choice, verb: 'unpin' | 'put', kinds: GHandle['kind'][]): string | null {
  const p = pick(w, c.a);
  const hs = w.usable(kinds);
  if (!p || hs.length === 0) return null;
  const h = hs[c.b % hs.length]!;
  w.handles.splice(w.handles.indexOf(h), 1);
  return `${p.name} ${verb} ${h.name}`;
}

function expectPage(w: Writer, c: Choice, words: readonly string[], other: boolean): string | null {
  const ps = w.named();
  const p = ps[c.a % ps.length];
  const r = p && w.region(p, c.b);
  if (!p || !r) return null;
  const word = words[c.f & 1]!;
  if (!other) return `expect ${p.name} ${w.page(r, c.c)} ${word}`;
  const q = ps[c.d % ps.length]!;
  const rq = w.region(q, c.f >> 4);
  return rq ? `expect ${p.name} ${w.page(r, c.c)} ${word} ${q.name} ${w.page(rq, c.f >> 8)}` : null;
}

/** The `outcomes` variants a program may carry (0: none). */
function outcomesText(k: number): string {
  const names = BUILTIN_PROFILES.map((p) => p.name);
  switch (k) {
    case 1: return 'outcomes:\n  "*": ok\n';
    case 2: return `outcomes:\n  ${names[0]}: fail\n  ${names[names.length - 1]}: n/a\n`;
    case 3: return `outcomes:\n  "*": [${VIOLATION_KINDS[0]}, ${VIOLATION_KINDS[3]}]\n  v6: ok\n`;
    case 4: return `outcomes:\n  v6: [${VIOLATION_KINDS.join(', ')}]\n`;
    default: return '';
  }
}

/** The steps of a program, one a line. */
export function programSteps(prog: Program): string[] {
  const w = new Writer(prog.pages);
  for (const c of prog.steps) {
    const line = GENERATORS[c.op](w, c);
    if (line !== null) w.lines.push(line);
  }
  return w.lines;
}

const EXTRA_WORDS = ['P', 'C1', 'T1', 'r0', 'r1', 'h0', 'h1', '0', '3', '99', '&', 'expect', 'fault', 'ro', 'as', '=', '[', ']'];

/** The steps with the program's mutations applied. */
export function mutate(lines: string[], ms: readonly Mutation[]): string[] {
  const out = lines.slice();
  const vocabulary = [...new Set([...out.flatMap((l) => l.split(' ')), ...EXTRA_WORDS])];
  for (const m of ms) {
    if (out.length === 0) break;
    const i = m.i % out.length;
    const j = m.j % out.length;
    if (m.kind === 0) out.splice(j + 1, 0, out[i]!);
    else if (m.kind === 1 && out.length > 1) out.splice(i, 1);
    else if (m.kind === 2) [out[i], out[j]] = [out[j]!, out[i]!];
    else if (m.kind === 3) {
      const words = out[i]!.split(' ');
      words[m.j % words.length] = vocabulary[m.k % vocabulary.length]!;
      out[i] = words.join(' ');
    }
  }
  return out;
}

/** The whole scenario file of a program (`mutated`: with its mutations). */
export function programText(prog: Program, mutated = true): string {
  const config: string[] = [];
  if (prog.frames !== null) config.push(`  frames: ${prog.frames}`);
  if (prog.pinBias !== null) config.push(`  pin_bias: ${prog.pinBias}`);
  return `name: fuzz\n${config.length ? `config:\n${config.join('\n')}\n` : ''}${outcomesText(prog.outcomes)}steps: |\n${(mutated ? mutate(programSteps(prog), prog.mutations) : programSteps(prog)).map((l) => `  ${l}`).join('\n')}\n`;
}
