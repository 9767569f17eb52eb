// How the live side names things the way the model does: page selectors, errno values.

import { constants as osConstants } from 'node:os';
import type { PageSel } from '../scenario/index.js';

/** The errno constant for a number (EFAULT), as the model names failures. */
export function errnoName(n: number): string {
  for (const [name, v] of Object.entries(osConstants.errno)) if (v === n) return name;
  return `errno ${n}`;
}

/** A page selector as the model writes it in observations: a[1], a[0..2], a[*]. */
export function label(sel: PageSel, i?: number): string {
  if (i !== undefined) return `${sel.region}[${i}]`;
  if (sel.all) return `${sel.region}[*]`;
  return sel.lo === sel.hi ? `${sel.region}[${sel.lo}]` : `${sel.region}[${sel.lo}..${sel.hi}]`;
}

/** Runs of consecutive indexes: [0, 1, 2, 5] as `0..2`, `5`. */
function runs(idx: number[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1] === idx[j]! + 1) j++;
    out.push(i === j ? `${idx[i]}` : `${idx[i]}..${idx[j]}`);
    i = j + 1;
  }
  return out;
}

/**
 * The state of each page of a range after a swapout, as both sides write it: one word when
 * every page is alike (`swapped`), else each run of pages with its state (`a[0] swapped,
 * a[1..2] present`). States: swapped, present, not mapped.
 */
export function pageStates(region: string, lo: number, states: readonly string[]): string {
  if (states.every((s) => s === states[0])) return states[0] ?? 'nothing';
  const out: string[] = [];
  for (let i = 0; i < states.length; ) {
    let j = i;
    while (j + 1 < states.length && states[j + 1] === states[i]) j++;
    out.push(`${region}[${i === j ? lo + i : `${lo + i}..${lo + j}`}] ${states[i]}`);
    i = j + 1;
  }
  return out.join(', ');
}

/** Pages named `P a[1]`, as a sorted list with runs merged (`P a[0..1], Q a[0]`), or `none`. */
export function pageList(pages: readonly { proc: string; region: string; index: number }[]): string {
  const by = new Map<string, number[]>();
  for (const p of pages) {
    const key = `${p.proc} ${p.region}`;
    let l = by.get(key);
    if (!l) by.set(key, (l = []));
    l.push(p.index);
  }
  if (by.size === 0) return 'none';
  return [...by.keys()].sort().map((k) => {
    const idx = [...new Set(by.get(k)!)].sort((a, b) => a - b);
    return runs(idx).map((r) => `${k}[${r}]`).join(', ');
  }).join(', ');
}
