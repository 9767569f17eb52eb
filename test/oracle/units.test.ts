// Small parts of the oracle that need no kernel: values as words, comparability, the build's
// refusals, and facility parsing.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureHelper, OracleUnavailable } from '../../src/oracle/build.js';
import { Comparability } from '../../src/oracle/comparable.js';
import { parseProbe } from '../../src/oracle/facilities.js';
import { withLiveKsmZeroPages, withoutModelLimits } from '../../src/oracle/oracle.js';
import { errnoName } from '../../src/oracle/names.js';
import { assumeFacts, missingFacility, probedFacts, probedProfile } from '../../src/oracle/probed.js';
import { builtinProfile } from '../../src/profiles/resolve.js';
import { parseScenario } from '../../src/scenario/index.js';
import { ValueWords } from '../../src/oracle/values.js';
import { OracleError } from '../../src/oracle/agent.js';
import { pagemap } from '../../src/oracle/procfs.js';
import { steps } from './helpers.js';

test('values: integers are themselves, identifiers get words no integer of the scenario has', () => {
  const sc = steps('v', 'P mmap a 2', 'P write a[0] = secret', 'P write a[1] = 255', 'P read a[0] expect 3');
  const w = ValueWords.forScenario(sc);
  assert.equal(w.word('0'), 0n);
  assert.equal(w.word('255'), 255n);
  assert.equal(w.word('3'), 3n);
  const s = w.word('secret');
  assert.ok(s > 255n);
  assert.equal(w.name(s.toString(16)), 'secret');
  assert.equal(w.name('ff'), '255');
  assert.equal(w.name('deadbeef'), '?0xdeadbeef');
  assert.notEqual(w.word('99999999999999999999999'), w.word('secret'));
});

test('comparability: the first reason is kept, and each kind of observation looks at its aspect', () => {
  const c = new Comparability();
  assert.equal(c.forObservation('frame', 'P a[0] vs Q a[0]', false), null);
  c.lose('frames', 'first');
  c.lose('frames', 'second');
  assert.equal(c.forObservation('mapped', 'P a[0]', false), 'first');
  assert.equal(c.forObservation('read', 'P a[0]', false), null);
  c.lose('minflt', 'faults');
  assert.equal(c.forObservation('stat', 'minflt.P', false), 'faults');
  assert.equal(c.forObservation('stat', 'rss.P', false), null);
  c.lose('shortRefs', 'refs');
  assert.equal(c.forObservation('handle-read', 'P reads p[0]', true), 'refs');
  assert.equal(c.forObservation('handle-read', 'the device reads h[0]', false), null);
  c.lose('all', 'stop');
  assert.equal(c.forObservation('write', 'P a', false), 'stop');
});

test('model-only limits are dropped, with a note', () => {
  const sc = steps('l', 'P mmap a 1');
  const notes: string[] = [];
  assert.equal(withoutModelLimits(sc, notes), sc);
  assert.deepEqual(notes, []);
  const limited = { ...sc, config: { frames: 3, pinBias: 4 } };
  const out = withoutModelLimits(limited, notes);
  assert.deepEqual(out.config, { frames: null, pinBias: null, thp: null, hugepages: null });
  assert.equal(notes.length, 2);
  // config.hugepages is no model-only limit: the oracle sets the live pool to it (oracle/hugetlb.c).
  assert.equal(withoutModelLimits({ ...sc, config: { frames: 3, pinBias: null, hugepages: 2 } }, []).config.hugepages, 2);
});

test('the build refuses clearly where the oracle cannot run', () => {
  assert.throws(() => ensureHelper({ platform: 'darwin' }), (e: unknown) => e instanceof OracleUnavailable && /live Linux kernel; this system is darwin/.test(e.message));
  assert.throws(() => ensureHelper({ cc: '/nonexistent/cc' }), (e: unknown) => e instanceof OracleUnavailable && /needs a C compiler/.test(e.message));
  const dir = mkdtempSync(join(tmpdir(), 'cowlab-build-'));
  try {
    writeFileSync(join(dir, 'broken.c'), 'int main(void) { return undeclared; }\n');
    assert.throws(() => ensureHelper({ sourceDir: dir, cacheDir: join(dir, 'cache') }), (e: unknown) => e instanceof OracleUnavailable && /did not build/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the helper is built once and then taken from the cache', { skip: process.platform !== 'linux' ? 'not Linux' : false }, (t) => {
  let first: string;
  try {
    first = ensureHelper();
  } catch (e) {
    if (e instanceof OracleUnavailable) return t.skip(e.message);
    throw e;
  }
  const t0 = performance.now();
  assert.equal(ensureHelper(), first);
  assert.ok(performance.now() - t0 < 2000);
});

test('probe answers become facilities with reasons', () => {
  const f = parseProbe('uring=-38 pagemap=1 pfns=0 zeropfn=0 softdirty=0 kpageflags=0 kpagecount=0 anonexcl=0 cpu=1 agent=42'.split(' '), '6.18', false, errnoName);
  assert.equal(f.uring, false);
  assert.match(f.uringWhy ?? '', /ENOSYS: no io_uring/);
  assert.equal(f.pfns, false);
  assert.equal(f.cpu, 1);
  const g = parseProbe('uring=0 pfns=1 zeropfn=9 kpageflags=1 anonexcl=1 softdirty=1'.split(' '), '6.18', true, errnoName);
  assert.deepEqual([g.uring, g.pfns, g.zeroPfn, g.kpageflags, g.softDirty], [true, true, 9, true, true]);
});

test('the probe\'s zero-page answer decides the model, either way (no kernel needed)', () => {
  const withZero = parseProbe('uring=0 pfns=1 zeropage=1 zeropfn=9 thp=madvise'.split(' '), '6.18', true, errnoName);
  const without = parseProbe('uring=0 pfns=1 zeropage=0 zeropfn=0 thp=never'.split(' '), '6.18', true, errnoName);
  assert.deepEqual([withZero.zeroPage, withZero.zeroPfn, withZero.thp], [true, 9, 'madvise']);
  assert.deepEqual([without.zeroPage, without.zeroPfn, without.thp], [false, 0, 'never']);
  const v6 = builtinProfile('v6')!;
  assert.equal(probedProfile(v6, withZero), v6);
  const forbidden = probedProfile(v6, without);
  assert.equal(forbidden.name, 'v6+mmForbidsZeropage=true');
  assert.equal(forbidden.mmForbidsZeropage, true);
  assert.equal(probedProfile(forbidden, without), forbidden, 'idempotent');
  // A zero-page story: its expectations hold only with the zero page, so the kernel without
  // one skips it with the reason; a story that does not read untouched memory is compared.
  const zeroStory = parseScenario('name: z\nsteps: |\n  P mmap a 2\n  P read a[0]\n  P read a[1]\n  expect P a[0] same-frame P a[1]\n  expect stat rss.P == 0\n', 'z.scn.yaml');
  const plain = parseScenario('name: p\nsteps: |\n  P mmap a 1\n  P write a = 1\n  P fork Q\n  expect P a[0] same-frame Q a[0]\n', 'p.scn.yaml');
  assert.ok(zeroStory.ok && plain.ok);
  assert.equal(missingFacility(zeroStory.scenario, v6, probedProfile(v6, withZero), withZero), null);
  assert.match(missingFacility(zeroStory.scenario, v6, forbidden, without) ?? '', /line 6 \(`expect P a\[0\] same-frame P a\[1\]`\) holds on v6 but not on v6\+mmForbidsZeropage=true; this kernel maps no shared zero page/);
  assert.equal(missingFacility(plain.scenario, v6, forbidden, without), null);
  // Forcing the answer (oracle --zero-page) is said in the header.
  assumeFacts(withZero, { zeroPage: false });
  assert.equal(probedProfile(v6, withZero).name, 'v6+mmForbidsZeropage=true');
  assert.match(probedFacts(withZero)[0]!.value, /^no .*\[forced, not probed\]$/);
  assert.equal(probedFacts(withZero)[0]!.sets, 'mmForbidsZeropage=true');
});

test('KSM\'s use_zero_pages as probed is the model\'s config.ksm_use_zero_pages, either way (no kernel needed)', () => {
  const on = parseProbe('uring=0 pfns=1 zeropage=1 ksmrun=0 ksmzero=1 ksmnodes=1 ksmmaxshare=256'.split(' '), '6.18', true, errnoName);
  const off = parseProbe('uring=0 pfns=1 zeropage=1 ksmrun=0 ksmzero=0 ksmnodes=1 ksmmaxshare=256'.split(' '), '6.18', true, errnoName);
  const none = parseProbe('uring=0 pfns=1 zeropage=1 ksmrun=-1'.split(' '), '6.18', true, errnoName);
  assert.deepEqual([on.ksm?.useZeroPages, off.ksm?.useZeroPages, none.ksm], [true, false, null]);
  const sc = steps('k', 'P mmap a 2', 'P madvise a mergeable', 'ksm merge');
  const notes: string[] = [];
  assert.equal(withLiveKsmZeroPages(sc, off, notes), sc, 'off: the scenario as written');
  assert.equal(withLiveKsmZeroPages(sc, none, notes), sc, 'no KSM: as written');
  assert.equal(withLiveKsmZeroPages(sc, on, notes).config.ksmUseZeroPages, 1);
  assert.deepEqual(notes, [], 'a scenario that does not set the key gets the machine\'s value silently');
  // A scenario that asks for the other value: the model runs with the machine's, and says so.
  const asks = { ...sc, config: { ...sc.config, ksmUseZeroPages: 1 } };
  assert.equal(withLiveKsmZeroPages(asks, off, notes).config.ksmUseZeroPages, 0);
  assert.match(notes[0] ?? '', /config.ksm_use_zero_pages is 1, this machine's \/sys\/kernel\/mm\/ksm\/use_zero_pages 0: the model runs with 0/);
  assert.equal(withLiveKsmZeroPages(asks, on, notes), asks);
  // The header says what the probe sets.
  assert.equal(probedFacts(on).find((x) => x.name === 'KSM')!.sets, 'config.ksm_use_zero_pages=1');
  assert.equal(probedFacts(off).find((x) => x.name === 'KSM')!.sets, null);
});

test('a process that is gone (killed by a Ctrl-C to the process group) stops the replay with an oracle error, not an internal one', () => {
  // A pid past pid_max never names a process.
  assert.throws(() => pagemap(2 ** 22 + 1, 0, 1), (e: unknown) => e instanceof OracleError && /process 4194305 is gone/.test(e.message));
  // A live process still reads.
  assert.equal(pagemap(process.pid, 0, 2).length, 2);
});
