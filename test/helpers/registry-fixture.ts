import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { resolveOptions } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import { REGISTRY_OPTIONS, startRegistry, type RegistryDaemon } from '../../registry/registry-daemon.js';
import { BerthClient } from '../../sdk/berth-client.js';
import type { TestRedis } from './redis-server.js';

/** A unique key prefix per test, so suites sharing a Redis never see each other's keys. */
export function testPrefix(): string {
  return `t-${randomBytes(5).toString('hex')}`;
}

export interface RegistryFixture {
  daemon: RegistryDaemon;
  client: BerthClient;
  token: string;
  prefix: string;
  close(): Promise<void>;
}

/** An in-process registry daemon on a free port against `redis`, with an SDK client. */
/** `redis.env`: what else a daemon needs to reach it (Sentinel settings, see test-redis-backend.ts). */
export async function startTestRegistry(redis: Pick<TestRedis, 'url'> & { env?: Record<string, string> }, overrides: Record<string, unknown> = {}): Promise<RegistryFixture> {
  const token = randomBytes(16).toString('hex');
  const prefix = testPrefix();
  const config = resolveOptions(REGISTRY_OPTIONS, { port: 0, keyPrefix: prefix, ...overrides }, { REDIS_URL: redis.url, BERTH_TOKEN: token, ...redis.env });
  const daemon = await startRegistry(config, silentLogger());
  const client = new BerthClient({ url: daemon.url, token, retries: 0 });
  return { daemon, client, token, prefix, close: () => daemon.close() };
}

/**
 * Every key under `prefix` with a dump of its value: equal snapshots mean nothing changed. The
 * audit log is left out: recording every call, refused ones included, is its job. So is the
 * reapers' state: each tick writes its time there, whatever the calls do, and the dashboard's
 * load samples (and their turn key), which a registry writes every period.
 */
export async function snapshot(redis: Redis, prefix: string): Promise<Map<string, string>> {
  const background = new Set([`{${prefix}}:audit`, `{${prefix}}:reaper`]);
  const keys = (await redis.keys(`{${prefix}}:*`)).filter((k) => !background.has(k) && !k.startsWith(`{${prefix}}:dashboard:load`)).sort();
  const out = new Map<string, string>();
  for (const key of keys) {
    const dump = await redis.dumpBuffer(key);
    out.set(key, dump === null ? '' : dump.toString('hex'));
  }
  return out;
}
