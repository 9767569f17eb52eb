// The naive reference model's kernel paths split into atomic steps (scenario language v1.1, `&`,
// `T step`, `T finish`): fork's PTE copy, a FOLL_PIN|FOLL_WRITE pin through gup-fast, and a CPU
// store with its write fault. Written from the kernel's code and locking (Linux 6.18's
// mm/memory.c and mm/gup.c; 5.7, 5.9 and 5.19 where they differ), on the NaiveKernel's plain
// objects, so that the model core's split paths (src/core/tasks.ts) can be compared with it
// under any interleaving of their steps with other threads' operations.
//
// Each path is an object whose step() does one atomic step and says 'running', 'blocked' (it
// waits for mmap_lock: nothing happened) or 'done'. A step boundary is a place where the kernel
// lets another thread in: where no lock is held (gup-fast is lockless between its PTE read and
// its re-check), or where the lock held does not keep out what may run there (a CPU store
// through a writable PTE needs no lock; gup-fast takes none). Between two boundaries the kernel
// holds the page-table lock (or disables interrupts), so the step is atomic. What the naive
// paths keep beside the NaiveKernel's state (NaiveSched): per address space the mmap_lock (the
// thread holding it for write, the number of readers) and write_protect_seq (5.11 on, 5.10.4 in
// 5.10.y: 57efa1fe5957), and which PTEs are old (the accessed bit clear): fork's copies are
// made old (pte_mkold), and so is a PTE restored from a device-exclusive entry
// (restore_exclusive_pte; the NaiveKernel says when: NaiveKernel.accessed); a CPU access makes
// them young, and so does a fault that keeps the PTE (wp_page_reuse's pte_mkyoung); GUP's
// follow_page_pte does not. A PTE re-check compares the whole PTE, accessed bit included
// (pte_same, gup-fast's pte_val compare), as x86 does.
//
// Blocking follows the scenario language (docs/scenario-language.md): a fork holds mmap_lock for
// write from its first step to its last; a fault, slow GUP, holds it for read for the step, and
// a write fault whose copy is made holds it until the copy is installed; a step that needs the
// lock another thread holds does nothing ('blocked'). A synchronous operation that needs the
// lock waits: the paths holding it run to their end first (waitForMmapLock, finish).

import { GUP_PIN_COUNTING_BIAS, NaiveKernel, pageKey, type NFrame, type NPage, type NPin, type NProc, type NPte, type NRegion, type NVma } from './model.js';

export type StepState = 'running' | 'blocked' | 'done';

/** What the NaiveOptions do not say about the split paths. */
export interface StepRules {
  /**
   * mm->write_protect_seq (57efa1fe5957, 5.11; 5.10.4): fork makes it odd while it copies,
   * gup-fast with FOLL_PIN gives up when it is odd or changed. Before (5.9, 5.10.0-3) gup-fast
   * could pin a page fork was about to share.
   */
  writeProtectSeq: boolean;
}

/** mmap_lock and write_protect_seq of one address space. */
interface MmLocks {
  /** The thread holding it for write (-1: none). */
  writer: number;
  readers: number;
  seq: number;
}

/** A PTE's value, as pte_same() compares it. */
interface PteValue {
  frame: NFrame | null;
  writable: boolean;
  dirty: boolean;
  softDirty: boolean;
  uffdWp: boolean;
  young: boolean;
}

/** The state beside the NaiveKernel that the split paths need. */
export class NaiveSched {
  /** PTEs whose accessed bit is clear (fork's copies in the child, restored device-exclusive entries, until touched). */
  readonly old = new WeakSet<NPte>();
  private readonly locks = new Map<NProc, MmLocks>();

  /**
   * What the naive model cannot decide: whether the allocator gave a freed page back at the same
   * physical address (the kernel's gup-fast grabs by pfn: a folio freed after its PTE was read
   * and allocated again for the same PTE, with the same bits, passes the re-check). The caller
   * says which way it went (for thread tid); unset: never.
   */
  pfnReused: ((tid: number) => boolean) | null = null;

  /** How often each race outcome happened (for the tests' coverage figures): `fork:early-cow`, `gup:seq-odd`, ... */
  readonly seen = new Map<string, number>();

  constructor(readonly k: NaiveKernel, readonly rules: StepRules) {
    k.accessed = (pte, young) => {
      if (young) this.old.delete(pte);
      else this.old.add(pte);
    };
  }

  note(what: string): void {
    this.seen.set(what, (this.seen.get(what) ?? 0) + 1);
  }

  lockOf(p: NProc): MmLocks {
    let l = this.locks.get(p);
    if (l === undefined) {
      l = { writer: -1, readers: 0, seq: 0 };
      this.locks.set(p, l);
    }
    return l;
  }

  /** The PTE of pg as pte_same() sees it (null: none). */
  value(pte: NPte | null): PteValue | null {
    if (pte === null) return null;
    return { frame: pte.frame, writable: pte.writable, dirty: pte.dirty, softDirty: pte.softDirty === true, uffdWp: pte.uffdWp === true, young: !this.old.has(pte) };
  }

  static same(a: PteValue | null, b: PteValue | null): boolean {
    if (a === null || b === null) return a === b;
    return a.frame === b.frame && a.writable === b.writable && a.dirty === b.dirty && a.softDirty === b.softDirty && a.uffdWp === b.uffdWp && a.young === b.young;
  }

  /** A CPU access through pg's PTE (or a fault that made it young: wp_page_reuse's pte_mkyoung). */
  touch(pg: NPage | undefined): void {
    if (pg?.pte) this.old.delete(pg.pte);
  }

  /**
   * A synchronous fork (NaiveKernel.fork), and after it (forked): write_protect_seq went odd and even again once
   * per VMA whose page tables were copied (copy_page_range of a COW mapping: every private VMA
   * vma_needs_copy() copies, NaiveKernel.forkCopiesVma; none: unchanged, a gup-fast that sampled
   * it before sees no fork), and the PTEs the child shares with the parent are old
   * (__copy_present_ptes: pte_mkold). (The parent's PTEs restored from device-exclusive entries
   * are old too: NaiveKernel.accessed.)
   */
  fork(parent: NProc): NProc {
    const child = this.k.fork(parent);
    this.forked(parent, child);
    return child;
  }

  forked(parent: NProc, child: NProc): void {
    const copied = new Set<NVma>();
    for (const [key, cp] of child.pages) {
      const pp = parent.pages.get(key)!;
      if (this.k.forkCopiesVma(pp, cp)) copied.add(pp.vma);
      if (cp.pte !== null && pp.pte !== null && cp.pte.frame === pp.pte.frame) this.old.add(cp.pte);
    }
    this.lockOf(parent).seq += 2 * copied.size;
  }

  /** folio_put of n references. */
  put(f: NFrame, n = 1): void {
    f.refcount -= n;
    if (f.refcount === 0) this.k.frames.delete(f);
  }

  /** A new anonymous folio, not mapped yet (the copy wp_page_copy or fork's prealloc makes): one reference. */
  alloc(value: number): NFrame {
    const f: NFrame = { id: -1, refcount: 1, mapcount: 0, exclusive: this.k.rules.pae, value, swapcache: null };
    this.k.frames.add(f);
    return f;
  }
}

/** A split path: one atomic step at a time, on behalf of thread `tid`. */
export interface NaiveTask {
  readonly kind: 'fork' | 'gup' | 'write';
  step(): StepState;
  /** mmap_lock held for read across steps (a write fault between its copy and the install). */
  readonly holdsRead: boolean;
}

/** The address-ordered keys of p's mapped pages. */
function addressOrder(p: NProc): string[] {
  const out: [number, string][] = [];
  for (const r of p.regions) {
    for (let i = 0; i < r.n; i++) {
      const key = pageKey(r, i);
      if (p.pages.has(key)) out.push([r.base + i, key]);
    }
  }
  return out.sort((a, b) => a[0] - b[0]).map(([, k]) => k);
}

/**
 * fork() split (`P fork C &`): dup_mmap() under mmap_write_lock(oldmm) from the first step to the
 * last. Steps:
 * - begin: the lock taken (blocked while any other thread holds it), ksm_fork (the child joins
 *   KSM's list when the parent is on it), the child's mm and all its VMAs made (dup_mmap's VMA
 *   loop, NaiveKernel.forkPage: VM_DONTCOPY left out, VM_WIPEONFORK empty, anon_vma_fork giving
 *   each copied VMA an anon_vma of its own, dup_userfaultfd keeping VM_UFFD_WP only with the fork
 *   event);
 * - per VMA vma_needs_copy() copies (NaiveKernel.forkCopiesVma: an anon_vma, or from 5.19 a child
 *   VMA registered for uffd-wp; not VM_WIPEONFORK), in address order, copy_page_range(): every
 *   such VMA here is a private anonymous one, a COW mapping, so the MMU notifier tells devices
 *   first (the grants on its pages are revoked) and write_protect_seq is odd from the start of
 *   its copy (raw_write_seqcount_begin, in the step that reaches it) to its end
 *   (raw_write_seqcount_end, in the step that copies its last entry, or reaches it if it has
 *   none); another VMA to copy after it makes that a step boundary (`next`: dup_mmap's loop
 *   between two copy_page_range() calls, write_protect_seq even, mmap_lock still held), where a
 *   gup-fast may run whole without seeing a fork;
 * - per non-empty parent entry of such a VMA, in address order, under both page-table locks
 *   (copy_pte_range):
 *   - a swap entry: copied at once (copy_nonpresent_pte: swap_duplicate; the parent's entry
 *     loses SWP_EXCLUSIVE; the uffd-wp bit kept or not: NaiveKernel.forkSwapEntry), one step;
 *   - a device-exclusive entry: restored in the parent (try_restore_exclusive_pte: the page lock
 *     is always free here; restore_exclusive_pte maps it again, old, writable as its rules say),
 *     one step, and then copied as the present PTE it is now (copy_pte_range goes on with it under
 *     the same lock, but what may run in between, gup-fast and a CPU store through a writable
 *     PTE, takes no lock: the boundary stands for that, as `check` and `apply`'s does);
 *   - a present PTE: `check` (copy_present_ptes decides: share, or copy for the child when the
 *     page may be pinned) and `apply` (share: both PTEs write-protected, __copy_present_ptes).
 *     The two are one critical section of the page-table lock, but gup-fast takes no lock and a
 *     CPU store through a still writable PTE none: they can run in between, which is what the
 *     boundary stands for;
 *   - a page to copy (MMF_HAS_PINNED, folio_maybe_dma_pinned, from 5.19 only a PG_anon_exclusive
 *     one: folio_try_dup_anon_rmap_pte refuses it): copy_present_page returns -EAGAIN without a
 *     preallocated folio; copy_pte_range drops both locks and allocates it (`alloc`,
 *     folio_prealloc), then walks again from this PTE (`install`): the PTE read afresh and
 *     decided again; if it still needs a copy, the page is copied now (copy_mc_user_highpage,
 *     under the lock) and the copy mapped in the child, else the PTE is shared and the prealloc
 *     freed ("could only happen if one pinned pte changed").
 *   The child's entry keeps the uffd-wp bit by the parent's VMA (up to 5.13) or the child's.
 * - end: mmap_lock released (write_protect_seq is even since the last VMA's copy ended).
 * The per-entry rules are the synchronous NaiveKernel.fork's (forkSwapEntry, forkMustCopy,
 * forkCopied, forkShare, restoreDevx); what this adds is where the steps stop.
 */
export class NaiveForkTask implements NaiveTask {
  readonly kind = 'fork';
  readonly holdsRead = false;
  child: NProc | null = null;
  private phase: 'begin' | 'check' | 'apply' | 'alloc' | 'install' | 'next' | 'end' = 'begin';
  /** The keys of the pages to copy, VMA by VMA (address order). */
  private vmas: string[][] = [];
  private vi = 0;
  private at = 0;
  /** copy_page_range() of vmas[vi] has begun (write_protect_seq odd). */
  private copying = false;
  private prealloc: NFrame | null = null;
  /** The PTE a device-exclusive entry was restored to, as restored (for the coverage note). */
  private restored: PteValue | null = null;

  constructor(readonly s: NaiveSched, readonly parent: NProc, readonly tid: number) {}

  step(): StepState {
    const k = this.s.k;
    const lock = this.s.lockOf(this.parent);
    switch (this.phase) {
      case 'begin': {
        if (lock.readers > 0 || (lock.writer >= 0 && lock.writer !== this.tid)) return 'blocked';
        lock.writer = this.tid;
        this.makeChild();
        return this.next();
      }
      case 'check': {
        const pg = this.page();
        if (pg.swp !== null) {
          this.s.note(pg.swp.uffdWp === true ? 'fork:swap-uffd-wp' : 'fork:swap');
          k.forkSwapEntry(pg, this.childPage());
          this.at++;
          return this.next();
        }
        if (pg.devx) {
          // copy_nonpresent_pte -> try_restore_exclusive_pte; -ENOENT: copied as a present PTE next.
          this.s.note('fork:devx-restored');
          k.restoreDevx(this.parent, pg, false);
          this.restored = this.s.value(pg.pte);
          return 'running';
        }
        const pte = pg.pte!;
        // A store or gup-fast through the restored PTE before fork copies it.
        if (this.restored !== null && !NaiveSched.same(this.restored, this.s.value(pte))) this.s.note('fork:devx-changed');
        this.restored = null;
        if (pte.frame?.ksm === true) this.s.note('fork:ksm');
        if (pg.prot === 'ro') this.s.note('fork:ro-vma');
        this.phase = this.mustCopy(pte) ? 'alloc' : 'apply';
        if (this.phase === 'alloc') this.s.note('fork:early-cow');
        return 'running';
      }
      case 'apply':
        // (A pin gup-fast took since the check is shared too: the window write_protect_seq closes.)
        if (this.page().pte!.frame !== null && NaiveKernel.maybeDmaPinned(this.page().pte!.frame!)) this.s.note('fork:shares-pinned');
        this.share();
        this.noteUffdWp();
        this.at++;
        return this.next();
      case 'alloc':
        // folio_prealloc() with both page-table locks dropped (mmap_lock still held for write).
        this.prealloc = this.s.alloc(0);
        this.phase = 'install';
        return 'running';
      case 'install': {
        // copy_pte_range() again from this PTE, the prealloc in hand.
        const pg = this.page();
        const pte = pg.pte!;
        if (this.mustCopy(pte)) {
          const f = this.prealloc!;
          f.value = pte.frame!.value; // copied now, under the lock
          f.mapcount = 1;
          k.forkCopied(pg, this.childPage(), this.child!, f);
        } else {
          this.s.note('fork:install-shares');
          this.share();
          this.s.put(this.prealloc!);
        }
        this.prealloc = null;
        this.noteUffdWp();
        this.at++;
        return this.next();
      }
      case 'next':
        return this.next();
      case 'end':
        lock.writer = -1;
        return 'done';
    }
  }

  /** copy_present_ptes(): does the child need its own copy of this page now? */
  private mustCopy(pte: NPte): boolean {
    return pte.frame !== null && this.s.k.forkMustCopy(this.parent, pte.frame);
  }

  /** __copy_present_ptes() and the rmap (NaiveKernel.forkShare); the child's PTE old. */
  private share(): void {
    const cp = this.childPage();
    this.s.k.forkShare(this.page(), cp, this.child!);
    this.s.old.add(cp.pte!);
  }

  /** A parent PTE with the uffd-wp bit copied: whether the child's kept it. */
  private noteUffdWp(): void {
    if (this.page().pte!.uffdWp === true) this.s.note(this.childPage().pte!.uffdWp === true ? 'fork:uffd-wp-kept' : 'fork:uffd-wp-dropped');
  }

  private page(): NPage {
    return this.parent.pages.get(this.vmas[this.vi]![this.at]!)!;
  }

  private childPage(): NPage {
    return this.child!.pages.get(this.vmas[this.vi]![this.at]!)!;
  }

  /**
   * On to the next non-empty entry to copy; a VMA's copy begins when it is reached (the MMU
   * notifier, write_protect_seq odd) and ends when its entries are done (even again); the step
   * stops between two VMAs.
   */
  private next(): StepState {
    const lock = this.s.lockOf(this.parent);
    while (this.vi < this.vmas.length) {
      const keys = this.vmas[this.vi]!;
      if (!this.copying) {
        this.copying = true;
        // copy_page_range() of a COW mapping: mmu_notifier_invalidate_range_start over the VMA.
        this.s.k.notify(this.parent, keys.map((key) => this.parent.pages.get(key)!));
        lock.seq++; // raw_write_seqcount_begin
      }
      while (this.at < keys.length) {
        const pg = this.page();
        if (pg.pte !== null || pg.swp !== null || pg.devx) {
          this.phase = 'check';
          return 'running';
        }
        this.at++;
      }
      lock.seq++; // raw_write_seqcount_end
      this.copying = false;
      this.vi++;
      this.at = 0;
      if (this.vi < this.vmas.length) {
        this.s.note('fork:between-vmas');
        this.phase = 'next';
        return 'running';
      }
    }
    this.phase = 'end';
    return 'running';
  }

  /** dup_mmap()'s VMA loop: the child's pages (no entries yet), and the pages whose entries are copied. */
  private makeChild(): void {
    const k = this.s.k;
    const parent = this.parent;
    if (parent.cowPgtable === true) throw new Error('the split naive fork has no COW page tables');
    const child = k.spawn();
    // ksm_fork: a child of an mm registered with KSM joins the list, at its tail.
    if (k.ksmMms.includes(parent)) k.ksmMms.push(child);
    child.regions = parent.regions.slice();
    child.next = parent.next;
    const vmas = new Map<NVma, NVma>();
    for (const key of addressOrder(parent)) {
      const pg = parent.pages.get(key)!;
      const cp = k.forkPage(parent, child, pg, vmas);
      const entry = pg.pte !== null || pg.swp !== null || pg.devx;
      if (cp === null) {
        if (entry) this.s.note('fork:dontfork');
        continue;
      }
      child.pages.set(key, cp);
      if (!k.forkCopiesVma(pg, cp)) {
        if (entry && pg.wipeonfork) this.s.note('fork:wipeonfork');
        continue;
      }
      // Pages of one VMA are consecutive in address order: a new VMA starts a new group.
      const last = this.vmas[this.vmas.length - 1];
      if (last !== undefined && parent.pages.get(last[0]!)!.vma === pg.vma) last.push(key);
      else this.vmas.push([key]);
    }
    this.child = child;
  }
}

/**
 * pin_user_pages_fast(FOLL_PIN | FOLL_WRITE [| FOLL_LONGTERM]) of one page, split (`P pin SEL as
 * H rw fast &`): gup_fast_fallback(). Steps:
 * - read: mm_set_has_pinned_flag (5.9 on), then (write_protect_seq kernels) the sequence count
 *   sampled: odd (a fork is copying) gives up at once, all pages to the slow path; else the
 *   lockless PTE read (ptep_get_lockless): present, writable (pte_access_permitted), not special
 *   (the zero page), else the page goes to the slow path;
 * - grab: try_grab_folio_fast (fails on a freed folio), then the PTE read again: changed (any bit:
 *   pte_val compare), the pin is dropped and the page goes to the slow path (nothing runs
 *   between the grab and the re-check that the re-check would not see);
 * - end: (write_protect_seq kernels) read_seqcount_retry: changed, every pin dropped, all to the
 *   slow path;
 * - slow: __gup_longterm_locked under mmap_read_lock (blocked while a fork holds it for write):
 *   the synchronous NaiveKernel.pin, one step.
 */
export class NaiveGupFastTask implements NaiveTask {
  readonly kind = 'gup';
  readonly holdsRead = false;
  /** The pin taken (null: EFAULT), once done. */
  pin: NPin | null = null;
  private phase: 'read' | 'grab' | 'end' | 'slow' = 'read';
  private seq = 0;
  private seen: PteValue | null = null;
  private grabbed: NFrame | null = null;
  private fallback = false;

  constructor(readonly s: NaiveSched, readonly p: NProc, readonly tid: number, readonly r: NRegion, readonly i: number, readonly o: { write: boolean; longterm: boolean }) {
    if (!o.write) throw new Error('the split naive gup-fast pins for writing only');
  }

  step(): StepState {
    const k = this.s.k;
    const lock = this.s.lockOf(this.p);
    switch (this.phase) {
      case 'read': {
        if (k.rules.earlyCow) this.p.hasPinned = true;
        if (this.s.rules.writeProtectSeq) {
          this.seq = lock.seq;
          if (this.seq & 1) {
            this.s.note('gup:seq-odd');
            this.fallback = true;
            this.phase = 'slow';
            return 'running';
          }
          // Even, though a fork holds mmap_lock: it is between two VMAs' copies, or past the last.
          if (lock.writer >= 0) this.s.note('gup:seq-even-in-fork');
        }
        // gup-fast walks the page tables, not the VMAs.
        const pte = this.p.pages.get(pageKey(this.r, this.i))?.pte ?? null;
        if (pte === null || pte.frame === null || !pte.writable) {
          this.fallback = true;
          this.phase = 'end';
          return 'running';
        }
        this.seen = this.s.value(pte);
        this.phase = 'grab';
        return 'running';
      }
      case 'grab': {
        let f = this.seen!.frame!;
        this.phase = 'end';
        if (!k.frames.has(f)) {
          // try_grab_folio_fast: folio_try_get fails on a freed folio, unless its pfn was given to
          // another folio meanwhile, now mapped here with the same bits (then it is that one).
          const now = this.s.value(this.p.pages.get(pageKey(this.r, this.i))?.pte ?? null);
          const aba = now !== null && now.frame !== null && NaiveSched.same({ ...now, frame: f }, this.seen);
          if (!aba || this.s.pfnReused?.(this.tid) !== true) {
            this.s.note('gup:freed');
            this.fallback = true;
            return 'running';
          }
          this.s.note('gup:pfn-reused');
          f = now.frame!;
          this.seen = now;
        }
        f.refcount += GUP_PIN_COUNTING_BIAS;
        const now = this.s.value(this.p.pages.get(pageKey(this.r, this.i))?.pte ?? null);
        if (!NaiveSched.same(now, this.seen)) {
          this.s.note('gup:pte-changed');
          this.s.put(f, GUP_PIN_COUNTING_BIAS);
          this.fallback = true;
          return 'running';
        }
        this.grabbed = f;
        return 'running';
      }
      case 'end':
        if (this.s.rules.writeProtectSeq && lock.seq !== this.seq && this.grabbed !== null) {
          this.s.note('gup:seq-changed');
          this.s.put(this.grabbed, GUP_PIN_COUNTING_BIAS);
          this.grabbed = null;
          this.fallback = true;
        }
        if (this.fallback) {
          this.phase = 'slow';
          return 'running';
        }
        this.pin = { frame: this.grabbed, write: true, longterm: this.o.longterm };
        return 'done';
      case 'slow': {
        if (lock.writer >= 0) return 'blocked';
        this.pin = k.pin(this.p, this.r, this.i, this.o, k.fastFallbackUnlockable(this.o.longterm));
        return 'done';
      }
    }
  }
}

/**
 * A CPU store to one page, split (`P write SEL = V &`). Steps:
 * - fault: the store through the PTE if it is present and writable (no lock, one step); in a
 *   mapping without write access, SIGSEGV; else the fault under mmap_read_lock (blocked while a
 *   fork holds it for write), under the page-table lock: do_anonymous_page (a new page, mapped
 *   writable), do_swap_page (then do_wp_page if it is still read-only, unless the swap-in did
 *   the write itself, up to 5.17: then the fault ends; a device-exclusive entry is only
 *   restored, old, and the fault ends), do_wp_page reusing the page (writable) -
 *   the store is the next step - or wp_page_copy's first part: the new page
 *   allocated and the old one (or zeroes) copied into it with the page-table lock dropped; the
 *   fault goes on holding mmap_lock for read;
 * - install: the page-table lock retaken: pte_same(orig_pte) maps the copy writable and drops
 *   the old page's mapping and reference; else the copy is freed and the fault returns; the
 *   instruction runs again (back to `fault`). mmap_lock released;
 * - store: the instruction again: through the PTE if it is (still) present and writable, else
 *   it faults again (back to `fault`).
 */
export class NaiveWriteTask implements NaiveTask {
  readonly kind = 'write';
  holdsRead = false;
  /** The store's outcome once done: 'ok' or 'fault' (SIGSEGV). */
  result: 'ok' | 'fault' | null = null;
  private phase: 'fault' | 'install' | 'store' = 'fault';
  private seen: PteValue | null = null;
  private copy: NFrame | null = null;
  /** The page copied, held between the copy and the install (do_wp_page's folio_get, wp_page_copy's folio_put). */
  private held: NFrame | null = null;

  constructor(readonly s: NaiveSched, readonly p: NProc, readonly tid: number, readonly r: NRegion, readonly i: number, readonly v: number) {}

  private pg(): NPage | undefined {
    return this.p.pages.get(pageKey(this.r, this.i));
  }

  step(): StepState {
    const k = this.s.k;
    const lock = this.s.lockOf(this.p);
    switch (this.phase) {
      case 'fault': {
        const pg = this.pg();
        if (pg === undefined || pg.prot !== 'rw') {
          this.result = 'fault';
          return 'done';
        }
        if (pg.pte !== null && pg.pte.writable) return this.store(pg);
        if (lock.writer >= 0) return 'blocked';
        this.p.minflt++;
        if (pg.devx) {
          // do_swap_page -> remove_device_exclusive_entry (the device told first): the PTE
          // restored, old (restore_exclusive_pte), and the fault ends (`goto out`). The store
          // is the next step: through the PTE if it is writable, else a second fault.
          this.s.note('write:devx-restored');
          k.restoreDevx(this.p, pg, true);
          this.phase = 'store';
          return 'running';
        }
        if (pg.pte === null && pg.swp === null) {
          // do_anonymous_page, write: a new exclusive zeroed page, mapped writable and dirty.
          k.anonPrepare(this.p, pg);
          const f = this.s.alloc(0);
          f.mapcount = 1;
          pg.pte = { frame: f, writable: true, dirty: true, softDirty: true };
          this.p.rss++;
          this.phase = 'store';
          return 'running';
        }
        if (pg.swp !== null) {
          // A write do_swap_page() did itself (FAULT_FLAG_WRITE cleared, up to 6.10 even where a
          // uffd-wp bit keeps the PTE read-only) ends the fault: the
          // store is the next step (a uffd-wp bit left the PTE read-only: it faults again).
          const done = k.swapIn(this.p, pg, true);
          if (pg.pte!.writable || done) {
            this.phase = 'store';
            return 'running';
          }
        }
        // do_wp_page on the read-only PTE: a uffd-wp one goes to the monitor first, which
        // un-protects it; the fault is retried at once (handle_mm_fault again).
        if (k.uffdWpFault(this.p, pg, true) === 'resolved') {
          this.s.note('write:uffd-wp');
          if (pg.pte!.writable) {
            // The retried fault finds it writable: handle_pte_fault's pte_mkdirty (soft-dirty
            // too, as x86 does) and pte_mkyoung.
            pg.pte!.dirty = true;
            pg.pte!.softDirty = true;
            this.s.touch(pg);
            this.phase = 'store';
            return 'running';
          }
        }
        const pte = pg.pte!;
        const old = pte.frame;
        if (old !== null && k.canReuse(old)) {
          if (k.rules.pae) old.exclusive = true;
          k.reuses++;
          pte.writable = true;
          pte.dirty = true;
          pte.softDirty = true;
          this.s.touch(pg);
          this.phase = 'store';
          return 'running';
        }
        // wp_page_copy(): vmf_anon_prepare, the copy made outside the page-table lock.
        k.anonPrepare(this.p, pg);
        this.seen = this.s.value(pte);
        this.copy = this.s.alloc(old === null ? 0 : old.value);
        // do_wp_page() takes a reference on the page before it drops the page-table lock.
        if (old !== null) old.refcount++;
        this.held = old;
        this.s.note('write:copy');
        lock.readers++;
        this.holdsRead = true;
        this.phase = 'install';
        return 'running';
      }
      case 'install': {
        const pg = this.pg()!;
        lock.readers--;
        this.holdsRead = false;
        const f = this.copy!;
        this.copy = null;
        const held = this.held;
        this.held = null;
        if (!NaiveSched.same(this.s.value(pg.pte), this.seen)) {
          this.s.note('write:pte-changed');
          this.s.put(f);
          if (held !== null) this.s.put(held); // wp_page_copy's folio_put of the page it copied
          this.phase = 'fault';
          return 'running';
        }
        const old = pg.pte!.frame;
        f.mapcount = 1;
        pg.pte = { frame: f, writable: true, dirty: true, softDirty: true };
        k.cowCopies++;
        if (old === null) this.p.rss++;
        else {
          old.mapcount--;
          this.s.put(old);
        }
        if (held !== null) this.s.put(held);
        this.phase = 'store';
        return 'running';
      }
      case 'store': {
        const pg = this.pg();
        if (pg === undefined || pg.pte === null || !pg.pte.writable) {
          this.phase = 'fault';
          return 'running';
        }
        return this.store(pg);
      }
    }
  }

  private store(pg: NPage): StepState {
    const pte = pg.pte!;
    pte.frame!.value = this.v;
    pte.dirty = true;
    pte.softDirty = true;
    this.s.touch(pg);
    this.result = 'ok';
    return 'done';
  }
}
