// The long-term kernels (5.4, 5.10, 5.15, 6.1, 6.6, 6.12): the names resolve wherever a profile
// name is taken, each one's switches are those of its series (its mainline release plus the
// stable backports docs/profiles.md cites), `compare` leaves them out of its default matrix and
// shows them with `--kernels lts`, and stories whose outcome differs between two series differ
// for the documented reason (turning the one switch back makes the difference go away).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Profile } from '../../src/core/profile.js';
import { runScenario } from '../../src/engine/run.js';
import { LTS_PROFILES } from '../../src/profiles/builtin.js';
import { loadProfileFile } from '../../src/profiles/file.js';
import { builtinProfile, ProfileRegistry, resolveKernel, SWITCH_NAMES, withOverrides } from '../../src/profiles/resolve.js';
import { parseScenario, type Scenario } from '../../src/scenario/index.js';
import { cli, ROOT, tempFiles } from '../cli/helpers.js';

const NAMES = ['5.4', '5.10', '5.15', '6.1', '6.6', '6.12'];

function scenarioFile(path: string): Scenario {
  const r = parseScenario(readFileSync(new URL(path, `file://${ROOT}`), 'utf8'), path);
  if (!r.ok) throw new Error(r.errors.map((e) => e.format()).join('; '));
  return r.scenario;
}

function scenarioText(text: string): Scenario {
  const r = parseScenario(text, 'lts.scn.yaml');
  if (!r.ok) throw new Error(r.errors.map((e) => e.format()).join('; '));
  return r.scenario;
}

/** The violation kinds of a run (sorted), 'ok', or 'n/a'. */
function outcome(sc: Scenario, kernel: string, sets: string[] = []): string {
  const { profile } = resolveKernel(new ProfileRegistry(), kernel, sets);
  const r = runScenario(sc, profile, { trace: false, maxEventsPerStep: 0 });
  if (r.status === 'n/a' || r.status === 'ok') return r.status;
  return [...new Set(r.violations.map((v) => v.kind))].sort().join('+');
}

function lts(name: string): Profile {
  const p = builtinProfile(name);
  assert.ok(p, `no profile ${name}`);
  return p;
}

/** The switches on which two profiles differ. */
function differences(a: Profile, b: Profile): string[] {
  return SWITCH_NAMES.filter((s) => a[s] !== b[s]);
}

test('the six long-term names resolve, in the order of the releases', () => {
  assert.deepEqual(LTS_PROFILES.map((p) => p.name), NAMES);
  const reg = new ProfileRegistry();
  for (const n of NAMES) {
    assert.ok(reg.has(n), n);
    assert.equal(resolveKernel(reg, n).profile.name, n);
    assert.equal(builtinProfile(n)?.name, n);
  }
  assert.deepEqual(reg.longTermNames(), NAMES);
  for (const n of NAMES) assert.ok(!reg.matrixNames().includes(n), `${n} is not a default column`);
  // A what-if on a long-term kernel: the '.' of the name does not confuse the '+' split.
  const w = resolveKernel(reg, '6.1+pinSkipsZeroPage=false');
  assert.equal(w.base.name, '6.1');
  assert.equal(w.profile.pinSkipsZeroPage, false);
  assert.equal(w.profile.unshareRoPin, 'anon');
});

test('each long-term kernel has the switches of its series', () => {
  // 5.4.y: 5.4's mapcount reuse and reuse_ksm_page (5.1) + 17839856fd58 (5.4.47): v5.8 exactly.
  const k54 = lts('5.4');
  assert.equal(k54.wpReuse, 'mapcount');
  assert.equal(k54.ksmReuse, true);
  assert.equal(k54.gupCowBreak, 'get-and-pin');
  assert.equal(k54.gupFastWritableOnly, true);
  assert.equal(k54.forkEarlyCow, false, 'has_pinned and early COW are 5.9');
  // ... except for THPs: 3917c80280c9 (5.8, split instead of copying the whole THP) is not in 5.4.y,
  // and userfaultfd write-protect mode, which is 5.7 (63b2d4174c4a) and was never backported.
  assert.equal(k54.thpWpCopy, 'huge');
  assert.equal(k54.uffdWp, false);
  assert.deepEqual(differences(k54, builtinProfile('v5.8')!).sort(), ['hugeZeroWp', 'thpWpCopy', 'uffdWp']);

  // 5.10.y: 5.9's refcount reuse and early COW + 5.11's three fixes backported (5.10.4, 5.10.9)
  // + 5.14's uffd-wp fork fix (5.10.53).
  const k510 = lts('5.10');
  assert.equal(k510.wpReuse, 'pagecount');
  assert.equal(k510.forkEarlyCow, true, '70e806e4e645 is in 5.9');
  assert.equal(k510.writeProtectSeq, true, '57efa1fe5957 is in 5.10.4');
  assert.equal(k510.clearRefsSkipPinned, true, '9348b73c2e1b is in 5.10.9');
  assert.equal(k510.reclaimSkipsPinned, true, 'feb889fb40fa is in 5.10.9');
  assert.equal(k510.deviceExclusive, 'none', 'device-exclusive entries are 5.14');
  assert.equal(k510.swapinReuse, 'reuse_swap_page', 'COW fixes part 1 (5.18) not backported');
  assert.equal(k510.gupCowBreak, 'none');
  assert.equal(k510.uffdWpForkVma, 'dst-vma', '8f34f1eac382 is in 5.10.53');
  assert.deepEqual(differences(k510, builtinProfile('v5.9')!).sort(), ['clearRefsSkipPinned', 'reclaimSkipsPinned', 'uffdWpForkVma', 'writeProtectSeq']);

  // 5.15.y: v5.14 exactly (no backport changes a switch).
  const k515 = lts('5.15');
  assert.equal(k515.deviceExclusive, 'v5.14');
  assert.equal(k515.deviceExclusiveHeld, 'page', 'the folio conversion of make_device_exclusive_range() is not in 5.15.y');
  assert.equal(k515.anonExclusive, false, 'COW fixes part 2 (5.19) not backported');
  assert.equal(k515.pinSkipsZeroPage, false);
  assert.deepEqual(differences(k515, builtinProfile('v5.14')!), []);

  // 6.1.y: 5.19's PG_anon_exclusive + 6.0's mprotect + c8070b787519 (6.1.130); not 6.2's unsharing.
  const k61 = lts('6.1');
  assert.equal(k61.anonExclusive, true);
  assert.equal(k61.unshareRoPin, 'anon', '8d6a0ac09a16 and 84209e87c696 (6.2) not backported');
  assert.equal(k61.mprotectWritable, true, '64fe24a3e05e is in 6.0');
  assert.equal(k61.mprotectWritableClean, false, 'can_change_pte_writable() wants pte_dirty() in 6.1.166 (clean PTEs only from 6.2)');
  assert.equal(k61.pinSkipsZeroPage, true, 'c8070b787519 is in 6.1.130');
  assert.equal(k61.deviceExclusive, 'v5.14');
  assert.equal(k61.deviceExclusiveHeld, 'folio');
  assert.equal(k61.madvCollapse, 'writable-pte', 'MADV_COLLAPSE is 6.1 (7d8faaf15545)');
  assert.equal(k61.uffdWpWritenotify, true, '51d3d5eb74ff (6.2) is in 6.1.8');
  // 474098edac26 (6.1): follow_page() follows a PROT_NONE PTE only with FOLL_FORCE, so ksmd skips
  // such pages; d74943a2f3cd (6.5) undid it and was not backported: absent in 6.1.158.
  assert.equal(k61.ksmScansProtnone, false);
  assert.deepEqual(differences(k61, builtinProfile('v5.19')!).sort(), ['ksmScansProtnone', 'madvCollapse', 'mprotectWritable', 'pinSkipsZeroPage', 'uffdWpWritenotify']);

  // 6.6.y: 6.2's unsharing + 6.5's zero page; not 6.11's swap-in, not 6.15's device-exclusive rework.
  const k66 = lts('6.6');
  assert.equal(k66.unshareRoPin, 'all');
  assert.equal(k66.pinSkipsZeroPage, true);
  assert.equal(k66.swapinReadFaultWritable, false);
  assert.equal(k66.deviceExclusive, 'v5.14');
  // 6.13's do_huge_zero_wp_pmd, 6.14's PT reclaim and 6.15's PTE-mapped THP reuse are not in 6.6.y either.
  // mremapClearsUffdWp (0cef0bb836e3, 6.13, Cc stable) did not apply to 6.6.y: absent in 6.6.150 (and in 5.10.265, 5.15.215, 6.1.166).
  assert.equal(k66.mremapClearsUffdWp, false);
  for (const n of ['5.4', '5.10', '5.15', '6.1']) assert.equal(lts(n).mremapClearsUffdWp, false, n);
  // d58a361b0350 (6.11): ksmd compares the checksum before the stable tree search; not in 6.6.y.
  assert.equal(k66.ksmChecksumFirst, false);
  // MADV_PAGEOUT of a THP asks folio_estimated_sharers() (2f406263e3e9, 6.5; in 6.4.12 as a backport) until 6.10.
  assert.equal(k66.pageoutLargeShared, 'first-page');
  // Its PTE loop still breaks at a large folio it leaves alone (6.6.93): 6.10 steps past it.
  assert.equal(k66.pageoutLargeWalk, 'break');
  // 5e924ff54d08 (6.7): ksmd's smart scan; not in 6.6.y (no smart_scan in the 6.6.57 ksm.c).
  assert.equal(k66.ksmSmartScan, false);
  assert.deepEqual(differences(k66, builtinProfile('v6.15')!).sort(), ['deviceExclusive', 'hugeZeroWp', 'ksmChecksumFirst', 'ksmSmartScan', 'mremapClearsUffdWp', 'pageoutLargeShared', 'pageoutLargeWalk', 'ptReclaim', 'swapinReadFaultWritable', 'thpSplitZeropage', 'wpReuseLarge']);

  // 6.12.y: 6.6 + c18160dba5ff (6.11) + 0cef0bb836e3 (6.13) as 310ac886d68d in 6.12.11.
  const k612 = lts('6.12');
  assert.equal(k612.swapinReadFaultWritable, true);
  assert.equal(k612.mremapClearsUffdWp, true, '0cef0bb836e3 is in 6.12.11');
  assert.equal(k612.deviceExclusive, 'v5.14', 'the 6.15 rework is not in 6.12.y');
  // 6.10's "prohibit the last subpage from reusing the entire large folio": large folios always copied.
  assert.equal(k612.wpReuseLarge, 'never');
  assert.equal(k612.ksmChecksumFirst, true, 'd58a361b0350 is in 6.11');
  assert.equal(k612.ksmSmartScan, true, '5e924ff54d08 is in 6.7');
  assert.equal(k612.pageoutLargeShared, 'folio', 'folio_likely_mapped_shared() from 6.10');
  assert.equal(k612.pageoutLargeWalk, 'batch', 'the PTE loop batches a large folio\'s PTEs from 6.10 (6.12.19)');
  assert.deepEqual(differences(k612, builtinProfile('v6.15')!).sort(), ['deviceExclusive', 'hugeZeroWp', 'ptReclaim', 'wpReuseLarge']);

  for (const p of LTS_PROFILES) {
    assert.equal(p.cowPageTables, 'none', p.name);
    assert.equal(p.mmForbidsZeropage, false, p.name);
    assert.equal(p.wpCopiesKsm, true, p.name);
  }
});

test("each long-term kernel's source names its stable backports and where it was checked", () => {
  const backports: Record<string, RegExp[]> = {
    '5.4': [/17839856fd58/, /1027dc04f557/, /5\.4\.47/],
    '5.10': [/57efa1fe5957/, /537946556cc9/, /5\.10\.4\b/, /feb889fb40fa/, /72c5ce89427f/, /9348b73c2e1b/, /1eea108995a2/, /5\.10\.9\b/, /8f34f1eac382/, /9e1cf2d1ed37/, /5\.10\.53\b/],
    '5.15': [],
    '6.1': [/c8070b787519/, /476c1dfefab8/, /6\.1\.130/],
    '6.6': [],
    '6.12': [/c18160dba5ff/, /0cef0bb836e3/, /310ac886d68d/, /6\.12\.11\b/],
  };
  for (const p of LTS_PROFILES) {
    for (const re of backports[p.name]!) assert.match(p.source, re, p.name);
    assert.match(p.source, /checked in the [\d. and]+ sources/, `${p.name}: where it was checked`);
    assert.match(p.source, /Not checked/, `${p.name}: what was not`);
  }
  const shown = cli('profiles', '6.1');
  assert.equal(shown.code, 0);
  assert.match(shown.out, /476c1dfefab8/);
  assert.match(shown.out, /Not checked: 6\.1\.167/);
});

test('a R/O pin of the zero page: pin-incoherent on 6.1, ok on 6.6, and 6.2\'s unsharing is the difference', () => {
  const sc = scenarioFile('scenarios/kernel-tests/cow-ro-pin-on-zeropage.scn.yaml');
  assert.equal(outcome(sc, '6.1'), 'pin-incoherent');
  assert.equal(outcome(sc, '6.6'), 'ok');
  assert.equal(outcome(sc, '6.1', ['unshareRoPin=all']), 'ok', 'with 6.2\'s unsharing, 6.1 behaves as 6.6');
  assert.equal(outcome(sc, '6.6', ['unshareRoPin=anon']), 'pin-incoherent', 'without it, 6.6 behaves as 6.1');
});

test('gup-fast racing fork: 5.10 is safe where v5.9 is not, because of the write_protect_seq backport', () => {
  const sc = scenarioFile('scenarios/seeds/gup-fast-fork-race.scn.yaml');
  assert.equal(outcome(sc, '5.10'), 'ok');
  assert.equal(outcome(sc, 'v5.9'), 'lost-write+pin-incoherent');
  assert.equal(outcome(sc, '5.10', ['writeProtectSeq=false']), 'lost-write+pin-incoherent');
});

test('the swap variant of CVE-2020-29374: 5.4 (forced COW break backported) ok, 5.10 and 5.15 leak, 6.1 ok', () => {
  const sc = scenarioFile('scenarios/seeds/cve-2020-29374-swap.scn.yaml');
  assert.equal(outcome(sc, '5.4'), 'ok');
  assert.equal(outcome(sc, '5.4', ['gupCowBreak=none', 'gupFastWritableOnly=false']), 'leak', 'without 17839856fd58, 5.4 leaks');
  assert.equal(outcome(sc, '5.10'), 'leak');
  assert.equal(outcome(sc, '5.15'), 'leak');
  assert.equal(outcome(sc, '6.1'), 'ok');
});

test('the zero page counts no pin on 6.1 (6.1.130 on) and 1024 before the backport', () => {
  const sc = scenarioText([
    'name: lts-zero-page-pin',
    'steps: |',
    '  P mmap mem 1 rw private nothp',
    '  P read mem[0] expect 0',
    '  P pin mem[0] as p ro',
    '  expect stat zero_page_refs == 0',
    '  P unpin p',
    '',
  ].join('\n'));
  assert.equal(outcome(sc, '6.1'), 'ok');
  assert.equal(outcome(sc, '6.1+pinSkipsZeroPage=false'), 'expect', 'before 6.1.130 the pin counted GUP_PIN_COUNTING_BIAS');
  assert.equal(outcome(sc, '5.15'), 'expect');
});

test('mremap out of a uffd-wp registered mapping: 6.12 clears the bits (6.12.11 on), 6.6 keeps them', () => {
  const sc = scenarioFile('scenarios/basic/mremap-clears-uffd-wp.scn.yaml');
  assert.equal(outcome(sc, '6.12'), 'ok');
  assert.equal(outcome(sc, '6.12+mremapClearsUffdWp=false'), 'expect', 'before 6.12.11 the moved PTE and PMD kept the bit');
  assert.equal(outcome(sc, '6.6'), 'expect');
  assert.equal(outcome(sc, '6.6', ['mremapClearsUffdWp=true']), 'ok', 'the backport is the only difference');
  assert.equal(outcome(sc, '5.10'), 'expect');
  assert.equal(outcome(sc, '5.4'), 'n/a', '5.4 has no userfaultfd write-protect');
});

test('MADV_PAGEOUT of a page of a PTE-mapped THP: 6.6 asks the first page\'s mapcount, 6.1 the page\'s own', () => {
  // Read in madvise_cold_or_pageout_pte_range() and folio_estimated_sharers() of 6.6.93 (and
  // 6.6.87): a PTE-mapped page of a large folio splits the folio unless page_mapcount() of the
  // folio's first page (its PTE mappings plus the PMD mappings) is other than 1; 6.1 asks
  // page_mapcount() of the page the PTE maps.
  // Q's PMD maps the head alone (P's write copied t[0]); P's t[1] is mapped twice: 6.6 splits the
  // folio (the head counts 1) and keeps t[1], now a small page mapped twice; 6.1 leaves the THP.
  const headOnce = scenarioText([
    'name: lts-pageout-head-once',
    'steps: |',
    '  P mmap t 512 rw private thp',
    '  P write t[0] = 1',
    '  P fork Q',
    '  P write t[0] = 2',
    '  swapout P t[1]',
    '  expect stat AnonHugePages_kB == 0',
    '  expect stat AnonPages_kB == 2052',
    '',
  ].join('\n'));
  assert.equal(outcome(headOnce, '6.6'), 'ok');
  assert.equal(outcome(headOnce, '6.1'), 'expect', 'page_mapcount() of t[1] is 2: the THP stays');
  assert.equal(outcome(headOnce, '6.6', ['pageoutLargeShared=page-mapcount']), 'expect', 'the switch is the difference');
  // P alone maps the THP, t[0] zapped: the first page counts 0, not 1, so 6.6 leaves the folio
  // and t[1] stays mapped; 6.1 (t[1] counts 1) splits it and swaps t[1] out.
  const headGone = scenarioText([
    'name: lts-pageout-head-unmapped',
    'steps: |',
    '  P mmap t 512 rw private thp',
    '  P write t = 1',
    '  P madvise t[0] dontneed',
    '  swapout P t[1]',
    '  expect stat AnonPages_kB == 2044',
    '',
  ].join('\n'));
  assert.equal(outcome(headGone, '6.6'), 'ok');
  assert.equal(outcome(headGone, '6.1'), 'expect', 't[1] swapped out: 2040 kB');
  assert.equal(outcome(headGone, '6.6', ['pageoutLargeShared=page-mapcount']), 'expect', 'the switch is the difference');
});

test('--kernel 6.1 on run and explore; compare shows the long-term kernels only when asked', () => {
  const run = cli('run', `${ROOT}scenarios/kernel-tests/cow-ro-pin-on-zeropage.scn.yaml`, '--kernel', '6.1', '--json');
  assert.equal(run.code, 0, run.err);
  assert.equal(JSON.parse(run.out).results[0].profile, '6.1');
  const explore = cli('explore', '--kernel', '5.10', '--depth', '2', '--json');
  assert.ok(explore.code === 0 || explore.code === 1, explore.err);
  const dflt = cli('compare', `${ROOT}scenarios/seeds/gup-fast-fork-race.scn.yaml`, '--json');
  assert.equal(dflt.code, 0, dflt.err);
  for (const n of NAMES) assert.ok(!JSON.parse(dflt.out).profiles.includes(n), `${n} in the default matrix`);
  const asked = cli('compare', `${ROOT}scenarios/seeds/gup-fast-fork-race.scn.yaml`, '--kernels', 'v5.9,lts', '--json');
  assert.equal(asked.code, 0, asked.err);
  assert.deepEqual(JSON.parse(asked.out).profiles, ['v5.9', ...NAMES]);
  const twice = cli('compare', `${ROOT}scenarios/seeds/gup-fast-fork-race.scn.yaml`, '--kernels', '6.1,lts,v6', '--json');
  assert.deepEqual(JSON.parse(twice.out).profiles, ['6.1', '5.4', '5.10', '5.15', '6.6', '6.12', 'v6'], 'a name given twice is one column');
  const bad = cli('compare', `${ROOT}scenarios/seeds/gup-fast-fork-race.scn.yaml`, '--kernels', '6.3');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /unknown profile '6\.3'.*5\.10/);
});

test('the seeds, kernel-tests and basic stories contradict no outcome on the long-term kernels', () => {
  const r = cli('compare', `${ROOT}scenarios/seeds`, `${ROOT}scenarios/kernel-tests`, `${ROOT}scenarios/basic`, '--kernels', 'lts', '--json');
  assert.equal(r.code, 0, r.out.slice(0, 2000));
  const doc = JSON.parse(r.out);
  const judged = doc.scenarios.flatMap((s: { cells: Record<string, { verdict: string | null }> }) => Object.values(s.cells)).filter((c: { verdict: string | null }) => c.verdict !== null);
  assert.ok(judged.length >= 6 * 40, `only ${judged.length} cells are judged`);
});

test('a scenario file and a profile file name a long-term kernel as written (5.10 is not 5.1)', () => {
  const sc = scenarioText('name: k\nkernel: 5.10\noutcomes:\n  5.10: ok\n  6.12: ok\nsteps: |\n  P mmap a 1\n');
  assert.equal(sc.kernel, '5.10');
  assert.deepEqual([...sc.outcomes.keys()], ['5.10', '6.12']);
  const reg = new ProfileRegistry();
  const { profiles, errors } = loadProfileFile('- name: my-5.10\n  base: 5.10\n  switches:\n    writeProtectSeq: false\n', 'p.yaml', reg);
  assert.deepEqual(errors, []);
  assert.equal(profiles[0]!.forkEarlyCow, true);
  assert.equal(profiles[0]!.writeProtectSeq, false);
  const files = tempFiles('cowlab-lts-', (n) => `s${n}.scn.yaml`);
  const f = files.file('name: k\nkernel: 5.10\noutcomes:\n  5.10: ok\nsteps: |\n  P mmap a 1\n  P write a = 1\n');
  const run = cli('run', f);
  assert.equal(run.code, 0, run.err + run.out);
  assert.match(run.out, /kernel 5\.10:/);
  // withOverrides keeps the long-term name as the base of a what-if.
  assert.equal(withOverrides(lts('5.10'), ['forkEarlyCow=false']).name, '5.10+forkEarlyCow=false');
});
