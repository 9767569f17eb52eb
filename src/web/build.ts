// Builds the page of `cowlab serve` into dist/web: esbuild bundles src/web/main.tsx (preact, the
// model core, the scenario parser, yaml) into one app.js; index.html and app.css are copied.
// Run by `npm run build` (and so by `npm ci` and `npm test`): node dist/src/web/build.js

import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const root = resolve(import.meta.dirname, '../../..');
const src = join(root, 'src/web');
const out = join(root, 'dist/web');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const r = await build({
  entryPoints: [join(src, 'main.tsx')],
  outfile: join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome109', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
  metafile: true,
});
for (const f of ['index.html', 'app.css']) copyFileSync(join(src, f), join(out, f));
const bytes = Object.values(r.metafile.outputs).reduce((s, o) => s + o.bytes, 0);
process.stderr.write(`web: dist/web built (${Math.round(bytes / 1024)} KiB)\n`);
