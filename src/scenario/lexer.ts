// The lexer of one step line: words, numbers and the few symbols of the language.
// `#` starts a comment; spaces and tabs separate tokens. (`&` is v1.1: a trailing one
// starts an asynchronous kernel path.)

export type TokenKind = 'word' | 'num' | 'sym' | 'end';

export interface Token {
  kind: TokenKind;
  text: string;
  /** 0-based column in the line. */
  col: number;
}

export interface LexedLine {
  /** The tokens, then one `end` token (at the column just past the last character). */
  tokens: Token[];
  /** The line without comment and surrounding blanks. */
  text: string;
  /** 0-based column of the first non-blank character. */
  start: number;
}

export class LexError {
  constructor(
    /** 0-based column. */
    readonly col: number,
    readonly message: string,
  ) {}
}

const isWordStart = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isWordChar = (c: string): boolean => isWordStart(c) || isDigit(c) || c === '-';
const isBlank = (c: string): boolean => c === ' ' || c === '\t';

/** Splits a line into tokens; throws a LexError on a character the language does not use. */
export function lexLine(line: string): LexedLine {
  const tokens: Token[] = [];
  const n = line.length;
  let i = 0;
  let start = -1;
  let end = 0;
  while (i < n) {
    const c = line[i]!;
    if (isBlank(c)) {
      i++;
      continue;
    }
    if (c === '#') break;
    if (start < 0) start = i;
    const col = i;
    if (isWordStart(c)) {
      // A word: letters, digits, '_' and '-'; a '.' joins two words (`rss.P`).
      i++;
      for (;;) {
        while (i < n && isWordChar(line[i]!)) i++;
        if (i + 1 < n && line[i] === '.' && isWordStart(line[i + 1]!)) i++;
        else break;
      }
      tokens.push({ kind: 'word', text: line.slice(col, i), col });
    } else if (isDigit(c) || (c === '-' && i + 1 < n && isDigit(line[i + 1]!))) {
      // A number; letters glued to it stay in the token so the parser can name it whole.
      i++;
      while (i < n && (isWordChar(line[i]!) && line[i] !== '-')) i++;
      tokens.push({ kind: 'num', text: line.slice(col, i), col });
    } else {
      const two = line.slice(i, i + 2);
      if (two === '..' || two === '==' || two === '!=' || two === '<=' || two === '>=') {
        tokens.push({ kind: 'sym', text: two, col });
        i += 2;
      } else if (c === '[' || c === ']' || c === '*' || c === '=' || c === '<' || c === '>' || c === '&') {
        tokens.push({ kind: 'sym', text: c, col });
        i++;
      } else {
        // The whole character (an emoji is two UTF-16 units); ScenarioError escapes controls.
        throw new LexError(col, `unexpected character '${String.fromCodePoint(line.codePointAt(i)!)}'`);
      }
    }
    end = i;
  }
  if (start < 0) start = 0;
  tokens.push({ kind: 'end', text: '', col: end });
  return { tokens, text: line.slice(start, end), start };
}
