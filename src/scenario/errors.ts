// Errors of the scenario parser: each names the file, the line and the column, and says
// what was wrong and what was expected. They are values, not exceptions: no stack trace.

import type { Pos } from './ast.js';

/** The most errors one parse reports; the parser stops after this many. */
export const MAX_ERRORS = 20;

/**
 * Characters a terminal may act on rather than show: C0 controls (ESC starts colour and
 * title sequences, CR overwrites a line), DEL, C1 controls (U+009B is a CSI on its own), the
 * bidirectional overrides and isolates, the Unicode line separators, and lone surrogates.
 */
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const NAMED: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * Text safe to print: every control character shown escaped (`\x1b`, `\r`, `\u009b`),
 * except those in `keep` (the output's own line breaks). The `\uXXXX` form is used past
 * U+001F, so that escaping JSON text keeps it valid JSON that parses to the same value.
 */
export function escapeControls(text: string, keep = ''): string {
  return text.replace(CONTROLS, (c) => {
    if (keep.includes(c)) return c;
    const n = c.charCodeAt(0);
    return NAMED[c] ?? (n < 0x20 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`);
  });
}

export class ScenarioError {
  /** What was wrong; the text it quotes from the file has its control characters escaped. */
  readonly message: string;
  /** The file as named; control characters escaped. */
  readonly file: string;

  constructor(
    file: string,
    /** 1-based. */
    readonly line: number,
    /** 1-based. */
    readonly col: number,
    message: string,
  ) {
    this.file = escapeControls(file);
    this.message = escapeControls(message);
  }

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
