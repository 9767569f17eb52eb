// Issue 15: what the parser echoes of a file is safe to print, and its errors never carry a
// JavaScript engine's message.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeControls, parseScenario } from '../../src/scenario/index.js';

const ESC = '\u001b';

function errorsOf(text: string): string[] {
  const r = parseScenario(text, 'f.scn.yaml');
  assert.equal(r.ok, false, 'expected errors');
  return r.ok ? [] : r.errors.map((e) => e.format());
}

test('terminal escapes in a name are shown escaped, never raw', () => {
  const [e] = errorsOf(`name: "a${ESC}[31mRED${ESC}]0;PWNED\u0007"\nsteps: |\n  P mmap a 1\n`);
  assert.ok(!/[\u0000-\u001f\u007f-\u009f]/.test(e!), JSON.stringify(e));
  assert.ok(e!.includes("invalid name 'a\\x1b[31mRED\\x1b]0;PWNED\\x07'"), e);
});

test('a control character in a step is named escaped; a character outside the BMP whole', () => {
  assert.deepEqual(errorsOf(`name: x\nsteps: |\n  P mmap a 1\n  P wr${ESC}[31mite a = 1\n`), ["f.scn.yaml:4:7: error: unexpected character '\\x1b'"]);
  assert.deepEqual(errorsOf('name: x\nsteps: |\n  P mmap a 1 \u009b\n'), ["f.scn.yaml:3:14: error: unexpected character '\\u009b'"]);
  assert.deepEqual(errorsOf('name: x\nsteps: |\n  P mmap a 1 \u{1F600}\n'), ["f.scn.yaml:3:14: error: unexpected character '\u{1F600}'"]);
});

test('escapeControls: C0, DEL, C1, bidirectional overrides and lone surrogates; JSON text stays JSON', () => {
  assert.equal(escapeControls('a\u001bb\rc\td\ne'), 'a\\x1bb\\rc\\td\\ne');
  assert.equal(escapeControls('a\nb\tc', '\n\t'), 'a\nb\tc');
  assert.equal(escapeControls('\u007f\u0085\u009b\u202e\u2066\u2028'), '\\u007f\\u0085\\u009b\\u202e\\u2066\\u2028');
  assert.equal(escapeControls('\ud800x\u{1F600}'), '\\ud800x\u{1F600}');
  const value = { s: 'x\u009by\u007f\u202e' };
  const json = escapeControls(JSON.stringify(value, null, 2), '\n');
  assert.ok(!/[\u007f-\u009f\u202e]/.test(json));
  assert.deepEqual(JSON.parse(json), value);
});

test('YAML nested a thousand deep: a positioned error, without the engine message', () => {
  const errs = errorsOf(`name: x\nsteps: ${'['.repeat(1000)}${']'.repeat(1000)}\n`);
  assert.equal(errs.length, 1);
  assert.match(errs[0]!, /^f\.scn\.yaml:2:\d+: error: invalid YAML: collections nested too deeply/);
  assert.doesNotMatch(errs[0]!, /Maximum call stack|RangeError/);
});

test('a malformed tag escape: a YAML error, not a URIError', () => {
  const errs = errorsOf('%TAG !e! tag:x,2000:\n---\nname: !e!%ff x\nsteps: |\n  P mmap a 1\n');
  assert.ok(errs.length >= 1);
  for (const e of errs) assert.doesNotMatch(e, /URIError|URI malformed/, e);
  assert.match(errs[0]!, /^f\.scn\.yaml:3:7: error: invalid YAML:/);
});
