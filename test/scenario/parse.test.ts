// parseScenario: the YAML envelope, and positions of steps and errors in a whole file.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseScenario } from '../../src/scenario/index.js';
import { hasError, scenarioErrors, scenarioOk } from './helpers.js';

const FILE = `name: vmsplice-leak                  # required
description: >
  The child takes a read-only reference with vmsplice, unmaps, and the
  parent's later write must not show through the pipe.
kernel: v6
config:
  frames: 4096
  pin_bias: 1024
outcomes:
  v5.7: [leak]
  v5.8: ok
  v5.14: n/a
  v5.9:
    - leak
    - lost-write
  odf: fail
  "*": ok
steps: |
  # the classic
  P mmap buf 1 rw private
  P write buf[0] = 1

  P fork Q        # child
    Q vmsplice buf[0] as pipe
  Q munmap buf
  P write buf[0] = 2
  Q read pipe[0] expect 1
`;

test('the example of the spec parses whole', () => {
  const s = scenarioOk(FILE);
  assert.equal(s.file, 's.scn.yaml');
  assert.equal(s.name, 'vmsplice-leak');
  assert.match(s.description ?? '', /^The child takes a read-only reference/);
  assert.equal(s.kernel, 'v6');
  assert.deepEqual(s.kernelPos, { line: 5, col: 9 });
  assert.deepEqual(s.config, { frames: 4096, pinBias: 1024 });
  assert.deepEqual([...s.outcomes.entries()], [
    ['v5.7', { expected: { kind: 'violations', kinds: ['leak'] }, pos: { line: 10, col: 3 } }],
    ['v5.8', { expected: { kind: 'ok' }, pos: { line: 11, col: 3 } }],
    ['v5.14', { expected: { kind: 'n/a' }, pos: { line: 12, col: 3 } }],
    ['v5.9', { expected: { kind: 'violations', kinds: ['leak', 'lost-write'] }, pos: { line: 13, col: 3 } }],
    ['odf', { expected: { kind: 'fail' }, pos: { line: 16, col: 3 } }],
    ['*', { expected: { kind: 'ok' }, pos: { line: 17, col: 3 } }],
  ]);
  assert.deepEqual(
    s.steps.map((st) => st.op),
    ['mmap', 'write', 'fork', 'vmsplice', 'munmap', 'write', 'read-handle'],
  );
});

test('steps of a `steps: |` block carry their exact line and column', () => {
  const s = scenarioOk(FILE);
  assert.deepEqual(
    s.steps.map((st) => [st.pos.line, st.pos.col, st.text]),
    [
      [20, 3, 'P mmap buf 1 rw private'],
      [21, 3, 'P write buf[0] = 1'],
      [23, 3, 'P fork Q'],
      [24, 5, 'Q vmsplice buf[0] as pipe'],
      [25, 3, 'Q munmap buf'],
      [26, 3, 'P write buf[0] = 2'],
      [27, 3, 'Q read pipe[0] expect 1'],
    ],
  );
  const v = s.steps[3]!;
  assert.ok(v.op === 'vmsplice');
  assert.deepEqual(v.sel.pos, { line: 24, col: 16 });
  const r = s.steps[6]!;
  assert.ok(r.op === 'read-handle');
  assert.deepEqual(r.ref.pos, { line: 27, col: 10 });
});

test('step errors in a block get exact file line and column', () => {
  const text = ['name: t', 'steps: |', '  P mmap buf 4', '  P write buf[0] 1', '', '  P wirte buf', '     P read buf[7]', '  Q exit'].join('\n');
  const errors = scenarioErrors(text);
  assert.deepEqual(
    errors.map((e) => e.format()),
    [
      "s.scn.yaml:4:18: error: expected '=' after the page selector, got '1'",
      "s.scn.yaml:6:5: error: unknown operation 'wirte': did you mean 'write'? (expected one of: mmap, munmap, mprotect, madvise, write, read, fork, exit, pin, gup, vmsplice, unpin, put, clear-softdirty, mremap, thread, step, finish, uffd); a step may also start with a system operation, without a process: device, swapout, ksm, check, expect, stats",
      "s.scn.yaml:7:17: error: page 7 out of range: 'buf' has 4 pages (0..3)",
      "s.scn.yaml:8:3: error: unknown process 'Q' (a process is created by its first mmap, or by fork)",
    ],
  );
});

test('block variants: |-, |+, an explicit indentation indicator, leading blank lines, CRLF', () => {
  const strip = scenarioOk('name: t\nsteps: |-\n    P mmap buf 1\n    P read buf[0]\n');
  assert.deepEqual(strip.steps.map((s) => s.pos), [{ line: 3, col: 5 }, { line: 4, col: 5 }]);
  const keep = scenarioOk('steps: |+\n\n\n  P mmap buf 1\n\nname: t\n');
  assert.deepEqual(keep.steps[0]!.pos, { line: 4, col: 3 });
  const explicit = scenarioOk('name: t\nsteps: |2\n    P mmap buf 1\n  P read buf[0]\n');
  assert.deepEqual(explicit.steps.map((s) => s.pos), [{ line: 3, col: 5 }, { line: 4, col: 3 }]);
  const crlf = scenarioOk('name: t\r\nsteps: |\r\n  P mmap buf 1\r\n  P read buf[0]\r\n');
  assert.deepEqual(crlf.steps.map((s) => s.pos), [{ line: 3, col: 3 }, { line: 4, col: 3 }]);
  const errs = scenarioErrors('name: t\r\nsteps: |\r\n  P mmap buf 1\r\n  P read buf[1]\r\n');
  hasError(errs, 4, 14, 'page 1 out of range');
});

test('other scalar styles: positions at the steps value', () => {
  const plain = scenarioOk('name: t\nsteps: P mmap buf 1\n');
  assert.deepEqual(plain.steps[0]!.pos, { line: 2, col: 8 });
  hasError(scenarioErrors('name: t\nsteps: P mmap buf 0\n'), 2, 19, 'expected the number of pages');
  const quoted = scenarioErrors('name: t\nsteps: "P mmap buf 1\\nP wirte"\n');
  hasError(quoted, 2, 8, "unknown operation 'wirte'");
});

test("steps of the wrong type: a number, a boolean, a folded block, lines without '|'", () => {
  // `steps: 5` was read as a step: "expected a process name or an operation, got '5'".
  hasError(scenarioErrors('name: t\nsteps: 5\n'), 2, 8, "expected 'steps' to be a block of lines ('steps: |' then one operation a line), got a number, '5'");
  hasError(scenarioErrors('name: t\nsteps: true\n'), 2, 8, "expected 'steps' to be a block of lines ('steps: |' then one operation a line), got a boolean, 'true'");
  hasError(scenarioErrors('name: t\nsteps: 1.5e3\n'), 2, 8, 'got a number');
  // YAML folds the lines of '>' (and of a plain text over several lines) into one: the steps ran together as one step.
  hasError(scenarioErrors('name: t\nsteps: >\n  P mmap buf 1\n\n  P read buf[0]\n'), 2, 8, "'steps: >' folds the lines into one line");
  hasError(scenarioErrors('name: t\nsteps:\n  P mmap buf 1\n  P read buf[0]\n'), 3, 3, "expected 'steps' to be a literal block ('steps: |' then one operation a line): without '|', YAML folds the lines into one line");
  const errs = scenarioErrors('name: t\nsteps:\n  P mmap buf 1\n  P read buf[0]\n');
  assert.equal(errs.length, 1);
  hasError(scenarioErrors('name: t\nsteps: "P mmap buf 1\n  P read buf[0]"\n'), 2, 8, "in a quoted text, YAML folds the lines into one line");
  // Line breaks written as \n in a quoted text on one line are kept: steps, at the value's place.
  assert.equal(scenarioOk('name: t\nsteps: "P mmap buf 1\\nP read buf[0]"\n').steps.length, 2);
  // A quoted '5' is the user's text: read as a step.
  hasError(scenarioErrors('name: t\nsteps: "5"\n'), 2, 8, "expected a process name or an operation, got '5'");
});

test('a list or a mapping where a text is expected names the key; a kernel of several lines is no name', () => {
  hasError(scenarioErrors('name: t\ndescription: [a]\nsteps: P exit\n'), 2, 14, "expected 'description' to be a text, got a list");
  hasError(scenarioErrors('name: [t]\nsteps: P exit\n'), 1, 7, "expected the scenario's name");
  hasError(scenarioErrors('name: t\nkernel: {a: 1}\nsteps: P exit\n'), 2, 9, 'expected a kernel profile name (like v6), got a mapping');
  hasError(scenarioErrors('name: t\nkernel: |\n  v6\n  v5.7\nsteps: P exit\n'), 2, 9, 'expected a kernel profile name (like v6), got a text of several lines');
});

test('a YAML error on a line indented with a tab says so', () => {
  const errs = scenarioErrors('name: t\nsteps: |\n\tP mmap buf 1\n');
  assert.ok(errs.length >= 1);
  hasError(errs, 3, 1, 'this line is indented with a tab: YAML indents with spaces only');
});

test('a file of only comments and blank steps is an error', () => {
  const errors = scenarioErrors('name: t\nsteps: |\n  # nothing yet\n\n  # still nothing\n');
  assert.equal(errors.length, 1);
  hasError(errors, 2, 8, "no steps: 'steps' holds only blank lines and comments");
  hasError(scenarioErrors('name: t\nsteps: ""\n'), 2, 8, 'no steps');
});

test('a comment after a step is ignored', () => {
  const s = scenarioOk('name: t\nsteps: |\n  P mmap buf 1 # shared? no\n  P write buf = 3 # write 4\n');
  const w = s.steps[1]!;
  assert.ok(w.op === 'write' && w.value === '3' && w.text === 'P write buf = 3');
  const m = s.steps[0]!;
  assert.ok(m.op === 'mmap' && !m.shared);
});

test('envelope: required keys', () => {
  hasError(scenarioErrors('steps: |\n  P mmap buf 1\n'), 1, 1, "missing required key 'name'");
  hasError(scenarioErrors('name: t\n'), 1, 1, "missing required key 'steps'");
  hasError(scenarioErrors(''), 1, 1, 'expected a mapping with the keys name, description, kernel, config, outcomes, steps');
  hasError(scenarioErrors('- a\n- b\n'), 1, 1, 'expected a mapping');
});

test('envelope: name pattern and value types', () => {
  hasError(scenarioErrors('name: Vmsplice_Leak\nsteps: P exit\n'), 1, 7, "invalid name 'Vmsplice_Leak': expected lower-case letters, digits and '-'");
  hasError(scenarioErrors('name:\nsteps: P exit\n'), 1, 1, "expected the scenario's name");
  hasError(scenarioErrors('name: [a]\nsteps: |\n  P mmap b 1\n'), 1, 7, "expected the scenario's name (lower-case letters, digits and '-', like vmsplice-leak), got a list");
  hasError(scenarioErrors('name: t\ndescription: {a: 1}\nsteps: |\n  P mmap b 1\n'), 2, 14, "expected 'description' to be a text, got a mapping");
  hasError(scenarioErrors('name: t\nkernel: [v6]\nsteps: |\n  P mmap b 1\n'), 2, 9, 'expected a kernel profile name');
  hasError(scenarioErrors('name: t\nsteps:\n  - P mmap b 1\n'), 3, 3, "expected 'steps' to be a block of lines ('steps: |' then one operation a line), got a list");
  const s = scenarioOk('name: 0-a-9\nkernel: not-a-profile\ndescription:\nsteps: |\n  P mmap b 1\n');
  assert.deepEqual([s.name, s.kernel, s.description, s.outcomes.size, s.config], ['0-a-9', 'not-a-profile', null, 0, { frames: null, pinBias: null }]);
});

test('envelope: unknown keys name the known ones', () => {
  hasError(scenarioErrors('name: t\nkernal: v6\nsteps: |\n  P mmap b 1\n'), 2, 1, "unknown key 'kernal': did you mean 'kernel'? (expected one of: name, description, kernel, config, outcomes, steps)");
  hasError(scenarioErrors('name: t\nconfig:\n  frame: 3\nsteps: |\n  P mmap b 1\n'), 3, 3, "unknown config key 'frame': did you mean 'frames'? (expected one of: frames, pin_bias, thp, hugepages, ksm_use_zero_pages, ksm_smart_scan)");
});

test('envelope: config values', () => {
  const bad = scenarioErrors('name: t\nconfig:\n  frames: 0\n  pin_bias: 1\nsteps: |\n  P mmap b 1\n');
  hasError(bad, 3, 11, "expected 'frames' to be a positive integer (physical frames), got 0");
  hasError(bad, 4, 13, "expected 'pin_bias' to be an integer 2 or more (GUP_PIN_COUNTING_BIAS), got 1");
  hasError(scenarioErrors('name: t\nconfig:\n  frames: "12"\nsteps: P exit\n'), 3, 11, "expected 'frames' to be a positive integer");
  hasError(scenarioErrors('name: t\nconfig:\n  frames: 1.5\nsteps: P exit\n'), 3, 11, "got '1.5'");
  hasError(scenarioErrors('name: t\nconfig:\n  frames: -3\nsteps: P exit\n'), 3, 11, "got '-3'");
  hasError(scenarioErrors('name: t\nconfig: 5\nsteps: P exit\n'), 2, 9, "expected 'config' to be a mapping (keys: frames, pin_bias, thp, hugepages, ksm_use_zero_pages, ksm_smart_scan)");
  const s = scenarioOk('name: t\nconfig:\n  pin_bias: 2\nsteps: |\n  P mmap b 1\n');
  assert.deepEqual(s.config, { frames: null, pinBias: 2 });
  // Extension: config.ksm_use_zero_pages is KSM's sysfs switch, 0 or 1.
  assert.deepEqual(scenarioOk('name: t\nconfig:\n  ksm_use_zero_pages: 1\nsteps: |\n  P mmap b 1\n').config, { frames: null, pinBias: null, ksmUseZeroPages: 1 });
  hasError(scenarioErrors('name: t\nconfig:\n  ksm_use_zero_pages: 2\nsteps: P exit\n'), 3, 23, "expected 'ksm_use_zero_pages' to be at most 1 (/sys/kernel/mm/ksm/use_zero_pages is 0 or 1), got 2");
  hasError(scenarioErrors('name: t\nconfig:\n  ksm_use_zero_pages: yes\nsteps: P exit\n'), 3, 23, "expected 'ksm_use_zero_pages' to be 0 or 1 (/sys/kernel/mm/ksm/use_zero_pages)");
  // Extension: config.ksm_smart_scan is KSM's smart_scan sysfs switch, 0 or 1.
  assert.deepEqual(scenarioOk('name: t\nconfig:\n  ksm_smart_scan: 0\nsteps: |\n  P mmap b 1\n').config, { frames: null, pinBias: null, ksmSmartScan: 0 });
  hasError(scenarioErrors('name: t\nconfig:\n  ksm_smart_scan: 2\nsteps: P exit\n'), 3, 19, "expected 'ksm_smart_scan' to be at most 1 (/sys/kernel/mm/ksm/smart_scan is 0 or 1), got 2");
  // v1.2: config.thp is the THP mode; anything else names the modes.
  assert.deepEqual(scenarioOk('name: t\nconfig:\n  thp: never\nsteps: |\n  P mmap b 1\n').config, { frames: null, pinBias: null, thp: 'never' });
  hasError(scenarioErrors('name: t\nconfig:\n  thp: sometimes\nsteps: |\n  P mmap b 1\n'), 3, 8, "expected 'thp' to be one of always, madvise, never");
});

test('envelope: outcomes values', () => {
  const errs = scenarioErrors([
    'name: t',
    'outcomes:',
    '  v5.7: []',
    '  v5.8: okk',
    '  v6: [leek, leak, leak]',
    '  v6.2: leak',
    '  v5.9: {a: 1}',
    'steps: |',
    '  P mmap b 1',
  ].join('\n'));
  hasError(errs, 3, 9, 'empty list of violation kinds');
  hasError(errs, 4, 9, "unknown outcome 'okk': did you mean 'ok'? (expected one of: ok, fail, n/a); or a list of violation kinds like [leak]");
  hasError(errs, 5, 8, "unknown violation kind 'leek': did you mean 'leak'? (expected one of: leak, lost-write, pin-incoherent");
  hasError(errs, 5, 20, "duplicate violation kind 'leak'");
  hasError(errs, 6, 9, 'a violation kind goes in a list, like [leak]');
  hasError(errs, 7, 9, 'expected ok, fail, n/a, or a list of violation kinds like [leak], got a mapping');
  hasError(scenarioErrors('name: t\noutcomes: ok\nsteps: P exit\n'), 2, 11, "expected 'outcomes' to be a mapping from profile name");
  const all = scenarioOk('name: t\noutcomes:\n  x: [leak, lost-write, pin-incoherent, expect, accounting, frame-leak, use-after-free, kernel-bug, exclusive, fault]\nsteps: |\n  P mmap b 1\n');
  const x = all.outcomes.get('x')!.expected;
  assert.ok(x.kind === 'violations' && x.kinds.length === 10);
});

test('broken YAML is reported at its line and column', () => {
  const errs = scenarioErrors('name: t\nsteps: |\n  P mmap b 1\n bad: [\n');
  assert.ok(errs.length >= 1);
  assert.ok(errs.every((e) => e.message.startsWith('invalid YAML: ')));
  hasError(errs, 4, 1, 'invalid YAML');
  hasError(scenarioErrors('name: t\nname: u\nsteps: P exit\n'), 2, 1, 'duplicate key');
  hasError(scenarioErrors('name: t\nsteps: P exit\n---\nname: u\n'), 3, 1, 'more than one document');
  hasError(scenarioErrors('name: t\nsteps: |\n\tP exit\n'), 3, 1, 'invalid YAML');
});

test('envelope and step errors come together, in file order', () => {
  const errs = scenarioErrors('kernal: v6\nname: T\nsteps: |\n  P mmap b 1\n  P wirte b\n');
  assert.deepEqual(errs.map((e) => [e.line, e.col]), [[1, 1], [2, 7], [5, 5]]);
});

test('parse results never carry a stack trace and format as FILE:LINE:COL', () => {
  const r = parseScenario('name: t\nsteps: |\n  P oops\n', 'dir/x.scn.yaml');
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.errors[0]!.format().split('\n').length, 1);
  assert.match(r.errors[0]!.format(), /^dir\/x\.scn\.yaml:3:5: error: unknown operation 'oops'/);
});

test('aliases resolve to their anchors', () => {
  const s = scenarioOk('name: &n t\ndescription: *n\nsteps: |\n  P mmap b 1\n');
  assert.equal(s.description, 't');
});

test('an empty kernel name is an error', () => {
  hasError(scenarioErrors('name: t\nkernel: ""\nsteps: |\n  P mmap b 1\n'), 2, 9, 'expected a kernel profile name (like v6), got an empty text');
});
