// `cowlab export`: one scenario as one standalone C program that replays it on a live Linux
// kernel with the oracle's own system calls and checks every observation against the model.
//
// The program is the oracle's C helper (oracle/*.c, without its command loop agent.c and its
// main.c) followed by a runtime (oracle/export/runtime.c) that does in C what the oracle's
// driver does in TypeScript (src/oracle/replay.ts: the steps; oracle.ts: pairing the kernel's
// observations with the model's), then the scenario: one function per step and the model's
// answers as tables. Expectations are computed here, at export time, for both kinds of kernel
// the oracle's probe tells apart (a read fault maps the shared zero page, or it does not:
// mm_forbids_zeropage()); the program probes its machine and takes the matching set.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Profile } from '../core/profile.js';
import type { AdviceName } from '../core/mmap.js';
import { runScenario } from '../engine/run.js';
import { helperSourceDir } from '../oracle/build.js';
import { hugetlbPoolFor } from '../oracle/hugetlb.js';
import type { Aspect } from '../oracle/comparable.js';
import { parseProbe } from '../oracle/facilities.js';
import { errnoName, label } from '../oracle/names.js';
import { probeModel, withoutModelLimits } from '../oracle/oracle.js';
import { missingFacility, probedProfile } from '../oracle/probed.js';
import { systemStep } from '../oracle/system-ops.js';
import type { ModelHandle } from '../oracle/types.js';
import { ValueWords } from '../oracle/values.js';
import type { Scenario, Step } from '../scenario/index.js';
import { declOf } from '../ops/index.js';
import type { CStep, CWriter } from '../ops/types.js';

/** The oracle helper's sources in the order they are pasted (each needs only what comes before). */
const HELPER_FILES = ['chan.c', 'page.c', 'steady.c', 'uring.c', 'scenario_proc.c', 'probe.c', 'thp.c', 'agent_procs.c', 'agent_handles.c', 'agent_uffd.c', 'uffd.c', 'system.c', 'hugetlb.c', 'khugepaged.c'];
/** At most this many scenario names, regions and handles (the runtime's tables; names are a 64-bit set). */
const MAX_NAMES = 64;

/** A scenario the exporter cannot turn into a program (reported as file:line:col). */
export class ExportError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly col: number,
  ) {
    super(message);
  }
}

export interface ExportVariant {
  /** The model's profile on such a kernel. */
  profile: string;
  /** Why the scenario is skipped on such a kernel (its point needs what it lacks), or null. */
  skip: string | null;
  /** Checks the program makes on such a kernel (model observations paired with the kernel's). */
  checks: number;
}

export interface ExportResult {
  source: string;
  scenario: string;
  file: string;
  base: string;
  /** [0]: a kernel that maps the zero page on a read fault; [1]: one that does not. */
  variants: [ExportVariant, ExportVariant];
  /** The two kinds of kernel have different expectations (else the program's choice changes nothing). */
  variantsDiffer: boolean;
  /** Steps the program does not perform, with the oracle's reason. */
  skipped: { line: number; text: string; reason: string }[];
}

export function cowlabVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** A C string literal (ASCII; everything else, quotes, backslashes and `?` escaped). */
export function cstr(s: string): string {
  let out = '"';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (c === '"' || c === '\\') out += `\\${c}`;
    else if (c === '?') out += '\\?';
    else if (b >= 0x20 && b < 0x7f) out += c;
    else out += `\\${b.toString(8).padStart(3, '0')}`;
  }
  return `${out}"`;
}

/** Words filled into comment lines of at most `width` characters, each starting with ` * `. */
function wrap(text: string, width = 96): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const w of ctext(text).split(/\s+/).filter((x) => x.length > 0)) {
    if (cur.length > 0 && cur.length + 1 + w.length > width - 3) {
      lines.push(` * ${cur}`);
      cur = w;
    } else {
      cur = cur.length > 0 ? `${cur} ${w}` : w;
    }
  }
  if (cur.length > 0) lines.push(` * ${cur}`);
  return lines;
}

/** Text safe inside a C block comment. */
function ctext(s: string): string {
  const ascii = s.replace(/\u2014/g, '--').replace(/\u2013/g, '-').replace(/\u2192/g, '->').replace(/\u2026/g, '...').replace(/[\u2018\u2019]/g, "'").replace(/[\u201c\u201d]/g, '"');
  return ascii.replace(/\*\//g, '* /').replace(/[^\x20-\x7e\n]/g, '?').replace(/\?\?/g, '? ?');
}

const MASK: Record<Aspect, string> = {
  frames: 'A_FRAMES', stats: 'A_STATS', minflt: 'A_MINFLT', values: 'A_VALUES', shortRefs: 'A_SHORTREFS', all: 'A_ALL',
};

/** MADV_* codes (uapi asm-generic/mman-common.h), as the agent's advice table: one for every advice of the language. */
const ADVICE: Record<AdviceName, string> = {
  dontfork: '10 /* MADV_DONTFORK */', dofork: '11 /* MADV_DOFORK */', wipeonfork: '18 /* MADV_WIPEONFORK */',
  keeponfork: '19 /* MADV_KEEPONFORK */', dontneed: '4 /* MADV_DONTNEED */', mergeable: '12 /* MADV_MERGEABLE */',
  pageout: '21 /* MADV_PAGEOUT */', hugepage: '14 /* MADV_HUGEPAGE */', nohugepage: '15 /* MADV_NOHUGEPAGE */', collapse: '25 /* MADV_COLLAPSE */',
};
const PROT: Record<string, string> = { rw: 'PROT_READ | PROT_WRITE', ro: 'PROT_READ', none: 'PROT_NONE' };
const MMAP_PROT: Record<string, number> = { rw: 2, ro: 1, none: 0 };

class Names {
  readonly list: string[] = [];
  private readonly idx = new Map<string, number>();
  /** what: for messages; prefix: of the C enumerators (scenario names are C identifiers). */
  constructor(private readonly what: string, readonly prefix: string) {}
  /** The C enumerator that stands for the name. */
  sym(name: string, step: Step): string {
    this.of(name, step);
    return `${this.prefix}${name}`;
  }
  /** `enum { PROC_P = 0, ... };` */
  decl(): string {
    return this.list.length === 0 ? '' : `enum { ${this.list.map((n, i) => `${this.prefix}${n} = ${i}`).join(', ')} };`;
  }
  of(name: string, step: Step): number {
    let i = this.idx.get(name);
    if (i === undefined) {
      if (this.list.length >= MAX_NAMES) throw new ExportError(`more than ${MAX_NAMES} ${this.what} in one scenario: the exported program has room for ${MAX_NAMES}`, step.pos.line, step.pos.col);
      i = this.list.length;
      this.list.push(name);
      this.idx.set(name, i);
    }
    return i;
  }
}

interface ModelObsRow {
  kind: string;
  what: string;
  actual: string;
}

interface VariantData {
  profile: Profile;
  skip: string | null;
  count: number;
  na: string | null;
  /** handle: what the model holds after a step that takes one (probeModel's, as the oracle's replay gets it), else null. */
  steps: { obs: ModelObsRow[]; hidden: number; handle: ModelHandle | null }[];
}

function modelVariant(sc: Scenario, base: Profile, zeroPage: boolean): VariantData {
  const notes: string[] = [];
  const msc = withoutModelLimits(sc, notes);
  const f = parseProbe([`zeropage=${zeroPage ? 1 : 0}`], 'export', true, errnoName);
  const profile = probedProfile(base, f);
  const skip = missingFacility(msc, base, profile, f);
  if (skip !== null) return { profile, skip, count: 0, na: null, steps: [] };
  const model = runScenario(msc, profile, { trace: false, maxEventsPerStep: 0 });
  const count = model.na !== null ? model.na.step : sc.steps.length;
  const probes = probeModel(msc, profile, count, undefined, true);
  const steps: VariantData['steps'] = [];
  for (let i = 0; i < count; i++) {
    const probe = probes.get(i);
    const obs = [...(model.steps[i]?.observations ?? []), ...(probe?.extra ?? [])].map((o) => ({ kind: o.kind, what: o.what, actual: o.actual }));
    steps.push({ obs, hidden: probe?.hiddenSwapCache ?? 0, handle: probe?.handle ?? null });
  }
  const na = model.na !== null ? `the model is n/a from line ${model.na.line} on: ${model.na.reason}` : null;
  return { profile, skip: null, count, na, steps };
}

/**
 * The KSM use_zero_pages the program's answers are for (config.ksm_use_zero_pages as written), or
 * -1 when they do not depend on it: the model observes the same with the other value (on either
 * kind of zero-page kernel). The program skips the scenario on a machine with the other value.
 */
function ksmZeroPagesFor(sc: Scenario, base: Profile, variants: readonly [VariantData, VariantData]): number {
  if (!sc.steps.some((s) => s.op === 'ksm-merge')) return -1;
  const mine = sc.config.ksmUseZeroPages ?? 0;
  const other = { ...sc, config: { ...sc.config, ksmUseZeroPages: 1 - mine } };
  const same = (v: VariantData, w: VariantData): boolean => v.skip === w.skip && v.count === w.count && JSON.stringify(v.steps) === JSON.stringify(w.steps);
  return same(variants[0], modelVariant(other, base, true)) && same(variants[1], modelVariant(other, base, false)) ? -1 : mine;
}

function maskOf(aspects: readonly Aspect[]): string {
  return aspects.length === 0 ? '0' : aspects.map((a) => MASK[a]).join(' | ');
}

/** The C call that replays one step (its declaration's `exportC`, which mirrors its `replay`), and the reason when it is skipped outright. */
function stepCode(step: Step, names: Names, regions: Names, handles: Names, values: ValueWords): CStep {
  const system = (op: string): { reason: string; did: string; mask: string } => {
    const s = systemStep(op);
    return { reason: s.reason, did: s.did, mask: maskOf(s.lose) };
  };
  const x: CWriter = {
    proc: (n) => names.sym(n, step),
    region: (sel) => regions.sym(sel.region, step),
    regionName: (n) => regions.sym(n, step),
    handle: (h) => handles.sym(h, step),
    value: (v) => `0x${values.hex(v)}ULL /* ${ctext(v)} */`,
    str: cstr,
    label,
    prot: (p) => PROT[p]!,
    mmapProt: (p) => MMAP_PROT[p]!,
    advice: (a) => ADVICE[a as AdviceName],
    system,
    notReplayed(op) {
      const s = system(op);
      return { code: `rp_not_replayed(${cstr(s.reason)}, ${cstr(s.did)}, ${s.mask});`, skipped: s.reason };
    },
  };
  if ('async' in step && (step as { async?: boolean }).async) return x.notReplayed('async');
  return declOf(step.op).exportC(x, step);
}

/** The scenario's values, in the order ValueWords.forScenario registers them. */
function scenarioValues(sc: Scenario): string[] {
  const vals = new Set<string>(['0']);
  for (const s of sc.steps) {
    const rec = s as unknown as Record<string, unknown>;
    if (typeof rec.value === 'string') vals.add(rec.value);
    const ex = rec.expect as { kind?: string; value?: string } | string | null | undefined;
    if (typeof ex === 'string') vals.add(ex);
    else if (ex && typeof ex === 'object' && typeof ex.value === 'string') vals.add(ex.value);
  }
  return [...vals];
}

export interface ExportOptions {
  /** The cowlab version named in the header (default: package.json's). */
  version?: string;
}

function helperSource(): string {
  const dir = helperSourceDir();
  const strip = (text: string): string => text.replace(/^#include "[^"]+"\s*$/gm, '');
  const parts = [
    '#define _GNU_SOURCE',
    '/* ==== oracle/oracle.h ==== */',
    strip(readFileSync(`${dir}oracle.h`, 'utf8')),
    '/* ==== oracle/agent.h ==== */',
    strip(readFileSync(`${dir}agent.h`, 'utf8')),
  ];
  for (const f of HELPER_FILES) parts.push(`/* ==== oracle/${f} ==== */`, strip(readFileSync(`${dir}${f}`, 'utf8')));
  return parts.join('\n');
}

/** One scenario as a standalone C program (see the file's header). */
export function exportScenario(sc: Scenario, base: Profile, opts: ExportOptions = {}): ExportResult {
  const version = opts.version ?? cowlabVersion();
  const names = new Names('process and thread names', 'PROC_');
  const regions = new Names('region names', 'REGION_');
  const handles = new Names('handle names', 'HANDLE_');
  const values = ValueWords.forScenario(sc);
  const steps = sc.steps.map((s) => ({ step: s, ...stepCode(s, names, regions, handles, values) }));
  const variants = [modelVariant(sc, base, true), modelVariant(sc, base, false)] as const;

  const out: string[] = [];
  const v0 = variants[0];
  const v1 = variants[1];
  const same = v0.profile.name === v1.profile.name;
  const skippedSteps = steps.filter((s) => s.skipped !== null).map((s) => ({ line: s.step.pos.line, text: s.step.text, reason: s.skipped! }));
  out.push(
    '/*',
    ` * ${ctext(sc.name)}: a reproducer exported by cowlab ${version} (\`cowlab export\`)`,
    ` * scenario file: ${ctext(basename(sc.file))}`,
    ` * kernel profile: ${ctext(base.name)}`,
    ...(sc.description ? [' *', ...wrap(sc.description)] : []),
    ' *',
    ' * build and run:  gcc -O2 -o repro repro.c && sudo ./repro',
    ' * (one file: libc and the kernel headers only; io_uring through raw system calls)',
    ' *',
    ' * It performs the scenario\'s steps on this machine\'s kernel, one real process per scenario',
    ' * process (fork), in the file\'s order, with the system calls of `cowlab oracle`, and checks',
    ' * each observation against cowlab\'s model of the kernel profile above: values read (by the',
    ' * CPU and through pins and pipes), faults, the scenario\'s `expect` steps (pagemap frame',
    ' * numbers and PM_MMAP_EXCLUSIVE, PG_anon_exclusive from /proc/kpageflags, the counters),',
    ' * which pages a swapout swapped and which a KSM merge merged. One line per check: PASS,',
    ' * FAIL (the kernel differs from the model) or SKIP (not comparable here, with the reason),',
    ' * then a summary. Exit status: 0 all PASS, 1 some FAIL, 2 could not run (the scenario or',
    ' * checks skipped for want of root, nothing compared, or the replay failed).',
    ' *',
    ' * Expectations were computed when exporting, for both kinds of kernel: one whose read fault',
    ' * on untouched anonymous memory maps the shared zero page, and one that does not',
    ' * (mm_forbids_zeropage()). The program probes which kind it runs on and takes that set:',
    same
      ? ` *   both kinds: model ${ctext(v0.profile.name)} (this scenario does not depend on it)`
      : ` *   zero page:    model ${ctext(v0.profile.name)}${v0.skip ? ' (skipped there)' : ''}\n *   no zero page: model ${ctext(v1.profile.name)}${v1.skip ? ' (skipped there)' : ''}`,
    ' * (COWLAB_ZERO_PAGE=yes or =no in the environment takes that as the probe\'s answer.)',
    ' * Swapout uses a swap file of its own (64 MiB, removed at the end) and ksm merge switches',
    ' * KSM on for a moment (its settings put back): both need root.',
  );
  if (skippedSteps.length > 0) {
    out.push(' *', ' * Steps the kernel cannot do from user space (skipped, and what depends on them not checked):');
    for (const s of skippedSteps) out.push(` *   line ${s.line}: skipped: ${ctext(s.reason)}`);
  }
  out.push(' *', ' * The scenario\'s steps (line numbers of the scenario file, as in the PASS/FAIL lines):');
  for (const s of sc.steps) out.push(` *   ${String(s.pos.line).padStart(4)}  ${ctext(s.text)}`);
  out.push(' */', '');
  out.push(helperSource());

  const runtime = readFileSync(`${helperSourceDir()}export/runtime.c`, 'utf8');
  const tables: string[] = ['/* ==== the scenario\'s tables (generated) ==== */', ''];
  tables.push(`static const char SCENARIO[] = ${cstr(sc.name)};`, `static const char SCENARIO_FILE[] = ${cstr(basename(sc.file))};`);
  const list = (xs: string[]): string => (xs.length === 0 ? '{ "" }' : `{ ${xs.map(cstr).join(', ')} }`);
  tables.push(`static const char *const NAMES[] = ${list(names.list)};`);
  tables.push(`static const char *const REGIONS[] = ${list(regions.list)};`);
  tables.push(`static const char *const HANDLES[] = ${list(handles.list)};`);
  tables.push('/* Free huge pages the hugetlb pool is set to before the first `mmap ... hugetlb` (src/oracle/hugetlb.ts). */');
  tables.push(`static const long HUGETLB_POOL = ${hugetlbPoolFor(sc) ?? 0};`);
  tables.push('/* The KSM use_zero_pages the answers are for (config.ksm_use_zero_pages; -1: they hold with either). */');
  tables.push(`static const long KSM_USE_ZERO_PAGES = ${ksmZeroPagesFor(sc, base, variants)};`);
  tables.push('/* KSM\'s smart_scan while ksmd runs for a ksm merge (config.ksm_smart_scan; 1 unless it says 0). */');
  tables.push(`static const int KSM_SMART_SCAN = ${sc.config.ksmSmartScan === 0 ? 0 : 1};`);
  const vals = scenarioValues(sc);
  tables.push('/* The 64-bit word that fills a page for each scenario value (src/oracle/values.ts). */');
  tables.push('static const struct vword VALUES[] = {');
  for (const v of vals) tables.push(`\t{ 0x${values.hex(v)}ULL, ${cstr(v)} },`);
  tables.push('};', `#define N_VALUES ${vals.length}`, '');
  out.push(runtime.replace('/* @@TABLES@@ */', tables.join('\n')));

  // The model's answers, per variant and step (identical arrays and handles emitted once).
  const emitted = new Map<string, string>();
  const data: string[] = ['', '/* ==== the model\'s answers (generated) ==== */', ''];
  const arrayOf = (rows: ModelObsRow[]): string => {
    if (rows.length === 0) return 'NULL';
    const body = rows.map((o) => `\t{ ${cstr(o.kind)}, ${cstr(o.what)}, ${cstr(o.actual)} },`).join('\n');
    let name = emitted.get(body);
    if (name === undefined) {
      name = `M${emitted.size}`;
      emitted.set(body, name);
      data.push(`static const struct mobs ${name}[] = {\n${body}\n};`);
    }
    return name;
  };
  // What the model holds after each step that takes a handle: the runtime words its note from it.
  const emittedHandles = new Map<string, string>();
  const handleOf = (m: ModelHandle | null): string => {
    if (m === null) return 'NULL';
    const body = `{ ${m.exclusive ? 1 : 0}, ${m.answer === null ? 'NULL' : cstr(m.answer)}, ${m.held}, ${m.pages} }`;
    let name = emittedHandles.get(body);
    if (name === undefined) {
      name = `H${emittedHandles.size}`;
      emittedHandles.set(body, name);
      data.push(`static const struct mhandle ${name} = ${body};`);
    }
    return `&${name}`;
  };
  const vnames: string[] = [];
  variants.forEach((v, vi) => {
    const rows = v.steps.map((s, i) => `\t{ ${s.obs.length}, ${arrayOf(s.obs)}, ${s.hidden}, ${handleOf(s.handle)} }, /* line ${sc.steps[i]!.pos.line} */`);
    rows.push('\t{ 0, NULL, 0, NULL },');
    vnames.push(`V${vi}`);
    data.push(`/* ${vi === 0 ? 'a kernel that maps the zero page' : 'a kernel that maps no zero page'}: model ${ctext(v.profile.name)} */`);
    data.push(`static const struct mstep V${vi}[] = {\n${rows.join('\n')}\n};`);
  });
  data.push('static const struct variant VARIANTS[2] = {');
  variants.forEach((v, vi) => {
    data.push(`\t{ ${cstr(v.profile.name)}, ${v.skip === null ? 'NULL' : cstr(v.skip)}, ${v.count}, ${v.na === null ? 'NULL' : cstr(v.na)}, ${vnames[vi]} },`);
  });
  data.push('};', '');

  data.push('/* ==== the steps (generated) ==== */', '');
  data.push('/* The scenario\'s processes and threads, regions and handles (indexes of NAMES, REGIONS, HANDLES). */');
  for (const n of [names, regions, handles]) if (n.list.length > 0) data.push(n.decl());
  data.push('');
  steps.forEach((s, i) => {
    const comment = [`/* line ${s.step.pos.line}: ${ctext(s.step.text)}`];
    if (s.skipped !== null) comment.push(` * skipped: ${ctext(s.skipped)}`);
    data.push(`${comment.join('\n')} */`, `static void step_${i}(void)`, '{', `\t${s.code}`, '}', '');
  });
  data.push('static const struct stepdef STEPS[] = {');
  steps.forEach((s, i) => data.push(`\t{ ${s.step.pos.line}, ${cstr(s.step.text)}, step_${i} },`));
  if (steps.length === 0) data.push('\t{ 0, "", NULL },');
  data.push('};', '');
  data.push('int main(void)', '{', `\treturn run_scenario(VARIANTS, STEPS, ${steps.length});`, '}', '');
  out.push(data.join('\n'));

  const checks = (v: VariantData): number => v.steps.reduce((n, s) => n + s.obs.length, 0);
  return {
    source: out.join('\n'),
    scenario: sc.name,
    file: sc.file,
    base: base.name,
    variants: [
      { profile: v0.profile.name, skip: v0.skip, checks: checks(v0) },
      { profile: v1.profile.name, skip: v1.skip, checks: checks(v1) },
    ],
    variantsDiffer: v0.skip !== v1.skip || v0.count !== v1.count || JSON.stringify(v0.steps) !== JSON.stringify(v1.steps),
    skipped: skippedSteps,
  };
}
