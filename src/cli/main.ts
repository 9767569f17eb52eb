// The cowlab command line: a table of commands; every error ends as a message and an exit code.

import { runCommand, runCommandAsync } from './commands/run.js';
import { profilesCommand } from './commands/profiles.js';
import { compareCommand, compareCommandAsync } from './commands/compare.js';
import { serveCommand } from './commands/serve.js';
import { exploreCommand, exploreCommandAsync } from './commands/explore.js';
import { oracleCommand } from './commands/oracle.js';
import { EXPORT_HELP, exportCommand } from './commands/export.js';
import { EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
import { COMPARE_HELP, EXPLORE_HELP, MAIN_HELP, ORACLE_HELP, PROFILES_HELP, RUN_HELP, SERVE_HELP } from './help.js';
import { type Io, processIo } from './io.js';
import { escapeControls } from '../scenario/errors.js';

// A command that runs long may answer a promise (it gives the event loop turns, so signals reach it).
const COMMANDS: Record<string, (argv: string[], io: Io) => number | Promise<number>> = {
  run: runCommand,
  compare: compareCommand,
  explore: exploreCommand,
  profiles: profilesCommand,
  oracle: oracleCommand,
  export: exportCommand,
  serve: serveCommand,
};

const HELPS: Record<string, string> = { run: RUN_HELP, compare: COMPARE_HELP, explore: EXPLORE_HELP, profiles: PROFILES_HELP, serve: SERVE_HELP, oracle: ORACLE_HELP, export: EXPORT_HELP };

/** The commands whose work runs in a worker thread under the bin, so SIGINT/SIGTERM stop them with a report. */
const ASYNC_COMMANDS: Record<string, (argv: string[], io: Io) => Promise<number>> = {
  run: runCommandAsync,
  compare: compareCommandAsync,
  explore: exploreCommandAsync,
};

/** The command line, every command on this thread (tests; mainAsync is the bin's). */
export function main(argv: string[], rawIo: Io = processIo): number | Promise<number> {
  const io = escapingIo(rawIo);
  const [cmd, ...rest] = argv;
  try {
    if (cmd === undefined || cmd === '-h' || cmd === '--help') {
      io.out(MAIN_HELP);
      return cmd === undefined ? EXIT_USAGE : EXIT_OK;
    }
    if (cmd === 'help') {
      const topic = rest[0];
      if (rest.length > 1) throw new UsageError(`cowlab help: at most one command (commands: ${Object.keys(HELPS).join(', ')})`);
      if (topic === undefined) {
        io.out(MAIN_HELP);
        return EXIT_OK;
      }
      const text = Object.hasOwn(HELPS, topic) ? HELPS[topic] : undefined;
      if (text === undefined) throw new UsageError(`cowlab help: unknown command '${topic}' (commands: ${Object.keys(HELPS).join(', ')})`);
      io.out(text);
      return EXIT_OK;
    }
    if (cmd === '--version' || cmd === '-V') {
      io.out('cowlab 0.1.0');
      return EXIT_OK;
    }
    const fn = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
    if (!fn) throw new UsageError(`cowlab: unknown command '${cmd}' (commands: ${Object.keys(COMMANDS).join(', ')}; cowlab --help)`);
    const code = fn(rest, io);
    return typeof code === 'number' ? code : code.catch((e: unknown) => failure(e, rest, io));
  } catch (e) {
    return failure(e, rest, io);
  }
}

/** The command line as the bin runs it: run, compare and explore stop on SIGINT/SIGTERM with a report (exit 130). */
export async function mainAsync(argv: string[], rawIo: Io = processIo): Promise<number> {
  const [cmd, ...rest] = argv;
  const fn = cmd === undefined || !Object.hasOwn(ASYNC_COMMANDS, cmd) ? undefined : ASYNC_COMMANDS[cmd];
  if (!fn) return await main(argv, rawIo);
  const io = escapingIo(rawIo);
  try {
    return await fn(rest, io);
  } catch (e) {
    return failure(e, rest, io);
  }
}

/**
 * Whatever a command prints (names, paths, descriptions, messages quoting a file), control
 * characters are shown escaped: a file cannot recolour or retitle the user's terminal.
 */
function escapingIo(rawIo: Io): Io {
  return { out: (t) => rawIo.out(escapeControls(t, '\n\t')), err: (t) => rawIo.err(escapeControls(t, '\n\t')) };
}

/** Bad input: the message, exit 2; anything else is a bug: exit 70. */
function failure(e: unknown, rest: string[], io: Io): number {
  if (e instanceof UsageError) {
    if (rest.includes('--json')) {
      io.out(JSON.stringify({ format: 1, error: e.message, errors: e.details }, null, 2));
    }
    io.err(e.message);
    return EXIT_USAGE;
  }
  // A script reading --json gets a document here too (it would choke on an empty stdout).
  if (rest.includes('--json')) io.out(JSON.stringify({ format: 1, error: `internal error: ${(e as Error).message}`, errors: [] }, null, 2));
  io.err(`cowlab: internal error: ${(e as Error).message}`);
  if (process.env.COWLAB_DEBUG) io.err(String((e as Error).stack));
  else io.err('(this is a bug in cowlab; COWLAB_DEBUG=1 shows where)');
  return EXIT_INTERNAL;
}
