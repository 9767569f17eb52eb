// A deliberately naive reference model of private anonymous memory under the modern (v6) rules,
// written from the kernel's decision procedure (do_wp_page, do_anonymous_page) and fork, with
// plain objects and Maps and no attempt at speed. It is the oracle of the model-based test: the
// model core must agree with it on everything a process or pagemap could observe.
//
// What it knows: processes with regions of pages; per page the VMA state (protection, dontfork,
// wipeonfork, which VMA it belongs to) and the PTE (none, the zero page, or a frame, writable or
// not); frames with refcount, mapcount, PG_anon_exclusive and a value; FOLL_GET references.
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
}

export interface NPte {
  /** null: the shared zero page (no refcount, no mapcount). */
  frame: NFrame | null;
  writable: boolean;
}

/** What the pages of one VMA share. */
export interface NVma {
  anonVma: boolean;
  /** Which anon_vma (0: none). */
  anonId: number;
}

export interface NPage {
  vma: NVma;
  prot: Prot;
  dontfork: boolean;
  wipeonfork: boolean;
  pte: NPte | null;
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
}

/** A FOLL_GET reference: holds the frame it was taken on (null: the zero page, which holds nothing). */
export interface NRef {
  frame: NFrame | null;
}

/** The reuse rule of do_wp_page (5.19 on: PG_anon_exclusive, else refcount == 1). */
export type ReuseRule = 'anon-exclusive' | 'pagecount' | 'mapcount';

export interface NaiveOptions {
  reuse: ReuseRule;
  /** PG_anon_exclusive is tracked (5.19+). */
  pae: boolean;
  /** mprotect(rw) maps exclusive pages writable at once (6.0+). */
  mprotectUpgrade: boolean;
}

export const V6_RULES: NaiveOptions = { reuse: 'anon-exclusive', pae: true, mprotectUpgrade: true };

export function pageKey(r: NRegion, i: number): string {
  return `${r.id}:${i}`;
}

export class NaiveKernel {
  readonly procs: NProc[] = [];
  /** Frames in use (refcount > 0). */
  readonly frames = new Set<NFrame>();
  cowCopies = 0;
  reuses = 0;
  private nextFrame = 1;
  private nextRegion = 0;
  private nextAnon = 1;

  constructor(readonly rules: NaiveOptions = V6_RULES) {}

  spawn(): NProc {
    const p: NProc = { id: this.procs.length, alive: true, regions: [], pages: new Map(), rss: 0, minflt: 0, next: 0 };
    this.procs.push(p);
    return p;
  }

  private newFrame(value: number): NFrame {
    const f: NFrame = { id: this.nextFrame++, refcount: 1, mapcount: 1, exclusive: this.rules.pae, value };
    this.frames.add(f);
    return f;
  }

  private put(f: NFrame): void {
    f.refcount--;
    if (f.refcount === 0) this.frames.delete(f);
  }

  /** Drop a PTE: the frame loses a mapping and a reference. */
  private zap(p: NProc, pg: NPage): void {
    const pte = pg.pte;
    pg.pte = null;
    if (pte === null || pte.frame === null) return;
    pte.frame.mapcount--;
    this.put(pte.frame);
    p.rss--;
  }

  mmap(p: NProc, n: number): NRegion {
    const r: NRegion = { id: this.nextRegion++, n, base: p.next };
    p.next += n;
    p.regions.push(r);
    const vma: NVma = { anonVma: false, anonId: 0 };
    for (let i = 0; i < n; i++) p.pages.set(pageKey(r, i), { vma, prot: 'rw', dontfork: false, wipeonfork: false, pte: null });
    this.merge(p);
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
    return a.prot === b.prot && a.dontfork === b.dontfork && a.wipeonfork === b.wipeonfork;
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
      if (!(a.vma.anonId === b.vma.anonId || a.vma.anonId === 0 || b.vma.anonId === 0)) continue;
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
  private anonPrepare(p: NProc, pg: NPage): void {
    if (pg.vma.anonVma) return;
    pg.vma.anonVma = true;
    const pages = this.byAddress(p);
    const mine = [...pages].filter(([, x]) => x.vma === pg.vma).map(([a]) => a);
    const lo = Math.min(...mine);
    const hi = Math.max(...mine);
    for (const n of [pages.get(lo - 1), pages.get(hi + 1)]) {
      if (n !== undefined && n.vma.anonVma && NaiveKernel.sameFlags(n, pg)) {
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
    const pte = pg.pte;
    if (pte !== null && pte.writable) {
      pte.frame!.value = value;
      return true;
    }
    p.minflt++;
    if (pte === null) {
      // do_anonymous_page, write: a new exclusive zeroed page, mapped writable.
      this.anonPrepare(p, pg);
      pg.pte = { frame: this.newFrame(value), writable: true };
      p.rss++;
      return true;
    }
    if (pte.frame === null) {
      // do_wp_page on the zero page: copy (to a zeroed page).
      this.anonPrepare(p, pg);
      this.cowCopies++;
      pg.pte = { frame: this.newFrame(value), writable: true };
      p.rss++;
      return true;
    }
    const old = pte.frame;
    if (this.canReuse(old)) {
      if (this.rules.pae) old.exclusive = true;
      this.reuses++;
      pte.writable = true;
      old.value = value;
      return true;
    }
    // wp_page_copy: the writer gets an exclusive copy; the old page loses a mapping and a reference.
    this.cowCopies++;
    pg.pte = { frame: this.newFrame(value), writable: true };
    old.mapcount--;
    this.put(old);
    return true;
  }

  private canReuse(f: NFrame): boolean {
    switch (this.rules.reuse) {
      case 'anon-exclusive':
        return f.exclusive || f.refcount === 1;
      case 'pagecount':
        return f.refcount === 1 && f.mapcount === 1;
      case 'mapcount':
        return f.mapcount <= 1;
    }
  }

  /** A CPU load: the value, or null for SIGSEGV. */
  read(p: NProc, r: NRegion, i: number): number | null {
    const pg = p.pages.get(pageKey(r, i));
    if (pg === undefined) return null;
    if (pg.pte === null) {
      // do_anonymous_page, read: the zero page, read-only; no anon_vma.
      p.minflt++;
      pg.pte = { frame: null, writable: false };
    }
    return pg.pte.frame === null ? 0 : pg.pte.frame.value;
  }

  /** get_user_pages(FOLL_GET), read-only, one page: faults it in for reading, takes a reference. */
  gup(p: NProc, r: NRegion, i: number): NRef | null {
    const pg = p.pages.get(pageKey(r, i));
    if (pg === undefined) return null;
    if (pg.pte === null) {
      p.minflt++;
      pg.pte = { frame: null, writable: false };
    }
    const f = pg.pte.frame;
    if (f !== null) f.refcount++;
    return { frame: f };
  }

  putRef(ref: NRef): void {
    if (ref.frame !== null) this.put(ref.frame);
  }

  fork(parent: NProc): NProc {
    const child = this.spawn();
    child.regions = parent.regions.slice();
    child.next = parent.next;
    const vmas = new Map<NVma, NVma>();
    for (const [key, pg] of parent.pages) {
      if (pg.dontfork) continue; // VM_DONTCOPY: no VMA in the child
      let cv = vmas.get(pg.vma);
      if (cv === undefined) {
        // anon_vma_fork(): the child's VMA gets an anon_vma of its own.
        const anon = pg.wipeonfork ? false : pg.vma.anonVma;
        cv = { anonVma: anon, anonId: anon ? this.nextAnon++ : 0 };
        vmas.set(pg.vma, cv);
      }
      const cp: NPage = { vma: cv, prot: pg.prot, dontfork: false, wipeonfork: pg.wipeonfork, pte: null };
      child.pages.set(key, cp);
      // VM_WIPEONFORK: an empty VMA. No anon_vma: nothing to copy (vma_needs_copy).
      if (pg.wipeonfork || !pg.vma.anonVma || pg.pte === null) continue;
      const f = pg.pte.frame;
      if (f === null) {
        cp.pte = { frame: null, writable: false };
        continue;
      }
      // Shared: one more mapping and reference, not exclusive any more, both PTEs read-only.
      f.mapcount++;
      f.refcount++;
      f.exclusive = false;
      pg.pte.writable = false;
      cp.pte = { frame: f, writable: false };
      child.rss++;
    }
    return child;
  }

  exit(p: NProc): void {
    for (const pg of p.pages.values()) this.zap(p, pg);
    p.pages.clear();
    p.alive = false;
  }

  munmap(p: NProc, r: NRegion, lo: number, hi: number): void {
    this.split(p, r, lo, hi);
    for (let i = lo; i < hi; i++) {
      const pg = p.pages.get(pageKey(r, i));
      if (pg === undefined) continue;
      this.zap(p, pg);
      p.pages.delete(pageKey(r, i));
    }
  }

  /** mprotect(): the pages up to the first hole change (ENOMEM there: false). */
  mprotect(p: NProc, r: NRegion, lo: number, hi: number, prot: Prot): boolean {
    let end = lo;
    while (end < hi && p.pages.has(pageKey(r, end))) end++;
    if (end === lo) return false;
    this.split(p, r, lo, end);
    for (let i = lo; i < end; i++) {
      const pg = p.pages.get(pageKey(r, i));
      if (pg === undefined) continue;
      pg.prot = prot;
      if (pg.pte === null) continue;
      if (prot === 'ro') pg.pte.writable = false;
      else if (this.rules.mprotectUpgrade && pg.pte.frame !== null && pg.pte.frame.exclusive) pg.pte.writable = true;
    }
    this.merge(p);
    return end === hi;
  }

  madvise(p: NProc, r: NRegion, lo: number, hi: number, advice: 'dontfork' | 'dofork' | 'wipeonfork' | 'keeponfork' | 'dontneed'): void {
    if (advice === 'dontneed') {
      for (let i = lo; i < hi; i++) {
        const pg = p.pages.get(pageKey(r, i));
        if (pg !== undefined) this.zap(p, pg);
      }
      return;
    }
    this.split(p, r, lo, hi);
    for (let i = lo; i < hi; i++) {
      const pg = p.pages.get(pageKey(r, i));
      if (pg === undefined) continue;
      if (advice === 'dontfork') pg.dontfork = true;
      else if (advice === 'dofork') pg.dontfork = false;
      else if (advice === 'wipeonfork') pg.wipeonfork = true;
      else pg.wipeonfork = false;
    }
    this.merge(p);
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
      if (addr >= a && addr < b && !inside.has(pg.vma)) inside.set(pg.vma, { anonVma: pg.vma.anonVma, anonId: pg.vma.anonId });
    }
    const after = new Map<NVma, NVma>();
    for (const v of inside.keys()) after.set(v, { anonVma: v.anonVma, anonId: v.anonId });
    for (const [addr, pg] of pages) {
      if (addr < a) continue;
      const to = addr < b ? inside.get(pg.vma) : after.get(pg.vma);
      if (to !== undefined) pg.vma = to;
    }
  }
}
