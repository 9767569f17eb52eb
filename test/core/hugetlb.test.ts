// hugetlb (mm/hugetlb.c): MAP_HUGETLB mappings of 2 MiB huge pages from a pool. Expected figures
// come from the kernel's rules (docs/design/huge-pages.md section 11): a reservation per huge page
// at mmap, reuse by mapcount in every era, early COW of pinned pages at fork from 5.12
// (4eae4efa2c29), SIGBUS when a COW finds the pool empty, pages back to the pool at munmap.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EINVAL, NA, OK, OOM, PG_ANON_EXCLUSIVE, PG_HUGETLB, PTE_DIRTY, PTE_WRITE, SIGBUS, VM_HUGETLB, VM_WRITE } from '../../src/core/constants.js';
import { dupMmap } from '../../src/core/fork.js';
import { getUserPages, releaseHandle } from '../../src/core/gup.js';
import { DEFAULT_PIN_BIAS, Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { doMadvise, doMmap, doMprotect } from '../../src/core/mmap.js';
import { pmdLeafSlot } from '../../src/core/walk.js';
import { exitMmap, unmapRegion } from '../../src/core/zap.js';
import { cpuAccess } from '../../src/core/access.js';
import { runScenario } from '../../src/engine/run.js';
import { parseScenario } from '../../src/scenario/index.js';
import { assertConsistent, frame, presentPte, profile, pte, readOk, writeOk } from './helpers.js';

/** A kernel whose hugetlb pool holds `hugepages` free huge pages. */
function hkernel(name: string, hugepages: number): Kernel {
  return new Kernel(profile(name), { frames: 1 << 20, pinBias: DEFAULT_PIN_BIAS, hugepages });
}

/** A process with one private hugetlb mapping of `pages` pages. */
function hugeProc(k: Kernel, pages = 512): { mm: Mm; vpn: number } {
  const mm = k.newMm();
  const r = doMmap(k, mm, pages, 'rw', false, false, VM_HUGETLB);
  assert.equal(r.err, OK);
  return { mm, vpn: r.start };
}

function headOf(k: Kernel, mm: Mm, vpn: number): number {
  const s = pmdLeafSlot(k, mm, vpn);
  assert.ok(s >= 0, 'a huge PTE maps it');
  return k.tables.entry[s]!;
}

const PIN = { pin: true, write: true, longterm: true, fast: false, kind: 'pin' as const };
const PIN_RO = { ...PIN, write: false };

test('mmap reserves one huge page per 2 MiB; the first touch consumes it; munmap gives the page back to the pool', () => {
  const k = hkernel('v6', 3);
  const { mm, vpn } = hugeProc(k, 1024);
  assert.equal(k.hugetlb.resv, 2, 'two huge pages reserved at mmap');
  assert.equal(k.hugetlb.free, 3, 'reserved pages are still free');
  writeOk(k, mm, vpn + 3, 5);
  assert.equal(k.hugetlb.resv, 1);
  assert.equal(k.hugetlb.free, 2);
  const head = headOf(k, mm, vpn + 3);
  const f = k.frames;
  assert.ok(f.flags[head]! & PG_HUGETLB);
  assert.equal(f.entireMapcount[head >>> 9], 1);
  assert.equal(f.folioRefcount(head), 1);
  assert.equal(mm.rssAnon, 0, 'hugetlb pages are not RSS');
  assert.equal(mm.hugetlbPages, 512);
  assert.equal(f.used, 0, 'not taken from config.frames');
  assert.equal(readOk(k, mm, vpn + 3), 5);
  assert.equal(readOk(k, mm, vpn + 4), 0, 'the rest of the huge page is zeroed');
  assertConsistent(k);
  // A second mmap asking for more than the unreserved free pages fails (ENOMEM).
  const other = k.newMm();
  assert.equal(doMmap(k, other, 1024, 'rw', false, false, VM_HUGETLB).err, OOM);
  unmapRegion(k, mm, vpn, vpn + 1024);
  assert.equal(k.hugetlb.free, 3, 'the page is back in the pool');
  assert.equal(k.hugetlb.resv, 0, 'the unused reservation is given back');
  assertConsistent(k, true);
});

test('a mmap asking for more huge pages than the pool has fails with ENOMEM and reserves nothing', () => {
  const k = hkernel('v6', 1);
  const mm = k.newMm();
  assert.equal(doMmap(k, mm, 1024, 'rw', false, false, VM_HUGETLB).err, OOM);
  assert.equal(k.hugetlb.resv, 0);
  assert.equal(mm.vmas.length, 0);
});

test('fork shares the huge page write-protected; a write by either copies the whole 2 MiB page from the pool', () => {
  const k = hkernel('v6', 2);
  const { mm: p, vpn } = hugeProc(k);
  writeOk(k, p, vpn, 1);
  const r = dupMmap(k, p);
  assert.equal(r.err, OK);
  const q = r.child!;
  const head = headOf(k, p, vpn);
  assert.equal(headOf(k, q, vpn), head);
  assert.equal(k.frames.entireMapcount[head >>> 9], 2);
  assert.equal(k.frames.folioRefcount(head), 2);
  assert.equal(k.frames.flags[head]! & PG_ANON_EXCLUSIVE, 0, 'PAE cleared when shared');
  assert.equal(k.tables.bits[pmdLeafSlot(k, p, vpn)]! & PTE_WRITE, 0);
  writeOk(k, q, vpn + 9, 2);
  const copy = headOf(k, q, vpn);
  assert.notEqual(copy, head);
  assert.equal(k.frames.value[copy], 1, 'the copy holds all of the old contents');
  assert.equal(readOk(k, p, vpn), 1);
  assert.equal(readOk(k, p, vpn + 9), 0, "the child's write stays in the child");
  assert.equal(readOk(k, q, vpn + 9), 2);
  assert.equal(k.hugetlb.free, 0);
  assertConsistent(k);
  exitMmap(k, q);
  assert.equal(k.hugetlb.free, 1, "the child's copy went back to the pool at exit");
  assertConsistent(k);
});

// hugetlb_wp() (mm/hugetlb.c, 5.19 and 6.18) maps its copy with make_huge_pte(vma, page, !unshare):
// for FAULT_FLAG_UNSHARE (a R/O pin of a shared huge page) huge_pte_wrprotect(mk_huge_pte()) made
// young, never pte_mkdirty: read-only and clean. A write's copy is writable and dirty.
for (const [what, req, writable] of [['a R/O pin (unshare)', PIN_RO, false], ['a write pin (write fault)', PIN, true]] as const) {
  test(`v5.19, v6: hugetlb_wp's copy for ${what} is ${writable ? 'writable and dirty' : 'read-only and clean'} (make_huge_pte(vma, page, !unshare))`, () => {
    for (const name of ['v5.19', 'v6']) {
      const k = hkernel(name, 2);
      const { mm: p, vpn } = hugeProc(k);
      writeOk(k, p, vpn, 1);
      const q = dupMmap(k, p).child!;
      const head = headOf(k, q, vpn);
      const g = getUserPages(k, q, vpn + 3, vpn + 4, req);
      assert.equal(g.err, OK, name);
      const copy = headOf(k, q, vpn);
      assert.notEqual(copy, head, `${name}: the shared huge page is copied for the pin`);
      const bits = k.tables.bits[pmdLeafSlot(k, q, vpn)]!;
      assert.equal((bits & PTE_WRITE) !== 0, writable, name);
      assert.equal((bits & PTE_DIRTY) !== 0, writable, `${name}: pte_mkdirty only with try_mkwrite`);
      assert.equal(readOk(k, q, vpn), 1, name);
      releaseHandle(k, g.handle!);
      assertConsistent(k);
    }
  });
}

test('hugetlb_wp reuses by mapcount in every era: a vmsplice-like reference does not stop the reuse', () => {
  for (const name of ['v5.7', 'v5.9', 'v5.18', 'v6']) {
    const k = hkernel(name, 2);
    const { mm: p, vpn } = hugeProc(k);
    writeOk(k, p, vpn, 1);
    const q = dupMmap(k, p).child!;
    // The child takes a FOLL_GET reference, then unmaps: the parent maps the page alone again.
    const g = getUserPages(k, q, vpn, vpn + 1, { pin: false, write: false, longterm: false, fast: true, kind: 'pipe' });
    assert.equal(g.err, OK);
    const head = g.handle!.frames[0]! & ~511;
    unmapRegion(k, q, vpn, vpn + 512);
    writeOk(k, p, vpn, 2);
    assert.equal(headOf(k, p, vpn), head, `${name}: mapcount 1, reused in place`);
    assert.equal(k.frames.value[g.handle!.frames[0]!], 2, `${name}: the reference sees the parent's new data`);
    releaseHandle(k, g.handle!);
    assertConsistent(k);
  }
});

// fork of a pinned huge page, by profile and pool (config.hugepages): from 5.12 the child gets a copy
// when a huge page is free (early COW) and fork fails (ENOMEM) when none is; before, the page is
// shared write-protected whatever the pool, and the parent's write copies it away from the pin, or,
// with nothing free, takes it back from the child (unmap_ref_private) and reuses it.
const PINNED_FORK: readonly { name: string; pool: number; fork: 'copy' | 'share' | 'ENOMEM'; pinSees: number; child: number | 'SIGBUS' | null }[] = [
  { name: 'v5.9', pool: 2, fork: 'share', pinSees: 1, child: 1 },
  { name: '5.10', pool: 2, fork: 'share', pinSees: 1, child: 1 },
  { name: 'v5.9', pool: 1, fork: 'share', pinSees: 2, child: 'SIGBUS' },
  { name: 'v5.14', pool: 2, fork: 'copy', pinSees: 2, child: 1 },
  { name: '5.15', pool: 2, fork: 'copy', pinSees: 2, child: 1 },
  { name: 'v6', pool: 2, fork: 'copy', pinSees: 2, child: 1 },
  { name: 'v5.14', pool: 1, fork: 'ENOMEM', pinSees: 2, child: null },
  { name: 'v6', pool: 1, fork: 'ENOMEM', pinSees: 2, child: null },
];

for (const row of PINNED_FORK) {
  test(`fork of a pinned huge page, ${row.name} with ${row.pool} huge page(s): ${row.fork}`, () => {
    const k = hkernel(row.name, row.pool);
    const { mm: p, vpn } = hugeProc(k);
    writeOk(k, p, vpn, 1);
    const pin = getUserPages(k, p, vpn, vpn + 1, PIN);
    assert.equal(pin.err, OK);
    const head = headOf(k, p, vpn);
    const r = dupMmap(k, p);
    assert.equal(r.err, row.fork === 'ENOMEM' ? OOM : OK);
    assert.equal(r.child === null, row.fork === 'ENOMEM', 'a child only when fork succeeds');
    const q = r.child;
    if (q !== null) assert.equal(headOf(k, q, vpn) === head, row.fork === 'share', "the child's page");
    assert.equal(k.frames.entireMapcount[head >>> 9], row.fork === 'share' ? 2 : 1, "the parent's page's mappings");
    assert.equal((k.tables.bits[pmdLeafSlot(k, p, vpn)]! & PTE_WRITE) !== 0, row.fork !== 'share', 'the parent keeps write access unless the page is shared');
    assert.equal(cpuAccess(k, p, vpn, true, 2).faults, row.fork === 'share' ? 1 : 0, "the parent's write faults only on a shared page");
    assert.equal(k.frames.value[pin.handle!.frames[0]!], row.pinSees, 'what the pin sees');
    if (q !== null) {
      const c = cpuAccess(k, q, vpn, false, 0);
      assert.equal(c.err === SIGBUS ? 'SIGBUS' : c.value, row.child, "the child's read");
    }
    releaseHandle(k, pin.handle!);
    assertConsistent(k);
  });
}

/**
 * P: `a` (2 pages, written), a hugetlb mapping of two huge pages (both written, the second
 * pinned), `b` (1 page, written), in this address order; the pool holds the two huge pages.
 */
function failingForkSetup(name: string) {
  const k = hkernel(name, 2);
  const p = k.newMm();
  const a = doMmap(k, p, 2, 'rw', false, false).start;
  const h = doMmap(k, p, 1024, 'rw', false, false, VM_HUGETLB).start;
  const b = doMmap(k, p, 1, 'rw', false, false).start;
  assert.ok(a < h && h < b, 'the mappings lie in mmap order');
  for (const [vpn, v] of [[a, 1], [a + 1, 1], [h, 2], [h + 512, 3], [b, 4]] as const) writeOk(k, p, vpn, v);
  const pin = getUserPages(k, p, h + 512, h + 513, PIN);
  assert.equal(pin.err, OK);
  return { k, p, a, h, b, pin: pin.handle! };
}

for (const name of ['v5.14', 'v6']) {
  test(`${name}: a fork failing at a pinned huge page has copied the mappings before it (write-protected, not PAE) and not those after it; the child is gone`, () => {
    const { k, p, a, h, b, pin } = failingForkSetup(name);
    const pae = k.profile.anonExclusive;
    const before = { frames: k.frames.used, tables: k.tables.used, mms: k.mms.length, free: k.hugetlb.free };
    const r = dupMmap(k, p);
    assert.equal(r.err, OOM);
    assert.equal(r.child, null);
    assert.equal(k.mms.length, before.mms, 'the child mm is dropped');
    assert.equal(k.frames.used, before.frames, 'no frame leaked');
    assert.equal(k.tables.used, before.tables, "the child's page tables are freed");
    assert.equal(k.hugetlb.free, before.free, 'no huge page taken');
    // `a` was copied: shared with the child, so write-protected and (5.19+) not exclusive; the child's
    // references are gone again.
    for (const vpn of [a, a + 1]) {
      const t = presentPte(k, p, vpn);
      assert.equal(t.write, false, `a[${vpn - a}] write-protected`);
      assert.deepEqual([frame(k, t.pfn).refcount, frame(k, t.pfn).mapcount, frame(k, t.pfn).exclusive], [1, 1, false], `a[${vpn - a}]: refcount, mapcount, PAE`);
    }
    // The hugetlb mapping was copied up to the pinned page: the huge page before it is write-protected.
    const h0 = headOf(k, p, h);
    assert.equal(k.tables.bits[pmdLeafSlot(k, p, h)]! & PTE_WRITE, 0, 'huge[0] write-protected');
    assert.deepEqual([k.frames.folioRefcount(h0), k.frames.entireMapcount[h0 >>> 9], (k.frames.flags[h0]! & PG_ANON_EXCLUSIVE) !== 0], [1, 1, false]);
    // The pinned huge page, where the copy failed, and `b`, after it: untouched.
    const h1 = headOf(k, p, h + 512);
    assert.notEqual(k.tables.bits[pmdLeafSlot(k, p, h + 512)]! & PTE_WRITE, 0, 'huge[512] still writable');
    assert.deepEqual([k.frames.entireMapcount[h1 >>> 9], (k.frames.flags[h1]! & PG_ANON_EXCLUSIVE) !== 0], [1, pae]);
    const tb = presentPte(k, p, b);
    assert.equal(tb.write, true, 'b still writable');
    assert.equal(frame(k, tb.pfn).exclusive, pae, 'b keeps PAE');
    assertConsistent(k);
    // Writes: a fault that reuses the page where fork write-protected it, none elsewhere.
    for (const [vpn, faults] of [[b, 0], [a, 1], [h, 1], [h + 512, 0], [a, 0]] as const) {
      const old = pte(k, p, vpn)?.pfn ?? headOf(k, p, vpn);
      const w = cpuAccess(k, p, vpn, true, 9);
      assert.equal(w.err, OK);
      assert.equal(w.faults, faults, `faults of the write to page ${vpn}`);
      assert.equal(pte(k, p, vpn)?.pfn ?? headOf(k, p, vpn), old, `page ${vpn} reused in place`);
    }
    assert.equal(frame(k, presentPte(k, p, a).pfn).exclusive, pae, "the reuse makes a[0] exclusive again (5.19+)");
    assert.equal(k.frames.value[pin.frames[0]!], 9, "the pin sees the parent's write");
    releaseHandle(k, pin);
    assertConsistent(k);
  });
}

test('a fork failing at a pinned huge page: the same in steps (fork &, finish), which stop at the hugetlb mapping too', () => {
  const lines = (fork: string[]) => [
    'name: t', 'config:', '  hugepages: 2', 'steps: |',
    '  P mmap a 2 rw private', '  P write a = 1',
    '  P mmap huge 1024 rw private hugetlb', '  P write huge[0] = 2', '  P write huge[512] = 3',
    '  P mmap b 1 rw private', '  P write b = 4',
    '  P pin huge[512] as mr rw longterm',
    ...fork.map((l) => `  ${l}`),
    '  expect P a[0] not-anon-exclusive', '  expect P huge[0] not-anon-exclusive', '  expect P b[0] anon-exclusive',
    '  P write b = 5', '  expect stat minflt.P == 5',
    '  P write a = 6', '  expect stat minflt.P == 7',
    '  P write huge[0] = 7', '  expect stat minflt.P == 8',
    '  P write huge[512] = 8', '  expect stat minflt.P == 8',
    '  device read mr[0] expect 8', '  P unpin mr', '',
  ].join('\n');
  for (const fork of [['P fork Q'], ['P fork Q &', 'P finish']]) {
    const parsed = parseScenario(lines(fork), 't.scn.yaml');
    assert.ok(parsed.ok, fork.join('; '));
    const r = runScenario(parsed.scenario, profile('v6'));
    assert.deepEqual(r.violations.map((v) => `${v.kind}: ${v.message}`), [], fork.join('; '));
    const forks = r.steps.flatMap((st) => st.observations.filter((o) => o.kind === 'fork').map((o) => o.actual));
    assert.deepEqual(forks, ['ENOMEM'], `${fork.join('; ')}: the fork failed`);
  }
});

test('a fork failing at a pinned huge page: the device keeps exclusive access to a page of a mapping after it (no MMU notifier there), not before it', () => {
  const src = [
    'name: t', 'config:', '  hugepages: 1', 'steps: |',
    '  P mmap a 1 rw private', '  P write a = 1',
    '  P mmap huge 512 rw private hugetlb', '  P write huge = 2',
    '  P mmap b 1 rw private', '  P write b = 3',
    '  device exclusive P a as xa', '  device exclusive P b as xb',
    '  P pin huge[0] as mr rw longterm',
    '  P fork Q',
    '  device atomic xa[0] = 4 expect revoked',
    '  device atomic xb[0] = 5',
    '  P read b[0] expect 5',
    '  P unpin mr', '',
  ].join('\n');
  const parsed = parseScenario(src, 't.scn.yaml');
  assert.ok(parsed.ok);
  const r = runScenario(parsed.scenario, profile('v6'));
  assert.deepEqual(r.violations.map((v) => `${v.kind}: ${v.message}`), []);
  assert.deepEqual(r.steps.flatMap((st) => st.observations.filter((o) => o.kind === 'fork').map((o) => o.actual)), ['ENOMEM']);
});

test('a COW with an empty pool: the child gets SIGBUS; the owner takes the page back and the child dies at its next access', () => {
  const k = hkernel('v6', 1);
  const { mm: p, vpn } = hugeProc(k);
  writeOk(k, p, vpn, 1);
  const q = dupMmap(k, p).child!;
  assert.equal(cpuAccess(k, q, vpn, true, 7).err, SIGBUS, 'the child owns no reservation and no page is free');
  assert.equal(readOk(k, p, vpn), 1);
  const head = headOf(k, p, vpn);
  writeOk(k, p, vpn, 2);
  assert.equal(headOf(k, p, vpn), head, 'the owner reuses the page after unmap_ref_private');
  assert.equal(pmdLeafSlot(k, q, vpn), -1, 'the child lost its mapping');
  assert.equal(q.vmas[0]!.hugetlb?.unmapped, true);
  assert.equal(cpuAccess(k, q, vpn, false, 0).err, SIGBUS, "the child's next access is a SIGBUS");
  assertConsistent(k);
});

test('mprotect rw does not make a huge PTE writable: the next write faults and reuses it', () => {
  const k = hkernel('v6', 1);
  const { mm, vpn } = hugeProc(k);
  writeOk(k, mm, vpn, 1);
  assert.equal(doMprotect(k, mm, vpn, vpn + 512, 'ro'), OK);
  assert.equal(doMprotect(k, mm, vpn, vpn + 512, 'rw'), OK);
  const s = pmdLeafSlot(k, mm, vpn);
  assert.equal(k.tables.bits[s]! & PTE_WRITE, 0);
  const head = k.tables.entry[s]!;
  const r = cpuAccess(k, mm, vpn, true, 3);
  assert.equal(r.err, OK);
  assert.equal(r.faults, 1);
  assert.equal(headOf(k, mm, vpn), head);
  assertConsistent(k);
});

test('mprotect rw of a mapping that is rw already changes nothing (mprotect_fixup): the writable huge PTE stays writable, the next write does not fault', () => {
  const k = hkernel('v6', 1);
  const { mm, vpn } = hugeProc(k);
  writeOk(k, mm, vpn, 1);
  assert.equal(doMprotect(k, mm, vpn, vpn + 512, 'rw'), OK);
  const s = pmdLeafSlot(k, mm, vpn);
  assert.notEqual(k.tables.bits[s]! & PTE_WRITE, 0);
  const r = cpuAccess(k, mm, vpn + 7, true, 3);
  assert.equal(r.err, OK);
  assert.equal(r.faults, 0);
  assertConsistent(k);
});

test('scenarios: HugePages_Free and HugePages_Rsvd follow the pool; SIGBUS kills the child and leaks nothing', () => {
  const src = [
    'name: t', 'config:', '  hugepages: 2', 'steps: |',
    '  P mmap huge 512 rw private hugetlb',
    '  expect stat HugePages_Rsvd == 1',
    '  expect stat HugePages_Free == 2',
    '  P write huge = 1',
    '  expect stat HugePages_Free == 1',
    '  P fork Q',
    '  Q fork R',
    '  Q write huge[1] = 2',
    '  expect stat HugePages_Free == 0',
    '  R write huge[1] = 3',
    '  R read huge[1]',
    '  P munmap huge',
    '  Q exit',
    '  expect stat HugePages_Free == 2',
    '',
  ].join('\n');
  const parsed = parseScenario(src, 't.scn.yaml');
  assert.ok(parsed.ok);
  const r = runScenario(parsed.scenario, profile('v6'));
  const kinds = r.violations.map((v) => v.kind);
  // R is killed by SIGBUS at its write (nothing free); every expect stat holds, nothing leaks.
  assert.deepEqual(kinds, ['fault']);
  assert.ok(r.steps.some((s) => /SIGBUS, R is killed/.test(s.summary)));
  assert.ok(r.steps.some((s) => /R has exited: step skipped/.test(s.summary)), "R's read after its death is skipped");
});

test('the parser refuses a hugetlb mapping that is not a whole number of huge pages, naming the line and column', () => {
  const r = parseScenario('name: t\nsteps: |\n  P mmap huge 100 hugetlb\n', 't.scn.yaml');
  assert.ok(!r.ok);
  assert.equal(r.errors[0]!.line, 3);
  assert.equal(r.errors[0]!.col, 15);
  assert.match(r.errors[0]!.message, /multiple of 512/);
});

// hugetlb_vm_op_split(): __split_vma() refuses to split a hugetlb VMA off a huge page boundary with
// EINVAL, so munmap (do_vmi_munmap splits both ends first), mprotect and madvise (mprotect_fixup /
// madvise_update_vma split the VMAs they change) of part of a huge page change nothing.

/** The scenario's run on v6, with `hugepages` in the pool. */
function runSteps(steps: readonly string[], hugepages = 2): ReturnType<typeof runScenario> {
  const parsed = parseScenario(['name: t', 'config:', `  hugepages: ${hugepages}`, 'steps: |', ...steps.map((s) => `  ${s}`), ''].join('\n'), 't.scn.yaml');
  assert.ok(parsed.ok);
  return runScenario(parsed.scenario, profile('v6'));
}

test('munmap of part of a huge page is EINVAL: the mapping, its reservation and its data stay (was an accounting violation)', () => {
  const k = hkernel('v6', 2);
  const { mm, vpn } = hugeProc(k, 1024);
  writeOk(k, mm, vpn + 512, 7);
  for (const [lo, hi] of [[vpn, vpn + 1], [vpn + 1, vpn + 512], [vpn + 511, vpn + 513], [vpn + 512, vpn + 1000]]) {
    assert.equal(unmapRegion(k, mm, lo!, hi!), EINVAL, `munmap of [${lo! - vpn}, ${hi! - vpn})`);
  }
  assert.equal(mm.vmas.length, 1, 'not split');
  assert.equal(k.hugetlb.resv, 1, "the first huge page's reservation is kept");
  assert.equal(readOk(k, mm, vpn + 512), 7);
  // On huge page boundaries it unmaps, giving the page (and the unused reservation) back.
  assert.equal(unmapRegion(k, mm, vpn + 512, vpn + 1024), OK);
  assert.equal(k.hugetlb.resv, 1);
  assert.equal(k.hugetlb.free, 2);
  assert.equal(unmapRegion(k, mm, vpn, vpn + 512), OK);
  assert.equal(k.hugetlb.resv, 0);
  assertConsistent(k);
});

test('scenario: munmap huge[0] of a hugetlb mapping is refused (EINVAL), no violation; the reservation and the page stay', () => {
  const r = runSteps([
    'P mmap huge 512 rw private hugetlb',
    'P munmap huge[0]',
    'expect stat HugePages_Rsvd == 1',
    'P write huge[0] = 1',
    'P read huge[0] expect 1',
    'expect stat HugePages_Rsvd == 0',
    'expect stat HugePages_Free == 1',
  ]);
  assert.equal(r.na, null);
  assert.deepEqual(r.violations.map((v) => `${v.kind}: ${v.message}`), []);
  assert.match(r.steps[1]!.summary, /^P munmap huge\[0\]: EINVAL/);
});

test('mprotect and madvise dontfork of part of a huge page are EINVAL: nothing changes (they were n/a)', () => {
  const r = runSteps([
    'P mmap huge 512 rw private hugetlb',
    'P write huge[0] = 1',
    'P mprotect huge[0..3] ro',
    'P write huge[3] = 2',
    'P madvise huge[5] dontfork',
    'P fork Q',
    'Q read huge[3] expect 2',
    'P mprotect huge ro',
    'P madvise huge dontfork',
  ]);
  assert.equal(r.na, null, r.na?.reason);
  assert.deepEqual(r.violations.map((v) => `${v.kind}: ${v.message}`), []);
  assert.match(r.steps[2]!.summary, /^P mprotect huge\[0\.\.3\] ro: EINVAL/);
  assert.match(r.steps[4]!.summary, /^P madvise huge\[5\] dontfork: EINVAL/);
  assert.doesNotMatch(r.steps[7]!.summary, /EINVAL/, 'the whole huge page: done');
  assert.doesNotMatch(r.steps[8]!.summary, /EINVAL/);
});

// mprotect_fixup() returns at once when the new flags are the old ones (`newflags == oldflags`),
// madvise_update_vma() likewise (`new_flags == vma->vm_flags`): the VMA is not split, so a hugetlb
// VMA (which never merges back: VM_DONTEXPAND) stays one, and its ends may lie anywhere (mm/mprotect.c
// and mm/madvise.c of 5.7.14 and 6.18.2).

test('mprotect of part of a huge page to the protection it has: OK, the VMA left alone (was n/a); to another: EINVAL', () => {
  const k = hkernel('v6', 1);
  const { mm, vpn } = hugeProc(k);
  assert.equal(doMprotect(k, mm, vpn, vpn + 4, 'rw'), OK);
  assert.equal(mm.vmas.length, 1);
  assert.equal(doMprotect(k, mm, vpn, vpn + 4, 'ro'), EINVAL);
  assert.equal(mm.vmas.length, 1);
});

test('mprotect and madvise dontfork/dofork of whole huge pages to the flags they have do not split the hugetlb VMA (it split, and never merged back)', () => {
  const k = hkernel('v6', 2);
  const { mm, vpn } = hugeProc(k, 1024);
  const spans = (): string => mm.vmas.map((v) => `${v.start - vpn}-${v.end - vpn}`).join(' ');
  assert.equal(doMprotect(k, mm, vpn, vpn + 512, 'rw'), OK);
  assert.equal(doMadvise(k, mm, vpn + 512, vpn + 1024, 'dofork'), OK);
  assert.equal(spans(), '0-1024', 'one VMA, as in the kernel');
  // A change splits it on the huge page boundary; the same change again splits nothing more.
  assert.equal(doMadvise(k, mm, vpn, vpn + 512, 'dontfork'), OK);
  assert.equal(spans(), '0-512 512-1024');
  assert.equal(doMadvise(k, mm, vpn, vpn + 1024, 'dontfork'), OK);
  assert.equal(spans(), '0-512 512-1024', 'both dontfork now; hugetlb VMAs do not merge');
  assert.equal(doMprotect(k, mm, vpn + 512, vpn + 1024, 'ro'), OK);
  assert.equal(doMprotect(k, mm, vpn, vpn + 1024, 'ro'), OK);
  assert.equal(spans(), '0-512 512-1024');
  assert.ok(mm.vmas.every((v) => !(v.flags & VM_WRITE)));
  // Part of a huge page of a VMA that has the flag already: the kernel does nothing there.
  assert.equal(doMadvise(k, mm, vpn + 3, vpn + 700, 'dontfork'), OK);
  assert.equal(spans(), '0-512 512-1024');
  assertConsistent(k);
});

test('scenario: mprotect and madvise of part of a huge page to what it has succeed and change nothing (were n/a)', () => {
  const r = runSteps([
    'P mmap huge 512 rw private hugetlb',
    'P write huge[0] = 1',
    'P mprotect huge[0..3] rw',
    'P madvise huge[5] dofork',
    'P write huge[3] = 2',
    'P fork Q',
    'Q read huge[3] expect 2',
  ]);
  assert.equal(r.na, null, r.na?.reason);
  assert.deepEqual(r.violations.map((v) => `${v.kind}: ${v.message}`), []);
  assert.doesNotMatch(r.steps[2]!.summary, /EINVAL/);
  assert.doesNotMatch(r.steps[3]!.summary, /EINVAL/);
});

// do_mprotect_pkey() (and madvise_walk_vmas()) change one VMA after the other and stop at the first
// error: a split refused at the end of the range comes after the VMAs before the last one changed
// (mm/mprotect.c of 5.7.14 and 6.18.2). The model refuses only where nothing was changed before.

test('a refused split at the end after other VMAs changed is n/a; with nothing changed before it, EINVAL', () => {
  const k = hkernel('v6', 2);
  const { mm, vpn } = hugeProc(k, 1024);
  assert.equal(doMadvise(k, mm, vpn + 512, vpn + 1024, 'dontfork'), OK);
  // [0, 512) would become read-only before the split at 701 of [512, 1024) is refused.
  assert.equal(doMprotect(k, mm, vpn, vpn + 701, 'ro'), NA);
  assert.equal(doMadvise(k, mm, vpn, vpn + 701, 'dontfork'), OK, '[512, 1024) is dontfork already: not split at 701, only [0, 512) changes');
  assert.equal(mm.vmas.length, 2);
  assert.equal(doMprotect(k, mm, vpn, vpn + 512, 'ro'), OK);
  assert.equal(doMprotect(k, mm, vpn, vpn + 701, 'ro'), EINVAL, '[0, 512) is read-only already: nothing changed before the refusal');
  assert.equal(mm.vmas.length, 2);
  assert.ok(mm.vmas[1]!.flags & VM_WRITE);
});

// The scenario checker (NameEnv) follows the kernel's refusal: after a refused munmap the pages are
// still mapped, so the region's name may not be bound again; after a refused madvise dontfork the
// child still maps them.

test('checker: a refused munmap leaves the hugetlb pages mapped; mmap of the name again is rejected (was accepted)', () => {
  const parsed = parseScenario(['name: t', 'config:', '  hugepages: 2', 'steps: |',
    '  P mmap huge 512 rw private hugetlb', '  P munmap huge[1..511]', '  P munmap huge[0]', '  P mmap huge 512 rw private hugetlb', ''].join('\n'), 't.scn.yaml');
  assert.ok(!parsed.ok);
  assert.equal(parsed.errors[0]!.line, 8);
  assert.match(parsed.errors[0]!.message, /still has region 'huge' mapped/);
});

test('checker: munmap of whole huge pages, or ending in an unmapped huge page, is done; the name may be bound again', () => {
  const r = runSteps([
    'P mmap huge 1024 rw private hugetlb',
    'P munmap huge[512..1023]',
    // Its end (page 600) is in the huge page already unmapped: nothing to split there.
    'P munmap huge[0..599]',
    'P mmap huge 512 rw private hugetlb',
    'P write huge[0] = 3',
  ]);
  assert.equal(r.na, null, r.na?.reason);
  assert.deepEqual(r.violations.map((v) => `${v.kind}: ${v.message}`), []);
  assert.doesNotMatch(r.steps[2]!.summary, /EINVAL/);
});

test('checker: a refused madvise dofork leaves the VMA dontfork: the child has no such region and may map the name (was rejected)', () => {
  const r = runSteps([
    'P mmap huge 512 rw private hugetlb',
    'P madvise huge dontfork',
    'P madvise huge[0..10] dofork',
    'P fork Q',
    'Q mmap huge 512 rw private hugetlb',
    'Q write huge[0] = 4',
  ]);
  assert.equal(r.na, null, r.na?.reason);
  assert.deepEqual(r.violations.map((v) => `${v.kind}: ${v.message}`), []);
  assert.match(r.steps[2]!.summary, /EINVAL/);
});
