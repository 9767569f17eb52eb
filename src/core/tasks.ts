// Kernel paths split into atomic steps (scenario language v1.1, `&`): fork's copy loop,
// gup-fast, and the write fault's copy. Between two steps of one path, other threads run: the
// windows the kernel leaves open (lockless gup-fast against fork's write-protect, seed 000's
// lock drop around the early-COW copy, a fault's copy made outside the page-table lock).
//
// Each path is written once, beside its synchronous form: fork.ts (stepFork: the per-PTE
// functions dupMmap's loop calls), gup.ts (stepGup: the steps getUserPages runs to the end),
// access.ts (stepWrite: the MMU test and the fault handler of cpuAccess, stopped after
// wp_page_copy()'s copy). This module only dispatches and copies them.
//
// A path holds the locks the kernel would: fork holds mmap_lock for write from its first step
// to its last; a fault or slow GUP holds it for read. A step that needs a lock another thread
// holds is blocked (the step does nothing).

import { type FaultTask, newFaultTask, startWrite, stepWrite } from './access.js';
import { type ForkTask, newForkTask, startFork, stepFork } from './fork.js';
import { type GupTask, newGupTask, startGup, stepGup } from './gup.js';
import { copyHandle, type Kernel, type TaskState } from './kernel.js';
import { shapeCopier } from './copy.js';

export type { FaultTask, ForkTask, GupTask, TaskState };
export { startFork, startGup, startWrite };

export type Task = ForkTask | GupTask | FaultTask;

/** Run one atomic step of a task on behalf of thread `tid`. */
export function stepTask(k: Kernel, t: Task, tid: number): TaskState {
  switch (t.kind) {
    case 'fork':
      return stepFork(k, t, tid);
    case 'gup':
      return stepGup(k, t);
    case 'write':
      return stepWrite(k, t);
  }
}

/** Each kind of task's fields, each copied by reference (cloneTask then copies what a copy does not share). */
const copyForkFields = shapeCopier<ForkTask>();
const copyGupFields = shapeCopier<GupTask>();
const copyFaultFields = shapeCopier<FaultTask>();

/**
 * A deep copy of a task (for the explorer), made by the factory that made the task (a spread
 * would make an object of another hidden class). A GUP's request is never changed: shared.
 */
export function cloneTask(t: Task): Task {
  switch (t.kind) {
    case 'fork': {
      const c = copyForkFields(newForkTask(t.parent), t);
      // slice() keeps the list's kind (newForkTask's objectArray(): map() makes an empty one of small integers, a holey one in optimised code).
      const pairs = (c.pairs = t.pairs.slice());
      for (let i = 0; i < pairs.length; i++) pairs[i] = [pairs[i]![0], pairs[i]![1]];
      return c;
    }
    case 'gup': {
      const c = copyGupFields(newGupTask(t.mm, t.lo, t.req, t.handle, t.fallback), t);
      c.handle = copyHandle(t.handle);
      c.fallback = t.fallback.slice();
      return c;
    }
    case 'write': {
      const c = copyFaultFields(newFaultTask(t.mm, t.lo, t.hi, t.value), t);
      c.stored = t.stored.slice();
      return c;
    }
  }
}
