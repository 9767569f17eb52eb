// fork(): dup_mmap + copy_page_range (copy_present_pte, early COW at fork; as seen on a live kernel).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OK, OOM, SIGSEGV, VM_WIPEONFORK } from '../../src/core/constants.js';
import { dupMmap } from '../../src/core/fork.js';
import type { Handle, Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { doMadvise } from '../../src/core/mmap.js';
import { exitMmap, unmapRegion } from '../../src/core/zap.js';
import {
  assertConsistent, frame, kernel, map, presentPte, proc, pte, read, readOk, write, writeOk,
} from './helpers.js';

function fork(k: Kernel, parent: Mm): Mm {
  const r = dupMmap(k, parent);
  assert.equal(r.err, OK, 'fork failed');
  assert.ok(r.child);
  return r.child;
}

/**
 * A long-term pin taken by hand on the page P maps at vpn: refcount + pin bias, MMF_HAS_PINNED,
 * and a handle holding it so that the accounting stays exact.
 */
function pinByHand(k: Kernel, mm: Mm, vpn: number): number {
  const pfn = presentPte(k, mm, vpn).pfn;
  const bias = k.config.pinBias;
  k.frames.addRefcount(pfn, bias);
  mm.hasPinned = true;
  const h: Handle = {
    id: k.handles.length, kind: 'pin', mm: mm.id, vpn, frames: [pfn], refs: [bias],
    write: true, longterm: true, released: false, revoked: null, vpns: null,
  };
  k.handles.push(h);
  return pfn;
}

for (const [name, pae] of [['v5.7', false], ['v5.9', false], ['v6', true]] as const) {
  test(`${name}: fork shares every private page: same frame, read-only in both, mapcount and refcount +1`, () => {
    const k = kernel(name);
    const { mm: p, vpn } = proc(k, 2);
    const a = writeOk(k, p, vpn, 1);
    const b = writeOk(k, p, vpn + 1, 2);
    assert.equal(frame(k, a).exclusive, pae);
    const used = k.frames.used;
    const q = fork(k, p);
    for (const [v, pfn] of [[vpn, a], [vpn + 1, b]] as const) {
      const pp = presentPte(k, p, v);
      const qp = presentPte(k, q, v);
      assert.equal(pp.pfn, pfn);
      assert.equal(qp.pfn, pfn, 'the child maps the same frame');
      assert.equal(pp.write, false, 'the parent loses write access');
      assert.equal(qp.write, false, 'the child starts read-only');
      assert.equal(qp.young, false, 'the child PTE is old (pte_mkold)');
      assert.equal(qp.dirty, true, 'a private PTE keeps its dirty bit');
      assert.deepEqual([frame(k, pfn).mapcount, frame(k, pfn).refcount], [2, 2]);
      assert.equal(frame(k, pfn).exclusive, false, 'PG_anon_exclusive cleared on sharing');
    }
    assert.equal(k.frames.used, used, 'no data page is copied');
    assert.equal(k.stats.cowCopies, 0);
    assert.equal(q.rssAnon, 2);
    assert.equal(q.nrTables, 4);
    assert.equal(readOk(k, q, vpn), 1);
    assert.equal(readOk(k, q, vpn + 1), 2);
    assert.equal(q.mmapNext, p.mmapNext, 'the child inherits the address-space layout');
    assertConsistent(k);
  });
}

test('fork copies a zero-page PTE as the zero page (no reference) when the mapping has an anon_vma', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 2);
  readOk(k, p, vpn);
  writeOk(k, p, vpn + 1, 3);
  const q = fork(k, p);
  const qp = presentPte(k, q, vpn);
  assert.equal(qp.pfn, 0);
  assert.equal(qp.special, true);
  assert.equal(k.frames.refcount[0], 0);
  assert.equal(q.rssAnon, 1, 'only the real page counts');
  assert.equal(read(k, q, vpn).faults, 0, 'the child reads it without a fault');
  assertConsistent(k);
});

test('a mapping that was only read (no anon_vma) is not copied: the child faults on demand (vma_needs_copy)', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 1);
  readOk(k, p, vpn);
  const q = fork(k, p);
  assert.ok(q.findVma(vpn), 'the child has the mapping');
  assert.equal(pte(k, q, vpn), null, 'but no PTE');
  assert.equal(q.nrTables, 1, 'nor page tables for it');
  const r = read(k, q, vpn);
  assert.deepEqual([r.err, r.value, r.pfn, r.faults], [OK, 0, 0, 1]);
  assertConsistent(k);
});

test('MADV_DONTFORK: the child has no mapping there (SIGSEGV); the parent keeps its writable exclusive PTE', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 2);
  const a = writeOk(k, p, vpn, 1);
  const b = writeOk(k, p, vpn + 1, 2);
  assert.equal(doMadvise(k, p, vpn, vpn + 1, 'dontfork'), OK);
  const q = fork(k, p);
  assert.equal(q.findVma(vpn), null, 'VM_DONTCOPY: no VMA in the child');
  assert.equal(read(k, q, vpn).err, SIGSEGV);
  assert.equal(write(k, q, vpn, 9).err, SIGSEGV);
  const pp = presentPte(k, p, vpn);
  assert.equal(pp.write, true, 'the parent PTE is not write-protected');
  assert.deepEqual(frame(k, a), { refcount: 1, mapcount: 1, anon: true, exclusive: true, value: 1 });
  // The rest of the mapping was inherited as usual.
  assert.equal(presentPte(k, q, vpn + 1).pfn, b);
  assert.equal(frame(k, b).mapcount, 2);
  // The parent's next write to the dontfork page takes no fault.
  assert.equal(write(k, p, vpn, 5).faults, 0);
  assertConsistent(k);
});

test('MADV_WIPEONFORK: the child mapping exists but is empty (reads zeros); the parent is untouched', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 1);
  const a = writeOk(k, p, vpn, 1);
  assert.equal(doMadvise(k, p, vpn, vpn + 1, 'wipeonfork'), OK);
  const q = fork(k, p);
  const vma = q.findVma(vpn);
  assert.ok(vma, 'the child has the VMA');
  assert.equal(vma.anonVma, false, 'with no anon_vma');
  assert.ok(vma.flags & VM_WIPEONFORK, 'and the flag is inherited');
  assert.equal(pte(k, q, vpn), null, 'no PTE');
  assert.equal(q.rssAnon, 0);
  assert.equal(readOk(k, q, vpn), 0);
  assert.equal(presentPte(k, p, vpn).write, true, 'copy_page_range is skipped: the parent is not write-protected');
  assert.deepEqual(frame(k, a), { refcount: 1, mapcount: 1, anon: true, exclusive: true, value: 1 });
  // The child's own data is wiped again for a grandchild.
  writeOk(k, q, vpn, 7);
  const g = fork(k, q);
  assert.equal(readOk(k, g, vpn), 0);
  assert.equal(readOk(k, q, vpn), 7);
  assertConsistent(k);
});

test('MADV_WIPEONFORK on a shared mapping is refused (EINVAL)', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 1, 'rw', true);
  assert.notEqual(doMadvise(k, p, vpn, vpn + 1, 'wipeonfork'), OK);
  assert.equal(p.findVma(vpn)!.flags & VM_WIPEONFORK, 0);
});

test('a shared mapping\'s PTEs are not copied: the child faults the same page in; nothing is write-protected', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 1, 'rw', true);
  const pfn = writeOk(k, p, vpn, 4);
  const q = fork(k, p);
  assert.equal(pte(k, q, vpn), null);
  assert.equal(presentPte(k, p, vpn).write, true);
  assert.equal(frame(k, pfn).mapcount, 1);
  const r = read(k, q, vpn);
  assert.deepEqual([r.err, r.value, r.pfn, r.faults], [OK, 4, pfn, 1]);
  assert.equal(frame(k, pfn).mapcount, 2);
  assert.equal(frame(k, pfn).refcount, 3, 'two mappings and the page cache');
  // A write in the child is seen by the parent: one page, no COW.
  writeOk(k, q, vpn, 5);
  assert.equal(readOk(k, p, vpn), 5);
  assert.equal(k.stats.cowCopies, 0);
  assertConsistent(k);
});

// ---- early COW of maybe-pinned pages (seed 000, 70e806e4e645) ------------------------------------

for (const [name, pae] of [['v5.9', false], ['v6', true]] as const) {
  test(`${name}: fork copies a pinned page into the child at once (early COW); the parent stays writable`, () => {
    const k = kernel(name);
    const { mm: p, vpn } = proc(k, 2);
    const a = writeOk(k, p, vpn, 11);
    const b = writeOk(k, p, vpn + 1, 12);
    pinByHand(k, p, vpn);
    const before = frame(k, a);
    const q = fork(k, p);
    const qp = presentPte(k, q, vpn);
    assert.notEqual(qp.pfn, a, 'the child has a frame of its own');
    assert.deepEqual(frame(k, qp.pfn), { refcount: 1, mapcount: 1, anon: true, exclusive: pae, value: 11 });
    assert.equal(qp.write, true, 'the copy is mapped writable');
    // copy_present_page: folio_mk_pte(vm_page_prot) (x86: _PAGE_ACCESSED), pte_mkdirty: young, dirty, soft-dirty.
    assert.deepEqual([qp.young, qp.dirty, qp.softDirty], [true, true, true], 'the copy\'s PTE');
    const pp = presentPte(k, p, vpn);
    assert.equal(pp.pfn, a);
    assert.equal(pp.write, true, 'the parent PTE is left untouched');
    assert.deepEqual(frame(k, a), before, 'the pinned page: same refcount, mapcount and flags');
    assert.equal(k.stats.earlyCow, 1);
    assert.equal(k.stats.cowCopies, 1);
    // The unpinned page is shared as usual.
    assert.equal(presentPte(k, q, vpn + 1).pfn, b);
    assert.equal(frame(k, b).mapcount, 2);
    assert.equal(q.rssAnon, 2);
    // Neither process faults when writing the pinned page afterwards.
    assert.equal(write(k, p, vpn, 13).faults, 0);
    assert.equal(write(k, q, vpn, 14).faults, 0);
    assert.equal(frame(k, a).value, 13);
    assertConsistent(k);
  });
}

for (const name of ['v5.7', 'v5.8', 'v5.9-rc4']) {
  test(`${name}: no early COW: a pinned page is shared at fork like any other`, () => {
    const k = kernel(name);
    const { mm: p, vpn } = proc(k, 1);
    const a = writeOk(k, p, vpn, 1);
    pinByHand(k, p, vpn);
    const q = fork(k, p);
    assert.equal(presentPte(k, q, vpn).pfn, a);
    assert.equal(presentPte(k, p, vpn).write, false);
    assert.equal(k.stats.earlyCow, 0);
    assertConsistent(k);
  });
}

test('v6: no early COW unless the mm has pinned (MMF_HAS_PINNED), however high the refcount', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 1);
  writeOk(k, p, vpn, 1);
  const a = pinByHand(k, p, vpn);
  p.hasPinned = false;
  const q = fork(k, p);
  assert.equal(presentPte(k, q, vpn).pfn, a);
  assert.equal(k.stats.earlyCow, 0);
});

test('v6: no early COW for a page whose refcount is below the pin bias', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 1);
  const a = writeOk(k, p, vpn, 1);
  p.hasPinned = true;
  k.frames.addRefcount(a, k.config.pinBias - 2); // refcount = bias - 1
  const q = fork(k, p);
  assert.equal(presentPte(k, q, vpn).pfn, a);
  assert.equal(k.stats.earlyCow, 0);
});

test('a small pin_bias makes ordinary references look pinned (page_maybe_dma_pinned is fuzzy)', () => {
  const k = kernel('v6', { pinBias: 2 });
  const { mm: p, vpn } = proc(k, 1);
  const a = writeOk(k, p, vpn, 1);
  p.hasPinned = true;
  k.frames.addRefcount(a, 1); // one GUP reference: refcount 2 >= bias 2
  const q = fork(k, p);
  assert.notEqual(presentPte(k, q, vpn).pfn, a, 'a false positive: copied');
  assert.equal(k.stats.earlyCow, 1);
});

test('early COW applies to exclusive pages only on v6, to any maybe-pinned page on v5.9', () => {
  // A page already shared with Q (not exclusive) and then maybe pinned, forked again into R.
  for (const [name, copied] of [['v5.9', true], ['v6', false]] as const) {
    const k = kernel(name);
    const { mm: p, vpn } = proc(k, 1);
    const a = writeOk(k, p, vpn, 1);
    fork(k, p);
    p.hasPinned = true;
    k.frames.addRefcount(a, k.config.pinBias);
    const r = fork(k, p);
    const rp = presentPte(k, r, vpn);
    assert.equal(rp.pfn !== a, copied, `${name}: early copy expected ${copied}`);
    assert.equal(frame(k, a).mapcount, copied ? 2 : 3);
  }
});

for (const name of ['v5.9', 'v6']) {
  test(`${name}: ENOMEM during early COW fails the fork and leaves the parent as it was`, () => {
    const k = kernel(name, { frames: 2 });
    const { mm: p, vpn } = proc(k, 2);
    const a = writeOk(k, p, vpn, 1);
    const b = writeOk(k, p, vpn + 1, 2);
    pinByHand(k, p, vpn + 1);
    assert.equal(k.frames.used, 2, 'every frame in use');
    const mms = k.mms.length;
    const tables = k.tables.used;
    const fb = frame(k, b);
    const r = dupMmap(k, p);
    assert.equal(r.err, OOM);
    assert.equal(r.child, null);
    assert.equal(k.mms.length, mms, 'the half-built child is gone');
    assert.equal(k.frames.used, 2);
    assert.equal(k.tables.used, tables, 'its page tables are freed');
    assert.equal(k.stats.earlyCow, 0);
    // The pinned page is untouched and writable; the page shared before the failure is mapped once again.
    assert.deepEqual(frame(k, b), fb);
    assert.equal(presentPte(k, p, vpn + 1).write, true);
    assert.deepEqual([frame(k, a).mapcount, frame(k, a).refcount], [1, 1]);
    assert.equal(readOk(k, p, vpn), 1);
    assert.equal(readOk(k, p, vpn + 1), 2);
    assertConsistent(k);
    // With one more frame the same fork succeeds.
    k.frames.limit = 3;
    const q = fork(k, p);
    assert.notEqual(presentPte(k, q, vpn + 1).pfn, b);
    assert.equal(readOk(k, q, vpn + 1), 2);
    assertConsistent(k);
  });
}

test('fork of several mappings: untouched ones cost no tables; the child can map more without overlap', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 1);
  const other = map(k, p, 3);
  writeOk(k, p, vpn, 1);
  const q = fork(k, p);
  assert.equal(q.vmas.length, 1, 'the two neighbouring mappings were merged into one VMA (vma_merge)');
  assert.equal(q.nrTables, 4);
  const mine = map(k, q, 1);
  assert.ok(mine >= other + 3, 'a new mapping goes after the inherited ones');
  assert.equal(readOk(k, q, vpn), 1);
  exitMmap(k, q);
  exitMmap(k, p);
  assert.equal(k.frames.used, 0);
  assert.equal(k.tables.used, 0);
});

test('fork gives the child a PUD and a PMD table where the parent has them over a copied mapping with no PTE table below (copy_pud_range/copy_pmd_range allocate before walking the level below)', () => {
  for (const name of ['v5.7', 'v6']) {
    const k = kernel(name);
    const { mm: p, vpn } = proc(k, 1024);
    writeOk(k, p, vpn, 1);
    // The first PTE table lies wholly in the gap the munmap leaves: free_pgtables frees it; the
    // PUD and PMD tables stay (the rest of the mapping is under them), with nothing present.
    unmapRegion(k, p, vpn, vpn + 512);
    assert.equal(p.nrTables, 3, `${name}: P keeps its PGD, PUD and PMD tables`);
    const c = fork(k, p);
    assert.equal(c.nrTables, 3, `${name}: the child gets a PGD, a PUD and a PMD table`);
    writeOk(k, c, vpn + 512, 2);
    assert.equal(c.nrTables, 4, `${name}: its first write adds the PTE table`);
    assertConsistent(k);
  }
});
