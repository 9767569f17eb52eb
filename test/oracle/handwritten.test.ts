// Scenarios written the way a new user would write them (not generated, not from the catalogue),
// each mixing several operations: every comparable observation agrees with v6.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { oracleScenario } from '../../src/oracle/oracle.js';
import { assumeFacts } from '../../src/oracle/probed.js';
import { openLive, steps, v6 } from './helpers.js';

const live = openLive();
after(() => live.session?.close());

const SCENARIOS: Record<string, string[]> = {
  'dma-buffer-fork-child-writes': [
    'P mmap buf 4 rw private', 'P write buf = 10', 'P pin buf[1..2] as dma', 'P fork Q',
    'expect P buf[1] other-frame Q buf[1]', 'expect P buf[0] same-frame Q buf[0]', 'Q write buf = 20',
    'device write dma[0] = 30', 'P read buf[1] expect 30', 'Q read buf[1] expect 20', 'device read dma[1] expect 10',
    'expect P buf[1] anon-exclusive', 'expect stat rss.P == 4', 'expect stat rss.Q == 4', 'P unpin dma', 'P write buf[1] = 40',
    'expect stat minflt.P == 4',
  ],
  'zero-page-everywhere': [
    'P mmap z 3 ro private', 'P read z[0] expect 0', 'P read z[1] expect 0', 'expect P z[0] same-frame P z[1]',
    'expect stat rss.P == 0', 'P fork Q', 'Q read z[2] expect 0', 'expect Q z[2] same-frame P z[0]', 'P mprotect z rw',
    'P write z[0] = 1', 'expect P z[0] other-frame Q z[0]', 'expect P z[0] anon-exclusive', 'Q write z[0] = 2', 'expect stat minflt.Q == 1',
  ],
  'pipe-after-dontneed': [
    'P mmap a 2 rw private', 'P write a = 5', 'P vmsplice a as pipe', 'P madvise a dontneed', 'P read a[0] expect 0',
    'P read pipe[0] expect 5', 'P write a[0] = 6', 'P read pipe[0] expect 5', 'P read pipe[1] expect 5', 'P put pipe',
    'expect stat frames_used == 1',
  ],
  'pin-refused-then-taken': [
    'P mmap a 3 rw private', 'P write a = 1', 'P mprotect a[2] ro', 'P pin a as h', 'P munmap a[0]', 'P pin a[0..1] as h2',
    'P pin a[1] as h3', 'device read h3[0] expect 1', 'P fork Q', 'Q write a[1] = 9', 'P read a[1] expect 1', 'device read h3[0] expect 1',
  ],
  'big-populate-fork': [
    'P mmap big 2048 rw private populate', 'expect stat rss.P == 2048', 'expect stat minflt.P == 2048',
    'expect stat PageTables_kB == 28', 'P fork Q', 'expect stat PageTables_kB == 56', 'Q write big[100..199] = 7',
    'expect stat rss.Q == 2048', 'expect stat AnonPages_kB == 8592', 'P exit', 'Q write big = 8', 'expect stat minflt.Q == 2048',
  ],
  'wipe-and-dontfork-with-handles': [
    'P mmap w 2 rw private', 'P mmap d 2 rw private', 'P write w = 1', 'P write d = 2', 'P madvise w wipeonfork',
    'P madvise d dontfork', 'P vmsplice d as pd', 'P pin w[1] as pw', 'P fork Q', 'Q read w[1] expect 0',
    'Q read d[0] expect fault', 'Q write w[1] = 3', 'device read pw[0] expect 1', 'P read pd[1] expect 2', 'expect stat rss.Q == 1',
  ],
  'shared-memory-pinned-and-spliced': [
    'P mmap s 3 rw shared', 'P write s = 1', 'P pin s[0..1] as h', 'P vmsplice s as p', 'P fork Q', 'Q write s[0] = 2',
    'device read h[0] expect 2', 'P read p[0] expect 2', 'device write h[1] = 5', 'Q read s[1] expect 5',
    'expect P s[1] same-frame Q s[1]', 'P unpin h', 'P put p',
  ],
  'exit-keeps-the-pin': [
    'P mmap a 1 rw private', 'P write a = 1', 'P fork Q', 'Q pin a[0] as h', 'expect P a[0] other-frame Q a[0]',
    'Q write a[0] = 2', 'Q exit', 'device read h[0] expect 2', 'device write h[0] = 3', 'P read a[0] expect 1',
    'expect P a[0] mapped-once', 'P write a[0] = 4', 'expect stat minflt.P == 2',
  ],
};

for (const [name, lines] of Object.entries(SCENARIOS)) {
  test(name, (t) => {
    if (!live.session) {
      t.skip(live.reason);
      return;
    }
    const r = oracleScenario(live.session, steps(name, ...lines), v6());
    if (r.status === 'skipped') {
      // Only a story of a facility this kernel lacks is skipped (the zero page, here).
      assert.equal(live.session.facilities.zeroPage, false, `skipped on a kernel with the zero page: ${r.skip}`);
      t.skip(r.skip ?? '');
      return;
    }
    const bad = r.steps.flatMap((s) => s.rows.filter((x) => x.verdict === 'disagree').map((x) => `line ${s.line} ${s.text}: model ${x.model}, kernel ${x.kernel}`));
    assert.deepEqual(bad, []);
    assert.equal(r.status, 'agree');
    assert.ok(r.counts.compared >= lines.length / 2, `only ${r.counts.compared} observations compared`);
  });
}

// The probe is load-bearing: with the probe's zero-page answer forced the other way (the model
// of the other kind of machine), reads of untouched memory disagree with this kernel; with the
// probed answer they agree. Whichever kind this machine is, both kinds are exercised.
test('the model the probe builds agrees; the other kind of machine\'s model disagrees', (t) => {
  if (!live.session) {
    t.skip(live.reason);
    return;
  }
  // Expectations that hold on both kinds; the counters they observe differ between them.
  const sc = steps('read-untouched', 'P mmap a 2 rw private', 'P read a[0] expect 0', 'P read a[1] expect 0',
    'expect stat rss.P >= 0', 'P fork Q', 'Q read a[1] expect 0', 'expect stat frames_used >= 0');
  const f = live.session.facilities;
  const probed = oracleScenario(live.session, sc, v6());
  assert.equal(probed.status, 'agree');
  // (The huge zero page is probed on its own: a machine without it adds thpUseZeroPage=false; with
  // the 4 KiB zero page forced away, one that has it adds thpUseZeroPage=true.)
  const zeroPart = (name: string): string => name.replace(/\+thpUseZeroPage=(true|false)/, '');
  assert.equal(zeroPart(probed.profile), f.zeroPage ? 'v6' : 'v6+mmForbidsZeropage=true');
  const was = f.zeroPage;
  try {
    assumeFacts(f, { zeroPage: !was });
    const forced = oracleScenario(live.session, sc, v6());
    assert.equal(zeroPart(forced.profile), was ? 'v6+mmForbidsZeropage=true' : 'v6');
    assert.equal(forced.status, 'disagree');
    const rss = forced.steps.flatMap((s) => s.rows).find((r) => r.what === 'rss.P')!;
    assert.deepEqual([rss.model, rss.kernel], was ? ['2', '0'] : ['0', '2']);
  } finally {
    f.zeroPage = was;
    f.forced = [];
  }
});
