// A proxy that cuts connections before answering (as one killed mid-request does): the
// balancer sends a GET again to another proxy, never a request with a body.
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BALANCER_OPTIONS, startBalancer, type BalancerDaemon } from '../../balancer/balancer-daemon.js';
import { resolveOptions } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import { traversableTempDir } from '../helpers/hoster-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { testPrefix } from '../helpers/registry-fixture.js';

const REQUESTS = 40;
let redis: TestRedis;
let balancer: BalancerDaemon;
let ca: string;
let dataDir: string;
const servers: Server[] = [];
let cutRequests = 0;

/** A stand-in proxy: healthy to health checks; `cut` ones destroy every other request's connection unanswered. */
async function backend(cut: boolean): Promise<string> {
  const server = createServer((req, res) => {
    if (req.url === '/_berth/health') return void res.end('{"status":"ok"}');
    if (cut) {
      cutRequests++;
      req.socket.destroy();
      return;
    }
    req.resume();
    req.on('end', () => res.end('served'));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function send(method: string, body?: string): Promise<number> {
  const url = new URL(balancer.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: Number(url.port), path: '/x', method, ca, servername: 'localhost', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  redis = await startRedis();
  dataDir = traversableTempDir('berth-balancer-cut-');
  const backends = [await backend(true), await backend(false)].join(',');
  const config = resolveOptions(BALANCER_OPTIONS, { host: '127.0.0.1', httpsPort: 0, keyPrefix: testPrefix(), dataDir }, { REDIS_URL: redis.url, BERTH_BALANCER_BACKENDS: backends, BERTH_BALANCER_DISCOVER: 'false' });
  balancer = await startBalancer(config, silentLogger());
  ca = readFileSync(balancer.caCertPath!, 'utf8');
});

afterAll(async () => {
  await balancer.close();
  for (const s of servers) s.closeAllConnections(), s.close();
  await redis.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('balancer and a proxy that cuts connections', () => {
  it('sends every cut GET again to another proxy, and never resends a POST with a body', async () => {
    const statuses = [];
    for (let i = 0; i < REQUESTS; i++) statuses.push(await send('GET'));
    expect(statuses.every((s) => s === 200)).toBe(true);
    // The cutting proxy was tried (and cut) along the way: the retries did happen.
    expect(cutRequests).toBeGreaterThan(0);

    const posts = [];
    for (let i = 0; i < REQUESTS; i++) posts.push(await send('POST', 'payload'));
    // A POST that reached the cutting proxy may have had effects: it fails rather than repeats.
    expect(posts.filter((s) => s === 502).length).toBeGreaterThan(0);
    expect(posts.every((s) => s === 200 || s === 502)).toBe(true);
  });
});
