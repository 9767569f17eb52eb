// The naive model's split kernel paths (test/naive/tasks.ts) on the classic races, with the
// outcomes the kernel's rules and history give; each scenario is also run on the model core as
// a v1.1 scenario (`&`, `T step`), which must take the same steps (one step, blocked, the last)
// and read the same values.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NaiveKernel, V5_7_RULES, V5_9_RULES, V6_RULES, type NaiveOptions, type NPin } from './model.js';
import { NaiveForkTask, NaiveGupFastTask, NaiveSched, NaiveWriteTask, type StepRules } from './tasks.js';
import { parse, runnerAfter, scenarioText } from '../explore/helpers.js';
import type { StepState } from './tasks.js';

/** 5.14: 5.9's rules with write_protect_seq (57efa1fe5957, 5.11). */
const V5_14: [NaiveOptions, StepRules] = [{ ...V5_9_RULES, clearRefsSkipsPinned: true, reclaimSkipsPinned: true, uffdWpForkVma: 'dst-vma' }, { writeProtectSeq: true }];
const V5_9: [NaiveOptions, StepRules] = [V5_9_RULES, { writeProtectSeq: false }];
const V5_7: [NaiveOptions, StepRules] = [V5_7_RULES, { writeProtectSeq: false }];
const V6: [NaiveOptions, StepRules] = [V6_RULES, { writeProtectSeq: true }];

function setup([rules, steps]: [NaiveOptions, StepRules]) {
  const k = new NaiveKernel(rules);
  const s = new NaiveSched(k, steps);
  const p = k.spawn();
  const r = k.mmap(p, 1);
  return { k, s, p, r };
}

/**
 * The model core through the same scenario: what each `T step` did ('running', 'blocked',
 * 'done') and what each line of `reads` (a read or a device read, run after `steps`) read.
 */
function core(profile: string, steps: readonly string[], reads: readonly string[] = []): { steps: StepState[]; reads: (string | undefined)[] } {
  const all = [...steps, ...reads];
  const sc = parse(scenarioText(all), 't.scn.yaml');
  const r = runnerAfter([steps[0]!], profile, [], false);
  const out: StepState[] = [];
  const got: (string | undefined)[] = [];
  for (let i = 1; i < all.length; i++) {
    const res = r.step(sc.steps[i]!, i);
    assert.equal(res.na, null, `${all[i]}: n/a`);
    if (i >= steps.length) got.push(res.record.observations.find((o) => o.kind === 'read' || o.kind === 'handle-read')?.actual);
    const m = /^(\w+) step$/.exec(all[i]!);
    if (m) out.push(/is blocked/.test(res.record.summary) ? 'blocked' : r.procs.get(m[1]!)!.task === null ? 'done' : 'running');
  }
  return { steps: out, reads: got };
}

test('gup-fast pinning while fork write-protects (5.9: no write_protect_seq): the pin lands on the page fork shares, and the device\'s writes reach the child; 5.14 and v6: it falls back to the slow path after the fork and pins P\'s own copy', () => {
  // Thread T pins buf[0] with pin_user_pages_fast(FOLL_WRITE) while P forks Q: fork begins
  // (mmap_lock for write, write_protect_seq odd from 5.11), copy_present_pte decides to share
  // (not pinned yet), gup-fast reads the PTE (still writable) and grabs, fork write-protects and
  // shares, fork ends.
  const text = ['P mmap buf 1 rw private', 'P thread T', 'T write buf[0] = 1', 'P fork Q &', 'T pin buf[0] as h rw longterm fast &',
    'P step', 'P step', 'T step', 'T step', 'P step', 'P step', 'T step'];
  for (const [profile, rules, wps] of [['v5.9', V5_9, false], ['v5.14', V5_14, true], ['v6', V6, true]] as const) {
    const { k, s, p, r } = setup(rules);
    k.write(p, r, 0, 1);
    const fork = new NaiveForkTask(s, p, 0);
    const gup = new NaiveGupFastTask(s, p, 1, r, 0, { write: true, longterm: true });
    const st: StepState[] = [];
    st.push(fork.step(), fork.step()); // begin; check: share (the page is not pinned yet)
    st.push(gup.step()); // read: 5.11+ sees write_protect_seq odd and gives up (all to the slow path)
    st.push(gup.step()); // 5.9: grab and re-check (the PTE is still writable); 5.11+: the slow path waits for the fork
    st.push(fork.step(), fork.step()); // apply (shared, both PTEs read-only); end
    st.push(gup.step()); // 5.9: no read_seqcount_retry: pinned; 5.11+: the slow path: FOLL_WRITE faults and copies the page fork shared
    assert.deepEqual(st, ['running', 'running', 'running', wps ? 'blocked' : 'running', 'running', 'done', 'done'], profile);
    const q = fork.child!;
    const pin = gup.pin!;
    const shared = pin.frame === q.pages.get(`${r.id}:0`)!.pte!.frame;
    assert.equal(shared, !wps, `${profile}: the pin ${wps ? 'is on P\'s own copy' : 'is on the page Q maps'}`);
    k.write(p, r, 0, 2); // 5.9: P's PTE is read-only, the page count 1 + 1 + 1024: copied away from the pin
    k.deviceWrite(pin, 3);
    assert.deepEqual([k.read(p, r, 0), k.read(q, r, 0), k.deviceRead(pin)], wps ? [3, 1, 3] : [2, 3, 3], profile);
    // The model core, the same steps.
    const c = core(profile, [...text, 'P finish', 'T finish', 'T write buf[0] = 2', 'device write h[0] = 3'], ['T read buf[0]', 'Q read buf[0]', 'device read h[0]']);
    assert.deepEqual(c.steps, st, `${profile}: the model core's steps`);
    assert.deepEqual(c.reads, wps ? ['3', '1', '3'] : ['2', '3', '3'], `${profile}: the model core's reads`);
  }
});

test('a write fault whose copy loses the race (another thread\'s fault installs its own copy first): !pte_same frees the copy and the store retries through the new PTE', () => {
  for (const [profile, rules] of [['v5.7', V5_7], ['v5.9', V5_9], ['v6', V6]] as const) {
    const { k, s, p, r } = setup(rules);
    k.write(p, r, 0, 1);
    const q = k.fork(p);
    s.forked(p, q);
    const w = new NaiveWriteTask(s, p, 0, r, 0, 2);
    assert.equal(w.step(), 'running', 'the fault: do_wp_page cannot reuse a shared page: wp_page_copy copies outside the lock');
    assert.equal(w.holdsRead, true);
    const before = k.frames.size;
    k.write(p, r, 0, 3); // thread T's store: its own fault copies and installs
    assert.equal(k.cowCopies, 1);
    assert.equal(w.step(), 'running', 'install: the PTE is not the one the fault saw: the copy is freed');
    assert.equal(k.frames.size, before, 'T\'s copy made, P\'s lost copy freed');
    assert.equal(w.step(), 'done', 'the store again: through T\'s copy, writable');
    assert.equal(k.cowCopies, 1, 'one copy installed');
    assert.deepEqual([k.read(p, r, 0), k.read(q, r, 0)], [2, 1]);
    const c = core(profile, ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'P thread T', 'P fork Q', 'P write buf[0] = 2 &', 'P step', 'T write buf[0] = 3', 'P step', 'P step', 'P finish'],
      ['P read buf[0]', 'Q read buf[0]']);
    assert.deepEqual([c.steps, c.reads], [['running', 'running', 'done'], ['2', '1']], profile);
  }
});

test('pte_same compares the accessed bit: a read through the child\'s old PTE (fork made it old) while the child\'s write fault copies makes the install fail and the fault retry, copying again', () => {
  const { k, s, p, r } = setup(V6);
  k.write(p, r, 0, 1);
  const q = k.fork(p);
  s.forked(p, q);
  const w = new NaiveWriteTask(s, q, 0, r, 0, 2);
  assert.equal(w.step(), 'running'); // the copy
  s.touch(q.pages.get(`${r.id}:0`)); // thread U of Q loads through the PTE: the CPU sets the accessed bit
  assert.equal(k.read(q, r, 0), 1);
  assert.deepEqual([w.step(), w.step(), w.step(), w.step()], ['running', 'running', 'running', 'done'], 'install fails; fault: copy again; install; store');
  assert.deepEqual([k.read(p, r, 0), k.read(q, r, 0), k.cowCopies], [1, 2, 1]);
  const c = core('v6', ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'P fork Q', 'Q thread U', 'Q write buf[0] = 2 &', 'Q step', 'U read buf[0]', 'Q step', 'Q step', 'Q step', 'Q step', 'Q finish'],
    ['Q read buf[0]', 'P read buf[0]']);
  assert.deepEqual([c.steps, c.reads], [['running', 'running', 'running', 'running', 'done'], ['2', '1']]);
});

test('fork\'s early COW of a pinned page (5.9 on): the copy is allocated with the locks dropped; copy_pte_range then decides again: a pin released meanwhile makes it share the page, a store made meanwhile is in the copy; 5.7 shares the pinned page', () => {
  const start = ['P mmap buf 1 rw private', 'P thread T', 'T write buf[0] = 1', 'T pin buf[0] as h rw longterm', 'P fork Q &', 'P step', 'P step', 'P step'];
  for (const [profile, rules] of [['v5.9', V5_9], ['v6', V6]] as const) {
    for (const meanwhile of ['unpin', 'store'] as const) {
      const { k, s, p, r } = setup(rules);
      k.write(p, r, 0, 1);
      const pin = k.pin(p, r, 0, { write: true, longterm: true })!;
      const fork = new NaiveForkTask(s, p, 0);
      // begin; check: MMF_HAS_PINNED and maybe pinned (refcount 1 + 1024): copy for the child; alloc (the locks dropped).
      assert.deepEqual([fork.step(), fork.step(), fork.step()], ['running', 'running', 'running']);
      if (meanwhile === 'unpin') k.unpin(pin);
      else k.write(p, r, 0, 2); // P's PTE is still writable: no fault, no lock
      assert.deepEqual([fork.step(), fork.step()], ['running', 'done'], 'install (decided again); end');
      const q = fork.child!;
      const pf = p.pages.get(`${r.id}:0`)!.pte!;
      const qf = q.pages.get(`${r.id}:0`)!.pte!;
      if (meanwhile === 'unpin') {
        assert.equal(qf.frame, pf.frame, `${profile}: no longer maybe pinned: shared`);
        assert.deepEqual([pf.writable, qf.writable, pf.frame!.mapcount, pf.frame!.refcount, k.forkCopies], [false, false, 2, 2, 0]);
      } else {
        assert.notEqual(qf.frame, pf.frame, `${profile}: still pinned: the child's copy`);
        assert.deepEqual([pf.writable, k.read(q, r, 0), k.forkCopies], [true, 2, 1], `${profile}: the copy made at the install holds the store`);
        k.deviceWrite(pin, 3);
        assert.deepEqual([k.read(p, r, 0), k.read(q, r, 0)], [3, 2]);
      }
      const c = core(profile, [...start, meanwhile === 'unpin' ? 'T unpin h' : 'T write buf[0] = 2', 'P step', 'P step', 'P finish'], ['Q read buf[0]', 'P read buf[0]']);
      assert.deepEqual([c.steps, c.reads], [['running', 'running', 'running', 'running', 'done'], meanwhile === 'unpin' ? ['1', '1'] : ['2', '2']], `${profile}, ${meanwhile}`);
    }
  }
  // 5.7: no early COW: check, apply; the pinned page is shared and the device's writes reach Q.
  const { k, s, p, r } = setup(V5_7);
  k.write(p, r, 0, 1);
  const pin: NPin = k.pin(p, r, 0, { write: true, longterm: true })!;
  const fork = new NaiveForkTask(s, p, 0);
  assert.deepEqual([fork.step(), fork.step(), fork.step(), fork.step()], ['running', 'running', 'running', 'done']);
  k.deviceWrite(pin, 3);
  assert.equal(k.read(fork.child!, r, 0), 3);
});

test('mmap_lock: a fork cannot begin while a write fault holds it for read between its copy and the install; a fault and the slow GUP path wait while a fork holds it for write; a store through a writable PTE needs no lock', () => {
  const { k, s, p, r } = setup(V6);
  k.write(p, r, 0, 1);
  const q = k.fork(p);
  s.forked(p, q);
  const w = new NaiveWriteTask(s, p, 1, r, 0, 2);
  assert.equal(w.step(), 'running');
  const fork = new NaiveForkTask(s, p, 0);
  assert.equal(fork.step(), 'blocked');
  assert.deepEqual([w.step(), w.step()], ['running', 'done']);
  assert.equal(fork.step(), 'running', 'begins now');
  assert.equal(fork.step(), 'running'); // check: share
  const store = new NaiveWriteTask(s, p, 1, r, 0, 4);
  assert.equal(store.step(), 'done', 'before the apply the PTE is still writable: the store needs no fault');
  assert.equal(fork.step(), 'running'); // apply: write-protected
  const late = new NaiveWriteTask(s, p, 1, r, 0, 5);
  assert.equal(late.step(), 'blocked', 'now it faults, and the fault waits for the fork');
  const gup = new NaiveGupFastTask(s, p, 2, r, 0, { write: true, longterm: true });
  // The only mapping's copy is over (copy_page_range's raw_write_seqcount_end): write_protect_seq
  // is even, so gup-fast reads the PTE, read-only now: a FOLL_WRITE pin leaves it to the slow
  // path (read, then end: the sequence unchanged), which waits for the fork's mmap_lock.
  assert.deepEqual([gup.step(), gup.step(), gup.step()], ['running', 'running', 'blocked'], 'write_protect_seq even, the PTE read-only: the slow path, which waits');
  assert.equal(fork.step(), 'done');
  assert.deepEqual([late.step(), late.step(), late.step()], ['running', 'running', 'done'], 'fault (copy: the child shares the page), install, store');
  assert.equal(gup.step(), 'done');
  assert.deepEqual([k.read(fork.child!, r, 0), k.read(p, r, 0)], [4, 5]);
});

test('gup-fast whose page is freed between its PTE read and its grab (another thread\'s MADV_DONTNEED, then a new page there): the grab fails (folio_try_get on a freed folio) and the slow path pins the new page', () => {
  const { k, s, p, r } = setup(V6);
  k.write(p, r, 0, 1);
  const gup = new NaiveGupFastTask(s, p, 1, r, 0, { write: true, longterm: true });
  assert.equal(gup.step(), 'running');
  k.madvise(p, r, 0, 1, 'dontneed');
  k.write(p, r, 0, 2);
  assert.deepEqual([gup.step(), gup.step(), gup.step()], ['running', 'running', 'done']);
  assert.equal(gup.pin!.frame, p.pages.get(`${r.id}:0`)!.pte!.frame);
  assert.equal(s.seen.get('gup:freed'), 1);
});

test('fork\'s early-COW copy is mapped young (x86 vm_page_prot carries _PAGE_ACCESSED): a store by another thread of the child between gup-fast\'s PTE read and its grab changes nothing in the PTE, and gup-fast pins', () => {
  for (const [profile, rules] of [['v5.9', V5_9], ['v6', V6]] as const) {
    const { k, s, p, r } = setup(rules);
    k.write(p, r, 0, 1);
    k.pin(p, r, 0, { write: true, longterm: true });
    const q = k.fork(p);
    s.forked(p, q);
    assert.equal(k.forkCopies, 1);
    const gup = new NaiveGupFastTask(s, q, 1, r, 0, { write: true, longterm: true });
    assert.equal(gup.step(), 'running'); // the PTE read: present, writable (the copy is the child's alone)
    assert.equal(k.write(q, r, 0, 5), true); // thread U of Q: no fault; the PTE is already young, dirty and soft-dirty
    s.touch(q.pages.get(`${r.id}:0`));
    assert.deepEqual([gup.step(), gup.step()], ['running', 'done'], `${profile}: grab and re-check (unchanged); done, no slow path`);
    assert.equal(k.deviceRead(gup.pin!), 5);
    const c = core(profile, ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'P pin buf[0] as h rw longterm', 'P fork Q', 'Q thread U',
      'Q pin buf[0] as g rw longterm fast &', 'Q step', 'U write buf[0] = 5', 'Q step', 'Q step', 'Q finish'], ['device read g[0]']);
    assert.deepEqual([c.steps, c.reads], [['running', 'running', 'done'], ['5']], profile);
  }
});

/** One region of two written pages, two VMAs (buf[0] made read-only), and a fork of it in steps; `mine`: buf[1]'s frame. */
function twoVmas([rules, steps]: [NaiveOptions, StepRules]) {
  const k = new NaiveKernel(rules);
  const s = new NaiveSched(k, steps);
  const p = k.spawn();
  const r = k.mmap(p, 2);
  k.write(p, r, 0, 1);
  k.write(p, r, 1, 2);
  k.mprotect(p, r, 0, 1, 'ro');
  return { k, s, p, r, mine: p.pages.get(`${r.id}:1`)!.pte!.frame!, fork: new NaiveForkTask(s, p, 0) };
}

test('write_protect_seq is odd only while a COW mapping\'s page tables are copied (copy_page_range, 57efa1fe5957): a gup-fast pin between two mappings\' copies takes the fast path on a page not copied yet, and fork\'s early COW then gives the child a copy (the pin stays on the parent\'s page: coherent); during a mapping\'s copy it falls back and waits', () => {
  // buf: two private pages; mprotect of buf[0] splits it into two COW VMAs (both with the
  // anon_vma of the first faults). P forks Q in steps; P's thread T pins buf[1] with
  // pin_user_pages_fast(FOLL_WRITE | FOLL_LONGTERM).
  const setupText = ['P mmap buf 2 rw private', 'P write buf[0] = 1', 'P write buf[1] = 2', 'P mprotect buf[0] ro', 'P thread T', 'P fork Q &'];
  for (const [profile, rules] of [['v5.14', V5_14], ['v6', V6]] as const) {
    // Between the copies: buf[0]'s VMA copied (begin; check; apply, which ends its copy_page_range:
    // write_protect_seq even, the step stops before the next VMA), then T's gup-fast: the sequence
    // even, buf[1]'s PTE still writable: grab, re-check unchanged, the sequence unchanged: pinned
    // without the slow path. Then fork copies buf[1]'s VMA: the page is maybe pinned in an mm that
    // has pinned (and, on v6, anon-exclusive): copy_present_page gives Q a copy (check, alloc with
    // the locks dropped, install); end.
    {
      const { k, s, p, r, mine, fork } = twoVmas(rules);
      const st: StepState[] = [fork.step(), fork.step(), fork.step()];
      const gup = new NaiveGupFastTask(s, p, 1, r, 1, { write: true, longterm: true });
      st.push(gup.step(), gup.step(), gup.step());
      st.push(fork.step(), fork.step(), fork.step(), fork.step(), fork.step());
      assert.deepEqual(st, ['running', 'running', 'running', 'running', 'running', 'done', 'running', 'running', 'running', 'running', 'done'], profile);
      const q = fork.child!;
      const pin = gup.pin!;
      assert.equal(pin.frame, mine, `${profile}: the pin is on P's page, taken by gup-fast`);
      assert.equal(k.forkCopies, 1, `${profile}: fork copied the pinned page for Q`);
      assert.notEqual(q.pages.get(`${r.id}:1`)!.pte!.frame, mine, `${profile}: Q maps its own copy`);
      k.deviceWrite(pin, 3);
      assert.equal(k.write(p, r, 1, 4), true); // P's PTE stayed writable: no fault, the store reaches the pinned page
      assert.deepEqual([k.read(p, r, 1), k.read(q, r, 1), k.deviceRead(pin)], [4, 2, 4], profile);
      const c = core(profile, [...setupText, 'P step', 'P step', 'P step', 'T pin buf[1] as h rw longterm fast &', 'T step', 'T step', 'T step',
        'P step', 'P step', 'P step', 'P step', 'P step', 'P finish', 'T finish', 'device write h[0] = 3', 'T write buf[1] = 4'], ['P read buf[1]', 'Q read buf[1]', 'device read h[0]']);
      assert.deepEqual(c.steps, st, `${profile}: the model core's steps`);
      assert.deepEqual(c.reads, ['4', '2', '4'], `${profile}: the model core's reads`);
    }
    // During buf[0]'s copy (after fork's first step): write_protect_seq odd: gup-fast gives up at
    // once, the slow path waits for the fork; buf[1] is then shared with Q and write-protected, and
    // the slow FOLL_WRITE pin's fault copies it for P (Q keeps the page): no early COW.
    {
      const { k, s, p, r, mine, fork } = twoVmas(rules);
      const st: StepState[] = [fork.step()];
      const gup = new NaiveGupFastTask(s, p, 1, r, 1, { write: true, longterm: true });
      st.push(gup.step(), gup.step());
      // check, apply (buf[0]); next; check, apply (buf[1], shared); end.
      st.push(fork.step(), fork.step(), fork.step(), fork.step(), fork.step(), fork.step(), gup.step());
      assert.deepEqual(st, ['running', 'running', 'blocked', 'running', 'running', 'running', 'running', 'running', 'done', 'done'], profile);
      const q = fork.child!;
      assert.equal(k.forkCopies, 0, profile);
      assert.equal(q.pages.get(`${r.id}:1`)!.pte!.frame, mine, `${profile}: Q keeps the page`);
      assert.notEqual(gup.pin!.frame, mine, `${profile}: P's pin is on its COW copy`);
      const c = core(profile, [...setupText, 'P step', 'T pin buf[1] as h rw longterm fast &', 'T step', 'T step',
        'P step', 'P step', 'P step', 'P step', 'P step', 'P step', 'T step', 'P finish', 'T finish', 'device write h[0] = 3'], ['P read buf[1]', 'Q read buf[1]', 'device read h[0]']);
      assert.deepEqual(c.steps, st, `${profile}: the model core's steps`);
      assert.deepEqual(c.reads, ['3', '2', '3'], `${profile}: the model core's reads`);
    }
  }
});

test('MADV_DONTNEED takes mmap_lock for read (madvise_need_mmap_write; 6.18: a per-VMA read lock): it zaps the page between a write fault\'s copy and its install; pte_same then fails, the copy is freed, and the store retries on the empty PTE (do_anonymous_page): P reads the store, Q the old page', () => {
  // P writes buf[0], forks Q (the page shared, read-only). P's thread T stores 2: do_wp_page
  // copies (mmap_lock held for read across the copy); P's MADV_DONTNEED runs meanwhile (a reader
  // too) and zaps P's PTE; T's install finds the PTE changed: the copy freed, the fault retried:
  // a new zeroed page, then the store.
  for (const [profile, rules] of [['v5.7', V5_7], ['v5.14', V5_14], ['v6', V6]] as const) {
    const { k, s, p, r } = setup(rules);
    k.write(p, r, 0, 1);
    const q = k.fork(p);
    s.forked(p, q);
    const old = p.pages.get(`${r.id}:0`)!.pte!.frame!;
    const w = new NaiveWriteTask(s, p, 1, r, 0, 2);
    const st: StepState[] = [w.step()];
    assert.equal(w.holdsRead, true, `${profile}: the fault holds mmap_lock for read across its copy`);
    k.madvise(p, r, 0, 1, 'dontneed');
    st.push(w.step(), w.step(), w.step());
    assert.deepEqual(st, ['running', 'running', 'running', 'done'], `${profile}: copy; install (pte_same fails: retry); do_anonymous_page; store`);
    assert.equal(s.seen.get('write:pte-changed'), 1, profile);
    assert.deepEqual([k.read(p, r, 0), k.read(q, r, 0)], [2, 1], profile);
    assert.deepEqual([old.refcount, old.mapcount], [1, 1], `${profile}: the old page is Q's alone`);
    const c = core(profile, ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'P fork Q', 'P thread T', 'T write buf[0] = 2 &', 'T step',
      'P madvise buf[0] dontneed', 'T step', 'T step', 'T step', 'T finish'], ['P read buf[0]', 'Q read buf[0]']);
    assert.deepEqual(c.steps, st, `${profile}: the model core's steps`);
    assert.deepEqual(c.reads, ['2', '1'], `${profile}: the model core's reads`);
  }
});

test('fork in steps over a device-exclusive entry: one step restores it in the parent (the grant revoked at the mapping\'s copy; the PTE old, writable on 6.15 as the page is exclusive), the next decides, the next shares it; a store by another thread through the restored PTE in between lands before the share, so the child reads it', () => {
  const { k, s, p, r } = setup(V6);
  k.write(p, r, 0, 1);
  const g = k.makeDeviceExclusive(p, r, 0);
  assert.equal(g.revoked, false);
  const fork = new NaiveForkTask(s, p, 0);
  assert.equal(fork.step(), 'running'); // begin; the mapping's copy begins: the MMU notifier
  assert.equal(g.revoked, true, 'the grant is revoked when the mapping\'s copy begins');
  const pg = p.pages.get(`${r.id}:0`)!;
  assert.ok(pg.devx, 'not restored yet');
  assert.equal(fork.step(), 'running'); // try_restore_exclusive_pte
  assert.deepEqual([pg.devx, pg.pte?.writable, s.old.has(pg.pte!)], [null, true, true], 'restored: present, writable, old');
  assert.equal(k.write(p, r, 0, 5), true); // thread T: through the writable PTE, no lock
  s.touch(pg);
  assert.deepEqual([fork.step(), fork.step(), fork.step()], ['running', 'running', 'done'], 'decide, share, end');
  assert.equal(k.read(fork.child!, r, 0), 5);
  assert.equal(pg.pte!.writable, false);
  const c = core('v6', ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'device exclusive P buf[0] as h', 'P thread T', 'P fork Q &', 'P step', 'P step',
    'T write buf[0] = 5', 'P step', 'P step', 'P step', 'P finish'], ['Q read buf[0]']);
  assert.deepEqual([c.steps, c.reads], [['running', 'running', 'running', 'running', 'done'], ['5']]);
});

test('fork in steps copies a uffd-wp swap entry in one step: the child keeps the bit by the parent\'s VMA up to 5.13 (5.9), by its own from 5.14 (v6: not registered without the fork event, so dropped; with it, kept)', () => {
  for (const [profile, rules, event, kept] of [['v5.9', V5_9, false, true], ['v6', V6, false, false], ['v6', V6, true, true]] as const) {
    const { k, s, p, r } = setup(rules);
    k.write(p, r, 0, 1);
    if (event) k.uffdForkEventOn(p);
    assert.equal(k.uffdRegister(p, r), true);
    assert.equal(k.uffdWriteprotect(p, r, 0, 1, true), true);
    assert.equal(k.swapout(p, r, 0), true);
    const fork = new NaiveForkTask(s, p, 0);
    assert.deepEqual([fork.step(), fork.step(), fork.step()], ['running', 'running', 'done'], `${profile}: begin, the swap entry, end`);
    const q = fork.child!;
    const what = `${profile}${event ? ' with the fork event' : ''}`;
    assert.equal(k.uffdWp(q, r, 0), kept, `${what}: the child's entry is ${kept ? '' : 'not '}uffd-wp`);
    assert.equal(k.uffdWp(p, r, 0), true, `${what}: the parent's keeps it`);
    const steps = ['P mmap buf 1 rw private', 'P write buf[0] = 1', ...(event ? ['P uffd fork-event on'] : []), 'P uffd register buf wp', 'P uffd protect buf[0]',
      'P madvise buf[0] pageout', 'P fork Q &', 'P step', 'P step', 'P step', 'P finish'];
    const c = core(profile, steps, [`expect Q buf[0] ${kept ? 'uffd-wp' : 'not-uffd-wp'}`]);
    assert.deepEqual(c.steps, ['running', 'running', 'done'], what);
    const run = runnerAfter([...steps, `expect Q buf[0] ${kept ? 'uffd-wp' : 'not-uffd-wp'}`], profile, [], false);
    assert.deepEqual(run.violations.map((v) => v.message), [], what);
  }
});

test('a write& whose fault goes to the uffd monitor: the monitor un-protects the page and the fault, retried at once, finds it writable and marks it dirty and young, so the store changes nothing gup-fast re-checks: a pin-fast& that read the PTE in between keeps its pin', () => {
  const { k, s, p, r } = setup(V6);
  k.write(p, r, 0, 1);
  assert.equal(k.uffdRegister(p, r), true);
  assert.equal(k.uffdWriteprotect(p, r, 0, 1, true), true);
  const w = new NaiveWriteTask(s, p, 0, r, 0, 2);
  const g = new NaiveGupFastTask(s, p, 1, r, 0, { write: true, longterm: true });
  assert.equal(w.step(), 'running'); // the fault: to the monitor, retried: writable, dirty
  assert.equal(p.uffdFaults, 1);
  const pte = p.pages.get(`${r.id}:0`)!.pte!;
  assert.deepEqual([pte.writable, pte.dirty, pte.uffdWp], [true, true, false]);
  assert.equal(g.step(), 'running'); // T's gup-fast reads the PTE
  assert.equal(w.step(), 'done'); // the store
  assert.deepEqual([g.step(), g.step()], ['running', 'done'], 'grab, re-check unchanged: pinned by gup-fast');
  assert.equal(k.deviceRead(g.pin!), 2);
  const c = core('v6', ['P mmap buf 1 rw private', 'P write buf[0] = 1', 'P uffd register buf wp', 'P uffd protect buf[0]', 'P thread T',
    'P write buf[0] = 2 &', 'T pin buf[0] as h rw longterm fast &', 'P step', 'T step', 'P step', 'T step', 'T step', 'T finish'], ['device read h[0]']);
  assert.deepEqual([c.steps, c.reads], [['running', 'running', 'done', 'running', 'done'], ['2']]);
});
