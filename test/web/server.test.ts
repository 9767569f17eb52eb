// The server of `cowlab serve`: 127.0.0.1 only, the page's files and *.scn.yaml files under
// PATH and nothing else, no path traversal (encoded or through symbolic links), Host checked.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listScenarios, resolveScenario, startServer } from '../../src/server/server.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw request: the path is sent as written (no normalisation by a URL parser). */
function get(port: number, path: string, opts: { method?: string; host?: string } = {}): Promise<Reply> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: { host: opts.host ?? `127.0.0.1:${port}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('cowlab serve: the server', () => {
  let dir: string;
  let root: string;
  let server: Server;
  let port: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cowlab-serve-'));
    root = join(dir, 'scenarios');
    const assets = join(dir, 'assets');
    mkdirSync(join(root, 'seeds'), { recursive: true });
    mkdirSync(join(root, '.hidden'), { recursive: true });
    mkdirSync(assets);
    writeFileSync(join(assets, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(assets, 'app.js'), 'console.log(1)');
    writeFileSync(join(assets, 'app.css'), 'body{}');
    writeFileSync(join(root, 'seeds', 'a.scn.yaml'), 'name: a\nsteps: |\n  P mmap buf 1\n');
    writeFileSync(join(root, 'top.scn.yaml'), 'name: top\nsteps: |\n  P mmap buf 1\n');
    writeFileSync(join(root, 'notes.txt'), 'not a scenario');
    writeFileSync(join(root, '.hidden', 'h.scn.yaml'), 'name: h\nsteps: |\n  P mmap buf 1\n');
    writeFileSync(join(dir, 'secret.scn.yaml'), 'name: secret\nsteps: |\n  P mmap buf 1\n');
    writeFileSync(join(dir, 'secret.txt'), 'secret');
    symlinkSync(join(dir, 'secret.scn.yaml'), join(root, 'link.scn.yaml'));
    symlinkSync(dir, join(root, 'up'));
    ({ server, port } = await startServer({ root, assets, port: 0 }));
  });

  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens on 127.0.0.1 only', () => {
    const a = server.address() as AddressInfo;
    assert.equal(a.address, '127.0.0.1');
    assert.equal(a.family, 'IPv4');
  });

  it('serves the page and its assets, with a strict content security policy', async () => {
    const r = await get(port, '/');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /text\/html/);
    assert.match(String(r.headers['content-security-policy']), /script-src 'self'/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal((await get(port, '/app.js')).status, 200);
    assert.match(String((await get(port, '/app.js')).headers['content-type']), /javascript/);
    assert.equal((await get(port, '/app.css')).status, 200);
    assert.equal((await get(port, '/?file=seeds/a.scn.yaml&step=2')).status, 200);
  });

  it('lists only *.scn.yaml files under PATH (no dot folders, no links out of it)', async () => {
    const r = await get(port, '/api/scenarios');
    assert.equal(r.status, 200);
    const j = JSON.parse(r.body) as { root: string; files: string[] };
    assert.equal(j.root, 'scenarios');
    assert.deepEqual(j.files, ['seeds/a.scn.yaml', 'top.scn.yaml']);
    assert.deepEqual(listScenarios(root), j.files);
  });

  it('serves a scenario file as plain text, never as something to run', async () => {
    const r = await get(port, '/scenarios/seeds/a.scn.yaml');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain/);
    assert.match(r.body, /name: a/);
    assert.equal((await get(port, '/scenarios/top.scn.yaml')).status, 200);
    assert.equal((await get(port, '/scenarios/seeds%2Fa.scn.yaml')).status, 200);
  });

  it('refuses path traversal, however it is spelled', async () => {
    const bad = [
      '/scenarios/../secret.scn.yaml',
      '/scenarios/..%2Fsecret.scn.yaml',
      '/scenarios/%2e%2e/secret.scn.yaml',
      '/scenarios/%2E%2E%2Fsecret.scn.yaml',
      '/scenarios/seeds/../../secret.scn.yaml',
      '/scenarios/..%5Csecret.scn.yaml',
      '/scenarios/%2Fetc%2Fpasswd',
      '/scenarios//etc/passwd.scn.yaml',
      `/scenarios/${encodeURIComponent(join(dir, 'secret.scn.yaml'))}`,
      '/scenarios/link.scn.yaml',
      '/scenarios/up/secret.scn.yaml',
      '/scenarios/.hidden/h.scn.yaml',
      '/scenarios/seeds/a.scn.yaml%00.txt',
      '/scenarios/%E0%A4%A',
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/app.js/../../secret.txt',
    ];
    for (const p of bad) {
      const r = await get(port, p);
      assert.ok(r.status === 404 || r.status === 400, `${p}: status ${r.status}`);
      assert.doesNotMatch(r.body, /secret/, p);
    }
  });

  it('serves nothing but the assets and scenario files', async () => {
    for (const p of ['/scenarios/notes.txt', '/notes.txt', '/scenarios/', '/scenarios', '/index.htm', '/package.json', '/api/', '/dist/web/app.js']) {
      assert.equal((await get(port, p)).status, 404, p);
    }
  });

  it('answers only GET and HEAD', async () => {
    assert.equal((await get(port, '/', { method: 'POST' })).status, 405);
    assert.equal((await get(port, '/', { method: 'PUT' })).status, 405);
    const h = await get(port, '/', { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.body, '');
  });

  it('refuses another Host (DNS rebinding)', async () => {
    assert.equal((await get(port, '/', { host: 'evil.example' })).status, 421);
    assert.equal((await get(port, '/api/scenarios', { host: `evil.example:${port}` })).status, 421);
    assert.equal((await get(port, '/', { host: `localhost:${port}` })).status, 200);
  });

  it('resolveScenario accepts only regular *.scn.yaml files inside the real root', () => {
    const real = realpathSync(root);
    assert.notEqual(resolveScenario(real, 'seeds/a.scn.yaml'), null);
    assert.equal(resolveScenario(real, 'seeds'), null);
    assert.equal(resolveScenario(real, 'notes.txt'), null);
    assert.equal(resolveScenario(real, '../secret.scn.yaml'), null);
    assert.equal(resolveScenario(real, 'link.scn.yaml'), null);
    assert.equal(resolveScenario(real, ''), null);
  });

  it('a 500 answer names no path of the machine (the served folder gone)', async () => {
    const other = mkdtempSync(join(tmpdir(), 'cowlab-serve-gone-'));
    const scen = join(other, 'scenarios');
    const assets = join(other, 'assets');
    mkdirSync(scen);
    mkdirSync(assets);
    writeFileSync(join(assets, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(scen, 'a.scn.yaml'), 'name: a\nsteps: |\n  P mmap buf 1\n');
    const s2 = await startServer({ root: scen, assets, port: 0 });
    try {
      rmSync(scen, { recursive: true, force: true });
      const r = await get(s2.port, '/api/scenarios');
      assert.equal(r.status, 500);
      assert.match(r.body, /^500 the server could not answer \(ENOENT\)/);
      assert.ok(!r.body.includes(other) && !r.body.includes(tmpdir()) && !r.body.includes('lstat'), r.body);
    } finally {
      s2.server.close();
      rmSync(other, { recursive: true, force: true });
    }
  });
});
