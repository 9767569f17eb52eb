// Text rendering of runs: a header with the settings, one line per step (what happened and why),
// the kernel events under it, the counters when asked, and the verdict.

import type { Profile } from '../core/profile.js';
import type { FrameState, PteChange, PteState, RunResult, StepRecord } from '../engine/result.js';
import { describeEvent, isKeyEvent } from './describe.js';

export interface ReportOptions {
  trace: boolean;
  stats: boolean;
  /** Printed under the header with --stats (reference figures live there). */
  description?: string | null;
}

/** Counters worth a line when a step changes them (`--stats`). */
const WATCHED = ['PageTables_kB', 'AnonPages_kB', 'frames_used', 'cow_copies', 'pt_copies'];

export function renderRun(r: RunResult, profile: Profile, config: string, opts: ReportOptions): string {
  const out: string[] = [];
  out.push(`${r.file}: ${r.scenario}`);
  out.push(`  kernel ${profile.name}: ${profile.summary}`);
  out.push(`  config ${config}`);
  if (opts.stats && opts.description) for (const l of wrap(opts.description, 92)) out.push(`  | ${l}`);
  const width = Math.min(44, Math.max(...r.steps.map((s) => s.text.length), 10));
  let prev: Record<string, number> = {};
  for (const s of r.steps) {
    out.push(...renderStep(s, width, opts));
    if (opts.stats && s.counters) {
      const changed = WATCHED.filter((n) => s.counters![n] !== undefined && s.counters![n] !== (prev[n] ?? 0))
        .map((n) => `${n} ${prev[n] ?? 0} -> ${s.counters![n]} (${s.counters![n]! - (prev[n] ?? 0) >= 0 ? '+' : ''}${s.counters![n]! - (prev[n] ?? 0)})`);
      if (changed.length) out.push(`${' '.repeat(9)}  ${changed.join(', ')}`);
      prev = s.counters;
    }
  }
  if (opts.stats) {
    out.push('  counters at the last step:');
    out.push('    ' + Object.entries(r.stats).map(([n, v]) => `${n}=${v}`).join('  '));
  }
  const got = r.status === 'n/a' ? `n/a (${r.na?.reason})` : r.status === 'ok' ? 'ok' : `${r.violations.length} violation(s): ${[...new Set(r.violations.map((v) => v.kind))].join(', ')}`;
  out.push(`  result: ${got}`);
  out.push(`  verdict: ${r.verdict === 'pass' ? 'PASS' : 'FAIL'} (${r.verdictReason})`);
  if (r.verdict === 'fail') out.push(`  to reproduce: npx cowlab run ${r.file} --kernel ${profile.name} --trace`);
  return out.join('\n');
}

function renderStep(s: StepRecord, width: number, opts: ReportOptions): string[] {
  const out: string[] = [];
  const where = s.line > 0 ? `L${s.line}` : '';
  const text = s.text.length > width ? s.text.slice(0, width - 1) + '…' : s.text.padEnd(width);
  out.push(`  ${where.padStart(5)}  ${text}  ${s.summary}`);
  const events = opts.trace ? s.events : s.events.filter(isKeyEvent);
  const shown = opts.trace ? events : events.slice(0, 4);
  for (const e of shown) out.push(`${' '.repeat(9)}· ${describeEvent(e)}`);
  const hidden = events.length - shown.length + s.eventsDropped;
  if (hidden > 0) out.push(`${' '.repeat(9)}· … ${hidden} more event(s)${opts.trace ? '' : ' (--trace shows them)'}`);
  if (opts.trace && s.changes) out.push(...renderChanges(s));
  else if (opts.trace) {
    for (const p of s.ptes) {
      out.push(`${' '.repeat(9)}  pte   ${p.proc} ${p.page}: ${p.pfn === null ? 'none' : `frame ${p.pfn}`} [${p.bits.join(' ')}]`);
    }
    for (const f of s.frames) {
      out.push(`${' '.repeat(9)}  frame ${f.pfn}: refcount ${f.refcount} mapcount ${f.mapcount} [${f.flags.join(' ')}] value ${f.value}`);
    }
  }
  // At most three lines per violation kind and step; the rest counted.
  const shownPerKind = new Map<string, number>();
  for (const v of s.violations) {
    const n = (shownPerKind.get(v.kind) ?? 0) + 1;
    shownPerKind.set(v.kind, n);
    if (n <= 3) out.push(`${' '.repeat(9)}✗ ${v.kind}: ${v.message}`);
  }
  for (const [kind, n] of shownPerKind) if (n > 3) out.push(`${' '.repeat(9)}✗ … ${n - 3} more ${kind} violation(s) at this step (--json lists them)`);
  return out;
}

/**
 * What the step changed, page by page: each PTE before → after (every process), then the
 * frames those PTEs name; the other frames; the rest counted by kind. Frames the step's events
 * name but did not change are shown as they are.
 */
function renderChanges(s: StepRecord): string[] {
  const c = s.changes!;
  const pad = ' '.repeat(11);
  const out: string[] = [];
  const pteState = (st: PteState): string => (st.target === 'none' ? 'none' : `${st.target} [${st.bits.join(' ')}]`);
  const frameState = (st: FrameState): string => `refcount ${st.refcount} mapcount ${st.mapcount} [${st.flags.join(' ')}] value ${st.value}`;
  const frames = new Map(c.frames.map((f) => [f.pfn, f]));
  const shown = new Set<number>();
  const frameLine = (pfn: number): void => {
    const f = frames.get(pfn);
    if (!f || shown.has(pfn)) return;
    shown.add(pfn);
    out.push(`${pad}frame ${pfn}: ${f.change}`);
  };
  let i = 0;
  while (i < c.ptes.length) {
    const vpn = c.ptes[i]!.vpn;
    const group: PteChange[] = [];
    for (; i < c.ptes.length && c.ptes[i]!.vpn === vpn; i++) group.push(c.ptes[i]!);
    for (const p of group) {
      const arrow = p.before.target === 'none' ? pteState(p.after) : p.after.target === 'none' ? `${pteState(p.before)} → none`
        : p.before.target === p.after.target ? `${pteState(p.before)} → [${p.after.bits.join(' ')}]` : `${pteState(p.before)} → ${pteState(p.after)}`;
      out.push(`${pad}pte   ${p.proc} ${p.page}: ${p.before.target === 'none' ? `none → ${arrow}` : arrow}: ${p.change}`);
    }
    for (const p of group) {
      if (p.before.pfn !== null) frameLine(p.before.pfn);
      if (p.after.pfn !== null) frameLine(p.after.pfn);
    }
  }
  for (const f of c.frames) frameLine(f.pfn);
  const listed = c.ptes.length + c.frames.length;
  const rest = c.ptesChanged + c.framesChanged - listed;
  if (rest > 0) {
    const pages = new Set(c.ptes.map((p) => p.vpn)).size;
    out.push(`${pad}… ${rest} more change(s) past the first ${pages} page(s) (${c.ptesChanged} PTE(s) and ${c.framesChanged} frame(s) changed in all):`);
    for (const m of c.more.slice(0, 6)) out.push(`${pad}    ${m.count} × ${m.what}`);
    if (c.more.length > 6) out.push(`${pad}    … ${c.more.slice(6).reduce((n, m) => n + m.count, 0)} other change(s) (--json lists the counts)`);
  }
  // What the events name and the step left alone (a read's frame, a pin's PTE): as it is.
  const changedPtes = new Set(c.ptes.map((p) => `${p.proc}:${p.vpn}`));
  for (const p of s.ptes) {
    if (changedPtes.has(`${p.proc}:${p.vpn}`) || rest > 0) continue;
    out.push(`${pad}pte   ${p.proc} ${p.page}: ${p.pfn === null ? 'none' : `frame ${p.pfn}`} [${p.bits.join(' ')}] (unchanged)`);
  }
  for (const f of s.frames) {
    if (frames.has(f.pfn) || rest > 0) continue;
    out.push(`${pad}frame ${f.pfn}: ${frameState(f)} (unchanged)`);
  }
  return out;
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + w.length > width) {
      out.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(line);
  return out;
}
