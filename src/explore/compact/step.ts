// One explorer operation on a compact state, as the Runner (src/engine/run.ts) runs it: the
// kernel side, the ideal side, then the checks the Runner makes after every step (pin
// coherence, sanity_check_pinned_pages, the accounting recount). Also the enabled operations,
// in the order and packing of src/explore/ops.ts, so a path replays on the Runner as it is.

import { OP_NAMES, PROC_NAMES, type ExploreShape, type OpName } from '../ops.js';
import {
  F_FLAGS, F_MAP, F_REF, F_SIZE, F_VAL, FL_EXCL, H_BOUND, H_HOLDER, H_KIND, H_LONG, H_PAGE, H_PFN, H_REFS, H_REPORTED,
  H_SIZE, H_WRITE, HK_GUP, HK_PIN, HK_PIPE, P_HELD, P_PINNED, P_PAGES, P_STATUS, PG_PTE, PG_SIZE, PG_VMA, VMA_DONTCOPY, VMA_IDEAL_DONTFORK, VMA_IDEAL_WIPE, VMA_MAPPED, VMA_WIPE, ptePfn, S_NHANDLES, S_NPROCS, ST_ALIVE, ST_DEAD,
} from './layout.js';
import {
  cpuAccess, dupMmap, E_FORK, E_GUP, E_PIN, E_SHARED_EXTRA, E_VMSPLICE, exitMmap, getUserPages, madviseFlag, type Machine, mprotect, OK, releaseHandle,
  unmapPage, zapPage, V_ACCOUNTING, V_BUG, V_FAULT, V_INCOHERENT, V_LEAK, V_LOST, V_UAF,
} from './machine.js';
import {
  everHeld, freshValue, idealCheckHandleRead, idealDontneed, idealFork, idealHandleWrite, idealAccess, idealMadviseFlag, idealMprotect, idealRead, idealTakeHandle,
  idealUnmap, idealWrite,
} from './ideal.js';

/** The operations the compact explorer runs: the default set, and mprotect, the madvise ones, pin-fast and gup. */
export const COMPACT_OPS: readonly OpName[] = [
  'write', 'read', 'fork', 'exit', 'munmap', 'mprotect', 'dontfork', 'wipeonfork', 'dontneed', 'pin', 'pin-ro', 'pin-fast',
  'gup', 'vmsplice', 'unpin', 'put', 'handle-read', 'device-write', 'device-read',
];

const code = (n: OpName): number => OP_NAMES.indexOf(n);
const WRITE = code('write');
const READ = code('read');
const FORK = code('fork');
const EXIT = code('exit');
const MUNMAP = code('munmap');
const PIN = code('pin');
const PIN_RO = code('pin-ro');
const PIN_FAST = code('pin-fast');
const GUP = code('gup');
const DONTNEED = code('dontneed');
const MPROTECT = code('mprotect');
const DONTFORK = code('dontfork');
const WIPEONFORK = code('wipeonfork');
const VMSPLICE = code('vmsplice');
const UNPIN = code('unpin');
const PUT = code('put');
const HANDLE_READ = code('handle-read');
const DEVICE_WRITE = code('device-write');
const DEVICE_READ = code('device-read');

const pack = (c: number, proc: number, page: number, extra: number): number => (c << 24) | (proc << 20) | (page << 4) | extra;

/** The shape's operations as codes, in --ops order. */
export function opCodes(shape: ExploreShape): Int32Array {
  return Int32Array.from(shape.ops.map(code));
}

/** enabledOps() of src/explore/ops.ts for the compact operations: writes them to `out`, returns how many. */
export function enabledOps(m: Machine, shape: ExploreShape, codes: Int32Array, out: Int32Array): number {
  const s = m.s;
  const L = m.L;
  const np = s[S_NPROCS]!;
  const nh = s[S_NHANDLES]!;
  let alive = 0;
  for (let p = 0; p < np; p++) if (s[L.proc(p) + P_STATUS] === ST_ALIVE) alive++;
  let n = 0;
  for (let k = 0; k < codes.length; k++) {
    const c = codes[k]!;
    if (c === FORK || c === EXIT) {
      if (c === FORK && (alive >= shape.procs || np >= PROC_NAMES.length)) continue;
      for (let p = 0; p < np; p++) if (s[L.proc(p) + P_STATUS] === ST_ALIVE) out[n++] = pack(c, p, 0, 0);
    } else if (c === UNPIN || c === PUT || c === HANDLE_READ || c === DEVICE_WRITE || c === DEVICE_READ) {
      for (let h = 0, hb = L.handleBase; h < nh; h++, hb += H_SIZE) {
        const kind = s[hb + H_KIND]!;
        if (c === UNPIN && kind !== HK_PIN) continue;
        if (c === PUT && kind === HK_PIN) continue;
        // Device I/O goes through a pin (docs/scenario-language.md, "Device I/O needs a pin").
        if (c === DEVICE_WRITE && (kind !== HK_PIN || s[hb + H_WRITE] === 0)) continue;
        if (c === DEVICE_READ && kind !== HK_PIN) continue;
        if (c === HANDLE_READ && kind !== HK_PIPE) continue;
        out[n++] = pack(c, s[hb + H_HOLDER]!, 0, h);
      }
    } else {
      if ((c === PIN || c === PIN_RO || c === PIN_FAST || c === GUP || c === VMSPLICE) && nh >= shape.handles) continue;
      for (let p = 0; p < np; p++) {
        if (s[L.proc(p) + P_STATUS] !== ST_ALIVE) continue;
        for (let i = 0; i < L.pages; i++) {
          out[n++] = pack(c, p, i, 0);
          if (c === MPROTECT) out[n++] = pack(c, p, i, 1); // ro, then rw
        }
      }
    }
  }
  return n;
}

/** Run one packed operation on m.s; violations land in m.viol, events in m.events. */
export function applyOp(m: Machine, op: number, scratch: Int32Array): void {
  m.viol = 0;
  m.events = 0;
  const c = op >>> 24;
  m.changed = c !== READ && c !== HANDLE_READ && c !== DEVICE_READ;
  m.structural = c !== DEVICE_WRITE;
  const p = (op >>> 20) & 15;
  const i = (op >>> 4) & 0xffff;
  const h = op & 15;
  const s = m.s;
  const L = m.L;
  if ((c === WRITE || c === READ || c === MUNMAP || c === MPROTECT || c === DONTFORK || c === WIPEONFORK || c === DONTNEED || c === PIN || c === PIN_RO || c === PIN_FAST || c === GUP || c === VMSPLICE) &&
    !(s[L.page(p, i) + PG_VMA]! & VMA_MAPPED)) {
    // Nothing mapped there: the access faults (SIGSEGV / EFAULT) and mprotect fails (ENOMEM) as
    // the ideal memory says they must, munmap and madvise have nothing to do; only a failed pin
    // still marks the mm MMF_HAS_PINNED.
    m.changed = false;
    if ((c === PIN || c === PIN_RO || c === PIN_FAST) && m.forkEarlyCow && s[L.proc(p) + P_PINNED] === 0) {
      s[L.proc(p) + P_PINNED] = 1;
      m.changed = true;
    }
    if (!m.changed) return;
  }
  switch (c) {
    case WRITE: {
      const v = freshValue(m);
      const want = idealAccess(m, p, i, true);
      const err = cpuAccess(m, p, i, true, v);
      m.structural = m.faulted; // a store without a fault changes only a value
      if (err === OK) {
        if (!want) m.viol |= V_FAULT;
        else idealWrite(m, p, i, v);
      } else if (want) m.viol |= V_FAULT;
      break;
    }
    case READ: {
      const want = idealAccess(m, p, i, false);
      const err = cpuAccess(m, p, i, false, 0);
      if (err !== OK) {
        if (want) m.viol |= V_FAULT;
      } else if (!want) {
        m.viol |= V_FAULT;
      } else if (m.loaded !== idealRead(m, p, i)) {
        m.viol |= everHeld(m, p, m.loaded) ? V_LOST : V_LEAK;
      }
      break;
    }
    case FORK: {
      const child = s[S_NPROCS]!;
      s[S_NPROCS] = child + 1;
      const cb = L.proc(child);
      s[cb + P_STATUS] = ST_ALIVE;
      s[cb + P_PINNED] = 0;
      s[cb + P_HELD] = 0;
      dupMmap(m, p, child);
      idealFork(m, p, child);
      m.events |= E_FORK;
      break;
    }
    case EXIT:
      exitMmap(m, p);
      for (let j = 0; j < L.pages; j++) idealUnmap(m, p, j);
      s[L.proc(p) + P_STATUS] = ST_DEAD;
      break;
    case MUNMAP:
      unmapPage(m, p, i);
      idealUnmap(m, p, i);
      break;
    case MPROTECT: {
      const ro = h === 0;
      const ok = mprotect(m, p, i, ro) === OK;
      if (ok !== idealMprotect(m, p, i, ro)) m.viol |= V_FAULT;
      break;
    }
    case DONTFORK:
    case WIPEONFORK:
      // madvise() succeeds on a private mapping, as the ideal memory says it must.
      madviseFlag(m, p, i, c === DONTFORK ? VMA_DONTCOPY : VMA_WIPE);
      idealMadviseFlag(m, p, i, c === DONTFORK ? VMA_IDEAL_DONTFORK : VMA_IDEAL_WIPE);
      break;
    case DONTNEED:
      // MADV_DONTNEED: the page is zapped, the VMA stays; the next touch gets a fresh page.
      zapPage(m, p, i);
      idealDontneed(m, p, i);
      break;
    case PIN:
    case PIN_RO:
    case PIN_FAST:
    case GUP:
    case VMSPLICE: {
      const kind = c === VMSPLICE ? HK_PIPE : c === GUP ? HK_GUP : HK_PIN;
      const write = c === PIN || c === PIN_FAST;
      const want = idealAccess(m, p, i, write);
      const err = getUserPages(m, p, i, kind, write, c === PIN_FAST || c === VMSPLICE);
      if (err !== OK) {
        if (want) m.viol |= V_FAULT;
        break;
      }
      if (!want) m.viol |= V_FAULT;
      idealTakeHandle(m, s[S_NHANDLES]! - 1);
      m.events |= kind === HK_PIN ? E_PIN : kind === HK_PIPE ? E_VMSPLICE : E_GUP;
      break;
    }
    case UNPIN:
    case PUT: {
      releaseHandle(m, h);
      const nh = s[S_NHANDLES]!;
      const hb = L.handle(h);
      s.copyWithin(hb, hb + H_SIZE, L.handle(nh));
      s.fill(0, L.handle(nh - 1), L.handle(nh));
      s[S_NHANDLES] = nh - 1;
      break;
    }
    case HANDLE_READ:
    case DEVICE_READ: {
      // `P read H[0]` needs its reader (the holder) alive; the device reads for the holder.
      if (c === HANDLE_READ && s[L.proc(p) + P_STATUS] !== ST_ALIVE) break;
      const pfn = s[L.handle(h) + H_PFN]!;
      const value = pfn <= 0 ? 0 : s[L.frame(pfn) + F_VAL]!;
      m.viol |= idealCheckHandleRead(m, h, value, s[L.handle(h) + H_HOLDER]!);
      break;
    }
    case DEVICE_WRITE: {
      const v = freshValue(m);
      const pfn = s[L.handle(h) + H_PFN]!;
      if (pfn <= 0) break;
      s[L.frame(pfn) + F_VAL] = v;
      idealHandleWrite(m, h, v);
      break;
    }
    default:
      throw new Error(`the compact explorer has no operation ${OP_NAMES[c]}`);
  }
  // A state left as it was, or where only values changed, passes these checks as its parent did.
  if (!m.changed || !m.structural) return;
  checkStep(m, scratch);
}

/**
 * The Runner's checks after a step, in one pass: Runner.checkPins() (pinned anonymous pages are
 * exclusive (5.19+), bound long-term pins stay coherent) and AccountingChecker.check() for what
 * the compact state holds (refcounts, mapcounts, freed frames, writable pages exclusive).
 */
function checkStep(m: Machine, exp: Int32Array): void {
  const s = m.s;
  const L = m.L;
  const nf = L.frames;
  for (let k = 0; k < 2 * nf; k++) exp[k] = 0;
  const np = s[S_NPROCS]!;
  for (let p = 0, pb = L.procBase; p < np; p++, pb += L.procSize) {
    if (s[pb + P_STATUS] !== ST_ALIVE) continue;
    for (let i = 0, at = pb + P_PAGES + PG_PTE; i < L.pages; i++, at += PG_SIZE) {
      const pte = s[at]!;
      const pfn = (pte >> 1) - 1;
      if (pfn <= 0) continue;
      const fl = s[L.frameBase + pfn * F_SIZE + F_FLAGS]!;
      if (fl === 0) {
        m.viol |= V_UAF;
        continue;
      }
      exp[pfn]!++;
      exp[nf + pfn]!++;
      if (m.anonExclusive && pte & 1 && !(fl & FL_EXCL)) m.viol |= V_BUG;
    }
  }
  const nh = s[S_NHANDLES]!;
  for (let h = 0, hb = L.handleBase; h < nh; h++, hb += H_SIZE) {
    const pfn = s[hb + H_PFN]!;
    if (pfn > 0) {
      const fb = L.frameBase + pfn * F_SIZE;
      if (s[hb + H_REFS] !== 0) {
        if (s[fb + F_FLAGS] === 0) m.viol |= V_UAF;
        else exp[nf + pfn] = exp[nf + pfn]! + s[hb + H_REFS]!;
      }
      if (s[fb + F_MAP]! >= 2) m.events |= E_SHARED_EXTRA;
    }
    if (s[hb + H_KIND] !== HK_PIN) continue;
    if (m.anonExclusive && pfn > 0 && !(s[L.frame(pfn) + F_FLAGS]! & FL_EXCL) && !(s[hb + H_REPORTED]! & 2)) {
      s[hb + H_REPORTED] = s[hb + H_REPORTED]! | 2;
      m.viol |= V_BUG;
    }
    if (s[hb + H_LONG] !== 1) continue;
    const holder = s[hb + H_HOLDER]!;
    if (s[L.proc(holder) + P_STATUS] !== ST_ALIVE || s[hb + H_REPORTED]! & 1 || s[hb + H_BOUND] !== 1) continue;
    const pte = s[L.page(holder, s[hb + H_PAGE]!) + PG_PTE]!;
    const mapped = pte === 0 ? -1 : ptePfn(pte);
    if (mapped !== pfn) {
      s[hb + H_REPORTED] = s[hb + H_REPORTED]! | 1;
      m.viol |= V_INCOHERENT;
    }
  }
  for (let pfn = 1, b = L.frameBase + F_SIZE; pfn < nf; pfn++, b += F_SIZE) {
    if (s[b + F_FLAGS] === 0) continue;
    if (exp[nf + pfn] === 0 || s[b + F_REF] !== exp[nf + pfn] || s[b + F_MAP] !== exp[pfn]) m.viol |= V_ACCOUNTING;
  }
}

