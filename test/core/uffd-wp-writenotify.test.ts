// userfaultfd write-protect on shared memory (shmem) and the VMA's vm_page_prot. 51d3d5eb74ff
// "mm/userfaultfd: enable writenotify while userfaultfd-wp is enabled for a VMA" (6.2, 6.1.8) makes
// vma_wants_writenotify() true for a VMA registered for uffd-wp, and registering recomputes
// vm_page_prot (userfaultfd_set_vm_flags -> vma_set_page_prot): it is write-protected, so the PTEs
// built from it (do_set_pte/set_pte_range for a read fault, change_pte_range's pte_modify for
// mprotect) are read-only. Before (5.19, the first release with uffd-wp on shmem, to 6.1.7) it stays
// PAGE_SHARED: a read fault maps the page writable and mprotect(rw) makes every present PTE writable,
// a uffd-wp protected one too. Switch uffdWpWritenotify; read in mm/mmap.c, mm/memory.c,
// mm/mprotect.c and fs/userfaultfd.c of 5.19, 6.1.7, 6.1.8, 6.1.158, 6.2.12 and 6.18 (docs/profiles.md).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OK, PTE_UFFD_WP } from '../../src/core/constants.js';
import { dupMmap } from '../../src/core/fork.js';
import type { Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { doMprotect } from '../../src/core/mmap.js';
import { uffdRegister, uffdWriteprotect } from '../../src/core/userfaultfd.js';
import { pteSlot } from '../../src/core/walk.js';
import { assertConsistent, kernel, presentPte, proc, readOk, writeOk } from './helpers.js';

/** [profile, whether registration write-protects vm_page_prot] */
const CASES = [['v5.19', false], ['6.1', true], ['6.1+uffdWpWritenotify=false', false], ['v6.2', true], ['6.6', true], ['v6', true]] as const;

function kernelOf(name: string): Kernel {
  const [base, ...sets] = name.split('+');
  return kernel(base!, { sets });
}

function uffdBit(k: Kernel, mm: Mm, vpn: number): boolean {
  return (k.tables.bits[pteSlot(k, mm, vpn)]! & PTE_UFFD_WP) !== 0;
}

test('a read fault in a shared mapping registered for uffd-wp maps the page read-only with writenotify (6.2, 6.1.8), writable before; so the next write faults or not', () => {
  for (const [name, writenotify] of CASES) {
    const k = kernelOf(name);
    const { mm, vpn } = proc(k, 1, 'rw', true);
    assert.equal(uffdRegister(k, mm, vpn, vpn + 1), OK, name);
    assert.equal(readOk(k, mm, vpn), 0, name);
    assert.equal(mm.minflt, 1, name);
    assert.equal(presentPte(k, mm, vpn).write, !writenotify, `${name}: the read fault's PTE`);
    writeOk(k, mm, vpn, 1);
    // wp_page_shared(): no page_mkwrite for shmem, the PTE made writable in place (no copy).
    assert.equal(mm.minflt, writenotify ? 2 : 1, `${name}: faults of the read and the write`);
    assert.deepEqual([mm.uffdFaults, k.stats.cowCopies, presentPte(k, mm, vpn).write, readOk(k, mm, vpn)], [0, 0, true, 1], name);
    assertConsistent(k);
  }
});

test('an unregistered shared mapping\'s read fault maps the page writable on every profile (vm_page_prot is PAGE_SHARED)', () => {
  for (const [name] of CASES) {
    const k = kernelOf(name);
    const { mm, vpn } = proc(k, 1, 'rw', true);
    assert.equal(readOk(k, mm, vpn), 0, name);
    assert.equal(presentPte(k, mm, vpn).write, true, name);
  }
});

test('mprotect(ro) then mprotect(rw) of a registered shared mapping: every PTE read-only with writenotify; before, every PTE writable, the uffd-wp protected one too (its bit kept), so its write skips the monitor', () => {
  for (const [name, writenotify] of CASES) {
    const k = kernelOf(name);
    const { mm, vpn } = proc(k, 2, 'rw', true);
    writeOk(k, mm, vpn, 1);
    writeOk(k, mm, vpn + 1, 1);
    assert.equal(uffdRegister(k, mm, vpn, vpn + 2), OK, name);
    assert.equal(uffdWriteprotect(k, mm, vpn, vpn + 1, true), OK, name);
    assert.equal(doMprotect(k, mm, vpn, vpn + 2, 'ro'), OK, name);
    assert.equal(doMprotect(k, mm, vpn, vpn + 2, 'rw'), OK, name);
    assert.deepEqual([presentPte(k, mm, vpn).write, presentPte(k, mm, vpn + 1).write], [!writenotify, !writenotify], `${name}: the PTEs after mprotect(rw)`);
    assert.deepEqual([uffdBit(k, mm, vpn), uffdBit(k, mm, vpn + 1)], [true, false], `${name}: pte_modify keeps the uffd-wp bit`);
    const minflt = mm.minflt;
    writeOk(k, mm, vpn, 2);
    assert.equal(mm.uffdFaults, writenotify ? 1 : 0, `${name}: the protected page's write reaches the monitor`);
    writeOk(k, mm, vpn + 1, 2);
    // With writenotify: the userfault's retry (counted) and a[1]'s own fault (wp_page_shared).
    assert.equal(mm.minflt - minflt, writenotify ? 2 : 0, `${name}: faults of the two writes`);
    assert.deepEqual([readOk(k, mm, vpn), readOk(k, mm, vpn + 1)], [2, 2], name);
    assertConsistent(k);
  }
});

test('fork: the child\'s read fault maps read-only only where the child is registered (the fork event; without it dup_userfaultfd clears VM_UFFD_WP and, from 6.1.8, recomputes vm_page_prot)', () => {
  for (const forkEvent of [false, true]) {
    const k = kernel('v6');
    const { mm, vpn } = proc(k, 1, 'rw', true);
    assert.equal(uffdRegister(k, mm, vpn, vpn + 1), OK);
    mm.uffdForkEvent = forkEvent;
    const child = dupMmap(k, mm, false).child!;
    assert.equal(readOk(k, child, vpn), 0);
    assert.equal(presentPte(k, child, vpn).write, !forkEvent, `fork event ${forkEvent}`);
    assertConsistent(k);
  }
});
