// A kernel profile: the behaviour switches that differ between kernels. Every difference
// between kernel versions in the model is one of these fields, read where the kernel decides.

export interface Profile {
  /** The name users pass to --kernel. */
  name: string;
  /** One line: what it models. */
  summary: string;
  /** The commits or seed it stands for. */
  source: string;
  /**
   * do_wp_page()'s reuse test for an anonymous page:
   * `mapcount` (<= 5.8: reuse_swap_page(), mapcount + swapcount <= 1),
   * `pagecount` (5.9-5.18: page_count == 1 and mapcount == 1, seed 003),
   * `anon-exclusive` (5.19+: PG_anon_exclusive, else refcount == 1).
   */
  wpReuse: 'mapcount' | 'pagecount' | 'anon-exclusive';
  /** PG_anon_exclusive is tracked (5.19+): set on new/reused pages, cleared when fork shares them. */
  anonExclusive: boolean;
  /**
   * GUP breaks COW before taking a reference: `none` (5.7, 5.9-rc4), `get-and-pin`
   * (5.8: FOLL_GET and FOLL_PIN on a COW mapping act as FOLL_WRITE, 17839856fd58),
   * `pin` (seed 001: FAULT_FLAG_BREAK_COW for FOLL_PIN only; gup-fast unaffected).
   */
  gupCowBreak: 'none' | 'get-and-pin' | 'pin';
  /** gup-fast takes only already-writable PTEs (5.8's forced COW break in the fast path). */
  gupFastWritableOnly: boolean;
  /** Early COW at fork of maybe-pinned pages in mms that have pinned (seed 000, 70e806e4e645). */
  forkEarlyCow: boolean;
  /**
   * R/O FOLL_PIN unshares a possibly shared page first (FAULT_FLAG_UNSHARE):
   * `none`, `anon` (5.19: anonymous pages that are not exclusive), `all` (6.2: also the zero page).
   */
  unshareRoPin: 'none' | 'anon' | 'all';
  /** clear_refs (soft-dirty) skips maybe-pinned pages (5.11, 9348b73c2e1b). */
  clearRefsSkipPinned: boolean;
  /** mprotect() upgrading to writable maps exclusive anonymous pages writable at once (6.0, 64fe24a3e05e). */
  mprotectWritable: boolean;
  /**
   * mprotectWritable's upgrade takes clean PTEs too (6.2, "mm/mprotect: allow clean exclusive anon
   * pages to be writable"); before (6.0, 6.1), can_change_pte_writable() wants pte_dirty(), so an
   * exclusive page mapped clean (swapped in by a read fault, an unshare copy, a read fault where
   * the zero page is forbidden) keeps its write fault. Matters only with mprotectWritable.
   */
  mprotectWritableClean: boolean;
  /**
   * reuse_ksm_page() on write faults (5.1-5.8): a KSM page mapped once is reused and turned back
   * into an ordinary anonymous page (page_move_anon_rmap leaves the stable tree's node stale).
   */
  ksmReuse: boolean;
  /**
   * Seed 003's check in do_wp_page(): a KSM page is always copied ("PageKsm() doesn't
   * necessarily raise the page refcount"). Without it (a what-if), a KSM page with refcount 1
   * is reused in place and stays in the stable tree, writable.
   */
  wpCopiesKsm: boolean;
  /**
   * break_cow() after a two-page merge whose tree page was refused: ksmd faults on the scanned
   * page, now a KSM page, with FAULT_FLAG_WRITE (`write`, up to 6.1: do_wp_page copies it into a
   * writable, dirty page; a uffd-wp protected PTE makes handle_userfault fail and the KSM page
   * stays) or FAULT_FLAG_UNSHARE (`unshare`, 6.2: a read-only copy, uffd-wp bit kept).
   */
  ksmBreakCow: 'write' | 'unshare';
  /**
   * ksmd's scan takes a page mapped by a PROT_NONE PTE (a present PTE of a PROT_NONE VMA): its
   * follow_page() (5.x: FOLL_NUMA unset; 6.5 on: FOLL_HONOR_NUMA_FAULT unset) or page walk (6.8
   * on) takes any present PTE. False from 6.1 to 6.4: gup_can_follow_protnone() lets follow_page()
   * follow one only with FOLL_FORCE (474098edac26, 6.1; d74943a2f3cd, 6.5), so such pages are
   * never scanned and never merged.
   */
  ksmScansProtnone: boolean;
  /**
   * cmp_and_merge_page() compares a page's checksum with its rmap item's oldchecksum before
   * stable_tree_search() (6.11, d58a361b0350): a page whose content changed since its last scan,
   * or seen for the first time, merges nowhere in this pass. Before, only after the stable tree
   * search failed: such a page merges into a KSM page of its content at once and waits a pass
   * only for the unstable tree.
   */
  ksmChecksumFirst: boolean;
  /**
   * ksmd's smart scan (5e924ff54d08, 6.7; on unless /sys/kernel/mm/ksm/smart_scan is 0):
   * should_skip_rmap_item() leaves out of some passes a page that is not a KSM page once its rmap
   * item has been met four times (rmap_item->age, remaining_skips): not compared, not in that
   * pass's unstable tree, its item off any stable node.
   */
  ksmSmartScan: boolean;
  /** FOLL_PIN of the zero page is a no-op (6.5, c8070b787519); before, it took a pin on it. */
  pinSkipsZeroPage: boolean;
  /**
   * mm_forbids_zeropage(): the shared zero page is never mapped, so a read fault on untouched
   * private anonymous memory allocates an exclusive zeroed page (s390 KVM hosts; kernels booted
   * with pvm_no_zero_page=1). A machine fact rather than a version: every built-in profile has
   * it off, and the oracle sets it from what the live kernel does.
   */
  mmForbidsZeropage: boolean;
  /** gup-fast FOLL_PIN checks mm->write_protect_seq against a concurrent fork (57efa1fe5957, 5.11). */
  writeProtectSeq: boolean;
  /**
   * Device-exclusive entries: `none`; `seed002` (the series as reviewed in seed 002: fork waits
   * for the page lock and retries); `v5.14` (as merged: a failed trylock fails the fork);
   * `v6.15` (the rework: one mm's PTE only, mapcount untouched).
   */
  deviceExclusive: 'none' | 'seed002' | 'v5.14' | 'v6.15';
  /**
   * What make_device_exclusive_range() (`deviceExclusive` `v5.14`) asks after its rmap walk of a
   * THP's head before it holds the page: `page` (5.14-5.17 page_make_device_exclusive():
   * !page_mapcount() of the head, its PTE mappings plus the folio's PMD mappings) or `folio`
   * (5.18-6.14 folio_make_device_exclusive(): !folio_mapcount(), every page of the folio). They
   * differ only after a walk that stopped early at an entry, leaving other pages mapped.
   */
  deviceExclusiveHeld: 'page' | 'folio';
  /**
   * do_swap_page()'s test for mapping a swapped-in page writable/exclusive: `reuse_swap_page`
   * (<= 5.17: mapcount + swap count <= 1), `refcount` (5.18: page_count after freeing the swap
   * cache), `exclusive-bit` (5.19+: SWP_EXCLUSIVE kept in the swap entry, else refcount).
   */
  swapinReuse: 'reuse_swap_page' | 'refcount' | 'exclusive-bit';
  /**
   * do_swap_page() maps an exclusive swapped-in page writable on a read fault too (6.11,
   * c18160dba5ff "mm/swap: reuse exclusive folio directly instead of wp page faults"); before,
   * only a write fault did, and the next write reused the page in do_wp_page().
   */
  swapinReadFaultWritable: boolean;
  /** do_wp_page() frees the swap cache to reuse a page only the cache also holds (5.18+). */
  wpFreeSwapcache: boolean;
  /** Reclaim does not put maybe-pinned pages in the swap cache (feb889fb40fa, 5.11). */
  reclaimSkipsPinned: boolean;
  /** COW page tables (`fork ... cowpt`): `none`, `rfc` (seed 004), `odf` (On-Demand Fork). */
  cowPageTables: 'none' | 'rfc' | 'odf';
  /**
   * A write fault on a shared PTE table (write-protected PMD) whose count is 1: `any` takes it
   * back without a copy (RFC v1's fallback to reuse); `whole-table` only when the faulting VMA
   * covers the whole 2 MiB table, else copies (On-Demand Fork 8d43667, "repossess"); `never`
   * always copies (On-Demand Fork from eebe694).
   */
  cowPteTakeBack: 'any' | 'whole-table' | 'never';
  /**
   * Which PTE tables a fork with COW page tables shares: `any` (every table of the mapping:
   * RFC v1, On-Demand Fork 8d43667) or `whole-table` (only tables the mapping covers entirely;
   * the others are copied page by page as a normal fork does: On-Demand Fork d8ccd3c).
   */
  cowPteShare: 'any' | 'whole-table';
  /**
   * MADV_DONTNEED in an mm with COW page tables, on a shared PTE table: `range` zaps the range
   * asked (On-Demand Fork: copy the table, then zap; RFC v1 has zap rules of its own); `vma`
   * drops the VMA's whole part of the table, or the whole table when the VMA covers it (On-Demand
   * Fork 8d43667, zap_pmd_range decides by the VMA, not the range); `ignored` does nothing
   * (On-Demand Fork d8ccd3c: madvise_dontneed_free() returns 0 for an ODF mm).
   */
  cowptDontneed: 'range' | 'vma' | 'ignored';
  /**
   * mremap of a range whose PTE table is shared (write-protected PMD): `unshare` copies the table
   * for this mm first, then moves the PTEs (RFC v1's mm/mremap.c; On-Demand Fork d8ccd3c:
   * tfork_one_pte_table() in move_page_tables()); `move-shared` moves the PTEs out of the shared
   * table itself, so the other users lose them (On-Demand Fork 8d43667).
   */
  cowptMremap: 'unshare' | 'move-shared';
  /**
   * mremap(MREMAP_FIXED) without resizing may move a range spanning several VMAs and the gaps
   * between them, each VMA to the same offset in the new range (6.17, "mm/mremap: permit mremap()
   * move of multiple VMAs"); before, a range beyond the first VMA fails with EFAULT.
   */
  mremapMultiVma: boolean;
  /**
   * mremap of a range registered with userfaultfd (no UFFD_FEATURE_EVENT_REMAP) clears the uffd-wp
   * state of what moves: the bit of present PTEs, swap entries and huge PMDs, and drops uffd-wp
   * markers; PTE tables do not move whole there (move_normal_pmd refuses). Before, the moved
   * entries kept their bits in the unregistered new VMA (0cef0bb836e3 "mm: clear uffd-wp PTE/PMD
   * state on mremap()", 6.13).
   */
  mremapClearsUffdWp: boolean;
  /**
   * /sys/kernel/mm/transparent_hugepage/use_zero_page: a read fault in a THP-enabled range maps
   * the huge zero page (do_huge_pmd_anonymous_page) unless mmForbidsZeropage; off, it allocates
   * a THP as a write fault does. A machine setting (default on), like mmForbidsZeropage.
   */
  thpUseZeroPage: boolean;
  /**
   * do_huge_pmd_wp_page()'s reuse test for a PMD-mapped THP: `mapcount` (<= 5.17:
   * reuse_swap_page(), the largest page mapcount + PMD mappings <= 1, GUP references ignored),
   * `refcount` (5.18, 3bff7e3f1f16: folio refcount 1), `anon-exclusive` (5.19+: PAE head, else refcount 1).
   */
  thpWpReuse: 'mapcount' | 'refcount' | 'anon-exclusive';
  /**
   * do_huge_pmd_wp_page() on a THP it cannot reuse: `huge` (<= 5.7: copy the whole 2 MiB folio)
   * or `split` (5.8, 3917c80280c9: split the PMD and copy the 4 KiB page at PTE level).
   */
  thpWpCopy: 'huge' | 'split';
  /**
   * A write fault on the huge zero PMD: `huge` (<= 5.7; 6.13+ do_huge_zero_wp_pmd(): a zeroed
   * THP mapped writable) or `split` (5.8-6.12: 512 PTEs of the 4 KiB zero page, then the PTE path).
   */
  hugeZeroWp: 'huge' | 'split';
  /**
   * do_wp_page() on a page of a PTE-mapped large folio without PG_anon_exclusive: `as-small`
   * (<= 6.9: wpReuse's rule with the folio's counts: page_count is the folio's, mapcount the
   * largest page mapcount), `never` (6.10-6.14: wp_can_reuse_anon_folio() refuses large folios),
   * `mm-exclusive` (6.15, c3edd36ad29b: __wp_can_reuse_large_anon_folio(), reuse when every
   * reference is a mapping from this mm and there are two or more).
   */
  wpReuseLarge: 'as-small' | 'never' | 'mm-exclusive';
  /**
   * MADV_PAGEOUT of a page of a THP (madvise_cold_or_pageout_pte_range()) leaves the folio alone,
   * unsplit, when it may be mapped elsewhere: `page-mapcount` (5.4-6.2: page_mapcount() != 1 of the
   * page asked, the head under a huge PMD, else the PTE's page: other pages mapped twice do not
   * count), `first-page` (6.4-6.9: folio_estimated_sharers(), the first page's page_mapcount, on
   * both paths), `folio` (folio_likely_mapped_shared(), 6.10-6.14, modelled as any page mapped
   * twice; folio_maybe_mapped_shared() with MM-ids, 6.15), `total` (6.3 and 6.4 before its stable
   * fix: folio_mapcount() != 1, the total mapcount, so a THP its one process maps with PTEs is never
   * split; no built-in profile is 6.3, a what-if profile can be).
   */
  pageoutLargeShared: 'page-mapcount' | 'first-page' | 'folio' | 'total';
  /**
   * MADV_PAGEOUT's PTE loop (madvise_cold_or_pageout_pte_range()) meeting a large folio through a
   * PTE. `break` (5.4-6.9): the sharing test (pageoutLargeShared), then the split; where either
   * leaves the folio alone (or split_folio() fails: a pin or GUP reference) the loop `break`s,
   * ending the walk of that PMD, so no later page under it (in that VMA) is paged out either.
   * `batch` (6.10+, "mm: madvise: avoid split during MADV_PAGEOUT and MADV_COLD"): the folio's
   * PTEs from this one on (madvise_folio_pte_batch); a folio they map whole is not split nor asked
   * the sharing test but paged out whole when folio_mapcount() is its number of pages; else the
   * sharing test and the split, and where they leave it alone the loop steps past those PTEs.
   */
  pageoutLargeWalk: 'break' | 'batch';
  /**
   * change_huge_pmd() maps a PAE head writable at once when mprotect makes the range writable
   * (can_change_pmd_writable, 6.2), as mprotectWritable does for PTEs; before, the next write faults.
   */
  mprotectWritablePmd: boolean;
  /**
   * copy_hugetlb_page_range() copies a maybe-pinned hugetlb page for the child at fork (5.12,
   * 4eae4efa2c29 "hugetlb: do early cow when page pinned on src mm"; not in 5.10.y), failing the
   * fork when the pool has no free huge page; before, fork shares it as any other.
   */
  hugetlbForkEarlyCow: boolean;
  /**
   * MADV_COLLAPSE (madvise_collapse -> hpage_collapse_scan_pmd -> collapse_huge_page):
   * `none` (before 6.1: `madvise ... collapse` is n/a), `writable-pte` (7d8faaf15545, 6.1: a
   * range none of whose PTEs is writable is refused, SCAN_PAGE_RO, EINVAL), `any-pte` (6.18:
   * the pte_write() requirement gone).
   */
  madvCollapse: 'none' | 'writable-pte' | 'any-pte';
  /**
   * MADV_DONTNEED over the whole 2 MiB a PTE table maps frees the emptied table (CONFIG_PT_RECLAIM,
   * default y on x86-64, 6.14, 6375e95f381e: zap_pte_range()'s reclaim_pt, mm/pt_reclaim.c); before, the empty
   * table stays until munmap, and a later fault there cannot map a THP (the PMD is not none).
   */
  ptReclaim: boolean;
  /**
   * split_huge_page() of an anonymous THP maps each zero-filled page (never written, or zeroes
   * written) to the shared zero page in every mapping, freeing it (remap_page with
   * RMP_USE_SHARED_ZEROPAGE, try_to_map_unused_to_zeropage; b1f202060afe, 6.12). A machine fact
   * too (mm_forbids_zeropage() refuses it, folded in here: mmForbidsZeropage does not decide it,
   * since a kernel may keep the zero page from read faults and still remap; the oracle probes it).
   */
  thpSplitZeropage: boolean;
  /**
   * userfaultfd write-protect mode for private anonymous memory (UFFDIO_REGISTER_MODE_WP,
   * UFFDIO_WRITEPROTECT, the PTE bit and its swap-entry twin): 5.7 (63b2d4174c4a, 292924b26024,
   * f45ec5ff16a7). Without it the `uffd` operations are n/a.
   */
  uffdWp: boolean;
  /**
   * Which VMA fork's copy of a PTE asks whether to keep its uffd-wp bit: `src-vma` (5.7,
   * b569a1760782: the parent's, so a child without the fork event keeps stale bits; swap entries
   * keep theirs; fork's early COW copy drops the bit and is writable), `dst-vma` (5.14 and 5.10.53,
   * 8f34f1eac382: the child's; the early COW copy keeps the bit, write-protected).
   */
  uffdWpForkVma: 'src-vma' | 'dst-vma';
  /**
   * The 5.19 series "userfaultfd-wp: Support shmem and hugetlbfs": uffd-wp on shmem, with PTE
   * markers keeping the protection of none PTEs (b1f9e876862d, 81e0f15f2ef6), and fork copying the
   * page table of any mapping the child has registered (vma_needs_copy, c56d1b62cce8); before, a
   * mapping without anon_vma (only the zero page mapped) was not copied and its protection lost.
   */
  uffdWpShmem: boolean;
  /**
   * vma_wants_writenotify() holds for a shared mapping registered for uffd-wp, so registering
   * write-protects its vm_page_prot (userfaultfd_set_vm_flags -> vma_set_page_prot): a read fault
   * maps a shmem page read-only and its next write faults (wp_page_shared), and mprotect()
   * making the mapping writable leaves every present PTE write-protected (no manual upgrade).
   * 51d3d5eb74ff "mm/userfaultfd: enable writenotify while userfaultfd-wp is enabled for a VMA"
   * (6.2; 6.1.8). Before, vm_page_prot stayed PAGE_SHARED: a read fault maps the page writable,
   * and mprotect(rw) makes every present PTE writable, a uffd-wp protected one too (its bit kept,
   * its writes no longer trapped). Matters only with uffdWpShmem.
   */
  uffdWpWritenotify: boolean;
  /**
   * UFFDIO_WRITEPROTECT un-protecting maps exclusive anonymous pages writable at once, as mprotect
   * does, and leaves a shared mapping's PTEs to its vm_page_prot (6.3, 931298e103c2
   * "mm/userfaultfd: rely on vma->vm_page_prot in uffd_wp_range()"); before, every present PTE
   * of the range took vm_get_page_prot(vm_flags)'s write bit: read-only in a private mapping
   * (even one never protected: its next write faults), writable in a shared one.
   */
  uffdUnprotectWritable: boolean;
  /**
   * The slow path that pin_user_pages_fast() falls back to for a FOLL_LONGTERM pin may drop
   * mmap_lock (6.2: get_user_pages_unlocked() with `locked`; FOLL_UNLOCKABLE from 6.3), so
   * faultin_page() sets FAULT_FLAG_ALLOW_RETRY and a write to a page the userfaultfd monitor
   * protected waits for the monitor. Before, __gup_longterm_unlocked() ran it with `locked` NULL:
   * handle_userfault() answers VM_FAULT_SIGBUS and the pin fails with EFAULT. Only the fast
   * fallback: pin_user_pages() and get_user_pages() never allow the retry, any era.
   */
  gupFastLongtermRetry: boolean;
  /** Swap is modelled for this profile (later issue). */
  swap: boolean;
  /** KSM merging is modelled for this profile (later issue). */
  ksm: boolean;
}

export type SwitchName = Exclude<keyof Profile, 'name' | 'summary' | 'source'>;

/** A part of the kernel a profile may lack: a step that needs it is n/a on that profile. */
export type Feature = 'cow-page-tables' | 'device-exclusive' | 'uffd-wp' | 'swap' | 'ksm';

/** What a profile without the feature lacks, as "<profile> has no ..." ends. */
const LACKS: Record<Feature, string> = {
  'cow-page-tables': 'COW page tables (fork ... cowpt)',
  'device-exclusive': 'device-exclusive entries (5.14 on)',
  'uffd-wp': 'userfaultfd write-protect (5.7 on)',
  swap: 'swap modelled',
  ksm: 'KSM modelled',
};

/** Whether the profile has the feature (the engine's n/a test of a step, the explorer's choice of operations). */
export function profileHas(p: Profile, f: Feature): boolean {
  switch (f) {
    case 'cow-page-tables': return p.cowPageTables !== 'none';
    case 'device-exclusive': return p.deviceExclusive !== 'none';
    case 'uffd-wp': return p.uffdWp;
    case 'swap': return p.swap;
    case 'ksm': return p.ksm;
  }
}

/** Why a step needing the feature is n/a on the profile. */
export function lacksText(p: Profile, f: Feature): string {
  return `${p.name} has no ${LACKS[f]}`;
}
