// One model measurement in a fresh process (so peak RSS is this size's alone):
//   node dist/bench/model.js PAGES [cowpt]
// Prints one JSON line: populate, fork, exit times (ms), COW and reuse fault throughput, the
// cowpt fork and its first write, and the process's peak RSS.

import { readFileSync } from 'node:fs';
import { cpuAccess } from '../src/core/access.js';
import { dupMmap } from '../src/core/fork.js';
import { Kernel } from '../src/core/kernel.js';
import { doMmap } from '../src/core/mmap.js';
import { exitMmap } from '../src/core/zap.js';
import { builtinProfile } from '../src/profiles/builtin.js';

function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

function ms(t0: number): number {
  return performance.now() - t0;
}

const pages = Number(process.argv[2]);
const cowpt = process.argv[3] === 'cowpt';
const out: Record<string, number> = { pages };

if (!cowpt) {
  const k = new Kernel(builtinProfile('v6')!, { frames: 2 ** 30, pinBias: 1024 });
  k.tracing = false;
  const mm = k.newMm();
  let t = performance.now();
  const m = doMmap(k, mm, pages, 'rw', false, true);
  out.populateMs = ms(t);
  const rssAfterPopulate = process.memoryUsage().rss;
  // The first forks warm the JIT up (the first is reported apart); then the median of five.
  const reps = pages > 4_000_000 ? 3 : 5;
  const forks: number[] = [];
  const exits: number[] = [];
  for (let i = 0; i < reps + 3; i++) {
    t = performance.now();
    const w = dupMmap(k, mm);
    const tf = ms(t);
    t = performance.now();
    exitMmap(k, w.child!);
    const te = ms(t);
    if (i === 0) out.firstForkMs = tf;
    if (i >= 3) {
      forks.push(tf);
      exits.push(te);
    }
  }
  forks.sort((a, b) => a - b);
  exits.sort((a, b) => a - b);
  out.forkMs = forks[forks.length >> 1]!;
  out.forkMinMs = forks[0]!;
  out.exitMs = exits[exits.length >> 1]!;
  t = performance.now();
  const f = dupMmap(k, mm);
  out.lastForkMs = ms(t);
  out.peakRssAfterForkBytes = peakRss();
  exitMmap(k, f.child!);
  // COW and reuse faults over (at most) the first 256 Ki pages.
  const n = Math.min(pages, 262144);
  const c2 = dupMmap(k, mm).child!;
  t = performance.now();
  for (let i = 0; i < n; i++) cpuAccess(k, c2, m.start + i, true, 7);
  out.cowFaultsPerSec = n / (ms(t) / 1000);
  exitMmap(k, c2);
  t = performance.now();
  for (let i = 0; i < n; i++) cpuAccess(k, mm, m.start + i, true, 8);
  out.reuseFaultsPerSec = n / (ms(t) / 1000);
  out.rssAfterPopulateBytes = rssAfterPopulate;
  out.peakRssBytes = peakRss();
} else {
  const k = new Kernel(builtinProfile('cowpt-rfc')!, { frames: 2 ** 30, pinBias: 1024 });
  k.tracing = false;
  const mm = k.newMm();
  const m = doMmap(k, mm, pages, 'rw', false, true);
  // Warm the JIT up on another process of the same size (500 forks: with 50, some runs measured
  // code not yet optimised, 10x slower), then the median of 20 forks.
  const warm = k.newMm();
  doMmap(k, warm, pages, 'rw', false, true);
  for (let i = 0; i < 500; i++) exitMmap(k, dupMmap(k, warm, true).child!);
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const c = dupMmap(k, mm, true);
    times.push(ms(t0));
    exitMmap(k, c.child!);
  }
  times.sort((a, b) => a - b);
  out.cowptForkMs = times[10]!;
  let t = performance.now();
  const f = dupMmap(k, mm, true);
  out.lastCowptForkMs = ms(t);
  // The first write into each shared 2 MiB copies one PTE table: the median over 20 tables.
  const writes: number[] = [];
  for (let i = 0; i < Math.min(20, pages / 512); i++) {
    const t0 = performance.now();
    cpuAccess(k, f.child!, m.start + i * 512, true, 9);
    writes.push(ms(t0));
  }
  writes.sort((a, b) => a - b);
  out.firstWriteAfterCowptMs = writes[writes.length >> 1]!;
  void t;
  out.peakRssBytes = peakRss();
}
process.stdout.write(JSON.stringify(out) + '\n');
