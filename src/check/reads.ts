// What a read may see and, when it saw something else, what went wrong: one classification for
// CPU reads, device reads through a grant and reads through a GUP handle.

export type ReadKind = 'leak' | 'lost-write' | 'pin-incoherent' | 'exclusive';

export interface ReadCheck {
  /** Is the observed value allowed? */
  ok: boolean;
  /** What was allowed, as value ids (the first is the preferred one). */
  allowed: number[];
  /** When not ok: the kind of violation. */
  kind: ReadKind;
}

export interface ReadContext {
  /** The reader (or the page's owner) may legitimately have held the value it saw. */
  mayKnow: boolean;
  /** The value the page must hold was written by a device atomic (so the atomic was lost). */
  atomicLost?: boolean;
  /** The read went through a longterm pin still bound to its holder's page. */
  boundPin?: boolean;
}

/**
 * A read saw `value` where one of `allowed` may be seen. Wrong: an atomic that did not reach the
 * page is `exclusive`; data the reader could never have had is a `leak`; a bound pin that names
 * another page is `pin-incoherent`; anything else is a `lost-write`.
 */
export function classifyRead(value: number, allowed: number[], c: ReadContext): ReadCheck {
  if (allowed.includes(value)) return { ok: true, allowed, kind: 'lost-write' };
  const kind = c.atomicLost ? 'exclusive' : !c.mayKnow ? 'leak' : c.boundPin ? 'pin-incoherent' : 'lost-write';
  return { ok: false, allowed, kind };
}
