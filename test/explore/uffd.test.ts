// The explorer with the userfaultfd write-protect operations (`--ops uffd`): clean on v6 to the
// default depth, and on each older kernel it finds by itself the bypasses the kernel history
// says it has: fork's early COW copy mapped writable without the bit (until 8f34f1eac382: 5.14, 5.10.53),
// a registered mapping without anon_vma not copied at fork, so a child monitored through the
// fork event loses the protection of its zero-page PTEs (until c56d1b62cce8, 5.19), and seed
// 001's FOLL_PIN break-COW reusing a protected page writable (v5.9-rc4+pin-cow). Each mechanism
// is isolated with --set: with the fix switched on, that finding goes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UFFD_EXPLORE_OPS } from '../../src/explore/ops.js';
import { input, replay, run, type Found } from './helpers.js';

const BYPASS = ['uffd-wp-bypass'];

function search(kernel: string, sets: string[] = []): Found {
  return run(input(kernel, { ops: UFFD_EXPLORE_OPS, pages: 1, kinds: BYPASS, sets }));
}

function steps(f: Found): string {
  return f.out.result.counterexamples.map((c) => c.steps.join('\n  ')).join('\n--\n');
}

/** The first counterexample's file replayed on `kernel`: its violation kinds there. */
function kindsOn(f: Found, kernel: string, sets: string[] = []): string[] {
  return [...new Set(replay(f.files[0]!, kernel, sets).r.violations.map((v) => v.kind))];
}

test('v6 with the uffd operations: every sequence of up to 6 operations is free of uffd-wp bypasses', () => {
  const f = search('v6');
  assert.equal(f.out.status, 'ok', steps(f));
  assert.equal(f.out.result.counterexamples.length, 0);
  assert.ok(f.out.result.stats.states > 1000, 'the search went somewhere');
});

test('v5.9 (early COW without the bit): the child of a monitored process writes its copy of a pinned page unseen', () => {
  // The zero-page hole (5.19) closed, so only the fork-copy one (5.14) is left.
  const f = search('v5.9', ['uffdWpShmem=true']);
  assert.equal(f.out.status, 'violation');
  const s = f.out.result.counterexamples[0]!.steps;
  assert.ok(s.some((x) => /pin buf\[0\] as \w+ rw/.test(x)), `a R/W pin makes the page maybe-pinned:\n  ${s.join('\n  ')}`);
  assert.ok(s.some((x) => / fork-event on$/.test(x)) && s.some((x) => / fork Q$/.test(x)), s.join('\n'));
  assert.ok(/^Q (write|pin)/.test(s[s.length - 1]!), s.join('\n'));
  assert.deepEqual(kindsOn(f, 'v5.9', ['uffdWpShmem=true']), BYPASS);
  // 8f34f1eac382: the copy keeps the bit, write-protected.
  assert.deepEqual(kindsOn(f, 'v5.9', ['uffdWpShmem=true', 'uffdWpForkVma=dst-vma']), []);
  const fixed = search('v5.9', ['uffdWpShmem=true', 'uffdWpForkVma=dst-vma']);
  assert.equal(fixed.out.status, 'ok', steps(fixed));
});

test('v5.7 to v5.18: a registered mapping holding only the zero page is not copied at fork; the monitored child writes unseen', () => {
  for (const k of ['v5.7', 'v5.8', 'v5.9-rc4', 'v5.14', 'v5.18', 'cowpt-rfc']) {
    const f = search(k, ['uffdWpForkVma=dst-vma']);
    assert.equal(f.out.status, 'violation', k);
    const s = f.out.result.counterexamples[0]!.steps;
    assert.ok(!s.some((x) => / write buf\[0\]/.test(x) && x.startsWith('P ')), `${k}: P never writes (no anon_vma):\n  ${s.join('\n  ')}`);
    assert.ok(s.some((x) => / fork Q$/.test(x)), `${k}:\n  ${s.join('\n  ')}`);
    // c56d1b62cce8 (vma_needs_copy for a registered child): the protection is copied.
    assert.deepEqual(kindsOn(f, k, ['uffdWpForkVma=dst-vma', 'uffdWpShmem=true']), [], k);
  }
});

test('v5.9-rc4+pin-cow: seed 001\'s break-COW for a R/O pin reuses a protected page writable; the next write is unseen', () => {
  const f = search('v5.9-rc4+pin-cow', ['uffdWpShmem=true', 'uffdWpForkVma=dst-vma']);
  assert.equal(f.out.status, 'violation');
  const s = f.out.result.counterexamples[0]!.steps;
  assert.ok(s.some((x) => /pin buf\[0\] as \w+ ro/.test(x)), s.join('\n'));
  assert.ok(!s.some((x) => / fork /.test(x)), `no fork is needed:\n  ${s.join('\n  ')}`);
  // Without seed 001's FOLL_PIN break-COW (v5.9-rc4), the same steps reach the monitor.
  assert.deepEqual(kindsOn(f, 'v5.9-rc4+pin-cow', ['uffdWpShmem=true', 'uffdWpForkVma=dst-vma', 'gupCowBreak=none']).filter((k) => k === 'uffd-wp-bypass'), []);
});
