// Synchronous and interleaved kernel paths are one behaviour: for random scenarios on every
// built-in profile (COW page tables included), each fork, write, pin, gup and vmsplice run as
// one step must leave the same state, the same observations and the same violations as the
// same operation started with `&` and run to its end at once (`PROC finish`, no other step in
// between). Any drift between src/core/tasks.ts and the synchronous paths (fault.ts, fork.ts,
// gup.ts, cowpt.ts) shows here: the interleaved write once stored through a writable PTE
// behind a write-protected PMD (a shared COW PTE table) that the synchronous store faults on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PTE_DEVICE_EXCLUSIVE, PTE_PRESENT, PTE_SWAP } from '../../src/core/constants.js';
import { pmdWriteProtected, pteSlot } from '../../src/core/walk.js';
import type { Observation } from '../../src/engine/result.js';
import { Runner } from '../../src/engine/run.js';
import { BUILTIN_PROFILES } from '../../src/profiles/builtin.js';
import { assertProperty } from '../engine/seed.js';
import { parse, profileOf, scenarioText } from '../explore/helpers.js';

type Op =
  | { t: 'write' | 'read' | 'pin' | 'gup' | 'vmsplice' | 'mprotect' | 'dontneed' | 'swapout'; p: number; r: number; i: number; a: boolean; b: boolean }
  | { t: 'fork' | 'fork-cowpt' | 'exit'; p: number }
  | { t: 'release' | 'dwrite' | 'dread' | 'hread'; h: number };

const ix = fc.nat({ max: 63 });
const pageOp = (t: 'write' | 'read' | 'pin' | 'gup' | 'vmsplice' | 'mprotect' | 'dontneed' | 'swapout') =>
  fc.record({ t: fc.constant(t), p: ix, r: ix, i: ix, a: fc.boolean(), b: fc.boolean() });

const OP: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: pageOp('write') },
  { weight: 3, arbitrary: pageOp('read') },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('fork' as const), p: ix }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('fork-cowpt' as const), p: ix }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('exit' as const), p: ix }) },
  { weight: 2, arbitrary: pageOp('pin') },
  { weight: 1, arbitrary: pageOp('gup') },
  { weight: 1, arbitrary: pageOp('vmsplice') },
  { weight: 1, arbitrary: pageOp('mprotect') },
  { weight: 1, arbitrary: pageOp('dontneed') },
  { weight: 1, arbitrary: pageOp('swapout') },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('release' as const), h: ix }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('dwrite' as const), h: ix }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('dread' as const), h: ix }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('hread' as const), h: ix }) },
);

/** P's regions: a small private one, one 2 MiB-aligned mapping that covers its PTE table, a shared page. */
const SETUP = ['P mmap big 512 rw private nothp', 'P mmap buf 3 rw private', 'P mmap sh 1 rw shared'];
const REGIONS: [string, number[]][] = [['buf', [0, 1, 2]], ['big', [0, 1, 511]], ['sh', [0]]];

interface Variants {
  sync: string[];
  async: string[];
  /** For each line of `async`, the index of the line of `sync` it stands for. */
  origin: number[];
  /** Lines of `async` that started a kernel path with `&`, by operation. */
  started: Record<string, number>;
}

/** The scenario twice: every fork/write/pin/gup/vmsplice synchronous, and as `&` + finish. */
function variants(ops: Op[], cowpt: boolean): Variants {
  const v: Variants = { sync: [], async: [], origin: [], started: {} };
  const line = (sync: string, async?: { proc: string; op: string }) => {
    const at = v.sync.length;
    v.sync.push(sync);
    if (async) {
      v.async.push(`${sync} &`, `${async.proc} finish`);
      v.origin.push(at, at);
      v.started[async.op] = (v.started[async.op] ?? 0) + 1;
    } else {
      v.async.push(sync);
      v.origin.push(at);
    }
  };
  for (const s of SETUP) line(s);
  line('P write big = 1');
  line('P write buf = 2');
  const live = ['P'];
  /** Processes whose mm uses COW page tables (MMF_COW_PGTABLE): their forks cannot run with `&`. */
  const cowMm = new Set<string>();
  const handles: { name: string; holder: string; kind: 'pin' | 'gup' | 'pipe' }[] = [];
  let children = 0;
  let value = 10;
  let hn = 0;
  for (const o of ops) {
    switch (o.t) {
      case 'fork':
      case 'fork-cowpt': {
        const p = live[o.p % live.length]!;
        if (live.length >= 4) break;
        const child = `C${++children}`;
        const withCowpt = o.t === 'fork-cowpt' && cowpt;
        if (withCowpt || cowMm.has(p)) {
          line(`${p} fork ${child}${withCowpt ? ' cowpt' : ''}`);
          cowMm.add(p).add(child);
        } else {
          line(`${p} fork ${child}`, { proc: p, op: 'fork' });
        }
        live.push(child);
        break;
      }
      case 'exit': {
        if (live.length < 2) break;
        const p = live.splice(1 + (o.p % (live.length - 1)), 1)[0]!;
        line(`${p} exit`);
        break;
      }
      case 'release':
      case 'dwrite':
      case 'dread':
      case 'hread': {
        if (handles.length === 0) break;
        const h = handles[o.h % handles.length]!;
        if (o.t === 'release') {
          handles.splice(handles.indexOf(h), 1);
          if (live.includes(h.holder)) line(`${h.holder} ${h.kind === 'pin' ? 'unpin' : 'put'} ${h.name}`);
        } else if (o.t === 'dwrite') {
          // Device I/O goes through pins only (a gup reference or a pipe is refused).
          if (h.kind === 'pin') line(`device write ${h.name}[0] = ${value++}`);
        } else if (o.t === 'dread') {
          if (h.kind === 'pin') line(`device read ${h.name}[0]`);
        } else if (live.includes(h.holder)) {
          line(`${h.holder} read ${h.name}[0]`);
        }
        break;
      }
      default: {
        const p = live[o.p % live.length]!;
        const [region, pages] = REGIONS[o.r % REGIONS.length]!;
        const at = `${region}[${pages[o.i % pages.length]}]`;
        switch (o.t) {
          case 'write': line(`${p} write ${at} = ${value++}`, { proc: p, op: 'write' }); break;
          case 'read': line(`${p} read ${at}`); break;
          case 'pin':
          case 'gup':
          case 'vmsplice': {
            if (handles.length >= 3) break;
            const name = `h${++hn}`;
            const kind = o.t === 'vmsplice' ? 'pipe' : o.t;
            const mode = o.t === 'pin' ? ` ${o.a ? 'rw' : 'ro'} ${o.b ? 'longterm' : 'short'}${o.i % 2 ? ' fast' : ''}`
              : o.t === 'gup' ? ` ${o.a ? 'rw' : 'ro'}${o.b ? ' fast' : ''}` : '';
            line(`${p} ${o.t} ${at} as ${name}${mode}`, { proc: p, op: o.t });
            handles.push({ name, holder: p, kind });
            break;
          }
          case 'mprotect': if (region !== 'sh') line(`${p} mprotect ${at} ${o.a ? 'rw' : 'ro'}`); break;
          case 'dontneed': line(`${p} madvise ${at} dontneed`); break;
          case 'swapout': line(`swapout ${p} ${at}`); break;
        }
      }
    }
  }
  // Look at everything at the end: every page of every live process, every handle.
  for (const p of live) for (const [region, pages] of REGIONS) for (const i of pages) line(`${p} read ${region}[${i}]`);
  for (const h of handles) {
    if (h.kind === 'pin') line(`device read ${h.name}[0]`);
    else if (live.includes(h.holder)) line(`${h.holder} read ${h.name}[0]`);
  }
  return v;
}

/**
 * What a line observed: the kind and the value (a read's value, `ok`/`fault` of a write, `ok`/
 * `EFAULT` of a GUP...). The wording of `what` and whether the observation names its ideal
 * differ between the synchronous and the split step (reporting, not behaviour).
 */
const seen = (o: Observation): string => `${o.kind} ${o.actual}`;

interface Outcome {
  /**
   * Per line of the synchronous scenario: its observations and violations (kind and processes;
   * the async variant: the `&` line and its finish together). Messages are compared by the
   * state and the reads at the end, not word for word.
   */
  perLine: { obs: string[]; violations: string[] }[];
  state: unknown;
  end: string[];
  /** Writes started with `&` by a process whose PTE table was shared behind a write-protected PMD. */
  wpWrites: number;
}

/** The state a run leaves: every frame, every PTE of every live process, swap, handles, counters. */
function snapshot(r: Runner): unknown {
  const k = r.k;
  const f = k.frames;
  const frames: number[][] = [];
  for (let pfn = 1; pfn < f.top; pfn++) frames.push([pfn, f.refcount[pfn]!, f.mapcount[pfn]!, f.flags[pfn]!, f.value[pfn]!]);
  const procs: Record<string, unknown> = {};
  for (const [name, p] of r.procs) {
    const mm = p.mm;
    const ptes: number[][] = [];
    if (p.alive && mm.alive) {
      for (const [, reg] of [...p.regions].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
        for (let vpn = reg.start; vpn < reg.start + reg.n; vpn++) {
          const slot = pteSlot(k, mm, vpn);
          const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
          ptes.push([vpn, bits, bits & (PTE_PRESENT | PTE_SWAP | PTE_DEVICE_EXCLUSIVE) ? k.tables.entry[slot]! : 0, pmdWriteProtected(k, mm, vpn) ? 1 : 0]);
        }
      }
    }
    procs[name] = {
      alive: p.alive, ptes, rssAnon: mm.rssAnon, rssShmem: mm.rssShmem, nrTables: mm.nrTables, minflt: mm.minflt,
      hasPinned: mm.hasPinned, cowPgtable: mm.cowPgtable, task: p.task !== null,
    };
  }
  const sw = k.swap;
  return {
    frames, used: f.used, tables: k.tables.used, procs,
    swap: Array.from({ length: sw.top }, (_, s) => [sw.used[s], sw.count[s], sw.cache[s], sw.data[s]]),
    handles: [...r.handles].map(([n, lh]) => [n, [...lh.h.frames], [...lh.h.refs]]),
    stats: { ...k.stats },
  };
}

function runLines(lines: string[], origin: number[], nSync: number, profile: string): Outcome {
  const sc = parse(scenarioText(lines), 't.scn.yaml');
  const r = new Runner(sc, profileOf(profile), { trace: false, maxEventsPerStep: 0 });
  const perLine = Array.from({ length: nSync }, () => ({ obs: [] as string[], violations: [] as string[] }));
  let wpWrites = 0;
  sc.steps.forEach((s, i) => {
    if (/ write .* &$/.test(s.text)) {
      const p = r.procs.get(s.text.split(' ')[0]!)!;
      const m = / write (\w+)\[(\d+)\]/.exec(s.text)!;
      const reg = p.regions.get(m[1]!)!;
      if (pmdWriteProtected(r.k, p.mm, reg.start + Number(m[2]))) wpWrites++;
    }
    const { record, na } = r.step(s, i);
    assert.equal(na, null, `${s.text}: n/a on ${profile}: ${na}`);
    perLine[origin[i]!]!.obs.push(...record.observations.map(seen));
  });
  // The accounting check runs after every step and reports a standing drift at each: a line
  // run as two steps may report it twice, and before what the line itself finds. Each distinct
  // violation counts once per line, in no particular order.
  for (const v of r.violations) {
    const line = perLine[origin[v.step]!]!;
    const key = `${v.kind} (${v.procs.join(', ')})`;
    if (!line.violations.includes(key)) line.violations.push(key);
  }
  for (const line of perLine) line.violations.sort();
  const state = snapshot(r);
  const end = r.end();
  return { perLine, state, end: end.violations.map((v) => `${v.kind}: ${v.message}`), wpWrites };
}

const PROFILES = BUILTIN_PROFILES.map((p) => p.name);

test('property: every fork, write, pin, gup and vmsplice run with `&` and finished at once equals the synchronous step, on every profile', () => {
  const arb = fc.record({ profile: fc.constantFrom(...PROFILES), ops: fc.array(OP, { minLength: 1, maxLength: 24 }) });
  const seen: Record<string, Record<string, number>> = {};
  const wp: Record<string, number> = {};
  assertProperty('sync = async + finish', arb, ({ profile, ops }) => {
    const cowpt = profileOf(profile).cowPageTables !== 'none';
    const v = variants(ops, cowpt);
    const sync = runLines(v.sync, v.sync.map((_, i) => i), v.sync.length, profile);
    const async = runLines(v.async, v.origin, v.sync.length, profile);
    const why = `on ${profile}:\n  ${v.async.join('\n  ')}`;
    for (let i = 0; i < v.sync.length; i++) {
      assert.deepEqual(async.perLine[i], sync.perLine[i], `\`${v.sync[i]}\` observes differently ${why}`);
    }
    assert.deepEqual(async.state, sync.state, `the state differs ${why}`);
    assert.deepEqual(async.end, sync.end, `the end of the run differs ${why}`);
    const s = (seen[profile] ??= {});
    for (const [op, n] of Object.entries(v.started)) s[op] = (s[op] ?? 0) + n;
    wp[profile] = (wp[profile] ?? 0) + async.wpWrites;
  }, 400);
  // Not vacuous: every profile ran each kernel path split, and on the profiles with COW page
  // tables some writes started behind a write-protected PMD (a shared PTE table).
  for (const profile of PROFILES) {
    for (const op of ['fork', 'write', 'pin', 'gup', 'vmsplice']) assert.ok((seen[profile]?.[op] ?? 0) > 0, `${profile}: no ${op} & (${JSON.stringify(seen[profile])})`);
    if (profileOf(profile).cowPageTables !== 'none') assert.ok((wp[profile] ?? 0) > 0, `${profile}: no write & through a shared PTE table`);
  }
});

test('a write started with `&` through a shared COW PTE table faults as the synchronous store does: the other process keeps its data', () => {
  // `P fork Q cowpt; Q write buf[0] = 2 &; Q finish; P read buf[0]` once read 2 on both designs.
  for (const profile of ['cowpt-rfc', 'odf']) {
    const steps = ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'P fork Q cowpt'];
    const sync = runLines([...steps, 'Q write buf[0] = 2', 'P read buf[0]', 'Q read buf[0]'], [0, 1, 2, 3, 4, 5], 6, profile);
    const async = runLines([...steps, 'Q write buf[0] = 2 &', 'Q finish', 'P read buf[0]', 'Q read buf[0]'], [0, 1, 2, 3, 3, 4, 5], 6, profile);
    assert.equal(async.wpWrites, 1, 'the write started behind a write-protected PMD');
    const read = (o: Outcome, i: number) => o.perLine[i]!.obs.find((x) => x.startsWith('read '))!.slice('read '.length);
    assert.equal(read(sync, 4), '1', `${profile}: P keeps 1 (sync)`);
    assert.equal(read(async, 4), '1', `${profile}: P keeps 1 (async)`);
    assert.equal(read(async, 5), '2', `${profile}: Q reads its own write`);
    assert.deepEqual(async.perLine[4]!.violations, [], profile);
    assert.deepEqual(async.state, sync.state, profile);
  }
});
