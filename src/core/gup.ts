// GUP: get_user_pages / pin_user_pages (slow path: follow_page_pte + faultin_page) and gup-fast,
// with each profile's COW rules at GUP time; unpin_user_pages / put_page to release.

import {
  EFAULT, isCowMapping, OK, PG_ANON, PG_LARGE, PTE_PRESENT, PTE_PROTNONE, PTE_SPECIAL, PTE_WRITE, RETRY, SIGBUS, VM_FAULT_WRITE, VM_HUGETLB,
  VM_READ, VM_WRITE,
} from './constants.js';
import { FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_BREAK_COW, FAULT_FLAG_UNSHARE, FAULT_FLAG_WRITE, handleMmFaultFlags } from './fault.js';
import type { Handle, Kernel, TaskState } from './kernel.js';
import type { Mm, Vma } from './mm.js';
import { followSlot, slotPfn } from './huge.js';
import { pageAnonExclusive } from './page.js';

export interface GupRequest {
  /** FOLL_PIN (pin_user_pages) rather than FOLL_GET. */
  pin: boolean;
  /** FOLL_WRITE. */
  write: boolean;
  /** FOLL_LONGTERM. */
  longterm: boolean;
  /** gup-fast first (lockless; falls back to the slow path page by page). */
  fast: boolean;
  kind: Handle['kind'];
}

export interface GupResult {
  err: number;
  handle: Handle | null;
  /** Pages taken by the fast path, and by the slow path. */
  fastPages: number;
  slowPages: number;
}

const MAX_RETRIES = 4;

/** gup_must_unshare(): a R/O pin of a page that may be shared must unshare it first (5.19+). */
export function gupMustUnshare(k: Kernel, vma: Vma | null, pfn: number, req: GupRequest, special: boolean): boolean {
  const mode = k.profile.unshareRoPin;
  if (mode === 'none' || !req.pin || req.write) return false;
  if (special || !(k.frames.flags[pfn]! & PG_ANON)) {
    // The zero page (or a page-cache page): only long-term pins in COW mappings, from 6.2.
    if (mode !== 'all' || !req.longterm) return false;
    return vma === null || isCowMapping(vma.flags);
  }
  return !pageAnonExclusive(k, pfn);
}

/** Does this GUP write-fault pages first? FOLL_WRITE, 5.8's forced COW break, or seed 001's for pins. */
function breaksCow(k: Kernel, vma: Vma, req: GupRequest): boolean {
  if (req.write) return true;
  if (!isCowMapping(vma.flags)) return false;
  const mode = k.profile.gupCowBreak;
  // Seed 001 breaks COW in follow_page_pte()'s path only: hugetlb (follow_hugetlb_page) is left out.
  return mode === 'get-and-pin' || (mode === 'pin' && req.pin && !(vma.flags & VM_HUGETLB));
}

/** try_grab_page(): take the reference or the pin on the frame. */
export function grab(k: Kernel, h: Handle, i: number, pfn: number, special: boolean, req: GupRequest, assertExclusive = true): void {
  h.frames[i] = pfn;
  if (special) {
    // The zero page: a FOLL_GET takes a reference on it; a FOLL_PIN took a pin on it too until
    // 6.5 (c8070b787519), which leaves it unpinned. Frame 0's refcount counts only these.
    const refs = !req.pin ? 1 : k.profile.pinSkipsZeroPage ? 0 : k.config.pinBias;
    k.frames.addRefcount(pfn, refs);
    h.refs[i] = refs;
    return;
  }
  // A pin of a page of a large folio counts exactly (try_grab_folio: refcount +1, _pincount +1).
  const large = (k.frames.flags[pfn]! & PG_LARGE) !== 0;
  const refs = req.pin && !large ? k.config.pinBias : 1;
  if (assertExclusive) assertPinnedExclusive(k, pfn, req);
  k.frames.addRefcount(pfn, refs);
  if (req.pin && large) k.frames.pincount[pfn >>> 9]!++;
  h.refs[i] = refs;
}

/** sanity_check_pinned_pages(): an anonymous page is pinned only while PageAnonExclusive (5.19+). */
export function assertPinnedExclusive(k: Kernel, pfn: number, req: GupRequest): void {
  if (req.pin && k.profile.anonExclusive && k.frames.flags[pfn]! & PG_ANON && !pageAnonExclusive(k, pfn)) {
    k.emit('bug', -1, -1, pfn, -1, `VM_BUG_ON: pinning anonymous frame ${pfn} that is not PageAnonExclusive`);
  }
}

/** The lockless PTE (or PMD leaf: gup_fast_pmd_leaf) read of gup-fast: the frame it may take, or -1 to leave the page to the slow path. */
export function gupFastRead(k: Kernel, mm: Mm, vpn: number, req: GupRequest): number {
  const slot = followSlot(k, mm, vpn);
  return gupFastRefusal(k, slot, vpn, req) === GUP_FAST_TAKE ? slotPfn(k, slot, vpn) : -1;
}

/** gupFastRefusal(): gup-fast may take the page. */
export const GUP_FAST_TAKE = 0;
/** gupFastRefusal(): no present PTE. */
export const GUP_FAST_NOT_PRESENT = 1;
/** gupFastRefusal(): a special (zero page) or PROT_NONE entry. */
export const GUP_FAST_SPECIAL = 2;
/** gupFastRefusal(): read-only, and a write is needed (FOLL_WRITE, or gupFastWritableOnly). */
export const GUP_FAST_NOT_WRITABLE = 3;
/** gupFastRefusal(): read-only on a page a R/O pin must unshare first (gupMustUnshare). */
export const GUP_FAST_UNSHARE = 4;

/** gup-fast's tests of the entry at slot (followSlot's, or -1) for vpn: GUP_FAST_TAKE, or why it leaves the page to the slow path. */
export function gupFastRefusal(k: Kernel, slot: number, vpn: number, req: GupRequest): number {
  if (slot < 0) return GUP_FAST_NOT_PRESENT;
  const bits = k.tables.bits[slot]!;
  if (!(bits & PTE_PRESENT)) return GUP_FAST_NOT_PRESENT;
  // pte_access_permitted(): no user access through a PROT_NONE PTE.
  if (bits & (PTE_SPECIAL | PTE_PROTNONE)) return GUP_FAST_SPECIAL;
  const needWrite = req.write || k.profile.gupFastWritableOnly;
  if (needWrite && !(bits & PTE_WRITE)) return GUP_FAST_NOT_WRITABLE;
  if (!(bits & PTE_WRITE) && gupMustUnshare(k, null, slotPfn(k, slot, vpn), req, false)) return GUP_FAST_UNSHARE;
  return GUP_FAST_TAKE;
}

/**
 * faultin_page() sets FAULT_FLAG_ALLOW_RETRY only when GUP may drop mmap_lock: the slow path that
 * gup-fast falls back to (get_user_pages_unlocked(), FOLL_UNLOCKABLE from 6.3), a FOLL_LONGTERM
 * pin's only with gupFastLongtermRetry (6.2; before, __gup_longterm_unlocked() passed `locked`
 * NULL). pin_user_pages(), get_user_pages() and make_device_exclusive()'s
 * get_user_pages_remote() never (no `locked`, 5.7 to 6.18): their write fault on a page the
 * userfaultfd monitor protected is VM_FAULT_SIGBUS, and GUP fails with EFAULT.
 */
export function gupAllowsRetry(k: Kernel, req: GupRequest): boolean {
  return req.fast && (!req.longterm || k.profile.gupFastLongtermRetry);
}

/** __get_user_pages() for one page: follow the PTE, fault it in as the rules require, grab it. */
export function gupSlowPage(k: Kernel, mm: Mm, vpn: number, h: Handle, i: number, req: GupRequest): number {
  const vma = mm.findVma(vpn);
  // check_vma_flags()
  if (vma === null || !(vma.flags & (req.write ? VM_WRITE : VM_READ))) return EFAULT;
  const forceWrite = breaksCow(k, vma, req);
  // faultin_page(): FOLL_WRITE (and 5.8's forced break) fault as writes; seed 001's FOLL_PIN as FAULT_FLAG_BREAK_COW.
  const cowFault = !req.write && k.profile.gupCowBreak === 'pin' ? FAULT_FLAG_BREAK_COW : FAULT_FLAG_WRITE;
  const retry = gupAllowsRetry(k, req) ? FAULT_FLAG_ALLOW_RETRY : 0;
  let broken = false;
  for (let tries = 0; tries <= MAX_RETRIES; tries++) {
    // follow_page_mask(): a huge PMD is followed as it is (follow_trans_huge_pmd), never split.
    const slot = followSlot(k, mm, vpn);
    const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
    let fault = -1;
    if (!(bits & PTE_PRESENT)) {
      // In a read-only VMA the new page is mapped read-only and the fault reports no
      // VM_FAULT_WRITE: the next turn write-faults again and reuses it (5.8: two faults). (Seed
      // 001 read-faults a none PTE first and breaks COW on the zero page at the next turn; the
      // model allocates the page at once, as a write fault does: a reuse where seed 001 copies,
      // and in a writable VMA one fault less.)
      fault = forceWrite ? FAULT_FLAG_WRITE : 0;
    } else if (forceWrite && !(bits & PTE_WRITE) && !broken) {
      // can_follow_write_pte() fails: write-fault (COW break). A R/O VMA (forced break) keeps
      // the PTE read-only, so one break is enough (FOLL_COW).
      fault = cowFault;
    } else {
      const pfn = slotPfn(k, slot, vpn);
      const special = (bits & PTE_SPECIAL) !== 0;
      if (!(bits & PTE_WRITE) && gupMustUnshare(k, vma, pfn, req, special)) {
        fault = FAULT_FLAG_UNSHARE;
      } else {
        grab(k, h, i, pfn, special, req);
        return OK;
      }
    }
    // faultin_page(); a forced COW break on a read-only VMA acts like FOLL_FORCE.
    const err = (fault === FAULT_FLAG_WRITE || fault === FAULT_FLAG_BREAK_COW) && !(vma.flags & VM_WRITE)
      ? forcedWriteFault(k, mm, vma, vpn, fault | retry)
      : handleMmFaultFlags(k, mm, vpn, fault | retry);
    // vm_fault_to_errno(): VM_FAULT_SIGBUS (a userfault that may not wait, a hugetlb fault) is EFAULT.
    if (err === SIGBUS) return EFAULT;
    if (err !== OK && err !== RETRY && err !== VM_FAULT_WRITE) return err;
    // faultin_page(): VM_FAULT_WRITE in a VMA without VM_WRITE sets FOLL_COW: COW is broken and
    // the PTE stays read-only (dirty), so follow_page_pte() takes it as it is (can_follow_write_pte).
    // In a writable VMA the break is done once the PTE is writable. A userfault the monitor
    // resolved (RETRY) broke nothing: the retry faults again (the PTE stays read-only until 6.3).
    if (err === VM_FAULT_WRITE && !(vma.flags & VM_WRITE)) broken = true;
    if (fault === FAULT_FLAG_UNSHARE) {
      // After the unshare fault the page is exclusive (or a private copy): follow it again.
      const s2 = followSlot(k, mm, vpn);
      const b2 = s2 < 0 ? 0 : k.tables.bits[s2]!;
      if (b2 & PTE_PRESENT && !(b2 & PTE_SPECIAL) && !gupMustUnshare(k, vma, slotPfn(k, s2, vpn), req, false)) {
        grab(k, h, i, slotPfn(k, s2, vpn), false, req);
        return OK;
      }
    }
  }
  k.emit('bug', mm.id, vpn, -1, -1, 'GUP kept faulting without making progress');
  return EFAULT;
}

/** A write fault on a VMA without VM_WRITE (FOLL_FORCE-like): break COW, keep the PTE read-only. */
function forcedWriteFault(k: Kernel, mm: Mm, vma: Vma, vpn: number, flag: number): number {
  const saved = vma.flags;
  vma.flags |= VM_WRITE;
  const err = handleMmFaultFlags(k, mm, vpn, flag);
  vma.flags = saved;
  const slot = followSlot(k, mm, vpn);
  if (slot >= 0) k.tables.setBits(slot, k.tables.bits[slot]! & ~PTE_WRITE);
  return err;
}

/** A handle not yet registered (GUP in progress). */
export function newHandle(k: Kernel, mm: Mm, lo: number, n: number, req: GupRequest): Handle {
  return {
    id: k.handles.length, kind: req.kind, mm: mm.id, vpn: lo, frames: filledArray(n, -1),
    refs: filledArray(n, 0), write: req.write, longterm: req.longterm, released: false, revoked: null, vpns: null,
  };
}

/** An array of n times v, made at its size (an array grown by push() takes room for 16). */
function filledArray(n: number, v: number): number[] {
  const a = new Array<number>(n);
  for (let i = 0; i < n; i++) a[i] = v;
  return a;
}

/**
 * A GUP in progress: gup-fast page by page (lockless: read the PTE, grab the page, read the PTE
 * again; FOLL_PIN checks write_protect_seq around it, 5.11+), then the slow path, under
 * mmap_lock for read, for every page gup-fast left. Synchronous GUP (getUserPages) and the
 * split one (`pin ... &`, one step at a time) run the same steps.
 */
export interface GupTask {
  kind: 'gup';
  mm: number;
  lo: number;
  req: GupRequest;
  handle: Handle;
  phase: 'read' | 'grab' | 'end' | 'slow';
  page: number;
  /** write_protect_seq when gup-fast began. */
  seq: number;
  readPfn: number;
  readBits: number;
  /** Pages left to the slow path. */
  fallback: boolean[];
  err: number;
}

export function startGup(k: Kernel, mm: Mm, lo: number, hi: number, req: GupRequest): GupTask {
  const n = hi - lo;
  return newGupTask(mm.id, lo, req, newHandle(k, mm, lo, n, req), new Array<boolean>(n).fill(!req.fast));
}

/** A GUP not begun: every field, in one order (startGup and cloneTask make each GupTask here: one hidden class). */
export function newGupTask(mm: number, lo: number, req: GupRequest, handle: Handle, fallback: boolean[]): GupTask {
  return { kind: 'gup', mm, lo, req, handle, phase: req.fast ? 'read' : 'slow', page: -1, seq: -1, readPfn: -1, readBits: 0, fallback, err: OK };
}

/** One atomic step of a GUP (tasks.ts; getUserPages runs them all). */
export function stepGup(k: Kernel, t: GupTask): TaskState {
  const mm = k.mms[t.mm]!;
  const h = t.handle;
  const n = h.frames.length;
  switch (t.phase) {
    case 'read': {
      if (t.page < 0) {
        // Entering gup-fast: mm_set_has_pinned_flag() first (FOLL_PIN, sticky); FOLL_PIN samples write_protect_seq.
        if (t.req.pin && k.profile.forkEarlyCow) mm.hasPinned = true;
        t.page = 0;
        if (t.req.pin && k.profile.writeProtectSeq) {
          t.seq = mm.writeProtectSeq;
          if (t.seq & 1) {
            k.emit('gup', mm.id, t.lo, -1, -1, 'gup-fast: a fork is copying this mm (write_protect_seq odd): fall back to the slow path');
            t.fallback.fill(true);
            t.phase = 'slow';
            return 'running';
          }
        }
      }
      const pfn = gupFastRead(k, mm, t.lo + t.page, t.req);
      if (pfn < 0) {
        t.fallback[t.page] = true;
        return nextGupPage(t, n);
      }
      const slot = followSlot(k, mm, t.lo + t.page);
      t.readPfn = pfn;
      t.readBits = k.tables.bits[slot]!;
      t.phase = 'grab';
      return 'running';
    }
    case 'grab': {
      // try_grab_folio_fast(): a page freed since the PTE was read cannot be grabbed
      // (folio_ref_try_add fails on a zero refcount): leave it to the slow path.
      if (!k.frames.inUse(t.readPfn)) {
        t.fallback[t.page] = true;
        return nextGupPage(t, n);
      }
      grab(k, h, t.page, t.readPfn, false, t.req, false);
      // Then the PTE is read again: if it changed, the reference is dropped.
      const slot = followSlot(k, mm, t.lo + t.page);
      const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
      const pfn = slot < 0 ? -1 : slotPfn(k, slot, t.lo + t.page);
      if (bits !== t.readBits || pfn !== t.readPfn) {
        ungrab(k, h, t.page);
        h.frames[t.page] = -1;
        h.refs[t.page] = 0;
        t.fallback[t.page] = true;
        k.emit('gup', mm.id, t.lo + t.page, t.readPfn, -1, 'gup-fast: the PTE changed after the page was grabbed: dropped, left to the slow path');
      } else {
        assertPinnedExclusive(k, t.readPfn, t.req);
      }
      return nextGupPage(t, n);
    }
    case 'end': {
      if (t.req.pin && k.profile.writeProtectSeq && mm.writeProtectSeq !== t.seq) {
        // read_seqcount_retry(): a fork ran meanwhile; undo everything and use the slow path.
        for (let i = 0; i < n; i++) {
          ungrab(k, h, i);
          h.frames[i] = -1;
          h.refs[i] = 0;
        }
        t.fallback.fill(true);
        k.emit('gup', mm.id, t.lo, -1, -1, 'gup-fast: write_protect_seq changed (a fork ran): pins dropped, falling back to the slow path');
      }
      if (t.fallback.includes(true)) {
        t.phase = 'slow';
        return 'running';
      }
      return finishGup(k, t);
    }
    case 'slow': {
      // The slow path takes mmap_lock for read: it waits while a fork holds it.
      if (mm.mmapWriter >= 0) return 'blocked';
      if (t.req.pin && k.profile.forkEarlyCow) mm.hasPinned = true;
      for (let i = 0; i < n; i++) {
        if (!t.fallback[i]) continue;
        const err = gupSlowPage(k, mm, t.lo + i, h, i, t.req);
        if (err !== OK) {
          // Partial GUP: the caller gets an error; what was taken is released.
          releaseHandle(k, h);
          t.err = err;
          if (k.tracing) k.emit('gup', mm.id, t.lo + i, -1, -1, `${t.req.pin ? 'pin_user_pages' : 'get_user_pages'} failed at this page`);
          return 'done';
        }
      }
      return finishGup(k, t);
    }
  }
}

function nextGupPage(t: GupTask, n: number): TaskState {
  t.page++;
  t.phase = t.page < n ? 'read' : 'end';
  return 'running';
}

function finishGup(k: Kernel, t: GupTask): TaskState {
  const h = t.handle;
  const req = t.req;
  h.id = k.handles.length;
  k.handles.push(h);
  if (k.tracing) {
    const slow = slowPageCount(t);
    const what = req.pin ? `pin (FOLL_PIN${req.write ? '|FOLL_WRITE' : ''}${req.longterm ? '|FOLL_LONGTERM' : ''})` : `reference (FOLL_GET${req.write ? '|FOLL_WRITE' : ''})`;
    k.emit('gup', t.mm, t.lo, h.frames[0]!, -1,
      `${h.frames.length} page(s) taken as a ${what}: ${h.frames.length - slow} by gup-fast, ${slow} by the slow path; refcount +${req.pin ? k.config.pinBias : 1} each${req.pin && h.frames.some((p) => p > 0 && k.frames.flags[p]! & PG_LARGE) ? ' (+1 and the folio\'s pin count +1 for pages of a large folio)' : ''}${zeroNote(h)}`);
  }
  return 'done';
}

/** get_user_pages() / pin_user_pages() (and their _fast variants) over [lo, hi) of mm: every step of a GupTask at once. */
export function getUserPages(k: Kernel, mm: Mm, lo: number, hi: number, req: GupRequest): GupResult {
  const t = startGup(k, mm, lo, hi, req);
  for (let st = stepGup(k, t); st !== 'done'; st = stepGup(k, t)) {
    if (st === 'blocked') {
      // The caller holds no lock a fork could hold: nothing can release it here.
      releaseHandle(k, t.handle);
      k.emit('bug', mm.id, lo, -1, -1, 'a synchronous GUP met mmap_lock held for write');
      return { err: EFAULT, handle: null, fastPages: 0, slowPages: 0 };
    }
  }
  const slowPages = slowPageCount(t);
  if (t.err !== OK) return { err: t.err, handle: null, fastPages: hi - lo - slowPages, slowPages };
  return { err: OK, handle: t.handle, fastPages: hi - lo - slowPages, slowPages };
}

/** How many pages the GUP left to the slow path (a loop: filter() would make an array per GUP). */
function slowPageCount(t: GupTask): number {
  let n = 0;
  for (let i = 0; i < t.fallback.length; i++) if (t.fallback[i]) n++;
  return n;
}

/** What the handle took on the shared zero page, when it took any page there (for the trace). */
function zeroNote(h: Handle): string {
  let pages = 0;
  let refs = 0;
  for (let i = 0; i < h.frames.length; i++) {
    if (h.frames[i] !== 0) continue;
    pages++;
    refs += h.refs[i]!;
  }
  if (pages === 0) return '';
  return refs === 0 ? ` (${pages} on the zero page, which takes no pin)` : ` (${pages} on the zero page: its refcount +${refs})`;
}

/** unpin_user_pages() / put_page() on every page of a handle. */
export function releaseHandle(k: Kernel, h: Handle): void {
  if (h.released) return;
  h.released = true;
  for (let i = 0; i < h.frames.length; i++) {
    ungrab(k, h, i);
  }
}

/** unpin_user_page() / put_page() of what grab() took for page i of h (a large folio's pin count too). */
function ungrab(k: Kernel, h: Handle, i: number): void {
  const pfn = h.frames[i]!;
  if (pfn < 0 || h.refs[i]! <= 0) return;
  if (h.kind === 'pin' && pfn > 0 && k.frames.flags[pfn]! & PG_LARGE) k.frames.pincount[pfn >>> 9]!--;
  k.putPage(pfn, h.refs[i]!);
}
