// Device-exclusive grants (make_device_exclusive): the device takes pages exclusively, the CPU
// touching one must revoke the grant first, the device's atomics and reads go through it.

import { EBUSY, EFAULT, EOPNOTSUPP, NA, OK, OOM, VM_WRITE } from '../core/constants.js';
import { mmuSlot } from '../core/access.js';
import { handleMmFault } from '../core/fault.js';
import { slotPfn } from '../core/huge.js';
import { makeDeviceExclusive, type DeviceExclusiveResult } from '../core/devexcl.js';
import { hugetlbIn } from '../core/hugetlb.js';
import { handleVpn } from '../core/kernel.js';
import { pfnOfEntry } from '../check/pins.js';
import type { PageSel } from '../scenario/ast.js';
import { waitForMmapLock } from './scheduler.js';
import { recordsText } from './result.js';
import { needFeature, NotApplicable, type Proc, type RunState } from './state.js';
import { bypassesUffd, uffdBypass } from './uffd.js';

/** `P device exclusive SEL as H`. */
export function deviceExclusive(s: RunState, procName: string, sel: PageSel, name: string): void {
  needFeature(s, 'device-exclusive');
  const p = s.proc(procName);
  if (!p) return;
  waitForMmapLock(s, p, false, true); // the driver holds mmap_lock for read
  const [lo, hi] = s.range(p, sel);
  // 6.15 "mm/gup: reject FOLL_SPLIT_PMD with hugetlb VMAs": make_device_exclusive() on hugetlb fails; not modelled.
  if (hugetlbIn(p.mm, lo, hi)) throw new NotApplicable('device-exclusive entries on hugetlb pages are not modelled');
  const r = makeDeviceExclusive(s.k, p.mm, lo, hi);
  if (r.err === NA || r.handle === null) throw new NotApplicable('device-exclusive entries are not modelled for this profile');
  s.handles.set(name, { h: r.handle, proc: p.name });
  s.touchedOf().set(name, new Uint8Array(hi - lo));
  // make_device_exclusive() write-faults each page (FOLL_WRITE): the device may write it from now on.
  for (let v = lo; v < hi; v++) {
    if (r.handle.frames[v - lo]! > 0 && !r.handle.revoked![v - lo] && bypassesUffd(s, p.group, v)) uffdBypass(s, `${p.name} ${s.label(sel, sel.lo + (v - lo))}`, `the device's exclusive grant (${name})`, [p.name]);
  }
  if (!recordsText(s)) return;
  const held = [...r.handle.revoked!].filter((x) => x === 0).length;
  s.observe('gup', `device exclusive ${p.name} ${s.label(sel)}`, errName(r.err), null);
  s.record.summary = `the device takes ${p.name} ${s.label(sel)} exclusively as ${name}: ${held} of ${hi - lo} page(s) held` +
    (r.err === OK ? '' : ` (${failureText(s, sel, r)})`);
}

/** Errno names of makeDeviceExclusive()'s results. */
const ERRNO: Record<number, string> = { [OK]: 'ok', [EFAULT]: 'EFAULT', [EBUSY]: 'EBUSY', [EOPNOTSUPP]: 'EOPNOTSUPP', [OOM]: 'ENOMEM' };
function errName(err: number): string {
  return ERRNO[err] ?? `error ${err}`;
}

/** Why a grant holds fewer pages than asked, and the answer: the page that stopped it, or the pages left unconverted. */
function failureText(s: RunState, sel: PageSel, r: DeviceExclusiveResult): string {
  const n = r.handle!.frames.length;
  if (r.stoppedAt < 0) {
    const left = r.handle!.revoked!.filter((x) => x === 1).length;
    return `make_device_exclusive${s.profile.deviceExclusive === 'v6.15' ? '()' : '_range()'} left ${left} page(s) unconverted (NULL): EBUSY`;
  }
  const page = s.label(sel, sel.lo + r.stoppedAt);
  if (s.profile.deviceExclusive === 'v6.15') {
    return `make_device_exclusive() failed at ${page}${r.stopErr === EOPNOTSUPP ? ' (not an anonymous page)' : ' (GUP)'}, the driver stops there, the pages after it untouched: ${errName(r.stopErr)}`;
  }
  return r.stoppedAt === 0
    ? `get_user_pages_remote() failed at ${page}: make_device_exclusive_range() returns ${errName(r.stopErr)}`
    : `get_user_pages_remote() stopped at ${page} (${errName(r.stopErr)}): make_device_exclusive_range() returns ${r.stoppedAt} of ${n} pages, the rest untouched; the driver maps none of them: EBUSY`;
}

/** A CPU access by p at vpn reached frame pfn: grants on that page must have been revoked before it. */
export function touchGrants(s: RunState, p: Proc, vpn: number, pfn: number): void {
  for (const [name, lh] of s.handles) {
    if (lh.h.kind !== 'exclusive') continue;
    const holder = s.procs.get(lh.proc);
    if (holder?.group === p.group) {
      for (let i = 0; i < lh.h.frames.length; i++) if (handleVpn(lh.h, i) === vpn) s.touchedOf().get(name)![i] = 1;
    }
    // The CPU must never reach a page the device still holds exclusively.
    lh.h.frames.forEach((f, j) => {
      if (f === pfn && pfn > 0 && !lh.h.revoked![j]) {
        s.violation('exclusive', `${p.name} reached frame ${pfn} while the device holds it exclusively through ${name}[${j}]: the device was not notified`, [p.name], [pfn]);
      }
    });
  }
}

/** `device atomic H[i] VALUE`: the device writes through its grant, which must still hold the page. */
export function deviceAtomic(s: RunState, name: string, i: number, value: string, expect: 'revoked' | 'denied' | null): void {
  const hs = s.liveHandle(name);
  if (!hs) return;
  if (hs.h.kind !== 'exclusive') {
    s.record.summary = `${name} is not a device-exclusive grant: nothing happens`;
    return;
  }
  const p = s.procs.get(hs.proc)!;
  const vpn = handleVpn(hs.h, i);
  const pfn = hs.h.frames[i]!;
  // The driver mirrors the mm (mmu_interval_notifier on it): the device reaches the pages while
  // any thread of the process lives, not only the thread that asked for the grant.
  const alive = s.groupAlive(p.group);
  const vma = alive ? p.mm.findVma(vpn) : null;
  let result: 'ok' | 'revoked' | 'denied';
  if (vma === null || !(vma.flags & VM_WRITE)) result = 'denied';
  else if (hs.h.revoked![i] || pfn <= 0) result = 'revoked';
  else result = 'ok';
  const touched = s.grantTouched.get(name)![i] === 1;
  if (result === 'ok') {
    if (touched) {
      s.violation('exclusive', `the device's atomic through ${name}[${i}] went through although ${p.name} accessed the page since: the device was not notified`, [p.name], [pfn]);
    }
    const v = s.values.id(value);
    if (bypassesUffd(s, p.group, vpn)) uffdBypass(s, `${p.name} page ${i} of ${name}`, `the device's atomic through ${name}[${i}]`, [p.name], [pfn]);
    s.k.frames.setValue(pfn, v);
    s.ideal.write(p.group, vpn, v);
    s.atomicValues = new Set(s.atomicValues).add(v); // never changed in place: state copies share it
    if ((alive ? pfnOfEntry(s.k, p.mm, vpn) : -1) !== pfn) {
      s.violation('exclusive', `the device's atomic through ${name}[${i}] wrote frame ${pfn}, which ${p.name} no longer maps: the atomic is lost`, [p.name], [pfn]);
    }
  }
  const text = recordsText(s);
  if (text) s.observe('handle-read', `device atomic ${name}[${i}]`, result, expect ?? null);
  if (expect !== null && expect !== result) s.violation('expect', `the device's atomic through ${name}[${i}] ${result === 'ok' ? 'succeeded' : `was ${result}`}, expected ${expect}`, [p.name], pfn > 0 ? [pfn] : []);
  if (text) s.record.summary = result === 'ok'
    ? `the device's atomic writes ${value} into frame ${pfn} through ${name}[${i}]`
    : `the device's atomic through ${name}[${i}]: ${result}${result === 'revoked' ? ' (it was notified that it lost exclusive access)' : ' (the mapping is not writable)'}`;
}

/** A device read through a grant: the held page, or (revoked) the page the process maps now. */
export function grantRead(s: RunState, name: string, i: number, expect: string | null): void {
  const hs = s.liveHandle(name);
  if (!hs) return;
  const p = s.procs.get(hs.proc)!;
  const vpn = handleVpn(hs.h, i);
  // The grant's address space, not the thread that asked for it (deviceAtomic).
  const alive = s.groupAlive(p.group);
  let value: number;
  if (!hs.h.revoked![i] && hs.h.frames[i]! > 0) value = s.k.frames.value[hs.h.frames[i]!]!;
  else if (alive) {
    // The driver runs hmm_range_fault() under mmap_read_lock: a fork in progress ends first. A
    // present, readable PTE is taken as it is (hmm_vma_handle_pte: no fault, the accessed bit
    // left alone: the device's access is not the CPU's); anything else is faulted in for reading
    // (hmm_vma_fault: handle_mm_fault), then walked again and taken as it is: a PTE restored from
    // a device-exclusive entry stays old (restore_exclusive_pte's pte_mkold).
    waitForMmapLock(s, p, false, true);
    let slot = mmuSlot(s.k, p.mm, vpn, false);
    if (slot < 0 && handleMmFault(s.k, p.mm, vpn, 0) === OK) slot = mmuSlot(s.k, p.mm, vpn, false);
    value = slot >= 0 ? s.k.frames.value[slotPfn(s.k, slot, vpn)]! : 0;
  } else value = 0;
  const actual = s.values.name(value);
  const allowed = alive && s.ideal.access(p.group, vpn, false) === 'ok';
  const c = allowed ? s.ideal.checkRead(p.group, vpn, value) : null;
  const text = recordsText(s);
  if (text) s.observe('handle-read', `the device reads ${name}[${i}]`, actual, c === null ? null : s.values.name(c.allowed[0]!));
  if (c !== null && !c.ok) {
    s.violation(c.kind, `the device read ${actual} through ${name}[${i}], but ${p.name}'s page holds ${s.values.name(c.allowed[0]!)}`, [p.name]);
  }
  if (expect !== null && expect !== actual) s.violation('expect', `the device read ${actual} through ${name}[${i}], expected ${expect}`, [p.name]);
  if (text) s.record.summary = `the device reads ${name}[${i}]: ${actual}`;
}

/** Which pages of a grant the owner's CPU touched (for the explorer's state keys). */
export function grantTouchedOf(s: RunState, name: string): Uint8Array | undefined {
  return s.grantTouched.get(name);
}
