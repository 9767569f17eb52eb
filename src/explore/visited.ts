// The explorer's visited sets. By default a set of 64-bit fingerprints of canonical encodings
// (8 bytes a slot, open addressing, half full at most): a fingerprint collision would make the
// search skip a state it never saw, with probability about n^2 / 2^65 for n states (stated in
// the output, as TLC does). `--exact` keeps the encodings themselves and compares them.
// The fingerprint set may live in shared memory, for workers (src/explore/parallel.ts): slots
// are claimed with compare-and-exchange, so several threads add to it at once.

/** Probability that two of n states share a 64-bit fingerprint (the birthday bound, n^2 / 2^65). */
export function collisionProbability(n: number): number {
  return Math.min(1, (n * n) / 2 ** 65);
}

const HEADER = 2; // words before the table: [0] states added, [1] log2 of the slots

/** A set of 64-bit fingerprints (hi, lo), both words non-zero. */
export class FingerprintSet {
  private t: Int32Array;
  private header: Int32Array;
  private mask: number;
  private readonly shared: boolean;

  /** A set on this thread (grows), or one over `buffer` made by FingerprintSet.buffer (fixed size, shared). */
  constructor(buffer?: SharedArrayBuffer) {
    this.shared = buffer !== undefined;
    const b = buffer ?? new ArrayBuffer(4 * (HEADER + 2 * (1 << 16)));
    this.header = new Int32Array(b, 0, HEADER);
    if (!buffer) this.header[1] = 16;
    this.t = new Int32Array(b, 4 * HEADER);
    this.mask = (1 << this.header[1]!) - 1;
  }

  /** Shared memory for a set that holds `states` fingerprints (slots: a power of two, at least twice that). */
  static buffer(states: number): SharedArrayBuffer {
    let bits = 16;
    while (2 ** bits < 2 * states) bits++;
    const b = new SharedArrayBuffer(4 * (HEADER + 2 * 2 ** bits));
    new Int32Array(b, 0, HEADER)[1] = bits;
    return b;
  }

  get size(): number {
    return this.shared ? Atomics.load(this.header, 0) : this.header[0]!;
  }

  /** Bytes the set occupies. */
  get bytes(): number {
    return this.t.byteLength + 4 * HEADER;
  }

  /** Add a fingerprint: true if it is new. */
  add(hi: number, lo: number): boolean {
    return this.shared ? this.addShared(hi, lo) : this.addLocal(hi, lo);
  }

  private addLocal(hi: number, lo: number): boolean {
    const t = this.t;
    let slot = lo & this.mask;
    for (;;) {
      const h = t[2 * slot]!;
      if (h === 0) break;
      if (h === hi && t[2 * slot + 1] === lo) return false;
      slot = (slot + 1) & this.mask;
    }
    t[2 * slot] = hi;
    t[2 * slot + 1] = lo;
    if (++this.header[0]! * 2 > this.mask) this.grow();
    return true;
  }

  private addShared(hi: number, lo: number): boolean {
    const t = this.t;
    let slot = lo & this.mask;
    for (;;) {
      let h = Atomics.load(t, 2 * slot);
      if (h === 0) {
        h = Atomics.compareExchange(t, 2 * slot, 0, hi);
        if (h === 0) {
          Atomics.store(t, 2 * slot + 1, lo);
          // The buffer was sized for the state bound: past 7/8 full, probes would get long.
          if (Atomics.add(this.header, 0, 1) * 8 > 7 * this.mask) throw new Error('internal error: the shared visited set is full');
          return true;
        }
      }
      if (h === hi) {
        let l: number;
        // The thread that claimed the slot writes its low word next.
        while ((l = Atomics.load(t, 2 * slot + 1)) === 0);
        if (l === lo) return false;
      }
      slot = (slot + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = this.t;
    const bits = this.header[1]! + 1;
    const b = new ArrayBuffer(4 * (HEADER + 2 * 2 ** bits));
    const header = new Int32Array(b, 0, HEADER);
    header[0] = this.header[0]!;
    header[1] = bits;
    const t = new Int32Array(b, 4 * HEADER);
    const mask = 2 ** bits - 1;
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] === 0) continue;
      let slot = old[i + 1]! & mask;
      while (t[2 * slot] !== 0) slot = (slot + 1) & mask;
      t[2 * slot] = old[i]!;
      t[2 * slot + 1] = old[i + 1]!;
    }
    this.header = header;
    this.t = t;
    this.mask = mask;
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
    const t = this.table;
    let slot = hash & this.mask;
    for (;;) {
      const w = t[2 * slot + 1]!;
      if (w === 0) break;
      if (t[2 * slot] === hash && this.equals(w - 1, key, n)) return true;
      slot = (slot + 1) & this.mask;
    }
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
    for (let i = 0; i < n; i++) c[this.used + i] = key[i]!;
    this.used += n;
    if (++this.size * 2 > this.mask) this.rehash();
    return false;
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
