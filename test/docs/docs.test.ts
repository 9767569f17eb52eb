// The documentation against the code: every example command of README.md, docs/*.md and the
// --help texts runs with the exit status the text gives it; every switch of every profile is
// in docs/profiles.md; every example scenario of docs/scenario-language.md runs with the
// outcomes it states, and together they use every operation, option, counter and outcome the
// parser knows; the README's samples are what cowlab prints; nothing points outside the repo.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';
import * as HELP from '../../src/cli/help.js';
import { BUILTIN_PROFILES, LTS_PROFILES } from '../../src/profiles/builtin.js';
import { SWITCH_NAMES, SWITCH_VALUES } from '../../src/profiles/resolve.js';
import { parseScenario } from '../../src/scenario/parse.js';
import { VIOLATION_KINDS, type Step } from '../../src/scenario/index.js';
import {
  ADVICES, ASYNC_OPS, DEVICE_OPS, EXPECTATIONS, PROCESS_OPS, PROTS, STAT_NAMES, SYSTEM_OPS, THREAD_OPS, UFFD_ACTIONS,
} from '../../src/scenario/steps.js';
import { CONFIG_KEYS, OUTCOME_WORDS, TOP_KEYS } from '../../src/scenario/envelope.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

function cli(argv: string[]): { code: number; out: string; err: string } {
  const out: string[] = [];
  const err: string[] = [];
  const code = main(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  if (typeof code !== 'number') throw new Error(`cowlab ${argv.join(' ')} answered a promise`);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const LANG = 'docs/scenario-language.md';

function yamlBlocks(doc: string): string[] {
  return [...read(doc).matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => /^name:/m.test(b) && /^steps:/m.test(b));
}

// ---- example commands ---------------------------------------------------------------------------

/**
 * Commands the test does not run, by what they start with: they need the live kernel (and root,
 * a swap file, ksmd), or they serve until stopped. test/oracle and test/web run them.
 */
const NOT_RUN: { prefix: string; why: string }[] = [
  { prefix: 'npx cowlab oracle ', why: 'replays on the live kernel (test/oracle)' },
  { prefix: 'npx cowlab serve ', why: 'serves until stopped (test/web)' },
];
/** The doc marks a command too slow for this test with this word in its comment. */
const SLOW_MARKER = '(slow)';
/** Every command that carries the marker: kept short, and each one named here. */
const SLOW = [
  'npx cowlab explore --kernel cowpt-rfc --depth 6 --ops write,read,fork-cowpt,exit,munmap,dontneed,pin,device-write,device-read --all',
  // Whole depth-6 searches that replay every violating sequence; test/explore/findings.test.ts runs each.
  'npx cowlab explore --kernel v5.9-rc4 --baseline v5.8',
  'npx cowlab explore --kernel v5.7 --baseline v5.8',
  'npx cowlab explore --kernel v5.8 --baseline v5.7 --reverse',
  'npx cowlab explore --kernel v5.7 --all',
  'npx cowlab explore --kernel v5.9-rc4 --all',
];

interface Example {
  where: string;
  command: string;
  /** The rest of the line: a comment that may say `exit N` or carry the slow marker. */
  note: string;
}

/** `npx cowlab ...` in shell blocks (up to a `#` comment), in inline code, and in the help texts. */
function examples(): Example[] {
  const out: Example[] = [];
  for (const doc of DOCS) {
    const lines = read(doc).split('\n');
    let fence: string | null = null;
    lines.forEach((line, i) => {
      const where = `${doc}:${i + 1}`;
      const f = /^\s*```(\w*)/.exec(line);
      if (f) {
        fence = fence === null ? f[1]! : null;
        return;
      }
      if (fence === 'sh') {
        const m = /^\s*(npx cowlab [^#]*?)\s*(#.*)?$/.exec(line);
        if (m) out.push({ where, command: m[1]!, note: m[2] ?? '' });
        return;
      }
      if (fence !== null) return;
      for (const m of line.matchAll(/`(npx cowlab [^`]*)`([^`]*)/g)) out.push({ where, command: m[1]!.trim(), note: m[2]! });
    });
  }
  for (const [name, text] of Object.entries(HELP)) {
    if (typeof text !== 'string') continue;
    text.split('\n').forEach((line, i) => {
      const m = /^(?:\s*|\s*examples?:\s*)(npx cowlab .*?)(\s{2,}.*)?$/.exec(line);
      if (m) out.push({ where: `--help (${name}):${i + 1}`, command: m[1]!, note: m[2] ?? '' });
    });
  }
  return out;
}

/** Shell words: blanks separate, single and double quotes group. */
function words(command: string): string[] {
  const out: string[] = [];
  for (const m of command.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

test('every example command of README, docs and --help runs with the exit status it is given', (t) => {
  const all = examples();
  assert.ok(all.length >= 30, `found only ${all.length} example commands`);
  const cwd = process.cwd();
  const ran: string[] = [];
  // The reference says "save it as first.scn.yaml and run ...": its examples, saved.
  const saved = mkdtempSync(join(tmpdir(), 'cowlab-docs-'));
  const files = new Map<string, string>();
  for (const b of yamlBlocks(LANG)) {
    const name = `${/^name: (\S+)/m.exec(b)![1]!}.scn.yaml`;
    files.set(name, join(saved, name));
    writeFileSync(join(saved, name), b);
  }
  try {
    process.chdir(ROOT);
    for (const ex of all) {
      const at = `${ex.where}: ${ex.command}`;
      assert.doesNotMatch(ex.command, /\b(FILE|DIR|NAME|PATH)\b/, `${at}: an example must run as written (no placeholder)`);
      if (NOT_RUN.some((n) => ex.command.startsWith(n.prefix))) continue;
      if (ex.note.includes(SLOW_MARKER)) {
        assert.ok(SLOW.includes(ex.command), `${at}: marked ${SLOW_MARKER} but not listed in SLOW`);
        continue;
      }
      const exit = /\bexit (\d)\b/.exec(ex.note);
      const expected = exit ? Number(exit[1]) : 0;
      const [npx, cowlab, ...rest] = words(ex.command);
      assert.equal(`${npx} ${cowlab}`, 'npx cowlab');
      const argv = rest.map((w) => (ex.where.startsWith(LANG) && !existsSync(w) ? files.get(w) ?? w : w));
      const r = cli(argv);
      assert.equal(r.code, expected, `${at}: exit ${r.code}, the text says ${expected}\n${r.err}${r.out.slice(0, 2000)}`);
      assert.doesNotMatch(r.err, /internal error/, at);
      ran.push(ex.command);
    }
  } finally {
    process.chdir(cwd);
    rmSync(saved, { recursive: true, force: true });
  }
  assert.ok(ran.length >= 20, `ran only ${ran.length}`);
  t.diagnostic(`${ran.length} of ${all.length} example commands run; the others: ${NOT_RUN.map((n) => n.prefix.trim()).join(', ')} and ${SLOW.length} marked ${SLOW_MARKER}`);
});

test('every command has --help, exit 0, the same text as `help COMMAND`', () => {
  const main = cli(['--help']);
  assert.equal(main.code, 0);
  const list = /\ncommands:\n([\s\S]*?)\n\n/.exec(main.out);
  assert.ok(list, 'the main help lists its commands');
  const commands = [...list[1]!.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  assert.ok(commands.length >= 6, commands.join(' '));
  for (const c of commands) {
    const h = cli([c, '--help']);
    assert.equal(h.code, 0, c);
    assert.match(h.out, new RegExp(`usage: cowlab ${c}`), c);
    assert.equal(cli(['help', c]).out, h.out, c);
  }
});

// ---- docs/profiles.md ---------------------------------------------------------------------------

/** The rows of the markdown table under `## heading`: cells without the outer bars. */
function table(doc: string, heading: string): string[][] {
  const text = read(doc);
  const start = text.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `${doc}: no section '## ${heading}'`);
  const end = text.indexOf('\n## ', start + 1);
  const rows = text.slice(start, end < 0 ? undefined : end).split('\n').filter((l) => l.startsWith('|'));
  return rows.slice(2).map((l) => l.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
}

test('docs/profiles.md has every switch of every profile, each value, and a commit for each', () => {
  const rows = table('docs/profiles.md', 'Switches');
  const documented = new Map(rows.map((r) => [/^`([A-Za-z]+)`$/.exec(r[0]!)?.[1] ?? r[0]!, r]));
  const switches = new Set<string>(SWITCH_NAMES);
  for (const p of [...BUILTIN_PROFILES, ...LTS_PROFILES]) {
    for (const key of Object.keys(p)) if (key !== 'name' && key !== 'summary' && key !== 'source') switches.add(key);
  }
  for (const s of switches) {
    const row = documented.get(s);
    assert.ok(row, `docs/profiles.md: switch '${s}' is missing from the table of switches`);
    assert.equal(row.length, 4, `docs/profiles.md: the row of '${s}' has ${row.length} cells`);
    const values = SWITCH_VALUES[s as keyof typeof SWITCH_VALUES] ?? [];
    assert.ok(values.length > 0, `switch '${s}' has no values in SWITCH_VALUES`);
    for (const v of values) assert.ok(row[1]!.includes(`\`${v}\``), `docs/profiles.md: '${s}' does not list its value '${v}'`);
    for (const p of [...BUILTIN_PROFILES, ...LTS_PROFILES]) {
      const v = String((p as unknown as Record<string, unknown>)[s]);
      assert.ok(values.includes(v), `${p.name}.${s} = ${v}: not a value of SWITCH_VALUES`);
    }
    assert.match(row[3]!, /\b[0-9a-f]{12}\b|seed 00\d|\(the model\)|\(a machine fact/, `docs/profiles.md: '${s}' names no commit`);
  }
  const profiles = new Set(table('docs/profiles.md', 'Profiles').map((r) => /^`(.+)`$/.exec(r[0]!)?.[1]));
  for (const p of BUILTIN_PROFILES) assert.ok(profiles.has(p.name), `docs/profiles.md: profile '${p.name}' is missing`);
  const lts = table('docs/profiles.md', 'Long-term kernels');
  for (const p of LTS_PROFILES) {
    const row = lts.find((r) => r[0] === `\`${p.name}\``);
    assert.ok(row, `docs/profiles.md: long-term kernel '${p.name}' is missing from its table`);
    assert.equal(row.length, 4, `docs/profiles.md: the row of '${p.name}' has ${row.length} cells`);
    assert.match(row[3]!, /\b\d+\.\d+\.\d+\b/, `docs/profiles.md: '${p.name}' names no stable release it was checked in`);
  }
});

// ---- docs/scenario-language.md ------------------------------------------------------------------


test('every example scenario of the language reference runs with the outcomes it states, on every profile', () => {
  const blocks = yamlBlocks(LANG);
  assert.ok(blocks.length >= 10, `only ${blocks.length} examples`);
  const dir = mkdtempSync(join(tmpdir(), 'cowlab-docs-'));
  try {
    const names = new Set<string>();
    for (const b of blocks) {
      const name = /^name: (\S+)/m.exec(b)![1]!;
      assert.ok(!names.has(name), `two examples named ${name}`);
      names.add(name);
      assert.match(b, /^outcomes:/m, `${name}: an example states its outcomes`);
      const f = join(dir, `${name}.scn.yaml`);
      writeFileSync(f, b);
      const r = cli(['compare', f, '--json']);
      assert.equal(r.code, 0, `${name}: ${r.err}${r.out}`);
      const doc = JSON.parse(r.out);
      const judged = Object.values(doc.scenarios[0].cells as Record<string, { verdict: string | null }>).filter((c) => c.verdict !== null);
      assert.ok(judged.length >= 1, `${name}: no profile judged`);
      assert.ok(judged.every((c) => c.verdict === 'pass'), name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the examples of the reference use every operation, option, counter and outcome the parser knows', () => {
  const steps: Step[] = [];
  const envelopes: string[] = [];
  for (const b of yamlBlocks(LANG)) {
    const r = parseScenario(b, 'example.scn.yaml');
    assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'));
    steps.push(...r.scenario.steps);
    envelopes.push(b);
  }
  const text = read(LANG);
  const seen = new Set<string>();
  for (const s of steps) {
    seen.add(`op:${s.op}`);
    const x = s as unknown as Record<string, unknown>;
    if (s.op === 'mmap') {
      seen.add(`prot:${s.prot}`).add(s.shared ? 'shared' : 'private');
      if (s.populate) seen.add('populate');
      if (s.thp) seen.add(s.thp);
    }
    if (s.op === 'mprotect') seen.add(`prot:${s.prot}`);
    if (s.op === 'madvise') seen.add(`advice:${s.advice}`);
    if (s.op === 'pin') seen.add(`pin:${s.write ? 'rw' : 'ro'}`).add(`pin:${s.longterm ? 'longterm' : 'short'}`).add(`pin:${s.fast ? 'fast' : 'slow'}`);
    if (s.op === 'gup') seen.add(`gup:${s.write ? 'rw' : 'ro'}`).add(`gup:${s.fast ? 'fast' : 'slow'}`);
    if (x['async'] === true) seen.add(`async:${s.op}`);
    if (s.op === 'read') seen.add(`read:${s.expect?.kind ?? 'none'}`);
    if (s.op === 'device-atomic') seen.add(`atomic:${s.expect ?? 'none'}`);
    if (s.op === 'expect-frame') seen.add(s.same ? 'expect:same-frame' : 'expect:other-frame');
    if (s.op === 'expect-mapped') seen.add(s.once ? 'expect:mapped-once' : 'expect:mapped-shared');
    if (s.op === 'expect-exclusive') seen.add(s.exclusive ? 'expect:anon-exclusive' : 'expect:not-anon-exclusive');
    if (s.op === 'expect-uffd-wp') seen.add(s.wp ? 'expect:uffd-wp' : 'expect:not-uffd-wp');
    if (s.op === 'uffd') seen.add(`uffd:${s.action}`);
    if (s.op === 'expect-stat') seen.add(`stat:${s.statProc === null ? s.stat : s.stat.replace(/\..*/, '.P')}`).add(`cmp:${s.cmp}`);
  }
  const need: string[] = [];
  for (const op of PROCESS_OPS) need.push(op === 'read' ? 'op:read-handle' : `op:${op}`);
  need.push('op:read');
  for (const op of THREAD_OPS) need.push(`op:${op}`);
  for (const a of UFFD_ACTIONS) need.push(`uffd:${a}`);
  for (const op of ASYNC_OPS) need.push(`async:${op}`);
  for (const op of SYSTEM_OPS) if (op !== 'device' && op !== 'expect' && op !== 'ksm') need.push(`op:${op}`);
  need.push('op:ksm-merge');
  for (const op of DEVICE_OPS) need.push(`op:device-${op}`);
  for (const p of PROTS) need.push(`prot:${p}`);
  for (const a of ADVICES) need.push(`advice:${a}`);
  for (const e of EXPECTATIONS) need.push(`expect:${e}`);
  for (const s of STAT_NAMES) need.push(`stat:${s}`);
  for (const c of ['==', '!=', '<', '<=', '>', '>=']) need.push(`cmp:${c}`);
  need.push('shared', 'private', 'populate', 'nothp', 'pin:rw', 'pin:ro', 'pin:longterm', 'pin:short', 'pin:fast', 'pin:slow',
    'gup:ro', 'gup:fast', 'gup:slow', 'read:value', 'read:fault', 'read:none', 'atomic:none', 'atomic:revoked', 'atomic:denied');
  const missing = need.filter((n) => !seen.has(n));
  assert.deepEqual(missing, [], `${LANG}: no example uses ${missing.join(', ')}`);
  const all = envelopes.join('\n');
  for (const k of TOP_KEYS) assert.match(all, new RegExp(`^${k}:`, 'm'), `no example has the key '${k}'`);
  for (const k of CONFIG_KEYS) assert.match(all, new RegExp(`^  ${k}:`, 'm'), `no example has config '${k}'`);
  for (const w of OUTCOME_WORDS) assert.match(all, new RegExp(`^  ("\\*"|v[0-9.a-z+-]+): ${w.replace('/', '\\/')}\\b`, 'm'), `no example states the outcome '${w}'`);
  assert.match(all, /^ {2}("\*"|v[0-9.a-z+-]+): \[[a-z-]+(, [a-z-]+)*\]/m, 'no example states a list of violation kinds');
  assert.match(all, /^ {2}"\*":/m, 'no example uses "*"');
  for (const k of VIOLATION_KINDS) assert.match(text, new RegExp(`^\\| \`${k}\` \\|`, 'm'), `${LANG}: violation kind '${k}' is not in the table`);
  for (const k of STAT_NAMES) assert.match(text, new RegExp(`^\\| \`${k.replace('.', '\\.')}\` \\|`, 'm'), `${LANG}: counter '${k}' is not in the table`);
});

test('each operation row of the reference gives an example that one of its example scenarios runs', () => {
  const steps = new Set(yamlBlocks(LANG).flatMap((b) => b.slice(b.indexOf('steps: |')).split('\n').slice(1).map((l) => l.replace(/#.*/, '').trim()).filter(Boolean)));
  const rows = read(LANG).split('\n').filter((l) => /^\| `[^`]*` \|.*\| `[^`]*` \|$/.test(l));
  let n = 0;
  const missing: string[] = [];
  for (const row of rows) {
    const example = /\| `([^`]*)` \|$/.exec(row)![1]!;
    if (/^[a-z"*0-9.-]+: /.test(example)) continue; // an outcome (`v6: ok`), checked above
    n++;
    if (!steps.has(example)) missing.push(example);
  }
  assert.deepEqual(missing, [], `${LANG}: examples in no example scenario`);
  assert.ok(n >= 30, `only ${n} operation examples`);
});

test('the v1.2 features the parser does not model are refused with an error naming line and column', () => {
  // (THP's config.thp, madvise hugepage/nohugepage/collapse and AnonHugePages_kB are modelled, and
  // so is hugetlb: mmap ... hugetlb and config.hugepages; what is left are malformed uses.)
  const cases: [string, RegExp][] = [
    ['  P mmap big 100 hugetlb', /multiple of 512/],
    ['  P mmap big 512 thp hugetlb', /conflicting options 'thp' and 'hugetlb'/],
  ];
  for (const [line, re] of cases) {
    const r = parseScenario(`name: x\nsteps: |\n  P mmap buf 512\n${line}\n`, 'x.scn.yaml');
    assert.ok(!r.ok && r.errors.length === 1, line);
    assert.equal(r.errors[0]!.line, 4, line);
    assert.equal(r.errors[0]!.col > 2, true, line);
    assert.match(r.errors[0]!.message, re);
  }
  for (const [key, re] of [['hugepages: -1', /an integer 0 or more/], ['hugepages: 2.5', /an integer 0 or more/]] as const) {
    const r = parseScenario(`name: x\nconfig:\n  ${key}\nsteps: |\n  P mmap buf 1\n`, 'x.scn.yaml');
    assert.ok(!r.ok, key);
    assert.equal(r.errors[0]!.line, 3, key);
    assert.match(r.errors[0]!.message, re, key);
  }
  assert.match(read(LANG), /## Not yet modelled/);
});

// ---- README -------------------------------------------------------------------------------------

test("the README's sample matrix is the first rows of `cowlab compare scenarios/seeds`, in its order", () => {
  const readme = read('README.md');
  const block = /npm ci && npm start\n[\s\S]*?```\n\n[\s\S]*?\n```\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README: the sample matrix after the quick start');
  const sample = block[1]!.split('\n').filter((l) => l !== '' && l !== '...');
  const cwd = process.cwd();
  let real: string[];
  try {
    process.chdir(ROOT);
    real = cli(['compare', 'scenarios/seeds']).out.split('\n');
  } finally {
    process.chdir(cwd);
  }
  assert.ok(sample.length >= 5);
  assert.deepEqual(sample, real.slice(0, sample.length), 'README: paste the first rows `npm start` prints');
});

test("the README's scenario is scenarios/basic/last-sharer-reuses.scn.yaml", () => {
  const sample = /```yaml\n(name: last-sharer-reuses\n[\s\S]*?)```/.exec(read('README.md'));
  assert.ok(sample);
  assert.equal(sample[1], read('scenarios/basic/last-sharer-reuses.scn.yaml'));
});

// ---- self-contained -----------------------------------------------------------------------------

/** The repository's own text files: docs, sources, tests, scenarios, schema, CI (not this test). */
function repoFiles(): string[] {
  const out: string[] = [...DOCS];
  const walk = (dir: string): void => {
    for (const e of readdirSync(join(ROOT, dir))) {
      const p = `${dir}/${e}`;
      if (statSync(join(ROOT, p)).isDirectory()) walk(p);
      else if (/\.(ts|tsx|md|yaml|json|html|css|c|js)$/.test(e) || e === 'run') out.push(p);
    }
  };
  for (const d of ['src', 'test', 'scenarios', 'schema', 'oracle', 'bench', 'bin', '.ci']) if (existsSync(join(ROOT, d))) walk(d);
  return out.filter((f) => f !== 'test/docs/docs.test.ts');
}

test('nothing in the repository points outside it (the research notes, the spec, the seeds)', () => {
  const outside = /shared\/(spec|research|seeds)|kernel-rules\.md|live-kernel-observations|fork-cost\.md|code-anchors|cow-memory-types/;
  const files = repoFiles();
  assert.ok(files.length > 100, `${files.length} files`);
  for (const f of files) {
    const lines = read(f).split('\n');
    lines.forEach((l, i) => assert.doesNotMatch(l, outside, `${f}:${i + 1} points outside the repository`));
  }
});

test('every relative link of README and docs names a file of the repository, and its anchor exists', () => {
  const slug = (h: string): string => h.toLowerCase().replace(/`/g, '').replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
  const anchors = (doc: string): Set<string> => new Set(read(doc).split('\n').filter((l) => /^#{1,6} /.test(l)).map((l) => slug(l.replace(/^#+ /, ''))));
  for (const doc of DOCS) {
    for (const m of read(doc).matchAll(/\]\(([^)\s]+)\)/g)) {
      const link = m[1]!;
      if (/^[a-z]+:/.test(link)) continue;
      const [path, anchor] = link.split('#') as [string, string | undefined];
      const target = path === '' ? doc : relative(ROOT, join(ROOT, dirname(doc), path));
      assert.ok(existsSync(join(ROOT, target)), `${doc}: link ${link}: no file ${target}`);
      if (anchor !== undefined && target.endsWith('.md')) assert.ok(anchors(target).has(anchor), `${doc}: link ${link}: no heading #${anchor} in ${target}`);
    }
  }
});
