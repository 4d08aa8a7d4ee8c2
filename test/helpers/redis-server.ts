import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { getPort } from './get-port.js';
import { waitFor } from './wait-for.js';

/** A real redis-server on a free loopback port, its data in a temp dir. */
export interface TestRedis {
  port: number;
  url: string;
  dir: string;
  /** A plain client for inspecting data in tests (not berth's connection). */
  client(): Redis;
  /** SIGKILL the server (data on disk stays). */
  kill(): Promise<void>;
  /** Start it again on the same port and dir (loads the append-only file); no-op while it runs. */
  start(): Promise<void>;
  /** SIGSTOP the server: connections stay open, nothing is answered (a frozen or stalled Redis). */
  freeze(): void;
  /** SIGCONT: it answers again, everything queued meanwhile first. */
  thaw(): void;
  stop(): Promise<void>;
}

export async function startRedis(options: { appendonly?: boolean } = {}): Promise<TestRedis> {
  // A free port can be taken by someone else before redis-server binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRedisOnce(options, await getPort());
    } catch (err) {
      if (attempt >= 5) throw err;
    }
  }
}

async function startRedisOnce(options: { appendonly?: boolean }, port: number): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-redis-'));
  let child: ChildProcess | undefined;
  const clients: Redis[] = [];

  const start = async () => {
    if (child && child.exitCode === null && child.signalCode === null) return;
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', options.appendonly ? 'yes' : 'no', '--daemonize', 'no'],
      { stdio: 'ignore' },
    );
    child = proc;
    const exited = new Promise<never>((_, reject) => proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`))));
    exited.catch(() => undefined);
    await Promise.race([
      exited,
      waitFor(
        async () => {
          const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
          probe.on('error', () => undefined);
          try {
            await probe.connect();
            return (await probe.ping()) === 'PONG';
          } finally {
            probe.disconnect();
          }
        },
        { deadlineMs: 10_000, what: `redis-server on port ${port}` },
      ),
    ]);
  };

  const kill = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  };

  await start();
  // A suite that dies before its afterAll must not leave a server behind.
  process.once('exit', () => child?.kill('SIGKILL'));
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    client: () => {
      const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    kill,
    start,
    freeze: () => {
      child?.kill('SIGSTOP');
    },
    thaw: () => {
      child?.kill('SIGCONT');
    },
    stop: async () => {
      for (const c of clients) c.disconnect();
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
