// `run --trace`: every PTE and frame a step changed, before and after, in kernel terms (fork:
// the parent's PTE write-protected, the child's new PTE, refcount and mapcount 1 → 2, and from
// 5.19 PageAnonExclusive cleared); a large range summarised with its count; the steps of an
// interleaved kernel path say what they read and decided, credited to the thread that runs
// them, naming only mechanisms the profile has.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runScenario } from '../../src/engine/run.js';
import type { RunResult, StepRecord } from '../../src/engine/result.js';
import { BUILTIN_PROFILES, builtinProfile } from '../../src/profiles/builtin.js';
import { readFileSync } from 'node:fs';
import { parseScenario, type Scenario } from '../../src/scenario/index.js';
import { cli, ROOT, tempFiles } from './helpers.js';

const files = tempFiles('cowlab-trace-', (n) => `t${n}.scn.yaml`);

function scenario(steps: string[]): Scenario {
  const r = parseScenario(['name: t', 'steps: |', ...steps.map((s) => `  ${s}`), ''].join('\n'), 't.scn.yaml');
  if (!r.ok) assert.fail(r.errors.map((e) => e.format()).join('\n'));
  return r.scenario;
}

/** The lines printed under the step whose text is `text`, up to the next step line. */
function stepBlock(out: string, text: string): string[] {
  const lines = out.split('\n');
  const at = lines.findIndex((l) => /^\s+L\d+\s/.test(l) && l.includes(text));
  assert.ok(at >= 0, `a step line for ${text} in\n${out}`);
  const block: string[] = [];
  for (let i = at + 1; i < lines.length && !/^\s+(L\d+|\(end\))\s/.test(lines[i]!) && !/^\s{5,}\(end\)/.test(lines[i]!); i++) block.push(lines[i]!.trim());
  return block;
}

function loadScenarioFile(file: string): Scenario {
  const r = parseScenario(readFileSync(file, 'utf8'), file);
  if (!r.ok) assert.fail(r.errors.map((e) => e.format()).join('\n'));
  return r.scenario;
}

const FORK3 = ['P mmap buf 3 rw private', 'P write buf[0..2] = 1', 'P fork Q'];

describe('run --trace: what a fork changed', () => {
  const f = files.file(['name: fork3', 'steps: |', ...FORK3.map((s) => `  ${s}`), ''].join('\n'));

  it('v6: per page, the parent PTE write-protected, the child PTE, refcount and mapcount 1 → 2, PageAnonExclusive cleared', () => {
    const o = cli('run', f, '--kernel', 'v6', '--trace');
    assert.equal(o.code, 0, o.err);
    const block = stepBlock(o.out, 'P fork Q');
    for (let i = 0; i < 3; i++) {
      const frame = i + 1; // P wrote buf[0..2] in order: frames 1, 2, 3
      const parent = block.find((l) => l.startsWith(`pte   P buf[${i}]:`));
      assert.ok(parent, `P buf[${i}] in\n${block.join('\n')}`);
      // Before: present and writable; after: the same frame without the write bit.
      assert.match(parent, new RegExp(`frame ${frame} \\[present write[^\\]]*\\] → \\[present (?![^\\]]*write)[^\\]]*\\]: write-protected`));
      const child = block.find((l) => l.startsWith(`pte   Q buf[${i}]:`));
      assert.ok(child);
      assert.match(child, new RegExp(`none → frame ${frame} \\[present (?![^\\]]*write)[^\\]]*\\]: new`));
      const fr = block.find((l) => l.startsWith(`frame ${frame}:`));
      assert.ok(fr);
      assert.match(fr, /refcount 1 → 2, mapcount 1 → 2, anon-exclusive \(PageAnonExclusive\) cleared/);
    }
    // The parent's line comes before the child's, and the frame's after both (page by page).
    const pi = block.findIndex((l) => l.startsWith('pte   P buf[0]'));
    const ci = block.findIndex((l) => l.startsWith('pte   Q buf[0]'));
    const fi = block.findIndex((l) => l.startsWith('frame 1:'));
    assert.ok(pi < ci && ci < fi && fi < block.findIndex((l) => l.startsWith('pte   P buf[1]')));
  });

  it('v5.9: no PageAnonExclusive before 5.19, so none is mentioned', () => {
    const o = cli('run', f, '--kernel', 'v5.9', '--trace');
    const block = stepBlock(o.out, 'P fork Q').join('\n');
    assert.match(block, /frame 1: refcount 1 → 2, mapcount 1 → 2$/m);
    assert.doesNotMatch(block, /anon-exclusive|PageAnonExclusive/);
  });

  it('--json --trace carries the changes, before and after', () => {
    const o = cli('run', f, '--kernel', 'v6', '--trace', '--json');
    const r = JSON.parse(o.out) as { results?: RunResult[] } & RunResult;
    const result = r.results?.[0] ?? r;
    const fork = result.steps.find((s) => s.text === 'P fork Q')!;
    const c = fork.changes!;
    assert.equal(c.ptesChanged, 6, 'three PTEs of P, three of Q');
    assert.equal(c.framesChanged, 3);
    const p0 = c.ptes.find((p) => p.proc === 'P' && p.page === 'buf[0]')!;
    assert.ok(p0.before.bits.includes('write') && !p0.after.bits.includes('write'));
    assert.equal(p0.before.pfn, p0.after.pfn);
    const q0 = c.ptes.find((p) => p.proc === 'Q' && p.page === 'buf[0]')!;
    assert.equal(q0.before.target, 'none');
    assert.equal(q0.after.pfn, p0.after.pfn);
    const f0 = c.frames.find((x) => x.pfn === p0.after.pfn)!;
    assert.deepEqual([f0.before.refcount, f0.after.refcount, f0.before.mapcount, f0.after.mapcount], [1, 2, 1, 2]);
    assert.ok(f0.before.flags.includes('anon-exclusive') && !f0.after.flags.includes('anon-exclusive'));
    // Without --trace, no capture is made.
    const plain = JSON.parse(cli('run', f, '--kernel', 'v6', '--json').out) as { results?: RunResult[] } & RunResult;
    assert.equal((plain.results?.[0] ?? plain).steps.find((s) => s.text === 'P fork Q')!.changes, undefined);
  });

  it('a step that changes nothing lists no change', () => {
    const g = files.file(['name: q', 'steps: |', ...FORK3.map((s) => `  ${s}`), '  expect P buf[0] same-frame Q buf[0]', '  check', ''].join('\n'));
    const o = cli('run', g, '--kernel', 'v6', '--trace');
    assert.deepEqual(stepBlock(o.out, 'expect P buf[0] same-frame').filter((l) => /→|: new|cleared/.test(l)), []);
  });
});

describe('run --trace: a 1 GiB fork', () => {
  it('lists the first pages in full and counts the rest, by kind', () => {
    const o = cli('run', join(ROOT, 'scenarios/basic/pagetables-1gib.scn.yaml'), '--trace');
    assert.equal(o.code, 0, o.err);
    const block = stepBlock(o.out, 'P fork Q');
    const pages = 262144;
    assert.ok(block.length < 40, `a summary, not ${block.length} lines`);
    assert.ok(block.some((l) => l.startsWith('pte   P big[0]:') && l.endsWith('write-protected')));
    assert.ok(block.some((l) => l.startsWith('pte   Q big[0]:') && l.endsWith('new')));
    const listedPtes = block.filter((l) => l.startsWith('pte ')).length;
    const listedFrames = block.filter((l) => l.startsWith('frame ')).length;
    const total = 2 * pages + pages; // every PTE of both processes, every frame
    const more = block.find((l) => l.startsWith('…'))!;
    assert.match(more, new RegExp(`^… ${total - listedPtes - listedFrames} more change\\(s\\).*\\(${2 * pages} PTE\\(s\\) and ${pages} frame\\(s\\) changed in all\\)`));
    const perPage = listedPtes / 2;
    assert.ok(block.includes(`${pages - perPage} × P PTE write-protected`), block.join('\n'));
    assert.ok(block.includes(`${pages - perPage} × Q PTE new`));
    assert.ok(block.includes(`${pages - listedFrames} × frame refcount +1, mapcount +1, anon-exclusive (PageAnonExclusive) cleared`));
  });
});

describe('run --trace: the steps of an interleaved kernel path', () => {
  const race = loadScenarioFile(join(ROOT, 'scenarios/seeds/gup-fast-fork-race.scn.yaml'));
  const runOn = (name: string): RunResult => runScenario(race, builtinProfile(name)!, { trace: true, changes: true });
  // Steps by their place in the story (0: `P mmap buf 1`), not by line: outcome lines come and go.
  const at = (r: RunResult, index: number): StepRecord => r.steps[index]!;
  const whys = (s: StepRecord): string => s.events.map((e) => `${e.proc}: ${e.why}`).join('\n');

  it('v5.9: every step says what it read and decided, credited to its thread', () => {
    const r = runOn('v5.9');
    // step 6 P step: the fork's check reads the parent's PTE and decides to share (no pin yet).
    const check = at(r, 6);
    assert.match(whys(check), /^P: copy_present_pte reads the parent's PTE of buf\[0\]: frame 1 \[present write[^\]]*\] \(refcount 1, mapcount 1\);.*share it/m);
    // step 7 Q step: gup-fast reads the PTE, still writable.
    const read = at(r, 7);
    assert.ok(read.events.length > 0);
    for (const e of read.events) assert.equal(e.proc, 'Q', `Q's step is Q's: ${e.why}`);
    assert.match(whys(read), /Q: gup-fast reads the PTE of buf\[0\] without a lock: frame 1 \[present write/);
    // step 8 Q step: the pin is taken, the PTE is unchanged.
    const grab = at(r, 8);
    assert.match(whys(grab), /^Q: gup-fast takes a pin on frame 1 \(refcount \+1024: now 1025\).*unchanged/m);
    assert.deepEqual(grab.changes!.frames.map((f) => [f.pfn, f.before.refcount, f.after.refcount]), [[1, 1, 1025]]);
    // step 9 P step: fork applies its decision: the pinned page is shared, the parent's PTE write-protected.
    const apply = at(r, 9);
    assert.match(whys(apply), /^P: copy_present_pte: R now maps frame 1 of buf\[0\] too; P's PTE loses its write bit; the page was pinned since the check/m);
    const wp = apply.changes!.ptes.find((p) => p.proc === 'P')!;
    assert.equal(wp.change, 'write-protected');
    assert.ok(apply.changes!.ptes.some((p) => p.proc === 'R' && p.before.target === 'none' && p.after.pfn === 1));
    // step 10 Q finish: what gup-fast ends with is Q's.
    for (const e of at(r, 10).events) assert.equal(e.proc, 'Q');
    // The pin is Q's in the text report too.
    const f = join(ROOT, 'scenarios/seeds/gup-fast-fork-race.scn.yaml');
    const o = cli('run', f, '--kernel', 'v5.9', '--trace');
    assert.match(stepBlock(o.out, 'Q finish').join('\n'), /^· Q 1 page\(s\) taken/m);
  });

  it('write_protect_seq is named only on profiles that have it', () => {
    for (const p of BUILTIN_PROFILES) {
      const r = runScenario(race, p, { trace: true, changes: true });
      const text = r.steps.map(whys).join('\n');
      if (p.writeProtectSeq) assert.match(text, /write_protect_seq/, p.name);
      else assert.doesNotMatch(text, /write_protect_seq/, p.name);
    }
  });

  it('MMF_HAS_PINNED and PageAnonExclusive are named only on profiles that have them', () => {
    for (const p of BUILTIN_PROFILES) {
      const r = runScenario(race, p, { trace: true, changes: true });
      const text = r.steps.map(whys).join('\n') + JSON.stringify(r.steps.map((s) => s.changes));
      if (p.forkEarlyCow) assert.match(text, /MMF_HAS_PINNED/, p.name);
      else assert.doesNotMatch(text, /MMF_HAS_PINNED|has_pinned/, p.name);
      if (!p.anonExclusive) assert.doesNotMatch(text, /anon-exclusive|PageAnonExclusive/, p.name);
      if (!p.forkEarlyCow && r.status !== 'n/a') assert.match(whys(at(r, 6)), /this kernel never copies a page at fork: share it/, p.name);
    }
  });

  it('v6: gup-fast sees write_protect_seq odd and leaves the page to the slow path, which waits for the fork', () => {
    const r = runOn('v6');
    assert.match(whys(at(r, 5)), /write_protect_seq odd/);
    assert.match(whys(at(r, 7)), /^Q: gup-fast: a fork is copying this mm \(write_protect_seq odd\)/m);
    assert.match(whys(at(r, 10)), /^Q: Q waits for mmap_lock: P's `P fork R &` runs to its end first/m);
  });

  it('a thread\'s synchronous fault is the thread\'s', () => {
    const r = runScenario(scenario(['P mmap buf 1', 'P thread T', 'T write buf[0] = 1']), builtinProfile('v6')!, { trace: true });
    const e = r.steps[2]!.events.find((x) => x.type === 'anon-fault')!;
    assert.equal(e.proc, 'T');
  });
});
