// A deliberately naive reference model of private anonymous memory under the modern (v6) rules
// (and, as rule sets, those of 5.19, 5.18, 5.9 and 5.7 where they differ for what it knows), written
// from the kernel's decision procedure (do_wp_page, do_anonymous_page, __get_user_pages) and
// fork, with plain objects and Maps and no attempt at speed. It is the oracle of the model-based
// tests: the model core must agree with it on everything a process or pagemap could observe.
//
// What it knows: processes with regions of pages; per page the VMA state (protection, dontfork,
// wipeonfork, which VMA it belongs to) and the PTE (none, the zero page, or a frame, writable or
// not); frames with refcount, mapcount, PG_anon_exclusive and a value; FOLL_GET references
// (`gup`, and a pipe's buffers after `vmsplice`); FOLL_PIN pins (`pin`, counted in the refcount
// with GUP_PIN_COUNTING_BIAS as for small pages) with MMF_HAS_PINNED on the mm, the unshare
// fault of R/O pins, fork's early COW of maybe-pinned pages, and the device's DMA through a pin.
// Swap: MADV_PAGEOUT reclaim of a page mapped once into a swap slot (swap entries, counted per
// entry, shared by fork; SWP_EXCLUSIVE from 5.19), the swap cache, and do_swap_page's swap-in under
// each era's rule (reuse_swap_page up to 5.17, the page count in 5.18, the exclusive bit from 5.19);
// mremap of pages to a fresh range (their entries move as they are). clear_refs' soft-dirty reset
// (write-protecting PTEs; pinned pages skipped from 5.11). KSM: MADV_MERGEABLE and ksmd's merging
// (with the PTE's dirty bit, which decides whether write_protect_page checks the page's
// references; break_cow's write fault up to 6.1, its unshare fault from 6.2; reuse_ksm_page on
// 5.7; the checksum delay, compared after the stable tree search up to 6.10, first from 6.11),
// and reclaim of a KSM page mapped once (rmap_walk_ksm) with its swap-in.
// Device-exclusive entries (make_device_exclusive, 5.14's rmap-walking variant and 6.15's one-PTE
// rework): the grant the device holds, the MMU notifiers that revoke it, the CPU fault that
// restores the PTE, fork restoring the entry first. userfaultfd write-protect: VM_UFFD_WP, the
// uffd-wp bit of PTEs, swap and device-exclusive entries, the write that goes to the monitor
// first, fork keeping or dropping the bit (by the parent's VMA up to 5.13, the child's from 5.14),
// mremap.
// COW page tables as On-Demand Fork has them (rssys/on-demand-fork, 8d43667 and d8ccd3c): `fork
// ... cowpt` shares the parent's last-level tables (one table object, several users) instead of
// copying PTEs, and any fault in or change of a shared table first copies it for the process
// (tfork_one_pte_table).
// Private anonymous THP (`thp` rules; a VM_HUGEPAGE mmap, MADV_HUGEPAGE): a write fault on an empty
// aligned 2 MiB of such a VMA (no PTE table there) maps a PMD-size large folio (NFolio: 512 pages
// with their values and PTE mapcounts, one refcount, the entire mapcount, the large mapcount,
// the pincount, 6.15's MM-id slots and maybe-mapped-shared bit; PG_anon_exclusive on the head
// while PMD-mapped) by a huge PMD (NPmd, one object for the 2 MiB of one process). Reads and
// stores go through it; GUP follows it (follow_huge_pmd: a write or an unshare fault first; a pin
// adds 1 to the refcount and 1 to the pincount); a write or unshare fault on a read-only one is
// do_huge_pmd_wp_page (reuse by `pmdReuse`, else the whole folio copied up to 5.7 or the PMD split
// and the page left to do_wp_page, whose large-folio rule is `largeReuse`: 6.15's
// __wp_can_reuse_large_anon_folio, 6.10's never, the small-page rule before); fork is
// copy_huge_pmd (shared write-protected, or split first when maybe pinned in an mm that pinned);
// munmap, MADV_DONTNEED, mremap, and mprotect or madvise that change a flag split the PMD first
// (__split_huge_pmd: 512 PTEs, PG_anon_exclusive to every page); clear_refs write-protects it;
// exit drops it whole (zap_huge_pmd). MADV_PAGEOUT of a THP page (ThpRules.pageout: 6.15's
// MM-id test, or 5.7-6.2's page_mapcount of the head under a PMD, of the page under a PTE)
// splits the folio (split_huge_page, refused while a reference no mapping explains holds it;
// 6.15's device-exclusive entries of it migrated back to read-only PTEs; 6.12's zero-filled
// pages mapped to the zero page) and reclaims the 4 KiB page; MADV_COLLAPSE makes a THP mapped
// by a huge PMD (device-exclusive entries restored first, as swap entries are swapped in).
// Device-exclusive entries of a THP's page: the GUP's FOLL_SPLIT_PMD splits the PMD; 5.14-6.14
// leave a tail page NULL and walk the head's rmap over the whole folio (each PTE of a page of it
// an entry of its own page, the walk ending at an entry made before), 6.15 makes the one entry,
// which keeps its page's mapcount (and the folio's large mapcount and MM-id slot).
// UFFDIO_WRITEPROTECT of a THP's page splits the PMD first (change_pmd_range). ksmd scans a huge
// PMD's pages as they are; try_to_merge_one_page splits the folio before it merges a page of it,
// and two equal pages of one folio split it without a merge (cmp_and_merge_page).
// Not modelled with THP, so the THP runs (test/explore/model-based-thp.test.ts) draw none of
// them: these throw where they meet a THP: the huge zero page (a read fault on an empty
// THP-eligible 2 MiB), a GUP fault there, THP pageout of 6.3-6.14 (folio_mapcount,
// folio_estimated_sharers, folio_likely_mapped_shared), GUP's forced COW break (5.8, 5.4) on a
// huge PMD. Not there either: KSM's max_page_sharing (a THP's 510 zero-filled pages of a mergeable
// VMA would reach it where no split maps them to the zero page, before 6.12), MADV_COLLAPSE's uffd-wp refusals
// (SCAN_PTE_UFFD_WP, none PTEs in a registered VMA); the COW page tables' rule sets have no THP; and nothing the
// explorer's one-page operations never do is there: mprotect or MADV_DONTNEED of a whole PMD
// (change_huge_pmd, a whole-PMD zap), a THP moved by mremap whole, swap entries of a whole THP,
// deferred splits (the THP shrinker), a huge PMD with the uffd-wp bit.
//
// GUP, one page at a time, is __get_user_pages(): check_vma_flags, then follow_page_pte and
// faultin_page until the page can be grabbed: a missing PTE is faulted in (write or read), a
// FOLL_WRITE on a read-only PTE takes a write fault (do_wp_page), an R/O FOLL_PIN on a read-only
// PTE whose page gup_must_unshare() takes an unshare fault (FAULT_FLAG_UNSHARE), then
// try_grab_folio adds 1 (FOLL_GET) or GUP_PIN_COUNTING_BIAS (FOLL_PIN); the zero page holds no
// count (FOLL_PIN skips it from 6.5 on; the model keeps no count for it at all).
//
// VMA boundaries follow Linux: an mprotect/madvise/munmap range splits the VMAs it touches, and
// neighbouring VMAs with the same flags and compatible anon_vmas merge again (vma_merge); regions
// are laid out one after another, so consecutive mmaps are neighbours. Boundaries matter only for
// anon_vma: fork copies the PTEs of a VMA only if it has one (vma_needs_copy), so whether
// zero-page PTEs and page tables are inherited depends on them.

export type Prot = 'rw' | 'ro';

export interface NFrame {
  id: number;
  refcount: number;
  mapcount: number;
  /** PG_anon_exclusive. */
  exclusive: boolean;
  value: number;
  /** The swap slot whose swap cache holds this frame (folio_test_swapcache; the cache holds one reference). */
  swapcache: NSwap | null;
  /** PageKsm: a KSM page (never PG_anon_exclusive; a write or unshare fault always copies it). */
  ksm?: boolean;
  /** In KSM's stable tree (a KSM page that ksmd made and kept; stable_tree_insert). */
  stable?: boolean;
  /**
   * The large folio (a PMD-size THP) this is a page of; then `refcount` is the folio's (one
   * counter for all its pages, as folio_ref_count()), `mapcount` the page's PTE mappings, and
   * `exclusive` the page's PG_anon_exclusive (a PMD-mapped folio keeps it on its head).
   */
  folio?: NFolio;
}

/**
 * A PMD-size anonymous THP (a large folio of PTES_PER_TABLE pages): its reference count, its PMD
 * mappings (_entire_mapcount), all its mappings, PMD and PTE ones (_large_mapcount), its pins
 * (_pincount: FOLL_PIN adds 1 to the refcount and 1 here, not GUP_PIN_COUNTING_BIAS), and 6.15's
 * MM-id tracking (_mm_id[2], _mm_id_mapcount[2] as real counts, FOLIO_MM_IDS_SHARED_BIT).
 */
export interface NFolio {
  pages: NFrame[];
  refcount: number;
  entire: number;
  large: number;
  pincount: number;
  mmIds: [NProc | null, NProc | null];
  mmCounts: [number, number];
  shared: boolean;
}

/**
 * A huge PMD (a PMD leaf mapping a whole folio): every page of the 2 MiB in the process holds the
 * same object; `base` is the address (page number) of the folio's first page.
 */
export interface NPmd {
  folio: NFolio;
  base: number;
  writable: boolean;
  dirty: boolean;
  softDirty?: boolean;
}

/**
 * A swap slot: how many swap PTEs refer to it (swap_map's count), what was written to it, and
 * the frame its swap cache holds (null: none; then a swap-in reads `value` into a new frame).
 */
export interface NSwap {
  id: number;
  count: number;
  value: number;
  cache: NFrame | null;
}

/** A swap PTE: the slot and SWP_EXCLUSIVE (pte_swp_exclusive, 5.19 on). */
export interface NSwapPte {
  slot: NSwap;
  exclusive: boolean;
  /** pte_swp_uffd_wp. */
  uffdWp?: boolean;
  /** pte_swp_soft_dirty, carried from and back to the PTE. */
  softDirty?: boolean;
}

export interface NPte {
  /** null: the shared zero page (no refcount, no mapcount). */
  frame: NFrame | null;
  writable: boolean;
  /**
   * pte_dirty: set by a store and by the faults that map a page for writing (pte_mkdirty),
   * kept by fork, mprotect, clear_refs and mremap, cleared by KSM's write_protect_page.
   */
  dirty: boolean;
  /** The uffd-wp bit (pte_uffd_wp): set by UFFDIO_WRITEPROTECT, which write-protects the PTE too. */
  uffdWp?: boolean;
  /**
   * _PAGE_SOFT_DIRTY: set with the dirty bit (x86's pte_mkdirty sets both) and by mremap
   * (move_soft_dirty_pte), kept by fork, mprotect, KSM's write_protect_page and a swap or
   * device-exclusive entry, cleared by clear_refs, not carried by KSM's replace_page (a new PTE
   * from vm_page_prot). Absent: clear.
   */
  softDirty?: boolean;
}

/**
 * A device-exclusive entry (make_device_exclusive): the page the device holds; the CPU must fault
 * (and so revoke the device's access) to reach it. `writable`: 5.14-6.14's
 * SWP_DEVICE_EXCLUSIVE_WRITE kind (6.15 has one kind; restore asks can_change_pte_writable).
 */
export interface NDevx {
  frame: NFrame;
  writable: boolean;
  uffdWp: boolean;
  /** pte_swp_soft_dirty: carried from the PTE (make_device_exclusive) and back (restore_exclusive_pte). */
  softDirty?: boolean;
}

/**
 * A device-exclusive grant (the driver's mirror of one page): the process and the page (an NPage
 * object: it moves with mremap), the frame the device holds, and whether an MMU notifier told the
 * device it lost exclusive access (or make_device_exclusive failed: revoked from the start).
 */
export interface NGrant {
  p: NProc;
  page: NPage | null;
  frame: NFrame | null;
  revoked: boolean;
  /** Why the page was not granted: GUP's EFAULT (make_device_exclusive_range() returns it for its first page), or EBUSY (not converted); null when granted. */
  err: 'EFAULT' | 'EBUSY' | null;
}

/** What the pages of one VMA share. */
export interface NVma {
  /** VM_SOFTDIRTY: set on a new mapping, cleared by clear_refs (soft-dirty tracking armed); absent: set. */
  vmSoftdirty?: boolean;
  anonVma: boolean;
  /** Which anon_vma (0: none). */
  anonId: number;
  /** VM_HUGEPAGE (MADV_HUGEPAGE): a write fault on an empty, aligned 2 MiB inside it maps a THP. */
  hugepage?: boolean;
  /** Its anon_vma came from anon_vma_fork (the chain links the parent's too): it merges only with the same anon_vma. */
  uncowed?: boolean;
  /**
   * vm_pgoff minus the start (in pages): 0 for a mapping made by mmap; mremap keeps the page
   * offset of a VMA with an anon_vma, so its copy at a new address has another. VMAs merge only
   * where it is the same (the offsets line up).
   */
  shift?: number;
  /**
   * When it last entered its anon_vmas' interval trees (anon_vma_prepare, fork, or a change of
   * its bounds: see reinsert): the device-exclusive walk visits VMAs with the same vm_pgoff in
   * this order. Absent: never.
   */
  seq?: number;
}

export interface NPage {
  vma: NVma;
  prot: Prot;
  dontfork: boolean;
  wipeonfork: boolean;
  /** VM_MERGEABLE (MADV_MERGEABLE). */
  mergeable?: boolean;
  pte: NPte | null;
  /** A swap entry in the PTE (then `pte` is null). */
  swp: NSwapPte | null;
  /** A device-exclusive entry in the PTE (then `pte` and `swp` are null). */
  devx?: NDevx | null;
  /** VM_UFFD_WP: registered with userfaultfd in write-protect mode. */
  uffd?: boolean;
  /** A huge PMD mapping this page with the rest of its 2 MiB (then `pte`, `swp` and `devx` are null). */
  pmd?: NPmd | null;
}

export interface NRegion {
  id: number;
  n: number;
  /** Its first page's address (page number), in the process that mapped it and its children. */
  base: number;
}

export interface NProc {
  id: number;
  alive: boolean;
  regions: NRegion[];
  /** `${region id}:${page}` -> page; absent = not mapped. */
  pages: Map<string, NPage>;
  /** MM_ANONPAGES. */
  rss: number;
  /** Faults that succeeded (mm_account_fault skips VM_FAULT_ERROR; SIGSEGV never reaches it). */
  minflt: number;
  /** Where the next mmap goes (regions are laid out one after another). */
  next: number;
  /** MMF_HAS_PINNED: a FOLL_PIN ran on this mm (sticky; not inherited by fork; 5.9 on). */
  hasPinned: boolean;
  /** The userfaultfd context has UFFD_FEATURE_EVENT_FORK. */
  uffdForkEvent: boolean;
  /** Write-protect faults handed to the monitor (handle_userfault). */
  uffdFaults: number;
  /**
   * The 2 MiB blocks (address / 512) MADV_COLLAPSE made a THP of (a huge PMD maps them since;
   * model-based.test.ts's small-page runs compare nothing after a collapse, model-based-thp's do).
   */
  thp?: Set<number>;
  /**
   * KSM's rmap items that hang on a stable node (rmap_item->head, STABLE_FLAG): address (page
   * number) -> the stable KSM page. Set where ksmd merged a page or met a KSM page it maps; gone
   * when ksmd next passes the address and finds another page there, or none (a fork's child
   * starts with none: ksm_fork copies no rmap item). Absent: none.
   */
  ksmItems?: Map<number, NFrame>;
  /**
   * KSM's rmap items' oldchecksum (cmp_and_merge_page's calc_checksum at the item's last
   * comparison): address (page number) -> the page's value then. An item not here has the 0 of
   * alloc_rmap_item's zeroed memory, which no page's checksum equals. Kept while the item lives
   * (off a stable node too); gone when ksmd passes the address with no page to scan.
   */
  ksmChecksums?: Map<number, number>;
  /**
   * KSM's smart scan (6.7 on): each rmap item's age (the times ksmd met a page there that was no
   * KSM page, a u8 stopping at 255) and remaining_skips. Absent: age 0, no skips. Goes with the item.
   */
  ksmAges?: Map<number, { age: number; skips: number }>;
  /** MMF_USE_ODF: a `fork ... cowpt` ran on this mm or its ancestor: every fork of it shares tables (sticky, inherited). */
  cowPgtable?: boolean;
  /** The last-level tables this process reaches through a write-protected PMD, by table number (address / 512). */
  shared?: Map<number, NTable>;
  /** The 2 MiB blocks (address / 512) of VM_HUGEPAGE mappings that have a PTE table (a split PMD's): no huge fault there. */
  tables?: Set<number>;
}

/** A PTE entry as a table holds it: a present PTE, a swap entry, or neither (none). */
export interface NEntry {
  pte: NPte | null;
  swp: NSwapPte | null;
}

/**
 * A last-level page table shared by COW page tables (On-Demand Fork): its entries, as they were
 * when it was first shared (a shared table is never changed in place: whoever would change it
 * copies it first), and the processes whose PMD points at it (pte_table_refcount). The pages it
 * maps hold one reference and one mapping for the table, whatever the number of its users; the
 * processes' pages in its range hold the same NPte / NSwapPte objects as `entries`.
 */
export interface NTable {
  users: Set<NProc>;
  entries: Map<number, NEntry>;
}

/** Pages a last-level page table maps (2 MiB of 4 KiB pages), and pages of a PMD-size THP. */
export const PTES_PER_TABLE = 512;

/** What MADV_COLLAPSE returned (its errno's name) and how many THPs it made. */
export interface NCollapse {
  err: 'ok' | 'EINVAL' | 'EAGAIN' | 'ENOMEM';
  collapsed: number;
}

/**
 * A FOLL_GET reference (`gup`, or the page a pipe buffer holds after vmsplice): holds the frame
 * it was taken on (null: the zero page, which holds nothing).
 */
export interface NRef {
  frame: NFrame | null;
}

/** A FOLL_PIN pin of one page (pin_user_pages): the frame it holds (null: the zero page). */
export interface NPin {
  frame: NFrame | null;
  /** FOLL_WRITE: the device may write through it. */
  write: boolean;
  longterm: boolean;
}

/** include/linux/mm.h: what a pin adds to a small folio's refcount. */
export const GUP_PIN_COUNTING_BIAS = 1024;

/** The reuse rule of do_wp_page (5.19 on: PG_anon_exclusive, else refcount == 1). */
export type ReuseRule = 'anon-exclusive' | 'pagecount' | 'mapcount';

/**
 * Which R/O FOLL_PIN takes an unshare fault first (gup_must_unshare): none before 5.19; from 5.19
 * an anonymous page not PG_anon_exclusive; from 6.2 also the zero page (anything in a COW
 * mapping) when the pin is long-term.
 */
export type UnshareRule = 'none' | 'anon' | 'all';

export interface NaiveOptions {
  reuse: ReuseRule;
  /** PG_anon_exclusive is tracked (5.19+). */
  pae: boolean;
  /** mprotect(rw) maps exclusive pages writable at once (6.0+). */
  mprotectUpgrade: boolean;
  /** mprotectUpgrade takes clean PTEs too (6.2); 6.0 and 6.1 want the PTE dirty (absent: false). */
  mprotectUpgradeClean?: boolean;
  unshare: UnshareRule;
  /** fork copies maybe-pinned pages of an mm with MMF_HAS_PINNED for the child at once (5.9+). */
  earlyCow: boolean;
  /**
   * do_swap_page maps an exclusive swapped-in page writable on a read fault too (6.11,
   * "mm/swap: reuse exclusive folio directly instead of wp page faults"); before, only a write
   * fault did.
   */
  swapinReadWritable?: boolean;
  /**
   * How do_swap_page decides that a write fault may map the page writable: `reuse_swap_page`
   * (up to 5.17: mapcount + swap count <= 1, references not counted), `refcount` (5.18: the page
   * count once the swap cache is freed), `exclusive-bit` (5.19 on: SWP_EXCLUSIVE, else the only
   * reference). Undefined: swap not modelled.
   */
  swapin?: 'reuse_swap_page' | 'refcount' | 'exclusive-bit';
  /**
   * do_wp_page under the page-count rule frees the swap cache of a page no swap entry refers to
   * and reuses it if that leaves only our reference (5.18, "mm: COW fixes part 1"); before, a page
   * in the swap cache is always copied.
   */
  wpFreeSwapcache?: boolean;
  /**
   * KSM's break_cow after a refused partner: break_ksm's fault on the new KSM page is a write
   * fault (`write`, up to 6.1: a writable, dirty copy) or an unshare fault (`unshare`, 6.2 on,
   * 6cce3314b928: a read-only, clean copy).
   */
  ksmBreakCow: 'write' | 'unshare';
  /**
   * Where cmp_and_merge_page compares a page's checksum with its rmap item's oldchecksum: `true`
   * (6.11 on, d58a361b0350): first, with remove_rmap_item_from_tree, so a page new to ksmd or
   * changed since its last scan searches no tree; absent or false (up to 6.10): only after the
   * stable tree search found no KSM page to merge into (that search still counts the page's own
   * item on its node), before the unstable tree.
   */
  ksmChecksumFirst?: boolean;
  /**
   * ksmd's smart scan (6.7 on, 5e924ff54d08; should_skip_rmap_item): a page that is no KSM page
   * is left out of a pass by its item's age: never in its first four meetings, then 1, 2, 4 and 8
   * passes after each one it is compared in (skip_age of the age then). Absent or false: none.
   */
  ksmSmartScan?: boolean;
  /** Reclaim keeps maybe-pinned pages out of the swap cache (5.11, feb889fb40fa). */
  reclaimSkipsPinned?: boolean;
  /** clear_refs (soft-dirty) leaves a writable PTE of a maybe-pinned page alone (5.11, 9348b73c2e1b: pte_is_pinned). */
  clearRefsSkipsPinned?: boolean;
  /**
   * make_device_exclusive: `v5.14` (make_device_exclusive_range: an rmap walk turns every mapping
   * of the page into an entry of the PTE's writability and drops the mapcount; restore maps it
   * writable iff the entry was the writable kind), `v6.15` (the one PTE, mapcount kept; restore
   * asks can_change_pte_writable). Undefined: none (before 5.14).
   */
  deviceExclusive?: 'v5.14' | 'v6.15';
  /**
   * What 5.14's make_device_exclusive_range() asks after its rmap walk: `page` (5.14-5.17,
   * page_make_device_exclusive: `!page_mapcount(page)` of the head) or `folio` (5.18-6.14,
   * folio_make_device_exclusive: `!folio_mapcount(folio)`; the default). They differ only for a THP
   * whose walk stopped early at an entry made before.
   */
  deviceExclusiveHeld?: 'page' | 'folio';
  /**
   * Which VMA fork asks whether a PTE keeps its uffd-wp bit: the parent's (`src-vma`, 5.7-5.13,
   * b569a1760782; swap entries always keep theirs, the early COW copy drops it) or the child's
   * (`dst-vma`, 8f34f1eac382 in 5.14: swap entries and the early COW copy too).
   */
  uffdWpForkVma?: 'src-vma' | 'dst-vma';
  /** vma_needs_copy() copies a mapping without anon_vma when the child's is registered for uffd-wp (5.19, c56d1b62cce8). */
  uffdWpForkCopies?: boolean;
  /** UFFDIO_WRITEPROTECT un-protecting maps an exclusive anonymous page writable at once (6.3, 931298e103c2); before, it maps every present page read-only. */
  uffdUnprotectWritable?: boolean;
  /** mremap out of a registered VMA clears the uffd-wp bits of what moves (6.13, 0cef0bb836e3). */
  mremapClearsUffdWp?: boolean;
  /**
   * A FOLL_LONGTERM pin's gup-fast fallback may drop mmap_lock, so its write fault may wait for the
   * userfaultfd monitor (6.2: get_user_pages_unlocked with `locked`); before, EFAULT.
   */
  gupFastLongtermRetry?: boolean;
  /** `fork ... cowpt` as On-Demand Fork does it (undefined: no COW page tables). */
  odf?: OdfRules;
  /**
   * MADV_COLLAPSE (6.1, 7d8faaf15545): `writable-pte` refuses a range none of whose PTEs is
   * writable (SCAN_PAGE_RO, up to 6.13), `any-pte` does not (6.18). Undefined: no MADV_COLLAPSE.
   */
  collapse?: 'writable-pte' | 'any-pte';
  /**
   * A GUP that does not ask to write breaks COW first all the same, in a private (COW) mapping:
   * `get-and-pin` (5.8, 17839856fd58, reverted by a308c71bf1e6 in 5.9): any FOLL_GET or FOLL_PIN
   * (vmsplice and gup included) is treated as FOLL_WRITE once the VMA has passed its read check,
   * and the fault it takes is a real write fault (the monitor sees it); in a read-only VMA the
   * break is done once (FOLL_COW: the dirty PTE stays read-only and is followed as it is).
   * `pin` (seed 001, "mm/gup: Enforce COW for FOLL_PIN", not merged): FOLL_PIN only, by a
   * FAULT_FLAG_BREAK_COW fault that userfaultfd does not see. Undefined: no forced break.
   */
  gupCowBreak?: 'get-and-pin' | 'pin';
  /** gup-fast takes only a PTE that is already writable, whatever the request (5.8: it passes FOLL_WRITE to the lockless walk). */
  gupFastWritableOnly?: boolean;
  /** Private anonymous THP (undefined: none; a VM_HUGEPAGE mmap throws). */
  thp?: ThpRules;
  /** split_huge_page() maps zero-filled pages to the shared zero page (6.12, b1f202060afe). */
  thpSplitZeropage?: boolean;
}

/**
 * The THP rules (mm/huge_memory.c, mm/memory.c):
 * - pmdReuse: do_huge_pmd_wp_page's reuse test of a PMD-mapped folio: `mapcount` (up to 5.17:
 *   reuse_swap_page on the compound page, the largest page_mapcount <= 1), `refcount` (5.18: the
 *   folio refcount is 1), `anon-exclusive` (5.19 on: PageAnonExclusive on the head, else refcount 1).
 * - pmdCopy: a write fault it cannot reuse: `huge` (up to 5.7: copy the whole 2 MiB) or `split`
 *   (5.8 on, 3917c80280c9: split the PMD and leave the 4 KiB page to do_wp_page).
 * - largeReuse: do_wp_page on a page of a PTE-mapped large folio without PG_anon_exclusive:
 *   `as-small` (up to 6.9: the small-page rule with the folio's refcount), `never` (6.10-6.14:
 *   wp_can_reuse_anon_folio refuses large folios), `mm-exclusive` (6.15, c3edd36ad29b:
 *   __wp_can_reuse_large_anon_folio: two or more mappings, all of this mm, all references theirs).
 */
export interface ThpRules {
  pmdReuse: 'mapcount' | 'refcount' | 'anon-exclusive';
  pmdCopy: 'huge' | 'split';
  largeReuse: 'as-small' | 'never' | 'mm-exclusive';
  /**
   * MADV_PAGEOUT's "do not interfere with other mappings" test of a THP
   * (madvise_cold_or_pageout_pte_range) before it splits the folio: `page-mapcount` (5.7-6.2: the
   * page_mapcount() of the head under a huge PMD, of the page under a PTE, must be 1), `mm-id`
   * (6.15 on: folio_maybe_mapped_shared()). Undefined: THP pageout not modelled (6.3-6.14 ask
   * folio_mapcount(), folio_estimated_sharers(), folio_likely_mapped_shared()).
   */
  pageout?: 'page-mapcount' | 'mm-id';
}

/**
 * On-Demand Fork's rules (rssys/on-demand-fork, branch paper-version-kernel-v5.6.19, mm/memory.c).
 * - share: which tables copy_pmd_range_tfork shares: those of writable mappings ('any', 8d43667),
 *   or only those one writable mapping covers entirely ('whole-table', d8ccd3c); a read-only
 *   mapping's table is copied per page, as is every mapping after one copied per page in the
 *   same table (the child has its own table there then).
 * - takeBack: a fault on a table whose count is 1 takes it back without a copy when the
 *   faulting mapping covers the whole table ('whole-table', 8d43667 __handle_mm_fault) or never
 *   ('never', eebe694).
 * - dontneed: MADV_DONTNEED on a shared table copies it, then zaps the mapping's whole part of
 *   the table ('vma', 8d43667 zap_pmd_range), or is ignored in a process using ODF ('ignored',
 *   d8ccd3c madvise_dontneed_free).
 * mremap of a shared range is modelled with the table copied first (d8ccd3c).
 */
export interface OdfRules {
  share: 'any' | 'whole-table';
  takeBack: 'whole-table' | 'never';
  dontneed: 'vma' | 'ignored';
}

/** Linux 6.15 on (6.18). */
export const V6_RULES: NaiveOptions = {
  reuse: 'anon-exclusive', pae: true, mprotectUpgrade: true, mprotectUpgradeClean: true, unshare: 'all', earlyCow: true, swapinReadWritable: true, swapin: 'exclusive-bit', reclaimSkipsPinned: true, clearRefsSkipsPinned: true,
  ksmBreakCow: 'unshare', ksmChecksumFirst: true, ksmSmartScan: true,
  deviceExclusive: 'v6.15', uffdWpForkVma: 'dst-vma', uffdWpForkCopies: true, uffdUnprotectWritable: true, mremapClearsUffdWp: true, gupFastLongtermRetry: true,
  collapse: 'any-pte', thp: { pmdReuse: 'anon-exclusive', pmdCopy: 'split', largeReuse: 'mm-exclusive', pageout: 'mm-id' }, thpSplitZeropage: true,
};
/**
 * 6.2: as V6_RULES, but a swap-in maps the page writable only on a write fault (to 6.10), KSM's
 * checksum compared after the stable tree search (to 6.10), device-exclusive entries of 5.14 (to 6.14), UFFDIO_WRITEPROTECT leaving un-protected PTEs
 * read-only (6.3 changed it), mremap keeping uffd-wp bits (to 6.12), and MADV_COLLAPSE wanting a
 * writable PTE (to 6.17).
 */
export const V6_2_RULES: NaiveOptions = {
  ...V6_RULES, swapinReadWritable: false, ksmChecksumFirst: false, ksmSmartScan: false, deviceExclusive: 'v5.14', uffdUnprotectWritable: false, mremapClearsUffdWp: false, collapse: 'writable-pte', thpSplitZeropage: false,
  thp: { pmdReuse: 'anon-exclusive', pmdCopy: 'split', largeReuse: 'as-small', pageout: 'page-mapcount' },
};
/** 5.19 to 6.1 but for mprotect (6.0): R/O pins unshare anonymous pages, not the zero page; KSM's break_cow is a write fault. */
export const V5_19_RULES: NaiveOptions = {
  reuse: 'anon-exclusive', pae: true, mprotectUpgrade: false, unshare: 'anon', earlyCow: true, swapin: 'exclusive-bit', reclaimSkipsPinned: true, clearRefsSkipsPinned: true,
  ksmBreakCow: 'write', deviceExclusive: 'v5.14', uffdWpForkVma: 'dst-vma', uffdWpForkCopies: true,
  thp: { pmdReuse: 'anon-exclusive', pmdCopy: 'split', largeReuse: 'as-small', pageout: 'page-mapcount' },
};
/**
 * 5.9 to 5.17: reuse only when page_count == 1 (never a KSM page); early COW at fork; no
 * unsharing. Swap as in 5.9 and 5.10 (reuse_swap_page at swap-in, pinned pages reclaimed,
 * clear_refs write-protects pinned pages); 5.11 keeps pinned pages (give `clearRefsSkipsPinned:
 * true`, `reclaimSkipsPinned: true`); 5.18 is V5_18_RULES. No device-exclusive entries (5.14
 * gives `deviceExclusive: 'v5.14'`); fork asks the parent's VMA about uffd-wp (5.14: `dst-vma`).
 */
export const V5_9_RULES: NaiveOptions = {
  reuse: 'pagecount', pae: false, mprotectUpgrade: false, unshare: 'none', earlyCow: true, swapin: 'reuse_swap_page', reclaimSkipsPinned: false,
  ksmBreakCow: 'write', uffdWpForkVma: 'src-vma', thp: { pmdReuse: 'mapcount', pmdCopy: 'split', largeReuse: 'as-small', pageout: 'page-mapcount' },
};
/**
 * 5.18 ("mm: COW fixes part 1"): as 5.11 (pinned pages kept off swap, clear_refs skips them), and
 * the page count decides at swap-in (writable on a write fault when the swap cache, freed if no
 * entry refers to it, leaves ours the only reference) and in do_wp_page (which frees the swap
 * cache the same way first). A device-exclusive grant of a THP's head asks folio_mapcount()
 * (0d2514859ced, the folio conversion of make_device_exclusive_range()).
 */
export const V5_18_RULES: NaiveOptions = {
  ...V5_9_RULES, swapin: 'refcount', wpFreeSwapcache: true, reclaimSkipsPinned: true, clearRefsSkipsPinned: true,
  deviceExclusive: 'v5.14', deviceExclusiveHeld: 'folio', uffdWpForkVma: 'dst-vma', thp: { pmdReuse: 'refcount', pmdCopy: 'split', largeReuse: 'as-small', pageout: 'page-mapcount' },
};
/** 5.7 (mainline): reuse by mapcount (plus swap count: reuse_swap_page; a KSM page by reuse_ksm_page); GUP breaks no COW; fork shares every page. */
export const V5_7_RULES: NaiveOptions = {
  reuse: 'mapcount', pae: false, mprotectUpgrade: false, unshare: 'none', earlyCow: false, swapin: 'reuse_swap_page', reclaimSkipsPinned: false,
  ksmBreakCow: 'write', uffdWpForkVma: 'src-vma', thp: { pmdReuse: 'mapcount', pmdCopy: 'huge', largeReuse: 'as-small', pageout: 'page-mapcount' },
};

/** 5.8: 5.7 + the forced COW break of every GUP (17839856fd58), gup-fast for writable PTEs only. */
export const V5_8_RULES: NaiveOptions = { ...V5_7_RULES, gupCowBreak: 'get-and-pin', gupFastWritableOnly: true, thp: { pmdReuse: 'mapcount', pmdCopy: 'split', largeReuse: 'as-small', pageout: 'page-mapcount' } };
/** 5.9-rc4 (page-count reuse, no early COW at fork, no forced break: a308c71bf1e6). */
export const V5_9_RC4_RULES: NaiveOptions = { ...V5_9_RULES, earlyCow: false };
/** Seed 001 on 5.9-rc4: FOLL_PIN breaks COW at GUP time (FAULT_FLAG_BREAK_COW), FOLL_GET and gup-fast do not. */
export const V5_9_RC4_PIN_COW_RULES: NaiveOptions = { ...V5_9_RC4_RULES, gupCowBreak: 'pin' };
/** 5.14: 5.9 + pinned pages kept from reclaim and clear_refs (5.11), device-exclusive entries, fork asking the child's VMA about uffd-wp. */
export const V5_14_RULES: NaiveOptions = { ...V5_9_RULES, reclaimSkipsPinned: true, clearRefsSkipsPinned: true, deviceExclusive: 'v5.14', deviceExclusiveHeld: 'page', uffdWpForkVma: 'dst-vma' };
/** 6.15: as V6_RULES but MADV_COLLAPSE still wants a writable PTE (to 6.17). */
export const V6_15_RULES: NaiveOptions = { ...V6_RULES, collapse: 'writable-pte' };

/**
 * The long-term kernels (src/profiles/builtin.ts LTS_PROFILES) as the naive model can say them:
 * each its mainline release's rules plus the backports that change one of them. 5.4 is 5.8 (no
 * userfaultfd-wp: its runs draw none); 6.1 is 5.19 with 6.0's mprotect (dirty PTEs only); 6.6 is 6.2 with 6.3's
 * UFFDIO_WRITEPROTECT; 6.12 is v6 with 5.14's device-exclusive entries and 6.13's MADV_COLLAPSE.
 */
export const LTS_RULES: readonly (readonly [string, NaiveOptions])[] = [
  ['5.4', V5_8_RULES],
  ['5.10', { ...V5_9_RULES, reclaimSkipsPinned: true, clearRefsSkipsPinned: true, uffdWpForkVma: 'dst-vma' }],
  ['5.15', V5_14_RULES],
  ['6.1', { ...V5_19_RULES, mprotectUpgrade: true, collapse: 'writable-pte' }],
  ['6.6', { ...V6_2_RULES, uffdUnprotectWritable: true }],
  ['6.12', { ...V6_RULES, deviceExclusive: 'v5.14', collapse: 'writable-pte', thp: { pmdReuse: 'anon-exclusive', pmdCopy: 'split', largeReuse: 'never' } }],
];

/** On-Demand Fork as released (8d43667), on the 5.6 rules (5.7's for what the naive model knows). */
export const ODF_RULES: NaiveOptions = { ...V5_7_RULES, odf: { share: 'any', takeBack: 'whole-table', dontneed: 'vma' }, thp: undefined };
/** On-Demand Fork after eebe694 (no take-back) and d8ccd3c (whole tables only, MADV_DONTNEED ignored). */
export const ODF_2021_RULES: NaiveOptions = { ...V5_7_RULES, odf: { share: 'whole-table', takeBack: 'never', dontneed: 'ignored' }, thp: undefined };

/** How one page is grabbed by GUP. */
interface GupFlags {
  /** FOLL_WRITE. */
  write: boolean;
  /** FOLL_PIN (else FOLL_GET). */
  pin: boolean;
  /** FOLL_LONGTERM. */
  longterm: boolean;
  /**
   * The caller lets GUP drop mmap_lock (gup-fast's fallback; a FOLL_LONGTERM pin's only from 6.2),
   * so a write fault may wait for the userfaultfd monitor (FAULT_FLAG_ALLOW_RETRY). Without it a
   * write to a page the monitor protected fails (VM_FAULT_SIGBUS): the GUP is EFAULT.
   */
  unlockable?: boolean;
  /** FOLL_SPLIT_PMD: follow_pmd_mask splits a huge PMD and follows the PTE (make_device_exclusive's GUP). */
  splitPmd?: boolean;
}

export function pageKey(r: NRegion, i: number): string {
  return `${r.id}:${i}`;
}

export class NaiveKernel {
  readonly procs: NProc[] = [];
  /** Frames in use (refcount > 0). */
  readonly frames = new Set<NFrame>();
  cowCopies = 0;
  reuses = 0;
  /** Pages copied for a child at fork (early COW of maybe-pinned pages). */
  forkCopies = 0;
  private nextFrame = 1;
  private nextRegion = 0;
  private nextAnon = 1;
  /** The next NVma.seq. */
  private nextSeq = 1;
  private nextSlot = 1;
  /** Pages reclaim swapped out. */
  swapOuts = 0;
  /** KSM's list of registered mms (ksm_mm_head), in scan order. */
  readonly ksmMms: NProc[] = [];
  /** Pages ksmd merged (replace_page) and KSM pages it made. */
  ksmMerged = 0;
  /** Device-exclusive grants, in the order they were made. */
  readonly grants: NGrant[] = [];
  /** Tables a fork shared (counted per child), and shared tables copied (tfork_one_pte_table) or taken back. */
  tablesShared = 0;
  tableCopies = 0;
  tableTakeBacks = 0;
  /** THP: huge PMDs reused by do_huge_pmd_wp_page (write or unshare), copied whole, split, shared or split by fork; large folios reused at PTE level (largeReuse), split (split_huge_page). */
  readonly thpEvents = { pmdReuse: 0, pmdCopy: 0, split: 0, forkShare: 0, forkSplit: 0, largeReuse: 0, folioSplit: 0 };
  /**
   * The accessed bit, which this model does not keep (the split paths' NaiveSched does: their
   * PTE re-checks compare it): told where a fault changes it on a PTE it keeps, young (the fault
   * handler's pte_mkyoung: wp_page_reuse, handle_pte_fault's retry after the monitor) or old
   * (restore_exclusive_pte's pte_mkold). A PTE made anew is young; a CPU access is the caller's.
   */
  accessed: ((pte: NPte, young: boolean) => void) | null = null;

  constructor(readonly rules: NaiveOptions = V6_RULES) {}

  spawn(): NProc {
    const p: NProc = { id: this.procs.length, alive: true, regions: [], pages: new Map(), rss: 0, minflt: 0, next: 0, hasPinned: false, uffdForkEvent: false, uffdFaults: 0 };
    this.procs.push(p);
    return p;
  }

  private newFrame(value: number): NFrame {
    const f: NFrame = { id: this.nextFrame++, refcount: 1, mapcount: 1, exclusive: this.rules.pae, value, swapcache: null };
    this.frames.add(f);
    return f;
  }

  private put(f: NFrame): void {
    f.refcount--;
    if (f.refcount === 0) this.frames.delete(f);
  }

  /** Drop the swap cache's reference (delete_from_swap_cache): the frame leaves the cache, the slot keeps its content. */
  private dropCache(slot: NSwap): void {
    const f = slot.cache;
    if (f === null) return;
    slot.value = f.value;
    slot.cache = null;
    f.swapcache = null;
    this.put(f);
  }

  /** Drop a PTE: the frame loses a mapping and a reference (a swap entry: the slot loses a count, free_swap_and_cache). */
  private zap(p: NProc, pg: NPage): void {
    if (pg.pmd) {
      this.zapHugePmd(p, pg.pmd);
      return;
    }
    if (pg.devx) {
      // zap_nonpresent_ptes: the entry's reference goes, and (6.15, where it still counts) its
      // mapping: folio_remove_rmap_pte, so of a THP's page the large mapcount and MM-id slot too.
      const f = pg.devx.frame;
      pg.devx = null;
      if (this.rules.deviceExclusive === 'v6.15') this.unmapPage(p, f);
      this.put(f);
      p.rss--;
      return;
    }
    if (this.dropEntry(pg, p)) p.rss--;
    pg.pte = null;
    pg.swp = null;
  }

  /** What dropping an entry releases (zap_pte_range for one entry); true if it mapped a frame. */
  private dropEntry(e: NEntry, p?: NProc): boolean {
    if (e.swp !== null) {
      const slot = e.swp.slot;
      slot.count--;
      // free_swap_and_cache: an unused slot's cache goes when nothing else holds the frame.
      if (slot.count === 0 && slot.cache !== null && slot.cache.refcount === 1) this.dropCache(slot);
      return false;
    }
    const f = e.pte?.frame ?? null;
    if (f === null) return false;
    this.unmapPage(p, f);
    this.put(f);
    return true;
  }

  /** The address (page number) of pg in p (undefined: not one of p's pages). */
  private addrOf(p: NProc, pg: NPage): number | undefined {
    for (const r of p.regions) {
      for (let i = 0; i < r.n; i++) if (p.pages.get(pageKey(r, i)) === pg) return r.base + i;
    }
    return undefined;
  }

  /** Does VMA vma cover the whole range of table t (every address of it a page of that VMA)? */
  private static covers(pages: Map<number, NPage>, vma: NVma, t: number): boolean {
    for (let a = t * PTES_PER_TABLE; a < (t + 1) * PTES_PER_TABLE; a++) if (pages.get(a)?.vma !== vma) return false;
    return true;
  }

  /** Is pg (a page of p) in a table p shares (its PMD write-protected)? */
  private sharedAt(p: NProc, pg: NPage): boolean {
    if (p.shared === undefined || p.shared.size === 0) return false;
    const a = this.addrOf(p, pg);
    return a !== undefined && p.shared.has(Math.floor(a / PTES_PER_TABLE));
  }

  /**
   * p stops sharing table t (On-Demand Fork, before any fault in it or change of it). Count 1 and
   * the mapping `vma` covering the table, where takeBack allows it: taken back as it is (the PMD
   * made writable; its writable PTEs stay writable). Else tfork_one_pte_table(): a copy with an
   * entry for each of p's own pages in the table (copy_pte_range_tfork, mapping by mapping: an
   * address where p has no mapping gets none): a present page gets one more reference and
   * mapping (get_page, page_dup_rmap; the zero page nothing) under a read-only PTE (a COW
   * mapping: only the copy is write-protected), a swap entry one more count on its slot
   * (swap_duplicate); the last user to leave frees the old table (dereference_pte_table) and
   * what it held. RSS is not kept for shared tables.
   */
  private unshareTable(p: NProc, t: number, vma: NVma | null): void {
    const tab = p.shared?.get(t);
    if (tab === undefined) return;
    p.shared!.delete(t);
    const pages = this.byAddress(p);
    if (tab.users.size === 1 && this.rules.odf?.takeBack === 'whole-table' && vma !== null && NaiveKernel.covers(pages, vma, t)) {
      tab.users.delete(p);
      this.tableTakeBacks++;
      return;
    }
    this.tableCopies++;
    for (let a = t * PTES_PER_TABLE; a < (t + 1) * PTES_PER_TABLE; a++) {
      const pg = pages.get(a);
      if (pg === undefined) continue;
      const e = tab.entries.get(a);
      pg.pte = null;
      pg.swp = null;
      if (e === undefined) continue;
      if (e.swp !== null) {
        e.swp.slot.count++;
        pg.swp = { slot: e.swp.slot, exclusive: false, softDirty: e.swp.softDirty };
        continue;
      }
      const f = e.pte!.frame;
      if (f !== null) {
        f.refcount++;
        f.mapcount++;
      }
      pg.pte = { frame: f, writable: false, dirty: e.pte!.dirty, softDirty: e.pte!.softDirty };
    }
    tab.users.delete(p);
    if (tab.users.size === 0) for (const e of tab.entries.values()) this.dropEntry(e);
  }

  /** Unshare the table of pg (a page of p), if shared: a fault or a change there. */
  private unshareAt(p: NProc, pg: NPage): void {
    if (!this.sharedAt(p, pg)) return;
    this.unshareTable(p, Math.floor(this.addrOf(p, pg)! / PTES_PER_TABLE), pg.vma);
  }

  /** Unshare the tables of the mapped pages [lo, hi) of region r (breakCowRange). */
  private unshareRange(p: NProc, r: NRegion, lo: number, hi: number): void {
    for (let i = lo; i < hi; i++) {
      const pg = p.pages.get(pageKey(r, i));
      if (pg !== undefined) this.unshareAt(p, pg);
    }
  }

  /** Unshare every table p shares (each by the mapping at its first page of p's). */
  private unshareAll(p: NProc): void {
    if (p.shared === undefined) return;
    const pages = this.byAddress(p);
    for (const t of [...p.shared.keys()].sort((x, y) => x - y)) {
      let vma: NVma | null = null;
      for (let a = t * PTES_PER_TABLE; a < (t + 1) * PTES_PER_TABLE && vma === null; a++) vma = pages.get(a)?.vma ?? null;
      this.unshareTable(p, t, vma);
    }
  }

  /**
   * copy_pmd_range_tfork() decides, table by table, what a fork of an ODF mm shares: where the
   * parent has a table (an entry there, or a table it shares already), the first mapping in
   * address order whose PTEs fork copies (an anon_vma, not VM_DONTCOPY, not VM_WIPEONFORK)
   * decides: a writable one (covering the table, for share 'whole-table') shares the table, and
   * every later mapping in it is seen through it; else it is copied per page into a table of the
   * child's own, and so is every later one.
   */
  private tablesToShare(parent: NProc): Set<number> {
    const pages = this.byAddress(parent);
    const out = new Set<number>();
    const firsts = new Map<number, NPage>();
    const hasTable = new Set<number>(parent.shared?.keys() ?? []);
    for (const a of [...pages.keys()].sort((x, y) => x - y)) {
      const pg = pages.get(a)!;
      const t = Math.floor(a / PTES_PER_TABLE);
      if (pg.pte !== null || pg.swp !== null) hasTable.add(t);
      if (!firsts.has(t) && !pg.dontfork && !pg.wipeonfork && pg.vma.anonVma) firsts.set(t, pg);
    }
    for (const [t, pg] of firsts) {
      if (!hasTable.has(t) || pg.prot !== 'rw') continue;
      if (this.rules.odf!.share === 'whole-table' && !NaiveKernel.covers(pages, pg.vma, t)) continue;
      out.add(t);
    }
    return out;
  }

  /** mmap of n pages (hugepage: then MADV_HUGEPAGE on them, VM_HUGEPAGE). */
  mmap(p: NProc, n: number, hugepage = false): NRegion {
    if (hugepage && this.rules.thp === undefined) throw new Error('THP is not modelled by these naive rules');
    const r: NRegion = { id: this.nextRegion++, n, base: p.next };
    p.next += n;
    p.regions.push(r);
    const vma: NVma = { anonVma: false, anonId: 0, ...(hugepage ? { hugepage } : {}) };
    const before = this.bounds(p);
    for (let i = 0; i < n; i++) p.pages.set(pageKey(r, i), { vma, prot: 'rw', dontfork: false, wipeonfork: false, pte: null, swp: null });
    this.merge(p);
    this.reinsert(p, before);
    return r;
  }

  /** The mapped pages of p by address. */
  private byAddress(p: NProc): Map<number, NPage> {
    const m = new Map<number, NPage>();
    for (const r of p.regions) {
      for (let i = 0; i < r.n; i++) {
        const pg = p.pages.get(pageKey(r, i));
        if (pg !== undefined) m.set(r.base + i, pg);
      }
    }
    return m;
  }

  private static sameFlags(a: NPage, b: NPage): boolean {
    return a.prot === b.prot && a.dontfork === b.dontfork && a.wipeonfork === b.wipeonfork && (a.mergeable ?? false) === (b.mergeable ?? false) &&
      (a.uffd ?? false) === (b.uffd ?? false) && (a.vma.hugepage ?? false) === (b.vma.hugepage ?? false);
  }

  /** vma_merge(): neighbouring VMAs with the same flags and compatible anon_vmas become one. */
  private merge(p: NProc): void {
    const pages = this.byAddress(p);
    const addrs = [...pages.keys()].sort((a, b) => a - b);
    for (let j = 1; j < addrs.length; j++) {
      if (addrs[j] !== addrs[j - 1]! + 1) continue;
      const a = pages.get(addrs[j - 1]!)!;
      const b = pages.get(addrs[j]!)!;
      if (a.vma === b.vma || !NaiveKernel.sameFlags(a, b)) continue;
      if (!(a.vma.anonId === b.vma.anonId || (a.vma.anonId === 0 && b.vma.uncowed !== true) || (b.vma.anonId === 0 && a.vma.uncowed !== true))) continue;
      if ((a.vma.shift ?? 0) !== (b.vma.shift ?? 0)) continue;
      const keep = a.vma;
      const gone = b.vma;
      if (!keep.anonVma && gone.anonVma) {
        keep.anonVma = true;
        keep.anonId = gone.anonId;
      }
      for (const pg of pages.values()) if (pg.vma === gone) pg.vma = keep;
    }
  }

  /** anon_vma_prepare(): a neighbouring VMA's anon_vma is reused when the two could merge. */
  anonPrepare(p: NProc, pg: NPage): void {
    if (pg.vma.anonVma) return;
    pg.vma.anonVma = true;
    pg.vma.seq = this.nextSeq++;
    const pages = this.byAddress(p);
    const mine = [...pages].filter(([, x]) => x.vma === pg.vma).map(([a]) => a);
    const lo = Math.min(...mine);
    const hi = Math.max(...mine);
    for (const n of [pages.get(lo - 1), pages.get(hi + 1)]) {
      if (n !== undefined && n.vma.anonVma && n.vma.uncowed !== true && NaiveKernel.sameFlags(n, pg)) {
        pg.vma.anonId = n.vma.anonId;
        return;
      }
    }
    pg.vma.anonId = this.nextAnon++;
  }

  /** A CPU store. False: SIGSEGV. */
  write(p: NProc, r: NRegion, i: number, value: number): boolean {
    const pg = p.pages.get(pageKey(r, i));
    if (pg === undefined || pg.prot !== 'rw') return false;
    if (pg.pmd || this.hugeFaultable(p, pg)) return this.writeHuge(p, pg, value);
    // A store through a write-protected PMD (a shared table) faults whatever the PTE says.
    const shared = this.sharedAt(p, pg);
    if (shared || pg.pte === null || !pg.pte.writable) {
      p.minflt++;
      this.unshareAt(p, pg);
      if (pg.pte === null || !pg.pte.writable) this.writeFault(p, pg);
    }
    pg.pte!.frame!.value = value;
    pg.pte!.dirty = true;
    pg.pte!.softDirty = true;
    return true;
  }

  /**
   * A write fault on a page whose PTE is missing or read-only (the VMA is writable): afterwards
   * the PTE maps an exclusive page, writable.
   */
  private writeFault(p: NProc, pg: NPage, allowRetry = true): boolean {
    if (this.hugeFaultable(p, pg)) throw new Error('a GUP fault on an empty THP-eligible 2 MiB is not modelled by the naive model');
    if (pg.devx) {
      // do_swap_page -> remove_device_exclusive_entry, and the fault ends there: the access is
      // retried through the restored PTE; a write it does not allow faults again (do_wp_page).
      this.restoreDevx(p, pg, true);
      if (pg.pte!.writable) return true;
      p.minflt++;
    }
    if (pg.swp !== null) {
      // Up to 6.10, do_swap_page() reports a write it reused the page for done (VM_FAULT_WRITE;
      // reuse_swap_page up to 5.17, the page count or SWP_EXCLUSIVE from 5.18) even where the
      // PTE stays read-only, and the fault ends: in a read-only VMA (a GUP's
      // forced COW break, FOLL_COW) no do_wp_page follows; a write with the entry's uffd-wp bit
      // (a CPU's, a FOLL_WRITE GUP's) is retried and faults again, into do_wp_page (below).
      const done = this.swapIn(p, pg, true);
      if (pg.pte!.writable || (done && pg.prot !== 'rw')) return true;
      if (done) p.minflt++;
    }
    const pte = pg.pte;
    if (pte === null) {
      // do_anonymous_page, write: a new exclusive zeroed page, mapped writable.
      this.anonPrepare(p, pg);
      pg.pte = { frame: this.newFrame(0), writable: true, dirty: true, softDirty: true };
      p.rss++;
      return true;
    }
    return this.wpFault(p, pg, false, false, allowRetry);
  }

  /**
   * do_wp_page on a present read-only PTE of a private mapping, for a write fault or (unshare)
   * a FAULT_FLAG_UNSHARE fault: an anonymous page that is PG_anon_exclusive or reusable is kept
   * (marked exclusive; a write makes the PTE writable, an unshare leaves it read-only); anything
   * else (a shared page, the zero page) is copied by wp_page_copy into a new exclusive page,
   * mapped writable for a write and read-only for an unshare (which keeps the uffd-wp bit; a
   * write's copy has none). A write (not an unshare) to a PTE with the uffd-wp bit in a VMA
   * registered for it goes to the monitor first (userfaultfd_pte_wp -> handle_userfault): the
   * monitor un-protects the page and the fault is retried; a fault that may not be retried
   * (`allowRetry` false: a GUP that cannot drop mmap_lock) fails there (false: VM_FAULT_SIGBUS).
   */
  private wpFault(p: NProc, pg: NPage, unshare: boolean, breakCow = false, allowRetry = true): boolean {
    const u = unshare || breakCow ? 'none' : this.uffdWpFault(p, pg, allowRetry);
    if (u === 'sigbus') return false;
    if (u === 'resolved' && pg.pte!.writable) {
      this.accessed?.(pg.pte!, true); // the retried fault: handle_pte_fault's pte_mkyoung
      return true;
    }
    const pte = pg.pte!;
    const old = pte.frame;
    if (old !== null && this.canReuse(old)) {
      if (this.rules.pae) old.exclusive = true;
      if (unshare) return true;
      this.reuses++; // wp_page_reuse
      pte.writable = true;
      pte.dirty = true;
      pte.softDirty = true;
      this.accessed?.(pte, true);
      return true;
    }
    this.anonPrepare(p, pg);
    this.cowCopies++;
    // The zero page is copied into a zeroed page (no mapping of it to drop).
    // wp_page_copy: a write maps it pte_mkdirty (soft-dirty too); an unshare keeps the old PTE's soft-dirty and uffd-wp bits.
    pg.pte = { frame: this.newFrame(old === null ? 0 : old.value), writable: !unshare, dirty: !unshare, uffdWp: unshare && pte.uffdWp === true, softDirty: !unshare || pte.softDirty === true };
    if (old === null) {
      p.rss++;
      return true;
    }
    // wp_page_copy: the old page loses a mapping and a reference.
    this.unmapPage(p, old);
    this.put(old);
    return true;
  }

  /**
   * userfaultfd_pte_wp() -> handle_userfault(): a write to a PTE with the uffd-wp bit in a VMA
   * registered for it goes to the monitor, which un-protects the page (`resolved`); the fault is
   * then retried. A fault that may not be retried (FAULT_FLAG_ALLOW_RETRY missing) cannot wait:
   * `sigbus`, the monitor told nothing.
   */
  uffdWpFault(p: NProc, pg: NPage, allowRetry: boolean): 'none' | 'resolved' | 'sigbus' {
    if (pg.uffd !== true || pg.pte?.uffdWp !== true) return 'none';
    if (!allowRetry) return 'sigbus';
    p.uffdFaults++;
    this.uffdWriteprotectPages(p, [pg], false);
    return 'resolved';
  }

  canReuse(f: NFrame): boolean {
    switch (this.rules.reuse) {
      case 'anon-exclusive':
        // wp_can_reuse_anon_folio: a KSM page is always copied.
        if (f.ksm === true) return false;
        // wp_can_reuse_anon_folio: more references than ours and the swap cache's: copy; the
        // swap cache is freed (folio_free_swap) when no swap entry still refers to the slot.
        if (f.exclusive) return true;
        if (f.folio !== undefined && this.rules.thp!.largeReuse !== 'as-small') return this.canReuseLarge(f.folio);
        if (f.refcount > 1 + (f.swapcache !== null ? 1 : 0)) return false;
        if (f.swapcache !== null && f.swapcache.count === 0) this.dropCache(f.swapcache);
        return f.refcount === 1;
      case 'pagecount':
        // "PageKsm() doesn't necessarily raise the page refcount": a KSM page is always copied.
        if (f.ksm === true) return false;
        if (this.rules.wpFreeSwapcache === true) {
          // 5.18: more references than ours and the swap cache's: copy; else try_to_free_swap
          // (no swap entry refers to the slot) and reuse if ours is then the only one.
          if (f.refcount > 1 + (f.swapcache !== null ? 1 : 0)) return false;
          if (f.swapcache !== null && f.swapcache.count === 0) this.dropCache(f.swapcache);
          return f.refcount === 1;
        }
        // The swap cache's reference counts too: a page in it is always copied (5.9-5.17).
        // page_mapcount of a THP's page: its PTE mappings and its folio's PMD mappings.
        return f.refcount === 1 && f.mapcount + (f.folio?.entire ?? 0) === 1;
      case 'mapcount':
        if (f.ksm === true) {
          // reuse_ksm_page (5.1-5.8): a KSM page in the stable tree, out of the swap cache, with
          // our reference only (page_ref_freeze(page, 1)) becomes an ordinary anonymous page
          // again (page_move_anon_rmap; its stable node is stale from then on).
          if (f.swapcache !== null || f.stable !== true || f.refcount !== 1) return false;
          f.ksm = false;
          f.stable = false;
          return true;
        }
        return this.reuseSwapPage(f);
    }
  }

  /**
   * reuse_swap_page() (up to 5.17): the page's mappings plus the swap entries that refer to its
   * swap cache slot; if that is 1 (ours), the page leaves the swap cache (delete_from_swap_cache);
   * reusable if at most 1. References (GUP, pipes) are not counted. Never a KSM page.
   */
  private reuseSwapPage(f: NFrame): boolean {
    if (f.ksm === true) return false;
    // page_trans_huge_map_swapcount of a THP's page: the largest page mapcount of its folio plus
    // the folio's PMD mappings (no swap here: the naive model swaps no THP).
    if (f.folio !== undefined) return Math.max(...f.folio.pages.map((x) => x.mapcount)) + f.folio.entire <= 1;
    const count = f.mapcount + (f.swapcache?.count ?? 0);
    if (count === 1 && f.swapcache !== null) this.dropCache(f.swapcache);
    return count <= 1;
  }

  /** A read fault on a missing PTE: do_anonymous_page maps the zero page, read-only; no anon_vma. */
  private readFault(p: NProc, pg: NPage): void {
    if (this.hugeFaultable(p, pg)) throw new Error('a read fault on an empty THP-eligible 2 MiB (the huge zero page) is not modelled by the naive model');
    p.minflt++;
    if (pg.devx) {
      this.restoreDevx(p, pg, true);
      return;
    }
    this.unshareAt(p, pg);
    if (pg.swp !== null) {
      this.swapIn(p, pg, false);
      return;
    }
    pg.pte = { frame: null, writable: false, dirty: false };
  }

  /**
   * do_swap_page (a swap device that goes through the swap cache): the frame the slot's swap
   * cache holds, else a new frame read from the slot and added to the cache (an ordinary page:
   * a KSM page swapped out and freed comes back as one); the slot loses this entry's count
   * (swap_free). A KSM page still in the swap cache is mapped as it is (ksm_might_need_to_copy:
   * it is in the stable tree), read-only: never reused, never exclusive. Otherwise, per era:
   * - up to 5.17, on a write fault, reuse_swap_page() decides before the entry is freed;
   * - from 5.18, on a write fault the cache is freed when only it and we hold the frame and no
   *   other entry refers to the slot (should_try_to_free_swap, try_to_free_swap). 5.18 maps the
   *   page writable on a write fault if ours is then the only reference; from 5.19 the page is
   *   exclusive if the entry was SWP_EXCLUSIVE or we hold the only reference: then
   *   PG_anon_exclusive is set and the PTE writable (if VM_WRITE) on a write fault, from 6.11
   *   on a read fault too.
   * Otherwise it is mapped read-only.
   */
  /** do_swap_page(): true when a write fault's write was done here (FAULT_FLAG_WRITE cleared: reuse_swap_page up to 5.17, a page only we hold from 5.18, one mapped writable from 6.11), else false. */
  swapIn(p: NProc, pg: NPage, write: boolean): boolean {
    const { slot, exclusive: swpExclusive } = pg.swp!;
    // pte_swp_uffd_wp: the page comes back write-protected with the bit (a write then goes to the monitor).
    const uffdWp = pg.swp!.uffdWp === true;
    const swpSoftDirty = pg.swp!.softDirty === true;
    pg.swp = null;
    let f = slot.cache;
    if (f === null) {
      // swapin_readahead: a new folio in the swap cache (its reference), not mapped yet.
      f = { id: this.nextFrame++, refcount: 1, mapcount: 0, exclusive: false, value: slot.value, swapcache: slot };
      this.frames.add(f);
      slot.cache = f;
    }
    f.refcount++; // ours, which becomes the mapping's
    const ksm = f.ksm === true;
    if (this.rules.swapin === 'reuse_swap_page') {
      // Up to 5.17: on a write fault, reuse_swap_page() before the mapping is added and the
      // entry freed (our entry is in the count): writable if nothing else maps or swaps it.
      const reused = write && this.reuseSwapPage(f);
      const writable = reused && pg.prot === 'rw' && !uffdWp;
      slot.count--;
      f.mapcount++;
      pg.pte = { frame: f, writable, dirty: writable, uffdWp, softDirty: writable || swpSoftDirty };
      p.rss++;
      return reused;
    }
    slot.count--;
    if (write && !ksm && f.refcount === 2 && slot.count === 0) this.dropCache(slot);
    if (this.rules.swapin === 'refcount') {
      // 5.18: page_count == 1 (the page left the swap cache, or was never in it): a write fault
      // is done here, as reuse_swap_page's was (pte_mkdirty, FAULT_FLAG_WRITE cleared), whatever
      // the VMA and the entry's uffd-wp bit (write-protected again) then allow.
      const done = write && !ksm && f.refcount === 1;
      const writable = done && pg.prot === 'rw' && !uffdWp;
      f.mapcount++;
      pg.pte = { frame: f, writable, dirty: done, uffdWp, softDirty: done || swpSoftDirty };
      p.rss++;
      return done;
    }
    const exclusive = !ksm && (swpExclusive || f.refcount === 1);
    let writable = false;
    // 5.19 to 6.10: an exclusive page's write fault is done here (pte_mkdirty, FAULT_FLAG_WRITE
    // cleared) even when the uffd-wp bit keeps it read-only; from 6.11 only when it ends writable.
    let done = false;
    if (exclusive) {
      f.exclusive = true;
      if (this.rules.swapinReadWritable === true) {
        // pte_needs_soft_dirty_wp(): not while soft-dirty tracking waits for this page's next write
        // (VM_SOFTDIRTY clear, the entry not soft-dirty); a read fault maps it writable too.
        const softDirtyWp = pg.vma.vmSoftdirty === false && !swpSoftDirty;
        writable = pg.prot === 'rw' && !uffdWp && !softDirtyWp;
      } else {
        done = write;
        writable = write && pg.prot === 'rw' && !uffdWp;
      }
    }
    f.mapcount++;
    // pte_mkdirty only for a write fault done here (a read fault's writable PTE is clean).
    const dirty = done || (write && writable);
    pg.pte = { frame: f, writable, dirty, uffdWp, softDirty: swpSoftDirty || dirty };
    p.rss++;
    // A write fault not done here goes on to do_wp_page (the caller's writeFault).
    return done;
  }

  /**
   * MADV_PAGEOUT of one page (madvise_cold_or_pageout_pte_range, then shrink_folio_list): true if
   * it was swapped out. Only an anonymous page mapped once is taken (the zero page and a page
   * another mapping shares are left alone: "do not interfere with other mappings"); a
   * maybe-pinned page is not added to the swap cache (5.11 on); add_to_swap gives it a slot (a
   * page already in the swap cache keeps its own); try_to_unmap_one then refuses to unshare an
   * exclusive page that may be pinned (folio_try_share_anon_rmap_pte), else clears
   * PG_anon_exclusive and installs a swap entry that remembers it (SWP_EXCLUSIVE); the page
   * leaves memory when the swap cache holds its only reference (__remove_mapping), else it stays
   * in the cache and a later swap-in finds it.
   */
  swapout(p: NProc, r: NRegion, i: number): boolean {
    if (this.rules.swapin === undefined) throw new Error('swap is not modelled by these naive rules');
    const pg = p.pages.get(pageKey(r, i));
    if (pg !== undefined) this.unshareAt(p, pg);
    // A page of a THP: the folio is split first (or the page left alone).
    if (pg !== undefined && !this.splitForPageout(pg)) return false;
    const f = pg?.pte?.frame ?? null;
    if (pg === undefined || f === null || f.mapcount !== 1) return false;
    if (NaiveKernel.maybeDmaPinned(f)) {
      // shrink_folio_list: pinned, kept off swap (5.11 on).
      if (this.rules.reclaimSkipsPinned === true && f.swapcache === null) return false;
      // try_to_unmap_one: cannot unshare a maybe-pinned exclusive page (5.19 on).
      if (this.rules.pae && f.exclusive) return false;
    }
    let slot = f.swapcache;
    if (slot === null) {
      slot = { id: this.nextSlot++, count: 0, value: f.value, cache: f };
      f.swapcache = slot;
      f.refcount++;
    }
    // try_to_unmap of a KSM page walks its stable node's rmap items (rmap_walk_ksm); a KSM page
    // in no tree (break_cow's leftover) has none: it stays mapped, in the swap cache.
    if (f.ksm === true && f.stable !== true) return false;
    pg.swp = { slot, exclusive: this.rules.pae && f.exclusive, uffdWp: pg.pte!.uffdWp === true, softDirty: pg.pte!.softDirty };
    f.exclusive = false;
    slot.count++;
    pg.pte = null;
    f.mapcount--;
    this.put(f);
    p.rss--;
    this.swapOuts++;
    if (f.refcount === 1) this.dropCache(slot);
    return true;
  }

  /** A CPU load: the value, or null for SIGSEGV. */
  read(p: NProc, r: NRegion, i: number): number | null {
    const pg = p.pages.get(pageKey(r, i));
    return pg === undefined ? null : this.load(p, pg);
  }

  /** A load of a mapped page: a missing PTE (or a swap or device-exclusive entry) takes a read fault first. */
  private load(p: NProc, pg: NPage): number {
    if (pg.pmd) return this.hugePage(pg).value;
    if (pg.pte === null) this.readFault(p, pg);
    return pg.pte!.frame === null ? 0 : pg.pte!.frame.value;
  }

  /**
   * gup_must_unshare(): an R/O FOLL_PIN on a read-only PTE must first unshare a page that may be
   * shared: an anonymous page not PG_anon_exclusive (5.19 on), and from 6.2 on, for a long-term
   * pin, the zero page too (not anonymous, in a COW mapping). FOLL_GET never unshares.
   */
  private mustUnshare(f: NFrame | null, flags: GupFlags): boolean {
    if (flags.write || !flags.pin || this.rules.unshare === 'none') return false;
    if (f === null) return this.rules.unshare === 'all' && flags.longterm;
    return !f.exclusive;
  }

  /**
   * __get_user_pages() for one page: the page it grabbed (null: the zero page), or undefined for
   * EFAULT (no VMA there, or FOLL_WRITE on a VMA without VM_WRITE: check_vma_flags; no FOLL_FORCE).
   */
  private grab(p: NProc, r: NRegion, i: number, flags: GupFlags): NFrame | null | undefined {
    // mm_set_has_pinned_flag() runs before any page is looked at (mm->has_pinned came with
    // early COW at fork, 5.9: before it nothing records a pin on the mm).
    if (flags.pin && this.rules.earlyCow) p.hasPinned = true;
    const pg = p.pages.get(pageKey(r, i));
    if (pg === undefined) return undefined;
    if (flags.write && pg.prot !== 'rw') return undefined;
    // The forced break comes after the VMA's check (a read-only VMA passes it): it only adds
    // the write to the fault, never the permission.
    const allowRetry = flags.unlockable === true;
    // A write fault that may not wait for the userfaultfd monitor fails (VM_FAULT_SIGBUS): EFAULT,
    // and that fault is not counted (mm_account_fault skips errors).
    if (this.forcesCowBreak(flags) && !this.breakCowForGup(p, pg, flags.pin, allowRetry)) return this.gupFaultFailed(p);
    // follow_page_pte until it gives the page; each miss is a fault (faultin_page), counted.
    for (;;) {
      if (pg.pmd && flags.splitPmd === true) {
        // follow_pmd_mask: FOLL_SPLIT_PMD splits a huge PMD before anything else is asked of it.
        this.splitHugePmd(p, pg.pmd);
        continue;
      }
      if (pg.pmd) {
        // follow_huge_pmd: FOLL_WRITE on a read-only PMD and an R/O pin of a head that must be
        // unshared (gup_must_unshare asks the head: a PMD-mapped folio keeps PG_anon_exclusive
        // there) fault (do_huge_pmd_wp_page); else try_grab_folio on the folio.
        const pmd = pg.pmd;
        if (!pmd.writable && (flags.write || this.mustUnshare(pmd.folio.pages[0]!, flags))) {
          p.minflt++;
          this.hugeWpFault(p, pg, !flags.write);
          continue;
        }
        const f = this.hugePage(pg);
        this.grabRefs(f, flags.pin);
        return f;
      }
      const pte = pg.pte;
      // (Each fault in a shared table copies it first; GUP itself looks at the PTE only, so a
      // FOLL_WRITE through a writable PTE of a shared table takes the page as it is.)
      if (pte === null) {
        if (flags.write) {
          p.minflt++;
          this.unshareAt(p, pg);
          if (!this.writeFault(p, pg, allowRetry)) return this.gupFaultFailed(p);
        } else this.readFault(p, pg);
        continue;
      }
      if (flags.write && !pte.writable) {
        p.minflt++;
        this.unshareAt(p, pg);
        if (!this.wpFault(p, pg, false, false, allowRetry)) return this.gupFaultFailed(p);
        continue;
      }
      if (!pte.writable && this.mustUnshare(pte.frame, flags)) {
        p.minflt++;
        this.unshareAt(p, pg);
        this.wpFault(p, pg, true);
        continue;
      }
      const f = pte.frame;
      if (f !== null) this.grabRefs(f, flags.pin);
      return f;
    }
  }

  /** A GUP's fault failed (a userfault it could not wait for): the fault just counted is not, and GUP is EFAULT. */
  private gupFaultFailed(p: NProc): undefined {
    p.minflt--;
    return undefined;
  }

  /** Does this GUP break COW though it does not write (gupCowBreak)? Every page of the naive model is in a private, COW mapping. */
  private forcesCowBreak(flags: GupFlags): boolean {
    if (flags.write) return false;
    return this.rules.gupCowBreak === 'get-and-pin' || (this.rules.gupCowBreak === 'pin' && flags.pin);
  }

  /**
   * The forced COW break of a GUP that does not write: faults until the page is one of ours
   * alone, as a write would make it (allocated, swapped in, reused or copied), but in a read-only
   * VMA its PTE stays read-only (maybe_mkwrite), and one break is enough there: the fault
   * reports the write done (VM_FAULT_WRITE) and GUP then follows the dirty read-only PTE
   * (FOLL_COW). The first touch's fault (do_anonymous_page) reports no write done: a second
   * fault reuses the new page. The 5.8 break is a write fault, which a uffd-wp bit hands to the
   * monitor; seed 001's is not, and its copy keeps the bit (write-protected).
   * (5.8 itself asks the fault for a write and lets follow_page_pte see the result; the loop here
   * is that exchange, one fault per turn.)
   */
  private breakCowForGup(p: NProc, pg: NPage, pin: boolean, allowRetry: boolean): boolean {
    if (pg.pmd) throw new Error('GUP\'s forced COW break on a huge PMD is not modelled by the naive model');
    const seed001 = this.rules.gupCowBreak === 'pin' && pin;
    for (;;) {
      if (pg.pte !== null && pg.pte.writable) return true;
      p.minflt++;
      this.unshareAt(p, pg);
      const wp = pg.pte?.uffdWp === true;
      const old = pg.pte?.frame;
      // do_anonymous_page (no PTE, nothing swapped or device-exclusive there).
      const firstTouch = pg.pte === null && pg.swp === null && !pg.devx;
      const ok = pg.pte === null ? this.writeFault(p, pg, allowRetry) : this.wpFault(p, pg, false, seed001, allowRetry);
      if (!ok) return false;
      const pte = pg.pte!;
      // Seed 001's wp_page_copy() write-protects its copy with the bit (a reuse is not written
      // down there: the runs draw no userfaultfd operation on that profile).
      if (seed001 && wp && pte.frame !== old) {
        pte.writable = false;
        pte.uffdWp = true;
        return true;
      }
      if (pg.prot !== 'rw') {
        pte.writable = false;
        if (!firstTouch) return true;
      }
    }
  }

  /**
   * get_user_pages(FOLL_GET), read-only, one page: faults it in for reading, takes a reference.
   * `unlockable`: as gup-fast's fallback, which may drop mmap_lock (FAULT_FLAG_ALLOW_RETRY).
   */
  gup(p: NProc, r: NRegion, i: number, unlockable = false): NRef | null {
    const f = this.grab(p, r, i, { write: false, pin: false, longterm: false, unlockable });
    return f === undefined ? null : { frame: f };
  }

  putRef(ref: NRef): void {
    if (ref.frame !== null) this.put(ref.frame);
  }

  /**
   * vmsplice(2) of one page into a pipe (6.x: vmsplice_to_pipe -> iter_to_pipe ->
   * iov_iter_get_pages2 -> get_user_pages_fast with no FOLL_WRITE for a source iterator): a
   * FOLL_GET reference, read-only, never unsharing; the pipe buffer holds the page until it is
   * read or the pipe is closed. gup-fast leaves a missing or zero-page PTE to the slow path,
   * which ends the same way as gup(). null: EFAULT.
   */
  vmsplice(p: NProc, r: NRegion, i: number): NRef | null {
    // gup-fast first: a present normal page is taken as it is (see fastPte: no VMA looked at).
    const pte = this.fastPte(p, r, i);
    const f = pte?.frame ?? null;
    if (f === null || (this.rules.gupFastWritableOnly === true && !pte!.writable)) return this.gup(p, r, i, true);
    f.refcount++;
    return { frame: f };
  }

  /**
   * The PTE gup-fast finds for page i of region r: it walks p's page tables locklessly and looks
   * at no VMA, so where p has no mapping it still finds an entry of a table p shares (a
   * MADV_DONTFORK page of the parent's, under On-Demand Fork). null: none there (or a swap entry).
   */
  private fastPte(p: NProc, r: NRegion, i: number): NPte | null {
    const addr = r.base + i;
    return (p.pages.get(pageKey(r, i)) ?? p.shared?.get(Math.floor(addr / PTES_PER_TABLE))?.entries.get(addr))?.pte ?? null;
  }

  /** A read of the pipe (pipe_read -> copy_page_to_iter): the page's content now. */
  pipeRead(ref: NRef): number {
    return ref.frame === null ? 0 : ref.frame.value;
  }

  /** Closing the pipe: its buffers are released (put_page). */
  closePipe(ref: NRef): void {
    this.putRef(ref);
  }

  /**
   * pin_user_pages(FOLL_PIN [| FOLL_WRITE] [| FOLL_LONGTERM]), one page (pin_user_pages_fast ends
   * the same way: gup-fast leaves to the slow path every PTE it cannot pin as is; that slow path
   * is this one `unlockable` where fastFallbackUnlockable says so). null: EFAULT.
   */
  pin(p: NProc, r: NRegion, i: number, o: { write: boolean; longterm: boolean }, unlockable = false): NPin | null {
    const f = this.grab(p, r, i, { write: o.write, pin: true, longterm: o.longterm, unlockable });
    return f === undefined ? null : { frame: f, write: o.write, longterm: o.longterm };
  }

  /**
   * pin_user_pages_fast(FOLL_PIN | FOLL_WRITE [| FOLL_LONGTERM]), one page: gup-fast walks the
   * page tables locklessly and looks at no VMA: a present, writable PTE of a normal page is pinned
   * as it is (fastPte); anything else goes to the slow
   * path (pin), which ends as it would have. R/O pins go to the slow path here.
   */
  pinFast(p: NProc, r: NRegion, i: number, o: { write: boolean; longterm: boolean }): NPin | null {
    if (!o.write) return this.pin(p, r, i, o, this.fastFallbackUnlockable(o.longterm));
    const pte = this.fastPte(p, r, i);
    const f = pte?.frame ?? null;
    if (pte === null || f === null || !pte.writable) return this.pin(p, r, i, o, this.fastFallbackUnlockable(o.longterm));
    // mm_set_has_pinned_flag() (5.9 on), before the walk, as the slow path does.
    if (this.rules.earlyCow) p.hasPinned = true;
    this.grabRefs(f, true);
    return { frame: f, write: true, longterm: o.longterm };
  }

  /** Whether gup-fast's slow fallback may drop mmap_lock: always, but for a FOLL_LONGTERM pin before 6.2. */
  fastFallbackUnlockable(longterm: boolean): boolean {
    return !longterm || this.rules.gupFastLongtermRetry === true;
  }

  /**
   * unpin_user_pages: the pin's GUP_PIN_COUNTING_BIAS comes off the refcount (nothing for the zero
   * page); a large folio's pin is 1 off the refcount and 1 off its pincount.
   */
  unpin(pin: NPin): void {
    const f = pin.frame;
    if (f === null) return;
    if (f.folio !== undefined) f.folio.pincount--;
    f.refcount -= f.folio !== undefined ? 1 : GUP_PIN_COUNTING_BIAS;
    if (f.refcount === 0) this.frames.delete(f);
  }

  /**
   * try_grab_folio: FOLL_GET adds 1; FOLL_PIN adds GUP_PIN_COUNTING_BIAS to a small folio, and 1
   * to a large folio's refcount and 1 to its pincount.
   */
  private grabRefs(f: NFrame, pin: boolean): void {
    if (pin && f.folio !== undefined) f.folio.pincount++;
    f.refcount += pin && f.folio === undefined ? GUP_PIN_COUNTING_BIAS : 1;
  }

  /** folio_maybe_dma_pinned(): a large folio's pincount; a small folio's refcount (fuzzy: 1024 references would say so too). */
  static maybeDmaPinned(f: NFrame): boolean {
    if (f.folio !== undefined) return f.folio.pincount > 0;
    return f.refcount >= GUP_PIN_COUNTING_BIAS;
  }

  /** DMA into the pinned frame. False: nothing written (a read-only pin, or the zero page). */
  deviceWrite(pin: NPin, value: number): boolean {
    if (!pin.write || pin.frame === null) return false;
    pin.frame.value = value;
    return true;
  }

  /** DMA out of the pinned frame. */
  deviceRead(pin: NPin): number {
    return pin.frame === null ? 0 : pin.frame.value;
  }

  /**
   * fork(): dup_mmap VMA by VMA. A VMA marked dontfork is not copied; one marked wipeonfork is
   * copied empty. dup_userfaultfd: without UFFD_FEATURE_EVENT_FORK the child's VMA is not
   * registered; with it the child gets a context of its own, with the event. copy_page_range runs
   * where vma_needs_copy says so (an anon_vma; from 5.19 also a child VMA registered for uffd-wp)
   * and first tells devices (the MMU notifier of a COW mapping revokes the grants there); a
   * device-exclusive entry is restored in the parent (copy_nonpresent_pte ->
   * try_restore_exclusive_pte; the page lock is always free here) and copied as the present PTE
   * it is then. Whether the child's entry keeps its uffd-wp bit: `uffdWpForkVma`. `cowpt` (a fork
   * with COW page tables, On-Demand Fork's MMF_USE_ODF) marks the parent; every fork of a marked mm
   * shares tables (tablesToShare): the child's pages there hold the parent's entries themselves
   * (the whole table: a VM_WIPEONFORK or anon_vma-less mapping in it too), nothing is counted per
   * page, both PMDs are write-protected (writable PTEs stay so).
   */
  fork(parent: NProc, cowpt = false): NProc {
    if (cowpt && this.rules.odf === undefined) throw new Error('these naive rules have no COW page tables');
    if (cowpt) parent.cowPgtable = true;
    const child = this.spawn();
    const share = parent.cowPgtable === true ? this.tablesToShare(parent) : new Set<number>();
    const addrs = new Map<string, number>();
    for (const r of parent.regions) for (let i = 0; i < r.n; i++) addrs.set(pageKey(r, i), r.base + i);
    if (parent.cowPgtable === true) {
      child.cowPgtable = true;
      child.shared = new Map();
      parent.shared ??= new Map();
      const byAddr = this.byAddress(parent);
      for (const t of share) {
        let tab = parent.shared.get(t);
        if (tab === undefined) {
          tab = { users: new Set([parent]), entries: new Map() };
          for (let a = t * PTES_PER_TABLE; a < (t + 1) * PTES_PER_TABLE; a++) {
            const pg = byAddr.get(a);
            if (pg !== undefined && (pg.pte !== null || pg.swp !== null)) tab.entries.set(a, { pte: pg.pte, swp: pg.swp });
          }
          parent.shared.set(t, tab);
        }
        tab.users.add(child);
        child.shared.set(t, tab);
        this.tablesShared++;
      }
    }
    // ksm_fork: a child of an mm registered with KSM (MMF_VM_MERGEABLE) is registered too, at the
    // list's tail (__ksm_enter behind ksmd's cursor, which rests at the list head between runs).
    if (this.ksmMms.includes(parent)) this.ksmMms.push(child);
    child.regions = parent.regions.slice();
    child.next = parent.next;
    const pmds = this.forkHugePmds(parent, child);
    if (parent.tables !== undefined) child.tables = new Set(parent.tables);
    const vmas = new Map<NVma, NVma>();
    for (const [key, pg] of parent.pages) {
      const cp = this.forkPage(parent, child, pg, vmas);
      if (cp === null) continue;
      child.pages.set(key, cp);
      if (pg.pmd) {
        cp.pmd = pmds.get(pg.pmd)!;
        continue;
      }
      // A shared table: the child reaches the parent's entries through it.
      if (share.has(Math.floor(addrs.get(key)! / PTES_PER_TABLE))) {
        cp.pte = pg.pte;
        cp.swp = pg.swp;
        continue;
      }
      if (!this.forkCopiesVma(pg, cp)) continue;
      this.notify(parent, [pg]);
      if (pg.devx) this.restoreDevx(parent, pg, false);
      if (pg.swp !== null) {
        this.forkSwapEntry(pg, cp);
        continue;
      }
      if (pg.pte === null) continue;
      const f = pg.pte.frame;
      if (f !== null && this.forkMustCopy(parent, f)) {
        this.forkCopied(pg, cp, child, this.newFrame(f.value));
        continue;
      }
      this.forkShare(pg, cp, child);
    }
    return child;
  }

  /**
   * dup_mmap()'s VMA loop for one page of the parent: the child's page, with no entry yet (null:
   * VM_DONTCOPY, no VMA in the child). `vmas` maps the parent's VMAs to the child's (anon_vma_fork:
   * each copied VMA gets an anon_vma of its own; a VM_WIPEONFORK one none). dup_userfaultfd:
   * without UFFD_FEATURE_EVENT_FORK the child's VMA is not registered; with it the child gets a
   * context of its own, with the event.
   */
  forkPage(parent: NProc, child: NProc, pg: NPage, vmas: Map<NVma, NVma>): NPage | null {
    if (pg.dontfork) return null;
    const uffd = pg.uffd === true && parent.uffdForkEvent;
    if (uffd) child.uffdForkEvent = true;
    let cv = vmas.get(pg.vma);
    if (cv === undefined) {
      const anon = pg.wipeonfork ? false : pg.vma.anonVma;
      // anon_vma_fork(): the child's VMA enters the anon_vma trees after every VMA there.
      cv = { anonVma: anon, anonId: anon ? this.nextAnon++ : 0, uncowed: anon, shift: pg.vma.shift, vmSoftdirty: pg.vma.vmSoftdirty, hugepage: pg.vma.hugepage, seq: anon ? this.nextSeq++ : undefined };
      vmas.set(pg.vma, cv);
    }
    return { vma: cv, prot: pg.prot, dontfork: false, wipeonfork: pg.wipeonfork, mergeable: pg.mergeable, pte: null, swp: null, uffd };
  }

  /**
   * vma_needs_copy() for the VMA of parent page pg, whose child page is cp: not VM_WIPEONFORK (an
   * empty VMA), and an anon_vma (from 5.19 also a child VMA registered for uffd-wp: its PTEs
   * hold the protection). copy_page_range then tells devices first (the MMU notifier of a COW
   * mapping revokes the grants there) and makes write_protect_seq odd.
   */
  forkCopiesVma(pg: NPage, cp: NPage): boolean {
    return !pg.wipeonfork && (pg.vma.anonVma || (this.rules.uffdWpForkCopies === true && cp.uffd === true));
  }

  /** Whether the child's entry keeps its uffd-wp bit: the parent's VMA is asked (`src-vma`, up to 5.13) or the child's. */
  private forkKeepsUffdWp(pg: NPage, cp: NPage): boolean {
    return this.rules.uffdWpForkVma === 'src-vma' ? pg.uffd === true : cp.uffd === true;
  }

  /**
   * copy_nonpresent_pte() of a swap entry: swap_duplicate, and the parent's entry is not
   * exclusive any more. Up to 5.13 a swap entry kept its uffd-wp bit whatever the VMA
   * (8f34f1eac382 made it ask).
   */
  forkSwapEntry(pg: NPage, cp: NPage): void {
    const swp = pg.swp!;
    swp.slot.count++;
    swp.exclusive = false;
    const keep = this.forkKeepsUffdWp(pg, cp) || this.rules.uffdWpForkVma === 'src-vma';
    cp.swp = { slot: swp.slot, exclusive: false, uffdWp: swp.uffdWp === true && keep, softDirty: swp.softDirty };
  }

  /**
   * copy_present_ptes(): a page that may be pinned (MMF_HAS_PINNED, folio_maybe_dma_pinned; from
   * 5.19 only a PG_anon_exclusive one, as a pinned page always is) is copied for the child at once.
   */
  forkMustCopy(parent: NProc, f: NFrame): boolean {
    return this.rules.earlyCow && parent.hasPinned && NaiveKernel.maybeDmaPinned(f) && (!this.rules.pae || f.exclusive);
  }

  /**
   * copy_present_page(): the child maps copy (a new frame holding the page's value, mapped once,
   * one reference), exclusive, writable if the VMA is; from 5.14 it keeps the uffd-wp bit,
   * write-protected, in a registered child VMA; before, it had none. The parent's PTE and page
   * are left as they are.
   */
  forkCopied(pg: NPage, cp: NPage, child: NProc, copy: NFrame): void {
    const kept = this.rules.uffdWpForkVma !== 'src-vma' && this.forkKeepsUffdWp(pg, cp) && pg.pte!.uffdWp === true;
    cp.pte = { frame: copy, writable: cp.prot === 'rw' && !kept, dirty: true, uffdWp: kept, softDirty: true };
    child.rss++;
    this.forkCopies++;
  }

  /**
   * __copy_present_ptes(): shared: one more mapping and reference, not exclusive any more, both
   * PTEs read-only (the zero page: no counts); the child's keeps the uffd-wp bit by forkKeepsUffdWp.
   */
  forkShare(pg: NPage, cp: NPage, child: NProc): void {
    const pte = pg.pte!;
    const wp = this.forkKeepsUffdWp(pg, cp) && pte.uffdWp === true;
    const f = pte.frame;
    if (f === null) {
      cp.pte = { frame: null, writable: false, dirty: false, uffdWp: wp, softDirty: pte.softDirty };
      return;
    }
    this.mapPage(child, f);
    f.refcount++;
    f.exclusive = false;
    pte.writable = false;
    cp.pte = { frame: f, writable: false, dirty: pte.dirty, uffdWp: wp, softDirty: pte.softDirty };
    child.rss++;
  }

  exit(p: NProc): void {
    // ksm_exit: the mm leaves KSM's list.
    const at = this.ksmMms.indexOf(p);
    if (at >= 0) this.ksmMms.splice(at, 1);
    this.notify(p, null); // exit_mmap: the MMU notifier's release
    this.unshareAll(p); // exit_mmap's zap copies a shared table first (or drops it: the same counts)
    for (const pg of p.pages.values()) this.zap(p, pg);
    p.pages.clear();
    p.alive = false;
  }

  munmap(p: NProc, r: NRegion, lo: number, hi: number): void {
    this.splitHugePmds(p, r, lo, hi);
    this.unshareRange(p, r, lo, hi);
    const before = this.bounds(p);
    this.split(p, r, lo, hi);
    this.notify(p, this.pagesIn(p, r, lo, hi));
    for (let i = lo; i < hi; i++) {
      const pg = p.pages.get(pageKey(r, i));
      if (pg === undefined) continue;
      this.zap(p, pg);
      p.pages.delete(pageKey(r, i));
    }
    this.reinsert(p, before);
  }

  /**
   * mprotect(): the pages up to the first hole change (ENOMEM there: false). mprotect_fixup leaves
   * a VMA that has the protection already alone (no change_protection, no MMU notifier); the
   * others are told to devices (a grant there is revoked) and change_pte_range runs: read-only
   * write-protects every PTE; read-write makes writable (6.0 on) a PTE of an exclusive page that
   * is not uffd-wp protected (can_change_pte_writable); 5.14-6.14 turn a writable
   * device-exclusive entry into a readable one, whichever protection is asked for.
   */
  mprotect(p: NProc, r: NRegion, lo: number, hi: number, prot: Prot): boolean {
    let end = lo;
    while (end < hi && p.pages.has(pageKey(r, end))) end++;
    if (end === lo) return false;
    const changed = this.pagesIn(p, r, lo, end).filter((pg) => pg.prot !== prot);
    if (changed.length === 0) return end === hi;
    // vma_adjust_trans_huge: the new VMA boundary splits a huge PMD across it.
    this.splitHugePmds(p, r, lo, end);
    // (The model core splits the VMA first, then copies a shared table: the part in the range
    // never covers a whole table, so no take-back here.)
    const before = this.bounds(p);
    this.split(p, r, lo, end);
    // A shared table is copied where a mapping changes (change_protection; mprotect_fixup leaves
    // the others alone, tables and all).
    for (const pg of changed) this.unshareAt(p, pg);
    this.notify(p, changed);
    for (const pg of changed) {
      pg.prot = prot;
      if (pg.devx && this.rules.deviceExclusive === 'v5.14') pg.devx.writable = false;
      if (pg.pte === null) continue;
      if (prot === 'ro') pg.pte.writable = false;
      else if (this.rules.mprotectUpgrade && this.canChangePteWritable(pg)) pg.pte.writable = true;
    }
    this.merge(p);
    this.reinsert(p, before);
    return end === hi;
  }

  /**
   * can_change_pte_writable() (6.0) of pg's present PTE in a private mapping with VM_WRITE: an
   * exclusive anonymous page, its PTE dirty before 6.2, unless uffd-wp tracking waits for its write
   * (the bit in a registered VMA: mremap before 6.13 carries the bit out of one) or soft-dirty
   * tracking does (pte_needs_soft_dirty_wp: VM_SOFTDIRTY clear and the PTE not soft-dirty).
   */
  private canChangePteWritable(pg: NPage): boolean {
    const pte = pg.pte!;
    return pte.frame !== null && pte.frame.exclusive && (this.rules.mprotectUpgradeClean === true || pte.dirty)
      && !(pg.uffd === true && pte.uffdWp === true) && (pg.vma.vmSoftdirty !== false || pte.softDirty === true);
  }

  /** The mapped pages of region r in [lo, hi). */
  private pagesIn(p: NProc, r: NRegion, lo: number, hi: number): NPage[] {
    const out: NPage[] = [];
    for (let i = lo; i < hi; i++) {
      const pg = p.pages.get(pageKey(r, i));
      if (pg !== undefined) out.push(pg);
    }
    return out;
  }

  /**
   * madvise(2). MADV_MERGEABLE (ksm_madvise) sets VM_MERGEABLE on the range's VMAs (split and
   * merged like any flag) and registers the mm with KSM (__ksm_enter) on its first use.
   */
  madvise(p: NProc, r: NRegion, lo: number, hi: number, advice: 'dontfork' | 'dofork' | 'wipeonfork' | 'keeponfork' | 'dontneed' | 'mergeable'): void {
    // zap_pmd_range splits a huge PMD the range covers in part; a flag change splits the VMA
    // (vma_adjust_trans_huge), and madvise_update_vma changes nothing where the flag is set already.
    if (advice === 'dontneed' || this.pagesIn(p, r, lo, hi).some((pg) => !NaiveKernel.hasAdvice(pg, advice))) this.splitHugePmds(p, r, lo, hi);
    if (advice === 'dontneed') {
      this.notify(p, this.pagesIn(p, r, lo, hi));
      const odf = this.rules.odf;
      if (odf !== undefined && p.cowPgtable === true) {
        if (odf.dontneed === 'ignored') return;
        this.dontneedShared(p, r, lo, hi);
      }
      for (let i = lo; i < hi; i++) {
        const pg = p.pages.get(pageKey(r, i));
        if (pg !== undefined) this.zap(p, pg);
      }
      return;
    }
    if (advice === 'mergeable') {
      if (!this.ksmMms.includes(p)) this.ksmMms.push(p);
    }
    this.unshareRange(p, r, lo, hi);
    const before = this.bounds(p);
    this.split(p, r, lo, hi);
    for (let i = lo; i < hi; i++) {
      const pg = p.pages.get(pageKey(r, i));
      if (pg === undefined) continue;
      if (advice === 'dontfork') pg.dontfork = true;
      else if (advice === 'dofork') pg.dontfork = false;
      else if (advice === 'wipeonfork') pg.wipeonfork = true;
      else if (advice === 'mergeable') pg.mergeable = true;
      else pg.wipeonfork = false;
    }
    this.merge(p);
    this.reinsert(p, before);
  }

  /**
   * On-Demand Fork 8d43667's MADV_DONTNEED in a shared table (zap_pmd_range decides by the VMA):
   * a mapping covering the table drops the process's reference to the whole table (its entries
   * gone from this process, the pages kept by the others); one covering part of it copies the
   * table without that mapping (tfork_one_pte_table with `exclude`): all its pages in the table
   * go from this process, whatever part of them the range names. The range is zapped after.
   */
  private dontneedShared(p: NProc, r: NRegion, lo: number, hi: number): void {
    for (let i = lo; i < hi; i++) {
      const pg = p.pages.get(pageKey(r, i));
      if (pg === undefined || !this.sharedAt(p, pg)) continue;
      const t = Math.floor(this.addrOf(p, pg)! / PTES_PER_TABLE);
      const pages = this.byAddress(p);
      const mine = [...pages].filter(([a, x]) => Math.floor(a / PTES_PER_TABLE) === t && x.vma === pg.vma).map(([, x]) => x);
      if (NaiveKernel.covers(pages, pg.vma, t)) {
        const tab = p.shared!.get(t)!;
        p.shared!.delete(t);
        tab.users.delete(p);
        for (const x of mine) {
          x.pte = null;
          x.swp = null;
        }
        if (tab.users.size === 0) for (const e of tab.entries.values()) this.dropEntry(e);
        continue;
      }
      this.unshareTable(p, t, null);
      for (const x of mine) this.zap(p, x);
    }
  }

  /**
   * mremap(MREMAP_MAYMOVE) of pages [lo, hi) of region r to a fresh range, which becomes a new
   * region of p (page k of the range is its page k): null for EFAULT (the range must start on a
   * mapped page; from 6.17 a range over several VMAs and holes moves VMA by VMA, holes kept, which
   * is what this does). The new range goes where the next mmap would (right after the last
   * mapping made). move_vma, per VMA part: copy_vma makes the new VMA (same flags, same anon_vma;
   * the page offset kept if it has an anon_vma, else the new address's), merged with the VMA just
   * before the new range where flags and offsets line up (vma_merge_new_range: that may be the
   * source VMA itself, not yet split); mremap_userfaultfd_prep (no UFFD_FEATURE_EVENT_REMAP)
   * then drops the registration of the VMA copy_vma returned, merged neighbour and all.
   * move_page_tables moves each entry as it is (present frame or zero page with its
   * writability, swap entry with SWP_EXCLUSIVE, device-exclusive entry): refcount, mapcount,
   * PG_anon_exclusive and pins stay; from 6.13 the entries of a registered VMA lose their uffd-wp
   * bits (vma_has_uffd_without_event_remap), before they keep them. Devices are told first
   * (move_page_tables' MMU notifier: grants on the range are revoked; a grant follows its page).
   * The old range is then unmapped, empty.
   */
  mremap(p: NProc, r: NRegion, lo: number, hi: number): NRegion | null {
    if (!p.pages.has(pageKey(r, lo))) return null;
    // move_page_tables: a move of less than a PMD splits a huge PMD first (split_huge_pmd).
    this.splitHugePmds(p, r, lo, hi);
    this.notify(p, this.pagesIn(p, r, lo, hi));
    // The VMAs before the old range is split (the split is the final munmap's, after the copies).
    const pre = new Map<NPage, NVma>();
    for (const x of p.pages.values()) pre.set(x, x.vma);
    const before = this.bounds(p);
    // COW page tables (d8ccd3c): the shared tables of the old range, and one the new range lands
    // in, are copied for this process first.
    this.unshareRange(p, r, lo, hi);
    for (let a = p.next; a < p.next + hi - lo; a++) this.unshareTable(p, Math.floor(a / PTES_PER_TABLE), null);
    this.split(p, r, lo, hi);
    const movedPages = new Set<NPage>();
    const moved: NRegion = { id: this.nextRegion++, n: hi - lo, base: p.next };
    p.next = moved.base + moved.n;
    p.regions.push(moved);
    // The VMA parts of the range, in address order (pages of one VMA in a row).
    const parts: { vma: NVma; idx: number[] }[] = [];
    for (let i = lo; i < hi; i++) {
      const pg = p.pages.get(pageKey(r, i));
      if (pg === undefined) continue;
      const last = parts[parts.length - 1];
      if (last !== undefined && last.vma === pg.vma && last.idx[last.idx.length - 1] === i - 1) last.idx.push(i);
      else parts.push({ vma: pg.vma, idx: [i] });
    }
    for (const { vma, idx } of parts) {
      const first = p.pages.get(pageKey(r, idx[0]!))!;
      const newAt = moved.base + (idx[0]! - lo);
      const nv: NVma = { anonVma: vma.anonVma, anonId: vma.anonId, uncowed: vma.uncowed, shift: vma.anonVma ? (vma.shift ?? 0) + (r.base + idx[0]! - newAt) : 0, vmSoftdirty: vma.vmSoftdirty, hugepage: vma.hugepage };
      // vma_has_uffd_without_event_remap(): asked of the old VMA before anything changes it.
      const clearUffdWp = this.rules.mremapClearsUffdWp === true && first.uffd === true;
      // copy_vma: the new range joins the VMA just before it when it could merge (vma_merge_new_range).
      const before = this.byAddress(p).get(newAt - 1);
      const joins = before !== undefined && NaiveKernel.sameFlags(before, first) && (before.vma.shift ?? 0) === nv.shift &&
        (before.vma.anonId === nv.anonId || before.vma.anonId === 0 || nv.anonId === 0);
      if (joins) {
        // The VMA copy_vma returned: the one before the new range (as it was before the split,
        // unless it is a part moved just now), now with the new range.
        const same = movedPages.has(before) ? (x: NPage) => x.vma === before.vma : (x: NPage) => !movedPages.has(x) && pre.get(x) === pre.get(before);
        for (const x of p.pages.values()) if (same(x)) x.uffd = false;
      }
      for (const i of idx) {
        const pg = p.pages.get(pageKey(r, i))!;
        if (clearUffdWp) {
          if (pg.pte) pg.pte.uffdWp = false;
          if (pg.swp) pg.swp.uffdWp = false;
          if (pg.devx) pg.devx.uffdWp = false;
        }
        pg.uffd = false;
        pg.vma = nv;
        // move_soft_dirty_pte(): every moved entry is marked soft-dirty.
        if (pg.pte !== null) pg.pte.softDirty = true;
        if (pg.swp !== null) pg.swp.softDirty = true;
        if (pg.devx) pg.devx.softDirty = true;
        movedPages.add(pg);
        p.pages.delete(pageKey(r, i));
        p.pages.set(pageKey(moved, i - lo), pg);
      }
    }
    this.merge(p);
    this.reinsert(p, before);
    return moved;
  }

  /**
   * write_protect_page(): KSM takes the page mapped by pg only if nothing but its mappings and
   * the swap cache hold it (folio_mapcount + swap cache == refcount, besides ksmd's own
   * reference): a GUP reference, a pipe's or a pin refuses it. That check (and the change) runs
   * only for a PTE that is writable or dirty or maps a PG_anon_exclusive page; then the PTE is
   * made read-only and clean and the page stops being exclusive (folio_try_share_anon_rmap_pte).
   * A clean read-only PTE of a shared page is taken as it is, extra references and all.
   */
  private ksmWriteProtect(pg: NPage): boolean {
    const pte = pg.pte!;
    const f = pte.frame!;
    // A KSM page (break_cow's leftover, in no tree) has no anon_vma: page_address_in_vma fails.
    if (f.ksm === true) return false;
    if (!pte.writable && !pte.dirty && !f.exclusive) return true;
    if (f.mapcount + (f.swapcache !== null ? 1 : 0) !== f.refcount) return false;
    f.exclusive = false;
    pte.writable = false;
    pte.dirty = false;
    return true;
  }

  /**
   * replace_page(): pg maps the KSM page kpage instead, read-only and clean (mk_pte from the
   * VMA's vm_page_prot); the old page loses the mapping and a reference, and its swap cache when
   * it is mapped nowhere and no swap entry refers to it (folio_free_swap).
   */
  private ksmReplace(pg: NPage, kpage: NFrame): void {
    const old = pg.pte!.frame!;
    kpage.refcount++;
    kpage.mapcount++;
    pg.pte = { frame: kpage, writable: false, dirty: false };
    old.mapcount--;
    if (old.mapcount === 0 && old.swapcache !== null && old.swapcache.count === 0) this.dropCache(old.swapcache);
    this.put(old);
    this.ksmMerged++;
  }

  /**
   * `ksm merge`: ksmd's full passes (ksm_do_scan) until one merges nothing and changes no rmap
   * item (ksmd scans on: a pass that only moved items, a KSM page's forked mapping given one,
   * can make a page a sharing candidate for the next, and one that remembered a checksum lets
   * that page merge in the next). A pass walks the registered mms in list
   * order, each one's VM_MERGEABLE VMAs by address, and takes each present anonymous page
   * (scan_get_next_rmap_item: not the zero page, not a swap entry) to cmp_and_merge_page:
   * - a page of the stable tree (a KSM page already) stays as it is (stable_tree_search finds
   *   the page itself: "ksm page forked"), its rmap item on the page's stable node; a KSM page
   *   in no tree (break_cow's leftover) goes on as an ordinary page, but write_protect_page
   *   refuses it wherever it meets it (no anon_vma);
   * - else the address's rmap item leaves its stable node (remove_rmap_item_from_tree; the item
   *   of an address passed with no page to scan is freed, checksum and all); from 6.11
   *   (ksmChecksumFirst) a page whose value is not its item's oldchecksum (ksmChecksums; a new
   *   item's matches no page) has it remembered and goes no further this pass; then a stable KSM page of the same
   *   content that an rmap item still hangs on (ksmStableCandidate): try_to_merge_one_page
   *   write-protects the page (write_protect_page) and maps the KSM page there (replace_page),
   *   its rmap item on the KSM page's node; refused, nothing happens;
   * - else, up to 6.10, the checksum is compared now (the stable tree search above still counted
   *   the item on its node, removed after it), as above;
   * - else a page of this pass's unstable tree with the same content (not the same frame):
   *   try_to_merge_two_pages makes the page being scanned (the second) a KSM page, write-
   *   protected, then maps it at the tree page's place; if the tree page is refused, break_cow
   *   breaks COW on the new KSM page again: a copy, read-only and clean (FAULT_FLAG_UNSHARE, 6.2
   *   on) or writable and dirty (FAULT_FLAG_WRITE, up to 6.1; always a copy: do_wp_page never
   *   reuses a KSM page that break_ksm holds a reference on, and 5.7's reuse_ksm_page wants a
   *   stable node; a uffd-wp protected PTE fails the write fault: the KSM page stays). ksmd's
   *   fault is not the process's (no minflt). A new KSM page joins the
   *   stable tree (stable_tree_insert);
   * - else the page goes into the unstable tree.
   */
  ksmMerge(): number {
    const before = this.ksmMerged;
    // With smart scan a pass that changed nothing may be followed by one that merges (other pages
    // left out): ksmd goes on until the ages (those from 9 on alike) and skips repeat a state a
    // pass since the last change left.
    const smart = this.rules.ksmSmartScan === true;
    const ageText = (): string => this.ksmMms.map((q) => [...(q.ksmAges ?? [])].sort((x, y) => x[0] - y[0]).map(([a, st]) => `${a}:${Math.min(st.age, 9)}:${st.skips}`).join(',')).join('|');
    const seen = new Set<string>([ageText()]);
    for (;;) {
      const pass = this.ksmMerged;
      const splits = this.thpEvents.folioSplit;
      // Every rmap item on a stable node, in scan order (frames by identity: a split path's new
      // frame has no id), and every remembered checksum.
      const allItems = (): unknown[] =>
        this.ksmMms.flatMap((q) => [...[...(q.ksmItems ?? [])].flatMap(([a, f]) => [q, a, f]), 'sums', ...[...(q.ksmChecksums ?? [])].sort((x, y) => x[0] - y[0]).flat()]);
      const itemsBefore = allItems();
      const unstable = new Map<number, { p: NProc; pg: NPage; addr: number }>();
      for (const p of this.ksmMms) {
        const pages = this.byAddress(p);
        const items = (p.ksmItems ??= new Map());
        const sums = (p.ksmChecksums ??= new Map());
        const ages = (p.ksmAges ??= new Map());
        // The addresses ksmd passes: every page, and every address an rmap item is left at.
        const addrs = [...new Set([...pages.keys(), ...items.keys(), ...sums.keys(), ...ages.keys()])].sort((x, y) => x - y);
        /** cmp_and_merge_page: the checksum differs from the item's oldchecksum: remembered, the page waits. */
        const changed = (addr: number, value: number): boolean => {
          if (sums.get(addr) === value) return false;
          sums.set(addr, value);
          return true;
        };
        for (const addr of addrs) {
          const pg = pages.get(addr);
          // A huge PMD's page is scanned as it is (ksm_next_page_pmd_entry), the PMD not split.
          const f = pg?.pmd ? pg.pmd.folio.pages[addr - pg.pmd.base]! : pg?.pte?.frame ?? null;
          if (pg === undefined || pg.mergeable !== true || f === null) {
            // Nothing to scan here (get_next_rmap_item, remove_trailing_rmap_items): the item is freed.
            items.delete(addr);
            sums.delete(addr);
            ages.delete(addr);
            continue;
          }
          if (f.ksm === true && f.stable === true) {
            // Its own stable node's item, or a KSM page forked: stable_tree_append.
            items.set(addr, f);
            continue;
          }
          if (smart && f.ksm !== true) {
            // should_skip_rmap_item: the item ages; from its fourth meeting on, with no skips left
            // it is compared and given skip_age's, else it spends one: off its tree, not compared.
            const was = ages.get(addr) ?? { age: 0, skips: 0 };
            const now = { age: Math.min(was.age + 1, 255), skips: was.skips };
            ages.set(addr, now);
            if (was.age >= 3) {
              if (was.skips > 0) {
                now.skips--;
                items.delete(addr);
                continue;
              }
              now.skips = was.age <= 3 ? 1 : was.age <= 5 ? 2 : was.age <= 8 ? 4 : 8;
            }
          }
          const first = this.rules.ksmChecksumFirst === true;
          if (first) {
            // cmp_and_merge_page from 6.11: remove_rmap_item_from_tree, then the checksum.
            items.delete(addr);
            if (changed(addr, f.value)) continue;
          }
          // stable_tree_search (up to 6.10 with the item still on its node), then remove_rmap_item_from_tree.
          const kpage = this.ksmStableCandidate(f.value);
          items.delete(addr);
          if (kpage !== null) {
            if (this.ksmSplitToMerge(pg, f) && this.ksmWriteProtect(pg)) {
              this.ksmReplace(pg, kpage);
              items.set(addr, kpage);
            }
            continue;
          }
          // Up to 6.10 the checksum only keeps a page out of the unstable tree.
          if (!first && changed(addr, f.value)) continue;
          const tree = unstable.get(f.value);
          if (tree === undefined) {
            unstable.set(f.value, { p, pg, addr });
            continue;
          }
          const tf = tree.pg.pmd ? tree.pg.pmd.folio.pages[tree.addr - tree.pg.pmd.base]! : tree.pg.pte?.frame ?? null;
          if (tf === f) continue; // "Don't merge with itself"
          if (tf === null || tf.value !== f.value) continue;
          if (f.folio !== undefined && f.folio === tf.folio) {
            // Both pages of one THP: try_to_merge_two_pages fails (ksmd's two references refuse
            // the split); cmp_and_merge_page then splits the folio, no merge this pass.
            if (f.folio.refcount === f.folio.large) this.splitFolio(f.folio);
            continue;
          }
          if (!this.ksmSplitToMerge(pg, f) || !this.ksmWriteProtect(pg)) continue;
          f.ksm = true; // try_to_merge_one_page with no kpage: PageKsm now
          if (this.ksmSplitToMerge(tree.pg, tf) && this.ksmWriteProtect(tree.pg)) {
            this.ksmReplace(tree.pg, f);
            f.stable = true;
            // stable_tree_insert, then stable_tree_append of both rmap items.
            tree.p.ksmItems!.set(tree.addr, f);
            items.set(addr, f);
            unstable.delete(f.value);
            this.ksmMerged++;
          } else if (this.rules.ksmBreakCow === 'unshare') {
            // break_cow: an unshare fault on the new KSM page copies it (never reused).
            this.wpFault(p, pg, true);
          } else if (pg.uffd !== true || pg.pte!.uffdWp !== true) {
            // break_cow: a write fault copies it; maybe_mkwrite: writable if the VMA is.
            this.wpFault(p, pg, false);
            pg.pte!.writable = pg.prot === 'rw';
          }
          // (A uffd-wp PTE in a registered VMA: break_ksm's write fault reaches handle_userfault
          // without FAULT_FLAG_ALLOW_RETRY, which fails (VM_FAULT_SIGBUS) before telling the
          // monitor: the KSM page stays mapped there, protected.)
        }
      }
      const itemsAfter = allItems();
      const same = this.ksmMerged === pass && this.thpEvents.folioSplit === splits && itemsAfter.length === itemsBefore.length && itemsAfter.every((x, i) => x === itemsBefore[i]);
      if (!smart) {
        if (same) return this.ksmMerged - before;
        continue;
      }
      const text = ageText();
      if (!same) seen.clear();
      else if (seen.has(text)) return this.ksmMerged - before;
      seen.add(text);
    }
  }

  /**
   * try_to_merge_one_page() from its start: a page of a THP (f, mapped at pg) splits its folio
   * first (split_huge_page: refused while a reference no mapping explains holds it, ksmd's own
   * aside; its huge PMDs split; 6.12's zero-filled pages mapped to the zero page). False: refused,
   * or pg no longer maps f (write_protect_page would not find it).
   */
  private ksmSplitToMerge(pg: NPage, f: NFrame): boolean {
    if (f.folio !== undefined) {
      if (f.folio.refcount !== f.folio.large) return false;
      this.splitFolio(f.folio);
    }
    return pg.pte?.frame === f;
  }

  /**
   * stable_tree_search() -> chain_prune(): a stable KSM page of this content that can take one
   * more mapping (is_page_sharing_candidate): one that some rmap item still hangs on ("at least
   * one mapping still exists, otherwise there's no much point to merge and share with this
   * stable_node, as the underlying tree_page of the other sharer is going to be freed soon").
   * None (null): the page goes on to the unstable tree. (max_page_sharing, 256, is not reached.)
   */
  private ksmStableCandidate(value: number): NFrame | null {
    for (const f of this.frames) {
      if (f.ksm !== true || f.stable !== true || f.value !== value) continue;
      if (this.ksmMms.some((q) => [...(q.ksmItems?.values() ?? [])].includes(f))) return f;
    }
    return null;
  }

  /**
   * echo 4 > /proc/PID/clear_refs (clear_refs_write, CLEAR_REFS_SOFT_DIRTY): every VMA loses
   * VM_SOFTDIRTY and every present PTE is write-protected with its soft-dirty bit cleared
   * (clear_soft_dirty; a swap PTE only loses the bit), so that the next write faults. From 5.11
   * (pte_is_pinned) a writable PTE of a maybe-pinned page in a COW mapping of an mm with
   * MMF_HAS_PINNED is left as it is. The next write fault is an ordinary do_wp_page: an exclusive
   * page is reused (5.19 on, so values stay right), under 5.9's page-count rule a pinned page is
   * copied away from its pin, under 5.7's mapcount rule it is reused. The soft-dirty bits (of
   * the PTEs write-protected and of swap entries) and VM_SOFTDIRTY are cleared: until a page's
   * next write, mprotect(rw) does not make its PTE writable (can_change_pte_writable), nor a
   * swap-in (pte_needs_soft_dirty_wp).
   */
  clearSoftdirty(p: NProc): void {
    this.notify(p, null); // clear_refs_write: the MMU notifier over the whole mm
    this.unshareAll(p);
    for (const pg of p.pages.values()) {
      pg.vma.vmSoftdirty = false;
      if (pg.pmd) {
        // clear_soft_dirty_pmd: write-protected, not soft-dirty, a PMD still (no pin test).
        pg.pmd.writable = false;
        pg.pmd.softDirty = false;
        continue;
      }
      if (pg.swp !== null) pg.swp.softDirty = false;
      if (pg.devx) pg.devx.softDirty = false; // a non-present entry: pte_swp_clear_soft_dirty
      const pte = pg.pte;
      if (pte === null) continue;
      const f = pte.frame;
      if (pte.writable && this.rules.clearRefsSkipsPinned === true && p.hasPinned && f !== null && NaiveKernel.maybeDmaPinned(f)) continue;
      pte.writable = false;
      pte.softDirty = false;
    }
  }

  /**
   * madvise(MADV_COLLAPSE) of pages [lo, hi) of region r (madvise_collapse, mm/khugepaged.c). The
   * VMAs in the range, in address order (madvise_walk_vmas; a hole: ENOMEM at the end), each:
   * hugepage_vma_check (an anon_vma, and the aligned 2 MiB holding vm_end - 2 MiB inside it: else
   * EINVAL, ending the call), then each whole aligned 2 MiB of the VMA's part of the range
   * (hpage_collapse_scan_pmd): a THP already is done; else the 512 entries are checked: a none
   * or zero-page PTE is fine, a swap entry is swapped in first (__collapse_huge_page_swapin: a
   * read fault, not counted), a page whose references its mappings (and the swap cache) do not
   * explain is refused (a pin, a GUP or pipe reference: SCAN_PAGE_COUNT, EAGAIN; the scan goes on
   * with the next 2 MiB), and with `writable-pte` a range none of whose PTEs is writable
   * (SCAN_PAGE_RO, EINVAL); then collapse_huge_page: every page gets a new copy (none and zero page:
   * a zeroed one), exclusive, mapped writable if the VMA is; the old pages lose this mapping and
   * reference. The call's errno is that of the last refusal. The PTE table is taken to exist
   * wherever the VMA has an anon_vma (a VMA gets one at its first anonymous fault, which makes
   * the table; fork makes the child's table wherever the parent has one in a copied VMA).
   */
  collapse(p: NProc, r: NRegion, lo: number, hi: number): NCollapse {
    if (this.rules.collapse === undefined) throw new Error('these naive rules have no MADV_COLLAPSE');
    const pages = this.byAddress(p);
    const a0 = r.base + lo;
    const a1 = r.base + hi;
    let collapsed = 0;
    let hole = false;
    for (let a = a0; a < a1; ) {
      const pg = pages.get(a);
      if (pg === undefined) {
        hole = true;
        a++;
        continue;
      }
      // The VMA's whole extent, and its part of the range.
      let vs = a;
      while (pages.get(vs - 1)?.vma === pg.vma) vs--;
      let ve = a + 1;
      while (pages.get(ve)?.vma === pg.vma) ve++;
      const end = Math.min(a1, ve);
      const lastBase = Math.floor((ve - PTES_PER_TABLE) / PTES_PER_TABLE) * PTES_PER_TABLE;
      if (!pg.vma.anonVma || ve - PTES_PER_TABLE < 0 || lastBase < vs) return { err: 'EINVAL', collapsed };
      const hstart = Math.ceil(a / PTES_PER_TABLE) * PTES_PER_TABLE;
      const hend = Math.floor(end / PTES_PER_TABLE) * PTES_PER_TABLE;
      let last: NCollapse['err'] = 'ok';
      for (let b = hstart; b < hend; b += PTES_PER_TABLE) {
        const err = this.collapseBlock(p, pages, b);
        if (err === 'ok') collapsed++;
        else if (err !== 'done') last = err;
      }
      if (last !== 'ok') return { err: last, collapsed };
      a = end;
    }
    return { err: hole ? 'ENOMEM' : 'ok', collapsed };
  }

  /** hpage_collapse_scan_pmd then collapse_huge_page for the 2 MiB at address b (all of it p's pages of one VMA). */
  private collapseBlock(p: NProc, pages: Map<number, NPage>, b: number): NCollapse['err'] | 'done' {
    const t = b / PTES_PER_TABLE;
    const block: NPage[] = [];
    for (let a = b; a < b + PTES_PER_TABLE; a++) block.push(pages.get(a)!);
    // SCAN_PMD_MAPPED: a huge PMD there already.
    if (block[0]!.pmd) return 'done';
    const scan = (): NCollapse['err'] => {
      let writable = false;
      for (const pg of block) {
        const f = pg.pte?.frame ?? null;
        if (f === null) continue;
        if (pg.pte!.writable) writable = true;
        // is_refcount_suitable(): a large folio's refcount against all its mappings.
        if (f.refcount !== (f.folio?.large ?? f.mapcount) + (f.swapcache !== null ? 1 : 0)) return 'EAGAIN';
      }
      return !writable && this.rules.collapse === 'writable-pte' ? 'EINVAL' : 'ok';
    };
    // Swap entries are counted, not refused: a page scan of the others first.
    const first = scan();
    if (first !== 'ok') return first;
    // A device-exclusive entry is a swap PTE to the scan too: __collapse_huge_page_swapin's
    // do_swap_page restores it (remove_device_exclusive_entry, the device told).
    if (block.some((pg) => pg.swp !== null || pg.devx)) {
      for (const pg of block) {
        if (pg.swp !== null) this.swapIn(p, pg, false);
        else if (pg.devx) this.restoreDevx(p, pg, true);
      }
      const again = scan();
      if (again !== 'ok') return again;
    }
    // collapse_huge_page: a new THP holding the pages' values (none and the zero page: zeroes),
    // exclusive (PG_anon_exclusive on its head), mapped by a PMD, writable if the VMA is, and the
    // old pages lose this mapping and reference (their PTE table is deposited under the PMD).
    const pmd: NPmd = { folio: this.newFolio(p, block.map((pg) => pg.pte?.frame?.value ?? 0)), base: b, writable: block[0]!.prot === 'rw', dirty: true, softDirty: true };
    for (const pg of block) {
      const old = pg.pte?.frame ?? null;
      if (old === null) p.rss++;
      pg.pte = null;
      pg.pmd = pmd;
      if (old !== null) {
        this.unmapPage(p, old);
        this.put(old);
      }
    }
    p.tables?.delete(t);
    (p.thp ??= new Set()).add(t);
    return 'ok';
  }

  /**
   * What a load of the page would return, with no fault taken and nothing changed: null for
   * SIGSEGV (nothing mapped), 0 for a missing PTE or the zero page, a swap entry's content.
   */
  peek(p: NProc, r: NRegion, i: number): number | null {
    const pg = p.pages.get(pageKey(r, i));
    if (pg === undefined) return null;
    if (pg.pmd) return this.hugePage(pg).value;
    if (pg.swp !== null) return pg.swp.slot.cache?.value ?? pg.swp.slot.value;
    if (pg.devx) return pg.devx.frame.value;
    return pg.pte?.frame?.value ?? 0;
  }

  // ---- transparent huge pages (PMD-mapped, private anonymous) -------------------------------

  /** The frame a huge PMD maps at pg (a page of p): the folio's page at pg's offset in the 2 MiB. */
  private hugePage(pg: NPage): NFrame {
    const pmd = pg.pmd!;
    for (const p of this.procs) {
      for (const r of p.regions) {
        for (let i = 0; i < r.n; i++) if (p.pages.get(pageKey(r, i)) === pg) return pmd.folio.pages[r.base + i - pmd.base]!;
      }
    }
    throw new Error('a huge PMD page of no process');
  }

  /**
   * Does a write fault on pg (a page of p, no PTE) go to do_huge_pmd_anonymous_page? A VM_HUGEPAGE
   * VMA covering the whole aligned 2 MiB around it, and no PTE table there yet (pmd_none).
   */
  private hugeFaultable(p: NProc, pg: NPage): boolean {
    if (pg.vma.hugepage !== true || pg.pte !== null || pg.swp !== null || pg.devx) return false;
    const a = this.addrOf(p, pg)!;
    const block = Math.floor(a / PTES_PER_TABLE);
    if (p.tables?.has(block) === true || this.sharedAt(p, pg)) return false;
    const pages = this.byAddress(p);
    for (let b = block * PTES_PER_TABLE; b < (block + 1) * PTES_PER_TABLE; b++) {
      const x = pages.get(b);
      if (x === undefined || x.vma !== pg.vma || x.pte !== null || x.swp !== null || x.devx) return false;
    }
    return true;
  }

  /** A new large folio of zeroed pages, refcount 1, mapped by one PMD of p (folio_add_new_anon_rmap: PG_anon_exclusive on the head). */
  private newFolio(p: NProc, values: readonly number[] | null): NFolio {
    const folio: NFolio = { pages: [], refcount: 1, entire: 1, large: 1, pincount: 0, mmIds: [p, null], mmCounts: [1, 0], shared: false };
    for (let j = 0; j < PTES_PER_TABLE; j++) {
      const f = { id: this.nextFrame++, mapcount: 0, exclusive: j === 0 && this.rules.pae, value: values?.[j] ?? 0, swapcache: null, folio } as unknown as NFrame;
      // One counter for the folio: a page's refcount is folio_ref_count().
      Object.defineProperty(f, 'refcount', { get: () => folio.refcount, set: (n: number) => { folio.refcount = n; }, enumerable: true, configurable: true });
      folio.pages.push(f);
    }
    return folio;
  }

  /** A store to pg of p through a huge PMD (or into an empty THP-eligible 2 MiB): do_huge_pmd_anonymous_page, do_huge_pmd_wp_page. */
  private writeHuge(p: NProc, pg: NPage, value: number): boolean {
    if (!pg.pmd) {
      // do_huge_pmd_anonymous_page, write: a zeroed THP mapped writable by one PMD.
      p.minflt++;
      this.anonPrepare(p, pg);
      const a = this.addrOf(p, pg)!;
      const base = a - (a % PTES_PER_TABLE);
      const pmd: NPmd = { folio: this.newFolio(p, null), base, writable: true, dirty: true, softDirty: true };
      for (const [b, x] of this.byAddress(p)) if (b >= base && b < base + PTES_PER_TABLE) x.pmd = pmd;
      p.rss += PTES_PER_TABLE;
    } else if (!pg.pmd.writable) {
      p.minflt++;
      this.hugeWpFault(p, pg, false);
    }
    const f = pg.pmd ? this.hugePage(pg) : pg.pte!.frame!;
    f.value = value;
    if (pg.pmd) {
      pg.pmd.dirty = true;
      pg.pmd.softDirty = true;
    } else {
      pg.pte!.dirty = true;
      pg.pte!.softDirty = true;
    }
    return true;
  }

  /**
   * do_huge_pmd_wp_page(): a write (or unshare) fault on a read-only huge PMD. Reusable (pmdReuse)
   * : PG_anon_exclusive set on the head; a write makes the PMD writable and dirty, an unshare
   * leaves it read-only. Else a write copies the whole folio (pmdCopy `huge`), or the PMD is split
   * (__split_huge_pmd) and VM_FAULT_FALLBACK hands the fault to do_wp_page on the page's PTE.
   */
  private hugeWpFault(p: NProc, pg: NPage, unshare: boolean): void {
    const pmd = pg.pmd!;
    const folio = pmd.folio;
    const head = folio.pages[0]!;
    let reuse: boolean;
    switch (this.rules.thp!.pmdReuse) {
      case 'mapcount':
        // reuse_swap_page() of the compound page.
        reuse = this.reuseSwapPage(head);
        break;
      case 'refcount':
        reuse = folio.refcount === 1;
        break;
      case 'anon-exclusive':
        reuse = head.exclusive || folio.refcount === 1;
        break;
    }
    if (reuse) {
      this.thpEvents.pmdReuse++;
      if (this.rules.pae) head.exclusive = true;
      if (unshare) return;
      this.reuses++;
      pmd.writable = pg.prot === 'rw';
      pmd.dirty = true;
      pmd.softDirty = true;
      return;
    }
    if (this.rules.thp!.pmdCopy === 'huge' && !unshare) {
      // copy_user_huge_page: a new THP holding the old one's values, mapped writable by this PMD.
      this.cowCopies += PTES_PER_TABLE;
      this.thpEvents.pmdCopy++;
      const copy: NPmd = { folio: this.newFolio(p, folio.pages.map((f) => f.value)), base: pmd.base, writable: true, dirty: true, softDirty: true };
      for (const x of p.pages.values()) if (x.pmd === pmd) x.pmd = copy;
      this.dropHugeMapping(p, folio);
      return;
    }
    this.splitHugePmd(p, pmd);
    this.wpFault(p, pg, unshare);
  }

  /** The folio loses a PMD mapping of p and its reference (folio_remove_rmap_pmd, folio_put). */
  private dropHugeMapping(p: NProc, folio: NFolio): void {
    folio.entire--;
    this.folioSubLarge(folio, p, 1);
    folio.refcount--;
  }

  /**
   * __wp_can_reuse_large_anon_folio() (6.15) and its forerunner: `never` (6.10-6.14) refuses a
   * large folio; `mm-exclusive` reuses it when it has two or more mappings, is not maybe mapped
   * shared (the MM-id tracking), and every reference is a mapping.
   */
  private canReuseLarge(folio: NFolio): boolean {
    if (this.rules.thp!.largeReuse === 'never') return false;
    if (folio.large <= 1) return false;
    if (folio.shared) return false;
    if (folio.large !== folio.refcount) return false;
    this.thpEvents.largeReuse++;
    return true;
  }

  /**
   * __split_huge_pmd_locked() of p's huge PMD: a PTE table of 512 PTEs with the PMD's bits, each
   * mapping its page (the page's mapcount +1; the folio gets 511 more references: one per PTE
   * where the PMD held one), then the PMD mapping goes (entire mapcount -1). The head's
   * PG_anon_exclusive goes to every page (RMAP_EXCLUSIVE).
   */
  private splitHugePmd(p: NProc, pmd: NPmd): void {
    const folio = pmd.folio;
    const pae = this.rules.pae && folio.pages[0]!.exclusive;
    this.thpEvents.split++;
    folio.refcount += PTES_PER_TABLE - 1;
    for (const [a, pg] of this.byAddress(p)) {
      if (pg.pmd !== pmd) continue;
      const f = folio.pages[a - pmd.base]!;
      f.mapcount++;
      if (pae) f.exclusive = true;
      pg.pmd = null;
      pg.pte = { frame: f, writable: pmd.writable, dirty: pmd.dirty, softDirty: pmd.softDirty };
    }
    this.folioAddLarge(folio, p, PTES_PER_TABLE);
    folio.entire--;
    this.folioSubLarge(folio, p, 1);
    (p.tables ??= new Set()).add(Math.floor(pmd.base / PTES_PER_TABLE));
  }

  /** The huge PMDs of p over pages [lo, hi) of region r split (what a path that knows only PTEs does first). */
  private splitHugePmds(p: NProc, r: NRegion, lo: number, hi: number): void {
    for (const pg of this.pagesIn(p, r, lo, hi)) if (pg.pmd) this.splitHugePmd(p, pg.pmd);
  }

  /** zap_huge_pmd(): p's huge PMD goes whole (exit): the folio loses the mapping and its reference. */
  private zapHugePmd(p: NProc, pmd: NPmd): void {
    for (const pg of p.pages.values()) if (pg.pmd === pmd) pg.pmd = null;
    this.dropHugeMapping(p, pmd.folio);
    p.rss -= PTES_PER_TABLE;
  }

  /**
   * copy_huge_pmd() for each huge PMD of the parent in a VMA fork copies: a folio that may be
   * pinned (forkMustCopy of the head: MMF_HAS_PINNED, the pincount, PG_anon_exclusive) is split
   * in the parent (its PTEs are then copied one by one); else the child shares it: one more
   * reference and PMD mapping, the head not exclusive, both PMDs write-protected. The child's
   * PMDs, by the parent's.
   */
  private forkHugePmds(parent: NProc, child: NProc): Map<NPmd, NPmd> {
    const out = new Map<NPmd, NPmd>();
    for (const pg of parent.pages.values()) {
      const pmd = pg.pmd;
      if (!pmd || out.has(pmd) || pg.dontfork || !this.forkCopiesVma(pg, pg)) continue;
      const folio = pmd.folio;
      if (this.forkMustCopy(parent, folio.pages[0]!)) {
        this.thpEvents.forkSplit++;
        this.splitHugePmd(parent, pmd);
        continue;
      }
      this.thpEvents.forkShare++;
      folio.refcount++;
      folio.entire++;
      this.folioAddLarge(folio, child, 1);
      folio.pages[0]!.exclusive = false;
      pmd.writable = false;
      out.set(pmd, { folio, base: pmd.base, writable: false, dirty: pmd.dirty, softDirty: pmd.softDirty });
      child.rss += PTES_PER_TABLE;
    }
    return out;
  }

  /** A PTE mapping of f added in p (for a page of a large folio, its large mapcount too). */
  private mapPage(p: NProc, f: NFrame): void {
    f.mapcount++;
    if (f.folio !== undefined) this.folioAddLarge(f.folio, p, 1);
  }

  /** A PTE mapping of f in p gone. */
  private unmapPage(p: NProc | undefined, f: NFrame): void {
    f.mapcount--;
    if (f.folio === undefined) return;
    if (p === undefined) throw new Error('a large folio unmapped by no process');
    this.folioSubLarge(f.folio, p, 1);
  }

  /**
   * folio_add_return_large_mapcount() (6.15, MM-id tracking): the mm's slot counts them; else a
   * free slot becomes the mm's, and the folio is maybe mapped shared if other mappings exist
   * (slot 0) or always (slot 1); with no slot free only the total counts.
   */
  private folioAddLarge(folio: NFolio, p: NProc, diff: number): void {
    folio.large += diff;
    const i = folio.mmIds.indexOf(p);
    if (i >= 0) folio.mmCounts[i]! += diff;
    else if (folio.mmIds[0] === null) {
      folio.mmIds[0] = p;
      folio.mmCounts[0] = diff;
      if (folio.large !== diff) folio.shared = true;
    } else if (folio.mmIds[1] === null) {
      folio.mmIds[1] = p;
      folio.mmCounts[1] = diff;
      folio.shared = true;
    }
  }

  /**
   * folio_sub_return_large_mapcount(): the mm's slot loses them (freed when none are left); when
   * one slot then holds every mapping, the folio is not maybe mapped shared any more.
   */
  private folioSubLarge(folio: NFolio, p: NProc, diff: number): void {
    folio.large -= diff;
    const i = folio.mmIds.indexOf(p);
    if (i >= 0) {
      folio.mmCounts[i]! -= diff;
      if (folio.mmCounts[i]! >= 1) return;
      folio.mmCounts[i] = 0;
      folio.mmIds[i] = null;
    }
    if (folio.mmCounts[0] === folio.large || folio.mmCounts[1] === folio.large) folio.shared = false;
  }

  /**
   * MADV_PAGEOUT meeting a page of a THP (madvise_cold_or_pageout_pte_range): a folio maybe mapped
   * by another (ThpRules.pageout: 6.15's MM-id bit; before 6.3 the page_mapcount() of the head
   * under a huge PMD, `page = pmd_page(orig_pmd)`, or of the page under a PTE, not 1) is left
   * alone (false); else split_folio() / split_huge_page(), refused while references other than
   * its mappings hold it (can_split_folio: total mapcount == refcount - the caller's; a pin, a GUP
   * reference, a pipe, a 5.14-6.14 device-exclusive entry: false); the page is then an ordinary
   * small page for reclaim (true; true too when it was no THP page).
   */
  private splitForPageout(pg: NPage): boolean {
    const folio = pg.pmd?.folio ?? pg.pte?.frame?.folio;
    if (folio === undefined) return true;
    const rule = this.rules.thp!.pageout;
    if (rule === undefined) throw new Error('THP pageout under these rules is not modelled by the naive model');
    if (rule === 'mm-id') {
      if (NaiveKernel.maybeMappedShared(folio)) return false;
    } else {
      const page = pg.pmd ? folio.pages[0]! : pg.pte!.frame!;
      if (page.mapcount + folio.entire !== 1) return false;
    }
    if (folio.refcount !== folio.large) return false;
    this.splitFolio(folio);
    return true;
  }

  /**
   * folio_maybe_mapped_shared() of a THP under 6.15's MM-id tracking: one mapping is "mapped
   * exclusively" whatever the shared bit says (the bit stays set after a third mm mapped the
   * folio and left); more than one, the bit decides.
   */
  private static maybeMappedShared(folio: NFolio): boolean {
    return folio.large > 1 && folio.shared;
  }

  /**
   * split_huge_page(): every huge PMD mapping the folio is split (its rmap walk), then each page is
   * a small folio holding a reference per mapping (PG_anon_exclusive kept; a page nothing maps is
   * freed). From 6.12 (thpSplitZeropage) remap_page(RMP_USE_SHARED_ZEROPAGE) maps each zero-filled
   * page to the shared zero page instead, read-only, keeping the soft-dirty and uffd-wp bits
   * (try_to_map_unused_to_zeropage), and the page is freed.
   */
  private splitFolio(folio: NFolio): void {
    this.thpEvents.folioSplit++;
    for (const q of this.procs) {
      if (!q.alive) continue;
      const pmds = new Set<NPmd>();
      for (const x of q.pages.values()) if (x.pmd?.folio === folio) pmds.add(x.pmd);
      for (const pmd of pmds) this.splitHugePmd(q, pmd);
      this.migrateDevx(q, folio);
    }
    for (const f of folio.pages) {
      Object.defineProperty(f, 'refcount', { value: f.mapcount, writable: true, enumerable: true, configurable: true });
      delete f.folio;
      if (f.refcount > 0) this.frames.add(f);
    }
    if (this.rules.thpSplitZeropage !== true) return;
    for (const q of this.procs) {
      if (!q.alive) continue;
      for (const x of q.pages.values()) {
        const f = x.pte?.frame ?? null;
        if (f === null || !folio.pages.includes(f) || f.value !== 0) continue;
        x.pte = { frame: null, writable: false, dirty: false, uffdWp: x.pte!.uffdWp, softDirty: x.pte!.softDirty };
        f.mapcount--;
        this.put(f);
        q.rss--;
      }
    }
  }

  /**
   * unmap_folio() -> try_to_migrate() of a folio being split, for q's device-exclusive entries of
   * its pages (6.15 on: an entry still counts as a mapping, so split_folio gets this far;
   * 5.14-6.14 entries hold a reference no mapping explains and can_split_folio refuses):
   * try_to_migrate_one tells devices first (MMU_NOTIFY_CLEAR over the folio's range: the grants on
   * q's pages of the folio are revoked) and makes the entry a migration entry, never the writable
   * kind (a non-present PTE); remove_migration_pte then maps the page again from vm_page_prot,
   * read-only (PG_anon_exclusive kept: an exclusive entry), clean (the entry is not dirty), old,
   * with the entry's soft-dirty and uffd-wp bits. The mapping is dropped and added again: counts
   * unchanged.
   */
  private migrateDevx(q: NProc, folio: NFolio): void {
    const mine = [...q.pages.values()].filter((x) => (x.pte?.frame?.folio ?? x.devx?.frame.folio) === folio);
    if (!mine.some((x) => x.devx)) return;
    this.notify(q, mine);
    for (const x of mine) {
      const d = x.devx;
      if (!d) continue;
      x.devx = null;
      x.pte = { frame: d.frame, writable: false, dirty: false, uffdWp: d.uffdWp, softDirty: d.softDirty };
      this.accessed?.(x.pte, false);
    }
  }

  /** Has pg the VMA flag this madvise sets (or clears) already? */
  private static hasAdvice(pg: NPage, advice: 'dontfork' | 'dofork' | 'wipeonfork' | 'keeponfork' | 'dontneed' | 'mergeable'): boolean {
    switch (advice) {
      case 'dontfork': return pg.dontfork;
      case 'dofork': return !pg.dontfork;
      case 'wipeonfork': return pg.wipeonfork;
      case 'keeponfork': return !pg.wipeonfork;
      case 'mergeable': return pg.mergeable === true;
      case 'dontneed': return false;
    }
  }

  // ---- device-exclusive entries -------------------------------------------------------------

  /**
   * mmu_notifier_invalidate_range_start on pages of p (null: the whole mm): every device grant of
   * p on them is revoked (the driver drops its mirror; its next atomic must fault again).
   */
  notify(p: NProc, pages: Iterable<NPage> | null): void {
    const set = pages === null ? null : new Set(pages);
    for (const g of this.grants) if (g.p === p && (set === null || (g.page !== null && set.has(g.page)))) g.revoked = true;
  }

  /**
   * remove_device_exclusive_entry (a CPU access, GUP included; `notify`: the device is told
   * first, MMU_NOTIFY_CLEAR) or fork's try_restore_exclusive_pte (its notifier ran already):
   * restore_exclusive_pte maps the page again with the entry's uffd-wp and soft-dirty bits,
   * writable (and dirty) in 6.15 when can_change_pte_writable (VM_WRITE, PG_anon_exclusive, no
   * uffd-wp, no soft-dirty tracking waiting for the page's next write), in 5.14 when
   * the entry was the writable kind, not uffd-wp, and VM_WRITE (maybe_mkwrite); 5.14's mapping
   * counts again (page_add_anon_rmap), 6.15's never stopped counting. The PTE is old (pte_mkold):
   * the restore ends the fault (do_swap_page's `goto out`) and only the access that retries
   * through it makes it young (a CPU's; not GUP's follow_page_pte nor hmm_range_fault's walk).
   */
  restoreDevx(p: NProc, pg: NPage, notify: boolean): void {
    const d = pg.devx!;
    if (notify) this.notify(p, [pg]);
    const v615 = this.rules.deviceExclusive === 'v6.15';
    // 6.15's can_change_pte_writable: not while soft-dirty tracking waits for the page's next write (pte_needs_soft_dirty_wp).
    const softDirtyWp = pg.vma.vmSoftdirty === false && d.softDirty !== true;
    const writable = pg.prot === 'rw' && !d.uffdWp && (v615 ? d.frame.exclusive && !softDirtyWp : d.writable);
    if (!v615) this.mapPage(p, d.frame);
    pg.devx = null;
    // The entry's soft-dirty bit, and pte_mkdirty's (x86 sets both) when mapped writable; old.
    pg.pte = { frame: d.frame, writable, dirty: writable, uffdWp: d.uffdWp, softDirty: d.softDirty === true || writable };
    this.accessed?.(pg.pte, false);
  }

  /**
   * make_device_exclusive (5.14-6.14: make_device_exclusive_range) of page i of r: GUP with
   * FOLL_GET | FOLL_WRITE | FOLL_SPLIT_PMD (a huge PMD is split first; a write fault breaks COW,
   * restores an earlier entry, and a uffd-wp page goes to the monitor first), then the mapping is
   * replaced by a device-exclusive entry and the GUP reference dropped (the driver's put once the
   * device maps the page; the entry keeps the mapping's reference). 6.15: the one PTE, which must
   * still be present, writable and map the page; the mapcount stays (a THP's page: its large
   * mapcount and MM-id slot too). 5.14: a tail page of a THP is left NULL (PageTail); else
   * folio_make_device_exclusive's rmap walk (deviceExclusiveWalk) turns every present PTE of the
   * folio into an entry; success only if the target PTE was writable and no mapping is left (of the
   * head, 5.14-5.17; of the folio, 5.18 on). The grant exists either way; a failure (EBUSY, or
   * EFAULT from GUP: the one page is the first) leaves it revoked from the start.
   */
  makeDeviceExclusive(p: NProc, r: NRegion, i: number): NGrant {
    const mode = this.rules.deviceExclusive;
    if (mode === undefined) throw new Error('no device-exclusive entries under these rules (5.14 on)');
    const pg = p.pages.get(pageKey(r, i)) ?? null;
    const g: NGrant = { p, page: pg, frame: null, revoked: true, err: 'EFAULT' };
    this.grants.push(g);
    const f = this.grab(p, r, i, { write: true, pin: false, longterm: false, splitPmd: true });
    if (f === undefined || f === null || pg === null) return g; // EFAULT (FOLL_WRITE never ends on the zero page)
    g.err = 'EBUSY';
    let ok = false;
    if (mode === 'v6.15') {
      const pte = pg.pte;
      if (pte !== null && pte.frame === f && pte.writable) {
        pg.devx = { frame: f, writable: false, uffdWp: pte.uffdWp === true, softDirty: pte.softDirty };
        pg.pte = null;
        ok = true;
      }
    } else if (f.folio === undefined || f === f.folio.pages[0]) {
      const valid = this.deviceExclusiveWalk(p, pg, f.folio?.pages ?? [f]);
      const folio = f.folio;
      const mapped = this.rules.deviceExclusiveHeld === 'page' || folio === undefined
        ? f.mapcount + (folio?.entire ?? 0)
        : folio.pages.reduce((n, x) => n + x.mapcount, folio.entire);
      ok = valid && mapped === 0;
    }
    this.put(f);
    if (ok) {
      g.frame = f;
      g.revoked = false;
      g.err = null;
    }
    return g;
  }

  /**
   * 5.14-6.14's rmap walk for make_device_exclusive_range (rmap_walk_anon with
   * page_make_device_exclusive_one): the VMAs of the anon_vma's interval tree in its order (by
   * vm_pgoff; equal keys in the order they were last linked: NVma.seq), and in each, page_vma_mapped_walk over
   * the folio's range by address: a present PTE of a page of the folio (`pages`) becomes an entry
   * of its own page, of that PTE's writability, uffd-wp and soft-dirty bits, and drops its mapping
   * (page_remove_rmap: the entry keeps the reference); an entry of one of them (!pte_present) ends
   * the whole walk (rmap_one returns false). (Its .done test, the folio no longer mapped, ends it
   * only where nothing is left to convert.) True: the target page pg of p was mapped writable.
   */
  private deviceExclusiveWalk(p: NProc, pg: NPage, pages: readonly NFrame[]): boolean {
    const set = new Set(pages);
    const vmas: { seq: number; pgoff: number; start: number; list: { pg: NPage; q: NProc }[] }[] = [];
    this.procs.forEach((q) => {
      if (!q.alive) return;
      const byVma = new Map<NVma, (typeof vmas)[number]>();
      for (const [a, x] of [...this.byAddress(q)].sort(([a1], [a2]) => a1 - a2)) {
        let v = byVma.get(x.vma);
        if (v === undefined) {
          v = { seq: x.vma.seq ?? 0, pgoff: a + (x.vma.shift ?? 0), start: a, list: [] };
          byVma.set(x.vma, v);
          vmas.push(v);
        }
        if (x.pmd && x.pmd.folio.pages === pages) throw new Error('page_make_device_exclusive_one: an unexpected PMD-mapped THP');
        if (set.has(x.pte?.frame as NFrame) || (x.devx && set.has(x.devx.frame))) v.list.push({ pg: x, q });
      }
    });
    vmas.sort((a, b) => a.pgoff - b.pgoff || a.seq - b.seq || a.start - b.start);
    let valid = false;
    for (const v of vmas) {
      for (const { pg: x, q } of v.list) {
        if (x.devx) return valid;
        const pte = x.pte!;
        if (q === p && x === pg && pte.writable) valid = true;
        x.devx = { frame: pte.frame!, writable: pte.writable, uffdWp: pte.uffdWp === true, softDirty: pte.softDirty };
        x.pte = null;
        this.unmapPage(q, x.devx.frame);
      }
    }
    return valid;
  }

  /** Does p still map the page object pg (not unmapped, not exited)? */
  private holds(p: NProc, pg: NPage | null): pg is NPage {
    if (pg === null || !p.alive) return false;
    for (const x of p.pages.values()) if (x === pg) return true;
    return false;
  }

  /**
   * The device's atomic through a grant: `denied` where the process no longer has a writable
   * mapping there (exited, unmapped, mprotect read-only: hmm_range_fault would refuse a write),
   * else `revoked` once a notifier revoked the grant (the driver must fault the page again), else
   * the value goes into the frame the device holds.
   */
  deviceAtomic(g: NGrant, value: number): 'ok' | 'revoked' | 'denied' {
    if (!this.holds(g.p, g.page) || g.page.prot !== 'rw') return 'denied';
    if (g.revoked || g.frame === null) return 'revoked';
    g.frame.value = value;
    return 'ok';
  }

  /**
   * The device reads through a grant: the frame it holds; once revoked, the page the process maps
   * now, faulted in for reading (hmm_range_fault: a read fault, which restores an entry left
   * there); 0 where nothing is mapped.
   */
  grantRead(g: NGrant): number {
    if (!g.revoked && g.frame !== null) return g.frame.value;
    if (!this.holds(g.p, g.page)) return 0;
    return this.load(g.p, g.page);
  }

  // ---- userfaultfd write-protect --------------------------------------------------------------

  /**
   * UFFDIO_REGISTER with UFFDIO_REGISTER_MODE_WP on pages [lo, hi) of r (default: all of it):
   * EINVAL (false) unless every page is mapped; the VMAs are split at the ends and get
   * VM_UFFD_WP. No PTE changes.
   */
  uffdRegister(p: NProc, r: NRegion, lo = 0, hi = r.n): boolean {
    const pages = this.pagesIn(p, r, lo, hi);
    if (pages.length !== hi - lo) return false;
    const before = this.bounds(p);
    this.split(p, r, lo, hi);
    for (const pg of pages) pg.uffd = true;
    this.merge(p);
    this.reinsert(p, before);
    return true;
  }

  /** UFFDIO_API with UFFD_FEATURE_EVENT_FORK: a child's registered mappings stay registered. */
  uffdForkEventOn(p: NProc): void {
    p.uffdForkEvent = true;
  }

  /**
   * UFFDIO_WRITEPROTECT on pages [lo, hi) of r (`wp`: MODE_WP, else resolve): ENOENT (false)
   * unless every page is registered in write-protect mode.
   */
  uffdWriteprotect(p: NProc, r: NRegion, lo: number, hi: number, wp: boolean): boolean {
    const pages = this.pagesIn(p, r, lo, hi);
    if (pages.length !== hi - lo || pages.some((pg) => pg.uffd !== true)) return false;
    // change_pmd_range: a huge PMD the range covers in part is split (__split_huge_pmd) and its
    // PTEs changed as any.
    this.splitHugePmds(p, r, lo, hi);
    this.uffdWriteprotectPages(p, pages, wp);
    return true;
  }

  /**
   * uffd_wp_range -> change_protection(MM_CP_UFFD_WP[_RESOLVE]): devices are told first (a grant
   * there is revoked); a present PTE gets the bit and is write-protected, or loses it and (6.3
   * on) is made writable if its page is exclusive (MM_CP_TRY_CHANGE_WRITABLE), or (before 6.3)
   * is made read-only, as pte_modify() with the private PAGE_COPY leaves every PTE; a swap or
   * device-exclusive entry gets or loses the bit in the entry (5.14-6.14: a writable
   * device-exclusive entry becomes readable in any change_protection); an empty anonymous PTE
   * stays empty (no marker).
   */
  private uffdWriteprotectPages(p: NProc, pages: NPage[], wp: boolean): void {
    this.notify(p, pages);
    for (const pg of pages) {
      if (pg.pte !== null) {
        pg.pte.uffdWp = wp;
        if (wp) pg.pte.writable = false;
        else if (this.rules.uffdUnprotectWritable === true) {
          // MM_CP_TRY_CHANGE_WRITABLE where vma_wants_manual_pte_write_upgrade (VM_WRITE).
          if (pg.prot === 'rw' && this.canChangePteWritable(pg)) pg.pte.writable = true;
        } else pg.pte.writable = false; // before 6.3: vm_get_page_prot() of a private mapping is read-only, protected before or not
      } else if (pg.swp !== null) {
        pg.swp.uffdWp = wp;
      } else if (pg.devx) {
        pg.devx.uffdWp = wp;
        if (this.rules.deviceExclusive === 'v5.14') pg.devx.writable = false;
      }
    }
  }

  /** pagemap's PM_UFFD_WP for page i of r: the bit of a present PTE, a swap or a device-exclusive entry. */
  uffdWp(p: NProc, r: NRegion, i: number): boolean {
    const pg = p.pages.get(pageKey(r, i));
    if (pg === undefined) return false;
    return (pg.pte?.uffdWp ?? pg.swp?.uffdWp ?? pg.devx?.uffdWp ?? false) === true;
  }

  /**
   * split_vma at lo and hi of region r: each VMA with pages in [lo, hi) is cut there; the part in
   * the range and the part after it become VMAs of their own (same anon_vma). VMAs may span
   * several regions (merged neighbours), so the cut is by address.
   */
  private split(p: NProc, r: NRegion, lo: number, hi: number): void {
    const pages = this.byAddress(p);
    const a = r.base + lo;
    const b = r.base + hi;
    const inside = new Map<NVma, NVma>();
    for (const [addr, pg] of pages) {
      if (addr >= a && addr < b && !inside.has(pg.vma)) inside.set(pg.vma, { anonVma: pg.vma.anonVma, anonId: pg.vma.anonId, uncowed: pg.vma.uncowed, shift: pg.vma.shift, vmSoftdirty: pg.vma.vmSoftdirty, hugepage: pg.vma.hugepage, seq: pg.vma.seq });
    }
    const after = new Map<NVma, NVma>();
    for (const v of inside.keys()) after.set(v, { anonVma: v.anonVma, anonId: v.anonId, uncowed: v.uncowed, shift: v.shift, vmSoftdirty: v.vmSoftdirty, hugepage: v.hugepage, seq: v.seq });
    for (const [addr, pg] of pages) {
      if (addr < a) continue;
      const to = addr < b ? inside.get(pg.vma) : after.get(pg.vma);
      if (to !== undefined) pg.vma = to;
    }
  }

  /** Each VMA's bounds in p: its first and one past its last address, as "lo:hi". */
  private bounds(p: NProc): Map<NVma, string> {
    const lo = new Map<NVma, number>();
    const hi = new Map<NVma, number>();
    for (const [a, pg] of this.byAddress(p)) {
      if (!lo.has(pg.vma) || a < lo.get(pg.vma)!) lo.set(pg.vma, a);
      if (!hi.has(pg.vma) || a + 1 > hi.get(pg.vma)!) hi.set(pg.vma, a + 1);
    }
    const out = new Map<NVma, string>();
    for (const [v, a] of lo) out.set(v, `${a}:${hi.get(v)!}`);
    return out;
  }

  /**
   * After an operation that split or merged p's VMAs (bounds taken before it): a VMA with an
   * anon_vma whose bounds no VMA had before entered the anon_vma trees again (anon_vma_clone of
   * a split's new part, anon_vma_interval_tree_post_update_vma of a part or merge that changed):
   * after every VMA there. One the operation left as it was keeps its place.
   */
  private reinsert(p: NProc, before: Map<NVma, string>): void {
    const was = new Set(before.values());
    for (const [v, b] of this.bounds(p)) if (v.anonVma && !was.has(b)) v.seq = this.nextSeq++;
  }
}
