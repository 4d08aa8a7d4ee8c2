// GET and PUT /v1/apps/:name/git: an app's git remote and deploy branch, with the API's validation and token scopes; the branch is forgotten with the app.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BerthApiError } from '../../sdk/api-error.js';
import { BerthClient } from '../../sdk/berth-client.js';
import { helloApp, uploadApp } from '../helpers/hoster-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';

let redis: TestRedis;
let registry: RegistryFixture;

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis);
  const bundle = await uploadApp(registry.client, helloApp());
  await registry.client.publishApp({ name: 'shop', path: '/shop', instances: 0, bundle });
});

afterAll(async () => {
  await registry?.close();
  await redis?.stop();
});

async function refusal(call: Promise<unknown>): Promise<{ code: string; status: number; message: string }> {
  const err = await call.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(BerthApiError);
  const { code, status, message } = err as BerthApiError;
  return { code, status, message };
}

describe('an app’s git remote', () => {
  it('names its repository and deploys main and master until a branch is set', async () => {
    expect(await registry.client.getGitRemote('shop')).toEqual({ name: 'shop', repository: '/git/shop.git', branch: null, deployBranches: ['main', 'master'] });
    expect(await registry.client.setGitBranch('shop', 'production')).toMatchObject({ branch: 'production', deployBranches: ['production'] });
    expect((await registry.client.getGitRemote('shop')).branch).toBe('production');
    expect(await registry.client.setGitBranch('shop', null)).toMatchObject({ branch: null, deployBranches: ['main', 'master'] });
  });

  it('refuses a branch name git would not take, an unknown app and unknown fields', async () => {
    expect(await refusal(registry.client.setGitBranch('shop', 'a..b'))).toMatchObject({ code: 'invalid_request', status: 400, message: expect.stringContaining('branch') });
    expect(await refusal(registry.client.setGitBranch('nope', 'main'))).toMatchObject({ code: 'app_not_found', status: 404 });
    expect(await refusal(registry.client.getGitRemote('nope'))).toMatchObject({ code: 'app_not_found', status: 404 });
    const res = await fetch(`${registry.daemon.url}/v1/apps/shop/git`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${registry.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ branch: 'main', extra: 1 }),
    });
    expect(res.status).toBe(400);
  });

  it('follows token scopes: another app’s token and a read-only one may not set it', async () => {
    const other = new BerthClient({ url: registry.daemon.url, token: (await registry.client.createToken('ci-other', { app: 'other' })).token, retries: 0 });
    expect(await refusal(other.setGitBranch('shop', 'x'))).toMatchObject({ code: 'forbidden', status: 403 });
    const reader = new BerthClient({ url: registry.daemon.url, token: (await registry.client.createToken('reader', { readOnly: true })).token, retries: 0 });
    expect((await reader.getGitRemote('shop')).name).toBe('shop');
    expect(await refusal(reader.setGitBranch('shop', 'x'))).toMatchObject({ code: 'forbidden', status: 403 });
  });

  it('a fetch or clone of the remote is refused: it takes pushes only', async () => {
    const basic = `Basic ${Buffer.from(`berth:${registry.token}`).toString('base64')}`;
    const res = await fetch(`${registry.daemon.url}/git/shop.git/info/refs?service=git-upload-pack`, { headers: { authorization: basic } });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toContain('(git_push_only)');
    const bad = await fetch(`${registry.daemon.url}/git/Not-An-App/info/refs?service=git-receive-pack`, { headers: { authorization: basic } });
    expect(bad.status).toBe(400);
  });
});
