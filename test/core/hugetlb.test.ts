// hugetlb (mm/hugetlb.c): MAP_HUGETLB mappings of 2 MiB huge pages from a pool. Expected figures
// come from the kernel's rules (docs/design/huge-pages.md section 11): a reservation per huge page
// at mmap, reuse by mapcount in every era, early COW of pinned pages at fork from 5.12
// (4eae4efa2c29), SIGBUS when a COW finds the pool empty, pages back to the pool at munmap.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OK, OOM, PG_ANON_EXCLUSIVE, PG_HUGETLB, PTE_WRITE, SIGBUS, VM_HUGETLB } from '../../src/core/constants.js';
import { dupMmap } from '../../src/core/fork.js';
import { getUserPages, releaseHandle } from '../../src/core/gup.js';
import { DEFAULT_PIN_BIAS, Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { doMmap, doMprotect } from '../../src/core/mmap.js';
import { pmdLeafSlot } from '../../src/core/walk.js';
import { exitMmap, unmapRegion } from '../../src/core/zap.js';
import { cpuAccess } from '../../src/core/access.js';
import { runScenario } from '../../src/engine/run.js';
import { parseScenario } from '../../src/scenario/index.js';
import { assertConsistent, profile, readOk, writeOk } from './helpers.js';

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

test('fork of a pinned huge page: the child gets a copy from 5.12 (v5.14, 5.15, v6), the page is shared before (v5.9, 5.10)', () => {
  for (const [name, early] of [['v5.9', false], ['5.10', false], ['v5.14', true], ['5.15', true], ['v6', true]] as const) {
    const k = hkernel(name, 2);
    const { mm: p, vpn } = hugeProc(k);
    writeOk(k, p, vpn, 1);
    const pin = getUserPages(k, p, vpn, vpn + 1, PIN);
    assert.equal(pin.err, OK);
    const head = headOf(k, p, vpn);
    const q = dupMmap(k, p).child!;
    assert.equal(headOf(k, q, vpn) !== head, early, `${name}: the child's page`);
    assert.equal(k.frames.entireMapcount[head >>> 9], early ? 1 : 2, name);
    assert.equal((k.tables.bits[pmdLeafSlot(k, p, vpn)]! & PTE_WRITE) !== 0, early, `${name}: the parent keeps write access only with the early copy`);
    writeOk(k, p, vpn, 2);
    // With the early copy the parent writes through the pinned page; without it the parent's write copies it away.
    assert.equal(k.frames.value[pin.handle!.frames[0]!], early ? 2 : 1, `${name}: what the pin sees`);
    assert.equal(readOk(k, q, vpn), 1, `${name}: the child keeps the old data`);
    releaseHandle(k, pin.handle!);
    assertConsistent(k);
  }
});

test('from 5.12 fork of a pinned huge page fails when the pool has no free page for the copy', () => {
  const k = hkernel('v6', 1);
  const { mm: p, vpn } = hugeProc(k);
  writeOk(k, p, vpn, 1);
  const pin = getUserPages(k, p, vpn, vpn + 1, PIN);
  assert.equal(pin.err, OK);
  const r = dupMmap(k, p);
  assert.equal(r.err, OOM);
  assert.equal(r.child, null);
  assert.equal(k.frames.entireMapcount[headOf(k, p, vpn) >>> 9], 1);
  releaseHandle(k, pin.handle!);
  assertConsistent(k);
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
