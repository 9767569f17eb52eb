// The typed AST of a scenario file (the scenario language, docs/scenario-language.md).
// The parser produces it with every name already resolved (which process, which region,
// which handle), so the engine never meets an unknown name.

/** A position in the scenario file, 1-based. */
export interface Pos {
  line: number;
  col: number;
}

/** A value a page can hold: an integer (canonical decimal text) or an identifier. "0" is zero-fill. */
export type Value = string;

/** Pages of a region: `buf[3]` (lo = hi = 3), `buf[0..7]`, or `buf[*]` / `buf` (all = true). */
export interface PageSel {
  region: string;
  all: boolean;
  /** First page (inclusive); 0 when all. */
  lo: number;
  /** Last page (inclusive); region size - 1 when all (resolved by the parser). */
  hi: number;
  pos: Pos;
}

/** `H[K]`: page K of handle H. */
export interface HandleRef {
  handle: string;
  index: number;
  pos: Pos;
}

export type Prot = 'rw' | 'ro' | 'none';
export type Advice =
  | 'dontfork'
  | 'dofork'
  | 'wipeonfork'
  | 'keeponfork'
  | 'dontneed'
  | 'mergeable'
  | 'pageout'
  /** (v1.2) MADV_HUGEPAGE / MADV_NOHUGEPAGE. */
  | 'hugepage'
  | 'nohugepage'
  /** (v1.2) MADV_COLLAPSE (6.1+). */
  | 'collapse';
export type StatOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

interface StepBase {
  /** Where the step's line starts (first non-blank character). */
  pos: Pos;
  /** The step's text as written, without comment. */
  text: string;
}

/**
 * v1.1: a kernel path started with a trailing `&` runs as separate atomic steps that the
 * thread advances with `T step` / `T finish`, so other threads' steps interleave with it.
 */
interface AsyncFlag {
  async?: boolean;
}

export interface MmapStep extends StepBase {
  op: 'mmap';
  proc: string;
  region: string;
  pages: number;
  prot: Prot;
  shared: boolean;
  populate: boolean;
  /** `thp` / `nothp` as written, null when not given. */
  thp: 'thp' | 'nothp' | null;
  /** (v1.2) `hugetlb`: MAP_HUGETLB with 2 MiB huge pages (pages a multiple of 512). */
  hugetlb?: boolean;
}
export interface MunmapStep extends StepBase {
  op: 'munmap';
  proc: string;
  sel: PageSel;
  /**
   * (v1.2) Set by the parser when the kernel refuses it with EINVAL, nothing unmapped: an end
   * inside a huge page of a hugetlb region (hugetlbSplitRefused in src/core/hugetlb.ts).
   */
  refused?: boolean;
}
/** v1.2: `P mremap buf[RANGE] as NEW`: mremap(MREMAP_MAYMOVE|MREMAP_FIXED) of those pages to a fresh range, region NEW. */
export interface MremapStep extends StepBase {
  op: 'mremap';
  proc: string;
  sel: PageSel;
  /** The new region: page K of the range becomes NEW[K]. */
  region: string;
}
export interface MprotectStep extends StepBase {
  op: 'mprotect';
  proc: string;
  sel: PageSel;
  prot: Prot;
}
export interface MadviseStep extends StepBase {
  op: 'madvise';
  proc: string;
  sel: PageSel;
  advice: Advice;
}
export interface WriteStep extends StepBase, AsyncFlag {
  op: 'write';
  proc: string;
  sel: PageSel;
  value: Value;
}
/** `P read buf[I] [expect V | expect fault]` (a CPU load). */
export interface ReadStep extends StepBase {
  op: 'read';
  proc: string;
  sel: PageSel;
  expect: { kind: 'value'; value: Value } | { kind: 'fault' } | null;
}
export interface ForkStep extends StepBase, AsyncFlag {
  op: 'fork';
  proc: string;
  child: string;
  cowpt: boolean;
}
export interface ExitStep extends StepBase {
  op: 'exit';
  proc: string;
}
export interface PinStep extends StepBase, AsyncFlag {
  op: 'pin';
  proc: string;
  sel: PageSel;
  handle: string;
  write: boolean;
  longterm: boolean;
  fast: boolean;
}
export interface GupStep extends StepBase, AsyncFlag {
  op: 'gup';
  proc: string;
  sel: PageSel;
  handle: string;
  write: boolean;
  fast: boolean;
}
export interface VmspliceStep extends StepBase, AsyncFlag {
  op: 'vmsplice';
  proc: string;
  sel: PageSel;
  handle: string;
}
/** `P read H[K] [expect V]`: a read through a handle (pipe, pinned buffer). */
export interface ReadHandleStep extends StepBase {
  op: 'read-handle';
  proc: string;
  ref: HandleRef;
  expect: Value | null;
}
export interface UnpinStep extends StepBase {
  op: 'unpin';
  proc: string;
  handle: string;
}
export interface PutStep extends StepBase {
  op: 'put';
  proc: string;
  handle: string;
}
export interface ClearSoftdirtyStep extends StepBase {
  op: 'clear-softdirty';
  proc: string;
}
export interface DeviceWriteStep extends StepBase {
  op: 'device-write';
  ref: HandleRef;
  value: Value;
}
export interface DeviceReadStep extends StepBase {
  op: 'device-read';
  ref: HandleRef;
  expect: Value | null;
}
export interface DeviceExclusiveStep extends StepBase {
  op: 'device-exclusive';
  proc: string;
  sel: PageSel;
  handle: string;
}
export interface DeviceAtomicStep extends StepBase {
  op: 'device-atomic';
  ref: HandleRef;
  value: Value;
  expect: 'revoked' | 'denied' | null;
}
export interface SwapoutStep extends StepBase {
  op: 'swapout';
  proc: string;
  sel: PageSel;
}
export interface KsmMergeStep extends StepBase {
  op: 'ksm-merge';
}
export interface CheckStep extends StepBase {
  op: 'check';
}
export interface ExpectFrameStep extends StepBase {
  op: 'expect-frame';
  proc: string;
  sel: PageSel;
  same: boolean;
  otherProc: string;
  otherSel: PageSel;
}
export interface ExpectMappedStep extends StepBase {
  op: 'expect-mapped';
  proc: string;
  sel: PageSel;
  /** true: `mapped-once`; false: `mapped-shared`. */
  once: boolean;
}
export interface ExpectExclusiveStep extends StepBase {
  op: 'expect-exclusive';
  proc: string;
  sel: PageSel;
  /** true: `anon-exclusive`; false: `not-anon-exclusive`. */
  exclusive: boolean;
}
export interface ExpectStatStep extends StepBase {
  op: 'expect-stat';
  /** Counter name as written: `PageTables_kB`, `AnonPages_kB`, `rss.P`, `minflt.P`, `uffd_faults.P`, `frames_used`, `cow_copies`, `pt_copies`. */
  stat: string;
  /** For `rss.P` / `minflt.P` / `uffd_faults.P`: the process; else null. */
  statProc: string | null;
  cmp: StatOp;
  number: number;
}
/**
 * userfaultfd write-protect: `P uffd register buf[R] wp` (UFFDIO_REGISTER_MODE_WP), `P uffd
 * protect buf[R]` / `P uffd unprotect buf[R]` (UFFDIO_WRITEPROTECT), `P uffd fork-event on|off`
 * (UFFD_FEATURE_EVENT_FORK asked at UFFDIO_API). sel is null for fork-event.
 */
export interface UffdStep extends StepBase {
  op: 'uffd';
  proc: string;
  action: 'register' | 'protect' | 'unprotect' | 'fork-event';
  sel: PageSel | null;
  /** fork-event: on or off. */
  on: boolean;
}
export interface ExpectUffdWpStep extends StepBase {
  op: 'expect-uffd-wp';
  proc: string;
  sel: PageSel;
  /** true: `uffd-wp`; false: `not-uffd-wp`. */
  wp: boolean;
}
export interface StatsStep extends StepBase {
  op: 'stats';
}
/** v1.1: `P thread T`: a new thread T sharing P's address space (CLONE_VM). */
export interface ThreadStep extends StepBase {
  op: 'thread';
  proc: string;
  thread: string;
}
/** v1.1: `T step`: T's pending kernel path (started with `&`) runs one atomic step. */
export interface StepStep extends StepBase {
  op: 'step';
  proc: string;
}
/** v1.1: `T finish`: T's pending kernel path runs to its end. */
export interface FinishStep extends StepBase {
  op: 'finish';
  proc: string;
}

export type Step =
  | MmapStep
  | MunmapStep
  | MremapStep
  | MprotectStep
  | MadviseStep
  | WriteStep
  | ReadStep
  | ForkStep
  | ExitStep
  | PinStep
  | GupStep
  | VmspliceStep
  | ReadHandleStep
  | UnpinStep
  | PutStep
  | ClearSoftdirtyStep
  | DeviceWriteStep
  | DeviceReadStep
  | DeviceExclusiveStep
  | DeviceAtomicStep
  | SwapoutStep
  | KsmMergeStep
  | CheckStep
  | ExpectFrameStep
  | ExpectMappedStep
  | ExpectExclusiveStep
  | ExpectStatStep
  | UffdStep
  | ExpectUffdWpStep
  | StatsStep
  | ThreadStep
  | StepStep
  | FinishStep;

export type StepOp = Step['op'];

/**
 * Every kind of step, as a value: the one list the fuzzer (test/fuzz) generates from. The
 * check below fails to compile when a kind of `Step` is missing here.
 */
export const STEP_OPS = [
  'mmap', 'munmap', 'mprotect', 'madvise', 'write', 'read', 'fork', 'exit', 'pin', 'gup', 'vmsplice',
  'read-handle', 'unpin', 'put', 'clear-softdirty', 'device-write', 'device-read', 'device-exclusive',
  'device-atomic', 'swapout', 'ksm-merge', 'check', 'expect-frame', 'expect-mapped', 'expect-exclusive',
  'expect-stat', 'stats', 'thread', 'step', 'finish', 'mremap', 'uffd', 'expect-uffd-wp',
] as const satisfies readonly StepOp[];
const STEP_OPS_COMPLETE: [Exclude<StepOp, (typeof STEP_OPS)[number]>] extends [never] ? true : never = true;
void STEP_OPS_COMPLETE;

/** The violation kinds of the spec. */
export const VIOLATION_KINDS = [
  'leak',
  'lost-write',
  'pin-incoherent',
  'expect',
  'accounting',
  'frame-leak',
  'use-after-free',
  'kernel-bug',
  'exclusive',
  'fault',
  'uffd-wp-bypass',
] as const;
export type ViolationKind = (typeof VIOLATION_KINDS)[number];

/** What `outcomes` expects on one profile. */
export type Expected =
  | { kind: 'ok' }
  | { kind: 'fail' }
  | { kind: 'n/a' }
  | { kind: 'violations'; kinds: ViolationKind[] };

export interface ScenarioConfig {
  /** Physical frames; allocation past this fails (ENOMEM). Null: the model's default. */
  frames: number | null;
  /** GUP_PIN_COUNTING_BIAS; null: 1024. */
  pinBias: number | null;
  /** (v1.2) The THP mode (`config.thp`); null: `madvise`. */
  thp?: 'always' | 'madvise' | 'never' | null;
  /** (v1.2) Free 2 MiB huge pages in the hugetlb pool (`config.hugepages`); null: unlimited. */
  hugepages?: number | null;
  /**
   * (extension) /sys/kernel/mm/ksm/use_zero_pages (`config.ksm_use_zero_pages`, 0 or 1): ksmd
   * merges a page of zeros with the shared zero page instead of a KSM page. Null: 0.
   */
  ksmUseZeroPages?: number | null;
  /**
   * (extension) /sys/kernel/mm/ksm/smart_scan (`config.ksm_smart_scan`, 0 or 1): on kernels that
   * have it (6.7+, the profile's ksmSmartScan), 0 makes ksmd scan every page in every pass. Null: 1,
   * the kernel's default; on older kernels the key changes nothing.
   */
  ksmSmartScan?: number | null;
}

export interface Scenario {
  /** The file it came from (as given on the command line), for messages. */
  file: string;
  name: string;
  description: string | null;
  /** Default profile for `run`, or null. */
  kernel: string | null;
  kernelPos: Pos | null;
  config: ScenarioConfig;
  /** Per profile name (or "*"), the expected outcome, with where it was written. */
  outcomes: Map<string, { expected: Expected; pos: Pos }>;
  steps: Step[];
}
