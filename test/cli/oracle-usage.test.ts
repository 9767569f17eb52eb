// `cowlab oracle --kernel NAME` with a name no profile has: the message every command gives
// (ProfileRegistry.unknown, with its did-you-mean), refused before the live kernel is touched.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oracleCommand } from '../../src/cli/commands/oracle.js';
import { UsageError } from '../../src/cli/errors.js';

test('oracle --kernel with a misspelt profile: a usage error with the did-you-mean of the other commands', () => {
  const io = { out: (): void => assert.fail('nothing on stdout'), err: (): void => assert.fail('nothing on stderr') };
  assert.throws(() => oracleCommand(['--kernel', 'v5.9rc4'], io), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /^cowlab oracle: --kernel: unknown profile 'v5\.9rc4': did you mean 'v5\.9-rc4'\? \(known: v5\.7, /);
    return true;
  });
});

test('oracle --kernel takes a what-if name as run does; a switch the probe sets is refused, saying why', () => {
  // A what-if name was 'unknown profile' (export and oracle took only registry names). Accepted, the
  // command goes on to the files (a missing one here: nothing reaches the live kernel).
  const io = { out: (): void => assert.fail('nothing on stdout'), err: (): void => assert.fail('nothing on stderr') };
  assert.throws(() => oracleCommand(['--kernel', 'v5.9+forkEarlyCow=false', '/nonexistent/cowlab-hC'], io), /^Error: \/nonexistent\/cowlab-hC: no such file or directory$/);
  assert.throws(() => oracleCommand(['--kernel', 'v6+mmForbidsZeropage=true', '/nonexistent/cowlab-hC'], io), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /^cowlab oracle: --kernel: 'v6\+mmForbidsZeropage=true' sets mmForbidsZeropage: the probe sets mmForbidsZeropage, thpUseZeroPage, thpSplitZeropage from what the live kernel does/);
    assert.match(e.message, /--zero-page yes\|no forces the zero page/);
    return true;
  });
  assert.throws(() => oracleCommand(['--kernel', 'v6+forkEarlyCow=maybe', '/nonexistent/cowlab-hC'], io), /cowlab oracle: --kernel: switch forkEarlyCow: 'maybe' is not one of true, false/);
  assert.throws(() => oracleCommand(['--kernel', 'v6+thpSplitZeropage=false', '--random', '3'], io), /sets thpSplitZeropage/);
});

test('oracle --help is the help whatever else is given (a bad --zero-page was checked first: exit 2)', () => {
  const out: string[] = [];
  const code = oracleCommand(['--zero-page', 'maybe', '--help'], { out: (t) => out.push(t), err: (): void => assert.fail('nothing on stderr') });
  assert.equal(code, 0);
  assert.match(out.join(''), /^usage: cowlab oracle FILE\|DIR\.\.\./);
});
