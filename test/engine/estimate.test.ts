// The host-memory estimate of a scenario: page mappings summed over the address spaces, a fork
// copying the parent's, threads sharing their process's, munmap and the last task's exit giving
// theirs back; the peak and the step that first reached it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BYTES_PER_PAGE_MAPPING, estimateScenario } from '../../src/engine/estimate.js';
import { parseScenario } from '../../src/scenario/index.js';

function estimate(steps: string, limit?: number): ReturnType<typeof estimateScenario> {
  const r = parseScenario(`name: e\nsteps: |\n${steps.trim().split('\n').map((l) => `  ${l.trim()}`).join('\n')}\n`, 'e.scn.yaml');
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.format()).join('\n'));
  return estimateScenario(r.scenario, limit);
}

test('a fork copies the parent\'s page count; the bytes are pages times the bytes of a mapping', () => {
  const e = estimate('P mmap a 100 rw private\nP mmap b 20 rw shared\nP fork Q\nQ fork R');
  assert.equal(e.peakPages, 360);
  assert.equal(e.bytes, 360 * BYTES_PER_PAGE_MAPPING);
  assert.equal(e.peakAt?.text, 'Q fork R');
  assert.equal(e.peakAt?.pos.line, 6);
});

test('threads share their process\'s pages; only the last task\'s exit gives them back', () => {
  const e = estimate('P mmap a 100 rw private\nP thread T\nP fork Q\nP exit\nQ exit\nT fork R\nT mmap d 60 rw private\nT exit');
  // P+T: 100, Q: 100 -> 200; P exits (T lives): 200; Q exits: 100; R: 200; T maps 60: 260.
  assert.equal(e.peakPages, 260);
  assert.equal(e.peakAt?.text, 'T mmap d 60 rw private');
});

test('munmap gives back the pages it names; the peak stays the most mapped at once', () => {
  const e = estimate('P mmap a 100 rw private\nP munmap a[0..49]\nP fork Q\nQ mmap b 10 rw private');
  assert.equal(e.peakPages, 110);
  const f = estimate('P mmap a 100 rw private\nP munmap a\nP mmap b 30 rw private');
  assert.equal(f.peakPages, 100);
  assert.equal(f.peakAt?.text, 'P mmap a 100 rw private');
});

test('with a limit, the walk stops at the first step past it', () => {
  const e = estimate('P mmap a 100 rw private\nP fork Q\nQ fork R\nR fork S', 150);
  assert.equal(e.peakAt?.text, 'P fork Q');
  assert.equal(e.peakPages, 200);
});

test('a munmap the kernel refuses (an end inside a huge page of a hugetlb region: EINVAL) gives nothing back', () => {
  // munmap huge[1..511] and huge[0]: both refused, the 512 pages stay mapped; the fork copies them.
  const e = estimate('P mmap huge 512 rw private hugetlb\nP munmap huge[1..511]\nP munmap huge[0]\nP fork Q');
  assert.equal(e.peakPages, 1024);
  assert.equal(e.peakAt?.text, 'P fork Q');
  // On huge page boundaries it is done.
  const f = estimate('P mmap huge 1024 rw private hugetlb\nP munmap huge[512..1023]\nP fork Q');
  assert.equal(f.peakPages, 1024);
  assert.equal(f.peakAt?.text, 'P mmap huge 1024 rw private hugetlb');
});
