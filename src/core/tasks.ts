// Kernel paths split into atomic steps (scenario language v1.1, `&`): fork's copy loop,
// gup-fast, and the write fault's copy. Between two steps of one path, other threads run: the
// windows the kernel leaves open (lockless gup-fast against fork's write-protect, seed 000's
// lock drop around the early-COW copy, a fault's copy made outside the page-table lock).
//
// A path holds the locks the kernel would: fork holds mmap_lock for write from its first step
// to its last; a fault or slow GUP holds it for read. A step that needs a lock another thread
// holds is blocked (the step does nothing).

import {
  isCowMapping, OK, OOM, PG_ANON, PG_ANON_EXCLUSIVE, PG_SHMEM, PTE_DIRTY, PTE_PRESENT, PTE_SOFT_DIRTY,
  PTE_SPECIAL, PTE_UFFD_WP, PTE_WRITE, PTE_YOUNG, VM_DONTCOPY, VM_SHARED, VM_WIPEONFORK, VM_WRITE,
  VM_MAYSHARE, SIGSEGV, NA, PTE_SWAP, PTE_DEVICE_EXCLUSIVE,
} from './constants.js';
import { FAULT_FLAG_WRITE, handleMmFault, wpCanReuse } from './fault.js';
import { newPageBits, pageNeedsCowForDma } from './fork.js';
import { assertPinnedExclusive, grab, gupFastRead, gupSlowPage, newHandle, releaseHandle, type GupRequest } from './gup.js';
import type { Handle, Kernel } from './kernel.js';
import { anonVmaPrepare, newAnonId, type Mm } from './mm.js';
import { pmdWriteProtected, pteSlot, pteSlotAlloc, pteTableAlloc, pteTableOf, setPte } from './walk.js';
import { mmuSlot } from './access.js';
import { breakCowPte } from './cowpt.js';
import { exitMmap } from './zap.js';
import { copySwapPte } from './swap.js';
import { mmuNotify, restoreExclusivePte } from './devexcl.js';

export type TaskState = 'running' | 'blocked' | 'done';

export interface ForkTask {
  kind: 'fork';
  parent: number;
  child: number;
  phase: 'begin' | 'check' | 'apply' | 'alloc' | 'install' | 'end';
  /** Pairs of (parent VMA index, child VMA index) still to copy, and the page being copied. */
  pairs: [number, number][];
  pair: number;
  vpn: number;
  /** The parent PTE as `check` saw it, and the early-COW copy made while the lock was dropped. */
  seenBits: number;
  seenPfn: number;
  newPfn: number;
  err: number;
}

export interface GupTask {
  kind: 'gup';
  mm: number;
  lo: number;
  req: GupRequest;
  handle: Handle;
  phase: 'read' | 'grab' | 'end' | 'slow';
  page: number;
  /** write_protect_seq when gup-fast began. */
  seq: number;
  readPfn: number;
  readBits: number;
  /** Pages left to the slow path. */
  fallback: boolean[];
  err: number;
}

export interface FaultTask {
  kind: 'write';
  mm: number;
  lo: number;
  hi: number;
  vpn: number;
  value: number;
  phase: 'fault' | 'install' | 'store';
  seenBits: number;
  seenPfn: number;
  newPfn: number;
  /** Values stored so far (vpns), for the caller's ideal memory. */
  stored: number[];
  err: number;
  locked: boolean;
}

export type Task = ForkTask | GupTask | FaultTask;

// ---- fork ----------------------------------------------------------------------------------

export function startFork(parent: Mm): ForkTask {
  return { kind: 'fork', parent: parent.id, child: -1, phase: 'begin', pairs: [], pair: 0, vpn: 0, seenBits: 0, seenPfn: 0, newPfn: -1, err: OK };
}

/** The next present PTE of the parent at or after (pair, vpn), or false when the copy is done. */
function nextPte(k: Kernel, t: ForkTask): boolean {
  const parent = k.mms[t.parent]!;
  for (; t.pair < t.pairs.length; t.pair++) {
    const vma = parent.vmas[t.pairs[t.pair]![0]]!;
    if (t.vpn < vma.start) t.vpn = vma.start;
    for (; t.vpn < vma.end; t.vpn++) {
      const slot = pteSlot(k, parent, t.vpn);
      if (slot >= 0 && k.tables.bits[slot] !== 0) return true;
    }
  }
  return false;
}

function stepFork(k: Kernel, t: ForkTask, tid: number): TaskState {
  const parent = k.mms[t.parent]!;
  const tb = k.tables;
  const f = k.frames;
  switch (t.phase) {
    case 'begin': {
      if (parent.mmapReaders > 0 || (parent.mmapWriter >= 0 && parent.mmapWriter !== tid)) return 'blocked';
      parent.mmapWriter = tid;
      const child = k.newMm();
      child.mmapNext = parent.mmapNext;
      t.child = child.id;
      parent.vmas.forEach((vma, i) => {
        if (vma.flags & VM_DONTCOPY) return;
        const tmp = vma.clone(vma.shm);
        if (vma.shm) vma.shm.users++;
        if (tmp.anonVma) tmp.anonId = newAnonId(); // anon_vma_fork()
        child.vmas.push(tmp);
        if (vma.flags & VM_WIPEONFORK) {
          tmp.anonVma = false;
          tmp.anonId = 0;
        }
        else if (vma.anonVma) t.pairs.push([i, child.vmas.length - 1]);
      });
      for (const [pi] of t.pairs) {
        const v = parent.vmas[pi]!;
        if (isCowMapping(v.flags)) mmuNotify(k, parent.id, v.start, v.end, 'fork');
      }
      // copy_pte_range() allocates the child's PTE table for every table the parent has there.
      for (const [pi] of t.pairs) {
        const v = parent.vmas[pi]!;
        for (let a = v.start; a < v.end; a = a - (a % 512) + 512) {
          if (pteTableOf(k, parent, a) !== 0) pteTableAlloc(k, child, a);
        }
      }
      parent.writeProtectSeq++; // raw_write_seqcount_begin(&src_mm->write_protect_seq)
      k.emit('fork', parent.id, -1, -1, child.id, `fork begins: mmap_lock taken for write${k.profile.writeProtectSeq ? ', write_protect_seq odd' : ''}`);
      t.phase = nextPte(k, t) ? 'check' : 'end';
      return 'running';
    }
    case 'check': {
      const slot = pteSlot(k, parent, t.vpn)!;
      t.seenBits = tb.bits[slot]!;
      t.seenPfn = tb.entry[slot]!;
      if (!(t.seenBits & PTE_PRESENT)) {
        const [pi, ci] = t.pairs[t.pair]!;
        if (t.seenBits & PTE_SWAP) {
          const child = k.mms[t.child]!;
          const dslot = pteSlotAlloc(k, child, t.vpn);
          setPte(k, dslot, t.seenPfn, copySwapPte(k, slot));
          void ci;
          return advanceFork(k, t);
        }
        if (t.seenBits & PTE_DEVICE_EXCLUSIVE && isCowMapping(parent.vmas[pi]!.flags)) {
          restoreExclusivePte(k, parent, parent.vmas[pi]!, t.vpn, slot);
          return 'running'; // check the now present PTE again
        }
        t.err = NA;
        return finishForkFailed(k, t, tid, 'fork of this non-present PTE kind is not modelled');
      }
      const anon = !(t.seenBits & PTE_SPECIAL) && (f.flags[t.seenPfn]! & PG_ANON) !== 0;
      const exclusiveOk = !k.profile.anonExclusive || (f.flags[t.seenPfn]! & PG_ANON_EXCLUSIVE) !== 0;
      if (anon && exclusiveOk && pageNeedsCowForDma(k, parent, t.seenPfn)) {
        k.emit('note', parent.id, t.vpn, t.seenPfn, -1, 'copy_present_pte: maybe pinned: early COW; the page-table lock is dropped to allocate the copy');
        t.phase = 'alloc';
      } else {
        t.phase = 'apply';
      }
      return 'running';
    }
    case 'apply': {
      // copy_present_pte(), sharing: decided at `check`, applied now (the PTL is held throughout).
      const [pi, ci] = t.pairs[t.pair]!;
      const vma = parent.vmas[pi]!;
      const child = k.mms[t.child]!;
      const slot = pteSlot(k, parent, t.vpn)!;
      const bits = tb.bits[slot]!;
      const pfn = tb.entry[slot]!;
      let cbits = bits;
      if (!(bits & PTE_SPECIAL)) {
        if (f.flags[pfn]! & PG_ANON) {
          f.flags[pfn] = f.flags[pfn]! & ~PG_ANON_EXCLUSIVE;
          child.rssAnon++;
        } else if (f.flags[pfn]! & PG_SHMEM) {
          child.rssShmem++;
        }
        f.refcount[pfn]!++;
        f.mapcount[pfn]!++;
      }
      if (isCowMapping(vma.flags) && bits & PTE_WRITE) {
        tb.bits[slot] = bits & ~PTE_WRITE;
        cbits &= ~PTE_WRITE;
      }
      if (vma.flags & VM_SHARED) cbits &= ~PTE_DIRTY;
      cbits &= ~(PTE_YOUNG | PTE_UFFD_WP);
      const dslot = pteSlotAlloc(k, child, t.vpn);
      setPte(k, dslot, pfn, cbits);
      void ci;
      return advanceFork(k, t);
    }
    case 'alloc': {
      // Seed 000: the lock is dropped; page_duplicate() allocates and copies the page.
      const n = f.alloc(PG_ANON | (k.profile.anonExclusive ? PG_ANON_EXCLUSIVE : 0));
      if (n < 0) {
        t.err = OOM;
        return finishForkFailed(k, t, tid, 'fork failed with ENOMEM: no frame for an early COW copy; the child was torn down');
      }
      f.value[n] = f.value[t.seenPfn]!;
      t.newPfn = n;
      t.phase = 'install';
      return 'running';
    }
    case 'install': {
      // pte_install_copied_page(): the lock is retaken; the parent PTE must not have changed.
      const slot = pteSlot(k, parent, t.vpn);
      const bits = slot < 0 ? 0 : tb.bits[slot]!;
      const pfn = slot < 0 ? -1 : tb.entry[slot]!;
      if (bits !== t.seenBits || pfn !== t.seenPfn) {
        k.putPage(t.newPfn);
        t.newPfn = -1;
        k.emit('note', parent.id, t.vpn, pfn, -1, 'early COW: the PTE changed under us while the lock was dropped; the copy is dropped and the PTE looked at again');
        t.phase = nextPte(k, t) ? 'check' : 'end';
        return 'running';
      }
      const child = k.mms[t.child]!;
      const cvma = child.vmas[t.pairs[t.pair]![1]]!;
      f.mapcount[t.newPfn] = 1;
      const dslot = pteSlotAlloc(k, child, t.vpn);
      setPte(k, dslot, t.newPfn, newPageBits(cvma));
      child.rssAnon++;
      k.stats.earlyCow++;
      k.stats.cowCopies++;
      k.emit('early-cow', parent.id, t.vpn, t.seenPfn, t.newPfn, `maybe pinned (refcount ${f.refcount[t.seenPfn]} >= ${k.config.pinBias}) in an mm that has pinned: the child gets a copy now`);
      t.newPfn = -1;
      return advanceFork(k, t);
    }
    case 'end': {
      parent.writeProtectSeq++;
      parent.mmapWriter = -1;
      k.emit('fork', parent.id, -1, -1, t.child, `fork ends: ${k.profile.writeProtectSeq ? 'write_protect_seq even, ' : ''}mmap_lock released`);
      return 'done';
    }
  }
}

function advanceFork(k: Kernel, t: ForkTask): TaskState {
  t.vpn++;
  t.phase = nextPte(k, t) ? 'check' : 'end';
  return 'running';
}

function finishForkFailed(k: Kernel, t: ForkTask, tid: number, why: string): TaskState {
  const parent = k.mms[t.parent]!;
  const child = k.mms[t.child]!;
  exitMmap(k, child);
  parent.writeProtectSeq++;
  if (parent.mmapWriter === tid) parent.mmapWriter = -1;
  t.child = -1;
  k.emit(t.err === OOM ? 'oom' : 'note', parent.id, -1, -1, -1, why);
  return 'done';
}

// ---- gup-fast ------------------------------------------------------------------------------

export function startGup(k: Kernel, mm: Mm, lo: number, hi: number, req: GupRequest): GupTask {
  const n = hi - lo;
  return {
    kind: 'gup', mm: mm.id, lo, req, handle: newHandle(k, mm, lo, n, req), phase: req.fast ? 'read' : 'slow', page: -1,
    seq: -1, readPfn: -1, readBits: 0, fallback: new Array<boolean>(n).fill(!req.fast), err: OK,
  };
}

function stepGup(k: Kernel, t: GupTask): TaskState {
  const mm = k.mms[t.mm]!;
  const h = t.handle;
  const n = h.frames.length;
  switch (t.phase) {
    case 'read': {
      if (t.page < 0) {
        // Entering gup-fast: has_pinned is set first; FOLL_PIN samples write_protect_seq.
        if (t.req.pin && k.profile.forkEarlyCow) mm.hasPinned = true;
        t.page = 0;
        if (t.req.pin && k.profile.writeProtectSeq) {
          t.seq = mm.writeProtectSeq;
          if (t.seq & 1) {
            k.emit('gup', mm.id, t.lo, -1, -1, 'gup-fast: a fork is copying this mm (write_protect_seq odd): fall back to the slow path');
            t.fallback.fill(true);
            t.phase = 'slow';
            return 'running';
          }
        }
      }
      const pfn = gupFastRead(k, mm, t.lo + t.page, t.req);
      if (pfn < 0) {
        t.fallback[t.page] = true;
        return nextGupPage(t, n);
      }
      const slot = pteSlot(k, mm, t.lo + t.page);
      t.readPfn = pfn;
      t.readBits = k.tables.bits[slot]!;
      t.phase = 'grab';
      return 'running';
    }
    case 'grab': {
      // try_grab_folio_fast(): a page freed since the PTE was read cannot be grabbed
      // (folio_ref_try_add fails on a zero refcount): leave it to the slow path.
      if (!k.frames.inUse(t.readPfn)) {
        t.fallback[t.page] = true;
        return nextGupPage(t, n);
      }
      grab(k, h, t.page, t.readPfn, false, t.req, false);
      // Then the PTE is read again: if it changed, the reference is dropped.
      const slot = pteSlot(k, mm, t.lo + t.page);
      const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
      const pfn = slot < 0 ? -1 : k.tables.entry[slot]!;
      if (bits !== t.readBits || pfn !== t.readPfn) {
        k.putPage(t.readPfn, h.refs[t.page]!);
        h.frames[t.page] = -1;
        h.refs[t.page] = 0;
        t.fallback[t.page] = true;
        k.emit('gup', mm.id, t.lo + t.page, t.readPfn, -1, 'gup-fast: the PTE changed after the page was grabbed: dropped, left to the slow path');
      } else {
        assertPinnedExclusive(k, t.readPfn, t.req);
      }
      return nextGupPage(t, n);
    }
    case 'end': {
      if (t.req.pin && k.profile.writeProtectSeq && mm.writeProtectSeq !== t.seq) {
        // read_seqcount_retry(): a fork ran meanwhile; undo everything and use the slow path.
        for (let i = 0; i < n; i++) {
          if (h.frames[i]! >= 0 && h.refs[i]! > 0) k.putPage(h.frames[i]!, h.refs[i]!);
          h.frames[i] = -1;
          h.refs[i] = 0;
        }
        t.fallback.fill(true);
        k.emit('gup', mm.id, t.lo, -1, -1, 'gup-fast: write_protect_seq changed (a fork ran): pins dropped, falling back to the slow path');
      }
      if (t.fallback.some(Boolean)) {
        t.phase = 'slow';
        return 'running';
      }
      return finishGup(k, t);
    }
    case 'slow': {
      // The slow path takes mmap_lock for read: it waits while a fork holds it.
      if (mm.mmapWriter >= 0) return 'blocked';
      if (t.req.pin && k.profile.forkEarlyCow) mm.hasPinned = true;
      for (let i = 0; i < n; i++) {
        if (!t.fallback[i]) continue;
        const err = gupSlowPage(k, mm, t.lo + i, h, i, t.req);
        if (err !== OK) {
          releaseHandle(k, h);
          t.err = err;
          k.emit('gup', mm.id, t.lo + i, -1, -1, 'GUP failed at this page');
          return 'done';
        }
      }
      return finishGup(k, t);
    }
  }
}

function nextGupPage(t: GupTask, n: number): TaskState {
  t.page++;
  t.phase = t.page < n ? 'read' : 'end';
  return 'running';
}

function finishGup(k: Kernel, t: GupTask): TaskState {
  t.handle.id = k.handles.length;
  k.handles.push(t.handle);
  k.emit('gup', t.mm, t.lo, t.handle.frames[0]!, -1, `${t.handle.frames.length} page(s) taken (${t.fallback.filter(Boolean).length} by the slow path)`);
  return 'done';
}

// ---- a write, with do_wp_page's copy made outside the page-table lock ----------------------

export function startWrite(_k: Kernel, mm: Mm, lo: number, hi: number, value: number): FaultTask {
  return { kind: 'write', mm: mm.id, lo, hi, vpn: lo, value, phase: 'fault', seenBits: 0, seenPfn: -1, newPfn: -1, stored: [], err: OK, locked: false };
}

function stepWrite(k: Kernel, t: FaultTask): TaskState {
  const mm = k.mms[t.mm]!;
  const tb = k.tables;
  const f = k.frames;
  switch (t.phase) {
    case 'fault': {
      const vma = mm.findVma(t.vpn);
      if (vma === null || !(vma.flags & VM_WRITE)) {
        t.err = SIGSEGV;
        k.emit('segv', mm.id, t.vpn, -1, -1, vma === null ? 'no mapping at this address' : 'mapping is not writable');
        return 'done';
      }
      if (mmuSlot(k, mm, t.vpn, true) >= 0) {
        t.phase = 'store';
        return stepWrite(k, t); // no fault: the store itself is this step
      }
      // A fault: mmap_lock for read (a fork holding it for write blocks us).
      if (mm.mmapWriter >= 0) return 'blocked';
      if (pmdWriteProtected(k, mm, t.vpn)) {
        // A shared COW PTE table is broken first, as handle_mm_fault() does before the PTE fault.
        const err = breakCowPte(k, mm, vma, t.vpn);
        if (err !== OK) {
          t.err = err;
          return 'done';
        }
      }
      const slot = pteSlot(k, mm, t.vpn);
      const bits = slot < 0 ? 0 : tb.bits[slot]!;
      const pfn = slot < 0 ? -1 : tb.entry[slot]!;
      // do_wp_page() runs only for a present PTE without write access (after a COW page table
      // was taken back, the PTE may be writable already: handle_pte_fault() just marks it).
      const copyNeeded = bits & PTE_PRESENT && !(bits & PTE_WRITE) && !(vma.flags & (VM_SHARED | VM_MAYSHARE)) &&
        (bits & PTE_SPECIAL || !(f.flags[pfn]! & PG_ANON) || !wpCanReuse(k, pfn));
      if (!copyNeeded) {
        // Not a copy: the whole fault runs under the lock in this step.
        const err = handleMmFault(k, mm, t.vpn, FAULT_FLAG_WRITE);
        if (err !== OK) {
          t.err = err;
          return 'done';
        }
        t.phase = 'store';
        return 'running';
      }
      // wp_page_copy() part 1: allocate and copy outside the page-table lock (mmap_lock held).
      mm.mmapReaders++;
      t.locked = true;
      mm.minflt++;
      k.stats.faults++;
      const n = f.alloc(PG_ANON | (k.profile.anonExclusive ? PG_ANON_EXCLUSIVE : 0));
      if (n < 0) {
        t.err = OOM;
        k.emit('oom', mm.id, t.vpn, pfn, -1, 'no free frame for the copy (config.frames)');
        return unlockWrite(mm, t, 'done');
      }
      f.value[n] = bits & PTE_SPECIAL ? 0 : f.value[pfn]!;
      t.seenBits = bits;
      t.seenPfn = pfn;
      t.newPfn = n;
      t.phase = 'install';
      return 'running';
    }
    case 'install': {
      // wp_page_copy() part 2: retake the PTL; if the PTE changed meanwhile, drop the copy and retry.
      const slot = pteSlot(k, mm, t.vpn);
      const bits = slot < 0 ? 0 : tb.bits[slot]!;
      const pfn = slot < 0 ? -1 : tb.entry[slot]!;
      if (bits !== t.seenBits || pfn !== t.seenPfn) {
        k.putPage(t.newPfn);
        t.newPfn = -1;
        k.emit('note', mm.id, t.vpn, pfn, -1, 'wp_page_copy: the PTE changed while the copy was made (!pte_same): the copy is dropped, the fault retried');
        t.phase = 'fault';
        return unlockWrite(mm, t, 'running');
      }
      const vma = mm.findVma(t.vpn)!;
      anonVmaPrepare(mm, vma);
      f.mapcount[t.newPfn] = 1;
      setPte(k, slot, t.newPfn, PTE_PRESENT | PTE_YOUNG | PTE_DIRTY | PTE_SOFT_DIRTY | (vma.flags & VM_WRITE ? PTE_WRITE : 0));
      if (bits & PTE_SPECIAL) mm.rssAnon++;
      else {
        f.mapcount[pfn]!--;
        k.putPage(pfn);
      }
      k.stats.cowCopies++;
      k.emit('wp-copy', mm.id, t.vpn, bits & PTE_SPECIAL ? 0 : pfn, t.newPfn, 'write fault: copied (the copy was made outside the page-table lock)');
      t.newPfn = -1;
      t.phase = 'store';
      return unlockWrite(mm, t, 'running');
    }
    case 'store': {
      // The faulting instruction runs again, through the same MMU test as a synchronous store:
      // if the PTE (or the PMD of a shared COW PTE table) lost write access meanwhile, it faults again.
      const slot = mmuSlot(k, mm, t.vpn, true);
      if (slot < 0) {
        t.phase = 'fault';
        return 'running';
      }
      tb.bits[slot] = tb.bits[slot]! | PTE_DIRTY | PTE_YOUNG | PTE_SOFT_DIRTY;
      f.value[tb.entry[slot]!] = t.value;
      t.stored.push(t.vpn);
      t.vpn++;
      if (t.vpn < t.hi) {
        t.phase = 'fault';
        return 'running';
      }
      return 'done';
    }
  }
}

function unlockWrite(mm: Mm, t: FaultTask, st: TaskState): TaskState {
  if (t.locked) {
    mm.mmapReaders--;
    t.locked = false;
  }
  return st;
}

/** Run one atomic step of a task on behalf of thread `tid`. */
export function stepTask(k: Kernel, t: Task, tid: number): TaskState {
  switch (t.kind) {
    case 'fork':
      return stepFork(k, t, tid);
    case 'gup':
      return stepGup(k, t);
    case 'write':
      return stepWrite(k, t);
  }
}

/** A deep copy of a task (for the explorer). */
export function cloneTask(t: Task): Task {
  switch (t.kind) {
    case 'fork':
      return { ...t, pairs: t.pairs.map((p) => [p[0], p[1]] as [number, number]) };
    case 'gup':
      return { ...t, handle: { ...t.handle, frames: t.handle.frames.slice(), refs: t.handle.refs.slice() }, fallback: t.fallback.slice(), req: { ...t.req } };
    case 'write':
      return { ...t, stored: t.stored.slice() };
  }
}

