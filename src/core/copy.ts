// Copying an object's own fields into another of its class, for state copies made many times a
// second (the explorer copies a state per transition): Object.assign is generic and slow, and a
// hand-written list of fields misses the next field added. This compiles, once per class, a
// function that copies the fields an instance has, one assignment each. Every instance of a
// class has the same fields: the class declares them (declared fields are defined on every
// instance, initialised or not, under the ES2022 class-field semantics this project compiles to).

type Copier = (dst: object, src: object) => void;

const copiers = new WeakMap<object, Copier>();

/** Copy every own field of `src` into `dst` (of the same class), by reference: the shallow copy Object.assign makes. */
export function copyFields<T extends object>(dst: T, src: T): T {
  copierOf(src)(dst, src);
  return dst;
}

/** The copier of `src`'s class, compiled at its first use. */
function copierOf(src: object): Copier {
  const proto = Object.getPrototypeOf(src) as object;
  let copy = copiers.get(proto);
  if (copy === undefined) {
    copy = compile(Object.keys(src));
    copiers.set(proto, copy);
  }
  return copy;
}

/**
 * copyFields for a call site that copies instances of one class only (no subclass): its copier
 * is looked up once, at the first copy, instead of by prototype at every copy.
 */
export function classCopier<T extends object>(): (dst: T, src: T) => T {
  let copy: Copier | undefined;
  return (dst: T, src: T): T => {
    if (copy === undefined) copy = copierOf(src);
    copy(dst, src);
    return dst;
  };
}

/**
 * A copier of the fields `template` has, for plain objects of one shape (copyFields compiles one
 * copier per class, and plain objects share one prototype): the template lists the fields once.
 */
export function templateCopier<T extends object>(template: T): (dst: T, src: T) => void {
  return compile(Object.keys(template));
}

/**
 * A copier for plain objects of one shape (one factory makes them, every field set, in one order),
 * compiled from the first object it copies: the factory lists the fields once.
 */
export function shapeCopier<T extends object>(): (dst: T, src: T) => T {
  let copy: Copier | undefined;
  return (dst: T, src: T): T => {
    if (copy === undefined) copy = compile(Object.keys(src));
    copy(dst, src);
    return dst;
  };
}

/** The copier of these fields; Object.assign where they are not plain names or code cannot be compiled (a page whose CSP forbids it). */
function compile(keys: string[]): Copier {
  const assign = (d: object, s: object): void => void Object.assign(d, s);
  if (!keys.every((k) => /^[A-Za-z_$][\w$]*$/.test(k))) return assign;
  try {
    return new Function('d', 's', keys.map((k) => `d.${k} = s.${k};`).join('\n')) as Copier;
  } catch {
    return assign;
  }
}

/**
 * `from`'s elements (each through `copy`, if given) in `reuse`, an array done with, or in a new
 * array when there is none or it is `from` itself: the copies the explorer makes per transition
 * reuse the arrays of the state copied before.
 */
export function copyArrayInto<T>(from: readonly T[], reuse: T[] | undefined, copy?: (x: T) => T): T[] {
  // A new one of from's elements kind (slice keeps it): one `[]` here for arrays of numbers,
  // strings and objects alike would make its allocation site's later arrays of the most general.
  const to = reuse === undefined || reuse === from ? from.slice(0, 0) : reuse;
  // Shrunk by its length, grown by assignment at its end, in order: a length set past the end
  // would leave holes (HOLEY elements: another hidden class, which every reader of the array sees).
  if (to.length > from.length) to.length = from.length;
  if (copy === undefined) for (let i = 0; i < from.length; i++) to[i] = from[i]!;
  else for (let i = 0; i < from.length; i++) to[i] = copy(from[i]!);
  return to;
}

/**
 * An empty array of object elements. `[]` is an array of small integers (PACKED_SMI_ELEMENTS):
 * the first object stored in it changes its hidden class, so a field whose arrays are sometimes
 * empty and sometimes not gives its readers two hidden classes (optimised code made for one is
 * thrown away at the other). An array of objects, strings or `undefined` starts here.
 */
export function objectArray<T>(): T[] {
  const a: (T | null)[] = [null];
  a.pop();
  return a as T[];
}
