// Model-based runs (fast-check commands, which shrink) of the explorer's transitions, over every
// operation it enumerates and several profiles: each command picks one of the enabled
// operations (an index modulo how many there are) and the explorer's own path takes it (the
// state copied into the arrays of a copy done with, as Expander does). After every command:
// - the state equals the one a plain copy reaches and the one a replay from the start reaches
//   (same canonical encoding and fingerprint, same violations): the copy into reused arrays
//   and the search tree's rebuild of a state from its parent are the model's own semantics;
// - on v6, for the operations the naive reference model knows (test/naive/model.ts: write,
//   read, fork, exit, munmap, mprotect, dontfork, wipeonfork, dontneed), every read sees what
//   the naive model reads, or faults where it faults.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Runner } from '../../src/engine/run.js';
import { canonicalKey, canonicalWords, fingerprint } from '../../src/explore/canonical.js';
import { startState } from '../../src/explore/explore.js';
import { decodeOp, enabledOps, OP_NAMES, type ExploreShape, type OpName } from '../../src/explore/ops.js';
import { replayPath } from '../../src/explore/search.js';
import { NaiveKernel, type NProc, type NRegion } from '../naive/model.js';
import { input } from './helpers.js';

const NAIVE_OPS: readonly OpName[] = ['write', 'read', 'fork', 'exit', 'munmap', 'mprotect', 'dontfork', 'wipeonfork', 'dontneed'];
const PAGES = 2;

interface Naive {
  k: NaiveKernel;
  procs: NProc[];
  region: NRegion;
  /** Value names the explorer wrote -> the naive model's numbers. */
  values: Map<string, number>;
}

interface Real {
  root: Runner;
  r: Runner;
  /** A state done with: the next copy goes into its arrays. */
  spare: Runner | undefined;
  path: number[];
  shape: ExploreShape;
  naive: Naive | null;
}

const fp = (r: Runner): string => {
  const out = new Int32Array(2);
  fingerprint(canonicalWords(r), out);
  return `${out[0]},${out[1]}`;
};
const kinds = (r: Runner): string[] => r.violations.map((v) => `${v.step}:${v.kind}`);

class Take implements fc.Command<object, Real> {
  constructor(readonly pick: number) {}
  check(): boolean {
    return true;
  }

  run(_m: object, real: Real): void {
    const ops = enabledOps(real.r, real.shape);
    if (ops.length === 0) return;
    const op = ops[this.pick % ops.length]!;
    const d = real.path.length;
    const child = real.r.clone(real.spare);
    const step = decodeOp(child, op);
    const res = child.step(step, d);
    const plain = real.r.clone();
    const res2 = plain.step(decodeOp(plain, op), d);
    assert.equal(res.na, res2.na);
    assert.equal(canonicalKey(child), canonicalKey(plain), `after ${step.text}: the copy into reused arrays differs from a plain copy`);
    assert.equal(fp(child), fp(plain));
    assert.deepEqual(kinds(child), kinds(plain));
    if (res.na !== null) return;
    real.path.push(op);
    const { r: replayed } = replayPath(real.root, real.path);
    assert.equal(canonicalKey(replayed), canonicalKey(child), `after ${step.text}: the replay from the start differs`);
    assert.deepEqual(kinds(replayed), kinds(child));
    if (real.naive) naiveStep(real.naive, OP_NAMES[op >>> 24]!, op, step as unknown as { text: string } & Record<string, unknown>, res.record.observations);
    real.spare = real.r;
    real.r = child;
  }

  toString(): string {
    return `take(${this.pick})`;
  }
}

/** The same operation on the naive model; a read must see what it sees. */
function naiveStep(n: Naive, name: OpName, op: number, step: { text: string } & Record<string, unknown>, obs: readonly { kind: string; actual: string }[]): void {
  const p = n.procs[(op >>> 20) & 15]!;
  const pg = (op >>> 4) & 0xffff;
  switch (name) {
    case 'write': {
      const v = step.value as string;
      if (!n.values.has(v)) n.values.set(v, n.values.size + 1);
      n.k.write(p, n.region, pg, n.values.get(v)!);
      return;
    }
    case 'read': {
      const want = n.k.read(p, n.region, pg);
      const got = obs.find((o) => o.kind === 'read')!.actual;
      assert.equal(got === 'fault' ? null : got === '0' ? 0 : n.values.get(got), want, `${step.text}: the naive model reads ${want}, the model ${got}`);
      return;
    }
    case 'fork':
      n.procs.push(n.k.fork(p));
      return;
    case 'exit':
      n.k.exit(p);
      return;
    case 'munmap':
      n.k.munmap(p, n.region, pg, pg + 1);
      return;
    case 'mprotect':
      n.k.mprotect(p, n.region, pg, pg + 1, (op & 15) === 0 ? 'ro' : 'rw');
      return;
    case 'dontfork':
    case 'wipeonfork':
    case 'dontneed':
      n.k.madvise(p, n.region, pg, pg + 1, name);
      return;
    default:
      throw new Error(`no naive form of ${name}`);
  }
}

function runs(kernel: string, ops: readonly OpName[], withNaive: boolean, numRuns: number): void {
  const inp = input(kernel, { ops, pages: PAGES, procs: 3, handles: 2, threads: 2 });
  fc.assert(fc.property(fc.commands([fc.nat(1000).map((i) => new Take(i))], { maxCommands: 14 }), (cmds) => {
    const root = startState(inp).runner;
    let naive: Naive | null = null;
    if (withNaive) {
      const k = new NaiveKernel();
      const p = k.spawn();
      naive = { k, procs: [p], region: k.mmap(p, PAGES), values: new Map() };
    }
    fc.modelRun(() => ({ model: {}, real: { root, r: root.clone(), spare: undefined, path: [], shape: inp.shape, naive } }), cmds);
  }), { numRuns });
}

test('model-based: every explorer operation, on v6, v5.9, v5.7, cowpt-rfc, v6.15 and odf: copies into reused arrays and replays agree', () => {
  for (const kernel of ['v6', 'v5.9', 'v5.7', 'cowpt-rfc', 'v6.15', 'odf']) runs(kernel, OP_NAMES, false, 25);
});

test('model-based: on v6, reads agree with the naive reference model (write, read, fork, exit, munmap, mprotect, madvise)', () => {
  runs('v6', NAIVE_OPS, true, 150);
});
