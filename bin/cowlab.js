#!/usr/bin/env node
// The cowlab command: runs the compiled CLI (npm ci builds it).
// A closed pipe (`cowlab ... | head`) ends the command quietly.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (e) => {
    if (e && e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}
let mod;
try {
  mod = await import('../dist/src/cli/main.js');
} catch (e) {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('cowlab: not built yet: run `npm ci` (or `npm run build`) in the project first\n');
    process.exit(2);
  }
  throw e;
}
// A long-running command answers a promise of its exit code.
process.exitCode = await mod.main(process.argv.slice(2));
