// Copy-on-write page tables (On-Demand Fork, rssys/on-demand-fork; the COW-PTE series, seed 004):
// `fork ... cowpt` shares the last-level PTE tables through write-protected PMD entries, so
// PageTables grows by the child's PGD, PUD and PMD only; a write through a shared table faults
// and copies the table; a table nobody else uses any more is taken back without a copy where the
// design does so (RFC v1: always; On-Demand Fork as released, 8d43667: only when the faulting VMA
// covers the whole table; odf-2021, from eebe694: never); reads of present pages never copy.
// odf-2021 (d8ccd3c) shares only tables one mapping covers entirely. Then the design findings the
// scenarios in scenarios/cowpt/ encode: RFC v1's MADV_DONTNEED drops the whole shared table, RFC
// v1's count-1 zap leaks frames, ODF's repossession (PTEs still writable) leaks data, ODF's
// accounting drifts ("Bad rss-counter"). A plain fork of the same steps is unaffected; mainline
// profiles have no `cowpt` (n/a).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { mmuAllows } from '../../src/core/access.js';
import { PTE_PROTNONE, PTE_WRITE } from '../../src/core/constants.js';
import { pmdSlotOf, pmdWriteProtected, pteSlot, pteTableOf } from '../../src/core/walk.js';
import { globalStats } from '../../src/engine/stats.js';
import { Runner, runScenario } from '../../src/engine/run.js';
import { assertProperty } from '../engine/seed.js';
import { kindsOf, parse, profileOf, runnerAfter, runSteps, scenarioText } from '../explore/helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const COWPT_DIR = join(ROOT, 'scenarios', 'cowpt');
/** The designs that share the table of a 4-page mapping (odf-2021 shares only whole tables: below). */
const DESIGNS = ['cowpt-rfc', 'odf'] as const;
const ALL_DESIGNS = ['cowpt-rfc', 'odf', 'odf-2021'] as const;

const stat = (r: Runner, name: string): number => globalStats(r.k)[name]!;
const vpnOf = (r: Runner, proc: string, i = 0): number => r.procs.get(proc)!.regions.get('buf')!.start + i;
const tableOf = (r: Runner, proc: string, i = 0): number => pteTableOf(r.k, r.procs.get(proc)!.mm, vpnOf(r, proc, i));
const pfnAt = (r: Runner, proc: string, i = 0): number => r.k.tables.entry[pteSlot(r.k, r.procs.get(proc)!.mm, vpnOf(r, proc, i))]!;
const wp = (r: Runner, proc: string, i = 0): boolean => pmdWriteProtected(r.k, r.procs.get(proc)!.mm, vpnOf(r, proc, i));

/** The steps run on each runner after its start scenario. */
const appended = new WeakMap<Runner, string[]>();

/** Runs more steps on a runner (they must apply and stay clean). */
function more(r: Runner, steps: string[]): void {
  for (const text of steps) {
    // Each line is parsed in the context of the full history so names resolve.
    const all = parse(scenarioText([...r.scenario.steps.map((s) => s.text), ...appended.get(r)!, text]), 'm.scn.yaml');
    const step = all.steps[all.steps.length - 1]!;
    const { na } = r.step(step, all.steps.length - 1);
    assert.equal(na, null, `${text}: n/a`);
    appended.get(r)!.push(text);
  }
  assert.deepEqual(r.violations.map((v) => `${v.kind}: ${v.message}`), [], steps.join('; '));
}

function start(steps: string[], profile: string): Runner {
  const r = runnerAfter(steps, profile);
  appended.set(r, []);
  return r;
}

const SETUP = ['P mmap buf 4 rw private', 'P write buf = 1'];
/** A mapping that covers its PTE table exactly (512 pages, 2 MiB-aligned). */
const WHOLE = ['P mmap buf 512 rw private', 'P write buf = 1'];

for (const design of DESIGNS) {
  test(`${design}: fork cowpt shares the PTE table: PageTables grows by the child's PGD, PUD and PMD only`, () => {
    const r = start(SETUP, design);
    assert.equal(stat(r, 'PageTables_kB'), 16);
    const used = stat(r, 'frames_used');
    more(r, ['P fork Q cowpt']);
    assert.equal(stat(r, 'PageTables_kB'), 16 + 12, 'PGD + PUD + PMD for the child; the PTE table is shared');
    assert.equal(tableOf(r, 'Q'), tableOf(r, 'P'), 'one PTE table, reached from both PMDs');
    assert.ok(wp(r, 'P') && wp(r, 'Q'), 'both PMD entries write-protected');
    assert.equal(r.k.tables.share[tableOf(r, 'P')], 2);
    assert.equal(stat(r, 'frames_used'), used, 'no page copied');
    assert.equal(stat(r, 'pt_copies'), 0);
    assert.equal(mmuAllows(r.k, r.procs.get('P')!.mm, vpnOf(r, 'P'), true), false, 'a write by the parent must fault');
    assert.equal(mmuAllows(r.k, r.procs.get('P')!.mm, vpnOf(r, 'P'), false), true, 'a read does not');
    // A normal fork on the same profile copies the table: +16.
    const n = start(SETUP, design);
    more(n, ['P fork Q']);
    assert.equal(stat(n, 'PageTables_kB'), 32);
    assert.notEqual(tableOf(n, 'Q'), tableOf(n, 'P'));
  });

  test(`${design}: two PTE tables (1024 pages) are both shared: still +12 kB`, () => {
    const r = start(['P mmap buf 1024 rw private', 'P write buf = 1'], design);
    assert.equal(stat(r, 'PageTables_kB'), 20);
    more(r, ['P fork Q cowpt']);
    assert.equal(stat(r, 'PageTables_kB'), 32);
    assert.equal(tableOf(r, 'Q', 600), tableOf(r, 'P', 600));
  });

  test(`${design}: reads of present pages do not copy; a write through the shared table faults and copies it (pt_copies)`, () => {
    const r = start(SETUP, design);
    more(r, ['P fork Q cowpt', 'Q read buf[1] expect 1', 'P read buf[2] expect 1']);
    assert.equal(stat(r, 'pt_copies'), 0);
    const shared = tableOf(r, 'P');
    const faults = r.procs.get('Q')!.mm.minflt;
    more(r, ['Q write buf[0] = 2']);
    assert.ok(r.procs.get('Q')!.mm.minflt > faults, 'the write faulted');
    assert.equal(stat(r, 'pt_copies'), 1);
    assert.equal(stat(r, 'PageTables_kB'), 28 + 4, 'Q has a table of its own now');
    assert.notEqual(tableOf(r, 'Q'), shared);
    assert.equal(tableOf(r, 'P'), shared);
    assert.equal(wp(r, 'Q'), false);
    assert.equal(r.k.tables.share[shared], 1);
    more(r, ['P read buf[0] expect 1', 'Q read buf[0] expect 2', 'Q read buf[3] expect 1']);
    const tables = r.k.tables.used;
    more(r, ['P write buf[0] = 3']);
    if (design === 'cowpt-rfc') {
      // The parent's table has no other user left: its next write takes it back, without a copy.
      assert.equal(stat(r, 'pt_copies'), 1, 'count 1: no copy');
      assert.equal(tableOf(r, 'P'), shared);
    } else {
      // ODF 8d43667 repossesses only for a VMA that covers the whole table: this 4-page one copies
      // it, and the old table, whose last user it was, is freed with its references.
      assert.equal(stat(r, 'pt_copies'), 2, 'count 1, but the VMA covers part of the table: a copy');
      assert.notEqual(tableOf(r, 'P'), shared);
      assert.equal(r.k.tables.used, tables, 'one table allocated, the old one freed');
    }
    assert.equal(wp(r, 'P'), false);
    more(r, ['P read buf[0] expect 3', 'Q read buf[0] expect 2', 'P read buf[3] expect 1']);
  });

  test(`${design}: after the child exits, the parent takes the table back without a copy (a mapping covering the table)`, () => {
    // (odf-2021: below, it copies.)
    const r = start(WHOLE, design);
    more(r, ['P fork Q cowpt', 'Q exit']);
    assert.equal(stat(r, 'pt_copies'), 0, 'the child drops its reference to a table its mapping covers');
    assert.equal(stat(r, 'PageTables_kB'), 16);
    assert.equal(r.k.tables.share[tableOf(r, 'P')], 1);
    assert.ok(wp(r, 'P'), 'still write-protected until the parent faults');
    more(r, ['P write buf[1] = 2', 'P read buf[1] expect 2', 'P read buf[0] expect 1', 'P read buf[511] expect 1']);
    assert.equal(stat(r, 'pt_copies'), 0, 'count 1: taken back, no copy');
    assert.equal(wp(r, 'P'), false);
    assert.equal(stat(r, 'PageTables_kB'), 16);
  });

  test(`${design}: mainline profiles have no COW page tables; the same fork is n/a there`, () => {
    assert.equal(runSteps([...SETUP, 'P fork Q cowpt'], 'v6').status, 'n/a');
    assert.equal(runSteps([...SETUP, 'P fork Q cowpt'], 'v5.18').status, 'n/a');
  });
}

test('cowpt-rfc: isolation holds for any writes and reads of parent and child after a cowpt fork', () => {
  const op = fc.record({ proc: fc.constantFrom('P', 'Q'), write: fc.boolean(), page: fc.nat({ max: 3 }) });
  assertProperty('cowpt isolation', fc.array(op, { minLength: 1, maxLength: 12 }), (ops) => {
    let n = 10;
    const steps = [...SETUP, 'P fork Q cowpt', ...ops.map((o) => (o.write ? `${o.proc} write buf[${o.page}] = ${n++}` : `${o.proc} read buf[${o.page}]`))];
    const r = runSteps(steps, 'cowpt-rfc');
    // The end-of-run teardown has its own finding (the count-1 zap, below); the steps are clean.
    const during = r.violations.filter((v) => v.step >= 0);
    assert.deepEqual(during.map((v) => `${v.step}: ${v.kind}: ${v.message}`), [], steps.join('\n'));
  }, 60);
});

test('cowpt-rfc and odf-2021: isolation holds with mremap in the mix (the table is unshared before its PTEs move); not on odf', () => {
  const op = fc.record({ proc: fc.constantFrom('P', 'Q'), kind: fc.constantFrom('write', 'write', 'read', 'mremap'), region: fc.nat(), page: fc.nat({ max: 511 }) });
  for (const design of ['cowpt-rfc', 'odf-2021']) {
    // 512 pages cover their PTE table: every design shares it.
    const setup = ['P mmap buf 512 rw private', 'P write buf[0..3] = 1', 'P fork Q cowpt'];
    assertProperty(`cowpt mremap isolation (${design})`, fc.array(op, { minLength: 1, maxLength: 10 }), (ops) => {
      let n = 10;
      const regions = new Map([['P', [{ name: 'buf', n: 512 }]], ['Q', [{ name: 'buf', n: 512 }]]]);
      const steps = [...setup];
      for (const o of ops) {
        const rs = regions.get(o.proc)!;
        const r = rs[o.region % rs.length]!;
        const at = `${r.name}[${o.page % r.n}]`;
        if (o.kind === 'mremap') {
          const name = `m${n++}`;
          rs.push({ name, n: 1 });
          steps.push(`${o.proc} mremap ${at} as ${name}`);
        } else steps.push(o.kind === 'write' ? `${o.proc} write ${at} = ${n++}` : `${o.proc} read ${at}`);
      }
      const r = runSteps(steps, design);
      // Isolation: no process sees another's data or loses its own, and no access faults wrongly.
      // (Counters and teardown have findings of their own in these designs, mremap or not: below.)
      const data = r.violations.filter((v) => v.kind === 'leak' || v.kind === 'lost-write' || v.kind === 'fault');
      assert.deepEqual(data.map((v) => `${v.step}: ${v.kind}: ${v.message}`), [], steps.join('\n'));
    }, 40);
  }
  // 8d43667 moves the PTE out of the shared table: the other process loses the page.
  const odf = runSteps(['P mmap buf 512 rw private', 'P write buf[0..3] = 1', 'P fork Q cowpt', 'Q mremap buf[2] as m', 'P read buf[2] expect 1'], 'odf');
  assert.ok(kindsOf(odf).includes('lost-write'), kindsOf(odf).join(', '));
});

// ---- the design findings -------------------------------------------------------------------------------

test('RFC v1: MADV_DONTNEED of one page drops the child\'s reference to the whole shared table: its other pages read 0', () => {
  const r = start(SETUP, 'cowpt-rfc');
  more(r, ['P fork Q cowpt', 'Q madvise buf[3] dontneed']);
  const q = r.procs.get('Q')!;
  const ps = pmdSlotOf(r.k, q.mm, vpnOf(r, 'Q'));
  assert.equal(r.k.tables.entry[ps], 0, 'Q\'s PMD entry is cleared: the 511 other pages went with it');
  const rfc = runSteps([...SETUP, 'P fork Q cowpt', 'Q madvise buf[3] dontneed', 'Q read buf[3] expect 0', 'Q read buf[0]', 'P read buf[0] expect 1'], 'cowpt-rfc');
  const lost = rfc.violations.filter((v) => v.kind === 'lost-write');
  assert.equal(lost.length, 1, kindsOf(rfc).join(', '));
  assert.equal(lost[0]!.step, 5, 'Q\'s read of buf[0] returns 0, not 1');
  assert.deepEqual(lost[0]!.procs, ['Q']);
  // Before the end of the run (P alone on a count-1 table, whose zap at exit leaks: see below), nothing else.
  assert.ok(rfc.violations.every((v) => v.kind === 'lost-write' || v.step === -1), kindsOf(rfc).join(', '));
});

const DONTNEED = [...SETUP, 'P fork Q cowpt', 'Q madvise buf[3] dontneed', 'Q read buf[3] expect 0', 'Q read buf[0] expect 1', 'P read buf[0] expect 1'];

test('On-Demand Fork 8d43667: MADV_DONTNEED of one page drops every page the mapping has in the shared table (the VMA decides, not the range)', () => {
  const odf = runSteps(DONTNEED, 'odf');
  const lost = odf.violations.filter((v) => v.step >= 0);
  assert.deepEqual(lost.map((v) => `${v.step} ${v.kind} ${v.procs.join()}`).sort(), ['5 expect Q', '5 lost-write Q'], odf.violations.map((v) => v.message).join('\n'));
  // A mapping covering its table: one page of MADV_DONTNEED drops the whole table from the child.
  const whole = runSteps([...WHOLE, 'P fork Q cowpt', 'Q madvise buf[3] dontneed', 'Q read buf[300] expect 1', 'P read buf[300] expect 1'], 'odf');
  assert.deepEqual(kindsOf(whole).filter((k) => k !== 'kernel-bug'), ['expect', 'lost-write'], whole.violations.map((v) => v.message).join('\n'));
});

test('On-Demand Fork d8ccd3c (odf-2021): MADV_DONTNEED in a process using ODF does nothing', () => {
  const r = runSteps(DONTNEED, 'odf-2021');
  assert.deepEqual(r.violations.map((v) => `${v.step} ${v.kind}`).sort(), ['4 expect', '4 lost-write'], 'buf[3] still holds 1');
  // A process that never used COW page tables is unaffected.
  assert.equal(runSteps([...SETUP, 'P fork Q', 'Q madvise buf[3] dontneed', 'Q read buf[3] expect 0'], 'odf-2021').status, 'ok');
});

test('switch cowptDontneed: toggling it changes the run', () => {
  // The model of a design that zaps exactly the range asked: the copy, then the zap.
  for (const profile of ['odf', 'odf-2021']) {
    const sets = ['cowptDontneed=range', 'cowPteShare=any'];
    const r = runSteps(DONTNEED, profile, sets);
    assert.equal(r.status, 'ok', `${profile} ${sets.join(' ')}: ${r.violations.map((v) => v.message).join('; ')}`);
  }
  assert.ok(kindsOf(runSteps(DONTNEED, 'odf', ['cowptDontneed=ignored'])).includes('lost-write'));
  assert.deepEqual(runSteps(DONTNEED, 'odf', ['cowptDontneed=ignored']).violations.map((v) => v.step).filter((s) => s >= 0), [4, 4], 'buf[3] kept; buf[0] intact');
  assert.ok(kindsOf(runSteps(DONTNEED, 'odf-2021', ['cowptDontneed=vma', 'cowPteShare=any'])).includes('lost-write'));
});

test('RFC v1: the last process to drop a shared table (count 1) zaps nothing: its frames leak', () => {
  const r = runSteps([...WHOLE, 'P fork Q cowpt', 'Q exit'], 'cowpt-rfc');
  const fl = r.violations.filter((v) => v.kind === 'frame-leak');
  assert.ok(fl.length > 0, 'the pages of the table are still in use, unmapped');
  assert.ok(fl.every((v) => v.step === -1), 'found at the end');
  // ODF's last user releases the pages.
  const odf = runSteps([...WHOLE, 'P fork Q cowpt', 'Q exit'], 'odf');
  assert.ok(!kindsOf(odf).includes('frame-leak'), kindsOf(odf).join(', '));
  // A table taken back before the exit is zapped normally.
  assert.equal(runSteps([...WHOLE, 'P fork Q cowpt', 'Q exit', 'P write buf[0] = 2'], 'cowpt-rfc').status, 'ok');
});


test('RFC v1: the child\'s exit drops its reference to the shared table (zap_cow_pte), whatever part of it the mapping covers', () => {
  const r = start(SETUP, 'cowpt-rfc');
  more(r, ['P fork Q cowpt', 'Q exit']);
  assert.equal(stat(r, 'pt_copies'), 0);
});

test('RFC v1: the count-1 zap leaks the frames of a small mapping too', () => {
  const r = runSteps([...SETUP, 'P fork Q cowpt', 'Q exit'], 'cowpt-rfc');
  assert.equal(r.violations.filter((v) => v.kind === 'frame-leak').length, 4, kindsOf(r).join(', '));
});

test('On-Demand Fork: the exit of a mapping that covers part of a shared table copies it, then zaps ("copy then zap")', () => {
  const r = start(SETUP, 'odf');
  more(r, ['P fork Q cowpt', 'Q exit']);
  assert.equal(stat(r, 'pt_copies'), 1);
  assert.equal(r.k.tables.share[tableOf(r, 'P')], 1);
  const tables = r.k.tables.used;
  more(r, ['P write buf[1] = 2', 'P read buf[0] expect 1', 'P read buf[1] expect 2']);
  assert.equal(stat(r, 'pt_copies'), 2, 'count 1, but the 4-page VMA does not cover the table: no repossession, a copy');
  assert.equal(r.k.tables.used, tables, 'the old table, whose last user the parent was, is freed');
  assert.equal(runSteps([...SETUP, 'P fork Q cowpt', 'Q exit', 'P write buf[1] = 2', 'P exit'], 'odf').status, 'ok');
});

const REPOSSESS = ['P fork Q cowpt', 'Q write buf[1] = 2', 'P write buf[2] = 3', 'Q read buf[2]'];

test('On-Demand Fork 8d43667: a table taken back keeps its writable PTEs; the parent\'s write lands in the child\'s page (leak)', () => {
  const steps = [...WHOLE, ...REPOSSESS];
  const odf = runSteps(steps, 'odf');
  assert.ok(kindsOf(odf).includes('leak'), kindsOf(odf).join(', '));
  const leak = odf.violations.find((v) => v.kind === 'leak')!;
  assert.equal(leak.step, 5);
  assert.deepEqual(leak.procs, ['Q'], 'Q reads P\'s data');
  // Only a VMA covering the whole table repossesses: the same steps on 4 pages copy, isolated.
  assert.equal(runSteps([...SETUP, ...REPOSSESS], 'odf').status, 'ok');
  // RFC v1's break is copy_pte_range: it write-protects the shared PTEs too: isolated.
  assert.equal(runSteps([...steps, 'P write buf[0] = 5'], 'cowpt-rfc').status, 'ok');
  assert.equal(runSteps([...SETUP, ...REPOSSESS, 'P write buf[0] = 5'], 'cowpt-rfc').status, 'ok');
  // eebe694 removed the repossession: odf-2021 copies, isolated.
  assert.equal(runSteps([...steps, 'P write buf[0] = 5'], 'odf-2021').status, 'ok');
});

test('On-Demand Fork: a table copy write-protects each mapping\'s entries by that mapping\'s flags (copy_pte_range_tfork per VMA)', () => {
  // buf (private) and sh (shared) sit in one PTE table; P's write to sh breaks it. Were the
  // private entries of P's copy left writable, C1's take-back of the old table (count 1) would
  // let P and C1 write into each other's pages.
  const steps = ['P mmap buf 3 rw private', 'P mmap sh 1 rw shared', 'P write buf = 2', 'P fork C1 cowpt', 'P write sh[0] = 10'];
  const r = runnerAfter(['P mmap buf 3 rw private', 'P mmap sh 1 rw shared', 'P write buf = 2', 'P fork C1 cowpt'], 'odf');
  const sc = parse(scenarioText(steps), 't.scn.yaml');
  r.step(sc.steps[4]!, 4);
  const p = r.procs.get('P')!;
  assert.notEqual(tableOf(r, 'P'), tableOf(r, 'C1'), 'P copied the shared table');
  assert.equal(r.k.tables.bits[pteSlot(r.k, p.mm, vpnOf(r, 'P', 0))]! & PTE_WRITE, 0, 'P\'s buf[0] is write-protected in its copy');
  const after = [...steps, 'C1 write buf[0] = 11', 'P read buf[0] expect 2', 'P write buf[1] = 12', 'C1 read buf[1] expect 2'];
  // (P breaking first drifts ODF's RSS: accounting, as in cowpt-accounting-parent-breaks; the data stays right.)
  const odf = runSteps(after, 'odf');
  assert.deepEqual(kindsOf(odf).filter((k) => k !== 'accounting' && k !== 'kernel-bug'), [], odf.violations.map((v) => v.message).join('\n'));
  assert.equal(runSteps(after, 'odf-2021').status, 'ok');
});

test('switch cowPteTakeBack: toggling it changes the run', () => {
  // whole-table -> never: the repossession (and its leak) goes away.
  const whole = [...WHOLE, ...REPOSSESS];
  assert.ok(kindsOf(runSteps(whole, 'odf')).includes('leak'));
  assert.equal(runSteps(whole, 'odf', ['cowPteTakeBack=never']).status, 'ok');
  // never -> whole-table on odf-2021: it comes back.
  assert.ok(kindsOf(runSteps(whole, 'odf-2021', ['cowPteTakeBack=whole-table', 'cowPteShare=any'])).includes('leak'));
  // whole-table -> any: a VMA covering part of the table takes it back as well (and leaks).
  const part = [...SETUP, ...REPOSSESS];
  assert.equal(runSteps(part, 'odf').status, 'ok');
  assert.ok(kindsOf(runSteps(part, 'odf', ['cowPteTakeBack=any'])).includes('leak'));
  // RFC v1: any -> never: the parent's write after the child's copy copies too (pt_copies 2, not 1).
  const rfcSteps = [...SETUP, 'P fork Q cowpt', 'Q write buf[1] = 2', 'P write buf[2] = 3', 'expect stat pt_copies == 1'];
  assert.equal(runSteps(rfcSteps, 'cowpt-rfc').status, 'ok');
  assert.deepEqual(kindsOf(runSteps(rfcSteps, 'cowpt-rfc', ['cowPteTakeBack=never'])), ['expect']);
});

test('odf-2021 (d8ccd3c): fork shares only the tables one mapping covers entirely; the rest is copied per page', () => {
  // 600 pages from a 2 MiB boundary: the first table is covered, the second (88 pages) is not.
  const r = start(['P mmap buf 600 rw private nothp', 'P write buf = 1'], 'odf-2021');
  const before = stat(r, 'PageTables_kB');
  more(r, ['P fork Q cowpt']);
  assert.equal(tableOf(r, 'Q', 0), tableOf(r, 'P', 0), 'the covered table is shared');
  assert.ok(wp(r, 'Q', 0) && wp(r, 'P', 0));
  assert.notEqual(tableOf(r, 'Q', 599), tableOf(r, 'P', 599), 'the partly covered one is copied');
  assert.ok(!wp(r, 'Q', 599) && !wp(r, 'P', 599));
  assert.equal(stat(r, 'PageTables_kB'), before + 12 + 4, 'PGD, PUD, PMD and one PTE table for the child');
  assert.equal(pfnAt(r, 'Q', 599), pfnAt(r, 'P', 599), 'the copied table maps the same pages (COW)');
  more(r, ['Q write buf[599] = 2', 'P read buf[599] expect 1', 'Q write buf[0] = 3', 'P read buf[0] expect 1', 'P write buf[1] = 4', 'Q read buf[1] expect 1']);
  assert.equal(stat(r, 'pt_copies'), 2, 'Q copies the shared table, then P copies it too (no repossession)');
});

test('switch cowPteShare: toggling it changes the run', () => {
  const steps = [...SETUP, 'P fork Q cowpt'];
  for (const [profile, sets, shared] of [
    ['odf', [], true], ['odf', ['cowPteShare=whole-table'], false], ['odf-2021', [], false], ['odf-2021', ['cowPteShare=any'], true],
    ['cowpt-rfc', [], true], ['cowpt-rfc', ['cowPteShare=whole-table'], false],
  ] as const) {
    const r = runnerAfter(steps, profile, sets);
    assert.equal(tableOf(r, 'Q') === tableOf(r, 'P'), shared, `${profile} ${sets.join(' ')}`);
    assert.equal(stat(r, 'PageTables_kB'), shared ? 28 : 32, `${profile} ${sets.join(' ')}`);
  }
  // A mapping covering its table is shared either way.
  for (const sets of [[], ['cowPteShare=any']]) {
    const r = runnerAfter([...WHOLE, 'P fork Q cowpt'], 'odf-2021', sets);
    assert.equal(tableOf(r, 'Q'), tableOf(r, 'P'), sets.join(' '));
  }
});

test('On-Demand Fork: the parent breaks first and is charged twice, the child never: RSS drifts, "Bad rss-counter" at exit', () => {
  const steps = [...SETUP, 'P fork Q cowpt', 'P write buf[2] = 3', 'Q read buf[2] expect 1', 'Q exit', 'P exit'];
  const odf = runSteps(steps, 'odf');
  assert.ok(kindsOf(odf).includes('accounting'), kindsOf(odf).join(', '));
  const acct = odf.violations.find((v) => v.kind === 'accounting')!;
  assert.match(acct.message, /MM_ANONPAGES|page-table count/);
  const bugs = odf.violations.filter((v) => v.kind === 'kernel-bug');
  assert.ok(bugs.some((v) => /Bad rss-counter/.test(v.message)), bugs.map((v) => v.message).join('\n'));
  assert.ok(!kindsOf(odf).includes('leak') && !kindsOf(odf).includes('lost-write'), 'the data is right');
  // RFC v1: the child is left alone with the old table (count 1); its exit falls back to reusing
  // the table and releases none of its pages (zap_cow_pte): "Bad rss-counter", then a frame leak.
  const rfc = runSteps(steps, 'cowpt-rfc');
  assert.ok(kindsOf(rfc).includes('frame-leak') && kindsOf(rfc).includes('kernel-bug'), kindsOf(rfc).join(', '));
  assert.ok(!kindsOf(rfc).includes('leak') && !kindsOf(rfc).includes('lost-write'), 'the data is right');
});

// ---- the scenarios in scenarios/cowpt/ -------------------------------------------------------------------

/** What each scenario's description says, per design (every listed kind must occur). */
const FINDINGS: Record<string, Record<(typeof ALL_DESIGNS)[number], string[]>> = {
  'cowpt-accounting-child-breaks': { 'cowpt-rfc': [], odf: [], 'odf-2021': [] },
  'cowpt-accounting-parent-breaks': { 'cowpt-rfc': ['kernel-bug', 'accounting', 'frame-leak'], odf: ['accounting', 'kernel-bug'], 'odf-2021': [] },
  'cowpt-dontneed': { 'cowpt-rfc': ['lost-write'], odf: ['lost-write'], 'odf-2021': ['lost-write', 'expect'] },
  'cowpt-fork-shares-pte-tables': { 'cowpt-rfc': [], odf: ['leak'], 'odf-2021': [] },
  'cowpt-mremap': { 'cowpt-rfc': [], odf: ['lost-write', 'accounting'], 'odf-2021': [] },
  'cowpt-pinned-buffer': {
    'cowpt-rfc': ['pin-incoherent', 'lost-write', 'leak'],
    odf: ['pin-incoherent', 'lost-write', 'leak', 'accounting'],
    'odf-2021': ['pin-incoherent', 'lost-write', 'leak'],
  },
  'cowpt-repossess-whole-table': { 'cowpt-rfc': [], odf: ['leak'], 'odf-2021': [] },
  'seed004-pagetables-1gib': { 'cowpt-rfc': ['frame-leak', 'kernel-bug'], odf: ['kernel-bug'], 'odf-2021': ['kernel-bug'] },
};

test('every scenario in scenarios/cowpt/ shows its design finding; a plain fork of the same steps on v6 is clean', () => {
  const files = readdirSync(COWPT_DIR).filter((f) => f.endsWith('.scn.yaml')).sort();
  assert.deepEqual(files.map((f) => f.replace('.scn.yaml', '')), Object.keys(FINDINGS).sort(), 'a finding per scenario');
  for (const f of files) {
    const sc = parse(readFileSync(join(COWPT_DIR, f), 'utf8'), f);
    const want = FINDINGS[sc.name]!;
    for (const design of ALL_DESIGNS) {
      const r = runScenario(sc, profileOf(design), { trace: false });
      const got = kindsOf(r);
      if (want[design].length === 0) assert.deepEqual(got, [], `${f} on ${design}: ${r.violations.map((v) => v.message).join('; ')}`);
      for (const k of want[design]) assert.ok(got.includes(k), `${f} on ${design}: ${k} expected, got ${got.join(', ')}`);
      assert.equal(r.verdict, 'pass', `${f} on ${design}: ${r.verdictReason}`);
    }
    // Mainline: `fork ... cowpt` is n/a; the same steps with a plain fork are clean.
    assert.equal(runScenario(sc, profileOf('v6'), { trace: false }).status, 'n/a', `${f} on v6`);
    const plain = sc.steps.map((s) => s.text.replace(/ cowpt\b/, '')).filter((t) => !t.startsWith('expect stat'));
    const v6 = runSteps(plain, 'v6');
    assert.equal(v6.status, 'ok', `${f} with a plain fork on v6: ${v6.violations.map((v) => `${v.kind}: ${v.message}`).join('; ')}`);
  }
});


test('RFC v1: MADV_DONTNEED on a table only this process uses (count 1) leaves its PTEs: the old data stays, the counts stay right', () => {
  const steps = [...SETUP, 'P fork Q cowpt', 'P write buf[0] = 2', 'Q madvise buf[0] dontneed', 'Q read buf[0]', 'Q read buf[1] expect 1'];
  const r = runSteps(steps, 'cowpt-rfc');
  const during = r.violations.filter((v) => v.step >= 0);
  assert.deepEqual([...new Set(during.map((v) => v.kind))], ['lost-write'], during.map((v) => `${v.step}: ${v.kind}: ${v.message}`).join('\n'));
  assert.equal(during[0]!.step, 5);
});

test('RFC v1: the copy a table break makes of a pinned page in a PROT_NONE mapping stays PROT_NONE (vm_page_prot)', () => {
  // P pinned, so P's break of the shared table copies the maybe-pinned page for P (copy_present_page);
  // that the copy leaves P's own pin behind is the design's pin finding (cowpt-pinned-buffer).
  const sc = parse(scenarioText([...SETUP, 'P pin buf[0] as h rw longterm', 'P mprotect buf none', 'P fork Q cowpt', 'P mprotect buf[3] ro']), 't.scn.yaml');
  const r = new Runner(sc, profileOf('cowpt-rfc', []), { trace: false, maxEventsPerStep: 0 });
  sc.steps.forEach((st, i) => assert.equal(r.step(st, i).na, null));
  assert.deepEqual(r.violations.map((v) => v.kind), ['pin-incoherent']);
  const p = r.procs.get('P')!;
  assert.equal(stat(r, 'early_cow'), 1, 'the break copied the pinned page');
  assert.notEqual(pfnAt(r, 'P'), pfnAt(r, 'Q'), 'P maps its own copy');
  // The VMA check stops the CPU either way; gup-fast reads only the PTE, which must say PAGE_NONE.
  const bits = r.k.tables.bits[pteSlot(r.k, p.mm, vpnOf(r, 'P'))]!;
  assert.ok(bits & PTE_PROTNONE, `the copy's PTE is PROT_NONE (bits ${bits.toString(2)})`);
  assert.equal(bits & PTE_WRITE, 0);
});

test('On-Demand Fork: a writable mapping after a read-only one in the same PTE table reaches the child (copied per page there, never lost)', () => {
  // buf[0] read-only, buf[1] writable: two VMAs in one table. dup_mmap copies in address order;
  // the model copies the read-only one per page (ODF write-protects and shares only tables of
  // writable mappings), which gives the child a table of its own there, so the writable one
  // cannot be shared any more: it is copied per page into that table as a normal fork does
  // (the prototype, 8d43667 copy_pmd_range_tfork, shares the table for both: the child reads
  // the parent's values either way). The model once skipped it as "already shared": lost-write.
  const steps = ['P mmap buf 2 rw private', 'P write buf[0] = 1', 'P write buf[1] = 2', 'P mprotect buf[0] ro', 'P fork Q cowpt'];
  const r = start(steps, 'odf');
  assert.notEqual(tableOf(r, 'Q', 1), tableOf(r, 'P', 1), 'Q has a table of its own');
  assert.ok(!wp(r, 'Q', 1) && !wp(r, 'P', 1), 'nothing shared behind a write-protected PMD');
  assert.equal(pfnAt(r, 'Q', 1), pfnAt(r, 'P', 1), 'Q maps P\'s page, COW');
  more(r, ['Q read buf[0] expect 1', 'Q read buf[1] expect 2', 'Q write buf[1] = 3', 'P read buf[1] expect 2', 'P write buf[1] = 4', 'Q read buf[1] expect 3', 'Q exit', 'P exit']);
  assert.equal(stat(r, 'frames_used'), 0);
  // The other order (writable first) shares the table; the read-only mapping is seen through it.
  const w = start(['P mmap buf 2 rw private', 'P write buf[0] = 1', 'P write buf[1] = 2', 'P mprotect buf[1] ro', 'P fork Q cowpt'], 'odf');
  assert.equal(tableOf(w, 'Q', 1), tableOf(w, 'P', 1));
  more(w, ['Q read buf[1] expect 2', 'Q write buf[0] = 3', 'P read buf[0] expect 1', 'Q read buf[1] expect 2', 'Q exit', 'P exit']);
  assert.equal(stat(w, 'frames_used'), 0);
});

test('On-Demand Fork: a table copy leaves out the entries of addresses where the copier has no mapping (MADV_DONTFORK in the parent)', () => {
  // The child shares the whole table, buf[1]'s entry included, but has no VMA there
  // (VM_DONTCOPY). tfork_one_pte_table() copies the copier's VMAs only: the child's copy has no
  // entry at buf[1], so its exit leaves no entry behind in a freed table, and the page keeps one
  // reference and one mapping, P's. The model once copied all 512 entries: the page leaked.
  const r = start(['P mmap buf 2 rw private', 'P write buf[0] = 1', 'P write buf[1] = 2', 'P madvise buf[1] dontfork', 'P fork Q cowpt'], 'odf');
  more(r, ['Q write buf[0] = 3']);
  const pfn = pfnAt(r, 'P', 1);
  assert.equal(r.k.frames.refcount[pfn], 1, 'only P\'s (old, now P-only) table maps buf[1]');
  assert.equal(r.k.frames.mapcount[pfn], 1);
  more(r, ['Q exit', 'P read buf[1] expect 2', 'P write buf[1] = 4', 'P exit']);
  assert.equal(stat(r, 'frames_used'), 0);
});

test('On-Demand Fork: reclaim of an address where the process has no mapping does nothing, though its shared table has the parent\'s page there', () => {
  // Q shares P's table whole, buf[1]'s entry included, but has no VMA at buf[1] (MADV_DONTFORK):
  // there is nothing of Q's to reclaim. The model once swapped P's page out through Q's view of
  // the table (changing the shared table in place).
  const r = start(['P mmap buf 2 rw private', 'P write buf[0] = 1', 'P write buf[1] = 2', 'P madvise buf[1] dontfork', 'P fork Q cowpt'], 'odf');
  const pfn = pfnAt(r, 'P', 1);
  more(r, ['swapout Q buf[1]']);
  assert.equal(pfnAt(r, 'P', 1), pfn, 'P\'s page still mapped');
  assert.equal(stat(r, 'pt_copies'), 0, 'nothing of Q\'s to break either');
  more(r, ['P read buf[1] expect 2']);
});
