// A swapout, pageout or ksm merge this machine cannot replay (no swap file, no KSM, not root):
// the note that stops the comparison of frames, counters and short-term references after it
// says what the model did, from the model's own swap or KSM row after that step, never that it
// swapped or merged what it did not. The machine's refusal is simulated by replacing the
// session's answer (swap(), ksmMerge()) for one scenario; the reads through a pipe after it are
// short-term references, whose reason no machine setting (a running ksmd) takes first.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { oracleScenario, type OracleResult } from '../../src/oracle/oracle.js';
import { modelDid } from '../../src/oracle/replay.js';
import { openLive, steps, v6 } from './helpers.js';

const live = openLive();
after(() => live.session?.close());

const TAIL = ' and this run could not: frame sharing, counters and what short-term references see may differ from here on';

/** The scenario with the session's swap() or ksmMerge() answering `why`; null when this machine skips it. */
function refused(t: { skip(why: string): void }, what: 'swap' | 'ksmMerge', name: string, lines: string[]): OracleResult | null {
  if (!live.session) {
    t.skip(live.reason);
    return null;
  }
  const system = live.session.system as unknown as Record<string, unknown>;
  system[what] = () => `${what} refused [this test]`;
  let r: OracleResult;
  try {
    r = oracleScenario(live.session, steps(name, ...lines), v6());
  } finally {
    delete system[what];
  }
  if (r.status === 'skipped' || r.status === 'error') {
    t.skip(r.skip ?? r.error ?? '');
    return null;
  }
  const bad = r.steps.flatMap((s) => s.rows.filter((x) => x.verdict === 'disagree').map((x) => `line ${s.line} ${s.text}: model ${x.model}, kernel ${x.kernel}`));
  assert.deepEqual(bad, []);
  return r;
}

/** The reason the last step's read through the pipe is skipped. */
function readNote(r: OracleResult, refusedAt: string): string {
  const step = r.steps.find((s) => s.text === refusedAt)!;
  assert.match(step.skip ?? '', /refused \[this test\]/, 'the step was not replayed');
  const row = r.steps.at(-1)!.rows[0]!;
  assert.equal(row.kind, 'handle-read');
  assert.equal(row.verdict, 'skipped');
  return row.reason ?? '';
}

// Each case: the swapout's lines, the model's row after it, and the note's first words.
const SWAP: [string, string[], string, string][] = [
  ['every page', ['P mmap a 2 rw private', 'P write a = 1', 'P vmsplice a as p', 'swapout P a', 'P read p[0]'],
    'swapped', 'the model swapped out every page of P a[*] at line 6'],
  ['none (mapped twice after fork)', ['P mmap a 2 rw private', 'P write a = 1', 'P fork C', 'P vmsplice a as p', 'swapout P a', 'P read p[0]'],
    'present', 'the model swapped out none of P a[*] at line 7 (present)'],
  ['part (a[1] never touched)', ['P mmap a 2 rw private', 'P write a[0] = 1', 'P vmsplice a[0] as p', 'swapout P a', 'P read p[0]'],
    'a[0] swapped, a[1] not mapped', 'the model swapped out part of P a[*] at line 6 (a[0] swapped, a[1] not mapped)'],
];

for (const [what, lines, row, says] of SWAP) {
  test(`a swapout this machine cannot replay, where the model swaps out ${what}: the note says so`, (t) => {
    const r = refused(t, 'swap', `not-replayed-swap`, lines);
    if (r === null) return;
    const swap = r.steps.find((s) => s.text === 'swapout P a')!.rows.find((x) => x.kind === 'swap')!;
    assert.equal(swap.model, row, 'the model\'s own row');
    assert.equal(readNote(r, 'swapout P a'), `${says}${TAIL}`);
  });
}

test('a madvise pageout this machine cannot replay: the note says what the model swapped out', (t) => {
  const r = refused(t, 'swap', 'not-replayed-pageout', ['P mmap a 2 rw private', 'P write a = 1', 'P vmsplice a as p', 'P madvise a pageout', 'P read p[0]']);
  if (r === null) return;
  assert.equal(readNote(r, 'P madvise a pageout'), `the model swapped out every page of P a[*] at line 6${TAIL}`);
});

test('a ksm merge this machine cannot replay, where the model merges: the note names the pages that map a KSM page', (t) => {
  const r = refused(t, 'ksmMerge', 'not-replayed-ksm', ['P mmap a 2 rw private', 'P write a = 1', 'P madvise a mergeable', 'ksm merge', 'P vmsplice a as p', 'P read p[0]']);
  if (r === null) return;
  assert.equal(readNote(r, 'ksm merge'), `the model's ksm merge at line 6 left P a[0..1] mapping a KSM page${TAIL}`);
});

test('a ksm merge this machine cannot replay, where the model merges nothing (two different values): the note does not say it merged', (t) => {
  const r = refused(t, 'ksmMerge', 'not-replayed-ksm-none', ['P mmap a 2 rw private', 'P write a[0] = 1', 'P write a[1] = 2', 'P madvise a mergeable', 'ksm merge', 'P vmsplice a as p', 'P read p[0]']);
  if (r === null) return;
  const note = readNote(r, 'ksm merge');
  assert.equal(note, `the model's ksm merge at line 7 left no page mapping a KSM page${TAIL}`);
  assert.doesNotMatch(note, /merged/);
});

test('modelDid: without the model\'s row (a replay driven without the model) it says only what the model may have done', () => {
  assert.equal(modelDid('swapout', 5, null), 'the model may have swapped pages out at line 5');
  assert.equal(modelDid('ksm-merge', 7, null), 'the model may have merged identical pages (KSM) at line 7');
  assert.equal(modelDid('madvise-pageout', 5, { what: 'P a[0]', actual: 'not mapped' }), 'the model swapped out none of P a[0] at line 5 (not mapped)');
});
