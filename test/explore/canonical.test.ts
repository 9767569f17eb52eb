// Canonical state keys: states that differ only by renaming (fresh values, frame numbers, the
// names and creation order of processes) share a key; states that differ in a value relation, a
// frame sharing, a pin, a refcount or mapcount do not. Property (fast-check): over random short
// operation sequences, the key is stable under Runner.clone(), stepping a clone leaves the
// original's key alone, and any operation that changes the observable state changes the key.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  PTE_DEVICE_EXCLUSIVE, PTE_DIRTY, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_SPECIAL, PTE_SWAP, PTE_YOUNG,
} from '../../src/core/constants.js';
import { newAnonId } from '../../src/core/mm.js';
import { pteSlot } from '../../src/core/walk.js';
import type { Runner } from '../../src/engine/run.js';
import { canonicalKey } from '../../src/explore/canonical.js';
import { decodeOp, enabledOps, type ExploreShape, type OpName } from '../../src/explore/ops.js';
import { startState } from '../../src/explore/explore.js';
import { assertProperty } from '../engine/seed.js';
import { input, runnerAfter } from './helpers.js';

const key = canonicalKey;

function sameKey(a: string[], b: string[], profile = 'v6'): void {
  assert.equal(key(runnerAfter(a, profile)), key(runnerAfter(b, profile)), `same key expected:\n  ${a.join('; ')}\n  ${b.join('; ')}`);
}

function otherKey(a: string[], b: string[], profile = 'v6'): void {
  assert.notEqual(key(runnerAfter(a, profile)), key(runnerAfter(b, profile)), `different keys expected:\n  ${a.join('; ')}\n  ${b.join('; ')}`);
}

const BASE = ['P mmap buf 2 rw private'];

// ---- renaming -------------------------------------------------------------------------------------

test('renaming: writes of different fresh values give the same key', () => {
  sameKey([...BASE, 'P write buf[0] = 1'], [...BASE, 'P write buf[0] = 7']);
  sameKey([...BASE, 'P write buf[0] = a', 'P write buf[1] = b'], [...BASE, 'P write buf[0] = b', 'P write buf[1] = a']);
  sameKey([...BASE, 'P write buf[0] = 1', 'P write buf[0] = 2'], [...BASE, 'P write buf[0] = 5', 'P write buf[0] = 3']);
});

test('renaming: frames allocated in another order give the same key', () => {
  sameKey([...BASE, 'P write buf[0] = 1', 'P write buf[1] = 2'], [...BASE, 'P write buf[1] = 2', 'P write buf[0] = 1']);
});

test('renaming: processes named or created in another order give the same key', () => {
  const fork2 = [...BASE, 'P write buf = 1', 'P fork Q', 'P fork R'];
  // The first or the second child writes: the two states are the same up to renaming Q <-> R.
  sameKey([...fork2, 'Q write buf[0] = 2'], [...fork2, 'R write buf[0] = 2']);
  sameKey([...fork2, 'Q write buf[0] = 2', 'R exit'], [...fork2, 'R write buf[0] = 2', 'Q exit']);
  // Created in another order: the child that wrote its own copy was forked first, or second.
  const w = [...BASE, 'P write buf = 1', 'P fork Q'];
  sameKey([...w, 'Q write buf[0] = 2', 'P fork R'], [...w, 'P fork R', 'R write buf[0] = 2']);
  // Another name for the child.
  sameKey([...BASE, 'P write buf = 1', 'P fork Q'], [...BASE, 'P write buf = 1', 'P fork Z']);
  // Handles named otherwise.
  sameKey([...BASE, 'P write buf = 1', 'P pin buf[0] as h1 rw longterm'], [...BASE, 'P write buf = 1', 'P pin buf[0] as mr rw longterm']);
});

test('renaming: the values a page may also hold are a set, sorted again in the numbering of the threads before it', () => {
  // Q's page 0 may also hold each value the device wrote through Q's short-term pin (a, b, c: a
  // sorted run in Q's key). P comes first in the key and numbers b before a, so Q's key,
  // translated into P's numbering, has its run out of order until it is sorted again.
  const dev = (h: string, ...vs: string[]): string[] => vs.map((v) => `device write ${h}[0] = ${v}`);
  const shared = [...BASE, 'P write buf = 1'];
  const pin = [...shared, 'P fork Q', 'Q pin buf[0] as h rw short'];
  const s = [...pin, ...dev('h', 'a', 'b', 'c'), 'P write buf[0] = b', 'P write buf[1] = a'];
  // The device's writes in another order (the set's order, not P's), under other names, with
  // the frames allocated in another order (P's copies first): the same state up to renaming.
  sameKey(s, [...pin, ...dev('h', 'b', 'a', 'c'), 'P write buf[0] = b', 'P write buf[1] = a']);
  sameKey(s, [...shared, 'P fork R', 'R pin buf[0] as dio rw short', ...dev('dio', 'x', 'y', 'z'), 'P write buf[0] = x', 'P write buf[1] = y']);
  sameKey(s, [...shared, 'P fork Q', 'P write buf[0] = b', 'P write buf[1] = a', 'Q pin buf[0] as h rw short', ...dev('h', 'b', 'a', 'c')]);
  // P holds a value outside Q's set, or the one the device wrote last; Q's set has two values.
  otherKey(s, [...pin, ...dev('h', 'a', 'b', 'c'), 'P write buf[0] = b', 'P write buf[1] = d']);
  otherKey(s, [...pin, ...dev('h', 'a', 'b', 'c'), 'P write buf[0] = c', 'P write buf[1] = a']);
  otherKey(s, [...pin, ...dev('h', 'a', 'b'), 'P write buf[0] = b', 'P write buf[1] = a']);
});

// ---- what can no longer matter ---------------------------------------------------------------------

test('a process that is gone and holds nothing counts only in number', () => {
  // Q wrote its own copy before it exited, or exited without writing: what it held and its
  // address space are gone; P's page is the same (write-protected since the fork, mapped once).
  const f = [...BASE, 'P write buf = 1', 'P fork Q'];
  sameKey([...f, 'Q write buf[0] = 2', 'Q exit'], [...f, 'Q exit']);
  // How many threads there were still counts (the explorer's limit on them counts the gone ones).
  otherKey([...BASE, 'P write buf = 1'], [...BASE, 'P write buf = 1', 'P fork Q', 'Q exit', 'P write buf = 2']);
  // A gone holder of a handle is kept: a read through the handle is checked against what it held.
  otherKey([...f, 'Q pin buf[0] as h rw longterm', 'Q exit'], [...f, 'Q exit']);
});

test('values nothing can return any more are forgotten from what a process held', () => {
  // Value 1 was overwritten in place: P held it, but no page, frame or handle can return it.
  sameKey([...BASE, 'P write buf[0] = 1', 'P write buf[0] = 2'], [...BASE, 'P write buf[0] = 2']);
});

// ---- real differences -----------------------------------------------------------------------------

test('a value relation (equal values vs different values) changes the key', () => {
  otherKey([...BASE, 'P write buf[0] = 1', 'P write buf[1] = 1'], [...BASE, 'P write buf[0] = 1', 'P write buf[1] = 2']);
  // The child holds the parent's old value or a value of its own.
  const f = [...BASE, 'P write buf = 1', 'P fork Q', 'Q write buf[0] = 2'];
  otherKey([...f, 'P write buf[0] = 2'], [...f, 'P write buf[0] = 3']);
});

test('a frame sharing changes the key', () => {
  // After fork both map one frame; after the child writes the same value it has its own frame.
  otherKey([...BASE, 'P write buf[0] = 1', 'P fork Q'], [...BASE, 'P write buf[0] = 1', 'P fork Q', 'Q write buf[0] = 1']);
  // KSM merged two equal pages into one frame, or not.
  const m = [...BASE, 'P madvise buf mergeable', 'P write buf = 1', 'P mprotect buf ro'];
  otherKey(m, [...m, 'ksm merge']);
});

test('a pin changes the key; so does MMF_HAS_PINNED when the kernel keeps it (v5.9 on)', () => {
  const w = [...BASE, 'P write buf[0] = 1'];
  otherKey(w, [...w, 'P pin buf[0] as h rw longterm']);
  otherKey(w, [...w, 'P gup buf[0] as h ro']);
  otherKey(w, [...w, 'P vmsplice buf[0] as h']);
  // Pinned once and unpinned: has_pinned stays set and decides early COW at the next fork.
  otherKey(w, [...w, 'P pin buf[0] as h rw longterm', 'P unpin h'], 'v6');
  // v5.7 has no has_pinned: nothing remains of the pin.
  sameKey(w, [...w, 'P pin buf[0] as h rw longterm', 'P unpin h'], 'v5.7');
});

test('a refcount or a mapcount changed by hand changes the key; a clone keeps it', () => {
  const r = runnerAfter([...BASE, 'P write buf = 1', 'P fork Q']);
  const k0 = key(r);
  assert.equal(key(r.clone()), k0);
  const p = r.procs.get('P')!;
  const pfn = r.k.tables.entry[pteSlot(r.k, p.mm, p.regions.get('buf')!.start)]!;
  const a = r.clone();
  a.k.frames.addRefcount(pfn, 1);
  assert.notEqual(key(a), k0, 'refcount');
  const b = r.clone();
  b.k.frames.addMapcount(pfn, -1);
  assert.notEqual(key(b), k0, 'mapcount');
  const c = r.clone();
  c.k.frames.setValue(pfn, c.values.id('other'));
  assert.notEqual(key(c), k0, 'frame value');
  assert.equal(key(r), k0, 'the original is untouched by its clones');
});

test('anon_vma identity is part of the key, up to renaming (it decides which VMAs merge)', () => {
  // P's mapping split by mprotect: both parts keep the one anon_vma, so mprotect back merges them.
  const r = runnerAfter([...BASE, 'P write buf = 1', 'P mprotect buf[1] ro', 'P fork Q']);
  const k0 = key(r);
  const vmas = (x: Runner, name: string) => x.procs.get(name)!.mm.vmas;
  // Parts with anon_vmas of their own (as if each had faulted on its own) do not merge again.
  const a = r.clone();
  vmas(a, 'P')[1]!.anonId = newAnonId();
  assert.notEqual(key(a), k0, 'distinct anon_vmas');
  // No anon_vma at all on the second part.
  const b = r.clone();
  vmas(b, 'P')[1]!.anonVma = false;
  vmas(b, 'P')[1]!.anonId = 0;
  assert.notEqual(key(b), k0, 'no anon_vma');
  // The child's anon_vma links its parent's (anon_vma_fork): without that it would lend it.
  const c = r.clone();
  for (const v of vmas(c, 'Q')) v.uncowedParents = false;
  assert.notEqual(key(c), k0, 'uncowed parents');
  // Other ids for the same sharing: the same key.
  const d = r.clone();
  const id = newAnonId();
  for (const v of vmas(d, 'P')) v.anonId = id;
  assert.equal(key(d), k0, 'renamed anon_vma');
  // A page offset that no longer lines up (mremap keeps a moved range's): the parts do not merge.
  const e = r.clone();
  vmas(e, 'P')[1]!.pgoffShift = 5;
  assert.notEqual(key(e), k0, 'page offset');
});

test('where a process maps its next range, and where its regions lie, are part of the key (they decide which VMAs neighbour)', () => {
  const r = runnerAfter([...BASE, 'P write buf = 1', 'P fork Q']);
  const k0 = key(r);
  const a = r.clone();
  a.procs.get('Q')!.mm.mmapNext += 3;
  assert.notEqual(key(a), k0, 'mmap base');
  const b = r.clone();
  // (A copy shares its regions map with the original: the copy gets a map of its own.)
  const pb = b.procs.get('P')!;
  const reg = pb.regions.get('buf')!;
  pb.regions = new Map([...pb.regions, ['buf', { ...reg, start: reg.start + 8 }]]);
  assert.notEqual(key(b), k0, 'region address');
  assert.equal(key(r), k0, 'the original is untouched');
});

test('5.14-6.14: the order VMAs with the same page offset entered the anon_vma tree is part of the key (the device-exclusive walk follows it), up to renumbering; not from 6.15', () => {
  for (const [profile, counts] of [['v6.2', true], ['v5.14', true], ['v6', false]] as const) {
    const r = runnerAfter([...BASE, 'P write buf = 1', 'P fork Q'], profile);
    const k0 = key(r);
    const vma = (x: Runner, name: string) => x.procs.get(name)!.mm.vmas[0]!;
    // Q's VMA entered after P's (anon_vma_fork); P's re-inserted after it (a split or merge) instead.
    const a = r.clone();
    vma(a, 'P').anonSeq = vma(a, 'Q').anonSeq + 1;
    if (counts) assert.notEqual(key(a), k0, `${profile}: P's VMA after Q's`);
    else assert.equal(key(a), k0, `${profile}: one PTE, no walk`);
    // Other numbers in the same order: the same key.
    const b = r.clone();
    for (const name of ['P', 'Q']) vma(b, name).anonSeq += 100;
    assert.equal(key(b), k0, `${profile}: renumbered`);
  }
});

// ---- property: clone-stable, and observable changes change the key ---------------------------------

const NO_AD = ~(PTE_YOUNG | PTE_DIRTY | PTE_SOFT_DIRTY);

/**
 * What the state shows, renamed by first appearance in name order: per process and page the PTE
 * kind and permission (not the accessed/dirty/soft-dirty bits), the frame's counts, flags and
 * value, the swap slot, the ideal cell; the handles; frames in use. Coarser than the state.
 */
function observe(r: Runner): string {
  const frames = new Map<number, number>();
  const values = new Map<number, number>([[0, 0]]);
  const F = (pfn: number): number => {
    if (pfn <= 0) return pfn;
    if (!frames.has(pfn)) frames.set(pfn, frames.size + 1);
    return frames.get(pfn)!;
  };
  const V = (v: number): number => {
    if (!values.has(v)) values.set(v, values.size);
    return values.get(v)!;
  };
  const k = r.k;
  const f = k.frames;
  const frame = (pfn: number): (number | string)[] => (pfn <= 0 ? [pfn] : [F(pfn), f.refcount[pfn]!, f.mapcount[pfn]!, f.flags[pfn]!, V(f.value[pfn]!)]);
  const out: (number | string | boolean)[] = [];
  for (const name of [...r.procs.keys()].sort()) {
    const p = r.procs.get(name)!;
    out.push(name, p.alive, p.task?.kind ?? '-');
    if (!p.alive || !p.mm.alive) continue;
    for (const [reg, { start, n }] of [...p.regions].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
      out.push(reg);
      for (let i = 0; i < n; i++) {
        const vpn = start + i;
        const vma = p.mm.findVma(vpn);
        out.push(vma === null ? -1 : vma.flags);
        const slot = pteSlot(k, p.mm, vpn);
        const bits = slot < 0 ? 0 : k.tables.bits[slot]! & NO_AD;
        out.push(bits);
        if (bits & PTE_PRESENT) out.push(...(bits & PTE_SPECIAL ? ['zero'] : frame(k.tables.entry[slot]!)));
        else if (bits & PTE_SWAP) {
          const s = k.tables.entry[slot]!;
          out.push('swap', k.swap.count[s]!, V(k.swap.data[s]!), ...(k.swap.cache[s]! >= 0 ? frame(k.swap.cache[s]!) : [-1]));
        } else if (bits & PTE_DEVICE_EXCLUSIVE) out.push('devexcl', ...frame(k.tables.entry[slot]!));
        const c = r.ideal.cellAt(p.group, vpn);
        out.push(c === null || c.cell < 0 ? 'x' : V(c.value));
      }
    }
  }
  for (const [name, lh] of [...r.handles].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
    out.push(name, lh.h.kind, lh.proc);
    lh.h.frames.forEach((pfn, i) => out.push(...frame(pfn), lh.h.refs[i]!, lh.h.revoked?.[i] ?? -1));
  }
  out.push(f.used);
  return JSON.stringify(out);
}

const PROFILES = ['v5.7', 'v5.9', 'v5.14', 'v5.18', 'v6'];
const OPS: OpName[] = [
  'write', 'read', 'fork', 'exit', 'munmap', 'mprotect', 'dontneed', 'pin', 'pin-ro', 'vmsplice', 'gup', 'unpin', 'put',
  'handle-read', 'device-write', 'device-read', 'clear-softdirty', 'swapout', 'mergeable', 'ksm-merge',
  'device-exclusive', 'device-atomic', 'thread', 'fork&', 'pin-fast&', 'write&', 'step',
];

test('property: keys survive clone(), clones are independent, an observable change changes the key', () => {
  const arb = fc.record({
    profile: fc.constantFrom(...PROFILES),
    pages: fc.integer({ min: 1, max: 2 }),
    choices: fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 9 }),
  });
  assertProperty('canonical key', arb, ({ profile, pages, choices }) => {
    const inp = input(profile, { pages });
    const shape: ExploreShape = { procs: 3, threads: 2, handles: 2, ops: OPS };
    let r = startState(inp).runner;
    const base = r.violations.length;
    const trail: string[] = [];
    for (const c of choices) {
      const ops = enabledOps(r, shape);
      if (ops.length === 0) break;
      const k0 = key(r);
      const obs0 = observe(r);
      const next = r.clone();
      assert.equal(key(next), k0, 'a clone has the same key');
      const step = decodeOp(next, ops[c % ops.length]!);
      const { na } = next.step(step, trail.length);
      trail.push(step.text);
      assert.equal(key(r), k0, `stepping a clone left the original alone (${trail.join('; ')})`);
      if (na !== null) continue;
      if (next.violations.length > base) break; // the explorer does not expand violating states
      const obs1 = observe(next);
      if (obs1 !== obs0) {
        assert.notEqual(key(next), k0, `on ${profile}, \`${step.text}\` changed the observable state but not the key:\n  ${trail.join('\n  ')}`);
      }
      r = next;
    }
  }, 300);
});

test('the page a handle was taken on is part of the key (the pin check compares the frame held with what the holder maps there)', () => {
  // v5.7 (no COW break for pins): the first sequence's writable pin breaks COW of the zero page
  // h1 holds, so h1 is incoherent; the second's pins are each coherent. The frames held are
  // alike up to renaming; only the pages the pins were taken on tell the two states apart.
  const a = runnerAfter([...BASE, 'P read buf[0]', 'P pin buf[1] as h1 ro longterm', 'P pin buf[1] as h2 rw longterm'], 'v5.7', [], false);
  const b = runnerAfter([...BASE, 'P pin buf[1] as h1 rw longterm', 'P pin buf[0] as h2 ro longterm'], 'v5.7', [], false);
  assert.deepEqual(a.violations.map((v) => v.kind), ['pin-incoherent']);
  assert.deepEqual(b.violations.map((v) => v.kind), []);
  assert.notEqual(key(a), key(b));
  // The same pins taken in the other order and under other names share a key.
  sameKey([...BASE, 'P pin buf[0] as h1 rw', 'P pin buf[1] as h2 rw'], [...BASE, 'P pin buf[1] as a rw', 'P pin buf[0] as b rw']);
});
