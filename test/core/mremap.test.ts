// mremap (src/core/mremap.ts): PTEs move, pages and their counts stay; page tables at the
// destination; whole PTE tables move by their PMD entry; the range rules of each era.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EFAULT, OK, SIGSEGV, VM_DONTCOPY } from '../../src/core/constants.js';
import { dupMmap } from '../../src/core/fork.js';
import { getUserPages } from '../../src/core/gup.js';
import { handleVpn } from '../../src/core/kernel.js';
import { clearSoftDirty, doMadvise, doMprotect } from '../../src/core/mmap.js';
import { doMremap } from '../../src/core/mremap.js';
import { swapOutPage } from '../../src/core/swap.js';
import { unmapRegion } from '../../src/core/zap.js';
import { assertConsistent, frame, kernel, map, presentPte, proc, pte, read, readOk, writeOk } from './helpers.js';

test('a moved page keeps its frame, its counts and PG_anon_exclusive; the PTE is marked soft-dirty', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 2);
  writeOk(k, mm, vpn, 1);
  const pfn = writeOk(k, mm, vpn + 1, 2);
  const before = frame(k, pfn);
  const used = k.frames.used;
  const r = doMremap(k, mm, vpn + 1, vpn + 2);
  assert.equal(r.err, OK);
  assert.equal(r.moved, 1);
  const p = presentPte(k, mm, r.start);
  assert.equal(p.pfn, pfn, 'the same frame, at the new address');
  assert.ok(p.write, 'still writable');
  assert.ok(p.softDirty, 'move_soft_dirty_pte');
  assert.deepEqual(frame(k, pfn), before, 'refcount, mapcount, PG_anon_exclusive unchanged');
  assert.equal(k.frames.used, used, 'nothing allocated, nothing freed');
  assert.equal(pte(k, mm, vpn + 1), null, 'the old PTE is gone');
  assert.equal(read(k, mm, vpn + 1).err, SIGSEGV, 'the old address is unmapped');
  assert.equal(readOk(k, mm, r.start), 2);
  assert.equal(mm.rssAnon, 2, 'RSS unchanged');
  assertConsistent(k);
});

test('a COW-shared page stays shared and write-protected; the first write copies it at the new address', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 1);
  const pfn = writeOk(k, mm, vpn, 1);
  const child = dupMmap(k, mm, false).child!;
  const r = doMremap(k, mm, vpn, vpn + 1);
  assert.equal(r.err, OK);
  const p = presentPte(k, mm, r.start);
  assert.equal(p.pfn, pfn);
  assert.equal(p.write, false, 'still write-protected');
  assert.equal(frame(k, pfn).mapcount, 2);
  const copy = writeOk(k, mm, r.start, 2);
  assert.notEqual(copy, pfn, 'the write copies');
  assert.equal(readOk(k, child, vpn), 1, 'the child keeps its page');
  assertConsistent(k);
});

test('a swap entry moves with its slot; the page comes back at the new address', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 1);
  writeOk(k, mm, vpn, 7);
  assert.equal(swapOutPage(k, mm, vpn), null);
  const slot = pte(k, mm, vpn)!.pfn;
  const r = doMremap(k, mm, vpn, vpn + 1);
  const p = pte(k, mm, r.start)!;
  assert.equal(p.present, false);
  assert.equal(p.pfn, slot, 'the same swap slot');
  assert.equal(k.swap.count[slot], 1);
  assert.equal(readOk(k, mm, r.start), 7);
  assertConsistent(k);
});

test('a pin follows its frame: the handle names the new address', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 3);
  for (let i = 0; i < 3; i++) writeOk(k, mm, vpn + i, i + 1);
  const g = getUserPages(k, mm, vpn + 1, vpn + 3, { kind: 'pin', pin: true, write: true, longterm: true, fast: false });
  assert.equal(g.err, OK);
  const h = g.handle!;
  const r = doMremap(k, mm, vpn + 2, vpn + 3);
  assert.equal(handleVpn(h, 0), vpn + 1, 'the page left behind');
  assert.equal(handleVpn(h, 1), r.start, 'the moved page');
  assert.equal(presentPte(k, mm, r.start).pfn, h.frames[1]);
  assertConsistent(k);
});

test('a whole aligned PTE table moves by its PMD entry; a partial one is copied entry by entry into a new table', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  const big = map(k, mm, 512);
  for (let i = 0; i < 512; i++) writeOk(k, mm, big + i, 1);
  assert.equal(mm.nrTables, 4);
  clearSoftDirty(k, mm);
  assert.equal(presentPte(k, mm, big + 5).softDirty, false);
  const whole = doMremap(k, mm, big, big + 512);
  assert.equal(whole.tablesMoved, 1, 'move_normal_pmd');
  assert.equal(whole.start % 512, 0);
  assert.equal(mm.nrTables, 4, 'no table allocated: the PTE table changed place');
  assert.equal(presentPte(k, mm, whole.start + 5).softDirty, false, 'a table moved whole is not marked soft-dirty');
  assertConsistent(k);

  const part = doMremap(k, mm, whole.start, whole.start + 511);
  assert.equal(part.tablesMoved, 0);
  assert.equal(part.moved, 511);
  assert.equal(mm.nrTables, 5, 'a PTE table at the destination; the old one still maps the last page');
  assert.ok(presentPte(k, mm, part.start).softDirty);
  assertConsistent(k);
});

test('page tables: allocated at the destination, the old one freed once no mapping needs it', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  const big = map(k, mm, 512);
  for (let i = 0; i < 512; i++) writeOk(k, mm, big + i, i);
  assert.equal(mm.nrTables, 4);
  const r1 = doMremap(k, mm, big, big + 511);
  assert.deepEqual([r1.moved, r1.tablesMoved], [511, 0], 'not a whole table: move_ptes');
  assert.equal(mm.nrTables, 5, 'a PTE table at the destination; the old one still maps the last page');
  const r2 = doMremap(k, mm, big + 511, big + 512);
  assert.equal(r2.start, r1.start + 511, 'in the destination\'s table');
  assert.equal(mm.nrTables, 4, 'the old PTE table is freed with the last page it mapped');
  assert.equal(readOk(k, mm, r1.start + 100), 100);
  assert.equal(readOk(k, mm, r2.start), 511);
  assertConsistent(k);
});

test('a range over two VMAs: EFAULT up to 6.16, each VMA moved from 6.17 (mremapMultiVma)', () => {
  for (const [name, multi] of [['v6.15', false], ['v6', true]] as const) {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 3);
    for (let i = 0; i < 3; i++) writeOk(k, mm, vpn + i, i + 1);
    assert.equal(doMprotect(k, mm, vpn + 1, vpn + 2, 'ro'), OK);
    const r = doMremap(k, mm, vpn, vpn + 3);
    assert.equal(r.err, multi ? OK : EFAULT, name);
    if (multi) {
      assert.equal(readOk(k, mm, r.start + 1), 2);
      assert.equal(mm.findVma(r.start + 1)!.start, r.start + 1, 'the read-only VMA moved on its own');
      assert.equal(read(k, mm, vpn).err, SIGSEGV);
    } else {
      assert.equal(readOk(k, mm, vpn + 1), 2, 'nothing moved');
      assert.equal(mm.findVma(r.start), null, 'nothing at the new range');
    }
    assertConsistent(k);
  }
});

test('a range with a hole after its first page: EFAULT up to 6.16, the hole kept from 6.17; an unmapped first page: EFAULT', () => {
  for (const [name, multi] of [['v6.15', false], ['v6', true]] as const) {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 3);
    writeOk(k, mm, vpn, 1);
    writeOk(k, mm, vpn + 2, 3);
    unmapRegion(k, mm, vpn + 1, vpn + 2);
    const r = doMremap(k, mm, vpn, vpn + 3);
    assert.equal(r.err, multi ? OK : EFAULT, name);
    if (multi) {
      assert.equal(readOk(k, mm, r.start), 1);
      assert.equal(mm.findVma(r.start + 1), null, 'the hole stays a hole');
      assert.equal(readOk(k, mm, r.start + 2), 3);
    } else {
      assert.equal(readOk(k, mm, vpn + 2), 3, 'nothing moved');
    }
    assert.equal(doMremap(k, mm, vpn + 1, vpn + 2).err, EFAULT, 'the first page is not mapped');
    assertConsistent(k);
  }
});

test('the moved VMA keeps its flags and its page offset: it does not merge with a fresh neighbour', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 2);
  writeOk(k, mm, vpn + 1, 1);
  doMadvise(k, mm, vpn + 1, vpn + 2, 'dontfork');
  const r = doMremap(k, mm, vpn + 1, vpn + 2);
  const moved = mm.findVma(r.start)!;
  assert.ok(moved.flags & VM_DONTCOPY, 'VM_DONTCOPY moved with the mapping');
  assert.notEqual(moved.pgoffShift, 0);
  doMadvise(k, mm, r.start, r.start + 1, 'dofork');
  const next = map(k, mm, 1);
  assert.equal(next, r.start + 1, 'placed right after it');
  writeOk(k, mm, next, 2);
  assert.notEqual(mm.findVma(next), mm.findVma(r.start), 'vm_pgoff does not line up: two VMAs');
  assertConsistent(k);
});
