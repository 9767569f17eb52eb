// The compact explorer engine against the full model (the Runner), fast-check style: a fast
// engine checked against a deliberately plain one. Random walks compare, after every step, the
// enabled operations, the violations and the whole state up to renaming; whole searches compare
// the counterexamples found and the events reached; both checks are shown to fail when the two
// engines do not run the same kernel.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Profile } from '../../src/core/profile.js';
import { PG_ANON_EXCLUSIVE, PTE_PRESENT, PTE_SPECIAL, PTE_WRITE, VM_DONTCOPY, VM_WIPEONFORK, VM_WRITE } from '../../src/core/constants.js';
import { pteSlot } from '../../src/core/walk.js';
import type { Runner } from '../../src/engine/run.js';
import { explore, startState } from '../../src/explore/explore.js';
import { decodeOp, enabledOps, type ExploreShape, type OpName } from '../../src/explore/ops.js';
import { Layout, F_FLAGS, F_MAP, F_REF, F_VAL, FL_EXCL, H_BOUND, H_HOLDER, H_KIND, H_PFN, H_REFS, HK_PIN, P_HELD, P_PINNED, P_STATUS, PG_CELL, PG_PTE, PG_VMA, ptePfn, S_NHANDLES, S_NPROCS, ST_ALIVE, ANON_SHIFT, VMA_DONTCOPY, VMA_IDEAL_DONTFORK, VMA_IDEAL_RO, VMA_IDEAL_WIPE, VMA_MAPPED, VMA_RO, VMA_START, VMA_WIPE } from '../../src/explore/compact/layout.js';
import { Machine, VIOLATION_NAMES } from '../../src/explore/compact/machine.js';
import { applyOp, COMPACT_OPS, enabledOps as compactEnabled, opCodes } from '../../src/explore/compact/step.js';
import { compactSearch, compactUnsupported } from '../../src/explore/compact/search.js';
import { BUILTIN_PROFILES } from '../../src/profiles/builtin.js';
import { SWITCH_NAMES, SWITCH_VALUES, withOverrides } from '../../src/profiles/resolve.js';
import { rngFrom as rng } from '../../src/oracle/random/rng.js';
import { input, profileOf } from './helpers.js';

/** A what-if profile with every switch drawn at random. */
function randomProfile(rand: () => number): { profile: Profile; sets: string[] } {
  const sets = SWITCH_NAMES.map((n) => `${n}=${SWITCH_VALUES[n][Math.floor(rand() * SWITCH_VALUES[n].length)]}`);
  return { profile: withOverrides(profileOf('v6'), sets), sets };
}

/** A one-to-one correspondence between the compact engine's numbers and the Runner's. */
class Bijection {
  private ab = new Map<number, number>();
  private ba = new Map<number, number>();
  check(a: number, b: number, what: string): void {
    const x = this.ab.get(a);
    const y = this.ba.get(b);
    assert.ok((x === undefined || x === b) && (y === undefined || y === a), `${what}: compact ${a} / model ${b} do not correspond (${x} / ${y})`);
    this.ab.set(a, b);
    this.ba.set(b, a);
  }
  model(a: number): number | undefined {
    return this.ab.get(a);
  }
}

/** The compact state and the Runner's state are the same up to renaming of frames and values. */
function assertSameState(m: Machine, r: Runner, where: string): void {
  const s = m.s;
  const L = m.L;
  const procs = [...r.procs.values()];
  assert.equal(s[S_NPROCS], procs.length, `${where}: processes`);
  const frames = new Bijection();
  const values = new Bijection();
  values.check(0, 0, `${where}: the zero value`);
  const k = r.k;
  const frame = (pfn: number, mpfn: number, what: string): void => {
    frames.check(pfn, mpfn, what);
    if (pfn <= 0) return;
    const fb = L.frame(pfn);
    assert.equal(s[fb + F_REF], k.frames.refcount[mpfn], `${what}: refcount`);
    assert.equal(s[fb + F_MAP], k.frames.mapcount[mpfn], `${what}: mapcount`);
    assert.equal((s[fb + F_FLAGS]! & FL_EXCL) !== 0, (k.frames.flags[mpfn]! & PG_ANON_EXCLUSIVE) !== 0, `${what}: PageAnonExclusive`);
    values.check(s[fb + F_VAL]!, k.frames.value[mpfn]!, `${what}: value`);
  };
  procs.forEach((p, j) => {
    const pb = L.proc(j);
    const what = `${where}: ${p.name}`;
    assert.equal(s[pb + P_STATUS] === ST_ALIVE, p.alive, `${what}: alive`);
    if (!p.alive) return;
    assert.equal(s[pb + P_PINNED] === 1, p.mm.hasPinned, `${what}: MMF_HAS_PINNED`);
    const start = p.regions.get('buf')!.start;
    const anons = new Bijection();
    for (let i = 0; i < L.pages; i++) {
      const at = L.page(j, i);
      const vpn = start + i;
      const vma = p.mm.findVma(vpn);
      const w = s[at + PG_VMA]!;
      assert.equal((w & VMA_MAPPED) !== 0, vma !== null, `${what} buf[${i}]: mapped`);
      if (vma) {
        assert.equal((w & VMA_START) !== 0, vma.start === vpn, `${what} buf[${i}]: where its VMA starts`);
        assert.equal((w & VMA_RO) !== 0, !(vma.flags & VM_WRITE), `${what} buf[${i}]: VM_WRITE`);
        assert.equal((w & VMA_DONTCOPY) !== 0, (vma.flags & VM_DONTCOPY) !== 0, `${what} buf[${i}]: VM_DONTCOPY`);
        assert.equal((w & VMA_WIPE) !== 0, (vma.flags & VM_WIPEONFORK) !== 0, `${what} buf[${i}]: VM_WIPEONFORK`);
        assert.equal(w >>> ANON_SHIFT !== 0, vma.anonVma, `${what} buf[${i}]: anon_vma`);
        anons.check(w >>> ANON_SHIFT, vma.anonId, `${what} buf[${i}]: which anon_vma`);
      }
      const slot = pteSlot(k, p.mm, vpn);
      const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
      const pte = s[at + PG_PTE]!;
      assert.equal(pte !== 0, (bits & PTE_PRESENT) !== 0, `${what} buf[${i}]: present`);
      if (pte !== 0) {
        assert.equal(ptePfn(pte) === 0, (bits & PTE_SPECIAL) !== 0, `${what} buf[${i}]: the zero page`);
        assert.equal((pte & 1) !== 0, (bits & PTE_WRITE) !== 0, `${what} buf[${i}]: writable`);
        frame(ptePfn(pte), k.tables.entry[slot]!, `${what} buf[${i}]`);
      }
      const cell = r.ideal.cellAt(p.group, vpn);
      const c = s[at + PG_CELL]!;
      assert.equal(c >= 0, cell !== null && cell.cell >= 0, `${what} buf[${i}]: ideal cell`);
      if (c >= 0) {
        values.check(s[L.cellBase + c]!, cell!.value, `${what} buf[${i}]: ideal value`);
        assert.equal((w & VMA_IDEAL_RO) !== 0, !(cell!.flags & IDEAL_WRITE), `${what} buf[${i}]: ideal protection`);
        assert.equal((w & VMA_IDEAL_DONTFORK) !== 0, (cell!.flags & IDEAL_DONTFORK) !== 0, `${what} buf[${i}]: ideal dontfork`);
        assert.equal((w & VMA_IDEAL_WIPE) !== 0, (cell!.flags & IDEAL_WIPEONFORK) !== 0, `${what} buf[${i}]: ideal wipeonfork`);
      }
    }
  });
  const handles = [...r.handles];
  assert.equal(s[S_NHANDLES], handles.length, `${where}: handles`);
  handles.forEach(([name, lh], h) => {
    const hb = L.handle(h);
    const what = `${where}: handle ${name}`;
    assert.equal(s[hb + H_KIND] === HK_PIN, lh.h.kind === 'pin', `${what}: kind`);
    assert.equal(procs[s[hb + H_HOLDER]!]!.name, lh.proc, `${what}: holder`);
    assert.equal(s[hb + H_REFS], lh.h.refs[0], `${what}: references`);
    frame(s[hb + H_PFN]!, lh.h.frames[0]!, what);
    assert.equal(s[hb + H_BOUND] === 1, r.ideal.isBound(name, 0), `${what}: bound to its page`);
  });
  // What each process ever held, for every value something can still return.
  procs.forEach((p, j) => {
    for (let v = 1; v < 31; v++) {
      const mv = values.model(v);
      if (mv === undefined) continue;
      assert.equal((s[L.proc(j) + P_HELD]! & (1 << v)) !== 0, r.ideal.everHeld(p.group, mv), `${where}: ${p.name} held value ${v}`);
    }
  });
}

/** The ideal memory's flags of a page (P_WRITE, P_DONTFORK, P_WIPEONFORK in src/check/ideal.ts). */
const IDEAL_WRITE = 2;
const IDEAL_DONTFORK = 4;
const IDEAL_WIPEONFORK = 8;

const kindsOf = (bits: number): string[] => VIOLATION_NAMES.filter(([b]) => bits & b).map(([, n]) => n);

/**
 * Random walks on both engines from the explorer's start state; returns the first difference
 * (null: none). `modelProfile` runs the Runner, `compactProfile` the compact engine.
 */
function walkDiff(compactProfile: Profile, modelProfile: Profile, shape: ExploreShape, pages: number, seed: number, walks: number, len: number): string | null {
  const rand = rng(seed);
  const L = new Layout(pages, shape.handles, shape.procs);
  const codes = opCodes(shape);
  const buf = new Int32Array(4096);
  const scratch = new Int32Array(2 * L.frames);
  const root = startState({ ...input('v6', { pages }), profile: modelProfile, shape }).runner;
  for (let w = 0; w < walks; w++) {
    const m = new Machine(L, compactProfile, root.k.config.pinBias);
    const r = root.clone();
    const done: string[] = [];
    try {
      for (let step = 0; step < len; step++) {
        const ops = enabledOps(r, shape);
        const n = compactEnabled(m, shape, codes, buf);
        assert.deepEqual([...buf.subarray(0, n)], ops, 'the enabled operations');
        if (n === 0) break;
        const op = ops[Math.floor(rand() * n)]!;
        const st = decodeOp(r, op);
        done.push(st.text);
        const before = r.violations.length;
        r.step(st, step);
        applyOp(m, op, scratch);
        const want = [...new Set(r.violations.slice(before).map((v) => v.kind))].sort();
        assert.deepEqual(kindsOf(m.viol).sort(), want, 'the violations of the step');
        assertSameState(m, r, `after ${st.text}`);
        if (want.length > 0) break; // the search does not go past a violation either
      }
    } catch (e) {
      return `walk ${w} (seed ${seed}): ${done.join('; ')}\n${(e as Error).message}`;
    }
  }
  return null;
}

const SHAPE = (procs: number, handles: number): ExploreShape => ({ procs, threads: 1, handles, ops: COMPACT_OPS });

test('random walks: every built-in profile steps the same on both engines, state by state', () => {
  let seed = 1;
  for (const p of BUILTIN_PROFILES) {
    for (const [procs, pages, handles] of [[2, 2, 2], [3, 1, 2], [2, 3, 3], [4, 2, 4]] as const) {
      const diff = walkDiff(p, p, SHAPE(procs, handles), pages, seed++, 200, 16);
      assert.equal(diff, null, `${p.name}, ${procs} procs ${pages} pages ${handles} handles: ${diff}`);
    }
  }
});

test('random walks: random what-if profiles (every switch drawn) step the same on both engines', () => {
  const rand = rng(42);
  for (let i = 0; i < 60; i++) {
    const { profile, sets } = randomProfile(rand);
    const diff = walkDiff(profile, profile, SHAPE(2, 2), 2, 1000 + i, 60, 16);
    assert.equal(diff, null, `--set ${sets.join(' --set ')}: ${diff}`);
  }
});

test('random walks tell different kernels apart (the comparison is not vacuous)', () => {
  for (const [a, b] of [['v5.9', 'v5.9-rc4'], ['v5.7', 'v5.8'], ['v6', 'v5.14'], ['v5.19', 'v6.2']] as const) {
    const diff = walkDiff(profileOf(a), profileOf(b), SHAPE(2, 2), 2, 7, 200, 12);
    assert.notEqual(diff, null, `compact ${a} against the model on ${b}: no difference found`);
  }
});

/** kind -> depth of the shortest counterexample, with --all. */
function found(kernel: string, engine: 'compact' | 'full', depth: number, sets: string[] = [], ops?: readonly OpName[]): { kinds: Record<string, number>; reached: Record<string, number>; complete: number } {
  // One counterexample per kind as the engines find them (no replay for causes): the engines compared.
  const out = explore({ ...input(kernel, { depth, all: true, sets, ...(ops ? { ops } : {}) }), engine, causes: false });
  assert.equal(out.result.stats.engine, engine);
  const kinds: Record<string, number> = {};
  for (const ce of out.result.counterexamples) for (const v of ce.violations) kinds[v.kind] ??= ce.depth;
  return { kinds, reached: out.result.stats.reached, complete: out.result.stats.depthComplete };
}

test('whole searches: both engines find the same violation kinds at the same shortest depths, on every profile', () => {
  for (const p of BUILTIN_PROFILES) {
    if (p.cowPageTables !== 'none') continue; // fork-cowpt is not a default operation; their default-op searches equal v5.18's / v5.6's
    const c = found(p.name, 'compact', 4);
    const f = found(p.name, 'full', 4);
    assert.deepEqual(c.kinds, f.kinds, `${p.name}: counterexamples`);
    assert.deepEqual(c.reached, f.reached, `${p.name}: events reached`);
    assert.equal(c.complete, f.complete);
  }
  for (const k of ['v5.7', 'v5.9-rc4', 'v5.9', 'v6']) {
    const c = found(k, 'compact', 5);
    const f = found(k, 'full', 5);
    assert.deepEqual(c.kinds, f.kinds, `${k} at depth 5: counterexamples`);
    assert.deepEqual(c.reached, f.reached, `${k} at depth 5: events reached`);
  }
  // Every operation the compact engine has (dontneed, pin-fast and gup besides the default set).
  for (const k of ['v5.8', 'v5.9', 'v6']) {
    const c = found(k, 'compact', 4, [], COMPACT_OPS);
    const f = found(k, 'full', 4, [], COMPACT_OPS);
    assert.deepEqual(c.kinds, f.kinds, `${k}, all compact operations: counterexamples`);
    assert.deepEqual(c.reached, f.reached, `${k}, all compact operations: events reached`);
  }
  const whatIf = ['forkEarlyCow=false'];
  assert.deepEqual(found('v6', 'compact', 4, whatIf).kinds, found('v6', 'full', 4, whatIf).kinds, 'v6 --set forkEarlyCow=false');
});

test('a compact counterexample the full model does not confirm is an internal error, not a result', () => {
  // The compact engine runs v5.9-rc4 (the RDMA lost write), the Runner that replays it v6.
  const i = input('v5.9-rc4', { depth: 4, kinds: ['lost-write'] });
  const root = startState({ ...i, profile: profileOf('v6') }).runner;
  assert.throws(() => compactSearch(root, i.profile, i.shape, i.pages, i.bounds), /internal error: the compact explorer found lost-write[\s\S]*--engine full/);
});

test('the compact engine says which searches it cannot run, and auto falls back to the full one', () => {
  assert.equal(compactUnsupported(SHAPE(2, 2), 2, 8, false), null);
  assert.match(compactUnsupported(SHAPE(2, 2), 2, 8, true)!, /--from/);
  assert.match(compactUnsupported({ ...SHAPE(2, 2), ops: ['write', 'clear-softdirty'] }, 2, 8, false)!, /clear-softdirty/);
  assert.match(compactUnsupported(SHAPE(8, 8), 4, 6, false)!, /more pages/);
  assert.match(compactUnsupported(SHAPE(2, 2), 2, 40, false)!, /depth 40/);
  const out = explore({ ...input('v6', { depth: 2, ops: ['write', 'clear-softdirty'] }), engine: 'auto' });
  assert.equal(out.result.stats.engine, 'full');
  assert.throws(() => explore({ ...input('v6', { depth: 2, ops: ['write', 'clear-softdirty'] }), engine: 'compact' }), /clear-softdirty/);
});

test('compact engine: fingerprints (the default) and --exact keys give the same search', () => {
  for (const [kernel, depth, all] of [['v6', 6, false], ['v5.8', 5, false], ['v5.8', 5, true]] as const) {
    const run = (exact: boolean) => explore({ ...input(kernel, { depth, all }), bounds: { ...input(kernel, { depth, all }).bounds, exact }, engine: 'compact', causes: false }).result;
    const fp = run(false);
    const ex = run(true);
    assert.equal(fp.stats.engine, 'compact');
    assert.equal(fp.stats.visited, 'fingerprints');
    assert.equal(ex.stats.visited, 'exact');
    assert.equal(fp.stats.states, ex.stats.states, `${kernel} depth ${depth}`);
    assert.equal(fp.stats.transitions, ex.stats.transitions, `${kernel} depth ${depth}`);
    assert.deepEqual(fp.counterexamples.map((c) => c.steps), ex.counterexamples.map((c) => c.steps));
    assert.ok(fp.stats.collisionProbability > 0 && fp.stats.collisionProbability < 1e-6);
  }
});
