// The page tables' part of the accounting check (accounting.ts), kept from step to step for a
// run's steps: what the full check's walk of every live mm's tables counts (each frame's expected
// mapcount and references from PTEs and huge PMDs, each swap slot's PTEs, each folio's PMDs, each
// mm's tables and RSS, the tables reachable), updated from what was written to the tables since
// the last check (TableArena.takeWritten: each entry's value before and after each write).
//
// It answers only "the walk would find nothing": every condition under which the full walk
// reports a problem (a PTE naming a freed frame, a writable PTE of a page that is not
// anon-exclusive, a table's count of entries, an mm's counters...) makes `suspect` true, and the
// caller then runs the full check, whose report is the answer. The frame table logs the frames
// written (FrameTable.startLog): of those alone, the few flags the counts depend on (PG_INUSE,
// PG_ANON, PG_SHMEM, PG_LARGE, PG_HUGETLB) are compared, per frame the tables reference, with what
// the counts were made with (any change starts the counts over), and whether a frame is bad for
// the walk (referenced and free, writable and not exclusive) is decided again for those and for
// the frames whose counts the table writes changed (recheck); the rest is read where the check
// reads it. The frames written and recounted are listed (countChanged) for the frames' part of the
// rest of the check (incremental-rest.ts).

import {
  LEVEL_PMD, LEVEL_PTE, PG_ANON, PG_ANON_EXCLUSIVE, PG_HUGETLB, PG_INUSE, PG_LARGE, PG_SHMEM, PMD_LEAF, PTE_DEVICE_EXCLUSIVE,
  PTE_PRESENT, PTE_SPECIAL, PTE_SWAP, PTE_WRITE, PTRS_PER_TABLE, TABLE_SHIFT, HPAGE_PMD_NR,
} from '../core/constants.js';
import type { Kernel } from '../core/kernel.js';
import type { MmCounterLog } from '../core/mm.js';
import type { TableArena } from '../core/pgtable.js';
import type { FrameTable } from '../core/frames.js';
import { exclusiveEntryMapped } from '../core/exclusive.js';
import { growTypedArray } from '../core/frames.js';
import { StampList } from '../core/stamplist.js';

/** The frame flags the counts depend on: a change of one on a frame the tables reference starts over. */
const CLASS_BITS = PG_INUSE | PG_ANON | PG_SHMEM | PG_LARGE | PG_HUGETLB;

/** Pfns and swap slots past this are counted as suspect, not indexed. */
const INDEX_LIMIT = 1 << 24;

/** What one mm's tables were last found to reach, and the counts made of it. */
interface MmReach {
  /** Upper tables (PGD, PUD, PMD) reached, in walk order. */
  uppers: number[];
  /** PTE tables reached. */
  ptes: number[];
  /** Huge PMDs reached: slot, head, bits, and 1 when counted as hugetlb, four numbers each. */
  huge: number[];
  /** 1 when it was alive with no PGD (the walk would read the null table): suspect. */
  bad: number;
  tables: number;
  anon: number;
  shmem: number;
  hugetlb: number;
}

export class IncrementalTables implements MmCounterLog {
  /** The kernel and arenas the counts are of (another one: start over). */
  private k: Kernel | null = null;
  private t: TableArena | null = null;
  private f: FrameTable | null = null;
  /** Per frame: its flags as the last check saw them. */
  private sFlags = new Uint16Array(0);
  /** Per frame: PTE maps (and 6.15's device-exclusive entries), references, writable PTEs. */
  expMap = new Int32Array(0);
  expRef = new Int32Array(0);
  private wr = new Int32Array(0);
  /** Per frame: 1 when suspect() would find it bad (referenced and free, or writable and not exclusive); how many are. */
  private badF = new Uint8Array(0);
  private badFrames = 0;
  /** The profile's PG_anon_exclusive (a writable PTE of a page not exclusive is bad). */
  private anonEx = false;
  /** Highest frame indexed, +1. */
  private frameHi = 0;
  /** Per block: huge PMDs mapping the folio there, writable ones. */
  entire = new Int32Array(0);
  private wrPmd = new Int32Array(0);
  /** Per swap slot: swap PTEs naming it; highest slot named, +1. */
  swap = new Int32Array(0);
  private swapHi = 0;
  /**
   * Per table, whatever its level (a table freed and taken again at another level between two
   * checks is diffed entry by entry all the same): entries with bits (what a PTE table's count
   * counts), entries naming something (an upper table's), and those or huge PMDs (a PMD table's).
   */
  private cntBits = new Int32Array(0);
  private cntEntry = new Int32Array(0);
  private cntPmd = new Int32Array(0);
  /** Per table: live-mm visits as a PTE table (its entries counted while > 0), as an upper table, the level of that visit, and its mm. */
  private reach = new Int32Array(0);
  private upReach = new Int32Array(0);
  private upLevel = new Uint8Array(0);
  private upOwner = new Int32Array(0);
  /** Per reached PTE table: anonymous and shmem pages it maps (charged to its owner if it reaches it). */
  private anonT = new Int32Array(0);
  private shmemT = new Int32Array(0);
  /** Per table: its owner as the last check saw it; whether it is reached with a count of entries not its own. */
  private sOwner = new Int32Array(0);
  private badT = new Uint8Array(0);
  /** Tables touched in this update (stamp per table, the list). */
  private tStamp = new Int32Array(0);
  private touched: number[] = [];
  private round = 1;
  /** Per mm id: what it reaches. */
  private mms: (MmReach | undefined)[] = [];
  /** Mms in this update's list (stamp per id) and the list. */
  private mStamp = new Int32Array(0);
  private affected: number[] = [];
  /** k.mms.length at the last check. */
  private mmsSeen = 0;
  /** Mms whose counters changed since the last check (counterChanged), flagged per id and listed. */
  private pendingFlag = new Uint8Array(0);
  private pending: number[] = [];
  /** Per mm id: 1 when alive with counters other than its tables' counts; how many are. */
  private badMm = new Uint8Array(0);
  private badMms = 0;
  /** Tables reachable (PTE tables once, upper tables per visit, as the walk's `physical`). */
  tablesReached = 0;
  /** Entries or states under which the walk would report a problem, counted. */
  private bad = 0;
  private badTables = 0;
  private hugetlbPmds = 0;
  private devxMapped = false;

  /** How many times the counts started over (reset): every frame's counts may have changed. */
  resets = 0;
  /** Frames written (the frame table's log) or whose counts (expMap, expRef) changed, since clearCountChanged. */
  private changed = new StampList();

  /** The frames written or counted again since the last clearCountChanged, each once (a view, valid until the next update). */
  get countChanged(): Int32Array {
    return this.changed.listed;
  }

  clearCountChanged(): void {
    this.changed.clear();
  }

  /**
   * Update to k's state; false when the walk would report something (the caller runs the full
   * check). The frame table's log is read, not cleared: the caller clears it (FrameTable.clearLog).
   */
  update(k: Kernel): boolean {
    const t = k.tables;
    const f = k.frames;
    if (this.k !== k || this.t !== t || this.f !== f || !t.logged || t.logLost || !f.logs || f.logLost || this.classChanged(k)) {
      // reset() walks every mm: each frame counted was rechecked there, with the flags it has now.
      this.reset(k);
      this.takeFlags(k);
    } else {
      this.apply(k);
      this.takeLoggedFlags(k);
      // A frame's flags changed (the log); its references were rechecked where apply() counted them.
      // Every frame written is listed as changed (countChanged), counted by the tables or not.
      const w = f.loggedFrames;
      this.changed.grow(f.top);
      for (let i = 0; i < w.length; i++) {
        this.changed.add(w[i]!);
        if (w[i]! < this.badF.length) this.recheck(w[i]!);
      }
    }
    return !this.suspect(k);
  }

  /** Mm id's counters changed (Mm's setters): it is counted again at the next check. */
  counterChanged(id: number): void {
    if (this.pendingFlag.length <= id) this.pendingFlag = growTypedArray(this.pendingFlag, Math.max(id + 1, this.pendingFlag.length * 2));
    if (this.pendingFlag[id] !== 0) return;
    this.pendingFlag[id] = 1;
    this.pending.push(id);
  }

  /** Start over: nothing counted, every table written, every mm to walk. */
  private reset(k: Kernel): void {
    const t = k.tables;
    this.k = k;
    this.resets++;
    // Every mm notes its counters' changes here from now on.
    k.mmCounterLog = this;
    for (const mm of k.mms) mm.counterLog = this;
    this.pendingFlag = new Uint8Array(k.mms.length + 16);
    this.pending.length = 0;
    this.badMm = new Uint8Array(k.mms.length + 16);
    this.badMms = 0;
    this.t = t;
    this.f = k.frames;
    this.devxMapped = exclusiveEntryMapped(k.profile);
    t.startLog();
    k.frames.startLog();
    const cap = t.capacity;
    this.cntBits = new Int32Array(cap);
    this.cntEntry = new Int32Array(cap);
    this.cntPmd = new Int32Array(cap);
    this.reach = new Int32Array(cap);
    this.upReach = new Int32Array(cap);
    this.upLevel = new Uint8Array(cap);
    this.upOwner = new Int32Array(cap).fill(-1);
    this.anonT = new Int32Array(cap);
    this.shmemT = new Int32Array(cap);
    this.sOwner = new Int32Array(cap).fill(-1);
    this.badT = new Uint8Array(cap);
    this.tStamp = new Int32Array(cap);
    const fcap = Math.max(k.frames.top, 16);
    this.anonEx = k.profile.anonExclusive;
    this.badF = new Uint8Array(fcap);
    this.changed.restart(fcap);
    this.badFrames = 0;
    this.sFlags = new Uint16Array(fcap);
    this.expMap = new Int32Array(fcap);
    this.expRef = new Int32Array(fcap);
    this.wr = new Int32Array(fcap);
    this.frameHi = 0;
    this.entire = new Int32Array((fcap >>> 9) + 1);
    this.wrPmd = new Int32Array((fcap >>> 9) + 1);
    this.swap = new Int32Array(Math.max(k.swap.top, 16));
    this.swapHi = 0;
    this.mms = [];
    this.mStamp = new Int32Array(0);
    this.mmsSeen = 0;
    this.tablesReached = 0;
    this.bad = this.badTables = this.hugetlbPmds = 0;
    this.round = 1;
    // Every table counted from its entries; every mm walked.
    this.nextRound();
    for (let i = 1; i < t.top; i++) {
      this.tableChanged(i);
      this.countEntries(t, i);
    }
    this.walkAffected(k);
  }

  /** The tables written and the mms made since the last check. */
  private apply(k: Kernel): void {
    const t = k.tables;
    this.nextRound();
    if (this.reach.length < t.capacity) this.growTables(t.capacity);
    t.takeWritten(this.tableChanged, this.slotWritten);
    this.walkAffected(k);
  }

  /** Table i's counts of entries, from its entries (reset: nothing counted before). */
  private countEntries(t: TableArena, i: number): void {
    const base = i << TABLE_SHIFT;
    let bits = 0, named = 0, pmd = 0;
    for (let s = base; s < base + PTRS_PER_TABLE; s++) {
      const e = t.entry[s]!, b = t.bits[s]!;
      if (b !== 0) bits++;
      if (e !== 0) named++;
      if (e !== 0 || b & PMD_LEAF) pmd++;
    }
    this.cntBits[i] = bits;
    this.cntEntry[i] = named;
    this.cntPmd[i] = pmd;
  }

  /** Table i changed (its entries, counts or owner; allocated, freed): its visitor and owners are walked again. */
  private readonly tableChanged = (i: number): void => {
    if (this.tStamp[i] === this.round) return;
    const t = this.t!;
    this.touch(i);
    if (this.upOwner[i]! >= 0) this.affect(this.upOwner[i]!);
    if (this.sOwner[i]! >= 0) this.affect(this.sOwner[i]!);
    if (t.owner[i]! >= 0) this.affect(t.owner[i]!);
    this.sOwner[i] = t.owner[i]!;
  };

  /**
   * Entry `slot` went from (e0, b0) to (e1, b1): out with the one, in with the other. Each write
   * of a slot since the last check comes in turn, so they add up to the change from what that
   * check saw to what the table holds.
   */
  private readonly slotWritten = (slot: number, e0: number, b0: number, e1: number, b1: number): void => {
    const i = slot >>> TABLE_SHIFT;
    this.tableChanged(i);
    if (e0 === e1 && b0 === b1) return;
    this.cntBits[i]! += (b1 !== 0 ? 1 : 0) - (b0 !== 0 ? 1 : 0);
    this.cntEntry[i]! += (e1 !== 0 ? 1 : 0) - (e0 !== 0 ? 1 : 0);
    this.cntPmd[i]! += (e1 !== 0 || b1 & PMD_LEAF ? 1 : 0) - (e0 !== 0 || b0 & PMD_LEAF ? 1 : 0);
    if (this.reach[i]! > 0) {
      this.pteEntry(i, e0, b0, -1);
      this.pteEntry(i, e1, b1, 1);
    }
  };

  /** Walk again each mm noted (and each new one): out with what it reached, in with what it reaches. */
  private walkAffected(k: Kernel): void {
    for (let id = this.mmsSeen; id < k.mms.length; id++) this.affect(id);
    for (const id of this.pending) {
      this.pendingFlag[id] = 0;
      this.affect(id);
    }
    this.pending.length = 0;
    this.mmsSeen = k.mms.length;
    const list = this.affected;
    for (let i = 0; i < list.length; i++) this.unreachMm(list[i]!);
    for (let i = 0; i < list.length; i++) this.reachMm(k, list[i]!);
    for (let i = 0; i < list.length; i++) this.countMm(k, list[i]!);
    for (let i = 0; i < list.length; i++) this.compareMm(k, list[i]!);
    // Tables whose entries, counts or visits changed: is their count of entries right?
    const t = k.tables;
    for (let i = 0; i < this.touched.length; i++) {
      const tb = this.touched[i]!;
      const b = this.badCount(t, tb) ? 1 : 0;
      this.badTables += b - this.badT[tb]!;
      this.badT[tb] = b;
    }
    list.length = 0;
    this.touched.length = 0;
  }

  /** Out with what mm id reached when last walked. */
  private unreachMm(id: number): void {
    const r = this.mms[id];
    if (r === undefined) return;
    this.bad -= r.bad;
    for (const u of r.uppers) {
      this.upReach[u]!--;
      this.tablesReached--;
      if (this.upOwner[u] === id) this.upOwner[u] = -1;
      this.touch(u);
    }
    for (const p of r.ptes) {
      this.touch(p);
      if (--this.reach[p]! === 0) {
        this.tablesReached--;
        this.tableEntries(p, -1);
      }
    }
    const h = r.huge;
    for (let i = 0; i < h.length; i += 4) this.hugePmd(h[i + 1]!, h[i + 2]!, h[i + 3]!, -1);
    r.uppers.length = r.ptes.length = r.huge.length = 0;
    r.bad = 0;
  }

  /** In with what mm id reaches now. */
  private reachMm(k: Kernel, id: number): void {
    const mm = k.mms[id];
    if (mm === undefined || !mm.alive) return;
    let r = this.mms[id];
    if (r === undefined) this.mms[id] = r = { uppers: [], ptes: [], huge: [], bad: 0, tables: 0, anon: 0, shmem: 0, hugetlb: 0 };
    if (mm.pgd <= 0) {
      r.bad = 1;
      this.bad++;
      return;
    }
    this.reachTable(k.tables, id, r, mm.pgd, 3);
  }

  /** The walk's descent through an upper table (every entry not none: the table's count is checked apart). */
  private reachTable(t: TableArena, id: number, r: MmReach, table: number, level: number): void {
    r.uppers.push(table);
    this.upReach[table]!++;
    this.upLevel[table] = level;
    this.tablesReached++;
    this.upOwner[table] = id;
    this.touch(table);
    const tb = table << TABLE_SHIFT;
    for (let i = 0, left = level === LEVEL_PMD ? this.cntPmd[table]! : this.cntEntry[table]!; i < PTRS_PER_TABLE && left > 0; i++) {
      const child = t.entry[tb + i]!;
      if (level === LEVEL_PMD && t.bits[tb + i]! & PMD_LEAF) {
        left--;
        const bits = t.bits[tb + i]!;
        const hugetlb = !(bits & PTE_SPECIAL) && !this.badHead(child) && this.flagsOf(child) & PG_HUGETLB ? 1 : 0;
        r.huge.push(tb + i, child, bits, hugetlb);
        this.hugePmd(child, bits, hugetlb, 1);
      } else if (child !== 0) {
        left--;
        if (level - 1 === LEVEL_PTE) {
          r.ptes.push(child);
          this.touch(child);
          if (this.reach[child]!++ === 0) {
            this.tablesReached++;
            this.tableEntries(child, 1);
          }
        } else this.reachTable(t, id, r, child, level - 1);
      }
    }
  }

  /** mm id's counts: its upper tables, the PTE tables it owns and reaches, its huge PMDs. */
  private countMm(k: Kernel, id: number): void {
    const r = this.mms[id];
    if (r === undefined) return;
    const owner = k.tables.owner;
    let tables = r.uppers.length, anon = 0, shmem = 0, hugetlb = 0;
    for (const p of r.ptes) {
      if (owner[p] !== id) continue;
      tables++;
      anon += this.anonT[p]!;
      shmem += this.shmemT[p]!;
    }
    const h = r.huge;
    for (let i = 0; i < h.length; i += 4) {
      if (h[i + 3]) hugetlb += HPAGE_PMD_NR;
      else {
        tables++;
        if (!(h[i + 2]! & PTE_SPECIAL) && !this.badHead(h[i + 1]!)) anon += HPAGE_PMD_NR;
      }
    }
    r.tables = tables;
    r.anon = anon;
    r.shmem = shmem;
    r.hugetlb = hugetlb;
  }

  /**
   * Would a visit of table tb find its count of entries wrong (walkTables' check of a PTE table;
   * an upper table's count bounds the walk's loop), or is it reached both as a PTE table and as
   * an upper one?
   */
  private badCount(t: TableArena, tb: number): boolean {
    const filled = t.filled[tb]!;
    if (this.reach[tb]! > 0 && (filled !== this.cntBits[tb] || this.upReach[tb]! > 0)) return true;
    return this.upReach[tb]! > 0 && filled !== (this.upLevel[tb] === LEVEL_PMD ? this.cntPmd[tb] : this.cntEntry[tb]);
  }

  /** Whether mm id's counters are what its tables count (the full walk's comparisons), kept in badMm. */
  private compareMm(k: Kernel, id: number): void {
    const mm = k.mms[id];
    const r = this.mms[id];
    const b = mm === undefined || !mm.alive ? 0
      : r === undefined || r.tables !== mm.nrTables || r.anon !== mm.rssAnon || r.hugetlb !== mm.hugetlbPages || r.shmem !== mm.rssShmem ? 1 : 0;
    if (this.badMm.length <= id) this.badMm = growTypedArray(this.badMm, Math.max(id + 1, this.badMm.length * 2));
    this.badMms += b - this.badMm[id]!;
    this.badMm[id] = b;
  }

  /**
   * Every entry of PTE table p, in (1) or out (-1), as the table holds them: the writes since the
   * last check were taken first (slotWritten), so what is counted of a reached table is always
   * what it holds.
   */
  private tableEntries(p: number, sign: number): void {
    const base = p << TABLE_SHIFT;
    const e = this.t!.entry, b = this.t!.bits;
    for (let s = base; s < base + PTRS_PER_TABLE; s++) if (b[s] !== 0) this.pteEntry(p, e[s]!, b[s]!, sign);
  }

  /** One entry of reached PTE table p, counted in (1) or out (-1): walkTables' first visit. */
  private pteEntry(p: number, e: number, bits: number, sign: number): void {
    if (bits === 0) return;
    if (bits & PTE_SWAP) {
      if (e < 0 || e >= INDEX_LIMIT) this.bad += sign;
      else {
        if (e >= this.swap.length) this.swap = growTypedArray(this.swap, Math.max(e + 1, this.swap.length * 2));
        this.swap[e]! += sign;
        if (e >= this.swapHi) this.swapHi = e + 1;
      }
      return;
    }
    const devx = (bits & PTE_DEVICE_EXCLUSIVE) !== 0;
    if (!devx && (!(bits & PTE_PRESENT) || bits & PTE_SPECIAL)) return;
    if (e <= 0 || e >= INDEX_LIMIT) {
      this.bad += sign;
      return;
    }
    this.growFrames(e + 1);
    this.expRef[e]! += sign;
    if (devx) {
      if (this.devxMapped) this.expMap[e]! += sign;
      this.anonT[p]! += sign;
      this.recheck(e);
      return;
    }
    this.expMap[e]! += sign;
    if (bits & PTE_WRITE) this.wr[e]! += sign;
    this.recheck(e);
    const fl = this.flagsOf(e);
    if (fl & PG_ANON) this.anonT[p]! += sign;
    else if (fl & PG_SHMEM) this.shmemT[p]! += sign;
  }

  /** A huge PMD reached, in or out: checkHugePmd's counts (the deposited table and RSS are countMm's). */
  private hugePmd(head: number, bits: number, hugetlb: number, sign: number): void {
    if (bits & PTE_SPECIAL) return;
    if (this.badHead(head)) {
      this.bad += sign;
      return;
    }
    this.growFrames(head + 1);
    this.expRef[head]! += sign;
    this.recheck(head);
    this.entire[head >>> 9]! += sign;
    if (bits & PTE_WRITE) this.wrPmd[head >>> 9]! += sign;
    // hugetlb's check of its VMA is the full check's.
    this.hugetlbPmds += hugetlb * sign;
  }

  /** A huge PMD's frame that is not a 512-aligned index (the rest of the head's check is suspect()'s). */
  private badHead(head: number): boolean {
    return head <= 0 || head >= INDEX_LIMIT || (head & (HPAGE_PMD_NR - 1)) !== 0;
  }

  /**
   * Would the full walk (or the comparisons after it that use only its counts) report anything?
   * The frames the tables reference must be live and what they were counted as; each mm's
   * counters and the tables in use what the walk counts.
   */
  private suspect(k: Kernel): boolean {
    if (this.bad !== 0 || this.badTables !== 0 || this.hugetlbPmds !== 0 || this.badMms !== 0) return true;
    if (this.tablesReached !== k.tables.used) return true;
    const f = k.frames;
    const top = f.top;
    if (this.frameHi > top) return true;
    // Frames referenced and free, or writable and not exclusive: counted as they change (recheck).
    if (this.badFrames !== 0) return true;
    const fl = f.flags;
    const anonEx = this.anonEx;
    const ent = this.entire, wp = this.wrPmd;
    for (let b = 1, n = Math.min(ent.length, (top + HPAGE_PMD_NR - 1) >>> 9); b < n; b++) {
      if (ent[b] === 0) continue;
      const x = fl[b << 9]!;
      if ((x & (PG_INUSE | PG_LARGE)) !== (PG_INUSE | PG_LARGE)) return true;
      if (anonEx && wp[b] !== 0 && !(x & PG_ANON_EXCLUSIVE)) return true;
    }
    // Swap PTEs naming slots the device never handed out: the walk leaves them uncounted.
    for (let s = k.swap.top; s < this.swapHi; s++) if (this.swap[s] !== 0) return true;
    return false;
  }

  /** The flags the counts were made with, for the next update's classChanged. */
  private takeFlags(k: Kernel): void {
    const n = this.flagsRoom(k);
    k.frames.copyFlagsOut(n, this.sFlags);
    if (this.frameHi > n) this.sFlags.fill(0, n, this.frameHi);
  }

  /** The flags of the frames written since the last check (the frame table's log), as takeFlags takes all. */
  private takeLoggedFlags(k: Kernel): void {
    const f = k.frames;
    const fl = f.flags;
    const n = this.flagsRoom(k);
    const sf = this.sFlags;
    const w = f.loggedFrames;
    for (let i = 0; i < w.length; i++) {
      const pfn = w[i]!;
      if (pfn < n) sf[pfn] = fl[pfn]!;
    }
  }

  /** sFlags made room for the frames the table has (handed out, with flags); how many. */
  private flagsRoom(k: Kernel): number {
    const n = Math.min(k.frames.top, k.frames.flags.length);
    if (this.sFlags.length < n) this.sFlags = growTypedArray(this.sFlags, Math.max(n, this.expRef.length));
    return n;
  }

  /**
   * Did a flag the counts depend on change on a frame the tables reference? Only a frame written
   * since the last check can have (the frame table's log: every write to a frame's flags is
   * logged), and sFlags holds what the others had then.
   */
  private classChanged(k: Kernel): boolean {
    const f = k.frames;
    const fl = f.flags, sf = this.sFlags, ref = this.expRef;
    const n = Math.min(this.frameHi, f.top);
    const w = f.loggedFrames;
    for (let i = 0; i < w.length; i++) {
      const pfn = w[i]!;
      if (pfn >= 1 && pfn < n && ref[pfn] !== 0 && ((fl[pfn]! ^ sf[pfn]!) & CLASS_BITS) !== 0) return true;
    }
    return false;
  }

  private flagsOf(pfn: number): number {
    const fl = this.f!.flags;
    return pfn < fl.length ? fl[pfn]! : 0;
  }

  /** Frame pfn (>= 1, indexed) is bad or not now, by its flags and the counts of it: badFrames kept. */
  private recheck(pfn: number): void {
    if (pfn < 1) return;
    this.changed.add(pfn);
    const x = this.flagsOf(pfn);
    const b = (this.expRef[pfn] !== 0 && !(x & PG_INUSE)) || (this.anonEx && this.wr[pfn] !== 0 && (x & (PG_ANON | PG_ANON_EXCLUSIVE)) === PG_ANON) ? 1 : 0;
    const was = this.badF[pfn]!;
    if (b !== was) {
      this.badFrames += b - was;
      this.badF[pfn] = b;
    }
  }

  private growFrames(n: number): void {
    if (n > this.frameHi) this.frameHi = n;
    if (n <= this.expRef.length) return;
    const cap = Math.max(n, this.expRef.length * 2);
    this.badF = growTypedArray(this.badF, cap);
    this.changed.grow(cap);
    this.expMap = growTypedArray(this.expMap, cap);
    this.expRef = growTypedArray(this.expRef, cap);
    this.wr = growTypedArray(this.wr, cap);
    this.sFlags = growTypedArray(this.sFlags, cap);
    this.entire = growTypedArray(this.entire, (cap >>> 9) + 1);
    this.wrPmd = growTypedArray(this.wrPmd, (cap >>> 9) + 1);
  }

  private growTables(cap: number): void {
    this.cntBits = growTypedArray(this.cntBits, cap);
    this.cntEntry = growTypedArray(this.cntEntry, cap);
    this.cntPmd = growTypedArray(this.cntPmd, cap);
    this.reach = growTypedArray(this.reach, cap);
    this.upReach = growTypedArray(this.upReach, cap);
    this.upLevel = growTypedArray(this.upLevel, cap);
    const n = this.upOwner.length;
    this.upOwner = growTypedArray(this.upOwner, cap);
    this.upOwner.fill(-1, n);
    this.sOwner = growTypedArray(this.sOwner, cap);
    this.sOwner.fill(-1, n);
    this.anonT = growTypedArray(this.anonT, cap);
    this.shmemT = growTypedArray(this.shmemT, cap);
    this.badT = growTypedArray(this.badT, cap);
    this.tStamp = growTypedArray(this.tStamp, cap);
  }

  private nextRound(): void {
    this.round++;
  }

  private touch(i: number): void {
    if (this.tStamp[i] === this.round) return;
    this.tStamp[i] = this.round;
    this.touched.push(i);
  }

  private affect(id: number): void {
    if (this.mStamp.length <= id) this.mStamp = growTypedArray(this.mStamp, Math.max(id + 1, this.mStamp.length * 2));
    if (this.mStamp[id] === this.round) return;
    this.mStamp[id] = this.round;
    this.affected.push(id);
  }
}
