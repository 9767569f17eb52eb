// How much host memory a scenario needs, estimated from its steps before anything is allocated,
// so that `run`, `compare` and `explore --from` can refuse a scenario that would fill the machine
// (a 4 TiB mapping is one line) instead of dying in the middle of it.
//
// The estimate counts page mappings: every page of every mapping in every address space, with
// a fork copying the parent's count to the child; munmap (unless the kernel refuses it: the
// parser marks a refused one, MunmapStep.refused) and the exit of an address space's last task
// give theirs back. The peak of that count times BYTES_PER_PAGE_MAPPING is the estimate.

import type { Pos, Scenario } from '../scenario/ast.js';

/**
 * Host bytes per page mapped in one process. `npm run bench` measures 46 bytes per page of a
 * populated 64 GiB process forked once (frames, the parent's and the child's page tables), and a
 * `run` of such a scenario, which adds the checker's own copy of every page, about 70 (35 a
 * mapping); an untouched mapping costs about 11. 48 bounds all of these from above.
 */
export const BYTES_PER_PAGE_MAPPING = 48;

export interface SizeEstimate {
  /** The most pages mapped at once, summed over the processes. */
  peakPages: number;
  /** peakPages * BYTES_PER_PAGE_MAPPING. */
  bytes: number;
  /** The step where the peak was first reached (null: nothing mapped). */
  peakAt: { index: number; pos: Pos; text: string } | null;
}

/** The first step at which the estimate passes `limitPages`, or the peak if it never does. */
export function estimateScenario(sc: Scenario, limitPages = Infinity): SizeEstimate {
  // Address spaces: pages mapped, and the tasks (process and thread names) still using them.
  const spaces: { pages: number; tasks: Set<string> }[] = [];
  const spaceOf = new Map<string, number>();
  const space = (name: string): number => {
    let s = spaceOf.get(name);
    if (s === undefined) {
      s = spaces.push({ pages: 0, tasks: new Set([name]) }) - 1;
      spaceOf.set(name, s);
    }
    return s;
  };
  let live = 0;
  let peak = 0;
  let peakAt: SizeEstimate['peakAt'] = null;
  for (let i = 0; i < sc.steps.length; i++) {
    const st = sc.steps[i]!;
    switch (st.op) {
      case 'mmap': {
        spaces[space(st.proc)]!.pages += st.pages;
        live += st.pages;
        break;
      }
      case 'munmap': {
        if (st.refused) break; // EINVAL (a hugetlb split inside a huge page): nothing unmapped
        const s = spaces[space(st.proc)]!;
        const n = Math.min(s.pages, st.sel.hi - st.sel.lo + 1);
        s.pages -= n;
        live -= n;
        break;
      }
      case 'mremap':
        break; // the pages change place in the same address space: the count stays
      case 'fork': {
        const n = spaces[space(st.proc)]!.pages;
        const c = spaces.push({ pages: n, tasks: new Set([st.child]) }) - 1;
        spaceOf.set(st.child, c);
        live += n;
        break;
      }
      case 'thread': {
        const s = space(st.proc);
        spaces[s]!.tasks.add(st.thread);
        spaceOf.set(st.thread, s);
        break;
      }
      case 'exit': {
        const s = spaces[space(st.proc)]!;
        s.tasks.delete(st.proc);
        if (s.tasks.size === 0) {
          live -= s.pages;
          s.pages = 0;
        }
        break;
      }
      default:
        break;
    }
    if (live > peak) {
      peak = live;
      peakAt = { index: i, pos: st.pos, text: st.text };
      if (peak > limitPages) break;
    }
  }
  return { peakPages: peak, bytes: peak * BYTES_PER_PAGE_MAPPING, peakAt };
}
