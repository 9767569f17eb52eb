// Storage of the compact search: the visited set (canonical keys, exact comparison, open
// addressing over their hashes) and the states waiting to be expanded, both in chunks of
// Int32Arrays so nothing is allocated per state and memory grows in steps.

const CHUNK = 1 << 22;

/** Keys of visited states: an id per distinct key. */
export class VisitedSet {
  private chunks: Int32Array[] = [new Int32Array(CHUNK)];
  private used = 0;
  /** Per id: where its key starts (chunk * CHUNK + offset). */
  private where = new Float64Array(1 << 16);
  private hashes = new Int32Array(1 << 16);
  private table = new Int32Array(1 << 17);
  private mask = (1 << 17) - 1;
  size = 0;

  /** Bytes held (for the memory bound). */
  get bytes(): number {
    return this.chunks.length * CHUNK * 4 + this.where.byteLength + this.hashes.byteLength + this.table.byteLength;
  }

  /** The id of this key if it was seen; otherwise it is added and -1 returned. */
  addIfNew(key: Int32Array, n: number, hash: number): number {
    let slot = hash & this.mask;
    for (;;) {
      const e = this.table[slot]!;
      if (e === 0) break;
      const id = e - 1;
      if (this.hashes[id] === hash && this.equals(id, key, n)) return id;
      slot = (slot + 1) & this.mask;
    }
    const id = this.size++;
    this.table[slot] = id + 1;
    if (id >= this.hashes.length) {
      this.hashes = growInt(this.hashes, this.hashes.length * 2);
      const w = new Float64Array(this.where.length * 2);
      w.set(this.where);
      this.where = w;
    }
    this.hashes[id] = hash;
    let c = this.chunks[this.chunks.length - 1]!;
    if (this.used + n + 1 > CHUNK) {
      c = new Int32Array(CHUNK);
      this.chunks.push(c);
      this.used = 0;
    }
    this.where[id] = (this.chunks.length - 1) * CHUNK + this.used;
    c[this.used++] = n;
    c.set(key.subarray(0, n), this.used);
    this.used += n;
    if (this.size * 2 > this.mask) this.rehash();
    return -1;
  }

  private equals(id: number, key: Int32Array, n: number): boolean {
    const w = this.where[id]!;
    const c = this.chunks[Math.floor(w / CHUNK)]!;
    let o = w % CHUNK;
    if (c[o++] !== n) return false;
    for (let i = 0; i < n; i++) if (c[o + i] !== key[i]) return false;
    return true;
  }

  private rehash(): void {
    const cap = (this.mask + 1) * 2;
    this.table = new Int32Array(cap);
    this.mask = cap - 1;
    for (let id = 0; id < this.size; id++) {
      let slot = this.hashes[id]! & this.mask;
      while (this.table[slot] !== 0) slot = (slot + 1) & this.mask;
      this.table[slot] = id + 1;
    }
  }
}

/** States by id, fixed size each; chunks of expanded states are dropped. */
export class StateQueue {
  private chunks: (Int32Array | null)[] = [];
  private readonly perChunk: number;
  constructor(private readonly size: number) {
    this.perChunk = Math.max(1, Math.floor(CHUNK / size));
  }

  get bytes(): number {
    let n = 0;
    for (const c of this.chunks) if (c) n += c.byteLength;
    return n;
  }

  put(id: number, s: Int32Array): void {
    const k = Math.floor(id / this.perChunk);
    let c = this.chunks[k];
    if (!c) c = this.chunks[k] = new Int32Array(this.perChunk * this.size);
    c.set(s, (id % this.perChunk) * this.size);
  }

  get(id: number, into: Int32Array): void {
    const c = this.chunks[Math.floor(id / this.perChunk)]!;
    const o = (id % this.perChunk) * this.size;
    into.set(c.subarray(o, o + this.size));
  }

  /** Every state before `id` was expanded: free their chunks. */
  dropBefore(id: number): void {
    const k = Math.floor(id / this.perChunk);
    for (let i = 0; i < k; i++) this.chunks[i] = null;
  }
}

/** A growable Int32 column. */
export class Column {
  a = new Int32Array(1 << 16);
  set(i: number, v: number): void {
    if (i >= this.a.length) this.a = growInt(this.a, Math.max(i + 1, this.a.length * 2));
    this.a[i] = v;
  }
  get(i: number): number {
    return this.a[i]!;
  }
  get bytes(): number {
    return this.a.byteLength;
  }
}

function growInt(a: Int32Array, n: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}
