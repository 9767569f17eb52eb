// The swap device: slots with swap counts (swap_map), the data written to each slot, and the
// swap cache (slot -> frame). Struct of arrays, grown by doubling.

import { growTypedArray } from './frames.js';

export class SwapDevice {
  /** swap_map: how many swap PTEs name the slot. */
  count = new Int32Array(16);
  /** The value written to the slot by pageout (interned value id). */
  data = new Int32Array(16);
  /** The swap-cache frame of the slot, or -1. */
  cache = new Int32Array(16).fill(-1);
  /** Slot in use (allocated by add_to_swap, freed when count is 0 and it is not cached). */
  used = new Uint8Array(16);
  top = 0;
  inUse = 0;

  alloc(): number {
    let s = 0;
    while (s < this.top && this.used[s]) s++;
    if (s === this.top) {
      if (this.top === this.count.length) {
        const n = this.top * 2;
        this.count = growTypedArray(this.count, n);
        this.data = growTypedArray(this.data, n);
        const old = this.cache.length;
        this.cache = growTypedArray(this.cache, n);
        this.cache.fill(-1, old);
        this.used = growTypedArray(this.used, n);
      }
      this.top++;
    }
    this.used[s] = 1;
    this.count[s] = 0;
    this.data[s] = 0;
    this.cache[s] = -1;
    this.inUse++;
    return s;
  }

  /** Free the slot when nothing names it any more. */
  maybeFree(s: number): void {
    if (this.used[s] && this.count[s] === 0 && this.cache[s] < 0) {
      this.used[s] = 0;
      this.inUse--;
    }
  }

  /** A copy; into `dst` (its arrays reused when as large) when given. */
  clone(dst?: SwapDevice): SwapDevice {
    const c = dst ?? new SwapDevice();
    const same = dst !== undefined && dst.count.length === this.count.length && dst.count !== this.count;
    if (same) {
      // Slots at and past top are as alloc() finds them in both (never touched): only the first
      // max(top) are copied (none while nothing was ever swapped out).
      const n = Math.max(this.top, dst.top);
      for (let s = 0; s < n; s++) {
        c.count[s] = this.count[s]!;
        c.data[s] = this.data[s]!;
        c.cache[s] = this.cache[s]!;
        c.used[s] = this.used[s]!;
      }
    } else {
      c.count = this.count.slice();
      c.data = this.data.slice();
      c.cache = this.cache.slice();
      c.used = this.used.slice();
    }
    c.top = this.top;
    c.inUse = this.inUse;
    return c;
  }
}
