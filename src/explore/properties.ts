// The properties a search checks, declared as model checkers declare them (TLC, stateright):
// each violation kind an `always` (no reachable state breaks it), each event the search can
// reach a `sometimes` (some reachable state shows it), reported as covered or not with the
// shortest depth. One result type for every engine and worker count: `ok` (the bound was
// searched completely and every `always` holds), `violation` (a counterexample), `bound` (the
// search stopped at a limit before completing and found nothing).

import { VIOLATION_KINDS } from '../scenario/ast.js';
import type { OpName } from './ops.js';
import type { Counterexample, SearchStats } from './search.js';

export type SearchOutcome = 'ok' | 'violation' | 'bound';

export interface PropertyReport {
  always: { name: string; holds: boolean; depth: number | null }[];
  sometimes: { name: string; covered: boolean; depth: number | null }[];
}

const PINS: readonly OpName[] = ['pin', 'pin-ro', 'pin-fast', 'pin-fast&'];
const FORKS: readonly OpName[] = ['fork', 'fork&', 'fork-cowpt'];
const HANDLES: readonly OpName[] = [...PINS, 'gup', 'vmsplice', 'device-exclusive'];

/** The `sometimes` properties: an event and what it needs among the operations (all of `needs`, each a list of which one suffices). */
export const SOMETIMES: readonly { name: string; needs: readonly (readonly OpName[])[] }[] = [
  { name: 'fork', needs: [FORKS] },
  { name: 'thread', needs: [['thread']] },
  { name: 'pin', needs: [PINS] },
  { name: 'gup', needs: [['gup']] },
  { name: 'vmsplice', needs: [['vmsplice']] },
  { name: 'device-exclusive', needs: [['device-exclusive']] },
  { name: 'cow-copy', needs: [FORKS] },
  { name: 'reuse', needs: [['write', 'write&']] },
  { name: 'early-cow', needs: [FORKS, PINS] },
  { name: 'shared-page-with-extra-reference', needs: [FORKS, HANDLES] },
];

/** The `always` properties: every violation kind an explorer state can show (`expect` needs a scenario's expectations). */
export const ALWAYS: readonly string[] = VIOLATION_KINDS.filter((k) => k !== 'expect');

export function searchOutcome(counterexamples: readonly Counterexample[], stats: SearchStats, depth: number): SearchOutcome {
  if (counterexamples.length > 0) return 'violation';
  return stats.stoppedBy !== null || stats.depthComplete < depth ? 'bound' : 'ok';
}

/**
 * The properties of a search: the `always` of the counted kinds (each broken at its shortest
 * counterexample's depth, or holding), the `sometimes` the operations can reach.
 */
export function propertyReport(ops: readonly OpName[], kinds: Set<string> | null, counterexamples: readonly Counterexample[], stats: SearchStats): PropertyReport {
  const broken = new Map<string, number>();
  for (const ce of counterexamples) {
    for (const v of ce.violations) if (!broken.has(v.kind) || broken.get(v.kind)! > ce.depth) broken.set(v.kind, ce.depth);
  }
  return {
    always: ALWAYS.filter((k) => kinds === null || kinds.has(k)).map((name) => ({ name, holds: !broken.has(name), depth: broken.get(name) ?? null })),
    sometimes: SOMETIMES.filter((s) => s.needs.every((any) => any.some((o) => ops.includes(o))))
      .map(({ name }) => ({ name, covered: name in stats.reached, depth: stats.reached[name] ?? null })),
  };
}
