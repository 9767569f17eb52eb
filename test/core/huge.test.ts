// Transparent huge pages (mm/huge_memory.c): the counts a PMD-mapped folio carries, its split,
// fork, its write fault per era, pins on its pages. Expected figures come from the kernel's rules
// (docs/design/huge-pages.md sections 1-7), not from the model's output.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OK, PG_ANON_EXCLUSIVE, PG_LARGE, VM_HUGEPAGE } from '../../src/core/constants.js';
import { dupMmap } from '../../src/core/fork.js';
import { getUserPages } from '../../src/core/gup.js';
import { Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { doMmap, doMprotect } from '../../src/core/mmap.js';
import { pmdLeafSlot } from '../../src/core/walk.js';
import { unmapRegion } from '../../src/core/zap.js';
import { AccountingChecker } from '../../src/check/accounting.js';
import { assertConsistent, kernel, profile, readOk, writeOk } from './helpers.js';

/** A process with one MADV_HUGEPAGE mapping of `pages` pages (2 MiB-aligned by the model). */
function thpProc(k: Kernel, pages = 512): { mm: Mm; vpn: number } {
  const mm = k.newMm();
  const r = doMmap(k, mm, pages, 'rw', false, false, VM_HUGEPAGE);
  assert.equal(r.err, OK);
  return { mm, vpn: r.start };
}

test('a write fault in a THP-enabled 2 MiB range maps one PMD: refcount 1, entire mapcount 1, PAE head, 512 pages of RSS', () => {
  const k = kernel('v6');
  const { mm, vpn } = thpProc(k);
  writeOk(k, mm, vpn + 5, 7);
  const s = pmdLeafSlot(k, mm, vpn);
  assert.ok(s >= 0, 'a huge PMD');
  const head = k.tables.entry[s]!;
  assert.equal(head % 512, 0);
  const f = k.frames;
  assert.equal(f.folioRefcount(head + 300), 1);
  assert.equal(f.entireMapcount[head >>> 9], 1);
  assert.equal(f.mapcount[head + 5], 0, 'no PTE maps a page of it');
  assert.ok(f.flags[head]! & PG_ANON_EXCLUSIVE);
  assert.equal(mm.rssAnon, 512);
  assert.equal(f.used, 512);
  assert.equal(readOk(k, mm, vpn + 5), 7);
  assert.equal(readOk(k, mm, vpn + 6), 0);
  assertConsistent(k);
});

test('config.thp never, or a range too small for a PMD, gets 4 KiB pages', () => {
  const never = new Kernel(profile('v6'), { frames: 1 << 20, pinBias: 1024, thp: 'never' });
  const a = thpProc(never);
  writeOk(never, a.mm, a.vpn, 1);
  assert.equal(pmdLeafSlot(never, a.mm, a.vpn), -1);
  assert.equal(never.frames.used, 1);
  const k = kernel('v6');
  const b = thpProc(k, 511);
  writeOk(k, b.mm, b.vpn, 1);
  assert.equal(pmdLeafSlot(k, b.mm, b.vpn), -1);
});

test('a read fault maps the huge zero page where the profile has it, else allocates the THP', () => {
  const k = kernel('v6');
  const { mm, vpn } = thpProc(k);
  assert.equal(readOk(k, mm, vpn + 9), 0);
  assert.equal(k.frames.used, 0, 'the huge zero page takes no frame');
  assert.ok(pmdLeafSlot(k, mm, vpn) >= 0);
  const k2 = kernel('v6', { sets: ['thpUseZeroPage=false'] });
  const p = thpProc(k2);
  readOk(k2, p.mm, p.vpn);
  assert.equal(k2.frames.used, 512);
  assertConsistent(k);
  assertConsistent(k2);
});

test('munmap of half a THP splits its PMD: 256 PTEs keep the folio, PAE copied to every page; the rest frees it', () => {
  const k = kernel('v6');
  const { mm, vpn } = thpProc(k);
  writeOk(k, mm, vpn, 1);
  const head = k.tables.entry[pmdLeafSlot(k, mm, vpn)]!;
  unmapRegion(k, mm, vpn, vpn + 256);
  assert.equal(pmdLeafSlot(k, mm, vpn), -1);
  const f = k.frames;
  assert.equal(f.entireMapcount[head >>> 9], 0);
  assert.equal(f.folioRefcount(head), 256, 'one reference per remaining PTE');
  assert.equal(f.mapcount[head + 300], 1);
  assert.ok(f.flags[head + 300]! & PG_ANON_EXCLUSIVE);
  assert.ok(f.flags[head]! & PG_LARGE, 'still one large folio (deferred split)');
  assert.equal(mm.rssAnon, 256);
  assertConsistent(k);
  unmapRegion(k, mm, vpn + 256, vpn + 512);
  assert.equal(f.used, 0);
  assertConsistent(k, true);
});

test('fork shares the PMD write-protected; the write copies the whole THP on v5.7, one 4 KiB page from v5.8', () => {
  for (const [name, copies, hugeAfter] of [['v5.7', 512, 2048], ['v5.8', 1, 0]] as const) {
    const k = kernel(name);
    const { mm, vpn } = thpProc(k);
    writeOk(k, mm, vpn, 1);
    const child = dupMmap(k, mm).child!;
    const head = k.tables.entry[pmdLeafSlot(k, mm, vpn)]!;
    assert.equal(k.frames.entireMapcount[head >>> 9], 2);
    assert.equal(k.frames.folioRefcount(head), 2);
    assert.equal(child.rssAnon, 512);
    writeOk(k, child, vpn + 3, 2);
    assert.equal(k.stats.cowCopies, copies, name);
    assert.equal(readOk(k, mm, vpn + 3), 0, `${name}: the parent keeps its data`);
    assert.equal(readOk(k, child, vpn + 3), 2);
    assert.equal(readOk(k, child, vpn), 1);
    assertConsistent(k);
    // The parent's PMD stays; the child's was replaced (v5.7) or split (v5.8).
    assert.ok(pmdLeafSlot(k, mm, vpn) >= 0);
    assert.equal(pmdLeafSlot(k, child, vpn) >= 0, hugeAfter > 0, name);
  }
});

test('a pin on one page of a THP counts exactly: refcount +1, pin count +1, the whole folio maybe pinned', () => {
  const k = kernel('v6');
  const { mm, vpn } = thpProc(k);
  writeOk(k, mm, vpn, 1);
  const r = getUserPages(k, mm, vpn + 7, vpn + 8, { pin: true, write: true, longterm: true, fast: false, kind: 'pin' });
  assert.equal(r.err, OK);
  const head = k.tables.entry[pmdLeafSlot(k, mm, vpn)]!;
  assert.equal(k.frames.folioRefcount(head), 2);
  assert.equal(k.frames.pincount[head >>> 9], 1);
  assertConsistent(k);
  // fork from 5.9: the maybe-pinned THP is split and each of its pages copied for the child.
  const child = dupMmap(k, mm).child!;
  assert.equal(k.stats.earlyCow, 512);
  assert.equal(pmdLeafSlot(k, mm, vpn), -1);
  assert.equal(child.rssAnon, 512);
  assertConsistent(k);
});

test('mprotect of a whole THP keeps its PMD; of part of it splits it', () => {
  const k = kernel('v5.19');
  const { mm, vpn } = thpProc(k);
  writeOk(k, mm, vpn, 1);
  assert.equal(doMprotect(k, mm, vpn, vpn + 512, 'ro'), OK);
  assert.ok(pmdLeafSlot(k, mm, vpn) >= 0);
  assert.equal(doMprotect(k, mm, vpn, vpn + 512, 'rw'), OK);
  writeOk(k, mm, vpn, 2);
  assert.equal(k.stats.reuses, 1, 'PAE head: reused');
  assert.equal(doMprotect(k, mm, vpn + 1, vpn + 2, 'ro'), OK);
  assert.equal(pmdLeafSlot(k, mm, vpn), -1);
  assertConsistent(k);
});

test('the checker catches a wrong entire mapcount and a wrong pin count of a large folio', () => {
  const k = kernel('v6');
  const { mm, vpn } = thpProc(k);
  writeOk(k, mm, vpn, 1);
  const head = k.tables.entry[pmdLeafSlot(k, mm, vpn)]!;
  k.frames.entireMapcount[head >>> 9] = 2;
  k.frames.pincount[head >>> 9] = 1;
  const msgs = new AccountingChecker().check(k).map((p) => p.message).join('\n');
  assert.match(msgs, /entire mapcount 2 but 1 huge PMDs/);
  assert.match(msgs, /pincount 1 but 0 pins/);
});

test('munmap of a whole shared THP drops its PMD at once (zap_huge_pmd): the other mapping keeps its PMD; the last unmap frees the folio', () => {
  const k = kernel('v6');
  const { mm, vpn } = thpProc(k);
  writeOk(k, mm, vpn, 1);
  const child = dupMmap(k, mm).child!;
  const head = k.tables.entry[pmdLeafSlot(k, mm, vpn)]!;
  const tables = mm.nrTables;
  const seen = k.events.length;
  unmapRegion(k, mm, vpn, vpn + 512);
  assert.ok(!k.events.slice(seen).some((e) => e.why.includes('split')), 'nothing was split');
  const f = k.frames;
  assert.equal(pmdLeafSlot(k, mm, vpn), -1);
  assert.ok(pmdLeafSlot(k, child, vpn) >= 0, 'the child still maps it by its PMD');
  assert.equal(f.entireMapcount[head >>> 9], 1, 'one PMD mapping left');
  assert.equal(f.folioRefcount(head), 1);
  for (const p of [head, head + 1, head + 511]) assert.equal(f.mapcount[p], 0, 'no page was mapped by a PTE (no split)');
  assert.equal(mm.rssAnon, 0);
  assert.ok(mm.nrTables < tables, 'the deposited table went with the PMD');
  assertConsistent(k);
  unmapRegion(k, child, vpn, vpn + 512);
  assert.equal(f.used, 0);
  assertConsistent(k, true);
});
