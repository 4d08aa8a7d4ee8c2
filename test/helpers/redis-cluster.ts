import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import type { RedisSettings } from '../../common/redis-connection.js';
import { getPort } from './get-port.js';
import { waitFor } from './wait-for.js';

const NODES = 3;
const START_DEADLINE_MS = 15_000;

/** A Redis Cluster of three primaries (no replicas) on free loopback ports, each in a temp dir. */
export interface TestRedisCluster {
  settings(commandTimeoutMs?: number): RedisSettings;
  stop(): Promise<void>;
}

export async function startRedisCluster(): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-cluster-'));
  const children: ChildProcess[] = [];
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const ports: number[] = [];
  for (let i = 0; i < NODES; i++) {
    const port = await getPort();
    const nodeDir = join(dir, `node-${i}`);
    mkdirSync(nodeDir);
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', nodeDir, '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf')],
      { stdio: 'ignore' },
    );
    children.push(child);
    ports.push(port);
    await waitFor(() => ping(port), { deadlineMs: START_DEADLINE_MS, what: `cluster node on port ${port}` });
  }
  await promisify(execFile)('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
  await waitFor(
    async () => {
      const c = new Redis({ port: ports[0], host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => undefined);
      try {
        return /cluster_state:ok/.test((await c.call('CLUSTER', 'INFO')) as string);
      } finally {
        c.disconnect();
      }
    },
    { deadlineMs: START_DEADLINE_MS, what: 'cluster_state:ok' },
  );
  return {
    settings: (commandTimeoutMs = 2000) => ({
      url: 'redis://127.0.0.1:6379',
      sentinels: [],
      sentinelName: 'mymaster',
      clusterNodes: ports.map((p) => `127.0.0.1:${p}`),
      commandTimeoutMs,
    }),
    stop: async () => {
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              c.once('exit', () => resolve());
              c.kill('SIGKILL');
            }),
        ),
      );
      process.off('exit', killAll);
      rmSync(dir, { recursive: true, force: true });
    },
  };
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
