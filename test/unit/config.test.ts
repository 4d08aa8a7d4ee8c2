// Options resolve as flag > environment > default, and every bad value is named in one error.
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../../common/config.js';
import { BerthError } from '../../common/errors.js';
import { REGISTRY_OPTIONS } from '../../registry/registry-daemon.js';

describe('resolveOptions', () => {
  it('takes defaults when nothing is given', () => {
    const c = resolveOptions(REGISTRY_OPTIONS, {}, {});
    expect(c.port).toBe(7070);
    expect(c.leaseMs).toBe(15_000);
    expect(c.token).toEqual([]);
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
  });

  it('prefers a flag over the environment over the default', () => {
    expect(resolveOptions(REGISTRY_OPTIONS, {}, { BERTH_REGISTRY_PORT: '8000' }).port).toBe(8000);
    expect(resolveOptions(REGISTRY_OPTIONS, { port: '9000' }, { BERTH_REGISTRY_PORT: '8000' }).port).toBe(9000);
  });

  it('splits comma-separated lists', () => {
    const c = resolveOptions(REGISTRY_OPTIONS, {}, { BERTH_TOKEN: 'one, two', BERTH_REDIS_SENTINELS: 'a:1,b:2' });
    expect(c.token).toEqual(['one', 'two']);
    expect(c.redisSentinels).toEqual(['a:1', 'b:2']);
  });

  it('treats an empty environment variable as unset', () => {
    expect(resolveOptions(REGISTRY_OPTIONS, {}, { BERTH_REGISTRY_PORT: '' }).port).toBe(7070);
  });

  it('names every bad value at once', () => {
    let error: unknown;
    try {
      resolveOptions(REGISTRY_OPTIONS, { port: 'x' }, { BERTH_LEASE_MS: '0', REDIS_URL: 'not a url' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(BerthError);
    const message = (error as BerthError).message;
    expect((error as BerthError).code).toBe('invalid_config');
    expect(message).toContain('--port');
    expect(message).toContain('BERTH_LEASE_MS');
    expect(message).toContain('REDIS_URL');
  });
});
