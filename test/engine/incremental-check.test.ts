// The accounting check a run makes after every step keeps the page tables' counts from step to
// step (src/check/incremental.ts) and reads only what was written since. With
// AccountingChecker.verifyIncremental on, each such check is compared with the full one (the same
// problems, the same expected counts, or it throws): every scenario of scenarios/ on the
// profiles of the eras, random scenarios of the fuzz generator on every built-in profile, and
// corruptions made by hand.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AccountingChecker } from '../../src/check/accounting.js';
import { LEVEL_PMD, PG_ANON, PG_SHMEM } from '../../src/core/constants.js';
import { pmdSlotOf, pteSlot } from '../../src/core/walk.js';
import { runScenario, Runner } from '../../src/engine/run.js';
import { builtinProfile } from '../../src/profiles/builtin.js';
import { parseScenario, type Scenario } from '../../src/scenario/index.js';
import fc from 'fast-check';
import { BUILTIN_PROFILES } from '../../src/profiles/builtin.js';
import { checkProgram } from '../fuzz/campaign.js';
import { programArb } from '../fuzz/generate.js';
import { SEED } from './seed.js';

const PROFILES = ['v6', 'v5.8', 'cowpt-rfc', 'odf', '6.12'];

/** Every scenario file under dir. */
function files(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : n.endsWith('.scn.yaml') ? [p] : [];
  });
}

function load(file: string): Scenario {
  const r = parseScenario(readFileSync(file, 'utf8'), file);
  if (!r.ok) assert.fail(r.errors.map((e) => e.format()).join('\n'));
  return r.scenario;
}

/** Run fn with every incremental check compared with the full one; how many were compared. */
function verified(fn: () => void): number {
  AccountingChecker.verifyIncremental = true;
  const before = AccountingChecker.incrementalChecksVerified;
  try {
    fn();
  } finally {
    AccountingChecker.verifyIncremental = false;
  }
  return AccountingChecker.incrementalChecksVerified - before;
}

for (const profile of PROFILES) {
  test(`every scenario on ${profile}: each incremental check equals the full one`, () => {
    const p = builtinProfile(profile)!;
    let checks = 0;
    const quiet = AccountingChecker.quietChecks;
    for (const file of files('scenarios')) {
      const sc = load(file);
      checks += verified(() => runScenario(sc, p));
    }
    assert.ok(checks > 500, `only ${checks} incremental checks compared`);
    // Most checks are answered by the kept counts alone (the frames' part found nothing).
    assert.ok(AccountingChecker.quietChecks - quiet > checks / 2, `only ${AccountingChecker.quietChecks - quiet} of ${checks} checks answered without the rest of the check`);
  });
}

/** The frame C2's buf[0] maps. */
function c2Frame(r: Runner): number {
  const p = r.procs.get('C2')!;
  return r.k.tables.entry[pteSlot(r.k, p.mm, p.regions.get('buf')!.start)]!;
}

test('a process tree corrupted by hand: each incremental check equals the full one', () => {
  const steps = [
    'P mmap buf 4 rw private', 'P write buf[0] = 1',
    ...[1, 2, 3, 4].flatMap((i) => [`P fork C${i}`, `C${i} write buf[0] = ${i + 1}`]),
    'P fork D1', 'C3 read buf[0]', 'P munmap buf', 'C1 munmap buf',
  ];
  const text = ['name: t', 'steps: |', ...steps.map((s) => `  ${s}`), ''].join('\n');
  const r0 = parseScenario(text, 't.scn.yaml');
  assert.ok(r0.ok);
  const sc = r0.scenario;
  // Each hit after step 6 (C2 idle since step 5): what accounting.ts must see at the next step and after.
  const hits: ((r: Runner) => void)[] = [
    (r) => { r.k.frames.addRefcount(1, 1); },
    (r) => { r.procs.get('C2')!.mm.rssAnon++; },
    (r) => { r.procs.get('C2')!.mm.nrTables--; },
    (r) => { r.k.tables.used++; },
    (r) => { r.k.frames.setFlags(r.k.frames.top - 1, 0); },
    // C2's page is no longer anonymous: its MM_ANONPAGES counts one too many (no table changed).
    (r) => { r.k.frames.setFlags(c2Frame(r), r.k.frames.flags[c2Frame(r)]! & ~PG_ANON); },
    (r) => { r.k.frames.setFlags(c2Frame(r), r.k.frames.flags[c2Frame(r)]! | PG_SHMEM); r.k.frames.setFlags(c2Frame(r), r.k.frames.flags[c2Frame(r)]! & ~PG_ANON); },
    // The frames' part (incremental-rest.ts): a mapcount one too many, a reference too few, and a
    // frame no longer counted in frames_used; no table changed.
    (r) => { r.k.frames.addMapcount(c2Frame(r), 1); },
    (r) => { r.k.frames.addRefcount(c2Frame(r), -1); },
    (r) => { r.k.frames.used--; },
  ];
  for (const hit of hits) {
    const n = verified(() => {
      const r = new Runner(sc, builtinProfile('v6')!);
      sc.steps.forEach((s, i) => {
        r.step(s, i);
        if (i === 6) hit(r);
      });
      r.end();
      assert.ok(r.violations.length > 0);
    });
    assert.ok(n > 0);
  }
});

test('a PTE table freed and taken again as a PMD table between two checks: its entries are counted out', () => {
  const steps = ['P mmap buf 4 rw private', 'P write buf[0] = 1', 'P fork D1', 'P read buf[0]', 'D1 read buf[1]'];
  const r0 = parseScenario(['name: t', 'steps: |', ...steps.map((s) => `  ${s}`), ''].join('\n'), 't.scn.yaml');
  assert.ok(r0.ok);
  const sc = r0.scenario;
  const n = verified(() => {
    const r = new Runner(sc, builtinProfile('v6')!);
    sc.steps.forEach((s, i) => {
      r.step(s, i);
      if (i !== 2) return;
      // D1 drops its mapping of P's page as a zap would, frees its PTE table, and gets the same
      // table back as a new PMD table under its PUD: a consistent state, but the table the last
      // check counted as a PTE table is an upper one now.
      const k = r.k;
      const d = r.procs.get('D1')!;
      const vpn = d.regions.get('buf')!.start;
      const slot = pteSlot(k, d.mm, vpn);
      const pfn = k.tables.entry[slot]!;
      const pte = slot >>> 9;
      k.tables.setPte(slot, 0, 0);
      k.tables.addFilled(pte, -1);
      d.mm.rssAnon--;
      k.frames.addMapcount(pfn, -1);
      k.putPage(pfn);
      const pmdSlot = pmdSlotOf(k, d.mm, vpn);
      k.tables.setPte(pmdSlot, 0, 0);
      k.tables.addFilled(pmdSlot >>> 9, -1);
      k.tables.free(pte);
      d.mm.nrTables--;
      const again = k.tables.alloc(LEVEL_PMD);
      assert.equal(again, pte);
      const pud = k.tables.entry[(d.mm.pgd << 9) | ((vpn >>> 27) & 511)]!;
      const free = (pud << 9) | (((vpn >>> 18) + 1) & 511);
      assert.equal(k.tables.entry[free], 0);
      k.tables.setPte(free, again, 0);
      k.tables.addFilled(pud, 1);
      k.tables.setOwner(again, d.mm.id);
      d.mm.nrTables++;
    });
    r.end();
    assert.deepEqual(r.violations.filter((v) => v.step >= 0), [], 'the state after the change is consistent');
  });
  assert.ok(n >= 3);
});

test('random scenarios over every operation (the fuzz generator), on every built-in profile: each incremental check equals the full one', () => {
  // Handles, swap, KSM, THPs, hugetlb and shmem pages in any order: both kept parts (the tables'
  // and the frames') are compared with the full check at every step, and a difference throws.
  const progs = fc.sample(programArb(16), { seed: SEED, numRuns: 240 });
  let checks = 0;
  const quiet = AccountingChecker.quietChecks;
  progs.forEach((prog, i) => {
    const profile = BUILTIN_PROFILES[i % BUILTIN_PROFILES.length]!;
    checks += verified(() => checkProgram(prog, [profile], 1 << 30));
  });
  assert.ok(checks > 1000, `only ${checks} incremental checks compared`);
  assert.ok(AccountingChecker.quietChecks - quiet > 0, 'no check was answered by the kept counts alone');
});
