// userfaultfd write-protect on a PMD-mapped THP (mm/huge_memory.c change_huge_pmd with
// MM_CP_UFFD_WP / MM_CP_UFFD_WP_RESOLVE, copy_huge_pmd, __split_huge_pmd; mm/memory.c wp_huge_pmd):
// the huge PMD is kept and carries the bit; a write goes to the monitor; fork keeps or drops it.
// Expected outcomes come from those rules (docs/design/huge-pages.md, "userfaultfd write-protect").

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PTE_UFFD_WP, PTE_WRITE, VM_HUGEPAGE } from '../../src/core/constants.js';
import { dupMmap } from '../../src/core/fork.js';
import type { Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { doMmap, doMprotect } from '../../src/core/mmap.js';
import { uffdRegister, uffdWriteprotect } from '../../src/core/userfaultfd.js';
import { pmdLeafSlot, pteSlot } from '../../src/core/walk.js';
import { assertConsistent, kernel, readOk, writeOk } from './helpers.js';

/** A registered, written THP mapped by one PMD, protected whole by the monitor. */
function protectedThp(k: Kernel): { mm: Mm; vpn: number } {
  const mm = k.newMm();
  const r = doMmap(k, mm, 512, 'rw', false, false, VM_HUGEPAGE);
  for (let i = 0; i < 512; i++) writeOk(k, mm, r.start + i, 1);
  assert.equal(uffdRegister(k, mm, r.start, r.start + 512), 0);
  assert.equal(uffdWriteprotect(k, mm, r.start, r.start + 512, true), 0);
  return { mm, vpn: r.start };
}

const pmdBits = (k: Kernel, mm: Mm, vpn: number): number => {
  const s = pmdLeafSlot(k, mm, vpn);
  assert.ok(s >= 0, 'still mapped by a huge PMD');
  return k.tables.bits[s]!;
};

test('protecting a whole THP keeps the huge PMD, write-protected with the uffd-wp bit', () => {
  const k = kernel('v6');
  const { mm, vpn } = protectedThp(k);
  const bits = pmdBits(k, mm, vpn);
  assert.ok(bits & PTE_UFFD_WP);
  assert.equal(bits & PTE_WRITE, 0);
  assertConsistent(k);
});

test('a write to it goes to the monitor; its answer for one page splits the PMD, the other PTEs keep the bit', () => {
  const k = kernel('v6');
  const { mm, vpn } = protectedThp(k);
  writeOk(k, mm, vpn + 3, 2);
  assert.equal(mm.uffdFaults, 1);
  assert.equal(pmdLeafSlot(k, mm, vpn), -1, 'split');
  assert.equal(k.tables.bits[pteSlot(k, mm, vpn + 3)]! & PTE_UFFD_WP, 0);
  assert.ok(k.tables.bits[pteSlot(k, mm, vpn + 4)]! & PTE_UFFD_WP);
  writeOk(k, mm, vpn + 3, 3);
  assert.equal(mm.uffdFaults, 1, 'the page is un-protected now');
  assert.equal(readOk(k, mm, vpn + 3), 3);
  assertConsistent(k);
});

test('un-protecting the whole PMD keeps it; an exclusive THP is writable at once from 6.3 (uffdUnprotectWritable)', () => {
  for (const [name, writable] of [['v6', true], ['6.1', false]] as const) {
    const k = kernel(name);
    const { mm, vpn } = protectedThp(k);
    assert.equal(uffdWriteprotect(k, mm, vpn, vpn + 512, false), 0);
    const bits = pmdBits(k, mm, vpn);
    assert.equal(bits & PTE_UFFD_WP, 0, name);
    assert.equal((bits & PTE_WRITE) !== 0, writable, name);
    writeOk(k, mm, vpn, 4);
    assert.equal(mm.uffdFaults, 0, name);
    pmdBits(k, mm, vpn); // the exclusive THP is reused, not split
  }
});

test('un-protecting a THP never protected: pmd_modify() with vm_get_page_prot() makes it read-only before 6.3, a write reuses it; 6.3 keeps it writable', () => {
  for (const [name, writable] of [['v6', true], ['v6.2', false], ['6.1', false], ['v5.14', false]] as const) {
    const k = kernel(name);
    const mm = k.newMm();
    const r = doMmap(k, mm, 512, 'rw', false, false, VM_HUGEPAGE);
    for (let i = 0; i < 512; i++) writeOk(k, mm, r.start + i, 1);
    assert.equal(uffdRegister(k, mm, r.start, r.start + 512), 0);
    assert.notEqual(pmdBits(k, mm, r.start) & PTE_WRITE, 0, name);
    assert.equal(uffdWriteprotect(k, mm, r.start, r.start + 512, false), 0);
    assert.equal((pmdBits(k, mm, r.start) & PTE_WRITE) !== 0, writable, name);
    const minflt = mm.minflt;
    writeOk(k, mm, r.start + 7, 2);
    assert.deepEqual([mm.minflt - minflt, mm.uffdFaults], [writable ? 0 : 1, 0], name);
    assert.notEqual(pmdBits(k, mm, r.start) & PTE_WRITE, 0, `${name}: the exclusive THP is reused whole`);
    assertConsistent(k);
  }
});

test('protecting part of a THP splits it; mprotect rw of a protected PMD leaves it read-only', () => {
  const k = kernel('v6');
  const { mm, vpn } = protectedThp(k);
  assert.equal(doMprotect(k, mm, vpn, vpn + 512, 'ro'), 0);
  assert.equal(doMprotect(k, mm, vpn, vpn + 512, 'rw'), 0);
  const bits = pmdBits(k, mm, vpn);
  assert.ok(bits & PTE_UFFD_WP);
  assert.equal(bits & PTE_WRITE, 0, 'can_change_pmd_writable refuses while uffd-wp waits');
  assert.equal(uffdWriteprotect(k, mm, vpn + 10, vpn + 20, false), 0);
  assert.equal(pmdLeafSlot(k, mm, vpn), -1);
  assert.equal(k.tables.bits[pteSlot(k, mm, vpn + 10)]! & PTE_UFFD_WP, 0);
  assert.ok(k.tables.bits[pteSlot(k, mm, vpn + 20)]! & PTE_UFFD_WP);
  assertConsistent(k);
});

test('fork: the child PMD keeps the bit when the child VMA is registered (5.14+, 5.10.53+), or when the parent VMA is (5.7-5.13)', () => {
  const cases = [['v6', true, true], ['v6', false, false], ['v5.14', false, false], ['5.10', false, false], ['v5.9', false, true], ['v5.9', true, true]] as const;
  for (const [name, forkEvent, kept] of cases) {
    const k = kernel(name);
    const { mm, vpn } = protectedThp(k);
    mm.uffdForkEvent = forkEvent;
    const child = dupMmap(k, mm, false).child!;
    assert.equal((pmdBits(k, child, vpn) & PTE_UFFD_WP) !== 0, kept, `${name} fork-event ${forkEvent}`);
    assert.ok(pmdBits(k, mm, vpn) & PTE_UFFD_WP);
    writeOk(k, child, vpn, 5);
    assert.equal(child.uffdFaults, forkEvent ? 1 : 0, 'a userfault only in a registered child');
    assert.equal(readOk(k, mm, vpn), 1);
    assertConsistent(k);
  }
});
