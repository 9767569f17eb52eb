// Findings a kernel developer can act on: `--all` reports one counterexample per cause (the
// kernel decisions that produced the violation), named in one line and, where it is one, as the
// story of scenarios/ it is; `--baseline` finds the sequences that violate on one kernel and are
// clean on another. The expected findings are the kernel history the stories tell: v5.7 reuses
// by mapcount (CVE-2020-29374, the vmsplice leak), v5.9-rc4 copies by refcount (seed 001's
// child-exits lost DMA write), v5.8 breaks COW for every GUP, fork's early COW keeps a pinned
// page with its owner.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Counterexample } from '../../src/explore/search.js';
import type { ExploreInput } from '../../src/explore/explore.js';
import { matchStory } from '../../src/explore/stories.js';
import { input, profileOf, replay, run, type Found, type InputOptions } from './helpers.js';

/** An input with `--baseline NAME` (and its `--set`s). */
function regression(kernel: string, o: InputOptions, base: string, baseSets: string[] = [], reverse = false): ExploreInput {
  return { ...input(kernel, o), baseline: { profile: profileOf(base, baseSets), name: base, sets: baseSets, reverse } };
}

function byStory(f: Found, name: string): Counterexample | undefined {
  return f.out.result.counterexamples.find((c) => c.story?.name === name);
}

function describe(f: Found): string {
  return f.out.result.counterexamples.map((c) => `${c.cause?.name} [${c.story?.name ?? '-'}]\n  ${c.steps.join('\n  ')}`).join('\n');
}

/** The counterexample's file replayed on `kernel`: the violation kinds there. */
function kindsOn(f: Found, ce: Counterexample, kernel: string, sets: string[] = []): string[] {
  const i = f.out.result.counterexamples.indexOf(ce);
  return [...new Set(replay(f.files[i]!, kernel, sets).r.violations.map((v) => v.kind))].sort();
}

test('--all on v5.7, default operations: the vmsplice leak is a finding of its own, named as CVE-2020-29374', () => {
  const f = run(input('v5.7', { all: true }));
  const ces = f.out.result.counterexamples;
  const keys = ces.map((c) => c.cause!.key);
  assert.equal(new Set(keys).size, keys.length, 'one counterexample per cause');
  const ce = byStory(f, 'cve-2020-29374-vmsplice-leak');
  assert.ok(ce, `no finding is the vmsplice leak:\n${describe(f)}`);
  assert.deepEqual([...new Set(ce.violations.map((v) => v.kind))], ['leak']);
  // The decision that leaks: the write fault reuses by mapcount although the pipe holds the page.
  assert.ok(ce.cause!.decisions.includes('a write fault reused the page (by mapcount) while the vmsplice reference still held it'), ce.cause!.name);
  assert.ok(ce.cause!.decisions.some((d) => d.startsWith('vmsplice reference of a page shared')), ce.cause!.name);
  assert.ok(ce.story!.exact, 'the same steps as the story, up to renaming');
  // And the R/O pin of the zero page, the first finding, is another cause.
  assert.ok(ces[0]!.cause!.decisions.includes('R/O pin of the zero page'), ces[0]!.cause!.name);
  assert.notEqual(ces[0], ce);
});

test('--all on v5.9-rc4, default operations: the child-exits lost DMA write of seed 001, copied by the refcount rule', () => {
  const f = run(input('v5.9-rc4', { all: true }));
  const ce = byStory(f, 'rdma-pin-fork-child-exits');
  assert.ok(ce, `no finding is the child-exits story:\n${describe(f)}`);
  assert.ok(ce.cause!.decisions.includes('a write fault copied a page mapped once that an extra reference holds (refcount rule)'), ce.cause!.name);
  assert.ok(ce.cause!.decisions.includes('fork shared a page the R/W pin held'), ce.cause!.name);
  // The child exits before the parent's write: the page is mapped once, yet copied.
  assert.ok(ce.steps.some((s) => / exit$/.test(s)), ce.steps.join('\n'));
  // The pin-before-fork finding with a live child (copied by mapcount) is another cause.
  const live = f.out.result.counterexamples.find((c) => c.cause!.decisions.includes('a write fault copied a page another process maps') && c.cause!.decisions.includes('fork shared a page the R/W pin held'));
  assert.ok(live && live !== ce, describe(f));
});

test('--baseline v5.8 on v5.9-rc4: the child-exits regression, clean on v5.8 (reuse by mapcount) and broken on v5.9-rc4', () => {
  const f = run(regression('v5.9-rc4', {}, 'v5.8'));
  assert.equal(f.out.status, 'violation');
  const ce = byStory(f, 'rdma-pin-fork-child-exits');
  assert.ok(ce, describe(f));
  assert.ok(kindsOn(f, ce, 'v5.9-rc4').includes('pin-incoherent'));
  assert.deepEqual(kindsOn(f, ce, 'v5.8'), []);
  // Every sequence reported violates on v5.9-rc4 and is clean on v5.8; the file says both.
  for (const [i, c] of f.out.result.counterexamples.entries()) {
    assert.ok(kindsOn(f, c, 'v5.9-rc4').length > 0, c.steps.join('\n'));
    assert.deepEqual(kindsOn(f, c, 'v5.8'), [], c.steps.join('\n'));
    assert.match(f.files[i]!, /^ {2}"v5\.8": ok$/m);
  }
  // The vmsplice leak is no regression of v5.9-rc4 (its refcount rule copies).
  assert.equal(byStory(f, 'cve-2020-29374-vmsplice-leak'), undefined);
});

test('--baseline v5.8 on v5.7: the vmsplice leak of CVE-2020-29374 (v5.8 breaks COW for every GUP)', () => {
  const f = run(regression('v5.7', {}, 'v5.8'));
  const ce = byStory(f, 'cve-2020-29374-vmsplice-leak');
  assert.ok(ce, describe(f));
  assert.deepEqual(kindsOn(f, ce, 'v5.7'), ['leak']);
  assert.deepEqual(kindsOn(f, ce, 'v5.8'), []);
  // The pin before fork breaks v5.8 too: not a difference between them.
  assert.equal(f.out.result.counterexamples.find((c) => c.story?.name === 'pin-fork-live-child'), undefined, describe(f));
});

test('--baseline v6 on v6 --set forkEarlyCow=false: the pinned page fork shares, as the first answer', () => {
  // Breadth-first, the first answer is the same at any depth from 2 (the docs' example runs the default 6).
  const f = run(regression('v6', { sets: ['forkEarlyCow=false'], depth: 4 }, 'v6'));
  const ce = f.out.result.counterexamples[0]!;
  assert.ok(ce, 'a regression');
  assert.deepEqual(ce.steps, ['P pin buf[0] as h1 rw longterm', 'P fork Q']);
  assert.deepEqual(ce.cause!.decisions, ['R/W pin of an exclusive page', 'fork shared a page the R/W pin held']);
  assert.ok(kindsOn(f, ce, 'v6', ['forkEarlyCow=false']).length > 0);
  assert.deepEqual(kindsOn(f, ce, 'v6'), []);
});

test('--baseline of a kernel against itself finds nothing, even where it has violations', () => {
  // v6 has no violation to compare (the docs' example `--kernel v6 --baseline v6` runs the default depth 6).
  const same = run(regression('v6', { depth: 4 }, 'v6'));
  assert.equal(same.out.status, 'ok');
  assert.deepEqual(same.out.result.counterexamples, []);
  const v57 = run(regression('v5.7', { depth: 4 }, 'v5.7'));
  assert.equal(v57.out.status, 'ok');
  assert.ok(v57.out.violating > 0, 'v5.7 violates, and each was checked on the baseline');
});

test('--baseline --reverse: what the change fixed (violates on the baseline, clean on --kernel)', () => {
  const fixed = run(regression('v5.8', { depth: 6 }, 'v5.7', [], true));
  const ce = byStory(fixed, 'cve-2020-29374-vmsplice-leak');
  assert.ok(ce, describe(fixed));
  assert.deepEqual(kindsOn(fixed, ce, 'v5.7'), ['leak']);
  assert.deepEqual(kindsOn(fixed, ce, 'v5.8'), []);
  assert.match(fixed.files[fixed.out.result.counterexamples.indexOf(ce)]!, /^kernel: v5\.7$/m);
});

test('story matching: up to renaming and fork roles; only where the story violates on that kernel', () => {
  const start = ['P mmap buf 2 rw private'];
  const leak = ['P write buf[0] = v1', 'P fork Q', 'P vmsplice buf[0] as h1', 'P munmap buf[0]', 'Q write buf[0] = v2', 'P read h1[0]'];
  const m = matchStory(start, leak, profileOf('v5.7'), null);
  assert.equal(m?.name, 'cve-2020-29374-vmsplice-leak');
  assert.equal(m?.exact, true);
  // v5.8 does not leak there: the story is not what this sequence shows on v5.8.
  assert.equal(matchStory(start, leak, profileOf('v5.8'), null), null);
  // A sequence with a step the story lacks (a second fork) is not the story.
  const other = ['P write buf[0] = v1', 'P fork Q', 'Q vmsplice buf[0] as h1', 'Q fork R', 'Q munmap buf[0]', 'P write buf[0] = v2', 'Q read h1[0]'];
  assert.notEqual(matchStory(start, other, profileOf('v5.7'), null)?.name, 'cve-2020-29374-vmsplice-leak');
  // Fewer steps than the story: named, with how many of its steps.
  const short = matchStory(start, ['P pin buf[0] as h1 rw longterm', 'P fork Q', 'Q exit', 'P write buf[0] = v1'], profileOf('v5.9-rc4'), null);
  assert.equal(short?.name, 'rdma-pin-fork-child-exits');
  assert.equal(short?.exact, false);
  assert.deepEqual([short?.matched, short?.storySteps], [4, 5]);
});
