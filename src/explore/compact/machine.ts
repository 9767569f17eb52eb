// The kernel side of the compact explorer: the same rules as the model core (src/core), for the
// compact engine's operations (step.ts), on one Int32Array state. Each function names the core
// function it mirrors; test/explore/compact.test.ts checks the two step by step.

import type { Profile } from '../../core/profile.js';
import {
  F_FLAGS, F_MAP, F_REF, F_VAL, FL_EXCL, FL_INUSE, H_HOLDER, H_KIND, H_LONG, H_PAGE, H_PFN, H_REFS, H_WRITE, HK_PIN,
  ANON_SHIFT, Layout, mkPte, P_PINNED, PG_PTE, PG_VMA, ptePfn, S_NHANDLES, VMA_DONTCOPY, VMA_FLAGS, VMA_MAPPED, VMA_RO, VMA_START, VMA_WIPE, ZERO_PTE, F_SIZE,
} from './layout.js';

export const OK = 0;
export const SIGSEGV = 1;
export const EFAULT = 2;
export const ENOMEM = 3;

const FAULT_WRITE = 1;
const FAULT_UNSHARE = 2;
const MAX_RETRIES = 4;

/** Violation kinds, a bit each. */
export const V_FAULT = 1;
export const V_LEAK = 2;
export const V_LOST = 4;
export const V_INCOHERENT = 8;
export const V_BUG = 16;
export const V_ACCOUNTING = 32;
export const V_UAF = 64;
export const VIOLATION_NAMES: readonly [number, string][] = [
  [V_FAULT, 'fault'], [V_LEAK, 'leak'], [V_LOST, 'lost-write'], [V_INCOHERENT, 'pin-incoherent'],
  [V_BUG, 'kernel-bug'], [V_ACCOUNTING, 'accounting'], [V_UAF, 'use-after-free'],
];

/** Events the explorer reports as reached ("sometimes" properties), a bit each. */
export const E_COW = 1;
export const E_REUSE = 2;
export const E_EARLY = 4;
export const E_PIN = 8;
export const E_VMSPLICE = 16;
export const E_FORK = 32;
export const E_SHARED_EXTRA = 64;
export const E_GUP = 128;
export const EVENT_NAMES: readonly [number, string][] = [
  [E_FORK, 'fork'], [E_PIN, 'pin'], [E_COW, 'cow-copy'], [E_VMSPLICE, 'vmsplice'], [E_EARLY, 'early-cow'],
  [E_REUSE, 'reuse'], [E_SHARED_EXTRA, 'shared-page-with-extra-reference'], [E_GUP, 'gup'],
];

/** A state too big for the layout (more frames, cells or values than the bounds allow). */
export class CompactBoundError extends Error {}

/** The profile's switches as plain fields, and the state being stepped. */
export class Machine {
  s: Int32Array;
  readonly wpReuse: 0 | 1 | 2;
  readonly anonExclusive: boolean;
  readonly gupCowBreak: 0 | 1 | 2;
  readonly gupFastWritableOnly: boolean;
  readonly forkEarlyCow: boolean;
  readonly unshareRoPin: 0 | 1 | 2;
  readonly wpFreeSwapcache: boolean;
  readonly mprotectWritable: boolean;
  readonly mmForbidsZeropage: boolean;
  readonly pinSkipsZeroPage: boolean;
  /** Violations of the current step (V_* bits) and events reached (E_* bits). */
  viol = 0;
  events = 0;
  /** The value the last load returned. */
  loaded = 0;
  /** Did the last operation change the state? (Loads that took no fault and reads through handles do not.) */
  changed = true;
  /** Did it change more than values (PTEs, frames' counts and flags, handles)? */
  structural = true;
  /** Did the last CPU access take a fault? */
  faulted = false;
  /** Inside a forced COW break on a read-only VMA: the fault path treats the VMA as writable. */
  forceWritable = false;

  constructor(readonly L: Layout, profile: Profile, readonly pinBias: number) {
    this.s = L.start();
    this.wpReuse = profile.wpReuse === 'mapcount' ? 0 : profile.wpReuse === 'pagecount' ? 1 : 2;
    this.anonExclusive = profile.anonExclusive;
    this.gupCowBreak = profile.gupCowBreak === 'none' ? 0 : profile.gupCowBreak === 'get-and-pin' ? 1 : 2;
    this.gupFastWritableOnly = profile.gupFastWritableOnly;
    this.forkEarlyCow = profile.forkEarlyCow;
    this.unshareRoPin = profile.unshareRoPin === 'none' ? 0 : profile.unshareRoPin === 'anon' ? 1 : 2;
    this.wpFreeSwapcache = profile.wpFreeSwapcache;
    this.mprotectWritable = profile.mprotectWritable;
    this.mmForbidsZeropage = profile.mmForbidsZeropage;
    this.pinSkipsZeroPage = profile.pinSkipsZeroPage;
  }
}

/** alloc_page() (FrameTable.alloc): the lowest free frame record, an anonymous page. */
export function allocFrame(m: Machine): number {
  const s = m.s;
  const L = m.L;
  for (let pfn = 1, b = L.frameBase + F_SIZE; pfn < L.frames; pfn++, b += F_SIZE) {
    if (s[b + F_FLAGS] !== 0) continue;
    s[b + F_REF] = 1;
    s[b + F_MAP] = 0;
    s[b + F_FLAGS] = FL_INUSE | (m.anonExclusive ? FL_EXCL : 0);
    s[b + F_VAL] = 0;
    return pfn;
  }
  throw new CompactBoundError('more frames in use than the bounds allow');
}

/** put_page() (Kernel.putPage): drop references; free the frame at 0. */
export function putPage(m: Machine, pfn: number, refs: number): void {
  const b = m.L.frame(pfn);
  const s = m.s;
  const left = s[b + F_REF]! - refs;
  s[b + F_REF] = left;
  if (left === 0) {
    s[b + F_MAP] = 0;
    s[b + F_FLAGS] = 0;
    s[b + F_VAL] = 0;
  } else if (left < 0) {
    m.viol |= V_BUG;
  }
}

const mapped = (m: Machine, p: number, i: number): boolean => (m.s[m.L.page(p, i) + PG_VMA]! & VMA_MAPPED) !== 0;
const vmaWord = (m: Machine, p: number, i: number): number => m.s[m.L.page(p, i) + PG_VMA]!;

/** The first page of the VMA holding (mapped) page i. */
function vmaFirst(m: Machine, p: number, i: number): number {
  while (!(vmaWord(m, p, i) & VMA_START)) i--;
  return i;
}

/** The last page of the VMA holding (mapped) page i. */
function vmaLast(m: Machine, p: number, i: number): number {
  while (i + 1 < m.L.pages && (vmaWord(m, p, i + 1) & (VMA_MAPPED | VMA_START)) === VMA_MAPPED) i++;
  return i;
}

/** Give pages lo..hi (one VMA) the anon_vma `id`. */
function setAnonId(m: Machine, p: number, lo: number, hi: number, id: number): void {
  for (let j = lo; j <= hi; j++) {
    const at = m.L.page(p, j) + PG_VMA;
    m.s[at] = (m.s[at]! & ((1 << ANON_SHIFT) - 1)) | (id << ANON_SHIFT);
  }
}

/** A new anon_vma id of process p (ids only tell VMAs of one process apart). */
function newAnonId(m: Machine, p: number): number {
  let max = 0;
  for (let j = 0; j < m.L.pages; j++) max = Math.max(max, vmaWord(m, p, j) >>> ANON_SHIFT);
  return max + 1;
}

/** Is the VMA of page i writable (or made so for a FOLL_FORCE-like forced COW break)? */
const vmaWritable = (m: Machine, p: number, i: number): boolean => m.forceWritable || !(vmaWord(m, p, i) & VMA_RO);

/**
 * anon_vma_prepare(): the VMA holding page i gets an anon_vma, a touching neighbour's with the
 * same flags if it has one (find_mergeable_anon_vma), else a new one.
 */
function anonVmaPrepare(m: Machine, p: number, i: number): void {
  const w = vmaWord(m, p, i);
  if (w >>> ANON_SHIFT) return;
  const lo = vmaFirst(m, p, i);
  const hi = vmaLast(m, p, i);
  // The VMA's flags as they are now (a forced COW break has set VM_WRITE for its fault).
  const flags = w & VMA_FLAGS & (m.forceWritable ? ~VMA_RO : ~0);
  const id = neighbourAnon(m, p, lo - 1, flags) || neighbourAnon(m, p, hi + 1, flags) || newAnonId(m, p);
  setAnonId(m, p, lo, hi, id);
}

/** The anon_vma of the VMA at page n if it touches and has these flags, else 0. */
function neighbourAnon(m: Machine, p: number, n: number, flags: number): number {
  if (n < 0 || n >= m.L.pages || !mapped(m, p, n)) return 0;
  const nw = vmaWord(m, p, n);
  return (nw & VMA_FLAGS) === flags ? nw >>> ANON_SHIFT : 0;
}

/** handle_mm_fault() for page i of process p (a private rw mapping, or none). */
export function handleMmFault(m: Machine, p: number, i: number, flags: number): number {
  const s = m.s;
  const at = m.L.page(p, i);
  if (!(s[at + PG_VMA]! & VMA_MAPPED) || (flags & FAULT_WRITE && !vmaWritable(m, p, i))) return SIGSEGV;
  const pte = s[at + PG_PTE]!;
  // handle_pte_fault()
  if (pte === 0) {
    if (flags & FAULT_UNSHARE) return OK;
    return doAnonymousPage(m, p, i, (flags & FAULT_WRITE) !== 0);
  }
  if (flags & (FAULT_WRITE | FAULT_UNSHARE) && !(pte & 1)) return doWpPage(m, p, i, (flags & FAULT_UNSHARE) !== 0);
  return OK;
}

/** do_anonymous_page(): the zero page for a read (unless mm_forbids_zeropage()), else a new exclusive page. */
function doAnonymousPage(m: Machine, p: number, i: number, write: boolean): number {
  const at = m.L.page(p, i);
  if (!write && !m.mmForbidsZeropage) {
    m.s[at + PG_PTE] = ZERO_PTE;
    return OK;
  }
  const pfn = allocFrame(m);
  anonVmaPrepare(m, p, i);
  m.s[m.L.frame(pfn) + F_MAP] = 1;
  m.s[at + PG_PTE] = mkPte(pfn, vmaWritable(m, p, i));
  return OK;
}

/** wpCanReuse(): do_wp_page()'s reuse test for an anonymous page, per profile. */
function wpCanReuse(m: Machine, pfn: number): boolean {
  const s = m.s;
  const b = m.L.frame(pfn);
  switch (m.wpReuse) {
    case 2:
      return (s[b + F_FLAGS]! & FL_EXCL) !== 0 || s[b + F_REF] === 1;
    case 1:
      return m.wpFreeSwapcache ? s[b + F_REF] === 1 : s[b + F_REF] === 1 && s[b + F_MAP] === 1;
    default:
      return s[b + F_MAP]! <= 1;
  }
}

/** do_wp_page() on a present, write-protected PTE of a private mapping. */
function doWpPage(m: Machine, p: number, i: number, unshare: boolean): number {
  const s = m.s;
  const at = m.L.page(p, i);
  const pfn = ptePfn(s[at + PG_PTE]!);
  if (pfn !== 0 && wpCanReuse(m, pfn)) {
    if (m.anonExclusive) s[m.L.frame(pfn) + F_FLAGS] = s[m.L.frame(pfn) + F_FLAGS]! | FL_EXCL;
    if (unshare) return OK;
    // wp_page_reuse()
    m.events |= E_REUSE;
    if (vmaWritable(m, p, i)) s[at + PG_PTE] = s[at + PG_PTE]! | 1;
    return OK;
  }
  return wpPageCopy(m, p, i, unshare);
}

/** wp_page_copy(): a private copy (a zeroed page in place of the zero page). */
function wpPageCopy(m: Machine, p: number, i: number, unshare: boolean): number {
  const s = m.s;
  const at = m.L.page(p, i);
  const old = ptePfn(s[at + PG_PTE]!);
  const pfn = allocFrame(m);
  anonVmaPrepare(m, p, i);
  const nb = m.L.frame(pfn);
  s[nb + F_VAL] = old === 0 ? 0 : s[m.L.frame(old) + F_VAL]!;
  s[nb + F_MAP] = 1;
  s[at + PG_PTE] = mkPte(pfn, !unshare && vmaWritable(m, p, i));
  if (old !== 0) {
    s[m.L.frame(old) + F_MAP]!--;
    putPage(m, old, 1);
  }
  m.events |= E_COW;
  return OK;
}

/** cpuAccess(): a load or store, faulting until the MMU allows it. Loads leave the value in m.loaded. */
export function cpuAccess(m: Machine, p: number, i: number, write: boolean, value: number): number {
  const s = m.s;
  const at = m.L.page(p, i);
  m.faulted = false;
  for (let tries = 0; tries <= MAX_RETRIES; tries++) {
    const pte = s[at + PG_PTE]!;
    if (s[at + PG_VMA]! & VMA_MAPPED && pte !== 0 && (!write || (pte & 1 && !(s[at + PG_VMA]! & VMA_RO)))) {
      const pfn = ptePfn(pte);
      if (write) s[m.L.frame(pfn) + F_VAL] = value;
      else m.loaded = pfn === 0 ? 0 : s[m.L.frame(pfn) + F_VAL]!;
      return OK;
    }
    m.changed = true;
    m.faulted = true;
    const err = handleMmFault(m, p, i, write ? FAULT_WRITE : 0);
    if (err !== OK) return err;
  }
  m.viol |= V_BUG;
  return SIGSEGV;
}

/** dup_mmap() + copy_pte_range() of a private mapping: child slot c gets p's VMAs and PTEs. */
export function dupMmap(m: Machine, p: number, c: number): void {
  const s = m.s;
  const L = m.L;
  const earlyCowPossible = m.forkEarlyCow && s[L.proc(p) + P_PINNED] !== 0;
  let childAnon = 0;
  let anon = 0;
  for (let i = 0; i < L.pages; i++) {
    const pa = L.page(p, i);
    const ca = L.page(c, i);
    const vma = s[pa + PG_VMA]!;
    s[ca + PG_PTE] = 0;
    // MADV_DONTFORK: the child has no mapping here.
    if (!(vma & VMA_MAPPED) || vma & VMA_DONTCOPY) {
      s[ca + PG_VMA] = 0;
      continue;
    }
    // The child's VMAs are copies; anon_vma_fork() gives each that has one its own anon_vma,
    // except MADV_WIPEONFORK ones, which start empty.
    if (vma & VMA_START) anon = vma >>> ANON_SHIFT && !(vma & VMA_WIPE) ? ++childAnon : 0;
    s[ca + PG_VMA] = (vma & ((1 << ANON_SHIFT) - 1)) | (anon << ANON_SHIFT);
    // vma_needs_copy(): only mappings with an anon_vma have PTEs worth copying.
    if (!(vma >>> ANON_SHIFT) || vma & VMA_WIPE) continue;
    const pte = s[pa + PG_PTE]!;
    if (pte === 0) continue;
    const pfn = ptePfn(pte);
    if (pfn === 0) {
      s[ca + PG_PTE] = ZERO_PTE; // the zero page: no refcount, no mapcount
      continue;
    }
    const fb = L.frame(pfn);
    const fl = s[fb + F_FLAGS]!;
    // copy_present_pte(): a maybe-pinned exclusive page cannot be shared (folio_try_dup_anon_rmap_pte).
    if (earlyCowPossible && s[fb + F_REF]! >= m.pinBias && (!m.anonExclusive || fl & FL_EXCL)) {
      // copy_present_page(): the child gets its own copy now; the parent's PTE is untouched.
      const n = allocFrame(m);
      s[L.frame(n) + F_VAL] = s[fb + F_VAL]!;
      s[L.frame(n) + F_MAP] = 1;
      s[ca + PG_PTE] = mkPte(n, !(vma & VMA_RO)); // newPageBits()
      m.events |= E_EARLY;
      continue;
    }
    s[fb + F_FLAGS] = fl & ~FL_EXCL;
    s[fb + F_REF]!++;
    s[fb + F_MAP]!++;
    s[pa + PG_PTE] = pte & ~1; // both lose write access
    s[ca + PG_PTE] = pte & ~1;
  }
}

/** zap_pte_range() of one page: drop the mapping and its reference. */
export function zapPage(m: Machine, p: number, i: number): void {
  const s = m.s;
  const at = m.L.page(p, i);
  const pte = s[at + PG_PTE]!;
  if (pte === 0) return;
  s[at + PG_PTE] = 0;
  const pfn = ptePfn(pte);
  if (pfn === 0) return;
  s[m.L.frame(pfn) + F_MAP]!--;
  putPage(m, pfn, 1);
}

/** unmapRegion() of one page: zap it, and the VMA no longer covers it. */
export function unmapPage(m: Machine, p: number, i: number): void {
  const at = m.L.page(p, i);
  if (!(m.s[at + PG_VMA]! & VMA_MAPPED)) return;
  zapPage(m, p, i);
  m.s[at + PG_VMA] = 0;
  // The VMA was split: what follows the hole starts a VMA of its own.
  if (i + 1 < m.L.pages && mapped(m, p, i + 1)) m.s[m.L.page(p, i + 1) + PG_VMA] = vmaWord(m, p, i + 1) | VMA_START;
}

/**
 * do_mprotect_pkey() of page i: split it into a VMA of its own, set its protection,
 * change_protection() of its PTE, merge what can merge again. ENOMEM where nothing is mapped.
 */
export function mprotect(m: Machine, p: number, i: number, ro: boolean): number {
  const s = m.s;
  const L = m.L;
  const at = L.page(p, i);
  if (!(s[at + PG_VMA]! & VMA_MAPPED)) return ENOMEM;
  const wasRo = (s[at + PG_VMA]! & VMA_RO) !== 0;
  splitOff(m, p, i);
  s[at + PG_VMA] = (s[at + PG_VMA]! & ~VMA_RO) | (ro ? VMA_RO : 0);
  // change_pte_range(): read-only drops write access; read-write gives it back at once only to
  // exclusive anonymous pages, from 6.0 (can_change_pte_writable; no soft-dirty tracking here).
  // A VMA that has the protection already is left alone (mprotect_fixup: newflags == oldflags).
  const pte = s[at + PG_PTE]!;
  if (pte !== 0 && wasRo !== ro) {
    if (ro) s[at + PG_PTE] = pte & ~1;
    else if (!(pte & 1) && ptePfn(pte) !== 0 && m.mprotectWritable && s[L.frame(ptePfn(pte)) + F_FLAGS]! & FL_EXCL) s[at + PG_PTE] = pte | 1;
  }
  mergeVmas(m, p);
  return OK;
}

/** Mm.splitRange() of page i: it becomes a VMA of its own. */
function splitOff(m: Machine, p: number, i: number): void {
  const L = m.L;
  if (i + 1 < L.pages && mapped(m, p, i + 1)) m.s[L.page(p, i + 1) + PG_VMA] = vmaWord(m, p, i + 1) | VMA_START;
  m.s[L.page(p, i) + PG_VMA] = vmaWord(m, p, i) | VMA_START;
}

/** madvise(MADV_DONTFORK / MADV_WIPEONFORK) of page i: its VMA gets the flag (nothing where unmapped). */
export function madviseFlag(m: Machine, p: number, i: number, flag: number): void {
  if (!mapped(m, p, i)) return;
  splitOff(m, p, i);
  m.s[m.L.page(p, i) + PG_VMA] = vmaWord(m, p, i) | flag;
  mergeVmas(m, p);
}

/** Mm.mergeVmas(): touching VMAs with the same flags and compatible anon_vmas become one. */
function mergeVmas(m: Machine, p: number): void {
  for (let j = 1; j < m.L.pages; j++) {
    const w = vmaWord(m, p, j);
    if (!(w & VMA_START) || !(w & VMA_MAPPED) || !mapped(m, p, j - 1)) continue;
    const pw = vmaWord(m, p, j - 1);
    const a = pw >>> ANON_SHIFT;
    const b = w >>> ANON_SHIFT;
    if ((w & VMA_FLAGS) !== (pw & VMA_FLAGS) || !(a === b || a === 0 || b === 0)) continue;
    m.s[m.L.page(p, j) + PG_VMA] = w & ~VMA_START;
    setAnonId(m, p, vmaFirst(m, p, j - 1), vmaLast(m, p, j), a || b);
  }
}

/** exit_mmap(): zap every page, drop every VMA. */
export function exitMmap(m: Machine, p: number): void {
  for (let i = 0; i < m.L.pages; i++) {
    zapPage(m, p, i);
    m.s[m.L.page(p, i) + PG_VMA] = 0;
  }
}

/** gup_must_unshare(): a R/O pin of a page that may be shared unshares it first. */
function gupMustUnshare(m: Machine, pfn: number, pin: boolean, write: boolean): boolean {
  if (m.unshareRoPin === 0 || !pin || write) return false;
  // The zero page: only long-term pins (all of the explorer's) in COW mappings, from 6.2.
  if (pfn === 0) return m.unshareRoPin === 2;
  return !(m.s[m.L.frame(pfn) + F_FLAGS]! & FL_EXCL);
}

/** try_grab_page() into handle record h. */
function grab(m: Machine, h: number, pfn: number, pin: boolean): void {
  const s = m.s;
  const hb = m.L.handle(h);
  s[hb + H_PFN] = pfn;
  if (pfn === 0) {
    // The zero page (no frame record: its refcount is the sum of these): a FOLL_GET reference;
    // a pin until 6.5.
    s[hb + H_REFS] = !pin ? 1 : m.pinSkipsZeroPage ? 0 : m.pinBias;
    return;
  }
  const fb = m.L.frame(pfn);
  // sanity_check_pinned_pages()
  if (pin && m.anonExclusive && !(s[fb + F_FLAGS]! & FL_EXCL)) m.viol |= V_BUG;
  const refs = pin ? m.pinBias : 1;
  s[fb + F_REF] = s[fb + F_REF]! + refs;
  s[hb + H_REFS] = refs;
}

/** gupSlowPage(): follow the PTE, fault as the profile's COW rules require, grab. */
function gupSlowPage(m: Machine, p: number, i: number, h: number, pin: boolean, write: boolean): number {
  const s = m.s;
  const at = m.L.page(p, i);
  // check_vma_flags()
  if (!(s[at + PG_VMA]! & VMA_MAPPED) || (write && s[at + PG_VMA]! & VMA_RO)) return EFAULT;
  const forceWrite = write || m.gupCowBreak === 1 || (m.gupCowBreak === 2 && pin);
  let broken = false;
  for (let tries = 0; tries <= MAX_RETRIES; tries++) {
    const pte = s[at + PG_PTE]!;
    let fault: number;
    if (pte === 0) {
      fault = forceWrite ? FAULT_WRITE : 0;
    } else if (forceWrite && !(pte & 1) && !broken) {
      fault = FAULT_WRITE;
    } else {
      const pfn = ptePfn(pte);
      if (!(pte & 1) && gupMustUnshare(m, pfn, pin, write)) {
        fault = FAULT_UNSHARE;
      } else {
        grab(m, h, pfn, pin);
        return OK;
      }
    }
    let err: number;
    if (fault === FAULT_WRITE && s[at + PG_VMA]! & VMA_RO) {
      // forcedWriteFault(): a forced COW break on a read-only VMA (FOLL_FORCE-like) breaks COW
      // as a write would and leaves the PTE read-only.
      m.forceWritable = true;
      err = handleMmFault(m, p, i, fault);
      m.forceWritable = false;
      s[at + PG_PTE] = s[at + PG_PTE]! & ~1;
    } else {
      err = handleMmFault(m, p, i, fault);
    }
    if (err !== OK) return err;
    if (fault === FAULT_WRITE) broken = true;
    if (fault === FAULT_UNSHARE) {
      const pte2 = s[at + PG_PTE]!;
      if (pte2 !== 0 && ptePfn(pte2) !== 0 && !gupMustUnshare(m, ptePfn(pte2), pin, write)) {
        grab(m, h, ptePfn(pte2), pin);
        return OK;
      }
    }
  }
  m.viol |= V_BUG;
  return EFAULT;
}

/**
 * getUserPages() of one page into a new handle record (the next free one): a FOLL_PIN (`pin`,
 * long-term), vmsplice's FOLL_GET through gup-fast (`kind` HK_PIPE) or a FOLL_GET reference
 * (HK_GUP). `fast` tries gup-fast first. Returns OK, or an error with no handle.
 */
export function getUserPages(m: Machine, p: number, i: number, kind: number, write: boolean, fast: boolean): number {
  const s = m.s;
  const L = m.L;
  const pin = kind === HK_PIN;
  const h = s[S_NHANDLES]!;
  const hb = L.handle(h);
  s[hb + H_KIND] = kind;
  s[hb + H_HOLDER] = p;
  s[hb + H_PAGE] = i;
  s[hb + H_PFN] = -1;
  s[hb + H_REFS] = 0;
  s[hb + H_WRITE] = write ? 1 : 0;
  s[hb + H_LONG] = pin ? 1 : 0;
  // mm_set_has_pinned_flag()
  if (pin && m.forkEarlyCow) s[L.proc(p) + P_PINNED] = 1;
  if (fast) {
    // gupFastRead(): a present, normal PTE, writable where the access or the profile needs it,
    // and not one a R/O pin must unshare, is taken as it is.
    const pte = s[L.page(p, i) + PG_PTE]!;
    const pfn = ptePfn(pte);
    if (pte !== 0 && pfn !== 0 && (pte & 1 || (!write && !m.gupFastWritableOnly && !gupMustUnshare(m, pfn, pin, write)))) {
      grab(m, h, pfn, pin);
      s[S_NHANDLES] = h + 1;
      return OK;
    }
  }
  const err = gupSlowPage(m, p, i, h, pin, write);
  if (err !== OK) {
    releaseHandle(m, h); // a partial GUP gives back what it took
    return err;
  }
  s[S_NHANDLES] = h + 1;
  return OK;
}

/** releaseHandle(): unpin_user_pages() / put_page() of handle record h. */
export function releaseHandle(m: Machine, h: number): void {
  const hb = m.L.handle(h);
  const pfn = m.s[hb + H_PFN]!;
  if (pfn > 0 && m.s[hb + H_REFS]! > 0) putPage(m, pfn, m.s[hb + H_REFS]!);
}
