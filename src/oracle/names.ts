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
