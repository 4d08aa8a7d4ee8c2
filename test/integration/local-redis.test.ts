// The Redis that berth up starts exits on SIGTERM even when its data dir was removed under it (its final save cannot succeed).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { localRedisCommand } from '../../cli/local-redis.js';
import { getPort } from '../helpers/get-port.js';
import { waitFor } from '../helpers/wait-for.js';

describe('the local Redis of berth up', () => {
  it('exits on SIGTERM after its data dir was removed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-local-redis-'));
    const port = await getPort();
    const password = 'local-redis-test-password';
    const { command, args } = localRedisCommand({ dir, port, password });
    const child = spawn(command, args, { stdio: 'ignore' });
    let exitedWith: number | string | undefined;
    child.once('exit', (code, signal) => (exitedWith = code ?? signal ?? -1));
    try {
      await waitFor(async () => {
        const client = new Redis({ port, host: '127.0.0.1', password, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
        client.on('error', () => undefined); // not up yet: the next attempt tells
        try {
          await client.connect();
          await client.set('k', 'v');
          return (await client.ping()) === 'PONG';
        } catch {
          return false;
        } finally {
          client.disconnect();
        }
      }, { deadlineMs: 10_000, what: 'the local Redis answering' });
      rmSync(dir, { recursive: true, force: true });
      child.kill('SIGTERM');
      // Without shutdown-on-sigterm force, Redis refuses to stop when its final save fails.
      await waitFor(() => exitedWith !== undefined, { deadlineMs: 5000, what: 'the local Redis to exit on SIGTERM' });
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
