// Swap (reuse_swap_page up to 5.17, do_swap_page's refcount test in 5.18; history:
// 5.11 feb889fb40fa, 5.18 "COW fixes part 1", 5.19 SWP_EXCLUSIVE): MADV_PAGEOUT of a page mapped
// once frees its frame; pinned pages are kept from 5.11 (and from 5.19 cannot be unshared for
// unmapping at all); swap-in on read and on write per era; SWP_EXCLUSIVE and fork; swap counts,
// the swap cache and the accounting; zap of swap entries frees the slots.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OK, PG_SWAPCACHE, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_SWAP, PTE_SWP_EXCLUSIVE } from '../../src/core/constants.js';
import { clearSoftDirty } from '../../src/core/mmap.js';
import { dupMmap } from '../../src/core/fork.js';
import { getUserPages, releaseHandle, type GupRequest } from '../../src/core/gup.js';
import type { Handle, Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { swapOutPage } from '../../src/core/swap.js';
import { pteSlot } from '../../src/core/walk.js';
import { exitMmap, unmapRegion } from '../../src/core/zap.js';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runScenario } from '../../src/engine/run.js';
import { kindsOf, parse, profileOf, runSteps } from '../explore/helpers.js';
import { assertConsistent, frame, kernel, presentPte, proc, readOk, writeOk } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SWAP_PROFILES = ['v5.7', 'v5.9', 'v5.14', 'v5.18', 'v5.19', 'v6'];

interface SwapPte {
  s: number;
  exclusive: boolean;
}

/** The swap entry at vpn (fails when the PTE is not a swap entry). */
function swapPte(k: Kernel, mm: Mm, vpn: number): SwapPte {
  const slot = pteSlot(k, mm, vpn);
  assert.ok(slot >= 0, 'no PTE table');
  const bits = k.tables.bits[slot]!;
  assert.ok(bits & PTE_SWAP && !(bits & PTE_PRESENT), `page ${vpn} is not a swap entry (bits ${bits})`);
  return { s: k.tables.entry[slot]!, exclusive: (bits & PTE_SWP_EXCLUSIVE) !== 0 };
}

function fork(k: Kernel, parent: Mm): Mm {
  const r = dupMmap(k, parent);
  assert.equal(r.err, OK);
  return r.child!;
}

const PIN_RW: GupRequest = { pin: true, write: true, longterm: true, fast: false, kind: 'pin' };
const VMSPLICE: GupRequest = { pin: false, write: false, longterm: false, fast: true, kind: 'pipe' };

function take(k: Kernel, mm: Mm, vpn: number, req: GupRequest): Handle {
  const r = getUserPages(k, mm, vpn, vpn + 1, req);
  assert.equal(r.err, OK);
  return r.handle!;
}

// ---- swap-out ------------------------------------------------------------------------------------

for (const name of SWAP_PROFILES) {
  test(`${name}: swapout of a page mapped once frees its frame; a read brings the data back`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 2);
    writeOk(k, mm, vpn, 42);
    writeOk(k, mm, vpn + 1, 43);
    assert.equal(k.frames.used, 2);
    assert.equal(swapOutPage(k, mm, vpn), null);
    assert.equal(k.frames.used, 1, 'the frame is freed (nothing else holds it)');
    assert.equal(mm.rssAnon, 1);
    const e = swapPte(k, mm, vpn);
    assert.equal(k.swap.count[e.s], 1, 'one swap PTE names the slot');
    assert.equal(k.swap.cache[e.s], -1, 'not in the swap cache any more');
    assert.equal(k.swap.inUse, 1);
    assert.equal(e.exclusive, name === 'v5.19' || name === 'v6', 'SWP_EXCLUSIVE from 5.19 (the page was exclusive)');
    assertConsistent(k);
    assert.equal(readOk(k, mm, vpn), 42);
    assert.equal(k.frames.used, 2);
    assert.equal(mm.rssAnon, 2);
    assert.equal(k.swap.count[e.s], 0, 'swap_free: no PTE names the slot');
    assertConsistent(k);
    exitMmap(k, mm);
    assert.equal(k.frames.used, 0);
    assert.equal(k.swap.inUse, 0, 'exit frees the slot and the swap cache');
    assertConsistent(k, true);
  });
}

test('swapout skips what reclaim of one mm may not take: the zero page, shared pages, unmapped pages', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 3);
  readOk(k, mm, vpn); // zero page
  writeOk(k, mm, vpn + 1, 1);
  const q = fork(k, mm);
  assert.equal(swapOutPage(k, mm, vpn), 'not-present');
  assert.equal(swapOutPage(k, mm, vpn + 1), 'shared', 'mapped by two processes: MADV_PAGEOUT leaves it');
  assert.equal(swapOutPage(k, mm, vpn + 2), 'not-present');
  assert.equal(k.swap.inUse, 0);
  assertConsistent(k);
  exitMmap(k, q);
  exitMmap(k, mm);
  assertConsistent(k, true);
});

// ---- pinned pages ----------------------------------------------------------------------------------

for (const [name, kept] of [['v5.7', false], ['v5.9', false], ['v5.14', true], ['v5.18', true], ['v5.19', true], ['v6', true]] as const) {
  test(`${name}: a R/W-pinned page is ${kept ? 'kept by reclaim (5.11+)' : 'put in the swap cache and unmapped (before 5.11)'}`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 1);
    const pfn = writeOk(k, mm, vpn, 1);
    const h = take(k, mm, vpn, PIN_RW);
    assert.equal(h.frames[0], pfn);
    const r = swapOutPage(k, mm, vpn);
    if (kept) {
      assert.equal(r, 'pinned');
      assert.equal(presentPte(k, mm, vpn).pfn, pfn);
      assert.equal(k.swap.inUse, 0);
    } else {
      assert.equal(r, null);
      const e = swapPte(k, mm, vpn);
      assert.equal(k.swap.cache[e.s], pfn, 'the pin keeps the page in memory, in the swap cache');
      assert.equal(frame(k, pfn).mapcount, 0);
      assert.equal(frame(k, pfn).refcount, k.config.pinBias + 1, 'the pin and the swap cache');
    }
    assertConsistent(k);
    releaseHandle(k, h);
    exitMmap(k, mm);
    assert.equal(k.frames.used, 0);
    assert.equal(k.swap.inUse, 0);
    assertConsistent(k, true);
  });
}

test('v6 without the 5.11 reclaim check: an exclusive maybe-pinned page still cannot be unshared for unmapping', () => {
  const k = kernel('v6', { sets: ['reclaimSkipsPinned=false'] });
  const { mm, vpn } = proc(k, 1);
  const pfn = writeOk(k, mm, vpn, 1);
  take(k, mm, vpn, PIN_RW);
  assert.equal(swapOutPage(k, mm, vpn), 'pinned', 'folio_try_share_anon_rmap_pte() fails on a maybe-pinned page');
  assert.equal(presentPte(k, mm, vpn).pfn, pfn);
  assert.equal(frame(k, pfn).exclusive, true);
  assertConsistent(k);
});

const PINNED_SWAPPED = ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'P pin buf[0] as mr rw longterm', 'swapout P buf[0]'];

const READ_THEN_WRITE = [...PINNED_SWAPPED, 'P read buf[0] expect 1', 'P write buf[0] = 2', 'device write mr[0] = 3', 'P read buf[0]'];

test('v5.9: the pinned, swapped page read back read-only, then written: COW copies it away from the pin (stale pin, lost DMA)', () => {
  // feb889fb40fa: do_swap_page maps the page read-only on a read fault; the next write fault
  // sees page_count != 1 (the pin, the swap cache) and copies: the device writes the old page.
  const r = runSteps(READ_THEN_WRITE, 'v5.9');
  assert.deepEqual(kindsOf(r), ['lost-write', 'pin-incoherent'], r.violations.map((v) => v.message).join('\n'));
  assert.equal(r.violations.find((v) => v.kind === 'lost-write')!.step, 7, 'the device write is lost to P');
  for (const name of ['v5.14', 'v5.18', 'v6']) {
    const ok = runSteps(READ_THEN_WRITE, name);
    assert.equal(ok.status, 'ok', `${name}: reclaim keeps pinned pages: ${ok.violations.map((v) => v.message).join('; ')}`);
  }
});

test('v5.9: the stale pin is reported at the COW copy (the write), not at the swapout', () => {
  const r = runSteps(READ_THEN_WRITE, 'v5.9');
  assert.equal(r.violations.find((v) => v.kind === 'pin-incoherent')!.step, 5, 'stale at the write, not at the swapout (step 3)');
});

test('v5.7: the pinned swapped page is reused on the write (mapcount 1 + swap count 0): the pin holds', () => {
  // reuse_swap_page() decides by mapcount + swap count, blind to the pin: the same page is reused.
  const r = runSteps(READ_THEN_WRITE, 'v5.7');
  assert.equal(r.status, 'ok', r.violations.map((v) => `${v.step}: ${v.kind}: ${v.message}`).join('\n'));
});

test('v5.9: written at once, the pinned swapped page is reused by reuse_swap_page (mapcount 0 + swap count 1): the pin holds', () => {
  const steps = [...PINNED_SWAPPED, 'P write buf[0] = 2', 'device write mr[0] = 3', 'P read buf[0] expect 3'];
  const r = runSteps(steps, 'v5.9');
  assert.equal(r.status, 'ok', r.violations.map((v) => `${v.step}: ${v.kind}: ${v.message}`).join('\n'));
});

test('v5.9: written at once, the pinned swapped page is the pinned page again: the device write reaches P (no lost write)', () => {
  const steps = [...PINNED_SWAPPED, 'P write buf[0] = 2', 'expect stat cow_copies == 0', 'device write mr[0] = 3', 'P read buf[0] expect 3'];
  const r = runSteps(steps, 'v5.9');
  assert.deepEqual(kindsOf(r).filter((k) => k !== 'pin-incoherent'), [], r.violations.map((v) => v.message).join('\n'));
});

// ---- swap-in: read vs write, per era ------------------------------------------------------------------

/** Swap out vpn (mapped once), then fault it back with a read or a write. */
function swappedOut(name: string): { k: Kernel; mm: Mm; vpn: number; s: number } {
  const k = kernel(name);
  const { mm, vpn } = proc(k, 1);
  writeOk(k, mm, vpn, 5);
  assert.equal(swapOutPage(k, mm, vpn), null);
  return { k, mm, vpn, s: swapPte(k, mm, vpn).s };
}

for (const name of SWAP_PROFILES) {
  test(`${name}: a write fault on a swap entry mapped once maps the page writable; the slot is freed`, () => {
    const { k, mm, vpn, s } = swappedOut(name);
    const r = writeOk(k, mm, vpn, 6);
    const p = presentPte(k, mm, vpn);
    assert.equal(p.pfn, r);
    assert.equal(p.write, true);
    assert.equal(k.stats.cowCopies, 0, 'no copy');
    assert.equal(k.swap.inUse, 0, `slot ${s} freed: no entry names it, the cache let go`);
    assert.equal(frame(k, r).exclusive, name === 'v5.19' || name === 'v6');
    assert.equal(readOk(k, mm, vpn), 6);
    assertConsistent(k);
  });
}

for (const [name, pteWritable, thenWrite] of [
  // reuse_swap_page only on write faults; the read maps read-only. The later write:
  ['v5.7', false, 'reuse'], // mapcount 1 + swap count 0: reused (and removed from the swap cache)
  ['v5.9', false, 'copy'], // page_count 2 (the swap cache's reference): copied (§3.3)
  ['v5.14', false, 'copy'],
  ['v5.18', false, 'reuse'], // the swap cache is freed first, then page_count 1: reused
  ['v6', true, 'none'], // SWP_EXCLUSIVE: exclusive, mapped writable at once
] as const) {
  test(`${name}: a read fault on a swap entry maps it ${pteWritable ? 'writable (exclusive)' : 'read-only'}; the next write ${thenWrite === 'none' ? 'takes no fault' : thenWrite === 'copy' ? 'copies' : 'reuses'}`, () => {
    const { k, mm, vpn } = swappedOut(name);
    assert.equal(readOk(k, mm, vpn), 5);
    const p = presentPte(k, mm, vpn);
    assert.equal(p.write, pteWritable);
    assert.equal(frame(k, p.pfn).exclusive, name === 'v6');
    assert.equal(k.swap.cache[swapSlotOfFrame(k, p.pfn)], p.pfn, 'the page stays in the swap cache after a read');
    assertConsistent(k);
    const faults = mm.minflt;
    const pfn = writeOk(k, mm, vpn, 7);
    assert.equal(mm.minflt - faults, thenWrite === 'none' ? 0 : 1);
    assert.equal(k.stats.cowCopies, thenWrite === 'copy' ? 1 : 0);
    assert.equal(k.stats.reuses, thenWrite === 'reuse' ? 1 : 0);
    assert.equal(pfn === p.pfn, thenWrite !== 'copy');
    assert.equal(readOk(k, mm, vpn), 7);
    assert.equal(k.frames.used, 1, 'the old page (only the swap cache held it) is gone');
    if (thenWrite !== 'none') assert.equal(k.swap.inUse, 0);
    assertConsistent(k);
  });
}

function swapSlotOfFrame(k: Kernel, pfn: number): number {
  const s = k.frames.priv[pfn]!;
  assert.ok(s >= 0, `frame ${pfn} is not in the swap cache`);
  return s;
}

// ---- SWP_EXCLUSIVE and fork ---------------------------------------------------------------------------

for (const name of ['v5.18', 'v6']) {
  test(`${name}: fork duplicates a swap entry (swap count 2)${name === 'v6' ? ', clearing SWP_EXCLUSIVE in the parent' : ''}; both read the page, each write copies`, () => {
    const { k, mm: p, vpn, s } = swappedOut(name);
    assert.equal(swapPte(k, p, vpn).exclusive, name === 'v6');
    const q = fork(k, p);
    assert.equal(k.swap.count[s], 2);
    assert.equal(swapPte(k, p, vpn).exclusive, false, 'the parent\'s entry is shared now');
    assert.equal(swapPte(k, q, vpn).exclusive, false, 'the child\'s entry is plain');
    assertConsistent(k);
    assert.equal(readOk(k, p, vpn), 5);
    const pp = presentPte(k, p, vpn);
    assert.equal(pp.write, false, 'not exclusive: read-only');
    assert.equal(frame(k, pp.pfn).exclusive, false);
    assert.equal(k.swap.count[s], 1);
    assert.equal(readOk(k, q, vpn), 5);
    assert.equal(presentPte(k, q, vpn).pfn, pp.pfn, 'the child finds the page in the swap cache');
    assert.equal(frame(k, pp.pfn).mapcount, 2);
    assert.equal(k.swap.count[s], 0);
    assertConsistent(k);
    writeOk(k, p, vpn, 8);
    assert.notEqual(presentPte(k, p, vpn).pfn, pp.pfn, 'shared: the parent copies');
    assert.equal(readOk(k, q, vpn), 5);
    writeOk(k, q, vpn, 9);
    assert.equal(presentPte(k, q, vpn).pfn, pp.pfn, 'the last user reuses the original');
    assert.equal(readOk(k, p, vpn), 8);
    assert.equal(k.swap.inUse, 0);
    assertConsistent(k);
  });
}

for (const name of ['v5.7', 'v5.9', 'v5.18', 'v6']) {
  test(`${name}: a write fault on a swap entry the child shares copies; the child keeps the old data`, () => {
    const { k, mm: p, vpn } = swappedOut(name);
    const q = fork(k, p);
    const pfn = writeOk(k, p, vpn, 8);
    assert.equal(k.stats.cowCopies, 1, 'mapcount + swap count 2 / the swap cache reference: copy');
    assert.equal(readOk(k, q, vpn), 5);
    assert.notEqual(presentPte(k, q, vpn).pfn, pfn);
    assertConsistent(k);
  });
}

// ---- zap ----------------------------------------------------------------------------------------------

test('zap of swap entries frees the slots: munmap, exit, and a swap-cache page held by a pipe', () => {
  const k = kernel('v6');
  const { mm: p, vpn } = proc(k, 2);
  writeOk(k, p, vpn, 1);
  writeOk(k, p, vpn + 1, 2);
  assert.equal(swapOutPage(k, p, vpn), null);
  const q = fork(k, p);
  const s = swapPte(k, p, vpn).s;
  assert.equal(k.swap.count[s], 2);
  exitMmap(k, q);
  assert.equal(k.swap.count[s], 1, 'the child\'s entry is gone');
  assertConsistent(k);
  // The second page: referenced by a pipe, swapped out; it stays in the swap cache.
  const h = take(k, p, vpn + 1, VMSPLICE);
  const pfn = h.frames[0]!;
  assert.equal(swapOutPage(k, p, vpn + 1), null, 'a FOLL_GET reference does not stop reclaim');
  const s2 = swapPte(k, p, vpn + 1).s;
  assert.equal(k.swap.cache[s2], pfn);
  assert.equal(k.swap.inUse, 2);
  assertConsistent(k);
  unmapRegion(k, p, vpn, vpn + 2);
  assert.equal(k.swap.inUse, 0, 'free_swap_and_cache: both slots freed, the cached page left the swap cache');
  assert.equal(frame(k, pfn).refcount, 1, 'only the pipe holds the page now');
  assert.equal(k.frames.value[pfn], 2);
  assertConsistent(k);
  releaseHandle(k, h);
  assert.equal(k.frames.used, 0);
  assertConsistent(k);
});

test('MADV_PAGEOUT is the same reclaim as `swapout`', () => {
  const r = runSteps(['P mmap buf 2 rw private', 'P write buf = 1', 'P madvise buf pageout', 'expect stat frames_used == 0',
    'P read buf[1] expect 1', 'expect stat frames_used == 1', 'P fork Q', 'Q read buf[0] expect 1', 'P write buf[0] = 2', 'Q read buf[0] expect 1']);
  assert.equal(r.status, 'ok', r.violations.map((v) => v.message).join('\n'));
});

test('a profile without swap makes swapout n/a', () => {
  const r = runSteps(['P mmap buf 1 rw private', 'P write buf[0] = 1', 'swapout P buf[0]'], 'v6', ['swap=false']);
  assert.equal(r.status, 'n/a');
});

// ---- the seeds ------------------------------------------------------------------------------------------

test('CVE-2020-29374, swap variant: leaks on 5.7 and 5.9-5.17 (reuse_swap_page), fixed by 5.8\'s forced break and by 5.18', () => {
  const sc = parse(readFileSync(join(ROOT, 'scenarios', 'seeds', 'cve-2020-29374-swap.scn.yaml'), 'utf8'));
  const want: Record<string, string[]> = {
    'v5.7': ['leak'], 'v5.8': [], 'v5.9-rc4': ['leak'], 'v5.9': ['leak'], 'v5.14': ['leak'],
    'v5.18': [], 'v5.19': [], 'v6.2': [], 'v6': [],
  };
  for (const [name, kinds] of Object.entries(want)) {
    const r = runScenario(sc, profileOf(name), { trace: false });
    assert.deepEqual(kindsOf(r), kinds, `${name}: ${r.violations.map((v) => v.message).join('; ')}`);
  }
});

test('vmsplice before fork with the page swapped: mapcount-based reuse leaks (5.7, 5.8), the page count prevents it (5.9 on)', () => {
  const sc = parse(readFileSync(join(ROOT, 'scenarios', 'seeds', 'vmsplice-before-fork-swapped.scn.yaml'), 'utf8'));
  for (const [name, kinds] of [['v5.7', ['leak']], ['v5.8', ['leak']], ['v5.9', []], ['v5.18', []], ['v6', []]] as const) {
    const r = runScenario(sc, profileOf(name), { trace: false });
    assert.deepEqual(kindsOf(r), kinds, `${name}: ${r.violations.map((v) => v.message).join('; ')}`);
  }
});


const SWAPPED_SHARED_THEN_EXIT = ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'swapout P buf[0]', 'P fork Q', 'P read buf[0] expect 1',
  'Q exit', 'P write buf[0] = 2', 'P read buf[0] expect 2'];

test('the child\'s swap entry zapped while the parent maps the swapped-in page: the parent\'s write reuses it (v5.7: mapcount; 5.18+: swap cache freed first)', () => {
  for (const name of ['v5.7', 'v5.18', 'v6']) {
    const r = runSteps([...SWAPPED_SHARED_THEN_EXIT, 'expect stat cow_copies == 0', 'expect stat frames_used == 1'], name);
    assert.equal(r.status, 'ok', `${name}: ${r.violations.map((v) => v.message).join('; ')}`);
  }
});

for (const name of ['v5.9', 'v5.14']) {
  test(`${name}: a zapped swap entry leaves the still-mapped page in the swap cache: the parent's write copies (page_count 2)`, () => {
    const r = runSteps([...SWAPPED_SHARED_THEN_EXIT, 'expect stat cow_copies == 1', 'expect stat frames_used == 1'], name);
    assert.equal(r.status, 'ok', r.violations.map((v) => v.message).join('; '));
  });
}

// shrink_folio_list() checks folio_maybe_dma_pinned() before add_to_swap() only (5.11+): a
// pinned page already in the swap cache goes on to try_to_unmap(). Before 5.19 nothing refuses
// to unmap it (no PG_anon_exclusive); it stays in the swap cache (the pin's references), and the
// next fault maps it again from there. From 5.19 the page the R/O pin faulted in is exclusive,
// and try_to_unmap() cannot unshare a maybe-pinned exclusive page: kept. Found by the
// model-based comparison with the naive model (5.18).
for (const [name, unmapped] of [['v5.14', true], ['v5.18', true], ['v5.19', false], ['v6', false]] as const) {
  test(`${name}: a pinned page swapped in by a read fault (in the swap cache) is ${unmapped ? 'unmapped again by reclaim' : 'kept (exclusive, maybe pinned)'}`, () => {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 1);
    writeOk(k, mm, vpn, 4);
    assert.equal(swapOutPage(k, mm, vpn), null);
    const r = getUserPages(k, mm, vpn, vpn + 1, { pin: true, write: false, longterm: true, fast: false, kind: 'pin' });
    assert.equal(r.err, OK);
    const pfn = r.handle!.frames[0]!;
    assert.equal(presentPte(k, mm, vpn).pfn, pfn, 'the read fault mapped the page from the swap cache');
    assert.equal(swapOutPage(k, mm, vpn), unmapped ? null : 'pinned');
    if (unmapped) {
      assert.equal(frame(k, pfn).mapcount, 0);
      assert.equal(readOk(k, mm, vpn), 4);
      assert.equal(presentPte(k, mm, vpn).pfn, pfn, 'swapped in again from the swap cache: the pinned page');
    }
    releaseHandle(k, r.handle!);
    assertConsistent(k);
  });
}

test('fork and the uffd-wp bit of a swap entry: up to 5.13 it is copied whatever the VMAs (copy_nonpresent_pte had no pte_swp_clear_uffd_wp); from 5.14 only into a registered child VMA', () => {
  // P protects its page and forks Q without the fork event: Q's VMA is not registered. 5.7-5.13
  // ask P's VMA (registered): Q's PTE keeps the stale bit; 5.14 asks Q's: dropped. Q's page,
  // mapped once after P unmaps it, is swapped out (the swap entry takes the PTE's bit), and Q
  // forks R: 5.7-5.13 copy the swap entry as it is (8f34f1eac382 added the check to
  // copy_nonpresent_pte), so R's entry carries the bit too; 5.14 had none to copy.
  for (const [name, stale] of [['v5.9', true], ['v5.7', true], ['v5.14', false], ['v6', false]] as const) {
    const wp = stale ? 'uffd-wp' : 'not-uffd-wp';
    const steps = ['P mmap buf 1 rw private', 'P uffd register buf wp', 'P write buf[0] = 1', 'P uffd protect buf[0]', 'P fork Q',
      `expect Q buf[0] ${wp}`, 'P munmap buf', 'swapout Q buf[0]', `expect Q buf[0] ${wp}`, 'Q fork R', `expect R buf[0] ${wp}`, 'R read buf[0] expect 1'];
    const r = runSteps(steps, name);
    assert.equal(r.status, 'ok', `${name}: ${r.violations.map((v) => `${v.step}: ${v.message}`).join('; ')}`);
    assert.ok(r.steps.some((x) => /1 page\(s\) swapped out/.test(x.summary ?? '')), `${name}: the page was swapped out`);
  }
});

test('clear_refs (soft-dirty) clears the bit of a swap entry too: a read fault then brings the page back write-protected, even where 6.11 maps an exclusive swapped-in page writable', () => {
  // clear_soft_dirty(): is_swap_pte -> pte_swp_clear_soft_dirty. do_swap_page (6.11) makes the
  // page writable on a read fault only without pte_needs_soft_dirty_wp() (VM_SOFTDIRTY cleared by
  // clear_refs and a clean pte): so the PTE stays read-only and the next write faults, which marks it.
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 2);
  writeOk(k, mm, vpn, 1);
  writeOk(k, mm, vpn + 1, 2);
  assert.equal(swapOutPage(k, mm, vpn), null);
  const slot = pteSlot(k, mm, vpn);
  assert.ok(k.tables.bits[slot]! & PTE_SWAP && k.tables.bits[slot]! & PTE_SOFT_DIRTY, 'the swap entry carries the soft-dirty bit');
  clearSoftDirty(k, mm);
  assert.equal(k.tables.bits[slot]! & PTE_SOFT_DIRTY, 0, 'the swap entry is clean');
  assert.equal(readOk(k, mm, vpn), 1);
  assert.equal(presentPte(k, mm, vpn).write, false);
  // A page written since clear_refs is soft-dirty; its swap entry keeps that, and the same read
  // fault maps it writable (6.11, an exclusive entry, no tracking pending).
  writeOk(k, mm, vpn + 1, 3);
  assert.equal(swapOutPage(k, mm, vpn + 1), null);
  assert.equal(readOk(k, mm, vpn + 1), 3);
  assert.equal(presentPte(k, mm, vpn + 1).write, true);
  assertConsistent(k);
});

test('v6: a write that reuses a PageAnonExclusive page in the swap cache leaves it there (do_wp_page reuses before wp_can_reuse_anon_folio frees the swap cache)', () => {
  // clear_refs arms soft-dirty tracking, so the write fault's swap-in maps the page read-only
  // (pte_needs_soft_dirty_wp) though its entry was SWP_EXCLUSIVE; the pipe's reference keeps the
  // swap cache at the swap-in (should_try_to_free_swap: refcount 3, not 2); do_wp_page then finds
  // PageAnonExclusive and goes to reuse: folio_free_swap() is on the other path only. The model
  // once freed the swap cache there too.
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 1);
  const pfn = writeOk(k, mm, vpn, 1);
  take(k, mm, vpn, VMSPLICE);
  clearSoftDirty(k, mm);
  assert.equal(swapOutPage(k, mm, vpn), null);
  assert.equal(writeOk(k, mm, vpn, 2), pfn, 'swapped in from the swap cache, then reused');
  assert.deepEqual([frame(k, pfn).refcount, frame(k, pfn).mapcount], [3, 1], 'the mapping, the pipe, the swap cache');
  assert.ok(k.frames.flags[pfn]! & PG_SWAPCACHE);
  assertConsistent(k);
});

test('an unshare fault\'s copy is mapped clean (wp_page_copy: no pte_mkdirty for FAULT_FLAG_UNSHARE), a write fault\'s dirty', () => {
  const k = kernel('v6');
  const { mm, vpn } = proc(k, 2);
  writeOk(k, mm, vpn, 1);
  writeOk(k, mm, vpn + 1, 2);
  fork(k, mm);
  take(k, mm, vpn, { pin: true, write: false, longterm: true, fast: false, kind: 'pin' }); // R/O pin of a shared page: unshare
  assert.deepEqual([presentPte(k, mm, vpn).write, presentPte(k, mm, vpn).dirty], [false, false]);
  writeOk(k, mm, vpn + 1, 3); // write fault on a shared page: wp_page_copy maps the copy dirty and writable
  assert.deepEqual([presentPte(k, mm, vpn + 1).write, presentPte(k, mm, vpn + 1).dirty], [true, true]);
});

test('after clear_refs cleared a swap entry\'s soft-dirty bit, a write pin (no store after it) leaves the swapped-in PTE dirty and soft-dirty: the write faults\' pte_mkdirty sets _PAGE_SOFT_DIRTY on x86', () => {
  for (const name of ['v5.14', 'v6']) {
    const k = kernel(name);
    const { mm, vpn } = proc(k, 1);
    writeOk(k, mm, vpn, 7);
    assert.equal(swapOutPage(k, mm, vpn), null);
    clearSoftDirty(k, mm);
    const h = take(k, mm, vpn, PIN_RW);
    const pte = presentPte(k, mm, vpn);
    assert.ok(pte.dirty && pte.write, `${name}: the write fault maps the page writable and dirty`);
    assert.equal(pte.softDirty, true, `${name}: and soft-dirty: the write is seen by the next soft-dirty scan`);
    releaseHandle(k, h);
    assertConsistent(k);
  }
});
