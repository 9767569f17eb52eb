// Bit layouts shared by the model core: PTE bits, frame flags, VMA flags, page-table geometry.
// x86-64 with 4 KiB pages and 4-level paging (as on the machines this project runs on).

export const PAGE_SIZE = 4096;
export const PTRS_PER_TABLE = 512;
export const TABLE_SHIFT = 9;
export const TABLE_MASK = 511;
/** Page-table levels, top to bottom. The PTE level holds page entries. */
export const LEVEL_PGD = 3;
export const LEVEL_PUD = 2;
export const LEVEL_PMD = 1;
export const LEVEL_PTE = 0;
/** How far a virtual page number is shifted to index a table of each level. */
export const LEVEL_SHIFT = [0, 9, 18, 27] as const;
/** Pages spanned by one table of each level (PTE table: 512 pages = 2 MiB). */
export const LEVEL_SPAN = [512, 512 * 512, 512 * 512 * 512, 512 * 512 * 512 * 512] as const;

/** PTE bits (the model's pte_t flags; the entry's number is a pfn or a swap slot). */
export const PTE_PRESENT = 1 << 0;
export const PTE_WRITE = 1 << 1;
export const PTE_DIRTY = 1 << 2;
export const PTE_YOUNG = 1 << 3;
/** pte_special: maps the shared zero page (no refcount, no mapcount). */
export const PTE_SPECIAL = 1 << 4;
/**
 * _PAGE_SOFT_DIRTY: set with PTE_DIRTY wherever the kernel calls pte_mkdirty()/pmd_mkdirty() (x86
 * sets both); clear_refs clears it. The CPU sets only the dirty bit; the model's cpuStore sets both,
 * which changes nothing where tracking is armed: a writable PTE there is soft-dirty already.
 */
export const PTE_SOFT_DIRTY = 1 << 5;
export const PTE_UFFD_WP = 1 << 6;
/** Non-present kinds (later issues): a swap entry, its SWP_EXCLUSIVE bit, a device-exclusive entry. */
export const PTE_SWAP = 1 << 7;
export const PTE_SWP_EXCLUSIVE = 1 << 8;
export const PTE_DEVICE_EXCLUSIVE = 1 << 9;
export const PTE_DEVEXCL_WRITE = 1 << 10;
/** PROT_NONE: the PTE stays (pte_present for the kernel) but gives user space no access. */
export const PTE_PROTNONE = 1 << 11;
/**
 * A PTE marker (5.19+, make_pte_marker): not present, no page, entry 0. The model's only kind is
 * PTE_MARKER_UFFD_WP (bits PTE_MARKER | PTE_UFFD_WP): a protected none PTE of a shmem mapping.
 */
export const PTE_MARKER = 1 << 12;

/** Frame (struct page / folio) flags. */
export const PG_ANON = 1 << 0;
/** PG_anon_exclusive (5.19+): the page is known to be mapped by one process only. */
export const PG_ANON_EXCLUSIVE = 1 << 1;
/** The shared zero page (frame 0). */
export const PG_ZERO = 1 << 2;
export const PG_KSM = 1 << 3;
export const PG_SWAPCACHE = 1 << 4;
/** A shmem (shared anonymous) page held by its object's page cache. */
export const PG_SHMEM_SHIFT = 5;
export const PG_SHMEM = 1 << PG_SHMEM_SHIFT;
export const PG_LOCKED = 1 << 6;
/** Allocated (not on the free list). */
export const PG_INUSE = 1 << 7;
/** The frame is one of the 512 of a large folio (a THP): its head is `pfn & ~511` (PageTransCompound). */
export const PG_LARGE = 1 << 8;
/** A hugetlb folio (PageHuge / folio_test_hugetlb): a PG_LARGE block taken from the huge page pool, not from config.frames. */
export const PG_HUGETLB = 1 << 9;

/** Frames in a PMD-sized folio (HPAGE_PMD_NR) and its order. */
export const HPAGE_PMD_NR = 512;
export const HPAGE_PMD_ORDER = 9;
/** PMD-level `bits`: the entry is a leaf mapping a 2 MiB folio (pmd_trans_huge), not a table pointer. */
export const PMD_LEAF = 1 << 12;

/** VMA flags (vm_flags). */
export const VM_READ = 1 << 0;
export const VM_WRITE = 1 << 1;
export const VM_SHARED = 1 << 3;
export const VM_MAYREAD = 1 << 4;
export const VM_MAYWRITE = 1 << 5;
export const VM_MAYSHARE = 1 << 7;
/** VM_UFFD_WP (0x1000): registered with userfaultfd in write-protect mode (UFFDIO_REGISTER_MODE_WP). */
export const VM_UFFD_WP = 1 << 12;
export const VM_DONTCOPY = 1 << 17;
/** VM_HUGETLB (0x00400000): a MAP_HUGETLB mapping of 2 MiB huge pages (src/core/hugetlb.ts). */
export const VM_HUGETLB = 1 << 22;
export const VM_WIPEONFORK = 1 << 25;
export const VM_SOFTDIRTY = 1 << 27;
export const VM_MERGEABLE = 1 << 28;
/** MADV_HUGEPAGE / MADV_NOHUGEPAGE (the scenario's `thp` / `nothp`). */
export const VM_HUGEPAGE = 1 << 29;
export const VM_NOHUGEPAGE = 1 << 30;

/** is_cow_mapping(): private and may become writable. */
export function isCowMapping(flags: number): boolean {
  return (flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
}

/** Results of faults and memory operations (the kernel's errno / vm_fault_t, simplified). */
export const OK = 0;
export const SIGSEGV = 1;
export const OOM = 2; // VM_FAULT_OOM / -ENOMEM
export const EINVAL = 3;
export const EFAULT = 4;
export const EBUSY = 5;
export const NA = 6; // the profile has no such behaviour (the run becomes n/a)
/** VM_FAULT_RETRY after handle_userfault(): the monitor resolved it; the access is retried (not accounted). */
export const RETRY = 7;
/** -ENOENT (UFFDIO_WRITEPROTECT on a range not registered in write-protect mode). */
export const ENOENT = 8;
/** VM_FAULT_SIGBUS: a hugetlb fault found no free huge page (or a page taken back by the reservation owner): the process is killed. */
export const SIGBUS = 9;
/** -EAGAIN (MADV_COLLAPSE: a page holds a reference no mapping explains; trying again may succeed). */
export const EAGAIN = 10;
/**
 * VM_FAULT_WRITE: a write (or break-COW) fault did the write, even where the PTE stays read-only
 * (a read-only VMA, a uffd-wp bit): do_wp_page() reused or copied the page, or do_swap_page()
 * reused it (reuse_swap_page). A success like OK; GUP's faultin_page() reads it (FOLL_COW).
 */
export const VM_FAULT_WRITE = 11;
/** -EOPNOTSUPP (6.15's make_device_exclusive() on a folio that is not anonymous, or hugetlb). */
export const EOPNOTSUPP = 12;

/** Where the model places mappings: bottom-up from 1 TiB (as a page number). */
export const MMAP_BASE_VPN = 1 << 28;
/** The highest page number the model hands out (8 TiB), keeping page numbers 31-bit. */
export const MMAP_LIMIT_VPN = 2 ** 31 - 1;
