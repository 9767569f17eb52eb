// KSM (ksmd's merge, reuse_ksm_page up to 5.8, removed by 1a0cf26323c8): ksmd merges
// equal pages of MADV_MERGEABLE mappings only, and only pages nothing but their mappings
// reference; KSM pages are never PageAnonExclusive (a R/O pin unshares them); a write to a KSM
// page copies from 5.9 (reuse_ksm_page on 5.1-5.8 reuses a KSM page mapped once and makes it an
// ordinary page); without seed 003's KSM check a KSM page is reused in place and leaks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EFAULT, OK, PG_KSM, PG_LARGE, PG_SWAPCACHE, PTE_DIRTY, PTE_PROTNONE, PTE_WRITE, VM_HUGEPAGE } from '../../src/core/constants.js';
import { dupMmap } from '../../src/core/fork.js';
import { getUserPages, releaseHandle, type GupRequest } from '../../src/core/gup.js';
import type { Handle, Kernel } from '../../src/core/kernel.js';
import { chainPlace, KSM_MAX_PAGE_SHARING, ksmMerge } from '../../src/core/ksm.js';
import type { Mm } from '../../src/core/mm.js';
import { doMadvise, doMmap, doMprotect } from '../../src/core/mmap.js';
import { swapOutPage } from '../../src/core/swap.js';
import { pmdLeafSlot, pteSlot } from '../../src/core/walk.js';
import { exitMmap } from '../../src/core/zap.js';
import { runScenario } from '../../src/engine/run.js';
import { kindsOf, parse, profileOf, runSteps } from '../explore/helpers.js';
import { assertConsistent, frame, kernel, map, presentPte, proc, readOk, writeOk } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const isKsm = (k: Kernel, pfn: number): boolean => (k.frames.flags[pfn]! & PG_KSM) !== 0;
const pfnAt = (k: Kernel, mm: Mm, vpn: number): number => presentPte(k, mm, vpn).pfn;

function mergeable(k: Kernel, mm: Mm, vpn: number, n: number): void {
  assert.equal(doMadvise(k, mm, vpn, vpn + n, 'mergeable'), OK);
}

function take(k: Kernel, mm: Mm, vpn: number, req: GupRequest): Handle {
  const r = getUserPages(k, mm, vpn, vpn + 1, req);
  assert.equal(r.err, OK);
  return r.handle!;
}

const GET: GupRequest = { pin: false, write: false, longterm: false, fast: false, kind: 'gup' };
const PIPE: GupRequest = { pin: false, write: false, longterm: false, fast: true, kind: 'pipe' };
const PIN_RW: GupRequest = { pin: true, write: true, longterm: true, fast: false, kind: 'pin' };
const PIN_RO: GupRequest = { pin: true, write: false, longterm: true, fast: false, kind: 'pin' };

for (const name of ['v5.7', 'v5.9', 'v6']) {
  test(`${name}: ksmd merges equal pages of mergeable mappings only, into one write-protected KSM page`, () => {
    const k = kernel(name);
    const { mm, vpn: a } = proc(k, 3);
    const b = map(k, mm, 2);
    mergeable(k, mm, a, 3);
    writeOk(k, mm, a, 7);
    writeOk(k, mm, a + 1, 7);
    writeOk(k, mm, a + 2, 8); // other content: stays alone
    writeOk(k, mm, b, 7); // same content, not mergeable
    writeOk(k, mm, b + 1, 7);
    assert.equal(k.frames.used, 5);
    assert.equal(ksmMerge(k), 1);
    const kp = pfnAt(k, mm, a);
    assert.equal(pfnAt(k, mm, a + 1), kp, 'merged');
    assert.ok(isKsm(k, kp));
    assert.deepEqual([frame(k, kp).mapcount, frame(k, kp).refcount], [2, 2]);
    assert.equal(frame(k, kp).exclusive, false, 'a KSM page is never PageAnonExclusive');
    assert.equal(presentPte(k, mm, a).write, false);
    assert.equal(presentPte(k, mm, a + 1).write, false);
    assert.notEqual(pfnAt(k, mm, a + 2), kp);
    assert.notEqual(pfnAt(k, mm, b), pfnAt(k, mm, b + 1), 'not mergeable: not merged');
    assert.notEqual(pfnAt(k, mm, b), kp);
    assert.equal(presentPte(k, mm, b).write, true, 'untouched');
    assert.equal(k.frames.used, 4);
    assertConsistent(k);
    // A second pass finds nothing new; a reader still sees the data.
    assert.equal(ksmMerge(k), 0);
    assert.equal(readOk(k, mm, a + 1), 7);
    exitMmap(k, mm);
    assert.equal(k.frames.used, 0);
    assertConsistent(k, true);
  });
}

test('ksmd merges equal pages of two processes, and later pages into the existing KSM page (stable tree)', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 1);
  const q = k.newMm();
  const qv = map(k, q, 2);
  mergeable(k, p, vpn, 1);
  mergeable(k, q, qv, 2);
  writeOk(k, p, vpn, 3);
  writeOk(k, q, qv, 3);
  assert.equal(ksmMerge(k), 1);
  const kp = pfnAt(k, p, vpn);
  assert.equal(pfnAt(k, q, qv), kp);
  writeOk(k, q, qv + 1, 3);
  assert.equal(ksmMerge(k), 1);
  assert.equal(pfnAt(k, q, qv + 1), kp, 'merged into the stable tree\'s page');
  assert.equal(frame(k, kp).mapcount, 3);
  assert.equal(k.frames.used, 1);
  assertConsistent(k);
});

test('replace_page maps the KSM page with a PTE made from vm_page_prot (mk_pte): young, clean, read-only, not soft-dirty, whatever the old PTE was (a fork\'s old child PTE included)', () => {
  for (const name of ['v5.9', 'v6']) {
    const k = kernel(name);
    const { mm: p, vpn } = proc(k, 1);
    mergeable(k, p, vpn, 1);
    writeOk(k, p, vpn, 3);
    const q = dupMmap(k, p).child!; // Q's PTE: old (pte_mkold), dirty, soft-dirty
    const before = presentPte(k, q, vpn);
    assert.deepEqual([before.young, before.dirty, before.softDirty], [false, true, true], `${name}: the child's PTE after fork`);
    const r = k.newMm();
    const rv = map(k, r, 1);
    mergeable(k, r, rv, 1);
    writeOk(k, r, rv, 3);
    assert.equal(ksmMerge(k), 2, `${name}: R's page becomes the KSM page; P's and Q's (one frame) are merged into it`);
    const kp = pfnAt(k, r, rv);
    for (const [mm, v, who] of [[p, vpn, 'P'], [q, vpn, 'Q']] as const) {
      const e = presentPte(k, mm, v);
      assert.deepEqual([e.pfn, e.write, e.dirty, e.young, e.softDirty], [kp, false, false, true, false], `${name}: ${who}'s PTE after replace_page`);
    }
    assertConsistent(k);
  }
});

for (const [what, req] of [['a FOLL_GET reference', GET], ['a pipe buffer (vmsplice)', PIPE], ['a R/W longterm pin', PIN_RW]] as const) {
  test(`v6: ksmd refuses a page with ${what} (write_protect_page: mapcount + swapcache != refcount); merges after release`, () => {
    const k = kernel('v6');
    const { mm, vpn } = proc(k, 2);
    mergeable(k, mm, vpn, 2);
    writeOk(k, mm, vpn, 7);
    writeOk(k, mm, vpn + 1, 7);
    const h = take(k, mm, vpn, req);
    const held = pfnAt(k, mm, vpn);
    assert.equal(ksmMerge(k), 0);
    assert.notEqual(pfnAt(k, mm, vpn + 1), held);
    assert.equal(isKsm(k, held), false);
    assert.equal(presentPte(k, mm, vpn).write, true, 'the referenced page is not write-protected');
    assertConsistent(k);
    releaseHandle(k, h);
    assert.equal(ksmMerge(k), 1);
    assert.equal(pfnAt(k, mm, vpn), pfnAt(k, mm, vpn + 1));
    assertConsistent(k);
  });
}

// Which frame survives a two-page merge. cmp_and_merge_page() calls try_to_merge_two_pages(
// rmap_item, page, tree_rmap_item, tree_page): try_to_merge_with_ksm_page(rmap_item, page, NULL)
// turns `page`, the one being scanned now (the later by address), into the KSM page in place,
// then try_to_merge_with_ksm_page(tree_rmap_item, tree_page, page) replaces the unstable-tree
// page (scanned earlier) by it. The same code from 5.4 to 6.18 (read in 5.4.286, 5.7.14, 5.8.1,
// 5.10.198, 5.15.215, 5.18.12, 5.19, 6.1.166, 6.6.150 and 6.18.2). A fork beforehand shows which:
// Q (not mergeable, not registered) keeps mapping both frames, so the frame Q's a[1] maps is the
// KSM page and Q's a[0] keeps the earlier page, now mapped by Q only.
for (const name of ['v5.7', 'v5.9', 'v5.18', 'v6']) {
  test(`${name}: a two-page merge makes the page scanned second the KSM page; the first is replaced (try_to_merge_two_pages)`, () => {
    const k = kernel(name);
    const { mm: p, vpn } = proc(k, 2);
    const first = writeOk(k, p, vpn, 7);
    const second = writeOk(k, p, vpn + 1, 7);
    const q = dupMmap(k, p).child!;
    mergeable(k, p, vpn, 2);
    assert.equal(ksmMerge(k), 1);
    // P's a[0] was scanned first (unstable tree); P's a[1] (frame `second`) became the KSM page.
    assert.equal(pfnAt(k, p, vpn), second, 'P a[0] now maps the page scanned second');
    assert.equal(pfnAt(k, p, vpn + 1), second);
    assert.ok(isKsm(k, second));
    assert.equal(pfnAt(k, q, vpn + 1), second, 'Q a[1] maps the KSM page: it was made KSM in place');
    // Three mappings (P a[0] by replace_page, P a[1] and Q a[1] from before), one reference each.
    assert.deepEqual([frame(k, second).mapcount, frame(k, second).refcount], [3, 3]);
    // The tree page lost P's mapping and reference (replace_page); Q's a[0] still maps it.
    assert.equal(pfnAt(k, q, vpn), first);
    assert.equal(isKsm(k, first), false);
    assert.deepEqual([frame(k, first).mapcount, frame(k, first).refcount], [1, 1]);
    assert.equal(presentPte(k, q, vpn).write, false, 'still write-protected from fork');
    assertConsistent(k);
  });
}

/**
 * Two equal mergeable pages of one process, a[0] pinned (scanned first, it cannot be
 * write-protected): ksmd will make a[1] a KSM page, be refused a[0], and break_cow() a[1].
 */
function refusedPartner(name: string, mode: 'write' | 'unshare'): { k: Kernel; mm: Mm; vpn: number; second: number; h: Handle } {
  const k = kernel(name);
  // One break_cow: with smart scan (6.7+) `ksm merge` runs on for the skips and breaks COW again
  // at each pass that compares both pages (as ksmd does), reusing the frames it freed.
  k.config.ksmSmartScan = false;
  assert.equal(k.profile.ksmBreakCow, mode);
  const { mm, vpn } = proc(k, 2);
  mergeable(k, mm, vpn, 2);
  writeOk(k, mm, vpn, 3);
  const second = writeOk(k, mm, vpn + 1, 3);
  const h = take(k, mm, vpn, PIN_RW);
  return { k, mm, vpn, second, h };
}

// When the tree page is refused, break_cow() -> break_ksm() faults on the scanned page (now a
// KSM page mapped here only): FAULT_FLAG_UNSHARE from 6.2 (a read-only copy, clean of any write:
// the next write faults and reuses it), FAULT_FLAG_WRITE up to 6.1 (read in 5.4.286 ... 6.1.166:
// do_wp_page copies, the copy mapped writable and dirty: the next write takes no fault). Either
// way ksmd's fault is not the process's (mm_account_fault: no regs), and the KSM page, mapped by
// nothing else, is freed.
for (const [name, mode] of [['v5.7', 'write'], ['v5.9', 'write'], ['v5.19', 'write'], ['6.1', 'write'], ['v6.2', 'unshare'], ['v6', 'unshare']] as const) {
  test(`${name}: break_cow after a refused partner leaves the scanned page a ${mode === 'write' ? 'writable' : 'read-only'} copy (ksmBreakCow=${mode})`, () => {
    const { k, mm, vpn, second, h } = refusedPartner(name, mode);
    const pinned = pfnAt(k, mm, vpn);
    assert.equal(mm.minflt, 2);
    assert.equal(ksmMerge(k), 0);
    const copy = pfnAt(k, mm, vpn + 1);
    assert.notEqual(copy, second, 'break_cow copied the new KSM page');
    assert.equal(isKsm(k, copy), false);
    assert.equal(k.frames.flags[second]! & PG_KSM, 0, 'the KSM page, mapped by nothing else, was freed');
    assert.deepEqual([frame(k, copy).mapcount, frame(k, copy).refcount], [1, 1]);
    assert.equal(presentPte(k, mm, vpn + 1).write, mode === 'write');
    // wp_page_copy(): pte_mkdirty for a write only; an unshare copy is clean.
    assert.equal(presentPte(k, mm, vpn + 1).dirty, mode === 'write');
    assert.equal(pfnAt(k, mm, vpn), pinned, 'the refused page is left alone');
    assert.equal(presentPte(k, mm, vpn).write, true);
    assert.equal(mm.minflt, 2, 'ksmd\'s fault is not counted to the process');
    writeOk(k, mm, vpn + 1, 5);
    assert.equal(mm.minflt, mode === 'write' ? 2 : 3);
    assert.equal(pfnAt(k, mm, vpn + 1), copy, 'the copy is the process\'s own: kept');
    releaseHandle(k, h);
    assertConsistent(k);
  });
}

// break_cow() in a PROT_NONE mapping: ksmd scans it (scan_get_next_rmap_item: a PROT_NONE PTE is
// present; follow_page without FOLL_NUMA before 6.1, a page walk from 6.8) and break_ksm() faults
// without looking at the protection, so do_wp_page() copies there. wp_page_copy() (mm/memory.c,
// 6.18; 5.7 and 5.19 alike) builds the copy's PTE from vm_page_prot: PAGE_NONE, no user access;
// dirty (never writable: no VM_WRITE) for 5.x's write fault, clean for 6.2's unshare. gup-fast
// must refuse it (pte_protnone) and the slow path's check_vma_flags() fails: EFAULT.
for (const [name, mode] of [['v5.7', 'write'], ['v5.19', 'write'], ['v6', 'unshare']] as const) {
  test(`${name}: break_cow's copy in a PROT_NONE mapping is PROT_NONE (vm_page_prot), ${mode === 'write' ? 'dirty' : 'clean'}; a vmsplice of it is EFAULT`, () => {
    const { k, mm, vpn, second, h } = refusedPartner(name, mode);
    assert.equal(doMprotect(k, mm, vpn + 1, vpn + 2, 'none'), OK);
    assert.equal(ksmMerge(k), 0);
    const copy = pfnAt(k, mm, vpn + 1);
    assert.notEqual(copy, second, 'break_cow copied the KSM page');
    const bits = k.tables.bits[pteSlot(k, mm, vpn + 1)]!;
    assert.equal(bits & PTE_PROTNONE, PTE_PROTNONE, 'mapped with PAGE_NONE');
    assert.equal(bits & PTE_WRITE, 0);
    assert.equal((bits & PTE_DIRTY) !== 0, mode === 'write', 'pte_mkdirty for a write fault only');
    assert.equal(getUserPages(k, mm, vpn + 1, vpn + 2, PIPE).err, EFAULT, 'gup-fast refuses a PROT_NONE PTE, the slow path the VMA');
    assert.equal(doMprotect(k, mm, vpn + 1, vpn + 2, 'rw'), OK);
    assert.equal(readOk(k, mm, vpn + 1), 3);
    releaseHandle(k, h);
    assertConsistent(k);
  });
}

// ksmd's scan and PROT_NONE: 5.x's follow_page() follows a PROT_NONE PTE (no FOLL_NUMA), 6.18's
// page walk takes any present PTE; from 6.1 to 6.4 follow_page() follows one only with FOLL_FORCE
// (gup_can_follow_protnone), so ksmd never sees such a page (ksmScansProtnone).
for (const [name, merges] of [['v5.19', true], ['6.1', false], ['v6.2', false], ['6.6', true], ['v6', true]] as const) {
  test(`${name}: ksmd ${merges ? 'merges' : 'does not scan'} the pages of a PROT_NONE mapping`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 2);
    writeOk(k, mm, vpn, 7);
    writeOk(k, mm, vpn + 1, 7);
    mergeable(k, mm, vpn, 2);
    assert.equal(doMprotect(k, mm, vpn, vpn + 2, 'none'), OK);
    assert.equal(ksmMerge(k), merges ? 1 : 0);
    assert.equal(pfnAt(k, mm, vpn) === pfnAt(k, mm, vpn + 1), merges);
    assert.equal(isKsm(k, pfnAt(k, mm, vpn)), merges);
    assert.equal(k.tables.bits[pteSlot(k, mm, vpn)]! & PTE_PROTNONE, PTE_PROTNONE, 'replace_page maps the KSM page with vm_page_prot: still PROT_NONE');
    assert.equal(doMprotect(k, mm, vpn, vpn + 2, 'rw'), OK);
    assert.equal(readOk(k, mm, vpn + 1), 7);
    assertConsistent(k);
  });
}

test('v6: a R/O pin of a KSM page unshares it first (KSM pages cannot be pinned)', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 2);
  mergeable(k, mm, vpn, 2);
  writeOk(k, mm, vpn, 7);
  writeOk(k, mm, vpn + 1, 7);
  assert.equal(ksmMerge(k), 1);
  const kp = pfnAt(k, mm, vpn);
  const h = take(k, mm, vpn, PIN_RO);
  const pinned = h.frames[0]!;
  assert.notEqual(pinned, kp, 'the pin is on a private copy');
  assert.equal(pfnAt(k, mm, vpn), pinned);
  assert.equal(presentPte(k, mm, vpn).write, false, 'unshare keeps the PTE read-only');
  assert.equal(frame(k, pinned).exclusive, true);
  assert.equal(isKsm(k, pinned), false);
  assert.equal(k.frames.value[pinned], k.frames.value[kp]);
  assert.equal(frame(k, kp).mapcount, 1);
  assert.equal(readOk(k, mm, vpn), 7);
  assertConsistent(k);
});

// ---- writes to a KSM page -----------------------------------------------------------------------------

for (const [name, reuse] of [['v5.7', true], ['v5.8', true], ['v5.9-rc4', false], ['v5.9', false], ['v5.18', false], ['v6', false]] as const) {
  test(`${name}: a write to a KSM page mapped twice copies; mapped once it ${reuse ? 'is reused and becomes an ordinary page (reuse_ksm_page)' : 'is copied too (never reused)'}`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 2);
    mergeable(k, mm, vpn, 2);
    writeOk(k, mm, vpn, 7);
    writeOk(k, mm, vpn + 1, 7);
    assert.equal(ksmMerge(k), 1);
    const kp = pfnAt(k, mm, vpn);
    const c1 = writeOk(k, mm, vpn + 1, 8);
    assert.notEqual(c1, kp, 'mapped twice: copied');
    assert.equal(k.stats.cowCopies, 1);
    assert.ok(isKsm(k, kp));
    assert.deepEqual([frame(k, kp).mapcount, frame(k, kp).refcount], [1, 1]);
    const c2 = writeOk(k, mm, vpn, 9);
    if (reuse) {
      assert.equal(c2, kp, 'reused in place');
      assert.equal(isKsm(k, kp), false, 'no longer a KSM page');
      assert.equal(k.stats.cowCopies, 1);
      assert.equal(k.stats.reuses, 1);
    } else {
      assert.notEqual(c2, kp, 'copied');
      assert.equal(k.stats.cowCopies, 2);
      assert.equal(k.frames.flags[kp]! & PG_KSM, 0, 'the KSM page was freed with its last mapping');
      assert.equal(frame(k, c2).exclusive, k.profile.anonExclusive);
    }
    assert.equal(presentPte(k, mm, vpn).write, true);
    assert.equal(k.frames.used, 2);
    assert.equal(readOk(k, mm, vpn), 9);
    assert.equal(readOk(k, mm, vpn + 1), 8);
    assertConsistent(k);
  });
}

test('v6: a KSM page shared by fork: each writer copies, the other keeps the content', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 2);
  mergeable(k, p, vpn, 2);
  writeOk(k, p, vpn, 7);
  writeOk(k, p, vpn + 1, 7);
  assert.equal(ksmMerge(k), 1);
  const kp = pfnAt(k, p, vpn);
  const r = dupMmap(k, p);
  assert.equal(r.err, OK);
  const q = r.child!;
  assert.equal(frame(k, kp).mapcount, 4);
  writeOk(k, q, vpn, 1);
  assert.equal(readOk(k, p, vpn), 7);
  assert.equal(readOk(k, p, vpn + 1), 7);
  assert.equal(readOk(k, q, vpn + 1), 7);
  assert.equal(frame(k, kp).mapcount, 3);
  assertConsistent(k);
});

test('the ksm-write-always-copies seed: cow_copies 2 from v5.9-rc4 on, 1 on v5.7/v5.8 (reuse_ksm_page)', () => {
  const sc = parse(readFileSync(join(ROOT, 'scenarios', 'seeds', 'ksm-write-always-copies.scn.yaml'), 'utf8'));
  for (const [name, kinds] of [['v5.7', ['expect']], ['v5.8', ['expect']], ['v5.9-rc4', []], ['v5.9', []], ['v6', []]] as const) {
    const r = runScenario(sc, profileOf(name), { trace: false });
    assert.deepEqual(kindsOf(r), kinds, `${name}: ${r.violations.map((v) => v.message).join('; ')}`);
  }
});

test('without seed 003\'s KSM check (wpCopiesKsm=false) a KSM page mapped once is reused in place: the stable page leaks', () => {
  const sc = parse(readFileSync(join(ROOT, 'scenarios', 'seeds', 'ksm-stable-page-reused.scn.yaml'), 'utf8'));
  for (const name of ['v5.7', 'v5.9-rc4', 'v5.9', 'v6']) {
    const r = runScenario(sc, profileOf(name), { trace: false });
    assert.equal(r.status, 'ok', `${name}: ${r.violations.map((v) => v.message).join('; ')}`);
  }
  for (const name of ['v5.9-rc4', 'v6']) {
    const r = runScenario(sc, profileOf(name, ['wpCopiesKsm=false']), { trace: false });
    assert.ok(kindsOf(r).includes('leak'), `${name}+wpCopiesKsm=false: ${kindsOf(r).join(', ')}`);
    const leak = r.violations.find((v) => v.kind === 'leak')!;
    assert.deepEqual(leak.procs, ['Q'], 'Q reads P\'s secret');
    assert.equal(leak.step, sc.steps.length - 1);
  }
});

test('a profile without KSM makes `madvise mergeable` and `ksm merge` n/a', () => {
  assert.equal(runSteps(['P mmap buf 1 rw private', 'P madvise buf mergeable'], 'v6', ['ksm=false']).status, 'n/a');
  assert.equal(runSteps(['P mmap buf 1 rw private', 'ksm merge'], 'v6', ['ksm=false']).status, 'n/a');
});

test('KSM at the scenario level: merged pages read right and never leak between processes (v5.7, v5.9, v6)', () => {
  const steps = [
    'P mmap buf 2 rw private', 'P madvise buf mergeable', 'P write buf = 7', 'P fork Q', 'Q write buf[1] = 7', 'ksm merge',
    'expect P buf[0] same-frame Q buf[1]', 'expect P buf[0] same-frame P buf[1]', 'Q write buf[1] = 1', 'P write buf[0] = 2',
    'P read buf[1] expect 7', 'Q read buf[0] expect 7', 'Q read buf[1] expect 1', 'P read buf[0] expect 2',
  ];
  for (const name of ['v5.7', 'v5.9', 'v6']) {
    const r = runSteps(steps, name);
    assert.equal(r.status, 'ok', `${name}: ${r.violations.map((v) => v.message).join('; ')}`);
  }
});

const story = (lines: string): ReturnType<typeof parse> => parse(`name: t\nsteps: |\n${lines.split('\n').map((l) => `  ${l}`).join('\n')}\n`);
/** The scenario with config.ksm_smart_scan 0. */
const smartScanOff = (sc: ReturnType<typeof parse>): ReturnType<typeof parse> => ({ ...sc, config: { ...sc.config, ksmSmartScan: 0 } });

// Which page becomes the KSM page: cmp_and_merge_page() makes the page being scanned the KSM page
// in place and replaces the unstable-tree page (scanned earlier); ksmd walks its list of mms in
// the order they registered (__ksm_enter at the first MADV_MERGEABLE, or ksm_fork), not in the
// order the processes were created. Found by `cowlab oracle --random` (the kernel disagreed).
test('ksmd scans mms in the order they registered with KSM', () => {
  const sc = story('P mmap a 5 rw private\nP write a = 1\nP fork Q\nQ madvise a[1] mergeable\nP madvise a[0] mergeable\nksm merge\n' +
    'expect P a[0] same-frame Q a[0]\nexpect Q a[1] same-frame P a[0]\nexpect P a[1] other-frame Q a[1]');
  // Q registered first: its a[1] is in the unstable tree when P's a[0] is scanned, so P's a[0]
  // (mapped by Q's a[0] too) becomes the KSM page and Q's a[1] is replaced by it.
  assert.deepEqual(kindsOf(runScenario(sc, profileOf('v6'))), []);
});

// A page scanned before the KSM page of its content exists merges into it from the stable tree
// on a later pass: `ksm merge` lets ksmd run until a pass merges nothing (as the oracle waits for
// several full scans). Found by `cowlab oracle --random`.
test('ksm merge runs passes until nothing more merges', () => {
  const sc = story('P mmap a 2 rw private\nP write a = 1\nP fork R\nP fork S\nR madvise a[0] mergeable\nS madvise a[0..1] mergeable\nksm merge\n' +
    'expect S a[0] same-frame S a[1]\nexpect R a[0] same-frame S a[0]\nexpect P a[0] other-frame S a[0]');
  assert.deepEqual(kindsOf(runScenario(sc, profileOf('v6'))), []);
});

// try_to_merge_two_pages() makes the scanned page KSM first; when the tree page then cannot be
// merged (a pipe holds it), break_cow() unshares the scanned page and the KSM page, left mapped
// by the other process, is in no tree: no later pass merges into it (stable_tree_insert() runs
// only after both halves merged). Found by `cowlab oracle --random` once merges ran to the end.
test('a KSM page left by a failed two-page merge is in no tree: nothing merges into it later', () => {
  const sc = story('P mmap a 5 rw private\nP write a = 2\nP vmsplice a[0..1] as p1\nP fork Q\nP madvise a mergeable\nksm merge\nksm merge\n' +
    'expect P a[2] other-frame Q a[2]\nexpect P a[3] other-frame Q a[2]\nexpect Q a[2] other-frame Q a[3]\nP read p1[0] expect 2');
  assert.deepEqual(kindsOf(runScenario(sc, profileOf('v6'))), []);
});

// The KSM page break_cow() left in no tree is still PageAnon (folio_test_anon: PAGE_MAPPING_ANON
// is part of PAGE_MAPPING_KSM) with no stable node: where ksmd meets it again (the fork's
// mapping) cmp_and_merge_page() takes it as an ordinary page and the unstable tree offers the
// same partner, but try_to_merge_one_page() fails at once: write_protect_page() needs
// page_address_in_vma(), which finds no anon_vma for a KSM folio (-EFAULT). So nothing changes
// and no break_cow follows: the fork's mapping keeps the orphan (seen on a 6.18 kernel).
test('v6: a KSM page in no tree met again where another process maps it stays as it is: write_protect_page refuses it before anything changes', () => {
  const k = kernel('v6');
  const { mm: p, vpn: a } = proc(k, 2);
  writeOk(k, p, a, 1);
  writeOk(k, p, a + 1, 1);
  mergeable(k, p, a, 2);
  const h = take(k, p, a, PIN_RW); // a[0] pinned: write_protect_page refuses it as a tree page
  const q = dupMmap(k, p).child!; // a[0] copied for Q (early COW), a[1] shared; Q on ksmd's list after P
  const shared = pfnAt(k, p, a + 1);
  assert.equal(pfnAt(k, q, a + 1), shared);
  // P a[0] goes into the unstable tree; P a[1] is made KSM in place, P a[0] refused, break_cow
  // copies P's a[1] (the KSM page stays, mapped by Q). Q a[0] (its own page) is made KSM and
  // broken the same way; Q a[1], the orphan, is refused by write_protect_page: it stays.
  assert.equal(ksmMerge(k), 0);
  assert.notEqual(pfnAt(k, p, a + 1), shared);
  assert.equal(pfnAt(k, q, a + 1), shared, 'Q still maps the orphan KSM page');
  assert.ok(isKsm(k, shared));
  assert.deepEqual([frame(k, shared).mapcount, frame(k, shared).refcount], [1, 1]);
  for (const [mm, v] of [[p, a], [p, a + 1], [q, a]] as const) assert.ok(!isKsm(k, pfnAt(k, mm, v)));
  assert.deepEqual([readOk(k, q, a + 1), readOk(k, p, a + 1)], [1, 1]);
  releaseHandle(k, h);
  assertConsistent(k);
});

// write_protect_page() checks mapcount + swap cache against refcount only for a PTE that is
// writable, dirty or maps an exclusive page. A read fault's swap-in (vmsplice's R/O GUP) maps a[0]
// clean; fork write-protects it: ksmd takes Q's a[0] with no check though the pipe and the swap
// cache hold the old page. Written after the swap-in, a[0]'s PTE is dirty: checked, refused.
// Found by `cowlab oracle --random` against 6.18 (random-1-518).
test('write_protect_page checks references only for a writable, dirty or exclusive PTE', () => {
  const setup = 'P mmap a 3 rw private\nP write a = 1\nP madvise a[0] pageout\nP vmsplice a[0] as p1\n';
  const merge = 'P fork Q\nQ madvise a mergeable\nksm merge\n';
  const clean = story(setup + merge +
    'expect Q a[0] same-frame Q a[1]\nexpect P a[1] same-frame Q a[1]\nexpect Q a[2] same-frame Q a[1]\n' +
    'expect P a[0] other-frame Q a[0]\nexpect P a[2] other-frame Q a[2]\nexpect stat frames_used == 3\nP read p1[0] expect 1');
  const dirty = story(setup + 'P write a[0] = 1\n' + merge +
    'expect Q a[0] other-frame Q a[1]\nexpect P a[0] same-frame Q a[0]\nP read p1[0] expect 1');
  for (const name of ['v5.7', 'v5.9', 'v6']) {
    assert.deepEqual(kindsOf(runScenario(clean, profileOf(name))), [], `${name}: clean PTE merged`);
  }
  // The write keeps the pipe's page in place on v5.7 (reuse_swap_page: mapcount 1) and on v6 (the
  // swap-in mapped it writable, exclusive); from 5.9 to 5.18 it copies (page_count > 1): no control.
  for (const name of ['v5.7', 'v6']) {
    assert.deepEqual(kindsOf(runScenario(dirty, profileOf(name))), [], `${name}: dirty PTE refused`);
  }
});

// THPs (try_to_merge_one_page -> split_huge_page): ksmd's walk takes a page of a PMD-mapped THP
// without splitting the PMD; a merge splits the folio first; a THP none of whose pages has an
// equal is left whole; two equal pages of one THP split it, and merge on the next pass.

/** A process with one MADV_HUGEPAGE, MADV_MERGEABLE mapping of 512 pages (one THP once written). */
function thpMergeable(k: Kernel, mm: Mm = k.newMm()): { mm: Mm; vpn: number } {
  const r = doMmap(k, mm, 512, 'rw', false, false, VM_HUGEPAGE);
  assert.equal(r.err, OK);
  mergeable(k, mm, r.start, 512);
  return { mm, vpn: r.start };
}

const headOf = (k: Kernel, mm: Mm, vpn: number): number => k.tables.entry[pmdLeafSlot(k, mm, vpn)]!;

test('v6: ksmd splits two processes\' THPs to merge their equal pages; the rest stays theirs, zero-filled pages map the zero page', () => {
  const k = kernel('v6');
  const p = thpMergeable(k);
  const q = thpMergeable(k);
  for (const [x, other] of [[p, 3], [q, 4]] as const) {
    writeOk(k, x.mm, x.vpn, 1);
    writeOk(k, x.mm, x.vpn + 1, 2);
    writeOk(k, x.mm, x.vpn + 2, other);
  }
  const ph = headOf(k, p.mm, p.vpn);
  const qh = headOf(k, q.mm, q.vpn);
  assert.ok(k.frames.flags[ph]! & PG_LARGE && k.frames.flags[qh]! & PG_LARGE);
  assert.equal(ksmMerge(k), 2);
  for (const x of [p, q]) assert.equal(pmdLeafSlot(k, x.mm, x.vpn), -1, 'the huge PMD was split');
  assert.equal(k.frames.flags[ph]! & PG_LARGE, 0, 'the folio was split');
  assert.equal(k.frames.flags[qh]! & PG_LARGE, 0);
  for (const i of [0, 1]) {
    const kp = pfnAt(k, p.mm, p.vpn + i);
    assert.equal(pfnAt(k, q.mm, q.vpn + i), kp, `page ${i} merged`);
    assert.ok(isKsm(k, kp));
    assert.deepEqual([frame(k, kp).mapcount, frame(k, kp).refcount, frame(k, kp).exclusive], [2, 2, false]);
    assert.ok(!presentPte(k, p.mm, p.vpn + i).write, 'the KSM page is mapped read-only');
  }
  // Different in each: not merged, a small page mapped once.
  const p2 = pfnAt(k, p.mm, p.vpn + 2);
  assert.notEqual(p2, pfnAt(k, q.mm, q.vpn + 2));
  assert.ok(!isKsm(k, p2));
  assert.deepEqual([frame(k, p2).mapcount, frame(k, p2).refcount, frame(k, p2).value], [1, 1, 3]);
  // thpSplitZeropage (6.12+): the split maps zero-filled pages to the zero page and frees them.
  assert.ok(presentPte(k, p.mm, p.vpn + 5).special);
  assert.equal(k.frames.used, 4, 'two KSM pages and the two a[2] pages');
  assert.equal(readOk(k, q.mm, q.vpn + 1), 2);
  assertConsistent(k);
});

test('v6: a THP none of whose pages has an equal stays whole', () => {
  const k = kernel('v6');
  const { mm, vpn } = thpMergeable(k);
  for (let i = 0; i < 512; i++) writeOk(k, mm, vpn + i, 1000 + i);
  const head = headOf(k, mm, vpn);
  assert.equal(ksmMerge(k), 0);
  assert.equal(headOf(k, mm, vpn), head, 'still mapped by its huge PMD');
  assert.ok(k.frames.flags[head]! & PG_LARGE);
  assertConsistent(k);
});

test('v5.19: two equal pages of one THP split it in one pass and merge in the next; zero-filled pages merge too', () => {
  // Before thpSplitZeropage (6.12) the split keeps the zero-filled pages as anonymous pages.
  const k = kernel('v5.19');
  const { mm, vpn } = thpMergeable(k);
  for (let i = 0; i < 512; i++) writeOk(k, mm, vpn + i, i === 7 ? 1000 : 1001 + i);
  writeOk(k, mm, vpn + 9, 1000);
  // Pages 7 and 9 are equal: one pass splits the folio, the next merges them.
  assert.equal(ksmMerge(k), 1);
  assert.equal(pmdLeafSlot(k, mm, vpn), -1);
  const kp = pfnAt(k, mm, vpn + 7);
  assert.equal(pfnAt(k, mm, vpn + 9), kp);
  assert.ok(isKsm(k, kp));
  assert.deepEqual([frame(k, kp).mapcount, frame(k, kp).refcount], [2, 2]);
  assert.equal(k.frames.used, 511, 'page 9 freed');
  assert.ok(!isKsm(k, pfnAt(k, mm, vpn + 8)));
  assertConsistent(k);
});

test('v6: a pinned THP cannot be split, so none of its pages merges', () => {
  const k = kernel('v6');
  const p = thpMergeable(k);
  const q = thpMergeable(k);
  writeOk(k, p.mm, p.vpn, 1);
  writeOk(k, q.mm, q.vpn, 1);
  take(k, p.mm, p.vpn + 3, PIN_RW);
  const ph = headOf(k, p.mm, p.vpn);
  ksmMerge(k);
  assert.equal(headOf(k, p.mm, p.vpn), ph, 'the pinned THP keeps its huge PMD (can_split_folio refuses)');
  assert.notEqual(pfnAt(k, q.mm, q.vpn), ph, 'Q\'s page 0 was not merged with P\'s');
  assertConsistent(k);
});

test('v6: a KSM page takes at most max_page_sharing (256) mappings; the rest merge into a second one', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 300);
  mergeable(k, mm, vpn, 300);
  for (let i = 0; i < 300; i++) writeOk(k, mm, vpn + i, 9);
  assert.equal(ksmMerge(k), 298, '300 pages into two KSM pages');
  const first = pfnAt(k, mm, vpn);
  const second = pfnAt(k, mm, vpn + 299);
  assert.notEqual(first, second);
  assert.ok(isKsm(k, first) && isKsm(k, second));
  assert.equal(frame(k, first).mapcount, KSM_MAX_PAGE_SHARING);
  assert.equal(frame(k, second).mapcount, 300 - KSM_MAX_PAGE_SHARING);
  assert.equal(pfnAt(k, mm, vpn + 255), first);
  assert.equal(pfnAt(k, mm, vpn + 256), second);
  assert.equal(k.frames.used, 2);
  assertConsistent(k);
});

// stable_node_dup() (mm/ksm.c, v5.7 ... 6.18): a stable node chain's dups are an hlist, a new one
// added at its head (stable_node_chain_add_dup: hlist_add_head); the walk takes the first sharing
// candidate from the head, and moves it there when it has room for one more. Only the walk that
// prunes (once per stable_node_chains_prune_millisecs, 2 s, per chain) takes the candidate with the
// most rmap items: the model, without a clock, walks as ksmd does in between.
/** 300 pages of P's equal: K1 (a[0..255], full) and K2 (a[256..299], 44 mappings) at the chain's head. */
function chainOfTwo(k: Kernel): { mm: Mm; vpn: number; k1: number; k2: number } {
  const { mm, vpn } = proc(k, 300);
  mergeable(k, mm, vpn, 300);
  for (let i = 0; i < 300; i++) writeOk(k, mm, vpn + i, 9);
  assert.equal(ksmMerge(k), 298);
  const k1 = pfnAt(k, mm, vpn);
  const k2 = pfnAt(k, mm, vpn + 299);
  assert.ok(k1 < k2, 'K1 has the lower frame');
  assert.deepEqual([chainPlace(k, k2), chainPlace(k, k1)], [1, 2], 'K2, the new dup, at the head');
  return { mm, vpn, k1, k2 };
}

test('v6: a page merges into the first KSM page of the chain with room, from its head: not the lowest frame, not the one with most mappings', () => {
  const k = kernel('v6');
  const { mm, vpn, k1, k2 } = chainOfTwo(k);
  assert.equal(doMadvise(k, mm, vpn, vpn + 56, 'dontneed'), OK);
  assert.equal(ksmMerge(k), 0); // K1's items of a[0..55] go: K1 200, K2 44; no search meanwhile
  writeOk(k, mm, vpn, 9);
  assert.equal(ksmMerge(k), 1);
  assert.equal(pfnAt(k, mm, vpn), k2, 'into K2, the head');
  assert.deepEqual([frame(k, k1).mapcount, frame(k, k2).mapcount], [200, 45]);
  assert.deepEqual([chainPlace(k, k2), chainPlace(k, k1)], [1, 2]);
  assertConsistent(k);
});

test('v6: the first KSM page of the chain with room moves to its head if it takes one more besides this merge', () => {
  for (const [dropped, moves] of [[10, true], [1, false]] as const) {
    const k = kernel('v6');
    const { mm, vpn, k1, k2 } = chainOfTwo(k);
    // K2 kept by a GUP reference, its mappings and then its rmap items gone: no candidate.
    const h = take(k, mm, vpn + 256, GET);
    assert.equal(doMadvise(k, mm, vpn + 256, vpn + 300, 'dontneed'), OK);
    assert.equal(doMadvise(k, mm, vpn, vpn + dropped, 'dontneed'), OK);
    assert.equal(ksmMerge(k), 0);
    assert.deepEqual([frame(k, k2).mapcount, frame(k, k2).refcount, chainPlace(k, k2)], [0, 1, 1]);
    writeOk(k, mm, vpn, 9);
    assert.equal(ksmMerge(k), 1);
    assert.equal(pfnAt(k, mm, vpn), k1, 'K2 has no rmap item: into K1');
    // K1 had 246 items (moved: 247 < 256) or 255 (256 is not: it stays behind K2).
    assert.deepEqual([chainPlace(k, k1), chainPlace(k, k2)], moves ? [1, 2] : [2, 1], `${dropped} dropped`);
    releaseHandle(k, h);
    assertConsistent(k);
  }
});

// is_page_sharing_candidate(): stable_tree_search() merges a page only into a KSM page whose
// stable node an rmap item still hangs on ("at least one mapping still exists, otherwise there's
// no much point to merge and share with this stable_node, as the underlying tree_page of the
// other sharer is going to be freed soon"). ksmd drops an address's item when it finds another
// page there (cmp_and_merge_page: remove_rmap_item_from_tree) or passes it with none
// (get_next_rmap_item, remove_trailing_rmap_items); stable_tree_append() adds one at a merge and
// where it meets a KSM page mapped ("ksm page forked").
test('v6: a KSM page mapped nowhere, kept by a GUP reference, takes no new mapping once ksmd dropped its rmap items (is_page_sharing_candidate); equal pages make a new KSM page', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 4);
  mergeable(k, mm, vpn, 4);
  writeOk(k, mm, vpn, 7);
  writeOk(k, mm, vpn + 1, 7);
  assert.equal(ksmMerge(k), 1);
  const kp = pfnAt(k, mm, vpn);
  const h = take(k, mm, vpn, GET); // FOLL_GET: no unsharing; the KSM page stays held
  writeOk(k, mm, vpn, 8);
  writeOk(k, mm, vpn + 1, 9);
  assert.deepEqual([isKsm(k, kp), k.frames.inStableTree(kp), frame(k, kp).mapcount, frame(k, kp).refcount], [true, true, 0, 1]);
  // Pages 0 and 1 (their items dropped) come before page 2 in ksmd's walk.
  writeOk(k, mm, vpn + 2, 7);
  writeOk(k, mm, vpn + 3, 7);
  assert.equal(ksmMerge(k), 1, 'a new KSM page from the unstable tree, not two merges into the old one');
  const k2 = pfnAt(k, mm, vpn + 2);
  assert.notEqual(k2, kp);
  assert.equal(pfnAt(k, mm, vpn + 3), k2);
  assert.deepEqual([isKsm(k, k2), frame(k, k2).mapcount, frame(k, kp).mapcount, frame(k, kp).refcount], [true, 2, 0, 1]);
  releaseHandle(k, h);
  assertConsistent(k);
});

// An item is dropped only when ksmd passes its address: Q's item on the KSM page, left though Q
// maps its own copy now, still hangs there when ksmd scans P (registered first), so P's copy
// merges back into the KSM page that only a GUP reference keeps.
test('v6: an rmap item left at an address ksmd has not passed yet still makes its KSM page a sharing candidate', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 1);
  mergeable(k, p, vpn, 1);
  writeOk(k, p, vpn, 7);
  const q = dupMmap(k, p).child!;
  writeOk(k, q, vpn, 7); // Q's own page, equal
  assert.equal(ksmMerge(k), 1);
  const kp = pfnAt(k, p, vpn);
  assert.equal(pfnAt(k, q, vpn), kp);
  const h = take(k, p, vpn, GET);
  writeOk(k, q, vpn, 8);
  writeOk(k, q, vpn, 7); // Q's copy, KSM content again: Q's item stays until ksmd passes Q
  writeOk(k, p, vpn, 8);
  writeOk(k, p, vpn, 7); // P's copy
  assert.equal(frame(k, kp).mapcount, 0);
  assert.equal(ksmMerge(k), 2, 'P merges (Q\'s item still there), then Q (P\'s item now)');
  assert.deepEqual([pfnAt(k, p, vpn), pfnAt(k, q, vpn)], [kp, kp]);
  releaseHandle(k, h);
  assertConsistent(k);
});

// A KSM page swapped in stays in the swap cache (ksm_might_need_to_copy maps a stable KSM page as
// it is; should_try_to_free_swap() skips a KSM page), and a write then copies it: mapped nowhere,
// only the swap cache holds it. The model drops such a page at once (reclaim's doing), but not a
// KSM page an rmap item still hangs on: ksmd may map it again. P's and Q's items are left on it
// (neither address passed since), so P's copy, scanned while Q's item is there, merges back into
// it, then Q's; once no item is left, it goes.
test('v6: a KSM page only the swap cache holds stays while an rmap item hangs on it: ksmd merges equal pages back into it; without items it goes', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 1);
  mergeable(k, p, vpn, 1);
  writeOk(k, p, vpn, 7);
  const q = dupMmap(k, p).child!;
  writeOk(k, q, vpn, 7);
  assert.equal(ksmMerge(k), 1);
  const kp = pfnAt(k, p, vpn);
  writeOk(k, q, vpn, 8); // Q's copy: K mapped once, by P
  const h = take(k, p, vpn, GET);
  assert.equal(swapOutPage(k, p, vpn), null);
  assert.ok(k.frames.flags[kp]! & PG_SWAPCACHE, 'the GUP reference keeps it in the swap cache');
  releaseHandle(k, h);
  assert.equal(readOk(k, p, vpn), 7); // swapped in: the KSM page itself, read-only
  assert.equal(pfnAt(k, p, vpn), kp);
  writeOk(k, p, vpn, 9); // a copy: K mapped nowhere, held by the swap cache only
  assert.deepEqual([frame(k, kp).mapcount, frame(k, kp).refcount, isKsm(k, kp), (k.frames.flags[kp]! & PG_SWAPCACHE) !== 0], [0, 1, true, true]);
  writeOk(k, p, vpn, 7);
  writeOk(k, q, vpn, 7);
  assert.equal(ksmMerge(k), 2);
  assert.deepEqual([pfnAt(k, p, vpn), pfnAt(k, q, vpn), frame(k, kp).refcount], [kp, kp, 3]);
  // Both write again: once ksmd has dropped both items, the page goes.
  writeOk(k, p, vpn, 8);
  writeOk(k, q, vpn, 9);
  assert.equal(frame(k, kp).refcount, 1);
  assert.equal(ksmMerge(k), 0);
  assert.equal(k.frames.flags[kp]! & PG_KSM, 0, 'freed');
  assertConsistent(k);
});

// A fork's child maps the KSM page with no rmap item (ksm_fork copies none); ksmd gives it one
// when it meets it there, after the parent's pages in that pass: the parent's equal page merges
// in the next pass (ksm merge runs passes until one moves no item either).
test('v6: a KSM page mapped only by a fork\'s child takes the parent\'s equal page on the pass after the child\'s mappings got rmap items', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 3);
  mergeable(k, p, vpn, 3);
  writeOk(k, p, vpn, 7);
  writeOk(k, p, vpn + 1, 7);
  assert.equal(ksmMerge(k), 1);
  const kp = pfnAt(k, p, vpn);
  const q = dupMmap(k, p).child!;
  writeOk(k, p, vpn, 8);
  writeOk(k, p, vpn + 1, 9);
  writeOk(k, p, vpn + 2, 7);
  assert.deepEqual([pfnAt(k, q, vpn), pfnAt(k, q, vpn + 1), frame(k, kp).mapcount], [kp, kp, 2]);
  assert.equal(ksmMerge(k), 1);
  assert.equal(pfnAt(k, p, vpn + 2), kp);
  assert.equal(frame(k, kp).mapcount, 3);
  assertConsistent(k);
});

// wp_page_copy() marks only a write's copy dirty (pte_mkdirty); an unshare copy is mapped clean.
// That decides write_protect_page()'s check: P's a[0], copied by an R/O pin's unshare fault and
// shared again by a fork, is a clean read-only PTE of a page that is not exclusive, so KSM takes
// it without comparing references, the pipe's included (a dirty PTE would be checked: 2 mappings
// + the pipe's reference != 2 mappings, refused).
test('v5.19, v6: an unshare copy is mapped clean, so KSM merges it once shared, a pipe\'s reference and all', () => {
  const sc = story('P mmap a 2 rw private\nP write a = 1\nP fork Q\nP pin a[0] as h ro\nP unpin h\nP fork R\nR vmsplice a[0] as p1\n' +
    'P madvise a mergeable\nksm merge\nexpect P a[0] same-frame P a[1]\nexpect R a[0] other-frame P a[0]\nR read p1[0] expect 1');
  for (const name of ['v5.19', 'v6']) assert.deepEqual(kindsOf(runScenario(sc, profileOf(name))), [], name);
});

// break_cow's leftover: P's a[1] (frame B, shared with Q by fork) becomes a KSM page, its
// partner P's a[0] (pinned) is refused, and break_cow gives P a copy: Q maps a KSM page that has
// no stable node. reuse_ksm_page() (5.1-5.8) wants one (page_stable_node), so Q's write copies;
// and reclaim cannot unmap it (rmap_walk_ksm() walks the stable node's rmap items: none), so
// MADV_PAGEOUT leaves it mapped, though add_to_swap() has put it in the swap cache.
function leftover(name: string): { k: Kernel; q: Mm; vpn: number; b: number } {
  const k = kernel(name);
  const { mm: p, vpn } = proc(k, 2);
  writeOk(k, p, vpn, 3);
  const b = writeOk(k, p, vpn + 1, 3);
  const q = dupMmap(k, p).child!;
  take(k, p, vpn, PIN_RW); // a write fault: P's a[0] is its own copy now, pinned
  mergeable(k, p, vpn, 2);
  assert.equal(ksmMerge(k), 0);
  assert.notEqual(pfnAt(k, p, vpn + 1), b, 'break_cow copied P\'s a[1]');
  assert.equal(pfnAt(k, q, vpn + 1), b);
  assert.ok(isKsm(k, b));
  assert.equal(k.frames.inStableTree(b), false);
  assert.deepEqual([frame(k, b).mapcount, frame(k, b).refcount], [1, 1]);
  return { k, q, vpn, b };
}

for (const name of ['v5.7', 'v5.8']) {
  test(`${name}: a KSM page in no tree, mapped once, is copied on write (reuse_ksm_page wants a stable node)`, () => {
    const { k, q, vpn, b } = leftover(name);
    const copies = k.stats.cowCopies;
    const c = writeOk(k, q, vpn + 1, 9);
    assert.notEqual(c, b);
    assert.equal(k.stats.cowCopies, copies + 1);
    assertConsistent(k);
  });
}

test('v6: MADV_PAGEOUT cannot unmap a KSM page in no tree (rmap_walk_ksm finds no rmap item): it stays mapped, in the swap cache', () => {
  const { k, q, vpn, b } = leftover('v6');
  assert.equal(swapOutPage(k, q, vpn + 1), 'shared');
  assert.equal(pfnAt(k, q, vpn + 1), b, 'still mapped');
  assert.ok(k.frames.flags[b]! & PG_SWAPCACHE, 'add_to_swap ran before try_to_unmap');
  assert.deepEqual([frame(k, b).mapcount, frame(k, b).refcount], [1, 2]);
  assert.equal(readOk(k, q, vpn + 1), 3);
  assertConsistent(k);
});

// A KSM page in no tree (break_cow's leftover) is scanned like any anonymous page
// (cmp_and_merge_page: no stable node), but write_protect_page() cannot take it:
// page_address_in_vma() wants the folio's anon_vma, and a KSM folio's mapping is a stable node
// (folio_anon_vma() is NULL), so it returns -EFAULT and try_to_merge_one_page() fails before
// anything changes. Seen on a 6.18 kernel (oracle --random, seed 29): the leftovers stay KSM pages.
test('v6: a KSM page in no tree is never merged again: write_protect_page fails (no anon_vma), so it is neither merged nor broken', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 2);
  mergeable(k, p, vpn, 2);
  take(k, p, vpn + 1, PIN_RW); // a zero-filled page, pinned: refused by write_protect_page
  const q = dupMmap(k, p).child!; // early COW: Q gets its own copy
  const r = dupMmap(k, q).child!; // R shares Q's; both registered with KSM (ksm_fork)
  const x = pfnAt(k, q, vpn + 1);
  assert.equal(pfnAt(k, r, vpn + 1), x);
  assert.equal(ksmMerge(k), 0);
  // Q's a[1] (x) was made KSM and broken (Q copies); R's a[1], still x, is a KSM page in no
  // tree: the pair with the pinned page fails at once, with no break_cow.
  const qc = pfnAt(k, q, vpn + 1);
  assert.ok(qc !== x);
  assert.equal(pfnAt(k, r, vpn + 1), x);
  assert.deepEqual([isKsm(k, qc), isKsm(k, x), frame(k, x).mapcount, frame(k, x).refcount], [false, true, 1, 1]);
  // Another pass changes nothing.
  assert.equal(ksmMerge(k), 0);
  assert.equal(pfnAt(k, r, vpn + 1), x);
  assertConsistent(k);
});

// Up to 6.1 break_ksm()'s FAULT_FLAG_WRITE fault meets a uffd-wp protected PTE (write_protect_page
// keeps the bit) and goes to handle_userfault(), which fails in ksmd (no FAULT_FLAG_ALLOW_RETRY:
// VM_FAULT_SIGBUS): no copy, the page stays a KSM page (in no tree) mapped write-protected.
// 6cce3314b928 (6.2) made it an unshare fault: a copy, the bit kept. Either way the process's
// write then goes to the monitor.
test('break_cow on a uffd-wp protected page: no copy up to 6.1 (handle_userfault fails in ksmd), an unshare copy from 6.2', () => {
  // One break_cow (smart_scan 0: with smart scan `ksm merge` runs on, breaking COW again at each pass that compares both).
  const lines = (copies: number): ReturnType<typeof parse> => smartScanOff(story('P mmap a 2 rw private\nP madvise a mergeable\nP write a = 3\nP pin a[0] as h\n' +
    `P uffd register a wp\nP uffd protect a\nksm merge\nexpect stat cow_copies == ${copies}\nexpect P a[1] uffd-wp\nP write a[1] = 5\nexpect stat uffd_faults.P == 1`));
  for (const [name, copies] of [['v5.19', 0], ['6.1', 0], ['v6.2', 1], ['v6', 1]] as const) {
    assert.deepEqual(kindsOf(runScenario(lines(copies), profileOf(name))), [], name);
  }
});

/** ksmMerge(k) with the passes it took (its closing note). */
function mergeCounted(k: Kernel): { merged: number; passes: number } {
  const was = k.tracing;
  k.tracing = true;
  const from = k.events.length;
  const merged = ksmMerge(k);
  k.tracing = was;
  const note = k.events.slice(from).find((e) => e.why.startsWith('ksmd: '))!;
  return { merged, passes: Number(/in (\d+) pass/.exec(note.why)![1]) };
}

// cmp_and_merge_page(): a page enters the unstable tree only when calc_checksum() equals its
// rmap item's oldchecksum, remembered at its last scan; a new item's is 0 (kmem_cache_zalloc),
// no page's checksum. Two pages new to ksmd have their checksums remembered in the first pass
// and merge in the second; a third pass finds nothing to change.
for (const name of ['v5.7', 'v6.2', 'v6']) {
  test(`${name}: pages new to ksmd merge with each other only on the pass after their first scan`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 2);
    mergeable(k, mm, vpn, 2);
    writeOk(k, mm, vpn, 7);
    writeOk(k, mm, vpn + 1, 7);
    assert.deepEqual(mergeCounted(k), { merged: 1, passes: 3 });
    assert.deepEqual([...mm.ksmChecksums!], [[vpn, 7], [vpn + 1, 7]], 'the values of their last scan, kept while the items hang on the KSM page');
    assert.deepEqual(mergeCounted(k), { merged: 0, passes: 1 });
    assertConsistent(k);
  });
}

// Before 6.11 the stable tree is searched before the checksum is compared, so a page new to
// ksmd merges into a KSM page of its content at once; from 6.11 (d58a361b0350) the checksum
// comes first and it waits a pass.
for (const [name, passes] of [['v5.7', 2], ['v6.2', 2], ['6.6', 2], ['6.12', 3], ['v6', 3]] as const) {
  test(`${name}: a page new to ksmd merges into an existing KSM page in ${passes - 1} pass(es)`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 3);
    mergeable(k, mm, vpn, 3);
    writeOk(k, mm, vpn, 7);
    writeOk(k, mm, vpn + 1, 7);
    assert.equal(ksmMerge(k), 1);
    writeOk(k, mm, vpn + 2, 7);
    assert.deepEqual(mergeCounted(k), { merged: 1, passes });
    assert.equal(pfnAt(k, mm, vpn + 2), pfnAt(k, mm, vpn));
    assertConsistent(k);
  });
}

// The checksum is the page's value at its last scan: a page rewritten since waits a pass more,
// one whose value is back to what ksmd saw does not; an address ksmd passes with no page loses
// its rmap item, checksum and all, so a page written there again is new to ksmd.
test('v6: the remembered checksum is the value of the last scan; an address passed with no page forgets it', () => {
  const k = kernel('v6');
  k.config.ksmSmartScan = false; // the passes counted without smart scan's (ksm-smart-scan.test.ts)
  const { mm, vpn } = proc(k, 2);
  mergeable(k, mm, vpn, 2);
  writeOk(k, mm, vpn, 7);
  writeOk(k, mm, vpn + 1, 8);
  assert.deepEqual(mergeCounted(k), { merged: 0, passes: 2 });
  assert.deepEqual([...mm.ksmChecksums!], [[vpn, 7], [vpn + 1, 8]]);
  writeOk(k, mm, vpn + 1, 9);
  writeOk(k, mm, vpn + 1, 8); // rewritten to the value ksmd saw: nothing changed for it
  assert.deepEqual(mergeCounted(k), { merged: 0, passes: 1 });
  writeOk(k, mm, vpn + 1, 7); // changed since its scan: a pass to remember it, one to merge
  assert.deepEqual(mergeCounted(k), { merged: 1, passes: 3 });
  assert.equal(pfnAt(k, mm, vpn + 1), pfnAt(k, mm, vpn));
  assert.equal(doMadvise(k, mm, vpn, vpn + 2, 'dontneed'), OK);
  assert.deepEqual(mergeCounted(k), { merged: 0, passes: 2 });
  assert.equal(mm.ksmChecksums, null, 'no page at either address: both items freed');
  writeOk(k, mm, vpn, 7);
  writeOk(k, mm, vpn + 1, 7);
  assert.deepEqual(mergeCounted(k), { merged: 1, passes: 3 });
  assertConsistent(k, false);
});

// The scenario of the checksum delay: P's pages new to ksmd wait a pass, by when Q's scan has
// given the KSM page P left (no rmap item on it) items again, so they merge into it rather than
// pairing into a second KSM page. Every kernel.
test('a KSM page whose rmap items all went is given new ones by a fork\'s scan before pages new to ksmd can pair: they merge into it', () => {
  const sc = parse(readFileSync(join(ROOT, 'scenarios/basic/ksm-checksum-delay-revives-forked-ksm-page.scn.yaml'), 'utf8'));
  for (const name of ['v5.7', 'v5.9', 'v6.2', 'v6']) assert.deepEqual(kindsOf(runScenario(sc, profileOf(name))), [], name);
});

// use_zero_pages (config.ksm_use_zero_pages): cmp_and_merge_page() gives a page whose checksum is
// the empty page's to try_to_merge_one_page() with the zero page as kpage; replace_page() maps the
// zero page with a special PTE and drops MM_ANONPAGES. Off (the default), pages of zeros merge into
// a KSM page like any other content.
for (const name of ['v5.7', 'v6.2', 'v6']) {
  for (const on of [false, true]) {
    test(`${name}: use_zero_pages=${on ? 1 : 0}: pages of zeros merge ${on ? 'with the shared zero page' : 'into a KSM page'}; a write copies, a fork shares`, () => {
      const k = kernel(name);
      k.config.ksmUseZeroPages = on;
      const { mm: p, vpn: a } = proc(k, 4);
      mergeable(k, p, a, 4);
      writeOk(k, p, a, 0);
      writeOk(k, p, a + 1, 0);
      writeOk(k, p, a + 2, 7);
      writeOk(k, p, a + 3, 7);
      const q = dupMmap(k, p).child!;
      assert.equal(ksmMerge(k), on ? 6 : 4, on ? 'four zero merges (P and Q each their own), then Q into the KSM page of 7' : 'Q into two KSM pages');
      for (const mm of [p, q]) {
        for (const v of [a, a + 1]) {
          const pt = presentPte(k, mm, v);
          if (on) assert.ok(pt.pfn === 0 && pt.special && !pt.write, `mm ${mm.id} page ${v}: the zero page, special, read-only`);
          else assert.ok(isKsm(k, pt.pfn), `mm ${mm.id} page ${v}: a KSM page`);
        }
        assert.ok(isKsm(k, pfnAt(k, mm, a + 2)), 'the page of 7 is a KSM page either way');
      }
      assert.equal(k.frames.used, on ? 1 : 2, on ? 'the KSM page of 7 only' : 'the KSM pages of 0 and 7');
      assert.equal(p.rssAnon, on ? 2 : 4, 'MM_ANONPAGES: the zero page is not counted');
      assertConsistent(k);
      assert.equal(readOk(k, p, a), 0);
      writeOk(k, p, a, 5); // do_wp_page: a copy (of the zero page: a zeroed page) either way
      assert.ok(pfnAt(k, p, a) !== 0 && !isKsm(k, pfnAt(k, p, a)));
      assert.equal(readOk(k, q, a), 0);
      const r = dupMmap(k, q).child!; // copy_present_pte: the zero-page PTE is shared as it is
      assert.equal(pfnAt(k, r, a + 1), on ? 0 : pfnAt(k, q, a + 1));
      assertConsistent(k);
      exitMmap(k, p);
      exitMmap(k, q);
      exitMmap(k, r);
      assertConsistent(k, true);
    });
  }
}

test('use_zero_pages: a page of zeros with a reference besides its mappings is not merged with the zero page (write_protect_page), nor into a KSM page', () => {
  const k = kernel('v6');
  k.config.ksmUseZeroPages = true;
  const { mm, vpn: a } = proc(k, 2);
  mergeable(k, mm, a, 2);
  writeOk(k, mm, a, 0);
  writeOk(k, mm, a + 1, 0);
  const pinned = pfnAt(k, mm, a);
  const h = take(k, mm, a, PIN_RW);
  assert.equal(ksmMerge(k), 1, 'a[1] only');
  assert.equal(pfnAt(k, mm, a), pinned, 'the pinned page stays mapped');
  assert.ok(!isKsm(k, pinned));
  assert.equal(pfnAt(k, mm, a + 1), 0);
  releaseHandle(k, h);
  assertConsistent(k);
});

// The order of cmp_and_merge_page(): before 6.11 the stable tree is searched first, so a page of
// zeros merges into a KSM page of zeros already there; from 6.11 (d58a361b0350) the checksum and
// try_to_merge_with_zero_page() come first, so it goes to the zero page.
for (const [name, intoKsm] of [['v6.2', true], ['v6', false]] as const) {
  test(`${name}: use_zero_pages switched on with a KSM page of zeros in the stable tree: a new page of zeros merges ${intoKsm ? 'into it (stable tree first)' : 'with the zero page (zero test first, 6.11+)'}`, () => {
    const k = kernel(name);
    const { mm, vpn: a } = proc(k, 3);
    mergeable(k, mm, a, 3);
    writeOk(k, mm, a, 0);
    writeOk(k, mm, a + 1, 0);
    assert.equal(ksmMerge(k), 1);
    const kp = pfnAt(k, mm, a);
    assert.ok(isKsm(k, kp));
    k.config.ksmUseZeroPages = true;
    writeOk(k, mm, a + 2, 0);
    assert.equal(ksmMerge(k), 1);
    assert.equal(pfnAt(k, mm, a + 2), intoKsm ? kp : 0);
    assert.equal(pfnAt(k, mm, a), kp, 'a KSM page already mapped stays: ksmd does not scan it again');
    assertConsistent(k);
  });
}

test('use_zero_pages: mremap of a mergeable range mapping the zero page is n/a (from 6.6 prep_move_vma unshares the zero pages KSM placed; the model does not mark them)', () => {
  const text = (on: number): string => `name: t\nconfig:\n  ksm_use_zero_pages: ${on}\nsteps: |\n  P mmap a 2\n  P madvise a mergeable\n  P write a = 0\n  ksm merge\n  P mremap a[0..1] as b\n  P read b[0] expect 0\n`;
  const on = runScenario(parse(text(1)), profileOf('v6'), { trace: false });
  assert.equal(on.na?.line, 9);
  assert.match(on.na?.reason ?? '', /ksm_use_zero_pages on is not modelled yet/);
  // Off, the pages of zeros are a KSM page: n/a as any KSM page (prep_move_vma unmerges it).
  assert.equal(runScenario(parse(text(0)), profileOf('v6'), { trace: false }).na?.line, 9);
});
