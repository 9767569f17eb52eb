// Interning of scenario values: the model stores small integers; 0 is zero-fill.

export class ValueTable {
  private ids = new Map<string, number>([['0', 0]]);
  private names: string[] = ['0'];
  /**
   * False while the maps are shared with a copy (clone): the first new value copies them. Most
   * steps add no value, so most copies of a state (one per transition) copy nothing.
   */
  private owned = true;

  id(v: string): number {
    let id = this.ids.get(v);
    if (id === undefined) {
      if (!this.owned) {
        this.ids = new Map(this.ids);
        this.names = this.names.slice();
        this.owned = true;
      }
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

  /** A copy, sharing this table's maps until either adds a value; in `dst` (a copy no longer needed) when given. */
  clone(dst?: ValueTable): ValueTable {
    const c = dst !== undefined && dst !== this ? dst : (Object.create(ValueTable.prototype) as ValueTable);
    c.ids = this.ids;
    c.names = this.names;
    c.owned = false;
    this.owned = false;
    return c;
  }

  name(id: number): string {
    return this.names[id] ?? `?${id}`;
  }
}
