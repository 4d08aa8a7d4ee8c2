import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { RedisSettings } from '../../common/redis-connection.js';
import { getPort } from './get-port.js';
import { waitFor } from './wait-for.js';

export const SENTINEL_MASTER_NAME = 'mymaster';
/** A primary unanswered this long is "subjectively down" for a sentinel. */
const DOWN_AFTER_MS = 1000;
const FAILOVER_TIMEOUT_MS = 5000;
const START_DEADLINE_MS = 15_000;

interface Server {
  name: string;
  port: number;
  child: ChildProcess;
}

/**
 * One primary, one replica and three sentinels (quorum 2), all real redis-server processes on
 * free loopback ports, each with its own temp dir.
 */
export interface TestSentinelSet {
  /** Connection settings for berth: Sentinel mode. */
  settings(commandTimeoutMs?: number): RedisSettings;
  /** Port of the current primary, as the sentinels report it. */
  primaryPort(): Promise<number>;
  /** SIGKILL the current primary (the sentinels fail over to the replica); returns its port. */
  killPrimary(): Promise<number>;
  /** Starts a killed server again on its port, empty, as a replica of the current primary. */
  restartAsReplica(port: number): Promise<void>;
  /** A plain client to the server on `port` (not berth's connection). */
  client(port: number): Redis;
  stop(): Promise<void>;
}

export async function startSentinelSet(): Promise<TestSentinelSet> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-sentinel-'));
  const servers: Server[] = [];
  const clients: Redis[] = [];
  const killAll = () => {
    for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  };
  process.once('exit', killAll);

  const spawnServer = async (name: string, args: string[], fixedPort?: number): Promise<Server> => {
    // A free port can be taken by someone else before redis-server binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      const port = fixedPort ?? (await getPort());
      const child = spawn('redis-server', [...args.map((a) => a.replaceAll('$PORT', String(port)))], { stdio: 'ignore' });
      const server = { name, port, child };
      try {
        const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${name} (redis-server) exited with ${code}`))));
        exited.catch(() => undefined);
        await Promise.race([exited, waitFor(() => ping(port), { deadlineMs: START_DEADLINE_MS, what: `${name} on port ${port}` })]);
        const old = servers.findIndex((x) => x.port === port);
        if (old >= 0) servers.splice(old, 1);
        servers.push(server);
        return server;
      } catch (err) {
        child.kill('SIGKILL');
        if (attempt >= 5) throw err;
      }
    }
  };

  const dataArgs = (name: string) => ['--port', '$PORT', '--bind', '127.0.0.1', '--dir', mkdir(join(dir, name)), '--save', '', '--appendonly', 'no'];
  const primary = await spawnServer('primary', dataArgs('primary'));
  await spawnServer('replica', [...dataArgs('replica'), '--replicaof', '127.0.0.1', String(primary.port)]);
  const sentinelPorts: number[] = [];
  for (let i = 1; i <= 3; i++) {
    // Sentinel rewrites its config file (what it learns), so each gets its own.
    const conf = join(mkdir(join(dir, `sentinel-${i}`)), 'sentinel.conf');
    writeFileSync(
      conf,
      [
        'bind 127.0.0.1',
        `dir ${join(dir, `sentinel-${i}`)}`,
        `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${primary.port} 2`,
        `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} ${DOWN_AFTER_MS}`,
        `sentinel failover-timeout ${SENTINEL_MASTER_NAME} ${FAILOVER_TIMEOUT_MS}`,
        `sentinel parallel-syncs ${SENTINEL_MASTER_NAME} 1`,
        '',
      ].join('\n'),
    );
    const s = await spawnServer(`sentinel-${i}`, [conf, '--sentinel', '--port', '$PORT']);
    sentinelPorts.push(s.port);
  }

  const client = (port: number) => {
    const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => null });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };

  const primaryPort = async () => {
    for (const port of sentinelPorts) {
      const s = servers.find((x) => x.port === port);
      if (!s || s.child.exitCode !== null) continue;
      const c = client(port);
      try {
        const addr = (await c.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_MASTER_NAME)) as [string, string] | null;
        if (addr) return Number(addr[1]);
      } finally {
        c.disconnect();
      }
    }
    throw new Error('no sentinel knows the primary');
  };

  // Ready when the replica is in sync and every sentinel sees the replica and the other sentinels.
  await waitFor(
    async () => {
      for (const port of sentinelPorts) {
        const c = client(port);
        try {
          const info = (await c.call('SENTINEL', 'master', SENTINEL_MASTER_NAME)) as string[];
          const field = (k: string) => info[info.indexOf(k) + 1];
          if (Number(field('num-slaves')) < 1 || Number(field('num-other-sentinels')) < 2) return false;
        } finally {
          c.disconnect();
        }
      }
      const p = client(primary.port);
      try {
        return /connected_slaves:1/.test(await p.info('replication'));
      } finally {
        p.disconnect();
      }
    },
    { deadlineMs: START_DEADLINE_MS * 2, what: 'the sentinels to see the replica and each other' },
  );

  return {
    settings: (commandTimeoutMs = 2000) => ({
      url: 'redis://127.0.0.1:6379',
      sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`),
      sentinelName: SENTINEL_MASTER_NAME,
      clusterNodes: [],
      commandTimeoutMs,
      waitReplicas: 0,
    }),
    primaryPort,
    killPrimary: async () => {
      const port = await primaryPort();
      const s = servers.find((x) => x.port === port);
      if (!s) throw new Error(`no server of this set listens on ${port}`);
      await new Promise<void>((resolve) => {
        s.child.once('exit', () => resolve());
        s.child.kill('SIGKILL');
      });
      return port;
    },
    restartAsReplica: async (port) => {
      const s = servers.find((x) => x.port === port);
      if (!s) throw new Error(`no server of this set listened on ${port}`);
      const primaryNow = await primaryPort();
      await spawnServer(s.name, [...dataArgs(`${s.name}-again`), '--replicaof', '127.0.0.1', String(primaryNow)].map((a) => (a === '$PORT' ? String(port) : a)), port);
    },
    client,
    stop: async () => {
      for (const c of clients) c.disconnect();
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
              s.child.once('exit', () => resolve());
              s.child.kill('SIGKILL');
            }),
        ),
      );
      process.off('exit', killAll);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function mkdir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}

async function ping(port: number): Promise<boolean> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } finally {
    probe.disconnect();
  }
}
