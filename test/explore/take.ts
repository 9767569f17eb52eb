// The command of the model-based tests (model-based*.test.ts): the `pick`-th (modulo) enabled
// instance of one operation in the model's state. Each test file's subclass runs it on the model
// and on the naive model and compares; this is what they share.

import type fc from 'fast-check';
import type { Runner } from '../../src/engine/run.js';
import type { Step } from '../../src/scenario/ast.js';
import { decodeOp, enabledOps, OP_NAMES, type ExploreShape, type OpName } from '../../src/explore/ops.js';

export abstract class TakeCommand<Real extends object> implements fc.Command<object, Real> {
  /** The step it took in the last run (for the counterexample). */
  protected text = '';
  constructor(readonly name: OpName, readonly pick: number) {}

  check(): boolean {
    return true;
  }

  abstract run(m: object, real: Real): void;

  /** The packed operation it takes in state r (the text forgotten first), or -1: none of its kind is enabled. */
  protected opIn(r: Runner, shape: ExploreShape): number {
    this.text = '';
    const code = OP_NAMES.indexOf(this.name);
    const ops = enabledOps(r, shape).filter((op) => op >>> 24 === code);
    return ops.length === 0 ? -1 : ops[this.pick % ops.length]!;
  }

  /**
   * The operation it takes in state r, decoded on a copy of r (into `spare` if given) and not
   * stepped yet, its text noted; null: none of its kind is enabled.
   */
  protected prepare(r: Runner, shape: ExploreShape, spare?: Runner): { op: number; child: Runner; step: Step } | null {
    const op = this.opIn(r, shape);
    if (op < 0) return null;
    const child = r.clone(spare);
    const step = decodeOp(child, op);
    this.text = step.text;
    return { op, child, step };
  }

  toString(): string {
    return `take(${this.name}, ${this.pick})${this.text ? ` /* ${this.text} */` : ''}`;
  }
}
