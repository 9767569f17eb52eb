// `cowlab explore`: breadth-first search for the shortest operation sequence that breaks an
// invariant; a counterexample is printed (and written with --out) as a replayable scenario.

import { accessSync, constants, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { availableParallelism } from 'node:os';
import { SPILL_FRACTION, spillFileName } from '../../explore/tree.js';
import { counterexampleFile, explore, thpStartScenario, type ExploreInput, type ExploreOutcome } from '../../explore/explore.js';
import type { Progress } from '../../explore/search.js';
import { storyText } from '../../explore/stories.js';
import { DEFAULT_OPS, OP_NAMES, opsOnProfile, PROC_NAMES, UFFD_EXPLORE_OPS, type OpName } from '../../explore/ops.js';
import { ProfileError, resolveKernel, splitWhatIf, type ProfileRegistry } from '../../profiles/resolve.js';
import type { Profile } from '../../core/profile.js';
import { VIOLATION_KINDS } from '../../scenario/ast.js';
import type { Scenario } from '../../scenario/index.js';
import { runScenario } from '../../engine/run.js';
import { parseCommandArgs } from '../args.js';
import { EXIT_INTERRUPTED, exploreInWorker, type StopSignal } from '../background.js';
import { errnoText, EXIT_FAIL, EXIT_OK, EXIT_USAGE, UsageError } from '../errors.js';
import { EXPLORE_HELP } from '../help.js';
import type { Io } from '../io.js';
import { checkExploreStart, maxMemoryOpt } from '../limits.js';
import { loadScenarios } from '../load.js';
import { buildRegistry } from '../registry.js';

function intOpt(v: unknown, name: string, def: number, lo: number, hi: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) throw new UsageError(`cowlab explore: ${name} takes a whole number from ${lo} to ${hi}, got '${String(v)}'`);
  return n;
}

/**
 * `--kernel NAME` (or `--baseline NAME`) with its `--set`s: a what-if name as `run` prints it
 * (v5.9+forkEarlyCow=false) is its base profile with those switches, the `--set`s after them.
 */
function whatIfKernel(registry: ProfileRegistry, name: string, extra: readonly string[], opt: string, setOpt: string): { base: Profile; profile: Profile; sets: string[] } {
  let base: Profile;
  try {
    base = resolveKernel(registry, name).base;
  } catch (e) {
    if (e instanceof ProfileError) throw new UsageError(`cowlab explore: ${opt}: ${e.message}`);
    throw e;
  }
  const named = splitWhatIf(name)?.sets ?? [];
  const sets = [...named, ...extra];
  try {
    return { base, profile: resolveKernel(registry, name, extra).profile, sets };
  } catch (e) {
    if (e instanceof ProfileError) throw new UsageError(`cowlab explore: ${named.length > 0 && extra.length === 0 ? opt : setOpt}: ${e.message}`);
    throw e;
  }
}

/**
 * `--from FILE` on a kernel that lacks one of its operations (device-exclusive access before
 * 5.14): the run stops at that step, so the search would start from a truncated state and every
 * counterexample replay as n/a. Refused at the step instead.
 */
function checkStartApplies(from: Scenario, profile: Profile, opt: string): void {
  const { na } = runScenario(from, profile, { trace: false, maxEventsPerStep: 0 });
  if (na === null) return;
  const col = from.steps[na.step]?.pos.col ?? 1;
  const message = `--from: the start scenario is n/a on ${profile.name} (${opt}) at this step: ${na.reason}`;
  throw new UsageError(`${from.file}:${na.line}:${col}: error: ${message}`, [{ file: from.file, line: na.line, col, message }]);
}

/** `--out FILE`: refused before the search when it cannot be written (a directory, a missing or read-only folder). */
function checkOutFile(file: string): void {
  let isDir = false;
  try {
    isDir = statSync(file).isDirectory();
  } catch {
    // not there yet: its folder is checked below
  }
  if (isDir) throw new UsageError(`cowlab explore: --out: '${file}' is a directory (give a file name, like ${file.replace(/\/+$/, '')}/found.scn.yaml)`);
  const dir = dirname(file);
  try {
    if (!statSync(dir).isDirectory()) throw new UsageError(`cowlab explore: --out: '${dir}' is not a directory`);
    accessSync(dir, constants.W_OK);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cowlab explore: --out: cannot write into '${dir}': ${errnoText(e)}`);
  }
}

interface Plan {
  input: ExploreInput;
  values: Record<string, string | boolean | string[] | undefined>;
  kernel: string;
  /** A progress line on stderr (a terminal, without --json). */
  progress: Progress | undefined;
}

/** `cowlab explore`, the search on this thread (tests; the bin runs exploreCommandAsync). */
export function exploreCommand(argv: string[], io: Io): number {
  const plan = explorePlan(argv, io);
  if (typeof plan === 'number') return plan;
  try {
    return exploreReport(plan, io, explore(plan.input, plan.progress), null);
  } finally {
    removeSpill(plan);
  }
}

/** The search removes its spill file when it ends; this is for a worker ended before it could. */
function removeSpill(plan: Plan): void {
  if (plan.input.bounds.spillFile !== undefined) rmSync(plan.input.bounds.spillFile, { force: true });
}

/** `cowlab explore` with the search in a worker: SIGINT/SIGTERM stop it and report what it found, exit 130. */
export async function exploreCommandAsync(argv: string[], io: Io): Promise<number> {
  const plan = explorePlan(argv, io);
  if (typeof plan === 'number') return plan;
  let r: Awaited<ReturnType<typeof exploreInWorker>>;
  try {
    r = await exploreInWorker(plan.input, plan.progress);
  } finally {
    removeSpill(plan);
  }
  const { outcome, signal } = r;
  if (outcome === null) {
    clearProgress(plan);
    io.err(`cowlab explore: stopped by ${signal ?? 'a signal'} before the search could report`);
    return EXIT_INTERRUPTED;
  }
  return exploreReport(plan, io, outcome, signal);
}

function explorePlan(argv: string[], io: Io): Plan | number {
  const { values, positionals } = parseCommandArgs(argv, {
    kernel: { type: 'string' }, set: { type: 'string', multiple: true }, profiles: { type: 'string', multiple: true },
    procs: { type: 'string' }, pages: { type: 'string' }, depth: { type: 'string' }, ops: { type: 'string' },
    handles: { type: 'string' }, threads: { type: 'string' }, kinds: { type: 'string' }, from: { type: 'string' }, start: { type: 'string' },
    'max-states': { type: 'string' }, 'max-memory': { type: 'string' }, time: { type: 'string' },
    progress: { type: 'boolean' }, engine: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' }, out: { type: 'string' },
    workers: { type: 'string' }, exact: { type: 'boolean' }, 'spill-dir': { type: 'string' },
    baseline: { type: 'string' }, 'baseline-set': { type: 'string', multiple: true }, reverse: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, 'explore');
  if (values.help) {
    io.out(EXPLORE_HELP);
    return EXIT_OK;
  }
  // An option that would be accepted and ignored is refused instead (a script written for two engines).
  if (values.engine !== undefined) {
    throw new UsageError('cowlab explore: --engine: the explorer has one engine since December 2026, the model itself (the hand-written compact engine was removed); leave the option out');
  }
  if (positionals.length > 0) throw new UsageError(`cowlab explore: unexpected argument '${positionals[0]}' (a start scenario goes with --from FILE)`);
  const registry = buildRegistry((values.profiles ?? []) as string[]);
  const named = whatIfKernel(registry, (values.kernel as string | undefined) ?? 'v6', (values.set ?? []) as string[], '--kernel', '--set');
  const { profile } = named;
  // A what-if name (v5.9+forkEarlyCow=false, as run prints it) is its base with those switches set.
  const kernel = named.base.name;
  const sets = named.sets;
  let baseline: ExploreInput['baseline'] = null;
  if (typeof values.baseline === 'string') {
    const b = whatIfKernel(registry, values.baseline, (values['baseline-set'] ?? []) as string[], '--baseline', '--baseline-set');
    baseline = { profile: b.profile, name: b.base.name, sets: b.sets, reverse: !!values.reverse };
  } else if (values.reverse || values['baseline-set']) {
    throw new UsageError(`cowlab explore: ${values.reverse ? '--reverse' : '--baseline-set'} goes with --baseline KERNEL`);
  }
  // `uffd` in --ops stands for the userfaultfd write-protect set (UFFD_EXPLORE_OPS), `all` for every operation.
  const ops = typeof values.ops === 'string'
    ? [...new Set(values.ops.split(',').map((s) => s.trim()).filter(Boolean).flatMap((s) => (s === 'uffd' ? [...UFFD_EXPLORE_OPS] : s === 'all' ? [...OP_NAMES] : [s])))]
    : [...DEFAULT_OPS];
  for (const o of ops) if (!(OP_NAMES as readonly string[]).includes(o)) throw new UsageError(`cowlab explore: --ops: unknown operation '${o}' (operations: ${OP_NAMES.join(', ')})`);
  // No operation would search the start state alone and call it a bound: refused instead.
  if (ops.length === 0) throw new UsageError(`cowlab explore: --ops: no operation given (operations: ${OP_NAMES.join(', ')}; or all, or uffd)`);
  let kinds: Set<string> | null = null;
  if (typeof values.kinds === 'string') {
    kinds = new Set(values.kinds.split(',').map((s) => s.trim()).filter(Boolean));
    if (kinds.size === 0) throw new UsageError(`cowlab explore: --kinds: no violation kind given (kinds: ${VIOLATION_KINDS.join(', ')})`);
    for (const k of kinds) if (!(VIOLATION_KINDS as readonly string[]).includes(k)) throw new UsageError(`cowlab explore: --kinds: unknown violation kind '${k}' (kinds: ${VIOLATION_KINDS.join(', ')})`);
  }

  let from = null;
  if (typeof values.from === 'string') {
    from = loadScenarios([values.from], registry)[0]!;
    checkExploreStart(from);
    checkStartApplies(from, profile, '--kernel');
    if (baseline !== null) checkStartApplies(from, baseline.profile, '--baseline');
  }
  // --start thp: a PMD-mapped THP of 512 pages; --pages N is then how many of its first pages
  // the page operations touch.
  const start = (values.start as string | undefined) ?? 'empty';
  if (start !== 'empty' && start !== 'thp') throw new UsageError(`cowlab explore: --start takes empty or thp, got '${start}'`);
  if (start === 'thp' && from !== null) throw new UsageError('cowlab explore: --start thp and --from FILE are two start states: give one');
  // --pages sizes the default start; from --start thp or --from FILE, whose pages are their own,
  // it is how many of each region's first pages the page operations touch (a 512-page THP or
  // hugetlb mapping would otherwise give every operation 512 choices).
  const pageLimit = start === 'thp' || (from !== null && values.pages !== undefined) ? intOpt(values.pages, '--pages', 2, 1, 64) : undefined;
  if (start === 'thp') from = thpStartScenario();
  // Where the one-thread full search spills its tree when memory runs short: a name chosen here,
  // so this thread removes the file even when the search's worker is ended before it could.
  const spillDir = values['spill-dir'] as string | undefined;
  if (spillDir !== undefined) {
    let dir = false;
    try {
      dir = statSync(spillDir).isDirectory();
    } catch {
      // missing: said below
    }
    if (!dir) throw new UsageError(`cowlab explore: --spill-dir: '${spillDir}' is not a directory`);
  }
  // Checked now, not after a search of minutes: the counterexample files must be writable.
  if (typeof values.out === 'string') checkOutFile(values.out);
  const input: ExploreInput = {
    profile: { ...profile, name: profile.name }, baseName: kernel, sets,
    shape: {
      procs: intOpt(values.procs, '--procs', 2, 1, PROC_NAMES.length), threads: intOpt(values.threads, '--threads', 2, 1, 4), handles: intOpt(values.handles, '--handles', 2, 0, 8), ops: ops as OpName[],
      ...(pageLimit !== undefined ? { pageLimit } : {}),
    },
    pages: intOpt(values.pages, '--pages', 2, 1, 64),
    bounds: {
      depth: intOpt(values.depth, '--depth', 6, 1, 40),
      // No count of states by default: --max-memory and --time bound the search.
      maxStates: values['max-states'] === undefined ? Number.MAX_SAFE_INTEGER : intOpt(values['max-states'], '--max-states', 0, 1, 2 ** 30),
      maxMemoryMB: maxMemoryOpt(values['max-memory'], 'explore'),
      timeSec: intOpt(values.time, '--time', 600, 1, 86400),
      all: !!values.all, kinds, exact: !!values.exact, spillFile: spillFileName(spillDir),
    },
    from,
    workers: intOpt(values.workers, '--workers', 1, 1, 64),
    baseline,
  };
  const tty = process.stderr.isTTY && !values.json;
  // Progress: rewritten in place on a terminal; with --progress, one line a report (scripts, logs).
  const lines = !!values.progress;
  const what = baseline === null ? `exploring ${profile.name}`
    : baseline.reverse ? `looking for what ${profile.name} fixed: sequences that violate on ${baseline.profile.name} and are clean on ${profile.name}, searching ${baseline.profile.name}`
    : `looking for regressions: sequences that violate on ${profile.name} and are clean on ${baseline.profile.name}, searching ${profile.name}`;
  const header = `${what}: ${start === 'thp' ? `P with a PMD-mapped THP (512 pages; page operations on the first ${input.shape.pageLimit})` : from ? `from ${from.file}${input.shape.pageLimit !== undefined ? ` (page operations on the first ${input.shape.pageLimit} page(s) of each region)` : ''}` : `P with ${input.pages} page(s)`}, up to ${input.shape.procs} process(es), ${input.shape.handles} handle(s), depth ${input.bounds.depth}; ops ${ops.join(',')}` +
    `${input.workers! > 1 ? `; ${input.workers} workers${workersNote(input.workers!)}` : ''}` + lackingNote(input);
  if (!values.json) io.out(header);
  const text = (p: Parameters<Progress>[0]): string => `${p.states} states, depth ${p.depth}, ${Math.round(p.statesPerSec)} states/s`;
  const progress: Progress | undefined = lines ? (p) => process.stderr.write(`progress: ${p.note ?? text(p)}\n`)
    : tty ? (p) => process.stderr.write(p.note ? `\r${' '.repeat(70)}\r  ${p.note}\n` : `\r  ${text(p)}   `) : undefined;
  return { input, values, kernel, progress };
}

/** Workers past this machine's CPUs do not search faster: each is a thread that compiles and builds its states itself. */
function workersNote(workers: number): string {
  const cpus = availableParallelism();
  return workers > cpus ? ` (this machine has ${cpus} CPU${cpus === 1 ? '' : 's'}: workers beyond that share them and only add their start-up)` : '';
}

function clearProgress(plan: Plan): void {
  if (plan.progress && !plan.values.progress) process.stderr.write('\r' + ' '.repeat(70) + '\r');
}

/** The summary, counterexamples and --out files of a search, finished or stopped by `signal`. */
function exploreReport(plan: Plan, io: Io, out: ExploreOutcome, signal: StopSignal | null): number {
  const { input, values, kernel } = plan;
  const { profile, sets } = input;
  clearProgress(plan);
  const st = out.result.stats;
  const files = out.result.counterexamples.map((ce) => counterexampleFile(input, out.start, ce, out.result));
  // One file per counterexample: FILE, then FILE-2.scn.yaml, FILE-3.scn.yaml ... for --all.
  const outFiles = typeof values.out === 'string'
    ? files.map((_, i) => (i === 0 ? (values.out as string) : (values.out as string).replace(/(\.scn\.yaml)?$/, `-${i + 1}.scn.yaml`)))
    : [];
  // Checked before the search; a write that fails even so (a full disk) is said after the report.
  let writeError: string | null = null;
  outFiles.forEach((f, i) => {
    try {
      writeFileSync(f, files[i]!);
    } catch (e) {
      writeError ??= `cowlab explore: --out: cannot write ${f}: ${errnoText(e)}`;
    }
  });
  const base = input.baseline ?? null;
  // The kernel searched, and the one its violating sequences were checked on (--baseline).
  const searched = base?.reverse ? base.profile.name : profile.name;
  const checked = base === null ? null : base.reverse ? profile.name : base.profile.name;
  if (values.json) {
    io.out(JSON.stringify({
      format: 1, command: 'explore', profile: profile.name, opsLeftOut: lackingOps(input), status: out.status, result: out.verdict, properties: out.properties, stats: st,
      ...(base !== null ? { baseline: { profile: base.profile.name, reverse: base.reverse, searched, cleanOn: checked } } : {}),
      violating: out.violating, causes: out.causes,
      counterexamples: out.result.counterexamples.map((ce, i) => ({
        depth: ce.depth, steps: ce.steps, violations: ce.violations, cause: ce.cause ?? null, story: ce.story ?? null, scenario: files[i],
      })),
    }, null, 2));
  } else {
    const n = (x: number): string => x.toLocaleString('en-US');
    const ops = (d: number): string => `${d} operation${d === 1 ? '' : 's'}`;
    const found = out.result.counterexamples.length;
    const bound = st.stoppedBy === 'interrupted' ? `stopped by ${signal ?? 'a signal'}`
      : st.stoppedBy ? `stopped by the ${st.stoppedBy === 'states' ? '--max-states' : st.stoppedBy === 'memory' ? '--max-memory' : '--time'} bound` : null;
    const firstOnly = found > 0 && !input.bounds.all && base === null;
    const reach = firstOnly
      ? 'until the first violation'
      : bound === null || st.depthComplete >= input.bounds.depth
      ? `every sequence of up to ${ops(input.bounds.depth)}`
      : st.depthComplete === 0 ? `some single operations (${bound})`
      : `every sequence of up to ${ops(st.depthComplete)} and some of ${st.depthComplete + 1} (${bound})`;
    const what = base === null
      ? (found === 0 ? 'nothing found'
        : input.bounds.all ? `${found} finding${found === 1 ? '' : 's'} (distinct causes) among ${n(out.violating)} violating sequence${out.violating === 1 ? '' : 's'}`
        : `a violation after ${ops(out.result.counterexamples[0]!.depth)}, a shortest one (every shorter sequence is clean; --all lists one per cause)`)
      : (found === 0 ? `nothing violates on ${searched} that is clean on ${checked} (${n(out.violating)} violating sequence${out.violating === 1 ? '' : 's'} checked)`
        : `${found === 1 ? 'a sequence' : `${found} sequences (distinct causes)`} that violate${found === 1 ? 's' : ''} on ${searched} and ${found === 1 ? 'is' : 'are'} clean on ${checked} (${n(out.violating)} violating sequence${out.violating === 1 ? '' : 's'} checked)`);
    io.out(`searched ${reach} on ${searched}: ${n(st.states)} states, ${(st.elapsedMs / 1000).toFixed(1)} s; ${what}`);
    io.out(`result: ${out.verdict}${out.verdict === 'bound' ? ' (the search stopped at a limit before completing)' : ''}`);
    const pr = out.properties;
    const broken = pr.always.filter((a) => !a.holds);
    io.out(broken.length === 0 ? `always: all ${pr.always.length} invariants hold (${pr.always.map((a) => a.name).join(', ')})`
      : `always: ${broken.map((a) => `${a.name} broken (after ${ops(a.depth!)})`).join(', ')}; the other ${pr.always.length - broken.length} hold`);
    io.out(`sometimes: ${pr.sometimes.map((x) => (x.covered ? `${x.name} covered (after ${ops(x.depth!)})` : `${x.name} not covered`)).join(', ') || 'none for these operations'}`);
    io.out(st.visited === 'exact' ? `visited states kept exactly (${st.bytesPerState} bytes a state)`
      : `visited states kept as 64-bit fingerprints (${st.bytesPerState} bytes a state): a collision could have hidden a state with probability ${st.collisionProbability.toExponential(1)}; --exact keeps the states`);
    if (st.spill !== null) {
      io.out(`search tree spilled to disk from ${n(st.spill.atStates)} states (resident memory past ${Math.round(SPILL_FRACTION * 100)}% of --max-memory): ` +
        `${n(st.spill.states)} states, ${(st.spill.bytes / 2 ** 20).toFixed(1)} MiB in ${st.spill.file} (removed)`);
    }
    if (out.status === 'violation') {
      for (let i = 0; i < files.length; i++) {
        const ce = out.result.counterexamples[i]!;
        const head = found > 1 ? `${i + 1}. ` : '';
        io.out(`\n${head}${ce.cause?.name ?? 'violation'}`);
        if (ce.story) io.out(`   ${storyText(ce.story)}`);
        io.out(`   after ${ops(ce.depth)}: ${ce.violations.map((v) => `${v.kind}: ${v.message}`).join('; ')}`);
        io.out(files[i]!);
      }
      io.out(outFiles.length && writeError === null
        ? `written to ${outFiles.join(', ')}; replay: npx cowlab run ${outFiles[0]}${sets.length ? ` --kernel ${kernel} ${sets.map((s) => `--set ${s}`).join(' ')}` : ''} --trace`
        : 'replay: save the scenario above (or use --out FILE) and run npx cowlab run FILE --trace');
    } else if (bound !== null) {
      io.out(st.depthComplete === 0 ? 'not every single operation was tried: nothing can be said of any length'
        : `every sequence of up to ${ops(st.depthComplete)} is clean; longer ones were not all searched`);
    }
  }
  if (writeError !== null) {
    io.err(writeError);
    return EXIT_USAGE;
  }
  if (signal !== null) return EXIT_INTERRUPTED;
  return out.status === 'violation' ? EXIT_FAIL : EXIT_OK;
}

/** The kernel a search runs on: the baseline's when it looks for what the profile fixed. */
function searchedProfile(input: ExploreInput): Profile {
  return input.baseline?.reverse ? input.baseline.profile : input.profile;
}

/** The operations asked for that the searched kernel lacks the part for (each transition would be n/a): the search leaves them out. */
function lackingOps(input: ExploreInput): string[] {
  return opsOnProfile(input.shape.ops, searchedProfile(input)).lacking;
}

/** The header's note of lackingOps, or nothing. */
function lackingNote(input: ExploreInput): string {
  const lacking = lackingOps(input);
  return lacking.length === 0 ? '' : `; left out (${searchedProfile(input).name} has no kernel part for them): ${lacking.join(',')}`;
}
