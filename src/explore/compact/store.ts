// Storage of the compact search: the visited set (canonical keys, exact comparison, open
// addressing over their hashes) and the states waiting to be expanded, both in chunks of
// Int32Arrays so nothing is allocated per state and memory grows in steps.

import { Column } from '../tree.js';

const CHUNK_BITS = 22;
const CHUNK = 1 << CHUNK_BITS;

/**
 * Keys of visited states, exact: open addressing over (hash, where the key is stored) pairs,
 * so a probe that does not match costs one memory access and a match compares the stored key.
 */
export class VisitedSet {
  private chunks: Int32Array[] = [new Int32Array(CHUNK)];
  private used = 0;
  /** Pairs: the key's hash, and 1 + where its key starts (chunk * CHUNK + offset); 0 is empty. */
  private table = new Int32Array(2 << 20);
  private mask = (1 << 20) - 1;
  size = 0;
  /** Set when the keys fill all but the last chunk the 31-bit positions can name: stop adding. */
  full = false;

  /** True if this key was seen; otherwise it is added and false returned. */
  has(key: Int32Array, n: number, hash: number): boolean {
    const t = this.table;
    let slot = hash & this.mask;
    for (;;) {
      const w = t[2 * slot + 1]!;
      if (w === 0) break;
      if (t[2 * slot] === hash && this.equals(w - 1, key, n)) return true;
      slot = (slot + 1) & this.mask;
    }
    let c = this.chunks[this.chunks.length - 1]!;
    if (this.used + n + 1 > CHUNK) {
      if (this.chunks.length + 2 >= 2 ** 31 / CHUNK) this.full = true;
      c = new Int32Array(CHUNK);
      this.chunks.push(c);
      this.used = 0;
    }
    t[2 * slot] = hash;
    t[2 * slot + 1] = (this.chunks.length - 1) * CHUNK + this.used + 1;
    c[this.used++] = n;
    for (let i = 0; i < n; i++) c[this.used + i] = key[i]!;
    this.used += n;
    if (++this.size * 2 > this.mask) this.rehash();
    return false;
  }

  private equals(w: number, key: Int32Array, n: number): boolean {
    const c = this.chunks[w >>> CHUNK_BITS]!;
    let o = w & (CHUNK - 1);
    if (c[o++] !== n) return false;
    for (let i = 0; i < n; i++) if (c[o + i] !== key[i]) return false;
    return true;
  }

  private rehash(): void {
    const old = this.table;
    const cap = (this.mask + 1) * 2;
    const t = new Int32Array(2 * cap);
    this.mask = cap - 1;
    for (let i = 0; i < old.length; i += 2) {
      if (old[i + 1] === 0) continue;
      let slot = old[i]! & this.mask;
      while (t[2 * slot + 1] !== 0) slot = (slot + 1) & this.mask;
      t[2 * slot] = old[i]!;
      t[2 * slot + 1] = old[i + 1]!;
    }
    this.table = t;
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
