// Every profile switch changes something: for each switch, witness scenarios on a base profile
// such that setting the switch to any other value changes the run (its events, observations,
// violations or n/a). A switch without a witness, or a value that changes nothing, fails here,
// so an inert switch breaks the build.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Profile, SwitchName } from '../../src/core/profile.js';
import { runScenario } from '../../src/engine/run.js';
import { builtinProfile, SWITCH_NAMES, SWITCH_VALUES, withOverrides } from '../../src/profiles/resolve.js';
import { parseScenario, type Scenario } from '../../src/scenario/index.js';

const REPO = new URL('../../../', import.meta.url);

function steps(...lines: string[]): Scenario {
  const r = parseScenario(`name: witness\nsteps: |\n${lines.map((l) => `  ${l}`).join('\n')}\n`, 'witness.scn.yaml');
  if (!r.ok) throw new Error(r.errors.map((e) => e.format()).join('; '));
  return r.scenario;
}

function file(path: string): Scenario {
  const r = parseScenario(readFileSync(new URL(path, REPO), 'utf8'), path);
  if (!r.ok) throw new Error(r.errors.map((e) => e.format()).join('; '));
  return r.scenario;
}

interface Witness {
  /** The profile the switch is toggled on. */
  base: string;
  /** Scenarios at least one of which runs differently for every other value of the switch. */
  scenarios: () => Scenario[];
}

/** A protected page of P, then a fork: `after` runs on top (Q writes, expects ...). */
const UFFD_FORK = (...after: string[]): Scenario => steps('P mmap a 1', 'P write a = 1', 'P uffd register a wp', 'P uffd protect a', 'P fork Q', ...after);

const KSM_ONCE = ['P mmap a 2', 'P write a = 1', 'P madvise a mergeable', 'ksm merge', 'P munmap a[1]', 'P write a[0] = 2', 'expect stat cow_copies >= 0'];

/** Why each switch exists, as a run it changes. */
const WITNESSES: Record<SwitchName, Witness> = {
  uffdWp: { base: 'v6', scenarios: () => [UFFD_FORK('P write a = 2', 'expect stat uffd_faults.P == 1')] },
  uffdWpForkVma: { base: 'v6', scenarios: () => [
    // Without the fork event the child's mapping is not registered: its PTE keeps the bit (5.7) or not (5.14).
    UFFD_FORK('expect Q a[0] not-uffd-wp'),
    // With it, fork's early COW copy of a pinned page: write-protected (5.14) or writable behind the monitor (5.7).
    steps('P mmap a 1', 'P write a = 1', 'P uffd register a wp', 'P uffd fork-event on', 'P pin a as h', 'P uffd protect a', 'P fork Q', 'Q write a = 2', 'expect stat uffd_faults.Q == 1'),
  ] },
  uffdWpShmem: { base: 'v6', scenarios: () => [
    steps('P mmap a 1 shared', 'P write a = 1', 'P uffd register a wp', 'P uffd protect a', 'P madvise a dontneed', 'P write a = 2', 'expect stat uffd_faults.P == 1'),
  ] },
  uffdWpWritenotify: { base: 'v6', scenarios: () => [
    // A read fault in a registered shared mapping maps the page read-only (writenotify) or writable: the write faults or not.
    steps('P mmap a 1 shared', 'P uffd register a wp', 'P read a[0] expect 0', 'P write a = 1', 'expect stat minflt.P == 2'),
  ] },
  uffdUnprotectWritable: { base: 'v6', scenarios: () => [
    steps('P mmap a 1', 'P write a = 1', 'P uffd register a wp', 'P uffd protect a', 'P uffd unprotect a', 'P write a = 2', 'expect stat minflt.P == 1'),
  ] },
  gupFastLongtermRetry: { base: 'v6', scenarios: () => [
    // A long-term fast pin of a protected page: its gup-fast fallback waits for the monitor (6.2) or fails with EFAULT.
    steps('P mmap a 1', 'P write a = 1', 'P uffd register a wp', 'P uffd protect a', 'P pin a as h rw longterm fast', 'expect stat uffd_faults.P == 1'),
  ] },
  wpReuse: { base: 'v6', scenarios: () => [
    // An exclusive page with a gup reference, write-protected by clear_refs: reused by
    // PG_anon_exclusive or mapcount, copied by page_count.
    steps('P mmap a 1', 'P write a = 1', 'P gup a as h ro', 'P clear-softdirty', 'P write a = 2', 'expect stat cow_copies >= 0'),
    // The child's gup reference outlives it: mapcount 1 reuses, the others copy.
    steps('P mmap a 1', 'P write a = 1', 'P fork Q', 'Q gup a as h ro', 'Q exit', 'P write a = 2', 'expect stat cow_copies >= 0'),
  ] },
  anonExclusive: { base: 'v6', scenarios: () => [steps('P mmap a 1', 'P write a = 1', 'expect P a[0] anon-exclusive')] },
  gupCowBreak: { base: 'v5.9-rc4', scenarios: () => [
    steps('P mmap a 1', 'P write a = 1', 'P fork Q', 'Q gup a as h ro', 'expect P a[0] same-frame Q a[0]'),
    steps('P mmap a 1', 'P write a = 1', 'P fork Q', 'Q pin a as h ro', 'expect P a[0] same-frame Q a[0]'),
  ] },
  gupFastWritableOnly: { base: 'v5.9', scenarios: () => [steps('P mmap a 1', 'P write a = 1', 'P fork Q', 'Q pin a as h ro fast')] },
  forkEarlyCow: { base: 'v6', scenarios: () => [steps('P mmap a 1', 'P write a = 1', 'P pin a as h', 'P fork Q', 'expect P a[0] other-frame Q a[0]')] },
  unshareRoPin: { base: 'v6', scenarios: () => [
    steps('P mmap a 1', 'P write a = 1', 'P fork Q', 'Q pin a as h ro', 'expect P a[0] same-frame Q a[0]'),
    steps('P mmap a 1', 'P pin a as h ro', 'expect stat frames_used >= 0'),
  ] },
  clearRefsSkipPinned: { base: 'v6', scenarios: () => [steps('P mmap a 1', 'P write a = 1', 'P pin a as h', 'P clear-softdirty', 'P write a = 2', 'expect stat minflt.P >= 0')] },
  mprotectWritable: { base: 'v6', scenarios: () => [steps('P mmap a 1', 'P write a = 1', 'P mprotect a ro', 'P mprotect a rw', 'P write a = 2', 'expect stat minflt.P >= 0')] },
  ksmReuse: { base: 'v5.7', scenarios: () => [steps(...KSM_ONCE)] },
  wpCopiesKsm: { base: 'v6', scenarios: () => [steps(...KSM_ONCE)] },
  // a[0] (pinned) is the unstable-tree page: a[1] becomes a KSM page, a[0] is refused, break_cow
  // copies a[1] back read-only (unshare: the write faults) or writable (write: no fault).
  ksmBreakCow: { base: 'v6', scenarios: () => [
    steps('P mmap a 2', 'P madvise a mergeable', 'P write a = 3', 'P pin a[0] as h', 'ksm merge', 'P write a[1] = 5', 'expect stat minflt.P >= 0'),
  ] },
  // ksmd scans a PROT_NONE page (6.18) or skips it (6.1-6.4): the pages merge or not.
  ksmScansProtnone: { base: 'v6', scenarios: () => [file('scenarios/basic/ksm-merges-prot-none.scn.yaml')] },
  ksmChecksumFirst: { base: 'v6', scenarios: () => [
    // A KSM page P's 255 pages share, forked to Q; a page new to ksmd merges into it at once
    // (before 6.11), or waits a pass for its checksum, by when Q's 255 mappings have filled it.
    file('scenarios/basic/ksm-checksum-first-full-ksm-page.scn.yaml'),
    // A page whose old rmap item is the last on a KSM page: the search counts it (before 6.11),
    // or the item goes first and the page pairs elsewhere.
    file('scenarios/basic/ksm-stable-search-counts-own-item.scn.yaml'),
  ] },
  // A pinned page ksmd met often is left out of some passes (6.7+), so two equal pages met
  // later merge with each other; compared in every pass, it refuses each of them.
  ksmSmartScan: { base: 'v6', scenarios: () => [file('scenarios/basic/ksm-smart-scan-skips-blocker.scn.yaml')] },
  pinSkipsZeroPage: { base: 'v6', scenarios: () => [steps('P mmap a 1', 'P pin a as h ro short', 'expect stat zero_page_refs >= 0')] },
  // v1.2 (THP): a 2 MiB mapping with `thp` (MADV_HUGEPAGE) gets PMD-mapped folios.
  thpUseZeroPage: { base: 'v6', scenarios: () => [steps('P mmap a 512 thp', 'P read a[0] expect 0', 'expect stat AnonHugePages_kB >= 0')] },
  thpWpReuse: { base: 'v6', scenarios: () => [
    // A GUP reference on an exclusive THP, then the PMD write-protected by fork: reuse_swap_page()
    // reuses (mapcount 1 once Q is gone), the refcount tests do not.
    steps('P mmap a 512 thp', 'P write a = 1', 'P gup a[0] as h ro', 'P fork Q', 'Q exit', 'P write a[0] = 2', 'expect stat cow_copies >= 0'),
    // A R/O pin unshares the read-only PMD (PAE, still read-only): PAE reuses at the write, the refcount (2) does not.
    steps('P mmap a 512 thp', 'P write a = 1', 'P fork Q', 'Q exit', 'P pin a[0] as h ro', 'P write a[0] = 2', 'expect stat cow_copies >= 0'),
  ] },
  thpWpCopy: { base: 'v6', scenarios: () => [steps('P mmap a 512 thp', 'P write a = 1', 'P gup a[0] as h ro', 'P fork Q', 'Q exit', 'P write a[0] = 2', 'expect stat cow_copies >= 0')] },
  hugeZeroWp: { base: 'v6', scenarios: () => [steps('P mmap a 512 thp', 'P read a[0] expect 0', 'P write a[0] = 1', 'expect stat AnonHugePages_kB >= 0')] },
  wpReuseLarge: { base: 'v6', scenarios: () => [
    // P's THP is PTE-mapped after the first COW; with Q gone, 511 pages are mapped by P alone:
    // 6.15 reuses, the others copy (refcount 511, or never).
    steps('P mmap a 512 thp', 'P write a = 1', 'P fork Q', 'P write a[0] = 2', 'Q exit', 'P write a[1] = 3', 'expect stat cow_copies >= 0'),
    // One page of the folio left mapped, nothing else holding it: the small-page rule reuses
    // (refcount 1); 6.10+ copies.
    steps('P mmap a 512 thp', 'P write a = 1', 'P fork Q', 'P write a[0] = 2', 'P madvise a[2..511] dontneed', 'Q exit', 'P write a[1] = 3', 'expect stat cow_copies >= 0'),
  ] },
  pageoutLargeShared: { base: 'v6.2', scenarios: () => [
    // Q's PMD maps the THP, P's PTEs all its pages but t[0]: the head is mapped once (split and
    // swapped out), the folio's other pages twice (`folio` leaves it alone).
    file('scenarios/basic/thp-pageout-head-mapcount.scn.yaml'),
    // P's PTE at t[1] (mapped twice: left alone) while the head is mapped once: `first-page` splits.
    steps('P mmap t 512 rw private thp', 'P write t[0] = 1', 'P fork Q', 'P write t[0] = 2', 'swapout P t[1]', 'expect stat AnonHugePages_kB >= 0'),
    // A THP P alone maps with PTEs (mprotect split its PMD): `total` counts 512 mappings and leaves it whole.
    steps('P mmap t 512 rw private thp', 'P write t[0] = 1', 'P mprotect t[1] ro', 'swapout P t[0]', 'expect stat AnonHugePages_kB >= 0'),
  ] },
  pageoutLargeWalk: { base: 'v6', scenarios: () => [
    // Q's PMD and P's PTEs map a THP whose upper half P zapped and wrote t[300] into: the PTE loop
    // stops at the shared folio (5.4-6.9) and t[300] stays, or steps past it and t[300] is paged out.
    file('scenarios/basic/thp-pageout-break-at-shared.scn.yaml'),
    // R alone maps a THP by 512 PTEs, its shared bit stale: the batch maps it whole and
    // folio_mapcount() is 512 (6.10+: paged out), or the sharing test at t[0] says shared (break).
    file('scenarios/basic/thp-pageout-whole-batch.scn.yaml'),
  ] },
  mprotectWritableClean: { base: 'v6', scenarios: () => [
    // A page read back from swap is mapped clean: mprotect ro then rw maps it writable (6.2) or
    // leaves it read-only (6.0, 6.1: can_change_pte_writable wants pte_dirty), and the write faults.
    steps('P mmap a 1', 'P write a = 1', 'swapout P a', 'P read a[0] expect 1', 'P mprotect a ro', 'P mprotect a rw', 'P write a = 2', 'expect stat minflt.P >= 0'),
  ] },
  mprotectWritablePmd: { base: 'v6', scenarios: () => [steps('P mmap a 512 thp', 'P write a = 1', 'P mprotect a ro', 'P mprotect a rw', 'P write a[0] = 2', 'expect stat minflt.P >= 0')] },
  // A pinned hugetlb page at fork: copied for the child (5.12), or shared and copied away by P's write.
  hugetlbForkEarlyCow: { base: 'v6', scenarios: () => [file('scenarios/kernel-tests/cow-iouring-fork-hugetlb.scn.yaml')] },
  madvCollapse: { base: 'v6', scenarios: () => [
    // A PTE-mapped THP write-protected by fork: n/a without MADV_COLLAPSE, refused with no
    // writable PTE before 6.18 (SCAN_PAGE_RO), collapsed on 6.18.
    steps('P mmap a 512 thp', 'P write a = 1', 'P mprotect a[1] ro', 'P mprotect a[1] rw', 'P fork Q', 'P madvise a collapse', 'expect stat AnonHugePages_kB >= 0'),
  ] },
  // A split THP emptied by DONTNEED: the next write maps a new THP only where the empty table was freed.
  ptReclaim: { base: 'v6', scenarios: () => [steps('P mmap a 512 thp', 'P write a = 1', 'P mprotect a[1] ro', 'P mprotect a[1] rw', 'P madvise a dontneed', 'P write a = 2', 'expect stat AnonHugePages_kB >= 0')] },
  // A THP written in one page, then swapped out in part: the split maps its zero-filled pages to the zero page, or keeps them.
  thpSplitZeropage: { base: 'v6', scenarios: () => [steps('P mmap a 512 thp', 'P write a[0] = 1', 'swapout P a[5]', 'expect stat rss.P >= 0')] },
  mmForbidsZeropage: { base: 'v6', scenarios: () => [steps('P mmap a 1', 'P read a[0] expect 0', 'expect stat rss.P >= 0')] },
  writeProtectSeq: { base: 'v5.14', scenarios: () => [file('scenarios/seeds/gup-fast-fork-race.scn.yaml')] },
  deviceExclusiveHeld: { base: 'v6.2', scenarios: () => [
    // The head's walk stops at m's entry (offset 1) before t[2] (offset 2), still mapped: the head
    // is mapped nowhere (`page`: held), the folio still is (`folio`: EBUSY).
    file('scenarios/basic/device-exclusive-thp-walk-stops-by-pgoff.scn.yaml'),
  ] },
  deviceExclusive: { base: 'v6', scenarios: () => [
    file('scenarios/seeds/device-exclusive-fork.scn.yaml'),
    file('scenarios/kernel-tests/hmm-exclusive.scn.yaml'),
    file('scenarios/kernel-tests/hmm-exclusive-cow.scn.yaml'),
    file('scenarios/kernel-tests/hmm-exclusive-mprotect.scn.yaml'),
  ] },
  swapinReuse: { base: 'v6', scenarios: () => [
    file('scenarios/seeds/cve-2020-29374-swap.scn.yaml'),
    file('scenarios/seeds/vmsplice-before-fork-swapped.scn.yaml'),
  ] },
  swapinReadFaultWritable: { base: 'v6', scenarios: () => [
    // An exclusive page read back from swap: mapped writable at once (6.11), or the write
    // faults once more and reuses it.
    steps('P mmap a 1', 'P write a = 1', 'swapout P a', 'P read a[0] expect 1', 'P write a = 2', 'expect stat minflt.P >= 0'),
  ] },
  wpFreeSwapcache: { base: 'v6', scenarios: () => [
    // P's page, read back from swap while Q's swap entry still names it, stays in the swap
    // cache after Q exits: the write frees the cache and reuses, or copies.
    steps('P mmap a 1', 'P write a = 1', 'swapout P a', 'P fork Q', 'P read a[0] expect 1', 'Q exit',
      'P write a = 2', 'expect stat cow_copies >= 0'),
  ] },
  // From 5.19 a pinned exclusive page cannot be unmapped anyway (its PG_anon_exclusive cannot
  // be dropped): the switch shows on the kernels that introduced it.
  reclaimSkipsPinned: { base: 'v5.14', scenarios: () => [steps('P mmap a 1', 'P write a = 1', 'P pin a as h', 'swapout P a')] },
  cowPageTables: { base: 'v6', scenarios: () => [steps('P mmap a 4', 'P write a = 1', 'P fork Q cowpt', 'Q write a[0] = 2', 'expect stat pt_copies >= 0')] },
  cowPteTakeBack: { base: 'odf', scenarios: () => [
    file('scenarios/cowpt/cowpt-repossess-whole-table.scn.yaml'),
    file('scenarios/cowpt/cowpt-accounting-child-breaks.scn.yaml'),
  ] },
  cowPteShare: { base: 'odf-2021', scenarios: () => [steps('P mmap a 4', 'P write a = 1', 'P fork Q cowpt', 'expect stat PageTables_kB >= 0')] },
  cowptDontneed: { base: 'odf', scenarios: () => [file('scenarios/cowpt/cowpt-dontneed.scn.yaml')] },
  cowptMremap: { base: 'odf', scenarios: () => [
    // Q moves a page out of a PTE table it shares with P: copied for Q first, or taken out of the
    // shared table, so that P loses it too.
    steps('P mmap a 4', 'P write a = 1', 'P fork Q cowpt', 'Q mremap a[1] as m', 'P read a[1] expect 1', 'Q read m[0] expect 1'),
  ] },
  mremapMultiVma: { base: 'v6', scenarios: () => [
    // Two VMAs (mprotect split the mapping): moved one by one (6.17), or EFAULT.
    steps('P mmap a 2', 'P write a = 1', 'P mprotect a[1] ro', 'P mremap a as m', 'P read m[1]'),
  ] },
  mremapClearsUffdWp: { base: 'v6', scenarios: () => [
    // A protected page moved out of its registered mapping: pagemap shows the bit (before 6.13) or not.
    steps('P mmap a 2', 'P write a = 1', 'P uffd register a wp', 'P uffd protect a', 'P mremap a[0] as m', 'expect P m[0] not-uffd-wp'),
  ] },
  swap: { base: 'v6', scenarios: () => [steps('P mmap a 1', 'P write a = 1', 'swapout P a')] },
  ksm: { base: 'v6', scenarios: () => [steps('P mmap a 1', 'P madvise a mergeable', 'ksm merge')] },
};

/** What a run shows: n/a, and per step its events, observations and violations. */
function fingerprint(sc: Scenario, p: Profile): string {
  const r = runScenario(sc, p, { trace: true, maxEventsPerStep: 10_000 });
  return JSON.stringify({
    na: r.na,
    steps: r.steps.map((s) => ({
      events: s.events.map((e) => [e.type, e.mm, e.vpn, e.pfn, e.pfn2, e.why]),
      obs: s.observations.map((o) => [o.kind, o.what, o.actual]),
      viol: s.violations.map((v) => v.kind),
    })),
    end: r.violations.filter((v) => v.step < 0).map((v) => v.kind),
  });
}

test('every switch has a witness', () => {
  const missing = SWITCH_NAMES.filter((s) => !(s in WITNESSES));
  assert.deepEqual(missing, [], `switches without a witness scenario in ${import.meta.url}`);
});

for (const name of SWITCH_NAMES) {
  test(`switch ${name}: every value changes a run`, () => {
    const w = WITNESSES[name];
    assert.ok(w, `no witness for ${name}`);
    const base = builtinProfile(w.base)!;
    const scenarios = w.scenarios();
    const before = scenarios.map((sc) => fingerprint(sc, base));
    for (const value of SWITCH_VALUES[name]) {
      if (String(base[name]) === value) continue;
      const toggled = withOverrides(base, [`${name}=${value}`]);
      const changed = scenarios.some((sc, i) => fingerprint(sc, toggled) !== before[i]);
      assert.ok(changed, `${w.base} --set ${name}=${value} changes none of its witness runs: the switch is inert there`);
    }
  });
}
