// Operations the live replay does not perform, each with the reason it gives and what it
// costs: after such a step the model's memory differs from the kernel's in ways a program cannot
// see (swap and KSM never change a value, a device-exclusive grant neither), so values read stay
// comparable while frame sharing, counters and what short-term references see are not compared
// any more; a device atomic writes, so values go too; a kernel path split into steps (`&`)
// cannot be interleaved at all, so nothing after it is compared.
//
// swapout, madvise pageout and ksm merge are replayed (replay.ts, system.ts) where this machine
// allows: their entries here are what a run costs where it does not (no root, no filesystem
// that takes a swap file, no KSM), with the machine's reason given at the step.

import type { Aspect } from './comparable.js';

export interface SystemStep {
  reason: string;
  /** What is no longer compared after it; 'all' stops the comparison. */
  lose: Aspect[];
  /** Said of what the model did that this run did not, for the lost aspects (swapout, pageout, ksm merge: what it may have done, where its own row is not known; replay.ts modelDid). */
  did: string;
}

const INVISIBLE: Aspect[] = ['frames', 'stats', 'shortRefs'];

const STEPS: Record<string, SystemStep> = {
  swapout: {
    reason: 'swapout is not replayed here (it needs a swap file the oracle sets up, then MADV_PAGEOUT)',
    lose: INVISIBLE, did: 'swapped pages out',
  },
  'madvise-pageout': {
    reason: 'madvise pageout is not replayed here (it needs a swap file the oracle sets up)',
    lose: INVISIBLE, did: 'paged pages out',
  },
  'ksm-merge': {
    reason: 'ksm merge is not replayed here (it needs KSM switched on for a moment: /sys/kernel/mm/ksm/run)',
    lose: INVISIBLE, did: 'merged identical pages (KSM)',
  },
  'device-exclusive': {
    reason: 'device-exclusive access needs a device driver (make_device_exclusive); no user-space path exists',
    lose: INVISIBLE, did: 'gave a device exclusive access to pages',
  },
  'device-atomic': {
    reason: 'device atomics need a device driver holding device-exclusive entries; no user-space path exists',
    lose: [...INVISIBLE, 'values'], did: 'let a device write atomically',
  },
  // The live oracle replays THP mappings (replay.ts, thp.ts); the exported C reproducer does not.
  'mmap-thp': { reason: 'the exported reproducer does not replay transparent huge pages (`cowlab oracle` does, with its THP probe)', lose: ['all'], did: '' },
  'madvise-collapse-nothp': {
    reason: 'MADV_COLLAPSE of a region mapped without `thp`: to keep THPs out where the model has 4 KiB pages, the helper maps such regions MADV_NOHUGEPAGE, which MADV_COLLAPSE refuses',
    lose: ['frames', 'stats'], did: 'may have collapsed pages into a THP',
  },
  'fork-cowpt': { reason: 'COW page tables (fork ... cowpt) do not exist in Linux', lose: ['all'], did: '' },
  step: { reason: 'a kernel path split into steps (`&`) cannot be interleaved on the live kernel', lose: ['all'], did: '' },
  finish: { reason: 'a kernel path split into steps (`&`) cannot be interleaved on the live kernel', lose: ['all'], did: '' },
  async: { reason: 'a kernel path split into steps (`&`) cannot be interleaved on the live kernel', lose: ['all'], did: '' },
};

/** What the live replay does at an operation it does not perform. */
export function systemStep(op: string): SystemStep {
  return STEPS[op] ?? { reason: `the operation '${op}' is not replayed on the live kernel yet`, lose: ['all'], did: '' };
}
