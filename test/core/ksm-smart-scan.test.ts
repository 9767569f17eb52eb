// KSM's smart scan (ksmSmartScan, 6.7+: should_skip_rmap_item()): ksmd leaves a page that is not
// a KSM page out of some passes once its rmap item has been met four times, by the item's age and
// remaining skips; a KSM page is never left out and does not age; the state goes with the item.
// With the switch off (before 6.7, or smart_scan 0) every page is compared in every pass.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OK, PG_KSM } from '../../src/core/constants.js';
import { getUserPages, releaseHandle } from '../../src/core/gup.js';
import type { Kernel } from '../../src/core/kernel.js';
import { KSM_AGE_CAP, ksmAgeOf, ksmMerge, ksmSkipNext, ksmSkips, ksmSkipState, ksmSkipsOf } from '../../src/core/ksm.js';
import type { Mm } from '../../src/core/mm.js';
import { doMadvise } from '../../src/core/mmap.js';
import { unmapRegion } from '../../src/core/zap.js';
import { runScenario } from '../../src/engine/run.js';
import { canonicalWords } from '../../src/explore/canonical.js';
import { kindsOf, parse, profileOf, runnerAfter } from '../explore/helpers.js';
import { assertConsistent, kernel, presentPte, proc, writeOk } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const scenario = (name: string): string => readFileSync(join(ROOT, 'scenarios/basic', name), 'utf8');

/**
 * The kernel's rule written out again independently, with its u8 age counting to 255: for each
 * meet of the item (of a page that is not a KSM page), whether the page is left out.
 */
function kernelSkips(meets: number): boolean[] {
  let age = 0;
  let remaining = 0;
  const out: boolean[] = [];
  for (let i = 0; i < meets; i++) {
    const old = age;
    if (age !== 255) age++;
    if (old < 3) out.push(false);
    else if (remaining === 0) {
      remaining = old <= 3 ? 1 : old <= 5 ? 2 : old <= 8 ? 4 : 8;
      out.push(false);
    } else {
      remaining--;
      out.push(true);
    }
  }
  return out;
}

test('smart scan: the skip pattern of one item, met again and again, is the kernel\'s (the age kept up to 9 only)', () => {
  const want = kernelSkips(400);
  // The first meets by hand: never in the first four, then 1 skipped, 2, 4, then 8 of every 9.
  const skippedAt = want.slice(0, 40).flatMap((s, i) => (s ? [i + 1] : []));
  assert.deepEqual(skippedAt, [5, 7, 8, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 31, 33, 34, 35, 36, 37, 38, 39, 40]);
  let state = 0;
  const got: boolean[] = [];
  for (let i = 0; i < 400; i++) {
    got.push(ksmSkips(state));
    state = ksmSkipNext(state);
    assert.ok(ksmAgeOf(state) <= KSM_AGE_CAP && ksmSkipsOf(state) <= 8, `meet ${i + 1}: state in range`);
  }
  assert.deepEqual(got, want);
  assert.equal(ksmAgeOf(ksmSkipState(KSM_AGE_CAP, 3)), KSM_AGE_CAP);
});

const PIN = { pin: true, write: true, longterm: true, fast: false, kind: 'pin' } as const;

function lonePage(name: string, sets: string[] = []): { k: Kernel; mm: Mm; a: number } {
  const k = kernel(name, { sets });
  const { mm, vpn: a } = proc(k, 3);
  assert.equal(doMadvise(k, mm, a, a + 3, 'mergeable'), OK);
  writeOk(k, mm, a, 7);
  return { k, mm, a };
}

test('smart scan: a page met pass after pass ages (v6); the switch off (v6.2, v6+ksmSmartScan=false, smart_scan 0) keeps no age', () => {
  const { k, mm, a } = lonePage('v6');
  assert.equal(ksmMerge(k), 0);
  assert.equal(ksmAgeOf(mm.ksmAges?.get(a) ?? 0), KSM_AGE_CAP, 'ksm merge runs until the ages stop');
  for (const [name, sets, config] of [['v6.2', [], true], ['v6', ['ksmSmartScan=false'], true], ['v6', [], false]] as const) {
    const o = lonePage(name, [...sets]);
    o.k.config.ksmSmartScan = config;
    assert.equal(ksmMerge(o.k), 0);
    assert.equal(o.mm.ksmAges, null, `${name} ${sets.join()} smart_scan=${config}`);
    assert.equal(o.mm.ksmChecksums?.get(o.a), 7, 'the checksum is remembered as before');
  }
});

test('smart scan: the pinned page ksmd met often is left out, so two pages met later merge with each other; compared in every pass it refuses both', () => {
  for (const [name, sets, merges] of [['v6', [], true], ['6.12', [], true], ['v6.15', [], true], ['v6', ['ksmSmartScan=false'], false], ['6.6', [], false], ['v6.2', [], false]] as const) {
    const { k, mm, a } = lonePage(name, [...sets]);
    const r = getUserPages(k, mm, a, a + 1, PIN);
    assert.equal(r.err, OK);
    assert.equal(ksmMerge(k), 0);
    writeOk(k, mm, a + 1, 7);
    writeOk(k, mm, a + 2, 7);
    assert.equal(ksmMerge(k), merges ? 1 : 0, `${name} ${sets.join()}`);
    const p1 = presentPte(k, mm, a + 1).pfn;
    const p2 = presentPte(k, mm, a + 2).pfn;
    assert.equal(p1 === p2, merges, `${name}: a[1] and a[2] ${merges ? 'share' : 'do not share'} a frame`);
    if (merges) {
      assert.ok(k.frames.flags[p1]! & PG_KSM);
      // The KSM page's items do not age any more: the ages stay where the merge left them.
      const before = [mm.ksmAges!.get(a + 1), mm.ksmAges!.get(a + 2)];
      assert.equal(ksmMerge(k), 0);
      assert.deepEqual([mm.ksmAges!.get(a + 1), mm.ksmAges!.get(a + 2)], before);
      assert.ok(ksmAgeOf(before[0]!) < KSM_AGE_CAP, 'a KSM page stops ageing');
    }
    releaseHandle(k, r.handle!);
    assertConsistent(k);
  }
});

test('smart scan: an item freed (its page unmapped) takes its age with it; a new page there starts again at 0', () => {
  const { k, mm, a } = lonePage('v6');
  writeOk(k, mm, a + 1, 8);
  ksmMerge(k);
  assert.equal(ksmAgeOf(mm.ksmAges!.get(a + 1)!), KSM_AGE_CAP);
  assert.equal(unmapRegion(k, mm, a + 1, a + 2), OK);
  ksmMerge(k);
  assert.equal(mm.ksmAges!.has(a + 1), false, 'get_next_rmap_item() freed the item passed with no page');
  assert.equal(mm.ksmChecksums!.has(a + 1), false);
  assert.equal(ksmAgeOf(mm.ksmAges!.get(a)!), KSM_AGE_CAP, 'a[0] keeps its age');
});

test('smart scan: the scenario pair on every built-in profile: the blocker is passed from 6.7 on, never with smart_scan 0', () => {
  const on = parse(scenario('ksm-smart-scan-skips-blocker.scn.yaml'));
  const off = parse(scenario('ksm-smart-scan-off-blocker-holds.scn.yaml'));
  for (const name of ['v5.7', 'v5.9', 'v6.2', '6.6', '6.12', 'v6.15', 'v6']) {
    const smart = profileOf(name).ksmSmartScan;
    assert.deepEqual(kindsOf(runScenario(on, profileOf(name))), smart ? [] : ['expect'], name);
    assert.deepEqual(kindsOf(runScenario(off, profileOf(name))), ['expect'], `${name}, smart_scan 0`);
  }
  assert.equal(profileOf('6.6').ksmSmartScan, false);
  assert.equal(profileOf('6.12').ksmSmartScan, true);
});

test('smart scan off changes nothing: every KSM story runs alike on v6+ksmSmartScan=false and on v6 with config.ksm_smart_scan 0', () => {
  const files = ['ksm-leftover-never-merged', 'ksm-checksum-first-full-ksm-page', 'ksm-checksum-delay-revives-forked-ksm-page', 'ksm-chain-first-dup-with-room', 'ksm-stable-search-counts-own-item', 'ksm-smart-scan-skips-blocker'];
  for (const f of files) {
    const text = scenario(`${f}.scn.yaml`);
    const sc = parse(text);
    const a = runScenario(sc, profileOf('v6', ['ksmSmartScan=false']));
    const b = runScenario({ ...sc, config: { ...sc.config, ksmSmartScan: 0 } }, profileOf('v6'));
    assert.deepEqual(kindsOf(a), kindsOf(b), f);
    assert.deepEqual(a.steps.map((s) => s.summary), b.steps.map((s) => s.summary), f);
  }
});

test('the explorer\'s key holds each item\'s smart scan state: a state that differs only there is another state', () => {
  const r = runnerAfter(['P mmap a 1', 'P madvise a mergeable', 'P write a = 7', 'ksm merge']);
  const mm = r.k.mms.find((m) => m.ksmAges !== null)!;
  const other = r.clone();
  const omm = other.k.mms.find((m) => m.id === mm.id)!;
  omm.ksmAges = new Map([...mm.ksmAges!].map(([v, st]) => [v, ksmSkipState(ksmAgeOf(st), (ksmSkipsOf(st) + 1) % 9)]));
  assert.notDeepEqual(canonicalWords(other), canonicalWords(r));
  assert.deepEqual(canonicalWords(r.clone()), canonicalWords(r), 'a clone has the same key');
});
