// The accounting invariants, checked after every step: refcount and mapcount equal what maps and
// holds each frame; RSS and page-table counts equal what the tables hold; no freed frame is still
// referenced; a writable PTE of a COW mapping maps an exclusive page (5.19+). The explorer's check
// walks every live mm's tables; a run's keeps what the walk counts from step to step
// (incremental.ts) and walks only when that says the walk may find something, and keeps what
// the rest of the check decides of each frame (incremental-rest.ts), which it runs only when that
// says it may find something.

import {
  HPAGE_PMD_NR, isCowMapping, LEVEL_PMD, LEVEL_PTE, PG_HUGETLB, PG_LARGE, PMD_LEAF, PG_ANON, PG_ANON_EXCLUSIVE, PG_INUSE, PG_SHMEM, PTE_PRESENT, PTE_SPECIAL, PTE_SWAP, PTE_DEVICE_EXCLUSIVE,
  PTE_WRITE, PTRS_PER_TABLE, TABLE_SHIFT, VM_HUGETLB,
} from '../core/constants.js';
import type { Kernel } from '../core/kernel.js';
import type { Mm } from '../core/mm.js';
import type { TableWords } from '../core/pgtable.js';
import { exclusiveEntryMapped } from '../core/exclusive.js';
import { hugetlbReservedByVmas } from '../core/hugetlb.js';
import { forEachPteTable } from '../core/walk.js';
import { IncrementalTables } from './incremental.js';
import { IncrementalFrames } from './incremental-rest.js';
import { heldRefs } from './held-refs.js';

export interface AccountingProblem {
  kind: 'accounting' | 'use-after-free' | 'kernel-bug' | 'frame-leak';
  /** mm id or -1. */
  mm: number;
  /** frame or -1. */
  pfn: number;
  message: string;
}

/** What walkTables() counts in an mm's tables, and the scratch arrays it fills. */
interface Walked {
  tables: number;
  /** Tables first reached from this mm (a COW page table counts once). */
  physical: number;
  anon: number;
  shmem: number;
  hugetlb: number;
  swapCount: Int32Array;
  seen: Uint8Array;
  entire: Int32Array;
}

/** No references held by kernel paths (check()'s default). */
const NO_HELD: readonly number[] = [];

/** What a check that found nothing returns (shared: nothing is made per check). */
const NONE: readonly AccountingProblem[] = [];

/** Scratch arrays reused across checks (the check runs after every step). */
export class AccountingChecker {
  private expMap = new Int32Array(0);
  private expRef = new Int32Array(0);
  private swapCount = new Int32Array(0);
  /** PTE tables already walked (COW page tables are reached from several mms). */
  private seen = new Uint8Array(0);
  /** Per 512-frame block: huge PMDs mapping the large folio there, and pins on its pages. */
  private entire = new Int32Array(0);
  private pins = new Int32Array(0);
  /** What walkTables() counts in one mm (reused from mm to mm). */
  private walked: Walked = { tables: 0, physical: 0, anon: 0, shmem: 0, hugetlb: 0, swapCount: new Int32Array(0), seen: new Uint8Array(0), entire: new Int32Array(0) };

  /** The references besides the tables (heldRefs' triples), reused from check to check. */
  private refs: number[] = [];
  /** The problems the check in progress found (a new array once they are returned). */
  private found: AccountingProblem[] = [];
  /** Add a problem to `found` (made once: the check runs for every new state and finds nothing). */
  private readonly add = (p: AccountingProblem): void => {
    if (this.found.length < 50) this.found.push(p);
  };

  /**
   * `held`: references held by kernel paths in progress (a GUP that grabbed pages, a copy made
   * outside the lock): (frame, references, pins: 1 for a FOLL_PIN's) triples, flat. The problems found (a shared empty array when none).
   */
  check(k: Kernel, final = false, held: readonly number[] = NO_HELD, incremental = false): readonly AccountingProblem[] {
    if (!incremental) return this.checkFull(k, final, held);
    const inc = (this.inc ??= new IncrementalTables());
    const frames = (this.frames ??= new IncrementalFrames());
    // The tables' counts kept from the last check: when the walk would find nothing, the rest
    // of the check reads them; else the full check says what it finds.
    if (!inc.update(k)) {
      k.frames.clearLog();
      frames.invalidate();
      return this.checkFull(k, final, held);
    }
    // The frames' part kept too (it reads the frames written or recounted): when it finds
    // nothing, nothing is found; else the rest of the check, on the tables' counts, says what.
    const quiet = frames.quiet(k, inc, held);
    k.frames.clearLog();
    if (quiet) AccountingChecker.quietChecks++;
    if (quiet && !AccountingChecker.verifyIncremental) return NONE;
    const out = this.restOn(k, inc, final, held);
    if (AccountingChecker.verifyIncremental) {
      if (quiet && out.length > 0) throw new Error(`incremental accounting check: the frames' part found nothing, the rest of the check finds ${JSON.stringify(out)}`);
      this.verify(k, final, held, out);
    }
    return out;
  }

  /** checkRest on the tables' counts kept by `inc`. */
  private restOn(k: Kernel, inc: IncrementalTables, final: boolean, held: readonly number[]): readonly AccountingProblem[] {
    this.prepare(k);
    const top = k.frames.top;
    copyIn(this.expMap, inc.expMap, top);
    copyIn(this.expRef, inc.expRef, top);
    copyIn(this.swapCount, inc.swap, k.swap.top);
    copyIn(this.entire, inc.entire, (top >>> 9) + 1);
    return this.checkRest(k, final, held);
  }

  /** Tests: every incremental check is compared with the full one (problems and counts); a difference throws. */
  static verifyIncremental = false;
  static incrementalChecksVerified = 0;
  /** Incremental checks the kept counts answered alone (IncrementalFrames.quiet: nothing found), for tests. */
  static quietChecks = 0;
  /** The tables' counts kept from check to check (check() with `incremental`). */
  private inc: IncrementalTables | null = null;
  /** The frames' part of the rest of the check kept from check to check. */
  private frames: IncrementalFrames | null = null;

  /** verifyIncremental: the full check of the same state must find the same problems and counts. */
  private verify(k: Kernel, final: boolean, held: readonly number[], out: readonly AccountingProblem[]): void {
    const top = k.frames.top;
    const mine = [this.expMap.slice(0, top), this.expRef.slice(0, top), this.swapCount.slice(0, k.swap.top), this.entire.slice(0, (top >>> 9) + 1)];
    const full = this.checkFull(k, final, held);
    const theirs = [this.expMap.slice(0, top), this.expRef.slice(0, top), this.swapCount.slice(0, k.swap.top), this.entire.slice(0, (top >>> 9) + 1)];
    const a = JSON.stringify(out), b = JSON.stringify(full);
    if (a !== b) throw new Error(`incremental accounting check differs from the full one:\n incremental ${a}\n full ${b}`);
    const names = ['expected mapcount', 'expected refcount', 'swap count', 'entire mapcount'];
    for (let i = 0; i < mine.length; i++) {
      for (let j = 0; j < mine[i]!.length; j++) {
        if (mine[i]![j] !== theirs[i]![j]) throw new Error(`incremental accounting check: ${names[i]} of ${j} is ${mine[i]![j]}, the full walk counts ${theirs[i]![j]}`);
      }
    }
    AccountingChecker.incrementalChecksVerified++;
  }

  /** The scratch arrays sized for k's state (their contents are the caller's to set). */
  private prepare(k: Kernel): void {
    const top = k.frames.top;
    if (this.expMap.length < top) {
      this.expMap = new Int32Array(top * 2);
      this.expRef = new Int32Array(top * 2);
    }
    if (this.found.length > 0) this.found = []; // a check that threw left its problems
    if (this.seen.length < k.tables.top) this.seen = new Uint8Array(k.tables.top * 2);
    if (this.swapCount.length < k.swap.top) this.swapCount = new Int32Array(k.swap.top * 2);
    const blocks = (top >>> 9) + 1;
    if (this.entire.length < blocks) {
      this.entire = new Int32Array(blocks * 2);
      this.pins = new Int32Array(blocks * 2);
    } else zero(this.pins, blocks);
  }

  /** The whole check, every live mm's tables walked. */
  private checkFull(k: Kernel, final: boolean, held: readonly number[]): readonly AccountingProblem[] {
    this.prepare(k);
    const top = k.frames.top;
    zero(this.expMap, top);
    zero(this.expRef, top);
    zero(this.seen, k.tables.top);
    zero(this.swapCount, k.swap.top);
    zero(this.entire, (top >>> 9) + 1);
    const expMap = this.expMap;
    const expRef = this.expRef;
    const add = this.add;
    let tablesInUse = 0;
    for (const mm of k.mms) {
      if (!mm.alive) continue;
      const c = this.walked;
      c.tables = c.physical = c.anon = c.shmem = c.hugetlb = 0;
      c.swapCount = this.swapCount;
      c.seen = this.seen;
      c.entire = this.entire;
      walkTables(k, mm, mm.pgd, 3, 0, c, expMap, expRef, add);
      tablesInUse += c.physical;
      if (c.tables !== mm.nrTables) {
        add({ kind: 'accounting', mm: mm.id, pfn: -1, message: `page-table count ${mm.nrTables} but ${c.tables} tables are reachable` });
      }
      if (c.anon !== mm.rssAnon) {
        add({ kind: 'accounting', mm: mm.id, pfn: -1, message: `MM_ANONPAGES is ${mm.rssAnon} but ${c.anon} anonymous pages are mapped` });
      }
      if (c.hugetlb !== mm.hugetlbPages) {
        add({ kind: 'accounting', mm: mm.id, pfn: -1, message: `HugetlbPages is ${mm.hugetlbPages} but ${c.hugetlb} hugetlb pages are mapped` });
      }
      if (c.shmem !== mm.rssShmem) {
        add({ kind: 'accounting', mm: mm.id, pfn: -1, message: `MM_SHMEMPAGES is ${mm.rssShmem} but ${c.shmem} shmem pages are mapped` });
      }
    }
    if (tablesInUse !== k.tables.used) {
      add({ kind: 'accounting', mm: -1, pfn: -1, message: `${k.tables.used} page tables allocated but ${tablesInUse} reachable from live processes` });
    }
    return this.checkRest(k, final, held);
  }

  /**
   * The check past the walk of the tables, on the counts the walk left (expected mapcounts and
   * references, swap PTEs, huge PMDs per folio): the swap device, the page cache, handles, the
   * references of paths in progress, each frame and each large folio.
   */
  private checkRest(k: Kernel, final: boolean, held: readonly number[]): readonly AccountingProblem[] {
    const f = k.frames;
    const top = f.top;
    const expMap = this.expMap;
    const expRef = this.expRef;
    const swapCount = this.swapCount;
    const add = this.add;
    // The references besides the tables (the problems they give in their order).
    const refs = this.refs;
    refs.length = 0;
    heldRefs(k, swapCount, held, refs, add);
    for (let i = 0; i < refs.length; i += 3) {
      const pfn = refs[i]!;
      expRef[pfn]! += refs[i + 1]!;
      // A pin (or a GUP in progress that pinned) on a large folio's page counts in its pincount.
      if (refs[i + 2] !== 0 && pfn !== 0 && f.flags[pfn]! & PG_LARGE) this.pins[pfn >>> 9]!++;
    }
    // The zero page: its refcount is the GUP references and pins taken on it (try_grab_folio()).
    if (f.refcount[0] !== expRef[0]) {
      add({ kind: 'accounting', mm: -1, pfn: 0, message: `the zero page has refcount ${f.refcount[0]} but handles hold ${expRef[0]} reference(s) on it` });
    }
    let used = 0;
    checkLargeFolios(k, final, expRef, this.entire, this.pins, add);
    checkMmIds(k, add);
    for (let pfn = 1; pfn < top; pfn++) {
      if (!(f.flags[pfn]! & PG_INUSE)) continue;
      // hugetlb pages come from the pool (checked in checkLargeFolios), not from frames_used.
      if (!(f.flags[pfn]! & PG_HUGETLB)) used++;
      // A large folio's frames may hold no reference each; checkLargeFolios judges the folio.
      if (expRef[pfn] === 0 && !(f.flags[pfn]! & PG_LARGE)) {
        add({
          kind: final ? 'frame-leak' : 'accounting', mm: -1, pfn,
          message: `frame ${pfn} is in use (refcount ${f.refcount[pfn]}) but nothing maps or holds it`,
        });
        continue;
      }
      if (f.refcount[pfn] !== expRef[pfn]) {
        add({ kind: 'accounting', mm: -1, pfn, message: `frame ${pfn} has refcount ${f.refcount[pfn]} but ${expRef[pfn]} references exist` });
      }
      if (f.mapcount[pfn] !== expMap[pfn]) {
        add({ kind: 'accounting', mm: -1, pfn, message: `frame ${pfn} has mapcount ${f.mapcount[pfn]} but ${expMap[pfn]} PTEs map it` });
      }
    }
    if (used !== f.used) add({ kind: 'accounting', mm: -1, pfn: -1, message: `frames_used is ${f.used} but ${used} frames are allocated` });
    const out = this.found;
    if (out.length === 0) return NONE;
    this.found = [];
    return out;
  }
}

/**
 * Zero the first n elements: a loop for the few of a small state (a call of fill() costs more
 * than a few stores, and the check clears six arrays for every new state), fill() past that.
 */
function zero(a: Int32Array | Uint8Array, n: number): void {
  if (n > 64) a.fill(0, 0, n);
  else for (let i = 0; i < n; i++) a[i] = 0;
}

/** dst's first n elements are src's (zero past src's end). */
function copyIn(dst: Int32Array, src: Int32Array, n: number): void {
  const m = Math.min(n, src.length);
  dst.set(m === src.length ? src : src.subarray(0, m));
  if (m < n) dst.fill(0, m, n);
}

const wordViews = new WeakMap<Uint16Array, Int32Array>();
/** The last array wordsOf() was asked for and its view: a state's tables are walked one after another. */
let lastBits: Uint16Array | null = null;
let lastWords: Int32Array = new Int32Array(0);

/** The PTE bits as Int32 words, two entries each (a view, made once per array). */
function wordsOf(table: TableWords<Uint16Array>): Int32Array {
  // Read only: the arena's bits array itself (TableArena.bits is typed read only for writers).
  const bits = table as unknown as Uint16Array;
  if (bits === lastBits) return lastWords;
  let v = wordViews.get(bits);
  if (v === undefined) wordViews.set(bits, (v = new Int32Array(bits.buffer, bits.byteOffset, bits.length >>> 1)));
  lastBits = bits;
  lastWords = v;
  return v;
}

/** The pages an entry of a table at each level spans (512 ** level, without a power per table walked). */
const SPAN = [1, 512, 512 * 512, 512 * 512 * 512];

function walkTables(
  k: Kernel, mm: Mm, table: number, level: number, base: number,
  c: Walked,
  expMap: Int32Array, expRef: Int32Array, add: (p: AccountingProblem) => void,
): void {
  const t = k.tables;
  const f = k.frames;
  const tb = table << TABLE_SHIFT;
  if (level === LEVEL_PTE) {
    // A COW page table is one physical table, whatever number of mms reach it: its entries
    // count once; its pages and its page-table bytes are charged to its owner.
    const owned = t.owner[table] === mm.id;
    const first = c.seen[table] === 0;
    c.seen[table] = 1;
    if (owned) c.tables++;
    if (first) c.physical++;
    let anon = 0;
    let shmem = 0;
    let filled = 0;
    // Eight entries (four Int32 words) at a time: most of an entry table is none, and this runs
    // for every new state.
    const words = wordsOf(t.bits);
    const w0 = tb >>> 1;
    for (let j = 0; j < PTRS_PER_TABLE >>> 1; j += 4) {
      if ((words[w0 + j]! | words[w0 + j + 1]! | words[w0 + j + 2]! | words[w0 + j + 3]!) === 0) continue;
      for (let i = j << 1; i < (j << 1) + 8; i++) {
        const bits = t.bits[tb + i]!;
        if (bits === 0) continue;
        filled++;
        const pfn = t.entry[tb + i]!;
        const vpn = base + i;
        if (!first) {
          if (bits & PTE_DEVICE_EXCLUSIVE) anon++;
          else if (bits & PTE_PRESENT && !(bits & PTE_SPECIAL)) {
            if (f.flags[pfn]! & PG_ANON) anon++;
            else if (f.flags[pfn]! & PG_SHMEM) shmem++;
          }
          continue;
        }
        if (bits & PTE_SWAP) {
          if (pfn >= 0 && pfn < c.swapCount.length) c.swapCount[pfn]!++;
          continue;
        }
        if (bits & PTE_DEVICE_EXCLUSIVE) {
          // The entry keeps its reference; from 6.15 it keeps its mapcount too.
          if (pfn <= 0 || pfn >= f.top || !(f.flags[pfn]! & PG_INUSE)) {
            add({ kind: 'use-after-free', mm: mm.id, pfn, message: `device-exclusive entry at ${vpn.toString(16)} names freed frame ${pfn}` });
            continue;
          }
          expRef[pfn]!++;
          if (exclusiveEntryMapped(k.profile)) expMap[pfn]!++;
          anon++;
          continue;
        }
        if (!(bits & PTE_PRESENT) || bits & PTE_SPECIAL) continue;
        if (pfn <= 0 || pfn >= f.top || !(f.flags[pfn]! & PG_INUSE)) {
          add({ kind: 'use-after-free', mm: mm.id, pfn, message: `page ${vpn.toString(16)} maps freed frame ${pfn}` });
          continue;
        }
        expMap[pfn]!++;
        expRef[pfn]!++;
        const pf = f.flags[pfn]!;
        if (pf & PG_ANON) anon++;
        else if (pf & PG_SHMEM) shmem++;
        if (k.profile.anonExclusive && bits & PTE_WRITE && pf & PG_ANON && !(pf & PG_ANON_EXCLUSIVE)) {
          const vma = mm.findVma(vpn);
          if (vma && isCowMapping(vma.flags)) {
            add({ kind: 'kernel-bug', mm: mm.id, pfn, message: `writable PTE maps frame ${pfn}, an anonymous page that is not PageAnonExclusive` });
          }
        }
      }
    }
    if (filled !== t.filled[table]) add({ kind: 'accounting', mm: mm.id, pfn: -1, message: `PTE table ${table} counts ${t.filled[table]} entries but holds ${filled}` });
    if (owned) {
      c.anon += anon;
      c.shmem += shmem;
    }
    return;
  }
  c.tables++;
  c.physical++;
  const span = SPAN[level]!;
  // Upper levels: stop once every filled entry was seen (their counts are kept by walk.ts).
  let left = t.filled[table]!;
  for (let i = 0; i < PTRS_PER_TABLE && left > 0; i++) {
    const child = t.entry[tb + i]!;
    if (level === LEVEL_PMD && t.bits[tb + i]! & PMD_LEAF) {
      left--;
      checkHugePmd(k, mm, t.bits[tb + i]!, child, base + i * span, c, expRef, add);
    } else if (child !== 0) {
      left--;
      walkTables(k, mm, child, level - 1, base + i * span, c, expMap, expRef, add);
    }
  }
}

/**
 * A huge PMD: its deposited table is charged to the mm; a THP's PMD mapping holds one reference
 * (on the head: frames.ts) and one entire mapcount (counted in c.entire), and 512 pages of RSS.
 */
function checkHugePmd(
  k: Kernel, mm: Mm, bits: number, head: number, vpn: number,
  c: { tables: number; anon: number; hugetlb: number; entire: Int32Array },
  expRef: Int32Array, add: (p: AccountingProblem) => void,
): void {
  const f = k.frames;
  if (bits & PTE_SPECIAL) {
    c.tables++;
    return; // the huge zero page: no counts
  }
  if (head <= 0 || head >= f.top || (head & (HPAGE_PMD_NR - 1)) !== 0 || !(f.flags[head]! & PG_INUSE) || !(f.flags[head]! & PG_LARGE)) {
    add({ kind: 'use-after-free', mm: mm.id, pfn: head, message: `huge PMD at ${vpn.toString(16)} maps frame ${head}, which is not the head of a live large folio` });
    return;
  }
  expRef[head]!++;
  c.entire[head >>> 9]!++;
  // A hugetlb huge PTE: HugetlbPages, not RSS, and no deposited PTE table; it lives in a VM_HUGETLB VMA only.
  if (f.flags[head]! & PG_HUGETLB) {
    c.hugetlb += HPAGE_PMD_NR;
    if (((mm.findVma(vpn)?.flags ?? 0) & VM_HUGETLB) === 0) add({ kind: 'kernel-bug', mm: mm.id, pfn: head, message: `hugetlb folio ${head} mapped at ${vpn.toString(16)} outside a hugetlb mapping` });
  } else {
    c.tables++;
    c.anon += HPAGE_PMD_NR;
  }
  if (k.profile.anonExclusive && bits & PTE_WRITE && !(f.flags[head]! & PG_ANON_EXCLUSIVE)) {
    const vma = mm.findVma(vpn);
    if (vma && isCowMapping(vma.flags)) add({ kind: 'kernel-bug', mm: mm.id, pfn: head, message: `writable huge PMD maps large folio ${head} whose head is not PageAnonExclusive` });
  }
}

/**
 * MM-id tracking (6.15+): a large folio's slot names a live mm and counts at least one and at
 * most all of that mm's mappings of it (mappings added while no slot was free are in none); a
 * free slot counts nothing; the two slots name different mms; with the shared bit clear, one
 * slot holds every mapping of the folio.
 */
function checkMmIds(k: Kernel, add: (p: AccountingProblem) => void): void {
  const f = k.frames;
  if (!f.mmIds) return;
  const blocks: number[] = [];
  for (let head = HPAGE_PMD_NR; head < f.top; head += HPAGE_PMD_NR) {
    if ((f.flags[head]! & (PG_INUSE | PG_LARGE | PG_HUGETLB)) === (PG_INUSE | PG_LARGE)) blocks.push(head >>> 9);
  }
  if (blocks.length === 0) return;
  const t = k.tables;
  // A 6.15 device-exclusive entry still counts as a mapping of its page (as in walkTables).
  const devxMapped = exclusiveEntryMapped(k.profile);
  // Each live mm's mappings (PTEs, 6.15's device-exclusive entries and huge PMDs) per block.
  const perMm = new Map<number, Map<number, number>>();
  for (const mm of k.mms) {
    if (!mm.alive) continue;
    const counts = new Map<number, number>();
    const count = (pfn: number): void => {
      if ((f.flags[pfn]! & (PG_LARGE | PG_HUGETLB)) === PG_LARGE) counts.set(pfn >>> 9, (counts.get(pfn >>> 9) ?? 0) + 1);
    };
    forEachPteTable(k, mm, (_base, table) => {
      const b = table << TABLE_SHIFT;
      for (let i = b; i < b + PTRS_PER_TABLE; i++) if ((t.bits[i]! & PTE_PRESENT && !(t.bits[i]! & PTE_SPECIAL)) || (devxMapped && t.bits[i]! & PTE_DEVICE_EXCLUSIVE)) count(t.entry[i]!);
    }, (_base, slot) => {
      if (!(t.bits[slot]! & PTE_SPECIAL)) count(t.entry[slot]!);
    });
    perMm.set(mm.id + 1, counts);
  }
  for (const b of blocks) {
    const head = b << 9;
    const slots: [number, number][] = [[f.mmId0[b]!, f.mmIdCount0[b]!], [f.mmId1[b]!, f.mmIdCount1[b]!]];
    for (const [id, n] of slots) {
      if (id === 0) {
        if (n !== 0) add({ kind: 'accounting', mm: -1, pfn: head, message: `large folio ${head} has a free MM-id slot counting ${n} mapping(s)` });
        continue;
      }
      const mapped = perMm.get(id)?.get(b) ?? 0;
      if (n < 1 || n > mapped) add({ kind: 'accounting', mm: id - 1, pfn: head, message: `large folio ${head}'s MM-id slot of mm ${id - 1} counts ${n} mapping(s), but that mm maps it ${mapped} time(s)` });
    }
    if (slots[0]![0] !== 0 && slots[0]![0] === slots[1]![0]) add({ kind: 'accounting', mm: slots[0]![0] - 1, pfn: head, message: `large folio ${head} has both MM-id slots for one mm` });
    const total = f.folioMapcount(head);
    if (!f.mmIdsShared[b] && total > 0 && slots[0]![1] !== total && slots[1]![1] !== total) {
      add({ kind: 'accounting', mm: -1, pfn: head, message: `large folio ${head} is marked mapped exclusively, but no MM-id slot holds its ${total} mapping(s)` });
    }
  }
}

/**
 * The counts of each large folio (frames.ts keeps its references spread over its frames): its
 * entire mapcount is the PMDs mapping it, its pin count the pins on its pages, and a folio nothing
 * maps or holds is a leak.
 */
function checkLargeFolios(
  k: Kernel, final: boolean, expRef: Int32Array, entire: Int32Array, pins: Int32Array, add: (p: AccountingProblem) => void,
): void {
  const f = k.frames;
  let hugetlbFolios = 0;
  for (let head = HPAGE_PMD_NR; head < f.top; head += HPAGE_PMD_NR) {
    if ((f.flags[head]! & (PG_INUSE | PG_LARGE)) !== (PG_INUSE | PG_LARGE)) continue;
    if (f.flags[head]! & PG_HUGETLB) hugetlbFolios++;
    const b = head >>> 9;
    if (f.entireMapcount[b] !== entire[b]) {
      add({ kind: 'accounting', mm: -1, pfn: head, message: `large folio ${head} has entire mapcount ${f.entireMapcount[b]} but ${entire[b]} huge PMDs map it` });
    }
    if (f.pincount[b] !== pins[b]) add({ kind: 'accounting', mm: -1, pfn: head, message: `large folio ${head} has pincount ${f.pincount[b]} but ${pins[b]} pins hold its pages` });
    let refs = 0;
    for (let p = head; p < head + HPAGE_PMD_NR; p++) refs += expRef[p]!;
    if (refs === 0) {
      add({ kind: final ? 'frame-leak' : 'accounting', mm: -1, pfn: head, message: `large folio ${head} is in use (refcount ${f.folioRefcount(head)}) but nothing maps or holds it` });
    }
  }
  // The hugetlb pool: every huge page taken from it is a live hugetlb folio, and resv_huge_pages is
  // what live owner VMAs reserved and did not fault in yet (none may go missing or be counted twice).
  const pool = k.hugetlb;
  if (pool.used !== hugetlbFolios) {
    add({ kind: final && pool.used > hugetlbFolios ? 'frame-leak' : 'accounting', mm: -1, pfn: -1, message: `the hugetlb pool counts ${pool.used} huge page(s) in use but ${hugetlbFolios} hugetlb folio(s) exist` });
  }
  const reserved = hugetlbReservedByVmas(k);
  if (pool.resv !== reserved) add({ kind: 'accounting', mm: -1, pfn: -1, message: `HugePages_Rsvd is ${pool.resv} but live mappings hold ${reserved} unused reservation(s)` });
  if (pool.resv > pool.free) add({ kind: 'accounting', mm: -1, pfn: -1, message: `HugePages_Rsvd ${pool.resv} exceeds HugePages_Free ${pool.free}` });
}
