// Shrinking a disagreeing scenario: delete chunks of steps (halving the chunk size down to one
// step) while the rest still makes a valid scenario that disagrees in the same way.

import type { GenLine } from './generate.js';

/**
 * The shrinking as a conversation: yields each candidate, is told (by `next(verdict)`) whether
 * it still fails, and returns the shrunk lines. A caller may stop asking at any point; the
 * last candidate it said fails is then the best so far.
 */
export function* shrinker(lines: readonly GenLine[], maxTries = 400): Generator<GenLine[], GenLine[], boolean> {
  let cur = [...lines];
  let tries = 0;
  for (let chunk = Math.max(1, Math.floor(cur.length / 2)); chunk >= 1 && tries < maxTries; ) {
    let changed = false;
    // The first line maps the first region: every scenario needs it.
    for (let i = 1; i < cur.length && tries < maxTries; ) {
      const cand = [...cur.slice(0, i), ...cur.slice(i + chunk)];
      tries++;
      if (cand.length > 0 && (yield cand)) {
        cur = cand;
        changed = true;
      } else {
        i += chunk;
      }
    }
    if (!changed) chunk = Math.floor(chunk / 2);
  }
  return cur;
}

export function shrinkLines(lines: readonly GenLine[], stillFails: (candidate: GenLine[]) => boolean, maxTries = 400): GenLine[] {
  const g = shrinker(lines, maxTries);
  for (let step = g.next(); ; ) {
    if (step.done) return step.value;
    step = g.next(stillFails(step.value));
  }
}
