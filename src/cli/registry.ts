// The profile registry of a command: the built-ins plus any --profiles FILE.

import { loadProfileFile } from '../profiles/file.js';
import { ProfileRegistry } from '../profiles/resolve.js';
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
