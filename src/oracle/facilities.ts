// What the live kernel and our privileges let the oracle observe, from the helper's probe.
// Each missing facility comes with the reason printed where a step or observation is skipped.

export interface Facilities {
  kernel: string;
  root: boolean;
  /** io_uring buffer registration works: R/W longterm pins can be taken. */
  uring: boolean;
  uringWhy: string | null;
  /** pagemap shows frame numbers (needs CAP_SYS_ADMIN). */
  pfns: boolean;
  /** A read fault on untouched private anonymous memory maps the shared zero page (false: mm_forbids_zeropage()). */
  zeroPage: boolean;
  /** The shared zero page's frame number (0 when none was seen or it is hidden). */
  zeroPfn: number;
  /**
   * The THP mode PMD-sized THPs follow: hugepages-<PMD>kB/enabled (6.8+) unless `inherit`, else
   * /sys/kernel/mm/transparent_hugepage/enabled (null: no THP in this kernel).
   */
  thp: string | null;
  /** What the probe found of THPs besides the mode (null: no THP in this kernel). */
  thpInfo: ThpInfo | null;
  /** Facts taken as given instead of probed (`oracle --zero-page`). */
  forced: string[];
  /** /proc/kpageflags is readable and shows PG_anon_exclusive (bit 34) on a fresh page. */
  kpageflags: boolean;
  /** CONFIG_MEM_SOFT_DIRTY: clear_refs 4 write-protects PTEs. */
  softDirty: boolean;
  /** The CPU the scenario processes are pinned to (-1: not pinned). */
  cpu: number;
  agentPid: number;
  /** KSM's settings when the session started (null: no KSM in this kernel). Left as they are, but recorded. */
  ksm: KsmSettings | null;
  /** zswap is enabled (swapped pages are compressed in memory first; null: unknown). */
  zswap: boolean | null;
  /** The swap file the oracle set up, once a swapout needed it (null: none yet, or none possible). */
  swap: SwapFile | null;
  /** Why swapout cannot be replayed here (null: it can, or it was not tried yet). */
  swapWhy: string | null;
  /** userfaultfd write-protect works on anonymous memory (the probe registered and protected a page). */
  uffdWp: boolean;
  /** Why the `uffd` steps cannot be replayed here (null: they can). */
  uffdWhy: string | null;
}

/**
 * Whether a read fault maps the huge zero page on this machine: what the probe's read fault did
 * when it saw a huge PMD, else use_zero_page with the 4 KiB zero page; null: not known (no THP
 * in this kernel, or nothing said).
 */
export function mapsHugeZeroPage(f: Facilities): boolean | null {
  const t = f.thpInfo;
  if (t === null) return null;
  return t.hugeZeroPage ?? (t.useZeroPage === null ? null : t.useZeroPage && f.zeroPage);
}

export interface ThpInfo {
  /** /sys/kernel/mm/transparent_hugepage/enabled itself. */
  enabled: string;
  /** hpage_pmd_size in kB (null: not said). */
  pmdKb: number | null;
  defrag: string;
  /** use_zero_page (null: not said). */
  useZeroPage: boolean | null;
  /**
   * What a read fault on an untouched MADV_HUGEPAGE range did in the probe: true the huge zero
   * page was mapped, false a THP was allocated (null: no huge PMD was seen at all).
   */
  hugeZeroPage: boolean | null;
  /** Splitting a THP maps its zero-filled pages to the shared zero page (null: no THP to try). */
  splitZeropage: boolean | null;
  /** PAGEMAP_SCAN (6.7+) answers: it says which pages a huge PMD maps. */
  pagemapScan: boolean;
  /** khugepaged's pages_to_scan, scan_sleep_millisecs and max_ptes_none (the machine's; -1: not said). */
  khugepaged: { pagesToScan: number; scanSleepMs: number; maxPtesNone: number };
  /**
   * khugepaged held asleep for the session (oracle/khugepaged.c: these values until it ends,
   * then the machine's put back); null when it is not (`khugepagedWhy` says why).
   */
  khugepagedPaused: {
    pagesToScan: number;
    scanSleepMs: number;
    /** ms khugepaged took to go back to sleep after the change woke it (0: not woken, the pause was in place; -1: not seen within 5 s). */
    settledMs: number;
  } | null;
  /** Why khugepaged is not held asleep (it may then collapse a PTE-mapped THP between two steps); null when it is, or not asked yet. */
  khugepagedWhy: string | null;
}

export interface KsmSettings {
  /** /sys/kernel/mm/ksm/run: 0 stopped, 1 running, 2 unmerging. */
  run: number;
  /** use_zero_pages: pages of zeros are merged with the zero page instead of a KSM page. */
  useZeroPages: boolean;
  mergeAcrossNodes: boolean;
  /** max_page_sharing: at most this many mappings per KSM page (then a duplicate KSM page). */
  maxPageSharing: number;
  /** smart_scan (-1: this kernel has none) as found; the oracle's merges set it to the scenario's config.ksm_smart_scan meanwhile. */
  smartScan: number;
}

export interface SwapFile {
  path: string;
  pages: number;
  priority: number;
}

export function parseProbe(words: string[], kernel: string, root: boolean, errnoName: (n: number) => string): Facilities {
  const kv = new Map<string, string>();
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq > 0) kv.set(w.slice(0, eq), w.slice(eq + 1));
  }
  const num = (k: string): number => Number(kv.get(k) ?? '0');
  const uring = num('uring');
  return {
    kernel,
    root,
    uring: uring === 0,
    uringWhy: uring === 0 ? null : `io_uring buffer registration fails here (${errnoName(-uring)}${-uring === 38 ? ': no io_uring in this kernel' : -uring === 1 ? ': io_uring is disabled (kernel.io_uring_disabled) or not allowed' : ''})`,
    pfns: num('pfns') === 1,
    // Unknown (pagemap unreadable) is taken as the mainline default, the zero page.
    zeroPage: num('zeropage') !== 0,
    // The zero page's frame: from the read fault, else from the THP split probe (thp.c).
    zeroPfn: num('zeropfn') || num('splitzeropfn'),
    forced: [],
    thp: !kv.has('thp') || kv.get('thp') === 'none' ? null : kv.get('thp')!,
    thpInfo: !kv.has('thp') || kv.get('thp') === 'none' ? null : {
      enabled: kv.get('thptop') ?? kv.get('thp')!,
      pmdKb: num('thppmdkb') > 0 ? num('thppmdkb') : null,
      defrag: kv.get('thpdefrag') ?? 'unknown',
      useZeroPage: kv.has('thpzero') && num('thpzero') >= 0 ? num('thpzero') === 1 : null,
      hugeZeroPage: !kv.has('hugezero') || num('hugezero') < 0 ? null : num('hugezero') === 1,
      splitZeropage: !kv.has('splitzero') || num('splitzero') < 0 ? null : num('splitzero') === 1,
      pagemapScan: num('pmscan') === 1,
      khugepaged: { pagesToScan: kv.has('khpscan') ? num('khpscan') : -1, scanSleepMs: kv.has('khpsleep') ? num('khpsleep') : -1, maxPtesNone: kv.has('khpnone') ? num('khpnone') : -1 },
      khugepagedPaused: null,
      khugepagedWhy: null,
    },
    kpageflags: num('kpageflags') === 1 && num('anonexcl') === 1,
    softDirty: num('softdirty') === 1,
    cpu: num('cpu'),
    agentPid: num('agent'),
    ksm: num('ksmrun') < 0 && kv.has('ksmrun') ? null : {
      run: num('ksmrun'),
      useZeroPages: num('ksmzero') === 1,
      mergeAcrossNodes: num('ksmnodes') !== 0,
      maxPageSharing: num('ksmmaxshare'),
      smartScan: kv.has('ksmsmart') ? num('ksmsmart') : -1,
    },
    zswap: !kv.has('zswap') || num('zswap') < 0 ? null : num('zswap') === 1,
    swap: null,
    swapWhy: null,
    uffdWp: kv.has('uffd') && num('uffd') === 0,
    uffdWhy: !kv.has('uffd') ? 'the helper did not probe userfaultfd' : num('uffd') === 0 ? null : uffdWhy(-num('uffd'), errnoName),
  };
}

/** Why userfaultfd write-protect is unavailable, from the probe's errno. */
function uffdWhy(errno: number, errnoName: (n: number) => string): string {
  const hint = errno === 1 || errno === 13
    ? ': userfaultfd is not allowed to this user (vm.unprivileged_userfaultfd=0 and no access to /dev/userfaultfd)'
    : errno === 38 ? ': this kernel has no userfaultfd (CONFIG_USERFAULTFD)'
    : errno === 95 ? ': UFFDIO_API offers no write-protect mode (UFFD_FEATURE_PAGEFAULT_FLAG_WP; 5.7 on)'
    : errno === 22 ? ': UFFDIO_REGISTER_MODE_WP is refused (HAVE_ARCH_USERFAULTFD_WP)' : '';
  return `userfaultfd write-protect is unavailable here (${errnoName(errno)}${hint})`;
}

export const NO_PFNS = 'pagemap hides frame numbers from this user (reading them needs CAP_SYS_ADMIN: run as root)';
export const NO_KPAGEFLAGS = '/proc/kpageflags is not readable here or does not show PG_anon_exclusive (bit 34) (needs root and Linux 6.x)';
