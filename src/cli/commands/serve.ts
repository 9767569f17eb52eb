// `cowlab serve [PATH] [--port N]`: the web page that steps through scenarios, on 127.0.0.1.
// The page runs the model itself; the server hands out the page and the *.scn.yaml files under PATH.

import { existsSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { assetsBuilt, defaultAssets, listScenarios, startServer } from '../../server/server.js';
import { parseCommandArgs } from '../args.js';
import { buildRegistry } from '../registry.js';
import { EXIT_OK, EXIT_USAGE, UsageError } from '../errors.js';
import { SERVE_HELP } from '../help.js';
import type { Io } from '../io.js';

export const DEFAULT_PORT = 7357;

export function serveCommand(argv: string[], io: Io): number {
  const { values, positionals } = parseCommandArgs(argv, {
    port: { type: 'string', short: 'p' },
    profiles: { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h' },
  }, 'serve');
  if (values.help) {
    io.out(SERVE_HELP);
    return EXIT_OK;
  }
  if (positionals.length > 1) throw new UsageError('cowlab serve: one PATH at most (a folder of *.scn.yaml files, or one such file)');
  const portText = (values.port as string | undefined) ?? String(DEFAULT_PORT);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw new UsageError(`cowlab serve: --port: '${portText}' is not a port number (0-65535; 0 picks a free one)`);
  const path = positionals[0] ?? '.';
  if (!existsSync(path)) throw new UsageError(`cowlab serve: ${path}: no such file or directory`);
  let root = path;
  let first: string | null = null;
  if (!statSync(path).isDirectory()) {
    if (!path.endsWith('.scn.yaml')) throw new UsageError(`cowlab serve: ${path}: not a folder or a *.scn.yaml file`);
    root = dirname(path);
    first = basename(path);
  }
  const profileFiles = (values.profiles ?? []) as string[];
  // Read and checked as every command checks them (a directory, a FIFO or a malformed profile is
  // FILE:LINE:COL, exit 2), not first by the server, where a directory was an internal error.
  for (const f of profileFiles) if (!existsSync(f)) throw new UsageError(`cowlab serve: --profiles: ${f}: no such file`);
  buildRegistry(profileFiles);
  const assets = defaultAssets();
  if (!assetsBuilt(assets)) throw new UsageError(`cowlab serve: the page is not built (${assets} is missing): run \`npm run build\` in the project first`);

  const count = listScenarios(root).length;
  startServer({ root, assets, port: Number(portText), profileFiles }).then(({ url }) => {
    const link = first ? `${url}?file=${encodeURIComponent(first)}` : url;
    io.out(`cowlab serve: ${link}`);
    io.out(`  ${count} scenario file(s) under ${root}; the page runs the model in your browser. Ctrl-C stops.`);
  }, (e: NodeJS.ErrnoException) => {
    io.err(e.code === 'EADDRINUSE'
      ? `cowlab serve: port ${portText} is in use on 127.0.0.1 (try --port 0 for any free port)`
      : `cowlab serve: cannot listen on 127.0.0.1:${portText}: ${e.message}`);
    process.exitCode = EXIT_USAGE;
  });
  return EXIT_OK;
}
