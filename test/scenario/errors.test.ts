import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScenarioError, closest, editDistance, unknownWord } from '../../src/scenario/index.js';

test('ScenarioError formats FILE:LINE:COL: error: MESSAGE, without a stack', () => {
  const e = new ScenarioError('a.scn.yaml', 3, 7, "expected '=' after the page selector");
  assert.equal(e.format(), "a.scn.yaml:3:7: error: expected '=' after the page selector");
  assert.equal(String(e), e.format());
  assert.equal((e as unknown as { stack?: unknown }).stack, undefined);
  assert.deepEqual(e.pos, { line: 3, col: 7 });
  const f = ScenarioError.at('b', { line: 1, col: 2 }, 'm');
  assert.deepEqual([f.file, f.line, f.col, f.message], ['b', 1, 2, 'm']);
});

test('editDistance counts a swap of neighbours as one edit', () => {
  assert.equal(editDistance('write', 'write'), 0);
  assert.equal(editDistance('wirte', 'write'), 1);
  assert.equal(editDistance('mmap', 'munmap'), 2);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('abc', ''), 3);
});

test('closest suggests only near words', () => {
  assert.equal(closest('wirte', ['mmap', 'write', 'read']), 'write');
  assert.equal(closest('zzzzzz', ['mmap', 'write', 'read']), null);
  assert.equal(closest('rx', ['rw', 'ro']), 'rw');
  assert.equal(unknownWord('operation', 'wirte', ['read', 'write']), "unknown operation 'wirte': did you mean 'write'? (expected one of: read, write)");
  assert.equal(unknownWord('operation', 'qqq', ['read', 'write']), "unknown operation 'qqq' (expected one of: read, write)");
});
