// Interning of scenario values: the model stores small integers; 0 is zero-fill.

export class ValueTable {
  /**
   * The names by id and the ids by name: a log that copies of a table share (clone) and append
   * to. A table has the first `count` names of its log; a copy that adds a value appends it to
   * the log when the log ends there, takes the log's next name when it is that value (a sibling
   * copy added it first: the copies of one state make the same fresh names), and only else makes
   * a log of its own. Most copies of a state (one per transition) copy nothing.
   */
  private ids = new Map<string, number>([['0', 0]]);
  private names: string[] = ['0'];
  private count = 1;

  id(v: string): number {
    const id = this.ids.get(v);
    if (id !== undefined && id < this.count) return id;
    const n = this.count;
    if (n < this.names.length && this.names[n] !== v) {
      // The log goes on with another value after this table's: a log of its own.
      this.names = this.names.slice(0, n);
      this.ids = new Map();
      for (let i = 0; i < n; i++) this.ids.set(this.names[i]!, i);
    }
    if (n === this.names.length) {
      this.names.push(v);
      this.ids.set(v, n);
    }
    this.count = n + 1;
    return n;
  }

  /** True if this table has the value. */
  private has(v: string): boolean {
    const id = this.ids.get(v);
    return id !== undefined && id < this.count;
  }

  /** A value the scenario never wrote (made up by the explorer or fresh for a device). */
  fresh(prefix: string): number {
    let n = this.count;
    while (this.has(`${prefix}${n}`)) n++;
    return this.id(`${prefix}${n}`);
  }

  /** A copy, sharing this table's log; in `dst` (a copy no longer needed) when given. */
  clone(dst?: ValueTable): ValueTable {
    const c = dst !== undefined && dst !== this ? dst : new ValueTable();
    c.ids = this.ids;
    c.names = this.names;
    c.count = this.count;
    return c;
  }

  name(id: number): string {
    return id >= 0 && id < this.count ? this.names[id]! : `?${id}`;
  }
}
