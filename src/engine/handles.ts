// GUP handles: taking references and pins (`pin`, `gup`, `vmsplice`), reading and writing through
// them (by a process or the device), releasing them (`unpin`, `put`).

import { NA, OK } from '../core/constants.js';
import { getUserPages, type GupRequest, releaseHandle } from '../core/gup.js';
import { handleVpn } from '../core/kernel.js';
import type { PageSel } from '../scenario/ast.js';
import { grantRead } from './grants.js';
import { raceWithFork, waitForMmapLock } from './scheduler.js';
import { recordsText } from './result.js';
import { NotApplicable, type RunState } from './state.js';
import { bypassesUffd, gupIdealVerdict, uffdBypass } from './uffd.js';

/** `P pin|gup|vmsplice SEL as H`, in one step. */
export function gup(s: RunState, procName: string, sel: PageSel, name: string, req: GupRequest): void {
  const p = s.proc(procName);
  if (!p) return;
  waitForMmapLock(s, p, false);
  const [lo, hi] = s.range(p, sel);
  const r = getUserPages(s.k, p.mm, lo, hi, req);
  if (r.err === NA) throw new NotApplicable('GUP met a non-present PTE kind that is not modelled yet');
  // A page the monitor protected: the EFAULT of a userfault this GUP could not wait for is allowed.
  const verdict = gupIdealVerdict(s, p.group, lo, hi - lo, req.write, r.err !== OK);
  const idealOk = verdict === 'ok';
  const refused = verdict === 'uffd';
  const what = req.kind === 'pin' ? 'pins' : req.kind === 'pipe' ? 'vmsplices' : 'takes references on';
  const text = recordsText(s);
  if (text) s.observe('gup', `${p.name} ${what} ${s.label(sel)}`, r.err === OK ? 'ok' : 'EFAULT', idealOk ? 'ok' : 'EFAULT');
  if (r.err !== OK || r.handle === null) {
    if (idealOk) s.violation('fault', `${p.name} ${what} ${s.label(sel)}: GUP failed (EFAULT) though the mapping allows it`, [p.name]);
    if (text) s.record.summary = `${p.name} ${what} ${s.label(sel)}: EFAULT, no handle ${name}` + (refused ? ' (a write to a page the userfaultfd monitor protected, which this GUP cannot wait for: no FAULT_FLAG_ALLOW_RETRY)' : idealOk ? '' : ' (as it must)');
    return;
  }
  if (!idealOk) s.violation('fault', `${p.name} ${what} ${s.label(sel)}: GUP succeeded where the mapping forbids the access`, [p.name]);
  // A FOLL_WRITE GUP grants write access: on a protected page it must have gone to the monitor.
  if (req.write) for (let v = lo; v < hi; v++) if (bypassesUffd(s, p.group, v)) uffdBypass(s, `${p.name} ${s.label(sel, sel.lo + (v - lo))}`, `a FOLL_WRITE GUP (${name})`, [p.name]);
  s.handles.set(name, { h: r.handle, proc: p.name });
  s.ideal.takeHandle(name, p.group, lo, hi - lo, req.pin && req.longterm);
  if (text) {
    const frames = [...r.handle.frames].map((f) => (f === 0 ? 'zero page' : `frame ${f}`));
    s.record.summary = `${p.name} ${what} ${s.label(sel)} as ${name} (${frames.slice(0, 4).join(', ')}${frames.length > 4 ? ', …' : ''})`;
  }
}

/** A read through a handle: by a process (`P read H[K]`) or by the device (reader null: the holder). */
export function handleRead(s: RunState, name: string, i: number, expect: string | null, reader: string | null): void {
  const hs = s.liveHandle(name);
  if (!hs) return;
  const pfn = hs.h.frames[i]!;
  const value = pfn <= 0 ? 0 : s.k.frames.value[pfn]!;
  const observer = reader ?? hs.proc;
  const c = s.ideal.checkHandleRead(name, i, value, s.procs.get(observer)?.group ?? observer);
  const actual = s.values.name(value);
  const who = reader === null ? 'the device' : reader;
  const text = recordsText(s);
  const allowed = text || !c.ok ? c.allowed.map((v) => s.values.name(v)).join(' or ') : '';
  if (text) s.observe('handle-read', `${who} reads ${name}[${i}]`, actual, allowed);
  if (!c.ok) {
    const why = c.kind === 'leak' ? `${actual} only ever belonged to another process`
      : c.kind === 'pin-incoherent' ? `the pin no longer names ${hs.proc}'s page` : 'a write did not reach it';
    s.violation(c.kind, `${who} read ${actual} through ${name}[${i}], but it must see ${allowed} (${why})`, [observer], pfn > 0 ? [pfn] : []);
  }
  if (expect !== null && expect !== actual) s.violation('expect', `${who} read ${actual} through ${name}[${i}], expected ${expect}`, [observer], pfn > 0 ? [pfn] : []);
  if (text) s.record.summary = `${who} reads ${name}[${i}]: ${actual} (${pfn <= 0 ? 'the zero page' : `frame ${pfn}`})`;
}

/** `device read H[i]`: through a grant, or through a GUP handle. */
export function deviceRead(s: RunState, name: string, i: number, expect: string | null): void {
  if (s.handles.get(name)?.h.kind === 'exclusive') return grantRead(s, name, i, expect);
  return handleRead(s, name, i, expect, null);
}

/** `device write H[i] V`. */
export function deviceWrite(s: RunState, name: string, i: number, value: string): void {
  const hs = s.liveHandle(name);
  if (!hs) return;
  const pfn = hs.h.frames[i]!;
  if (!hs.h.write || pfn <= 0) {
    if (recordsText(s)) s.record.summary = `the device cannot write through ${name}[${i}]: ${pfn <= 0 ? 'it holds the zero page' : 'a read-only handle gives no write access'}; nothing written`;
    return;
  }
  const v = s.values.id(value);
  s.k.frames.setValue(pfn, v);
  s.ideal.handleWrite(name, i, v);
  const holder = s.procs.get(hs.proc);
  if (holder) raceWithFork(s, holder.group, handleVpn(hs.h, i), v);
  if (recordsText(s)) s.record.summary = `the device writes ${value} through ${name}[${i}] into frame ${pfn}`;
}

/** `P unpin H` / `P put H`: unpin_user_pages() or put_page() on every page of the handle. */
export function release(s: RunState, proc: string, name: string, unpin: boolean): void {
  const hs = s.handles.get(name);
  if (!hs) {
    s.record.summary = `handle ${name} does not exist (taking it failed): step skipped`;
    return;
  }
  const k = s.k;
  const before = k.frames.used;
  releaseHandle(k, hs.h);
  s.ideal.releaseHandle(name);
  s.handles.delete(name);
  s.pins.forget(name, hs.h.frames.length);
  if (!recordsText(s)) return;
  const what = unpin ? 'unpin_user_pages' : hs.h.kind === 'pipe' ? 'the pipe is closed, its buffers put' : 'put_page';
  s.record.summary = `${proc} releases ${name}: ${what}` + (before > k.frames.used ? `; ${before - k.frames.used} frame(s) freed` : '');
}
