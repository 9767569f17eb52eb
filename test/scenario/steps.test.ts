// Every operation of the language parses to the right AST (one test per family).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NameEnv, blockOrigin, parseSteps } from '../../src/scenario/index.js';
import { P4, lastStep, lines, stepsOk } from './helpers.js';

const at = (line: number, col: number) => ({ line, col });

test('mmap: defaults rw private, options in any order', () => {
  assert.deepEqual(stepsOk('P mmap buf 4')[0], {
    op: 'mmap',
    pos: at(1, 1),
    text: 'P mmap buf 4',
    proc: 'P',
    region: 'buf',
    pages: 4,
    prot: 'rw',
    shared: false,
    populate: false,
    thp: null,
  });
  const s = stepsOk('P mmap big 512 thp populate shared ro')[0]!;
  assert.equal(s.op, 'mmap');
  if (s.op !== 'mmap') return;
  assert.deepEqual([s.pages, s.prot, s.shared, s.populate, s.thp], [512, 'ro', true, true, 'thp']);
  const t = stepsOk('P mmap x 1 nothp private none')[0]!;
  assert.ok(t.op === 'mmap' && t.prot === 'none' && !t.shared && t.thp === 'nothp');
});

test('mmap of a region name whose mapping is gone rebinds it with the new size', () => {
  const s = lastStep(lines('P mmap buf 1', 'P munmap buf', 'P mmap buf 8', 'P write buf[7] = 1'));
  assert.ok(s.op === 'write' && s.sel.hi === 7);
});

test('page selectors: one page, inclusive range, star, bare name', () => {
  const steps = stepsOk(lines(P4, 'P munmap buf[3]', 'P munmap buf[0..2]', 'P munmap buf[*]', 'P munmap buf', 'P munmap buf [ 1 .. 1 ]'));
  const sels = steps.slice(1).map((s) => (s.op === 'munmap' ? s.sel : null));
  assert.deepEqual(sels, [
    { region: 'buf', all: false, lo: 3, hi: 3, pos: at(2, 10) },
    { region: 'buf', all: false, lo: 0, hi: 2, pos: at(3, 10) },
    { region: 'buf', all: true, lo: 0, hi: 3, pos: at(4, 10) },
    { region: 'buf', all: true, lo: 0, hi: 3, pos: at(5, 10) },
    { region: 'buf', all: false, lo: 1, hi: 1, pos: at(6, 10) },
  ]);
});

test('munmap, mprotect, madvise', () => {
  const steps = stepsOk(lines(P4, 'P munmap buf[1..2]', 'P mprotect buf ro', 'P mprotect buf[0] none', 'P mprotect buf rw'));
  assert.deepEqual(
    steps.slice(1).map((s) => [s.op, s.op === 'mprotect' ? s.prot : null]),
    [['munmap', null], ['mprotect', 'ro'], ['mprotect', 'none'], ['mprotect', 'rw']],
  );
  const advices = ['dontfork', 'dofork', 'wipeonfork', 'keeponfork', 'dontneed', 'mergeable', 'pageout'];
  const m = stepsOk(lines(P4, ...advices.map((a) => `P madvise buf[0..1] ${a}`)));
  assert.deepEqual(
    m.slice(1).map((s) => (s.op === 'madvise' ? [s.advice, s.sel.lo, s.sel.hi] : null)),
    advices.map((a) => [a, 0, 1]),
  );
});

test('write: integer values are canonical decimal, identifiers kept', () => {
  const steps = stepsOk(lines(P4, 'P write buf[0] = 1', 'P write buf = 007', 'P write buf[1..2] = -42', 'P write buf[3] = secret', 'P write buf[3] = -0', 'P write buf[0]=a_1'));
  assert.deepEqual(
    steps.slice(1).map((s) => (s.op === 'write' ? s.value : null)),
    ['1', '7', '-42', 'secret', '0', 'a_1'],
  );
  const big = lastStep(lines(P4, 'P write buf = 000123456789012345678901234567890'));
  assert.ok(big.op === 'write' && big.value === '123456789012345678901234567890');
});

test('read: a single page, with expect value, expect fault, or nothing', () => {
  const steps = stepsOk(lines(P4, 'P read buf[2]', 'P read buf[3] expect 5', 'P read buf[0] expect fault', 'P read buf[1] expect x'));
  assert.deepEqual(
    steps.slice(1).map((s) => (s.op === 'read' ? [s.sel.lo, s.sel.hi, s.expect] : null)),
    [
      [2, 2, null],
      [3, 3, { kind: 'value', value: '5' }],
      [0, 0, { kind: 'fault' }],
      [1, 1, { kind: 'value', value: 'x' }],
    ],
  );
});

test('fork (with cowpt) and exit; the child inherits every region', () => {
  const steps = stepsOk(lines(P4, 'P mmap other 2', 'P madvise other dontfork', 'P fork Q', 'Q fork R cowpt', 'R read other[1]', 'Q exit', 'R clear-softdirty'));
  assert.deepEqual(steps[3], { op: 'fork', pos: at(4, 1), text: 'P fork Q', proc: 'P', child: 'Q', cowpt: false });
  assert.deepEqual(steps[4], { op: 'fork', pos: at(5, 1), text: 'Q fork R cowpt', proc: 'Q', child: 'R', cowpt: true });
  assert.deepEqual(steps[6], { op: 'exit', pos: at(7, 1), text: 'Q exit', proc: 'Q' });
  assert.deepEqual(steps[7], { op: 'clear-softdirty', pos: at(8, 1), text: 'R clear-softdirty', proc: 'R' });
});

test('pin: defaults rw longterm, options in any order', () => {
  const steps = stepsOk(lines(P4, 'P pin buf[0..1] as h', 'P pin buf[2] as a fast short ro', 'P pin buf as b longterm rw'));
  assert.deepEqual(steps[1], {
    op: 'pin',
    pos: at(2, 1),
    text: 'P pin buf[0..1] as h',
    proc: 'P',
    sel: { region: 'buf', all: false, lo: 0, hi: 1, pos: at(2, 7) },
    handle: 'h',
    write: true,
    longterm: true,
    fast: false,
  });
  const a = steps[2]!;
  assert.ok(a.op === 'pin' && !a.write && !a.longterm && a.fast && a.handle === 'a');
  const b = steps[3]!;
  assert.ok(b.op === 'pin' && b.write && b.longterm && !b.fast && b.sel.all);
});

test('gup and vmsplice; put releases both', () => {
  const steps = stepsOk(lines(P4, 'P gup buf[1] as g', 'P gup buf as f fast ro', 'P vmsplice buf[0..1] as pipe', 'P put g', 'P put pipe', 'P gup buf as g'));
  const g = steps[1]!;
  assert.ok(g.op === 'gup' && g.write && !g.fast && g.handle === 'g');
  const f = steps[2]!;
  assert.ok(f.op === 'gup' && !f.write && f.fast);
  assert.deepEqual(steps[3], {
    op: 'vmsplice',
    pos: at(4, 1),
    text: 'P vmsplice buf[0..1] as pipe',
    proc: 'P',
    sel: { region: 'buf', all: false, lo: 0, hi: 1, pos: at(4, 12) },
    handle: 'pipe',
  });
  assert.deepEqual(steps[4], { op: 'put', pos: at(5, 1), text: 'P put g', proc: 'P', handle: 'g' });
  assert.deepEqual(steps[5], { op: 'put', pos: at(6, 1), text: 'P put pipe', proc: 'P', handle: 'pipe' });
  assert.equal(steps[6]!.op, 'gup');
});

test('unpin releases a pin; the name may be bound again', () => {
  const steps = stepsOk(lines(P4, 'P pin buf as h', 'P unpin h', 'P pin buf[1] as h'));
  assert.deepEqual(steps[2], { op: 'unpin', pos: at(3, 1), text: 'P unpin h', proc: 'P', handle: 'h' });
});

test('read through a handle, by any process, even after munmap', () => {
  const steps = stepsOk(lines('P mmap buf 1', 'P write buf[0] = 1', 'P fork Q', 'Q vmsplice buf[0] as pipe', 'Q munmap buf', 'P write buf[0] = 2', 'Q read pipe[0] expect 1', 'P read pipe[0]', 'Q read buf[0] expect fault'));
  assert.deepEqual(steps[6], {
    op: 'read-handle',
    pos: at(7, 1),
    text: 'Q read pipe[0] expect 1',
    proc: 'Q',
    ref: { handle: 'pipe', index: 0, pos: at(7, 8) },
    expect: '1',
  });
  const p = steps[7]!;
  assert.ok(p.op === 'read-handle' && p.proc === 'P' && p.expect === null);
  const q = steps[8]!;
  assert.ok(q.op === 'read' && q.expect?.kind === 'fault');
});

test('device write and device read through pins', () => {
  const steps = stepsOk(lines(P4, 'P pin buf[1..2] as h', 'P pin buf as g short', 'device write h[1] = 9', 'device read h[0] expect 0', 'device read g[3]', 'device write g[0] = x'));
  assert.deepEqual(steps[3], { op: 'device-write', pos: at(4, 1), text: 'device write h[1] = 9', ref: { handle: 'h', index: 1, pos: at(4, 14) }, value: '9' });
  assert.deepEqual(steps[4], { op: 'device-read', pos: at(5, 1), text: 'device read h[0] expect 0', ref: { handle: 'h', index: 0, pos: at(5, 13) }, expect: '0' });
  const r = steps[5]!;
  assert.ok(r.op === 'device-read' && r.expect === null && r.ref.index === 3);
});

test('device exclusive, device read of a grant, device atomic with its expectations', () => {
  const steps = stepsOk(lines(P4, 'device exclusive P buf[0..1] as x', 'device read x[1] expect 0', 'device atomic x[0] = 1', 'device atomic x[1] = 2 expect revoked', 'device atomic x[1] = 3 expect denied', 'P read buf[0]'));
  assert.deepEqual(steps[1], {
    op: 'device-exclusive',
    pos: at(2, 1),
    text: 'device exclusive P buf[0..1] as x',
    proc: 'P',
    sel: { region: 'buf', all: false, lo: 0, hi: 1, pos: at(2, 20) },
    handle: 'x',
  });
  assert.equal(steps[2]!.op, 'device-read');
  assert.deepEqual(steps[3], { op: 'device-atomic', pos: at(4, 1), text: 'device atomic x[0] = 1', ref: { handle: 'x', index: 0, pos: at(4, 15) }, value: '1', expect: null });
  const rv = steps[4]!;
  assert.ok(rv.op === 'device-atomic' && rv.expect === 'revoked' && rv.value === '2');
  const dn = steps[5]!;
  assert.ok(dn.op === 'device-atomic' && dn.expect === 'denied');
  assert.equal(steps[6]!.op, 'read');
});

test('swapout, ksm merge, check, stats', () => {
  const steps = stepsOk(lines(P4, 'swapout P buf[1..3]', 'ksm merge', 'check', 'stats'));
  assert.deepEqual(steps[1], { op: 'swapout', pos: at(2, 1), text: 'swapout P buf[1..3]', proc: 'P', sel: { region: 'buf', all: false, lo: 1, hi: 3, pos: at(2, 11) } });
  assert.deepEqual(steps.slice(2), [
    { op: 'ksm-merge', pos: at(3, 1), text: 'ksm merge' },
    { op: 'check', pos: at(4, 1), text: 'check' },
    { op: 'stats', pos: at(5, 1), text: 'stats' },
  ]);
});

test('expect same-frame / other-frame, mapped-once / mapped-shared, anon-exclusive / not-anon-exclusive', () => {
  const steps = stepsOk(lines(P4, 'P fork Q', 'expect P buf[0] same-frame Q buf[0]', 'expect Q buf[1] other-frame P buf[2]', 'expect P buf[3] mapped-once', 'expect P buf[3] mapped-shared', 'expect Q buf[0] anon-exclusive', 'expect Q buf[0] not-anon-exclusive'));
  assert.deepEqual(steps[2], {
    op: 'expect-frame',
    pos: at(3, 1),
    text: 'expect P buf[0] same-frame Q buf[0]',
    proc: 'P',
    sel: { region: 'buf', all: false, lo: 0, hi: 0, pos: at(3, 10) },
    same: true,
    otherProc: 'Q',
    otherSel: { region: 'buf', all: false, lo: 0, hi: 0, pos: at(3, 30) },
  });
  const o = steps[3]!;
  assert.ok(o.op === 'expect-frame' && !o.same && o.proc === 'Q' && o.otherProc === 'P' && o.otherSel.lo === 2);
  assert.deepEqual(
    steps.slice(4).map((s) => (s.op === 'expect-mapped' ? ['mapped', s.once] : s.op === 'expect-exclusive' ? ['excl', s.exclusive] : null)),
    [['mapped', true], ['mapped', false], ['excl', true], ['excl', false]],
  );
});

test('expect stat: every counter and comparison', () => {
  const steps = stepsOk(lines(P4, 'P fork Q', 'Q exit', 'expect stat PageTables_kB == 8', 'expect stat AnonPages_kB != 4', 'expect stat rss.P < 5', 'expect stat minflt.Q <= 3', 'expect stat frames_used > 0', 'expect stat cow_copies >= -1', 'expect stat pt_copies == 0'));
  assert.deepEqual(steps[3], { op: 'expect-stat', pos: at(4, 1), text: 'expect stat PageTables_kB == 8', stat: 'PageTables_kB', statProc: null, cmp: '==', number: 8 });
  assert.deepEqual(
    steps.slice(4).map((s) => (s.op === 'expect-stat' ? [s.stat, s.statProc, s.cmp, s.number] : null)),
    [
      ['AnonPages_kB', null, '!=', 4],
      ['rss.P', 'P', '<', 5],
      ['minflt.Q', 'Q', '<=', 3],
      ['frames_used', null, '>', 0],
      ['cow_copies', null, '>=', -1],
      ['pt_copies', null, '==', 0],
    ],
  );
});

test('comments and blank lines are ignored; text and position skip them', () => {
  const steps = stepsOk(lines('# a comment', '', '   P mmap buf 2   # two pages', '\t', 'P write buf[1] = 3#no space', '  # indented comment'));
  assert.equal(steps.length, 2);
  assert.deepEqual([steps[0]!.pos, steps[0]!.text], [at(3, 4), 'P mmap buf 2']);
  assert.deepEqual([steps[1]!.pos, steps[1]!.text], [at(5, 1), 'P write buf[1] = 3']);
  const w = steps[1]!;
  assert.ok(w.op === 'write' && w.value === '3');
});

test('CRLF line ends are accepted', () => {
  const steps = stepsOk('P mmap buf 2\r\nP write buf = 1\r\n');
  assert.equal(steps.length, 2);
  assert.equal(steps[1]!.text, 'P write buf = 1');
});

test('positions go through the origin (block line and indentation)', () => {
  const r = parseSteps(lines('P mmap buf 2', '', '  P write buf[1] = 3'), 'f', blockOrigin(10, 4));
  assert.deepEqual(r.steps.map((s) => s.pos), [at(10, 5), at(12, 7)]);
  const w = r.steps[1]!;
  assert.ok(w.op === 'write' && w.sel.pos.line === 12 && w.sel.pos.col === 15);
});

test('a NameEnv carries names from one parse to the next', () => {
  const env = new NameEnv();
  const a = parseSteps(lines('P mmap buf 2', 'P pin buf as h'), 'f', blockOrigin(1, 0), env);
  assert.equal(a.errors.length, 0);
  const b = parseSteps('device read h[1]', 'f', blockOrigin(3, 0), env);
  assert.equal(b.errors.length, 0);
  assert.equal(b.steps[0]!.op, 'device-read');
  assert.equal(env.handles.get('h')?.pages, 2);
  assert.equal(env.handles.get('h')?.kind, 'pin');
});

test('thousands of steps parse in linear time (8x the steps take far less than 64x the time)', () => {
  const script = (n: number): string => {
    const ls = ['P mmap buf 64'];
    for (let i = 0; i < n; i++) {
      const k = i % 64;
      ls.push(`P write buf[${k}] = ${i}`, `P pin buf[${k}] as h${i}`, `P unpin h${i}`, `P read buf[${k}] expect ${i}`);
    }
    return ls.join('\n');
  };
  // Best of three for each size, so a loaded machine slows both alike; a quadratic parser
  // would take about 64 times as long for 8 times the steps.
  const best = (text: string, steps: number): number => {
    let min = Infinity;
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      assert.equal(stepsOk(text).length, steps);
      min = Math.min(min, performance.now() - t0);
    }
    return min;
  };
  const small = best(script(2500), 4 * 2500 + 1);
  const large = best(script(20000), 4 * 20000 + 1);
  assert.ok(large / small < 24, `8x the steps took ${(large / small).toFixed(1)}x the time (${small.toFixed(0)} ms, ${large.toFixed(0)} ms)`);
});

test('mremap: the step names the pages and the new region', () => {
  const s = lastStep(lines(P4, 'P mremap buf[1..2] as moved'));
  assert.equal(s.op, 'mremap');
  if (s.op !== 'mremap') return;
  assert.deepEqual([s.proc, s.sel.region, s.sel.lo, s.sel.hi, s.region], ['P', 'buf', 1, 2, 'moved']);
});
