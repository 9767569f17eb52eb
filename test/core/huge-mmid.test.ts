// MM-id tracking of large folios (6.15+, include/linux/rmap.h folio_add_return_large_mapcount /
// folio_sub_return_large_mapcount): two slots, each an mm and how many of the folio's mappings it
// added since it took the slot, and a "maybe mapped shared" bit set when a second mm maps the
// folio and cleared only when one slot holds every mapping left. Expected figures follow those
// rules step by step: a mm that maps the folio while both slots are taken is in neither, and the
// bit can stay set after it alone is left (folio_maybe_mapped_shared() then says shared).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OK, PG_LARGE, VM_HUGEPAGE } from '../../src/core/constants.js';
import { dupMmap } from '../../src/core/fork.js';
import type { Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { doMmap } from '../../src/core/mmap.js';
import { swapOutPage } from '../../src/core/swap.js';
import { pmdLeafSlot } from '../../src/core/walk.js';
import { exitMmap, unmapRegion } from '../../src/core/zap.js';
import { assertConsistent, kernel, presentPte, pte, readOk, writeOk } from './helpers.js';
import { AccountingChecker } from '../../src/check/accounting.js';

/** A process with one PMD-mapped THP of 512 written pages. */
function thp(k: Kernel): { mm: Mm; vpn: number; head: number } {
  const mm = k.newMm();
  const r = doMmap(k, mm, 512, 'rw', false, false, VM_HUGEPAGE);
  assert.equal(r.err, OK);
  for (let i = 0; i < 512; i++) writeOk(k, mm, r.start + i, 2);
  const s = pmdLeafSlot(k, mm, r.start);
  assert.ok(s >= 0, 'the setup maps a THP');
  return { mm, vpn: r.start, head: k.tables.entry[s]! };
}

/** The folio's MM-id state: [slot 0's mm, its count], [slot 1's mm, its count] (-1: free), shared bit. */
function slots(k: Kernel, head: number): { s0: [number, number]; s1: [number, number]; shared: boolean } {
  const f = k.frames;
  const b = head >>> 9;
  return { s0: [f.mmId0[b]! - 1, f.mmIdCount0[b]!], s1: [f.mmId1[b]! - 1, f.mmIdCount1[b]!], shared: f.mmIdsShared[b] === 1 };
}

/** P's THP shared with Q and R at fork; Q exits (with `qFirst`, before R is forked); R unmaps one page; P exits. */
function thirdMm(name: string, withQ = true, qFirst = false): { k: Kernel; r: Mm; vpn: number; head: number } {
  const k = kernel(name);
  const { mm: p, vpn, head } = thp(k);
  if (k.frames.mmIds) assert.deepEqual(slots(k, head), { s0: [p.id, 1], s1: [-1, 0], shared: false }, 'folio_set_large_mapcount(): P\'s PMD');
  let q: Mm | null = null;
  if (withQ) q = dupMmap(k, p, false).child!;
  if (q !== null && qFirst) exitMmap(k, q);
  const r = dupMmap(k, p, false).child!;
  if (q !== null && !qFirst) {
    if (k.frames.mmIds) assert.deepEqual(slots(k, head), { s0: [p.id, 1], s1: [q.id, 1], shared: true }, 'R found both slots taken');
    exitMmap(k, q);
    if (k.frames.mmIds) assert.deepEqual(slots(k, head), { s0: [p.id, 1], s1: [-1, 0], shared: true }, 'Q\'s slot freed; P\'s 1 of 2 mappings');
  }
  unmapRegion(k, r, vpn + 332, vpn + 333);
  assert.equal(pmdLeafSlot(k, r, vpn), -1, 'R\'s PMD was split');
  exitMmap(k, p);
  assert.equal(k.frames.folioMapcount(head), 511, 'R alone maps 511 pages of the folio');
  assertConsistent(k);
  return { k, r, vpn, head };
}

test('6.15+: a third mm that mapped the THP while both MM-id slots were taken leaves the shared bit set; pageout leaves the folio', () => {
  const { k, r, vpn, head } = thirdMm('v6');
  // The split added 512 PTE mappings to R's new slot before the PMD mapping (never in a slot)
  // went: 511, then 510 once t[332] was unmapped, for R's 511 mappings; P's exit freed slot 0.
  assert.deepEqual(slots(k, head), { s0: [-1, 0], s1: [r.id, 510], shared: true });
  assert.ok(k.frames.folioMaybeMappedShared(head));
  assert.equal(swapOutPage(k, r, vpn + 341), 'shared');
  assert.equal(presentPte(k, r, vpn + 341).pfn, head + 341, 'still present, in the folio');
  assert.ok(k.frames.flags[head]! & PG_LARGE, 'not split');
  assert.equal(r.rssAnon, 511);
  // do_wp_page(): __wp_can_reuse_large_anon_folio() refuses while the bit is set: a copy.
  writeOk(k, r, vpn + 341, 9);
  const n = presentPte(k, r, vpn + 341).pfn;
  assert.ok(n < head || n >= head + 512, 'copied out of the folio');
  assert.equal(k.stats.cowCopies, 1);
  assert.deepEqual(slots(k, head), { s0: [-1, 0], s1: [r.id, 509], shared: true });
  assert.equal(swapOutPage(k, r, vpn + 341), null, 'the copy, a small page, is swapped');
  assert.equal(pte(k, r, vpn + 341)?.present, false);
  assert.equal(readOk(k, r, vpn + 341), 9);
  assertConsistent(k);
});

test('6.15+: without the third mm (or with Q gone before R is forked) R holds a slot with every mapping: the bit clears and pageout splits and swaps', () => {
  for (const [withQ, qFirst] of [[false, false], [true, true]] as const) {
    const { k, r, vpn, head } = thirdMm('v6', withQ, qFirst);
    // R took a free slot at fork (1, the PMD), +512 -1 at the split, -1 at the munmap: 511, all.
    assert.deepEqual(slots(k, head), { s0: [-1, 0], s1: [r.id, 511], shared: false });
    assert.equal(swapOutPage(k, r, vpn + 341), null);
    assert.equal(pte(k, r, vpn + 341)?.present, false);
    assert.equal(r.rssAnon, 510);
    assertConsistent(k);
  }
});

test('before 6.15 (6.12: the page mapcounts, no MM-id slots): R alone maps the folio, pageout splits it and swaps the page', () => {
  const { k, r, vpn } = thirdMm('6.12');
  assert.equal(k.frames.mmIds, false);
  assert.equal(swapOutPage(k, r, vpn + 341), null);
  assert.equal(pte(k, r, vpn + 341)?.present, false);
  assert.equal(r.rssAnon, 510);
  assertConsistent(k);
});

test('the accounting checker finds an MM-id slot that counts more mappings than its mm has, and a clear shared bit no slot explains', () => {
  const { k, head } = thirdMm('v6');
  const b = head >>> 9;
  k.frames.mmIdCount1[b] = 600;
  const kinds = new AccountingChecker().check(k, false).map((p) => p.message);
  assert.ok(kinds.some((m) => /counts 600 mapping\(s\), but that mm maps it 511/.test(m)), kinds.join('; '));
  k.frames.mmIdCount1[b] = 510;
  k.frames.mmIdsShared[b] = 0;
  const again = new AccountingChecker().check(k, false).map((p) => p.message);
  assert.ok(again.some((m) => /marked mapped exclusively, but no MM-id slot holds its 511/.test(m)), again.join('; '));
});
