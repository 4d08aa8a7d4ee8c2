import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from 'tar';
import { resolveOptions } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import { HOSTER_OPTIONS, startHoster, type HosterDaemon } from '../../hoster/hoster-daemon.js';
import type { LoadSource } from '../../common/load-source.js';
import type { BerthClient } from '../../sdk/berth-client.js';
import { instancePortRange } from './port-range.js';
import type { TestRedis } from './redis-server.js';

/** A temp dir that an unprivileged app user can traverse (mkdtemp makes 0700). */
export function traversableTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o711);
  return dir;
}

export interface HosterFixture {
  daemon: HosterDaemon;
  dataDir: string;
  close(options?: { evacuate: boolean }): Promise<void>;
}

/** An in-process hoster against the test Redis, fast timings, no load gate unless `load` says. */
export async function startTestHoster(
  redis: TestRedis,
  prefix: string,
  machine: string,
  overrides: Record<string, unknown> = {},
  load?: LoadSource,
): Promise<HosterFixture> {
  const dataDir = traversableTempDir(`berth-hoster-${machine}-`);
  const config = resolveOptions(
    HOSTER_OPTIONS,
    {
      machine,
      dataDir,
      keyPrefix: prefix,
      leaseMs: 3000,
      maxLoadPerCpu: 1000,
      healthIntervalMs: 100,
      stopGraceMs: 1000,
      spreadDelayMs: 0,
      heartbeatMs: 1000,
      evacuateTimeoutMs: 15_000,
      // Hosters in one test share this host: each gets its own ports, as machines would.
      portRange: instancePortRange(),
      ...overrides,
    },
    { REDIS_URL: redis.url },
  );
  const daemon = await startHoster(config, silentLogger(), load ? { load } : {});
  return {
    daemon,
    dataDir,
    close: async (options = { evacuate: false }) => {
      await daemon.close(options);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Packs a folder of files (name → content) as a .tar.gz bundle and uploads it; returns its digest. */
export async function uploadApp(client: BerthClient, files: Record<string, string>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-app-'));
  try {
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(join(dir, name, '..'), { recursive: true });
      writeFileSync(join(dir, name), content);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of create({ gzip: true, cwd: dir, portable: true }, Object.keys(files)) as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
    const bytes = Buffer.concat(chunks);
    const digest = createHash('sha256').update(bytes).digest('hex');
    await client.uploadBundle(digest, bytes);
    return digest;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A tiny app: answers with its instance and release; `extra` runs at start. */
export function helloApp(extra = ''): Record<string, string> {
  return {
    'server.js': `
const http = require('node:http');
${extra}
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ instance: process.env.BERTH_INSTANCE, release: process.env.BERTH_RELEASE, greeting: process.env.GREETING || null, uid: process.getuid() }));
});
server.listen(Number(process.env.PORT), process.env.HOST, () => console.log('listening on ' + process.env.PORT));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`,
  };
}
