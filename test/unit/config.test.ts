// Options resolve as flag > environment > default, and every bad value is named in one error.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  it('reads a secret from <VAR>_FILE, refuses such a file when everyone may read it, and never echoes a secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-config-'));
    try {
      const file = join(dir, 'redis-url');
      writeFileSync(file, 'redis://:pw@10.0.0.5:6379\n', { mode: 0o600 });
      expect(resolveOptions(REGISTRY_OPTIONS, {}, { REDIS_URL_FILE: file }).redisUrl).toBe('redis://:pw@10.0.0.5:6379');
      // The variable itself wins over its file.
      expect(resolveOptions(REGISTRY_OPTIONS, {}, { REDIS_URL: 'redis://other:1', REDIS_URL_FILE: file }).redisUrl).toBe('redis://other:1');
      writeFileSync(join(dir, 'token'), 'one,two\n', { mode: 0o640 });
      expect(resolveOptions(REGISTRY_OPTIONS, {}, { BERTH_TOKEN_FILE: join(dir, 'token') }).token).toEqual(['one', 'two']);
      // Only secrets may come from files.
      expect(resolveOptions(REGISTRY_OPTIONS, {}, { BERTH_REGISTRY_PORT_FILE: file }).port).toBe(7070);

      chmodSync(file, 0o644);
      expect(() => resolveOptions(REGISTRY_OPTIONS, {}, { REDIS_URL_FILE: file })).toThrow(`REDIS_URL_FILE: ${file} is readable by every user: chmod 600 ${file}`);
      expect(() => resolveOptions(REGISTRY_OPTIONS, {}, { REDIS_URL_FILE: join(dir, 'missing') })).toThrow(/REDIS_URL_FILE: cannot read .*missing \(ENOENT\)/);

      const bad = join(dir, 'bad');
      writeFileSync(bad, 'not a url with a password s3cr3t\n', { mode: 0o600 });
      let message = '';
      try {
        resolveOptions(REGISTRY_OPTIONS, {}, { REDIS_URL_FILE: bad });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toContain('REDIS_URL_FILE');
      expect(message).toContain('a secret of 32 characters, not shown');
      expect(message).not.toContain('s3cr3t');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
