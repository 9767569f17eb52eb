// What an operation of the scenario language declares (one `OpDecl` per kind of step, in the
// files of this folder; index.ts gathers them). Every place that handles operations reads its
// facet here: the parser (syntax), the Runner (run, start, observing), the explorer (explore),
// the live replay and the exported C reproducer (replay, exportC), the web page (explain), the
// fuzz campaign (fuzz) and the oracle's random scenarios (random).
//
// The facets that act on another module's state take an interface declared below (Replayer,
// CWriter, FuzzWriter, RandomGen), which that module implements: this folder imports nothing
// of theirs but types, so the web bundle, which parses scenarios, pulls in no Node-only module.

import type { Feature } from '../core/profile.js';
import type { Task } from '../core/tasks.js';
import type { Handle, Kernel } from '../core/kernel.js';
import type { Proc, Region, RunState } from '../engine/state.js';
import type { PageSel, Pos, Step, StepOp } from '../scenario/ast.js';
import type { ProcInfo } from '../scenario/resolve.js';
import type { LineParser, StepBase } from '../scenario/steps.js';

export type StepOf<O extends StepOp> = Extract<Step, { op: O }>;

// ---- syntax -------------------------------------------------------------------------------------

/** `P WORDS ...`: an operation of a process (or thread). */
export interface ProcessSyntax {
  subject: 'process';
  /** The operation's word after the process name; a second word when several share the first (`P uffd register`). */
  words: readonly [string] | readonly [string, string];
  /** A word added after v1 (v1.1's thread words, `uffd`): a typo is only matched against it when it is the nearest (v1 messages stay as they were). */
  v11?: boolean;
  /** The process may not exist yet (the first `mmap` creates it). */
  creates?: boolean;
  /** Allowed while the thread's own `&` path is pending (`step`, `finish`). */
  whileBusy?: boolean;
  /** The rest of the line, after the words; `p` is the process, resolved. */
  parse(c: LineParser, base: StepBase, p: ProcInfo): Step;
}

/** `WORDS ...`: an operation of the system (a device, reclaim, ksmd, a check). */
export interface SystemSyntax {
  subject: 'system';
  /** The first word; a second word when several share the first (`device write`, `ksm merge`). */
  words: readonly [string] | readonly [string, string];
  parse(c: LineParser, base: StepBase): Step;
}

export type Syntax = ProcessSyntax | SystemSyntax;

// ---- the explorer -------------------------------------------------------------------------------

/**
 * Which instances of an explorer operation a state has (src/ops/explore.ts enumerates them).
 *
 * `noop`: an instance the kernel function returns from changing nothing, told by the predicate
 * that function uses (exported from src/core, never a copy of its rule). Its transition would
 * return to the state it left and report nothing, so the search does not make it: only when no
 * thread has a kernel path in progress (the step would run it to its end first: waitForMmapLock)
 * and not from the start state (whose own events no transition has reported yet).
 */
export type ExploreOn =
  /**
   * Each page of the first region (in name order) of each thread free to start an operation,
   * `variants` times; with `when`, only the pages (vpn) of threads it accepts.
   */
  | { kind: 'page'; variants?: number; takesHandle?: boolean; when?(p: Proc, vpn: number): boolean; noop?(k: Kernel, p: Proc, vpn: number, variant: number): boolean }
  /** Each thread free to start an operation; with `when`, only those it accepts. `region`: its first region (in name order). */
  | { kind: 'proc'; when?(p: Proc): boolean; noop?(k: Kernel, p: Proc, region: Region): boolean }
  /** Each free thread, while fewer processes than --procs live. */
  | { kind: 'fork' }
  /** Each free thread, while its process has fewer threads than --threads. */
  | { kind: 'thread' }
  /** Each thread with a kernel path in progress. */
  | { kind: 'pending' }
  /** Once. */
  | { kind: 'once'; noop?(k: Kernel): boolean }
  /** Each live handle `accepts` takes. */
  | { kind: 'handle'; accepts(h: Handle): boolean };

/** What decoding one instance knows: the thread, its page, the handle, and fresh names. */
export interface ExploreArgs {
  /** The decoded step's position (the explorer's steps come from no file). */
  pos: Pos;
  proc: string;
  sel: PageSel;
  /** `sel` as text: `buf[0]`. */
  readonly at: string;
  /** How many pages the region of `sel` has. */
  regionPages: number;
  /** The handle (handle operations). */
  handle: string;
  /** Which variant (`page` operations with variants). */
  extra: number;
  /** A handle name not in use. */
  newHandle(): string;
  /** A process or thread name not in use. */
  newProc(): string;
  /** A region name the thread's process does not use: the explored region's, with `_m1`, `_m2`, ... */
  newRegion(): string;
  /** A fresh value, named with this prefix. */
  fresh(prefix: string): string;
}

export interface ExploreOp {
  /** The name `explore --ops` takes. */
  name: string;
  /**
   * Its packed code (0-255). Codes are 0, 1, 2, ... with no gap but RESERVED_CODES (src/ops/explore.ts);
   * a new operation takes the next free one (search paths store codes).
   */
  code: number;
  /** Part of the default --ops. */
  default?: boolean;
  /** A part of the kernel its step needs: not tried on a profile without it (every transition would be n/a). */
  needs?: Feature;
  on: ExploreOn;
  /**
   * The step: a new object, with pos `a.pos` and text '' (decodeOp sets the text when asked for
   * it): in the literal, not added to it after (one more property on objects of many shapes is a
   * map transition, per transition of the search).
   */
  decode(a: ExploreArgs): Record<string, unknown>;
  /**
   * The step's text, as a scenario line, from the arguments decode had and the step it made: made
   * only when it is read (a counterexample's lines, a replay, a traced run), not per transition.
   */
  text(a: ExploreArgs, step: Readonly<Record<string, unknown>>): string;
}

// ---- the live replay and the exported reproducer -------------------------------------------------

/** The live replay (src/oracle/replay.ts implements it): each method replays one kind of step. */
export interface Replayer {
  mmap(step: StepOf<'mmap'>): void;
  /** munmap, mprotect, madvise: one call on a range. */
  rangeOp(step: StepOf<'munmap' | 'mprotect' | 'madvise'>): void;
  /** mremap(MREMAP_MAYMOVE|MREMAP_FIXED) of the pages to the range the model picks for the new region. */
  mremap(step: StepOf<'mremap'>): void;
  write(proc: string, sel: PageSel, value: string): void;
  read(step: StepOf<'read'>): void;
  fork(proc: string, child: string, cowpt: boolean): void;
  exit(step: StepOf<'exit'>): void;
  thread(step: StepOf<'thread'>): void;
  /** Take a lasting handle: a longterm pin through io_uring (ring) or a pipe's references (vmsplice). */
  take(proc: string, sel: PageSel, handle: string, kind: 'ring' | 'pipe'): void;
  /**
   * A handle this run cannot take (why): its later steps are skipped. Whether the model holds it
   * the replay reads from the model's own answer (its GUP may have failed too).
   */
  missingHandle(proc: string, sel: PageSel, handle: string, verb: string, line: number, writable: boolean, why: string): void;
  /** Why io_uring cannot pin here, or null when it can. */
  noUring(): string | null;
  /**
   * Whether a page of sel is one the userfaultfd monitor protected (pagemap's PM_UFFD_WP, in a
   * process with a userfaultfd context): a slow pin_user_pages() fails there (EFAULT), which
   * io_uring's pin does not stand for (SLOW_PIN_UFFD in gup.ts).
   */
  slowPinRefused(proc: string, sel: PageSel): boolean;
  /** A read through a handle: by a process, or by the device (reader null). */
  handleRead(name: string, i: number, reader: string | null): void;
  deviceWrite(step: StepOf<'device-write'>): void;
  deviceExclusive(step: StepOf<'device-exclusive'>): void;
  release(name: string): void;
  clearSoftdirty(step: StepOf<'clear-softdirty'>): void;
  /** An `expect` line: what the kernel shows of it. */
  expect(step: StepOf<'expect-frame' | 'expect-mapped' | 'expect-exclusive' | 'expect-stat' | 'expect-uffd-wp'>): void;
  /** A userfaultfd request of the scenario's monitor (`P uffd ...`). */
  uffd(step: StepOf<'uffd'>): void;
  swapout(proc: string, sel: PageSel): void;
  ksmMerge(): void;
  /** An operation the live kernel cannot perform (system-ops.ts says why and what it costs). */
  notReplayed(op: string): void;
  /** Whether a scenario name is alive here. */
  isLive(name: string): boolean;
}

/** One step of the exported C reproducer: the call, and why it is skipped outright (or null). */
export interface CStep {
  code: string;
  skipped: string | null;
}

/** What the exporter (src/export/export.ts) gives a declaration to write its C call with. */
export interface CWriter {
  /** The C symbol of a process, a region, a handle. */
  proc(name: string): string;
  region(sel: PageSel): string;
  regionName(name: string): string;
  handle(name: string): string;
  /** A value as a C literal, with its name in a comment. */
  value(v: string): string;
  /** A C string literal. */
  str(s: string): string;
  /** A page selector as the replay names it: `buf[0..3]`, or page i. */
  label(sel: PageSel, i?: number): string;
  /** PROT_* of a protection; the helper's mmap protection number; MADV_* of an advice. */
  prot(p: string): string;
  mmapProt(p: string): number;
  advice(a: string): string;
  /** An operation the live kernel cannot perform (system-ops.ts): `rp_not_replayed(...)`. */
  notReplayed(op: string): CStep;
  /** system-ops.ts's entry of an operation: the reason, what the model did, the mask of what is lost. */
  system(op: string): { reason: string; did: string; mask: string };
}

// ---- generators -----------------------------------------------------------------------------------

/** One fuzz step's choices (test/fuzz): indices and flags to pick names, pages and words. */
export interface FuzzChoice {
  op: StepOp;
  a: number;
  b: number;
  c: number;
  d: number;
  /** Option words and variants, a bit field. */
  f: number;
  /** Start it as an asynchronous kernel path (`&`) where the operation allows one. */
  amp: boolean;
}

export interface FuzzRegion {
  name: string;
  pages: number;
}

export interface FuzzProc {
  name: string;
  alive: boolean;
  /** The region table: shared by the threads of a process, copied at fork. */
  regions: FuzzRegion[];
  /** The kernel path it started with `&` and has not finished: the child or handle it makes. */
  pending: { child: FuzzProc | null; handle: FuzzHandle | null } | null;
  /** Created by a `fork ... &` not finished yet: not usable. */
  forking: boolean;
}

export interface FuzzHandle {
  name: string;
  kind: 'pin' | 'gup' | 'pipe' | 'exclusive';
  pages: number;
  /** Being taken by a path not finished yet: not usable. */
  pending: boolean;
}

/** The fuzz campaign's writer (test/fuzz/generate.ts): the names that exist while the text is written. */
export interface FuzzWriter {
  procs: FuzzProc[];
  handles: FuzzHandle[];
  readonly maxProcs: number;
  readonly maxRegions: number;
  /** Live threads that may start an operation (no path pending, not being forked). */
  free(): FuzzProc[];
  /** Live ones a system operation may name. */
  named(): FuzzProc[];
  /** A free thread by index, or null. */
  pick(i: number): FuzzProc | null;
  usable(kinds: readonly FuzzHandle['kind'][]): FuzzHandle[];
  value(i: number): string;
  region(p: FuzzProc, i: number): FuzzRegion | null;
  /** A page selector of region r: `r`, `r[*]`, `r[i]` or `r[lo..hi]`, by f. */
  sel(r: FuzzRegion, i: number, j: number, f: number): { text: string; pages: number };
  page(r: FuzzRegion, i: number): string;
  /** Option words: each group taken or not (by bits of f), in an order f picks too. */
  options(groups: readonly (readonly string[])[], f: number, skip?: (w: string, f: number) => boolean): string;
  newProcName(thread: boolean): string;
  newRegionName(): string;
  /** `&` at the end when the choice says so (the thread's path then makes the child or handle). */
  amp(p: FuzzProc, c: FuzzChoice, text: string, made?: { child?: FuzzProc; handle?: FuzzHandle }): string;
  /** A step taking a handle of `kind` on a selector of a free thread. */
  taking(c: FuzzChoice, kind: FuzzHandle['kind'], verb: (p: FuzzProc, sel: string, h: string) => string): string | null;
  /** `P unpin H` / `P put H` on a usable handle of one of `kinds`. */
  release(c: FuzzChoice, verb: string, kinds: FuzzHandle['kind'][]): string | null;
  /** `expect P PAGE WORD [Q PAGE]` with one of `words`. */
  expectPage(c: FuzzChoice, words: readonly string[], other: boolean): string | null;
}

/** One kind of line the oracle's random generator draws (src/oracle/random/generate.ts). */
export interface RandomDraw {
  /** The name `oracle --random --ops` takes. */
  name: string;
  /** Its place in the list of names (the order lines are drawn in does not depend on it). */
  order: number;
  /** How often it is drawn, relative to the others. */
  weight: number;
  /** Writes the line for thread p, or returns false when it does not apply now. */
  draw(g: RandomGen, p: RandomProc): boolean;
  /** It applies to hugetlb pages too (else `sel` never picks the hugetlb region for it): docs/scenario-language.md, "hugetlb". */
  hugetlb?: boolean;
  /** Lines it writes once, after the set-up (P's mappings, written), when it is drawn at all. */
  setup?(g: RandomGen): void;
}

/** What the random generator knows of one page of one process (see generate.ts). */
export interface RandomPage {
  shared: boolean;
  mapped: boolean;
  prot: 'rw' | 'ro' | 'none';
  content: 'none' | 'zero' | 'data';
  dontfork: boolean;
  wipe: boolean;
  frame: number;
  value: number | null;
  mergeable: boolean;
  ksm: boolean;
  swapped: boolean;
  /** A page of the 2 MiB-aligned `thp` region (MADV_HUGEPAGE): a THP may back it. */
  huge?: boolean;
  /** A page of the `hugetlb` region (MAP_HUGETLB, 2 MiB pages from the pool). */
  hugetlb?: boolean;
}

export interface RandomProc {
  name: string;
  alive: boolean;
  regions: Map<string, RandomPage[]>;
  /** Regions registered with userfaultfd in write-protect mode (the monitor may protect them). */
  uffd: Set<string>;
  /** Its userfaultfd context asked for the fork event (a child's registrations stay). */
  uffdForkEvent: boolean;
  /** Its fork may have failed (an early COW of a pinned hugetlb page with the pool empty). */
  mayNotExist?: boolean;
}

export interface RandomHandle {
  name: string;
  kind: 'pin' | 'pipe';
  holder: string;
  pages: number;
  frames: number[];
}

/** What the model's answer fills into a line. */
export type Fill = 'none' | 'read' | 'frame' | 'mapped' | 'exclusive' | 'stat' | 'uffd-wp';

/** The random generator's state and helpers (src/oracle/random/generate.ts implements it). */
export interface RandomGen {
  rng(): number;
  /** A known model gap to steer clear of (docs/oracle.md). */
  avoids(gap: string): boolean;
  procs: RandomProc[];
  handles: RandomHandle[];
  /** Most processes this scenario has (forks are planned). */
  readonly maxProcs: number;
  /** A fork kept being refused: give up on it. */
  readonly tired: boolean;
  /** The live processes. */
  live(): RandomProc[];
  add(text: string, fill?: Fill): void;
  nextValue(): number;
  nextHandle(kind: 'pin' | 'pipe'): string;
  /** A region name not in use yet (`m1`, `m2`, ...). */
  nextRegion(): string;
  /** A page selector of p: its text and the pages it covers (a hugetlb region only for a draw that applies to it). */
  sel(p: RandomProc, single: boolean): { text: string; pages: RandomPage[] };
  /** The selector widened to its whole region when it covers hugetlb pages (hugetlb is changed by whole huge pages only). */
  wholeHugetlb(p: RandomProc, s: { text: string; pages: RandomPage[] }): { text: string; pages: RandomPage[] };
  /** A CPU write or a write GUP: false when a page faults (see generate.ts). */
  written(pages: RandomPage[], value: number | null): boolean;
  readFault(g: RandomPage): void;
  /** How many live mappings a frame has. */
  refs(frame: number): number;
  /** The frames handles (of a kind) hold. */
  held(kind?: 'pin' | 'pipe'): Set<number>;
  livePages(): RandomPage[];
  /** A fresh frame number. */
  fresh(): number;
  /** The pages a fork gives the child. */
  forkPages(pages: RandomPage[], pinned: Set<number>): RandomPage[];
  /** A page emptied (munmap, dontneed). */
  readonly empty: Pick<RandomPage, 'content' | 'frame' | 'value' | 'ksm' | 'swapped'>;
  /** KSM: some mapping was marked mergeable; merge (check: only see whether the order would show). */
  mergeable: boolean;
  ksmMerge(check: boolean): boolean;
  pickOf<T>(xs: readonly T[]): T;
  intIn(lo: number, hi: number): number;
}

/** A name a step creates: a handle (with its holder), or a child process (with its parent). */
export type Creates =
  | { kind: 'handle'; name: string; holder: string; async: boolean }
  | { kind: 'child'; name: string; parent: string; async: boolean };

// ---- the declaration ---------------------------------------------------------------------------------

export interface OpDecl<O extends StepOp = StepOp> {
  op: O;
  /** Grammar: how its line parses; or the operation whose syntax also produces this one. */
  syntax: Syntax | { sameAs: StepOp };
  /** Semantics: the step on the model and the ideal memory (src/engine). */
  run(s: RunState, step: StepOf<O>): void;
  /** `&`: the kernel path as a task of atomic steps. An operation may end with `&` if and only if it has this. */
  start?(s: RunState, p: Proc, step: StepOf<O>): Task;
  /** It only looks at the model (`run --trace` records no change for it). */
  observing?: boolean;
  /** The handle or the child process it creates (the web page follows it before the Runner names it). */
  creates?(step: StepOf<O>): Creates;
  /** How the explorer enumerates it (none: the explorer does not try it). */
  explore?: readonly ExploreOp[];
  /** How the oracle replays it on the live kernel. */
  replay(o: Replayer, step: StepOf<O>): void;
  /** The C call of the exported reproducer (mirrors `replay`). */
  exportC(x: CWriter, step: StepOf<O>): CStep;
  /** The web page's sentence for the step when the kernel did nothing (no event), or null. */
  explain?(step: StepOf<O>, summary: string): string | null;
  /**
   * The note (an event of type 'note') its kernel path emits to say what the step did, when no
   * other kind of event does: run's report shows it under the step by default, and `explain` is
   * the web page's sentence for it (`who` did it; `detail` is the note after `prefix`).
   */
  keyNote?: { prefix: string; explain(who: string, detail: string): string };
  /** How the fuzz campaign writes one (null: it does not apply now). */
  fuzz(w: FuzzWriter, c: FuzzChoice): string | null;
  /** How the oracle's random generator draws it (none: not drawn). */
  random?: readonly RandomDraw[];
}

/** Declares one operation (checks the shape; the registry's record type checks it is complete). */
export function defineOp<O extends StepOp>(d: OpDecl<O>): OpDecl<O> {
  return d;
}
