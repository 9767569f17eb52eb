// Version 1.1: threads (`P thread T`), asynchronous kernel paths (a trailing `&`) and their
// `step` / `finish`: the AST they parse to, how names resolve, and every new error.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SEED } from '../engine/seed.js';
import { readFileSync } from 'node:fs';
import { NameEnv, blockOrigin, parseSteps, type Step } from '../../src/scenario/index.js';
import { P4, lastStep, lines, oneError, scenarioOk, stepsErrors, stepsOk } from './helpers.js';

const at = (line: number, col: number) => ({ line, col });
const T = 'P thread T';

// ---- the AST

test('P thread T parses to a thread step; threads create threads', () => {
  const steps = stepsOk(lines(P4, T, 'T thread U2', 'U2 write buf[0] = 1'));
  assert.deepEqual(steps[1], { op: 'thread', pos: at(2, 1), text: 'P thread T', proc: 'P', thread: 'T' });
  assert.deepEqual(steps[2], { op: 'thread', pos: at(3, 1), text: 'T thread U2', proc: 'T', thread: 'U2' });
  assert.deepEqual(steps[3], {
    op: 'write',
    pos: at(4, 1),
    text: 'U2 write buf[0] = 1',
    proc: 'U2',
    sel: { region: 'buf', all: false, lo: 0, hi: 0, pos: at(4, 10) },
    value: '1',
  });
});

test('a trailing & sets async on write, fork, pin, gup, vmsplice; step and finish parse', () => {
  const steps = stepsOk(
    lines(
      P4,
      T,
      'T write buf[0] = 5 &',
      'T step',
      'T finish',
      'P fork Q &',
      'P finish',
      'T pin buf[0] as h rw longterm fast &',
      'T finish',
      'T gup buf[1..2] as g ro fast &',
      'T finish',
      'T vmsplice buf as pipe &',
      'T step',
      'T step',
      'T finish',
      'P fork R cowpt&',
    ),
  );
  assert.deepEqual(steps[2], {
    op: 'write',
    pos: at(3, 1),
    text: 'T write buf[0] = 5 &',
    proc: 'T',
    sel: { region: 'buf', all: false, lo: 0, hi: 0, pos: at(3, 9) },
    value: '5',
    async: true,
  });
  assert.deepEqual(steps[3], { op: 'step', pos: at(4, 1), text: 'T step', proc: 'T' });
  assert.deepEqual(steps[4], { op: 'finish', pos: at(5, 1), text: 'T finish', proc: 'T' });
  assert.deepEqual(steps[5], { op: 'fork', pos: at(6, 1), text: 'P fork Q &', proc: 'P', child: 'Q', cowpt: false, async: true });
  assert.deepEqual(steps[7], {
    op: 'pin',
    pos: at(8, 1),
    text: 'T pin buf[0] as h rw longterm fast &',
    proc: 'T',
    sel: { region: 'buf', all: false, lo: 0, hi: 0, pos: at(8, 7) },
    handle: 'h',
    write: true,
    longterm: true,
    fast: true,
    async: true,
  });
  assert.deepEqual(steps[9], {
    op: 'gup',
    pos: at(10, 1),
    text: 'T gup buf[1..2] as g ro fast &',
    proc: 'T',
    sel: { region: 'buf', all: false, lo: 1, hi: 2, pos: at(10, 7) },
    handle: 'g',
    write: false,
    fast: true,
    async: true,
  });
  assert.deepEqual(steps[11], {
    op: 'vmsplice',
    pos: at(12, 1),
    text: 'T vmsplice buf as pipe &',
    proc: 'T',
    sel: { region: 'buf', all: true, lo: 0, hi: 3, pos: at(12, 12) },
    handle: 'pipe',
    async: true,
  });
  assert.deepEqual(steps[15], { op: 'fork', pos: at(16, 1), text: 'P fork R cowpt&', proc: 'P', child: 'R', cowpt: true, async: true });
  assert.deepEqual(
    steps.map((s) => s.op),
    ['mmap', 'thread', 'write', 'step', 'finish', 'fork', 'finish', 'pin', 'finish', 'gup', 'finish', 'vmsplice', 'step', 'step', 'finish', 'fork'],
  );
});

test('without &, write, fork, pin, gup, vmsplice have no async key (v1 ASTs unchanged)', () => {
  const steps = stepsOk(lines(P4, 'P write buf = 1', 'P fork Q', 'P pin buf as h', 'P gup buf as g', 'P vmsplice buf as v'));
  for (const s of steps) assert.ok(!('async' in s), `${s.text} has an async key`);
});

test('& with a comment after it, and with no blank before it', () => {
  const s = lastStep(lines(P4, 'P write buf[0]=5&   # async'));
  assert.ok(s.op === 'write' && s.async === true && s.value === '5' && s.text === 'P write buf[0]=5&');
});

// ---- threads share the region table

test('threads share regions: a region mapped after `thread`, by either thread, is seen by both', () => {
  const steps = stepsOk(
    lines(P4, T, 'P mmap late 2', 'T write late[1] = 5', 'T mmap mine 3', 'P read mine[2] expect 0', 'T thread U', 'P mmap third 1', 'U read third[0]'),
  );
  const w = steps[3]!;
  assert.ok(w.op === 'write' && w.proc === 'T' && w.sel.region === 'late' && w.sel.hi === 1);
  const r = steps[5]!;
  assert.ok(r.op === 'read' && r.proc === 'P' && r.sel.region === 'mine');
  assert.equal(steps[8]!.op, 'read');
});

test('one region table (the same Map) for the threads of a process; fork copies it', () => {
  const env = new NameEnv();
  const r = parseSteps(lines(P4, T, 'T fork Q', 'T mmap late 1', 'T thread U'), 'f', blockOrigin(1, 0), env);
  assert.deepEqual(r.errors, []);
  const p = env.procs.get('P')!;
  const t = env.procs.get('T')!;
  const u = env.procs.get('U')!;
  const q = env.procs.get('Q')!;
  assert.equal(t.regions, p.regions);
  assert.equal(u.regions, p.regions);
  assert.notEqual(q.regions, p.regions);
  assert.deepEqual([...q.regions.keys()], ['buf']);
  assert.deepEqual([...p.regions.keys()], ['buf', 'late']);
  assert.deepEqual([p.threadOf, t.threadOf, u.threadOf, q.threadOf], [null, 'P', 'T', null]);
});

test('a region rebound by one thread has its new size in the other', () => {
  oneError(lines('P mmap buf 1', T, 'P munmap buf', 'T mmap buf 8', 'P write buf[7] = 1', 'P write buf[8] = 1'), 6, 13, "page 8 out of range: 'buf' has 8 pages (0..7)");
  // The thread's mapping is the process's: while it stands, neither may bind the name again.
  oneError(lines('P mmap buf 1', T, 'T mmap buf 8'), 3, 8, "still has region 'buf' mapped");
});

test('a thread does every process operation, and reads through handles', () => {
  const steps = stepsOk(
    lines(
      P4,
      T,
      'T munmap buf[3]',
      'T mprotect buf[2] ro',
      'T madvise buf[0..1] dontfork',
      'T write buf[0] = 1',
      'T read buf[0] expect 1',
      'T pin buf[0] as h',
      'T gup buf[1] as g',
      'T vmsplice buf[0] as pipe',
      'T read pipe[0] expect 1',
      'P read h[0]',
      'T unpin h',
      'P put g',
      'T put pipe',
      'T clear-softdirty',
      'T fork Q',
      'Q read buf[0]',
      'expect T buf[0] same-frame Q buf[0]',
      'swapout T buf[1]',
      'device exclusive T buf[0] as x',
      'expect stat rss.T == 1',
      'T exit',
    ),
  );
  assert.deepEqual(
    steps.slice(2).map((s) => s.op),
    ['munmap', 'mprotect', 'madvise', 'write', 'read', 'pin', 'gup', 'vmsplice', 'read-handle', 'read-handle', 'unpin', 'put', 'put', 'clear-softdirty', 'fork', 'read', 'expect-frame', 'swapout', 'device-exclusive', 'expect-stat', 'exit'],
  );
  assert.ok(steps.slice(2).every((s) => !('proc' in s) || s.proc === 'T' || s.proc === 'P' || s.proc === 'Q'));
});

test('X exit ends thread X only: the other threads keep the address space', () => {
  const steps = stepsOk(lines(P4, T, 'P exit', 'T write buf[0] = 1', 'T mmap more 1', 'T read more[0]', 'T exit'));
  assert.deepEqual(steps[2], { op: 'exit', pos: at(3, 1), text: 'P exit', proc: 'P' });
  assert.equal(steps.length, 7);
});

// ---- asynchronous paths: what is allowed

test('a thread may start a new path after finish; other threads act while a path is pending', () => {
  stepsOk(
    lines(
      P4,
      T,
      'P fork Q &',
      'T write buf[0] = 2',
      'T read buf[0]',
      'P step',
      'T write buf[1] = 3 &',
      'expect P buf[0] mapped-shared',
      'swapout P buf[2]',
      'check',
      'T step',
      'P step',
      'P finish',
      'Q read buf[0]',
      'T finish',
      'T pin buf[0] as h &',
      'T finish',
      'T write buf[0] = 4 &',
    ),
  );
});

test('a pending path at the end of the steps is fine', () => {
  assert.deepEqual(stepsErrors(lines(P4, T, 'T fork Q &')), []);
  assert.deepEqual(stepsErrors(lines(P4, 'P pin buf as h &', 'P step')), []);
});

test('the child of an async fork exists after finish, with the regions of the process at the start', () => {
  const steps = stepsOk(lines(P4, T, 'P fork Q &', 'T mmap late 1', 'P finish', 'Q write buf[0] = 1', 'Q fork R', 'Q thread QT'));
  assert.equal(steps[5]!.op, 'write');
  oneError(lines(P4, T, 'P fork Q &', 'T mmap late 1', 'P finish', 'Q read late[0]'), 6, 8, "unknown region 'late' of process 'Q' (regions of Q: buf;");
});

test('the handle of an async pin, gup, vmsplice is usable after finish', () => {
  const steps = stepsOk(
    lines(P4, T, 'T pin buf[0..1] as h &', 'T finish', 'device write h[1] = 3', 'P unpin h', 'T gup buf as g &', 'T step', 'T finish', 'P read g[3]', 'T vmsplice buf as v &', 'T finish', 'P read v[0]', 'T put v'),
  );
  assert.equal(steps.length, 14);
});

test('a pending path carries over to the next parse with the same NameEnv', () => {
  const env = new NameEnv();
  assert.deepEqual(parseSteps(lines(P4, 'P fork Q &'), 'f', blockOrigin(1, 0), env).errors, []);
  const b = parseSteps(lines('Q exit', 'P finish', 'Q exit'), 'f', blockOrigin(3, 0), env);
  assert.deepEqual(
    b.errors.map((e) => e.format()),
    ['f:3:1: error: Q is being forked (line 2); it exists after `P finish`'],
  );
  assert.deepEqual(b.steps.map((s) => s.op), ['finish', 'exit']);
});

// ---- errors, with their line and column

test('thread: a new upper-case name, never one already used', () => {
  oneError(lines(P4, 'P fork Q', 'P thread Q'), 3, 10, "process 'Q' already exists (since line 2); thread needs a new name");
  oneError(lines(P4, 'P thread P'), 2, 10, "process 'P' already exists (since line 1); thread needs a new name");
  oneError(lines(P4, T, 'P thread T'), 3, 10, "thread 'T' already exists (since line 2); thread needs a new name");
  oneError(lines(P4, T, 'T exit', 'P thread T'), 4, 10, "thread 'T' already exists (since line 2)");
  oneError(lines(P4, T, 'P fork T'), 3, 8, "thread 'T' already exists (since line 2); fork needs a new process name");
  oneError(lines(P4, 'P thread t'), 2, 10, "expected the new thread's name after 'thread' (an upper-case letter then letters or digits, like P or Q2), got 't'");
  oneError(lines(P4, 'P thread'), 2, 9, "expected the new thread's name after 'thread'");
  oneError(lines(P4, 'P thread T U'), 2, 12, "expected the end of the step, got 'U'");
  oneError(lines(P4, 'Z thread T'), 2, 1, "unknown process 'Z'");
  oneError(lines(P4, 'P thraed T'), 2, 3, "unknown operation 'thraed': did you mean 'thread'?");
  oneError(lines(P4, 'thread T'), 2, 1, "missing process before 'thread'");
  oneError(lines(P4, 'p thread T'), 2, 1, "invalid process name 'p'");
});

test('a thread that exited cannot act', () => {
  oneError(lines(P4, T, 'T exit', 'T write buf[0] = 1'), 4, 1, "thread 'T' has exited (at line 3); it can do nothing more");
  oneError(lines(P4, T, 'T exit', 'T thread U'), 4, 1, "thread 'T' has exited (at line 3)");
  oneError(lines(P4, T, 'P exit', 'P read buf[0]'), 4, 1, "process 'P' has exited (at line 3)");
});

test('step and finish need a pending path', () => {
  oneError(lines(P4, 'P step'), 2, 3, "`P step` needs a pending kernel path, and P has none; a path is started by a trailing '&' on write, fork, pin, gup or vmsplice");
  oneError(lines(P4, T, 'T finish'), 3, 3, '`T finish` needs a pending kernel path, and T has none;');
  oneError(lines(P4, T, 'T write buf = 1 &', 'P finish'), 4, 3, '`P finish` needs a pending kernel path');
  oneError(lines(P4, 'P write buf = 1 &', 'P finish', 'P step'), 4, 3, '`P step` needs a pending kernel path, and P has none (its last one, started at line 2, finished at line 3)');
  oneError(lines(P4, 'P write buf = 1 &', 'P step now'), 3, 8, "expected the end of the step, got 'now'");
  oneError(lines(P4, 'P write buf = 1 &', 'P finish now'), 3, 10, "expected the end of the step, got 'now'");
  oneError(lines(P4, 'Z step'), 2, 1, "unknown process 'Z'");
  oneError(lines(P4, 'P stpe'), 2, 3, "unknown operation 'stpe': did you mean 'step'?");
});

test('a thread inside a path may only step or finish it', () => {
  oneError(lines(P4, T, 'P fork Q &', 'P write buf[0] = 1'), 4, 1, 'P is inside `fork Q &` started at line 3: use `P step` or `P finish`');
  oneError(lines(P4, T, 'T pin buf[0] as h rw longterm fast &', 'T step', 'T read buf[0]'), 5, 1, 'T is inside `pin buf[0] as h rw longterm fast &` started at line 3: use `T step` or `T finish`');
  oneError(lines(P4, T, 'T write buf[0] = 5 &', 'T exit'), 4, 1, 'T is inside `write buf[0] = 5 &` started at line 3');
  oneError(lines(P4, T, 'T write buf[0] = 5 &', 'T thread U'), 4, 1, 'T is inside `write buf[0] = 5 &` started at line 3');
  oneError(lines(P4, T, 'T write buf[0] = 5 &', 'T mmap x 1'), 4, 1, 'T is inside `write buf[0] = 5 &` started at line 3');
  oneError(lines(P4, 'P vmsplice buf as v &', 'P unpin v'), 3, 1, 'P is inside `vmsplice buf as v &` started at line 2');
});

test('at most one pending path per thread: starting another names the line of the pending one', () => {
  oneError(lines(P4, T, 'T gup buf as g &', 'T step', 'T write buf[0] = 1 &'), 5, 1, 'T is inside `gup buf as g &` started at line 3: use `T step` or `T finish`');
  oneError(lines(P4, 'P fork Q &', 'P fork R &'), 3, 1, 'P is inside `fork Q &` started at line 2');
  // Another thread of the same process may start its own.
  assert.deepEqual(stepsErrors(lines(P4, T, 'P fork Q &', 'T fork R &', 'T finish', 'P finish')), []);
});

test('the child of an async fork cannot be named before the fork is finished', () => {
  oneError(lines(P4, T, 'T fork Q &', 'Q write buf[0] = 1'), 4, 1, 'Q is being forked (line 3); it exists after `T finish`');
  oneError(lines(P4, 'P fork Q &', 'P step', 'expect P buf[0] same-frame Q buf[0]'), 4, 28, 'Q is being forked (line 2); it exists after `P finish`');
  oneError(lines(P4, 'P fork Q &', 'expect stat rss.Q == 0'), 3, 17, 'Q is being forked (line 2)');
  oneError(lines(P4, 'P fork Q &', 'swapout Q buf'), 3, 9, 'Q is being forked (line 2)');
  oneError(lines(P4, 'P fork Q &', 'device exclusive Q buf as x'), 3, 18, 'Q is being forked (line 2)');
  oneError(lines(P4, 'P fork Q &', 'Q mmap x 1'), 3, 1, 'Q is being forked (line 2)');
  oneError(lines(P4, T, 'P fork Q &', 'T fork Q'), 4, 8, "process 'Q' already exists (since line 3); fork needs a new process name");
  oneError(lines(P4, T, 'P fork Q &', 'T thread Q'), 4, 10, "process 'Q' already exists (since line 3); thread needs a new name");
});

test('the handle of an async pin, gup, vmsplice cannot be used before finish', () => {
  oneError(lines(P4, T, 'T pin buf[0] as h &', 'device read h[0]'), 4, 13, 'handle \'h\' is being taken by `T pin buf[0] as h &` (line 3); it may be used after `T finish`');
  oneError(lines(P4, T, 'T pin buf[0] as h &', 'device write h[0] = 1'), 4, 14, "handle 'h' is being taken by");
  oneError(lines(P4, T, 'T pin buf[0] as h &', 'P read h[0]'), 4, 8, "handle 'h' is being taken by");
  oneError(lines(P4, T, 'T pin buf[0] as h &', 'T step', 'P unpin h'), 5, 9, "handle 'h' is being taken by");
  oneError(lines(P4, T, 'T gup buf as g fast &', 'P put g'), 4, 7, 'handle \'g\' is being taken by `T gup buf as g fast &` (line 3)');
  oneError(lines(P4, T, 'T vmsplice buf as v &', 'P read v[0] expect 0'), 4, 8, 'handle \'v\' is being taken by `T vmsplice buf as v &` (line 3)');
  // Bound from the start line: the name is taken.
  oneError(lines(P4, T, 'T pin buf[0] as h &', 'P gup buf as h'), 4, 14, "handle 'h' is already bound (a pin taken at line 3)");
});

test('& is last, and only on write, fork, pin, gup, vmsplice', () => {
  oneError(lines(P4, 'P fork Q & cowpt'), 2, 10, "'&' must be the last word of the step, after every option (like 'P fork Q &')");
  oneError(lines(P4, 'P write buf[0] & = 1'), 2, 16, "'&' must be the last word of the step");
  oneError(lines(P4, 'P write buf[0] = 1 & &'), 2, 20, "'&' must be the last word of the step");
  const only = "'&' (run the step as an asynchronous kernel path) is only for: write, fork, pin, gup, vmsplice";
  oneError(lines(P4, 'P read buf[0] &'), 2, 15, `${only}; 'read' is not one`);
  oneError(lines(P4, 'P mmap x 1 &'), 2, 12, `${only}; 'mmap' is not one`);
  oneError(lines(P4, 'P exit &'), 2, 8, `${only}; 'exit' is not one`);
  oneError(lines(P4, 'P thread T &'), 2, 12, `${only}; 'thread' is not one`);
  oneError(lines(P4, 'P pin buf as h &', 'P step &'), 3, 8, `${only}; 'step' is not one`);
  oneError(lines(P4, 'P pin buf as h', 'P unpin h &'), 3, 11, `${only}; 'unpin' is not one`);
  oneError(lines(P4, 'check &'), 2, 7, `${only} (operations of a process); 'check' is not one`);
  oneError(lines(P4, 'P pin buf as h', 'device write h[0] = 1 &'), 3, 23, `${only} (operations of a process); 'device' is not one`);
  oneError(lines(P4, 'swapout P buf &'), 2, 15, "'swapout' is not one");
  oneError(lines(P4, '&'), 2, 1, "expected a process name or an operation, got '&'");
  oneError(lines(P4, 'P &'), 2, 3, "expected an operation after process 'P'");
  oneError(lines(P4, 'P write buf[0] &'), 2, 16, "expected '=' after the page selector, got '&'");
  oneError(lines(P4, 'P fork &'), 2, 8, "expected the child's process name after 'fork' (an upper-case letter then letters or digits, like P or Q2), got '&'");
  oneError(lines(P4, 'P pin buf as h sideways &'), 2, 16, "unknown option of pin 'sideways'");
  oneError(lines(P4, 'P write buf[0] = 1 2 &'), 2, 20, "expected the end of the step, got '2'");
});

test('a failing async line still starts its path and binds its names (no cascade)', () => {
  const errs = stepsErrors(lines(P4, 'P pin buf as h sideways &', 'P finish', 'device read h[0]', 'P fork Q cow &', 'P finish', 'Q exit'));
  assert.deepEqual(errs.map((e) => e.line), [2, 5]);
});

// ---- whole files, and robustness

test('a v1.1 scenario file parses, positions through the block', () => {
  const s = scenarioOk(
    [
      'name: fork-vs-write',
      'steps: |',
      '  P mmap buf 1',
      '  P write buf[0] = 1',
      '  P thread T',
      '  P fork Q &',
      '  P step',
      '  T write buf[0] = 2 &',
      '  T finish',
      '  P finish',
      '  Q read buf[0]',
    ].join('\n'),
  );
  assert.deepEqual(
    s.steps.map((x: Step) => [x.op, x.pos.line, x.pos.col, 'async' in x ? x.async : null]),
    [
      ['mmap', 3, 3, null],
      ['write', 4, 3, null],
      ['thread', 5, 3, null],
      ['fork', 6, 3, true],
      ['step', 7, 3, null],
      ['write', 8, 3, true],
      ['finish', 9, 3, null],
      ['finish', 10, 3, null],
      ['read', 11, 3, null],
    ],
  );
});

test('the example of docs/scenario-language.md, version 1.1, parses', () => {
  const doc = readFileSync(new URL('../../../docs/scenario-language.md', import.meta.url), 'utf8');
  const v11 = doc.slice(doc.indexOf('## Threads and interleaved kernel paths (version 1.1)'));
  const m = /```yaml\n([\s\S]*?)```/.exec(v11);
  assert.ok(m, 'the version 1.1 section has a YAML example');
  const s = scenarioOk(m[1]!);
  assert.ok(s.steps.some((x) => x.op === 'thread') && s.steps.some((x) => 'async' in x && x.async === true));
});

const WORDS = ['P', 'T', 'Q', 'thread', 'step', 'finish', '&', 'write', 'read', 'fork', 'pin', 'gup', 'vmsplice', 'as', 'h', 'buf', '[', ']', '0', '=', '1', 'exit', 'unpin', 'put', 'mmap', 'device', 'expect', 'rss.Q', 'same-frame', 'cowpt', '#'];
const line = fc.array(fc.constantFrom(...WORDS), { maxLength: 8 }).map((ws) => ws.join(' '));

test('v1.1 words: parseSteps never throws; every error lies within the text', () => {
  fc.assert(
    fc.property(fc.array(line, { maxLength: 14 }), (ls) => {
      const text = [P4, T, ...ls].join('\n');
      const r = parseSteps(text, 'f', blockOrigin(1, 0));
      for (const e of r.errors) {
        assert.ok(e.line >= 1 && e.line <= ls.length + 2);
        const src = text.split('\n')[e.line - 1]!;
        assert.ok(e.col >= 1 && e.col <= src.length + 1, e.format());
        assert.ok(!e.message.includes('\n'));
      }
    }),
    { seed: SEED, numRuns: 500 },
  );
});
