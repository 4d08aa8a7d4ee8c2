// Named tokens against a real registry and Redis: an app's token reaches that app only, a
// read-only token only reads, the token's name (never a header) is who made a release, a
// revoke holds from the next request, and every change (refusals included) is in the audit log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BerthClient } from '../../sdk/berth-client.js';
import { BerthApiError } from '../../sdk/api-error.js';
import { uploadApp } from '../helpers/hoster-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';

let redis: TestRedis;
let registry: RegistryFixture;
let admin: BerthClient;
let digest: string;

const as = (token: string) => new BerthClient({ url: registry.daemon.url, token, retries: 0 });

async function refusedWith(call: Promise<unknown>, status: number, code: string): Promise<string> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(BerthApiError);
  expect((err as BerthApiError).status).toBe(status);
  expect((err as BerthApiError).code).toBe(code);
  return (err as BerthApiError).message;
}

async function raw(method: string, path: string, token: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, any> }> {
  const res = await fetch(`${registry.daemon.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis);
  admin = registry.client;
  digest = await uploadApp(admin, { 'server.js': 'require("node:http").createServer((q, s) => s.end("hi")).listen(process.env.PORT)' });
  await admin.publishApp({ name: 'other', path: '/other', instances: 0, bundle: digest });
});

afterAll(async () => {
  await registry.close();
  await redis.stop();
});

describe('named tokens', () => {
  it('shows a new token once; lists grants, never tokens; refuses a second of the same name and the admin name', async () => {
    const made = await admin.createToken('ops');
    expect(made).toMatchObject({ name: 'ops', app: null, readOnly: false, createdBy: 'admin' });
    expect(made.token).toMatch(/^berth_[0-9a-f]{40}$/);
    const listed = await admin.listTokens();
    expect(listed.map((t) => t.name)).toContain('ops');
    expect(JSON.stringify(listed)).not.toContain(made.token);
    for (const t of listed) expect(t).not.toHaveProperty('token');
    await refusedWith(admin.createToken('ops'), 409, 'token_exists');
    await refusedWith(admin.createToken('admin'), 409, 'token_exists');
    // Nothing of a token but its sha256 is in Redis.
    const keys = await redis.client().keys(`{${registry.prefix}}:*`);
    for (const key of keys.filter((k) => k.includes('token'))) expect(JSON.stringify(await redis.client().hgetall(key))).not.toContain(made.token);
  });

  it("an app's token publishes and changes that app only, sees no other, and manages no tokens", async () => {
    const { token } = await admin.createToken('ci-shop', { app: 'shop' });
    const ci = as(token);
    const bundle = await uploadApp(ci, { 'server.js': 'require("node:http").createServer((q, s) => s.end("shop")).listen(process.env.PORT)' });
    await ci.publishApp({ name: 'shop', path: '/shop', instances: 0, bundle });
    await ci.setConfig('shop', { set: { MODE: 'ci' } });
    expect((await ci.listApps()).map((a) => a.name)).toEqual(['shop']);
    expect(await ci.whoAmI()).toEqual({ name: 'ci-shop', app: 'shop', readOnly: false });

    expect(await refusedWith(ci.publishApp({ name: 'sneaky', path: '/sneaky', instances: 0, bundle }), 403, 'forbidden')).toContain('for the app shop only');
    await refusedWith(ci.getApp('other'), 403, 'forbidden');
    await refusedWith(ci.getConfig('other'), 403, 'forbidden');
    await refusedWith(ci.setConfig('other', { set: { EVIL: '1' } }), 403, 'forbidden');
    await refusedWith(ci.deleteApp('other'), 403, 'forbidden');
    await refusedWith(ci.createToken('escalate'), 403, 'forbidden');
    await refusedWith(ci.listTokens(), 403, 'forbidden');
    await refusedWith(ci.audit(), 403, 'forbidden');
    expect((await raw('GET', '/v1/events', token)).status).toBe(403);
    expect((await raw('GET', '/v1/services', token)).status).toBe(403);
    // Nothing of "other" changed, and "sneaky" does not exist.
    expect(await admin.getConfig('other')).toEqual({});
    expect((await admin.listApps()).map((a) => a.name).sort()).toEqual(['other', 'shop']);
  });

  it('a read-only token reads everything and changes nothing', async () => {
    const { token } = await admin.createToken('viewer', { readOnly: true });
    const viewer = as(token);
    expect((await viewer.listApps()).map((a) => a.name).sort()).toEqual(['other', 'shop']);
    expect(await viewer.getConfig('other')).toEqual({});
    const before = (await admin.listReleases('other')).length;
    expect(await refusedWith(viewer.setConfig('other', { set: { X: '1' } }), 403, 'forbidden')).toContain('read-only');
    await refusedWith(viewer.scaleApp('other', { instances: 2 }), 403, 'forbidden');
    await refusedWith(viewer.deleteApp('other'), 403, 'forbidden');
    await refusedWith(viewer.createToken('more'), 403, 'forbidden');
    expect((await admin.listReleases('other')).length).toBe(before);
    expect((await admin.getApp('other')).instances).toBe(0);
  });

  it("records the token's name as who made a release, whatever X-Berth-User says", async () => {
    const ops = await admin.createToken('release-maker');
    const answer = await raw('PATCH', '/v1/apps/other/config', ops.token, { set: { WHO: 'me' } }, { 'x-berth-user': 'mallory' });
    expect(answer.status).toBe(201);
    expect(answer.json.createdBy).toBe('release-maker');
    expect((await admin.listReleases('other'))[0]!.createdBy).toBe('release-maker');
  });

  it('a revoked token is refused from the next request on; an unknown name is 404', async () => {
    const { token } = await admin.createToken('short-lived');
    expect((await as(token).listApps()).length).toBe(2);
    expect(await admin.revokeToken('short-lived')).toMatchObject({ name: 'short-lived' });
    await refusedWith(as(token).listApps(), 401, 'unauthorized');
    await refusedWith(admin.revokeToken('short-lived'), 404, 'token_not_found');
  });

  it('refuses bad token requests with 400 and makes nothing', async () => {
    const before = (await admin.listTokens()).length;
    for (const body of [{ name: 'Bad Name' }, { name: 'x', extra: 1 }, { name: 'y', readOnly: 'yes' }, { name: 'z', app: '../etc' }, {}]) {
      const answer = await raw('POST', '/v1/tokens', registry.token, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.json.error.code).toBe('invalid_request');
    }
    expect((await raw('GET', '/v1/audit?limit=0', registry.token)).status).toBe(400);
    expect((await raw('DELETE', '/v1/tokens/BAD', registry.token)).status).toBe(400);
    expect((await admin.listTokens()).length).toBe(before);
  });

  it('keeps every call that could change something in the audit log, with the token, the app and the answer; no reads', async () => {
    const entries = await admin.audit(1000);
    const find = (token: string, method: string, path: string, status: number) => entries.find((e) => e.token === token && e.method === method && e.path === path && e.status === status);
    expect(find('ci-shop', 'POST', '/v1/apps', 201)).toMatchObject({ app: 'shop' });
    expect(find('ci-shop', 'POST', '/v1/apps', 403)).toMatchObject({ app: 'sneaky' });
    expect(find('ci-shop', 'DELETE', '/v1/apps/other', 403)).toMatchObject({ app: 'other' });
    expect(find('viewer', 'PATCH', '/v1/apps/other/config', 403)).toBeDefined();
    expect(find('release-maker', 'PATCH', '/v1/apps/other/config', 201)).toBeDefined();
    expect(find('admin', 'POST', '/v1/tokens', 201)).toBeDefined();
    expect(entries.some((e) => e.method === 'GET')).toBe(false);
    // Newest first.
    expect(entries.map((e) => e.at)).toEqual([...entries.map((e) => e.at)].sort((a, b) => b - a));
  });
});
