// Random scenarios over the operations both the model and the live kernel replay: 2-4
// processes, 1-8 pages; fork, exit, write, read, munmap, mremap, mprotect, madvise, R/W longterm pins
// (io_uring), unpin, device read/write, vmsplice, pipe reads, swapout (or madvise pageout),
// KSM (madvise mergeable, ksm merge), and frame checks. For the KSM gaps it also follows, roughly,
// which pages share a frame, what they hold, and which frames handles hold. Lines that
// observe something carry a placeholder the model's answer fills in (expect.ts). The
// generator follows each page (mapped, protection, content) so that it can steer clear of
// the model's known gaps when asked.

import { RANDOM_DRAWS } from '../../ops/index.js';
import type { Fill, RandomDraw, RandomGen, RandomHandle, RandomPage, RandomProc } from '../../ops/types.js';
import { intIn, pick, type Rng } from './rng.js';

/** The operations it draws, each declared with its operation (the `random` facet in src/ops). */
export const ALL_OPS: readonly string[] = RANDOM_DRAWS.map((d) => d.name);
export type GenOp = string;
export const DEFAULT_OPS: readonly string[] = ALL_OPS;

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
  'mergeable-shared', 'ksm-merge-order', 'thp-ksm', 'thp-uffd-wp', 'thp-mremap', 'uffd-mremap', 'hugetlb-fork-enomem',
] as const;
export type Gap = (typeof GAPS)[number];

/**
 * The gaps the model still has (docs/oracle.md, "Findings"), avoided unless `--avoid` names
 * the gaps to avoid itself. None is open now. The gaps found before are closed (among them the
 * THP ones: thp-ksm, ksmd splits a THP to merge its pages; thp-uffd-wp, UFFDIO_WRITEPROTECT keeps
 * a whole huge PMD with the uffd-wp bit on it; thp-mremap, move_huge_pmd moves a whole huge PMD;
 * uffd-mremap: a never-faulted registered source merged with its new range loses its
 * registration as a whole; and hugetlb-fork-enomem: a fork that fails for want of a free huge
 * page to copy a pinned one has already copied, so write-protected, the mappings before it);
 * `--avoid` keeps them selectable to bisect a regression.
 */
export const OPEN_GAPS: readonly Gap[] = [];

/** `--avoid a,b,...` (or `known` for all of them): the gaps to avoid, or an error message. */
export function parseGaps(list: string): Gap[] | string {
  if (list.trim() === 'known') return [...GAPS];
  const gaps = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const g of gaps) if (!(GAPS as readonly string[]).includes(g)) return `unknown gap '${g}' (known gaps: ${GAPS.join(', ')}, or 'known' for all)`;
  return gaps as Gap[];
}

export type { Fill } from '../../ops/types.js';

export interface GenLine {
  /** The step; `{}` marks where the model's answer goes. */
  text: string;
  fill: Fill;
  /** A `config:` entry (`hugepages: 2`) instead of a step. */
  config?: boolean;
}

type GPage = RandomPage;
type GProc = RandomProc;
type GHandle = RandomHandle;

const EMPTY = { content: 'none', frame: 0, value: null, ksm: false, swapped: false } as const;

/** The child's pages: as the parent's, but not DONTFORK ones, emptied WIPEONFORK ones, and a copy of each pinned frame (early COW). */
function forkPages(pages: GPage[], pinned: Set<number>, fresh: () => number): GPage[] {
  return pages.map((g): GPage => {
    if (g.dontfork) return { ...g, ...EMPTY, mapped: false, mergeable: false };
    if (g.wipe && !g.shared) return { ...g, ...EMPTY };
    return g.frame !== 0 && pinned.has(g.frame) ? { ...g, frame: fresh(), swapped: false } : { ...g };
  });
}

function chooseOp(rng: Rng, candidates: readonly RandomDraw[]): RandomDraw | undefined {
  const sum = candidates.reduce((s, o) => s + o.weight, 0);
  let x = rng() * sum;
  for (const o of candidates) {
    x -= o.weight;
    if (x < 0) return o;
  }
  return candidates[candidates.length - 1];
}

/** The generator's state: what it knows of the scenario written so far. The draws (src/ops) act on it. */
class Gen implements RandomGen {
  readonly lines: GenLine[] = [];
  procs: GProc[] = [{ name: 'P', alive: true, regions: new Map(), uffd: new Set(), uffdForkEvent: false }];
  handles: GHandle[] = [];
  readonly empty = EMPTY;
  /** Some mapping was marked MADV_MERGEABLE. */
  mergeable = false;
  readonly maxProcs: number;
  /** The draw being made applies to hugetlb pages (`sel` may pick the hugetlb region). */
  hugetlbOk = false;
  /** The loop's attempts so far, and the steps it means to write. */
  tries = 0;
  steps = 0;
  private value = 1;
  private pins = 1;
  private pipes = 1;
  private regions = 1;
  private frames = 1;

  constructor(readonly rng: Rng, private readonly gap: ReadonlySet<string>) {
    // 2-4 processes: the forks are planned, and spread over the steps.
    this.maxProcs = intIn(rng, 2, 4);
  }

  get tired(): boolean {
    return this.tries > this.steps * 10;
  }

  avoids(gap: string): boolean {
    return this.gap.has(gap);
  }

  live(): GProc[] {
    return this.procs.filter((q) => q.alive);
  }

  add(text: string, fill: Fill = 'none'): void {
    this.lines.push({ text, fill });
  }

  nextValue(): number {
    return this.value++;
  }

  nextHandle(kind: 'pin' | 'pipe'): string {
    return kind === 'pin' ? `h${this.pins++}` : `p${this.pipes++}`;
  }

  nextRegion(): string {
    return `m${this.regions++}`;
  }

  fresh(): number {
    return this.frames++;
  }

  pickOf<T>(xs: readonly T[]): T {
    return pick(this.rng, xs);
  }

  intIn(lo: number, hi: number): number {
    return intIn(this.rng, lo, hi);
  }

  livePages(): GPage[] {
    return this.live().flatMap((q) => [...q.regions.values()].flat());
  }

  refs(frame: number): number {
    return this.livePages().filter((g) => g.mapped && g.frame === frame).length;
  }

  held(kind?: GHandle['kind']): Set<number> {
    return new Set(this.handles.filter((h) => !kind || h.kind === kind).flatMap((h) => h.frames.filter((f) => f !== 0)));
  }

  forkPages(pages: GPage[], pinned: Set<number>): GPage[] {
    return forkPages(pages, pinned, () => this.fresh());
  }

  /** A read fault (or a read GUP): the zero page for private memory, a frame of its own for shared. */
  readFault(g: GPage): void {
    if (g.mapped && g.prot !== 'none' && g.content === 'none') g.content = g.shared ? 'data' : 'zero';
    if (g.prot !== 'none') g.swapped = false;
  }

  /**
   * A CPU write or a write GUP: the pages up to the first that faults get a frame of their own
   * (the one they had, when nothing else maps it and it is no KSM page), holding `value` (null:
   * what they held, zeros if nothing).
   */
  written(pages: GPage[], value: number | null): boolean {
    for (const g of pages) {
      if (!g.mapped || g.prot !== 'rw') return false;
      if (!g.shared) {
        const reuse = g.content === 'data' && !g.ksm && g.frame !== 0 && this.refs(g.frame) === 1;
        if (!reuse) g.frame = this.fresh();
        g.value = value ?? g.value ?? 0;
        g.ksm = false;
      }
      g.content = 'data';
      g.swapped = false;
    }
    return true;
  }

  /**
   * What a ksm merge does, as far as the generator can tell: pages of mergeable private
   * mappings with equal contents join a KSM page. Returns false when which page becomes the
   * KSM page would show (ksm-merge-order, fixed: the model, as Linux, makes the page scanned
   * second the KSM page; --avoid keeps it out to bisect a regression): two new pages merge and
   * one of them shares its frame with a mapping ksmd does not merge too (not mergeable: fork) or
   * is held by a pin or a pipe. (When every mapping of the frames merges, both orders end in the
   * same place.) Marks the merged pages (check: only look).
   */
  ksmMerge(check: boolean): boolean {
    const live = this.livePages().filter((g) => g.mapped && !g.shared);
    const stable = new Map<number, number>();
    for (const g of live) if (g.ksm && g.value !== null) stable.set(g.value, g.frame);
    const groups = new Map<number, GPage[]>();
    for (const g of live) {
      if (!g.mergeable || g.content !== 'data' || g.ksm || g.swapped || g.value === null) continue;
      let l = groups.get(g.value);
      if (!l) groups.set(g.value, (l = []));
      l.push(g);
    }
    const busy = this.held();
    const merging = new Set([...groups.values()].flat());
    const all = this.livePages().filter((g) => g.mapped);
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
      merges.push([members.filter((g) => !busy.has(g.frame)), this.fresh()]);
    }
    if (!check) for (const [members, frame] of merges) for (const g of members) Object.assign(g, { frame, ksm: true });
    return true;
  }

  /** A page selector of p: its text and the pages it covers. */
  sel(p: GProc, single: boolean): { text: string; pages: GPage[] } {
    const rng = this.rng;
    // Every process has a region that is not hugetlb (the first one, `a`, stays in the map even when unmapped).
    const [region, all] = pick(rng, [...p.regions].filter(([, pg]) => this.hugetlbOk || !pg.some((x) => x.hugetlb)));
    const n = all.length;
    if (single || n === 1 || rng() < 0.6) {
      const i = intIn(rng, 0, n - 1);
      return { text: `${region}[${i}]`, pages: [all[i]!] };
    }
    if (rng() < 0.3) return { text: region, pages: all };
    const lo = intIn(rng, 0, n - 1);
    const hi = intIn(rng, lo, n - 1);
    return { text: lo === hi ? `${region}[${lo}]` : `${region}[${lo}..${hi}]`, pages: all.slice(lo, hi + 1) };
  }

  wholeHugetlb(p: GProc, s: { text: string; pages: GPage[] }): { text: string; pages: GPage[] } {
    if (!s.pages.some((x) => x.hugetlb)) return s;
    const region = s.text.replace(/\[.*$/, '');
    return { text: region, pages: p.regions.get(region)! };
  }
}

export function generateLines(rng: Rng, ops: readonly string[], avoid: readonly Gap[] = []): GenLine[] {
  const g = new Gen(rng, new Set(avoid));
  const candidates = RANDOM_DRAWS.filter((d) => ops.includes(d.name));

  // Setup: one or two regions of 1-8 pages in all, values in most of them.
  const total = intIn(rng, 1, 8);
  const first = total > 1 && rng() < 0.4 ? intIn(rng, 1, total - 1) : total;
  const sizes = first < total ? [first, total - first] : [total];
  sizes.forEach((n, i) => {
    const name = i === 0 ? 'a' : 'b';
    const populate = rng() < 0.15;
    // shmem-fault-around: Linux maps a shared page's cached neighbours on a read fault; the model does not.
    const shared = !g.avoids('shmem-fault-around') && rng() < 0.2;
    const pages = Array.from({ length: n }, (): GPage => ({
      shared, mapped: true, prot: 'rw', content: populate ? 'data' : 'none', dontfork: false, wipe: false,
      frame: populate && !shared ? g.fresh() : 0, value: populate && !shared ? 0 : null, mergeable: false, ksm: false, swapped: false,
    }));
    g.procs[0]!.regions.set(name, pages);
    g.add(`P mmap ${name} ${n} rw ${shared ? 'shared' : 'private'}${populate ? ' populate' : ''}`);
    // vma-boundaries: Linux merges adjacent mappings (and skips splits that change nothing), so a
    // mapping the model sees without an anon_vma may share one in Linux, and fork then copies its
    // page tables and zero-page PTEs. A mapping written once has an anon_vma on both sides.
    if (rng() < 0.8 || (g.avoids('vma-boundaries') && !populate)) {
      const v = g.nextValue();
      g.written(pages, v);
      g.add(`P write ${name} = ${v}`);
    }
  });

  // Often a THP region: 512 pages, 2 MiB-aligned, MADV_HUGEPAGE, mostly written (a PMD-mapped
  // THP where the machine gives one); the draws' partial ranges split it.
  if (rng() < 0.35) {
    const written = rng() < 0.85;
    const v = written ? g.nextValue() : null;
    const pages = Array.from({ length: 512 }, (): GPage => ({
      shared: false, mapped: true, prot: 'rw', content: 'none', dontfork: false, wipe: false,
      frame: 0, value: null, mergeable: false, ksm: false, swapped: false, huge: true,
    }));
    g.procs[0]!.regions.set('t', pages);
    g.add('P mmap t 512 rw private thp');
    if (v !== null) {
      g.written(pages, v);
      g.add(`P write t = ${v}`);
    }
  }

  // Sometimes a hugetlb region: one 2 MiB huge page (MAP_HUGETLB) from a small pool (1-3 free
  // pages), so that a COW or an early COW at fork finds it empty now and then (SIGBUS). The
  // draws that apply to hugetlb (`hugetlb: true` in src/ops) may pick it.
  if (rng() < 0.3) {
    const pages = Array.from({ length: 512 }, (): GPage => ({
      shared: false, mapped: true, prot: 'rw', content: 'none', dontfork: false, wipe: false,
      frame: 0, value: null, mergeable: false, ksm: false, swapped: false, hugetlb: true,
    }));
    g.procs[0]!.regions.set('h', pages);
    g.lines.push({ text: `hugepages: ${intIn(rng, 1, 3)}`, fill: 'none', config: true });
    g.add('P mmap h 512 rw private hugetlb');
    if (rng() < 0.6) {
      const v = g.nextValue();
      g.written(pages, v);
      g.add(`P write h = ${v}`);
    }
  }

  // What the drawn operations write once after the set-up (userfaultfd: the fork event, registrations).
  for (const d of candidates) d.setup?.(g);

  const steps = (g.steps = intIn(rng, 6, 26));
  const fork = candidates.find((d) => d.name === 'fork');
  const others = candidates.filter((d) => d !== fork);
  for (let made = 0; made < steps && g.tries < steps * 20 && candidates.length > 0; g.tries++) {
    const forksLeft = fork ? g.maxProcs - g.procs.length : 0;
    const wantFork = forksLeft > 0 && (rng() < 0.25 || steps - made <= forksLeft * 2);
    const draw = wantFork ? fork! : chooseOp(rng, others);
    const live = g.live();
    if (live.length === 0) break;
    const p = pick(rng, live);
    g.hugetlbOk = draw?.hugetlb === true;
    // (Only fork asked for, and no fork due: a step that writes nothing.)
    if (draw !== undefined && !draw.draw(g, p)) continue;
    made++;
  }
  return g.lines;
}
