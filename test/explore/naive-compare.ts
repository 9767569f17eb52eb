// What the model-based comparisons with the naive reference model share
// (model-based.test.ts, model-based-steps.test.ts): value names turned into the naive model's
// numbers, the one observation of a kind, and the tally of what the runs took.

import assert from 'node:assert/strict';

/** A value name the model observed -> the naive model's number (null: a fault; undefined: never written). */
export function valueOf(values: ReadonlyMap<string, number>, actual: string): number | null | undefined {
  return actual === 'fault' ? null : actual === '0' ? 0 : values.get(actual);
}

/** The naive model's number for a value name the explorer wrote (numbered in the order first seen). */
export function numberFor(values: Map<string, number>, name: string): number {
  if (!values.has(name)) values.set(name, values.size + 1);
  return values.get(name)!;
}

/** The one observation of a kind among those `keep` accepts (undefined: none). */
export function observedOnce<O extends { kind: string; actual: string }>(obs: readonly O[], kind: string, keep: (o: O) => boolean = () => true): string | undefined {
  const o = obs.filter((x) => x.kind === kind && keep(x));
  assert.ok(o.length <= 1, `more than one ${kind} observation`);
  return o[0]?.actual;
}

/** What the runs took (an operation, an outcome, a race), to check that the draws reach what they are for. */
export class Tally {
  readonly taken = new Map<string, number>();

  count(key: string, by = 1): void {
    this.taken.set(key, (this.taken.get(key) ?? 0) + by);
  }

  /** The counts taken from now on. */
  since(): (key: string) => number {
    const before = new Map(this.taken);
    return (key) => (this.taken.get(key) ?? 0) - (before.get(key) ?? 0);
  }
}
