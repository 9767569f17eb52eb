// Model-based test: random operation sequences drive both the model core (src/core) and the naive
// reference model (test/naive/model.ts); after every operation everything observable must agree:
// values read and faults, which pages share a frame (as a partition, not frame numbers), mapcount,
// refcount and PG_anon_exclusive per mapped page, PTE writability, VMA flags, RSS and faults per
// process, frames in use, COW copies and reuses. Operations are chosen by indices taken modulo
// what exists (`proc = i % live`), so every generated sequence is applicable.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { cpuAccess } from '../../src/core/access.js';
import {
  OK, PTE_PRESENT, PTE_SPECIAL, PTE_WRITE, SIGSEGV, VM_DONTCOPY, VM_WIPEONFORK, VM_WRITE,
} from '../../src/core/constants.js';
import { dupMmap } from '../../src/core/fork.js';
import { getUserPages, releaseHandle } from '../../src/core/gup.js';
import { type Handle, Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { doMadvise, doMmap, doMprotect } from '../../src/core/mmap.js';
import { pteSlot } from '../../src/core/walk.js';
import { exitMmap, unmapRegion } from '../../src/core/zap.js';
import { AccountingChecker } from '../../src/check/accounting.js';
import { builtinProfile } from '../../src/profiles/builtin.js';
import {
  GUP_PIN_COUNTING_BIAS, NaiveKernel, pageKey, V5_19_RULES, V5_7_RULES, V5_9_RULES, V6_RULES, type NaiveOptions, type NFrame, type NPin, type NProc, type NRef,
} from '../naive/model.js';
import { assertProperty } from './seed.js';

const RANGE_OPS = ['munmap', 'dontneed', 'dontfork', 'dofork', 'wipeonfork', 'keeponfork', 'ro', 'rw'] as const;
type RangeOpName = (typeof RANGE_OPS)[number];

type Op =
  | { t: 'mmap'; p: number; n: number }
  | { t: 'write'; p: number; r: number; i: number }
  | { t: 'read'; p: number; r: number; i: number }
  | { t: 'gup'; p: number; r: number; i: number }
  | { t: 'vmsplice'; p: number; r: number; i: number }
  | { t: 'put'; h: number }
  | { t: 'pin'; p: number; r: number; i: number; write: boolean; longterm: boolean }
  | { t: 'unpin'; h: number }
  | { t: 'fork'; p: number }
  | { t: 'exit'; p: number }
  | { t: RangeOpName; p: number; r: number; i: number; len: number };

const MAX_PROCS = 4;
const MAX_REGIONS = 3;
const MAX_REFS = 4;

const ix = fc.nat({ max: 63 });
const pageOp = <T extends 'write' | 'read' | 'gup' | 'vmsplice'>(t: T) => fc.record({ t: fc.constant(t), p: ix, r: ix, i: ix });

function opArb(withGup: boolean, withPins = false): fc.Arbitrary<Op> {
  const arbs: fc.WeightedArbitrary<Op>[] = [
    { arbitrary: pageOp('write'), weight: 8 },
    { arbitrary: pageOp('read'), weight: 4 },
    { arbitrary: fc.record({ t: fc.constant('fork' as const), p: ix }), weight: 3 },
    { arbitrary: fc.record({ t: fc.constant('exit' as const), p: ix }), weight: 1 },
    { arbitrary: fc.record({ t: fc.constant('mmap' as const), p: ix, n: fc.integer({ min: 1, max: 4 }) }), weight: 1 },
    { arbitrary: fc.record({ t: fc.constantFrom(...RANGE_OPS), p: ix, r: ix, i: ix, len: ix }), weight: 6 },
  ];
  if (withGup) {
    arbs.push({ arbitrary: pageOp('gup'), weight: 1 });
    arbs.push({ arbitrary: fc.record({ t: fc.constant('put' as const), h: ix }), weight: 1 });
  }
  if (withPins) {
    arbs.push({ arbitrary: pageOp('vmsplice'), weight: 1 });
    arbs.push({ arbitrary: fc.record({ t: fc.constant('pin' as const), p: ix, r: ix, i: ix, write: fc.boolean(), longterm: fc.boolean() }), weight: 3 });
    arbs.push({ arbitrary: fc.record({ t: fc.constant('unpin' as const), h: ix }), weight: 1 });
  }
  return fc.oneof(...arbs);
}

function programArb(withGup: boolean, withPins = false): fc.Arbitrary<{ pages: number; ops: Op[] }> {
  return fc.record({
    pages: fc.integer({ min: 1, max: 4 }),
    ops: fc.array(opArb(withGup, withPins), { minLength: 1, maxLength: 40 }),
  });
}

interface Proc {
  mm: Mm;
  n: NProc;
}

interface Ref {
  h: Handle;
  n: NRef;
}

interface Pin {
  h: Handle;
  n: NPin;
}

/** Both models side by side. */
class World {
  readonly k: Kernel;
  readonly naive: NaiveKernel;
  readonly procs: Proc[] = [];
  readonly refs: Ref[] = [];
  readonly pins: Pin[] = [];
  /** Region id -> its first page number (the same in every process that has it). */
  readonly starts = new Map<number, number>();
  readonly log: string[] = [];
  private readonly checker = new AccountingChecker();

  constructor(profileName: string, rules: NaiveOptions, pages: number) {
    this.k = new Kernel(builtinProfile(profileName)!, { frames: 1 << 20, pinBias: 1024 });
    this.naive = new NaiveKernel(rules);
    const p: Proc = { mm: this.k.newMm(), n: this.naive.spawn() };
    this.procs.push(p);
    this.mmap(p, pages);
  }

  private live(): Proc[] {
    return this.procs.filter((p) => p.n.alive);
  }

  private name(p: Proc): string {
    return `P${p.n.id}`;
  }

  private mmap(p: Proc, n: number): void {
    const r = this.naive.mmap(p.n, n);
    const c = doMmap(this.k, p.mm, n, 'rw', false, false);
    assert.equal(c.err, OK);
    this.starts.set(r.id, c.start);
    this.log.push(`${this.name(p)} mmap r${r.id} ${n}`);
  }

  /** Apply one operation to both models; the value written by a store is `step + 1`. */
  apply(op: Op, step: number): void {
    const live = this.live();
    if (op.t === 'unpin') {
      if (this.pins.length === 0) return;
      const [pin] = this.pins.splice(op.h % this.pins.length, 1);
      releaseHandle(this.k, pin!.h);
      this.naive.unpin(pin!.n);
      this.log.push(`unpin ${op.h % (this.pins.length + 1)}`);
      return;
    }
    if (op.t === 'put') {
      if (this.refs.length === 0) return;
      const [ref] = this.refs.splice(op.h % this.refs.length, 1);
      releaseHandle(this.k, ref!.h);
      this.naive.putRef(ref!.n);
      this.log.push(`put ref ${op.h % (this.refs.length + 1)}`);
      return;
    }
    const p = live[op.p % live.length]!;
    const who = this.name(p);
    switch (op.t) {
      case 'mmap':
        if (p.n.regions.length < MAX_REGIONS) this.mmap(p, op.n);
        return;
      case 'fork': {
        if (live.length >= MAX_PROCS) return;
        const r = dupMmap(this.k, p.mm);
        assert.equal(r.err, OK);
        const child: Proc = { mm: r.child!, n: this.naive.fork(p.n) };
        this.procs.push(child);
        this.log.push(`${who} fork ${this.name(child)}`);
        return;
      }
      case 'exit':
        if (live.length <= 1) return;
        exitMmap(this.k, p.mm);
        this.naive.exit(p.n);
        this.log.push(`${who} exit`);
        return;
      default:
        break;
    }
    const r = p.n.regions[op.r % p.n.regions.length]!;
    const start = this.starts.get(r.id)!;
    const i = op.i % r.n;
    const at = `${who} r${r.id}[${i}]`;
    switch (op.t) {
      case 'write': {
        const v = step + 1;
        const c = cpuAccess(this.k, p.mm, start + i, true, v);
        const ok = this.naive.write(p.n, r, i, v);
        this.log.push(`${at} write ${v}`);
        assert.ok(c.err === OK || c.err === SIGSEGV, `${at}: write returned ${c.err}`);
        assert.equal(c.err === OK, ok, `${at}: the write ${ok ? 'must succeed' : 'must fault'}`);
        return;
      }
      case 'read': {
        const c = cpuAccess(this.k, p.mm, start + i, false, 0);
        const v = this.naive.read(p.n, r, i);
        this.log.push(`${at} read -> ${v ?? 'fault'}`);
        assert.equal(c.err === OK ? c.value : null, v, `${at}: value read`);
        return;
      }
      case 'gup':
      case 'vmsplice': {
        if (this.refs.length >= MAX_REFS) return;
        // vmsplice: FOLL_GET, read-only, through gup-fast, held by a pipe buffer.
        const req = op.t === 'gup'
          ? { pin: false, write: false, longterm: false, fast: false, kind: 'gup' as const }
          : { pin: false, write: false, longterm: false, fast: true, kind: 'pipe' as const };
        const c = getUserPages(this.k, p.mm, start + i, start + i + 1, req);
        const ref = op.t === 'gup' ? this.naive.gup(p.n, r, i) : this.naive.vmsplice(p.n, r, i);
        this.log.push(`${at} ${op.t} -> ${ref === null ? 'EFAULT' : `ref ${this.refs.length}`}`);
        assert.equal(c.handle !== null, ref !== null, `${at}: GUP ${ref === null ? 'must fail' : 'must succeed'}`);
        if (c.handle !== null && ref !== null) this.refs.push({ h: c.handle, n: ref });
        return;
      }
      case 'pin': {
        if (this.pins.length >= MAX_REFS) return;
        const c = getUserPages(this.k, p.mm, start + i, start + i + 1, { pin: true, write: op.write, longterm: op.longterm, fast: false, kind: 'pin' });
        const pin = this.naive.pin(p.n, r, i, op);
        this.log.push(`${at} pin ${op.write ? 'rw' : 'ro'} ${op.longterm ? 'longterm' : 'short'} -> ${pin === null ? 'EFAULT' : `pin ${this.pins.length}`}`);
        assert.equal(c.handle !== null, pin !== null, `${at}: the pin ${pin === null ? 'must fail' : 'must succeed'}`);
        if (c.handle !== null && pin !== null) this.pins.push({ h: c.handle, n: pin });
        return;
      }
      default:
        break;
    }
    const lo = i;
    const hi = lo + 1 + (op.len % (r.n - lo));
    const range = `${who} r${r.id}[${lo}..${hi - 1}]`;
    this.log.push(`${range} ${op.t}`);
    switch (op.t) {
      case 'munmap':
        unmapRegion(this.k, p.mm, start + lo, start + hi);
        this.naive.munmap(p.n, r, lo, hi);
        return;
      case 'ro':
      case 'rw': {
        // Both fail with ENOMEM at a hole (and change only the pages before it).
        const ok = this.naive.mprotect(p.n, r, lo, hi, op.t);
        assert.equal(doMprotect(this.k, p.mm, start + lo, start + hi, op.t) === OK, ok, 'mprotect: ENOMEM at a hole');
        return;
      }
      default:
        assert.equal(doMadvise(this.k, p.mm, start + lo, start + hi, op.t), OK);
        this.naive.madvise(p.n, r, lo, hi, op.t);
    }
  }

  /** Every process exits and every reference is put: nothing may remain. */
  finish(): void {
    for (const p of this.live()) {
      exitMmap(this.k, p.mm);
      this.naive.exit(p.n);
    }
    for (const ref of this.refs) {
      releaseHandle(this.k, ref.h);
      this.naive.putRef(ref.n);
    }
    this.refs.length = 0;
    for (const pin of this.pins) {
      releaseHandle(this.k, pin.h);
      this.naive.unpin(pin.n);
    }
    this.pins.length = 0;
    this.log.push('(all exit, all references put)');
    this.compare();
    assert.equal(this.k.frames.used, 0, 'frames left in use');
    assert.equal(this.k.tables.used, 0, 'page tables left');
  }

  /** Everything observable agrees; the model's accounting is exact; the naive model is consistent. */
  compare(): void {
    const k = this.k;
    const naive = this.naive;
    const pfnOf = new Map<NFrame, number>();
    const frameOf = new Map<number, NFrame>();
    const sameFrame = (where: string, pfn: number, f: NFrame | null): void => {
      if (f === null) {
        assert.equal(pfn, 0, `${where}: the zero page in the reference, frame ${pfn} in the model`);
        return;
      }
      assert.ok(pfn > 0, `${where}: frame ${f.id} in the reference, the zero page in the model`);
      const g = frameOf.get(pfn);
      const q = pfnOf.get(f);
      assert.ok(g === undefined || g === f, `${where}: the model shares frame ${pfn} where the reference has two frames`);
      assert.ok(q === undefined || q === pfn, `${where}: the reference shares a frame the model has as ${q} and ${pfn}`);
      frameOf.set(pfn, f);
      pfnOf.set(f, pfn);
      assert.deepEqual(
        { refcount: k.frames.refcount[pfn], mapcount: k.frames.mapcount[pfn], exclusive: (k.frames.flags[pfn]! & 2) !== 0, value: k.frames.value[pfn] },
        { refcount: f.refcount, mapcount: f.mapcount, exclusive: f.exclusive, value: f.value },
        `${where}: frame state`,
      );
    };
    const mapcounts = new Map<NFrame, number>();
    for (const p of this.procs) {
      const who = this.name(p);
      assert.equal(p.mm.alive, p.n.alive, `${who} alive`);
      if (!p.n.alive) continue;
      assert.equal(p.mm.rssAnon, p.n.rss, `${who}: rss`);
      assert.equal(p.mm.minflt, p.n.minflt, `${who}: faults taken`);
      let rss = 0;
      for (const r of p.n.regions) {
        const start = this.starts.get(r.id)!;
        for (let i = 0; i < r.n; i++) {
          const where = `${who} r${r.id}[${i}]`;
          const pg = p.n.pages.get(pageKey(r, i));
          const vma = p.mm.findVma(start + i);
          assert.equal(vma !== null, pg !== undefined, `${where}: mapped`);
          if (vma === null || pg === undefined) continue;
          assert.deepEqual(
            { write: (vma.flags & VM_WRITE) !== 0, dontfork: (vma.flags & VM_DONTCOPY) !== 0, wipeonfork: (vma.flags & VM_WIPEONFORK) !== 0, anonVma: vma.anonVma },
            { write: pg.prot === 'rw', dontfork: pg.dontfork, wipeonfork: pg.wipeonfork, anonVma: pg.vma.anonVma },
            `${where}: VMA flags`,
          );
          const slot = pteSlot(k, p.mm, start + i);
          const bits = slot < 0 ? 0 : k.tables.bits[slot]!;
          assert.equal(bits !== 0, pg.pte !== null, `${where}: PTE ${pg.pte === null ? 'none' : 'present'} expected`);
          if (pg.pte === null) continue;
          assert.ok(bits & PTE_PRESENT);
          assert.equal((bits & PTE_WRITE) !== 0, pg.pte.writable, `${where}: PTE writable`);
          assert.equal((bits & PTE_SPECIAL) !== 0, pg.pte.frame === null, `${where}: zero page`);
          sameFrame(where, k.tables.entry[slot]!, pg.pte.frame);
          if (pg.pte.frame !== null) {
            rss++;
            mapcounts.set(pg.pte.frame, (mapcounts.get(pg.pte.frame) ?? 0) + 1);
          }
        }
      }
      assert.equal(rss, p.n.rss, `${who}: the reference's own rss`);
    }
    const refcounts = new Map(mapcounts);
    this.refs.forEach((ref, j) => {
      sameFrame(`ref ${j}`, ref.h.frames[0]!, ref.n.frame);
      if (ref.n.frame !== null) refcounts.set(ref.n.frame, (refcounts.get(ref.n.frame) ?? 0) + 1);
    });
    this.pins.forEach((pin, j) => {
      sameFrame(`pin ${j}`, pin.h.frames[0]!, pin.n.frame);
      if (pin.n.frame !== null) refcounts.set(pin.n.frame, (refcounts.get(pin.n.frame) ?? 0) + GUP_PIN_COUNTING_BIAS);
    });
    for (const p of this.procs) if (p.n.alive) assert.equal(p.mm.hasPinned, p.n.hasPinned, `${this.name(p)}: MMF_HAS_PINNED`);
    // The reference model's own invariants: mapcount and refcount are what maps and holds a frame.
    for (const f of naive.frames) {
      assert.equal(f.mapcount, mapcounts.get(f) ?? 0, `reference frame ${f.id}: mapcount`);
      assert.equal(f.refcount, refcounts.get(f) ?? 0, `reference frame ${f.id}: refcount`);
    }
    assert.equal(k.frames.used, naive.frames.size, 'frames in use');
    // The model counts early COW copies at fork among its copies too.
    assert.equal(k.stats.cowCopies, naive.cowCopies + naive.forkCopies, 'COW copies');
    assert.equal(k.stats.earlyCow, naive.forkCopies, 'early COW copies at fork');
    assert.equal(k.stats.reuses, naive.reuses, 'reuses');
    const problems = this.checker.check(k, false);
    assert.deepEqual(problems.map((x) => `${x.kind}: ${x.message}`), [], 'the model\'s accounting');
  }
}

function runProgram(profileName: string, rules: NaiveOptions, prog: { pages: number; ops: Op[] }): void {
  const w = new World(profileName, rules, prog.pages);
  try {
    w.compare();
    prog.ops.forEach((op, step) => {
      w.apply(op, step);
      w.compare();
    });
    w.finish();
  } catch (e) {
    throw new Error(`${(e as Error).message}\n  after:\n    ${w.log.join('\n    ')}`, { cause: e });
  }
}

test('model core = naive reference (v6 rules): private memory, fork, exit, munmap, mprotect, madvise', () => {
  assertProperty('v6 vs naive', programArb(false), (prog) => runProgram('v6', V6_RULES, prog), 600);
});

test('model core = naive reference (v6 rules) with FOLL_GET references held and released', () => {
  assertProperty('v6 + gup vs naive', programArb(true), (prog) => runProgram('v6', V6_RULES, prog), 400);
});

test('model core = naive reference with the older reuse rules (v5.9 page count, v5.7 mapcount)', () => {
  assertProperty('v5.9 vs naive', programArb(true), (prog) => runProgram('v5.9', V5_9_RULES, prog), 200);
  assertProperty('v5.7 vs naive', programArb(true), (prog) => runProgram('v5.7', V5_7_RULES, prog), 200);
});

test('model core = naive reference with FOLL_PIN pins (R/W and R/O, long-term and short) and vmsplice: pin counts, unsharing, early COW at fork', () => {
  assertProperty('v6 + pins vs naive', programArb(true, true), (prog) => runProgram('v6', V6_RULES, prog), 400);
  assertProperty('v5.19 + pins vs naive', programArb(true, true), (prog) => runProgram('v5.19', V5_19_RULES, prog), 150);
  assertProperty('v5.9 + pins vs naive', programArb(true, true), (prog) => runProgram('v5.9', V5_9_RULES, prog), 150);
  assertProperty('v5.7 + pins vs naive', programArb(true, true), (prog) => runProgram('v5.7', V5_7_RULES, prog), 150);
});
