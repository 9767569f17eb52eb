// Sentences for the page: what a kernel event did and why, what a violation means, where two
// kernels part ways. Pure (no DOM), tested under node:test.

import type { Violation } from '../engine/result.js';
import { declOf, keyNoteOf } from '../ops/index.js';
import { isHugeZeroFault } from '../core/events.js';
import type { EventView, FrameView, StepView, Trace } from './trace.js';

const frame = (pfn: number): string => (pfn === 0 ? 'the zero page' : `frame ${pfn}`);

/** One sentence for a kernel event, naming the kernel function and the rule that decided. */
export function explainEvent(e: EventView): string {
  const who = e.proc ?? '';
  const at = e.page ? ` on ${e.page}` : '';
  switch (e.type) {
    case 'anon-fault':
      return `${who} write fault${at}: nothing was mapped there, so do_anonymous_page allocated a zeroed ${frame(e.pfn)} and mapped it writable`;
    case 'zero-fault':
      if (isHugeZeroFault(e.why)) return `${who} read fault${at}: nothing was mapped in this THP-eligible 2 MiB range, so do_huge_pmd_anonymous_page mapped the huge zero page read-only with one PMD (no frame is allocated until a write)`;
      return `${who} read fault${at}: nothing was mapped there, so do_anonymous_page mapped the shared zero page read-only (no frame is allocated until a write)`;
    case 'shared-fault':
      return `${who} fault${at} on shared memory: mapped ${frame(e.pfn)} (${e.why})`;
    case 'wp-copy':
      return e.pfn === 0
        ? `${who} write fault${at}: do_wp_page gave it a new zeroed frame ${e.pfn2} in place of the zero page`
        : `${who} ${e.why.startsWith('unshare') ? 'unshare' : 'write'} fault${at}: do_wp_page copied frame ${e.pfn} to frame ${e.pfn2} because ${e.why.replace(/^unshare: /, '')}`;
    case 'wp-reuse':
      return `${who} write fault${at}: do_wp_page reused frame ${e.pfn} in place (made the PTE writable, no copy) because ${e.why}`;
    case 'wp-shared':
      return `${who} write fault${at}: shared mapping, so do_wp_page made frame ${e.pfn} writable in place`;
    case 'early-cow':
      return `fork: copy_present_page gave ${e.child ?? 'the child'} its own copy of frame ${e.pfn} at once (frame ${e.pfn2}) because it is ${e.why}`;
    case 'fork': {
      const early = /early COW copies: (\d+)/.exec(e.why);
      const tail = early && Number(early[1]) > 0
        ? 'pages it did not copy are now shared by both, write-protected in both, until one of them writes'
        : 'private pages are now shared by both, write-protected in both, until one of them writes';
      return `${who} forks ${e.child ?? 'a child'}: ${e.why}; ${tail}`;
    }
    case 'uffd-fault':
      return `${who} write fault${at}: the page is write-protected by userfaultfd, so handle_userfault hands it to the monitor, which un-protects it; the write is retried`;
    case 'segv':
      return `${who} fault${at}: SIGSEGV because ${e.why}`;
    case 'oom':
      return `${who} out of memory${at}: ${e.why}`;
    case 'free':
      return `${frame(e.pfn)} freed: its ${e.why}`;
    case 'zap':
      return `${who ? who + ' ' : ''}${e.why.replace(/^exit_mmap:/, 'exit_mmap (process exit):').replace(/^munmap:/, 'munmap (zap_pte_range):')}`;
    case 'gup': {
      const pin = e.why.includes('pin (FOLL_PIN');
      return `${who} ${pin ? 'pin_user_pages' : 'get_user_pages'}${at}${e.pfn >= 0 ? ` took ${frame(e.pfn)}` : ''}: ${e.why}`;
    }
    case 'mprotect':
      return `${who} ${e.why}`;
    case 'bug':
      return `KERNEL BUG: ${e.why}`;
    case 'note': {
      // A note an operation declares as what its step did (src/ops, `keyNote`) has its own sentence.
      const n = keyNoteOf(e.why);
      if (n) return n.explain(who, e.why.slice(n.prefix.length));
      return `${who ? who + ' ' : ''}${e.why}`;
    }
    default:
      return `${who ? who + ' ' : ''}${e.why}`;
  }
}

/** What each violation kind means, in one sentence (the spec's table, for a reader new to it). */
export const VIOLATION_MEANING: Record<string, string> = {
  leak: 'a process (or a handle it holds) saw data that only ever belonged to another process',
  'lost-write': 'a read returned an older value: a write (by the CPU or the device) did not reach the page it must',
  'pin-incoherent': "a longterm pin and its owner's mapping no longer name the same page, though the owner never unmapped it: the device and the process now work on different copies",
  expect: 'an `expect` line of the scenario did not hold',
  accounting: 'refcount, mapcount, pin count, RSS or page-table bytes disagree with what maps and holds the frame',
  'frame-leak': 'frames are still in use after every process exited and every handle was released',
  'use-after-free': 'a freed frame is still mapped or referenced',
  'kernel-bug': 'a BUG_ON / VM_BUG_ON / WARN of the modelled kernel fired',
  exclusive: 'the CPU reached a device-exclusive page without the device being told, or a device atomic was lost',
  fault: 'a fault happened that the ideal semantics does not have, or one is missing',
};

export function explainViolation(v: Violation): string {
  const meaning = VIOLATION_MEANING[v.kind];
  return meaning ? `${v.message}. ${capitalize(meaning)}.` : v.message;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** The events worth a sentence under a step (the others are listed in the event list). */
export const KEY_EVENTS = new Set(['anon-fault', 'zero-fault', 'shared-fault', 'wp-reuse', 'wp-copy', 'wp-shared', 'early-cow', 'segv', 'oom', 'bug', 'gup', 'fork', 'uffd-fault']);

/** The step's sentence: the engine's summary, then why (its first decisive kernel event). */
export function stepSentence(s: StepView): { what: string; why: string | null } {
  const key = s.events.find((e) => KEY_EVENTS.has(e.type) && e.type !== 'fork') ?? s.events.find((e) => KEY_EVENTS.has(e.type));
  if (key) return { what: s.record.summary, why: explainEvent(key) };
  // Paths without a dedicated event type (swap-in, KSM, device-exclusive) say why in a note.
  const note = s.events.find((e) => e.type === 'note' && e.page !== null);
  if (note) return { what: s.record.summary, why: explainEvent(note) };
  // Nothing happened in the kernel: the operation's declaration may say why (src/ops, `explain`).
  const st = s.step;
  const why = s.events.length === 0 && st ? declOf(st.op).explain?.(st, s.record.summary) ?? null : null;
  if (why !== null) return { what: s.record.summary, why };
  return { what: s.record.summary, why: null };
}

/** Where the refcount of a frame comes from: `1025 = 1 mapping + 1024 pin mr`. */
export function refBreakdown(f: FrameView): string {
  if (f.pfn === 0) return 'the shared zero page: never counted';
  if (f.refs.length === 0) return `${f.refcount}`;
  const parts = f.refs.map((r) => {
    switch (r.kind) {
      case 'mapping': return `${r.count} mapping${r.count === 1 ? '' : 's'}`;
      case 'pin': return `${r.count} pin ${r.name ?? ''}`.trim();
      case 'gup': return `${r.count} ref ${r.name ?? ''}`.trim();
      case 'pipe': return `${r.count} pipe buffer${r.name ? ` of ${r.name}` : ''}`;
      case 'other': return `${r.count} other (a GUP still in progress, page or swap cache)`;
      default: return `${r.count} ${r.kind} ${r.name ?? ''}`.trim();
    }
  });
  return `${f.refcount} = ${parts.join(' + ')}`;
}

/** What makes two runs of the same step differ: the decisive events and what was observed. */
function fingerprint(s: StepView | undefined): string {
  if (!s) return '(none)';
  const ev = s.events.filter((e) => KEY_EVENTS.has(e.type) || e.type === 'free').map((e) => e.type);
  const obs = s.record.observations.map((o) => `${o.what}=${o.actual}`);
  const vio = s.record.violations.map((v) => v.kind);
  return JSON.stringify([ev, obs, vio, s.record.summary.startsWith('n/a')]);
}

export interface Divergence {
  /** Index of the first step where the two runs differ. */
  step: number;
  /** The sentence for each side. */
  a: string;
  b: string;
}

/** The first step where two runs of one scenario part ways (decisive events, observations, violations). */
export function firstDivergence(a: Trace, b: Trace): Divergence | null {
  const n = Math.max(a.steps.length, b.steps.length);
  for (let i = 0; i < n; i++) {
    const sa = a.steps[i];
    const sb = b.steps[i];
    if (fingerprint(sa) === fingerprint(sb)) continue;
    const say = (s: StepView | undefined, t: Trace): string => {
      if (!s) return `${t.profile.name} stopped before this step`;
      const { what, why } = stepSentence(s);
      return why ?? what;
    };
    return { step: i, a: say(sa, a), b: say(sb, b) };
  }
  return null;
}

/** Steps whose runs differ between two profiles (for the timeline marks). */
export function differingSteps(a: Trace, b: Trace): Set<number> {
  const out = new Set<number>();
  const n = Math.max(a.steps.length, b.steps.length);
  for (let i = 0; i < n; i++) if (fingerprint(a.steps[i]) !== fingerprint(b.steps[i])) out.add(i);
  return out;
}

/** The verdict of a run as a short label and a sentence. */
export function verdictLine(t: Trace): { label: string; tone: 'ok' | 'bad' | 'na'; text: string } {
  const r = t.result;
  if (r.status === 'n/a') return { label: 'n/a', tone: 'na', text: `not applicable: ${r.na?.reason ?? ''}` };
  const kinds = [...new Set(r.violations.map((v) => v.kind))];
  const expected = r.expected === null ? 'no outcome stated' : r.verdict === 'pass' ? 'as the scenario expects' : 'NOT as the scenario expects';
  if (kinds.length === 0) return { label: 'ok', tone: 'ok', text: `no violation (${expected})` };
  return { label: kinds.join(', '), tone: 'bad', text: `${r.violations.length} violation${r.violations.length === 1 ? '' : 's'}: ${kinds.join(', ')} (${expected})` };
}
