// `berth proxy --workers 2` as a real process: both workers serve the one port, /metrics adds up
// every worker's numbers exactly, a worker that dies is replaced, SIGTERM drains and exits with
// no worker left, workers that cannot listen stop the primary, and a primary killed with SIGKILL
// leaves its workers to finish what they have in flight, then stop.
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';
import { getPort } from '../helpers/get-port.js';
import { createRoutedApp, runInstance, startAppServer } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';
import { alive, childrenOf } from '../helpers/process-table.js';

const STOP_DEADLINE_MS = 20_000;

let redis: TestRedis;
let registry: RegistryFixture;
let app: Awaited<ReturnType<typeof startAppServer>>;
let slow: Awaited<ReturnType<typeof startAppServer>>;
/** Requests the slow app holds until released. */
const held: (() => void)[] = [];
const daemons: DaemonProcess[] = [];

/** One request on a connection of its own, so that cluster hands each to the next worker. */
function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function startWorkers(): Promise<{ proxy: DaemonProcess; port: number }> {
  const port = await getPort();
  const proxy = startDaemon(['proxy', '--workers', '2', '--host', '127.0.0.1', '--port', String(port), '--machine', 'm1'], {
    REDIS_URL: redis.url,
    BERTH_KEY_PREFIX: registry.prefix,
    BERTH_GRACE_MS: '2000',
  });
  daemons.push(proxy);
  await waitFor(async () => (await get(port, '/w/ready')).status === 200 && childrenOf(proxy.child.pid!).length === 2, {
    deadlineMs: 30_000,
    what: 'both proxy workers serving /w',
  });
  return { proxy, port };
}

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis);
  await createRoutedApp(registry.daemon.apps, 'w', '/w');
  app = await startAppServer('w');
  await runInstance(registry.daemon.store, 'w', '/w', 'm1', app.port);
  await createRoutedApp(registry.daemon.apps, 'slow', '/slow');
  slow = await startAppServer('slow', (req, res) => {
    req.resume();
    req.on('end', () => held.push(() => res.writeHead(200, { 'content-type': 'text/plain' }).end(`${req.method} answered`)));
  });
  await runInstance(registry.daemon.store, 'slow', '/slow', 'm1', slow.port);
});

afterAll(async () => {
  for (const d of daemons) d.kill('SIGKILL');
  for (const release of held.splice(0)) release();
  await slow?.close();
  await app?.close();
  await registry?.close();
  await redis?.stop();
});

describe('proxy workers', () => {
  it('serve one port together, and /metrics counts every request of every worker once', async () => {
    const { proxy, port } = await startWorkers();
    const before = app.hits();
    const workersSeen = new Set<number>();
    const REQUESTS = 40;
    for (let i = 0; i < REQUESTS; i++) expect((await get(port, `/w/${i}`)).status).toBe(200);
    // Which worker answers is cluster's round-robin: over many connections both take some.
    for (let i = 0; i < 20; i++) workersSeen.add(JSON.parse((await get(port, '/_berth/routes')).body).worker);
    expect(workersSeen).toEqual(new Set([1, 2]));
    expect(app.hits() - before).toBe(REQUESTS);

    // Asked of either worker, the totals are the same and include the other worker's requests
    // (the readiness probes of startWorkers included, which is why it is at least REQUESTS).
    const totals = await Promise.all(Array.from({ length: 6 }, () => get(port, '/metrics')));
    const counts = totals.map((t) => Number(/berth_proxy_requests_total\{app="w",class="2xx"\} (\d+)/.exec(t.body)?.[1]));
    expect(counts.every((c) => c >= REQUESTS + 1)).toBe(true);
    expect(new Set(counts).size).toBe(1);
    expect(counts[0]).toBe(app.hits());
    // /_berth/routes adds up requests in flight over the workers (what the scaler reads).
    expect(JSON.parse((await get(port, '/_berth/routes')).body).inFlightOf).toBe('all 2 workers');

    // A worker that dies is replaced; the port never stops answering meanwhile.
    const [victim] = childrenOf(proxy.child.pid!);
    process.kill(victim!, 'SIGKILL');
    await waitFor(() => proxy.output().includes('proxy worker') && childrenOf(proxy.child.pid!).filter((p) => p !== victim).length === 2, {
      deadlineMs: 15_000,
      what: 'a new worker in place of the killed one',
    });
    await waitFor(async () => (await get(port, '/w/again')).status === 200, { what: 'served after the replacement' });

    const workers = childrenOf(proxy.child.pid!);
    proxy.kill('SIGTERM');
    expect(await proxy.exited).toBe(0);
    await waitFor(() => workers.every((p) => !alive(p)), { deadlineMs: STOP_DEADLINE_MS, what: 'workers gone after SIGTERM' });
  }, 90_000);

  it('workers that cannot listen make the primary exit non-zero instead of restarting them for ever', async () => {
    const taken = await startAppServer('squatter');
    const proxy = startDaemon(['proxy', '--workers', '2', '--host', '127.0.0.1', '--port', String(taken.port), '--machine', 'm1'], {
      REDIS_URL: redis.url,
      BERTH_KEY_PREFIX: registry.prefix,
    });
    daemons.push(proxy);
    try {
      expect(await proxy.exited).toBe(1);
      expect(proxy.output()).toContain('failed to start');
      expect(proxy.output()).toContain('is in use');
    } finally {
      await taken.close();
    }
  }, 60_000);

  it('a primary killed with SIGKILL: its workers finish the requests in flight (Connection: close), then stop', async () => {
    const { proxy, port } = await startWorkers();
    const workers = childrenOf(proxy.child.pid!);
    expect(workers).toHaveLength(2);
    // In flight when the primary dies: a GET (fast path) and a POST (node:http), held by the app.
    const inFlight = [get(port, '/slow/a'), get(port, '/slow/b', 'POST')].map((p) => p.catch((err: Error) => ({ status: 0, body: err.message, connection: undefined })));
    await waitFor(() => held.length === 2, { what: 'both requests at the app' });
    proxy.kill('SIGKILL');
    await proxy.exited;
    // The port refuses new connections (the primary held it), and the workers holding the
    // requests are still up (cluster gives a connection to a free worker: on a loaded machine both
    // may have gone to one, and the idle one then stops at once).
    await waitFor(() => get(port, '/w/x').then(() => false, () => true), { what: 'the port to refuse' });
    expect(workers.some(alive)).toBe(true);
    for (const release of held.splice(0)) release();
    const answers = await Promise.all(inFlight);
    expect(answers.map((a) => [a.status, a.body, a.connection])).toEqual([
      [200, 'GET answered', 'close'],
      [200, 'POST answered', 'close'],
    ]);
    await waitFor(() => workers.every((p) => !alive(p)), { deadlineMs: STOP_DEADLINE_MS, what: 'workers gone after the primary was killed' });
  }, 60_000);
});
