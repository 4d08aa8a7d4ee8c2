// An app's own domains through the REST API and a real proxy and balancer: a domain has one owner (409 naming it, also under a race), bad names are refused and change nothing, a deleted app frees its domains, the proxy and balancer route by host from the event stream (the propagation printed), and plain HTTP on a domain without its own certificate is served while other hosts are redirected.
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BALANCER_OPTIONS, startBalancer, type BalancerDaemon } from '../../balancer/balancer-daemon.js';
import { resolveOptions } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import { traversableTempDir } from '../helpers/hoster-fixture.js';
import { createRoutedApp, runInstance, startAppServer, startTestProxy } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { snapshot, startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let inspect: Redis;
let registry: RegistryFixture;
let proxy: ProxyDaemon;
let balancer: BalancerDaemon;
let dataDir: string;
let ca: string;
let heartbeat: NodeJS.Timeout;
const closers: (() => Promise<void>)[] = [];

async function refused(p: () => Promise<unknown>, status: number, code: string): Promise<string> {
  const before = await snapshot(inspect, registry.prefix);
  const err = (await p().then(
    () => undefined,
    (e: unknown) => e,
  )) as { status: number; code: string; message: string } | undefined;
  expect(err, 'the call should have been refused').toBeDefined();
  expect(err!.code).toBe(code);
  expect(err!.status).toBe(status);
  expect(await snapshot(inspect, registry.prefix)).toEqual(before);
  return err!.message;
}

async function app(name: string): Promise<void> {
  await createRoutedApp(registry.daemon.apps, name, `/${name}`);
  const s = await startAppServer(name);
  closers.push(s.close);
  await runInstance(registry.daemon.store, name, `/${name}`, 'm1', s.port);
}

/** A GET to the proxy with `host` as the Host header (fetch would not send it). */
function viaProxy(host: string, path: string): Promise<{ status: number; name?: string; url?: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: Number(new URL(proxy.url).port), path, headers: { host }, agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        try {
          const body = JSON.parse(text) as { name?: string; url?: string };
          resolve({ status: res.statusCode!, name: body.name, url: body.url });
        } catch {
          resolve({ status: res.statusCode! });
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A GET through the balancer's TLS listener, with `host` as both SNI and Host. */
function viaBalancer(host: string, path: string): Promise<{ status: number; name?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: Number(new URL(balancer.url).port), path, servername: host, headers: { host }, ca, agent: false, checkServerIdentity: () => undefined }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode!, name: (JSON.parse(body) as { name?: string }).name });
        } catch {
          resolve({ status: res.statusCode! });
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Polls `condition` every millisecond (waitFor's growing interval would blur a measure of milliseconds). */
async function until(condition: () => boolean, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not routed within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

beforeAll(async () => {
  redis = await startRedis();
  inspect = redis.client();
  registry = await startTestRegistry(redis);
  proxy = await startTestProxy(redis, registry.prefix, 'm1');
  await registry.daemon.store.heartbeat('m1', { proxy: proxy.url });
  heartbeat = setInterval(() => void registry.daemon.store.heartbeat('m1', { proxy: proxy.url }).catch(() => undefined), 2000);
  dataDir = traversableTempDir('berth-domains-');
  balancer = await startBalancer(
    resolveOptions(
      BALANCER_OPTIONS,
      { host: '127.0.0.1', httpsPort: 0, httpPort: 0, publicUrl: 'https://paas.test', keyPrefix: registry.prefix, dataDir, tokenSha256: createHash('sha256').update(registry.token).digest('hex') },
      { REDIS_URL: redis.url },
    ),
    silentLogger(),
  );
  ca = readFileSync(balancer.caCertPath!, 'utf8');
  await waitFor(() => balancer.pool.all.length === 1, { what: 'the balancer to find the machine' });
  await app('shop');
  await app('blog');
  await app('api');
  // Settled (v1 active), so that nothing changes Redis behind the refusals' snapshots.
  await waitFor(async () => (await registry.client.listApps()).every((a) => a.current?.status === 'active'), { what: 'v1 of every app active' });
});

afterAll(async () => {
  clearInterval(heartbeat);
  inspect?.disconnect();
  await balancer?.close();
  await proxy?.close();
  for (const c of closers) await c();
  await registry?.close();
  await redis?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('domains through the API', () => {
  it('adds, lists and removes a domain, in its stored form', async () => {
    const added = await registry.client.addDomain('shop', 'Shop.Example.COM.');
    expect(added).toMatchObject({ domain: 'shop.example.com', app: 'shop', path: '/', certificate: { state: 'none' } });
    expect((await registry.client.addDomain('shop', 'shop.example.com', { path: '/store' })).path).toBe('/store');
    await registry.client.addDomain('shop', 'shop.example.com');
    expect((await registry.client.listDomains('shop')).map((d) => d.domain)).toEqual(['shop.example.com']);
    await registry.client.addDomain('blog', 'bücher.example');
    expect((await registry.client.listDomains()).map((d) => `${d.domain}=${d.app}`)).toEqual(['shop.example.com=shop', 'xn--bcher-kva.example=blog']);
    await registry.client.removeDomain('blog', 'xn--bcher-kva.example');
    expect((await registry.client.listDomains('blog'))).toEqual([]);
  });

  it('refuses a domain another app owns, naming the owner', async () => {
    const message = await refused(() => registry.client.addDomain('blog', 'SHOP.example.com'), 409, 'domain_taken');
    expect(message).toContain('"shop"');
    await refused(() => registry.client.removeDomain('blog', 'shop.example.com'), 404, 'domain_not_found');
  });

  it('gives a raced domain to exactly one app', async () => {
    const results = await Promise.allSettled(['shop', 'blog', 'api'].map((name) => registry.client.addDomain(name, 'race.example.com')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as { code: string }).code).toBe('domain_taken');
    const owner = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ app: string }>).value.app;
    await registry.client.removeDomain(owner, 'race.example.com');
  });

  it('refuses IP literals, bad names, bad paths and unknown apps, changing nothing', async () => {
    for (const bad of ['127.0.0.1', '[::1]', 'localhost', 'sh_op.example.com', '-a.example.com', 'a.*.example.com', `${'x'.repeat(64)}.example.com`]) {
      await refused(() => registry.client.addDomain('shop', bad), 400, 'invalid_domain');
    }
    await refused(() => registry.client.addDomain('shop', 'ok.example.com', { path: 'nope' }), 400, 'invalid_request');
    await refused(() => registry.client.addDomain('ghost', 'ok.example.com'), 404, 'app_not_found');
  });

  it("frees a deleted app's domains", async () => {
    await createRoutedApp(registry.daemon.apps, 'temp', '/temp');
    await registry.client.addDomain('temp', 'temp.example.com');
    await registry.client.deleteApp('temp');
    await waitFor(async () => (await registry.client.listDomains()).every((d) => d.domain !== 'temp.example.com'), { what: 'the deleted app to free its domain' });
    expect((await registry.client.addDomain('blog', 'temp.example.com')).app).toBe('blog');
    await registry.client.removeDomain('blog', 'temp.example.com');
  });
});

describe('routing by host', () => {
  it('routes the proxy by host first, the shared host by prefix as before', async () => {
    await registry.client.addDomain('blog', '*.example.com');
    await registry.client.addDomain('api', 'example.com', { path: '/v2' });
    await waitFor(async () => (await viaProxy('news.example.com', '/x')).name === 'blog' && (await viaProxy('example.com', '/v2/y')).name === 'api', { what: 'the proxy to route the domains' });
    expect(await viaProxy('shop.example.com:8080', '/cart')).toMatchObject({ status: 200, name: 'shop', url: '/cart' });
    expect(await viaProxy('SHOP.EXAMPLE.COM.', '/cart')).toMatchObject({ name: 'shop' });
    expect(await viaProxy('deep.news.example.com', '/api/z')).toMatchObject({ name: 'api', url: '/api/z' });
    expect((await viaProxy('example.com', '/shop')).status).toBe(404);
    expect(await viaProxy('paas.test', '/shop/cart')).toMatchObject({ name: 'shop', url: '/shop/cart' });
    expect(await viaProxy('127.0.0.1', '/blog')).toMatchObject({ name: 'blog' });
  });

  it('routes the balancer by host, over TLS', async () => {
    await waitFor(async () => (await viaBalancer('shop.example.com', '/')).name === 'shop', { what: 'the balancer to route shop.example.com' });
    expect((await viaBalancer('news.example.com', '/')).name).toBe('blog');
    expect((await viaBalancer('localhost', '/api/x')).name).toBe('api');
  });

  it('serves plain HTTP on a domain without a certificate of its own, and redirects any other host to the platform', async () => {
    const port = Number(new URL(balancer.httpUrl!).port);
    const plain = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/cart', headers: { host: 'shop.example.com' }, agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(plain.status).toBe(200);
    const seen = JSON.parse(plain.body) as { name: string; headers: Record<string, string> };
    expect(seen.name).toBe('shop');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    const other = await new Promise<{ status: number; location?: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/shop', headers: { host: 'evil.test' }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, ...(res.headers.location ? { location: res.headers.location } : {}) }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(other).toEqual({ status: 308, location: 'https://paas.test/shop' });
  });

  it('picks a new domain up from the event stream, in the proxy and the balancer, and drops a removed one', async () => {
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) {
      const domain = `p${i}.propagation.test`;
      const started = performance.now();
      await registry.client.addDomain('api', domain);
      // Tables are read as the forwarders read them, polled as tightly as the loop allows.
      await until(() => proxy.table.lookup('/', domain)?.app === 'api' && balancer.table?.lookup('/', domain)?.app === 'api', 2000);
      samples.push(performance.now() - started);
      await registry.client.removeDomain('api', domain);
      await until(() => proxy.table.lookup('/', domain) === undefined && balancer.table?.lookup('/', domain) === undefined, 2000);
    }
    samples.sort((a, b) => a - b);
    // The goal (under 50 ms, as routes) is a measurement, printed here; on a loaded machine a timed assertion would flake.
    process.stdout.write(`domain propagation, 10 domains (added -> in both tables): median ${samples[4]!.toFixed(1)} ms, max ${samples.at(-1)!.toFixed(1)} ms\n`);
  });
});
