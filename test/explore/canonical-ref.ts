// The threads' part of the canonical encoding written the straightforward way, as it was before
// the thread keys were computed once and translated (commit 4c74932's src/explore/canonical.ts,
// but for imports and names), with the pages huge PMDs map, the anon_vmas and the coarser key's
// rules (threads gone that hold nothing count only in number): each thread's key written again
// with the global numbering. canonical-equiv.test.ts compares the encoding with it, word for
// word. What follows the threads' keys (handles, frames, what each process held), the numbering
// and the order of two signatures are not what it checks: it takes them from canonical.ts
// (restKey, Numbering, textOrder, insertionSort), so that a change there needs no copy here.

import { MMAP_BASE_VPN, PTE_SOFT_DIRTY, VM_SOFTDIRTY, PTE_DEVICE_EXCLUSIVE, PTE_DIRTY, PTE_PRESENT, PTE_SPECIAL, PTE_SWAP, PTE_YOUNG } from '../../src/core/constants.js';
import type { Proc, Runner } from '../../src/engine/run.js';
import type { Region } from '../../src/engine/state.js';
import { pmdSlotOf } from '../../src/core/walk.js';
import { followSlot, slotPfn } from '../../src/core/huge.js';
import { isStableKsm } from '../../src/core/ksm.js';
import { collectHandles, Entries, insertionSort, N_ANON, N_CELL, N_TABLE, Numbering, restKey, textOrder, Words } from '../../src/explore/canonical.js';

type ProcT = Proc;

/**
 * The accessed and dirty bits never decide anything in the model, except a pending kernel
 * path's pte_same() re-check; while no path is pending they are left out of the key.
 */
let adMask = ~0;

/** Scratch buffers, reused by every key (a key is read, hashed or copied, before the next). */
const cellBuf = new Int32Array(4);
const tmp = new Words();

const regions = new Entries<Region>();
const byRegionName = (_a: Region, an: string, _b: Region, bn: string): boolean => an > bn;

/** The numbering pushValue numbers with (forEach, not for-of: no iterator per set). */
let pushNum: Numbering | null = null;
const pushValue = (v: number): void => {
  tmp.push(pushNum!.value(v));
};

/** Push the numbers of `vals` (numbered in their order), sorted ascending, each after `prefix` if given; their count. */
function pushSortedValues(vals: ReadonlySet<number>, num: Numbering, out: Words, prefix?: number): number {
  tmp.n = 0;
  pushNum = num;
  vals.forEach(pushValue);
  return pushSorted(out, prefix);
}

/** Sort the numbers gathered in `tmp` and push them, each after `prefix` if given; their count. */
function pushSorted(out: Words, prefix?: number): number {
  const n = tmp.n;
  const t = tmp.a;
  insertionSort(t, n);
  for (let i = 0; i < n; i++) {
    if (prefix !== undefined) out.push(prefix);
    out.push(t[i]!);
  }
  return n;
}


function procKey(r: Runner, p: ProcT, num: Numbering, out: Words): void {
  const k = r.k;
  const mm = p.mm;
  out.push(p.alive ? 1 : 0).push(mm.cowPgtable ? 1 : 0).push(mm.hasPinned ? 1 : 0).push(mm.ksmSlot).push(mm.writeProtectSeq & 1).push(mm.mmapReaders).push(mm.mmapWriter === p.tid ? 1 : mm.mmapWriter >= 0 ? 2 : 0).push(mm.uffdForkEvent ? 1 : 0);
  // Where its next mapping goes (get_unmapped_area): whether it will neighbour one it has.
  out.push(mm.mmapNext - MMAP_BASE_VPN);
  // 5.14-6.14: how many anon VMAs it has, then each one's start and how many live VMAs with its
  // vm_pgoff entered the anon_vma trees before it (the device-exclusive walk's order).
  if (k.profile.deviceExclusive !== 'none' && k.profile.deviceExclusive !== 'v6.15') {
    const mine = mm.vmas.filter((v) => v.anonVma);
    const all = k.mms.filter((m) => m.alive).flatMap((m) => m.vmas).filter((v) => v.anonVma);
    out.push(mine.length);
    for (const v of mine) out.push(v.start - MMAP_BASE_VPN).push(all.filter((w) => w.start + w.pgoffShift === v.start + v.pgoffShift && w.anonSeq < v.anonSeq).length);
  }
  // The regions in name order.
  regions.n = 0;
  p.regions.forEach(regions.collect);
  regions.sort(byRegionName);
  for (let ri = 0, nr = regions.n; ri < nr; ri++) {
    const reg = regions.vals[ri]!;
    if (p.alive) out.push(reg.start - MMAP_BASE_VPN);
    for (let i = 0; i < reg.n; i++) {
      const vpn = reg.start + i;
      if (!p.alive) {
        out.push(-9);
        continue;
      }
      const vma = p.mm.findVma(vpn);
      out.push(vma === null ? -1 : vma.flags);
      out.push(vma === null || vma.anonId === 0 ? -1 : num.get(N_ANON, vma.anonId)).push(vma !== null && vma.uncowedParents ? 1 : 0).push(vma === null ? 0 : vma.pgoffShift);
      // A page a huge PMD maps: the PMD's bits and the folio's page.
      const slot = followSlot(k, p.mm, vpn);
      const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
      if (mm.cowPgtable) {
        // COW page tables: whether this page goes through a shared table, which one, who is charged.
        const ps = pmdSlotOf(k, mm, vpn);
        const table = ps < 0 ? 0 : k.tables.entry[ps]!;
        out.push(-13).push(ps < 0 ? -1 : k.tables.bits[ps]!).push(table === 0 ? -1 : num.get(N_TABLE, table)).push(table === 0 ? -1 : k.tables.share[table]!).push(table === 0 ? -1 : k.tables.owner[table] === mm.id ? 1 : k.tables.owner[table]! < 0 ? -1 : 0).push(mm.rssAnon).push(mm.nrTables);
      }
      // Soft-dirty bits matter only once clear_refs armed tracking (VM_SOFTDIRTY cleared).
      out.push(bits & adMask & (vma !== null && vma.flags & VM_SOFTDIRTY ? ~PTE_SOFT_DIRTY : ~0));
      if (bits & PTE_PRESENT) out.push(bits & PTE_SPECIAL ? -2 : num.frame(slotPfn(k, slot, vpn)));
      else if (bits & PTE_SWAP) {
        const s = k.tables.entry[slot]!;
        const cached = k.swap.cache[s]!;
        out.push(num.slot(s)).push(num.value(k.swap.data[s]!)).push(k.swap.count[s]!).push(cached < 0 ? -1 : num.frame(cached));
      } else if (bits & PTE_DEVICE_EXCLUSIVE) out.push(num.frame(k.tables.entry[slot]!));
      const c = cellBuf;
      if (!r.ideal.cellInto(p.name, vpn, c) || c[1]! < 0) {
        out.push(-1);
      } else {
        out.push(num.value(c[0]!)).push(c[2]!).push(c[3] ? num.get(N_CELL, c[1]!) : -1);
        const m = r.ideal.maybeOf(c[1]!);
        if (m !== undefined) pushSortedValues(m, num, out, -3);
      }
    }
  }
  // KSM's rmap items on stable nodes, by address: ksmd's next pass merges into a KSM page only
  // if one hangs on it (an item on a page no longer in the stable tree counts for nothing).
  if (mm.ksmItems !== null && p.alive) {
    out.push(-15);
    for (const [vpn, pfn] of [...mm.ksmItems].sort((a, b) => a[0] - b[0])) if (isStableKsm(k, pfn)) out.push(vpn - MMAP_BASE_VPN).push(num.frame(pfn));
  }
  // KSM's remembered checksums, by address: a page merges only where its value is the one remembered.
  if (mm.ksmChecksums !== null && p.alive) {
    out.push(-17);
    for (const [vpn, value] of [...mm.ksmChecksums].sort((a, b) => a[0] - b[0])) out.push(vpn - MMAP_BASE_VPN).push(num.value(value));
  }
  // KSM's smart scan states (age and remaining skips), by address: which later passes leave a page out.
  if (mm.ksmAges !== null && p.alive) {
    out.push(-18);
    for (const [vpn, state] of [...mm.ksmAges].sort((a, b) => a[0] - b[0])) out.push(vpn - MMAP_BASE_VPN).push(state);
  }
  taskKey(r, p, num, out);
}

/** A frame's number, -1 for none. */
function frameNum(pfn: number, num: Numbering): number {
  return pfn < 0 ? -1 : num.frame(pfn);
}

/** A pending kernel path (v1.1 `&`): everything its next steps depend on. */
function taskKey(r: Runner, p: ProcT, num: Numbering, out: Words): void {
  const t = p.task;
  if (!t) {
    out.push(-7);
    return;
  }
  switch (t.kind) {
    case 'fork':
      out.push(-8).push(FORK_PHASES.indexOf(t.phase)).push(t.pair).push(t.vpn).push(t.seenBits).push(frameNum(t.seenPfn, num)).push(frameNum(t.newPfn, num)).push(t.child >= 0 ? 1 : 0);
      break;
    case 'gup':
      out.push(-9).push(GUP_PHASES.indexOf(t.phase)).push(t.page).push(t.lo).push(t.req.pin ? 1 : 0).push(t.req.write ? 1 : 0).push(t.req.fast ? 1 : 0).push(t.seq < 0 ? -1 : r.k.mms[t.mm]!.writeProtectSeq - t.seq).push(t.readBits).push(frameNum(t.readPfn, num));
      for (let i = 0; i < t.handle.frames.length; i++) out.push(frameNum(t.handle.frames[i]!, num)).push(t.handle.refs[i]!).push(t.fallback[i] ? 1 : 0);
      break;
    case 'write':
      out.push(-10).push(WRITE_PHASES.indexOf(t.phase)).push(t.vpn).push(t.hi).push(num.value(t.value)).push(t.seenBits).push(frameNum(t.seenPfn, num)).push(frameNum(t.newPfn, num)).push(t.locked ? 1 : 0);
      break;
  }
}

const FORK_PHASES: readonly string[] = ['begin', 'check', 'apply', 'alloc', 'install', 'next', 'end'];
const GUP_PHASES: readonly string[] = ['read', 'grab', 'end', 'slow'];
const WRITE_PHASES: readonly string[] = ['fault', 'install', 'store'];

/** Reused between calls: the encoding is read (hashed or copied) before the next one. */
const words = new Words();
/** Per-thread signatures (each thread's key with its own numbering) and those numberings, reused. */
const sigs: Words[] = [];
const sigNums: Numbering[] = [];
const globalNum = new Numbering();
const procBuf: ProcT[] = [];
let nProcs = 0;
let pending = false;
const collectProc = (p: ProcT): void => {
  procBuf[nProcs++] = p;
  if (p.task !== null) pending = true;
};
const orderBuf: number[] = [];
const rankBuf: number[] = [];
const groupBuf: string[] = [];

/** Does some handle belong to this thread? */
function holdsHandle(r: Runner, name: string): boolean {
  for (const lh of r.handles.values()) if (lh.proc === name) return true;
  return false;
}

/**
 * The canonical encoding of the runner's state as integers, in a buffer reused by the next call
 * (read words a[0..n) before it): two states with the same encoding behave the same.
 */
export function refCanonicalEncode(r: Runner): Words {
  const procs = procBuf;
  nProcs = 0;
  pending = false;
  r.procs.forEach(collectProc);
  let gone = 0;
  for (let i = 0; i < nProcs; i++) {
    const p = procs[i]!;
    if (p.alive || p.task !== null || holdsHandle(r, p.name)) procs[i - gone] = p;
    else gone++;
  }
  nProcs -= gone;
  adMask = pending ? ~0 : ~(PTE_YOUNG | PTE_DIRTY);
  // Order threads by a signature that ignores their names and global numbering (each one's key
  // with its own numbering): it decides which renamings share an encoding.
  while (sigs.length < nProcs) {
    sigs.push(new Words());
    sigNums.push(new Numbering());
  }
  const order = orderBuf;
  for (let i = 0; i < nProcs; i++) {
    const o = sigs[i]!;
    o.n = 0;
    sigNums[i]!.reset();
    procKey(r, procs[i]!, sigNums[i]!, o);
    // Insertion sort by signature, then position (a few threads).
    let j = i - 1;
    while (j >= 0 && (textOrder(sigs[order[j]!]!, o) || order[j]! - i) > 0) {
      order[j + 1] = order[j]!;
      j--;
    }
    order[j + 1] = i;
  }
  const out = words;
  out.n = 0;
  out.push(gone);
  for (let n = 0; n < nProcs; n++) rankBuf[order[n]!] = n;
  const groups = groupBuf;
  let nGroups = 0;
  // Each thread's key again, in that order, with one numbering from nothing.
  const num = globalNum;
  num.reset();
  for (let n = 0; n < nProcs; n++) {
    const p = procs[order[n]!]!;
    let g = 0;
    while (g < nGroups && groups[g] !== p.group) g++;
    if (g === nGroups) groups[nGroups++] = p.group;
    out.push(-11).push(g);
    procKey(r, p, num, out);
  }
  collectHandles(r);
  restKey(r, procs, rankBuf, nProcs, groups, nGroups, num, out);
  return out;
}

/** The reference encoding of the runner's state, as a new array. */
export function refCanonicalWords(r: Runner): number[] {
  const w = refCanonicalEncode(r);
  return Array.from(w.a.subarray(0, w.n));
}
