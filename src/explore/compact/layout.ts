// The compact explorer state: one Int32Array per state, laid out as fixed-size records (header,
// frames, handles, ideal cells, process slots). Sizes come from the search bounds: a state of the
// 2-process, 2-page, 2-handle configuration is 130 integers, of which 76 are in use with two
// processes.

/** Process slots: the explorer names at most eight processes (PROC_NAMES), dead ones included. */
export const PROC_SLOTS = 8;

// Header.
export const S_NPROCS = 0;
export const S_NHANDLES = 1;
const HEADER = 2;

// Process record: status, MMF_HAS_PINNED, the values it ever held (a bit per value), then per page.
export const P_STATUS = 0;
export const P_PINNED = 1;
export const P_HELD = 2;
export const P_PAGES = 3;
/** Per page: the PTE, the VMA bits, the ideal cell. */
export const PG_PTE = 0;
export const PG_VMA = 1;
export const PG_CELL = 2;
export const PG_SIZE = 3;

export const ST_NONE = 0;
export const ST_ALIVE = 1;
export const ST_DEAD = 2;

/**
 * The VMA word of a page: mapped at all; the VMA's flags (no VM_WRITE after mprotect ro,
 * VM_DONTCOPY, VM_WIPEONFORK); the page starts a VMA; the ideal memory's flags of the page; and,
 * from bit 8, the id of the VMA's anon_vma (0: none), numbered within the process.
 */
export const VMA_MAPPED = 1;
/** VM_DONTCOPY (MADV_DONTFORK) and VM_WIPEONFORK. */
export const VMA_DONTCOPY = 2;
export const VMA_WIPE = 32;
export const VMA_RO = 4;
export const VMA_START = 8;
/** The ideal memory's flags of the page: read-only, dontfork, wipeonfork. */
export const VMA_IDEAL_RO = 16;
export const VMA_IDEAL_DONTFORK = 64;
export const VMA_IDEAL_WIPE = 128;
export const ANON_SHIFT = 8;
/** The VMA flags that decide merging (vma->vm_flags as far as the explorer changes them). */
export const VMA_FLAGS = VMA_RO | VMA_DONTCOPY | VMA_WIPE;

// Frame record: refcount, mapcount, flags, value. Frame 0 is the zero page and has no record use.
export const F_REF = 0;
export const F_MAP = 1;
export const F_FLAGS = 2;
export const F_VAL = 3;
export const F_SIZE = 4;
export const FL_INUSE = 1;
export const FL_EXCL = 2;

// Handle record (pins and pipe buffers, in the order they were taken).
export const H_KIND = 0;
export const H_HOLDER = 1;
export const H_PAGE = 2;
export const H_PFN = 3;
export const H_REFS = 4;
export const H_WRITE = 5;
export const H_LONG = 6;
/** Ideal side: the cell it was taken on, still bound to the holder's page, values it may return. */
export const H_ORIGIN = 7;
export const H_BOUND = 8;
export const H_SEEN = 9;
/** Violations already reported for it: 1 pin-incoherent, 2 not PageAnonExclusive. */
export const H_REPORTED = 10;
export const H_SIZE = 11;
export const HK_PIN = 1;
export const HK_PIPE = 2;
/** A short-term FOLL_GET reference (`gup`). */
export const HK_GUP = 3;

/** Values are bits of one int: value 0 (zero fill) and 30 others live at once. */
export const MAX_VALUES = 31;

/**
 * A PTE: 0 is pte_none; otherwise ((pfn + 1) << 1) | writable, where pfn 0 is the zero page.
 * (Accessed, dirty and soft-dirty bits decide nothing with the explorer's operations.)
 */
export const ZERO_PTE = 2;
export const ptePfn = (pte: number): number => (pte >> 1) - 1;
export const mkPte = (pfn: number, write: boolean): number => ((pfn + 1) << 1) | (write ? 1 : 0);

export class Layout {
  readonly procSize: number;
  readonly procBase: number;
  readonly frameBase: number;
  readonly handleBase: number;
  readonly cellBase: number;
  readonly size: number;
  /** Frame records (index 0, the zero page, unused). */
  readonly frames: number;
  readonly cells: number;

  constructor(
    readonly pages: number,
    readonly handles: number,
    /** Most processes alive at once. */
    readonly procs: number,
  ) {
    this.procSize = P_PAGES + PG_SIZE * pages;
    // Frames in use: every live process's pages, plus pinned frames no process maps any more.
    this.frames = procs * pages + handles + 1;
    // Ideal cells: every live process's pages, plus the cells orphaned pins still refer to.
    this.cells = procs * pages + handles;
    this.frameBase = HEADER;
    this.handleBase = this.frameBase + this.frames * F_SIZE;
    this.cellBase = this.handleBase + handles * H_SIZE;
    // Process slots last: a state's slots past its processes are all zero, so copies and
    // comparisons stop at used(s).
    this.procBase = this.cellBase + this.cells;
    this.size = this.procBase + PROC_SLOTS * this.procSize;
  }

  /** How much of state s is in use: everything up to its last process slot. */
  used(s: Int32Array): number {
    return this.procBase + s[S_NPROCS]! * this.procSize;
  }

  proc(p: number): number {
    return this.procBase + p * this.procSize;
  }

  page(p: number, i: number): number {
    return this.procBase + p * this.procSize + P_PAGES + i * PG_SIZE;
  }

  frame(pfn: number): number {
    return this.frameBase + pfn * F_SIZE;
  }

  handle(h: number): number {
    return this.handleBase + h * H_SIZE;
  }

  /** The start state: P maps `pages` pages rw private, untouched. */
  start(): Int32Array {
    const s = new Int32Array(this.size);
    s[S_NPROCS] = 1;
    s[this.proc(0) + P_STATUS] = ST_ALIVE;
    for (let i = 0; i < this.pages; i++) {
      s[this.page(0, i) + PG_VMA] = VMA_MAPPED | (i === 0 ? VMA_START : 0);
      s[this.page(0, i) + PG_CELL] = i;
    }
    for (let c = 0; c < this.cells; c++) s[this.cellBase + c] = c < this.pages ? 0 : -1;
    return s;
  }
}
