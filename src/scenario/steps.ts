// The parser of the `steps` block: one operation a line, `#` comments, names resolved as
// they are met (see resolve.ts), every error with its file position. Hand-written,
// one token of look-ahead, linear in the size of the block.

import type {
  ForkStep,
  GupStep,
  HandleRef,
  PageSel,
  Pos,
  Prot,
  Advice,
  PinStep,
  ReadStep,
  StatOp,
  Step,
  Value,
  VmspliceStep,
  WriteStep,
} from './ast.js';
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

export const PROCESS_OPS = [
  'mmap',
  'munmap',
  'mprotect',
  'madvise',
  'write',
  'read',
  'fork',
  'exit',
  'pin',
  'gup',
  'vmsplice',
  'unpin',
  'put',
  'clear-softdirty',
] as const;
/** `P uffd ...`: what the monitor asks of userfaultfd (write-protect mode). */
export const UFFD_ACTIONS = ['register', 'protect', 'unprotect', 'fork-event'] as const;
/** v1.1: the process operations on threads and their asynchronous kernel paths. */
export const THREAD_OPS = ['thread', 'step', 'finish'] as const;
/** userfaultfd write-protect: `P uffd ...` (the monitor's requests). */
export const UFFD_OPS = ['uffd'] as const;
/** Every process operation (v1, v1.1, then userfaultfd). */
const ALL_PROCESS_OPS: readonly string[] = [...PROCESS_OPS, ...THREAD_OPS, ...UFFD_OPS];
/** v1.1: the process operations a trailing `&` may start as an asynchronous kernel path. */
export const ASYNC_OPS = ['write', 'fork', 'pin', 'gup', 'vmsplice'] as const;
export const SYSTEM_OPS = ['device', 'swapout', 'ksm', 'check', 'expect', 'stats'] as const;
export const DEVICE_OPS = ['write', 'read', 'exclusive', 'atomic'] as const;
export const PROTS: readonly Prot[] = ['rw', 'ro', 'none'];
export const ADVICES: readonly Advice[] = [
  'dontfork',
  'dofork',
  'wipeonfork',
  'keeponfork',
  'dontneed',
  'mergeable',
  'pageout',
];
export const STAT_NAMES = [
  'PageTables_kB',
  'AnonPages_kB',
  'rss.P',
  'minflt.P',
  'uffd_faults.P',
  'frames_used',
  'cow_copies',
  'pt_copies',
  'zero_page_refs',
] as const;
export const STAT_OPS: readonly StatOp[] = ['==', '!=', '<', '<=', '>', '>='];
export const EXPECTATIONS = [
  'same-frame',
  'other-frame',
  'mapped-once',
  'mapped-shared',
  'anon-exclusive',
  'not-anon-exclusive',
  'uffd-wp',
  'not-uffd-wp',
] as const;

/** The option words of each operation that takes options: at most one word of each group, in any order. */
export const OPTIONS = {
  mmap: [PROTS, ['private', 'shared'], ['populate'], ['thp', 'nothp']],
  fork: [['cowpt']],
  pin: [['rw', 'ro'], ['longterm', 'short'], ['fast']],
  gup: [['rw', 'ro'], ['fast']],
} as const satisfies Record<string, readonly (readonly string[])[]>;
/** What `expect` may follow a device atomic. */
export const ATOMIC_OUTCOMES = ['revoked', 'denied'] as const;

/** The largest region, in pages. */
export const MAX_REGION_PAGES = 1 << 30;

const PROC_RE = /^[A-Z][A-Za-z0-9]*$/;
const NAME_RE = /^[a-z][a-z0-9_]*$/;
const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const INT_RE = /^-?[0-9]+$/;
const NAT_RE = /^[0-9]+$/;

const PROC_NAME_RULE = 'an upper-case letter then letters or digits, like P or Q2';
const NAME_RULE = 'a lower-case letter then lower-case letters, digits or _';

interface Base {
  pos: Pos;
  text: string;
}

type AsyncStep = WriteStep | ForkStep | PinStep | GupStep | VmspliceStep;

const AMP_ONLY = `'&' (run the step as an asynchronous kernel path) is only for: ${ASYNC_OPS.join(', ')}`;

/**
 * Device I/O (DMA) goes through a pin: the kernel keeps a FOLL_PIN page coherent with its
 * process across fork (early COW, unshare); a FOLL_GET reference (`gup`, a pipe's buffer)
 * gets no such promise, so DMA through it is a driver's misuse, not a kernel behaviour.
 */
const deviceNeedsPin = (h: string, kind: HandleKind): string =>
  kind === 'gup' || kind === 'pipe'
    ? `DMA goes through pin_user_pages (FOLL_PIN); the kernel promises nothing across fork for DMA through a FOLL_GET reference (take '${h}' with 'pin ... short' or 'pin ... longterm')`
    : '';

const pages = (n: number): string => (n === 1 ? '1 page' : `${n} pages`);
const canonical = (digits: string): string => BigInt(digits).toString();

/** Parses the steps of one line; throws StepFail on the first error. */
class LineParser {
  private i = 0;
  /** v1.1: the trailing `&` of the line, taken out of `toks` (whose end token is then at its column). */
  private amp: Token | null = null;
  /** v1.1: the path this line starts (a step ending in `&`), once its thread is known. */
  private path: PendingPath | null = null;

  constructor(
    private toks: Token[],
    private readonly lineIdx: number,
    private readonly origin: StepOrigin,
    private readonly env: NameEnv,
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

  private at(t: Token): Pos {
    return this.origin(this.lineIdx, t.col);
  }

  private peek(): Token {
    return this.toks[this.i]!;
  }

  private next(): Token {
    const t = this.toks[this.i]!;
    if (t.kind !== 'end') this.i++;
    return t;
  }

  private fail(t: Token, message: string): never {
    throw new StepFail(this.at(t), message);
  }

  private show(t: Token): string {
    if (t.kind === 'end') return this.amp === null ? 'the end of the line' : "'&'";
    return `'${t.text}'`;
  }

  private isWord(t: Token, text: string): boolean {
    return t.kind === 'word' && t.text === text;
  }

  private isSym(t: Token, text: string): boolean {
    return t.kind === 'sym' && t.text === text;
  }

  /** Consumes the symbol or word `text`, else fails with `expected 'text' WHERE`. */
  private expectToken(text: string, where: string): Token {
    const t = this.next();
    if (t.text !== text || t.kind === 'end') this.fail(t, `expected '${text}' ${where}, got ${this.show(t)}`);
    return t;
  }

  private end(): void {
    const t = this.peek();
    if (t.kind !== 'end') this.fail(t, `expected the end of the step, got ${this.show(t)}`);
  }

  // ---- names and values

  private procTok(what: string): Token {
    const t = this.next();
    if (t.kind !== 'word' || !PROC_RE.test(t.text)) {
      this.fail(t, `expected ${what} (${PROC_NAME_RULE}), got ${this.show(t)}`);
    }
    return t;
  }

  private liveProc(what: string): ProcInfo {
    const t = this.procTok(what);
    return this.env.liveProc(t.text, this.at(t));
  }

  private nameTok(what: string): Token {
    const t = this.next();
    if (t.kind !== 'word') this.fail(t, `expected ${what}, got ${this.show(t)}`);
    if (!NAME_RE.test(t.text)) this.fail(t, `invalid name '${t.text}': expected ${what} (${NAME_RULE})`);
    return t;
  }

  /** A page index: an integer 0 or more. */
  private indexTok(): { tok: Token; n: number } {
    const t = this.next();
    if (t.kind !== 'num' || !NAT_RE.test(t.text)) {
      this.fail(t, `expected a page index (an integer 0 or more), got ${this.show(t)}`);
    }
    const n = Number(t.text);
    return { tok: t, n: Number.isSafeInteger(n) ? n : Number.MAX_SAFE_INTEGER };
  }

  private value(where: string): Value {
    const t = this.next();
    if (t.kind === 'num' && INT_RE.test(t.text)) return canonical(t.text);
    if (t.kind === 'word' && IDENT_RE.test(t.text)) return t.text;
    return this.fail(t, `expected a value (an integer, or an identifier like secret) ${where}, got ${this.show(t)}`);
  }

  private outOfRange(t: Token, what: string, size: number): never {
    return this.fail(t, `page ${canonical(t.text)} out of range: ${what} has ${pages(size)} (0..${size - 1})`);
  }

  /** `buf`, `buf[*]`, `buf[3]`, `buf[0..7]` (a range) or `buf[3]` only (single), resolved in p. */
  private sel(p: ProcInfo, single: string | null): PageSel {
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
  private handleRef(kinds: readonly HandleKind[], what: string, why: (h: string, kind: HandleKind) => string = () => ''): { ref: HandleRef; info: HandleInfo } {
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
  private options(op: string, groups: readonly (readonly string[])[]): (string | undefined)[] {
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
  private oneOf<T extends string>(words: readonly T[], what: string, where: string): T {
    const t = this.next();
    if (t.kind !== 'word') this.fail(t, `expected ${what} ${where} (one of: ${words.join(', ')}), got ${this.show(t)}`);
    if (!(words as readonly string[]).includes(t.text)) this.fail(t, unknownWord(what, t.text, words));
    return t.text as T;
  }

  private optionalExpectValue(what: string): Value | null {
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

  step(base: Base): Step {
    this.takeAmp();
    const t = this.next();
    if (t.kind === 'word' && PROC_RE.test(t.text)) return this.processStep(t, base);
    if (this.amp !== null && t.kind === 'word' && (SYSTEM_OPS as readonly string[]).includes(t.text)) {
      this.fail(this.amp, `${AMP_ONLY} (operations of a process); '${t.text}' is not one`);
    }
    switch (t.kind === 'word' ? t.text : '') {
      case 'device':
        return this.deviceStep(base);
      case 'swapout': {
        const p = this.liveProc("the process after 'swapout'");
        const sel = this.sel(p, null);
        this.end();
        return { op: 'swapout', ...base, proc: p.name, sel };
      }
      case 'ksm':
        this.expectToken('merge', "after 'ksm'");
        this.end();
        return { op: 'ksm-merge', ...base };
      case 'check':
        this.end();
        return { op: 'check', ...base };
      case 'stats':
        this.end();
        return { op: 'stats', ...base };
      case 'expect':
        return this.expectStep(base);
    }
    return this.badStart(t);
  }

  private badStart(t: Token): never {
    const starts = `a step is 'PROC OPERATION ...' with PROC ${PROC_NAME_RULE}, or starts with one of: ${SYSTEM_OPS.join(', ')}`;
    if (t.kind !== 'word') this.fail(t, `expected a process name or an operation, got ${this.show(t)} (${starts})`);
    const second = this.peek();
    if (second.kind === 'word' && ALL_PROCESS_OPS.includes(second.text)) {
      this.fail(t, `invalid process name '${t.text}' (${PROC_NAME_RULE})`);
    }
    if (ALL_PROCESS_OPS.includes(t.text)) {
      this.fail(t, `missing process before '${t.text}' (expected 'PROC ${t.text} ...', like 'P ${t.text} ...')`);
    }
    return this.fail(t, `${unknownWord('operation', t.text, SYSTEM_OPS)}; ${starts}`);
  }

  private processStep(pt: Token, base: Base): Step {
    const vt = this.next();
    if (vt.kind !== 'word') {
      this.fail(vt, `expected an operation after process '${pt.text}' (one of: ${PROCESS_OPS.join(', ')}), got ${this.show(vt)}`);
    }
    const verb = vt.text;
    if (!ALL_PROCESS_OPS.includes(verb)) {
      // The v1 message stays as it was, unless the likely typo is of a v1.1 operation.
      const near = closest(verb, ALL_PROCESS_OPS);
      const v11 = near !== null && ([...THREAD_OPS, ...UFFD_OPS] as readonly string[]).includes(near);
      this.fail(vt, unknownWord('operation', verb, v11 ? ALL_PROCESS_OPS : PROCESS_OPS));
    }
    const ppos = this.at(pt);
    const p = verb === 'mmap' ? this.env.mmapProc(pt.text, ppos) : this.env.liveProc(pt.text, ppos);
    // v1.1: a thread inside a kernel path started with '&' may only step or finish it.
    if (verb !== 'step' && verb !== 'finish') {
      const busy = this.env.busy(p);
      if (busy !== null) throw new StepFail(ppos, busy);
    }
    if (this.amp !== null) {
      if (!(ASYNC_OPS as readonly string[]).includes(verb)) this.fail(this.amp, `${AMP_ONLY}; '${verb}' is not one`);
      // Started now, so that a failing rest of the line does not make each later step of
      // this thread fail too; the child or handle is added once bound.
      this.path = this.env.startPath(p, base.text.slice(vt.col - pt.col), base.pos);
    }
    if (verb === 'mmap') return this.mmap(p, base);
    const proc = p.name;
    switch (verb as Exclude<(typeof PROCESS_OPS)[number] | (typeof THREAD_OPS)[number] | (typeof UFFD_OPS)[number], 'mmap'>) {
      case 'munmap': {
        const sel = this.sel(p, null);
        this.end();
        this.env.unmapRegion(p, sel.region, sel.lo, sel.hi);
        return { op: 'munmap', ...base, proc, sel };
      }
      case 'mprotect': {
        const sel = this.sel(p, null);
        const prot = this.oneOf(PROTS, 'protection', 'after the pages');
        this.end();
        return { op: 'mprotect', ...base, proc, sel, prot };
      }
      case 'madvise': {
        const sel = this.sel(p, null);
        const advice = this.oneOf(ADVICES, 'advice', 'after the pages');
        this.end();
        if (advice === 'dontfork' || advice === 'dofork') this.env.markDontfork(p, sel.region, sel.lo, sel.hi, advice === 'dontfork');
        return { op: 'madvise', ...base, proc, sel, advice };
      }
      case 'write': {
        const sel = this.sel(p, null);
        this.expectToken('=', 'after the page selector');
        const value = this.value("after '='");
        this.end();
        return this.async({ op: 'write', ...base, proc, sel, value });
      }
      case 'read':
        return this.read(p, base);
      case 'fork': {
        const ct = this.procTok("the child's process name after 'fork'");
        this.env.fork(p, ct.text, this.at(ct), this.path);
        const [cowpt] = this.options('fork', OPTIONS.fork);
        return this.async({ op: 'fork', ...base, proc, child: ct.text, cowpt: cowpt === 'cowpt' });
      }
      case 'exit':
        this.end();
        this.env.exit(p, base.pos);
        return { op: 'exit', ...base, proc };
      case 'pin': {
        const { sel, handle } = this.taking(p, 'pin', 'pin');
        const [prot, term, fast] = this.options('pin', OPTIONS.pin);
        return this.async({ op: 'pin', ...base, proc, sel, handle, write: prot !== 'ro', longterm: term !== 'short', fast: fast === 'fast' });
      }
      case 'gup': {
        const { sel, handle } = this.taking(p, 'gup', 'gup');
        const [prot, fast] = this.options('gup', OPTIONS.gup);
        return this.async({ op: 'gup', ...base, proc, sel, handle, write: prot !== 'ro', fast: fast === 'fast' });
      }
      case 'vmsplice': {
        const { sel, handle } = this.taking(p, 'vmsplice', 'pipe');
        this.end();
        return this.async({ op: 'vmsplice', ...base, proc, sel, handle });
      }
      case 'unpin':
      case 'put': {
        const how = verb as 'unpin' | 'put';
        const ht = this.nameTok(`the handle to ${how}`);
        this.env.release(ht.text, how, this.at(ht));
        this.end();
        return how === 'unpin' ? { op: 'unpin', ...base, proc, handle: ht.text } : { op: 'put', ...base, proc, handle: ht.text };
      }
      case 'clear-softdirty':
        this.end();
        return { op: 'clear-softdirty', ...base, proc };
      case 'uffd': {
        const action = this.oneOf(UFFD_ACTIONS, 'userfaultfd action', "after 'uffd'");
        if (action === 'fork-event') {
          const on = this.oneOf(['on', 'off'] as const, 'fork-event setting', "after 'fork-event'");
          this.end();
          return { op: 'uffd', ...base, proc, action, sel: null, on: on === 'on' };
        }
        const sel = this.sel(p, null);
        if (action === 'register') this.oneOf(['wp'] as const, 'register mode (only write-protect mode is modelled)', 'after the pages');
        this.end();
        return { op: 'uffd', ...base, proc, action, sel, on: false };
      }
      case 'thread': {
        const tt = this.procTok("the new thread's name after 'thread'");
        this.env.thread(p, tt.text, this.at(tt));
        this.end();
        return { op: 'thread', ...base, proc, thread: tt.text };
      }
      case 'step':
        this.env.pendingPath(p, 'step', this.at(vt));
        this.end();
        return { op: 'step', ...base, proc };
      case 'finish':
        this.env.pendingPath(p, 'finish', this.at(vt));
        // Finished before the end is checked, so that a typo after it does not leave the
        // thread inside its path for every later step.
        this.env.finishPath(p, base.pos);
        this.end();
        return { op: 'finish', ...base, proc };
    }
  }

  /** v1.1: marks a step the line started with a trailing `&` (the key is absent otherwise). */
  private async<S extends AsyncStep>(s: S): S {
    return this.amp === null ? s : { ...s, async: true };
  }

  private mmap(p: ProcInfo, base: Base): Step {
    const rt = this.nameTok("a region name after 'mmap'");
    const nt = this.next();
    const n = nt.kind === 'num' && NAT_RE.test(nt.text) ? Number(nt.text) : 0;
    if (!(n >= 1 && n <= MAX_REGION_PAGES)) {
      this.fail(nt, `expected the number of pages after the region name (an integer from 1 to ${MAX_REGION_PAGES}), got ${this.show(nt)}`);
    }
    this.env.bindRegion(p, rt.text, n, this.at(rt));
    const [prot, share, populate, thp] = this.options('mmap', OPTIONS.mmap);
    return {
      op: 'mmap',
      ...base,
      proc: p.name,
      region: rt.text,
      pages: n,
      prot: (prot ?? 'rw') as Prot,
      shared: share === 'shared',
      populate: populate === 'populate',
      thp: (thp ?? null) as 'thp' | 'nothp' | null,
    };
  }

  /** `SEL as NAME`, binding handle NAME. */
  private taking(p: ProcInfo, verb: string, kind: HandleKind): { sel: PageSel; handle: string } {
    const sel = this.sel(p, null);
    this.expectToken('as', `after the pages (${verb} ${sel.region}[RANGE] as NAME)`);
    const ht = this.nameTok("a handle name after 'as'");
    this.env.bindHandle(ht.text, kind, sel.hi - sel.lo + 1, p.name, this.at(ht), this.path);
    return { sel, handle: ht.text };
  }

  private read(p: ProcInfo, base: Base): Step {
    const xt = this.peek();
    if (xt.kind === 'word' && this.env.isHandle(xt.text)) {
      // A device-exclusive grant is held by the device, not by a process: no process reads through it.
      const { ref } = this.handleRef(['pin', 'gup', 'pipe'], 'a read through a handle', (h) =>
        `the device holds it (the device reads it with 'device read ${h}[0]'; the process reads its own page as a region)`);
      const expect = this.optionalExpectValue(`a read through handle '${ref.handle}'`);
      return { op: 'read-handle', ...base, proc: p.name, ref, expect };
    }
    if (xt.kind === 'word' && !p.regions.has(xt.text) && this.env.released.has(xt.text)) {
      this.fail(xt, this.env.missingHandle(xt.text));
    }
    const sel = this.sel(p, 'read');
    let expect: ReadStep['expect'] = null;
    const t = this.peek();
    if (t.kind !== 'end') {
      if (!this.isWord(t, 'expect')) this.fail(t, `expected 'expect' or the end of the step, got ${this.show(t)}`);
      this.next();
      if (this.isWord(this.peek(), 'fault')) {
        this.next();
        expect = { kind: 'fault' };
      } else {
        expect = { kind: 'value', value: this.value("or 'fault' after 'expect'") };
      }
      this.end();
    }
    return { op: 'read', ...base, proc: p.name, sel, expect };
  }

  private deviceStep(base: Base): Step {
    const sub = this.oneOf(DEVICE_OPS, 'device operation', "after 'device'");
    switch (sub) {
      case 'write': {
        const { ref } = this.handleRef(['pin'], 'device write', deviceNeedsPin);
        this.expectToken('=', 'after the handle page');
        const value = this.value("after '='");
        this.end();
        return { op: 'device-write', ...base, ref, value };
      }
      case 'read': {
        const { ref } = this.handleRef(['pin', 'exclusive'], 'device read', deviceNeedsPin);
        const expect = this.optionalExpectValue('a device read');
        return { op: 'device-read', ...base, ref, expect };
      }
      case 'exclusive': {
        const p = this.liveProc("the process after 'device exclusive'");
        const { sel, handle } = this.taking(p, 'device exclusive P', 'exclusive');
        this.end();
        return { op: 'device-exclusive', ...base, proc: p.name, sel, handle };
      }
      case 'atomic': {
        const { ref } = this.handleRef(['exclusive'], 'device atomic');
        this.expectToken('=', 'after the handle page');
        const value = this.value("after '='");
        let expect: 'revoked' | 'denied' | null = null;
        const t = this.peek();
        if (t.kind !== 'end') {
          if (!this.isWord(t, 'expect')) this.fail(t, `expected 'expect' or the end of the step, got ${this.show(t)}`);
          this.next();
          expect = this.oneOf(ATOMIC_OUTCOMES, 'atomic outcome', "after 'expect'");
          this.end();
        }
        return { op: 'device-atomic', ...base, ref, value, expect };
      }
    }
  }

  private expectStep(base: Base): Step {
    const t = this.peek();
    if (this.isWord(t, 'stat')) {
      this.next();
      return this.expectStat(base);
    }
    if (t.kind !== 'word' || !PROC_RE.test(t.text)) {
      this.fail(t, `expected 'stat' or a process name after 'expect' ('expect P buf[I] same-frame Q buf[J]', 'expect stat NAME OP NUMBER', ...), got ${this.show(t)}`);
    }
    const p = this.liveProc('a process');
    const sel = this.sel(p, 'expect');
    const what = this.oneOf(EXPECTATIONS, 'expectation', 'after the page');
    switch (what) {
      case 'same-frame':
      case 'other-frame': {
        const q = this.liveProc(`a process after '${what}'`);
        const otherSel = this.sel(q, 'expect');
        this.end();
        return { op: 'expect-frame', ...base, proc: p.name, sel, same: what === 'same-frame', otherProc: q.name, otherSel };
      }
      case 'mapped-once':
      case 'mapped-shared':
        this.end();
        return { op: 'expect-mapped', ...base, proc: p.name, sel, once: what === 'mapped-once' };
      case 'anon-exclusive':
      case 'not-anon-exclusive':
        this.end();
        return { op: 'expect-exclusive', ...base, proc: p.name, sel, exclusive: what === 'anon-exclusive' };
      case 'uffd-wp':
      case 'not-uffd-wp':
        this.end();
        return { op: 'expect-uffd-wp', ...base, proc: p.name, sel, wp: what === 'uffd-wp' };
    }
  }

  private expectStat(base: Base): Step {
    const nt = this.next();
    if (nt.kind !== 'word') this.fail(nt, `expected a counter after 'expect stat' (one of: ${STAT_NAMES.join(', ')}), got ${this.show(nt)}`);
    const stat = nt.text;
    let statProc: string | null = null;
    const dot = stat.indexOf('.');
    const prefix = dot < 0 ? '' : stat.slice(0, dot);
    if (prefix === 'rss' || prefix === 'minflt' || prefix === 'uffd_faults') {
      statProc = stat.slice(dot + 1);
      const ppos = this.origin(this.lineIdx, nt.col + dot + 1);
      if (!PROC_RE.test(statProc)) throw new StepFail(ppos, `expected a process name after '${prefix}.' (${PROC_NAME_RULE}), got '${statProc}'`);
      this.env.knownProc(statProc, ppos);
    } else if (!(STAT_NAMES as readonly string[]).includes(stat)) {
      this.fail(nt, unknownWord('counter', stat, STAT_NAMES));
    }
    const ot = this.next();
    if (ot.kind !== 'sym' || !(STAT_OPS as readonly string[]).includes(ot.text)) {
      const hint = this.isSym(ot, '=') ? "; did you mean '=='?" : '';
      this.fail(ot, `expected a comparison (one of: ${STAT_OPS.join(' ')}) after the counter, got ${this.show(ot)}${hint}`);
    }
    const num = this.next();
    const n = num.kind === 'num' && INT_RE.test(num.text) ? Number(num.text) : NaN;
    if (!Number.isSafeInteger(n)) this.fail(num, `expected an integer after '${ot.text}', got ${this.show(num)}`);
    this.end();
    return { op: 'expect-stat', ...base, stat, statProc, cmp: ot.text as StatOp, number: n };
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
      const base: Base = { pos: origin(i, lexed.start), text: lexed.text };
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
