// Device-exclusive entries (seed 002): make_device_exclusive_range (5.14) / make_device_exclusive
// (6.15), the CPU fault that restores the PTE after notifying the device
// (remove_device_exclusive_entry / restore_exclusive_pte), and the MMU notifier that tells the
// device it lost exclusive access.

import {
  EFAULT, NA, OK, PG_ANON, PG_ANON_EXCLUSIVE, PTE_DEVEXCL_WRITE, PTE_DEVICE_EXCLUSIVE, PTE_DIRTY,
  PTE_PRESENT, PTE_PROTNONE, PTE_SOFT_DIRTY, PTE_UFFD_WP, PTE_WRITE, TABLE_MASK, VM_READ, VM_SOFTDIRTY, VM_WRITE,
} from './constants.js';
import { gupSlowPage, newHandle, type GupRequest } from './gup.js';
import type { Handle, Kernel } from './kernel.js';
import type { Mm, Vma } from './mm.js';
import { pteSlot, setPte } from './walk.js';
import { breakCowRange } from './cowpt.js';

/**
 * mmu_notifier_invalidate_range_start() on [lo, hi) of an mm: every device-exclusive grant on
 * those pages is revoked (the driver drops its mirror entries; its next atomic must re-fault).
 */
export function mmuNotify(k: Kernel, mmId: number, lo: number, hi: number, why: string): void {
  for (const h of k.handles) {
    if (h.kind !== 'exclusive' || h.released || h.mm !== mmId || !h.revoked) continue;
    for (let i = 0; i < h.frames.length; i++) {
      const vpn = h.vpn + i;
      if (vpn >= lo && vpn < hi && !h.revoked[i]) {
        h.revoked[i] = 1;
        k.emit('note', mmId, vpn, h.frames[i]!, -1, `MMU notifier (${why}): the device loses exclusive access`);
      }
    }
  }
}

/** The device-exclusive PTE bits for a present PTE, by variant. */
function exclusiveBits(k: Kernel, bits: number): number {
  const writable = k.profile.deviceExclusive !== 'v6.15' && (bits & PTE_WRITE) !== 0;
  return PTE_DEVICE_EXCLUSIVE | (writable ? PTE_DEVEXCL_WRITE : 0) | (bits & (PTE_SOFT_DIRTY | PTE_UFFD_WP));
}

/**
 * make_device_exclusive_range() (5.14, seed 002) / make_device_exclusive() (6.15) over [lo, hi)
 * of mm: GUP each page for write (breaking COW), then replace the mapping by a device-exclusive
 * entry. 5.14: every mapping of the page, found by an rmap walk, and the mapcount dropped;
 * success only if the target was mapped writable and no mapping is left. 6.15: the one PTE,
 * mapcount untouched; only anonymous pages.
 */
export function makeDeviceExclusive(k: Kernel, mm: Mm, lo: number, hi: number): { err: number; handle: Handle | null } {
  if (k.profile.deviceExclusive === 'none') return { err: NA, handle: null };
  const n = hi - lo;
  const req: GupRequest = { pin: false, write: true, longterm: false, fast: false, kind: 'gup' };
  const grant = newHandle(k, mm, lo, n, { ...req, kind: 'exclusive' });
  grant.refs.fill(0);
  grant.revoked = new Uint8Array(n).fill(1);
  const t = k.tables;
  const f = k.frames;
  breakCowRange(k, mm, lo, hi);
  for (let i = 0; i < n; i++) {
    const vpn = lo + i;
    const tmp = newHandle(k, mm, vpn, 1, req);
    const err = gupSlowPage(k, mm, vpn, tmp, 0, req); // FOLL_GET | FOLL_WRITE
    if (err !== OK) continue;
    const pfn = tmp.frames[0]!;
    const anon = pfn > 0 && (f.flags[pfn]! & PG_ANON) !== 0;
    let ok = false;
    if (k.profile.deviceExclusive === 'v6.15') {
      const slot = pteSlot(k, mm, vpn);
      const bits = slot < 0 ? 0 : t.bits[slot]!;
      if (anon && bits & PTE_PRESENT && bits & PTE_WRITE && t.entry[slot] === pfn) {
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
          f.mapcount[pfn]!--; // page_remove_rmap(): the entry keeps the reference, not the mapping
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
  k.handles.push(grant);
  const got = grant.revoked!.filter((r) => r === 0).length;
  k.emit('gup', mm.id, lo, grant.frames[0]!, -1, `device exclusive: ${got} of ${n} page(s) now held by the device (${k.profile.deviceExclusive} rules)`);
  return { err: got === n ? OK : EFAULT, handle: grant };
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

/**
 * remove_device_exclusive_entry() + restore_exclusive_pte(): a CPU access to a device-exclusive
 * entry. The device is notified first (MMU_NOTIFY_CLEAR), then the PTE is made present again.
 */
export function removeDeviceExclusiveEntry(k: Kernel, mm: Mm, vma: Vma, vpn: number, slot: number): number {
  mmuNotify(k, mm.id, vpn, vpn + 1, 'CPU access');
  restoreExclusivePte(k, mm, vma, vpn, slot);
  return OK;
}

/** restore_exclusive_pte(): the present PTE again; writable as the variant decides. */
export function restoreExclusivePte(k: Kernel, mm: Mm, vma: Vma, vpn: number, slot: number): void {
  const t = k.tables;
  const f = k.frames;
  const bits = t.bits[slot]!;
  const pfn = t.entry[slot]!;
  let nbits = PTE_PRESENT | (bits & (PTE_SOFT_DIRTY | PTE_UFFD_WP));
  if (k.profile.deviceExclusive === 'v6.15') {
    // can_change_pte_writable(): VM_WRITE, an exclusive anonymous page, no soft-dirty or uffd-wp tracking pending.
    const softDirtyWp = !(vma.flags & VM_SOFTDIRTY) && !(bits & PTE_SOFT_DIRTY);
    if (vma.flags & VM_WRITE && f.flags[pfn]! & PG_ANON_EXCLUSIVE && !softDirtyWp && !(bits & PTE_UFFD_WP)) nbits |= PTE_WRITE | PTE_DIRTY;
  } else {
    if (bits & PTE_DEVEXCL_WRITE && !(bits & PTE_UFFD_WP) && vma.flags & VM_WRITE) nbits |= PTE_WRITE | PTE_DIRTY;
    f.mapcount[pfn]!++; // page_add_anon_rmap(): the mapping counts again
  }
  // mk_pte(page, vma->vm_page_prot): a PROT_NONE mapping gets a PAGE_NONE PTE (no user access).
  if (!(vma.flags & VM_READ)) nbits = (nbits & ~(PTE_WRITE | PTE_DIRTY)) | PTE_PROTNONE;
  setPte(k, slot, pfn, nbits);
  k.emit('note', mm.id, vpn, pfn, -1, `restore_exclusive_pte: frame ${pfn} mapped again${nbits & PTE_WRITE ? ', writable' : ', read-only'}`);
}

/** Zap of a device-exclusive entry: drop the reference (and, in 6.15, the mapping it still counts). */
export function zapExclusiveEntry(k: Kernel, mm: Mm, pfn: number): void {
  if (k.profile.deviceExclusive === 'v6.15') k.frames.mapcount[pfn]!--;
  mm.rssAnon--;
  k.putPage(pfn);
}

