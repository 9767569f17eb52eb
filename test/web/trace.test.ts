// The page's model side (no browser): full snapshots per step and per event, the sentences,
// the first step where two kernels part ways, the cursor and the URL.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ProfileRegistry } from '../../src/profiles/resolve.js';
import { parseScenario, type Scenario } from '../../src/scenario/index.js';
import { differingSteps, explainEvent, firstDivergence, refBreakdown, stepSentence } from '../../src/web/explain.js';
import { clampCursor, diffSnapshots, formatParams, frameKey, nextEvent, nextStep, parseParams, prevEvent, prevStep, pteKey, snapshotsAt } from '../../src/web/state.js';
import { traceScenario, type Trace } from '../../src/web/trace.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const RDMA = join(ROOT, 'scenarios/seeds/rdma-pin-fork-child-exits.scn.yaml');
const reg = new ProfileRegistry();

function load(file: string): Scenario {
  const r = parseScenario(readFileSync(file, 'utf8'), file);
  assert.ok(r.ok, 'the scenario parses');
  return r.scenario;
}

function inline(steps: string): Scenario {
  const text = `name: t\nsteps: |\n${steps.split('\n').map((l) => `  ${l}`).join('\n')}\n`;
  const r = parseScenario(text, 't.scn.yaml');
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.format()).join('\n'));
  return r.scenario;
}

/** The index of the step written on `line` of the file. */
function stepAt(t: Trace, text: string): number {
  const i = t.steps.findIndex((s) => s.record.text === text);
  assert.ok(i >= 0, text);
  return i;
}

describe('web: traceScenario', () => {
  const sc = load(RDMA);
  const rc4 = traceScenario(sc, reg.get('v5.9-rc4'));
  const v6 = traceScenario(sc, reg.get('v6'));

  it('keeps the engine result and one view per step, the end included', () => {
    assert.equal(rc4.result.status, 'violation');
    assert.equal(rc4.steps.length, sc.steps.length + 1);
    assert.equal(rc4.steps.at(-1)!.record.text, '(end)');
    assert.equal(v6.result.status, 'ok');
  });

  it('snapshots every process, frame and handle after a step (RDMA on v5.9-rc4: the pin left behind)', () => {
    const i = stepAt(rc4, 'P write buf[0] = 2');
    const s = rc4.steps[i]!;
    assert.deepEqual(s.record.violations.map((v) => v.kind), ['pin-incoherent']);
    const p = s.after.procs.find((x) => x.name === 'P')!;
    assert.equal(p.ptes.length, 1);
    assert.equal(p.ptes[0]!.page, 'buf[0]');
    assert.equal(p.ptes[0]!.pfn, 2);
    assert.ok(p.ptes[0]!.writable);
    assert.deepEqual(p.ptes[0]!.path.slice(1), [0, 0, 0]);
    const q = s.after.procs.find((x) => x.name === 'Q')!;
    assert.equal(q.alive, false);
    const mr = s.after.handles.find((h) => h.name === 'mr')!;
    assert.equal(mr.kind, 'pin');
    assert.equal(mr.holder, 'P');
    assert.equal(mr.pages[0]!.pfn, 1);
    assert.equal(mr.pages[0]!.value, '1');
    assert.equal(mr.pages[0]!.ideal, '2');
    const f1 = s.after.frames.find((f) => f.pfn === 1)!;
    assert.equal(f1.refcount, 1024);
    assert.equal(f1.mapcount, 0);
    assert.equal(f1.pins, 1);
    assert.equal(refBreakdown(f1), '1024 = 1024 pin mr');
    assert.deepEqual(s.after.frames.map((f) => f.pfn), [1, 2]);
  });

  it('on v6 the same step takes no fault and the pin stays with P', () => {
    const i = stepAt(v6, 'P write buf[0] = 2');
    const s = v6.steps[i]!;
    assert.deepEqual(s.record.violations, []);
    assert.equal(s.events.length, 0);
    assert.deepEqual(s.after.frames.map((f) => f.pfn), [1]);
    assert.equal(s.after.procs.find((x) => x.name === 'P')!.ptes[0]!.pfn, 1);
    assert.match(stepSentence(s).why ?? '', /No fault: P's PTE for buf\[0\] was already present and writable/);
  });

  it('snapshots the model after each kernel event inside a step (fork: the child exists in the fork event)', () => {
    const i = stepAt(v6, 'P fork Q');
    const evs = v6.steps[i]!.events;
    assert.deepEqual(evs.map((e) => e.type), ['early-cow', 'fork']);
    assert.equal(evs[0]!.child, 'Q');
    const atFork = evs[1]!.snap!;
    assert.deepEqual(atFork.procs.map((p) => p.name), ['P', 'Q']);
    assert.equal(atFork.procs[1]!.ptes[0]!.pfn, 2);
    assert.match(explainEvent(evs[0]!), /^fork: copy_present_page gave Q its own copy of frame 1 at once \(frame 2\) because it is maybe pinned/);
  });

  it('says what mremap did: the entries moved, the pages and their counts unchanged', () => {
    const t = traceScenario(inline('P mmap buf 2\nP write buf = 1\nP fork Q\nP mremap buf[1] as moved'), reg.get('v6'));
    const why = stepSentence(t.steps[stepAt(t, 'P mremap buf[1] as moved')]!).why ?? '';
    assert.match(why, /^P mremap: move_vma copied the mapping .* move_page_tables moved its entries there: 1 page\(s\) moved to a new range; 1 entry moved, no page copied\. Each frame keeps its refcount/);
  });

  it('says why a write copied: the kernel function and the rule', () => {
    const s = rc4.steps[stepAt(rc4, 'P write buf[0] = 2')]!;
    assert.equal(stepSentence(s).why, 'P write fault on buf[0]: do_wp_page copied frame 1 to frame 2 because refcount 1025 > 1 with mapcount 1: an extra reference (GUP, pin or pipe) holds it');
    const plain = traceScenario(inline('P mmap buf 1\nP write buf[0] = 1\nP fork Q\nQ write buf[0] = 2\nP write buf[0] = 3'), reg.get('v6'));
    assert.equal(stepSentence(plain.steps[3]!).why, 'Q write fault on buf[0]: do_wp_page copied frame 1 to frame 2 because refcount 2, mapcount 2: another process maps it');
    assert.match(stepSentence(plain.steps[4]!).why ?? '', /^P write fault on buf\[0\]: do_wp_page reused frame 1 in place/);
  });

  it('finds where two kernels part ways', () => {
    const d = firstDivergence(rc4, v6)!;
    assert.equal(rc4.steps[d.step]!.record.text, 'P fork Q');
    assert.match(d.b, /copy_present_page/);
    const differ = differingSteps(rc4, v6);
    assert.ok(differ.has(stepAt(rc4, 'P write buf[0] = 2')));
    assert.ok(!differ.has(0));
    assert.equal(firstDivergence(rc4, traceScenario(sc, reg.get('v5.9-rc4+pin-cow'))), null);
  });

  it('follows the engine run step by step on every seed and profile (threads and async paths too)', () => {
    const dir = join(ROOT, 'scenarios/seeds');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.scn.yaml'))) {
      const s = load(join(dir, f));
      for (const p of reg.all()) {
        const t = traceScenario(s, p);
        for (const [i, st] of t.steps.entries()) {
          const where = `${f} on ${p.name}, step ${i + 1}`;
          assert.deepEqual(st.events.slice(0, st.record.events.length).map((e) => `${e.type}:${e.pfn}:${e.pfn2}`),
            st.record.events.map((e) => `${e.type}:${e.pfn}:${e.pfn2}`), where);
          // Every frame a PTE names is in the snapshot (or past the cap): a page of a large folio in its folio's entry.
          const frames = new Set(st.after.frames.flatMap((x) => (x.folio ? Array.from({ length: x.folio.pages }, (_, j) => x.pfn + j) : [x.pfn])));
          for (const pr of st.after.procs) for (const e of pr.ptes) if (e.pfn !== null && e.pfn !== 0) assert.ok(frames.has(e.pfn) || st.after.framesHidden > 0, where);
          for (const h of st.after.handles) assert.ok(!h.name.startsWith('#'), `${where}: handle ${h.name} named`);
        }
      }
    }
  });

  it('names threads, a fork child while its fork runs, and pending kernel paths', () => {
    const race = load(join(ROOT, 'scenarios/seeds/gup-fast-fork-race.scn.yaml'));
    const t = traceScenario(race, reg.get('v5.9'));
    // The step while gup-fast pins the page, found by its comment in the file (not a line number).
    const line = readFileSync(join(ROOT, 'scenarios/seeds/gup-fast-fork-race.scn.yaml'), 'utf8').split('\n').findIndex((l) => l.includes('# gup-fast pins the page')) + 1;
    const i = t.steps.findIndex((s) => s.record.line === line);
    const snap = t.steps[i]!.after;
    const p = snap.procs.find((x) => x.name === 'P')!;
    assert.deepEqual(p.threads, ['P', 'Q']);
    assert.deepEqual(p.paths.map((x) => x.thread).sort(), ['P', 'Q']);
    const r = snap.procs.find((x) => x.name === 'R')!;
    assert.ok(r.forking);
    const end = t.steps.at(-2)!.after;
    assert.deepEqual(end.handles.map((h) => [h.name, h.holder]), [['h', 'Q']]);
  });

  it('credits the events of a kernel path\'s step to the thread whose path it is', () => {
    const race = load(join(ROOT, 'scenarios/seeds/gup-fast-fork-race.scn.yaml'));
    const t = traceScenario(race, reg.get('v6'));
    // Steps by their place in the story (0: `P mmap buf 1`), not by line: outcome lines come and go.
    const at = (index: number) => t.steps.find((s) => s.record.index === index)!;
    // step 7 `Q step`: gup-fast on P's address space, run by thread Q.
    assert.ok(at(7).events.length > 0);
    for (const e of at(7).events) if (e.proc !== null) assert.equal(e.proc, 'Q', e.why);
    // step 10 `Q finish`: Q waits for mmap_lock, so P's fork runs to its end first: that is P's.
    const fin = at(10).events;
    assert.equal(fin.find((e) => e.type === 'fork')?.proc, 'P');
    assert.equal(fin.find((e) => /waits for mmap_lock/.test(e.why))?.proc, 'Q');
    assert.equal(fin.at(-1)!.proc, 'Q');
  });

  it('shows a PMD-mapped THP as one huge entry and its folio as one frame; after the split, the PTE table', () => {
    const t = traceScenario(load(join(ROOT, 'scenarios/seeds/cve-2020-29374-thp.scn.yaml')), reg.get('v6'));
    // The first write to the THP-enabled 2 MiB maps one PMD (do_huge_pmd_anonymous_page).
    let snap = t.steps[stepAt(t, 'P write buf = 1')]!.after;
    let p = snap.procs.find((x) => x.name === 'P')!;
    assert.equal(p.ptes.length, 1, 'one entry for the whole 2 MiB');
    assert.equal(p.ptesHidden, 0);
    const pmd = p.ptes[0]!;
    assert.ok(pmd.huge);
    assert.equal(pmd.page, 'buf[0..511]');
    assert.ok(pmd.writable);
    const head = pmd.pfn!;
    assert.equal(head % 512, 0, 'a 2 MiB folio starts 512-aligned');
    assert.equal(snap.frames.length, 1, 'the folio is one frame entry');
    assert.equal(snap.framesHidden, 0);
    let folio = snap.frames[0]!;
    assert.equal(folio.pfn, head);
    assert.ok(folio.folio);
    assert.equal(folio.folio.pages, 512);
    assert.equal(folio.folio.entireMapcount, 1);
    assert.equal(folio.refcount, 1);
    assert.equal(folio.mapcount, 1);
    assert.equal(folio.folio.subpages.length + folio.folio.subpagesHidden, 512, 'every page was written');
    assert.ok(folio.folio.subpages.every((sp) => sp.mapcount === 0 && sp.folio === null), 'no PTE maps a page of it');
    // fork shares the PMD write-protected (copy_huge_pmd): entire mapcount 2, refcount 2.
    snap = t.steps[stepAt(t, 'P fork Q')]!.after;
    for (const name of ['P', 'Q']) {
      const e = snap.procs.find((x) => x.name === name)!.ptes;
      assert.equal(e.length, 1, name);
      assert.ok(e[0]!.huge && e[0]!.pfn === head && !e[0]!.writable, name);
    }
    folio = snap.frames.find((f) => f.pfn === head)!;
    assert.equal(folio.folio!.entireMapcount, 2);
    assert.equal(folio.refcount, 2);
    // P's write splits its PMD (__split_huge_pmd) and copies buf[0]: 512 PTEs, 511 on the folio.
    const w = stepAt(t, 'P write buf[0] = secret');
    snap = t.steps[w]!.after;
    p = snap.procs.find((x) => x.name === 'P')!;
    assert.ok(p.ptes.every((e) => !e.huge), 'no huge PMD left in P');
    assert.equal(p.ptes.length + p.ptesHidden, 512);
    assert.ok(new Set(p.ptes.map((e) => e.table)).size === 1, 'one PTE table');
    assert.equal(p.ptes[0]!.page, 'buf[0]');
    assert.ok(p.ptes[0]!.pfn !== null && (p.ptes[0]!.pfn < head || p.ptes[0]!.pfn >= head + 512), 'buf[0] maps its copy');
    assert.equal(p.ptes[1]!.page, 'buf[1]');
    assert.equal(p.ptes[1]!.pfn, head + 1, 'buf[1] maps the folio\'s page 1');
    folio = snap.frames.find((f) => f.pfn === head)!;
    assert.equal(folio.folio!.entireMapcount, 0);
    assert.equal(folio.mapcount, 511);
    const sub1 = folio.folio!.subpages.find((sp) => sp.pfn === head + 1)!;
    assert.equal(sub1.mapcount, 1);
    assert.deepEqual(sub1.mappedBy, ['P buf[1]']);
    // What changed: the entire mapcount, and P's entry at buf[0] is a new PTE.
    const { now, before } = snapshotsAt(t, { step: w, ev: null });
    const d = diffSnapshots(before, now);
    assert.equal(d.changes.get(frameKey(head, 'entire')), '1');
    assert.equal(d.changes.get(pteKey('P', p.ptes[1]!.vpn, 'new')), '');
  });

  it('caps what it shows of a large mapping', () => {
    const big = traceScenario(inline('P mmap buf 1000 populate'), reg.get('v6'));
    const p = big.steps[0]!.after.procs[0]!;
    assert.equal(p.ptes.length + p.ptesHidden, 1000);
    assert.ok(p.ptes.length <= 64);
    assert.equal(big.steps[0]!.after.frames.length + big.steps[0]!.after.framesHidden, 1000);
  });
});

describe('web: cursor, changes and URL', () => {
  const sc = load(RDMA);
  const traces = [traceScenario(sc, reg.get('v5.9-rc4')), traceScenario(sc, reg.get('v6'))];

  it('steps forward and back through steps and the events inside them', () => {
    let c = { step: 0, ev: null as number | null };
    c = nextStep(traces, c);
    assert.deepEqual(c, { step: 1, ev: null });
    c = prevStep(traces, c);
    assert.deepEqual(c, { step: 0, ev: null });
    // Events: (0, after) -> (1, ev 0) -> (1, after) -> (2, ev 0) ...
    c = nextEvent(traces, c);
    assert.deepEqual(c, { step: 1, ev: 0 });
    c = nextEvent(traces, c);
    assert.deepEqual(c, { step: 1, ev: null });
    assert.deepEqual(prevEvent(traces, c), { step: 1, ev: 0 });
    assert.deepEqual(prevEvent(traces, { step: 1, ev: 0 }), { step: 0, ev: null });
    // Fork on v6 has two events: the cursor goes through both.
    assert.deepEqual(nextEvent(traces, { step: 3, ev: 0 }), { step: 3, ev: 1 });
    assert.deepEqual(nextEvent(traces, { step: 3, ev: 1 }), { step: 3, ev: null });
    assert.deepEqual(clampCursor(traces, { step: 99, ev: 5 }), { step: traces[0]!.steps.length - 1, ev: 0 });
  });

  it('marks what a step changed', () => {
    const i = stepAt(traces[0]!, 'P write buf[0] = 2');
    const { now, before } = snapshotsAt(traces[0]!, { step: i, ev: null });
    const d = diffSnapshots(before, now);
    assert.equal(d.changes.get(frameKey(1, 'refcount')), '1025');
    assert.equal(d.changes.get(frameKey(2, 'new')), '');
    assert.equal(d.changes.get(pteKey('P', now.procs[0]!.ptes[0]!.vpn, 'pfn')), 'frame 1');
    const exit = snapshotsAt(traces[1]!, { step: stepAt(traces[1]!, 'Q exit'), ev: null });
    assert.deepEqual(diffSnapshots(exit.before, exit.now).freed.map((f) => f.pfn), [2]);
  });

  it('round-trips the view through the URL', () => {
    const p = { file: 'seeds/rdma-pin-fork-child-exits.scn.yaml', text: null, profile: 'v5.9-rc4', vs: 'v6', step: 5, ev: 0 };
    const q = formatParams(p);
    assert.equal(q, '?file=seeds%2Frdma-pin-fork-child-exits.scn.yaml&profile=v5.9-rc4&vs=v6&step=6&ev=1');
    assert.deepEqual(parseParams(q), p);
    const t = { file: null, text: 'name: x\nsteps: |\n  P mmap buf 1\n', profile: 'v6', vs: null, step: null, ev: null };
    assert.deepEqual(parseParams(formatParams(t)), t);
    assert.deepEqual(parseParams('?step=abc&ev=-1'), { file: null, text: null, profile: null, vs: null, step: null, ev: null });
  });
});
