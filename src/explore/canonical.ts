// The canonical key of an explorer state: the whole state (model and ideal) written out with
// frames, values and shared cells renumbered by first appearance, and processes in an order
// that does not depend on their names. Two states with the same key behave the same.

import { PG_KSM, PG_SWAPCACHE, PTE_SOFT_DIRTY, VM_SOFTDIRTY, PTE_DEVICE_EXCLUSIVE, PTE_DIRTY, PTE_PRESENT, PTE_SPECIAL, PTE_SWAP, PTE_YOUNG } from '../core/constants.js';
import type { Proc, Runner } from '../engine/run.js';
import { pmdSlotOf, pteSlot } from '../core/walk.js';

type ProcT = Proc;

class Numbering {
  frames = new Map<number, number>();
  values = new Map<number, number>([[0, 0]]);
  cells = new Map<number, number>();
  slots = new Map<number, number>();
  tables = new Map<number, number>();
  table(t: number): number {
    let n = this.tables.get(t);
    if (n === undefined) this.tables.set(t, (n = this.tables.size));
    return n;
  }
  slot(s: number): number {
    let n = this.slots.get(s);
    if (n === undefined) this.slots.set(s, (n = this.slots.size));
    return n;
  }
  frame(pfn: number): number {
    if (pfn === 0) return -2; // the zero page
    let n = this.frames.get(pfn);
    if (n === undefined) this.frames.set(pfn, (n = this.frames.size));
    return n;
  }
  value(v: number): number {
    let n = this.values.get(v);
    if (n === undefined) this.values.set(v, (n = this.values.size));
    return n;
  }
  cell(c: number): number {
    let n = this.cells.get(c);
    if (n === undefined) this.cells.set(c, (n = this.cells.size));
    return n;
  }
}

/**
 * The accessed and dirty bits never decide anything in the model, except a pending kernel
 * path's pte_same() re-check; while no path is pending they are left out of the key.
 */
let adMask = ~0;

function procKey(r: Runner, p: ProcT, num: Numbering, out: number[]): void {
  const k = r.k;
  const mm = p.mm;
  out.push(p.alive ? 1 : 0, mm.cowPgtable ? 1 : 0, mm.hasPinned ? 1 : 0, mm.ksmSlot, mm.writeProtectSeq & 1, mm.mmapReaders, mm.mmapWriter === p.tid ? 1 : mm.mmapWriter >= 0 ? 2 : 0, mm.uffdForkEvent ? 1 : 0);
  const regions = [...p.regions].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  for (const [, reg] of regions) {
    for (let i = 0; i < reg.n; i++) {
      const vpn = reg.start + i;
      if (!p.alive) {
        out.push(-9);
        continue;
      }
      const vma = p.mm.findVma(vpn);
      out.push(vma === null ? -1 : vma.flags);
      const slot = pteSlot(k, p.mm, vpn);
      const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
      if (mm.cowPgtable) {
        // COW page tables: whether this page goes through a shared table, which one, who is charged.
        const ps = pmdSlotOf(k, mm, vpn);
        const table = ps < 0 ? 0 : k.tables.entry[ps]!;
        out.push(-13, ps < 0 ? -1 : k.tables.bits[ps]!, table === 0 ? -1 : num.table(table), table === 0 ? -1 : k.tables.share[table]!,
          table === 0 ? -1 : k.tables.owner[table] === mm.id ? 1 : k.tables.owner[table]! < 0 ? -1 : 0, mm.rssAnon, mm.nrTables);
      }
      // Soft-dirty bits matter only once clear_refs armed tracking (VM_SOFTDIRTY cleared).
      out.push(bits & adMask & (vma !== null && vma.flags & VM_SOFTDIRTY ? ~PTE_SOFT_DIRTY : ~0));
      if (bits & PTE_PRESENT) out.push(bits & PTE_SPECIAL ? -2 : num.frame(k.tables.entry[slot]!));
      else if (bits & PTE_SWAP) {
        const s = k.tables.entry[slot]!;
        const cached = k.swap.cache[s]!;
        out.push(num.slot(s), num.value(k.swap.data[s]!), k.swap.count[s]!, cached < 0 ? -1 : num.frame(cached));
      } else if (bits & PTE_DEVICE_EXCLUSIVE) out.push(num.frame(k.tables.entry[slot]!));
      const c = r.ideal.cellAt(p.name, vpn);
      if (c === null || c.cell < 0) {
        out.push(-1);
      } else {
        out.push(num.value(c.value), c.flags, c.shared ? num.cell(c.cell) : -1);
        for (const m of r.ideal.maybeAt(c.cell).map((v) => num.value(v)).sort((a, b) => a - b)) out.push(-3, m);
      }
    }
  }
  const held = r.ideal.heldBy(p.group).map((v) => num.value(v)).sort((a, b) => a - b);
  out.push(-4, held.length, ...held);
  taskKey(r, p, num, out);
}

/** A pending kernel path (v1.1 `&`): everything its next steps depend on. */
function taskKey(r: Runner, p: ProcT, num: Numbering, out: number[]): void {
  const t = p.task;
  if (!t) {
    out.push(-7);
    return;
  }
  const fr = (pfn: number): number => (pfn < 0 ? -1 : num.frame(pfn));
  switch (t.kind) {
    case 'fork':
      out.push(-8, ['begin', 'check', 'apply', 'alloc', 'install', 'end'].indexOf(t.phase), t.pair, t.vpn, t.seenBits, fr(t.seenPfn), fr(t.newPfn), t.child >= 0 ? 1 : 0);
      break;
    case 'gup':
      out.push(-9, ['read', 'grab', 'end', 'slow'].indexOf(t.phase), t.page, t.lo, t.req.pin ? 1 : 0, t.req.write ? 1 : 0, t.req.fast ? 1 : 0,
        t.seq < 0 ? -1 : r.k.mms[t.mm]!.writeProtectSeq - t.seq, t.readBits, fr(t.readPfn));
      for (let i = 0; i < t.handle.frames.length; i++) out.push(fr(t.handle.frames[i]!), t.handle.refs[i]!, t.fallback[i] ? 1 : 0);
      break;
    case 'write':
      out.push(-10, ['fault', 'install', 'store'].indexOf(t.phase), t.vpn, t.hi, num.value(t.value), t.seenBits, fr(t.seenPfn), fr(t.newPfn), t.locked ? 1 : 0);
      break;
  }
}

/** Reused between calls: the encoding is read (hashed or copied) before the next one. */
const words: number[] = [];

/**
 * The canonical encoding of the runner's state as integers (the array is reused by the next
 * call): two states with the same encoding behave the same.
 */
export function canonicalWords(r: Runner): number[] {
  const procs = [...r.procs.values()];
  adMask = procs.some((p) => p.task !== null) ? ~0 : ~(PTE_YOUNG | PTE_DIRTY);
  // Order threads by a signature that ignores their names and global numbering. The order is
  // that of the signatures as text: it decides which renamings share an encoding, so the
  // states searched (and counted) are those of the text keys this encoding replaced.
  const sig = procs.map((p) => {
    const o: number[] = [];
    procKey(r, p, new Numbering(), o);
    return o.join(',');
  });
  const order = procs.map((_, i) => i).sort((a, b) => (sig[a]! < sig[b]! ? -1 : sig[a]! > sig[b]! ? 1 : a - b));
  const num = new Numbering();
  const out = words;
  out.length = 0;
  const rank = new Map<string, number>();
  order.forEach((i, n) => rank.set(procs[i]!.name, n));
  const groups = new Map<string, number>();
  for (const i of order) {
    const p = procs[i]!;
    if (!groups.has(p.group)) groups.set(p.group, groups.size);
    out.push(-11, groups.get(p.group)!);
    procKey(r, p, num, out);
  }
  // Handles, in an order given by their holder's rank and address.
  const hs = [...r.handles].sort((a, b) => {
    const ra = rank.get(a[1].proc)! - rank.get(b[1].proc)!;
    return ra !== 0 ? ra : a[1].h.vpn - b[1].h.vpn || (a[1].h.kind < b[1].h.kind ? -1 : a[1].h.kind > b[1].h.kind ? 1 : a[1].h.id - b[1].h.id);
  });
  for (const [name, lh] of hs) {
    const h = lh.h;
    out.push(-5, ['pin', 'gup', 'pipe', 'exclusive'].indexOf(h.kind), rank.get(lh.proc)!, h.write ? 1 : 0, h.longterm ? 1 : 0);
    for (let i = 0; i < h.frames.length; i++) out.push(h.frames[i]! < 0 ? -1 : num.frame(h.frames[i]!), h.refs[i]!, h.revoked?.[i] ?? -1);
    // mremap moved some of its pages: where each is now, relative to where it was taken.
    if (h.vpns) out.push(-13, ...Array.from(h.vpns, (v, i) => v - h.vpn - i));
    const touched = r.grantTouchedOf(name);
    if (touched) out.push(-12, ...touched);
    const st = r.ideal.handleState(name);
    if (st) {
      for (let i = 0; i < st.bound.length; i++) {
        out.push(st.bound[i] ? 1 : 0, st.values[i]! < 0 ? -1 : num.value(st.values[i]!));
        const seen = st.seen[i]!.map((v) => num.value(v)).sort((a, b) => a - b);
        out.push(seen.length, ...seen);
      }
    }
  }
  // Frames, in canonical order.
  const f = r.k.frames;
  out.push(-6);
  for (const [pfn] of [...num.frames].sort((a, b) => a[1] - b[1])) {
    out.push(f.refcount[pfn]!, f.mapcount[pfn]!, f.flags[pfn]!, num.value(f.value[pfn]!), f.flags[pfn]! & PG_KSM && f.inStableTree(pfn) ? 1 : 0);
    if (f.flags[pfn]! & PG_SWAPCACHE) out.push(num.slot(f.priv[pfn]!));
  }
  return out;
}

/** The canonical key of the runner's state, as text (tests, --exact keys are the words). */
export function canonicalKey(r: Runner): string {
  return canonicalWords(r).join(',');
}

/**
 * A 64-bit fingerprint of an encoding (its first n words): two 32-bit hashes (murmur3's mixing, two seeds), each
 * made non-zero (zero marks an empty slot of the visited set), written to out[0] and out[1].
 */
export function fingerprint(w: ArrayLike<number>, out: Int32Array, n = w.length): void {
  let h1 = 0x9747b28c ^ n;
  let h2 = 0x5bd1e995 ^ Math.imul(n, 0x27d4eb2d);
  for (let i = 0; i < n; i++) {
    let k = Math.imul(w[i]! | 0, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h1 ^= k;
    h1 = (h1 << 13) | (h1 >>> 19);
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
    h2 = Math.imul(h2 ^ (w[i]! | 0), 0x85ebca6b);
    h2 ^= h2 >>> 13;
    h2 = (Math.imul(h2, 0xc2b2ae35) + i) | 0;
  }
  out[0] = fmix(h1) || 1;
  out[1] = fmix(h2 ^ h1) || 1;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
