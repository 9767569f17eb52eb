// src/core has no import cycle: the modules form layers (leaves such as page.ts, swapcache.ts,
// exclusive.ts and walk.ts below the paths that share them), so each kernel rule can live in
// one module that every path imports. The graph is read from the compiled modules (type-only
// imports are gone there: only imports that run count).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CORE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'core');

/** Module -> the modules of the same directory it imports or re-exports from. */
function importGraph(dir: string): Map<string, string[]> {
  const files = readdirSync(dir).filter((f) => f.endsWith('.js'));
  const g = new Map<string, string[]>();
  for (const f of files) {
    const src = readFileSync(join(dir, f), 'utf8');
    const deps = new Set<string>();
    for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*['"]\.\/([^'"]+)['"]/g)) deps.add(m[1]!);
    for (const m of src.matchAll(/(?:^|\n)\s*import\s*['"]\.\/([^'"]+)['"]/g)) deps.add(m[1]!);
    for (const m of src.matchAll(/\bimport\(\s*['"]\.\/([^'"]+)['"]\s*\)/g)) deps.add(m[1]!);
    g.set(f, [...deps]);
  }
  return g;
}

/** One import cycle (a -> ... -> a), or null. */
export function findCycle(g: Map<string, string[]>): string[] | null {
  const state = new Map<string, 1 | 2>(); // 1: on the current path, 2: done
  const path: string[] = [];
  const visit = (v: string): string[] | null => {
    state.set(v, 1);
    path.push(v);
    for (const w of g.get(v) ?? []) {
      if (state.get(w) === 1) return [...path.slice(path.indexOf(w)), w];
      if (state.get(w) === undefined) {
        const c = visit(w);
        if (c) return c;
      }
    }
    path.pop();
    state.set(v, 2);
    return null;
  };
  for (const v of [...g.keys()].sort()) {
    if (state.get(v) === undefined) {
      const c = visit(v);
      if (c) return c;
    }
  }
  return null;
}

test('the cycle finder finds a cycle, and none in a layered graph', () => {
  const cyclic = new Map([['a.js', ['b.js']], ['b.js', ['c.js']], ['c.js', ['a.js']], ['d.js', []]]);
  assert.deepEqual(findCycle(cyclic), ['a.js', 'b.js', 'c.js', 'a.js']);
  const layered = new Map([['a.js', ['b.js', 'c.js']], ['b.js', ['c.js']], ['c.js', []]]);
  assert.equal(findCycle(layered), null);
});

test('the import graph is read from the compiled modules', () => {
  const g = importGraph(CORE);
  // Spot checks that the reader sees real edges (else "no cycle" would mean nothing).
  assert.ok(g.get('fork.js')?.includes('page.js'), 'fork.js imports page.js');
  assert.ok(g.get('tasks.js')?.includes('fork.js'), 'tasks.js imports fork.js');
  assert.ok(g.get('swap.js')?.includes('swapcache.js'), 'swap.js re-exports from swapcache.js');
  assert.ok(g.size >= 20, `${g.size} modules`);
});

test('src/core has no import cycle', () => {
  const cycle = findCycle(importGraph(CORE));
  assert.equal(cycle, null, `import cycle: ${cycle?.join(' -> ')}`);
});

test('the modules every path shares import none of the paths', () => {
  const g = importGraph(CORE);
  const paths = ['fork.js', 'fault.js', 'gup.js', 'access.js', 'tasks.js', 'cowpt.js', 'zap.js', 'swap.js', 'devexcl.js', 'mmap.js', 'ksm.js'];
  for (const leaf of ['page.js', 'swapcache.js', 'exclusive.js', 'walk.js']) {
    const bad = (g.get(leaf) ?? []).filter((d) => paths.includes(d));
    assert.deepEqual(bad, [], `${leaf} imports ${bad.join(', ')}`);
  }
});
