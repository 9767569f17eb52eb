// TableArena (page-table pages) and the walk: pud/pmd/pte_alloc allocate each level once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TableArena } from '../../src/core/pgtable.js';
import {
  LEVEL_PGD, LEVEL_PMD, LEVEL_PTE, PTE_PRESENT, PTRS_PER_TABLE, TABLE_SHIFT,
} from '../../src/core/constants.js';
import { pteSlot, pteSlotAlloc, pteTableOf, setPte } from '../../src/core/walk.js';
import { kernel, map, writeOk } from './helpers.js';
import { globalStats } from '../../src/engine/stats.js';

test('TableArena: table 0 is the null table; alloc hands out 1, 2, ... with their level', () => {
  const t = new TableArena();
  const a = t.alloc(LEVEL_PGD);
  const b = t.alloc(LEVEL_PTE);
  assert.equal(a, 1);
  assert.equal(b, 2);
  assert.equal(t.level[a], LEVEL_PGD);
  assert.equal(t.level[b], LEVEL_PTE);
  assert.equal(t.filled[b], 0);
  assert.equal(t.used, 2);
});

test('TableArena: a freed table is reused with every entry cleared', () => {
  const t = new TableArena();
  const a = t.alloc(LEVEL_PTE);
  const base = a << TABLE_SHIFT;
  t.setPte(base + 5, 77, PTE_PRESENT);
  t.setPte(base + 511, 3, PTE_PRESENT);
  t.setFilled(a, 2);
  // The arena frees a table whose entries are none; it wipes them anyway.
  t.free(a);
  assert.equal(t.used, 0);
  const b = t.alloc(LEVEL_PMD);
  assert.equal(b, a);
  assert.equal(t.level[b], LEVEL_PMD);
  assert.equal(t.filled[b], 0);
  for (let i = 0; i < PTRS_PER_TABLE; i++) {
    assert.equal(t.entry[base + i], 0);
    assert.equal(t.bits[base + i], 0);
  }
});

test('TableArena: growth past the initial capacity keeps every entry', () => {
  const t = new TableArena(2);
  const made: number[] = [];
  for (let i = 0; i < 200; i++) {
    const tb = t.alloc(i % 4);
    made.push(tb);
    t.setEntry((tb << TABLE_SHIFT) + (i % PTRS_PER_TABLE), i + 1000);
  }
  assert.ok(t.capacity >= 201);
  assert.equal(t.used, 200);
  made.forEach((tb, i) => {
    assert.equal(t.entry[(tb << TABLE_SHIFT) + (i % PTRS_PER_TABLE)], i + 1000);
    assert.equal(t.level[tb], i % 4);
  });
});

test('TableArena: clone is independent', () => {
  const t = new TableArena();
  const a = t.alloc(LEVEL_PTE);
  t.setEntry(a << TABLE_SHIFT, 5);
  const c = t.clone();
  c.setEntry(a << TABLE_SHIFT, 6);
  c.alloc(LEVEL_PTE);
  assert.equal(t.entry[a << TABLE_SHIFT], 5);
  assert.equal(t.used, 1);
  assert.equal(c.used, 2);
});

/** Every entry and bit of the first n tables of a and b are equal. */
function sameTables(a: TableArena, b: TableArena, n: number): void {
  for (let i = 0; i < n * PTRS_PER_TABLE; i++) {
    if (a.entry[i] !== b.entry[i] || a.bits[i] !== b.bits[i]) assert.fail(`slot ${i}: ${a.entry[i]}/${a.bits[i]} against ${b.entry[i]}/${b.bits[i]}`);
  }
}

test('TableArena: a copy into a copy of the same unchanged source undoes what the copy wrote', () => {
  const src = new TableArena();
  const a = src.alloc(LEVEL_PTE);
  const b = src.alloc(LEVEL_PTE);
  src.setPte((a << TABLE_SHIFT) + 3, 40, PTE_PRESENT);
  src.setPte((b << TABLE_SHIFT) + 7, 41, PTE_PRESENT);
  const c = src.clone();
  // The copy writes in both tables, frees one, and takes two new ones past the source's top.
  c.setEntry((a << TABLE_SHIFT) + 3, 99);
  c.setBits((b << TABLE_SHIFT) + 200, PTE_PRESENT);
  c.setPte((b << TABLE_SHIFT) + 7, 0, 0);
  c.free(b);
  const n1 = c.alloc(LEVEL_PTE);
  const n2 = c.alloc(LEVEL_PTE);
  assert.equal(n1, b);
  c.setPte((n2 << TABLE_SHIFT) + 9, 42, PTE_PRESENT);
  const top = c.top;
  src.clone(c);
  sameTables(src, c, top);
  assert.equal(c.top, src.top);
  assert.equal(c.used, src.used);
  assert.equal(c.level[n2], 0);
  // Again, after the copy wrote elsewhere: its earlier writes were undone, the new ones are.
  c.setEntry((a << TABLE_SHIFT) + 100, 7);
  src.clone(c);
  sameTables(src, c, top);
});

test('TableArena: after the source changes, a copy into an old copy takes every table', () => {
  const src = new TableArena();
  const a = src.alloc(LEVEL_PTE);
  const c = src.clone();
  // Neither c nor a copy made from c knows of this write: the next copy must not copy only c's.
  src.setPte((a << TABLE_SHIFT) + 1, 5, PTE_PRESENT);
  c.setEntry((a << TABLE_SHIFT) + 2, 6);
  src.clone(c);
  sameTables(src, c, src.top);
  // A third arena copied from c, then c copied into from elsewhere: the third's next copy from c is whole.
  const d = c.clone();
  const other = new TableArena();
  other.alloc(LEVEL_PGD);
  other.clone(c);
  c.clone(d);
  sameTables(c, d, Math.max(c.top, 3));
});

test('TableArena: verifyCopies checks the copies made in part, and the explorer makes them', async () => {
  const { explore } = await import('../../src/explore/explore.js');
  const { builtinProfile } = await import('../../src/profiles/builtin.js');
  const { OP_NAMES } = await import('../../src/explore/ops.js');
  TableArena.verifyCopies = true;
  const before = TableArena.partialCopiesChecked;
  try {
    for (const name of ['v6', 'v5.8', 'cowpt-rfc', 'odf', '6.12']) {
      explore({
        profile: builtinProfile(name)!, baseName: name, sets: [], shape: { procs: 2, threads: 2, handles: 2, ops: OP_NAMES }, pages: 2,
        bounds: { depth: 3, maxStates: 1e6, maxMemoryMB: 2048, timeSec: 600, all: true, kinds: null }, from: null, workers: 1, causes: false,
      });
    }
  } finally {
    TableArena.verifyCopies = false;
  }
  // Each throws if a copy differs from its source; thousands of copies were checked.
  assert.ok(TableArena.partialCopiesChecked - before > 10_000, `${TableArena.partialCopiesChecked - before} partial copies`);
});

test('a new mm owns exactly its PGD', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  assert.equal(mm.nrTables, 1);
  assert.equal(k.tables.used, 1);
  assert.equal(k.tables.level[mm.pgd], LEVEL_PGD);
});

test('pteSlotAlloc allocates PUD, PMD and PTE tables once; pteSlot finds the same slot', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  const vpn = 1 << 28;
  assert.equal(pteSlot(k, mm, vpn), -1, 'no PTE table yet');
  const slot = pteSlotAlloc(k, mm, vpn);
  assert.equal(mm.nrTables, 4, 'PGD + PUD + PMD + PTE');
  assert.equal(k.tables.used, 4);
  assert.equal(pteSlot(k, mm, vpn), slot);
  assert.equal(k.tables.level[pteTableOf(k, mm, vpn)], LEVEL_PTE);
  // Again, and a neighbour in the same 2 MiB: nothing new.
  assert.equal(pteSlotAlloc(k, mm, vpn), slot);
  assert.equal(pteSlotAlloc(k, mm, vpn + 1), slot + 1);
  assert.equal(mm.nrTables, 4);
  // The next 2 MiB needs a PTE table only; the next 1 GiB a PMD and a PTE table.
  pteSlotAlloc(k, mm, vpn + 512);
  assert.equal(mm.nrTables, 5);
  pteSlotAlloc(k, mm, vpn + 512 * 512);
  assert.equal(mm.nrTables, 7);
  // The next 512 GiB: PUD, PMD and PTE.
  pteSlotAlloc(k, mm, vpn + 512 * 512 * 512);
  assert.equal(mm.nrTables, 10);
  assert.equal(k.tables.used, 10);
});

test('two processes never share tables through the walk', () => {
  const k = kernel('v6');
  const a = k.newMm();
  const b = k.newMm();
  const vpn = 1 << 28;
  const sa = pteSlotAlloc(k, a, vpn);
  const sb = pteSlotAlloc(k, b, vpn);
  assert.notEqual(sa >>> TABLE_SHIFT, sb >>> TABLE_SHIFT);
  assert.equal(k.tables.used, 8);
});

test('setPte keeps the table\'s count of non-none entries', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  const vpn = 1 << 28;
  const slot = pteSlotAlloc(k, mm, vpn);
  const table = slot >>> TABLE_SHIFT;
  setPte(k, slot, 3, PTE_PRESENT);
  setPte(k, slot, 4, PTE_PRESENT); // overwrite: still one entry
  setPte(k, pteSlotAlloc(k, mm, vpn + 1), 5, PTE_PRESENT);
  assert.equal(k.tables.filled[table], 2);
  setPte(k, slot, 0, 0);
  assert.equal(k.tables.filled[table], 1);
});

test('one mapping of one written page costs 4 page tables (16 kB) with the PGD', () => {
  const k = kernel('v6');
  const mm = k.newMm();
  const vpn = map(k, mm, 1);
  assert.equal(mm.nrTables, 1, 'mmap alone allocates no table');
  writeOk(k, mm, vpn, 1);
  assert.equal(mm.nrTables, 4);
  assert.equal(globalStats(k).PageTables_kB, 16);
});
