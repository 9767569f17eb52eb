// `cowlab serve` on the command line: its usage errors (exit 2) and its help.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { main } from '../../src/cli/main.js';

function run(argv: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = main(argv, { out: (t) => (out += t + '\n'), err: (t) => (err += t + '\n') });
  if (typeof code !== 'number') throw new Error('cowlab serve answered a promise');
  return { code, out, err };
}

describe('cowlab serve: command line', () => {
  it('prints its help', () => {
    const r = run(['serve', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.out, /usage: cowlab serve \[PATH\] \[--port N\]/);
    assert.match(run(['help', 'serve']).out, /127\.0\.0\.1/);
    assert.match(run(['--help']).out, /serve \[PATH\]/);
  });

  it('refuses bad input with exit status 2', () => {
    for (const argv of [['serve', '--port', 'eighty'], ['serve', '--port', '70000'], ['serve', 'no/such/dir'], ['serve', 'a', 'b'], ['serve', 'package.json'], ['serve', '--bogus']]) {
      const r = run(argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, /cowlab serve/, argv.join(' '));
    }
  });
});
