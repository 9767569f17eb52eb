// mremap of transparent huge pages (mm/mremap.c move_page_tables, mm/huge_memory.c
// move_huge_pmd): a whole 2 MiB extent aligned on both sides moves as one PMD; a part of a THP
// is split first and its PTEs move. Either way no page is copied and the folio's counts stay as
// they were. Expected figures come from those rules (docs/design/huge-pages.md section 10).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OK, PG_ANON_EXCLUSIVE, PG_LARGE, PTE_SOFT_DIRTY, VM_HUGEPAGE } from '../../src/core/constants.js';
import { dupMmap } from '../../src/core/fork.js';
import type { Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { doMmap } from '../../src/core/mmap.js';
import { doMremap } from '../../src/core/mremap.js';
import { getUserPages, releaseHandle } from '../../src/core/gup.js';
import { swapOutPage } from '../../src/core/swap.js';
import { pmdLeafSlot } from '../../src/core/walk.js';
import { exitMmap } from '../../src/core/zap.js';
import { assertConsistent, kernel, presentPte, pte, readOk, writeOk } from './helpers.js';

/** A process with one populated MADV_HUGEPAGE mapping of 512 pages: one PMD-mapped THP. */
function thp(k: Kernel, value = 1): { mm: Mm; vpn: number; head: number } {
  const mm = k.newMm();
  const r = doMmap(k, mm, 512, 'rw', false, false, VM_HUGEPAGE);
  assert.equal(r.err, OK);
  for (let i = 0; i < 512; i++) writeOk(k, mm, r.start + i, value + i);
  const s = pmdLeafSlot(k, mm, r.start);
  assert.ok(s >= 0, 'the setup maps a THP');
  return { mm, vpn: r.start, head: k.tables.entry[s]! };
}

test('mremap of the upper half of a THP splits the PMD and moves 256 PTEs: one folio, mapped from two VMAs, counts unchanged', () => {
  const k = kernel('v6');
  const { mm, vpn, head } = thp(k);
  const f = k.frames;
  const r = doMremap(k, mm, vpn + 256, vpn + 512);
  assert.equal(r.err, OK);
  assert.equal(r.pmdsMoved, 0, 'a 256-page extent is not a whole PMD, wherever it lands');
  assert.equal(pmdLeafSlot(k, mm, vpn), -1, 'the PMD was split');
  assert.equal(mm.vmas.length, 2);
  // The lower half stays where it was, mapped by PTEs of the same folio.
  assert.equal(presentPte(k, mm, vpn).pfn, head);
  assert.equal(presentPte(k, mm, vpn + 255).pfn, head + 255);
  assert.equal(pte(k, mm, vpn + 256), null, 'the old upper half is empty');
  // The upper half is at the new address, the same frames, soft-dirty (move_soft_dirty_pte).
  assert.equal(presentPte(k, mm, r.start).pfn, head + 256);
  assert.equal(presentPte(k, mm, r.start + 255).pfn, head + 511);
  assert.ok(presentPte(k, mm, r.start).softDirty);
  // Counts: 512 PTE mappings (one per page), no PMD mapping, refcount 512; no copy, no new frame.
  assert.equal(f.entireMapcount[head >>> 9], 0);
  assert.equal(f.folioMapcount(head), 512);
  assert.equal(f.folioRefcount(head), 512);
  assert.equal(f.mapcount[head + 300], 1);
  assert.ok(f.flags[head + 300]! & PG_ANON_EXCLUSIVE, 'the split copied PAE to every page (5.19+)');
  assert.equal(f.used, 512);
  assert.equal(mm.rssAnon, 512);
  assert.equal(k.stats.cowCopies, 0);
  assert.equal(readOk(k, mm, vpn + 7), 8);
  assert.equal(readOk(k, mm, r.start + 10), 1 + 256 + 10);
  assertConsistent(k);
});

test('mremap of a whole aligned THP moves its PMD to the PMD-aligned new range: still PMD-mapped, same folio', () => {
  const k = kernel('v6');
  const { mm, vpn, head } = thp(k);
  const r = doMremap(k, mm, vpn, vpn + 512);
  assert.equal(r.err, OK);
  assert.equal(r.start % 512, 0, 'a range of 512 pages is placed PMD-aligned');
  assert.equal(r.pmdsMoved, 1);
  assert.equal(pmdLeafSlot(k, mm, vpn), -1, 'nothing is left at the old address');
  const s = pmdLeafSlot(k, mm, r.start);
  assert.ok(s >= 0, 'a PMD maps the new range');
  assert.equal(k.tables.entry[s], head);
  assert.ok(k.tables.bits[s]! & PTE_SOFT_DIRTY, 'move_soft_dirty_pmd');
  assert.equal(mm.hugePmds, 1);
  const f = k.frames;
  assert.equal(f.entireMapcount[head >>> 9], 1);
  assert.equal(f.folioRefcount(head), 1);
  assert.ok(f.flags[head]! & PG_ANON_EXCLUSIVE);
  assert.equal(f.used, 512);
  assert.equal(readOk(k, mm, r.start + 511), 512);
  // The moved PMD is still the THP: a write reuses it, no copy.
  writeOk(k, mm, r.start + 3, 99);
  assert.equal(k.stats.cowCopies, 0);
  assertConsistent(k);
});

test('after a partial THP mremap and fork, a parent write copies only the 4 KiB page; the child keeps the folio', () => {
  const k = kernel('v6');
  const { mm, vpn, head } = thp(k);
  const r = doMremap(k, mm, vpn + 256, vpn + 512);
  assert.equal(r.err, OK);
  const child = dupMmap(k, mm, false).child!;
  const f = k.frames;
  // Every page is now mapped by both processes: 1024 PTE mappings, 1024 references.
  assert.equal(f.folioMapcount(head), 1024);
  assert.equal(f.folioRefcount(head), 1024);
  writeOk(k, mm, r.start, 5);
  assert.notEqual(presentPte(k, mm, r.start).pfn, head + 256, 'the parent got a copy');
  assert.equal(presentPte(k, child, r.start).pfn, head + 256);
  assert.equal(readOk(k, child, r.start), 257);
  assert.equal(k.stats.cowCopies, 1);
  assert.equal(f.folioRefcount(head), 1023);
  assertConsistent(k);
});

test('the huge zero PMD moves whole with an aligned mremap, and splits into zero-page PTEs with a partial one', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  const m = doMmap(k, mm, 1024, 'rw', false, false, VM_HUGEPAGE);
  assert.equal(readOk(k, mm, m.start), 0);
  assert.equal(readOk(k, mm, m.start + 512), 0);
  assert.equal(mm.hugePmds, 2, 'two huge zero PMDs');
  const whole = doMremap(k, mm, m.start, m.start + 512);
  assert.equal(whole.err, OK);
  assert.equal(whole.pmdsMoved, 1);
  assert.ok(pmdLeafSlot(k, mm, whole.start) >= 0);
  const part = doMremap(k, mm, m.start + 512 + 100, m.start + 1024);
  assert.equal(part.err, OK);
  assert.equal(part.pmdsMoved, 0);
  assert.equal(presentPte(k, mm, part.start).pfn, 0, 'a PTE of the 4 KiB zero page');
  assert.ok(presentPte(k, mm, m.start + 512).special);
  assert.equal(k.frames.used, 0, 'no page allocated');
  assert.equal(readOk(k, mm, part.start + 5), 0);
  assertConsistent(k);
});

/**
 * A THP shared at fork, the parent gone, 15 of the child's pages moved by mremap (PTEs of one
 * folio in two 2 MiB windows of the child), then an R/W longterm pin of a moved page.
 */
function pinMovedPage(name: string): { k: Kernel; q: Mm; head: number; moved: number; pin: ReturnType<typeof getUserPages> } {
  const k = kernel(name);
  const { mm, vpn, head } = thp(k);
  const q = dupMmap(k, mm, false).child!;
  exitMmap(k, mm);
  const r = doMremap(k, q, vpn + 467, vpn + 482);
  assert.equal(r.err, OK);
  const pin = getUserPages(k, q, r.start + 12, r.start + 13, { pin: true, write: true, longterm: true, fast: true, kind: 'pin' });
  assert.equal(pin.err, OK);
  return { k, q, head, moved: r.start, pin };
}

test('6.15+: a pin of a page of a partly mremapped THP reuses it in place (all 512 mappings are this mm\'s, in two windows); pageout of another page of it cannot split the pinned folio', () => {
  const { k, q, head, moved, pin } = pinMovedPage('v6');
  const f = k.frames;
  // __wp_can_reuse_large_anon_folio(): mapcount 512 == refcount 512, every mapping Q's.
  assert.equal(presentPte(k, q, moved + 12).pfn, head + 479, 'reused in place, not copied');
  assert.equal(k.stats.cowCopies, 0);
  assert.ok(presentPte(k, q, moved + 12).write);
  assert.ok(f.flags[head + 479]! & PG_ANON_EXCLUSIVE);
  // MADV_PAGEOUT of moved[5]: the folio must be split first; split_folio() refuses (the pin).
  assert.equal(swapOutPage(k, q, moved + 5), 'pinned');
  assert.equal(presentPte(k, q, moved + 5).pfn, head + 472, 'still present');
  assert.ok(f.flags[head]! & PG_LARGE, 'still one large folio');
  assert.equal(q.rssAnon, 512);
  // Unpinned, the split goes through and the page is swapped out.
  releaseHandle(k, pin.handle!);
  assert.equal(swapOutPage(k, q, moved + 5), null);
  assert.equal(pte(k, q, moved + 5)?.present, false);
  assert.equal(q.rssAnon, 511);
  assert.equal(readOk(k, q, moved + 5), 1 + 472);
  assertConsistent(k);
});

test('6.10-6.14 (wpReuseLarge never): the pin copies the page out of the folio, which holds no pin, and pageout splits it', () => {
  const { k, q, head, moved } = pinMovedPage('6.12');
  assert.notEqual(presentPte(k, q, moved + 12).pfn, head + 479, 'copied');
  assert.equal(k.stats.cowCopies, 1);
  assert.equal(swapOutPage(k, q, moved + 5), null);
  assert.equal(q.rssAnon, 511);
  assertConsistent(k);
});
