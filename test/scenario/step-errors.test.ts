// Every class of step error: its line, its column, and what the message says.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_ERRORS, PROCESS_OPS, SYSTEM_OPS, THREAD_OPS } from '../../src/scenario/index.js';
import { P4, lines, oneError, stepsErrors } from './helpers.js';

test('unknown process verb, with did-you-mean and the list of operations', () => {
  const e = oneError(lines(P4, 'P wirte buf[0] = 1'), 2, 3, "unknown operation 'wirte': did you mean 'write'?");
  assert.ok(e.message.includes('expected one of: mmap, munmap, mprotect'));
  oneError(lines(P4, 'P zap'), 2, 3, "unknown operation 'zap' (expected one of: mmap");
  oneError(lines(P4, 'P 5'), 2, 3, "expected an operation after process 'P'");
});

test('an unknown operation lists every operation of the registry, the later ones and the system ones too', () => {
  // It listed only the v1 process operations (no thread, step, finish, uffd) unless the typo was near a later one.
  for (const text of ['P zap', 'P 5', 'zap P buf']) {
    const e = stepsErrors(lines(P4, text))[0]!;
    const ops = text === 'P 5' ? [...PROCESS_OPS, ...THREAD_OPS] : [...PROCESS_OPS, ...THREAD_OPS, ...SYSTEM_OPS];
    for (const op of ops) assert.ok(e.message.includes(op), `${text}: '${op}' missing from: ${e.message}`);
  }
  oneError(lines(P4, 'P zap'), 2, 3, 'thread, step, finish, uffd); a step may also start with a system operation, without a process: device, swapout');
  oneError(lines(P4, 'P check'), 2, 3, "'check' is a system operation: its step starts with 'check', not with a process");
  oneError(lines(P4, 'wirte buf[0] = 1'), 2, 1, "unknown operation 'wirte': did you mean 'P write ...' (a process first)?");
});

test('unknown first word, missing or invalid process names', () => {
  oneError(lines(P4, 'swapot P buf'), 2, 1, "unknown operation 'swapot': did you mean 'swapout'?");
  oneError(lines(P4, 'write buf[0] = 1'), 2, 1, "missing process before 'write'");
  oneError('p mmap buf 1', 1, 1, "invalid process name 'p'");
  oneError(lines(P4, '[x]'), 2, 1, 'expected a process name or an operation');
  oneError(lines(P4, 'P write buf[0] = 1;'), 2, 19, "unexpected character ';'");
  oneError(lines(P4, 'P fork q'), 2, 8, "expected the child's process name after 'fork'");
});

test("write: '=' and the value are required", () => {
  oneError(lines(P4, 'P write buf[0] 1'), 2, 16, "expected '=' after the page selector, got '1'");
  oneError(lines(P4, 'P write buf[0]'), 2, 15, "expected '=' after the page selector, got the end of the line");
  oneError(lines(P4, 'P write buf[0] ='), 2, 17, 'expected a value (an integer, or an identifier');
  oneError(lines(P4, 'P write buf[0] = 4k'), 2, 18, "got '4k'");
  oneError(lines(P4, 'P write buf[0] = a-b'), 2, 18, "got 'a-b'");
  oneError(lines(P4, 'P write buf[0] == 1'), 2, 16, "expected '=' after the page selector, got '=='");
  oneError(lines(P4, 'P write buf[0] = 1 2'), 2, 20, "expected the end of the step, got '2'");
});

test('option words: unknown, duplicate, conflicting', () => {
  oneError('P mmap buf 4 rw privte', 1, 17, "unknown option of mmap 'privte': did you mean 'private'?");
  oneError('P mmap buf 4 rw rw', 1, 17, "duplicate option 'rw'");
  oneError('P mmap buf 4 rw populate ro', 1, 26, "conflicting options 'rw' and 'ro'");
  oneError('P mmap buf 4 shared private', 1, 21, "conflicting options 'shared' and 'private'");
  oneError('P mmap buf 4 thp nothp', 1, 18, "conflicting options 'thp' and 'nothp'");
  oneError(lines(P4, 'P pin buf as h ro rw'), 2, 19, "conflicting options 'ro' and 'rw'");
  oneError(lines(P4, 'P pin buf as h short longterm'), 2, 22, "conflicting options 'short' and 'longterm'");
  oneError(lines(P4, 'P pin buf as h fast fast'), 2, 21, "duplicate option 'fast'");
  oneError(lines(P4, 'P gup buf as h longterm'), 2, 16, "unknown option of gup 'longterm'");
  oneError(lines(P4, 'P fork Q cowpt cowpt'), 2, 16, "duplicate option 'cowpt'");
  oneError(lines(P4, 'P vmsplice buf as h ro'), 2, 21, "expected the end of the step, got 'ro'");
});

test('mmap: a region name and a positive page count', () => {
  oneError('P mmap buf 0', 1, 12, 'expected the number of pages after the region name (an integer from 1');
  oneError('P mmap buf', 1, 11, 'expected the number of pages');
  oneError('P mmap buf rw', 1, 12, "expected the number of pages after the region name (an integer from 1 to 1073741824), got 'rw'");
  oneError('P mmap Buf 4', 1, 8, "invalid name 'Buf'");
  oneError('P mmap 4', 1, 8, "expected a region name after 'mmap', got '4'");
});

test('mprotect and madvise need their word', () => {
  oneError(lines(P4, 'P mprotect buf'), 2, 15, 'expected protection after the pages (one of: rw, ro, none), got the end of the line');
  oneError(lines(P4, 'P mprotect buf rx'), 2, 16, "unknown protection 'rx': did you mean 'rw'?");
  oneError(lines(P4, 'P madvise buf dontneeed'), 2, 15, "unknown advice 'dontneeed': did you mean 'dontneed'?");
});

test('read takes a single page; expect takes a value or fault', () => {
  oneError(lines(P4, 'P read buf[0..1]'), 2, 13, 'not a range (read takes one page)');
  oneError(lines(P4, 'P read buf[*]'), 2, 12, "not '*' (read takes one page)");
  oneError(lines(P4, 'P read buf'), 2, 11, "expected '[' and a page index after 'buf' (read takes one page, like buf[0])");
  oneError(lines(P4, 'P read buf[0] expekt 1'), 2, 15, "expected 'expect' or the end of the step, got 'expekt'");
  oneError(lines(P4, 'P read buf[0] expect'), 2, 21, "expected a value (an integer, or an identifier like secret) or 'fault' after 'expect'");
  oneError(lines(P4, 'P vmsplice buf as pipe', 'P read pipe[0] expect fault'), 3, 23, "'expect fault' is only for a CPU read of a region");
  oneError(lines(P4, 'P pin buf as h', 'device read h[0] expect fault'), 3, 25, "'expect fault' is only for a CPU read");
});

test('expect on pages takes single pages and a known expectation', () => {
  oneError(lines(P4, 'P fork Q', 'expect P buf[0..1] same-frame Q buf[0]'), 3, 15, 'not a range (expect takes one page)');
  oneError(lines(P4, 'P fork Q', 'expect P buf[0] same-frame Q buf'), 3, 33, "expected '[' and a page index after 'buf'");
  oneError(lines(P4, 'expect P buf[0] mapped-twice'), 2, 17, "unknown expectation 'mapped-twice'");
  oneError(lines(P4, 'expect buf[0] mapped-once'), 2, 8, "expected 'stat' or a process name after 'expect'");
});

test('page selector syntax: indexes, brackets, ranges', () => {
  oneError(lines(P4, 'P write buf[-1] = 1'), 2, 13, "expected a page index (an integer 0 or more), got '-1'");
  oneError(lines(P4, 'P write buf[1 = 1'), 2, 15, "expected ']' or '..' after the page index, got '='");
  oneError(lines(P4, 'P write buf[1..] = 1'), 2, 16, "expected a page index (an integer 0 or more), got ']'");
  oneError(lines(P4, 'P write buf[3..1] = 1'), 2, 13, 'empty range 3..1');
  oneError(lines(P4, 'P write buf[.] = 1'), 2, 13, "unexpected character '.'");
});

test('page index out of range of a region', () => {
  oneError(lines(P4, 'P write buf[5] = 1'), 2, 13, "page 5 out of range: 'buf' has 4 pages (0..3)");
  oneError(lines(P4, 'P write buf[1..4] = 1'), 2, 16, "page 4 out of range: 'buf' has 4 pages (0..3)");
  oneError(lines('P mmap one 1', 'P read one[007]'), 2, 12, "page 7 out of range: 'one' has 1 page (0..0)");
  oneError(lines(P4, 'P read buf[99999999999999999999999]'), 2, 12, 'page 99999999999999999999999 out of range');
});

test('device, ksm and expect stat syntax', () => {
  oneError(lines(P4, 'device wrte h[0] = 1'), 2, 8, "unknown device operation 'wrte': did you mean 'write'?");
  oneError(lines(P4, 'ksm'), 2, 4, "expected 'merge' after 'ksm', got the end of the line");
  oneError(lines(P4, 'check now'), 2, 7, "expected the end of the step, got 'now'");
  oneError(lines(P4, 'expect stat rss_kB == 1'), 2, 13, "unknown counter 'rss_kB'");
  oneError(lines(P4, 'expect stat frames_usd == 1'), 2, 13, "unknown counter 'frames_usd': did you mean 'frames_used'?");
  oneError(lines(P4, 'expect stat rss.P = 4'), 2, 19, "expected a comparison (one of: == != < <= > >=) after the counter, got '='; did you mean '=='?");
  oneError(lines(P4, 'expect stat rss.P == x'), 2, 22, "expected an integer after '==', got 'x'");
  oneError(lines(P4, 'expect stat rss.p == 1'), 2, 17, "expected a process name after 'rss.'");
  oneError(lines(P4, 'device exclusive P buf as x', 'device atomic x[0] = 1 expect gone'), 3, 31, "unknown atomic outcome 'gone'");
});

test('processes: unknown, exited, fork to an existing name', () => {
  oneError(lines(P4, 'Q write buf[0] = 1'), 2, 1, "unknown process 'Q' (a process is created by its first mmap, or by fork)");
  oneError(lines(P4, 'Q mmap buf 1'), 2, 1, 'only the first process (P) is created by mmap, the others by fork');
  oneError('P fork Q', 1, 1, "unknown process 'P'");
  oneError(lines(P4, 'P fork Q', 'Q exit', 'Q read buf[0]'), 4, 1, "process 'Q' has exited (at line 3)");
  oneError(lines(P4, 'P fork Q', 'Q exit', 'P fork Q'), 4, 8, "process 'Q' already exists (since line 2); fork needs a new process name");
  oneError(lines(P4, 'P fork P'), 2, 8, "process 'P' already exists");
  oneError(lines(P4, 'P exit', 'expect stat minflt.P == 1', 'expect stat rss.Z == 1'), 4, 17, "unknown process 'Z'");
  oneError(lines(P4, 'P fork Q', 'expect P buf[0] same-frame Z buf[0]'), 3, 28, "unknown process 'Z'");
  oneError(lines(P4, 'swapout Z buf'), 2, 9, "unknown process 'Z'");
  oneError(lines(P4, 'device exclusive Z buf as x'), 2, 18, "unknown process 'Z'");
});

test('regions: unknown (listing the known ones), never unbound by munmap', () => {
  oneError(lines(P4, 'P mmap aux 1', 'P write bfu[0] = 1'), 3, 9, "unknown region 'bfu' of process 'P' (regions of P: buf, aux; a region is bound by mmap); did you mean 'buf'?");
  oneError(lines(P4, 'P fork Q', 'P mmap late 1', 'Q read late[0]'), 4, 8, "unknown region 'late' of process 'Q' (regions of Q: buf;");
  assert.deepEqual(stepsErrors(lines(P4, 'P munmap buf', 'P read buf[3] expect fault')), []);
});

test('handles: rebinding a live name, using released or unknown ones, wrong release', () => {
  oneError(lines(P4, 'P pin buf as h', 'P gup buf as h'), 3, 14, "handle 'h' is already bound (a pin taken at line 2); unpin it first");
  oneError(lines(P4, 'P gup buf as h', 'P vmsplice buf as h'), 3, 19, "handle 'h' is already bound (a gup reference taken at line 2); put it first");
  oneError(lines(P4, 'P pin buf as h', 'P unpin h', 'device read h[0]'), 4, 13, "handle 'h' was released at line 3 (by unpin)");
  oneError(lines(P4, 'P pin buf as h', 'P unpin h', 'P unpin h'), 4, 9, "handle 'h' was released at line 3");
  oneError(lines(P4, 'P pin buf as h', 'P unpin h', 'P read h[0]'), 4, 8, "handle 'h' was released at line 3");
  oneError(lines(P4, 'device read nope[0]'), 2, 13, "unknown handle 'nope' (no handle is live");
  oneError(lines(P4, 'P pin buf as hh', 'device read h[0]'), 3, 13, "unknown handle 'h' (live handles: hh; a handle is bound by 'as NAME'); did you mean 'hh'?");
  // A region's name where a handle goes says so (it said only 'no handle is live').
  oneError(lines(P4, 'P put buf'), 2, 7, "unknown handle 'buf' (no handle is live; a handle is bound by 'as NAME'); 'buf' is a region of P, not a handle");
  oneError(lines(P4, 'P gup buf as g', 'P unpin g'), 3, 9, "cannot unpin 'g': it is a gup reference, not a pin; use 'put g'");
  oneError(lines(P4, 'P pin buf as h', 'P put h'), 3, 7, "cannot put 'h': it is a pin, not a gup reference or a pipe; use 'unpin h'");
  oneError(lines(P4, 'device exclusive P buf as x', 'P put x'), 3, 7, "cannot put 'x': it is a device-exclusive grant");
  oneError(lines(P4, 'P pin buf[1..2] as h', 'device write h[2] = 1'), 3, 16, "page 2 out of range: handle 'h' has 2 pages (0..1)");
  oneError(lines(P4, 'P pin buf as h', 'device write h = 1'), 3, 16, "expected '[' and a page index after handle 'h' (like h[0]), got '='");
  oneError(lines(P4, 'P pin buf as h', 'device write h[0..1] = 1'), 3, 17, "expected ']' after the page index (a handle page is one page), got '..'");
  oneError(lines(P4, 'P pin buf as H'), 2, 14, "invalid name 'H'");
});

test('device operations need the right kind of handle', () => {
  oneError(lines(P4, 'P vmsplice buf as pipe', 'device write pipe[0] = 1'), 3, 14, "device write needs a pin; 'pipe' is a pipe (vmsplice) (taken at line 2)");
  oneError(lines(P4, 'device exclusive P buf as x', 'device write x[0] = 1'), 3, 14, "device write needs a pin; 'x' is a device-exclusive grant");
  oneError(lines(P4, 'P vmsplice buf as pipe', 'device read pipe[0]'), 3, 13, 'device read needs a pin or a device-exclusive grant');
  // Device I/O (DMA) goes through FOLL_PIN: a FOLL_GET reference gets no promise across fork.
  oneError(lines(P4, 'P gup buf as g', 'device write g[0] = 1'), 3, 14, "device write needs a pin; 'g' is a gup reference (taken at line 2): DMA goes through pin_user_pages (FOLL_PIN)");
  oneError(lines(P4, 'P gup buf as g', 'device read g[1]'), 3, 13, "device read needs a pin or a device-exclusive grant; 'g' is a gup reference");
  // The device holds an exclusive grant: no process reads through it (it reads its page as a region).
  oneError(lines(P4, 'device exclusive P buf as x', 'P read x[0]'), 3, 8, "a read through a handle needs a pin or a gup reference or a pipe (vmsplice); 'x' is a device-exclusive grant (taken at line 2): the device holds it");
  oneError(lines(P4, 'P pin buf as h', 'device atomic h[0] = 1'), 3, 15, "device atomic needs a device-exclusive grant; 'h' is a pin");
  oneError(lines(P4, 'device exclusive P buf as x', 'device exclusive P buf as x'), 3, 27, "handle 'x' is already bound (a device-exclusive grant taken at line 2); choose another name");
});

test('errors are collected line after line, and capped', () => {
  const errs = stepsErrors(lines(P4, 'P wirte buf', 'P write buf[0] = 1', 'P write buf[9] = 1', 'Q exit'));
  assert.deepEqual(errs.map((e) => [e.line, e.col]), [[2, 3], [4, 13], [5, 1]]);
  const many = stepsErrors(lines(P4, ...Array.from({ length: 50 }, () => 'P bad')));
  assert.equal(many.length, MAX_ERRORS + 1);
  assert.ok(many[MAX_ERRORS]!.message.includes('too many errors'));
});

test('a failed mmap, fork or pin still binds its names (no cascade of errors)', () => {
  const errs = stepsErrors(lines('P mmap buf 4 rw ro', 'P fork Q cow', 'Q pin buf as h sideways', 'Q read h[0]', 'Q write buf = 1'));
  assert.deepEqual(errs.map((e) => e.line), [1, 2, 3]);
});

test('mmap of a name the process still maps is an error at its line; a name whose mapping is gone rebinds', () => {
  oneError(lines(P4, 'P mmap buf 2'), 2, 8, "process 'P' still has region 'buf' mapped (since line 1); mmap needs a new name");
  // Part of it unmapped is still mapped.
  oneError(lines(P4, 'P munmap buf[0..2]', 'P mmap buf 1'), 3, 8, "still has region 'buf' mapped");
  // In a child, the inherited name is mapped too.
  oneError(lines(P4, 'P fork Q', 'Q mmap buf 1'), 3, 8, "process 'Q' still has region 'buf' mapped");
  assert.deepEqual(stepsErrors(lines(P4, 'P munmap buf[0..1]', 'P munmap buf[2..3]', 'P mmap buf 2')), []);
  assert.deepEqual(stepsErrors(lines(P4, 'P munmap buf', 'P mmap buf 8', 'P write buf[7] = 1')), []);
  // A child does not map the parent's MADV_DONTFORK pages: there the name is free; MADV_DOFORK undoes it.
  assert.deepEqual(stepsErrors(lines(P4, 'P madvise buf dontfork', 'P fork Q', 'Q mmap buf 1')), []);
  oneError(lines(P4, 'P madvise buf dontfork', 'P madvise buf[1] dofork', 'P fork Q', 'Q mmap buf 1'), 5, 8, "process 'Q' still has region 'buf' mapped");
  // The parent keeps its own mapping.
  oneError(lines(P4, 'P madvise buf dontfork', 'P fork Q', 'P mmap buf 1'), 4, 8, "process 'P' still has region 'buf' mapped");
});

test('mremap: as NEW required, NEW a new name (not the moved region, nor a mapped one), pages in range', () => {
  oneError(lines(P4, 'P mremap buf[1]'), 2, 16, "expected 'as' after the pages (mremap buf[RANGE] as NEW), got the end of the line");
  oneError(lines(P4, 'P mremap buf[1] as'), 2, 19, "expected the new region name after 'as'");
  oneError(lines(P4, 'P mremap buf[1] as New'), 2, 20, "invalid name 'New'");
  oneError(lines(P4, 'P mremap buf[4] as nb'), 2, 14, "page 4 out of range: 'buf' has 4 pages (0..3)");
  oneError(lines(P4, 'P mremap buf as buf'), 2, 17, "still has region 'buf' mapped (since line 1); mremap needs a new name");
  oneError(lines(P4, 'P mmap other 1', 'P mremap buf[0] as other'), 3, 20, "still has region 'other' mapped (since line 2)");
  oneError(lines(P4, 'P mremap nope as nb'), 2, 10, "unknown region 'nope'");
  oneError(lines(P4, 'P mremap buf[0] as nb extra'), 2, 23, 'expected the end of the step');
  // A name whose pages all went (munmap, or moved away) may be bound again.
  assert.deepEqual(stepsErrors(lines(P4, 'P mmap old 1', 'P munmap old', 'P mremap buf[0] as old')), []);
  assert.deepEqual(stepsErrors(lines(P4, 'P mremap buf as nb', 'P mremap nb as buf', 'P read buf[3] expect 0')), []);
});

test('mremap: the moved pages leave the old region and make up the new one, in the child too', () => {
  assert.deepEqual(stepsErrors(lines(P4, 'P mremap buf[1..2] as nb', 'P read nb[1]', 'P fork Q', 'Q write nb[0] = 1', 'Q read buf[1] expect fault')), []);
  oneError(lines(P4, 'P mremap buf[1..2] as nb', 'P read nb[2]'), 3, 11, "page 2 out of range: 'nb' has 2 pages (0..1)");
  // Pages marked dontfork move with their mark: not in a child.
  assert.deepEqual(stepsErrors(lines(P4, 'P madvise buf[1..2] dontfork', 'P mremap buf[1..2] as nb', 'P fork Q', 'Q mmap nb 1')), []);
  oneError(lines(P4, 'P madvise buf[1] dontfork', 'P mremap buf[1..2] as nb', 'P fork Q', 'Q mmap nb 1'), 5, 8, "still has region 'nb' mapped");
});
