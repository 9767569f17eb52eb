// docs/json-format.md against what `--json` prints: every field of the real documents of run,
// compare, explore, profiles and export is named in its section, and every field the section's
// example shows is one the command prints.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOC = readFileSync(join(ROOT, 'docs/json-format.md'), 'utf8');

/** `cowlab ARGV... --json` in-process (from the project root), its document. */
function json(...argv: string[]): Record<string, unknown> {
  const out: string[] = [];
  const cwd = process.cwd();
  let code;
  try {
    process.chdir(ROOT);
    code = main([...argv, '--json'], { out: (t) => out.push(t), err: () => {} });
  } finally {
    process.chdir(cwd);
  }
  assert.equal(typeof code, 'number', `cowlab ${argv.join(' ')} answered a promise`);
  assert.ok(code === 0 || code === 1, `cowlab ${argv.join(' ')}: exit ${String(code)}`);
  return JSON.parse(out.join('\n')) as Record<string, unknown>;
}

/** The section `## \`cowlab COMMAND --json\`` of the document, up to the next `## `. */
function section(command: string): string {
  const start = DOC.indexOf(`\n## \`cowlab ${command} --json\``);
  assert.ok(start >= 0, `docs/json-format.md: no section for cowlab ${command} --json`);
  const end = DOC.indexOf('\n## ', start + 1);
  return DOC.slice(start, end < 0 ? undefined : end);
}

/**
 * Every key of a document, nested ones included, but not the keys of `opaque` fields: maps whose
 * keys are data (profile names, counter names, events) rather than fields.
 */
function keys(v: unknown, opaque: ReadonlySet<string>, out = new Set<string>()): Set<string> {
  if (Array.isArray(v)) for (const x of v) keys(x, opaque, out);
  else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.add(k);
      if (!opaque.has(k)) keys(x, opaque, out);
    }
  }
  return out;
}

/** The keys the section's ```json examples show: `"key":`, and `"key"` alone in `{ "a", "b" }`. */
function exampleKeys(text: string): Set<string> {
  const out = new Set<string>();
  for (const block of text.matchAll(/```json\n([\s\S]*?)```/g)) {
    for (const m of block[1]!.matchAll(/"([A-Za-z][A-Za-z0-9]*)"\s*:/g)) out.add(m[1]!);
    for (const m of block[1]!.matchAll(/[{,]\s*"([A-Za-z][A-Za-z0-9]*)"(?=\s*[,}])/g)) out.add(m[1]!);
  }
  return out;
}

/** Both directions for one command: the printed keys named in its section, the example's keys printed. */
function check(command: string, docs: Record<string, unknown>[], opaque: string[], optional: string[] = []): void {
  const text = section(command);
  const printed = new Set<string>();
  const any = new Set<string>();
  for (const d of docs) {
    for (const k of keys(d, new Set(opaque))) printed.add(k);
    for (const k of keys(d, new Set())) any.add(k);
  }
  const unnamed = [...printed].filter((k) => !text.includes(`"${k}"`) && !text.includes(`\`${k}\``) && !new RegExp(`[{,] ?${k}\\b`).test(text));
  assert.deepEqual(unnamed, [], `docs/json-format.md, cowlab ${command} --json: fields printed but not documented`);
  // An example may show a key of an opaque map (a switch's name): any key printed anywhere will do.
  const shown = [...exampleKeys(text)].filter((k) => !any.has(k) && !optional.includes(k));
  assert.deepEqual(shown, [], `docs/json-format.md, cowlab ${command} --json: fields in the example that the command does not print`);
}

const dir = mkdtempSync(join(tmpdir(), 'cowlab-json-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

// A leak on v5.7 (violations), reads with their ideal values, a stats step.
const LEAK = `name: leak
outcomes:
  v6: ok
steps: |
  P mmap buf 1
  P write buf[0] = 1
  P fork Q
  Q vmsplice buf[0] as pipe
  Q munmap buf
  P write buf[0] = 2
  Q read pipe[0] expect 1
  stats
`;

test('run --json: every field printed (with --trace and --stats) is documented, and every one documented is printed', () => {
  const f = join(dir, 'leak.scn.yaml');
  writeFileSync(f, LEAK);
  const docs = [json('run', f, '--kernel', 'v5.7', '--trace', '--stats'), json('run', f)];
  // `interrupted` and `notRun` are printed only after a signal (test/cli/signals.test.ts).
  check('run', docs, ['stats', 'counters'], ['interrupted', 'notRun']);
});

test('compare --json: every field printed is documented, and every one documented is printed', () => {
  check('compare', [json('compare', 'scenarios/seeds/cve-2020-29374-vmsplice-leak.scn.yaml', '--kernels', 'v5.7,v6')], ['cells'], ['interrupted', 'notRun']);
});

test('explore --json: every field printed is documented, and every one documented is printed', () => {
  const docs = [
    json('explore', '--kernel', 'v5.9-rc4', '--depth', '3'),
    json('explore', '--kernel', 'v5.9-rc4', '--baseline', 'v5.8', '--depth', '3'),
    json('explore', '--depth', '2'),
  ];
  assert.deepEqual(docs.map((d) => d['result']), ['violation', 'violation', 'ok']);
  // `violations` are the Violation records of run --json, checked with its section.
  // A spill's fields are printed only when the tree spills (test/explore/spill.test.ts).
  check('explore', docs, ['reached', 'violations'], ['bytes', 'atStates']);
});

test('profiles --json: every field printed is documented, and every one documented is printed', () => {
  // A profile's switches are documented in docs/profiles.md, each checked by docs.test.ts.
  check('profiles', [json('profiles'), json('profiles', 'v6')], ['profiles', 'profile', 'switches']);
});

test('export --json: every field printed is documented, and every one documented is printed', () => {
  const c = join(dir, 'repro.c');
  check('export', [json('export', 'scenarios/seeds/pin-ro-after-fork.scn.yaml', '-o', c)], []);
});
