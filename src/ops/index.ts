// The operation registry: every kind of step, declared once (the files of this folder), and
// the tables the parser, the Runner, the explorer, the oracle and the generators read from it.
// How to add an operation: docs/architecture.md.

import { STEP_OPS, type StepOp } from '../scenario/ast.js';
import { readHandleOp, readOp, writeOp } from './access.js';
import { deviceAtomicOp, deviceExclusiveOp, deviceReadOp, deviceWriteOp } from './device.js';
import { expectExclusiveOp, expectFrameOp, expectMappedOp, expectStatOp } from './expect.js';
import { gupOp, pinOp, putOp, unpinOp, vmspliceOp } from './gup.js';
import { clearSoftdirtyOp, madviseOp, mmapOp, mprotectOp, mremapOp, munmapOp } from './memory.js';
import { exitOp, finishOp, forkOp, stepOp, threadOp } from './process.js';
import { checkOp, ksmMergeOp, statsOp, swapoutOp } from './system.js';
import { expectUffdWpOp, uffdOp } from './uffd.js';
import type { OpDecl, ProcessSyntax, RandomDraw, Syntax, SystemSyntax } from './types.js';

/** Every operation's declaration, by its op (the type makes one for each kind of Step). */
export const OPS: { readonly [O in StepOp]: OpDecl<O> } = {
  mmap: mmapOp,
  munmap: munmapOp,
  mprotect: mprotectOp,
  madvise: madviseOp,
  write: writeOp,
  read: readOp,
  fork: forkOp,
  exit: exitOp,
  pin: pinOp,
  gup: gupOp,
  vmsplice: vmspliceOp,
  'read-handle': readHandleOp,
  unpin: unpinOp,
  put: putOp,
  'clear-softdirty': clearSoftdirtyOp,
  'device-write': deviceWriteOp,
  'device-read': deviceReadOp,
  'device-exclusive': deviceExclusiveOp,
  'device-atomic': deviceAtomicOp,
  swapout: swapoutOp,
  'ksm-merge': ksmMergeOp,
  check: checkOp,
  'expect-frame': expectFrameOp,
  'expect-mapped': expectMappedOp,
  'expect-exclusive': expectExclusiveOp,
  'expect-stat': expectStatOp,
  stats: statsOp,
  thread: threadOp,
  step: stepOp,
  finish: finishOp,
  mremap: mremapOp,
  uffd: uffdOp,
  'expect-uffd-wp': expectUffdWpOp,
};

/** The declarations in STEP_OPS order (the order operations are listed in messages). */
export const DECLS: readonly OpDecl[] = STEP_OPS.map((op) => OPS[op] as OpDecl);

/** The declaration of an op (widened: its facets take any step). */
export function declOf(op: StepOp): OpDecl {
  return OPS[op] as OpDecl;
}

/** The syntaxes, one per line form (operations parsed by another's syntax have none of their own). */
const SYNTAXES: readonly { syntax: Syntax; decl: OpDecl }[] = DECLS.flatMap((d) => ('subject' in d.syntax ? [{ syntax: d.syntax, decl: d }] : []));

const unique = (xs: string[]): string[] => [...new Set(xs)];

/** The first words of process operations: v1 ones, or (v11) the v1.1 ones. */
export function processWords(v11: boolean): string[] {
  return unique(SYNTAXES.filter((s) => s.syntax.subject === 'process' && !!s.syntax.v11 === v11).map((s) => s.syntax.words[0]));
}

/** The first words of system operations. */
export function systemWords(): string[] {
  return unique(SYNTAXES.filter((s) => s.syntax.subject === 'system').map((s) => s.syntax.words[0]));
}

/** The second words after `first`. */
export function subWords(subject: 'process' | 'system', first: string): string[] {
  return SYNTAXES.filter((s) => s.syntax.subject === subject && s.syntax.words[0] === first && s.syntax.words.length > 1).map((s) => s.syntax.words[1]!);
}

/** The process words a trailing `&` may follow: those of operations with a `start` facet. */
export function asyncWords(): string[] {
  return unique(SYNTAXES.filter((s) => s.syntax.subject === 'process' && s.decl.start !== undefined).map((s) => s.syntax.words[0]));
}

function byFirstWord<S extends Syntax>(subject: S['subject']): Map<string, S[]> {
  const m = new Map<string, S[]>();
  for (const { syntax } of SYNTAXES) {
    if (syntax.subject !== subject) continue;
    const l = m.get(syntax.words[0]) ?? [];
    l.push(syntax as S);
    m.set(syntax.words[0], l);
  }
  return m;
}
const PROCESS_SYNTAX = byFirstWord<ProcessSyntax>('process');
const SYSTEM_SYNTAX = byFirstWord<SystemSyntax>('system');

/** The process syntaxes whose first word is `first` (none: not an operation). */
export function processSyntaxes(first: string): readonly ProcessSyntax[] {
  return PROCESS_SYNTAX.get(first) ?? [];
}

/** The system syntaxes whose first word is `first`. */
export function systemSyntaxes(first: string): readonly SystemSyntax[] {
  return SYSTEM_SYNTAX.get(first) ?? [];
}

const KEY_NOTES = DECLS.flatMap((d) => (d.keyNote ? [d.keyNote] : []));

/** The declared key note a note's text is (see OpDecl.keyNote), or undefined. */
export function keyNoteOf(why: string): NonNullable<OpDecl['keyNote']> | undefined {
  return KEY_NOTES.find((n) => why.startsWith(n.prefix));
}
/**
 * Orders of random draws left free on purpose: none since mremap took 20 (kept so that
 * a branch adding an operation can hold its number).
 */
export const RESERVED_ORDERS: readonly number[] = [];

/** The oracle's random draws, in their order. */
export const RANDOM_DRAWS: readonly RandomDraw[] = DECLS.flatMap((d) => d.random ?? []).sort((a, b) => a.order - b.order);
