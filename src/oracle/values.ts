// Scenario values as the 64-bit words that fill real pages. Integers are themselves (when they
// fit below 2^62); identifiers and larger integers get tagged words, so no two values share a
// word. A word read back that no scenario value has is shown as `?0x...`.

import type { Scenario } from '../scenario/index.js';

const TAG = 0xc0d0n << 48n;
const SMALL = 1n << 62n;

export class ValueWords {
  private toWord = new Map<string, bigint>([['0', 0n]]);
  private toName = new Map<bigint, string>([[0n, '0']]);
  private nextTag = 1n;

  constructor(values: Iterable<string> = []) {
    for (const v of values) this.word(v);
  }

  /** The values a scenario names (writes, device writes, expectations). */
  static forScenario(sc: Scenario): ValueWords {
    const vals: string[] = [];
    for (const s of sc.steps) {
      const rec = s as unknown as Record<string, unknown>;
      if (typeof rec.value === 'string') vals.push(rec.value);
      const ex = rec.expect as { kind?: string; value?: string } | string | null | undefined;
      if (typeof ex === 'string') vals.push(ex);
      else if (ex && typeof ex === 'object' && typeof ex.value === 'string') vals.push(ex.value);
    }
    // Integers first, so a tagged word never takes a number a scenario uses.
    vals.sort((a, b) => Number(!/^\d+$/.test(a)) - Number(!/^\d+$/.test(b)));
    return new ValueWords(vals);
  }

  word(v: string): bigint {
    let w = this.toWord.get(v);
    if (w !== undefined) return w;
    if (/^\d+$/.test(v) && BigInt(v) < SMALL && !this.toName.has(BigInt(v))) {
      w = BigInt(v);
    } else {
      do w = TAG | this.nextTag++; while (this.toName.has(w));
    }
    this.toWord.set(v, w);
    this.toName.set(w, v);
    return w;
  }

  hex(v: string): string {
    return this.word(v).toString(16);
  }

  /** The value a word read back stands for. */
  name(hexWord: string): string {
    const w = BigInt(`0x${hexWord}`);
    return this.toName.get(w) ?? `?0x${hexWord}`;
  }
}
