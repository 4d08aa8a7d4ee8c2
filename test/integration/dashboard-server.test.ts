// The dashboard's server side against a real registry and Redis, without a browser: the page and assets with their headers, sign-in, the session cookie as the only credential of /dashboard/v1 (CSRF header and Origin for changes, expiry, sign-out, revoke), and the machines' load history sampled once per period however many registries run.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let registry: RegistryFixture;
let url: string;
let origin: string;

interface Answer {
  status: number;
  headers: Headers;
  json: { error?: { code: string; message: string } } & Record<string, unknown>;
}

async function call(method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Answer> {
  const res = await fetch(`${url}${path}`, {
    method,
    redirect: 'manual',
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text.startsWith('{') ? JSON.parse(text) : {} };
}

async function signIn(token: string, base = url): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${base}/dashboard/session`, { method: 'POST', headers: { origin: base, 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  expect(res.status).toBe(201);
  const { csrf } = (await res.json()) as { csrf: string };
  return { cookie: res.headers.get('set-cookie')!.split(';')[0]!, csrf };
}

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis, { dashboardSessionTtlMs: 60_000 });
  url = registry.daemon.url;
  origin = url;
});

afterAll(async () => {
  await registry?.close();
  await redis?.stop();
});

describe('the dashboard page and assets', () => {
  it('serves the page with a strict CSP, revalidated by ETag, and hashed assets gzipped and immutable', async () => {
    const bare = await call('GET', '/dashboard');
    expect(bare.status).toBe(308);
    expect(bare.headers.get('location')).toBe('/dashboard/');
    const page = await fetch(`${url}/dashboard/`);
    const html = await page.text();
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(html).not.toMatch(/<script>|<style>| style=/);
    const again = await fetch(`${url}/dashboard/`, { headers: { 'if-none-match': page.headers.get('etag')! } });
    expect(again.status).toBe(304);
    const script = /src="(\/dashboard\/assets\/main-[A-Z0-9]+\.js)"/.exec(html)![1]!;
    const style = /href="(\/dashboard\/assets\/main-[A-Z0-9]+\.css)"/.exec(html)![1]!;
    const js = await fetch(`${url}${script}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('content-encoding')).toBe('gzip');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await js.text()).length).toBeGreaterThan(1000);
    expect((await fetch(`${url}${style}`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    const missing = await call('GET', '/dashboard/assets/main-OLD.js');
    expect(missing.status).toBe(404);
    expect(missing.json.error!.code).toBe('not_found');
  });
});

describe('dashboard sessions', () => {
  it('signs in only from this origin and with a token of this platform', async () => {
    const noOrigin = await call('POST', '/dashboard/session', {}, { token: registry.token });
    expect(noOrigin.status).toBe(403);
    const foreign = await call('POST', '/dashboard/session', { origin: 'https://attacker.example' }, { token: registry.token });
    expect(foreign.status).toBe(403);
    const wrong = await call('POST', '/dashboard/session', { origin }, { token: 'nope-nope-nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error!.code).toBe('unauthorized');
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const extra = await call('POST', '/dashboard/session', { origin }, { token: registry.token, remember: true });
    expect(extra.status).toBe(400);
    const ok = await call('POST', '/dashboard/session', { origin }, { token: registry.token });
    expect(ok.status).toBe(201);
    expect(ok.json).toMatchObject({ name: 'admin', app: null, readOnly: false });
    const cookie = ok.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^berth_session=[A-Za-z0-9_-]{43}; Path=\/dashboard; Max-Age=60; HttpOnly; SameSite=Strict$/);
    expect(cookie).not.toContain(registry.token);
    // Sign-ins are in the audit log, the refused ones too.
    const audit = (await registry.client.audit(20)).filter((e) => e.path === '/dashboard/session');
    expect(audit.map((e) => [e.token, e.status])).toEqual([['admin', 201], ['(no token)', 400], ['(no token)', 401], ['(no token)', 403], ['(no token)', 403]]);
  });

  it('takes the cookie at /dashboard/v1 only, and changes only with the CSRF header and this Origin', async () => {
    const { cookie, csrf } = await signIn(registry.token);
    expect((await call('GET', '/dashboard/v1/apps', { cookie })).status).toBe(200);
    expect((await call('GET', '/dashboard/v1/apps')).status).toBe(401);
    expect((await call('GET', '/dashboard/v1/apps', { authorization: `Bearer ${registry.token}` })).status).toBe(401);
    expect((await call('GET', '/v1/apps', { cookie })).status).toBe(401);
    const noCsrf = await call('PATCH', '/dashboard/v1/apps/nothing-here', { cookie, origin }, { instances: 1 });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.json.error!.message).toContain('x-berth-csrf');
    const wrongCsrf = await call('PATCH', '/dashboard/v1/apps/nothing-here', { cookie, origin, 'x-berth-csrf': `${csrf}x` }, { instances: 1 });
    expect(wrongCsrf.status).toBe(403);
    const noOrigin = await call('PATCH', '/dashboard/v1/apps/nothing-here', { cookie, 'x-berth-csrf': csrf }, { instances: 1 });
    expect(noOrigin.status).toBe(403);
    const crossSite = await call('PATCH', '/dashboard/v1/apps/nothing-here', { cookie, origin, 'x-berth-csrf': csrf, 'sec-fetch-site': 'cross-site' }, { instances: 1 });
    expect(crossSite.status).toBe(403);
    // All checks passed: the route itself answers.
    const through = await call('PATCH', '/dashboard/v1/apps/nothing-here', { cookie, origin, 'x-berth-csrf': csrf }, { instances: 1 });
    expect(through.status).toBe(404);
    expect(through.json.error!.code).toBe('app_not_found');
    // The audit log has it under the token's name.
    const audit = await registry.client.audit(5);
    expect(audit.find((e) => e.path === '/dashboard/v1/apps/nothing-here' && e.status === 404)?.token).toBe('admin');
  });

  it("ends with sign-out, with the token's revoke, and when it expires", async () => {
    const { cookie, csrf } = await signIn(registry.token);
    expect((await call('DELETE', '/dashboard/session', { cookie })).status).toBe(403);
    const out = await call('DELETE', '/dashboard/session', { cookie, origin, 'x-berth-csrf': csrf });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    expect((await call('GET', '/dashboard/v1/apps', { cookie })).status).toBe(401);

    const named = await registry.client.createToken('viewer', { readOnly: true });
    const viewer = await signIn(named.token);
    expect((await call('GET', '/dashboard/session', { cookie: viewer.cookie })).json).toMatchObject({ name: 'viewer', readOnly: true });
    const refused = await call('PATCH', '/dashboard/v1/apps/nothing-here', { cookie: viewer.cookie, origin, 'x-berth-csrf': viewer.csrf }, { instances: 1 });
    expect(refused.status).toBe(403);
    expect(refused.json.error!.message).toContain('read-only');
    await registry.client.revokeToken('viewer');
    expect((await call('GET', '/dashboard/v1/apps', { cookie: viewer.cookie })).status).toBe(401);

    const short = await startTestRegistry(redis, { dashboardSessionTtlMs: 1000 });
    try {
      const s = await signIn(short.token, short.daemon.url);
      const get = () => fetch(`${short.daemon.url}/dashboard/v1/apps`, { headers: { cookie: s.cookie } }).then((r) => r.status);
      expect(await get()).toBe(200);
      await waitFor(async () => (await get()) === 401, { deadlineMs: 5000, what: 'the session to expire' });
    } finally {
      await short.close();
    }
  });
});

describe('the machines load history', () => {
  let proxy: Server;
  let second: RegistryFixture;

  beforeAll(async () => {
    // A machine's proxy reports, as GetLoad and GetCulprit answer them.
    proxy = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/_berth/load') res.end(JSON.stringify({ load: 0.25, load1: 0.5, load5: 0.5, load15: 0.4, cpus: 2, atCapacity: false }));
      else res.end(JSON.stringify({ machine: 'm1', culprit: { app: 'hello', instance: 'i-1', pid: 1, cpuShare: 0.5, cpuCores: 0.5 }, instances: [{ app: 'hello', instance: 'i-1', cpuShare: 0.5, cpuCores: 0.5 }, { app: 'hello', instance: 'i-2', cpuShare: 0.25, cpuCores: 0.25 }, { app: 'mail', instance: 'i-3', cpuShare: 0.1, cpuCores: 0.1 }], windowMs: 5000 }));
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await second?.close();
    proxy?.close();
  });

  it('keeps one sample per period from any number of registries, with load and culprit', async () => {
    const shared = { dashboardSampleMs: 300 };
    const first = await startTestRegistry(redis, shared);
    second = await startTestRegistry(redis, { ...shared, keyPrefix: first.prefix });
    try {
      await first.daemon.store.heartbeat('m1', { proxy: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, cpus: 2 });
      const started = Date.now();
      type History = { machines: { name: string; samples: { at: number; load: number | null; culprit: { app: string } | null; error: string | null }[] }[] };
      const read = async () => (await fetch(`${first.daemon.url}/v1/machines/load`, { headers: { authorization: `Bearer ${first.token}` } }).then((r) => r.json())) as History;
      await waitFor(async () => ((await read()).machines[0]?.samples.length ?? 0) >= 5, { deadlineMs: 10_000, what: 'five samples' });
      const { machines } = await read();
      const elapsed = Date.now() - started;
      const samples = machines[0]!.samples;
      expect(machines[0]!.name).toBe('m1');
      expect(samples.at(-1)).toMatchObject({ load: 0.25, culprit: { app: 'hello' }, apps: { hello: 0.75, mail: 0.1 }, error: null });
      // Oldest first, and no two in one period: two registries did not double them.
      for (let i = 1; i < samples.length; i++) expect(samples[i]!.at - samples[i - 1]!.at).toBeGreaterThanOrEqual(200);
      expect(samples.length).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 1);
      // The SDK reads the same, and so does the dashboard through its session.
      expect((await first.client.machinesLoad())[0]!.samples.length).toBeGreaterThanOrEqual(samples.length);
      const s = await signIn(first.token, first.daemon.url);
      const viaSession = await fetch(`${first.daemon.url}/dashboard/v1/machines/load`, { headers: { cookie: s.cookie } });
      expect(viaSession.status).toBe(200);
    } finally {
      await first.close();
    }
  });
});
