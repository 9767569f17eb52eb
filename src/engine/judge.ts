// The verdict of a run against the scenario's `outcomes` for its profile.

import type { Expected } from '../scenario/ast.js';
import type { RunStatus, Violation } from './result.js';

export function judge(status: RunStatus, violations: Violation[], expected: Expected | null): { verdict: 'pass' | 'fail'; reason: string } {
  const kinds = [...new Set(violations.map((v) => v.kind))];
  const got = status === 'n/a' ? 'n/a' : kinds.length ? kinds.join(', ') : 'ok';
  if (expected === null) {
    if (status === 'violation') return { verdict: 'fail', reason: `violations: ${got} (no outcomes given)` };
    return { verdict: 'pass', reason: status === 'n/a' ? 'n/a (no outcomes given)' : 'ok (no outcomes given)' };
  }
  switch (expected.kind) {
    case 'ok':
      return status === 'ok' ? { verdict: 'pass', reason: 'ok, as expected' } : { verdict: 'fail', reason: `expected ok, got ${got}` };
    case 'n/a':
      return status === 'n/a' ? { verdict: 'pass', reason: 'n/a, as expected' } : { verdict: 'fail', reason: `expected n/a, got ${got}` };
    case 'fail':
      return status === 'violation' ? { verdict: 'pass', reason: `fails as expected (${got})` } : { verdict: 'fail', reason: `expected a violation, got ${got}` };
    case 'violations': {
      if (status !== 'violation') return { verdict: 'fail', reason: `expected ${expected.kinds.join(', ')}, got ${got}` };
      const missing = expected.kinds.filter((kd) => !kinds.includes(kd));
      return missing.length === 0
        ? { verdict: 'pass', reason: `fails as expected (${got})` }
        : { verdict: 'fail', reason: `expected ${expected.kinds.join(', ')}; missing ${missing.join(', ')} (got ${got})` };
    }
  }
}
