// Errors of the scenario parser: each names the file, the line and the column, and says
// what was wrong and what was expected. They are values, not exceptions: no stack trace.

import type { Pos } from './ast.js';

/** The most errors one parse reports; the parser stops after this many. */
export const MAX_ERRORS = 20;

export class ScenarioError {
  constructor(
    readonly file: string,
    /** 1-based. */
    readonly line: number,
    /** 1-based. */
    readonly col: number,
    readonly message: string,
  ) {}

  static at(file: string, pos: Pos, message: string): ScenarioError {
    return new ScenarioError(file, pos.line, pos.col, message);
  }

  get pos(): Pos {
    return { line: this.line, col: this.col };
  }

  /** `FILE:LINE:COL: error: MESSAGE`. */
  format(): string {
    return `${this.file}:${this.line}:${this.col}: error: ${this.message}`;
  }

  toString(): string {
    return this.format();
  }
}

/** Orders errors by position in the file (stable for equal positions). */
export function byPosition(a: ScenarioError, b: ScenarioError): number {
  return a.line - b.line || a.col - b.col;
}

/**
 * Edit distance counting an insertion, a deletion, a substitution or the swap of two
 * neighbouring characters as one edit (optimal string alignment).
 */
export function editDistance(a: string, b: string): number {
  const n = a.length;
  const m = b.length;
  let prev2 = new Array<number>(m + 1).fill(0);
  let prev = Array.from({ length: m + 1 }, (_, j) => j);
  let cur = new Array<number>(m + 1).fill(0);
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, prev2[j - 2]! + 1);
      }
      cur[j] = d;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[m]!;
}

/** The candidate closest to `word` if it is close enough to be a likely typo, else null. */
export function closest(word: string, candidates: readonly string[]): string | null {
  const limit = word.length <= 3 ? 1 : 2;
  let best: string | null = null;
  let bestD = limit + 1;
  const lower = word.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best === word ? null : best;
}

/** `unknown WHAT 'word': did you mean 'x'? (expected one of: a, b, c)` */
export function unknownWord(what: string, word: string, candidates: readonly string[]): string {
  const guess = closest(word, candidates);
  const hint = guess === null ? '' : `: did you mean '${guess}'?`;
  return `unknown ${what} '${word}'${hint} (expected one of: ${candidates.join(', ')})`;
}
