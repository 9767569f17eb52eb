// What the kernel model tells about its work: one record per fault, copy, reuse, fork, zap.
// The model core only records; the CLI and the web page turn records into sentences.

export type KEventType =
  /** do_anonymous_page(): a write fault allocated a zeroed page. */
  | 'anon-fault'
  /** do_anonymous_page(): a read fault mapped the shared zero page (or do_huge_pmd_anonymous_page the huge zero page: HUGE_ZERO_FAULT). */
  | 'zero-fault'
  /** do_shared_fault()/do_read_fault() on shmem: mapped the object's page (allocated if new). */
  | 'shared-fault'
  /** do_wp_page() reused the page in place (wp_page_reuse). */
  | 'wp-reuse'
  /** do_wp_page() copied the page (wp_page_copy). */
  | 'wp-copy'
  /** do_wp_page() on a shared mapping: made the PTE writable (wp_page_shared). */
  | 'wp-shared'
  /** A fault that raised SIGSEGV. */
  | 'segv'
  /** An allocation that failed (VM_FAULT_OOM / -ENOMEM). */
  | 'oom'
  /** fork(): dup_mmap finished. */
  | 'fork'
  /** copy_present_page(): early COW of a maybe-pinned page at fork. */
  | 'early-cow'
  /** A frame was freed (refcount reached 0). */
  | 'free'
  /** zap_pte_range over a range (munmap, dontneed, exit). */
  | 'zap'
  /** mprotect changed PTEs. */
  | 'mprotect'
  /** GUP took references or pins. */
  | 'gup'
  /** handle_userfault(VM_UFFD_WP): a write met a write-protected page; the monitor un-protected it. */
  | 'uffd-fault'
  /** A kernel assertion (BUG_ON/VM_BUG_ON/WARN) the model checks. */
  | 'bug'
  /** Anything else worth a line (madvise, populate summary ...). */
  | 'note';

export interface KEvent {
  type: KEventType;
  /** The mm (process) concerned, or -1. */
  mm: number;
  /** The virtual page number, or -1. */
  vpn: number;
  /** The frame concerned (the old one for a copy), or -1. */
  pfn: number;
  /** The new frame of a copy, or -1. */
  pfn2: number;
  /** Why, in words: the rule that decided (e.g. "refcount 2 > 1: shared with another mapping"). */
  why: string;
}

/** The text of a zero-fault that mapped the huge zero page (do_huge_pmd_anonymous_page), not the 4 KiB one. */
export const HUGE_ZERO_FAULT = 'read of untouched THP-enabled memory maps the huge zero page (PMD)';

/** Whether a zero-fault's text is HUGE_ZERO_FAULT's. */
export function isHugeZeroFault(why: string): boolean {
  return why === HUGE_ZERO_FAULT;
}
