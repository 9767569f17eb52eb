// Transparent huge pages in the oracle: how a scenario's config.thp is had on each THP mode (no
// live kernel needed), what the probe reports of THPs (it must match sysfs, whatever this
// machine's mode is), and THP scenarios on the live kernel: they agree, or are skipped with the
// reason (no THP populated, a mode without THPs), never a false disagreement.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { parseProbe } from '../../src/oracle/facilities.js';
import { errnoName } from '../../src/oracle/names.js';
import { oracleScenario } from '../../src/oracle/oracle.js';
import { probedProfile } from '../../src/oracle/probed.js';
import { liveThpMode, parseScan, thpPlan, usesThp } from '../../src/oracle/thp.js';
import { openLive, parse, REPO, v6 } from './helpers.js';

const probe = (words: string) => parseProbe(words.split(' '), '6.18', true, errnoName);
const sc = (config: string, ...steps: string[]) =>
  parse(`name: t\n${config ? `config:\n  thp: ${config}\n` : ''}steps: |\n${steps.map((s) => `  ${s}`).join('\n')}\n`);

test('a scenario\'s config.thp is had by per-mapping advice on every THP mode that has THPs', () => {
  const madvise = probe('zeropage=0 thp=madvise thptop=madvise thppmdkb=2048');
  const always = probe('zeropage=0 thp=always thptop=always thppmdkb=2048');
  const never = probe('zeropage=0 thp=never thptop=never thppmdkb=2048');
  const unflagged = sc('', 'P mmap a 512', 'P write a = 1');
  // The scenario's default mode (madvise) on an `always` machine: unmarked mappings get MADV_NOHUGEPAGE.
  assert.equal(thpPlan(unflagged, always).mmapAdvice(null), 'nothp');
  assert.equal(thpPlan(unflagged, always).mmapAdvice('thp'), 'thp');
  assert.equal(thpPlan(unflagged, madvise).mmapAdvice(null), null);
  // config.thp always on a `madvise` machine: MADV_HUGEPAGE unless `nothp`.
  const all = sc('always', 'P mmap a 512', 'P write a = 1');
  assert.equal(thpPlan(all, madvise).mmapAdvice(null), 'thp');
  assert.equal(thpPlan(all, madvise).mmapAdvice('nothp'), 'nothp');
  assert.equal(thpPlan(all, madvise).model, 'always');
  // config.thp never where THPs exist: MADV_NOHUGEPAGE everywhere, MADV_HUGEPAGE sent as NOHUGEPAGE.
  const none = sc('never', 'P mmap a 512 thp', 'P madvise a hugepage');
  assert.equal(thpPlan(none, always).mmapAdvice('thp'), 'nothp');
  assert.equal(thpPlan(none, always).madvise('hugepage'), 'nohugepage');
  // A machine without THPs: the model runs with never, and says why.
  const thp = sc('', 'P mmap a 512 thp', 'P write a = 1');
  assert.equal(thpPlan(thp, never).model, 'never');
  assert.match(thpPlan(thp, never).why ?? '', /no 2 MiB THPs \(THP mode never\)/);
  assert.equal(thpPlan(thp, probe('zeropage=0 thp=none')).model, 'never');
  // A PMD that is not 2 MiB (a 64 KiB-page arm64 kernel): no THP the model knows.
  assert.equal(liveThpMode(probe('thp=always thppmdkb=524288')), 'never');
  assert.equal(liveThpMode(always), 'always');
  assert.ok(usesThp(thp) && usesThp(all) && !usesThp(unflagged));
  assert.ok(usesThp(sc('', 'P mmap a 512', 'P madvise a hugepage')));
});

test('the helper\'s PAGEMAP_SCAN runs are clipped to the region and merged', () => {
  assert.deepEqual(parseScan(['ok'], 512), []);
  assert.deepEqual(parseScan(['ok', '0-511'], 512), [[0, 511, false]]);
  assert.deepEqual(parseScan(['ok', '0-511', '512-1023'], 800), [[0, 799, false]]);
  assert.deepEqual(parseScan(['ok', '0-511z'], 512), [[0, 511, true]]);
});

test('the huge zero page and the split remap the probe saw set the profile\'s THP switches', () => {
  // No 4 KiB zero page on read faults, a THP on a read fault, a split remapping to the zero page (this machine's kind).
  const f = probe('zeropage=0 thp=madvise thptop=madvise thppmdkb=2048 thpzero=1 hugezero=0 splitzero=1');
  const p = probedProfile(v6(), f);
  assert.equal(p.mmForbidsZeropage, true);
  assert.equal(p.thpUseZeroPage && !p.mmForbidsZeropage, false);
  assert.equal(p.thpSplitZeropage, true);
  // The zero page on read faults, but use_zero_page 0: no huge zero page.
  const g = probe('zeropage=1 zeropfn=9 thp=always thptop=always thppmdkb=2048 thpzero=0 hugezero=0 splitzero=0');
  const q = probedProfile(v6(), g);
  assert.equal(q.thpUseZeroPage, false);
  assert.equal(q.thpSplitZeropage, false);
  assert.match(q.name, /thpUseZeroPage=false/);
  // Both zero pages: the profile as it is.
  assert.equal(probedProfile(v6(), probe('zeropage=1 zeropfn=9 thp=madvise thpzero=1 hugezero=1 splitzero=1')).name, 'v6');
});

const live = openLive();
after(() => live.session?.close());

/** `[word]` of a sysfs choice, or null when the file is missing. */
function sysfsChoice(path: string): string | null {
  if (!existsSync(path)) return null;
  return /\[(\w+)\]/.exec(readFileSync(path, 'utf8'))?.[1] ?? null;
}

test('the probe\'s THP mode is the one sysfs shows', (t) => {
  if (!live.session) return t.skip(live.reason);
  const f = live.session.facilities;
  const dir = '/sys/kernel/mm/transparent_hugepage/';
  const top = sysfsChoice(`${dir}enabled`);
  if (top === null) {
    assert.equal(f.thp, null, 'no THP in sysfs, yet the probe reports a mode');
    return;
  }
  const kb = Number(readFileSync(`${dir}hpage_pmd_size`, 'utf8')) / 1024;
  const size = sysfsChoice(`${dir}hugepages-${kb}kB/enabled`);
  assert.equal(f.thp, size === null || size === 'inherit' ? top : size);
  assert.equal(f.thpInfo?.enabled, top);
  assert.equal(f.thpInfo?.pmdKb, kb);
  assert.equal(f.thpInfo?.defrag, sysfsChoice(`${dir}defrag`));
  assert.equal(f.thpInfo?.useZeroPage, readFileSync(`${dir}use_zero_page`, 'utf8').trim() === '1');
  // The probe saw a huge PMD exactly where the mode gives THPs (or the allocation failed).
  if (liveThpMode(f) === 'never') assert.equal(f.thpInfo?.hugeZeroPage, null);
});

/** A THP scenario on the live kernel: it agrees, or it is skipped with a THP reason. */
function agreesOrSkips(t: { skip(m: string): void }, text: string, file: string): ReturnType<typeof oracleScenario> | null {
  const r = oracleScenario(live.session!, parse(text, file), v6());
  const bad = r.steps.flatMap((s) => s.rows.filter((row) => row.verdict === 'disagree').map((row) => `line ${s.line} ${s.text}: ${row.what}: model ${row.model}, kernel ${row.kernel}`));
  assert.deepEqual(bad, [], `${file} disagrees with the kernel`);
  assert.equal(r.error, null);
  if (r.status === 'skipped') {
    assert.match(r.skip ?? '', /THP|no 2 MiB THPs|zero page/, `skipped for a reason that is not the machine's: ${r.skip}`);
    t.skip(r.skip ?? '');
    return null;
  }
  assert.equal(r.status, 'agree');
  return r;
}

test('a PMD-mapped THP (the THP variant of CVE-2020-29374) agrees on the live kernel, huge PMDs and all', (t) => {
  if (!live.session) return t.skip(live.reason);
  const file = 'scenarios/seeds/cve-2020-29374-thp.scn.yaml';
  const r = agreesOrSkips(t, readFileSync(`${REPO}${file}`, 'utf8'), file);
  if (r === null) return;
  const huge = r.steps.flatMap((s) => s.rows.filter((row) => row.kind === 'thp'));
  if (liveThpMode(live.session.facilities) === 'never') {
    // The model ran with config.thp never: no huge PMD on either side.
    assert.ok(huge.every((row) => row.model === 'no huge PMD'));
    return;
  }
  // The write populated a THP on both sides (a scenario whose THP the kernel could not allocate is skipped).
  assert.ok(huge.some((row) => row.what === 'P buf' && row.kernel === 'buf[0..511]' && row.verdict === 'agree'), JSON.stringify(huge));
});

test('a PTE-mapped THP and AnonHugePages_kB agree on the live kernel', (t) => {
  if (!live.session) return t.skip(live.reason);
  const r = agreesOrSkips(t, [
    'name: thp-pte-mapped', 'steps: |',
    '  P mmap buf 1024 rw private thp',
    '  P write buf = 1',
    '  expect stat AnonHugePages_kB == 4096',
    '  P fork C',
    '  expect stat AnonHugePages_kB == 4096',
    '  C write buf[3] = 2',
    '  expect P buf[3] mapped-once',
    '  expect P buf[600] mapped-shared',
    '  C exit',
    '  P mprotect buf[10..20] ro',
    '  expect stat AnonHugePages_kB == 2048',
    '  expect P buf[10] mapped-once',
    '  P write buf[600] = 5',
    '  expect P buf[600] anon-exclusive',
    '  P madvise buf[512..1023] dontneed',
    '  expect stat AnonHugePages_kB == 0',
    '  P read buf[700] expect 0',
  ].join('\n') + '\n', 'thp-pte-mapped.scn.yaml');
  if (r === null) return;
  const compared = r.steps.flatMap((s) => s.rows).filter((row) => row.verdict === 'agree');
  // The counter and the huge PMDs were really compared, not skipped.
  if (liveThpMode(live.session.facilities) !== 'never') {
    assert.ok(compared.some((row) => row.kind === 'stat' && row.what === 'AnonHugePages_kB' && row.kernel === '4096'));
    assert.ok(compared.some((row) => row.kind === 'thp' && row.kernel === 'buf[512..1023]'));
  }
});
