// The references to frames held besides the page tables, as the accounting check counts them:
// written once for the full check (accounting.ts checkRest) and the one kept from step to step
// (incremental-rest.ts).

import { PG_INUSE } from '../core/constants.js';
import type { Kernel } from '../core/kernel.js';
import type { AccountingProblem } from './accounting.js';

/**
 * The swap device's checks and the references held besides the tables: the swap cache (the page
 * cached for a slot in use), the shmem page cache, handles (GUP references and pins; a device
 * grant holds none) and kernel paths in progress (`held`: frame, references, pin triples, flat).
 * `swapCount` holds the swap PTEs naming each slot (at least k.swap.top long; the shmem objects'
 * swapped-out pages are added to it here). Each reference goes to `out` as a (frame, references,
 * 1 for a pin else 0) triple; one naming a freed frame is a problem (`add`) instead. The problems
 * come in the order the check has always reported them.
 */
export function heldRefs(k: Kernel, swapCount: Int32Array, held: readonly number[], out: number[], add: (p: AccountingProblem) => void): void {
  const fl = k.frames.flags;
  const sw = k.swap;
  // shmem objects keep the swap entries of their written-out pages.
  for (const obj of k.shm) for (let i = 0; i < obj.swapped.length; i++) if (obj.swapped[i]! >= 0 && obj.swapped[i]! < swapCount.length) swapCount[obj.swapped[i]!]!++;
  // The swap device: each slot's count is the swap PTEs naming it; a cached page holds a reference.
  for (let s = 0; s < sw.top; s++) {
    if (!sw.used[s]) {
      if (swapCount[s]! > 0) add({ kind: 'use-after-free', mm: -1, pfn: -1, message: `${swapCount[s]} swap PTE(s) name free swap slot ${s}` });
      continue;
    }
    if (sw.count[s] !== swapCount[s]) add({ kind: 'accounting', mm: -1, pfn: -1, message: `swap slot ${s} has count ${sw.count[s]} but ${swapCount[s]} swap PTEs name it` });
    const pfn = sw.cache[s]!;
    if (pfn >= 0) {
      if (!(fl[pfn]! & PG_INUSE)) add({ kind: 'use-after-free', mm: -1, pfn, message: `swap cache slot ${s} holds freed frame ${pfn}` });
      else out.push(pfn, 1, 0);
    }
    if (sw.count[s] === 0 && pfn < 0) add({ kind: 'accounting', mm: -1, pfn: -1, message: `swap slot ${s} is in use but nothing names it` });
  }
  for (const obj of k.shm) {
    for (let i = 0; i < obj.pages.length; i++) {
      const pfn = obj.pages[i]!;
      if (pfn < 0) continue;
      if (!(fl[pfn]! & PG_INUSE)) add({ kind: 'use-after-free', mm: -1, pfn, message: `shmem page cache holds freed frame ${pfn}` });
      else out.push(pfn, 1, 0);
    }
  }
  for (const h of k.handles) {
    if (h.released) continue;
    for (let i = 0; i < h.frames.length; i++) {
      const pfn = h.frames[i]!;
      if (pfn < 0 || h.refs[i] === 0) continue; // a device grant holds no reference
      // The zero page is never freed: its references are counted (try_grab_folio()).
      if (pfn !== 0 && !(fl[pfn]! & PG_INUSE)) add({ kind: 'use-after-free', mm: h.mm, pfn, message: `a ${h.kind} handle still references freed frame ${pfn}` });
      else out.push(pfn, h.refs[i]!, h.kind === 'pin' ? 1 : 0);
    }
  }
  for (let i = 0; i < held.length; i += 3) {
    const pfn = held[i]!;
    if (pfn <= 0) continue;
    if (!(fl[pfn]! & PG_INUSE)) add({ kind: 'use-after-free', mm: -1, pfn, message: `a kernel path in progress holds freed frame ${pfn}` });
    else out.push(pfn, held[i + 1]!, held[i + 2] !== 0 ? 1 : 0);
  }
}
