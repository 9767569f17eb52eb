// Sentences for kernel events (shared by the CLI reporter; the web page has its own view).

import type { EventRecord } from '../engine/result.js';
import { keyNoteOf } from '../ops/index.js';
import { isHugeZeroFault } from '../core/events.js';

/** Events worth a line under a step by default (the rest show with --trace). */
export const KEY_EVENTS = new Set(['anon-fault', 'zero-fault', 'shared-fault', 'wp-reuse', 'wp-copy', 'wp-shared', 'early-cow', 'segv', 'oom', 'bug', 'gup', 'zap', 'uffd-fault']);

/** Whether an event gets a line under its step by default: a key event, or a note an operation declares key (src/ops, `keyNote`). */
export function isKeyEvent(e: EventRecord): boolean {
  return KEY_EVENTS.has(e.type) || (e.type === 'note' && keyNoteOf(e.why) !== undefined);
}

export function describeEvent(e: EventRecord): string {
  const who = e.proc ?? '';
  // hugetlb paths (src/core/hugetlb.ts) name their kernel function and frames in the text itself.
  if (e.why.startsWith('hugetlb_') || e.why.startsWith('copy_hugetlb_page_range')) return `${who ? who + ' ' : ''}${e.why}`;
  switch (e.type) {
    case 'anon-fault':
      return `${who} write fault, do_anonymous_page: new zeroed frame ${e.pfn}`;
    case 'zero-fault':
      if (isHugeZeroFault(e.why)) return `${who} read fault, do_huge_pmd_anonymous_page: mapped the huge zero page read-only (one PMD)`;
      return `${who} read fault, do_anonymous_page: mapped the shared zero page read-only`;
    case 'shared-fault':
      return `${who} fault on shared memory: mapped frame ${e.pfn} (${e.why})`;
    case 'wp-reuse':
      return `${who} write fault, do_wp_page: reused frame ${e.pfn} in place (${e.why})`;
    case 'wp-copy':
      return `${who} write fault, do_wp_page: copied frame ${e.pfn} to new frame ${e.pfn2} (${e.why})`;
    case 'wp-shared':
      return `${who} write fault, do_wp_page: frame ${e.pfn} made writable (${e.why})`;
    case 'early-cow':
      return `fork, copy_present_page: frame ${e.pfn} copied to frame ${e.pfn2} for the child (${e.why})`;
    case 'segv':
      return `${who} fault: SIGSEGV (${e.why})`;
    case 'oom':
      return `${who} out of memory: ${e.why}`;
    case 'free':
      return `frame ${e.pfn} freed (${e.why})`;
    case 'fork':
      return `fork: ${e.why}`;
    case 'bug':
      return `KERNEL BUG: ${e.why}`;
    case 'uffd-fault':
      return `${who} write fault, do_wp_page -> handle_userfault: the page is write-protected by userfaultfd; the monitor un-protects it and the write is retried`;
    default:
      return `${who ? who + ' ' : ''}${e.why}`;
  }
}
