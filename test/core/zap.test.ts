// Tearing down: munmap (zap_pte_range + free_pgtables), MADV_DONTNEED, exit_mmap (zap_pte_range,
// free_pgd_range's floor/ceiling rule).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OK, SIGSEGV } from '../../src/core/constants.js';
import { dupMmap } from '../../src/core/fork.js';
import type { Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { doMadvise } from '../../src/core/mmap.js';
import { exitMmap, unmapRegion } from '../../src/core/zap.js';
import {
  assertConsistent, frame, kernel, map, presentPte, pte, read, readOk, write, writeOk,
} from './helpers.js';

function fill(k: Kernel, mm: Mm, vpn: number, n: number, value = 1): void {
  for (let i = 0; i < n; i++) writeOk(k, mm, vpn + i, value + i);
}

test('munmap of a whole 2 MiB-aligned 512-page region frees its frames and its PTE table', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  const small = map(k, mm, 1);
  const big = map(k, mm, 512);
  assert.equal(big % 512, 0, 'a PMD-sized mapping is PMD-aligned');
  assert.ok(Math.floor(big / 512) !== Math.floor(small / 512), 'in another PTE table than the small one');
  writeOk(k, mm, small, 9);
  fill(k, mm, big, 512);
  assert.equal(mm.nrTables, 5, 'PGD, PUD, PMD and two PTE tables');
  assert.equal(k.frames.used, 513);
  unmapRegion(k, mm, big, big + 512);
  assert.equal(k.frames.used, 1);
  assert.equal(mm.rssAnon, 1);
  assert.equal(mm.nrTables, 4, 'the PTE table is freed; PUD and PMD still serve the small mapping');
  assert.equal(k.tables.used, 4);
  assert.equal(mm.findVma(big), null);
  assert.equal(read(k, mm, big + 7).err, SIGSEGV);
  assert.equal(readOk(k, mm, small), 9);
  assertConsistent(k);
});

test('munmap of the only mapping frees every table but the PGD', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  const vpn = map(k, mm, 512, 'rw', false, true);
  assert.equal(k.frames.used, 512, 'MAP_POPULATE faulted every page in');
  assert.equal(mm.nrTables, 4);
  unmapRegion(k, mm, vpn, vpn + 512);
  assert.equal(mm.nrTables, 1);
  assert.equal(k.tables.used, 1);
  assert.equal(k.frames.used, 0);
  assertConsistent(k);
});

test('a neighbouring mapping keeps a shared PTE table alive; unmapping it too frees the table', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  const a = map(k, mm, 1);
  const b = map(k, mm, 1);
  assert.equal(b, a + 1, 'adjacent: one PTE table covers both');
  writeOk(k, mm, a, 1);
  writeOk(k, mm, b, 2);
  assert.equal(mm.nrTables, 4);
  unmapRegion(k, mm, a, a + 1);
  assert.equal(mm.nrTables, 4, 'b still needs the table');
  assert.equal(pte(k, mm, a), null);
  assert.equal(read(k, mm, a).err, SIGSEGV);
  assert.equal(readOk(k, mm, b), 2);
  assert.equal(k.frames.used, 1);
  unmapRegion(k, mm, b, b + 1);
  assert.equal(mm.nrTables, 1);
  assert.equal(k.frames.used, 0);
  assertConsistent(k);
});

test('munmap of the middle of a mapping splits it and frees only that range', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  const v = map(k, mm, 4);
  fill(k, mm, v, 4, 10);
  unmapRegion(k, mm, v + 1, v + 3);
  assert.equal(mm.vmas.length, 2);
  assert.equal(k.frames.used, 2);
  assert.equal(mm.rssAnon, 2);
  assert.equal(read(k, mm, v + 1).err, SIGSEGV);
  assert.equal(write(k, mm, v + 2, 1).err, SIGSEGV);
  assert.equal(readOk(k, mm, v), 10);
  assert.equal(readOk(k, mm, v + 3), 13);
  assertConsistent(k);
});

test('munmap of an untouched mapping, and of nothing at all, changes nothing else', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  const v = map(k, mm, 8);
  unmapRegion(k, mm, v, v + 8);
  unmapRegion(k, mm, v, v + 8);
  assert.equal(mm.vmas.length, 0);
  assert.equal(mm.nrTables, 1);
  assertConsistent(k);
});

test('unmapping a page another process still maps drops one mapping and one reference only', () => {
  const k = kernel('v6');
  const p = k.newMm();
  const v = map(k, p, 1);
  const pfn = writeOk(k, p, v, 5);
  const q = dupMmap(k, p).child!;
  unmapRegion(k, p, v, v + 1);
  assert.deepEqual([frame(k, pfn).mapcount, frame(k, pfn).refcount], [1, 1]);
  assert.equal(k.frames.used, 1);
  assert.equal(readOk(k, q, v), 5);
  unmapRegion(k, q, v, v + 1);
  assert.equal(k.frames.inUse(pfn), false, 'the last mapping gone, the frame is freed');
  assertConsistent(k);
});

test('MADV_DONTNEED drops the pages but keeps the mapping and its tables: the next read sees zeros', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  const v = map(k, mm, 2);
  fill(k, mm, v, 2, 1);
  assert.equal(doMadvise(k, mm, v, v + 1, 'dontneed'), OK);
  assert.equal(k.frames.used, 1);
  assert.equal(mm.rssAnon, 1);
  assert.equal(pte(k, mm, v), null);
  assert.ok(mm.findVma(v));
  assert.equal(mm.nrTables, 4);
  const r = read(k, mm, v);
  assert.deepEqual([r.err, r.value, r.pfn], [OK, 0, 0]);
  assert.equal(readOk(k, mm, v + 1), 2);
  assertConsistent(k);
});

test('MADV_DONTNEED of a page shared with a child: the child keeps the data', () => {
  const k = kernel('v6');
  const p = k.newMm();
  const v = map(k, p, 1);
  const pfn = writeOk(k, p, v, 3);
  const q = dupMmap(k, p).child!;
  doMadvise(k, p, v, v + 1, 'dontneed');
  assert.equal(readOk(k, p, v), 0);
  assert.equal(readOk(k, q, v), 3);
  assert.deepEqual([frame(k, pfn).mapcount, frame(k, pfn).refcount], [1, 1]);
  assertConsistent(k);
});

test('exit frees every frame only it held and every page table it owned', () => {
  const k = kernel('v6');
  const p = k.newMm();
  const v = map(k, p, 3);
  fill(k, p, v, 3, 1);
  const q = dupMmap(k, p).child!;
  writeOk(k, q, v, 100); // Q's own copy of page 0
  map(k, q, 1024);
  writeOk(k, q, q.vmas[q.vmas.length - 1]!.start + 600, 1); // more tables in Q
  const pTables = p.nrTables;
  assert.ok(q.nrTables > 4);
  exitMmap(k, q);
  assert.equal(q.alive, false);
  assert.equal(q.nrTables, 0, 'no table left for the exited mm');
  assert.equal(q.rssAnon, 0);
  assert.equal(k.tables.used, pTables, 'only the parent\'s tables remain');
  assert.equal(k.frames.used, 3, 'Q\'s copy and Q\'s new page are freed; the shared ones stay for P');
  for (let i = 0; i < 3; i++) assert.equal(frame(k, presentPte(k, p, v + i).pfn).mapcount, 1);
  assertConsistent(k);
  exitMmap(k, p);
  assert.equal(k.frames.used, 0);
  assert.equal(k.tables.used, 0);
  assertConsistent(k, true);
});
