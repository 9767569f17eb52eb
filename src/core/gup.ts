// GUP: get_user_pages / pin_user_pages (slow path: follow_page_pte + faultin_page) and gup-fast,
// with each profile's COW rules at GUP time; unpin_user_pages / put_page to release.

import {
  EFAULT, isCowMapping, NA, OK, PG_ANON, PG_ANON_EXCLUSIVE, PTE_PRESENT, PTE_PROTNONE, PTE_SPECIAL, PTE_WRITE, VM_READ,
  VM_WRITE,
} from './constants.js';
import { FAULT_FLAG_UNSHARE, FAULT_FLAG_WRITE, handleMmFault } from './fault.js';
import type { Handle, Kernel } from './kernel.js';
import type { Mm, Vma } from './mm.js';
import { pteSlot } from './walk.js';

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
  return !(k.frames.flags[pfn]! & PG_ANON_EXCLUSIVE);
}

/** Does this GUP write-fault pages first? FOLL_WRITE, 5.8's forced COW break, or seed 001's for pins. */
function breaksCow(k: Kernel, vma: Vma, req: GupRequest): boolean {
  if (req.write) return true;
  if (!isCowMapping(vma.flags)) return false;
  const mode = k.profile.gupCowBreak;
  return mode === 'get-and-pin' || (mode === 'pin' && req.pin);
}

/** try_grab_page(): take the reference or the pin on the frame. */
export function grab(k: Kernel, h: Handle, i: number, pfn: number, special: boolean, req: GupRequest, assertExclusive = true): void {
  h.frames[i] = pfn;
  if (special) {
    // The zero page: a FOLL_GET takes a reference on it; a FOLL_PIN took a pin on it too until
    // 6.5 (c8070b787519), which leaves it unpinned. Frame 0's refcount counts only these.
    const refs = !req.pin ? 1 : k.profile.pinSkipsZeroPage ? 0 : k.config.pinBias;
    k.frames.refcount[pfn]! += refs;
    h.refs[i] = refs;
    return;
  }
  const refs = req.pin ? k.config.pinBias : 1;
  if (assertExclusive) assertPinnedExclusive(k, pfn, req);
  k.frames.refcount[pfn]! += refs;
  h.refs[i] = refs;
}

/** sanity_check_pinned_pages(): an anonymous page is pinned only while PageAnonExclusive (5.19+). */
export function assertPinnedExclusive(k: Kernel, pfn: number, req: GupRequest): void {
  if (req.pin && k.profile.anonExclusive && k.frames.flags[pfn]! & PG_ANON && !(k.frames.flags[pfn]! & PG_ANON_EXCLUSIVE)) {
    k.emit('bug', -1, -1, pfn, -1, `VM_BUG_ON: pinning anonymous frame ${pfn} that is not PageAnonExclusive`);
  }
}

/**
 * gup_fast_pte_range() for one page: take it if the PTE allows it without a fault; false sends
 * the page to the slow path.
 */
function gupFastPage(k: Kernel, mm: Mm, vpn: number, h: Handle, i: number, req: GupRequest): boolean {
  const pfn = gupFastRead(k, mm, vpn, req);
  if (pfn < 0) return false;
  grab(k, h, i, pfn, false, req);
  return true;
}

/** The lockless PTE read of gup-fast: the frame it may take, or -1 to leave the page to the slow path. */
export function gupFastRead(k: Kernel, mm: Mm, vpn: number, req: GupRequest): number {
  const slot = pteSlot(k, mm, vpn);
  if (slot < 0) return -1;
  const bits = k.tables.bits[slot]!;
  // pte_access_permitted(): no user access through a PROT_NONE PTE.
  if (!(bits & PTE_PRESENT) || bits & (PTE_SPECIAL | PTE_PROTNONE)) return -1;
  const needWrite = req.write || k.profile.gupFastWritableOnly;
  if (needWrite && !(bits & PTE_WRITE)) return -1;
  const pfn = k.tables.entry[slot]!;
  if (!(bits & PTE_WRITE) && gupMustUnshare(k, null, pfn, req, false)) return -1;
  return pfn;
}

/** __get_user_pages() for one page: follow the PTE, fault it in as the rules require, grab it. */
export function gupSlowPage(k: Kernel, mm: Mm, vpn: number, h: Handle, i: number, req: GupRequest): number {
  const vma = mm.findVma(vpn);
  // check_vma_flags()
  if (vma === null || !(vma.flags & (req.write ? VM_WRITE : VM_READ))) return EFAULT;
  const forceWrite = breaksCow(k, vma, req);
  let broken = false;
  for (let tries = 0; tries <= MAX_RETRIES; tries++) {
    const slot = pteSlot(k, mm, vpn);
    const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
    let fault = -1;
    if (!(bits & PTE_PRESENT)) {
      fault = forceWrite ? FAULT_FLAG_WRITE : 0;
    } else if (forceWrite && !(bits & PTE_WRITE) && !broken) {
      // can_follow_write_pte() fails: write-fault (COW break). A R/O VMA (forced break) keeps
      // the PTE read-only, so one break is enough (FOLL_COW).
      fault = FAULT_FLAG_WRITE;
    } else {
      const pfn = k.tables.entry[slot]!;
      const special = (bits & PTE_SPECIAL) !== 0;
      if (!(bits & PTE_WRITE) && gupMustUnshare(k, vma, pfn, req, special)) {
        fault = FAULT_FLAG_UNSHARE;
      } else {
        grab(k, h, i, pfn, special, req);
        return OK;
      }
    }
    // faultin_page(); a forced COW break on a read-only VMA acts like FOLL_FORCE.
    const err = fault === FAULT_FLAG_WRITE && !(vma.flags & VM_WRITE)
      ? forcedWriteFault(k, mm, vma, vpn)
      : handleMmFault(k, mm, vpn, fault);
    if (err !== OK) return err;
    if (fault === FAULT_FLAG_WRITE) broken = true;
    if (fault === FAULT_FLAG_UNSHARE) {
      // After the unshare fault the page is exclusive (or a private copy): follow it again.
      const s2 = pteSlot(k, mm, vpn);
      const b2 = s2 < 0 ? 0 : k.tables.bits[s2]!;
      if (b2 & PTE_PRESENT && !(b2 & PTE_SPECIAL) && !gupMustUnshare(k, vma, k.tables.entry[s2]!, req, false)) {
        grab(k, h, i, k.tables.entry[s2]!, false, req);
        return OK;
      }
    }
  }
  k.emit('bug', mm.id, vpn, -1, -1, 'GUP kept faulting without making progress');
  return EFAULT;
}

/** A write fault on a VMA without VM_WRITE (FOLL_FORCE-like): break COW, keep the PTE read-only. */
function forcedWriteFault(k: Kernel, mm: Mm, vma: Vma, vpn: number): number {
  const saved = vma.flags;
  vma.flags |= VM_WRITE;
  const err = handleMmFault(k, mm, vpn, FAULT_FLAG_WRITE);
  vma.flags = saved;
  const slot = pteSlot(k, mm, vpn);
  if (slot >= 0) k.tables.bits[slot] = k.tables.bits[slot]! & ~PTE_WRITE;
  return err;
}

/** get_user_pages() / pin_user_pages() (and their _fast variants) over [lo, hi) of mm. */
/** A handle not yet registered (GUP in progress). */
export function newHandle(k: Kernel, mm: Mm, lo: number, n: number, req: GupRequest): Handle {
  return {
    id: k.handles.length, kind: req.kind, mm: mm.id, vpn: lo, frames: new Int32Array(n).fill(-1),
    refs: new Int32Array(n), write: req.write, longterm: req.longterm, released: false,
  };
}

export function getUserPages(k: Kernel, mm: Mm, lo: number, hi: number, req: GupRequest): GupResult {
  const n = hi - lo;
  const h = newHandle(k, mm, lo, n, req);
  // mm_set_has_pinned_flag(): FOLL_PIN has run on this mm (sticky).
  if (req.pin && k.profile.forkEarlyCow) mm.hasPinned = true;
  let fastPages = 0;
  let slowPages = 0;
  for (let i = 0; i < n; i++) {
    const vpn = lo + i;
    if (req.fast && gupFastPage(k, mm, vpn, h, i, req)) {
      fastPages++;
      continue;
    }
    const err = gupSlowPage(k, mm, vpn, h, i, req);
    if (err === NA) return { err, handle: null, fastPages, slowPages };
    if (err !== OK) {
      // Partial GUP: the caller gets an error; release what was taken.
      releaseHandle(k, h);
      k.emit('gup', mm.id, vpn, -1, -1, `${req.pin ? 'pin_user_pages' : 'get_user_pages'} failed at this page`);
      return { err, handle: null, fastPages, slowPages };
    }
    slowPages++;
  }
  k.handles.push(h);
  const what = req.pin ? `pin (FOLL_PIN${req.write ? '|FOLL_WRITE' : ''}${req.longterm ? '|FOLL_LONGTERM' : ''})` : `reference (FOLL_GET${req.write ? '|FOLL_WRITE' : ''})`;
  k.emit('gup', mm.id, lo, h.frames[0]!, -1,
    `${n} page(s) taken as a ${what}: ${fastPages} by gup-fast, ${slowPages} by the slow path; refcount +${req.pin ? k.config.pinBias : 1} each${zeroNote(h)}`);
  return { err: OK, handle: h, fastPages, slowPages };
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
    const pfn = h.frames[i]!;
    if (pfn >= 0 && h.refs[i]! > 0) k.putPage(pfn, h.refs[i]!);
  }
}
