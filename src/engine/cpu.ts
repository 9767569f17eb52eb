// CPU loads and stores of a process (`P write SEL V`, `P read SEL`), checked against the ideal memory.

import { NA, OK, OOM, SIGBUS, SIGSEGV } from '../core/constants.js';
import { cpuAccess, mmuAllows } from '../core/access.js';
import type { PageSel } from '../scenario/ast.js';
import { touchGrants } from './grants.js';
import { raceWithFork, waitForMmapLock } from './scheduler.js';
import { recordsText } from './result.js';
import { NotApplicable, type RunState } from './state.js';
import { bypassesUffd, uffdBypass } from './uffd.js';
import { exitProc } from './mm-ops.js';
import type { Proc } from './state.js';

/**
 * VM_FAULT_SIGBUS of a hugetlb fault (no free huge page; a page the reservation owner took back):
 * the process is killed, all its threads; its address space is torn down as at exit.
 */
function killedBySigbus(s: RunState, p: Proc, what: 'read' | 'write', page: string, want: 'ok' | 'fault'): void {
  s.observe(what, `${p.name} ${page}`, 'fault', want);
  if (want === 'ok') s.violation('fault', `${p.name} ${what} of ${page}: SIGBUS (hugetlb: no huge page could be had for it), the process is killed`, [p.name]);
  for (const q of s.procs.values()) if (q.alive && q.group === p.group) exitProc(s, q);
  s.record.summary = `${p.name} ${what}s ${page}: SIGBUS, ${p.group} is killed (hugetlb)`;
}

export type ReadExpect = { kind: 'value'; value: string } | { kind: 'fault' } | null;

export function cpuWrite(s: RunState, procName: string, sel: PageSel, value: string): void {
  const p = s.proc(procName);
  if (!p) return;
  const [lo, hi] = s.range(p, sel);
  const v = s.values.id(value);
  let faults = 0;
  for (let vpn = lo; vpn < hi; vpn++) {
    const want = s.ideal.access(p.group, vpn, true);
    if (!mmuAllows(s.k, p.mm, vpn, true)) waitForMmapLock(s, p, false);
    const r = cpuAccess(s.k, p.mm, vpn, true, v);
    faults += r.faults;
    if (r.err === NA) throw new NotApplicable('a fault on a non-present PTE kind that is not modelled yet');
    if (r.err === OK) {
      touchGrants(s, p, vpn, r.pfn);
      if (bypassesUffd(s, p.group, vpn)) uffdBypass(s, `${p.name} ${s.label(sel, sel.lo + (vpn - lo))}`, `${p.name}'s write`, [p.name], [r.pfn]);
      if (want === 'fault') s.violation('fault', `${p.name} wrote ${s.label(sel, sel.lo + (vpn - lo))} although the mapping does not allow it`, [p.name], [r.pfn]);
      else {
        s.ideal.write(p.group, vpn, v);
        raceWithFork(s, p.group, vpn, v);
      }
      continue;
    }
    const page = s.label(sel, sel.lo + (vpn - lo));
    if (r.err === SIGBUS) {
      killedBySigbus(s, p, 'write', page, want);
      return;
    }
    const text = recordsText(s);
    if (r.err === OOM) {
      if (text) s.observe('write', `${p.name} ${page}`, 'oom', want);
      s.violation('fault', `${p.name} write to ${page}: out of memory (config.frames); the kernel would OOM-kill`, [p.name]);
      if (text) s.record.summary = `${p.name} writes ${value} to ${s.label(sel)}: out of memory at ${page}`;
      return;
    }
    // SIGSEGV
    if (text) s.observe('write', `${p.name} ${page}`, 'fault', want);
    if (want === 'ok') s.violation('fault', `${p.name} write to ${page} faulted (SIGSEGV) though the mapping allows it`, [p.name]);
    if (text) s.record.summary = `${p.name} writes ${value} to ${s.label(sel)}: SIGSEGV at ${page}` + (want === 'fault' ? ' (as it must)' : '');
    return;
  }
  if (!recordsText(s)) return;
  s.observe('write', `${p.name} ${s.label(sel)}`, 'ok', 'ok');
  s.record.summary = `${p.name} writes ${value} to ${s.label(sel)}` + (faults ? ` (${faults} fault${faults > 1 ? 's' : ''})` : ' (no fault)');
}

export function cpuRead(s: RunState, procName: string, sel: PageSel, expect: ReadExpect): void {
  const p = s.proc(procName);
  if (!p) return;
  const vpn = s.range(p, sel)[0];
  const page = s.label(sel, sel.lo);
  const want = s.ideal.access(p.group, vpn, false);
  if (!mmuAllows(s.k, p.mm, vpn, false)) waitForMmapLock(s, p, false);
  const r = cpuAccess(s.k, p.mm, vpn, false, 0);
  if (r.err === NA) throw new NotApplicable('a fault on a non-present PTE kind that is not modelled yet');
  if (r.err === SIGBUS) {
    killedBySigbus(s, p, 'read', page, want);
    if (expect?.kind === 'value') s.violation('expect', `${p.name} read of ${page} faulted (SIGBUS), expected ${expect.value}`, [p.name]);
    return;
  }
  const text = recordsText(s);
  if (r.err !== OK) {
    const what = r.err === SIGSEGV ? 'SIGSEGV' : 'out of memory';
    if (text) s.observe('read', `${p.name} ${page}`, 'fault', want === 'fault' ? 'fault' : s.values.name(s.ideal.read(p.group, vpn)));
    if (want === 'ok') s.violation('fault', `${p.name} read of ${page} faulted (${what}) though the mapping allows it`, [p.name]);
    if (expect?.kind === 'value') s.violation('expect', `${p.name} read of ${page} faulted, expected ${expect.value}`, [p.name]);
    if (text) s.record.summary = `${p.name} reads ${page}: ${what}` + (want === 'fault' ? ' (as it must)' : '');
    return;
  }
  const actual = s.values.name(r.value);
  touchGrants(s, p, vpn, r.pfn);
  if (want === 'fault') {
    if (text) s.observe('read', `${p.name} ${page}`, actual, 'fault');
    s.violation('fault', `${p.name} read ${page} although the mapping does not allow it`, [p.name], [r.pfn]);
  } else {
    const c = s.ideal.checkRead(p.group, vpn, r.value, s.atomicValues);
    const ideal = s.values.name(c.allowed[0]!);
    if (text) s.observe('read', `${p.name} ${page}`, actual, ideal);
    if (!c.ok) {
      s.violation(c.kind, `${p.name} read ${actual} from ${page}, but its memory holds ${ideal}` +
        (c.kind === 'leak' ? ` (${actual} only ever belonged to another process)` : ' (a write did not reach it)'), [p.name], [r.pfn]);
    }
  }
  if (expect?.kind === 'fault') s.violation('expect', `${p.name} read of ${page} returned ${actual}, expected a fault`, [p.name], [r.pfn]);
  if (expect?.kind === 'value' && expect.value !== actual) {
    s.violation('expect', `${p.name} read ${actual} from ${page}, expected ${expect.value}`, [p.name], [r.pfn]);
  }
  if (text) s.record.summary = `${p.name} reads ${page}: ${actual} (frame ${r.pfn}${r.pfn === 0 ? ', the zero page' : ''}${r.faults ? ', after a fault' : ''})`;
}
