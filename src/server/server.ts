// The server of `cowlab serve`: node:http on 127.0.0.1 only. It hands out the page's built files
// (dist/web), the list of *.scn.yaml files under one folder, those files as plain text, and the
// text of profile files named on the command line. It never runs, parses or evaluates scenario
// text: the page does that, with the model bundled into it.
//
// Security: bound to 127.0.0.1; requests whose Host is not 127.0.0.1/localhost on our port are
// refused (DNS rebinding); only GET and HEAD; scenario paths are checked segment by segment
// (no `..`, no dot files, no backslash or NUL, must end in .scn.yaml) and, after resolving
// symbolic links, must still lie under the folder; responses carry a strict CSP and nosniff.

import { createServer as httpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, join, resolve, sep } from 'node:path';
import type { AddressInfo } from 'node:net';

export const HOST = '127.0.0.1';
export const SCENARIO_SUFFIX = '.scn.yaml';
/** Largest scenario file served. */
export const MAX_SCENARIO_BYTES = 1 << 20;
/** Most scenario files listed. */
export const MAX_LISTED = 5000;
const MAX_DEPTH = 12;

export interface ServeOptions {
  /** The folder whose *.scn.yaml files are offered (PATH). */
  root: string;
  /** The built page (dist/web). */
  assets: string;
  /** Profile files (--profiles), handed to the page as text. */
  profileFiles?: readonly string[];
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The built page's files by URL path: '/', '/app.js', '/app.css' ... (fixed at start). */
function assetTable(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isFile()) continue;
    const ext = e.name.slice(e.name.lastIndexOf('.'));
    if (!(ext in TYPES)) continue;
    out.set(`/${e.name}`, join(dir, e.name));
  }
  const index = out.get('/index.html');
  if (index) out.set('/', index);
  return out;
}

/** Every *.scn.yaml under root, as `/`-separated paths relative to it (dot entries and node_modules skipped). */
export function listScenarios(root: string): string[] {
  const out: string[] = [];
  const realRoot = realpathSync(root);
  const walk = (dir: string, rel: string, depth: number): void => {
    if (depth > MAX_DEPTH || out.length >= MAX_LISTED) return;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const p = join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p, r, depth + 1);
      else if (e.name.endsWith(SCENARIO_SUFFIX) && resolveScenario(realRoot, r) !== null) out.push(r);
      if (out.length >= MAX_LISTED) return;
    }
  };
  walk(realRoot, '', 0);
  return out;
}

/**
 * The file a scenario URL path names, or null when it is not a *.scn.yaml regular file under
 * root (root must be a real path). `rel` is the decoded path after /scenarios/.
 */
export function resolveScenario(realRoot: string, rel: string): string | null {
  if (rel.length === 0 || rel.length > 1024) return null;
  if (rel.includes('\0') || rel.includes('\\')) return null;
  const segs = rel.split('/');
  for (const s of segs) if (s === '' || s === '.' || s === '..' || s.startsWith('.')) return null;
  if (!segs[segs.length - 1]!.endsWith(SCENARIO_SUFFIX)) return null;
  const p = resolve(realRoot, ...segs);
  if (!p.startsWith(realRoot + sep)) return null;
  let real: string;
  try {
    real = realpathSync(p);
  } catch {
    return null;
  }
  if (!real.startsWith(realRoot + sep)) return null; // a symbolic link out of the folder
  if (!real.endsWith(SCENARIO_SUFFIX)) return null;
  try {
    const st = statSync(real);
    if (!st.isFile() || st.size > MAX_SCENARIO_BYTES) return null;
  } catch {
    return null;
  }
  return real;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, head: boolean): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Cache-Control': 'no-store',
  });
  res.end(head ? undefined : body);
}

function sendError(res: ServerResponse, status: number, message: string, head: boolean): void {
  send(res, status, TYPES['.txt']!, `${status} ${message}\n`, head);
}

export function createServer(opts: ServeOptions): Server {
  const assets = assetTable(opts.assets);
  if (!assets.has('/')) throw new Error(`${opts.assets}: the page is not built (no index.html): run \`npm run build\``);
  const realRoot = realpathSync(opts.root);
  const profileFiles = (opts.profileFiles ?? []).map((file) => ({ file, text: readFileSync(file, 'utf8') }));

  const server = httpServer((req: IncomingMessage, res: ServerResponse) => {
    const head = req.method === 'HEAD';
    try {
      if (req.method !== 'GET' && !head) {
        res.setHeader('Allow', 'GET, HEAD');
        return sendError(res, 405, 'only GET and HEAD', head);
      }
      const port = (server.address() as AddressInfo | null)?.port;
      const host = req.headers.host ?? '';
      if (host !== `${HOST}:${port}` && host !== `localhost:${port}`) {
        return sendError(res, 421, `this server answers only to http://${HOST}:${port}/`, head);
      }
      const raw = req.url ?? '/';
      const path = raw.split('?')[0]!.split('#')[0]!;
      const asset = assets.get(path);
      if (asset) {
        const ext = asset.slice(asset.lastIndexOf('.'));
        return send(res, 200, TYPES[ext]!, readFileSync(asset), head);
      }
      if (path === '/api/scenarios') {
        return send(res, 200, 'application/json; charset=utf-8', JSON.stringify({ root: basename(realRoot), files: listScenarios(realRoot) }), head);
      }
      if (path === '/api/profiles') {
        return send(res, 200, 'application/json; charset=utf-8', JSON.stringify({ files: profileFiles }), head);
      }
      if (path.startsWith('/scenarios/')) {
        let rel: string;
        try {
          rel = path.slice('/scenarios/'.length).split('/').map(decodeURIComponent).join('/');
        } catch {
          return sendError(res, 400, 'bad path encoding', head);
        }
        const file = resolveScenario(realRoot, rel);
        if (file === null) return sendError(res, 404, 'no such scenario file under the served folder', head);
        return send(res, 200, 'text/plain; charset=utf-8', readFileSync(file), head);
      }
      return sendError(res, 404, 'not found', head);
    } catch (e) {
      // Never the exception's message: a file-system error names paths of this machine.
      const code = (e as NodeJS.ErrnoException).code;
      return sendError(res, 500, `the server could not answer${typeof code === 'string' && /^E[A-Z]+$/.test(code) ? ` (${code})` : ''}`, head);
    }
  });
  return server;
}

/** Start listening on 127.0.0.1 (port 0: any free port). Resolves with the page's address. */
export function startServer(opts: ServeOptions & { port: number }): Promise<{ server: Server; url: string; port: number }> {
  const server = createServer(opts);
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port, HOST, () => {
      server.off('error', fail);
      const port = (server.address() as AddressInfo).port;
      ok({ server, url: `http://${HOST}:${port}/`, port });
    });
  });
}

/** dist/web, found from this file's place in dist/src/server. */
export function defaultAssets(): string {
  return resolve(import.meta.dirname, '../../web');
}

export function assetsBuilt(dir: string): boolean {
  return existsSync(join(dir, 'index.html')) && existsSync(join(dir, 'app.js'));
}
