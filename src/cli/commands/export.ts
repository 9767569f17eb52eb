// `cowlab export FILE [--kernel NAME] -o repro.c`: one scenario as a standalone C reproducer.

import { writeFileSync } from 'node:fs';
import { ExportError, exportScenario } from '../../export/export.js';
import { parseCommandArgs } from '../args.js';
import { errnoText, EXIT_OK, UsageError } from '../errors.js';
import type { Io } from '../io.js';
import { loadScenarios } from '../load.js';
import { buildRegistry, liveKernel } from '../registry.js';

export const EXPORT_FORMAT = 1;

export const EXPORT_HELP = `usage: cowlab export FILE [--kernel NAME] [-o OUT.c|-] [--json]

Writes one scenario as one standalone C program that replays it on a live Linux kernel with
the same system calls as \`cowlab oracle\` (one real process per scenario process, fork,
io_uring buffer registration for pins through raw system calls, vmsplice pipes, MADV_PAGEOUT
on a swap file of its own, KSM) and checks every observation against the model: values read,
faults, the scenario's expect steps (pagemap frame numbers and flags, /proc/kpageflags as
root), counters, swapped and KSM pages. It prints one PASS/FAIL/SKIP line per check and a
summary; exit status 0 all PASS, 1 some FAIL, 2 could not run. Steps the kernel cannot do
from user space (R/O or short-term pins, gup references, device-exclusive access) are
comments "skipped: <reason>" in the program.

Expectations are computed now for both kinds of kernel the oracle tells apart (a read fault
maps the shared zero page, or not): the program probes its machine and takes the right set.
Build and run:  gcc -O2 -o repro repro.c && sudo ./repro   (docs/export.md)

options:
  --kernel NAME   the model's profile (default v6, the newest behaviour), or a what-if
                  kernel PROFILE+SWITCH=VALUE,... (as run --kernel takes it): the program
                  checks the live kernel against the model with those rules; not
                  mmForbidsZeropage (the program probes whether the machine maps the
                  zero page, and export computes the model both ways)
  --profiles FILE load user-defined profiles (repeatable)
  -o, --output F  where the program goes (default and '-': standard output)
  --json          a JSON summary on standard output (needs -o FILE)
  -h, --help      this text

example:
  npx cowlab export scenarios/basic/fork-isolation.scn.yaml -o /tmp/repro.c
  gcc -O2 -o /tmp/repro /tmp/repro.c && sudo /tmp/repro

exit status: 0 written; 2 bad input (file:line:col).`;

export function exportCommand(argv: string[], io: Io): number {
  const { values, positionals } = parseCommandArgs(argv, {
    kernel: { type: 'string' },
    profiles: { type: 'string', multiple: true },
    output: { type: 'string', short: 'o' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, 'export');
  if (values.help) {
    io.out(EXPORT_HELP);
    return EXIT_OK;
  }
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0
      ? 'cowlab export: no scenario given (try: npx cowlab export scenarios/basic/fork-isolation.scn.yaml -o /tmp/repro.c)'
      : `cowlab export: one scenario file at a time, got ${positionals.length}`);
  }
  const registry = buildRegistry((values.profiles ?? []) as string[]);
  const kernel = (values.kernel as string | undefined) ?? 'v6';
  const profile = liveKernel(registry, kernel, 'export', ['mmForbidsZeropage'], 'whether the kernel maps the zero page is a fact of the machine the program runs on: it probes it, and export computes the model both ways (PROFILE and PROFILE+mmForbidsZeropage=true)');
  const output = (values.output as string | undefined) ?? '-';
  if (values.json && output === '-') throw new UsageError('cowlab export: --json prints a summary on standard output, so the program needs -o FILE');
  const [sc] = loadScenarios(positionals, registry);
  let r;
  try {
    r = exportScenario(sc!, profile);
  } catch (e) {
    if (e instanceof ExportError) throw new UsageError(`${sc!.file}:${e.line}:${e.col}: error: ${e.message}`, [{ file: sc!.file, line: e.line, col: e.col, message: e.message }]);
    throw e;
  }
  if (output === '-') {
    io.out(r.source);
  } else {
    try {
      writeFileSync(output, r.source);
    } catch (e) {
      throw new UsageError(`cowlab export: cannot write ${output}: ${errnoText(e)}`);
    }
  }
  if (values.json) {
    io.out(JSON.stringify({ format: EXPORT_FORMAT, command: 'export', file: r.file, scenario: r.scenario, profile: r.base, output, variants: r.variants, skipped: r.skipped }, null, 2));
  } else if (output !== '-') {
    io.err(`wrote ${output}: ${r.scenario} (model ${r.variants[0].profile}${r.variants[1].profile !== r.variants[0].profile ? `, or ${r.variants[1].profile} where no zero page` : ''}); build: gcc -O2 -o repro ${output} && sudo ./repro`);
  }
  return EXIT_OK;
}
