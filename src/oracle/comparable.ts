// What stays comparable after the live replay had to leave something out. The model may hold
// a handle the kernel run could not take (an R/O or short-term pin, a gup reference): the
// model's extra references and unsharing then change which frames are shared, the counters,
// and what short-term references see, though never what a process reads from its own memory.

export type Aspect =
  /** same-frame, mapped-once/shared, anon-exclusive; which pages are swapped out, which are KSM pages */
  | 'frames'
  /** every counter */
  | 'stats'
  /** minflt.* only */
  | 'minflt'
  /** every value read, by the CPU or through a handle */
  | 'values'
  /** values read through short-term references (vmsplice pipes) */
  | 'shortRefs'
  /** nothing at all: the replay stopped */
  | 'all';

export class Comparability {
  private readonly reasons = new Map<Aspect, string>();

  /** From now on, `aspect` is not compared, for this reason (the first reason is kept). */
  lose(aspect: Aspect, reason: string): void {
    if (!this.reasons.has(aspect)) this.reasons.set(aspect, reason);
  }

  /** Why `aspect` is no longer comparable, or null. 'all' covers every aspect. */
  why(aspect: Aspect): string | null {
    return this.reasons.get('all') ?? this.reasons.get(aspect) ?? null;
  }

  /** Why an observation of this kind (about this stat, or through a short-term reference) is not comparable. */
  forObservation(kind: string, what: string, shortRef: boolean): string | null {
    if (this.reasons.has('all')) return this.reasons.get('all')!;
    switch (kind) {
      case 'frame':
      case 'mapped':
      case 'exclusive':
      case 'swap':
      case 'ksm':
      case 'madvise': // MADV_COLLAPSE's result depends on the references each page holds
      case 'thp':
        return this.why('frames');
      case 'stat':
        return this.why('stats') ?? (what.startsWith('minflt.') ? this.why('minflt') : null);
      case 'read':
        return this.why('values');
      case 'handle-read':
        return this.why('values') ?? (shortRef ? this.why('shortRefs') : null);
      default:
        return null;
    }
  }
}
