// The parser of the `steps` block: one operation a line, `#` comments, names resolved as
// they are met (see resolve.ts), every error with its file position. Hand-written,
// one token of look-ahead, linear in the size of the block.

import type { HandleRef, PageSel, Pos, Step, Value } from './ast.js';
import { MAX_ERRORS, ScenarioError, closest, unknownWord } from './errors.js';
import { LexError, lexLine, type Token } from './lexer.js';
import {
  NameEnv,
  StepFail,
  describeKind,
  type HandleInfo,
  type HandleKind,
  type PendingPath,
  type ProcInfo,
} from './resolve.js';
import { INT_RE, IDENT_RE, MAX_REGION_PAGES, NAME_RE, NAME_RULE, NAT_RE, PROC_NAME_RULE, PROC_RE } from './words.js';
import { asyncWords, processSyntaxes, processWords, subWords, systemSyntaxes, systemWords } from '../ops/index.js';
import type { ProcessSyntax, Syntax, SystemSyntax } from '../ops/types.js';

export {
  PROTS, ADVICES, STAT_NAMES, STAT_OPS, EXPECTATIONS, OPTIONS, ATOMIC_OUTCOMES, UFFD_ACTIONS, MAX_REGION_PAGES,
} from './words.js';

/**
 * Maps a place in the steps text to the file: `line` is the 0-based index of the line in
 * the text, `col` the 0-based column in that line; the result is 1-based.
 */
export type StepOrigin = (line: number, col: number) => Pos;

/** For a YAML block scalar: its first content line (1-based) and its indentation. */
export function blockOrigin(firstLine: number, indent: number): StepOrigin {
  return (line, col) => ({ line: firstLine + line, col: indent + col + 1 });
}

/** Every step at one place (for text that does not map line by line onto the file). */
export function fixedOrigin(pos: Pos): StepOrigin {
  return () => ({ line: pos.line, col: pos.col });
}

/** The words of process operations (v1), of v1.1 thread operations, of system operations (each's first word). */
export const PROCESS_OPS: readonly string[] = processWords(false);
/** Process operations added after v1: v1.1's on threads and their asynchronous kernel paths, and userfaultfd's `uffd`. */
export const THREAD_OPS: readonly string[] = processWords(true);
/** Every process operation (v1, then the later ones). */
const ALL_PROCESS_OPS: readonly string[] = [...PROCESS_OPS, ...THREAD_OPS];
/** v1.1: the process operations a trailing `&` may start as an asynchronous kernel path. */
export const ASYNC_OPS: readonly string[] = asyncWords();
export const SYSTEM_OPS: readonly string[] = systemWords();
/** The words after `device`. */
export const DEVICE_OPS: readonly string[] = subWords('system', 'device');

/** Where a step's line starts and its text: every step has them. */
export interface StepBase {
  pos: Pos;
  text: string;
}

/**
 * The message for `P WORD` where WORD is no process operation: every one the registry has
 * (v1 and later), and the system operations, which a step starts with instead of a process.
 */
function unknownProcessOp(verb: string): string {
  if (SYSTEM_OPS.includes(verb)) {
    return `'${verb}' is a system operation: its step starts with '${verb}', not with a process (the operations of a process: ${ALL_PROCESS_OPS.join(', ')})`;
  }
  return `${unknownWord('operation', verb, ALL_PROCESS_OPS)}; a step may also start with a system operation, without a process: ${SYSTEM_OPS.join(', ')}`;
}

const AMP_ONLY = `'&' (run the step as an asynchronous kernel path) is only for: ${ASYNC_OPS.join(', ')}`;

const pages = (n: number): string => (n === 1 ? '1 page' : `${n} pages`);
const canonical = (digits: string): string => BigInt(digits).toString();

/**
 * Parses the steps of one line; throws StepFail on the first error. The words that start a step
 * pick an operation's syntax (src/ops); its parse() reads the rest with the methods below.
 */
export class LineParser {
  private i = 0;
  /** v1.1: the trailing `&` of the line, taken out of `toks` (whose end token is then at its column). */
  private amp: Token | null = null;
  /** v1.1: the path this line starts (a step ending in `&`), once its thread is known. */
  path: PendingPath | null = null;
  /** The operation's word of a process step (after the process name). */
  verb: Token | null = null;

  constructor(
    private toks: Token[],
    readonly lineIdx: number,
    readonly origin: StepOrigin,
    readonly env: NameEnv,
  ) {}

  /**
   * v1.1: a `&` must be the last word of a step; a trailing one is taken out of the tokens
   * (and remembered), so the words before it parse as in v1.
   */
  private takeAmp(): void {
    const n = this.toks.length - 1; // the tokens before `end`
    for (let k = 0; k < n - 1; k++) {
      const t = this.toks[k]!;
      if (this.isSym(t, '&')) this.fail(t, "'&' must be the last word of the step, after every option (like 'P fork Q &')");
    }
    const last = this.toks[n - 1];
    if (n >= 2 && last !== undefined && this.isSym(last, '&')) {
      this.amp = last;
      this.toks = [...this.toks.slice(0, n - 1), { kind: 'end', text: '', col: last.col }];
    }
  }

  // ---- tokens

  at(t: Token): Pos {
    return this.origin(this.lineIdx, t.col);
  }

  peek(): Token {
    return this.toks[this.i]!;
  }

  next(): Token {
    const t = this.toks[this.i]!;
    if (t.kind !== 'end') this.i++;
    return t;
  }

  fail(t: Token, message: string): never {
    throw new StepFail(this.at(t), message);
  }

  show(t: Token): string {
    if (t.kind === 'end') return this.amp === null ? 'the end of the line' : "'&'";
    return `'${t.text}'`;
  }

  isWord(t: Token, text: string): boolean {
    return t.kind === 'word' && t.text === text;
  }

  isSym(t: Token, text: string): boolean {
    return t.kind === 'sym' && t.text === text;
  }

  /** Consumes the symbol or word `text`, else fails with `expected 'text' WHERE`. */
  expectToken(text: string, where: string): Token {
    const t = this.next();
    if (t.text !== text || t.kind === 'end') this.fail(t, `expected '${text}' ${where}, got ${this.show(t)}`);
    return t;
  }

  end(): void {
    const t = this.peek();
    if (t.kind !== 'end') this.fail(t, `expected the end of the step, got ${this.show(t)}`);
  }

  // ---- names and values

  procTok(what: string): Token {
    const t = this.next();
    if (t.kind !== 'word' || !PROC_RE.test(t.text)) {
      this.fail(t, `expected ${what} (${PROC_NAME_RULE}), got ${this.show(t)}`);
    }
    return t;
  }

  liveProc(what: string): ProcInfo {
    const t = this.procTok(what);
    return this.env.liveProc(t.text, this.at(t));
  }

  nameTok(what: string): Token {
    const t = this.next();
    if (t.kind !== 'word') this.fail(t, `expected ${what}, got ${this.show(t)}`);
    if (!NAME_RE.test(t.text)) this.fail(t, `invalid name '${t.text}': expected ${what} (${NAME_RULE})`);
    return t;
  }

  /** A page index: an integer 0 or more. */
  indexTok(): { tok: Token; n: number } {
    const t = this.next();
    if (t.kind !== 'num' || !NAT_RE.test(t.text)) {
      this.fail(t, `expected a page index (an integer 0 or more), got ${this.show(t)}`);
    }
    const n = Number(t.text);
    return { tok: t, n: Number.isSafeInteger(n) ? n : Number.MAX_SAFE_INTEGER };
  }

  /** A number of pages, from 1 to MAX_REGION_PAGES (`where`: after what, for the message). */
  pageCount(where: string): number {
    const nt = this.next();
    const n = nt.kind === 'num' && NAT_RE.test(nt.text) ? Number(nt.text) : 0;
    if (!(n >= 1 && n <= MAX_REGION_PAGES)) {
      this.fail(nt, `expected the number of pages ${where} (an integer from 1 to ${MAX_REGION_PAGES}), got ${this.show(nt)}`);
    }
    return n;
  }

  value(where: string): Value {
    const t = this.next();
    if (t.kind === 'num' && INT_RE.test(t.text)) return canonical(t.text);
    if (t.kind === 'word' && IDENT_RE.test(t.text)) return t.text;
    return this.fail(t, `expected a value (an integer, or an identifier like secret) ${where}, got ${this.show(t)}`);
  }

  outOfRange(t: Token, what: string, size: number): never {
    return this.fail(t, `page ${canonical(t.text)} out of range: ${what} has ${pages(size)} (0..${size - 1})`);
  }

  /** `buf`, `buf[*]`, `buf[3]`, `buf[0..7]` (a range) or `buf[3]` only (single), resolved in p. */
  sel(p: ProcInfo, single: string | null): PageSel {
    const rt = this.nameTok(single === null ? 'a region (buf, buf[2], buf[0..3] or buf[*])' : 'a region page (buf[0])');
    const pos = this.at(rt);
    const region = rt.text;
    const size = this.env.region(p, region, pos);
    const whole: PageSel = { region, all: true, lo: 0, hi: size - 1, pos };
    const open = this.peek();
    if (!this.isSym(open, '[')) {
      if (single !== null) {
        this.fail(open, `expected '[' and a page index after '${region}' (${single} takes one page, like ${region}[0]), got ${this.show(open)}`);
      }
      return whole;
    }
    this.next();
    const star = this.peek();
    if (this.isSym(star, '*')) {
      if (single !== null) this.fail(star, `expected a page index, not '*' (${single} takes one page)`);
      this.next();
      this.expectToken(']', "after '*'");
      return whole;
    }
    const lo = this.indexTok();
    let hi = lo;
    if (this.isSym(this.peek(), '..')) {
      const dots = this.next();
      if (single !== null) this.fail(dots, `expected ']', not a range (${single} takes one page)`);
      hi = this.indexTok();
    }
    this.expectToken(']', single === null ? "or '..' after the page index" : 'after the page index');
    const what = `'${region}'`;
    if (lo.n >= size) this.outOfRange(lo.tok, what, size);
    if (hi.n >= size) this.outOfRange(hi.tok, what, size);
    if (lo.n > hi.n) this.fail(lo.tok, `empty range ${lo.n}..${hi.n}: the first page is after the last`);
    return { region, all: false, lo: lo.n, hi: hi.n, pos };
  }

  /** `H[K]` on a live handle of one of `kinds` (any when null). */
  handleRef(kinds: readonly HandleKind[], what: string, why: (h: string, kind: HandleKind) => string = () => ''): { ref: HandleRef; info: HandleInfo } {
    const ht = this.nameTok('a handle page (h[0])');
    const pos = this.at(ht);
    const info = this.env.handle(ht.text, pos);
    if (!kinds.includes(info.kind)) {
      const need = kinds.map(describeKind).join(' or ');
      const hint = why(ht.text, info.kind);
      this.fail(ht, `${what} needs ${need}; '${ht.text}' is ${describeKind(info.kind)} (taken at line ${info.pos.line})${hint ? `: ${hint}` : ''}`);
    }
    const open = this.next();
    if (!this.isSym(open, '[')) {
      this.fail(open, `expected '[' and a page index after handle '${ht.text}' (like ${ht.text}[0]), got ${this.show(open)}`);
    }
    const k = this.indexTok();
    this.expectToken(']', 'after the page index (a handle page is one page)');
    if (k.n >= info.pages) this.outOfRange(k.tok, `handle '${ht.text}'`, info.pages);
    return { ref: { handle: ht.text, index: k.n, pos }, info };
  }

  /**
   * Option words in any order: one word at most from each group. Returns the word chosen
   * in each group (undefined when none).
   */
  options(op: string, groups: readonly (readonly string[])[]): (string | undefined)[] {
    const chosen: (string | undefined)[] = groups.map(() => undefined);
    const all = groups.flat();
    for (let t = this.peek(); t.kind !== 'end'; t = this.peek()) {
      this.next();
      if (t.kind !== 'word') this.fail(t, `expected an option of ${op} (one of: ${all.join(', ')}), got ${this.show(t)}`);
      const g = groups.findIndex((words) => words.includes(t.text));
      if (g < 0) this.fail(t, unknownWord(`option of ${op}`, t.text, all));
      const prev = chosen[g];
      if (prev === t.text) this.fail(t, `duplicate option '${t.text}'`);
      if (prev !== undefined) {
        this.fail(t, `conflicting options '${prev}' and '${t.text}' (give at most one of: ${groups[g]!.join(', ')})`);
      }
      chosen[g] = t.text;
    }
    return chosen;
  }

  /** A word from `words` (after `where`), with a did-you-mean when it is not one. */
  oneOf<T extends string>(words: readonly T[], what: string, where: string): T {
    const t = this.next();
    if (t.kind !== 'word') this.fail(t, `expected ${what} ${where} (one of: ${words.join(', ')}), got ${this.show(t)}`);
    if (!(words as readonly string[]).includes(t.text)) this.fail(t, unknownWord(what, t.text, words));
    return t.text as T;
  }

  optionalExpectValue(what: string): Value | null {
    const t = this.peek();
    if (t.kind === 'end') return null;
    if (!this.isWord(t, 'expect')) this.fail(t, `expected 'expect' or the end of the step, got ${this.show(t)}`);
    this.next();
    const v = this.peek();
    if (this.isWord(v, 'fault')) {
      this.fail(v, `'expect fault' is only for a CPU read of a region; ${what} gives a value`);
    }
    const value = this.value("after 'expect'");
    this.end();
    return value;
  }

  // ---- steps

  step(base: StepBase): Step {
    this.takeAmp();
    const t = this.next();
    if (t.kind === 'word' && PROC_RE.test(t.text)) return this.processStep(t, base);
    if (this.amp !== null && t.kind === 'word' && SYSTEM_OPS.includes(t.text)) {
      this.fail(this.amp, `${AMP_ONLY} (operations of a process); '${t.text}' is not one`);
    }
    if (t.kind === 'word' && SYSTEM_OPS.includes(t.text)) {
      const syn = this.syntaxAfter(systemSyntaxes(t.text), t.text) as SystemSyntax;
      return syn.parse(this, base);
    }
    return this.badStart(t);
  }

  /** The syntax among those that start with `first`: by the second word when they have one. */
  private syntaxAfter(syns: readonly Syntax[], first: string): Syntax {
    if (syns.length === 1 && syns[0]!.words.length === 1) return syns[0]!;
    const seconds = syns.map((x) => x.words[1]!);
    if (seconds.length === 1) {
      this.expectToken(seconds[0]!, `after '${first}'`);
      return syns[0]!;
    }
    const w = this.oneOf(seconds, `${first} operation`, `after '${first}'`);
    return syns[seconds.indexOf(w)]!;
  }

  private badStart(t: Token): never {
    const starts = `a step is 'PROC OPERATION ...' with PROC ${PROC_NAME_RULE}, and OPERATION one of: ${ALL_PROCESS_OPS.join(', ')}; or it starts with a system operation: ${SYSTEM_OPS.join(', ')}`;
    if (t.kind !== 'word') this.fail(t, `expected a process name or an operation, got ${this.show(t)} (${starts})`);
    const second = this.peek();
    if (second.kind === 'word' && ALL_PROCESS_OPS.includes(second.text)) {
      this.fail(t, `invalid process name '${t.text}' (${PROC_NAME_RULE})`);
    }
    if (ALL_PROCESS_OPS.includes(t.text)) {
      this.fail(t, `missing process before '${t.text}' (expected 'PROC ${t.text} ...', like 'P ${t.text} ...')`);
    }
    // A likely typo of a process operation is shown with the process it needs.
    const guess = closest(t.text, [...SYSTEM_OPS, ...ALL_PROCESS_OPS]);
    const hint = guess === null ? '' : SYSTEM_OPS.includes(guess) ? `: did you mean '${guess}'?` : `: did you mean 'P ${guess} ...' (a process first)?`;
    return this.fail(t, `unknown operation '${t.text}'${hint} (${starts})`);
  }

  private processStep(pt: Token, base: StepBase): Step {
    const vt = this.next();
    if (vt.kind !== 'word') {
      this.fail(vt, `expected an operation after process '${pt.text}' (one of: ${ALL_PROCESS_OPS.join(', ')}), got ${this.show(vt)}`);
    }
    const verb = vt.text;
    this.verb = vt;
    if (!ALL_PROCESS_OPS.includes(verb)) this.fail(vt, unknownProcessOp(verb));
    const syns = processSyntaxes(verb);
    const ppos = this.at(pt);
    const p = syns[0]!.creates ? this.env.mmapProc(pt.text, ppos) : this.env.liveProc(pt.text, ppos);
    // v1.1: a thread inside a kernel path started with '&' may only step or finish it.
    if (!syns[0]!.whileBusy) {
      const busy = this.env.busy(p);
      if (busy !== null) throw new StepFail(ppos, busy);
    }
    if (this.amp !== null) {
      if (!ASYNC_OPS.includes(verb)) this.fail(this.amp, `${AMP_ONLY}; '${verb}' is not one`);
      // Started now, so that a failing rest of the line does not make each later step of
      // this thread fail too; the child or handle is added once bound.
      this.path = this.env.startPath(p, base.text.slice(vt.col - pt.col), base.pos);
    }
    const syn = this.syntaxAfter(syns, verb) as ProcessSyntax;
    return syn.parse(this, base, p);
  }

  /** v1.1: marks a step the line started with a trailing `&` (the key is absent otherwise). */
  async<S extends Step>(s: S): S {
    return this.amp === null ? s : { ...s, async: true };
  }

  /** `SEL as NAME`, binding handle NAME. */
  taking(p: ProcInfo, verb: string, kind: HandleKind): { sel: PageSel; handle: string } {
    const sel = this.sel(p, null);
    this.expectToken('as', `after the pages (${verb} ${sel.region}[RANGE] as NAME)`);
    const ht = this.nameTok("a handle name after 'as'");
    this.env.bindHandle(ht.text, kind, sel.hi - sel.lo + 1, p.name, this.at(ht), this.path);
    return { sel, handle: ht.text };
  }

  /** `expect fault` or `expect VALUE` or nothing, then the end of the step. */
  optionalExpect<W extends string>(words: readonly W[], what: string, where: string): W | null {
    const t = this.peek();
    if (t.kind === 'end') return null;
    if (!this.isWord(t, 'expect')) this.fail(t, `expected 'expect' or the end of the step, got ${this.show(t)}`);
    this.next();
    const w = this.oneOf(words, what, where);
    this.end();
    return w;
  }
}

export interface StepsResult {
  steps: Step[];
  /** In line order; at most MAX_ERRORS, then one saying the parser stopped. */
  errors: ScenarioError[];
}

/**
 * Parses the `steps` text of a scenario. `origin` maps places in `text` to the file;
 * `env` holds the names live before the first line (a fresh one by default) and is
 * updated as the steps are read, so a caller may continue with more steps.
 */
export function parseSteps(text: string, file: string, origin: StepOrigin, env: NameEnv = new NameEnv()): StepsResult {
  const steps: Step[] = [];
  const errors: ScenarioError[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    let err: ScenarioError;
    try {
      const lexed = lexLine(line);
      if (lexed.tokens.length === 1) continue;
      const base: StepBase = { pos: origin(i, lexed.start), text: lexed.text };
      steps.push(new LineParser(lexed.tokens, i, origin, env).step(base));
      continue;
    } catch (e) {
      if (e instanceof StepFail) err = ScenarioError.at(file, e.pos, e.message);
      else if (e instanceof LexError) err = ScenarioError.at(file, origin(i, e.col), e.message);
      else throw e;
    }
    if (errors.length >= MAX_ERRORS) {
      errors.push(ScenarioError.at(file, err.pos, `too many errors; stopped after ${MAX_ERRORS}`));
      break;
    }
    errors.push(err);
  }
  return { steps, errors };
}
