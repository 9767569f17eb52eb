// The kernel profiles of the scenario language (their names are part of the contract), each
// documented with the commits or seed it stands for (docs/profiles.md).

import type { Profile } from '../core/profile.js';

const V5_7: Profile = {
  name: 'v5.7',
  summary: 'mainline 5.7.0: reuse on write fault by mapcount (reuse_swap_page); GUP takes references without breaking COW; fork shares every anon page (the 5.7.y stable kernels carry v5.8\'s forced COW break in GUP)',
  source: 'Linux 5.7 (mm/memory.c do_wp_page with reuse_swap_page; FOLL_PIN infrastructure eddb1c228f79); 17839856fd58 was backported to the 5.7.y stable series, so those kernels behave as v5.8 in GUP',
  wpReuse: 'mapcount',
  anonExclusive: false,
  gupCowBreak: 'none',
  gupFastWritableOnly: false,
  forkEarlyCow: false,
  unshareRoPin: 'none',
  clearRefsSkipPinned: false,
  mprotectWritable: false,
  mprotectWritableClean: false,
  ksmReuse: true,
  wpCopiesKsm: true,
  ksmBreakCow: 'write',
  ksmScansProtnone: true,
  ksmChecksumFirst: false,
  ksmSmartScan: false,
  pinSkipsZeroPage: false,
  mmForbidsZeropage: false,
  writeProtectSeq: false,
  deviceExclusive: 'none',
  deviceExclusiveHeld: 'page',
  swapinReuse: 'reuse_swap_page',
  swapinReadFaultWritable: false,
  wpFreeSwapcache: false,
  reclaimSkipsPinned: false,
  cowPageTables: 'none',
  cowPteTakeBack: 'any',
  cowPteShare: 'any',
  cowptDontneed: 'range',
  cowptMremap: 'unshare',
  mremapMultiVma: false,
  mremapClearsUffdWp: false,
  thpUseZeroPage: true,
  thpWpReuse: 'mapcount',
  thpWpCopy: 'huge',
  hugeZeroWp: 'huge',
  wpReuseLarge: 'as-small',
  pageoutLargeShared: 'page-mapcount',
  pageoutLargeWalk: 'break',
  mprotectWritablePmd: false,
  hugetlbForkEarlyCow: false,
  madvCollapse: 'none',
  ptReclaim: false,
  thpSplitZeropage: false,
  uffdWp: true,
  uffdWpForkVma: 'src-vma',
  uffdWpShmem: false,
  uffdWpWritenotify: false,
  uffdUnprotectWritable: false,
  gupFastLongtermRetry: false,
  swap: true,
  ksm: true,
};

function derive(base: Profile, name: string, summary: string, source: string, over: Partial<Profile>): Profile {
  return { ...base, ...over, name, summary, source };
}

const V5_8 = derive(V5_7, 'v5.8',
  'v5.7 + GUP with FOLL_GET/FOLL_PIN on a COW mapping forces a COW break (treated as a write)',
  '17839856fd58 "gup: document and work around \'COW can break either way\' issue" (CVE-2020-29374)',
  { gupCowBreak: 'get-and-pin', gupFastWritableOnly: true, thpWpCopy: 'split', hugeZeroWp: 'split' });

const V5_9_RC4 = derive(V5_7, 'v5.9-rc4',
  'do_wp_page() simplification: reuse only when page_count == 1 (and not KSM); the forced GUP COW break reverted',
  'seed 003; 09854ba94c6a "mm: do_wp_page() simplification", 1a0cf26323c8, a308c71bf1e6',
  { wpReuse: 'pagecount', ksmReuse: false, thpWpCopy: 'split', hugeZeroWp: 'split' });

const V5_9_RC4_PIN_COW = derive(V5_9_RC4, 'v5.9-rc4+pin-cow',
  'v5.9-rc4 + enforced COW break at GUP time for FOLL_PIN only (FAULT_FLAG_BREAK_COW); gup-fast unaffected',
  'seed 001 (Peter Xu, "mm/gup: Enforce COW for FOLL_PIN" RFC, Sep 2020; not merged)',
  { gupCowBreak: 'pin' });

const V5_9 = derive(V5_9_RC4, 'v5.9',
  'v5.9-rc4 + mm->has_pinned + early COW at fork of maybe-pinned pages',
  'seed 000; 008cfe4418b3 "mm: Introduce mm_struct.has_pinned", 70e806e4e645 "mm: Do early cow for pinned pages during fork() for ptes"',
  { forkEarlyCow: true });

const V5_14 = derive(V5_9, 'v5.14',
  'v5.9 + write_protect_seq and clear_refs skipping pinned pages (5.11), early COW of pinned hugetlb pages at fork (5.12), device-exclusive entries as merged, fork asking the child\'s VMA about uffd-wp (5.14)',
  '57efa1fe5957 (write_protect_seq, 5.11), 9348b73c2e1b (clear_refs, 5.11), 4eae4efa2c29 "hugetlb: do early cow when page pinned on src mm" (5.12), b756a3b5e7ea "mm: device exclusive memory access" (seed 002), 8f34f1eac382 "mm/userfaultfd: fix uffd-wp special cases for fork()" (5.14-rc1: copy_present_pte, copy_nonpresent_pte, copy_present_page and copy_huge_pmd ask userfaultfd_wp(dst_vma); read in the 5.14.2 sources, absent in 5.12.9)',
  { writeProtectSeq: true, clearRefsSkipPinned: true, reclaimSkipsPinned: true, deviceExclusive: 'v5.14', hugetlbForkEarlyCow: true, uffdWpForkVma: 'dst-vma' });

const V5_18 = derive(V5_14, 'v5.18',
  'v5.14 + refcount-based reuse in the swap-in and THP paths (COW fixes part 1) + device-exclusive grants asking the folio\'s mapcount (the folio conversion of make_device_exclusive_range())',
  'd4c470970d45, 84d60fdd3733, c145e0b47c77, 3bff7e3f1f16 ("mm: COW fixes part 1"); 0d2514859ced "mm/rmap: Convert make_device_exclusive_range() to use folios" (folio-5.18c, merged for 5.18-rc1: folio_mapcount() in the 5.18.1 sources, datenpanne/msm8974-5.18 at 6adead6b4120)',
  { swapinReuse: 'refcount', wpFreeSwapcache: true, thpWpReuse: 'refcount', deviceExclusiveHeld: 'folio' });

const V5_19 = derive(V5_18, 'v5.19',
  'PG_anon_exclusive; FAULT_FLAG_UNSHARE for R/O pins of possibly shared anonymous pages',
  '6c287605fd56, c89357e27f20, a7f226604170 ("mm: COW fixes part 2: reliable GUP pins of anonymous pages"); b1f9e876862d (uffd-wp on shmem, PTE markers)',
  { wpReuse: 'anon-exclusive', anonExclusive: true, unshareRoPin: 'anon', swapinReuse: 'exclusive-bit', uffdWpShmem: true, thpWpReuse: 'anon-exclusive' });

const V6_2 = derive(V5_19, 'v6.2',
  'v5.19 + mprotect maps exclusive anon pages writable (6.0; clean ones too from 6.2) + MADV_COLLAPSE (6.1) + unsharing for anything in a COW mapping (zero page) + uffd-wp registration write-protects a shared mapping\'s vm_page_prot (writenotify)',
  '64fe24a3e05e (6.0), "mm/mprotect: allow clean exclusive anon pages to be writable" (Nadav Amit, 6.2: no pte_dirty() test in can_change_pte_writable for private mappings; read in 6.0.1, 6.1.166 (wanted) and 6.2.12 (gone)), 7d8faaf15545 (6.1), 8d6a0ac09a16 and 84209e87c696 (6.2), 6cce3314b928 (6.2: KSM\'s break_cow unshares), 51d3d5eb74ff (6.2: vma_wants_writenotify() holds for a uffd-wp VMA), 474098edac26 (6.1: ksmd\'s follow_page() skips a PROT_NONE PTE); "mm/gup: remove the restriction on locked with FOLL_LONGTERM" (6.2: the gup-fast fallback of a FOLL_LONGTERM pin may drop mmap_lock, so it may wait for the userfaultfd monitor; __gup_longterm_unlocked with locked NULL in 6.1.166, gone in 6.2.12)',
  { mprotectWritable: true, mprotectWritableClean: true, unshareRoPin: 'all', mprotectWritablePmd: true, madvCollapse: 'writable-pte', ksmBreakCow: 'unshare', uffdWpWritenotify: true, ksmScansProtnone: false, gupFastLongtermRetry: true });

const V6_15 = derive(V6_2, 'v6.15',
  'v6.2 + zero page never pinned (6.5) + ksmd\'s smart scan (6.7) + exclusive swapped-in pages writable on read faults (6.11) + device-exclusive rework (mapcount untouched, treated like present at fork)',
  '931298e103c2 (6.3); c8070b787519 (6.5); d74943a2f3cd (6.5: ksmd scans PROT_NONE pages again); 5e924ff54d08 (6.7: ksmd\'s smart scan, should_skip_rmap_item(), on by default; read in 6.7.3 and 6.18.2); c18160dba5ff (6.11); d58a361b0350 (6.11: ksmd compares a page\'s checksum before the stable tree search); "mm: madvise: avoid split during MADV_PAGEOUT and MADV_COLD" (Ryan Roberts, 6.10: MADV_PAGEOUT batches a large folio\'s PTEs, pages out one they map whole when folio_mapcount() is its number of pages, and steps past one it leaves alone, where 5.4-6.9 end the walk of its PMD there; `continue` in the 6.10.0, 6.12.19 and 6.18.2 madvise.c, `break` in 6.9.0); "mm: fixes for device-exclusive entries (hmm)" (David Hildenbrand, 6.15)',
  { pinSkipsZeroPage: true, swapinReadFaultWritable: true, deviceExclusive: 'v6.15', uffdUnprotectWritable: true, hugeZeroWp: 'huge', wpReuseLarge: 'mm-exclusive', pageoutLargeShared: 'folio', pageoutLargeWalk: 'batch', ptReclaim: true, thpSplitZeropage: true, mremapClearsUffdWp: true, ksmScansProtnone: true, ksmChecksumFirst: true, ksmSmartScan: true });

const V6 = derive(V6_15, 'v6',
  'the newest behaviour modelled (Linux 6.18): v6.15 + mremap moving a range of several mappings (6.17) + MADV_COLLAPSE of a range with no writable PTE; `cowlab oracle` compares it with whatever live kernel it runs on',
  'Linux 6.18 (mm/memory.c, mm/gup.c, mm/rmap.c, mm/mremap.c as of 6.18; d23cb648e365 "mm/mremap: permit mremap() move of multiple VMAs", 6.17); checked against a live kernel by `cowlab oracle`',
  { mremapMultiVma: true, madvCollapse: 'any-pte' });

const COWPT_RFC = derive(V5_18, 'cowpt-rfc',
  'seed 004 (COW page tables, RFC v1) on the v5.18 rules; `fork ... cowpt` shares PTE tables',
  'seed 004 "Introduce Copy-On-Write to Page Table" (Chih-En Lin, 2022)',
  { cowPageTables: 'rfc', cowPteTakeBack: 'any', cowPteShare: 'any', cowptDontneed: 'range' });

const ODF = derive(V5_7, 'odf',
  'On-Demand Fork as in its paper\'s initial code release (April 2021), on the v5.6 rules; `fork ... cowpt` uses it',
  'Zhao et al., "On-Demand-Fork: A Microsecond Fork for Memory-Intensive and Latency-Sensitive Applications", EuroSys 2021; rssys/on-demand-fork 8d43667123342ec537f8149b36ba15c30330961b "Initial Release"',
  { cowPageTables: 'odf', cowPteTakeBack: 'whole-table', cowPteShare: 'any', cowptDontneed: 'vma', ksmReuse: true, uffdWp: false, cowptMremap: 'move-shared' });

const ODF_2021 = derive(ODF, 'odf-2021',
  'On-Demand Fork after eebe694 (June 2021) and d8ccd3c (December 2021): no repossession of count-1 tables; only tables one VMA covers entirely are shared; MADV_DONTNEED ignored',
  'rssys/on-demand-fork eebe694fed38cfbdd9a689cf5b92fccc6d689997 "Removed munmap hack" (drops the repossession), d8ccd3ce527e4351fa445c9d82b8a7554362153e "Multiple bug fixes" (copy_pmd_range_tfork shares only fully covered tables; madvise_dontneed_free returns 0 for an ODF mm)',
  { cowPteTakeBack: 'never', cowPteShare: 'whole-table', cowptDontneed: 'ignored', cowptMremap: 'unshare' });

// ---- Long-term kernels ----------------------------------------------------------------------------
// Each stable series as it stands: its mainline release's rules plus the stable backports that
// change a switch, each named with its stable commit and release (docs/profiles.md). What could not
// be checked is said in `source`, so `cowlab profiles NAME` shows it. Not in `compare`'s default
// matrix: `compare --kernels lts` (or a list naming them) shows them.

const LTS_5_4 = derive(V5_8, '5.4',
  '5.4.y long-term: the v5.8 rules - reuse on write fault by mapcount (reuse_swap_page, reuse_ksm_page); GUP with FOLL_GET on a COW mapping breaks COW first; gup-fast only for writable PTEs',
  'Linux 5.4 + 17839856fd58 backported as 1027dc04f557 in 5.4.47 (CVE-2020-29374); checked in the 5.4.214 and 5.4.286 sources (should_force_cow_break, reuse_ksm_page, reuse_swap_page, no has_pinned). 5.4 has no FOLL_PIN (5.6): a `pin` stands for a FOLL_GET|FOLL_LONGTERM reference, which takes 1 where the model counts GUP_PIN_COUNTING_BIAS; no 5.4 rule reads a pin count, so only refcount figures differ. Not checked: 5.4.287 to the last 5.4.y. 5.4 has no userfaultfd write-protect (5.7)',
  { uffdWp: false, thpWpCopy: 'huge', hugeZeroWp: 'huge' });

const LTS_5_10 = derive(V5_9, '5.10',
  '5.10.y long-term: the v5.9 rules (reuse only when page_count == 1, early COW at fork of maybe-pinned pages) + write_protect_seq, clear_refs and reclaim skipping pinned pages (5.11, backported) + fork asking the child\'s VMA about uffd-wp (5.14, backported in 5.10.53; 5.10.0-5.10.52: --kernel 5.10+uffdWpForkVma=src-vma); no device-exclusive entries; swap-in reuse by reuse_swap_page (the COW fixes of 5.18 and 5.19 were not backported)',
  'Linux 5.10 (09854ba94c6a, 70e806e4e645 from 5.9) + 57efa1fe5957 as 537946556cc9 (5.10.4), feb889fb40fa as 72c5ce89427f and 9348b73c2e1b as 1eea108995a2 (5.10.9), 8f34f1eac382 as 9e1cf2d1ed37 (5.10.53: userfaultfd_wp(dst_vma) in copy_present_pte, copy_nonpresent_pte, copy_present_page and copy_huge_pmd; absent in 5.10.52, present in 5.10.53 to 5.10.265); checked in the 5.10.198 sources (copy_hugetlb_page_range has no early COW: 4eae4efa2c29 of 5.12 was not backported). 0cef0bb836e3 (6.13, mremap clears uffd-wp) was not backported: absent in 5.10.265. Not checked: 5.10.199 to the last 5.10.y (no 5.10.y backport of c8070b787519 was found)',
  { writeProtectSeq: true, clearRefsSkipPinned: true, reclaimSkipsPinned: true, uffdWpForkVma: 'dst-vma' });

const LTS_5_15 = derive(V5_14, '5.15',
  '5.15.y long-term: the v5.14 rules (5.11\'s write_protect_seq, clear_refs and reclaim skipping pinned pages; device-exclusive entries as merged in 5.14; fork asks the child\'s VMA about uffd-wp, 8f34f1eac382 of 5.14); no stable backport changes a switch (the COW fixes of 5.18 and 5.19 were not backported)',
  'Linux 5.15; checked in the 5.15.167 sources (do_wp_page reuses on page_count == 1, do_swap_page uses reuse_swap_page, FOLL_PIN pins the zero page); fork\'s copy asks userfaultfd_wp(dst_vma) in 5.15.0, 5.15.167 and 5.15.215. 0cef0bb836e3 (6.13, mremap clears uffd-wp) was not backported: absent in 5.15.215. Not checked: 5.15.168 to the last 5.15.y (no 5.15.y backport of c8070b787519 was found)',
  {});

const LTS_6_1 = derive(V5_19, '6.1',
  '6.1.y long-term: the v5.19 rules (PG_anon_exclusive; R/O pins unshare possibly shared anonymous pages, not the zero page: 6.2 was not backported) + mprotect maps exclusive anonymous pages writable when their PTE is dirty (6.0; clean ones too only from 6.2, not backported) + FOLL_PIN of the zero page takes no pin (backported in 6.1.130; 6.1.0-6.1.129: --kernel 6.1+pinSkipsZeroPage=false) + uffd-wp registration write-protects a shared mapping\'s vm_page_prot (6.2, backported in 6.1.8; 6.1.0-6.1.7: --kernel 6.1+uffdWpWritenotify=false)',
  'Linux 6.1 (6c287605fd56, a7f226604170 from 5.19; 64fe24a3e05e from 6.0: can_change_pte_writable wants pte_dirty() in 6.1.166) + c8070b787519 as 476c1dfefab8 in 6.1.130 (a dependency of bddf10d26e6e) + 51d3d5eb74ff in 6.1.8 (userfaultfd_set_vm_flags and the userfaultfd_wp() test of vma_wants_writenotify: absent in 6.1.7, present in 6.1.8, 6.1.158 and 6.1.166); 8d6a0ac09a16 and 84209e87c696 (6.2) not backported; 0cef0bb836e3 (6.13, mremap clears uffd-wp) not backported either: absent in 6.1.166; checked in the 6.1.158 and 6.1.166 sources. 474098edac26 (6.1): ksmd skips pages of PROT_NONE mappings (follow_page follows a PROT_NONE PTE only with FOLL_FORCE); d74943a2f3cd (6.5) not backported: absent in 6.1.158. The 6.2 gup-fast fallback of FOLL_LONGTERM pins with `locked` (gupFastLongtermRetry) was not backported: __gup_longterm_unlocked with locked NULL in 6.1.166. Not checked: 6.1.167 to the last 6.1.y',
  { mprotectWritable: true, pinSkipsZeroPage: true, madvCollapse: 'writable-pte', uffdWpWritenotify: true, ksmScansProtnone: false });

const LTS_6_6 = derive(V6_2, '6.6',
  '6.6.y long-term: the v6.2 rules + the zero page never pinned (6.5); a swapped-in page is mapped writable only on a write fault (6.11 not backported); device-exclusive entries as merged in 5.14',
  'Linux 6.6 (8d6a0ac09a16, 84209e87c696 from 6.2; 931298e103c2 from 6.3; c8070b787519 from 6.5); checked in the 6.6.87 and 6.6.150 sources (do_swap_page maps writable on FAULT_FLAG_WRITE only; make_device_exclusive_range; no vma_has_uffd_without_event_remap in 6.6.150: 0cef0bb836e3 of 6.13, mremap clearing uffd-wp, did not apply to 6.6.y and was not backported). Not checked: 6.6.151 to the last 6.6.y',
  { pinSkipsZeroPage: true, uffdUnprotectWritable: true, ksmScansProtnone: true, pageoutLargeShared: 'first-page' });

const LTS_6_12 = derive(LTS_6_6, '6.12',
  '6.12.y long-term: v6.6 + ksmd\'s smart scan (6.7) + an exclusive swapped-in page mapped writable on a read fault too (6.11) + mremap out of a registered mapping clears the uffd-wp bits (6.13, backported in 6.12.11; 6.12.0-6.12.10: --kernel 6.12+mremapClearsUffdWp=false); device-exclusive entries as merged in 5.14 (the 6.15 rework was not backported)',
  'Linux 6.12 (5e924ff54d08, ksmd\'s smart scan, from 6.7; c18160dba5ff and d58a361b0350, ksmd\'s checksum before the stable tree search, from 6.11; b1f202060afe, zero-filled pages of a split THP remapped to the zero page; 6.10\'s MADV_PAGEOUT batching a large folio\'s PTEs, `continue` past them in the 6.12.19 madvise.c) + 0cef0bb836e3 as 310ac886d68d in 6.12.11 (CVE-2025-21696: vma_has_uffd_without_event_remap() in move_ptes, move_huge_pmd and move_normal_pmd; absent in 6.12.10, present in 6.12.11 to 6.12.19); checked in the 6.12.19 sources (make_device_exclusive_range; the device-exclusive entry drops the mapcount). Of the 6.15 series only its first patch ("mm/gup: reject FOLL_SPLIT_PMD with hugetlb VMAs", CVE-2025-22034) reached 6.12.23, and it touches only device-exclusive entries on hugetlb pages, which the model leaves n/a. Not checked: 6.12.20 to the last 6.12.y',
  { swapinReadFaultWritable: true, wpReuseLarge: 'never', pageoutLargeShared: 'folio', pageoutLargeWalk: 'batch', thpSplitZeropage: true, mremapClearsUffdWp: true, ksmChecksumFirst: true, ksmSmartScan: true });

/** The long-term kernels, oldest first (`compare --kernels lts`). */
export const LTS_PROFILES: readonly Profile[] = [LTS_5_4, LTS_5_10, LTS_5_15, LTS_6_1, LTS_6_6, LTS_6_12];

/** The built-in profiles of `compare`'s default matrix, oldest first (its columns' order); LTS_PROFILES follow them in a registry. */
export const BUILTIN_PROFILES: readonly Profile[] = [
  V5_7, V5_8, V5_9_RC4, V5_9_RC4_PIN_COW, V5_9, V5_14, V5_18, V5_19, V6_2, V6_15, V6, COWPT_RFC, ODF, ODF_2021,
];

export function builtinProfile(name: string): Profile | undefined {
  return BUILTIN_PROFILES.find((p) => p.name === name) ?? LTS_PROFILES.find((p) => p.name === name);
}
