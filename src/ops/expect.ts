// The assertions of a scenario (`expect ...`): which frame a page maps, whether it is mapped
// once, whether it is PageAnonExclusive, a counter. They only look at the model; the live
// replay shows what the kernel has for each (oracle/expectations.ts).

import { expectExclusive, expectFrame, expectMapped, expectStat } from '../engine/expect.js';
import type { StatOp, Step } from '../scenario/ast.js';
import { unknownWord } from '../scenario/errors.js';
import { StepFail } from '../scenario/resolve.js';
import type { LineParser, StepBase } from '../scenario/steps.js';
import { EXPECTATIONS, INT_RE, PROC_NAME_RULE, PROC_RE, STAT_NAMES, STAT_OPS } from '../scenario/words.js';
import type { RunState } from '../engine/state.js';
import { defineOp, type Fill, type OpDecl, type RandomGen, type StepOf } from './types.js';

/** `expect stat NAME OP NUMBER`, after `expect stat`. */
function parseStat(c: LineParser, base: StepBase): Step {
  const nt = c.next();
  if (nt.kind !== 'word') c.fail(nt, `expected a counter after 'expect stat' (one of: ${STAT_NAMES.join(', ')}), got ${c.show(nt)}`);
  const stat = nt.text;
  let statProc: string | null = null;
  const dot = stat.indexOf('.');
  const prefix = dot < 0 ? '' : stat.slice(0, dot);
  if (prefix === 'rss' || prefix === 'minflt' || prefix === 'uffd_faults') {
    statProc = stat.slice(dot + 1);
    const ppos = c.origin(c.lineIdx, nt.col + dot + 1);
    if (!PROC_RE.test(statProc)) throw new StepFail(ppos, `expected a process name after '${prefix}.' (${PROC_NAME_RULE}), got '${statProc}'`);
    c.env.knownProc(statProc, ppos);
  } else if (!(STAT_NAMES as readonly string[]).includes(stat)) {
    c.fail(nt, unknownWord('counter', stat, STAT_NAMES));
  }
  const ot = c.next();
  if (ot.kind !== 'sym' || !(STAT_OPS as readonly string[]).includes(ot.text)) {
    const hint = c.isSym(ot, '=') ? "; did you mean '=='?" : '';
    c.fail(ot, `expected a comparison (one of: ${STAT_OPS.join(' ')}) after the counter, got ${c.show(ot)}${hint}`);
  }
  const num = c.next();
  const n = num.kind === 'num' && INT_RE.test(num.text) ? Number(num.text) : NaN;
  if (!Number.isSafeInteger(n)) {
    // An integer past 2^53 - 1 is one, but no counter can be compared with it exactly.
    const big = num.kind === 'num' && INT_RE.test(num.text) ? ` from -${Number.MAX_SAFE_INTEGER} to ${Number.MAX_SAFE_INTEGER}` : '';
    c.fail(num, `expected an integer${big} after '${ot.text}', got ${c.show(num)}`);
  }
  c.end();
  return { op: 'expect-stat', ...base, stat, statProc, cmp: ot.text as StatOp, number: n };
}

/** `expect P SEL[I] WORD ...` or `expect stat ...`: one syntax for the five kinds of expect (expect-uffd-wp is declared in uffd.ts). */
function parseExpect(c: LineParser, base: StepBase): Step {
  const t = c.peek();
  if (c.isWord(t, 'stat')) {
    c.next();
    return parseStat(c, base);
  }
  if (t.kind !== 'word' || !PROC_RE.test(t.text)) {
    c.fail(t, `expected 'stat' or a process name after 'expect' ('expect P buf[I] same-frame Q buf[J]', 'expect stat NAME OP NUMBER', ...), got ${c.show(t)}`);
  }
  const p = c.liveProc('a process');
  const sel = c.sel(p, 'expect');
  const what = c.oneOf(EXPECTATIONS, 'expectation', 'after the page');
  switch (what) {
    case 'same-frame':
    case 'other-frame': {
      const q = c.liveProc(`a process after '${what}'`);
      const otherSel = c.sel(q, 'expect');
      c.end();
      return { op: 'expect-frame', ...base, proc: p.name, sel, same: what === 'same-frame', otherProc: q.name, otherSel };
    }
    case 'mapped-once':
    case 'mapped-shared':
      c.end();
      return { op: 'expect-mapped', ...base, proc: p.name, sel, once: what === 'mapped-once' };
    case 'anon-exclusive':
    case 'not-anon-exclusive':
      c.end();
      return { op: 'expect-exclusive', ...base, proc: p.name, sel, exclusive: what === 'anon-exclusive' };
    case 'uffd-wp':
    case 'not-uffd-wp':
      c.end();
      return { op: 'expect-uffd-wp', ...base, proc: p.name, sel, wp: what === 'uffd-wp' };
  }
}

/** `expect P PAGE same-frame|other-frame Q PAGE`. */
export const expectFrameOp = defineOp({
  op: 'expect-frame',
  syntax: { subject: 'system', words: ['expect'], parse: parseExpect },
  run: (s, step) => expectFrame(s, step.proc, step.sel, step.same, step.otherProc, step.otherSel),
  observing: true,
  replay: (o, step) => o.expect(step),
  exportC: (x, step) => ({
    code: `rp_expect_frame(${x.proc(step.proc)}, ${x.region(step.sel)}, ${step.sel.lo}, ${x.proc(step.otherProc)}, ${x.region(step.otherSel)}, ${step.otherSel.lo}, ${x.str(`${step.proc} ${x.label(step.sel)} vs ${step.otherProc} ${x.label(step.otherSel)}`)});`,
    skipped: null,
  }),
  fuzz: (w, c) => w.expectPage(c, [EXPECTATIONS[0], EXPECTATIONS[1]], true),
  random: [{
    name: 'expect-frame', order: 16, weight: 8, hugetlb: true,
    draw(g, p) {
      const q = g.pickOf(g.live());
      const [region, pg] = g.pickOf([...p.regions]);
      const i = g.intIn(0, pg.length - 1);
      const other = q.regions.has(region) && g.rng() < 0.8 ? `${region}[${i}]` : g.sel(q, true).text;
      g.add(`expect ${p.name} ${region}[${i}] {} ${q.name} ${other}`, 'frame');
      return true;
    },
  }],
});

/** The `expect P PAGE WORD|not-WORD` kinds that look at one page: mapped, exclusive, uffd-wp. */
type PageExpect = 'expect-mapped' | 'expect-exclusive' | 'expect-uffd-wp';

/**
 * The declaration of an `expect P PAGE ...` kind that checks one page (parsed by `expect`, the
 * syntax of expect-frame): run on the model by `run`, replayed by the oracle's expect, exported
 * as the C call `cCall(proc, region, page, label)`, written by the fuzz campaign with one of
 * its two `words`, drawn by the random generator (`fill`: what the model's answer fills in)
 * when `applies` (default: always).
 */
export function pageExpectOp<O extends PageExpect>(d: {
  op: O;
  run: (s: RunState, step: StepOf<O>) => void;
  cCall: string;
  words: readonly [string, string];
  random: { order: number; weight: number; fill: Fill; applies?: (g: RandomGen) => boolean; hugetlb?: boolean };
}): OpDecl<O> {
  return defineOp<O>({
    op: d.op,
    syntax: { sameAs: 'expect-frame' },
    run: d.run,
    observing: true,
    replay: (o, step) => o.expect(step),
    exportC(x, s) {
      const step: StepOf<PageExpect> = s; // every one of them names a process and a page
      return { code: `${d.cCall}(${x.proc(step.proc)}, ${x.region(step.sel)}, ${step.sel.lo}, ${x.str(`${step.proc} ${x.label(step.sel)}`)});`, skipped: null };
    },
    fuzz: (w, c) => w.expectPage(c, d.words, false),
    random: [{
      name: d.op, order: d.random.order, weight: d.random.weight, hugetlb: d.random.hugetlb === true,
      draw(g, p) {
        if (d.random.applies && !d.random.applies(g)) return false;
        g.add(`expect ${p.name} ${g.sel(p, true).text} {}`, d.random.fill);
        return true;
      },
    }],
  });
}

/** `expect P PAGE mapped-once|mapped-shared`. */
export const expectMappedOp = pageExpectOp({
  op: 'expect-mapped', run: expectMapped, cCall: 'rp_expect_mapped', words: [EXPECTATIONS[2], EXPECTATIONS[3]],
  random: { order: 17, weight: 5, fill: 'mapped', hugetlb: true },
});

/** `expect P PAGE anon-exclusive|not-anon-exclusive` (PG_anon_exclusive, 5.19 on). */
export const expectExclusiveOp = pageExpectOp({
  op: 'expect-exclusive', run: expectExclusive, cCall: 'rp_expect_exclusive', words: [EXPECTATIONS[4], EXPECTATIONS[5]],
  random: { order: 18, weight: 5, fill: 'exclusive', hugetlb: true },
});

/** `expect stat NAME OP NUMBER`. */
export const expectStatOp = defineOp({
  op: 'expect-stat',
  syntax: { sameAs: 'expect-frame' },
  run: expectStat,
  observing: true,
  replay: (o, step) => o.expect(step),
  exportC: (x, step) => ({ code: `rp_expect_stat(${x.str(step.stat)}, ${step.statProc === null ? -1 : x.proc(step.statProc)});`, skipped: null }),
  fuzz(w, c) {
    const known = w.procs.filter((p) => !p.forking);
    let stat: string = STAT_NAMES[c.a % STAT_NAMES.length]!;
    if (stat.endsWith('.P')) stat = `${stat.slice(0, -1)}${known[c.b % known.length]!.name}`;
    return `expect stat ${stat} ${STAT_OPS[c.c % STAT_OPS.length]} ${c.d % 40}`;
  },
  random: [{
    name: 'expect-stat', order: 19, weight: 6, hugetlb: true,
    draw(g) {
      // (A process whose fork may have failed has no counters.)
      const q = g.pickOf(g.procs.filter((x) => !x.mayNotExist));
      // uffd_faults.Q twice as often, once some process registered with userfaultfd.
      const uffd = g.procs.some((x) => x.uffd.size > 0) ? [`uffd_faults.${q.name}`, `uffd_faults.${q.name}`] : [];
      const stat = g.pickOf([`rss.${q.name}`, `minflt.${q.name}`, 'AnonPages_kB', 'frames_used', 'PageTables_kB', ...uffd]);
      g.add(`expect stat ${stat} == {}`, 'stat');
      return true;
    },
  }],
});
