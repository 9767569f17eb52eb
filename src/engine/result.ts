// What a run produces: one record per step, the violations, the verdict against `outcomes`.
// This is the documented --json format (docs/json-format.md); change it only by adding fields.

import type { KEvent } from '../core/events.js';
import type { Expected, ViolationKind } from '../scenario/ast.js';
import type { RunState } from './state.js';

export const RESULT_FORMAT_VERSION = 1;

export interface Violation {
  kind: ViolationKind;
  /** Index of the step (0-based), or -1 for the end-of-run checks. */
  step: number;
  file: string;
  line: number;
  col: number;
  /** Processes involved (names). */
  procs: string[];
  /** Frames involved. */
  frames: number[];
  message: string;
}

export interface Observation {
  /**
   * read: a CPU load (actual: the value, or `fault`); write: a CPU store (`ok` or `fault`);
   * handle-read: through a handle; frame: same-frame/other-frame; mapped: mapped-once/
   * mapped-shared/not mapped; exclusive: anon-exclusive/not-anon-exclusive; stat: a counter;
   * fork: `ok` or `ENOMEM`; gup: `ok` or `EFAULT`; uffd: a userfaultfd ioctl (`ok`, `EINVAL`,
   * `ENOENT`); uffd-wp: pagemap's uffd-wp bit (`uffd-wp` / `not-uffd-wp`); madvise: MADV_COLLAPSE's
   * result (`ok`, `EAGAIN`, `EINVAL`, `EBUSY`, `ENOMEM`).
   */
  kind: 'read' | 'write' | 'handle-read' | 'frame' | 'mapped' | 'exclusive' | 'stat' | 'fork' | 'gup' | 'mremap' | 'madvise' | 'uffd' | 'uffd-wp';
  /** What was observed: a value read, a frame relation, a counter. */
  what: string;
  /** The value the model produced (values as written in the scenario). */
  actual: string;
  /** What the ideal semantics (or the scenario's expect) required, when there is one. */
  ideal: string | null;
}

/**
 * Whether the step running gets the text of its record (its summary, its observations): not when
 * the step has no text itself. The explorer decodes its transitions without their text
 * (decodeOp): it reads only their violations, and decodes a counterexample's steps again, with
 * their text, to replay them. The step modules then build no text that would be thrown away;
 * violations are recorded in full either way.
 */
export function recordsText(s: RunState): boolean {
  return s.record.text !== '';
}

export interface EventRecord extends KEvent {
  /** The process name of `mm`, when known. */
  proc: string | null;
}

export interface StepRecord {
  index: number;
  line: number;
  col: number;
  text: string;
  /** One sentence: what happened. */
  summary: string;
  events: EventRecord[];
  /** Events not kept because the step produced too many. */
  eventsDropped: number;
  observations: Observation[];
  violations: Violation[];
  /** Counters, for `stats` steps. */
  stats: Record<string, number> | null;
  /** Counters after the step, when the run was asked for them (`run --stats`). */
  counters?: Record<string, number>;
  /** The frames this step's events and observations name, as they are after the step (when tracing). */
  frames: FrameSnapshot[];
  /** The PTEs this step's events name, as they are after the step (when tracing). */
  ptes: PteSnapshot[];
  /** Every PTE and frame the step changed, before and after (`run --trace`; RunOptions.changes). */
  changes?: ChangeLog;
}

/** What one step changed: in full for its first few pages, counted for the rest. */
export interface ChangeLog {
  /** PTE changes of the first pages that changed (every process), in address order. */
  ptes: PteChange[];
  /** Frame changes: those the listed PTEs name, and the first few others. */
  frames: FrameChange[];
  /** Every PTE change and frame change of the step (listed or not). */
  ptesChanged: number;
  framesChanged: number;
  /** The changes not listed, grouped by what changed (`Q PTE set`, `frame refcount +1, mapcount +1`). */
  more: { what: string; count: number }[];
}

export interface PteState {
  /** The frame a present or device-exclusive entry names, else null. */
  pfn: number | null;
  /** `none`, `frame 3`, `zero page`, `swap slot 2`, `frame 3 (device-exclusive)`. */
  target: string;
  /** Bit names (empty for pte_none). */
  bits: string[];
}

export interface PteChange {
  /** The process (thread group) whose page table holds it. */
  proc: string;
  page: string;
  vpn: number;
  before: PteState;
  after: PteState;
  /** In words: `write-protected`, `set: frame 1`, `now frame 4, made writable`, `cleared (pte_none)`. */
  change: string;
}

export interface FrameState {
  refcount: number;
  mapcount: number;
  /** Flag names; `free` when not in use. */
  flags: string[];
  value: string;
}

export interface FrameChange {
  pfn: number;
  before: FrameState;
  after: FrameState;
  /** In words: `refcount 1 → 2, mapcount 1 → 2, anon-exclusive (PageAnonExclusive) cleared`. */
  change: string;
}

export interface FrameSnapshot {
  pfn: number;
  refcount: number;
  mapcount: number;
  /** Flag names: anon, anon-exclusive, zero, ksm, swapcache, shmem; `free` when not in use. */
  flags: string[];
  value: string;
}

export interface PteSnapshot {
  proc: string;
  /** The page as region[index] when it lies in one of the process's regions, else its address. */
  page: string;
  vpn: number;
  /** 'none', or the frame number. */
  pfn: number | null;
  /** Bit names: present, write, dirty, young, special, soft-dirty, uffd-wp, swap, ... */
  bits: string[];
}

export type RunStatus = 'ok' | 'violation' | 'n/a';

export interface RunResult {
  format: number;
  file: string;
  scenario: string;
  profile: string;
  status: RunStatus;
  /** Why the run is n/a (the step and the reason). */
  na: { step: number; line: number; reason: string } | null;
  steps: StepRecord[];
  violations: Violation[];
  /** Counters at the end (before the final teardown). */
  stats: Record<string, number>;
  /** What `outcomes` says for this profile, if anything. */
  expected: Expected | null;
  /** pass: the run matches `outcomes` (or, without outcomes, has no violation). */
  verdict: 'pass' | 'fail';
  verdictReason: string;
  elapsedMs: number;
}
