// Device-exclusive entries (copy_nonpresent_pte, 5.14 b756a3b5e7ea and the 6.15 rework,
// hmm-tests): 5.14 replaces the PTE by an entry and drops the mapcount (the
// entry keeps the reference), a CPU access notifies the device (its grant is revoked) and maps
// the page again, restoring the mapcount; 6.15 keeps the mapcount. fork restores the entry in the
// parent and shares the page COW, the device losing its grant; mprotect(PROT_READ) makes the
// device's atomic `denied`; before 5.14 there are no such entries (n/a).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NA, OK, PG_LARGE, PTE_DEVEXCL_WRITE, PTE_DEVICE_EXCLUSIVE, PTE_DIRTY, PTE_PRESENT, PTE_SOFT_DIRTY } from '../../src/core/constants.js';
import { makeDeviceExclusive } from '../../src/core/devexcl.js';
import { dupMmap } from '../../src/core/fork.js';
import type { Handle, Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { doMprotect } from '../../src/core/mmap.js';
import { uffdRegister, uffdWriteprotect } from '../../src/core/userfaultfd.js';
import { pteSlot } from '../../src/core/walk.js';
import { exitMmap, unmapRegion } from '../../src/core/zap.js';
import { runScenario } from '../../src/engine/run.js';
import { kindsOf, parse, profileOf, runnerAfter, runSteps } from '../explore/helpers.js';
import { assertConsistent, frame, kernel, presentPte, proc, readOk, writeOk } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function rawPte(k: Kernel, mm: Mm, vpn: number): { bits: number; entry: number } {
  const slot = pteSlot(k, mm, vpn);
  assert.ok(slot >= 0);
  return { bits: k.tables.bits[slot]!, entry: k.tables.entry[slot]! };
}

function grant(k: Kernel, mm: Mm, lo: number, hi: number): Handle {
  const r = makeDeviceExclusive(k, mm, lo, hi);
  assert.equal(r.err, OK);
  assert.ok(r.handle);
  return r.handle;
}

const MERGED = [['v5.14', 'v5.14'], ['v5.18', 'v5.14'], ['v6.2', 'v5.14'], ['v6.15', 'v6.15'], ['v6', 'v6.15']] as const;

for (const name of ['v5.7', 'v5.9']) {
  test(`${name}: no device-exclusive entries (5.14 on): n/a`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 1);
    writeOk(k, mm, vpn, 1);
    assert.equal(makeDeviceExclusive(k, mm, vpn, vpn + 1).err, NA);
    const r = runSteps(['P mmap buf 1 rw private', 'P write buf[0] = 1', 'device exclusive P buf[0] as x'], name);
    assert.equal(r.status, 'n/a');
  });
}

for (const [name, variant] of MERGED) {
  const keeps = variant === 'v6.15';
  test(`${name}: the device takes the page exclusively (mapcount ${keeps ? 'kept' : 'dropped to 0'}); a CPU access revokes the grant and maps the page again`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 2);
    const pfn = writeOk(k, mm, vpn, 1);
    writeOk(k, mm, vpn + 1, 2);
    const h = grant(k, mm, vpn, vpn + 1);
    assert.equal(h.kind, 'exclusive');
    assert.equal(h.frames[0], pfn);
    assert.equal(h.revoked![0], 0, 'held');
    assert.equal(h.refs[0], 0, 'the grant itself holds no reference');
    const e = rawPte(k, mm, vpn);
    assert.ok(e.bits & PTE_DEVICE_EXCLUSIVE && !(e.bits & PTE_PRESENT), 'a device-exclusive entry replaces the PTE');
    assert.equal(e.entry, pfn);
    assert.equal(Boolean(e.bits & PTE_DEVEXCL_WRITE), !keeps, '5.14-6.14: a writable entry; 6.15: one kind');
    assert.deepEqual([frame(k, pfn).mapcount, frame(k, pfn).refcount], [keeps ? 1 : 0, 1], 'the entry keeps the reference');
    assert.equal(mm.rssAnon, 2, 'still counted in RSS');
    assertConsistent(k);
    // The CPU reads the page: the device is notified first, then the PTE is restored.
    assert.equal(readOk(k, mm, vpn), 1);
    assert.equal(h.revoked![0], 1, 'revoked');
    const p = presentPte(k, mm, vpn);
    assert.equal(p.pfn, pfn);
    assert.equal(p.write, true, 'restored writable (VM_WRITE, an exclusive page)');
    assert.deepEqual([frame(k, pfn).mapcount, frame(k, pfn).refcount], [1, 1], 'the mapping counts again');
    assertConsistent(k);
    const faults = mm.minflt;
    writeOk(k, mm, vpn, 5);
    assert.equal(mm.minflt, faults, 'no further fault');
    assert.equal(k.stats.cowCopies, 0);
    assertConsistent(k);
  });

  test(`${name}: zap of a device-exclusive entry (munmap, exit) frees the page`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 2);
    writeOk(k, mm, vpn, 1);
    writeOk(k, mm, vpn + 1, 2);
    grant(k, mm, vpn, vpn + 2);
    unmapRegion(k, mm, vpn, vpn + 1);
    assert.equal(k.frames.used, 1);
    assert.equal(mm.rssAnon, 1);
    assertConsistent(k);
    exitMmap(k, mm);
    assert.equal(k.frames.used, 0);
    assertConsistent(k, true);
  });

  test(`${name}: fork restores the entry in the parent, shares the page COW and revokes the grant`, () => {
    const k = kernel(name);
    const { mm: p, vpn } = proc(k, 1);
    const pfn = writeOk(k, p, vpn, 1);
    const h = grant(k, p, vpn, vpn + 1);
    const r = dupMmap(k, p);
    assert.equal(r.err, OK);
    const q = r.child!;
    assert.equal(h.revoked![0], 1, 'the fork\'s MMU notifier (PROTECTION_PAGE) revoked it');
    const pp = presentPte(k, p, vpn);
    const qp = presentPte(k, q, vpn);
    assert.equal(pp.pfn, pfn);
    assert.equal(qp.pfn, pfn, 'shared');
    assert.equal(pp.write, false);
    assert.equal(qp.write, false);
    assert.deepEqual([frame(k, pfn).mapcount, frame(k, pfn).refcount], [2, 2]);
    assert.equal(frame(k, pfn).exclusive, false);
    assertConsistent(k);
    writeOk(k, q, vpn, 3);
    assert.equal(readOk(k, p, vpn), 1);
    writeOk(k, p, vpn, 4);
    assert.equal(presentPte(k, p, vpn).pfn, pfn, 'the last user reuses the original');
    assert.equal(readOk(k, q, vpn), 3);
    assertConsistent(k);
  });

  test(`${name}: mprotect(PROT_READ) revokes the grant and the device's atomic is denied; after PROT_READ|PROT_WRITE it is revoked`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 1);
    const pfn = writeOk(k, mm, vpn, 1);
    const h = grant(k, mm, vpn, vpn + 1);
    assert.equal(doMprotect(k, mm, vpn, vpn + 1, 'ro'), OK);
    assert.equal(h.revoked![0], 1, 'change_protection() sends an MMU notifier');
    const e = rawPte(k, mm, vpn);
    assert.equal(e.bits & PTE_DEVEXCL_WRITE, 0, 'no writable entry in a read-only mapping');
    assert.equal(readOk(k, mm, vpn), 1);
    assert.equal(presentPte(k, mm, vpn).write, false);
    assert.equal(presentPte(k, mm, vpn).pfn, pfn);
    assertConsistent(k);
    const steps = ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'device exclusive P buf[0] as x', 'device read x[0] expect 1',
      'P mprotect buf ro', 'device atomic x[0] = 2 expect denied', 'P mprotect buf rw', 'device atomic x[0] = 3 expect revoked',
      'P read buf[0] expect 1', 'P write buf[0] = 4', 'P read buf[0] expect 4'];
    const r = runSteps(steps, name);
    assert.equal(r.status, 'ok', r.violations.map((v) => v.message).join('\n'));
  });
}

test('the device\'s atomic lands in the process\'s page while held; after the CPU touched the page it is revoked', () => {
  const steps = ['P mmap buf 2 rw private', 'P write buf = 1', 'device exclusive P buf as x', 'device atomic x[0] = 2',
    'device atomic x[1] = 3', 'P read buf[0] expect 2', 'device atomic x[0] = 4 expect revoked', 'P read buf[0] expect 2',
    'device atomic x[1] = 5', 'P write buf[1] = 6', 'device atomic x[1] = 7 expect revoked', 'P read buf[1] expect 6'];
  for (const [name] of MERGED) {
    const r = runSteps(steps, name);
    assert.equal(r.status, 'ok', `${name}: ${r.violations.map((v) => v.message).join('; ')}`);
  }
});

test('make_device_exclusive write-faults a COW-shared page first: the grant is on the process\'s own copy', () => {
  for (const [name] of MERGED) {
    const steps = ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'P fork Q', 'device exclusive P buf[0] as x',
      'expect P buf[0] other-frame Q buf[0]', 'device atomic x[0] = 2', 'Q read buf[0] expect 1', 'P read buf[0] expect 2'];
    const r = runSteps(steps, name);
    assert.equal(r.status, 'ok', `${name}: ${r.violations.map((v) => v.message).join('; ')}`);
  }
});

test('the hmm-tests scenarios and the device-exclusive-fork seed: ok from 5.14, n/a before', () => {
  const files = [
    join(ROOT, 'scenarios', 'kernel-tests', 'hmm-exclusive.scn.yaml'),
    join(ROOT, 'scenarios', 'kernel-tests', 'hmm-exclusive-cow.scn.yaml'),
    join(ROOT, 'scenarios', 'kernel-tests', 'hmm-exclusive-mprotect.scn.yaml'),
    join(ROOT, 'scenarios', 'seeds', 'device-exclusive-fork.scn.yaml'),
  ];
  for (const f of files) {
    const sc = parse(readFileSync(f, 'utf8'), f);
    for (const name of ['v5.7', 'v5.9']) assert.equal(runScenario(sc, profileOf(name), { trace: false }).status, 'n/a', `${f} ${name}`);
    for (const [name] of MERGED) {
      const r = runScenario(sc, profileOf(name), { trace: false });
      assert.deepEqual(kindsOf(r), [], `${f} on ${name}: ${r.violations.map((v) => v.message).join('; ')}`);
    }
  }
});


for (const [name] of MERGED) {
  test(`${name}: make_device_exclusive refuses a page that is not anonymous (a shared mapping's shmem page)`,
    () => {
      const steps = ['P mmap sh 1 rw shared', 'P write sh[0] = 1', 'device exclusive P sh[0] as x', 'device atomic x[0] = 2 expect revoked',
        'P fork Q', 'Q read sh[0] expect 1', 'P read sh[0] expect 1'];
      const r = runSteps(steps, name);
      assert.equal(r.status, 'ok', r.violations.map((v) => `${v.step}: ${v.kind}: ${v.message}`).join('\n'));
    });
}

test('mprotect asking for the protection a mapping has already changes nothing (mprotect_fixup returns early): no MMU notifier, the device keeps its grant; a real change revokes it', () => {
  // mprotect_fixup(): newflags == oldflags -> return 0 before change_protection(), whose
  // change_pmd_range() is what calls mmu_notifier_invalidate_range_start(PROTECTION_VMA).
  for (const [name] of MERGED) {
    // The read sees 2 only if the atomic went through: the mprotect that changed nothing did not
    // revoke x. The read restores the PTE; y, taken then, is revoked by a real change.
    const steps = ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'device exclusive P buf[0] as x', 'P mprotect buf[0] rw',
      'device atomic x[0] = 2', 'P read buf[0] expect 2', 'device exclusive P buf[0] as y', 'P mprotect buf[0] ro', 'P mprotect buf[0] rw',
      'device atomic y[0] = 3 expect revoked', 'P read buf[0] expect 2'];
    const r = runSteps(steps, name);
    assert.equal(r.status, 'ok', `${name}: ${r.violations.map((v) => `${v.step}: ${v.message}`).join('; ')}`);
  }
});

test('5.14-6.14: UFFDIO_WRITEPROTECT, un-protecting too, turns a writable device-exclusive entry readable (change_pte_range does it in any change_protection): the CPU access restores the PTE read-only', () => {
  // change_pte_range(), is_swap_pte branch: is_writable_device_exclusive_entry() ->
  // make_readable_device_exclusive_entry(), whatever cp_flags; then MM_CP_UFFD_WP_RESOLVE
  // clears the uffd-wp bit. restore_exclusive_pte() maps a readable entry without write access.
  for (const [name, variant] of MERGED) {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 1);
    const pfn = writeOk(k, mm, vpn, 1);
    assert.equal(uffdRegister(k, mm, vpn, vpn + 1), OK);
    const h = grant(k, mm, vpn, vpn + 1);
    assert.equal(uffdWriteprotect(k, mm, vpn, vpn + 1, false), OK);
    assert.equal(h.revoked![0], 1, 'change_protection told the device (PROTECTION_VMA)');
    assert.equal(rawPte(k, mm, vpn).bits & PTE_DEVEXCL_WRITE, 0, `${name}: a readable entry`);
    assert.equal(readOk(k, mm, vpn), 1);
    const p = presentPte(k, mm, vpn);
    // 6.15 has one kind and asks can_change_pte_writable() (PG_anon_exclusive, VM_WRITE): writable.
    assert.deepEqual([p.pfn, p.write], [pfn, variant === 'v6.15'], name);
    assertConsistent(k);
  }
});

test('a CPU write to a device-exclusive entry is two faults when the restored PTE is read-only (do_swap_page ends after remove_device_exclusive_entry; the write faults again into do_wp_page), one when it is writable', () => {
  // do_swap_page(): is_device_exclusive_entry() -> remove_device_exclusive_entry(), then
  // `goto out`: no do_wp_page in the same fault. The access retries; a store through the
  // read-only PTE restore_exclusive_pte() made faults again, and do_wp_page reuses the page.
  for (const [name, variant] of MERGED) {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 1);
    const pfn = writeOk(k, mm, vpn, 1);
    assert.equal(uffdRegister(k, mm, vpn, vpn + 1), OK);
    grant(k, mm, vpn, vpn + 1);
    // Any change_protection turns a 5.14-6.14 entry readable (the test above).
    assert.equal(uffdWriteprotect(k, mm, vpn, vpn + 1, false), OK);
    const before = mm.minflt;
    assert.equal(writeOk(k, mm, vpn, 7), pfn, `${name}: the same page, reused`);
    assert.equal(mm.minflt - before, variant === 'v6.15' ? 1 : 2, `${name}: faults of the write`);
    assert.equal(k.stats.cowCopies, 0, name);
    assert.equal(readOk(k, mm, vpn), 7);
    assertConsistent(k);
  }
});

test('a PTE restored from a device-exclusive entry is old until an access through it: a CPU load or store makes it young, GUP and the driver\'s hmm_range_fault take it as it is (restore_exclusive_pte: pte_mkold; follow_page_pte and hmm_vma_handle_pte do no pte_mkyoung); a write GUP through a read-only one faults again (do_wp_page: young)', () => {
  const start = ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'device exclusive P buf[0] as x'];
  // The device reads through a revoked grant: mprotect's MMU notifier revokes it, the entry stays.
  const cases: [string, string[], boolean][] = [
    ['a CPU load', ['P read buf[0] expect 1'], true],
    ['a CPU store', ['P write buf[0] = 2'], true],
    ['get_user_pages (FOLL_GET)', ['P gup buf[0] as g ro'], false],
    ['a R/O pin', ['P pin buf[0] as g ro'], false],
    ['a FOLL_WRITE pin of the writable PTE', ['P pin buf[0] as g rw'], false],
    ['the device, revoked (hmm_range_fault)', ['P mprotect buf ro', 'P mprotect buf rw', 'device read x[0] expect 1'], false],
  ];
  for (const [name] of MERGED) {
    for (const [what, steps, young] of cases) {
      const r = runnerAfter([...start, ...steps], name);
      const p = r.procs.get('P')!;
      const vpn = p.regions.get('buf')!.start;
      const pt = presentPte(r.k, p.mm, vpn);
      assert.equal(pt.young, young, `${name}, ${what}: ${young ? 'young' : 'old'}`);
      assertConsistent(r.k);
    }
    // A FOLL_WRITE pin through a read-only restored PTE (5.14-6.14 after a change_protection;
    // on 6.15 the entry is restored writable): do_wp_page reuses the page, young.
    const r = runnerAfter([...start, 'P mprotect buf ro', 'P mprotect buf rw', 'P pin buf[0] as g rw'], name);
    const p = r.procs.get('P')!;
    const pt = presentPte(r.k, p.mm, p.regions.get('buf')!.start);
    assert.deepEqual([pt.write, pt.young], [true, !name.startsWith('v6') || name === 'v6.2'], `${name}: a write pin after mprotect`);
  }
});

// make_device_exclusive_range() (v5.14 .. v6.13 mm/rmap.c): get_user_pages_remote() over the whole
// range first, which stops at the first page it cannot fault (a short count; its errno when that
// is the first page); then each page it got is converted or left NULL in pages[], the loop going
// on. The caller sees only that count: test_hmm's dmirror_exclusive() answers EBUSY when fewer
// pages than asked were converted. 6.15's make_device_exclusive() is one page; the driver's loop
// stops at its first error and returns it (EFAULT from GUP, EOPNOTSUPP for a page that is not
// anonymous).

/** A PTE's kind after the steps: present, device-exclusive entry, or none. */
function kindAt(k: Kernel, mm: Mm, vpn: number): 'present' | 'exclusive' | 'none' {
  const slot = pteSlot(k, mm, vpn);
  const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
  return bits & PTE_PRESENT ? 'present' : bits & PTE_DEVICE_EXCLUSIVE ? 'exclusive' : 'none';
}

/** The `device exclusive` step's observed answer and the PTE kinds of P's region after it. */
function exclusiveOutcome(steps: string[], profile: string, region: string, n: number): { answer: string; kinds: string[]; held: number[] } {
  const r = runnerAfter(steps, profile);
  const p = r.procs.get('P')!;
  const start = p.regions.get(region)!.start;
  const kinds: string[] = [];
  for (let i = 0; i < n; i++) kinds.push(kindAt(r.k, p.mm, start + i));
  const h = r.k.handles.find((x) => x.kind === 'exclusive')!;
  const held = [...h.revoked!].map((x, i) => (x === 0 ? i : -1)).filter((i) => i >= 0);
  const run = runSteps(steps, profile);
  const step = run.steps.find((s) => s.text.startsWith('device exclusive'))!;
  return { answer: step.observations.find((o) => o.kind === 'gup')!.actual, kinds, held };
}

for (const [name, variant] of MERGED) {
  const v615 = variant === 'v6.15';
  test(`${name}: a GUP failure in the middle of the range: ${v615 ? 'the driver stops at it with its errno (EFAULT), holding the pages before it' : 'get_user_pages_remote() stops there (a short count: EBUSY from the driver, which maps none of the pages; the one before it is an entry all the same)'}; the pages after it untouched`, () => {
    const steps = ['P mmap buf 3 rw private nothp', 'P write buf = 1', 'P mprotect buf[1] ro', 'device exclusive P buf as x'];
    const o = exclusiveOutcome(steps, name, 'buf', 3);
    assert.equal(o.answer, v615 ? 'EFAULT' : 'EBUSY');
    assert.deepEqual(o.kinds, ['exclusive', 'present', 'present'], 'page 2 is never reached');
    assert.deepEqual(o.held, v615 ? [0] : []);
    // The CPU reaches the entry all the same: it is restored (and the device, holding nothing, loses nothing).
    const after = runSteps([...steps, 'P read buf[0] expect 1', 'device atomic x[0] = 2 expect revoked', 'P read buf[0] expect 1'], name);
    assert.equal(after.status, 'ok', after.violations.map((v) => `${v.step}: ${v.kind}: ${v.message}`).join('\n'));
  });

  test(`${name}: a GUP failure at the first page: ${v615 ? 'EFAULT' : 'make_device_exclusive_range() returns GUP\'s EFAULT'}, no page of the range converted`, () => {
    const steps = ['P mmap buf 3 rw private nothp', 'P write buf = 1', 'P mprotect buf[0] ro', 'device exclusive P buf as x'];
    const o = exclusiveOutcome(steps, name, 'buf', 3);
    assert.equal(o.answer, 'EFAULT');
    assert.deepEqual(o.kinds, ['present', 'present', 'present']);
    assert.deepEqual(o.held, []);
  });

  test(`${name}: pages that are not anonymous (a shared mapping's shmem pages): ${v615 ? 'EOPNOTSUPP at the first, the driver stops (the others never faulted in)' : 'each is GUP\'d (faulted in) and left NULL, the loop goes on: EBUSY'}`, () => {
    const steps = ['P mmap sh 3 rw shared', 'device exclusive P sh as x'];
    const o = exclusiveOutcome(steps, name, 'sh', 3);
    assert.equal(o.answer, v615 ? 'EOPNOTSUPP' : 'EBUSY');
    assert.deepEqual(o.kinds, v615 ? ['present', 'none', 'none'] : ['present', 'present', 'present']);
    assert.deepEqual(o.held, []);
  });
}

test('the summary of a failed grant names the page that stopped it and the answer', () => {
  const steps = ['P mmap buf 3 rw private nothp', 'P write buf = 1', 'P mprotect buf[1] ro', 'device exclusive P buf as x'];
  const old = runSteps(steps, 'v6.2').steps[3]!.summary;
  assert.match(old, /0 of 3 page\(s\) held.*get_user_pages_remote\(\) stopped at buf\[1\] \(EFAULT\).*EBUSY/);
  const now = runSteps(steps, 'v6').steps[3]!.summary;
  assert.match(now, /1 of 3 page\(s\) held.*make_device_exclusive\(\) failed at buf\[1\].*EFAULT/);
});

// The dirty bit across a device-exclusive entry. Making the entry clears the PTE and moves its
// dirty bit to the folio (5.14 page_make_device_exclusive_one() / 6.15 make_device_exclusive():
// `if (pte_dirty(pteval)) folio_mark_dirty()`), which the FOLL_WRITE|FOLL_TOUCH GUP before it
// dirtied anyway (follow_page_pte(): folio_mark_dirty() when the PTE is clean): the entry keeps
// only the soft-dirty (and uffd-wp) bit. restore_exclusive_pte(): 5.14-6.14
// maybe_mkwrite(pte_mkdirty()) for the writable kind of entry; 6.15 pte_mkdirty() only where
// can_change_pte_writable() makes the PTE writable, and only if the folio is dirty (it is). x86's
// pte_mkdirty() sets the soft-dirty bit too; a read-only restore is clean.
for (const [name, variant] of MERGED) {
  const v615 = variant === 'v6.15';
  test(`${name}: the entry carries no dirty bit; a restore is dirty exactly where it is writable; after clear_refs ${v615 ? 'it stays read-only and clean (soft-dirty tracking waits for the write)' : 'the writable entry comes back writable, dirty and soft-dirty (pte_mkdirty: the tracker misses the write)'}`, () => {
    const r = runnerAfter(['P mmap buf 3 rw private nothp', 'P write buf = 1', 'device exclusive P buf as x'], name);
    const p = r.procs.get('P')!;
    const at = p.regions.get('buf')!.start;
    for (let i = 0; i < 3; i++) {
      const e = rawPte(r.k, p.mm, at + i);
      assert.ok(e.bits & PTE_DEVICE_EXCLUSIVE && !(e.bits & PTE_DIRTY), 'the dirty bit went to the folio');
      assert.ok(e.bits & PTE_SOFT_DIRTY, 'the soft-dirty bit stays in the entry');
    }
    const view = (steps: string[], i: number): [boolean, boolean, boolean] => {
      const after = runnerAfter(['P mmap buf 3 rw private nothp', 'P write buf = 1', 'device exclusive P buf as x', ...steps], name);
      const x = presentPte(after.k, after.procs.get('P')!.mm, at + i);
      return [x.write, x.dirty, x.softDirty];
    };
    assert.deepEqual(view(['P read buf[0]'], 0), [true, true, true], 'writable, so dirty');
    assert.deepEqual(view(['P mprotect buf[1] ro', 'P read buf[1]'], 1), [false, false, true],
      'read-only (mprotect made the entry readable / VM_WRITE is gone): clean, with the entry\'s soft-dirty bit');
    assert.deepEqual(view(['P clear-softdirty', 'P read buf[2]'], 2), v615 ? [false, false, false] : [true, true, true]);
  });
}

// A folio split with a device-exclusive entry in it (MADV_PAGEOUT of another page of the
// PTE-mapped THP). 6.15: the entry keeps its mapping and reference, so the split goes ahead;
// unmap_folio's try_to_migrate_one() notifies the device and makes it a readable exclusive
// migration entry, remap_page's remove_migration_pte() maps the page again read-only and clean,
// soft-dirty and PageAnonExclusive kept. 5.14-6.14: the entries hold references their dropped
// mapcounts do not explain, so can_split_folio() refuses and the device keeps the page.
for (const [name, variant] of MERGED) {
  const v615 = variant === 'v6.15';
  test(`${name}: a THP split for pageout ${v615 ? 'migrates the device-exclusive entry back to a read-only PTE, the device notified' : 'is refused while device-exclusive entries hold references (can_split_folio)'}`, () => {
    // t[1] written (no zero-page remap) and, on 5.14-6.14 (the head's walk converted it), mapped again by a read.
    const r = runnerAfter(['P mmap t 512 rw private thp', 'P write t[0] = 1', 'P write t[1] = 2', 'device exclusive P t[0] as x', 'P read t[1]', 'swapout P t[1]'], name);
    const p = r.procs.get('P')!;
    const at = p.regions.get('t')!.start;
    const h = r.k.handles.find((x) => x.kind === 'exclusive')!;
    const e = rawPte(r.k, p.mm, at);
    assert.equal(r.k.frames.flags[e.entry]! & PG_LARGE ? 'large' : 'small', v615 ? 'small' : 'large');
    if (v615) {
      const x = presentPte(r.k, p.mm, at);
      assert.deepEqual([x.write, x.dirty, x.softDirty], [false, false, true]);
      assert.deepEqual(frame(r.k, e.entry), { refcount: 1, mapcount: 1, anon: true, exclusive: true, value: 1 });
      assert.equal(h.revoked![0], 1, 'the MMU notifier of try_to_migrate_one() told the device');
    } else {
      assert.ok(e.bits & PTE_DEVICE_EXCLUSIVE, 'the entry stays');
      assert.equal(h.revoked![0], 0, 'the device keeps the page');
    }
    assertConsistent(r.k);
  });
}
