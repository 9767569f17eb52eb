// `cowlab compare`: every scenario on every profile; a matrix of verdicts, with the cells that
// contradict the file's `outcomes` marked.

import type { Profile } from '../../core/profile.js';
import { RESULT_FORMAT_VERSION, type RunResult } from '../../engine/result.js';
import { runScenario } from '../../engine/run.js';
import { withOverrides, ProfileError } from '../../profiles/resolve.js';
import { parseCommandArgs } from '../args.js';
import { EXIT_FAIL, EXIT_INTERNAL, EXIT_OK, UsageError } from '../errors.js';
import type { Scenario } from '../../scenario/index.js';
import { COMPARE_HELP } from '../help.js';
import type { Io } from '../io.js';
import { expandPaths, loadScenarios } from '../load.js';
import { buildRegistry } from '../registry.js';

const SHORT: Record<string, string> = {
  leak: 'leak', 'lost-write': 'lost', 'pin-incoherent': 'pin', expect: 'exp', accounting: 'acct',
  'frame-leak': 'fleak', 'use-after-free': 'uaf', 'kernel-bug': 'bug', exclusive: 'excl', fault: 'fault',
};

export interface Cell {
  /** 'error': the model threw (a bug in cowlab); the other cells go on. */
  status: RunResult['status'] | 'error';
  kinds: string[];
  /** What outcomes says, as text, or null when not judged. */
  expected: string | null;
  /** pass / fail against outcomes; null when outcomes does not name this profile. */
  verdict: 'pass' | 'fail' | null;
  reason: string;
}

export function cellText(c: Cell): string {
  if (c.status === 'error') return 'ERROR';
  const base = c.status === 'n/a' ? 'n/a' : c.status === 'ok' ? 'ok' : c.kinds.map((k) => SHORT[k] ?? k).join('+');
  return c.verdict === 'fail' ? `${base}!` : base;
}

export function compareCommand(argv: string[], io: Io): number {
  const { values, positionals } = parseCommandArgs(argv, {
    kernels: { type: 'string' },
    set: { type: 'string', multiple: true },
    profiles: { type: 'string', multiple: true },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, 'compare');
  if (values.help) {
    io.out(COMPARE_HELP);
    return EXIT_OK;
  }
  if (positionals.length === 0) throw new UsageError('cowlab compare: no scenario given (try: npx cowlab compare scenarios/seeds)');
  const registry = buildRegistry((values.profiles ?? []) as string[]);
  const names = typeof values.kernels === 'string'
    ? values.kernels.split(',').map((s) => s.trim()).filter(Boolean)
    : registry.names();
  for (const n of names) if (!registry.has(n)) throw new UsageError(`cowlab compare: --kernels: unknown profile '${n}' (known: ${registry.names().join(', ')})`);
  let profiles: Profile[];
  try {
    profiles = names.map((n) => withOverrides(registry.get(n), (values.set ?? []) as string[]));
  } catch (e) {
    if (e instanceof ProfileError) throw new UsageError(`cowlab compare: --set: ${e.message}`);
    throw e;
  }
  const scenarios = loadScenarios(expandPaths(positionals), registry);
  const rows: { file: string; name: string; cells: Cell[] }[] = [];
  for (const sc of scenarios) {
    const cells = profiles.map((p, i) => runCell(sc, { ...p, name: names[i]! }));
    rows.push({ file: sc.file, name: sc.name, cells });
  }
  const contradictions = rows.flatMap((r) => r.cells.map((c, i) => ({ r, c, p: profiles[i]! })).filter((x) => x.c.verdict === 'fail' && x.c.status !== 'error'));
  const errors = rows.flatMap((r) => r.cells.map((c, i) => ({ r, c, p: profiles[i]! })).filter((x) => x.c.status === 'error'));
  if (values.json) {
    io.out(JSON.stringify({
      format: RESULT_FORMAT_VERSION, command: 'compare', profiles: profiles.map((p) => p.name),
      scenarios: rows.map((r) => ({ file: r.file, name: r.name, cells: Object.fromEntries(r.cells.map((c, i) => [profiles[i]!.name, c])) })),
      contradictions: contradictions.length,
      errors: errors.length,
    }, null, 2));
  } else {
    io.out(renderMatrix(rows, profiles.map((p) => p.name)));
    if (contradictions.length) {
      io.out('\ncontradicted cells (the model disagrees with the file\'s outcomes):');
      for (const x of contradictions) io.out(`  ${x.r.file} on ${x.p.name}: ${x.c.reason}`);
    } else {
      io.out('\nno cell contradicts its outcomes.');
    }
    if (errors.length) {
      io.out('\ncells where cowlab failed (an internal error: a bug in cowlab, please report it):');
      for (const x of errors) io.out(`  ${x.r.file} on ${x.p.name}: ${x.c.reason}`);
    }
  }
  return errors.length ? EXIT_INTERNAL : contradictions.length ? EXIT_FAIL : EXIT_OK;
}

/** One cell: the scenario on one profile. An internal error becomes an 'error' cell, so one file cannot cost the whole table. */
export function runCell(sc: Scenario, profile: Profile, run: typeof runScenario = runScenario): Cell {
  let r: RunResult;
  try {
    r = run(sc, profile, { trace: false, maxEventsPerStep: 0 });
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return { status: 'error', kinds: [], expected: null, verdict: 'fail', reason: `internal error: ${why.split('\n')[0]}` };
  }
  const kinds = [...new Set(r.violations.map((v) => v.kind))];
  const judged = r.expected !== null;
  return {
    status: r.status, kinds,
    expected: r.expected === null ? null : r.expected.kind === 'violations' ? r.expected.kinds.join(', ') : r.expected.kind,
    verdict: judged ? r.verdict : null, reason: r.verdictReason,
  };
}

function renderMatrix(rows: { name: string; cells: Cell[] }[], profiles: string[]): string {
  const texts = rows.map((r) => r.cells.map(cellText));
  const nameW = Math.max(8, ...rows.map((r) => r.name.length));
  const colW = profiles.map((p, i) => Math.max(p.length, ...texts.map((t) => t[i]!.length)));
  const line = (first: string, cols: string[]): string => `${first.padEnd(nameW)}  ${cols.map((c, i) => c.padEnd(colW[i]!)).join('  ')}`.trimEnd();
  const out = [line('scenario', profiles), line('-'.repeat(nameW), colW.map((w) => '-'.repeat(w)))];
  rows.forEach((r, i) => out.push(line(r.name, texts[i]!)));
  out.push('', 'cells: ok | n/a | violations (leak, lost = lost-write, pin = pin-incoherent, exp = expect, acct = accounting,',
    '       fleak = frame-leak, uaf = use-after-free, bug = kernel-bug, excl = exclusive, fault); "!" = contradicts outcomes;',
    '       ERROR = cowlab failed on this cell (an internal error)');
  return out.join('\n');
}
