import type { RedisSettings } from '../../common/redis-connection.js';
import { startRedis } from './redis-server.js';
import { startRedisCluster } from './redis-cluster.js';
import { startSentinelSet } from './redis-sentinel.js';

/**
 * The Redis a registry suite runs against: one redis-server, or, when BERTH_TEST_REDIS is
 * `sentinel` at start, a Sentinel set-up (one primary, one replica, three sentinels), or when it
 * is `cluster`, a Redis Cluster of three primaries: so the same suite proves the registry through
 * them (see registry-suite-on-sentinel.test.ts and registry-suite-on-cluster.test.ts).
 */
export interface TestRedisBackend {
  kind: 'server' | 'sentinel' | 'cluster';
  /** For REDIS_URL (in Sentinel mode only its password and database count). */
  url: string;
  /** Environment a daemon needs besides REDIS_URL to reach it. */
  env: Record<string, string>;
  settings(commandTimeoutMs?: number): RedisSettings;
  stop(): Promise<void>;
}

export async function startRedisBackend(): Promise<TestRedisBackend> {
  if (process.env.BERTH_TEST_REDIS === 'sentinel') {
    const set = await startSentinelSet();
    const settings = set.settings();
    return {
      kind: 'sentinel',
      url: settings.url,
      env: { BERTH_REDIS_SENTINELS: settings.sentinels.join(','), BERTH_REDIS_SENTINEL_NAME: settings.sentinelName },
      settings: (commandTimeoutMs) => set.settings(commandTimeoutMs),
      stop: () => set.stop(),
    };
  }
  if (process.env.BERTH_TEST_REDIS === 'cluster') {
    const cluster = await startRedisCluster();
    const settings = cluster.settings();
    return {
      kind: 'cluster',
      url: settings.url,
      env: { BERTH_REDIS_CLUSTER_NODES: settings.clusterNodes.join(',') },
      settings: (commandTimeoutMs) => cluster.settings(commandTimeoutMs),
      stop: () => cluster.stop(),
    };
  }
  const redis = await startRedis();
  return {
    kind: 'server',
    url: redis.url,
    env: {},
    settings: (commandTimeoutMs = 2000) => ({ url: redis.url, sentinels: [], sentinelName: 'mymaster', clusterNodes: [], commandTimeoutMs }),
    stop: () => redis.stop(),
  };
}
