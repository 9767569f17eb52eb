// The kernel paths split into atomic steps (src/core/tasks.ts, scenario language v1.1 `&`):
// a fork started with `&` and run to its end leaves the same state as a synchronous fork (frames,
// refcounts, mapcounts, flags, PTE bits, values, swap, counters) and the same futures, for random
// small states (fast-check); a write fault whose copy was made outside the page-table lock is
// retried when the PTE changed meanwhile (!pte_same); gup-fast falls back to the slow path when
// write_protect_seq is odd (a fork is copying) from 5.11 (v5.14 on), and not on v5.9
// (57efa1fe5957, GUP-fast).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PTE_DEVICE_EXCLUSIVE, PTE_PRESENT, PTE_SWAP } from '../../src/core/constants.js';
import { pteSlot } from '../../src/core/walk.js';
import { Runner } from '../../src/engine/run.js';
import type { GupTask } from '../../src/core/tasks.js';
import { assertProperty } from '../engine/seed.js';
import { kindsOf, parse, profileOf, runSteps, scenarioText } from '../explore/helpers.js';

/** A Runner that ran `steps` (violations allowed; n/a is not). */
function runTo(steps: readonly string[], profile: string): Runner {
  const sc = parse(scenarioText(steps), 't.scn.yaml');
  const r = new Runner(sc, profileOf(profile), { trace: true, maxEventsPerStep: 1000 });
  sc.steps.forEach((s, i) => {
    const { na } = r.step(s, i);
    assert.equal(na, null, `${s.text}: n/a on ${profile}`);
  });
  return r;
}

/** Runs further steps on r, parsed after `history` (the text of every step r ran). */
function continueWith(r: Runner, history: string[], steps: readonly string[]): string[] {
  const all = [...history, ...steps];
  const sc = parse(scenarioText(all), 't.scn.yaml');
  for (let i = history.length; i < all.length; i++) {
    const { na } = r.step(sc.steps[i]!, i);
    assert.equal(na, null, `${sc.steps[i]!.text}: n/a`);
  }
  return all;
}

// ---- an async fork run to its end equals a synchronous fork -----------------------------------------

type SetupOp =
  | { t: 'write' | 'read' | 'pin' | 'pin-ro' | 'vmsplice' | 'swapout' | 'devexcl' | 'dontneed' | 'munmap' | 'ro' | 'rw' | 'dontfork' | 'wipeonfork' | 'shwrite'; page: number }
  | { t: 'release' | 'child-write' | 'child-exit' | 'fork'; page: number };

const SETUP_OPS = ['write', 'write', 'write', 'read', 'pin', 'pin-ro', 'vmsplice', 'swapout', 'devexcl', 'dontneed', 'munmap', 'ro', 'rw',
  'dontfork', 'wipeonfork', 'shwrite', 'release', 'fork', 'child-write', 'child-exit'] as const;

const PAGES = 3;

/** The setup as scenario lines: P with `buf` (3 private pages) and `sh` (1 shared page). */
function setupSteps(ops: SetupOp[], devexcl: boolean): string[] {
  const out = ['P mmap buf 3 rw private', 'P mmap sh 1 rw shared'];
  let value = 100;
  const handles: string[] = [];
  let h = 0;
  const unmapped = new Set<number>();
  let child: string | null = null;
  let children = 0;
  let grants = 0;
  for (const o of ops) {
    const at = `buf[${o.page % PAGES}]`;
    const mapped = !unmapped.has(o.page % PAGES);
    switch (o.t) {
      case 'write': out.push(`P write ${at} = ${value++}`); break;
      case 'read': out.push(`P read ${at}`); break;
      case 'shwrite': out.push(`P write sh[0] = ${value++}`); break;
      case 'pin': if (mapped && handles.length < 3) { handles.push(`h${++h}`); out.push(`P pin ${at} as h${h} rw longterm`); } break;
      case 'pin-ro': if (mapped && handles.length < 3) { handles.push(`h${++h}`); out.push(`P pin ${at} as h${h} ro longterm`); } break;
      case 'vmsplice': if (mapped && handles.length < 3) { handles.push(`p${++h}`); out.push(`P vmsplice ${at} as p${h}`); } break;
      case 'release': {
        const name = handles.shift();
        if (name) out.push(name.startsWith('h') ? `P unpin ${name}` : `P put ${name}`);
        break;
      }
      case 'swapout': out.push(`swapout P ${at}`); break;
      case 'devexcl': if (devexcl && mapped && grants++ < 2) out.push(`device exclusive P ${at} as x${++h}`); break;
      case 'dontneed': out.push(`P madvise ${at} dontneed`); break;
      case 'munmap': if (mapped) { out.push(`P munmap ${at}`); unmapped.add(o.page % PAGES); } break;
      case 'ro': out.push(`P mprotect ${at} ro`); break;
      case 'rw': out.push(`P mprotect ${at} rw`); break;
      case 'dontfork': out.push(`P madvise ${at} ${o.page % 4 === 0 ? 'dofork' : 'dontfork'}`); break;
      case 'wipeonfork': out.push(`P madvise ${at} ${o.page % 4 === 0 ? 'keeponfork' : 'wipeonfork'}`); break;
      case 'fork': if (child === null && children < 2) { child = `C${++children}`; out.push(`P fork ${child}`); } break;
      case 'child-write': if (child !== null) out.push(`${child} write ${at} = ${value++}`); break;
      case 'child-exit': if (child !== null) { out.push(`${child} exit`); child = null; } break;
    }
  }
  return out;
}

/** The state a fork leaves, exactly: every frame, every PTE of every live process, swap, mm counters. */
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
        for (let v = reg.start; v < reg.start + reg.n; v++) {
          const slot = pteSlot(k, mm, v);
          // No table and an empty entry are the same here (the table count is compared by its own test).
          const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
          ptes.push([v, bits, bits & (PTE_PRESENT | PTE_SWAP | PTE_DEVICE_EXCLUSIVE) ? k.tables.entry[slot]! : 0]);
        }
      }
    }
    procs[name] = {
      alive: p.alive, ptes, rssAnon: mm.rssAnon, rssShmem: mm.rssShmem, hasPinned: mm.hasPinned,
      seqOdd: mm.writeProtectSeq & 1, writer: mm.mmapWriter, readers: mm.mmapReaders,
      vmas: mm.vmas.map((v) => [v.start, v.end, v.flags, v.anonVma]),
    };
  }
  const sw = k.swap;
  return {
    frames, used: f.used, procs,
    swap: Array.from({ length: sw.top }, (_, s) => [sw.used[s], sw.count[s], sw.cache[s], sw.data[s]]),
    handles: [...r.handles].map(([n, lh]) => [n, [...lh.h.frames], [...lh.h.refs], lh.h.revoked ? [...lh.h.revoked] : null]),
    stats: { cowCopies: k.stats.cowCopies, earlyCow: k.stats.earlyCow, reuses: k.stats.reuses },
    // Page-table pages are compared by the test below (an empty parent table is a known difference).
  };
}

/** Steps after the fork that observe everything: reads, writes by both, device writes, reads again. */
function probeSteps(r: Runner): string[] {
  const out: string[] = [];
  const procs = ['P', 'Z'].filter((n) => r.procs.get(n)?.alive);
  for (const p of procs) for (let i = 0; i < PAGES; i++) out.push(`${p} read buf[${i}]`);
  let v = 900;
  for (const p of procs) for (let i = 0; i < PAGES; i++) out.push(`${p} write buf[${i}] = ${v++}`);
  for (const [name, lh] of r.handles) {
    if (lh.h.kind === 'pin' && lh.h.write) out.push(`device write ${name}[0] = ${v++}`);
    if (lh.h.kind === 'exclusive') out.push(`device atomic ${name}[0] = ${v++}`);
    out.push(lh.h.kind === 'pipe' ? `P read ${name}[0]` : `device read ${name}[0]`);
  }
  for (const p of procs) for (let i = 0; i < PAGES; i++) out.push(`${p} read buf[${i}]`);
  out.push('P read sh[0]', 'Z read sh[0]');
  return out;
}

const FORK_PROFILES = ['v5.7', 'v5.8', 'v5.9', 'v5.14', 'v5.18', 'v5.19', 'v6'];

test('property: a fork started with `&` and run to its end (P finish) equals a synchronous fork, now and after', () => {
  const arb = fc.record({
    profile: fc.constantFrom(...FORK_PROFILES),
    ops: fc.array(fc.record({ t: fc.constantFrom(...SETUP_OPS), page: fc.nat({ max: 11 }) }), { maxLength: 10 }),
  });
  const seen = { earlyCow: 0, swap: 0, grant: 0, shared: 0 };
  assertProperty('async fork = sync fork', arb, ({ profile, ops }) => {
    const devexcl = profileOf(profile).deviceExclusive !== 'none';
    const setup = setupSteps(ops as SetupOp[], devexcl);
    const base = runTo(setup, profile);
    const sync = base.clone();
    const async = base.clone();
    const hSync = continueWith(sync, setup, ['P fork Z']);
    const hAsync = continueWith(async, setup, ['P fork Z &', 'P finish']);
    const why = `on ${profile} after:\n  ${setup.join('\n  ')}`;
    if (sync.k.stats.earlyCow > base.k.stats.earlyCow) seen.earlyCow++;
    if (setup.some((l) => l.startsWith('swapout')) && base.k.swap.inUse > 0) seen.swap++;
    if ([...base.handles.values()].some((lh) => lh.h.kind === 'exclusive' && lh.h.revoked![0] === 0)) seen.grant++;
    if (sync.k.stats.cowCopies === base.k.stats.cowCopies && sync.k.frames.used === base.k.frames.used && base.k.frames.used > 0) seen.shared++;
    assert.deepEqual(snapshot(async), snapshot(sync), `the state differs ${why}`);
    assert.deepEqual(async.violations.map((v) => v.kind), sync.violations.map((v) => v.kind), `violations differ ${why}`);
    // The same futures.
    const probe = probeSteps(sync);
    continueWith(sync, hSync, probe);
    continueWith(async, hAsync, probe);
    assert.deepEqual(async.violations.map((v) => `${v.kind}: ${v.message}`), sync.violations.map((v) => `${v.kind}: ${v.message}`), `after the probes ${why}`);
    assert.deepEqual(snapshot(async), snapshot(sync), `the state after the probes differs ${why}`);
  }, 300);
  // Not vacuous: early COW of pinned pages, swap entries, held device grants and plain sharing all occurred.
  for (const [what, n] of Object.entries(seen)) assert.ok(n > 0, `${what}: ${JSON.stringify(seen)}`);
});


test('async fork: the child\'s PTE table is allocated for every parent table the copy walks, as copy_pte_range() does', () => {
  // After MADV_DONTNEED the parent keeps an empty PTE table; copy_pmd_range() still calls
  // copy_pte_range(), which allocates the child's table (pte_alloc_map_lock) before the loop.
  const setup = ['P mmap buf 2 rw private', 'P write buf = 1', 'P madvise buf dontneed'];
  const a = runTo([...setup, 'P fork Z'], 'v6');
  const b = runTo([...setup, 'P fork Z &', 'P finish'], 'v6');
  assert.equal(b.k.tables.used, a.k.tables.used, 'PageTables after an async fork');
  assert.equal(b.procs.get('Z')!.mm.nrTables, a.procs.get('Z')!.mm.nrTables);
});

test('async fork: the same page tables as a synchronous fork when every parent table has entries', () => {
  const setup = ['P mmap buf 2 rw private', 'P write buf = 1', 'P mmap big 600 rw private', 'P write big[0] = 2', 'P write big[599] = 3'];
  const a = runTo([...setup, 'P fork Z'], 'v6');
  const b = runTo([...setup, 'P fork Z &', 'P finish'], 'v6');
  assert.equal(b.k.tables.used, a.k.tables.used);
  assert.equal(b.procs.get('Z')!.mm.nrTables, a.procs.get('Z')!.mm.nrTables);
});

// ---- a write fault retried after !pte_same -----------------------------------------------------------

test('a write whose copy was made outside the lock is retried when the PTE changed meanwhile (!pte_same)', () => {
  for (const profile of ['v5.9', 'v6']) {
    const steps = ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'P thread T', 'P fork Q', 'P write buf[0] = 2 &', 'P step'];
    const r = runTo(steps, profile);
    const t = r.procs.get('P')!.task;
    assert.ok(t && t.kind === 'write' && t.phase === 'install', 'the copy is made, not installed yet');
    const copy = t.newPfn;
    assert.ok(copy > 0);
    const used = r.k.frames.used;
    // Another thread of P writes the page meanwhile: its own fault copies, P's PTE changes.
    let h = continueWith(r, steps, ['T write buf[0] = 3']);
    assert.equal(r.k.stats.cowCopies, 1);
    const p = r.procs.get('P')!;
    const slot = pteSlot(r.k, p.mm, p.regions.get('buf')!.start);
    const tCopy = r.k.tables.entry[slot]!;
    assert.notEqual(tCopy, copy);
    // P's next step: the PTE is not what the fault saw: the copy is dropped, the fault retried.
    const sc = parse(scenarioText([...h, 'P step']), 't.scn.yaml');
    const { record } = r.step(sc.steps[sc.steps.length - 1]!, h.length);
    h = [...h, 'P step'];
    assert.ok(record.events.some((e) => /pte_same/.test(e.why)), record.events.map((e) => e.why).join('\n'));
    assert.equal(r.k.frames.used, used, 'P\'s copy freed');
    assert.equal(r.k.stats.cowCopies, 1, 'the dropped copy is not counted');
    assert.equal(r.procs.get('P')!.task?.kind, 'write', 'still pending: retried');
    continueWith(r, h, ['P finish', 'P read buf[0] expect 2', 'T read buf[0] expect 2', 'Q read buf[0] expect 1']);
    assert.equal(r.k.tables.entry[slot], tCopy, 'the retried fault found T\'s copy writable and stored into it');
    assert.deepEqual(r.violations.map((v) => v.message), [], profile);
    assert.equal(r.k.stats.cowCopies, 1);
  }
});

test('without interference the async write installs its copy (the same result as a synchronous write)', () => {
  for (const profile of ['v5.9', 'v6']) {
    const a = runSteps(['P mmap buf 1 rw private', 'P write buf[0] = 1', 'P fork Q', 'P write buf[0] = 2 &', 'P step', 'P step', 'P finish',
      'P read buf[0] expect 2', 'Q read buf[0] expect 1', 'expect stat cow_copies == 1', 'expect P buf[0] other-frame Q buf[0]'], profile);
    assert.equal(a.status, 'ok', a.violations.map((v) => v.message).join('\n'));
  }
});

// ---- gup-fast and write_protect_seq --------------------------------------------------------------------

const RACE_START = ['P mmap buf 1 rw private', 'P thread T', 'T write buf[0] = 1', 'P fork Q &', 'P step'];

for (const [profile, checks] of [['v5.9', false], ['v5.14', true], ['v5.18', true], ['v6', true]] as const) {
  test(`${profile}: gup-fast FOLL_PIN while a fork is copying (write_protect_seq odd) ${checks ? 'falls back to the slow path' : 'reads the PTE anyway'}`, () => {
    const r = runTo(RACE_START, profile);
    const mm = r.procs.get('P')!.mm;
    assert.equal(mm.writeProtectSeq & 1, 1, 'fork has begun: write_protect_seq odd');
    let h = continueWith(r, RACE_START, ['T pin buf[0] as h rw longterm fast &', 'T step']);
    const t = r.procs.get('T')!.task as GupTask;
    assert.equal(t.kind, 'gup');
    if (checks) {
      assert.equal(t.phase, 'slow', 'fell back');
      assert.ok(t.fallback.every(Boolean));
      assert.equal(t.handle.frames[0], -1, 'nothing grabbed');
      // The slow path waits for fork's mmap_lock.
      h = continueWith(r, h, ['T step']);
      assert.equal((r.procs.get('T')!.task as GupTask | null)?.phase, 'slow', 'blocked until the fork ends');
    } else {
      assert.equal(t.phase, 'grab', 'v5.9 has no write_protect_seq check: the PTE was read');
      assert.equal(t.fallback.some(Boolean), false);
    }
    continueWith(r, h, ['P finish', 'T finish', 'T write buf[0] = 2', 'device write h[0] = 3', 'T read buf[0] expect 3', 'Q read buf[0] expect 1']);
    assert.deepEqual(r.violations.map((v) => `${v.kind}: ${v.message}`), []);
  });
}

// A fork run in one step is the same fork as `fork &` + finish (one implementation, fork.ts):
// it too makes write_protect_seq odd and even again, so a gup-fast that read the PTE before it
// and checks the count after it sees that a fork ran (5.11+), whichever way the fork ran.
for (const [profile, checks] of [['v5.9', false], ['v6', true]] as const) {
  test(`${profile}: a synchronous fork inside gup-fast ${checks ? 'sends it to the slow path' : 'goes unseen'}, as \`fork &\` + finish does`, () => {
    const start = ['P mmap buf 1 rw private', 'P thread T', 'T write buf[0] = 1', 'T pin buf[0] as h rw longterm fast &', 'T step', 'T step'];
    const seen: string[] = [];
    for (const fork of [['P fork Q'], ['P fork Q &', 'P finish']]) {
      const r = runTo(start, profile);
      const before = r.procs.get('P')!.mm.writeProtectSeq;
      const h = continueWith(r, start, fork);
      assert.equal(r.procs.get('P')!.mm.writeProtectSeq, before + 2, `${fork.join(', ')}: write_protect_seq went odd and even again`);
      continueWith(r, h, ['T step']);
      const t = r.procs.get('T')!.task as GupTask | null;
      seen.push(t === null ? 'done' : `${t.phase} ${t.handle.frames[0]}`);
      if (checks) assert.equal(t?.phase, 'slow', `${fork.join(', ')}: the pins were dropped for the slow path`);
      else assert.equal(t, null, `${fork.join(', ')}: v5.9 has no write_protect_seq check: the pin is taken`);
    }
    assert.equal(seen[0], seen[1], 'the same gup-fast outcome after either fork');
  });
}

test('the gup-fast/fork race (seed): a stale pin on v5.9; write_protect_seq closes it from v5.14; v6 without it breaks again', () => {
  const steps = ['P mmap buf 1 rw private', 'P thread Q', 'Q write buf[0] = 1', 'P fork R &', 'Q pin buf[0] as h rw longterm fast &',
    'P step', 'P step', 'Q step', 'Q step', 'P step', 'Q finish', 'P finish', 'Q write buf[0] = 2', 'device write h[0] = 3', 'Q read buf[0]'];
  const old = runSteps(steps, 'v5.9');
  assert.deepEqual(kindsOf(old), ['lost-write', 'pin-incoherent']);
  for (const profile of ['v5.14', 'v5.18', 'v6']) assert.equal(runSteps(steps, profile).status, 'ok', profile);
  const whatIf = runSteps(steps, 'v6', ['writeProtectSeq=false']);
  assert.ok(kindsOf(whatIf).includes('pin-incoherent'), kindsOf(whatIf).join(', '));
  // 5.19+: the pin sits on a page fork cleared PageAnonExclusive of: sanity_check_pinned_pages().
  assert.ok(kindsOf(whatIf).includes('kernel-bug'), kindsOf(whatIf).join(', '));
});

// ---- reclaim racing with split kernel paths (found by `cowlab explore --ops thread,fork&,pin-fast&,step,swapout,...`) ----


test('gup-fast whose page was swapped out (and freed) between reading the PTE and grabbing it falls back cleanly', () => {
  const steps = ['P mmap buf 1 rw private', 'P thread Q', 'P pin buf[0] as h1 rw longterm fast &', 'Q write buf[0] = 1', 'P step',
    'swapout Q buf[0]', 'P step', 'P finish', 'device write h1[0] = 3', 'Q read buf[0] expect 3'];
  for (const profile of ['v5.9', 'v6']) {
    const r = runSteps(steps, profile);
    assert.equal(r.status, 'ok', `${profile}: ${r.violations.slice(0, 3).map((v) => `${v.step}: ${v.kind}: ${v.message}`).join('; ')}`);
  }
});


const HELD_PAGE_RACE = ['P mmap buf 1 rw private', 'P thread Q', 'Q write buf[0] = 1', 'P vmsplice buf[0] as p',
  'Q pin buf[0] as h1 rw longterm fast &', 'Q step', 'swapout P buf[0]', 'Q step', 'Q finish', 'device write h1[0] = 3',
  'P read buf[0] expect 3', 'P read p[0]'];

test('gup-fast whose PTE changed (the page swapped out, a pipe still holds it) drops its reference and falls back', () => {
  // The grab succeeds (the page is alive), the PTE re-check fails, the reference is put back; the
  // slow path swaps the page in and pins it: the device writes the process's page.
  for (const profile of ['v5.9', 'v5.18']) {
    const r = runSteps(HELD_PAGE_RACE, profile);
    assert.equal(r.status, 'ok', `${profile}: ${r.violations.slice(0, 3).map((v) => `${v.step}: ${v.kind}: ${v.message}`).join('; ')}`);
  }
  const v6 = runSteps(HELD_PAGE_RACE, 'v6');
  assert.deepEqual(v6.violations.filter((v) => v.kind !== 'kernel-bug').map((v) => v.message), []);
});

test('v6: the page gup-fast grabbed and dropped again after the PTE re-check is no VM_BUG_ON', () => {
  const r = runSteps(HELD_PAGE_RACE, 'v6');
  assert.equal(r.status, 'ok', r.violations.slice(0, 3).map((v) => `${v.step}: ${v.kind}: ${v.message}`).join('; '));
});

// ---- handles taken by a thread ----------------------------------------------------------------------


const THREAD_HANDLES: Record<string, string[]> = {
  vmsplice: ['P mmap buf 1 rw private', 'P thread Q', 'Q write buf[0] = 1', 'Q vmsplice buf[0] as p', 'Q read p[0] expect 1', 'P read p[0] expect 1'],
  pin: ['P mmap buf 1 rw private', 'P thread Q', 'Q write buf[0] = 1', 'Q pin buf[0] as h rw longterm', 'device write h[0] = 2',
    'P read buf[0] expect 2', 'Q read buf[0] expect 2', 'device read h[0] expect 2', 'P write buf[0] = 5', 'device read h[0] expect 5'],
};

test('a handle taken by the first thread of a process is bound to the process\'s page', () => {
  for (const steps of Object.values(THREAD_HANDLES)) {
    // The same steps with P taking the handle.
    const leader = steps.map((l) => l.replace(/^Q (vmsplice|pin)/, 'P $1'));
    const r = runSteps(leader, 'v6');
    assert.equal(r.status, 'ok', r.violations.map((v) => v.message).join('; '));
  }
});

test('a handle taken by another thread of the process is bound to the process\'s page as well', () => {
  for (const [what, steps] of Object.entries(THREAD_HANDLES)) {
    const r = runSteps(steps, 'v6');
    assert.equal(r.status, 'ok', `${what}: ${r.violations.map((v) => `${v.step}: ${v.kind}: ${v.message}`).join('; ')}`);
  }
});

test('a pin taken by another thread as a split path (`&`, then finish) is bound to the process\'s page', () => {
  const steps = ['P mmap buf 1 rw private', 'P thread Q', 'Q write buf[0] = 1', 'Q pin buf[0] as h rw longterm fast &', 'Q finish',
    'device write h[0] = 2', 'P read buf[0] expect 2', 'device read h[0] expect 2', 'P write buf[0] = 5', 'device read h[0] expect 5'];
  const r = runSteps(steps, 'v6');
  assert.equal(r.status, 'ok', r.violations.map((v) => `${v.step}: ${v.kind}: ${v.message}`).join('; '));
});


test('reclaim cannot change a PTE while fork copies it: the fork copies a consistent entry', () => {
  const steps = ['P mmap buf 1 rw private', 'P thread Q', 'P fork R &', 'Q write buf[0] = 1', 'P step', 'P step', 'swapout Q buf[0]',
    'P step', 'P finish', 'R read buf[0] expect 1', 'Q read buf[0] expect 1'];
  for (const profile of ['v5.9', 'v6']) {
    const r = runSteps(steps, profile);
    assert.equal(r.status, 'ok', `${profile}: ${r.violations.slice(0, 3).map((v) => `${v.step}: ${v.kind}: ${v.message}`).join('; ')}`);
  }
});


test('a page dropped by another thread while gup-fast pins it: the pin ends up unbound (a buffer of its own) on every kernel', () => {
  const steps = ['P mmap buf 1 rw private', 'P thread Q', 'P pin buf[0] as h1 rw longterm fast &', 'Q write buf[0] = 1', 'P step', 'P step',
    'Q madvise buf[0] dontneed', 'P finish', 'device write h1[0] = 5', 'P read buf[0] expect 0', 'device read h1[0] expect 5'];
  for (const profile of ['v5.9', 'v6']) {
    const r = runSteps(steps, profile);
    assert.equal(r.status, 'ok', `${profile}: ${r.violations.map((v) => `${v.step}: ${v.kind}: ${v.message}`).join('; ')}`);
  }
});

// ---- fork's early COW: copy_pte_range() decides again after the prealloc -------------------------------

// copy_present_page() returns -EAGAIN without a preallocated folio; copy_pte_range() drops the
// locks, allocates (folio_prealloc) and walks again from the same PTE, deciding afresh
// (copy_present_ptes): the page is copied then, under the lock, or, when it may no longer be
// pinned, shared and the prealloc freed (6.18 mm/memory.c; 5.9's copy_present_page alike).
const EARLY_COW_START = ['P mmap buf 1 rw private', 'P thread T', 'T write buf[0] = 1', 'T pin buf[0] as h rw longterm', 'P fork Q &',
  'P step', 'P step', 'P step'];

for (const profile of ['v5.9', 'v6']) {
  test(`${profile}: a pin released while fork's early-COW copy is being allocated: fork shares the page when it walks the PTE again`, () => {
    const r = runTo(EARLY_COW_START, profile);
    const t = r.procs.get('P')!.task;
    assert.ok(t && t.kind === 'fork' && t.phase === 'install', `the prealloc is made, not installed yet: ${t?.kind} ${t && 'phase' in t ? t.phase : ''}`);
    const used = r.k.frames.used;
    continueWith(r, EARLY_COW_START, ['T unpin h', 'P finish', 'expect P buf[0] same-frame Q buf[0]',
      'T write buf[0] = 2', 'Q read buf[0] expect 1', 'P read buf[0] expect 2']);
    assert.deepEqual(r.violations.map((v) => v.message), [], profile);
    assert.equal(r.k.stats.earlyCow, 0, 'no early COW');
    assert.equal(r.k.frames.used, used, 'the prealloc freed; then T\'s write copied the shared page');
  });

  test(`${profile}: a store through the parent's writable PTE while fork's early-COW copy is being allocated is in the child's copy (copied under the lock at the install)`, () => {
    const r = runTo(EARLY_COW_START, profile);
    continueWith(r, EARLY_COW_START, ['T write buf[0] = 2', 'P finish', 'expect P buf[0] other-frame Q buf[0]',
      'Q read buf[0] expect 2', 'device write h[0] = 3', 'T read buf[0] expect 3', 'Q read buf[0] expect 2']);
    assert.deepEqual(r.violations.map((v) => v.message), [], profile);
    assert.equal(r.k.stats.earlyCow, 1);
  });
}

// write_protect_seq is taken per COW mapping copy_page_range() copies (57efa1fe5957), by
// copy_hugetlb_page_range() for a hugetlb one from 5.19 (the PG_anon_exclusive series): a gup-fast pin between
// its read of the sequence and its re-check sees a synchronous fork only if that fork copied
// such a mapping (read_seqcount_retry: all pins dropped, the slow path).
test('gup-fast\'s read_seqcount_retry sees a fork only if it copied a COW mapping: not one that copied nothing (MADV_DONTFORK), nor one that copied only a hugetlb mapping before 5.19', () => {
  const seqSeen = (profile: string, setup: readonly string[], hugepages: number): string => {
    const steps = [...setup, 'P thread T', 'T pin buf[0] as h rw longterm fast &', 'T step', 'T step', 'P fork Q', 'T step'];
    const sc = parse(scenarioText(steps, hugepages > 0 ? ['config:', `  hugepages: ${hugepages}`] : []), 't.scn.yaml');
    const r = new Runner(sc, profileOf(profile), { trace: false, maxEventsPerStep: 0 });
    sc.steps.forEach((s, i) => assert.equal(r.step(s, i).na, null, `${s.text}: n/a on ${profile}`));
    const t = r.procs.get('T')!.task as GupTask | null;
    assert.deepEqual(r.violations.map((v) => v.kind), [], profile);
    // Done: pinned by gup-fast; 'slow': the pins were dropped and the slow path takes over.
    return t === null ? 'fast' : t.phase;
  };
  const copied = ['P mmap buf 1 rw private', 'P write buf[0] = 1'];
  const notCopied = [...copied, 'P madvise buf dontfork'];
  const hugeOnly = [...notCopied, 'P mmap huge 512 rw private hugetlb', 'P write huge[0] = 2'];
  for (const profile of ['v5.14', 'v5.18', 'v5.19', 'v6']) {
    assert.equal(seqSeen(profile, copied, 0), 'slow', `${profile}: fork copied buf's COW mapping: the sequence moved`);
    assert.equal(seqSeen(profile, notCopied, 0), 'fast', `${profile}: fork copied nothing (buf is VM_DONTCOPY): the sequence did not move`);
    const hugeSeq = profile === 'v5.19' || profile === 'v6';
    assert.equal(seqSeen(profile, hugeOnly, 1), hugeSeq ? 'slow' : 'fast', `${profile}: fork copied only a hugetlb COW mapping`);
  }
});

test('mmap_lock levels of synchronous operations beside a write fault holding it for read (between its copy and its install): MADV_DONTNEED and a thread\'s exit (exit_mm) take it for read and do not wait; munmap and mprotect take it for write and wait for the fault to end', () => {
  const start = ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'P fork Q', 'P thread T', 'T write buf[0] = 2 &', 'T step'];
  for (const [op, waits] of [['P madvise buf[0] dontneed', false], ['P exit', false], ['P munmap buf[0]', true], ['P mprotect buf[0] ro', true]] as const) {
    const r = runTo([...start, op], 'v6');
    assert.equal(r.procs.get('T')!.task === null, waits, `${op}: ${waits ? 'waits for T\'s fault to end' : 'runs beside T\'s fault'}`);
  }
});
