// Shrinking a disagreeing scenario: delete chunks of steps (halving the chunk size down to one
// step) while the rest still makes a valid scenario that disagrees in the same way.

import type { GenLine } from './generate.js';

export function shrinkLines(lines: readonly GenLine[], stillFails: (candidate: GenLine[]) => boolean, maxTries = 400): GenLine[] {
  let cur = [...lines];
  let tries = 0;
  for (let chunk = Math.max(1, Math.floor(cur.length / 2)); chunk >= 1 && tries < maxTries; ) {
    let changed = false;
    // The first line maps the first region: every scenario needs it.
    for (let i = 1; i < cur.length && tries < maxTries; ) {
      const cand = [...cur.slice(0, i), ...cur.slice(i + chunk)];
      tries++;
      if (cand.length > 0 && stillFails(cand)) {
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
