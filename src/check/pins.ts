// Pin checks, after every step: a bound longterm pin and its holder's mapping name the same frame
// (pin coherence); from 5.19 a pinned anonymous page is PageAnonExclusive. Each page is reported
// once (until its handle is released and the name taken again).

import { PG_ANON, PTE_DEVICE_EXCLUSIVE, PTE_PRESENT, PTE_SWAP } from '../core/constants.js';
import { type Handle, handleVpn, type Kernel } from '../core/kernel.js';
import type { Mm } from '../core/mm.js';
import { followSlot, slotPfn } from '../core/huge.js';
import { pinnedAnonExclusive } from '../core/page.js';
import { classCopier } from '../core/copy.js';

export interface PinnedHandle {
  name: string;
  h: Handle;
  /** The thread that took it. */
  holder: string;
  /** The holder's address space, null once the holder has exited (or does not exist). */
  mm: Mm | null;
}

export interface PinProblem {
  kind: 'kernel-bug' | 'pin-incoherent';
  proc: string;
  frames: number[];
  message: string;
}

/**
 * The frame a page names: present, held by a device-exclusive entry, or (a swap entry) the
 * page still in the swap cache, which swap-in maps again; -1 otherwise.
 */
export function pfnOfEntry(k: Kernel, mm: Mm, vpn: number): number {
  const slot = followSlot(k, mm, vpn);
  const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
  if (bits & PTE_SWAP) return k.swap.cache[k.tables.entry[slot]!]!;
  if (bits & (PTE_PRESENT | PTE_DEVICE_EXCLUSIVE)) return slotPfn(k, slot, vpn);
  // An empty PTE of a shared mapping: the next fault maps the page cache's page, so that page is the one shared.
  const vma = mm.findVma(vpn);
  if (bits === 0 && vma?.shm) return vma.shm.pages[vma.shmOffset + (vpn - vma.start)] ?? -1;
  return -1;
}

const NONE: readonly PinProblem[] = [];

/** PinChecker.clone's shallow copy of every field (its copier looked up once, not per copy). */
const copyPinChecker = classCopier<PinChecker>();

export class PinChecker {
  /** Pin pages already reported (`name:i` incoherent, `x:name:i` not exclusive). */
  private reported = new Set<string>();
  /** False while `reported` is shared with a copy (clone): the first change copies it. */
  private owned = true;

  /** A copy, sharing the reported pages with this one until either reports or forgets one (most never do). */
  clone(dst?: PinChecker): PinChecker {
    const c = copyPinChecker(dst !== undefined && dst !== this ? dst : new PinChecker(), this);
    c.owned = false;
    this.owned = false;
    return c;
  }

  /** `reported`, to change: copied first if shared. */
  private mine(): Set<string> {
    if (!this.owned) {
      this.reported = new Set(this.reported);
      this.owned = true;
    }
    return this.reported;
  }

  /** Whether this pin page was reported (no key is made while none was). */
  private wasReported(prefix: string, name: string, i: number): boolean {
    return this.reported.size > 0 && this.reported.has(`${prefix}${name}:${i}`);
  }

  /** A released handle: a later handle may take the same name and is checked afresh. */
  forget(name: string, pages: number): void {
    if (this.reported.size === 0) return;
    this.mine();
    for (let i = 0; i < pages; i++) {
      this.reported.delete(`${name}:${i}`);
      this.reported.delete(`x:${name}:${i}`);
    }
  }

  /**
   * `ideal.isBound(name, i)`: the ideal semantics still ties the pin's page to its holder's page.
   * The problems found (a shared empty array when none: nothing is made per step then).
   */
  check(k: Kernel, handles: Iterable<PinnedHandle>, ideal: { isBound(name: string, i: number): boolean }): readonly PinProblem[] {
    let out: PinProblem[] | null = null;
    for (const { name, h, holder, mm } of handles) {
      // sanity_check_pinned_pages() (5.19+): a pinned anonymous page is PageAnonExclusive.
      if (k.profile.anonExclusive && h.kind === 'pin') {
        for (let i = 0; i < h.frames.length; i++) {
          const pfn = h.frames[i]!;
          const fl = k.frames.flags[pfn] ?? 0;
          if (pfn > 0 && fl & PG_ANON && !pinnedAnonExclusive(k, pfn) && !this.wasReported('x:', name, i)) {
            this.mine().add(`x:${name}:${i}`);
            (out ??= []).push({ kind: 'kernel-bug', proc: holder, frames: [pfn], message: `VM_BUG_ON (sanity_check_pinned_pages): ${name}[${i}] pins anonymous frame ${pfn}, which is not PageAnonExclusive` });
          }
        }
      }
      if (!h.longterm || mm === null) continue;
      for (let i = 0; i < h.frames.length; i++) {
        if (this.wasReported('', name, i) || !ideal.isBound(name, i)) continue;
        const mapped = pfnOfEntry(k, mm, handleVpn(h, i));
        if (mapped !== h.frames[i]) {
          this.mine().add(`${name}:${i}`);
          (out ??= []).push({
            kind: 'pin-incoherent', proc: holder, frames: [h.frames[i]!, ...(mapped > 0 ? [mapped] : [])],
            message: `${name}[${i}] pins frame ${h.frames[i]} but ${holder} now maps ${mapped < 0 ? 'nothing' : `frame ${mapped}`} there: the device and the process no longer share the page`,
          });
        }
      }
    }
    return out ?? NONE;
  }
}
