// Random scenarios, written as text and parsed with parseScenario, run through runScenario on every
// built-in profile. Whatever the kernel era, the model must never throw, and never break its own
// accounting (refcount/mapcount/RSS/page tables), use a freed frame, leak a frame at the end, or
// trip a kernel assertion: those are bugs of the model, not behaviours of a kernel. Without GUP,
// every era must moreover give each process its own memory (status ok).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { runScenario } from '../../src/engine/run.js';
import type { RunResult } from '../../src/engine/result.js';
import { BUILTIN_PROFILES } from '../../src/profiles/builtin.js';
import { parseScenario, type Scenario } from '../../src/scenario/index.js';
import { assertProperty } from './seed.js';

const RANGE_OPS = ['munmap', 'dontneed', 'dontfork', 'dofork', 'wipeonfork', 'keeponfork', 'ro', 'rw', 'none', 'mremap'] as const;
const MODEL_BUGS = new Set(['accounting', 'use-after-free', 'frame-leak', 'kernel-bug']);

type Op =
  | { t: 'mmap'; p: number; n: number; prot: 'rw' | 'ro' | 'none'; shared: boolean; populate: boolean }
  | { t: 'write'; p: number; r: number; i: number; len: number }
  | { t: 'read'; p: number; r: number; i: number }
  | { t: 'fork'; p: number }
  | { t: 'exit'; p: number }
  | { t: (typeof RANGE_OPS)[number]; p: number; r: number; i: number; len: number }
  | { t: 'softdirty'; p: number }
  | { t: 'pin'; p: number; r: number; i: number; len: number; ro: boolean; short: boolean; fast: boolean }
  | { t: 'gup'; p: number; r: number; i: number; len: number; ro: boolean; fast: boolean }
  | { t: 'vmsplice'; p: number; r: number; i: number; len: number }
  | { t: 'hread'; p: number; h: number; k: number }
  | { t: 'dread'; h: number; k: number }
  | { t: 'dwrite'; h: number; k: number }
  | { t: 'release'; p: number; h: number }
  | { t: 'check' };

const ix = fc.nat({ max: 63 });
const sel = { p: ix, r: ix, i: ix, len: ix };

function opArb(withGup: boolean): fc.Arbitrary<Op> {
  const arbs: fc.WeightedArbitrary<Op>[] = [
    { weight: 8, arbitrary: fc.record({ t: fc.constant('write' as const), ...sel }) },
    { weight: 4, arbitrary: fc.record({ t: fc.constant('read' as const), p: ix, r: ix, i: ix }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('fork' as const), p: ix }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('exit' as const), p: ix }) },
    {
      weight: 1,
      arbitrary: fc.record({
        t: fc.constant('mmap' as const), p: ix, n: fc.integer({ min: 1, max: 4 }),
        prot: fc.constantFrom('rw' as const, 'rw' as const, 'ro' as const, 'none' as const), shared: fc.boolean(), populate: fc.boolean(),
      }),
    },
    { weight: 4, arbitrary: fc.record({ t: fc.constantFrom(...RANGE_OPS), ...sel }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('softdirty' as const), p: ix }) },
    { weight: 1, arbitrary: fc.constant({ t: 'check' as const }) },
  ];
  if (withGup) {
    arbs.push(
      { weight: 2, arbitrary: fc.record({ t: fc.constant('pin' as const), ...sel, ro: fc.boolean(), short: fc.boolean(), fast: fc.boolean() }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('gup' as const), ...sel, ro: fc.boolean(), fast: fc.boolean() }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('vmsplice' as const), ...sel }) },
      { weight: 2, arbitrary: fc.record({ t: fc.constant('hread' as const), p: ix, h: ix, k: ix }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('dread' as const), h: ix, k: ix }) },
      { weight: 2, arbitrary: fc.record({ t: fc.constant('dwrite' as const), h: ix, k: ix }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('release' as const), p: ix, h: ix }) },
    );
  }
  return fc.oneof(...arbs);
}

interface Program {
  pages: number;
  frames: number | null;
  pinBias: number | null;
  ops: Op[];
}

function programArb(withGup: boolean, limited: boolean): fc.Arbitrary<Program> {
  return fc.record({
    pages: fc.integer({ min: 1, max: 4 }),
    frames: limited ? fc.integer({ min: 1, max: 8 }) : fc.constant(null),
    pinBias: withGup ? fc.constantFrom(null, null, 2, 3) : fc.constant(null),
    ops: fc.array(opArb(withGup), { minLength: 1, maxLength: 30 }),
  });
}

interface GProc {
  name: string;
  alive: boolean;
  regions: { name: string; n: number }[];
}

interface GHandle {
  name: string;
  kind: 'pin' | 'gup' | 'pipe';
  n: number;
}

/** The steps text of a program: indices resolved against the names that exist at each step. */
function programText(prog: Program): string {
  const lines: string[] = [];
  const procs: GProc[] = [{ name: 'P', alive: true, regions: [{ name: 'r0', n: prog.pages }] }];
  const handles: GHandle[] = [];
  let regions = 1;
  let children = 0;
  let nHandles = 0;
  lines.push(`P mmap r0 ${prog.pages}`);
  const range = (n: number, i: number, len: number): [number, number] => {
    const lo = i % n;
    return [lo, lo + (len % (n - lo))];
  };
  const selText = (r: { name: string; n: number }, lo: number, hi: number): string =>
    lo === hi ? `${r.name}[${lo}]` : `${r.name}[${lo}..${hi}]`;
  prog.ops.forEach((op, step) => {
    const live = procs.filter((p) => p.alive);
    if (op.t === 'check') {
      lines.push('check');
      return;
    }
    if (op.t === 'dread' || op.t === 'dwrite') {
      const devs = handles.filter((h) => h.kind === 'pin'); // device I/O goes through pins
      if (devs.length === 0) return;
      const h = devs[op.h % devs.length]!;
      lines.push(op.t === 'dread' ? `device read ${h.name}[${op.k % h.n}]` : `device write ${h.name}[${op.k % h.n}] = d${step}`);
      return;
    }
    const p = live[op.p % live.length]!;
    switch (op.t) {
      case 'fork':
        if (live.length < 4) {
          const c: GProc = { name: `C${++children}`, alive: true, regions: p.regions.slice() };
          procs.push(c);
          lines.push(`${p.name} fork ${c.name}`);
        }
        return;
      case 'exit':
        if (live.length > 1) {
          p.alive = false;
          lines.push(`${p.name} exit`);
        }
        return;
      case 'mmap':
        if (p.regions.length < 3) {
          const r = { name: `r${regions++}`, n: op.n };
          p.regions.push(r);
          lines.push(`${p.name} mmap ${r.name} ${op.n} ${op.prot} ${op.shared ? 'shared' : 'private'}${op.populate ? ' populate' : ''}`);
        }
        return;
      case 'softdirty':
        lines.push(`${p.name} clear-softdirty`);
        return;
      case 'hread': {
        if (handles.length === 0) return;
        const h = handles[op.h % handles.length]!;
        lines.push(`${p.name} read ${h.name}[${op.k % h.n}]`);
        return;
      }
      case 'release': {
        if (handles.length === 0) return;
        const [h] = handles.splice(op.h % handles.length, 1);
        lines.push(`${p.name} ${h!.kind === 'pin' ? 'unpin' : 'put'} ${h!.name}`);
        return;
      }
      default:
        break;
    }
    const r = p.regions[op.r % p.regions.length]!;
    if (op.t === 'read') {
      lines.push(`${p.name} read ${r.name}[${op.i % r.n}]`);
      return;
    }
    const [lo, hi] = range(r.n, op.i, op.len);
    const s = selText(r, lo, hi);
    switch (op.t) {
      case 'write':
        lines.push(`${p.name} write ${s} = v${step}`);
        return;
      case 'munmap':
        lines.push(`${p.name} munmap ${s}`);
        return;
      case 'mremap':
        if (p.regions.length < 5) {
          const moved = { name: `r${regions++}`, n: hi - lo + 1 };
          p.regions.push(moved);
          lines.push(`${p.name} mremap ${s} as ${moved.name}`);
        }
        return;
      case 'ro':
      case 'rw':
      case 'none':
        lines.push(`${p.name} mprotect ${s} ${op.t}`);
        return;
      case 'pin':
      case 'gup':
      case 'vmsplice': {
        if (handles.length >= 4) return;
        const h: GHandle = { name: `h${nHandles++}`, kind: op.t === 'vmsplice' ? 'pipe' : op.t, n: hi - lo + 1 };
        handles.push(h);
        if (op.t === 'pin') lines.push(`${p.name} pin ${s} as ${h.name} ${op.ro ? 'ro' : 'rw'} ${op.short ? 'short' : 'longterm'}${op.fast ? ' fast' : ''}`);
        else if (op.t === 'gup') lines.push(`${p.name} gup ${s} as ${h.name} ${op.ro ? 'ro' : 'rw'}${op.fast ? ' fast' : ''}`);
        else lines.push(`${p.name} vmsplice ${s} as ${h.name}`);
        return;
      }
      default:
        lines.push(`${p.name} madvise ${s} ${op.t}`);
    }
  });
  return lines.join('\n');
}

function scenarioText(prog: Program): string {
  const config: string[] = [];
  if (prog.frames !== null) config.push(`  frames: ${prog.frames}`);
  if (prog.pinBias !== null) config.push(`  pin_bias: ${prog.pinBias}`);
  const steps = programText(prog).split('\n').map((l) => `  ${l}`).join('\n');
  return `name: fuzz\n${config.length ? `config:\n${config.join('\n')}\n` : ''}steps: |\n${steps}\n`;
}

function parse(text: string): Scenario {
  const r = parseScenario(text, 'fuzz.scn.yaml');
  if (!r.ok) assert.fail(`the generated scenario does not parse:\n${r.errors.map((e) => e.format()).join('\n')}\n${text}`);
  return r.scenario;
}

function describe(r: RunResult): string {
  return r.violations.map((v) => `${r.profile} L${v.line} ${v.kind}: ${v.message}`).join('\n');
}

/** Runs the program on every profile; `strict`: no violation at all is allowed. */
function runEverywhere(prog: Program, strict: boolean): void {
  const text = scenarioText(prog);
  const sc = parse(text);
  for (const profile of BUILTIN_PROFILES) {
    let r: RunResult;
    try {
      r = runScenario(sc, profile, { trace: false });
    } catch (e) {
      throw new Error(`runScenario threw on ${profile.name}: ${(e as Error).stack}\n--- scenario ---\n${text}`, { cause: e });
    }
    assert.notEqual(r.status, 'n/a', `n/a on ${profile.name}: ${r.na?.reason}\n${text}`);
    const bad = r.violations.filter((v) => strict || MODEL_BUGS.has(v.kind));
    if (bad.length > 0) assert.fail(`${describe({ ...r, violations: bad })}\n--- scenario ---\n${text}`);
  }
}

test('random scenarios without GUP: every profile gives each process its own memory (status ok)', () => {
  assertProperty('no-gup scenarios are ok everywhere', programArb(false, false), (prog) => runEverywhere(prog, true), 300);
});

test('random scenarios with pins, references and pipes: no accounting, use-after-free, frame-leak or kernel-bug on any profile', () => {
  assertProperty('gup scenarios keep the model sound', programArb(true, false), (prog) => runEverywhere(prog, false), 300);
});

test('random scenarios under a small frames limit: OOM paths keep the model sound on every profile', () => {
  assertProperty('OOM scenarios keep the model sound', programArb(true, true), (prog) => runEverywhere(prog, false), 300);
});

test('the generator writes scenarios the parser accepts, with every operation family present', () => {
  const samples = fc.sample(programArb(true, true), { seed: 1, numRuns: 200 });
  const seen = new Set<string>();
  for (const prog of samples) {
    const text = scenarioText(prog);
    parse(text);
    for (const line of programText(prog).split('\n')) {
      const w = line.split(' ');
      seen.add(w[0] === 'device' || w[0] === 'check' ? `${w[0]} ${w[1] ?? ''}`.trim() : w[1]!);
    }
  }
  for (const op of ['mmap', 'write', 'read', 'fork', 'exit', 'munmap', 'mremap', 'mprotect', 'madvise', 'clear-softdirty', 'pin', 'gup', 'vmsplice', 'unpin', 'put', 'device read', 'device write', 'check']) {
    assert.ok(seen.has(op), `no '${op}' step generated`);
  }
});
