// Device-exclusive entries (seed 002): make_device_exclusive_range (5.14) / make_device_exclusive
// (6.15). The entries themselves, the CPU fault that restores the PTE after notifying the device
// (remove_device_exclusive_entry / restore_exclusive_pte) and the MMU notifier that tells the
// device it lost exclusive access live in exclusive.ts (shared with fork, zap and the fault path).

import { EFAULT, NA, OK, PG_ANON, PTE_PRESENT, PTE_WRITE, TABLE_MASK } from './constants.js';
import { gupSlowPage, newHandle, type GupRequest } from './gup.js';
import type { Handle, Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import { pteSlot, setPte } from './walk.js';
import { breakCowRange } from './cowpt.js';
import { splitHugePmdRange } from './huge.js';
import { exclusiveBits } from './exclusive.js';

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
  splitHugePmdRange(k, mm, lo, hi, 'make_device_exclusive: GUP with FOLL_SPLIT_PMD');
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

export { mmuNotify, removeDeviceExclusiveEntry, restoreExclusivePte, zapExclusiveEntry } from './exclusive.js';
