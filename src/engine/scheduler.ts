// Kernel paths split into steps (`&`, `P step`, `P finish`) and the mmap lock between threads:
// a path is started, advanced one atomic step at a time, run to its end when another operation
// needs the lock it holds, and on completion its effects reach the names and the ideal memory.

import { NA, OK } from '../core/constants.js';
import { wpCopyHeldPage } from '../core/fault.js';
import type { GupRequest } from '../core/gup.js';
import { cloneTask, startFork, startGup, startWrite, stepTask, type Task, type TaskState } from '../core/tasks.js';
import type { Step } from '../scenario/ast.js';
import { recordsText } from './result.js';
import { NotApplicable, type Proc, type RunState } from './state.js';
import { describeTaskStep } from './tasktrace.js';
import { bypassesUffd, gupIdealVerdict, uffdBypass } from './uffd.js';

/** The GUP request of a `pin`, `gup` or `vmsplice` step. */
export function gupRequest(step: Extract<Step, { op: 'pin' | 'gup' | 'vmsplice' }>): GupRequest {
  switch (step.op) {
    case 'pin': return { pin: true, write: step.write, longterm: step.longterm, fast: step.fast, kind: 'pin' };
    case 'gup': return { pin: false, write: step.write, longterm: false, fast: step.fast, kind: 'gup' };
    // vmsplice(2) takes FOLL_GET references through gup-fast (iov_iter_get_pages), read-only.
    case 'vmsplice': return { pin: false, write: false, longterm: false, fast: true, kind: 'pipe' };
  }
}

/** `P cmd &`: start the kernel path `start` makes, to be advanced by `P step`. */
export function startAsync(s: RunState, step: Step, start: ((s: RunState, p: Proc, step: Step) => Task) | undefined): void {
  const p = s.proc((step as { proc: string }).proc);
  if (!p) return;
  if (p.task) {
    s.record.summary = `${p.name} already has a kernel path in progress: step skipped`;
    return;
  }
  if (!start) throw new NotApplicable(`${step.op} cannot run in steps`);
  s.tasksStarted = true;
  p.task = start(s, p, step);
  p.taskStep = step;
  p.taskApplied = 0;
  if (recordsText(s)) s.record.summary = `${p.name} starts \`${step.text.replace(/\s*&$/, '')}\` as a kernel path of separate steps (${p.name} step / finish)`;
}

/** `P fork C &`: dup_mmap's copy loop, a step at a time. */
export function startForkTask(_s: RunState, p: Proc, step: Extract<Step, { op: 'fork' }>): Task {
  if (step.cowpt || p.mm.cowPgtable) throw new NotApplicable('a fork with COW page tables runs in one step (no `&`)');
  return startFork(p.mm);
}

/** `P write SEL = V &`: the stores and their faults, a step at a time. */
export function startWriteTask(s: RunState, p: Proc, step: Extract<Step, { op: 'write' }>): Task {
  const [lo, hi] = s.range(p, step.sel);
  return startWrite(s.k, p.mm, lo, hi, s.values.id(step.value));
}

/** `P pin|gup|vmsplice SEL as H &`: GUP a step at a time; the ideal handle's pages are bound as they are grabbed (see stepTaskOnce). */
export function startGupTask(s: RunState, p: Proc, step: Extract<Step, { op: 'pin' | 'gup' | 'vmsplice' }>): Task {
  const [lo, hi] = s.range(p, step.sel);
  const req = gupRequest(step);
  const task = startGup(s.k, p.mm, lo, hi, req);
  s.ideal.beginHandle(step.handle, p.group, lo, hi - lo, req.pin && req.longterm);
  p.taskBound = new Array<boolean>(hi - lo).fill(false);
  return task;
}

/** `P step` (one atomic step of P's path) or `P finish` (to its end). */
export function advance(s: RunState, procName: string, toEnd: boolean): void {
  const p = s.proc(procName);
  if (!p) return;
  if (!p.task) {
    s.record.summary = `${p.name} has no kernel path in progress: nothing to do`;
    return;
  }
  const what = p.taskStep!.text;
  const text = recordsText(s);
  if (toEnd) {
    finishTask(s, p);
    if (text) s.record.summary = `${p.name} runs \`${what}\` to its end`;
  } else {
    const st = stepTaskOnce(s, p);
    if (text) s.record.summary = st === 'blocked'
      ? `${p.name}'s \`${what}\` is blocked (it waits for mmap_lock): nothing happens`
      : st === 'done' ? `${p.name}'s \`${what}\` takes its last step` : `${p.name}'s \`${what}\` takes one step`;
  }
}

/** A write by `group` at vpn while that process is being forked: the child may or may not see it. */
export function raceWithFork(s: RunState, group: string, vpn: number, value: number): void {
  // No fork in progress (the most often): no walk over every thread per write.
  if (s.forking.size === 0) return;
  for (const q of s.procs.values()) {
    if (q.group === group && q.task?.kind === 'fork' && s.forking.has(q.name)) {
      s.ideal.addMaybe((q.taskStep as { child: string }).child, vpn, value);
    }
  }
}

/**
 * An operation that needs mmap_lock (for write: mmap, munmap, mremap, mprotect, the madvise
 * advices that change VMA flags, MADV_COLLAPSE, fork, clear_refs, UFFDIO_REGISTER; for read: a
 * fault, slow GUP, MADV_DONTNEED, MADV_PAGEOUT, UFFDIO_WRITEPROTECT, ksmd, a thread's exit_mm)
 * while other threads' kernel paths hold it: the thread waits, so those paths run to their end
 * first (for read, only a path holding it for write: a fork).
 */
export function waitForMmapLock(s: RunState, p: Proc, write = true, byOther = false): void {
  const mm = p.mm;
  if (mm.mmapWriter < 0 && (!write || mm.mmapReaders === 0)) return;
  for (const q of s.procs.values()) {
    // byOther: the caller is not p's thread (reclaim, ksmd, a driver), so p's own path blocks it too.
    if ((q === p && !byOther) || !q.task || q.mm !== mm) continue;
    const holdsWrite = q.tid === mm.mmapWriter;
    const holdsRead = q.task.kind === 'write' && q.task.locked;
    if (holdsWrite || (write && holdsRead)) {
      if (s.k.tracing) s.k.emit('note', mm.id, -1, -1, -1, `${p.name} waits for mmap_lock: ${q.name}'s \`${q.taskStep!.text}\` runs to its end first`);
      finishTask(s, q);
    }
  }
}

/** One atomic step of p's path; on completion, its effects on names and the ideal memory. */
export function stepTaskOnce(s: RunState, p: Proc): TaskState {
  const t = p.task!;
  const k = s.k;
  const from = k.events.length;
  const prev = k.tracing ? cloneTask(t) : null;
  const outer = s.acting;
  s.acting = p.name;
  const st = stepTask(k, t, p.tid);
  if (t.kind === 'fork' && t.child >= 0 && !s.procs.has((p.taskStep as { child: string }).child) && !s.forking.has(p.name)) {
    // The ideal child is made when the copy begins: what the parent holds then.
    s.forking = new Set(s.forking).add(p.name); // never changed in place: state copies share it
    s.mmNames[t.child] = (p.taskStep as { child: string }).child;
    s.ideal.fork(p.group, (p.taskStep as { child: string }).child);
  }
  if (t.kind === 'gup' && p.taskBound) {
    t.handle.frames.forEach((pfn, i) => {
      if (pfn >= 0 && !p.taskBound![i]) {
        s.ideal.bindHandlePage((p.taskStep as { handle: string }).handle, i);
        p.taskBound![i] = true;
      } else if (pfn < 0) p.taskBound![i] = false;
    });
  }
  if (t.kind === 'write') {
    for (; p.taskApplied < t.stored.length; p.taskApplied++) {
      if (bypassesUffd(s, p.group, t.stored[p.taskApplied]!)) uffdBypass(s, `${p.name} page ${t.stored[p.taskApplied]!.toString(16)}`, `${p.name}'s write`, [p.name]);
      s.ideal.write(p.group, t.stored[p.taskApplied]!, t.value);
      raceWithFork(s, p.group, t.stored[p.taskApplied]!, t.value);
    }
  }
  if (prev !== null) {
    // What this step read and decided (after what the model said of it); every event of the step is this thread's.
    const lines = describeTaskStep(k, prev, t, st, {
      page: (mm, vpn) => s.pageOfMm(mm, vpn), proc: (mm) => s.mmNames[mm] ?? `mm ${mm}`, value: (v) => s.values.name(v),
    });
    for (const l of lines) k.emit('note', l.mm, l.vpn, l.pfn, -1, l.why);
    for (let i = from; i < k.events.length; i++) s.actors.set(k.events[i]!, p.name);
  }
  s.acting = outer;
  if (st === 'done') completeTask(s, p);
  return st;
}

function completeTask(s: RunState, p: Proc): void {
  const t = p.task!;
  const step = p.taskStep!;
  p.task = null;
  p.taskStep = null;
  if (s.forking.has(p.name)) s.forking = new Set([...s.forking].filter((n) => n !== p.name));
  switch (t.kind) {
    case 'fork': {
      const child = (step as { child: string }).child;
      if (recordsText(s)) s.observe('fork', `${p.name} forks ${child}`, t.child >= 0 ? 'ok' : 'ENOMEM', null);
      if (t.err === NA) throw new NotApplicable('fork of non-present PTEs (swap, device-exclusive) is not modelled yet');
      if (t.child < 0) {
        s.ideal.exit(child);
        return;
      }
      s.addProc(child, child, s.k.mms[t.child]!, new Map(p.regions));
      return;
    }
    case 'gup': {
      const name = (step as { handle: string }).handle;
      const n = t.handle.frames.length;
      const idealOk = gupIdealVerdict(s, p.group, t.lo, n, t.req.write, t.err !== OK) === 'ok';
      if (recordsText(s)) s.observe('gup', `${p.name} ${step.op} as ${name}`, t.err === OK ? 'ok' : 'EFAULT', idealOk ? 'ok' : 'EFAULT');
      const bound = p.taskBound;
      p.taskBound = null;
      if (t.err !== OK) {
        s.ideal.releaseHandle(name);
        if (idealOk) s.violation('fault', `${p.name}: GUP for ${name} failed though the mapping allows it`, [p.name]);
        return;
      }
      s.handles.set(name, { h: t.handle, proc: p.name });
      if (t.req.write) for (let v = t.lo; v < t.lo + n; v++) if (bypassesUffd(s, p.group, v)) uffdBypass(s, `${p.name} page ${v.toString(16)}`, `a FOLL_WRITE GUP (${name})`, [p.name]);
      // Pages grabbed in the last step (or never seen grabbed) are bound now.
      for (let i = 0; i < n; i++) if (!bound?.[i]) s.ideal.bindHandlePage(name, i);
      return;
    }
    case 'write': {
      const want = t.err === OK ? 'ok' : 'fault';
      if (recordsText(s)) s.observe('write', `${p.name} ${step.text}`, want, null);
      if (t.err !== OK && s.ideal.access(p.group, t.vpn, true) === 'ok') {
        s.violation('fault', `${p.name} write at ${t.vpn.toString(16)} failed though the mapping allows it`, [p.name]);
      }
      return;
    }
  }
}

/** Run p's path to its end; a step blocked on mmap_lock lets the holders' paths run first. */
export function finishTask(s: RunState, p: Proc): void {
  for (let guard = 0; p.task && guard < 100000; guard++) {
    if (stepTaskOnce(s, p) !== 'blocked') continue;
    let moved = false;
    for (const q of s.procs.values()) {
      if (q !== p && q.alive && q.task && q.mm === p.mm) {
        if (s.k.tracing) {
          s.k.emit('note', p.mm.id, -1, -1, -1, `${p.name} waits for mmap_lock: ${q.name}'s \`${q.taskStep!.text}\` runs to its end first`);
          s.actors.set(s.k.events[s.k.events.length - 1]!, p.name);
        }
        finishTask(s, q);
        moved = true;
      }
    }
    if (!moved) {
      s.violation('kernel-bug', `${p.name}'s kernel path is blocked on mmap_lock and nothing can release it (deadlock)`, [p.name]);
      p.task = null;
      return;
    }
  }
}

/**
 * References held by kernel paths in progress (for the accounting check), as (frame, references,
 * pins) triples, flat, into `out` (emptied first; the check reads it at once): nothing is made per
 * check. `pins` is 1 where the references are a FOLL_PIN's (a large folio counts it in its pincount).
 */
export function heldByTasks(s: RunState, out: number[] = []): number[] {
  if (out.length !== 0) out.length = 0;
  // Without a kernel path started in steps no thread has one: no walk over every thread per step.
  if (!s.tasksStarted) return out;
  for (const p of s.procs.values()) {
    const t = p.task;
    if (!t) continue;
    if (t.kind === 'gup') {
      const h = t.handle;
      const pin = h.kind === 'pin' ? 1 : 0;
      for (let i = 0; i < h.frames.length; i++) out.push(h.frames[i]!, h.refs[i]!, h.refs[i] !== 0 ? pin : 0);
    } else if (t.newPfn > 0) {
      out.push(t.newPfn, 1, 0);
      // A write fault between wp_page_copy()'s two parts also holds the page it copies.
      const held = t.kind === 'write' ? wpCopyHeldPage(t) : -1;
      if (held >= 0) out.push(held, 1, 0);
    }
  }
  return out;
}
