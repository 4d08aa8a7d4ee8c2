// Redis connection settings from the options: Sentinel and Cluster lists, and the replica wait.
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../../common/config.js';
import { replicaWait, redisSettingsFrom } from '../../common/redis-connection.js';
import { REGISTRY_OPTIONS } from '../../registry/registry-daemon.js';

describe('redisSettingsFrom', () => {
  it('reads Sentinel mode and the replica wait from the environment', () => {
    const s = redisSettingsFrom(
      resolveOptions(REGISTRY_OPTIONS, {}, { BERTH_REDIS_SENTINELS: '10.0.0.1:26379, 10.0.0.2:26379', BERTH_REDIS_SENTINEL_NAME: 'berth', BERTH_REDIS_WAIT_REPLICAS: '1', BERTH_REDIS_COMMAND_TIMEOUT_MS: '3000' }),
    );
    expect(s.sentinels).toEqual(['10.0.0.1:26379', '10.0.0.2:26379']);
    expect(s.sentinelName).toBe('berth');
    expect(replicaWait(s)).toEqual({ waitReplicas: 1, waitTimeoutMs: 1500 });
  });

  it('waits for no replica by default', () => {
    expect(replicaWait(redisSettingsFrom(resolveOptions(REGISTRY_OPTIONS, {}, {}))).waitReplicas).toBe(0);
  });

  it('refuses a replica wait with Redis Cluster, saying what to change', () => {
    const o = resolveOptions(REGISTRY_OPTIONS, {}, { BERTH_REDIS_CLUSTER_NODES: '10.0.0.1:7000', BERTH_REDIS_WAIT_REPLICAS: '1' });
    expect(() => redisSettingsFrom(o)).toThrow(expect.objectContaining({ code: 'invalid_config', message: expect.stringContaining('BERTH_REDIS_WAIT_REPLICAS') }));
  });

  it('refuses a negative replica count', () => {
    expect(() => resolveOptions(REGISTRY_OPTIONS, {}, { BERTH_REDIS_WAIT_REPLICAS: '-1' })).toThrow(/BERTH_REDIS_WAIT_REPLICAS/);
  });
});
