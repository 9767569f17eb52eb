// Device-exclusive entries (seed 002): make_device_exclusive_range (5.14) / make_device_exclusive
// (6.15). The entries themselves, the CPU fault that restores the PTE after notifying the device
// (remove_device_exclusive_entry / restore_exclusive_pte) and the MMU notifier that tells the
// device it lost exclusive access live in exclusive.ts (shared with fork, zap and the fault path).

import { EBUSY, EOPNOTSUPP, NA, OK, PG_ANON, PTE_PRESENT, PTE_WRITE, TABLE_MASK } from './constants.js';
import { gupSlowPage, newHandle, type GupRequest } from './gup.js';
import type { Handle, Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import { pteSlot, setPte } from './walk.js';
import { breakCowRange } from './cowpt.js';
import { splitHugePmdRange } from './huge.js';
import { exclusiveBits } from './exclusive.js';

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
  if (k.profile.deviceExclusive === 'none') return { err: NA, handle: null, stoppedAt: -1, stopErr: OK };
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
  for (let i = 0; i < n; i++) {
    const vpn = lo + i;
    const tmp = newHandle(k, mm, vpn, 1, req);
    const err = gupSlowPage(k, mm, vpn, tmp, 0, req); // FOLL_GET | FOLL_WRITE
    if (err !== OK) {
      stoppedAt = i;
      stopErr = err;
      break;
    }
    const pfn = tmp.frames[0]!;
    const anon = pfn > 0 && (f.flags[pfn]! & PG_ANON) !== 0;
    let ok = false;
    if (v615) {
      if (!anon) {
        k.putPage(pfn, tmp.refs[0]!);
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
    } else if (anon) {
      // The rmap walk: every present PTE mapping the page, in every mm, becomes an exclusive entry
      // (anonymous pages only: make_device_exclusive_range() refused the others).
      let targetWritable = false;
      for (const other of k.mms) {
        if (!other.alive) continue;
        forEachMapping(k, other, pfn, (slot, v) => {
          const bits = t.bits[slot]!;
          if (other === mm && v === vpn && bits & PTE_WRITE) targetWritable = true;
          setPte(k, slot, pfn, exclusiveBits(k, bits));
          f.removeRmapPte(pfn, other.id); // page_remove_rmap(): the entry keeps the reference, not the mapping
        });
      }
      ok = targetWritable && f.mapcount[pfn] === 0;
    }
    k.putPage(pfn, tmp.refs[0]!); // the driver puts the GUP reference once the device maps the page
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
  const got = grant.revoked!.filter((r) => r === 0).length;
  k.emit('gup', mm.id, lo, grant.frames[0]!, -1, `device exclusive: ${got} of ${n} page(s) now held by the device (${k.profile.deviceExclusive} rules)` +
    (stoppedAt < 0 ? '' : `; stopped at page ${stoppedAt}, the rest untouched`));
  // 5.14: only a GUP failure at the first page is an errno (make_device_exclusive_range()'s return).
  const err = got === n ? OK : stoppedAt < 0 || (!v615 && stoppedAt > 0) ? EBUSY : stopErr;
  return { err, handle: grant, stoppedAt, stopErr };
}

/** Every present PTE of mm that maps pfn (small scenarios: a scan of the mm's VMAs). */
function forEachMapping(k: Kernel, mm: Mm, pfn: number, fn: (slot: number, vpn: number) => void): void {
  const t = k.tables;
  for (const vma of mm.vmas) {
    for (let v = vma.start; v < vma.end; ) {
      const slot = pteSlot(k, mm, v);
      if (slot < 0) {
        v = (v | TABLE_MASK) + 1;
        continue;
      }
      if (t.bits[slot]! & PTE_PRESENT && t.entry[slot] === pfn) fn(slot, v);
      v++;
    }
  }
}

export { mmuNotify, removeDeviceExclusiveEntry, restoreExclusivePte, zapExclusiveEntry } from './exclusive.js';
