// The cowlab command line: a table of commands; every error ends as a message and an exit code.

import { runCommand } from './commands/run.js';
import { profilesCommand } from './commands/profiles.js';
import { compareCommand } from './commands/compare.js';
import { serveCommand } from './commands/serve.js';
import { exploreCommand } from './commands/explore.js';
import { oracleCommand } from './commands/oracle.js';
import { EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
import { COMPARE_HELP, EXPLORE_HELP, MAIN_HELP, ORACLE_HELP, PROFILES_HELP, RUN_HELP, SERVE_HELP } from './help.js';
import { type Io, processIo } from './io.js';
import { escapeControls } from '../scenario/errors.js';

const COMMANDS: Record<string, (argv: string[], io: Io) => number> = {
  run: runCommand,
  compare: compareCommand,
  explore: exploreCommand,
  profiles: profilesCommand,
  oracle: oracleCommand,
  serve: serveCommand,
};

const HELPS: Record<string, string> = { run: RUN_HELP, compare: COMPARE_HELP, explore: EXPLORE_HELP, profiles: PROFILES_HELP, serve: SERVE_HELP, oracle: ORACLE_HELP };

export function main(argv: string[], rawIo: Io = processIo): number {
  const [cmd, ...rest] = argv;
  // Whatever a command prints (names, paths, descriptions, messages quoting a file), control
  // characters are shown escaped: a file cannot recolour or retitle the user's terminal.
  const io: Io = { out: (t) => rawIo.out(escapeControls(t, '\n\t')), err: (t) => rawIo.err(escapeControls(t, '\n\t')) };
  try {
    if (cmd === undefined || cmd === '-h' || cmd === '--help') {
      io.out(MAIN_HELP);
      return cmd === undefined ? EXIT_USAGE : EXIT_OK;
    }
    if (cmd === 'help') {
      const topic = rest[0];
      io.out(topic && HELPS[topic] ? HELPS[topic]! : MAIN_HELP);
      return EXIT_OK;
    }
    if (cmd === '--version' || cmd === '-V') {
      io.out('cowlab 0.1.0');
      return EXIT_OK;
    }
    const fn = COMMANDS[cmd];
    if (!fn) throw new UsageError(`cowlab: unknown command '${cmd}' (commands: ${Object.keys(COMMANDS).join(', ')}; cowlab --help)`);
    return fn(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      if (rest.includes('--json')) {
        io.out(JSON.stringify({ format: 1, error: e.message, errors: e.details }, null, 2));
      }
      io.err(e.message);
      return EXIT_USAGE;
    }
    io.err(`cowlab: internal error: ${(e as Error).message}`);
    if (process.env.COWLAB_DEBUG) io.err(String((e as Error).stack));
    else io.err('(this is a bug in cowlab; COWLAB_DEBUG=1 shows where)');
    return EXIT_INTERNAL;
  }
}
