// Storage of the compact search: the states waiting to be expanded, in chunks of Int32Arrays
// so nothing is allocated per state and memory grows in steps (the visited set is
// src/explore/visited.ts).

export { VisitedSet } from '../visited.js';

const CHUNK = 1 << 22;

/** A growable Int32 column. */
class Column {
  a = new Int32Array(1 << 16);
  set(i: number, v: number): void {
    if (i >= this.a.length) {
      const b = new Int32Array(Math.max(i + 1, this.a.length * 2));
      b.set(this.a);
      this.a = b;
    }
    this.a[i] = v;
  }
  get(i: number): number {
    return this.a[i]!;
  }
}

/**
 * States by id, each stored as far as it is in use (Layout.used), back to back in chunks;
 * chunks whose states were all expanded are reused.
 */
export class StateQueue {
  private chunks: (Int32Array | null)[] = [];
  /** Per chunk: the last id stored in it. */
  private lastId: number[] = [];
  private spare: Int32Array[] = [];
  /** Per id: its chunk (an index that only grows: chunks are dropped, not renumbered) and offset. */
  private whereChunk = new Column();
  private whereOff = new Column();
  private chunk = -1;
  private used = CHUNK;
  private firstLive = 0;

  /** Bytes the queue occupies (its chunks in use and spare, and where each state is). */
  get bytes(): number {
    const chunks = this.chunks.filter((c) => c !== null).length + this.spare.length;
    return chunks * CHUNK * 4 + this.whereChunk.a.byteLength + this.whereOff.a.byteLength;
  }

  /** Store the first `n` integers of s as state `id` (s is copied whole; the next state overwrites its tail). */
  put(id: number, s: Int32Array, n: number): void {
    if (this.used + s.length > CHUNK) {
      this.chunks.push(this.spare.pop() ?? new Int32Array(CHUNK));
      this.lastId.push(id);
      this.chunk = this.chunks.length - 1;
      this.used = 0;
    }
    const c = this.chunks[this.chunk]!;
    this.whereChunk.set(id, this.chunk);
    this.whereOff.set(id, this.used);
    c.set(s, this.used);
    this.used += n;
    this.lastId[this.chunk] = id;
  }

  /** Copy state `id` (its first `n` integers) into `into`. */
  get(id: number, into: Int32Array, n: number): void {
    const o = this.whereOff.get(id);
    const c = this.chunks[this.whereChunk.get(id)]!;
    for (let i = 0; i < n; i++) into[i] = c[o + i]!;
  }

  /** How many integers state `id` was stored with, given what its header says. */
  header(id: number, at: number): number {
    return this.chunks[this.whereChunk.get(id)]![this.whereOff.get(id) + at]!;
  }

  /** Every state before `id` was expanded: chunks holding only those are reused. */
  dropBefore(id: number): void {
    while (this.firstLive < this.chunk && this.lastId[this.firstLive]! < id) {
      this.spare.push(this.chunks[this.firstLive]!);
      this.chunks[this.firstLive++] = null;
    }
  }
}
