// The profile registry of a command: the built-ins plus any --profiles FILE.

import { readFileSync } from 'node:fs';
import { loadProfileFile } from '../profiles/file.js';
import { ProfileRegistry } from '../profiles/resolve.js';
import { UsageError } from './errors.js';

export function buildRegistry(files: readonly string[]): ProfileRegistry {
  const reg = new ProfileRegistry();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new UsageError(`${file}: cannot read profile file: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    const { errors } = loadProfileFile(text, file, reg);
    if (errors.length) {
      throw new UsageError(errors.map((e) => `${e.file}:${e.line}:${e.col}: error: ${e.message}`).join('\n'), errors);
    }
  }
  return reg;
}
