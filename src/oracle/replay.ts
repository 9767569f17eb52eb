// Replays a scenario on the live kernel through the helper, step by step, and records what the
// kernel shows in the model's observation kinds (read, write, handle-read, frame, mapped,
// exclusive, stat, fork, gup, uffd, uffd-wp), with the same `what` texts, so the two can be paired; and, after
// a swapout or a ksm merge, which pages were swapped out or are KSM pages (kinds swap, ksm).

import type { PageSel, Scenario, Step } from '../scenario/index.js';
import { type Agent, OracleError } from './agent.js';
import { Comparability } from './comparable.js';
import { type Facilities, NO_KPAGEFLAGS, NO_PFNS } from './facilities.js';
import { expectation } from './expectations.js';
import { errnoName, label, pageList, pageStates } from './names.js';
import { hasFlag, KPF_KSM, kpageflags, ksmMergeable, ksmRun, pagemap, vmPteKb } from './procfs.js';
import { systemStep } from './system-ops.js';
import type { SystemOps } from './system.js';
import { hugeRunsText, parseScan, thpFallbacks, thpPlan, thpQuietStep, type HugeRuns, type ThpPlan, usesThp } from './thp.js';
import type { KernelObservation, KernelRun, KernelStep, KHandle, KProc, ModelHandle, ModelRow, ModelSide, ObservationKind, Region } from './types.js';
import { ValueWords } from './values.js';
import { declOf } from '../ops/index.js';
import type { Replayer } from '../ops/types.js';

/** Where the model places mappings (bottom-up from 1 TiB; 2 MiB-aligned from 2 MiB on). */
const MMAP_BASE_VPN = 2 ** 28;
const PMD_PAGES = 512;
const PAGE = 4096;
/** Failures that say something about this machine's limits, not about the mapping. */
const RESOURCE_ERRORS = new Set(['ENOMEM', 'EPERM', 'EAGAIN', 'EMFILE', 'ENFILE', 'E2BIG']);
/** MADV_PAGEOUT again, at most this many times, on pages it left that reclaim could take. */
const PAGEOUT_RETRIES = 4;

function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** SIGBUS on x86-64 and arm64 Linux (the helper answers `fault PAGE SIGNAL`). */
const SIGBUS_NO = 7;
/** errno EAGAIN (Linux). */
const EAGAIN_ERRNO = 11;

/**
 * What the model holds of a handle this run could not take (m: the model's answer to the step;
 * null: not known to this replay), and what of it may change frames and counters, in a note's words.
 */
function modelHolds(handle: string, line: number, m: ModelHandle | null): [string, string] {
  if (m === null) return [`this run could not take ${handle} (line ${line}), which the model may hold`, 'what the model did for it'];
  if (m.answer === null) return [`the model took no ${handle} (line ${line}: its process is gone there) and this run could not take it`, 'what the two runs\' processes did differently'];
  const kept = m.exclusive ? 'its device-exclusive entries' : 'its references and unsharing';
  if (m.held === m.pages) return [`the model holds ${handle} (line ${line}), which this run could not take`, kept];
  const call = m.exclusive ? 'device-exclusive request' : 'GUP';
  if (m.held > 0) return [`the model holds ${m.held} of the ${m.pages} pages of ${handle} (line ${line}: its ${call} ended ${m.answer}), which this run could not take`, kept];
  return m.exclusive
    ? [`the model's ${call} for ${handle} (line ${line}) failed with ${m.answer}: it holds none of its pages, and this run none either`, 'the faults and conversions it did before failing']
    : [`the model's ${call} for ${handle} (line ${line}) failed with ${m.answer} (no handle on either side)`, 'the faults and unsharing it did before failing'];
}

/** Steps not replayed whose note says what the model did from its own row (modelDid). */
const SAYS_WHAT_MODEL_DID = new Set(['swapout', 'madvise-pageout', 'ksm-merge']);

/**
 * What the model did at a swapout, pageout or ksm merge this run could not do, read from the
 * model's own row after it (row: its swap or KSM row; null: not known to this replay): it claims
 * no more than the model did.
 */
export function modelDid(op: string, line: number, row: ModelRow | null): string {
  if (row === null) return `the model may have ${systemStep(op).did} at line ${line}`;
  if (op === 'ksm-merge') {
    return `the model's ksm merge at line ${line} left ${row.actual === 'none' ? 'no page' : row.actual} mapping a KSM page`;
  }
  if (row.actual === 'swapped') return `the model swapped out every page of ${row.what} at line ${line}`;
  return `the model swapped out ${row.actual.includes('swapped') ? 'part' : 'none'} of ${row.what} at line ${line} (${row.actual})`;
}

export class Replay implements Replayer {
  readonly names = new Map<string, KProc>();
  readonly handles = new Map<string, KHandle>();
  /** Handles this run could not take: name -> why, whether the model's device may write through it, and what the model holds of it (null: not known here). */
  private readonly missing = new Map<string, { why: string; writable: boolean; model: ModelHandle | null }>();
  readonly comparable = new Comparability();
  readonly values: ValueWords;
  /** The scenario mapped shared memory somewhere (its unmapped object pages are invisible). */
  anySharedMapping = false;
  private nextId = 1;
  /** This scenario holds the KSM lock / the swap lock (system.ts) until its end. */
  private ksmHeld = false;
  private swapHeld = false;
  private obs: KernelObservation[] = [];
  private note = '';
  private skip: string | null = null;
  /** How the scenario's config.thp is had here (thp.ts). */
  readonly thp: ThpPlan;
  /** The scenario can have THPs: huge PMDs are compared after every step. */
  private readonly thpOn: boolean;
  /** Why the whole scenario is skipped (no THP populated where the model has one). */
  private scenarioSkip: string | null = null;
  private hugeBefore = new Map<string, string>();
  private modelHugeBefore = new Map<string, string>();
  private fallbacks: number | null = null;

  constructor(
    private readonly agent: Agent,
    readonly facilities: Facilities,
    private readonly scenario: Scenario,
    private readonly system: SystemOps,
    /** What the model's run maps and holds after each step (oracle.ts; none: a replay driven without the model). */
    private readonly model: ModelSide = { huge: new Map(), handles: new Map(), system: new Map() },
  ) {
    this.values = ValueWords.forScenario(scenario);
    this.thp = thpPlan(scenario, facilities);
    this.thpOn = usesThp(scenario) || this.thp.model === 'always';
  }

  /** Runs steps [from, count) and records each (from > 0 continues an earlier run). */
  run(count: number, from = 0): KernelRun {
    const steps: KernelStep[] = [];
    let error: string | null = null;
    for (let i = from; i < count; i++) {
      const step = this.scenario.steps[i]!;
      this.currentIndex = i;
      this.obs = [];
      this.note = '';
      this.skip = null;
      if (error === null) {
        const stopped = this.comparable.why('all');
        if (stopped !== null) {
          this.skip = stopped;
        } else {
          try {
            this.exec(step);
            if (this.thpOn && !thpQuietStep(step)) this.compareHuge(i);
          } catch (e) {
            if (!(e instanceof OracleError)) throw e;
            error = `line ${step.pos.line}: ${e.message}`;
            this.skip = `the helper failed here: ${e.message}`;
            this.comparable.lose('all', `not replayed: the helper failed at line ${step.pos.line}`);
          }
        }
      } else {
        this.skip = `not replayed: the helper failed at ${error}`;
      }
      steps.push({ index: i, observations: this.obs, note: this.note, skip: this.skip });
    }
    return { steps, error, skip: this.scenarioSkip };
  }

  /** The page runs a huge PMD maps in region g of p (null: this kernel cannot say). */
  hugeRuns(p: KProc, g: Region): HugeRuns | null {
    const r = this.agent.call(`thpscan ${p.id} ${g.vpn * PAGE} ${g.n}`);
    if (r[0] !== 'ok') return null;
    return parseScan(r, g.n);
  }

  /**
   * After a step of a THP scenario: which pages huge PMDs map, per region of each live process,
   * where the model's or the kernel's answer changed (the `thp` observation). Where the model
   * maps a THP and the kernel fell back to 4 KiB pages in this step (thp_fault_fallback grew:
   * the 2 MiB allocation failed), the scenario is skipped, as cow.c skips "Did not get a THP
   * populated": that is this machine's memory, not a disagreement.
   */
  private compareHuge(i: number): void {
    const model = this.model.huge.get(i);
    if (model === undefined) return;
    const fallbacks = thpFallbacks();
    const fellBack = fallbacks !== null && this.fallbacks !== null && fallbacks > this.fallbacks;
    this.fallbacks = fallbacks;
    const kernel = new Map<string, string>();
    const scan = this.facilities.thpInfo?.pagemapScan === true;
    for (const p of this.liveProcs()) {
      for (const [region, g] of p.regions) {
        const runs = scan ? this.hugeRuns(p, g) : null;
        kernel.set(`${p.name} ${region}`, runs === null ? '?' : hugeRunsText(region, runs));
      }
    }
    for (const key of new Set([...model.keys(), ...kernel.keys()])) {
      const m = model.get(key) ?? 'no huge PMD';
      const k = kernel.get(key) ?? 'no huge PMD';
      if (m === this.modelHugeBefore.get(key) && k === this.hugeBefore.get(key)) continue;
      if (k === '?') {
        this.observeSkipped('thp', key, 'this kernel has no PAGEMAP_SCAN (Linux 6.7+): which pages a huge PMD maps cannot be seen');
        continue;
      }
      if (m !== k && fellBack && this.scenarioSkip === null) {
        this.scenarioSkip = `no THP populated at line ${this.currentLine} (${key}: the kernel has ${k}, the model ${m}): the kernel's 2 MiB allocation failed and fell back to 4 KiB pages (thp_fault_fallback grew: fragmentation or the defrag setting ${this.facilities.thpInfo?.defrag ?? '?'})`;
        this.stopHere(this.scenarioSkip);
      }
      this.observe('thp', key, k);
    }
    this.hugeBefore = kernel;
    this.modelHugeBefore = new Map(model);
  }

  // ---- helpers ---------------------------------------------------------------------------

  private observe(kind: ObservationKind, what: string, actual: string | null, shortRef = false): void {
    this.obs.push({ kind, what, actual, skip: this.comparable.forObservation(kind, what, shortRef) });
  }

  private observeSkipped(kind: ObservationKind, what: string, why: string): void {
    this.obs.push({ kind, what, actual: null, skip: why });
  }

  /** Sends a command; `err E dead` (a scenario process died) ends the replay. */
  private call(line: string): string[] {
    const r = this.agent.call(line);
    if (r[0] === 'err' && r[2] === 'dead') throw new OracleError(`a scenario process died or hung (${line.split(' ')[0]})`);
    if (r[0] !== 'ok' && r[0] !== 'err' && r[0] !== 'fault') throw new OracleError(`unexpected answer from the helper: ${r.join(' ')}`);
    return r;
  }

  /** The real process a scenario name runs in, when that name is alive. */
  private live(name: string): KProc | null {
    const p = this.names.get(name);
    return p && p.alive && p.members.has(name) ? p : null;
  }

  private region(p: KProc, sel: PageSel): Region {
    const r = p.regions.get(sel.region);
    if (!r) throw new OracleError(`no region ${sel.region} in the replay (the parser should have refused this)`);
    return r;
  }

  private addr(p: KProc, sel: PageSel, i: number): number {
    return (this.region(p, sel).vpn + i) * PAGE;
  }

  /** Whether a huge PMD maps the page (null: this kernel cannot say). */
  pmdMapped(name: string, sel: PageSel, i: number): boolean | null {
    const p = this.live(name);
    if (!p || this.facilities.thpInfo?.pagemapScan !== true) return p ? null : false;
    const runs = this.hugeRuns(p, this.region(p, sel));
    return runs === null ? null : runs.some(([lo, hi]) => i >= lo && i <= hi);
  }

  /** The frame a page maps: -1 not mapped; with mappedOnce. */
  pageAt(name: string, sel: PageSel, i: number): { pfn: number; once: boolean } {
    const p = this.live(name);
    if (!p) return { pfn: -1, once: false };
    const e = pagemap(p.pid, this.region(p, sel).vpn + i, 1)[0]!;
    return e.present ? { pfn: e.pfn, once: e.mappedOnce } : { pfn: -1, once: false };
  }

  /** What the model holds after the current step, when it took a handle (null: not known to this replay). */
  private modelHandle(): ModelHandle | null {
    return this.model.handles.get(this.currentIndex) ?? null;
  }

  /** Frame sharing, counters and short-term references are not compared after a handle this run could not take; the note says what the model holds of it (m). */
  private loseForMissingHandle(handle: string, line: number, m: ModelHandle | null): void {
    const [what, did] = modelHolds(handle, line, m);
    const why = `${what}: ${did} may change frame sharing and counters from here on`;
    this.comparable.lose('frames', why);
    this.comparable.lose('stats', why);
    this.comparable.lose('shortRefs', `${what}: what short-term references see depends on which pages get copied`);
  }

  private stopHere(reason: string): void {
    this.skip = reason;
    this.comparable.lose('all', `not compared after line ${this.currentLine}: ${reason}`);
  }

  /** An operation this run does not perform: skip it (why: this machine's reason), and stop comparing what it may change. */
  notReplayed(op: string, why?: string): void {
    const s = systemStep(op);
    const reason = why ?? s.reason;
    if (s.lose.includes('all')) return this.stopHere(reason);
    this.skip = reason;
    // Swap and KSM: what the model did, from its own row; the others say what their model step does.
    const did = SAYS_WHAT_MODEL_DID.has(op) ? modelDid(op, this.currentLine, this.model.system.get(this.currentIndex) ?? null) : `the model ${s.did} at line ${this.currentLine}`;
    for (const a of s.lose) {
      this.comparable.lose(a, `${did} and this run could not: ${a === 'values' ? 'values' : 'frame sharing, counters and what short-term references see'} may differ from here on`);
    }
  }

  private currentLine = 0;
  private currentIndex = 0;

  // ---- steps -----------------------------------------------------------------------------

  private exec(step: Step): void {
    this.currentLine = step.pos.line;
    if ('async' in step && (step as { async?: boolean }).async) {
      return this.notReplayed('async');
    }
    declOf(step.op).replay(this, step);
  }

  // ---- what the operations' declarations (src/ops, `replay`) call --------------------------

  /** munmap, mprotect, madvise (madvise pageout is a swapout; mergeable holds the KSM lock first). */
  rangeOp(step: Extract<Step, { op: 'munmap' | 'mprotect' | 'madvise' }>): void {
    const p = this.live(step.proc);
    if (!p) return;
    const r = this.region(p, step.sel);
    const extra = step.op === 'mprotect' ? ` ${step.prot}` : step.op === 'madvise' ? ` ${step.advice}` : '';
    if (step.op === 'madvise' && step.advice === 'pageout') return this.pageout(step.proc, step.sel, 'madvise-pageout');
    if (step.op === 'madvise' && step.advice === 'mergeable') this.holdKsm();
    if (step.op === 'madvise' && step.advice === 'collapse' && this.thpAdvice(step.sel.region, step.pos.line) === null && this.thp.mmapAdvice(null) === 'nothp') {
      // The helper maps a region without a THP word MADV_NOHUGEPAGE here (so that no THP appears
      // where the model has 4 KiB pages), which MADV_COLLAPSE refuses; the model has no such flag there.
      return this.notReplayed('madvise-collapse-nothp');
    }
    const advice = step.op === 'madvise' ? this.thp.madvise(step.advice) : '';
    if (advice !== '' && step.op === 'madvise' && advice !== step.advice) this.note = `sent as ${advice} (config.thp ${this.thp.model} on this machine's THP mode); `;
    const cmd = `${step.op} ${p.id} ${(r.vpn + step.sel.lo) * PAGE} ${step.sel.hi - step.sel.lo + 1}${step.op === 'madvise' ? ` ${advice}` : extra}`;
    let res = this.call(cmd);
    if (step.op === 'madvise' && step.advice === 'collapse' && res[0] !== 'ok' && Number(res[1]) === EAGAIN_ERRNO) {
      // MADV_COLLAPSE's EAGAIN means "try again": a page it has just swapped in
      // (__collapse_huge_page_swapin) can still sit in a CPU's LRU batch, so isolating it fails;
      // the next call's lru_add_drain_all() empties the batch. The model has no such batches:
      // one retry (a refusal that lasts, a pin, fails again).
      this.note += 'EAGAIN, retried once: ';
      res = this.call(cmd);
    }
    this.note += res[0] === 'ok' ? 'done' : `${step.op} failed: ${errnoName(Number(res[1]))}`;
    if (step.op === 'madvise' && step.advice === 'collapse') {
      this.observe('madvise', `${step.proc} madvise ${label(step.sel)} collapse`, res[0] === 'ok' ? 'ok' : errnoName(Number(res[1])));
    }
    // Over a hole madvise fails with ENOMEM, and still marks every mapped part; KSM ignores
    // shared mappings (vma_ksm_compatible), and then does not scan the process for them.
    if (step.op === 'madvise' && step.advice === 'mergeable' && (res[0] === 'ok' || res[1] === String(12))) {
      p.mergeable ||= ksmMergeable(p.pid) ?? !r.shared;
    }
  }

  /**
   * The THP word of the mmap that created `region` (following mremap back to the region it came
   * from), as the steps before `line` wrote it: 'thp', 'nothp', or null (none).
   */
  private thpAdvice(region: string, line: number): 'thp' | 'nothp' | null {
    let name = region;
    for (let i = this.scenario.steps.length - 1; i >= 0; i--) {
      const s = this.scenario.steps[i]!;
      if (s.pos.line >= line) continue;
      if (s.op === 'mremap' && s.region === name) name = s.sel.region;
      else if (s.op === 'mmap' && s.region === name) return s.thp;
    }
    return null;
  }

  /** mremap(MREMAP_MAYMOVE|MREMAP_FIXED) to the range the model picks for NEW (its get_unmapped_area). */
  mremap(step: Extract<Step, { op: 'mremap' }>): void {
    const p = this.live(step.proc);
    if (!p) return;
    const r = this.region(p, step.sel);
    const n = step.sel.hi - step.sel.lo + 1;
    let start = p.nextVpn;
    if (n >= PMD_PAGES) start = Math.ceil(start / PMD_PAGES) * PMD_PAGES;
    p.nextVpn = start + n;
    const res = this.call(`mremap ${p.id} ${(r.vpn + step.sel.lo) * PAGE} ${n} ${start * PAGE}`);
    const region = { vpn: start, n, shared: r.shared };
    p.regions.set(step.region, region);
    p.ranges.push(region);
    this.observe('mremap', `${step.proc} mremap ${label(step.sel)}`, res[0] === 'ok' ? 'ok' : errnoName(Number(res[1])));
    this.note = res[0] === 'ok' ? `moved to 0x${(start * PAGE).toString(16)}` : `mremap failed: ${errnoName(Number(res[1]))}`;
  }

  read(step: Extract<Step, { op: 'read' }>): void {
    const p = this.live(step.proc);
    if (!p) return;
    const what = `${step.proc} ${label(step.sel, step.sel.lo)}`;
    const res = this.call(`read ${p.id} ${this.addr(p, step.sel, step.sel.lo)}`);
    this.observe('read', what, res[0] === 'fault' ? 'fault' : this.valueOf(res));
    if (res[0] === 'fault') this.killedBySigbus(p, res);
  }

  /**
   * A fault answered with SIGBUS (a hugetlb fault that found no huge page): the scenario process
   * caught it, the kernel's default would have killed it; it is killed now, all its threads.
   */
  private killedBySigbus(p: KProc, res: string[]): void {
    if (res[2] !== String(SIGBUS_NO)) return;
    this.call(`exit ${p.id}`);
    p.alive = false;
    this.note = 'SIGBUS: the process is killed (hugetlb: no huge page for the fault)';
  }

  exit(step: Extract<Step, { op: 'exit' }>): void {
    const p = this.live(step.proc);
    if (!p) return;
    p.members.delete(step.proc);
    if (p.members.size > 0) {
      this.note = 'a thread exits; the process goes on';
      return;
    }
    this.call(`exit ${p.id}`);
    p.alive = false;
    this.note = 'exited';
  }

  thread(step: Extract<Step, { op: 'thread' }>): void {
    const p = this.live(step.proc);
    if (!p) return;
    // Steps run one at a time, so a thread's steps are its process's steps.
    p.members.add(step.thread);
    this.names.set(step.thread, p);
    this.note = `${step.thread} runs in ${step.proc}'s process`;
  }

  noUring(): string | null {
    return this.facilities.uring ? null : this.facilities.uringWhy ?? 'io_uring is not available';
  }

  deviceWrite(step: Extract<Step, { op: 'device-write' }>): void {
    const name = step.ref.handle;
    const m = this.missing.get(name);
    if (m) {
      this.skip = `no ${name} in this run: ${m.why}`;
      if (m.writable) this.comparable.lose('values', `the model's device ${m.model === null ? 'may have written' : 'wrote'} through ${name} (line ${step.pos.line}), which this run could not take`);
      return;
    }
    const h = this.handles.get(name);
    if (!h) {
      this.note = `no handle ${name} (taking it failed)`;
      return;
    }
    if (h.kind !== 'ring') {
      this.note = 'a pipe gives the device no write access: nothing written';
      return;
    }
    const res = this.call(`hwrite ${h.id} ${step.ref.index} ${this.values.hex(step.value)}`);
    this.note = res[0] === 'ok' ? `IORING_OP_READ_FIXED wrote ${step.value} into ${name}[${step.ref.index}]` : `the device write failed: ${errnoName(Number(res[1]))}`;
    if (res[0] !== 'ok') throw new OracleError(`IORING_OP_READ_FIXED into ${name}[${step.ref.index}] failed: ${errnoName(Number(res[1]))}`);
  }

  release(name: string): void {
    if (this.missing.has(name)) {
      this.missing.delete(name);
      this.skip = `no ${name} in this run (it could not be taken)`;
      return;
    }
    const h = this.handles.get(name);
    if (!h) return;
    this.call(`release ${h.id}`);
    this.handles.delete(name);
    this.note = h.kind === 'ring' ? 'IORING_UNREGISTER_BUFFERS, ring closed' : 'pipe closed';
  }

  clearSoftdirty(step: Extract<Step, { op: 'clear-softdirty' }>): void {
    const p = this.live(step.proc);
    if (!p) return;
    this.call(`clearrefs ${p.id} 4`);
    if (!this.facilities.softDirty) {
      this.note = 'this kernel has no soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY unset): clear_refs 4 write-protects nothing';
      this.comparable.lose('minflt', `clear_refs 4 at line ${step.pos.line} write-protects nothing on this kernel (no CONFIG_MEM_SOFT_DIRTY), so the model counts write faults this kernel does not take`);
    } else {
      this.note = 'soft-dirty bits cleared, PTEs write-protected';
    }
  }

  expect(step: Extract<Step, { op: 'expect-frame' | 'expect-mapped' | 'expect-exclusive' | 'expect-stat' | 'expect-uffd-wp' }>): void {
    this.obs.push(expectation(this, step));
  }

  /** `P uffd ...`: the agent does the userfaultfd ioctls on P's context; its monitor thread answers the faults. */
  uffd(step: Extract<Step, { op: 'uffd' }>): void {
    if (!this.facilities.uffdWp) return this.stopHere(this.facilities.uffdWhy ?? 'userfaultfd write-protect is unavailable here');
    const p = this.live(step.proc);
    if (!p) return;
    if (step.action === 'fork-event') {
      if (p.uffdCtx && p.uffdForkEvent !== step.on) {
        return this.stopHere(`UFFD_FEATURE_EVENT_FORK is chosen once, at UFFDIO_API (line ${step.pos.line} changes it after ${step.proc}'s first registration)`);
      }
      p.uffdForkEvent = step.on;
      this.note = `the fork event is ${step.on ? 'asked' : 'not asked'} at UFFDIO_API`;
      return;
    }
    const sel = step.sel!;
    const what = `${step.proc} uffd ${step.action} ${label(sel)}`;
    const n = sel.hi - sel.lo + 1;
    const res = step.action === 'register'
      ? this.call(`uffdreg ${p.id} ${this.addr(p, sel, sel.lo)} ${n} ${p.uffdForkEvent ? 1 : 0}`)
      : this.call(`uffdwp ${p.id} ${this.addr(p, sel, sel.lo)} ${n} ${step.action === 'protect' ? 1 : 0}`);
    if (step.action === 'register' && res[0] === 'ok') p.uffdCtx = true;
    const actual = res[0] === 'ok' ? 'ok' : errnoName(Number(res[1]));
    this.note = res[0] === 'ok' ? 'done' : `failed: ${res.slice(1).join(' ')}`;
    this.observe('uffd', what, actual);
  }

  /** A device-exclusive grant needs a driver: a handle this run cannot take (system-ops.ts says why), whatever the model holds of it. */
  deviceExclusive(step: Extract<Step, { op: 'device-exclusive' }>): void {
    const why = systemStep('device-exclusive').reason;
    const m = this.modelHandle();
    this.missing.set(step.handle, { why, writable: m === null || m.held > 0, model: m });
    this.skip = why;
    this.loseForMissingHandle(step.handle, step.pos.line, m);
  }

  swapout(name: string, sel: PageSel): void {
    this.pageout(name, sel, 'swapout');
  }

  private valueOf(res: string[]): string {
    const v = this.values.name(res[1] ?? '0');
    return res[2] === '0' ? `${v} (torn: the page holds more than one value)` : v;
  }

  mmap(step: Extract<Step, { op: 'mmap' }>): void {
    let p = this.names.get(step.proc);
    if (!p) {
      const id = this.nextId++;
      const res = this.call(`spawn ${id}`);
      if (res[0] !== 'ok') throw new OracleError(`cannot start process ${step.proc}: ${errnoName(Number(res[1]))}`);
      const pid = Number(res[1]);
      p = {
        id, pid, name: step.proc, mergeable: false, alive: true, members: new Set([step.proc]), regions: new Map(), ranges: [],
        nextVpn: MMAP_BASE_VPN, helperPt: vmPteKb(pid) ?? 0, uffdForkEvent: false, uffdCtx: false,
      };
      this.names.set(step.proc, p);
    } else if (!this.live(step.proc)) {
      return;
    }
    // The model's address: from 2 MiB on, 2 MiB-aligned (what cow.c gets by mapping twice the
    // size and aligning), so a THP can back it here exactly where the model puts one.
    let start = p.nextVpn;
    if (step.pages >= PMD_PAGES) start = Math.ceil(start / PMD_PAGES) * PMD_PAGES;
    p.nextVpn = start + step.pages;
    const prot = step.prot === 'rw' ? 2 : step.prot === 'ro' ? 1 : 0;
    // MMAP_HUGETLB (64): MAP_HUGETLB | MAP_HUGE_2MB from the pool the session set (hugetlbPoolFor);
    // MMAP_THP (16) / MMAP_NOTHP (32): the THP advice the plan gives the mapping.
    const advice = step.hugetlb ? null : this.thp.mmapAdvice(step.thp);
    const flags = prot | (step.shared ? 4 : 0) | (step.populate ? 8 : 0) | (step.hugetlb ? 64 : advice === 'thp' ? 16 : advice === 'nothp' ? 32 : 0);
    const res = this.call(`mmap ${p.id} ${start * PAGE} ${step.pages} ${flags}`);
    if (res[0] !== 'ok' && step.hugetlb && errnoName(Number(res[1])) === 'ENOMEM') {
      this.note = 'mmap of hugetlb pages failed with ENOMEM: the pool cannot reserve them';
      return;
    }
    if (res[0] !== 'ok') throw new OracleError(`mmap of ${step.pages} page(s) at 0x${(start * PAGE).toString(16)} failed: ${errnoName(Number(res[1]))}`);
    const region = { vpn: start, n: step.pages, shared: step.shared, ...(step.hugetlb ? { hugetlb: true } : {}) };
    p.regions.set(step.region, region);
    p.ranges.push(region);
    if (step.shared) this.anySharedMapping = true;
    this.note = `mapped at 0x${(start * PAGE).toString(16)}` + (advice !== null ? `, MADV_${advice === 'thp' ? '' : 'NO'}HUGEPAGE` : '') + (res[1] ? `; populating failed: ${errnoName(Number(res[1]))}` : '');
  }

  write(name: string, sel: PageSel, value: string): void {
    const p = this.live(name);
    if (!p) return;
    const n = sel.hi - sel.lo + 1;
    const res = this.call(`write ${p.id} ${this.addr(p, sel, sel.lo)} ${n} ${this.values.hex(value)}`);
    if (res[0] === 'fault') {
      this.observe('write', `${name} ${label(sel, sel.lo + Number(res[1]))}`, 'fault');
      this.killedBySigbus(p, res);
    } else {
      this.observe('write', `${name} ${label(sel)}`, 'ok');
    }
  }

  fork(name: string, child: string, cowpt: boolean): void {
    const p = this.live(name);
    if (!p) return;
    if (cowpt) return this.notReplayed('fork-cowpt');
    const id = this.nextId++;
    const res = this.call(`fork ${p.id} ${id}`);
    const what = `${name} forks ${child}`;
    if (res[0] !== 'ok') {
      this.observe('fork', what, errnoName(Number(res[1])));
      return;
    }
    const c: KProc = {
      id, pid: Number(res[1]), name: child, mergeable: p.mergeable, alive: true, members: new Set([child]), regions: new Map(p.regions),
      ranges: [...p.ranges], nextVpn: p.nextVpn, helperPt: p.helperPt,
      // With the fork event the child's context came to the monitor (the agent) with the fork.
      uffdForkEvent: p.uffdCtx && p.uffdForkEvent, uffdCtx: p.uffdCtx && p.uffdForkEvent,
    };
    this.names.set(child, c);
    this.observe('fork', what, 'ok');
  }

  missingHandle(proc: string, sel: PageSel, handle: string, verb: string, line: number, writable: boolean, why: string): void {
    if (!this.live(proc)) return;
    const m = this.modelHandle();
    // A handle the model does not hold either gives its device nothing to write through.
    this.missing.set(handle, { why, writable: writable && (m === null || m.held > 0), model: m });
    this.skip = why;
    this.observeSkipped('gup', `${proc} ${verb} ${label(sel)}`, why);
    this.loseForMissingHandle(handle, line, m);
  }

  take(name: string, sel: PageSel, handle: string, kind: 'ring' | 'pipe'): void {
    const p = this.live(name);
    if (!p) return;
    const id = this.nextId++;
    const n = sel.hi - sel.lo + 1;
    const addr = this.addr(p, sel, sel.lo);
    const res = this.call(`${kind === 'ring' ? 'pin' : 'vmsplice'} ${p.id} ${id} ${addr} ${n}`);
    const what = `${name} ${kind === 'ring' ? 'pins' : 'vmsplices'} ${label(sel)}`;
    if (res[0] !== 'ok') {
      const err = errnoName(Number(res[1]));
      if (RESOURCE_ERRORS.has(err)) {
        // A limit of this machine or user (RLIMIT_MEMLOCK, pipe sizes), not a GUP answer.
        const why = `${kind === 'ring' ? 'IORING_REGISTER_BUFFERS' : 'the pipe for vmsplice'} failed with ${err} here (a resource limit of this machine or user, e.g. RLIMIT_MEMLOCK or pipe-max-size)`;
        return this.missingHandle(name, sel, handle, kind === 'ring' ? 'pins' : 'vmsplices', this.currentLine, kind === 'ring', why);
      }
      this.observe('gup', what, err);
      this.note = kind === 'ring' ? 'IORING_REGISTER_BUFFERS failed' : 'vmsplice failed';
      return;
    }
    // hugetlb pages are not frames_used (as in the model): a handle on them holds none of those.
    const onHugetlb = p.ranges.some((g) => g.hugetlb && addr / PAGE >= g.vpn && addr / PAGE < g.vpn + g.n);
    const pfns = this.facilities.pfns && !onHugetlb
      ? pagemap(p.pid, addr / PAGE, n).map((e) => (e.present ? e.pfn : 0)).filter((f) => f !== 0 && f !== this.facilities.zeroPfn)
      : [];
    this.handles.set(handle, { id, kind, holder: name, pages: n, pfns });
    this.observe('gup', what, 'ok');
    this.note = kind === 'ring' ? 'IORING_REGISTER_BUFFERS: pinned FOLL_WRITE|FOLL_LONGTERM' : 'vmsplice into a pipe';
  }

  handleRead(name: string, i: number, reader: string | null): void {
    const what = `${reader ?? 'the device'} reads ${name}[${i}]`;
    const m = this.missing.get(name);
    if (m) {
      this.skip = `no ${name} in this run: ${m.why}`;
      this.observeSkipped('handle-read', what, `no ${name} in this run: ${m.why}`);
      return;
    }
    const h = this.handles.get(name);
    if (!h) {
      this.note = `no handle ${name} (taking it failed)`;
      return;
    }
    const res = this.call(`hread ${h.id} ${i}`);
    if (res[0] !== 'ok') throw new OracleError(`reading ${name}[${i}] failed: ${errnoName(Number(res[1]))}`);
    this.observe('handle-read', what, this.valueOf(res), h.kind === 'pipe');
  }

  /**
   * `swapout P sel` and `P madvise sel pageout`: MADV_PAGEOUT on the range in P's process, with
   * the oracle's swap file enabled. Reclaim takes a page only if it is on the LRU, mapped once
   * and not maybe-pinned, and a page that someone else holds for a moment (isolated, locked)
   * is left: pages still present and mapped once are asked again, a few times. Then pagemap
   * says per page whether it is out (bit 62).
   */
  private pageout(name: string, sel: PageSel, op: 'swapout' | 'madvise-pageout'): void {
    const p = this.live(name);
    if (!p) return;
    const why = this.system.swap();
    if (why !== null) return this.notReplayed(op, why);
    const r = this.region(p, sel);
    const lo = r.vpn + sel.lo;
    const n = sel.hi - sel.lo + 1;
    const free = this.system.swapFree();
    if (free !== null && free < n) {
      return this.notReplayed(op, `the oracle's swap file has room for ${free} more page(s), and this swapout may need ${n}`);
    }
    if (!this.swapHeld) {
      const held = this.system.swapHold();
      if (held !== null) return this.notReplayed(op, `another cowlab oracle kept the swap lock: ${held}`);
      this.swapHeld = true;
    }
    const res = this.call(`madvise ${p.id} ${lo * PAGE} ${n} pageout`);
    if (res[0] === 'err' && res[1] !== '12') throw new OracleError(`MADV_PAGEOUT failed: ${errnoName(Number(res[1]))}`);
    let again = 0;
    for (let round = 0; round < PAGEOUT_RETRIES; round++) {
      const left = pagemap(p.pid, lo, n).map((e, i) => (e.present && e.mappedOnce ? i : -1)).filter((i) => i >= 0);
      if (left.length === 0) break;
      pause(1);
      for (const i of left) this.call(`madvise ${p.id} ${(lo + i) * PAGE} 1 pageout`);
      again++;
    }
    const states = pagemap(p.pid, lo, n).map((e) => (e.swapped ? 'swapped' : e.present ? 'present' : 'not mapped'));
    const out = states.filter((st) => st === 'swapped').length;
    this.observe('swap', `${name} ${label(sel)}`, pageStates(sel.region, sel.lo, states));
    this.note = `MADV_PAGEOUT: ${out} of ${n} page(s) swapped out` + (again > 0 ? ` (asked ${again} more time(s) for pages left mapped once)` : '');
  }

  /**
   * Before the scenario's first MADV_MERGEABLE: the KSM lock, so that no other oracle's ksm
   * merge merges its pages; and where ksmd runs anyway (the machine's own setting), frames and
   * counters stop being compared, since it may merge them at any moment.
   */
  private holdKsm(): void {
    if (this.ksmHeld) return;
    // Without root this run cannot switch KSM on, and cannot have the lock file root made.
    const r = this.facilities.root ? this.system.ksmHold() : { run: ksmRun() };
    this.ksmHeld = true;
    let why: string | null = null;
    if (typeof r === 'string') why = `the KSM lock could not be had (${r}): another oracle's ksm merge may merge this scenario's pages at any moment`;
    else if (r.run !== '0' && r.run !== 'none') why = `KSM runs on this machine (/sys/kernel/mm/ksm/run = ${r.run}): ksmd may merge this scenario's mergeable pages at any moment`;
    if (why !== null) {
      this.comparable.lose('frames', why);
      this.comparable.lose('stats', why);
      this.note = why;
    }
  }

  /**
   * `ksm merge`: ksmd on until it has made its full scans, then its settings put back (when a
   * live scenario process has a mergeable mapping: else ksmd would have nothing of the
   * scenario to scan, and is not switched on). Then which scenario pages map a KSM page.
   */
  ksmMerge(): void {
    const f = this.facilities;
    if (this.liveProcs().some((p) => ksmMergeable(p.pid) ?? p.mergeable)) {
      this.holdKsm();
      // smart_scan as the scenario has it (config.ksm_smart_scan; on by default, as in the kernel).
      const smart = this.scenario.config.ksmSmartScan !== 0;
      const r = this.system.ksmMerge(smart);
      if (typeof r === 'string') return this.notReplayed('ksm-merge', r);
      const s = f.ksm;
      this.note = `ksmd ran ${r.scans} full scans (${r.ms} ms), then run=${r.run} again` +
        (r.drainErrno === 0 ? ', and every CPU\'s LRU batches were drained' :
          `; the CPUs' LRU batches could not be drained (move_pages: ${errnoName(r.drainErrno)}), so a page ksmd just made may be left off the LRU`) +
        (s ? `; use_zero_pages=${s.useZeroPages ? 1 : 0}, merge_across_nodes=${s.mergeAcrossNodes ? 1 : 0}, max_page_sharing=${s.maxPageSharing}` : '') +
        (s && s.smartScan >= 0 ? `, smart_scan=${smart ? 1 : 0} meanwhile` : '');
    } else {
      this.note = 'no live scenario process has a mergeable mapping: ksmd would scan nothing of the scenario (KSM left off)';
    }
    const what = 'KSM pages';
    if (!f.pfns) return this.observeSkipped('ksm', what, NO_PFNS);
    if (!f.kpageflags) return this.observeSkipped('ksm', what, NO_KPAGEFLAGS);
    const pages: { proc: string; region: string; index: number }[] = [];
    for (const p of this.liveProcs()) {
      for (const [region, g] of p.regions) {
        pagemap(p.pid, g.vpn, g.n).forEach((e, index) => {
          if (!e.present || e.pfn === 0 || e.pfn === f.zeroPfn) return;
          const fl = kpageflags(e.pfn);
          if (fl !== null && hasFlag(fl, KPF_KSM)) pages.push({ proc: p.name, region, index });
        });
      }
    }
    this.observe('ksm', what, pageList(pages));
  }

  /** Whether scenario name is alive (a process or thread that has not exited). */
  isLive(name: string): boolean {
    return this.live(name) !== null;
  }

  /** The distinct live real processes. */
  liveProcs(): KProc[] {
    return [...new Set([...this.names.values()].filter((p) => p.alive))];
  }

  procOf(name: string): KProc | undefined {
    return this.names.get(name);
  }

  /** Whether a slow pin of sel meets a page the monitor protected (Replayer.slowPinRefused). */
  slowPinRefused(name: string, sel: PageSel): boolean {
    const p = this.live(name);
    if (p === null || !p.uffdCtx) return false;
    for (let i = sel.lo; i <= sel.hi; i++) if (this.uffdWpAt(name, sel, i)) return true;
    return false;
  }

  /** Whether a page's entry carries userfaultfd's write-protect bit (pagemap's PM_UFFD_WP); false when not alive. */
  uffdWpAt(name: string, sel: PageSel, i: number): boolean {
    const p = this.live(name);
    return p !== null && pagemap(p.pid, this.region(p, sel).vpn + i, 1)[0]!.uffdWp;
  }

  /** Write-protect faults the monitor answered for p. */
  uffdFaults(p: KProc): number {
    const r = this.agent.call(`uffdfaults ${p.id}`);
    if (r[0] !== 'ok') throw new OracleError(`uffdfaults of a process: ${r.join(' ')}`);
    return Number(r[1]);
  }

  minflt(p: KProc): number {
    const r = this.agent.call(`minflt ${p.id}`);
    if (r[0] !== 'ok') throw new OracleError(`minflt of a process: ${r.join(' ')}`);
    return Number(r[1]);
  }
}
