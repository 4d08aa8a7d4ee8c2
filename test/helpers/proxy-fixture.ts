import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { resolveOptions } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import type { LoadSource } from '../../common/load-source.js';
import { PROXY_OPTIONS, startProxy, type ProxyDaemon } from '../../proxy/proxy-daemon.js';
import { DEFAULT_HEALTH_CHECK } from '../../registry/store/app.js';
import type { AppStore } from '../../registry/store/app-store.js';
import type { RegistryStore } from '../../registry/store/registry-store.js';
import type { TestRedis } from './redis-server.js';
import { waitFor } from './wait-for.js';

/** The engine the proxy suites run on: node, or haproxy (set by the suites' haproxy twins, e.g. proxy-haproxy.test.ts). */
export const testProxyEngine = (): 'node' | 'haproxy' => (process.env.BERTH_TEST_PROXY_ENGINE === 'haproxy' ? 'haproxy' : 'node');

/** An in-process proxy on a free port, following the test registry's keys. */
export async function startTestProxy(redis: TestRedis, prefix: string, machine: string, overrides: Record<string, unknown> = {}, load?: LoadSource): Promise<ProxyDaemon> {
  const config = resolveOptions(PROXY_OPTIONS, { host: '127.0.0.1', port: 0, machine, keyPrefix: prefix, engine: testProxyEngine(), ...overrides }, { REDIS_URL: redis.url });
  const proxy = await startProxy(config, silentLogger(), load ? { load } : {});
  await waitFor(() => proxy.sync.ready, { what: 'proxy route table loaded' });
  return proxy;
}

/** A real app server on a free loopback port; `handler` answers, the default echoes who it is. */
export async function startAppServer(name: string, handler?: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; port: number; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    if (handler) return handler(req, res);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name, url: req.url, headers: req.headers }));
  });
  // Every socket, upgraded ones included (the server forgets those), so that close never waits.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    server,
    port,
    hits: () => hits,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      })),
  };
}

/** Creates an app routed at `path` with no instances of its own: the test runs its servers and registers them (runInstance). */
export async function createRoutedApp(apps: Pick<AppStore, 'create'>, name: string, path: string, stripPrefix = false): Promise<void> {
  await apps.create({
    name,
    path,
    instances: 0,
    stripPrefix,
    release: { bundle: 'a'.repeat(64), env: {}, command: null, requirements: {}, healthCheck: DEFAULT_HEALTH_CHECK, description: 'test', createdBy: 'test' },
  });
}

/** Registers, claims and marks running an instance of `service` at `port` on `machine`; returns its id and epoch. */
export async function runInstance(store: RegistryStore, service: string, path: string, machine: string, port: number): Promise<{ id: string; epoch: number }> {
  const registered = await store.register({ service, path });
  const claimed = await store.claim({ service, machine, host: '127.0.0.1', port, instanceId: registered.id, leaseMs: 60_000 });
  await store.markRunning({ service, id: claimed.id, machine, epoch: claimed.epoch, pid: process.pid });
  return { id: claimed.id, epoch: claimed.epoch };
}
