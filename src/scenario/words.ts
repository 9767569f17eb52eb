// The word lists and name rules of the scenario language (a leaf: the parser and the operation
// declarations in src/ops both read them).

import type { Advice, Prot, StatOp } from './ast.js';

export const PROTS: readonly Prot[] = ['rw', 'ro', 'none'];
export const ADVICES: readonly Advice[] = [
  'dontfork',
  'dofork',
  'wipeonfork',
  'keeponfork',
  'dontneed',
  'mergeable',
  'pageout',
  // v1.2 (THP)
  'hugepage',
  'nohugepage',
  'collapse',
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
  // v1.2 (THP)
  'AnonHugePages_kB',
  // v1.2 (hugetlb; with config.hugepages)
  'HugePages_Free',
  'HugePages_Rsvd',
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
  mmap: [PROTS, ['private', 'shared'], ['populate'], ['thp', 'nothp', 'hugetlb']],
  fork: [['cowpt']],
  pin: [['rw', 'ro'], ['longterm', 'short'], ['fast']],
  gup: [['rw', 'ro'], ['fast']],
} as const satisfies Record<string, readonly (readonly string[])[]>;
/** `P uffd ...`: what the monitor asks of userfaultfd (write-protect mode). */
export const UFFD_ACTIONS = ['register', 'protect', 'unprotect', 'fork-event'] as const;
/** What `expect` may follow a device atomic. */
export const ATOMIC_OUTCOMES = ['revoked', 'denied'] as const;

/** The largest region, in pages. */
export const MAX_REGION_PAGES = 1 << 30;

export const PROC_RE = /^[A-Z][A-Za-z0-9]*$/;
export const NAME_RE = /^[a-z][a-z0-9_]*$/;
export const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const INT_RE = /^-?[0-9]+$/;
export const NAT_RE = /^[0-9]+$/;

export const PROC_NAME_RULE = 'an upper-case letter then letters or digits, like P or Q2';
export const NAME_RULE = 'a lower-case letter then lower-case letters, digits or _';
