// Random scenarios over the operations both the model and the live kernel replay: 2-4
// processes, 1-8 pages; fork, exit, write, read, munmap, mprotect, madvise, R/W longterm pins
// (io_uring), unpin, device read/write, vmsplice, pipe reads, swapout (or madvise pageout),
// KSM (madvise mergeable, ksm merge), and frame checks. For the KSM gaps it also follows, roughly,
// which pages share a frame, what they hold, and which frames handles hold. Lines that
// observe something carry a placeholder the model's answer fills in (expect.ts). The
// generator follows each page (mapped, protection, content) so that it can steer clear of
// the model's known gaps when asked.

import { intIn, pick, type Rng } from './rng.js';

export const ALL_OPS = [
  'fork', 'exit', 'write', 'read', 'munmap', 'mprotect', 'madvise', 'pin', 'unpin',
  'device-read', 'device-write', 'vmsplice', 'pipe-read', 'put', 'swapout', 'ksm',
  'expect-frame', 'expect-mapped', 'expect-exclusive', 'expect-stat', 'uffd', 'expect-uffd-wp',
] as const;
export type GenOp = (typeof ALL_OPS)[number];
export const DEFAULT_OPS: readonly string[] = ALL_OPS;

const WEIGHTS: Record<GenOp, number> = {
  fork: 0, exit: 3, write: 20, read: 12, munmap: 2, mprotect: 4, madvise: 5, pin: 5, unpin: 3,
  'device-read': 5, 'device-write': 5, vmsplice: 4, 'pipe-read': 5, put: 2, swapout: 4, ksm: 6,
  'expect-frame': 8, 'expect-mapped': 5, 'expect-exclusive': 5, 'expect-stat': 6, uffd: 6, 'expect-uffd-wp': 4,
};

/** `--ops a,b,...`: the operations to generate, or an error message. */
export function parseOps(list: string): string[] | string {
  const ops = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const o of ops) if (!(ALL_OPS as readonly string[]).includes(o)) return `unknown operation '${o}' (operations: ${ALL_OPS.join(', ')})`;
  if (ops.length === 0) return `no operation given (operations: ${ALL_OPS.join(', ')})`;
  return ops;
}

/** Known model gaps (docs/oracle.md, "Findings") the generator can steer clear of. */
export const GAPS = [
  'protnone-gup-fast', 'mprotect-hole', 'vma-boundaries', 'shmem-fault-around', 'shmem-pageout', 'ksm-swapout',
  'mergeable-shared', 'ksm-merge-order',
] as const;
export type Gap = (typeof GAPS)[number];

/**
 * The gaps the model still has (docs/oracle.md, "Findings"). All the gaps found so far are closed
 * in the model; `--avoid` keeps them selectable to bisect a regression.
 */
export const OPEN_GAPS: readonly Gap[] = [];

/** `--avoid a,b,...` (or `known` for all of them): the gaps to avoid, or an error message. */
export function parseGaps(list: string): Gap[] | string {
  if (list.trim() === 'known') return [...GAPS];
  const gaps = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const g of gaps) if (!(GAPS as readonly string[]).includes(g)) return `unknown gap '${g}' (known gaps: ${GAPS.join(', ')}, or 'known' for all)`;
  return gaps as Gap[];
}

/** What the model's answer fills into a line. */
export type Fill = 'none' | 'read' | 'frame' | 'mapped' | 'exclusive' | 'stat' | 'uffd-wp';

export interface GenLine {
  /** The step; `{}` marks where the model's answer goes. */
  text: string;
  fill: Fill;
}

/** What the generator knows of one page of one process. */
interface GPage {
  /** A page of a shared mapping (a shmem object: a read fault gives it a frame too). */
  shared: boolean;
  mapped: boolean;
  prot: 'rw' | 'ro' | 'none';
  /** none: untouched since mapped or dropped; zero: maps the zero page; data: a frame of its own. */
  content: 'none' | 'zero' | 'data';
  dontfork: boolean;
  wipe: boolean;
  /** The frame of a private data page (pages with one number share it: fork, KSM); 0: none. */
  frame: number;
  /** What a private data page holds (a value written; 0 when zero-filled); null: nothing. */
  value: number | null;
  /** MADV_MERGEABLE (private mappings only: KSM ignores shared ones). */
  mergeable: boolean;
  /** Merged into a KSM page (as far as the generator can tell). */
  ksm: boolean;
  /** Swapped out (as far as the generator can tell): KSM does not scan it. */
  swapped: boolean;
}

interface GProc {
  name: string;
  alive: boolean;
  regions: Map<string, GPage[]>;
  /** Regions registered with userfaultfd in write-protect mode (the monitor may protect them). */
  uffd: Set<string>;
  /** Its userfaultfd context asked for the fork event (a child's registrations stay). */
  forkEvent: boolean;
}

interface GHandle {
  name: string;
  kind: 'pin' | 'pipe';
  holder: string;
  pages: number;
  /** The frame of each page it holds (0: none, or the zero page). */
  frames: number[];
}

const CHILD_NAMES = ['Q', 'R', 'S'];

const EMPTY = { content: 'none', frame: 0, value: null, ksm: false, swapped: false } as const;

/** The child's pages: as the parent's, but not DONTFORK ones, emptied WIPEONFORK ones, and a copy of each pinned frame (early COW). */
function forkPages(pages: GPage[], pinned: Set<number>, fresh: () => number): GPage[] {
  return pages.map((g): GPage => {
    if (g.dontfork) return { ...g, ...EMPTY, mapped: false, mergeable: false };
    if (g.wipe && !g.shared) return { ...g, ...EMPTY };
    return g.frame !== 0 && pinned.has(g.frame) ? { ...g, frame: fresh(), swapped: false } : { ...g };
  });
}

/** A read fault (or a read GUP): the zero page for private memory, a frame of its own for shared. */
function readFault(g: GPage): void {
  if (g.mapped && g.prot !== 'none' && g.content === 'none') g.content = g.shared ? 'data' : 'zero';
  if (g.prot !== 'none') g.swapped = false;
}

function chooseOp(rng: Rng, candidates: readonly GenOp[]): GenOp {
  const sum = candidates.reduce((s, o) => s + WEIGHTS[o], 0);
  let x = rng() * sum;
  for (const o of candidates) {
    x -= WEIGHTS[o];
    if (x < 0) return o;
  }
  return candidates[candidates.length - 1]!;
}

export function generateLines(rng: Rng, ops: readonly string[], avoid: readonly Gap[] = []): GenLine[] {
  const gap = new Set(avoid);
  const lines: GenLine[] = [];
  const add = (text: string, fill: Fill = 'none'): void => {
    lines.push({ text, fill });
  };
  const candidates = ALL_OPS.filter((o) => ops.includes(o));
  // 2-4 processes: the forks are planned, and spread over the steps.
  const maxProcs = intIn(rng, 2, 4);
  const procs: GProc[] = [{ name: 'P', alive: true, regions: new Map(), uffd: new Set(), forkEvent: false }];
  // userfaultfd write-protect: the fork event is chosen once, before the first registration (UFFDIO_API).
  const useUffd = candidates.includes('uffd') && rng() < 0.6;
  const handles: GHandle[] = [];
  let nextValue = 1;
  let nextPin = 1;
  let nextPipe = 1;
  /** Some mapping was marked MADV_MERGEABLE. */
  let mergeable = false;
  let nextFrame = 1;
  const fresh = (): number => nextFrame++;
  const livePages = (): GPage[] => procs.filter((q) => q.alive).flatMap((q) => [...q.regions.values()].flat());
  /** How many live mappings a frame has. */
  const refs = (frame: number): number => livePages().filter((g) => g.mapped && g.frame === frame).length;
  const held = (kind?: GHandle['kind']): Set<number> => new Set(handles.filter((h) => !kind || h.kind === kind).flatMap((h) => h.frames.filter((f) => f !== 0)));

  /**
   * A CPU write or a write GUP: the pages up to the first that faults get a frame of their own
   * (the one they had, when nothing else maps it and it is no KSM page), holding `value` (null:
   * what they held, zeros if nothing).
   */
  const written = (pages: GPage[], value: number | null): boolean => {
    for (const g of pages) {
      if (!g.mapped || g.prot !== 'rw') return false;
      if (!g.shared) {
        const reuse = g.content === 'data' && !g.ksm && g.frame !== 0 && refs(g.frame) === 1;
        if (!reuse) g.frame = fresh();
        g.value = value ?? g.value ?? 0;
        g.ksm = false;
      }
      g.content = 'data';
      g.swapped = false;
    }
    return true;
  };

  /**
   * What a ksm merge does, as far as the generator can tell: pages of mergeable private
   * mappings with equal contents join a KSM page. Returns false when which page becomes the
   * KSM page would show (ksm-merge-order): two new pages merge and one of them shares its frame
   * with a mapping ksmd does not merge too (not mergeable: fork) or is held by a pin or a pipe.
   * (When every mapping of the frames merges, both orders end in the same place.) Marks the
   * merged pages (check: only look).
   */
  const ksmMerge = (check: boolean): boolean => {
    const live = livePages().filter((g) => g.mapped && !g.shared);
    const stable = new Map<number, number>();
    for (const g of live) if (g.ksm && g.value !== null) stable.set(g.value, g.frame);
    const groups = new Map<number, GPage[]>();
    for (const g of live) {
      if (!g.mergeable || g.content !== 'data' || g.ksm || g.swapped || g.value === null) continue;
      let l = groups.get(g.value);
      if (!l) groups.set(g.value, (l = []));
      l.push(g);
    }
    const busy = held();
    const merging = new Set([...groups.values()].flat());
    const all = livePages().filter((g) => g.mapped);
    const alone = (m: GPage): boolean => !busy.has(m.frame) && all.every((g) => g.frame !== m.frame || merging.has(g));
    const merges: [GPage[], number][] = [];
    for (const [value, members] of groups) {
      const into = stable.get(value);
      if (into !== undefined) {
        merges.push([members.filter((g) => !busy.has(g.frame)), into]);
        continue;
      }
      if (members.length < 2) continue;
      if (check && !members.every(alone)) return false;
      merges.push([members.filter((g) => !busy.has(g.frame)), fresh()]);
    }
    if (!check) for (const [members, frame] of merges) for (const g of members) Object.assign(g, { frame, ksm: true });
    return true;
  };

  // Setup: one or two regions of 1-8 pages in all, values in most of them.
  const total = intIn(rng, 1, 8);
  const first = total > 1 && rng() < 0.4 ? intIn(rng, 1, total - 1) : total;
  const sizes = first < total ? [first, total - first] : [total];
  sizes.forEach((n, i) => {
    const name = i === 0 ? 'a' : 'b';
    const populate = rng() < 0.15;
    // shmem-fault-around: Linux maps a shared page's cached neighbours on a read fault; the model does not.
    const shared = !gap.has('shmem-fault-around') && rng() < 0.2;
    const pages = Array.from({ length: n }, (): GPage => ({
      shared, mapped: true, prot: 'rw', content: populate ? 'data' : 'none', dontfork: false, wipe: false,
      frame: populate && !shared ? fresh() : 0, value: populate && !shared ? 0 : null, mergeable: false, ksm: false, swapped: false,
    }));
    procs[0]!.regions.set(name, pages);
    add(`P mmap ${name} ${n} rw ${shared ? 'shared' : 'private'}${populate ? ' populate' : ''}`);
    // vma-boundaries: Linux merges adjacent mappings (and skips splits that change nothing), so a
    // mapping the model sees without an anon_vma may share one in Linux, and fork then copies its
    // page tables and zero-page PTEs. A mapping written once has an anon_vma on both sides.
    if (rng() < 0.8 || (gap.has('vma-boundaries') && !populate)) {
      written(pages, nextValue);
      add(`P write ${name} = ${nextValue++}`);
    }
    if (useUffd && i === 0 && rng() < 0.5) {
      procs[0]!.forkEvent = true;
      add('P uffd fork-event on');
    }
    if (useUffd && rng() < 0.8) {
      procs[0]!.uffd.add(name);
      add(`P uffd register ${name} wp`);
    }
  });

  /** A page selector of p: its text and the pages it covers. */
  const sel = (p: GProc, single: boolean): { text: string; pages: GPage[] } => {
    const [region, all] = pick(rng, [...p.regions]);
    const n = all.length;
    if (single || n === 1 || rng() < 0.6) {
      const i = intIn(rng, 0, n - 1);
      return { text: `${region}[${i}]`, pages: [all[i]!] };
    }
    if (rng() < 0.3) return { text: region, pages: all };
    const lo = intIn(rng, 0, n - 1);
    const hi = intIn(rng, lo, n - 1);
    return { text: lo === hi ? `${region}[${lo}]` : `${region}[${lo}..${hi}]`, pages: all.slice(lo, hi + 1) };
  };

  const steps = intIn(rng, 6, 26);
  const forking = candidates.includes('fork');
  for (let made = 0, tries = 0; made < steps && tries < steps * 20 && candidates.length > 0; tries++) {
    const forksLeft = forking ? maxProcs - procs.length : 0;
    const wantFork = forksLeft > 0 && (rng() < 0.25 || steps - made <= forksLeft * 2);
    const op = wantFork ? 'fork' : chooseOp(rng, candidates.filter((o) => o !== 'fork'));
    const live = procs.filter((q) => q.alive);
    if (live.length === 0) break;
    const p = pick(rng, live);
    const pins = handles.filter((h) => h.kind === 'pin');
    const pipes = handles.filter((h) => h.kind === 'pipe' && procs.find((q) => q.name === h.holder)!.alive);
    switch (op) {
      case 'fork': {
        if (procs.length >= maxProcs) continue;
        if (tries > steps * 10) continue; // it kept being refused: give up on it
        const child = CHILD_NAMES[procs.length - 1]!;
        const pinned = held('pin');
        procs.push({
          name: child, alive: true, regions: new Map([...p.regions].map(([r, pg]) => [r, forkPages(pg, pinned, fresh)])),
          uffd: p.forkEvent ? new Set(p.uffd) : new Set(), forkEvent: p.forkEvent && p.uffd.size > 0,
        });
        add(`${p.name} fork ${child}`);
        break;
      }
      case 'exit':
        if (live.length < 2) continue;
        p.alive = false;
        add(`${p.name} exit`);
        break;
      case 'write': {
        const s = sel(p, false);
        written(s.pages, nextValue);
        add(`${p.name} write ${s.text} = ${nextValue++}`);
        break;
      }
      case 'read': {
        const s = sel(p, true);
        readFault(s.pages[0]!);
        add(`${p.name} read ${s.text} {}`, 'read');
        break;
      }
      case 'munmap': {
        const s = sel(p, false);
        for (const g of s.pages) Object.assign(g, { ...EMPTY, mapped: false, mergeable: false });
        add(`${p.name} munmap ${s.text}`);
        break;
      }
      case 'mprotect': {
        const s = sel(p, false);
        // mprotect-hole: Linux refuses (ENOMEM) a range that starts in a hole; the model applies it.
        if (gap.has('mprotect-hole') && s.pages.some((g) => !g.mapped)) continue;
        const prot = pick(rng, ['ro', 'rw', 'rw', 'none'] as const);
        for (const g of s.pages) if (g.mapped) g.prot = prot;
        add(`${p.name} mprotect ${s.text} ${prot}`);
        break;
      }
      case 'madvise': {
        const s = sel(p, false);
        const advice = pick(rng, ['dontfork', 'dofork', 'wipeonfork', 'keeponfork', 'dontneed', 'dontneed'] as const);
        for (const g of s.pages) {
          if (!g.mapped) continue;
          if (advice === 'dontneed') {
            if (!g.shared) Object.assign(g, EMPTY);
          }
          else if (advice === 'dontfork' || advice === 'dofork') g.dontfork = advice === 'dontfork';
          else if (!g.shared) g.wipe = advice === 'wipeonfork'; // shared: EINVAL
        }
        add(`${p.name} madvise ${s.text} ${advice}`);
        break;
      }
      case 'pin': {
        const s = sel(p, false);
        const name = `h${nextPin++}`;
        if (written(s.pages, null)) handles.push({ name, kind: 'pin', holder: p.name, pages: s.pages.length, frames: s.pages.map((g) => g.frame) });
        add(`${p.name} pin ${s.text} as ${name} rw longterm${rng() < 0.3 ? ' fast' : ''}`);
        break;
      }
      case 'vmsplice': {
        const s = sel(p, false);
        // protnone-gup-fast: the model's gup-fast takes pages from PROT_NONE PTEs; Linux's does not.
        if (gap.has('protnone-gup-fast') && s.pages.some((g) => g.mapped && g.prot === 'none')) continue;
        const name = `p${nextPipe++}`;
        let ok = true;
        for (const g of s.pages) {
          if (!g.mapped || g.prot === 'none') ok = false;
          else if (ok) readFault(g);
        }
        if (ok) handles.push({ name, kind: 'pipe', holder: p.name, pages: s.pages.length, frames: s.pages.map((g) => (g.content === 'data' ? g.frame : 0)) });
        add(`${p.name} vmsplice ${s.text} as ${name}`);
        break;
      }
      case 'unpin':
      case 'put': {
        const pool = handles.filter((h) => h.kind === (op === 'unpin' ? 'pin' : 'pipe'));
        if (pool.length === 0) continue;
        const h = pick(rng, pool);
        const holder = procs.find((q) => q.name === h.holder)!;
        handles.splice(handles.indexOf(h), 1);
        add(`${holder.alive ? holder.name : p.name} ${op} ${h.name}`);
        break;
      }
      case 'device-write': {
        if (pins.length === 0) continue;
        const h = pick(rng, pins);
        const k = intIn(rng, 0, h.pages - 1);
        for (const g of livePages()) if (h.frames[k] !== 0 && g.frame === h.frames[k]) g.value = nextValue;
        add(`device write ${h.name}[${k}] = ${nextValue++}`);
        break;
      }
      case 'device-read': {
        if (pins.length === 0) continue;
        const h = pick(rng, pins);
        add(`device read ${h.name}[${intIn(rng, 0, h.pages - 1)}] {}`, 'read');
        break;
      }
      case 'pipe-read': {
        if (pipes.length === 0) continue;
        const h = pick(rng, pipes);
        add(`${h.holder} read ${h.name}[${intIn(rng, 0, h.pages - 1)}] {}`, 'read');
        break;
      }
      case 'swapout': {
        const s = sel(p, false);
        // shmem-pageout: Linux pages out shmem pages mapped once; the model keeps them.
        if (gap.has('shmem-pageout') && s.pages.some((g) => g.shared)) continue;
        // ksm-swapout: Linux swaps a KSM page mapped once out; the model keeps it.
        if (gap.has('ksm-swapout') && s.pages.some((g) => g.ksm)) continue;
        const pinned = held('pin');
        for (const g of s.pages) {
          // Reclaim takes a private page mapped once that no pin holds (a pipe's page goes too).
          if (g.mapped && !g.shared && g.content === 'data' && !g.ksm && refs(g.frame) === 1 && !pinned.has(g.frame)) g.swapped = true;
        }
        add(rng() < 0.3 ? `${p.name} madvise ${s.text} pageout` : `swapout ${p.name} ${s.text}`);
        break;
      }
      case 'ksm': {
        if (!mergeable || rng() < 0.35) {
          const s = sel(p, false);
          // mergeable-shared: Linux ignores MADV_MERGEABLE on a shared mapping (no VMA split); the model splits it.
          if (gap.has('mergeable-shared') && s.pages.some((g) => g.shared)) continue;
          mergeable = true;
          for (const g of s.pages) if (g.mapped && !g.shared) g.mergeable = true;
          add(`${p.name} madvise ${s.text} mergeable`);
        } else {
          // ksm-merge-order: Linux makes the page it scans second the KSM page (the model the first)
          // and acts on it first: which other mappings map the KSM page differs once a fork shares
          // the frames, and which page is left write-protected when a pinned or spliced partner
          // cannot be merged.
          if (gap.has('ksm-merge-order') && !ksmMerge(true)) continue;
          ksmMerge(false);
          add('ksm merge');
        }
        break;
      }
      case 'expect-frame': {
        const q = pick(rng, live);
        const [region, pg] = pick(rng, [...p.regions]);
        const i = intIn(rng, 0, pg.length - 1);
        const other = q.regions.has(region) && rng() < 0.8 ? `${region}[${i}]` : sel(q, true).text;
        add(`expect ${p.name} ${region}[${i}] {} ${q.name} ${other}`, 'frame');
        break;
      }
      case 'expect-mapped':
        add(`expect ${p.name} ${sel(p, true).text} {}`, 'mapped');
        break;
      case 'expect-exclusive':
        add(`expect ${p.name} ${sel(p, true).text} {}`, 'exclusive');
        break;
      case 'expect-stat': {
        const q = pick(rng, procs);
        const stat = pick(rng, [`rss.${q.name}`, `minflt.${q.name}`, 'AnonPages_kB', 'frames_used', 'PageTables_kB', ...(useUffd ? [`uffd_faults.${q.name}`, `uffd_faults.${q.name}`] : [])]);
        add(`expect stat ${stat} == {}`, 'stat');
        break;
      }
      case 'uffd': {
        // The monitor write-protects or un-protects part of a registered region.
        const regs = [...p.uffd].filter((r) => p.regions.has(r));
        if (regs.length === 0) continue;
        const region = pick(rng, regs);
        const all = p.regions.get(region)!;
        const lo = intIn(rng, 0, all.length - 1);
        const hi = rng() < 0.5 ? lo : intIn(rng, lo, all.length - 1);
        // Only over mapped pages (UFFDIO_WRITEPROTECT on a hole is refused).
        if (all.slice(lo, hi + 1).some((g) => !g.mapped)) continue;
        const range = lo === hi ? `${region}[${lo}]` : `${region}[${lo}..${hi}]`;
        const protect = rng() < 0.7;
        add(`${p.name} uffd ${protect ? 'protect' : 'unprotect'} ${range}`);
        // Often a write to the protected pages follows: the fault goes to the monitor.
        if (protect && rng() < 0.5 && written(all.slice(lo, hi + 1), nextValue)) add(`${p.name} write ${range} = ${nextValue++}`);
        break;
      }
      case 'expect-uffd-wp':
        if (!useUffd) continue;
        add(`expect ${p.name} ${sel(p, true).text} {}`, 'uffd-wp');
        break;
    }
    made++;
  }
  return lines;
}
