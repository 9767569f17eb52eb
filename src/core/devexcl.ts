// Device-exclusive entries (seed 002): make_device_exclusive_range (5.14) / make_device_exclusive
// (6.15). The entries themselves, the CPU fault that restores the PTE after notifying the device
// (remove_device_exclusive_entry / restore_exclusive_pte) and the MMU notifier that tells the
// device it lost exclusive access live in exclusive.ts (shared with fork, zap and the fault path).

import { EBUSY, EOPNOTSUPP, HPAGE_PMD_NR, NA, OK, PG_ANON, PG_LARGE, PTE_DEVICE_EXCLUSIVE, PTE_PRESENT, PTE_SPECIAL, PTE_WRITE, TABLE_MASK } from './constants.js';
import { gupSlowPage, newHandle, type GupRequest } from './gup.js';
import type { Handle, Kernel } from './kernel.js';
import { vmaStartPgoff, type Mm, type Vma } from './mm.js';
import { pteSlot, setPte } from './walk.js';
import { breakCowRange } from './cowpt.js';
import { splitHugePmdRange } from './huge.js';
import { exclusiveBits } from './exclusive.js';
import { profileHas } from './profile.js';

/** What makeDeviceExclusive() did: the driver's answer, and where it stopped. */
export interface DeviceExclusiveResult {
  /**
   * OK (every page held), the errno of the page that stopped it (a GUP failure: EFAULT, ENOMEM;
   * 6.15: EOPNOTSUPP, not anonymous), EBUSY where 5.14's make_device_exclusive_range() gave no
   * errno (a short count, pages left NULL: what test_hmm's dmirror_exclusive() answers), or NA.
   */
  err: number;
  handle: Handle | null;
  /** The page (index in the range) that stopped it, or -1: the pages from there on are untouched. */
  stoppedAt: number;
  /** That page's own errno (GUP's, or 6.15's EOPNOTSUPP), or OK. */
  stopErr: number;
}

/**
 * make_device_exclusive_range() (5.14, seed 002) / make_device_exclusive() (6.15) over [lo, hi)
 * of mm: GUP each page for write (breaking COW), then replace the mapping by a device-exclusive
 * entry. 5.14: get_user_pages_remote() over the range stops at the first page it cannot fault
 * (a short count: the pages after it untouched, or its errno if it is the first); each page it
 * got is converted or left NULL (the loop goes on): every mapping of the page, found by an rmap
 * walk, and the mapcount dropped; converted only if the target was mapped writable and no mapping
 * is left; the driver holds the converted pages only if GUP got them all. 6.15: one page per call, the driver's loop stops at the first error (test_hmm's
 * dmirror_exclusive()); the one PTE, mapcount untouched; a page that is not anonymous is EOPNOTSUPP.
 */
export function makeDeviceExclusive(k: Kernel, mm: Mm, lo: number, hi: number): DeviceExclusiveResult {
  if (!profileHas(k.profile, 'device-exclusive')) return { err: NA, handle: null, stoppedAt: -1, stopErr: OK };
  const n = hi - lo;
  const req: GupRequest = { pin: false, write: true, longterm: false, fast: false, kind: 'gup' };
  const grant = newHandle(k, mm, lo, n, { ...req, kind: 'exclusive' });
  grant.refs.fill(0);
  grant.revoked = new Uint8Array(n).fill(1);
  const t = k.tables;
  const f = k.frames;
  const v615 = k.profile.deviceExclusive === 'v6.15';
  let stoppedAt = -1;
  let stopErr = OK;
  breakCowRange(k, mm, lo, hi);
  splitHugePmdRange(k, mm, lo, hi, 'make_device_exclusive: GUP with FOLL_SPLIT_PMD');
  // 5.14-6.14: get_user_pages_remote() over the whole range first, then each page it got is
  // converted; 6.15: a page at a time (GUP, then the conversion), the driver's loop.
  // 5.14: the pages GUP got, and the one it stopped at (its errno) last.
  const gupped: PageGot[] = [];
  if (!v615) {
    for (let i = 0; i < n; i++) {
      const g = gupForDevice(k, mm, lo + i, req);
      gupped.push(g);
      if (g.err !== OK) break;
    }
  }
  for (let i = 0; i < (v615 ? n : gupped.length); i++) {
    const vpn = lo + i;
    const g = v615 ? gupForDevice(k, mm, vpn, req) : gupped[i]!;
    if (g.err !== OK) {
      stoppedAt = i;
      stopErr = g.err;
      break;
    }
    const { pfn, refs } = g;
    const anon = pfn > 0 && (f.flags[pfn]! & PG_ANON) !== 0;
    let ok = false;
    if (v615) {
      if (!anon) {
        k.putPage(pfn, refs);
        stoppedAt = i;
        stopErr = EOPNOTSUPP;
        break;
      }
      // The second walk finds the page GUP just faulted in, mapped writable by this PTE (the
      // kernel would GUP again otherwise: `goto retry`).
      const slot = pteSlot(k, mm, vpn);
      const bits = slot < 0 ? 0 : t.bits[slot]!;
      if (bits & PTE_PRESENT && bits & PTE_WRITE && t.entry[slot] === pfn) {
        setPte(k, slot, pfn, exclusiveBits(k, bits));
        ok = true;
      }
    } else if (anon && !isTailPage(k, pfn)) {
      // The rmap walk (page_make_device_exclusive / folio_make_device_exclusive): every PTE
      // mapping a page of the folio, in every mm, becomes an exclusive entry of its page (the
      // head of a THP converts the PTEs of all 512); anonymous pages only, and never a tail page
      // (PageTail: left NULL). The walk visits the mappings in rmap_walk_anon()'s order and ends
      // at an entry it finds not present (one made before).
      const nr = f.flags[pfn]! & PG_LARGE ? HPAGE_PMD_NR : 1; // pfn is the head of its folio
      let targetWritable = false;
      for (const { mm: other, vma } of anonWalkOrder(k)) {
        const done = forEachMapping(k, other, vma, pfn, nr, (slot, v, p) => {
          const bits = t.bits[slot]!;
          if (other === mm && v === vpn && bits & PTE_WRITE) targetWritable = true;
          setPte(k, slot, p, exclusiveBits(k, bits));
          f.removeRmapPte(p, other.id); // page_remove_rmap(): the entry keeps the reference, not the mapping
        });
        if (!done) break; // rmap_one returned false: rmap_walk_anon() stops, the VMAs after it unvisited
      }
      // Held only if the target was mapped writable and nothing maps the head (5.14-5.17
      // page_mapcount()) or the folio (5.18-6.14 folio_mapcount()): they differ only after a walk
      // that ended early.
      ok = targetWritable && (k.profile.deviceExclusiveHeld === 'page' ? f.pageMapcount(pfn) : f.folioMapcount(pfn)) === 0;
    }
    k.putPage(pfn, refs); // the driver puts the GUP reference once the device maps the page
    if (ok) {
      grant.frames[i] = pfn;
      grant.revoked![i] = 0;
    }
  }
  if (!v615 && stoppedAt > 0) {
    // A short count: the driver maps none of the pages (test_hmm's dmirror_exclusive() calls
    // dmirror_atomic_map() only when every page was GUP'd); their entries stay in the PTEs.
    grant.frames.fill(-1);
    grant.revoked!.fill(1);
  }
  k.handles.push(grant);
  // Counted by a loop: filter() would make a typed array per call.
  let got = 0;
  for (let i = 0; i < n; i++) if (grant.revoked![i] === 0) got++;
  if (k.tracing) k.emit('gup', mm.id, lo, grant.frames[0]!, -1, `device exclusive: ${got} of ${n} page(s) now held by the device (${k.profile.deviceExclusive} rules)` +
    (stoppedAt < 0 ? '' : `; stopped at page ${stoppedAt}, the rest untouched`));
  // 5.14: only a GUP failure at the first page is an errno (make_device_exclusive_range()'s return).
  const err = got === n ? OK : stoppedAt < 0 || (!v615 && stoppedAt > 0) ? EBUSY : stopErr;
  return { err, handle: grant, stoppedAt, stopErr };
}

/** A page GUP got for the device (its frame and the references taken), or the errno that stopped it. */
interface PageGot {
  err: number;
  pfn: number;
  refs: number;
}

/** get_user_pages() of one page with FOLL_GET | FOLL_WRITE (breaking COW), as the driver asks. */
function gupForDevice(k: Kernel, mm: Mm, vpn: number, req: GupRequest): PageGot {
  const tmp = devicePage;
  tmp.mm = mm.id;
  tmp.vpn = vpn;
  tmp.frames[0] = -1;
  tmp.refs[0] = 0;
  const err = gupSlowPage(k, mm, vpn, tmp, 0, req);
  return { err, pfn: tmp.frames[0]!, refs: tmp.refs[0]! };
}

/**
 * The one-page handle gupForDevice lends gupSlowPage, reused (a handle's two typed arrays per
 * page otherwise): read back at once, never registered (k.handles) nor kept by a state. Its
 * arrays are holey, as newHandle's (one elements kind at the sites that read handles).
 */
const devicePage: Handle = {
  id: -1, kind: 'gup', mm: -1, vpn: -1, frames: new Array<number>(1).fill(-1), refs: new Array<number>(1).fill(0),
  write: true, longterm: false, released: false, revoked: null, vpns: null,
};

/** A tail page of a large folio (PageTail): make_device_exclusive_range() leaves it NULL (5.14-6.14). */
function isTailPage(k: Kernel, pfn: number): boolean {
  return (k.frames.flags[pfn]! & PG_LARGE) !== 0 && (pfn & (HPAGE_PMD_NR - 1)) !== 0;
}

/** A VMA the rmap walk visits, and its mm. */
interface WalkedVma {
  mm: Mm;
  vma: Vma;
}

/**
 * rmap_walk_anon()'s order over an anonymous folio's mappings: anon_vma_interval_tree_foreach()
 * visits the anon_vma's VMAs in the interval tree's order, by vm_pgoff (vma_start_pgoff) ascending,
 * not by address (mremap keeps a moved range's vm_pgoff); ties in the order they last entered the
 * tree (an equal key goes right): Vma.anonSeq, set at anon_vma_prepare, fork, split, merge and
 * mremap's copy (a child's VMA after its parent's; a VMA whose bounds changed after its ties).
 * Every VMA with an anon_vma, in every live mm: those the folio's anon_vma does not link map
 * none of it, so their place does not count.
 */
/** Whether a device-exclusive grant walks the folio's rmap (5.14-6.14; 6.15 converts only the page's own PTE). */
export function walksAnonRmap(k: Kernel): boolean {
  return k.profile.deviceExclusive !== 'none' && k.profile.deviceExclusive !== 'v6.15';
}

function anonWalkOrder(k: Kernel): WalkedVma[] {
  const out: WalkedVma[] = [];
  for (const mm of k.mms) {
    if (!mm.alive) continue;
    for (const vma of mm.vmas) if (vma.anonVma) out.push({ mm, vma });
  }
  return out.sort(byTreeOrder);
}

/** The anon_vma interval tree's order: vm_pgoff of the start, then the insertion order. */
function byTreeOrder(a: WalkedVma, b: WalkedVma): number {
  return vmaStartPgoff(a.vma) - vmaStartPgoff(b.vma) || a.vma.anonSeq - b.vma.anonSeq;
}

/**
 * page_vma_mapped_walk() over one VMA: every present PTE of it that maps a frame of [lo, lo + n),
 * by address, with its frame. False, at once, at a device-exclusive entry of one of them (the
 * conversion stops the rmap walk there: page_make_device_exclusive_one returns false).
 */
function forEachMapping(k: Kernel, mm: Mm, vma: Vma, lo: number, n: number, fn: (slot: number, vpn: number, pfn: number) => void): boolean {
  const t = k.tables;
  for (let v = vma.start; v < vma.end; ) {
    const slot = pteSlot(k, mm, v);
    if (slot < 0) {
      v = (v | TABLE_MASK) + 1;
      continue;
    }
    const p = t.entry[slot]!;
    const bits = t.bits[slot]!;
    if (p >= lo && p < lo + n) {
      if (bits & PTE_DEVICE_EXCLUSIVE) return false;
      if (bits & PTE_PRESENT && !(bits & PTE_SPECIAL)) fn(slot, v, p);
    }
    v++;
  }
  return true;
}

export { mmuNotify, removeDeviceExclusiveEntry, restoreExclusivePte, zapExclusiveEntry } from './exclusive.js';
