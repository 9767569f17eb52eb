// `cowlab profiles [NAME]`: the kernel profiles and their switches.

import { ProfileError, resolveKernel, SWITCH_NAMES, SWITCH_VALUES } from '../../profiles/resolve.js';
import { RESULT_FORMAT_VERSION } from '../../engine/result.js';
import { buildRegistry } from '../registry.js';
import { EXIT_OK, UsageError } from '../errors.js';
import { PROFILES_HELP } from '../help.js';
import type { Io } from '../io.js';
import { parseCommandArgs } from '../args.js';

export function profilesCommand(argv: string[], io: Io): number {
  const { values, positionals } = parseCommandArgs(argv, { json: { type: 'boolean' }, profiles: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } }, 'profiles');
  if (values.help) {
    io.out(PROFILES_HELP);
    return EXIT_OK;
  }
  const registry = buildRegistry((values.profiles ?? []) as string[]);
  if (positionals.length > 1) throw new UsageError('cowlab profiles: at most one profile name');
  if (positionals.length === 1) {
    const name = positionals[0]!;
    // A what-if name (as a run prints it: v5.9+forkEarlyCow=false) shows its switches too.
    let p;
    try {
      p = resolveKernel(registry, name).profile;
    } catch (e) {
      if (!(e instanceof ProfileError)) throw e;
      throw new UsageError(`cowlab profiles: ${name.includes('=') ? e.message : registry.unknown(name, ', or a what-if name: PROFILE+SWITCH=VALUE,...')}`);
    }
    if (values.json) {
      io.out(JSON.stringify({ format: RESULT_FORMAT_VERSION, command: 'profiles', profile: p, switches: SWITCH_VALUES }, null, 2));
      return EXIT_OK;
    }
    const lines = [`${p.name}: ${p.summary}`, `  source: ${p.source}`, '  switches:'];
    for (const s of SWITCH_NAMES) lines.push(`    ${s.padEnd(20)} ${String(p[s]).padEnd(15)} (${SWITCH_VALUES[s].join(' | ')})`);
    io.out(lines.join('\n'));
    return EXIT_OK;
  }
  const all = registry.all();
  if (values.json) {
    io.out(JSON.stringify({ format: RESULT_FORMAT_VERSION, command: 'profiles', profiles: all, switches: SWITCH_VALUES }, null, 2));
    return EXIT_OK;
  }
  const w = Math.max(...all.map((p) => p.name.length));
  io.out(all.map((p) => `${p.name.padEnd(w)}  ${p.summary}`).join('\n') + '\n\n`cowlab profiles NAME` shows a profile\'s switches; `--set SWITCH=VALUE` overrides one in a run.');
  return EXIT_OK;
}
