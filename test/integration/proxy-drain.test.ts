// A proxy's drain loses nothing a client could not safely lose: it says on every answer that
// it is draining (Connection: close and X-Berth-Draining, fast path and node:http alike, and
// its health check fails), keeps accepting for a moment while balancers learn that, then
// stops accepting, finishes what is in flight, leaves idle kept-alive connections to their
// clients for a moment rather than closing them under a request, and closes what is left.
// proxy-drain-haproxy.test.ts runs it through the haproxy engine.
import { connect, createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import { createRoutedApp, runInstance, startAppServer, startTestProxy } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

/** The proxy keeps accepting this long on a drain (LISTEN_LINGER_MS), then leaves an idle connection this long (IDLE_LINGER_MS). */
const LINGER_MS = 500 + 1000;

let redis: TestRedis;
let registry: RegistryFixture;
const closers: (() => Promise<void>)[] = [];
/** Requests the slow app holds until released. */
const held: (() => void)[] = [];

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One client connection speaking HTTP/1.1 by hand: requests one at a time, answers framed by Content-Length (the app always sends one). */
class Connection {
  readonly socket: Socket;
  closed = false;
  private buffer = '';
  private waiting: ((a: Answer) => void) | undefined;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.setEncoding('latin1');
    this.socket.on('data', (d: string) => {
      this.buffer += d;
      this.take();
    });
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => {
      this.closed = true;
      // Closed under a request: no answer (status 0).
      this.waiting?.({ status: 0, headers: {}, body: '' });
      this.waiting = undefined;
    });
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }

  send(method: string, path: string, body = ''): Promise<Answer> {
    const length = method === 'GET' ? '' : `Content-Length: ${Buffer.byteLength(body)}\r\n`;
    const answer = new Promise<Answer>((resolve) => (this.waiting = resolve));
    this.socket.write(`${method} ${path} HTTP/1.1\r\nHost: drain.test\r\n${length}\r\n${body}`);
    return answer;
  }

  private take(): void {
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0 || this.waiting === undefined) return;
    const [statusLine, ...lines] = this.buffer.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (this.buffer.length < end + 4 + length) return;
    const body = this.buffer.slice(end + 4, end + 4 + length);
    this.buffer = this.buffer.slice(end + 4 + length);
    const resolve = this.waiting;
    this.waiting = undefined;
    resolve({ status: Number(statusLine!.split(' ')[1]), headers, body });
  }
}

/** HTTP/1.1 keeps a connection unless an answer says Connection: close (node:http says keep-alive, haproxy nothing). */
function keptAlive(a: Answer): boolean {
  return a.status === 200 && (a.headers.connection ?? 'keep-alive') === 'keep-alive';
}

/** One request on a connection of its own. */
async function once(port: number, method: string, path: string): Promise<Answer> {
  const c = new Connection(port);
  await c.connected();
  const answer = await c.send(method, path);
  c.socket.destroy();
  return answer;
}

/** Whether a new server (a replacement proxy) can listen on the port now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis);
  await createRoutedApp(registry.daemon.apps, 'drain', '/drain');
  const app = await startAppServer('drain', (req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const text = `${req.method} ${req.url} ${body.length}`;
      const answer = () => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(text.length) }).end(text);
      if (req.url?.includes('slow')) held.push(answer);
      else answer();
    });
  });
  closers.push(app.close);
  await runInstance(registry.daemon.store, 'drain', '/drain', 'm1', app.port);
});

afterAll(async () => {
  for (const release of held.splice(0)) release();
  for (const c of closers) await c();
  await registry?.close();
  await redis?.stop();
});

describe('proxy drain', () => {
  it('finishes in-flight answers and answers on idle connections with Connection: close, then closes what is left', async () => {
    const proxy: ProxyDaemon = await startTestProxy(redis, registry.prefix, 'm1');
    closers.push(() => proxy.close());
    const port = Number(new URL(proxy.url).port);
    const connections = {
      /** A GET (fast path) whose answer the app holds when the drain begins. */
      inFlightFast: new Connection(port),
      /** A POST (node:http) whose answer the app holds when the drain begins. */
      inFlightSlow: new Connection(port),
      /** Kept alive after a GET (fast path), then used during the drain. */
      idleFast: new Connection(port),
      /** Kept alive after a POST (node:http), then used during the drain. */
      idleSlow: new Connection(port),
      /** Kept alive, then asks for the proxy's health during the drain. */
      idleHealth: new Connection(port),
      /** Kept alive and never used again. */
      idleUnused: new Connection(port),
    };
    for (const c of Object.values(connections)) await c.connected();
    for (const c of [connections.idleFast, connections.idleHealth, connections.idleUnused]) expect(keptAlive(await c.send('GET', '/drain/warm'))).toBe(true);
    expect(keptAlive(await connections.idleSlow.send('POST', '/drain/warm', 'x'))).toBe(true);
    const inFlightFast = connections.inFlightFast.send('GET', '/drain/slow-get');
    const inFlightSlow = connections.inFlightSlow.send('POST', '/drain/slow-post', 'posted');
    await waitFor(() => held.length === 2, { what: 'both slow requests at the app' });

    const started = Date.now();
    let drained = false;
    const closing = proxy.close().then(() => (drained = true));
    // A connection made once the drain began is still taken (closing the listener would reset
    // it under its request), and its one answer says that the proxy drains. (The Node engine
    // says so the moment close is called; haproxy is told through its Runtime API, a round
    // trip later: hence the wait for the drain to show.)
    await waitFor(async () => (await once(port, 'GET', '/_berth/health')).status === 503, { what: 'the drain to show', intervalMs: 5 });
    const late = new Connection(port);
    const lateAnswer = late.send('POST', '/drain/late', 'xy');
    expect(await lateAnswer).toMatchObject({ status: 200, body: 'POST /drain/late 2', headers: { connection: 'close', 'x-berth-draining': '1' } });
    await waitFor(() => refuses(port), { what: 'the proxy to stop accepting' });
    // The port is free for its replacement while this one finishes.
    expect(await canListen(port)).toBe(true);

    // Idle connections are still open during the drain, and a request on one is answered, once.
    expect(connections.idleFast.closed).toBe(false);
    const fast = await connections.idleFast.send('GET', '/drain/during');
    expect(fast.status).toBe(200);
    expect(fast.headers.connection).toBe('close');
    expect(fast.headers['x-berth-draining']).toBe('1');
    const slow = await connections.idleSlow.send('POST', '/drain/during', 'abc');
    expect(slow).toMatchObject({ status: 200, body: 'POST /drain/during 3' });
    expect(slow.headers.connection).toBe('close');
    expect(slow.headers['x-berth-draining']).toBe('1');
    // Its health check fails, so that a balancer stops choosing it even without traffic.
    const health = await connections.idleHealth.send('GET', '/_berth/health');
    expect(health.status).toBe(503);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'draining' });
    await waitFor(() => connections.idleFast.closed && connections.idleSlow.closed && connections.idleHealth.closed, { what: 'the connections to close after their Connection: close answers' });

    // The answers in flight end whole, and say Connection: close too.
    for (const release of held.splice(0)) release();
    const [a, b] = await Promise.all([inFlightFast, inFlightSlow]);
    expect(a).toMatchObject({ status: 200, body: 'GET /drain/slow-get 0' });
    expect(a.headers.connection).toBe('close');
    expect(b).toMatchObject({ status: 200, body: 'POST /drain/slow-post 6' });
    expect(b.headers.connection).toBe('close');

    // The connection nobody used is closed by the proxy after the linger, and the drain ends.
    await waitFor(() => drained, { deadlineMs: 15_000, what: 'the drain to end' });
    await closing;
    expect(connections.idleUnused.closed).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(LINGER_MS - 50);
  });

  it('drains at once when its clients close their idle connections themselves', async () => {
    const proxy: ProxyDaemon = await startTestProxy(redis, registry.prefix, 'm1');
    closers.push(() => proxy.close());
    const c = new Connection(Number(new URL(proxy.url).port));
    await c.connected();
    expect((await c.send('GET', '/drain/warm')).status).toBe(200);
    let drained = false;
    const closing = proxy.close().then(() => (drained = true));
    expect(c.closed).toBe(false);
    // As a balancer does once a proxy refused it a connection.
    c.socket.end();
    await waitFor(() => drained, { what: 'the drain to end once the client closed' });
    await closing;
  });
});
