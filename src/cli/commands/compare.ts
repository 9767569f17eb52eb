// `cowlab compare`: every scenario on every profile; a matrix of verdicts, with the cells that
// contradict the file's `outcomes` marked.

import type { Profile } from '../../core/profile.js';
import type { Expected } from '../../scenario/index.js';
import { RESULT_FORMAT_VERSION, type RunResult } from '../../engine/result.js';
import { runScenario } from '../../engine/run.js';
import { ProfileError, resolveKernel, splitKernelList } from '../../profiles/resolve.js';
import { parseCommandArgs } from '../args.js';
import { EXIT_FAIL, EXIT_OK, UsageError } from '../errors.js';
import { COMPARE_HELP } from '../help.js';
import type { Io } from '../io.js';
import { expandPaths, loadScenarios } from '../load.js';
import { buildRegistry } from '../registry.js';

const SHORT: Record<string, string> = {
  leak: 'leak', 'lost-write': 'lost', 'pin-incoherent': 'pin', expect: 'exp', accounting: 'acct',
  'frame-leak': 'fleak', 'use-after-free': 'uaf', 'kernel-bug': 'bug', exclusive: 'excl', fault: 'fault',
};

export interface Cell {
  status: RunResult['status'];
  kinds: string[];
  /** What outcomes says for this profile (as in a run's result), or null when not judged. */
  expected: Expected | null;
  /** pass / fail against outcomes; null when outcomes does not name this profile. */
  verdict: 'pass' | 'fail' | null;
  reason: string;
}

export function cellText(c: Cell): string {
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
  // Default: every profile but the long-term kernels; in --kernels, `lts` stands for those six.
  const names = typeof values.kernels === 'string'
    ? [...new Set(splitKernelList(values.kernels).flatMap((n) => (n === 'lts' && !registry.has(n) ? registry.longTermNames() : [n])))]
    : registry.matrixNames();
  const sets = (values.set ?? []) as string[];
  const resolved = names.map((n) => {
    try {
      resolveKernel(registry, n);
    } catch (e) {
      if (e instanceof ProfileError) throw new UsageError(`cowlab compare: --kernels: ${e.message}`);
      throw e;
    }
    try {
      return resolveKernel(registry, n, sets);
    } catch (e) {
      if (e instanceof ProfileError) throw new UsageError(`cowlab compare: --set: ${e.message}`);
      throw e;
    }
  });
  const profiles: Profile[] = resolved.map((r) => r.profile);
  const scenarios = loadScenarios(expandPaths(positionals), registry);
  const rows: { file: string; name: string; cells: Cell[] }[] = [];
  for (const sc of scenarios) {
    const cells = profiles.map((p, i) => {
      // Judged against the outcomes of the base profile (a what-if kernel is judged like its base).
      const r = runScenario(sc, { ...p, name: resolved[i]!.base.name }, { trace: false, maxEventsPerStep: 0 });
      const kinds = [...new Set(r.violations.map((v) => v.kind))];
      const judged = r.expected !== null;
      return {
        status: r.status, kinds,
        expected: r.expected,
        verdict: judged ? r.verdict : null, reason: r.verdictReason,
      } satisfies Cell;
    });
    rows.push({ file: sc.file, name: sc.name, cells });
  }
  const contradictions = rows.flatMap((r) => r.cells.map((c, i) => ({ r, c, p: profiles[i]! })).filter((x) => x.c.verdict === 'fail'));
  if (values.json) {
    io.out(JSON.stringify({
      format: RESULT_FORMAT_VERSION, command: 'compare', profiles: profiles.map((p) => p.name),
      scenarios: rows.map((r) => ({ file: r.file, name: r.name, cells: Object.fromEntries(r.cells.map((c, i) => [profiles[i]!.name, c])) })),
      contradictions: contradictions.length,
    }, null, 2));
  } else {
    io.out(renderMatrix(rows, profiles.map((p) => p.name)));
    if (contradictions.length) {
      io.out('\ncontradicted cells (the model disagrees with the file\'s outcomes):');
      for (const x of contradictions) io.out(`  ${x.r.file} on ${x.p.name}: ${x.c.reason}`);
    } else {
      io.out('\nno cell contradicts its outcomes.');
    }
  }
  return contradictions.length ? EXIT_FAIL : EXIT_OK;
}

function renderMatrix(rows: { name: string; cells: Cell[] }[], profiles: string[]): string {
  const texts = rows.map((r) => r.cells.map(cellText));
  const nameW = Math.max(8, ...rows.map((r) => r.name.length));
  const colW = profiles.map((p, i) => Math.max(p.length, ...texts.map((t) => t[i]!.length)));
  const line = (first: string, cols: string[]): string => `${first.padEnd(nameW)}  ${cols.map((c, i) => c.padEnd(colW[i]!)).join('  ')}`.trimEnd();
  const out = [line('scenario', profiles), line('-'.repeat(nameW), colW.map((w) => '-'.repeat(w)))];
  rows.forEach((r, i) => out.push(line(r.name, texts[i]!)));
  out.push('', 'cells: ok | n/a | violations (leak, lost = lost-write, pin = pin-incoherent, exp = expect, acct = accounting,',
    '       fleak = frame-leak, uaf = use-after-free, bug = kernel-bug, excl = exclusive, fault); "!" = contradicts outcomes');
  return out.join('\n');
}
