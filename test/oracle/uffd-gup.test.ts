// A FOLL_WRITE GUP on a page the userfaultfd monitor protected, on the live kernel. io_uring's
// buffer registration pins with pin_user_pages_fast(FOLL_WRITE | FOLL_LONGTERM): gup-fast refuses
// the write-protected PTE and the fallback may wait for the monitor (6.2 on: FOLL_UNLOCKABLE from
// 6.3), so the kernel reports one userfault and the pin is taken, as the model says for a `fast`
// pin. A slow `pin` (pin_user_pages: no FAULT_FLAG_ALLOW_RETRY) is EFAULT in the model, which the
// ring cannot reproduce: the oracle skips it with the reason and compares the rest.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { oracleScenario } from '../../src/oracle/oracle.js';
import { openLive, steps, v6 } from './helpers.js';

const live = openLive();
after(() => live.session?.close());

const PROTECTED = ['P mmap a 2 rw private', 'P write a = 1', 'P uffd register a wp', 'P uffd protect a[0]'];

test('a long-term fast pin of a protected page: the monitor answers one userfault, the pin is taken, as the model says', (t) => {
  if (!live.session) return t.skip(live.reason);
  if (!live.session.facilities.uffdWp) return t.skip(live.session.facilities.uffdWhy ?? 'no userfaultfd write-protect here');
  const sc = steps('uffd-pin-fast', ...PROTECTED, 'P pin a as h rw longterm fast', 'expect stat uffd_faults.P == 1',
    'expect P a[0] not-uffd-wp', 'device write h[0] = 5', 'P read a[0] expect 5', 'P unpin h');
  const r = oracleScenario(live.session, sc, v6());
  if (r.status === 'skipped') return t.skip(r.skip ?? '');
  const bad = r.steps.flatMap((s) => s.rows.filter((x) => x.verdict === 'disagree').map((x) => `line ${s.line} ${s.text}: model ${x.model}, kernel ${x.kernel}`));
  assert.deepEqual(bad, []);
  assert.equal(r.status, 'agree');
  const faults = r.steps.flatMap((s) => s.rows).find((x) => x.what.includes('uffd_faults'));
  assert.deepEqual([faults?.model, faults?.kernel], ['1', '1'], 'one userfault on both sides');
});

test('a slow pin of a protected page is not replayed through io_uring (whose fallback may wait for the monitor): skipped with the reason (counters are not compared after it: what the model\'s pin faulted in before failing is not replayed), nothing disagrees', (t) => {
  if (!live.session) return t.skip(live.reason);
  if (!live.session.facilities.uffdWp) return t.skip(live.session.facilities.uffdWhy ?? 'no userfaultfd write-protect here');
  const sc = steps('uffd-pin-slow', ...PROTECTED, 'P pin a as h rw longterm', 'expect stat uffd_faults.P == 0',
    'expect P a[0] uffd-wp', 'P pin a[1] as h2 rw longterm', 'device write h2[0] = 6', 'P read a[1] expect 6', 'P write a[0] = 2',
    'expect stat uffd_faults.P == 1');
  const r = oracleScenario(live.session, sc, v6());
  if (r.status === 'skipped') return t.skip(r.skip ?? '');
  const bad = r.steps.flatMap((s) => s.rows.filter((x) => x.verdict === 'disagree').map((x) => `line ${s.line} ${s.text}: model ${x.model}, kernel ${x.kernel}`));
  assert.deepEqual(bad, []);
  const pin = r.steps.find((s) => s.text === 'P pin a as h rw longterm')!;
  assert.match(pin.skip ?? pin.rows.map((x) => x.reason ?? '').join(' '), /FAULT_FLAG_ALLOW_RETRY/, 'the slow pin over the protected page is skipped, with why');
  const other = r.steps.find((s) => s.text === 'P pin a[1] as h2 rw longterm')!;
  assert.equal(other.skip, null, 'a slow pin of an unprotected page is replayed');
  // The counters are not compared after it, and the note says why truthfully: the model holds no
  // h (its pin failed), only what the pin did before failing is unknown to this run.
  const stat = r.steps.find((s) => s.text === 'expect stat uffd_faults.P == 0')!.rows[0]!;
  assert.equal(stat.verdict, 'skipped');
  assert.match(stat.reason ?? '', /the model's GUP for h \(line \d+\) failed with EFAULT \(no handle on either side\)/);
  assert.doesNotMatch(stat.reason ?? '', /model holds/);
  // The page stays protected on both sides (the model's pin failed; the kernel's was not made).
  const bit = r.steps.find((s) => s.text === 'expect P a[0] uffd-wp')!.rows[0]!;
  assert.deepEqual([bit.model, bit.kernel, bit.verdict], ['uffd-wp', 'uffd-wp', 'agree']);
  assert.equal(r.status, 'agree');
});
