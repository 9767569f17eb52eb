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
  t.entry[base + 5] = 77;
  t.bits[base + 5] = PTE_PRESENT;
  t.entry[base + 511] = 3;
  t.bits[base + 511] = PTE_PRESENT;
  t.filled[a] = 2;
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
    t.entry[(tb << TABLE_SHIFT) + (i % PTRS_PER_TABLE)] = i + 1000;
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
  t.entry[a << TABLE_SHIFT] = 5;
  const c = t.clone();
  c.entry[a << TABLE_SHIFT] = 6;
  c.alloc(LEVEL_PTE);
  assert.equal(t.entry[a << TABLE_SHIFT], 5);
  assert.equal(t.used, 1);
  assert.equal(c.used, 2);
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
