// Device-exclusive entries in PTEs and the MMU notifier that revokes a device's exclusive access:
// the entry primitives that fork, zap and the fault path share (make_device_exclusive itself, which
// needs GUP, is in devexcl.ts). A leaf of src/core's paths.

import {
  OK, PG_ANON_EXCLUSIVE, PTE_DEVEXCL_WRITE, PTE_DEVICE_EXCLUSIVE, PTE_DIRTY, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_UFFD_WP,
  PTE_PROTNONE, PTE_WRITE, VM_READ, VM_SOFTDIRTY, VM_WRITE,
} from './constants.js';
import { handleVpn, type Kernel } from './kernel.js';
import type { Mm, Vma } from './mm.js';
import type { Profile } from './profile.js';
import { setPte } from './walk.js';

/**
 * mmu_notifier_invalidate_range_start() on [lo, hi) of an mm: every device-exclusive grant on
 * those pages is revoked (the driver drops its mirror entries; its next atomic must re-fault).
 */
export function mmuNotify(k: Kernel, mmId: number, lo: number, hi: number, why: string): void {
  for (const h of k.handles) {
    if (h.kind !== 'exclusive' || h.released || h.mm !== mmId || !h.revoked) continue;
    for (let i = 0; i < h.frames.length; i++) {
      const vpn = handleVpn(h, i);
      if (vpn >= lo && vpn < hi && !h.revoked[i]) {
        h.revoked[i] = 1;
        if (k.tracing) k.emit('note', mmId, vpn, h.frames[i]!, -1, `MMU notifier (${why}): the device loses exclusive access`);
      }
    }
  }
}

/**
 * Whether a device-exclusive entry still counts as a mapping of its page: from 6.15 the entry keeps
 * the page's mapcount (folio_mapcount() includes it); 5.14-6.14 dropped it at the conversion
 * (page_remove_rmap()) and added it back at restore. Zap, restore and the accounting checks ask this.
 */
export function exclusiveEntryMapped(p: Profile): boolean {
  return p.deviceExclusive === 'v6.15';
}

/** The device-exclusive PTE bits for a present PTE, by variant. */
export function exclusiveBits(k: Kernel, bits: number): number {
  const writable = k.profile.deviceExclusive !== 'v6.15' && (bits & PTE_WRITE) !== 0;
  return PTE_DEVICE_EXCLUSIVE | (writable ? PTE_DEVEXCL_WRITE : 0) | (bits & (PTE_SOFT_DIRTY | PTE_UFFD_WP));
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
  if (exclusiveEntryMapped(k.profile)) {
    // can_change_pte_writable(): VM_WRITE, an exclusive anonymous page, no soft-dirty or uffd-wp tracking pending.
    const softDirtyWp = !(vma.flags & VM_SOFTDIRTY) && !(bits & PTE_SOFT_DIRTY);
    if (vma.flags & VM_WRITE && f.flags[pfn]! & PG_ANON_EXCLUSIVE && !softDirtyWp && !(bits & PTE_UFFD_WP)) nbits |= PTE_WRITE | PTE_DIRTY | PTE_SOFT_DIRTY;
  } else {
    if (bits & PTE_DEVEXCL_WRITE && !(bits & PTE_UFFD_WP) && vma.flags & VM_WRITE) nbits |= PTE_WRITE | PTE_DIRTY | PTE_SOFT_DIRTY;
    f.addRmapPte(pfn, mm.id); // page_add_anon_rmap(): the mapping counts again
  }
  // mk_pte(page, vma->vm_page_prot): a PROT_NONE mapping gets a PAGE_NONE PTE (no user access).
  if (!(vma.flags & VM_READ)) nbits = (nbits & ~(PTE_WRITE | PTE_DIRTY)) | PTE_PROTNONE;
  setPte(k, slot, pfn, nbits);
  if (k.tracing) k.emit('note', mm.id, vpn, pfn, -1, `restore_exclusive_pte: frame ${pfn} mapped again${nbits & PTE_WRITE ? ', writable' : ', read-only'}`);
}

/**
 * A 6.15 device-exclusive entry of a large folio being split: unmap_folio()'s try_to_migrate_one()
 * notifies the device (MMU_NOTIFY_CLEAR) and replaces the entry by a readable (exclusive, as the
 * page's PAE says) migration entry, neither young nor dirty; remap_page()'s remove_migration_pte()
 * maps the page again read-only (mk_pte with vm_page_prot), keeping soft-dirty and uffd-wp. The
 * mapping and its reference go and come back: the page's counts are unchanged.
 */
export function migrateExclusiveEntry(k: Kernel, mm: Mm, vpn: number, slot: number): void {
  const bits = k.tables.bits[slot]!;
  const pfn = k.tables.entry[slot]!;
  mmuNotify(k, mm.id, vpn, vpn + 1, 'split of its folio: try_to_migrate');
  const vma = mm.findVma(vpn);
  let nbits = PTE_PRESENT | (bits & (PTE_SOFT_DIRTY | PTE_UFFD_WP));
  if (vma !== null && !(vma.flags & VM_READ)) nbits |= PTE_PROTNONE;
  setPte(k, slot, pfn, nbits);
  if (k.tracing) k.emit('note', mm.id, vpn, pfn, -1, `split of a large folio: its device-exclusive entry became a migration entry and frame ${pfn} is mapped again read-only (remove_migration_pte)`);
}

/**
 * Zap of a device-exclusive entry (zap_nonpresent_ptes): drop the reference and, in 6.15, the
 * mapping it still counts (folio_remove_rmap_pte: of a large folio's page, its large mapcount and
 * the mm's MM-id slot too).
 */
export function zapExclusiveEntry(k: Kernel, mm: Mm, pfn: number): void {
  if (exclusiveEntryMapped(k.profile)) k.frames.removeRmapPte(pfn, mm.id);
  mm.rssAnon--;
  k.putPage(pfn);
}

