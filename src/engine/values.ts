// Interning of scenario values: the model stores small integers; 0 is zero-fill.

export class ValueTable {
  private ids = new Map<string, number>([['0', 0]]);
  private names: string[] = ['0'];

  id(v: string): number {
    let id = this.ids.get(v);
    if (id === undefined) {
      id = this.names.length;
      this.names.push(v);
      this.ids.set(v, id);
    }
    return id;
  }

  /** A value the scenario never wrote (made up by the explorer or fresh for a device). */
  fresh(prefix: string): number {
    let n = this.names.length;
    while (this.ids.has(`${prefix}${n}`)) n++;
    return this.id(`${prefix}${n}`);
  }

  /** A copy; into `dst` (its containers reused) when given. */
  clone(dst?: ValueTable): ValueTable {
    if (dst === undefined || dst === this) {
      const c = new ValueTable();
      c.ids = new Map(this.ids);
      c.names = this.names.slice();
      return c;
    }
    dst.ids.clear();
    for (const [k, v] of this.ids) dst.ids.set(k, v);
    dst.names.length = this.names.length;
    for (let i = 0; i < this.names.length; i++) dst.names[i] = this.names[i]!;
    return dst;
  }

  name(id: number): string {
    return this.names[id] ?? `?${id}`;
  }
}
