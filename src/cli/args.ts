// Option parsing with clear errors (node:util parseArgs underneath).

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs(argv: string[], options: Options, command: string): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: r.values as Record<string, string | boolean | string[] | undefined>, positionals: r.positionals };
  } catch (e) {
    throw new UsageError(`cowlab ${command}: ${optionMessage((e as Error).message)} (cowlab ${command} --help lists the options)`);
  }
}

/**
 * parseArgs's message in cowlab's words, on one line: its own are capitalised, name the value as
 * `<value>`, and the one for a value starting with '-' runs over three lines.
 */
function optionMessage(msg: string): string {
  let m = /^Unknown option '([^']+)'/.exec(msg);
  if (m) return `unknown option '${m[1]}'`;
  m = /^Option '([^']+?)(?: <value>)?' argument missing/.exec(msg);
  if (m) return `${m[1]} needs a value`;
  m = /^Option '([^']+)' argument is ambiguous.*use '([^'=]+)=-XYZ'/s.exec(msg);
  if (m) return `${m[1]} needs a value; one that starts with '-' is written ${m[2]}=VALUE`;
  m = /^Option '([^']+)' does not take an argument/.exec(msg);
  if (m) return `${m[1]} takes no value`;
  return msg.replace(/\s*\n\s*/g, ' ');
}
