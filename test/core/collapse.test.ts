// MADV_COLLAPSE (mm/khugepaged.c: madvise_collapse, hpage_collapse_scan_pmd, collapse_huge_page):
// what it copies, what it leaves to other processes, what it refuses, and where it exists.
// Expected figures come from those rules (docs/design/huge-pages.md section 9).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { doMadvCollapse } from '../../src/core/collapse.js';
import { EAGAIN, EFAULT, EINVAL, NA, OK, PG_ANON_EXCLUSIVE, PG_LARGE, PTE_DIRTY, PTE_PROTNONE, PTE_WRITE, VM_HUGEPAGE } from '../../src/core/constants.js';
import { dupMmap } from '../../src/core/fork.js';
import { getUserPages } from '../../src/core/gup.js';
import type { Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { doMadvise, doMmap, doMprotect } from '../../src/core/mmap.js';
import { pmdLeafSlot } from '../../src/core/walk.js';
import { assertConsistent, kernel, presentPte, pte, readOk, writeOk } from './helpers.js';

/** A process with a THP (MADV_HUGEPAGE, 512 pages written i + 1) made PTE-mapped as cow.c does (mprotect of one page R/O and back). */
function pteMappedThp(k: Kernel): { mm: Mm; vpn: number; head: number } {
  const mm = k.newMm();
  const r = doMmap(k, mm, 512, 'rw', false, false, VM_HUGEPAGE);
  assert.equal(r.err, OK);
  for (let i = 0; i < 512; i++) writeOk(k, mm, r.start + i, i + 1);
  const head = k.tables.entry[pmdLeafSlot(k, mm, r.start)]!;
  assert.equal(doMprotect(k, mm, r.start + 1, r.start + 2, 'ro'), OK);
  assert.equal(doMprotect(k, mm, r.start + 1, r.start + 2, 'rw'), OK);
  assert.equal(pmdLeafSlot(k, mm, r.start), -1, 'the setup PTE-maps the THP');
  return { mm, vpn: r.start, head };
}

test('MADV_COLLAPSE of an exclusive PTE-mapped THP: a new PMD-mapped folio with the same contents, the old folio freed', () => {
  const k = kernel('v6');
  const { mm, vpn, head } = pteMappedThp(k);
  const r = doMadvCollapse(k, mm, vpn, vpn + 512);
  assert.equal(r.err, OK);
  assert.equal(r.collapsed, 1);
  const s = pmdLeafSlot(k, mm, vpn);
  assert.ok(s >= 0, 'a PMD maps the range');
  const nhead = k.tables.entry[s]!;
  assert.notEqual(nhead, head, 'collapse_huge_page always allocates a new folio');
  assert.ok(k.tables.bits[s]! & PTE_WRITE, 'writable: the VMA is');
  const f = k.frames;
  assert.equal(f.folioRefcount(nhead), 1);
  assert.equal(f.entireMapcount[nhead >>> 9], 1);
  assert.ok(f.flags[nhead]! & PG_ANON_EXCLUSIVE, 'page_add_new_anon_rmap: exclusive');
  assert.equal(f.used, 512, 'the old folio lost its last reference');
  assert.equal(f.flags[head]! & PG_LARGE, 0);
  assert.equal(mm.rssAnon, 512);
  assert.equal(readOk(k, mm, vpn + 100), 101);
  assertConsistent(k);
});

test('MADV_COLLAPSE after fork (6.18): the parent gets a new THP, the child keeps mapping the old folio', () => {
  const k = kernel('v6');
  const { mm, vpn, head } = pteMappedThp(k);
  const child = dupMmap(k, mm, false).child!;
  const r = doMadvCollapse(k, mm, vpn, vpn + 512);
  assert.equal(r.err, OK, 'shared pages are fine for MADV_COLLAPSE, and 6.18 wants no writable PTE');
  const f = k.frames;
  // The old folio lost the parent's 512 PTE mappings and references: the child's remain.
  assert.equal(f.folioMapcount(head), 512);
  assert.equal(f.folioRefcount(head), 512);
  assert.equal(presentPte(k, child, vpn + 7).pfn, head + 7);
  assert.equal(f.used, 1024);
  writeOk(k, mm, vpn + 7, 99);
  assert.equal(k.stats.cowCopies, 0, 'the new PMD is exclusive and writable: no COW');
  assert.equal(readOk(k, child, vpn + 7), 8);
  assertConsistent(k);
});

test('before 6.18 a range with no writable PTE is refused (SCAN_PAGE_RO: EINVAL), as after fork', () => {
  const k = kernel('6.12');
  const { mm, vpn } = pteMappedThp(k);
  dupMmap(k, mm, false);
  const r = doMadvCollapse(k, mm, vpn, vpn + 512);
  assert.equal(r.err, EINVAL);
  assert.equal(pmdLeafSlot(k, mm, vpn), -1);
  assert.equal(k.frames.used, 512, 'nothing allocated');
  assertConsistent(k);
});

// A PROT_NONE range (6.18): thp_vma_allowable_order() and hpage_collapse_scan_pmd() do not look at
// the protection, so it collapses; collapse_huge_page() builds the PMD from vm_page_prot
// (folio_mk_pmd, pmd_mkdirty, maybe_pmd_mkwrite): PAGE_NONE, dirty, not writable. gup-fast
// refuses a PROT_NONE PMD (pmd_protnone) and the slow path the VMA: EFAULT. Before 6.18 none of
// the range's PTEs is writable (PAGE_NONE), so SCAN_PAGE_RO refuses it.
test('MADV_COLLAPSE of a PROT_NONE range (6.18): the new PMD is PROT_NONE (vm_page_prot); a vmsplice of it is EFAULT; before 6.18 refused', () => {
  for (const [name, err] of [['v6', OK], ['6.12', EINVAL]] as const) {
    const k = kernel(name);
    const { mm, vpn } = pteMappedThp(k);
    assert.equal(doMprotect(k, mm, vpn, vpn + 512, 'none'), OK);
    assert.equal(doMadvCollapse(k, mm, vpn, vpn + 512).err, err, name);
    if (err !== OK) {
      assert.equal(pmdLeafSlot(k, mm, vpn), -1, name);
      continue;
    }
    const s = pmdLeafSlot(k, mm, vpn);
    assert.ok(s >= 0, 'a PMD maps the range');
    const bits = k.tables.bits[s]!;
    assert.equal(bits & PTE_PROTNONE, PTE_PROTNONE, 'PAGE_NONE');
    assert.equal(bits & PTE_WRITE, 0, 'no VM_WRITE: maybe_pmd_mkwrite leaves it read-only');
    assert.equal(bits & PTE_DIRTY, PTE_DIRTY, 'pmd_mkdirty');
    const g = getUserPages(k, mm, vpn + 5, vpn + 6, { pin: false, write: false, longterm: false, fast: true, kind: 'pipe' });
    assert.equal(g.err, EFAULT);
    assert.equal(doMprotect(k, mm, vpn, vpn + 512, 'rw'), OK);
    assert.equal(readOk(k, mm, vpn + 5), 6);
    assertConsistent(k);
  }
});

test('a pinned page makes MADV_COLLAPSE refuse the range (SCAN_PAGE_COUNT: EAGAIN); unpinned it collapses', () => {
  const k = kernel('v6');
  const { mm, vpn, head } = pteMappedThp(k);
  const g = getUserPages(k, mm, vpn + 300, vpn + 301, { pin: true, write: true, longterm: true, fast: false, kind: 'pin' });
  assert.equal(g.err, OK);
  const r = doMadvCollapse(k, mm, vpn, vpn + 512);
  assert.equal(r.err, EAGAIN);
  assert.equal(pmdLeafSlot(k, mm, vpn), -1, 'still PTE-mapped');
  assert.equal(presentPte(k, mm, vpn + 300).pfn, head + 300, 'the pinned page stays mapped');
  assertConsistent(k);
});

test('MADV_COLLAPSE is n/a before 6.1 and refused on MADV_NOHUGEPAGE', () => {
  for (const name of ['v5.19', '5.15', 'v5.7']) {
    const k = kernel(name);
    const { mm, vpn } = pteMappedThp(k);
    assert.equal(doMadvCollapse(k, mm, vpn, vpn + 512).err, NA, name);
  }
  const k = kernel('6.1');
  const mm = k.newMm();
  const r = doMmap(k, mm, 512, 'rw', false, false, 0);
  for (let i = 0; i < 512; i++) writeOk(k, mm, r.start + i, 1);
  assert.equal(doMadvCollapse(k, mm, r.start, r.start + 512).err, OK, 'the sysfs mode does not matter');
  assert.ok(pmdLeafSlot(k, mm, r.start) >= 0);
});

test('a frame table cloned into a larger one (the explorer reuses states) keeps per-block counts for every block it can allocate', () => {
  const big = kernel('v6').frames;
  for (let i = 0; i < 4; i++) assert.ok(big.allocLarge(0) >= 0);
  const small = kernel('v6').frames;
  assert.ok(small.allocLarge(0) >= 0);
  const c = small.clone(big.clone());
  // The copy's frame arrays are the larger table's: a second new block lies past the small
  // table's end without any array growing.
  assert.ok(c.allocLarge(0) >= 0);
  const head = c.allocLarge(0);
  assert.ok(head >= 0);
  assert.equal(c.entireMapcount[head >>> 9], 0, 'the block has an entire mapcount');
  c.entireMapcount[head >>> 9] = 1;
  assert.equal(c.entireMapcount[head >>> 9], 1);
  assert.equal(c.pincount[head >>> 9], 0);
});

test('swapped-out pages of the range are swapped in first, then collapsed with the others', () => {
  const k = kernel('v6');
  const { mm, vpn } = pteMappedThp(k);
  // A range of small pages, some swapped out: the THP split for swap-out, as reclaim does.
  assert.equal(doMadvise(k, mm, vpn + 10, vpn + 20, 'pageout'), OK);
  assert.equal(pte(k, mm, vpn + 12)?.present, false, 'swapped out');
  const r = doMadvCollapse(k, mm, vpn, vpn + 512);
  assert.equal(r.err, OK, r.why);
  assert.ok(pmdLeafSlot(k, mm, vpn) >= 0);
  assert.equal(readOk(k, mm, vpn + 12), 13, 'the swapped-out page came back into the new THP');
  assert.equal(readOk(k, mm, vpn + 300), 301);
  assert.equal(k.frames.used, 512, 'the old pages and the swap cache are gone');
  assertConsistent(k);
});

test('expect mapped-once on a page of a PMD-mapped THP counts its PMD mapping (pagemap: precise page mapcount 1)', async () => {
  const { parseScenario } = await import('../../src/scenario/index.js');
  const { runScenario } = await import('../../src/engine/run.js');
  const { profile } = await import('./helpers.js');
  const text = 'name: t\nsteps: |\n  P mmap buf 512 rw private thp\n  P write buf = 1\n  expect P buf[12] mapped-once\n  P fork Q\n  expect P buf[12] mapped-shared\n';
  const r = parseScenario(text, 't.scn.yaml');
  assert.ok(r.ok);
  const res = runScenario(r.scenario, profile('v6'), { trace: false });
  assert.deepEqual(res.violations.map((v) => v.message), []);
});
