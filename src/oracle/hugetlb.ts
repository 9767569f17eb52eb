// The hugetlb pool on the live kernel for scenarios that map `hugetlb`: how many free huge pages
// the replay needs (config.hugepages, or enough for every process to hold its own copy of every
// huge page), asked of the helper's agent, which sets /proc/sys/vm/nr_hugepages so that exactly
// that many are free and unreserved, and puts the machine's value back at the end of the scenario,
// on quit, SIGINT, SIGTERM and SIGHUP, and (a killed agent) at the next session's first `hugetlb`
// or `cowlab-oracle reclaim` (oracle/hugetlb.c).

import type { Scenario } from '../scenario/index.js';
import type { Agent } from './agent.js';
import type { Facilities } from './facilities.js';

/** Free huge pages the scenario's replay needs, or null when it maps no hugetlb pages. */
export function hugetlbPoolFor(sc: Scenario): number | null {
  let pages = 0;
  let procs = 1;
  for (const s of sc.steps) {
    if (s.op === 'mmap' && s.hugetlb) pages += s.pages / 512;
    else if (s.op === 'fork') procs++;
  }
  if (pages === 0) return null;
  return sc.config.hugepages ?? pages * procs;
}

/** Sets the live pool to `n` free unreserved huge pages; null when done, else why the scenario is skipped. */
export function reserveHugetlb(agent: Agent, f: Facilities, n: number): string | null {
  if (!f.root) return `could not reserve ${n} huge page(s): setting /proc/sys/vm/nr_hugepages needs root`;
  const r = agent.call(`hugetlb ${n}`);
  if (r[0] !== 'ok') return `could not reserve ${n} huge page(s): ${r.slice(2).join(' ')}`;
  const avail = Number(r[1]);
  if (avail !== n) {
    agent.call('reset'); // puts nr_hugepages back at once
    return `could not reserve ${n} huge page(s): after writing nr_hugepages=${r[2]}, ${avail} are free and unreserved (the kernel found ${avail < n ? 'no more free 2 MiB blocks' : 'huge pages it could not give back'})`;
  }
  return null;
}
