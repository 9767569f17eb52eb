// Address-space operations of a process: thread, mmap, munmap, mremap, mprotect, madvise, fork, exit,
// clear_refs, userfaultfd's requests, reclaim (MADV_PAGEOUT) and ksmd, each on the model and on
// the ideal memory.

import { doMadvCollapse } from '../core/collapse.js';
import { EAGAIN, EBUSY, EINVAL, NA, OK, OOM, VM_HUGEPAGE, VM_HUGETLB, VM_NOHUGEPAGE } from '../core/constants.js';
import { hugetlbIn } from '../core/hugetlb.js';
import { dupMmap } from '../core/fork.js';
import { ksmMerge } from '../core/ksm.js';
import { clearSoftDirty, doMadvise, doMmap, doMprotect } from '../core/mmap.js';
import { doMremap } from '../core/mremap.js';
import { pageoutRange, type SwapoutSkip } from '../core/swap.js';
import { uffdRegister, uffdWriteprotect } from '../core/userfaultfd.js';
import { exitMmap, unmapRegion } from '../core/zap.js';
import type { Step } from '../scenario/ast.js';
import { finishTask, waitForMmapLock } from './scheduler.js';
import { recordsText } from './result.js';
import { needFeature, NotApplicable, type Proc, type RunState } from './state.js';

type StepOf<O extends Step['op']> = Extract<Step, { op: O }>;

const SKIP_WHY: Record<Exclude<SwapoutSkip, null>, string> = {
  'not-present': 'not present', 'not-anon': 'not anonymous', shared: 'mapped by more than this process',
  pinned: 'maybe pinned', 'walk-ended': 'not walked (the PTE loop stopped at a large folio it left alone)',
};

/** A thread exits; the process's address space goes with its last thread. */
export function exitProc(s: RunState, p: Proc): void {
  if (p.task) finishTask(s, p);
  p.alive = false;
  if (s.groupAlive(p.group)) return;
  exitMmap(s.k, p.mm);
  s.ideal.exit(p.group);
}

export function thread(s: RunState, step: StepOf<'thread'>): void {
  const p = s.proc(step.proc);
  if (!p) return;
  s.addProc(step.thread, p.group, p.mm, p.regions);
  s.mmNames[p.mm.id] = s.mmNames[p.mm.id] ?? p.group;
  if (recordsText(s)) s.record.summary = `${p.name} creates thread ${step.thread} (it shares ${p.group}'s address space)`;
}

export function mmap(s: RunState, step: StepOf<'mmap'>): void {
  let p = s.procs.get(step.proc);
  if (!p && s.procs.size > 0) {
    // Only the first process is created by mmap; another unknown name is a child whose fork failed.
    s.record.summary = `${step.proc} does not exist (its fork failed): step skipped`;
    return;
  }
  if (!p) {
    const mm = s.k.newMm();
    s.mmNames[mm.id] = step.proc;
    p = s.addProc(step.proc, step.proc, mm, new Map());
  } else if (!s.proc(step.proc)) return;
  waitForMmapLock(s, p);
  // v1.2 (THP): `thp` / `nothp` are MADV_HUGEPAGE / MADV_NOHUGEPAGE on the new mapping; `hugetlb` is MAP_HUGETLB.
  const r = doMmap(s.k, p.mm, step.pages, step.prot, step.shared, step.populate,
    step.hugetlb ? VM_HUGETLB : step.thp === 'thp' ? VM_HUGEPAGE : step.thp === 'nothp' ? VM_NOHUGEPAGE : 0);
  if (r.err === NA) throw new NotApplicable('a shared hugetlb mapping (MAP_SHARED|MAP_HUGETLB, a hugetlbfs page cache) is not modelled yet');
  if (r.err !== OK) {
    s.record.summary = step.hugetlb
      ? `mmap of ${step.pages} hugetlb page(s) failed with ENOMEM: the pool cannot reserve ${step.pages / 512} huge page(s) (config.hugepages)`
      : `mmap of ${step.pages} page(s) failed: no address space left`;
    s.violation('fault', step.hugetlb ? 'mmap of hugetlb pages failed: not enough free huge pages to reserve' : 'mmap failed in the model');
    return;
  }
  s.regionsOf(p).set(step.region, { start: r.start, n: step.pages });
  s.ideal.mmap(p.group, r.start, step.pages, step.prot, step.shared);
  s.record.summary = `${step.proc} maps ${step.region}: ${step.pages} page(s) ${step.prot} ${step.shared ? 'shared' : 'private'} at 0x${(r.start * 4096).toString(16)}` +
    (step.populate ? `, ${r.populated} populated` : '');
}

export function munmap(s: RunState, step: StepOf<'munmap'>): void {
  const p = s.proc(step.proc);
  if (!p) return;
  waitForMmapLock(s, p);
  const [lo, hi] = s.range(p, step.sel);
  if (unmapRegion(s.k, p.mm, lo, hi) === EINVAL) return refusedHugetlbSplit(s, p, `munmap ${s.label(step.sel)}`);
  s.ideal.munmap(p.group, lo, hi);
  if (recordsText(s)) s.record.summary = `${p.name} unmaps ${s.label(step.sel)}`;
}

/** Why an mprotect or madvise over several mappings that ends inside a huge page is n/a (hugetlbVmOpSplit). */
const PARTIAL_HUGETLB_SPLIT = 'a range over several mappings whose end splits a hugetlb mapping inside a huge page: the kernel changes the mappings before it, then refuses the split (EINVAL); not modelled';

/**
 * A munmap, mprotect or madvise the kernel refuses with EINVAL: it would split a hugetlb mapping
 * inside a huge page (hugetlbVmOpSplit). Nothing changed, so the ideal memory is not told; not a
 * violation: the kernel says so (the munmap(2) page: addr and length multiples of the huge page size).
 */
function refusedHugetlbSplit(s: RunState, p: Proc, call: string): void {
  if (recordsText(s)) s.record.summary = `${p.name} ${call}: EINVAL (a hugetlb mapping splits only on a 2 MiB boundary: hugetlb_vm_op_split; nothing changed)`;
}

/** `P mremap SEL as NEW`: mremap(MREMAP_MAYMOVE|MREMAP_FIXED) of the pages to a fresh range, region NEW. */
export function mremap(s: RunState, step: StepOf<'mremap'>): void {
  const p = s.proc(step.proc);
  if (!p) return;
  waitForMmapLock(s, p);
  const [lo, hi] = s.range(p, step.sel);
  if (hugetlbIn(p.mm, lo, hi)) throw new NotApplicable('mremap of hugetlb pages (move_hugetlb_page_tables) is not modelled yet');
  const r = doMremap(s.k, p.mm, lo, hi);
  if (r.err === NA) throw new NotApplicable(r.why ?? 'mremap of KSM pages (prep_move_vma unmerges them first) is not modelled yet');
  if (r.err === OOM) {
    s.record.summary = `mremap of ${s.label(step.sel)} failed: no address space left`;
    s.violation('fault', 'mremap failed in the model: no address space left');
    return;
  }
  s.regionsOf(p).set(step.region, { start: r.start, n: hi - lo });
  const allowed = s.ideal.mremap(p.group, lo, hi, r.start, r.err === OK);
  const text = recordsText(s);
  if (text) s.observe('mremap', `${p.name} mremap ${s.label(step.sel)}`, r.err === OK ? 'ok' : 'EFAULT', null);
  if (!allowed) s.violation('fault', `mremap of ${s.label(step.sel)}: the model ${r.err === OK ? 'moved the pages, though some are not mapped' : 'failed (EFAULT), though the pages are one mapping'}`, [p.name]);
  if (text) s.record.summary = r.err === OK
    ? `${p.name} moves ${s.label(step.sel)} to ${step.region} at 0x${(r.start * 4096).toString(16)} (mremap: ${r.moved} entr${r.moved === 1 ? 'y' : 'ies'} moved, nothing copied)`
    : `${p.name} mremap ${s.label(step.sel)}: EFAULT (the range is not one mapping); ${step.region} maps nothing`;
}

export function mprotect(s: RunState, step: StepOf<'mprotect'>): void {
  const p = s.proc(step.proc);
  if (!p) return;
  waitForMmapLock(s, p);
  const [lo, hi] = s.range(p, step.sel);
  const err = doMprotect(s.k, p.mm, lo, hi, step.prot);
  if (err === NA) throw new NotApplicable(PARTIAL_HUGETLB_SPLIT);
  if (err === EINVAL) return refusedHugetlbSplit(s, p, `mprotect ${s.label(step.sel)} ${step.prot}`);
  const idealOk = s.ideal.mprotect(p.group, lo, hi, step.prot);
  if ((err === OK) !== idealOk) s.violation('fault', `mprotect ${step.prot}: the model ${err === OK ? 'succeeded' : 'failed (ENOMEM)'}, it must ${idealOk ? 'succeed' : 'fail at a hole'}`, [p.name]);
  if (recordsText(s)) s.record.summary = `${p.name} mprotects ${s.label(step.sel)} ${step.prot}${err === OK ? '' : ': ENOMEM (a hole in the range; pages before it changed)'}`;
}

/**
 * madvise_need_mmap_write() (5.x-6.x; 6.18's get_lock_mode): MADV_DONTNEED and MADV_PAGEOUT take
 * mmap_lock for read (6.18: MADV_DONTNEED a per-VMA read lock, which a fork's write lock keeps
 * out as well), so they run beside a fault holding it for read; the advices that change VMA
 * flags (dontfork, dofork, wipeonfork, keeponfork, mergeable, hugepage, nohugepage) take it for
 * write. MADV_COLLAPSE takes it for read in madvise but collapse_huge_page() retakes it for write:
 * it waits for the readers too.
 */
function madviseTakesMmapLockForWrite(advice: StepOf<'madvise'>['advice']): boolean {
  return advice !== 'dontneed' && advice !== 'pageout';
}

export function madvise(s: RunState, step: StepOf<'madvise'>): void {
  const p = s.proc(step.proc);
  if (!p) return;
  waitForMmapLock(s, p, madviseTakesMmapLockForWrite(step.advice));
  const [lo, hi] = s.range(p, step.sel);
  if (step.advice === 'collapse') return madvCollapse(s, p, step, lo, hi);
  const err = doMadvise(s.k, p.mm, lo, hi, step.advice);
  if (err === NA) {
    const hugetlb = hugetlbIn(p.mm, lo, hi);
    throw new NotApplicable(hugetlb && (step.advice === 'dontfork' || step.advice === 'dofork')
      ? PARTIAL_HUGETLB_SPLIT
      : hugetlb ? `madvise ${step.advice} on hugetlb pages is not modelled yet (only dontfork/dofork)` : `madvise ${step.advice} is not modelled yet`);
  }
  if (err === EINVAL && hugetlbIn(p.mm, lo, hi)) return refusedHugetlbSplit(s, p, `madvise ${s.label(step.sel)} ${step.advice}`);
  const idealOk = s.ideal.madvise(p.group, lo, hi, step.advice);
  if ((err === OK) !== idealOk) s.violation('fault', `madvise ${step.advice}: the model ${err === OK ? 'accepted' : 'refused'} it`, [p.name]);
  if (recordsText(s)) s.record.summary = `${p.name} madvise ${s.label(step.sel)} ${step.advice}${err === EINVAL ? ': EINVAL' : ''}`;
}

/**
 * MADV_COLLAPSE: a hint whose success a program cannot rely on (it may refuse with EAGAIN, EINVAL,
 * EBUSY or ENOMEM, and no page's contents change either way), so the ideal memory has nothing to
 * say about it; the result is the step's observation (the oracle compares it with the live kernel's).
 */
function madvCollapse(s: RunState, p: Proc, step: StepOf<'madvise'>, lo: number, hi: number): void {
  const r = doMadvCollapse(s.k, p.mm, lo, hi);
  if (r.err === NA) throw new NotApplicable(r.why);
  const res = r.err === OK ? 'ok' : ERRNO_NAMES[r.err] ?? 'EINVAL';
  if (!recordsText(s)) return;
  s.observe('madvise', `${p.name} madvise ${s.label(step.sel)} collapse`, res, null);
  s.record.summary = r.err === OK
    ? `${p.name} madvise ${s.label(step.sel)} collapse: ${r.collapsed} new THP(s)`
    : `${p.name} madvise ${s.label(step.sel)} collapse: ${res} (${r.why})${r.collapsed > 0 ? `; ${r.collapsed} new THP(s) before that` : ''}`;
}

const ERRNO_NAMES: Record<number, string> = { [EINVAL]: 'EINVAL', [EAGAIN]: 'EAGAIN', [EBUSY]: 'EBUSY', [OOM]: 'ENOMEM' };

export function fork(s: RunState, step: StepOf<'fork'>): void {
  const p = s.proc(step.proc);
  if (!p) return;
  waitForMmapLock(s, p);
  if (step.cowpt) needFeature(s, 'cow-page-tables');
  const r = dupMmap(s.k, p.mm, step.cowpt);
  if (r.err === NA) throw new NotApplicable('fork of non-present PTEs (swap, device-exclusive) is not modelled yet');
  const text = recordsText(s);
  if (text) s.observe('fork', `${p.name} forks ${step.child}`, r.err === OK ? 'ok' : 'ENOMEM', null);
  if (r.err !== OK || r.child === null) {
    if (text) s.record.summary = `${p.name} forks ${step.child}: fork failed with ENOMEM; ${step.child} does not exist`;
    return;
  }
  s.mmNames[r.child.id] = step.child;
  s.addProc(step.child, step.child, r.child, new Map(p.regions));
  s.ideal.fork(p.group, step.child);
  if (text) s.record.summary = `${p.name} forks ${step.child}${p.mm.cowPgtable ? ` with COW page tables (${s.profile.cowPageTables})` : ''}`;
}

export function exit(s: RunState, step: StepOf<'exit'>): void {
  const p = s.proc(step.proc);
  if (!p) return;
  // exit_mm() takes mmap_lock for read (5.x-6.18); a last thread's exit_mmap has no other thread's path to wait for.
  waitForMmapLock(s, p, false);
  const before = s.k.frames.used;
  exitProc(s, p);
  if (recordsText(s)) s.record.summary = `${p.name} exits: ${before - s.k.frames.used} frame(s) freed`;
}

export function clearSoftdirty(s: RunState, step: StepOf<'clear-softdirty'>): void {
  const p = s.proc(step.proc);
  if (!p) return;
  waitForMmapLock(s, p);
  clearSoftDirty(s.k, p.mm);
  if (recordsText(s)) s.record.summary = `${p.name} clears soft-dirty bits (clear_refs 4)`;
}

/** `P uffd register|protect|unprotect SEL` and `P uffd fork-event on|off`. */
export function uffd(s: RunState, step: StepOf<'uffd'>): void {
  needFeature(s, 'uffd-wp');
  const p = s.proc(step.proc);
  if (!p) return;
  const { action, sel } = step;
  if (action === 'fork-event') {
    p.mm.uffdForkEvent = step.on;
    s.ideal.uffdSetForkEvent(p.group, step.on);
    if (recordsText(s)) s.record.summary = `${p.name}'s userfaultfd context ${step.on ? 'asks for' : 'does without'} the fork event (UFFD_FEATURE_EVENT_FORK)`;
    return;
  }
  waitForMmapLock(s, p, action === 'register');
  const [lo, hi] = s.range(p, sel!);
  if (hugetlbIn(p.mm, lo, hi)) throw new NotApplicable('userfaultfd write-protect on hugetlb pages is not modelled yet');
  const at = s.label(sel!);
  if (action === 'register') {
    const err = uffdRegister(s.k, p.mm, lo, hi);
    if (err === EINVAL && p.mm.findVma(lo)?.shm) throw new NotApplicable(`${s.profile.name} has no userfaultfd write-protect on shared memory (5.19 on)`);
    // The ideal: a range with a hole is refused (EINVAL), a mapped one registered.
    let mapped = true;
    for (let v = lo; v < hi; v++) if ((s.ideal.cellAt(p.group, v)?.cell ?? -1) < 0) mapped = false;
    if (recordsText(s)) s.observe('uffd', `${p.name} uffd register ${at}`, err === OK ? 'ok' : 'EINVAL', mapped ? 'ok' : 'EINVAL');
    if ((err === OK) !== mapped) s.violation('fault', `${p.name}: UFFDIO_REGISTER of ${at} ${err === OK ? 'succeeded over a hole' : 'failed (EINVAL) on a mapped range'}`, [p.name]);
    if (recordsText(s)) s.record.summary = `${p.name} registers ${at} with userfaultfd in write-protect mode${err === OK ? '' : ': EINVAL'}`;
    return;
  }
  const touched: number[] = [];
  const err = uffdWriteprotect(s.k, p.mm, lo, hi, action === 'protect', touched);
  if (err === OK) {
    if (action === 'protect') s.ideal.uffdProtect(p.group, touched);
    else s.ideal.uffdUnprotect(p.group, lo, hi);
  }
  if (!recordsText(s)) return;
  s.observe('uffd', `${p.name} uffd ${action} ${at}`, err === OK ? 'ok' : 'ENOENT', null);
  s.record.summary = err === OK
    ? `${p.name} ${action === 'protect' ? `write-protects ${at} (${touched.length} page(s) with data)` : `un-protects ${at}`}`
    : `${p.name} uffd ${action} ${at}: ENOENT (not registered in write-protect mode)`;
}

export function swapout(s: RunState, step: StepOf<'swapout'>): void {
  needFeature(s, 'swap');
  const p = s.proc(step.proc);
  if (!p) return;
  waitForMmapLock(s, p, false, true); // MADV_PAGEOUT takes mmap_lock for read (P's own fork path holds it for write too)
  const [lo, hi] = s.range(p, step.sel);
  if (hugetlbIn(p.mm, lo, hi)) throw new NotApplicable('reclaim of hugetlb pages: they are never swapped (MADV_PAGEOUT refuses hugetlb VMAs with EINVAL), not modelled');
  const text = recordsText(s);
  const skipped: string[] = [];
  const out = pageoutRange(s.k, p.mm, lo, hi, text ? (v, why) => { skipped.push(`${s.label(step.sel, step.sel.lo + (v - lo))}: ${SKIP_WHY[why]}`); } : null);
  if (text) s.record.summary = `reclaim (MADV_PAGEOUT) of ${p.name} ${s.label(step.sel)}: ${out} page(s) swapped out` +
    (skipped.length ? `; kept ${skipped.slice(0, 4).join(', ')}${skipped.length > 4 ? ', …' : ''}` : '');
}

export function ksmMergeAll(s: RunState): void {
  needFeature(s, 'ksm');
  for (const p of s.procs.values()) if (p.alive) waitForMmapLock(s, p, false, true); // ksmd takes each mm's mmap_lock for read
  const n = ksmMerge(s.k);
  if (recordsText(s)) s.record.summary = `ksmd: ${n} page(s) merged into KSM pages${s.k.config.ksmUseZeroPages === true ? ' or the shared zero page (use_zero_pages)' : ''}`;
}
