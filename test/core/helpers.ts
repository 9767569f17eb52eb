// Helpers of the model-core unit tests: a kernel under a named profile, a process with a mapping,
// CPU accesses, and readable views of a PTE and a frame.

import assert from 'node:assert/strict';
import { cpuAccess, type AccessResult } from '../../src/core/access.js';
import {
  OK, PG_ANON, PG_ANON_EXCLUSIVE, PTE_DIRTY, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_SPECIAL, PTE_WRITE, PTE_YOUNG,
} from '../../src/core/constants.js';
import { DEFAULT_PIN_BIAS, Kernel } from '../../src/core/kernel.js';
import type { Mm } from '../../src/core/mm.js';
import { doMmap, type ProtName } from '../../src/core/mmap.js';
import type { Profile } from '../../src/core/profile.js';
import { pteSlot } from '../../src/core/walk.js';
import { AccountingChecker } from '../../src/check/accounting.js';
import { builtinProfile } from '../../src/profiles/builtin.js';
import { withOverrides } from '../../src/profiles/resolve.js';

/** A built-in profile by name, with optional `switch=value` overrides. */
export function profile(name: string, ...sets: string[]): Profile {
  const p = builtinProfile(name);
  assert.ok(p, `no built-in profile ${name}`);
  return withOverrides(p, sets);
}

export interface KernelOptions {
  frames?: number;
  pinBias?: number;
  sets?: string[];
}

/** A fresh kernel under a profile (frames unlimited unless given). */
export function kernel(name: string, opts: KernelOptions = {}): Kernel {
  return new Kernel(profile(name, ...(opts.sets ?? [])), {
    frames: opts.frames ?? 1 << 20,
    pinBias: opts.pinBias ?? DEFAULT_PIN_BIAS,
  });
}

/** A process (mm) with one mapping of `pages` pages; returns the first page number too. */
export function proc(k: Kernel, pages = 1, prot: ProtName = 'rw', shared = false): { mm: Mm; vpn: number } {
  const mm = k.newMm();
  const vpn = map(k, mm, pages, prot, shared);
  return { mm, vpn };
}

/** Another mapping in an existing process; returns its first page number. */
export function map(k: Kernel, mm: Mm, pages: number, prot: ProtName = 'rw', shared = false, populate = false): number {
  const r = doMmap(k, mm, pages, prot, shared, populate);
  assert.equal(r.err, OK, 'mmap failed');
  return r.start;
}

export function write(k: Kernel, mm: Mm, vpn: number, value: number): AccessResult {
  return cpuAccess(k, mm, vpn, true, value);
}

export function read(k: Kernel, mm: Mm, vpn: number): AccessResult {
  return cpuAccess(k, mm, vpn, false, 0);
}

/** A write that must succeed; returns the frame written. */
export function writeOk(k: Kernel, mm: Mm, vpn: number, value: number): number {
  const r = write(k, mm, vpn, value);
  assert.equal(r.err, OK, `write to page ${vpn} of mm ${mm.id} failed with ${r.err}`);
  return r.pfn;
}

/** A read that must succeed; returns the value. */
export function readOk(k: Kernel, mm: Mm, vpn: number): number {
  const r = read(k, mm, vpn);
  assert.equal(r.err, OK, `read of page ${vpn} of mm ${mm.id} failed with ${r.err}`);
  return r.value;
}

export interface PteView {
  pfn: number;
  present: boolean;
  write: boolean;
  dirty: boolean;
  young: boolean;
  special: boolean;
  softDirty: boolean;
}

/** The PTE of vpn in mm, or null when it is none (no table, or an empty entry). */
export function pte(k: Kernel, mm: Mm, vpn: number): PteView | null {
  const slot = pteSlot(k, mm, vpn);
  if (slot < 0) return null;
  const bits = k.tables.bits[slot]!;
  if (bits === 0) return null;
  return {
    pfn: k.tables.entry[slot]!,
    present: (bits & PTE_PRESENT) !== 0,
    write: (bits & PTE_WRITE) !== 0,
    dirty: (bits & PTE_DIRTY) !== 0,
    young: (bits & PTE_YOUNG) !== 0,
    special: (bits & PTE_SPECIAL) !== 0,
    softDirty: (bits & PTE_SOFT_DIRTY) !== 0,
  };
}

/** The PTE of vpn, which must be present. */
export function presentPte(k: Kernel, mm: Mm, vpn: number): PteView {
  const p = pte(k, mm, vpn);
  assert.ok(p !== null && p.present, `page ${vpn} of mm ${mm.id} is not mapped`);
  return p;
}

export interface FrameView {
  refcount: number;
  mapcount: number;
  anon: boolean;
  exclusive: boolean;
  value: number;
}

export function frame(k: Kernel, pfn: number): FrameView {
  const f = k.frames;
  return {
    refcount: f.refcount[pfn]!,
    mapcount: f.mapcount[pfn]!,
    anon: (f.flags[pfn]! & PG_ANON) !== 0,
    exclusive: (f.flags[pfn]! & PG_ANON_EXCLUSIVE) !== 0,
    value: f.value[pfn]!,
  };
}

/** The accounting checker finds nothing wrong. */
export function assertConsistent(k: Kernel, final = false): void {
  const problems = new AccountingChecker().check(k, final);
  assert.deepEqual(problems.map((p) => `${p.kind}: ${p.message}`), [], 'accounting invariants');
}
