// Handles the live run cannot take (a read-only or short pin, a gup, no io_uring, a resource
// limit of the helper, a device-exclusive grant): the note that stops the comparison of frames
// and counters after them says what the model holds, from the model's own answer. Where the
// model's call failed too, it says so and never "the model holds h".

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { oracleScenario, type OracleResult } from '../../src/oracle/oracle.js';
import { builtinProfile, withOverrides } from '../../src/profiles/resolve.js';
import { openLive, steps, v6 } from './helpers.js';

const live = openLive();
after(() => live.session?.close());

/** Nothing disagrees; the row of `expect stat frames_used == N` (the last line) is skipped: its reason. */
function lossNote(r: OracleResult): string {
  const bad = r.steps.flatMap((s) => s.rows.filter((x) => x.verdict === 'disagree').map((x) => `line ${s.line} ${s.text}: model ${x.model}, kernel ${x.kernel}`));
  assert.deepEqual(bad, []);
  const stat = r.steps.at(-1)!.rows.find((x) => x.what === 'frames_used')!;
  assert.equal(stat.verdict, 'skipped', 'frames_used is not compared after the missing handle');
  return stat.reason ?? '';
}

/** Runs the scenario; null when this machine skips it (the reason then goes to t.skip). */
function run(t: { skip(why: string): void }, name: string, ...lines: string[]): OracleResult | null {
  if (!live.session) {
    t.skip(live.reason);
    return null;
  }
  const r = oracleScenario(live.session, steps(name, ...lines), v6());
  if (r.status === 'skipped' || r.status === 'error') {
    t.skip(r.skip ?? r.error ?? '');
    return null;
  }
  return r;
}

// Each case: the model's call fails (EFAULT) where the live run cannot even try it.
const FAILING: [string, string, string[]][] = [
  ['a R/O long-term pin of a PROT_NONE page', 'h', ['P mmap a 1 none private', 'P pin a as h ro longterm']],
  ['a short pin for writing of a read-only page', 'h', ['P mmap a 1 ro private', 'P pin a as h rw short']],
  ['a gup for writing of a read-only page', 'g', ['P mmap a 1 ro private', 'P gup a as g rw']],
];

for (const [what, h, lines] of FAILING) {
  test(`${what}: the model's GUP fails, and the note says so (not that the model holds ${h})`, (t) => {
    const r = run(t, 'missing-failed', ...lines, 'expect stat frames_used == 0');
    if (r === null) return;
    const note = lossNote(r);
    assert.match(note, new RegExp(`the model's GUP for ${h} \\(line 4\\) failed with EFAULT \\(no handle on either side\\)`));
    assert.doesNotMatch(note, /model holds/);
  });
}

test('a R/O long-term pin the model takes: the note says the model holds it', (t) => {
  const r = run(t, 'missing-held', 'P mmap a 1 rw private', 'P write a = 1', 'P pin a as h ro longterm', 'expect stat frames_used == 1');
  if (r === null) return;
  assert.match(lossNote(r), /the model holds h \(line 5\), which this run could not take: its references and unsharing may change/);
});

test('no io_uring here: a long-term pin the model refuses (EFAULT) is said to fail in the model, not to be held', (t) => {
  if (!live.session) return t.skip(live.reason);
  const f = live.session.facilities;
  const was = { uring: f.uring, uringWhy: f.uringWhy };
  // As a machine without io_uring: the probe's answer, replaced for this scenario only.
  f.uring = false;
  f.uringWhy = 'io_uring buffer registration fails here (ENOSYS: no io_uring in this kernel) [this test]';
  let r: OracleResult | null;
  try {
    r = run(t, 'missing-nouring', 'P mmap a 1 ro private', 'P pin a as h rw longterm', 'expect stat frames_used == 0');
  } finally {
    Object.assign(f, was);
  }
  if (r === null) return;
  const pin = r.steps.find((s) => s.text === 'P pin a as h rw longterm')!;
  assert.match(pin.skip ?? '', /\[this test\]/);
  const note = lossNote(r);
  assert.match(note, /the model's GUP for h \(line 4\) failed with EFAULT \(no handle on either side\)/);
  assert.doesNotMatch(note, /model holds/);
});

/** Pages one of the helper's pipes holds (agent_handles.c pipe_max_pages: fs/pipe-max-size as a power of two, at least 16). */
function pipePages(): number {
  const max = Math.floor(Number(readFileSync('/proc/sys/fs/pipe-max-size', 'utf8')) / 4096);
  let per = 16;
  while (per * 2 <= max) per *= 2;
  return per;
}

test('a vmsplice the helper cannot hold (more pages than its 8 pipes: E2BIG) where the model\'s fails too: the note says both have none', (t) => {
  const pages = 8 * pipePages() + 1;
  if (pages > 8193) return t.skip(`fs/pipe-max-size is ${readFileSync('/proc/sys/fs/pipe-max-size', 'utf8').trim()}: the helper's pipes hold ${pages - 1} pages, too many to map in this test`);
  const r = run(t, 'missing-e2big', `P mmap a ${pages} none private`, 'P vmsplice a as p', 'expect stat frames_used == 0');
  if (r === null) return;
  const vms = r.steps.find((s) => s.text === 'P vmsplice a as p')!;
  assert.match(vms.skip ?? '', /E2BIG/, 'the live run could not take it');
  const note = lossNote(r);
  assert.match(note, /the model's GUP for p \(line 4\) failed with EFAULT \(no handle on either side\)/);
  assert.doesNotMatch(note, /model holds/);
});

test('a device-exclusive request the model refuses (EFAULT: a PROT_NONE page): the note says it holds none of the pages, not that a device was given access', (t) => {
  const r = run(t, 'missing-exclusive-failed', 'P mmap a 1 none private', 'device exclusive P a as x', 'expect stat frames_used == 0');
  if (r === null) return;
  const note = lossNote(r);
  assert.match(note, /the model's device-exclusive request for x \(line 4\) failed with EFAULT: it holds none of its pages/);
  assert.doesNotMatch(note, /model holds|gave a device/);
});

test('a device-exclusive grant the model makes: the note says the model holds it', (t) => {
  const r = run(t, 'missing-exclusive-held', 'P mmap a 1 rw private', 'P write a = 1', 'device exclusive P a as x', 'expect stat frames_used == 1');
  if (r === null) return;
  assert.match(lossNote(r), /the model holds x \(line 5\), which this run could not take: its device-exclusive entries may change/);
});

const PART = ['P mmap a 2 rw private', 'P write a = 1', 'P mprotect a[1] none', 'device exclusive P a as x', 'expect stat frames_used == 2'];

test('a device-exclusive request that stops at a PROT_NONE page, 6.15 on: the note says how many pages the model holds', (t) => {
  const r = run(t, 'missing-exclusive-part', ...PART);
  if (r === null) return;
  assert.match(lossNote(r), /the model holds 1 of the 2 pages of x \(line 6: its device-exclusive request ended EFAULT\), which this run could not take: its device-exclusive entries may change/);
});

test('the same request, 5.14 to 6.14 (a short GUP count: the driver maps none): the note says the model holds none of the pages', (t) => {
  if (!live.session) return t.skip(live.reason);
  const r = oracleScenario(live.session, steps('missing-exclusive-short', ...PART), builtinProfile('v5.14')!);
  if (r.status === 'skipped' || r.status === 'error') return t.skip(r.skip ?? r.error ?? '');
  const note = lossNote(r);
  assert.match(note, /the model's device-exclusive request for x \(line 6\) failed with EBUSY: it holds none of its pages/);
  assert.doesNotMatch(note, /model holds/);
});

test('a device write through a pin the model could not take either (a short pin for writing of a read-only page): values stay compared', (t) => {
  // No expect line: a read fault maps the zero page or a fresh page, as this host does.
  const r = run(t, 'missing-device-write', 'P mmap a 1 ro private', 'P pin a as h rw short', 'device write h[0] = 5', 'P read a[0]');
  if (r === null) return;
  const write = r.steps.find((s) => s.text === 'device write h[0] = 5')!;
  assert.match(write.skip ?? '', /no h in this run/);
  const read = r.steps.find((s) => s.text === 'P read a[0]')!.rows[0]!;
  assert.deepEqual([read.model, read.kernel, read.verdict], ['0', '0', 'agree'], 'the model\'s device wrote nothing: the read is compared');
});

test('a slow pin over a page the kernel protected and the model did not (what-if: fork asks the parent\'s VMA, so the early COW copy drops the bit): not replayed, and the notes say the model holds h', (t) => {
  if (!live.session) return t.skip(live.reason);
  if (!live.session.facilities.uffdWp) return t.skip(live.session.facilities.uffdWhy ?? 'no userfaultfd write-protect here');
  const sc = steps('missing-slow-pin-held', 'P mmap a 1 rw private', 'P write a = 1', 'P uffd fork-event on', 'P uffd register a wp',
    'P pin a as h0 rw longterm fast', 'P uffd protect a', 'P fork C', 'C pin a as h rw longterm', 'expect stat frames_used == 2');
  const r = oracleScenario(live.session, sc, withOverrides(v6(), ['uffdWpForkVma=src-vma']));
  if (r.status === 'skipped' || r.status === 'error') return t.skip(r.skip ?? r.error ?? '');
  const pin = r.steps.find((s) => s.text === 'C pin a as h rw longterm')!;
  assert.equal(pin.rows[0]?.model, 'ok', 'the model\'s pin is taken: its copy is not protected');
  assert.match(pin.skip ?? '', /FAULT_FLAG_ALLOW_RETRY/, 'the kernel\'s copy is protected: the slow pin is not replayed');
  assert.doesNotMatch(pin.skip ?? '', /model/, 'the reason claims nothing of the model');
  const note = lossNote(r);
  assert.match(note, /the model holds h \(line 10\), which this run could not take/);
  assert.doesNotMatch(note, /failed/);
});

test('a device write through a short pin the model holds: values are not compared after it, and the note says the model\'s device wrote', (t) => {
  const r = run(t, 'missing-device-wrote', 'P mmap a 1 rw private', 'P write a = 1', 'P pin a as h rw short', 'device write h[0] = 5', 'P read a[0]');
  if (r === null) return;
  const read = r.steps.find((s) => s.text === 'P read a[0]')!.rows[0]!;
  assert.deepEqual([read.model, read.kernel, read.verdict], ['5', '1', 'skipped']);
  assert.match(read.reason ?? '', /^the model's device wrote through h \(line 6\), which this run could not take$/);
});
