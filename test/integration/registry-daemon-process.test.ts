// The real `berth registry` process: starts from its environment, serves, drains on SIGTERM and exits 0; bad configuration exits 1 with a clear message.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon } from '../helpers/daemon-process.js';
import { getPort } from '../helpers/get-port.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { testPrefix } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis.stop();
});

describe('berth registry (process)', () => {
  it('serves the API, drains on SIGTERM and exits 0, logging what it did', async () => {
    const port = await getPort();
    const token = randomBytes(16).toString('hex');
    const daemon = startDaemon(['registry', '--port', String(port)], {
      REDIS_URL: redis.url,
      BERTH_TOKEN: token,
      BERTH_KEY_PREFIX: testPrefix(),
    });
    try {
      await waitFor(() => daemon.logLines().some((l) => l.msg === `registry listening on http://127.0.0.1:${port}`), {
        deadlineMs: 15_000,
        what: 'registry to listen',
      });
      const res = await fetch(`http://127.0.0.1:${port}/v1/services`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ services: [] });

      daemon.kill('SIGTERM');
      expect(await daemon.exited).toBe(0);
      const messages = daemon.logLines().map((l) => l.msg);
      expect(messages).toContain('SIGTERM received: draining (send it again to exit at once)');
      expect(messages).toContain('drained: exiting');
      expect(daemon.output()).not.toContain(token);
    } finally {
      daemon.kill('SIGKILL');
    }
  });

  it('refuses to start without a token, saying what to set', async () => {
    const daemon = startDaemon(['registry', '--port', String(await getPort())], { REDIS_URL: redis.url });
    expect(await daemon.exited).toBe(1);
    expect(daemon.output()).toContain('set BERTH_TOKEN');
  });

  it('refuses bad configuration, naming every bad value', async () => {
    const daemon = startDaemon(['registry'], {
      REDIS_URL: redis.url,
      BERTH_TOKEN: 'x'.repeat(20),
      BERTH_REGISTRY_PORT: 'eighty',
      BERTH_LEASE_MS: '-5',
    });
    expect(await daemon.exited).toBe(1);
    expect(daemon.output()).toContain('BERTH_REGISTRY_PORT');
    expect(daemon.output()).toContain('BERTH_LEASE_MS');
    expect(daemon.output()).not.toMatch(/\n\s+at /);
  });

  it('says which port is in use', async () => {
    const port = await getPort();
    const first = startDaemon(['registry', '--port', String(port)], { REDIS_URL: redis.url, BERTH_TOKEN: 'y'.repeat(20) });
    try {
      await waitFor(() => first.output().includes('registry listening'), { deadlineMs: 15_000, what: 'first registry' });
      const second = startDaemon(['registry', '--port', String(port)], { REDIS_URL: redis.url, BERTH_TOKEN: 'y'.repeat(20) });
      expect(await second.exited).toBe(1);
      expect(second.output()).toContain(`Port ${port} on 127.0.0.1 is in use`);
    } finally {
      first.kill('SIGKILL');
      await first.exited;
    }
  });
});
