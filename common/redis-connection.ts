import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import { z } from 'zod';
import { listSchema, option, positiveMsSchema } from './config.js';
import { BerthError } from './errors.js';

export type RedisClient = Redis | Cluster;

/**
 * How to reach Redis: a URL for one server, or Sentinel or Cluster settings passed through to
 * ioredis. Every multi-key script keeps its keys in one hash slot, so Cluster is safe.
 */
export interface RedisSettings {
  /** @default 'redis://127.0.0.1:6379' */
  url: string;
  /** `host:port` of each Sentinel; when set, `url` gives only password and database. */
  sentinels: string[];
  /** @default 'mymaster' */
  sentinelName: string;
  /** `host:port` of Cluster seed nodes; when set, Cluster mode is used. */
  clusterNodes: string[];
  /** A command unanswered this long fails (so the API answers 503 instead of hanging). @default 2000 */
  commandTimeoutMs: number;
  /**
   * After each change to claims and leases, wait until this many replicas have it (Redis WAIT),
   * else the change counts as failed: a claim the caller was told of then survives a failover to
   * one of them. Not in Cluster mode. @default 0
   */
  waitReplicas?: number;
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_COMMAND_TIMEOUT_MS = 2000;

export const REDIS_OPTIONS = {
  redisUrl: option({ env: 'REDIS_URL', default: DEFAULT_REDIS_URL, schema: z.string().url(), describe: 'Redis server URL (redis:// or rediss://, password and database included); or REDIS_URL_FILE, a file holding it.', secret: true }),
  redisSentinels: option({ env: 'BERTH_REDIS_SENTINELS', default: [] as string[], schema: listSchema, describe: 'Comma-separated host:port of Redis Sentinels; enables Sentinel mode.' }),
  redisSentinelName: option({ env: 'BERTH_REDIS_SENTINEL_NAME', default: 'mymaster', schema: z.string().min(1), describe: 'Name of the Sentinel-monitored primary.' }),
  redisClusterNodes: option({ env: 'BERTH_REDIS_CLUSTER_NODES', default: [] as string[], schema: listSchema, describe: 'Comma-separated host:port of Redis Cluster seed nodes; enables Cluster mode.' }),
  redisCommandTimeoutMs: option({ env: 'BERTH_REDIS_COMMAND_TIMEOUT_MS', default: DEFAULT_COMMAND_TIMEOUT_MS, schema: positiveMsSchema, describe: 'A Redis command unanswered this long fails, and the API answers 503.' }),
  redisWaitReplicas: option({ env: 'BERTH_REDIS_WAIT_REPLICAS', default: 0, schema: z.coerce.number().int().min(0).max(16), describe: 'Each claim and lease change waits until this many replicas have it (WAIT), so a failover does not lose it; 0: do not wait.' }),
};

export function redisSettingsFrom(o: {
  redisUrl: string;
  redisSentinels: string[];
  redisSentinelName: string;
  redisClusterNodes: string[];
  redisCommandTimeoutMs: number;
  redisWaitReplicas: number;
}): RedisSettings {
  if (o.redisWaitReplicas > 0 && o.redisClusterNodes.length > 0) {
    throw new BerthError('invalid_config', 'BERTH_REDIS_WAIT_REPLICAS works with one server or Sentinel, not with Redis Cluster: set it to 0 or leave BERTH_REDIS_CLUSTER_NODES empty.');
  }
  return {
    url: o.redisUrl,
    sentinels: o.redisSentinels,
    sentinelName: o.redisSentinelName,
    clusterNodes: o.redisClusterNodes,
    commandTimeoutMs: o.redisCommandTimeoutMs,
    waitReplicas: o.redisWaitReplicas,
  };
}

/** The registry store's replica wait: half the command timeout, so the wait itself never times out. */
export function replicaWait(settings: RedisSettings): { waitReplicas: number; waitTimeoutMs: number } {
  return { waitReplicas: settings.waitReplicas ?? 0, waitTimeoutMs: Math.max(1, Math.floor(settings.commandTimeoutMs / 2)) };
}

export interface ConnectOptions {
  /** Shown in `CLIENT LIST`, to tell berth's connections apart. */
  name: string;
  /**
   * A connection for blocking reads (XREAD BLOCK): no command timeout, since a blocked read
   * is meant to wait.
   */
  blocking?: boolean;
  /** Called on connection errors; ioredis reconnects by itself. */
  onError?: (err: Error) => void;
}

/**
 * Opens a connection that fails fast while Redis is away (no offline queue, a command
 * timeout) and reconnects forever with a capped backoff. EVALSHA of defined commands falls
 * back to EVAL after a Redis restart, so scripts survive it.
 */
export function connectRedis(settings: RedisSettings, options: ConnectOptions): RedisClient {
  const url = new URL(settings.url);
  const base: RedisOptions = {
    connectionName: options.name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // Reconnect quickly: a hoster has only part of a lease to renew after Redis returns.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 4), 500),
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    ...(options.blocking ? {} : { commandTimeout: settings.commandTimeoutMs }),
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  let client: RedisClient;
  if (settings.clusterNodes.length > 0) {
    client = new Cluster(settings.clusterNodes.map(parseHostPort), {
      redisOptions: base,
      enableOfflineQueue: false,
      clusterRetryStrategy: base.retryStrategy,
    });
  } else if (settings.sentinels.length > 0) {
    client = new Redis({ ...base, sentinels: settings.sentinels.map(parseHostPort), name: settings.sentinelName });
  } else {
    client = new Redis({ ...base, host: url.hostname, port: Number(url.port || 6379) });
  }
  // Without a listener ioredis prints every connection error to stderr.
  client.on('error', (err: Error) => options.onError?.(err));
  return client;
}

/** Resolves once the client is ready, or rejects after `timeoutMs`. */
export function waitForReady(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`Redis was not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/** Closes a connection without waiting on a Redis that may be gone. */
export async function closeRedis(client: RedisClient): Promise<void> {
  try {
    if (client.status === 'ready') await client.quit();
    else client.disconnect();
  } catch {
    client.disconnect();
  }
}

function parseHostPort(s: string): ClusterNode & { host: string; port: number } {
  const i = s.lastIndexOf(':');
  if (i <= 0) return { host: s, port: 6379 };
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

/** True for the errors ioredis raises while Redis is unreachable or too slow. */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const m = err.message;
  return (
    m.includes("Stream isn't writeable") ||
    m.includes('Command timed out') ||
    m.includes('Connection is closed') ||
    m.includes('max retries per request') ||
    m.includes('ECONNREFUSED') ||
    m.includes('ECONNRESET') ||
    m.includes('LOADING') ||
    m.includes('MASTERDOWN') ||
    m.includes('READONLY') ||
    m.includes('CLUSTERDOWN') ||
    m.includes('None of startup nodes is available') ||
    m.includes('All sentinels are unreachable')
  );
}
