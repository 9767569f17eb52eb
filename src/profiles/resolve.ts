// Resolving a profile name (built-in or user-defined) and `--set switch=value` overrides.

import type { Profile, SwitchName } from '../core/profile.js';
import { BUILTIN_PROFILES, builtinProfile, LTS_PROFILES } from './builtin.js';
import { closest } from '../scenario/errors.js';

/** A switch's values as written on the command line and in profile files: booleans as true/false. */
type ValueText<V> = V extends boolean ? 'true' | 'false' : V;

/**
 * The values each switch accepts (booleans: true/false). The Profile type declares them; this
 * list is checked against it when compiling: a value that is not the type's, or a value of the
 * type missing here, is a type error (Complete below).
 */
const VALUES = {
  wpReuse: ['mapcount', 'pagecount', 'anon-exclusive'],
  anonExclusive: ['true', 'false'],
  gupCowBreak: ['none', 'get-and-pin', 'pin'],
  gupFastWritableOnly: ['true', 'false'],
  forkEarlyCow: ['true', 'false'],
  unshareRoPin: ['none', 'anon', 'all'],
  clearRefsSkipPinned: ['true', 'false'],
  mprotectWritable: ['true', 'false'],
  mprotectWritableClean: ['true', 'false'],
  ksmReuse: ['true', 'false'],
  wpCopiesKsm: ['true', 'false'],
  ksmBreakCow: ['write', 'unshare'],
  ksmScansProtnone: ['true', 'false'],
  ksmChecksumFirst: ['true', 'false'],
  ksmSmartScan: ['true', 'false'],
  pinSkipsZeroPage: ['true', 'false'],
  mmForbidsZeropage: ['true', 'false'],
  writeProtectSeq: ['true', 'false'],
  deviceExclusive: ['none', 'seed002', 'v5.14', 'v6.15'],
  deviceExclusiveHeld: ['page', 'folio'],
  swapinReuse: ['reuse_swap_page', 'refcount', 'exclusive-bit'],
  swapinReadFaultWritable: ['true', 'false'],
  wpFreeSwapcache: ['true', 'false'],
  reclaimSkipsPinned: ['true', 'false'],
  cowPageTables: ['none', 'rfc', 'odf'],
  cowPteTakeBack: ['any', 'whole-table', 'never'],
  cowPteShare: ['any', 'whole-table'],
  cowptDontneed: ['range', 'vma', 'ignored'],
  cowptMremap: ['unshare', 'move-shared'],
  mremapMultiVma: ['true', 'false'],
  mremapClearsUffdWp: ['true', 'false'],
  thpUseZeroPage: ['true', 'false'],
  thpWpReuse: ['mapcount', 'refcount', 'anon-exclusive'],
  thpWpCopy: ['huge', 'split'],
  hugeZeroWp: ['huge', 'split'],
  wpReuseLarge: ['as-small', 'never', 'mm-exclusive'],
  pageoutLargeShared: ['page-mapcount', 'first-page', 'folio', 'total'],
  pageoutLargeWalk: ['break', 'batch'],
  mprotectWritablePmd: ['true', 'false'],
  hugetlbForkEarlyCow: ['true', 'false'],
  madvCollapse: ['none', 'writable-pte', 'any-pte'],
  ptReclaim: ['true', 'false'],
  thpSplitZeropage: ['true', 'false'],
  uffdWp: ['true', 'false'],
  uffdWpForkVma: ['src-vma', 'dst-vma'],
  uffdWpShmem: ['true', 'false'],
  uffdWpWritenotify: ['true', 'false'],
  uffdUnprotectWritable: ['true', 'false'],
  gupFastLongtermRetry: ['true', 'false'],
  swap: ['true', 'false'],
  ksm: ['true', 'false'],
} as const satisfies { readonly [K in SwitchName]: readonly ValueText<Profile[K]>[] };

/** never unless every value of every switch's type is listed in VALUES. */
type Missing = { [K in SwitchName]: Exclude<ValueText<Profile[K]>, (typeof VALUES)[K][number]> }[SwitchName];
const complete: [Missing] extends [never] ? true : Missing = true;
void complete;

export const SWITCH_VALUES: Record<SwitchName, readonly string[]> = VALUES;

export const SWITCH_NAMES = Object.keys(SWITCH_VALUES) as SwitchName[];

export class ProfileError extends Error {}

export class ProfileRegistry {
  private readonly byName = new Map<string, Profile>();

  /** Names left out of `compare`'s default matrix (the long-term kernels). */
  private readonly offMatrix = new Set<string>();

  constructor(profiles: readonly Profile[] = BUILTIN_PROFILES, longTerm: readonly Profile[] = LTS_PROFILES) {
    for (const p of profiles) this.byName.set(p.name, p);
    for (const p of longTerm) {
      this.byName.set(p.name, p);
      this.offMatrix.add(p.name);
    }
  }

  /** Where each user-defined profile was defined (FILE:LINE:COL), by name. */
  private readonly userAt = new Map<string, string>();

  /** A user-defined profile (defined at `at`); its name must be new (see definedAs). */
  add(p: Profile, at = '(user)'): void {
    this.byName.set(p.name, p);
    this.offMatrix.delete(p.name);
    this.userAt.set(p.name, at);
  }

  /** What `name` is already: `built-in`, the place a user profile of that name was defined, or null (a new name). */
  definedAs(name: string): string | null {
    return this.userAt.get(name) ?? (this.byName.has(name) ? 'built-in' : null);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  get(name: string): Profile {
    const p = this.byName.get(name);
    if (!p) throw new ProfileError(this.unknown(name));
    return p;
  }

  /** `unknown profile 'v5.9rc4': did you mean 'v5.9-rc4'? (known: ...)`, the message for a name not here. */
  unknown(name: string, more = ''): string {
    const guess = closest(name, this.names());
    return `unknown profile '${name}'${guess === null ? '' : `: did you mean '${guess}'?`} (known: ${this.names().join(', ')}${more})`;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** `compare`'s default columns: every profile but the long-term kernels. */
  matrixNames(): string[] {
    return this.names().filter((n) => !this.offMatrix.has(n));
  }

  /** The long-term kernels (`compare --kernels lts`), oldest first. */
  longTermNames(): string[] {
    return this.names().filter((n) => this.offMatrix.has(n));
  }

  all(): Profile[] {
    return [...this.byName.values()];
  }
}

/** Apply `switch=value` overrides; the result is named `base+switch=value,...`. */
export function withOverrides(base: Profile, sets: readonly string[]): Profile {
  if (sets.length === 0) return base;
  const out: Record<string, unknown> = { ...base };
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq < 0) throw new ProfileError(`'${s}': expected SWITCH=VALUE`);
    const name = s.slice(0, eq).trim();
    const value = s.slice(eq + 1).trim();
    out[name] = parseSwitch(name, value);
  }
  return {
    ...(out as unknown as Profile),
    name: `${base.name}+${sets.map((s) => s.replace(/\s+/g, '')).join(',')}`,
    summary: `${base.name} with ${sets.join(', ')}`,
  };
}

export function parseSwitch(name: string, value: string): string | boolean {
  if (!(name in SWITCH_VALUES)) {
    throw new ProfileError(`unknown switch '${name}' (switches: ${SWITCH_NAMES.join(', ')})`);
  }
  const allowed = SWITCH_VALUES[name as SwitchName];
  if (!allowed.includes(value)) throw new ProfileError(`switch ${name}: '${value}' is not one of ${allowed.join(', ')}`);
  return allowed[0] === 'true' || allowed[0] === 'false' ? value === 'true' : value;
}

export { builtinProfile };

/**
 * A what-if kernel written as one name, as `withOverrides` names it and as the output prints it
 * (`v5.9+forkEarlyCow=false`, `v5.9-rc4+pin-cow+forkEarlyCow=false,gupCowBreak=pin`): the base
 * profile and its `SWITCH=VALUE` overrides. A profile name never holds '=', so the overrides start
 * after the last '+' before the first '='. Null for a name without '=' (a plain profile name).
 */
export function splitWhatIf(name: string): { base: string; sets: string[] } | null {
  const eq = name.indexOf('=');
  if (eq < 0) return null;
  const plus = name.lastIndexOf('+', eq);
  if (plus <= 0) throw new ProfileError(`'${name}': expected a profile name, or PROFILE+SWITCH=VALUE[,SWITCH=VALUE...] for a what-if kernel`);
  return { base: name.slice(0, plus), sets: name.slice(plus + 1).split(',') };
}

/**
 * The profile a `--kernel` value names: a profile of the registry, or a what-if name
 * (`v5.9+forkEarlyCow=false`) built on one; `sets` (from `--set`) are applied after.
 * Returns the base profile too (outcomes are judged by its name). Throws ProfileError.
 */
export function resolveKernel(registry: ProfileRegistry, name: string, sets: readonly string[] = []): { base: Profile; profile: Profile } {
  const whatIf = splitWhatIf(name);
  const base = registry.get(whatIf === null ? name : whatIf.base);
  const all = [...(whatIf?.sets ?? []), ...sets];
  return { base, profile: withOverrides(base, all) };
}

/** `--kernels a,b,...`: the names, a what-if name's later `,SWITCH=VALUE` parts kept with it. */
export function splitKernelList(list: string): string[] {
  const out: string[] = [];
  for (const part of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const last = out.length - 1;
    if (part.includes('=') && !part.includes('+') && last >= 0 && out[last]!.includes('=')) out[last] += `,${part}`;
    else out.push(part);
  }
  return out;
}
