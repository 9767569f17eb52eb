// A list of indices (page tables, frames) noted since it was last cleared, each listed once:
// a stamp per index says whether it is listed in this round, so clearing is O(1) (a new round).

export class StampList {
  private stamp: Int32Array = new Int32Array(0);
  private list: Int32Array = new Int32Array(0);
  private round = 1;
  /** Indices listed: at(0 .. n-1). */
  n = 0;

  /** Note index i (listed once a round). The list must have room for it (grow). */
  add(i: number): void {
    if (this.stamp[i] !== this.round) {
      this.stamp[i] = this.round;
      this.list[this.n++] = i;
    }
  }

  at(i: number): number {
    return this.list[i]!;
  }

  /** The indices listed, list[0 .. n-1] (a view, valid until the next add or grow). */
  get listed(): Int32Array {
    return this.list.subarray(0, this.n);
  }

  clear(): void {
    this.n = 0;
    if (++this.round === 0x7fffffff) {
      this.stamp.fill(0);
      this.round = 1;
    }
  }

  /** Empty, with room for indices 0 .. cap-1: a list started (again). */
  restart(cap: number): void {
    this.grow(cap);
    this.clear();
  }

  /** Room for indices 0 .. cap-1. */
  grow(cap: number): void {
    if (this.stamp.length >= cap) return;
    this.stamp = grow(this.stamp, cap);
    this.list = grow(this.list, cap);
  }
}

function grow(a: Int32Array, cap: number): Int32Array {
  const b = new Int32Array(cap);
  b.set(a);
  return b;
}
