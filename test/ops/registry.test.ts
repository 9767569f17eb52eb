// The operation registry (src/ops): every kind of step is declared once with every facet, and
// the places that read the declarations agree with each other: what the explorer decodes parses
// back to the same step, what the fuzz writer writes parses to the kind it was asked for, every
// parsed kind reaches its replay and its exported C call, every random draw of the oracle's
// generator writes lines the parser takes, and the parser's word lists are the declarations'
// words.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Runner, runScenario } from '../../src/engine/run.js';
import { renderRun } from '../../src/cli/report.js';
import { explainEvent } from '../../src/web/explain.js';
import { builtinProfile } from '../../src/profiles/builtin.js';
import { DECLS, OPS, RANDOM_DRAWS, RESERVED_ORDERS, declOf, keyNoteOf } from '../../src/ops/index.js';
import { EXPLORE_OPS, OP_NAMES, RESERVED_CODES, decodeOp, enabledOps } from '../../src/ops/explore.js';
import type { CWriter, Replayer } from '../../src/ops/types.js';
import {
  ASYNC_OPS, DEVICE_OPS, PROCESS_OPS, STEP_OPS, SYSTEM_OPS, THREAD_OPS, parseScenario, type Scenario, type Step, type StepOp,
} from '../../src/scenario/index.js';
import { fillFromModel } from '../../src/oracle/random/expect.js';
import { generateLines, OPEN_GAPS } from '../../src/oracle/random/generate.js';
import { rngFrom, scenarioSeed } from '../../src/oracle/random/rng.js';
import { programArb, programSteps } from '../fuzz/generate.js';

/** The step without where it was written (positions, text): what it means. */
function meaning(s: Step): unknown {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'pos' && k !== 'text').map(([k, x]) => [k, strip(x)]));
    }
    return v;
  };
  return strip(s);
}

function parse(lines: readonly string[]): Scenario {
  const r = parseScenario(`name: t\nsteps: |\n${lines.map((l) => `  ${l}`).join('\n')}\n`, 't.yaml');
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => `${e.line}:${e.col}: ${e.message}`).join('\n') + '\n' + lines.join('\n'));
  return r.scenario;
}

test('every kind of step has one declaration, with every facet', () => {
  assert.deepEqual(Object.keys(OPS).sort(), [...STEP_OPS].sort());
  for (const op of STEP_OPS) {
    const d = declOf(op);
    assert.equal(d.op, op);
    for (const facet of ['run', 'replay', 'exportC', 'fuzz'] as const) assert.equal(typeof d[facet], 'function', `${op}: ${facet}`);
    if ('sameAs' in d.syntax) {
      const other = declOf(d.syntax.sameAs);
      assert.ok('subject' in other.syntax, `${op}: parsed by ${d.syntax.sameAs}, which has a syntax of its own`);
    } else {
      assert.equal(typeof d.syntax.parse, 'function', `${op}: syntax.parse`);
      assert.ok(d.syntax.words.length >= 1 && d.syntax.words.length <= 2, `${op}: one or two words`);
    }
  }
});

test("the parser's word lists are the declarations' words", () => {
  const words = (subject: string, v11?: boolean): string[] => [...new Set(DECLS.flatMap((d) =>
    'subject' in d.syntax && d.syntax.subject === subject && (v11 === undefined || !!(d.syntax as { v11?: boolean }).v11 === v11) ? [d.syntax.words[0]] : []))];
  assert.deepEqual([...PROCESS_OPS], words('process', false));
  assert.deepEqual([...THREAD_OPS], words('process', true));
  assert.deepEqual([...SYSTEM_OPS], words('system'));
  assert.deepEqual([...DEVICE_OPS], DECLS.flatMap((d) => ('subject' in d.syntax && d.syntax.words[0] === 'device' ? [d.syntax.words[1]!] : [])));
  // `&` is taken exactly by the operations that declare how their kernel path starts.
  assert.deepEqual([...ASYNC_OPS].sort(), DECLS.filter((d) => d.start).map((d) => ('subject' in d.syntax ? d.syntax.words[0] : d.op)).sort());
});

/** Each number up to the highest is taken once, or reserved (for an operation of another branch). */
function noGap(taken: number[], reserved: readonly number[]): void {
  const top = Math.max(...taken, ...reserved);
  assert.deepEqual([...taken, ...reserved.filter((c) => !taken.includes(c))].sort((a, b) => a - b), Array.from({ length: top + 1 }, (_, i) => i));
}

test('explorer codes and random draw orders are 0..n-1 but the reserved ones, and names unique', () => {
  const codes = EXPLORE_OPS.map((e) => e.code);
  assert.ok(Math.max(...codes, ...RESERVED_CODES) < 256, 'a code fits in the packed operation');
  noGap(codes, RESERVED_CODES);
  assert.equal(new Set(OP_NAMES).size, OP_NAMES.length);
  noGap(RANDOM_DRAWS.map((d) => d.order), RESERVED_ORDERS);
  assert.equal(new Set(RANDOM_DRAWS.map((d) => d.name)).size, RANDOM_DRAWS.length);
});

test('every explorer operation decodes to a step whose text parses back to the same step', () => {
  // A state where every explorer operation applies: a pin, a pipe, a device-exclusive grant, a
  // second thread with a write in progress (so `step` applies), a region registered with
  // userfaultfd in P (uffd protect/unprotect) and not in its child Q (uffd register: no fork event).
  const setup = [
    'P mmap buf 2', 'P mmap zz 1', 'P write buf = 1', 'P uffd register buf wp', 'P fork Q', 'P pin buf[0] as h1', 'P vmsplice buf[1] as h2',
    'device exclusive P zz as h3', 'P thread T', 'T write zz = 2 &',
  ];
  const sc = parse(setup);
  const profile = builtinProfile('v6')!;
  const r = new Runner(sc, profile, { trace: false });
  sc.steps.forEach((s, i) => r.step(s, i));
  const seen = new Set<string>();
  for (const e of EXPLORE_OPS) {
    const ops = enabledOps(r, { procs: 3, threads: 3, handles: 8, ops: [e.name] });
    assert.ok(ops.length > 0, `${e.name} applies in the set-up state`);
    for (const op of ops) {
      const step = decodeOp(r.clone(), op);
      const back = parse([...setup, step.text]);
      const parsed = back.steps[back.steps.length - 1]!;
      assert.deepEqual(meaning(parsed), meaning(step), `${e.name}: '${step.text}'`);
      seen.add(e.name);
    }
  }
  assert.deepEqual([...seen].sort(), [...OP_NAMES].sort());
});

test('the fuzz writer of each kind writes a line that parses to that kind, which reaches its replay and its C call', () => {
  // Programs of the campaign's generator (a fixed seed): the last line each choice writes is of the chosen kind.
  const found = new Map<StepOp, Step>();
  for (const prog of fc.sample(programArb(24), { numRuns: 400, seed: 14 })) {
    const lines = programSteps({ ...prog, mutations: [] });
    const sc = parse(lines);
    for (const s of sc.steps) if (!found.has(s.op)) found.set(s.op, s);
  }
  assert.deepEqual([...found.keys()].sort(), [...STEP_OPS].sort(), 'every kind was written and parsed');
  for (const [op, step] of found) {
    // The replay calls one method of the replayer (none for steps the kernel has nothing to do for).
    const called: string[] = [];
    const replayer = new Proxy({}, { get: (_t, name) => () => { called.push(String(name)); return name === 'noUring' ? null : name === 'isLive' ? true : undefined; } }) as Replayer;
    declOf(op).replay(replayer, step);
    if (op !== 'check' && op !== 'stats') assert.ok(called.length > 0, `${op}: replay calls the replayer`);
    const cw = new Proxy({}, {
      get: (_t, name) => (...args: unknown[]) => (name === 'notReplayed' ? { code: `rp_not_replayed(${String(args[0])})`, skipped: 'x' } : name === 'system' ? { reason: 'r', did: 'd', mask: '0' } : `<${String(name)}>`),
    }) as CWriter;
    const c = declOf(op).exportC(cw, step);
    assert.ok(c.code.length > 0, `${op}: a C call`);
  }
});

test("every random draw of the oracle's generator writes lines the parser takes and the model runs", () => {
  const profile = builtinProfile('v6')!;
  const drawn = new Map<string, number>();
  const saved = RANDOM_DRAWS.map((d) => d.draw);
  RANDOM_DRAWS.forEach((d, k) => {
    d.draw = (g, p) => {
      const ok = saved[k]!.call(d, g, p);
      if (ok) drawn.set(d.name, (drawn.get(d.name) ?? 0) + 1);
      return ok;
    };
  });
  try {
    for (let i = 0; i < 120; i++) {
      // As `oracle --random` draws them: the model's open gaps avoided (OPEN_GAPS).
      const lines = generateLines(rngFrom(scenarioSeed(14, i)), RANDOM_DRAWS.map((d) => d.name), OPEN_GAPS);
      const f = fillFromModel(lines, profile, `r-${i}`, 'generated', `r-${i}.scn.yaml`);
      assert.ok(typeof f !== 'string', `scenario ${i}: ${String(f)}\n${lines.map((l) => l.text).join('\n')}`);
    }
  } finally {
    RANDOM_DRAWS.forEach((d, k) => (d.draw = saved[k]!));
  }
  assert.deepEqual(RANDOM_DRAWS.map((d) => d.name).filter((n) => !drawn.has(n)), [], 'every draw was drawn');
});

test("a declared key note (mremap's) is shown under its step by default and explained; other notes are not", () => {
  assert.ok(DECLS.some((d) => d.keyNote), 'some operation declares a key note');
  const sc = parse(['P mmap buf 2', 'P write buf = 1', 'swapout P buf[0]', 'P read buf[0]', 'P mremap buf[1] as moved']);
  const profile = builtinProfile('v6')!;
  const r = runScenario(sc, profile);
  const notes = r.steps.flatMap((st) => st.events.filter((e) => e.type === 'note').map((e) => ({ st, e })));
  const key = notes.filter(({ e }) => keyNoteOf(e.why) !== undefined);
  assert.equal(key.length, 1, 'one key note: the move');
  assert.equal(key[0]!.st.text, 'P mremap buf[1] as moved');
  assert.ok(notes.some(({ st, e }) => st.text === 'P read buf[0]' && keyNoteOf(e.why) === undefined), 'the swap-in note is not a key note');
  const report = renderRun(r, profile, '', { trace: false, stats: false });
  assert.match(report, /P mremap \(move_page_tables\): 1 page\(s\) moved to a new range; 1 entry moved, no page copied/);
  assert.doesNotMatch(report, /do_swap_page/, 'the swap-in note shows only with --trace');
  const e = key[0]!.e;
  const sentence = explainEvent({ type: e.type, proc: e.proc, page: 'moved[0]', pfn: e.pfn, pfn2: e.pfn2, why: e.why, child: null, snap: null });
  assert.match(sentence, /^P mremap: move_vma copied the mapping .*: 1 page\(s\) moved to a new range; 1 entry moved, no page copied\. Each frame keeps/);
});
