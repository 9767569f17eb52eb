// The profile registry of a command: the built-ins plus any --profiles FILE.

import { loadProfileFile } from '../profiles/file.js';
import type { Profile } from '../core/profile.js';
import { ProfileError, ProfileRegistry, resolveKernel, splitWhatIf } from '../profiles/resolve.js';
import { UsageError } from './errors.js';
import { readInputFile } from './load.js';

export function buildRegistry(files: readonly string[]): ProfileRegistry {
  const reg = new ProfileRegistry();
  for (const file of files) {
    const read = readInputFile(file);
    if ('error' in read) throw new UsageError(`${file}: ${read.error.replace('cannot read', 'cannot read profile file').replace(', not a scenario file', '')}`);
    const { errors } = loadProfileFile(read.text, file, reg);
    if (errors.length) {
      throw new UsageError(errors.map((e) => `${e.file}:${e.line}:${e.col}: error: ${e.message}`).join('\n'), errors);
    }
  }
  return reg;
}

/**
 * The profile `--kernel NAME` names for a command that runs the model beside a live kernel
 * (export, oracle): a profile, or a what-if name built on one, as `run --kernel` takes it. A
 * switch in `machine` is the live machine's, found by its probe: a what-if setting it would be
 * overridden there, so it is refused, `why` saying so.
 */
export function liveKernel(registry: ProfileRegistry, name: string, command: string, machine: readonly string[], why: string): Profile {
  try {
    const set = (splitWhatIf(name)?.sets ?? []).map((s) => s.slice(0, s.indexOf('=')).trim()).filter((s) => machine.includes(s));
    const profile = resolveKernel(registry, name).profile;
    if (set.length > 0) throw new UsageError(`cowlab ${command}: --kernel: '${name}' sets ${set.join(', ')}: ${why}`);
    return profile;
  } catch (e) {
    if (!(e instanceof ProfileError)) throw e;
    throw new UsageError(`cowlab ${command}: --kernel: ${e.message}`);
  }
}
