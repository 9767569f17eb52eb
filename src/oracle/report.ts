// Text rendering of oracle results: per scenario a table step / model / kernel / agree?,
// skip reasons as numbered notes under it, and a summary line.

import type { OracleCounts, OracleResult } from './oracle.js';

function cut(s: string, w: number): string {
  return s.length > w ? `${s.slice(0, w - 1)}…` : s.padEnd(w);
}

export function renderOracle(r: OracleResult): string {
  const out: string[] = [];
  out.push(`${r.file}: ${r.scenario}  (model ${r.profile} vs Linux ${r.kernel})`);
  if (r.status === 'skipped') {
    out.push(`  skipped: ${r.skip}`);
    return out.join('\n');
  }
  for (const n of r.notes) out.push(`  note: ${n}`);
  const reasons: string[] = [];
  const ref = (why: string): string => {
    let i = reasons.indexOf(why);
    if (i < 0) i = reasons.push(why) - 1;
    return `[${i + 1}]`;
  };
  const W_STEP = 42;
  const W_VAL = 16;
  out.push(`  ${'line'.padEnd(5)} ${'step'.padEnd(W_STEP)} ${'model'.padEnd(W_VAL)} ${'kernel'.padEnd(W_VAL)} agree?`);
  for (const s of r.steps) {
    const where = `L${s.line}`.padEnd(5);
    if (s.rows.length === 0) {
      const tail = s.skip !== null ? `skipped ${ref(s.skip)}` : /failed/.test(s.kernel) ? `(kernel: ${s.kernel})` : '';
      out.push(`  ${where} ${cut(s.text, W_STEP)} ${''.padEnd(W_VAL)} ${''.padEnd(W_VAL)} ${tail}`.trimEnd());
      continue;
    }
    s.rows.forEach((row, i) => {
      const first = i === 0 ? `${where} ${cut(s.text, W_STEP)}` : `${''.padEnd(5)} ${cut(`  ${row.what}`, W_STEP)}`;
      const verdict = row.verdict === 'agree' ? 'yes'
        : row.verdict === 'disagree' ? `NO${row.reason ? ` (${row.reason})` : ''}`
        : `skipped ${ref(row.reason ?? 'not compared')}`;
      out.push(`  ${first} ${cut(row.model ?? '—', W_VAL)} ${cut(row.kernel ?? '—', W_VAL)} ${verdict}`);
    });
  }
  reasons.forEach((why, i) => out.push(`  [${i + 1}] ${why}`));
  if (r.na !== null) out.push(`  the model (${r.profile}) is n/a from line ${r.na.line}: ${r.na.reason}; the steps before it are compared`);
  if (r.error !== null) out.push(`  ERROR: the live replay failed at ${r.error}`);
  out.push(`  ${statusWord(r)}: ${countsText(r.counts)}`);
  return out.join('\n');
}

export function statusWord(r: OracleResult): string {
  switch (r.status) {
    case 'agree':
      return 'agree';
    case 'disagree':
      return `DISAGREE on ${r.counts.disagree} observation(s)`;
    case 'n/a':
      return 'n/a on the model (prefix agrees)';
    case 'skipped':
      return 'skipped';
    default:
      return 'ERROR';
  }
}

export function countsText(c: OracleCounts): string {
  return `${c.compared} observation(s) compared, ${c.agree} agree, ${c.disagree} disagree, ${c.skipped} skipped`;
}

export function addCounts(a: OracleCounts, b: OracleCounts): OracleCounts {
  return {
    steps: a.steps + b.steps,
    compared: a.compared + b.compared,
    agree: a.agree + b.agree,
    disagree: a.disagree + b.disagree,
    skipped: a.skipped + b.skipped,
  };
}

export const ZERO_COUNTS: OracleCounts = { steps: 0, compared: 0, agree: 0, disagree: 0, skipped: 0 };
