// What one atomic step of a kernel path in progress (scenario language v1.1, `&`) read and what
// it decided, told from the path's state before and after the step (the Runner records these
// lines as `note` events of the step, when tracing). The kernel model stays silent about the
// ordinary progress of its steps; this is where the trace of an interleaving gets its words.
// The wording names only what the profile has (no write_protect_seq before 5.11's profiles, no
// MMF_HAS_PINNED or early COW where fork never copies, no PageAnonExclusive before 5.19).

import { PG_ANON, PG_ANON_EXCLUSIVE, PTE_DEVICE_EXCLUSIVE, PTE_PRESENT, PTE_SPECIAL, PTE_SWAP, PTE_WRITE } from '../core/constants.js';
import {
  GUP_FAST_NOT_PRESENT, GUP_FAST_NOT_WRITABLE, GUP_FAST_SPECIAL, GUP_FAST_TAKE, GUP_FAST_UNSHARE, gupFastRefusal,
} from '../core/gup.js';
import { wpCopyHeldPage } from '../core/fault.js';
import { followSlot, slotPfn } from '../core/huge.js';
import { FORK_SHARE_NOT_ANON, FORK_SHARE_NOT_EXCLUSIVE, forkCopyTest, pageMaybeDmaPinned } from '../core/page.js';
import type { Kernel } from '../core/kernel.js';
import { pteBitNames } from '../core/names.js';
import { pteSlot } from '../core/walk.js';
import type { FaultTask, ForkTask, GupTask, Task, TaskState } from '../core/tasks.js';

export interface TaskLine {
  mm: number;
  vpn: number;
  pfn: number;
  why: string;
}

/** Names for the sentences: a page of an address space (`buf[0]`), a process, a value. */
export interface TaskNamer {
  page(mm: number, vpn: number): string;
  proc(mm: number): string;
  value(v: number): string;
}

/** The lines for one step of `t` (`prev`: a copy of it from before the step). */
export function describeTaskStep(k: Kernel, prev: Task, t: Task, st: TaskState, n: TaskNamer): TaskLine[] {
  if (st === 'blocked') return [];
  switch (t.kind) {
    case 'fork':
      return forkLines(k, prev as ForkTask, t, n);
    case 'gup':
      return gupLines(k, prev as GupTask, t, st, n);
    case 'write':
      return writeLines(k, prev as FaultTask, t, n);
  }
}

/** `frame 1 [present write dirty]`, `swap slot 2 [swap]`. */
function pteText(bits: number, entry: number): string {
  if (bits === 0) return 'none';
  const what = bits & PTE_SWAP ? `swap slot ${entry}` : entry === 0 && bits & PTE_SPECIAL ? 'the zero page' : `frame ${entry}`;
  return `${what} [${pteBitNames(bits).join(' ')}]`;
}

/**
 * refcount, mapcount and (where the profile has it) PageAnonExclusive of a frame; `heldSince`:
 * references taken since the decision told of, left out of the refcount.
 */
function frameText(k: Kernel, pfn: number, heldSince = 0): string {
  const f = k.frames;
  const pae = k.profile.anonExclusive && f.flags[pfn]! & PG_ANON ? (f.flags[pfn]! & PG_ANON_EXCLUSIVE ? ', anon-exclusive' : ', not anon-exclusive') : '';
  return `refcount ${f.refcount[pfn]! - heldSince}, mapcount ${f.mapcount[pfn]}${pae}`;
}

// ---- fork ----------------------------------------------------------------------------------

function forkLines(k: Kernel, prev: ForkTask, t: ForkTask, n: TaskNamer): TaskLine[] {
  const parent = k.mms[t.parent]!;
  const P = n.proc(t.parent);
  const child = t.child >= 0 ? n.proc(t.child) : 'the child';
  const f = k.frames;
  const bias = k.config.pinBias;
  switch (prev.phase) {
    case 'check': {
      const vpn = prev.vpn;
      const page = n.page(t.parent, vpn);
      const read = `copy_pte_range reads the parent's PTE of ${page}: ${pteText(t.seenBits, t.seenPfn)}`;
      if (!(t.seenBits & PTE_PRESENT)) {
        if (t.seenBits & PTE_SWAP) return [{ mm: t.parent, vpn, pfn: -1, why: `${read}: a swap entry: the child gets the same entry (one more user of the swap slot)` }];
        if (t.seenBits & PTE_DEVICE_EXCLUSIVE) return [{ mm: t.parent, vpn, pfn: t.seenPfn, why: `${read}: a device-exclusive entry: restored to a present PTE first, then read again` }];
        return [];
      }
      const pfn = t.seenPfn;
      const facts = t.seenBits & PTE_SPECIAL ? '' : ` (${frameText(k, pfn)})`;
      if (t.phase === 'alloc') {
        return [{ mm: t.parent, vpn, pfn, why: `copy_present_pte reads the parent's PTE of ${page}: ${pteText(t.seenBits, pfn)}${facts}; page_maybe_dma_pinned() is true (refcount ${f.refcount[pfn]} >= ${bias}) and ${P}'s mm has pinned (MMF_HAS_PINNED): the child gets a copy (early COW)` }];
      }
      // copy_present_pte()'s own test (forkCopyTest), told in its order: the page, then the mm (forkMayCopy), then the pin.
      const test = forkCopyTest(k, t.seenBits, pfn);
      let why: string;
      if (test === FORK_SHARE_NOT_ANON) why = t.seenBits & PTE_SPECIAL ? 'the zero page is never copied: share it' : 'not an anonymous page: share it';
      else if (!k.profile.forkEarlyCow) why = 'this kernel never copies a page at fork: share it';
      else if (!parent.hasPinned) why = `${P}'s mm never pinned a page (no MMF_HAS_PINNED): share it`;
      else if (test === FORK_SHARE_NOT_EXCLUSIVE) why = 'not anon-exclusive (already shared, so not pinned): share it';
      else why = `page_maybe_dma_pinned() is false (refcount ${f.refcount[pfn]} < ${bias}): share it`;
      return [{ mm: t.parent, vpn, pfn, why: `copy_present_pte reads the parent's PTE of ${page}: ${pteText(t.seenBits, pfn)}${facts}; ${why} (done at the next step, under the same page-table lock)` }];
    }
    case 'apply': {
      const vpn = prev.vpn;
      const pfn = t.seenPfn;
      const shared = t.seenBits & PTE_SPECIAL ? 'the zero page' : `frame ${pfn}`;
      const wp = t.seenBits & PTE_WRITE ? `; ${P}'s PTE loses its write bit` : '';
      let late = '';
      const anon = !(t.seenBits & PTE_SPECIAL) && (f.flags[pfn]! & PG_ANON) !== 0;
      // The decision taken at the check is not looked at again: a pin taken since is shared too
      // (page_maybe_dma_pinned() without the reference the child has just taken).
      if (anon && pageMaybeDmaPinned(k, pfn, 1)) {
        late = `; the page was pinned since the check (refcount now ${f.refcount[pfn]}), but the decision stands: the pinned page is shared${k.profile.forkEarlyCow ? '' : ' (this kernel never copies at fork)'}`;
      }
      return [{ mm: t.parent, vpn, pfn, why: `copy_present_pte: ${child} now maps ${shared} of ${n.page(t.parent, vpn)} too${wp}${late}` }];
    }
    case 'alloc':
      if (t.newPfn < 0) return [];
      return [{ mm: t.parent, vpn: prev.vpn, pfn: t.newPfn, why: `copy_present_page: the page-table locks are dropped and frame ${t.newPfn} allocated for the copy (filled when copy_pte_range walks this PTE again)` }];
    case 'install': {
      const cslot = t.child >= 0 ? pteSlot(k, k.mms[t.child]!, prev.vpn) : -1;
      const copied = cslot >= 0 && (k.tables.bits[cslot]! & PTE_PRESENT) !== 0 && k.tables.entry[cslot] === prev.newPfn;
      const again = `the page-table locks are retaken and ${P}'s PTE of ${n.page(t.parent, prev.vpn)} decided again`;
      return [{ mm: t.parent, vpn: prev.vpn, pfn: copied ? prev.newPfn : prev.seenPfn, why: copied
        ? `${again}: still maybe pinned: frame ${prev.seenPfn} is copied into frame ${prev.newPfn} now, which ${child} maps`
        : `${again}: no longer maybe pinned (refcount ${f.refcount[prev.seenPfn]}): frame ${prev.newPfn} is freed and the page shared with ${child}` }];
    }
    default:
      return [];
  }
}

// ---- gup-fast ------------------------------------------------------------------------------

function gupLines(k: Kernel, prev: GupTask, t: GupTask, st: TaskState, n: TaskNamer): TaskLine[] {
  const out: TaskLine[] = [];
  const pin = t.req.pin;
  const what = pin ? 'pin' : 'reference';
  switch (prev.phase) {
    case 'read': {
      if (prev.page < 0) {
        const enter: string[] = [];
        if (pin && k.profile.forkEarlyCow) enter.push('sets MMF_HAS_PINNED on the mm');
        if (pin && k.profile.writeProtectSeq && t.phase !== 'slow') enter.push(`reads write_protect_seq: ${t.seq}, even: no fork is copying a COW mapping of this mm now`);
        if (enter.length) out.push({ mm: t.mm, vpn: t.lo, pfn: -1, why: `gup-fast ${enter.join('; ')}` });
        if (t.phase === 'slow') return out;
      }
      const i = prev.page < 0 ? 0 : prev.page;
      const vpn = t.lo + i;
      const page = n.page(t.mm, vpn);
      if (t.phase === 'grab' && t.page === i) {
        const writable = t.readBits & PTE_WRITE ? 'writable' : 'read-only';
        out.push({ mm: t.mm, vpn, pfn: t.readPfn, why: `gup-fast reads the PTE of ${page} without a lock: ${pteText(t.readBits, t.readPfn)}: present and ${writable}, so it can take the page (next step)` });
      } else {
        // What gup-fast read (followSlot: a huge PMD maps the page itself) and why it refused (its own test).
        const slot = followSlot(k, k.mms[t.mm]!, vpn);
        const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
        const reason = GUP_FAST_REFUSALS[gupFastRefusal(k, slot, vpn, t.req)];
        out.push({ mm: t.mm, vpn, pfn: -1, why: `gup-fast reads the PTE of ${page} without a lock: ${pteText(bits, bits === 0 ? 0 : slotPfn(k, slot, vpn))}: ${reason}: left to the slow path` });
      }
      return out;
    }
    case 'grab': {
      const i = prev.page;
      const vpn = t.lo + i;
      const pfn = prev.readPfn;
      if (t.fallback[i] && !k.frames.inUse(pfn) && t.handle.frames[i]! < 0 && prev.handle.frames[i]! < 0) {
        return [{ mm: t.mm, vpn, pfn, why: `gup-fast: frame ${pfn} was freed since the PTE was read: it cannot be taken (refcount 0): left to the slow path` }];
      }
      const refs = t.handle.refs[i]!; // what grab() took
      if (t.handle.frames[i] === pfn) {
        return [{ mm: t.mm, vpn, pfn, why: `gup-fast takes a ${what} on frame ${pfn} (refcount +${refs}: now ${k.frames.refcount[pfn]}), reads the PTE of ${n.page(t.mm, vpn)} again: unchanged, so the ${what} stands` }];
      }
      return []; // the PTE changed after the grab: the model says so (dropped, left to the slow path)
    }
    case 'end': {
      if (pin && k.profile.writeProtectSeq) {
        if (k.mms[t.mm]!.writeProtectSeq !== prev.seq) return []; // the model says it fell back
        out.push({ mm: t.mm, vpn: t.lo, pfn: -1, why: `gup-fast reads write_protect_seq again: ${prev.seq}, unchanged: no fork copied a COW mapping of this mm meanwhile, the ${what}s stand` });
      }
      const slow = t.fallback.filter(Boolean).length;
      if (slow) out.push({ mm: t.mm, vpn: t.lo, pfn: -1, why: `gup-fast ends: ${slow} page(s) left to the slow path (next step)` });
      return out;
    }
    case 'slow':
      if (st !== 'done' || t.err !== 0) return [];
      return [{ mm: t.mm, vpn: t.lo, pfn: -1, why: `the slow path (mmap_lock for read) walks the page table, faults in what it must, and takes the rest (${t.fallback.filter(Boolean).length} page(s))` }];
  }
}

/** gupFastRefusal()'s reasons, in words. */
const GUP_FAST_REFUSALS: Record<number, string> = {
  [GUP_FAST_TAKE]: 'taken',
  [GUP_FAST_NOT_PRESENT]: 'not present',
  [GUP_FAST_SPECIAL]: 'a special or PROT_NONE entry',
  [GUP_FAST_NOT_WRITABLE]: 'not writable, and a write is needed',
  [GUP_FAST_UNSHARE]: 'read-only on a page that must be unshared first',
};

// ---- a write fault's copy ------------------------------------------------------------------

function writeLines(k: Kernel, prev: FaultTask, t: FaultTask, n: TaskNamer): TaskLine[] {
  const vpn = prev.vpn;
  const page = n.page(t.mm, vpn);
  switch (prev.phase) {
    case 'fault': {
      if (t.phase === 'install') {
        const pfn = wpCopyHeldPage(t);
        const old = pfn < 0 ? 'the zero page' : `frame ${pfn}`;
        // The counts as do_wp_page saw them: the reference it then took on the page (for the copy) is in the refcount now.
        const seen = pfn < 0 ? '' : ` (${frameText(k, pfn, 1)})`;
        const held = pfn < 0 ? '' : `, holding a reference on frame ${pfn} until then`;
        return [{ mm: t.mm, vpn, pfn: t.newPfn, why: `do_wp_page reads the PTE of ${page}: ${pteText(t.seenBits, t.seenPfn)}: ${old}${seen} cannot be reused: wp_page_copy allocates frame ${t.newPfn} and copies into it outside the page-table lock (installed at the next step${held})` }];
      }
      if (t.stored.length > prev.stored.length) {
        return [{ mm: t.mm, vpn, pfn: -1, why: `the PTE of ${page} is present and writable: no fault; ${n.value(t.value)} stored` }];
      }
      return [];
    }
    case 'store':
      if (t.stored.length > prev.stored.length) return [{ mm: t.mm, vpn, pfn: -1, why: `the store of ${n.value(t.value)} to ${page} goes through the now writable PTE` }];
      return [{ mm: t.mm, vpn, pfn: -1, why: `the PTE of ${page} lost write access meanwhile: the store faults again` }];
    default:
      return [];
  }
}
