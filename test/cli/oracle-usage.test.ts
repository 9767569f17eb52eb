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
