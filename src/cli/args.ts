// Option parsing with clear errors (node:util parseArgs underneath).

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs(argv: string[], options: Options, command: string): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: r.values as Record<string, string | boolean | string[] | undefined>, positionals: r.positionals };
  } catch (e) {
    const msg = (e as Error).message.replace(/^Unknown option '([^']+)'.*$/s, "unknown option '$1'");
    throw new UsageError(`cowlab ${command}: ${msg} (cowlab ${command} --help lists the options)`);
  }
}
