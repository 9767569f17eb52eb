// The explorer's visited sets. By default a set of 64-bit fingerprints of canonical encodings
// (8 bytes a slot, open addressing, half full at most): a fingerprint collision would make the
// search skip a state it never saw, with probability about n^2 / 2^65 for n states (stated in
// the output, as TLC does). `--exact` keeps the encodings themselves and compares them.
// The fingerprint set may live in shared memory, for workers (src/explore/parallel.ts): one
// thread adds to it while the workers read it. A slot is written once (both words non-zero)
// and a table that grows is copied to a new buffer (the old one, no longer written, holds part of
// the set): so a reader may miss a fingerprint being added, never find one that is not there.

/** Probability that two of n states share a 64-bit fingerprint (the birthday bound, n^2 / 2^65). */
export function collisionProbability(n: number): number {
  return Math.min(1, (n * n) / 2 ** 65);
}

/** A set of 64-bit fingerprints (hi, lo), both words non-zero: open addressing, at most half full. */
export class FingerprintSet {
  private t: Int32Array;
  private mask: number;
  size = 0;

  /** With `shared`, the table lives in shared memory (other threads read it between two growths: `buffer`). */
  constructor(private readonly shared = false, bits = 16) {
    this.t = this.table(bits);
    this.mask = (1 << bits) - 1;
  }

  private table(bits: number): Int32Array {
    // 8 * 2^bits as a double: `8 << bits` is a 32-bit integer, negative from 2^28 slots on
    // (past 67 M fingerprints, where a search of `--procs 3 --pages 3 --depth 8` gets).
    const bytes = 8 * 2 ** bits;
    return new Int32Array(this.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  }

  /** The table's memory (a new buffer after each growth), for readers on other threads (FingerprintReader). */
  get buffer(): ArrayBufferLike {
    return this.t.buffer;
  }

  /** Bytes the set occupies. */
  get bytes(): number {
    return this.t.byteLength;
  }

  has(hi: number, lo: number): boolean {
    return lookup(this.t, this.mask, hi, lo) < 0;
  }

  /** Add a fingerprint: true if it is new. */
  add(hi: number, lo: number): boolean {
    const slot = lookup(this.t, this.mask, hi, lo);
    if (slot < 0) return false;
    this.insert(slot, hi, lo);
    return true;
  }

  /** Where (hi, lo) is: -1 (present), or the slot insert() puts it in (valid until the set changes). */
  find(hi: number, lo: number): number {
    return lookup(this.t, this.mask, hi, lo);
  }

  /** Add a fingerprint at the slot find() gave for it. */
  insert(slot: number, hi: number, lo: number): void {
    this.t[2 * slot] = hi;
    this.t[2 * slot + 1] = lo;
    if (++this.size * 2 > this.mask) this.grow();
  }

  private grow(): void {
    const old = this.t;
    const bits = Math.log2(this.mask + 1) + 1;
    const t = this.table(bits);
    // An integer, as the constructor's (2 ** bits is a double: optimised code that took the mask
    // for a small integer would be thrown away at each growth).
    const mask = (2 ** bits - 1) | 0;
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] === 0) continue;
      let slot = old[i + 1]! & mask;
      while (t[2 * slot] !== 0) slot = (slot + 1) & mask;
      t[2 * slot] = old[i]!;
      t[2 * slot + 1] = old[i + 1]!;
    }
    this.t = t;
    this.mask = mask;
  }
}

/** Where (hi, lo) is, as -1 (present) or the empty slot it would take. */
function lookup(t: Int32Array, mask: number, hi: number, lo: number): number {
  let slot = lo & mask;
  for (;;) {
    const h = t[2 * slot]!;
    if (h === 0) return slot;
    if (h === hi && t[2 * slot + 1] === lo) return -1;
    slot = (slot + 1) & mask;
  }
}

/** Another thread's FingerprintSet (its buffer), read while that thread may add to it (a worker, during a depth). */
export class FingerprintReader {
  private readonly t: Int32Array;
  private readonly mask: number;
  constructor(buffer: ArrayBufferLike) {
    this.t = new Int32Array(buffer);
    this.mask = this.t.length / 2 - 1;
  }

  has(hi: number, lo: number): boolean {
    return lookup(this.t, this.mask, hi, lo) < 0;
  }
}

const CHUNK_BITS = 22;
const CHUNK = 1 << CHUNK_BITS;

/**
 * Encodings of visited states, exact: open addressing over (hash, where the key is stored) pairs,
 * so a probe that does not match costs one memory access and a match compares the stored key.
 * Keys are stored back to back in chunks of Int32Arrays (nothing allocated per state).
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
  has(key: ArrayLike<number>, n: number, hash: number): boolean {
    const slot = this.find(key, n, hash);
    if (slot < 0) return true;
    this.insert(slot, key, n, hash);
    return false;
  }

  /** Where the key is: -1 (present), or the slot insert() puts it in (valid until the set changes). */
  find(key: ArrayLike<number>, n: number, hash: number): number {
    const t = this.table;
    let slot = hash & this.mask;
    for (;;) {
      const w = t[2 * slot + 1]!;
      if (w === 0) return slot;
      if (t[2 * slot] === hash && this.equals(w - 1, key, n)) return -1;
      slot = (slot + 1) & this.mask;
    }
  }

  /** Add a key (its first n words) at the slot find() gave for it. */
  insert(slot: number, key: ArrayLike<number>, n: number, hash: number): void {
    const t = this.table;
    if (n + 1 > CHUNK) throw new Error(`internal error: a state key of ${n} words`);
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
    // An Int32Array key (every caller's) is copied in one block.
    if (key instanceof Int32Array) c.set(n === key.length ? key : key.subarray(0, n), this.used);
    else for (let i = 0; i < n; i++) c[this.used + i] = key[i]!;
    this.used += n;
    if (++this.size * 2 > this.mask) this.rehash();
  }

  /** Bytes the set occupies. */
  get bytes(): number {
    return this.table.byteLength + this.chunks.length * CHUNK * 4;
  }

  private equals(w: number, key: ArrayLike<number>, n: number): boolean {
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
