// MADV_PAGEOUT over a range holding a PTE-mapped large folio (pageoutLargeWalk): up to 6.9
// madvise_cold_or_pageout_pte_range()'s PTE loop `break`s at a folio it leaves alone, so the later
// pages under the same PMD (in the same VMA) are not paged out; the walk goes on at the next PMD
// and in the next VMA. 6.10+ batch the folio's PTEs: one left alone is stepped past, and a folio
// the batch maps whole is paged out when folio_mapcount() is its number of pages, without the
// sharing test. Expected figures come from those rules (read in mm/madvise.c of 5.4.286 ... 6.9.0
// and 6.10.0 ... 6.18.2; docs/profiles.md, pageoutLargeWalk).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OK, PG_LARGE, VM_HUGEPAGE } from '../../src/core/constants.js';
import { dupMmap } from '../../src/core/fork.js';
import { getUserPages } from '../../src/core/gup.js';
import type { Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { doMadvise, doMmap, doMprotect } from '../../src/core/mmap.js';
import { pageoutRange, type SwapoutSkip } from '../../src/core/swap.js';
import { pmdLeafSlot } from '../../src/core/walk.js';
import { exitMmap } from '../../src/core/zap.js';
import { assertConsistent, kernel, presentPte, pte, readOk, writeOk } from './helpers.js';

/** Break-era profiles (5.4-6.9) and the 6.10+ ones; and each with the switch turned. */
const BREAK = ['v5.7', 'v5.14', 'v6.2', '5.10', '5.15', '6.1', '6.6'];
const STEP = ['6.12', 'v6.15', 'v6'];

/**
 * P maps `pages` pages with MADV_HUGEPAGE; t[0] written (a THP in the first PMD); Q forked (its PMD
 * maps the THP too); P zaps t[256..511] (its PMD split: its PTEs map the folio's first 256 pages)
 * and writes t[300] (an ordinary page, P's alone).
 */
function setup(k: Kernel, pages: number): { p: Mm; q: Mm; t: number; head: number } {
  const p = k.newMm();
  const r = doMmap(k, p, pages, 'rw', false, false, VM_HUGEPAGE);
  assert.equal(r.err, OK);
  const t = r.start;
  writeOk(k, p, t, 1);
  const s = pmdLeafSlot(k, p, t);
  assert.ok(s >= 0, 'the setup maps a THP');
  const head = k.tables.entry[s]!;
  const f = dupMmap(k, p);
  assert.equal(f.err, OK);
  assert.equal(doMadvise(k, p, t + 256, t + 512, 'dontneed'), OK);
  assert.equal(pmdLeafSlot(k, p, t), -1, 'P\'s PMD was split');
  writeOk(k, p, t + 300, 2);
  assert.equal(k.frames.flags[presentPte(k, p, t + 300).pfn]! & PG_LARGE, 0, 't[300] is an ordinary page');
  return { p, q: f.child!, t, head };
}

/** pageoutRange, with the reasons it gives per page. */
function pageout(k: Kernel, mm: Mm, lo: number, hi: number): { out: number; why: Map<number, SwapoutSkip> } {
  const why = new Map<number, SwapoutSkip>();
  const out = pageoutRange(k, mm, lo, hi, (v, w) => { why.set(v - lo, w); });
  return { out, why };
}

test('a shared PTE-mapped THP before an ordinary page under one PMD: up to 6.9 the PTE loop breaks there and the page stays; 6.10+ page it out', () => {
  for (const name of [...BREAK, ...STEP, 'v6.2+pageoutLargeWalk=batch', 'v6+pageoutLargeWalk=break']) {
    const [base, set] = name.split('+');
    const k = kernel(base!, { sets: set ? [set] : [] });
    const brk = k.profile.pageoutLargeWalk === 'break';
    assert.equal(brk, BREAK.includes(name) || name.endsWith('=break'), name);
    const { p, q, t, head } = setup(k, 512);
    assert.equal(p.rssAnon, 257);
    const { out, why } = pageout(k, p, t, t + 512);
    assert.equal(out, brk ? 0 : 1, `${name}: pages paged out`);
    assert.equal(why.get(0), 'shared', `${name}: the folio is left alone on every profile`);
    assert.equal(why.get(300), brk ? 'walk-ended' : undefined, name);
    assert.equal(why.get(255), brk ? 'walk-ended' : 'shared', name);
    assert.equal(pte(k, p, t + 300)!.present, brk, `${name}: t[300] resident`);
    assert.equal(p.rssAnon, brk ? 257 : 256, name);
    assert.ok(pmdLeafSlot(k, q, t) >= 0, `${name}: Q's PMD stays`);
    assert.equal(presentPte(k, p, t).pfn, head);
    assert.equal(readOk(k, p, t + 300), 2, `${name}: the page reads back (swapped in where it went out)`);
    assertConsistent(k);
  }
});

test('the break ends the walk of that PMD only: the next PMD is walked again', () => {
  for (const name of ['v6.2', 'v6']) {
    const k = kernel(name);
    const { p, t } = setup(k, 1024);
    // t[512..1023]: a second THP, P's alone (after the fork), PMD-mapped; no page of it zero
    // (6.12's split would map those to the zero page: thpSplitZeropage).
    for (let i = 512; i < 1024; i++) writeOk(k, p, t + i, 3);
    assert.ok(pmdLeafSlot(k, p, t + 512) >= 0);
    const brk = k.profile.pageoutLargeWalk === 'break';
    const { out } = pageout(k, p, t, t + 1024);
    // The second PMD's THP, mapped once and covered whole, is split and paged out (512 pages).
    assert.equal(out, brk ? 512 : 513, name);
    assert.equal(pte(k, p, t + 300)!.present, brk, name);
    assert.equal(pte(k, p, t + 600)!.present, false, name);
    // A range starting inside the first PMD: its end is the PMD's, not the range's.
    const k2 = kernel(name);
    const s2 = setup(k2, 1024);
    for (let i = 512; i < 1024; i++) writeOk(k2, s2.p, s2.t + i, 3);
    const r2 = pageout(k2, s2.p, s2.t + 100, s2.t + 700);
    // t[512..699] of the second THP: the PMD path splits it (the range covers part of it) and the PTE loop pages them out.
    assert.equal(r2.out, brk ? 188 : 189, name);
    assert.equal(r2.why.get(0), 'shared', name);
    assert.equal(r2.why.get(411), brk ? 'walk-ended' : 'not-present', `${name}: page 511 of the first PMD`);
    assert.equal(r2.why.get(412), undefined, `${name}: page 512 is walked again`);
    assertConsistent(k);
    assertConsistent(k2);
  }
});

test('the break ends at the VMA: walk_page_range() walks the next VMA under the same PMD again', () => {
  for (const name of ['v6.2', 'v6']) {
    const k = kernel(name);
    const { p, t } = setup(k, 512);
    writeOk(k, p, t + 450, 4);
    // t[400..511] a VMA of its own: t[450] is its page, mapped once.
    assert.equal(doMprotect(k, p, t + 400, t + 512, 'ro'), OK);
    assert.equal(p.vmas.length, 2);
    const brk = k.profile.pageoutLargeWalk === 'break';
    const { out, why } = pageout(k, p, t, t + 512);
    assert.equal(out, brk ? 1 : 2, name);
    assert.equal(pte(k, p, t + 300)!.present, brk, `${name}: t[300], in the first VMA after the folio`);
    assert.equal(pte(k, p, t + 450)!.present, false, `${name}: t[450], in the second VMA, is paged out`);
    // t[256..511] are zapped: walked, they are not present.
    assert.equal(why.get(399), brk ? 'walk-ended' : 'not-present', name);
    assert.equal(why.get(400), 'not-present', name);
    assertConsistent(k);
  }
});

test('a THP the split refuses (a GUP reference) breaks the PTE loop as a shared one does, up to 6.9', () => {
  for (const name of ['v6.2', '6.6', 'v6']) {
    const k = kernel(name);
    const p = k.newMm();
    const r = doMmap(k, p, 512, 'rw', false, false, VM_HUGEPAGE);
    assert.equal(r.err, OK);
    const t = r.start;
    writeOk(k, p, t, 1);
    const g = getUserPages(k, p, t + 5, t + 6, { pin: false, write: false, longterm: false, fast: false, kind: 'gup' });
    assert.equal(g.err, OK);
    assert.equal(doMadvise(k, p, t + 256, t + 512, 'dontneed'), OK);
    writeOk(k, p, t + 300, 2);
    const brk = k.profile.pageoutLargeWalk === 'break';
    const { out, why } = pageout(k, p, t, t + 512);
    assert.equal(why.get(0), 'pinned', `${name}: split_folio() fails`);
    assert.equal(out, brk ? 0 : 1, name);
    assert.equal(pte(k, p, t + 300)!.present, brk, name);
    assertConsistent(k);
  }
});

/**
 * R alone maps a THP with PTEs, every page, while 6.15's MM-id tracking still says "maybe mapped
 * shared" (scenarios/basic/thp-third-mm-keeps-shared-bit: P, Q and R shared it; Q exited, R's
 * mprotect of one page and back split R's PMD, P exited).
 */
function staleShared(k: Kernel): { r: Mm; t: number; head: number } {
  const p = k.newMm();
  const m = doMmap(k, p, 512, 'rw', false, false, VM_HUGEPAGE);
  assert.equal(m.err, OK);
  const t = m.start;
  for (let i = 0; i < 512; i++) writeOk(k, p, t + i, 2);
  const head = k.tables.entry[pmdLeafSlot(k, p, t)]!;
  const q = dupMmap(k, p).child!;
  const r = dupMmap(k, p).child!;
  exitMmap(k, q);
  assert.equal(doMprotect(k, r, t + 332, t + 333, 'ro'), OK);
  assert.equal(doMprotect(k, r, t + 332, t + 333, 'rw'), OK);
  assert.equal(r.vmas.length, 1, 'the VMAs merged back');
  exitMmap(k, p);
  assert.equal(k.frames.folioMapcount(head), 512);
  return { r, t, head };
}

test('6.10+: a folio its batch of PTEs maps whole is paged out when folio_mapcount() is 512, whatever the sharing test says', () => {
  const k = kernel('v6');
  const { r, t, head } = staleShared(k);
  assert.ok(k.frames.folioMaybeMappedShared(head), 'the shared bit outlived the other mms');
  assert.equal(pageout(k, r, t, t + 512).out, 512);
  assert.equal(r.rssAnon, 0);
  assert.equal(readOk(k, r, t + 341), 2);
  assertConsistent(k);
  // A range one page short: the batch is 511 PTEs, the sharing test decides, and the folio stays.
  const k2 = kernel('v6');
  const s2 = staleShared(k2);
  const r2 = pageout(k2, s2.r, s2.t, s2.t + 511);
  assert.equal(r2.out, 0);
  assert.equal(r2.why.get(0), 'shared');
  assert.equal(r2.why.get(510), 'shared');
  assert.equal(s2.r.rssAnon, 512);
  // The break-era walk asks the sharing test at t[0] and breaks.
  const k3 = kernel('v6', { sets: ['pageoutLargeWalk=break'] });
  const s3 = staleShared(k3);
  const r3 = pageout(k3, s3.r, s3.t, s3.t + 512);
  assert.equal(r3.out, 0);
  assert.equal(r3.why.get(1), 'walk-ended');
  assertConsistent(k2);
  assertConsistent(k3);
});

test('6.10+: a folio mapped whole by the batch but also by another mapping (folio_mapcount() 513) is stepped past', () => {
  for (const name of ['6.12', 'v6']) {
    const k = kernel(name);
    const p = k.newMm();
    const m = doMmap(k, p, 512, 'rw', false, false, VM_HUGEPAGE);
    const t = m.start;
    for (let i = 0; i < 512; i++) writeOk(k, p, t + i, 2);
    const head = k.tables.entry[pmdLeafSlot(k, p, t)]!;
    const q = dupMmap(k, p).child!;
    assert.equal(doMprotect(k, p, t + 7, t + 8, 'ro'), OK);
    assert.equal(doMprotect(k, p, t + 7, t + 8, 'rw'), OK);
    assert.equal(k.frames.folioMapcount(head), 513, 'P\'s 512 PTEs and Q\'s PMD');
    const r = pageout(k, p, t, t + 512);
    assert.equal(r.out, 0, name);
    assert.equal(r.why.get(511), 'shared', name);
    assert.ok(pmdLeafSlot(k, q, t) >= 0, `${name}: Q's PMD stays`);
    assertConsistent(k);
  }
});
