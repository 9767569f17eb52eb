// What the live side of the oracle records per step, in the model's observation kinds.

import type { Observation } from '../engine/result.js';

/**
 * The model's kinds, and two the oracle adds where it replays swap and KSM (their model side
 * comes from the model's page tables, oracle.ts): `swap`, after a swapout, says per page of the
 * range whether it is `swapped` (a swap entry: pagemap bit 62), `present` or `not mapped`;
 * `ksm`, after a ksm merge, lists the scenario's pages that map a KSM page (kpageflags bit 21);
 * `thp`, after a step of a THP scenario, which pages of a region huge PMDs map (thp.ts).
 */
export type ObservationKind = Observation['kind'] | 'swap' | 'ksm' | 'thp';

/** One observation on the live kernel: `actual` as the model writes it, or a reason it was not made or is not comparable. */
export interface KernelObservation {
  kind: ObservationKind;
  what: string;
  /** The kernel's answer (null when it could not be observed at all). */
  actual: string | null;
  /** Why this observation is not compared (the value, if any, is shown for information). */
  skip: string | null;
}

export interface KernelStep {
  index: number;
  observations: KernelObservation[];
  /** What the helper did, in a few words (errors of operations the model does not observe). */
  note: string;
  /** The step could not be replayed (and any model observation of it is not compared). */
  skip: string | null;
}

export interface KernelRun {
  steps: KernelStep[];
  /** The helper failed (a process died, an operation that must work did not): the run is not usable past this. */
  error: string | null;
  /** Why the scenario is skipped after all (no THP was populated where the model has one). */
  skip?: string | null;
}

/** A scenario mapping in a real process: its first page number and size. */
export interface Region {
  vpn: number;
  n: number;
  shared: boolean;
  /** MAP_HUGETLB: its pages are hugetlb pages (not RSS, AnonPages or frames_used in the model). */
  hugetlb?: boolean;
}

/** A real process (a scenario process and its threads, which run in it one step at a time). */
export interface KProc {
  id: number;
  pid: number;
  /** The scenario process it is (its threads run in it too). */
  name: string;
  /** MADV_MERGEABLE was applied in it (or in the parent it was forked from): KSM scans it. */
  mergeable: boolean;
  alive: boolean;
  /** Live scenario names running in it: the process and its threads. */
  members: Set<string>;
  regions: Map<string, Region>;
  /** Every range ever mapped here or inherited: where its pages may be. */
  ranges: Region[];
  nextVpn: number;
  /** VmPTE (kB) of the helper itself, before any scenario mapping. */
  helperPt: number;
  /** `uffd fork-event on` was asked (the context's UFFD_FEATURE_EVENT_FORK, chosen at its first registration). */
  uffdForkEvent: boolean;
  /** Its userfaultfd context exists (registered, or handed over by the fork event). */
  uffdCtx: boolean;
}

/** A handle this run holds (in the helper's agent). */
export interface KHandle {
  id: number;
  kind: 'ring' | 'pipe';
  holder: string;
  pages: number;
  /** The frames it holds (recorded when taken). */
  pfns: number[];
}

/** What the model holds after a step that takes a handle (oracle.ts's probeModel reads it from the model's own state). */
export interface ModelHandle {
  /** A device-exclusive grant (the model keeps its name, holding the pages it converted), or a GUP handle (pin, gup, vmsplice). */
  exclusive: boolean;
  /** The model's answer to the step (`ok`, `EFAULT`, `EBUSY`, ...; null: it made none, its process is gone). */
  answer: string | null;
  /** Pages the model holds through it (0: its call failed), of `pages` asked for. */
  held: number;
  pages: number;
}

/** What the replay is told of the model's run, by step index (oracle.ts). */
export interface ModelSide {
  /** The model's huge PMDs after each step, per `PROC REGION` (THP scenarios only). */
  huge: ReadonlyMap<number, ReadonlyMap<string, string>>;
  /** What the model holds after each step that takes a handle. */
  handles: ReadonlyMap<number, ModelHandle>;
  /** The model's swap row after each swapout or pageout, its KSM row after each ksm merge (what it did, where this run cannot). */
  system: ReadonlyMap<number, ModelRow>;
}

/** One row of the model's second run (probeModel's swap or KSM row): what it is about, and the model's answer. */
export interface ModelRow {
  what: string;
  actual: string;
}
