// The TLS balancer in front of two machines' proxies: requests reach the right app over HTTPS, route-aware, around a dead proxy without a failed GET, with its own forwarded headers, an HTTP redirect, WebSockets, and clean refusals.
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request, type RequestOptions } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveOptions } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import { BALANCER_OPTIONS, startBalancer, type BalancerDaemon } from '../../balancer/balancer-daemon.js';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import { traversableTempDir } from '../helpers/hoster-fixture.js';
import { createRoutedApp, runInstance, startAppServer, startTestProxy } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

/** A raw client gives the server this long to answer and close before it ends the connection itself. */
const RAW_CLOSE_FALLBACK_MS = 1000;
/** Machines count as live for 15 s after a heartbeat; on a loaded machine this file runs longer, so they keep beating. */
const HEARTBEAT_EVERY_MS = 2000;
let heartbeats: NodeJS.Timeout | undefined;
let redis: TestRedis;
let registry: RegistryFixture;
let m1: ProxyDaemon;
let m2: ProxyDaemon;
let balancer: BalancerDaemon;
let ca: string;
let dataDir: string;
const closers: (() => Promise<void>)[] = [];

function get(path: string, headers: Record<string, string> = {}, options: RequestOptions = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const url = new URL(balancer.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: Number(url.port), path, headers, ca, servername: 'localhost', agent: false, ...options }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const asAdmin = () => ({ authorization: `Bearer ${registry.token}` });

async function app(name: string, path: string, machine: string) {
  await createRoutedApp(registry.daemon.apps, name, path);
  const s = await startAppServer(`${name}@${machine}`);
  closers.push(s.close);
  await runInstance(registry.daemon.store, name, path, machine, s.port);
  return s;
}

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis);
  m1 = await startTestProxy(redis, registry.prefix, 'm1');
  m2 = await startTestProxy(redis, registry.prefix, 'm2');
  await registry.daemon.store.heartbeat('m1', { proxy: m1.url });
  await registry.daemon.store.heartbeat('m2', { proxy: m2.url });
  heartbeats = setInterval(() => {
    void Promise.all([registry.daemon.store.heartbeat('m1', { proxy: m1.url }), registry.daemon.store.heartbeat('m2', { proxy: m2.url })]).catch(() => undefined);
  }, HEARTBEAT_EVERY_MS);
  dataDir = traversableTempDir('berth-balancer-');
  const config = resolveOptions(
    BALANCER_OPTIONS,
    { host: '127.0.0.1', httpsPort: 0, httpPort: 0, adminPort: 0, keyPrefix: registry.prefix, dataDir, tlsNames: 'paas.test', headersTimeoutMs: 1000, tokenSha256: createHash('sha256').update(registry.token).digest('hex') },
    { REDIS_URL: redis.url },
  );
  balancer = await startBalancer(config, silentLogger());
  ca = readFileSync(balancer.caCertPath!, 'utf8');
  await waitFor(() => balancer.pool.all.length === 2, { what: 'both machines discovered' });
});

afterAll(async () => {
  clearInterval(heartbeats);
  await balancer.close();
  await m1.close().catch(() => undefined);
  await m2.close().catch(() => undefined);
  for (const c of closers) await c();
  await registry.close();
  await redis.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('balancer', () => {
  it('serves HTTPS with its own certificate, trusted through its CA, for every name', async () => {
    for (const servername of ['localhost', 'paas.test']) {
      const authorized = await new Promise<boolean>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: Number(new URL(balancer.url).port), ca, servername }, () => {
          resolve(s.authorized);
          s.end();
        });
        s.on('error', reject);
      });
      expect(authorized, servername).toBe(true);
    }
  });

  it('reaches the right app, preferring the machine that runs it (one hop)', async () => {
    const only2 = await app('only2', '/only2', 'm2');
    await waitFor(async () => JSON.parse((await get('/_berth/balancer', asAdmin())).body).routes['/only2']?.m2 === 1, { what: 'the balancer to learn where only2 runs' });
    const before = balancer.pool.all.map((b) => [b.machine, b.requests]);
    for (let i = 0; i < 20; i++) expect(JSON.parse((await get('/only2/x')).body).name).toBe('only2@m2');
    const after = new Map(balancer.pool.all.map((b) => [b.machine, b.requests]));
    const m2Before = before.find(([m]) => m === 'm2')![1] as number;
    const m1Before = before.find(([m]) => m === 'm1')![1] as number;
    expect(after.get('m2')! - m2Before).toBe(20);
    expect(after.get('m1')! - m1Before).toBe(0);
    expect(only2.hits()).toBeGreaterThanOrEqual(20);
  });

  it('overwrites forwarded headers a client sends', async () => {
    await app('echo', '/echo', 'm1');
    await waitFor(async () => JSON.parse((await get('/_berth/balancer', asAdmin())).body).routes['/echo']?.m1 === 1, { what: 'the balancer to learn where echo runs' });
    const seen = JSON.parse((await get('/echo', { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'evil' })).body).headers;
    expect(seen['x-forwarded-for']).toBe('127.0.0.1, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('https');
    expect(seen['x-forwarded-host']).not.toBe('evil');
  });

  it('redirects plain HTTP to HTTPS', async () => {
    const res = await new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
      const u = new URL(balancer.httpUrl!);
      const req = httpRequest({ host: '127.0.0.1', port: Number(u.port), path: '/echo/a?b=1', headers: { host: 'paas.test' } }, (r) => {
        r.resume();
        resolve({ status: r.statusCode ?? 0, location: r.headers.location });
      });
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(308);
    expect(res.location).toBe(`https://paas.test:${new URL(balancer.url).port}/echo/a?b=1`);
  });

  it("redirects to its configured name, never the client's Host", async () => {
    const location = await new Promise<string | undefined>((resolve, reject) => {
      const u = new URL(balancer.httpUrl!);
      const req = httpRequest({ host: '127.0.0.1', port: Number(u.port), path: '/x', headers: { host: 'evil.example' } }, (r) => {
        r.resume();
        resolve(r.headers.location);
      });
      req.on('error', reject);
      req.end();
    });
    expect(location).toBe(`https://paas.test:${new URL(balancer.url).port}/x`);
  });

  it('refuses absolute-form targets, CONNECT and oversized headers cleanly', async () => {
    const big = await get('/echo', { 'x-big': 'a'.repeat(20_000) });
    expect(big.status).toBe(431);
    const raw = (text: string) =>
      new Promise<string>((resolve) => {
        const s = tlsConnect({ host: '127.0.0.1', port: Number(new URL(balancer.url).port), ca, servername: 'localhost' }, () => s.write(text));
        let out = '';
        s.on('data', (d) => (out += d.toString()));
        s.on('close', () => resolve(out));
        s.on('error', () => resolve(out));
        // Fallback only: the balancer answers and closes first.
        setTimeout(() => s.end(), RAW_CLOSE_FALLBACK_MS).unref();
      });
    expect(await raw('GET http://evil.example/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw('CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n')).toMatch(/^HTTP\/1\.1 405 /);
    // Two Host headers are refused as the proxy refuses them, with the catalogue's body.
    const twoHosts = await raw('GET /echo HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
    expect(twoHosts).toMatch(/^HTTP\/1\.1 400 /);
    expect(twoHosts).toContain('"code":"bad_host"');
    // The balancer's own paths match by parsed path, whatever the query.
    expect(JSON.parse((await get('/_berth/balancer?x', asAdmin())).body).backends).toBeDefined();
    expect((await get('/_berth/health')).status).toBe(200);
  });

  it("answers its own reports and the proxies' only to a berth token through the public door; an admin listener answers without one", async () => {
    for (const path of ['/_berth/balancer', '/_berth/balancer?x', '/metrics', '/_berth/load', '/_berth/culprit', '/_berth/routes', '/_berth/control-plane', '/_berth', '/_berth/anything']) {
      const answer = await get(path);
      expect(answer.status, path).toBe(401);
      expect(JSON.parse(answer.body).error.code, path).toBe('unauthorized');
      expect(answer.body).not.toContain('m1');
      expect((await get(path, { authorization: 'Bearer not-a-token' })).status, path).toBe(401);
    }
    expect((await get('/_berth/health')).status).toBe(200);
    expect((await get('/metrics', asAdmin())).body).toContain('berth_');
    expect((await get('/_berth/load', asAdmin())).status).toBe(200);
    // A named token, even read-only, is checked in Redis by its digest; revoked, it is refused.
    const viewer = await registry.client.createToken('balancer-viewer', { readOnly: true });
    expect((await get('/_berth/balancer', { authorization: `Bearer ${viewer.token}` })).status).toBe(200);
    await registry.client.revokeToken('balancer-viewer');
    expect((await get('/_berth/balancer', { authorization: `Bearer ${viewer.token}` })).status).toBe(401);
    const admin = await fetch(`${balancer.adminUrl}/_berth/balancer`);
    expect(admin.status).toBe(200);
    expect(((await admin.json()) as { backends: unknown[] }).backends).toHaveLength(2);
    expect((await fetch(`${balancer.adminUrl}/metrics`)).status).toBe(200);
    expect((await fetch(`${balancer.adminUrl}/elsewhere`)).status).toBe(404);
  });

  it('passes WebSockets through balancer and proxy', async () => {
    await createRoutedApp(registry.daemon.apps, 'wss', '/wss');
    const s = await startAppServer('wss');
    closers.push(s.close);
    s.server.on('upgrade', (_req, socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      socket.on('data', (d: Buffer) => socket.write(d));
      socket.on('end', () => socket.destroy());
      socket.on('error', () => undefined);
    });
    await runInstance(registry.daemon.store, 'wss', '/wss', 'm1', s.port);
    await waitFor(async () => (await get('/wss')).status === 200, { what: 'route' });
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: Number(new URL(balancer.url).port), path: '/wss', ca, servername: 'localhost', headers: { connection: 'Upgrade', upgrade: 'websocket' } });
      req.on('upgrade', (_res, socket) => {
        socket.once('data', (d: Buffer) => {
          resolve(d.toString());
          socket.destroy();
        });
        socket.write('hello over tls');
      });
      req.on('error', reject);
      req.end();
    });
    expect(echoed).toBe('hello over tls');
  });

  it('a proxy killed under load costs no failed GET: the balancer routes around it', async () => {
    // An app with an instance on each machine.
    await app('both', '/both', 'm1');
    const s2 = await startAppServer('both@m2');
    closers.push(s2.close);
    await runInstance(registry.daemon.store, 'both', '/both', 'm2', s2.port);
    await waitFor(async () => (await get('/both')).status === 200, { what: 'route' });
    let failures = 0;
    let done = 0;
    const load = (async () => {
      for (let i = 0; i < 200; i++) {
        const r = await get('/both').catch(() => ({ status: 0 }));
        if (r.status !== 200) failures++;
        done++;
      }
    })();
    await waitFor(() => done > 30, { what: 'traffic' });
    await m1.close();
    await load;
    expect(failures).toBe(0);
    const status = JSON.parse((await get('/_berth/balancer', asAdmin())).body) as { backends: { machine: string; errors: number }[] };
    expect(status.backends.find((b) => b.machine === 'm2')).toBeDefined();
  });
});
