// The seed of the property tests: fixed by default (runs are reproducible), COWLAB_SEED=N to try
// another, COWLAB_SEED=random for a fresh one. The seed is printed with any failure. Every fc.assert
// of the tests takes it (`seed: SEED`): an unseeded one draws anew each run, and CI would flake.

import fc from 'fast-check';

function pickSeed(): number {
  const env = process.env.COWLAB_SEED;
  if (env === undefined || env === '') return 20250611;
  if (env === 'random') return (Math.random() * 0x7fffffff) | 0;
  const n = Number(env);
  if (!Number.isInteger(n)) throw new Error(`COWLAB_SEED must be an integer or 'random', not '${env}'`);
  return n;
}

export const SEED = pickSeed();

/** fc.assert with the seed, rethrowing with the seed and how to rerun in front of fast-check's report. */
export function assertProperty<T>(name: string, arb: fc.Arbitrary<T>, predicate: (v: T) => void, numRuns: number): void {
  try {
    fc.assert(fc.property(arb, predicate), { seed: SEED, numRuns, includeErrorInReport: true });
  } catch (e) {
    const err = new Error(`property '${name}' failed with seed ${SEED} (rerun: COWLAB_SEED=${SEED} node --test dist/test/engine/)\n${(e as Error).message}`);
    throw err;
  }
}
