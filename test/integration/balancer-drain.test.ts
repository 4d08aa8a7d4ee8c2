// A SIGTERMed balancer drains so that a client that retries loses nothing: it stops accepting,
// finishes what is in flight (an HTTP/1.1 answer not started yet says Connection: close, an
// HTTP/2 session gets GOAWAY and its open streams finish), closes idle connections, and a
// replacement on the same port serves the client's next connection.
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as h2Connect, type ClientHttp2Session } from 'node:http2';
import { Agent, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BALANCER_OPTIONS, startBalancer, type BalancerDaemon } from '../../balancer/balancer-daemon.js';
import { resolveOptions } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import { traversableTempDir } from '../helpers/hoster-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let proxy: Server;
let backend: string;
let dataDir: string;
let ca: string;
/** Requests the stand-in proxy holds until released. */
const held: (() => void)[] = [];

function start(port: number): Promise<BalancerDaemon> {
  const config = resolveOptions(BALANCER_OPTIONS, { host: '127.0.0.1', httpsPort: port, dataDir }, { BERTH_BALANCER_BACKENDS: backend, BERTH_BALANCER_DISCOVER: 'false' });
  return startBalancer(config, silentLogger());
}

function h1(port: number, path: string, agent: Agent | false): Promise<{ status: number; body: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca, servername: 'localhost', agent }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
    });
    req.setTimeout(20_000, () => req.destroy(new Error('no answer within 20 s')));
    req.on('error', reject);
    req.end();
  });
}

function h2(session: ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path });
    let status = 0;
    let body = '';
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (d: Buffer) => (body += d.toString()));
    stream.on('end', () => resolve({ status, body }));
    stream.on('error', reject);
    stream.end();
  });
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

beforeAll(async () => {
  dataDir = traversableTempDir('berth-balancer-drain-');
  proxy = createServer((req, res) => {
    if (req.url === '/_berth/health') return void res.end('{"status":"ok"}');
    const answer = () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`answered ${req.url}`);
    if (req.url?.includes('hold')) held.push(answer);
    else answer();
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  backend = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  // Made once, so the replacement balancer presents the same certificate.
  const first = await start(0);
  ca = readFileSync(first.caCertPath!, 'utf8');
  await first.close();
});

afterAll(async () => {
  for (const release of held.splice(0)) release();
  proxy?.closeAllConnections();
  proxy?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('balancer drain', () => {
  it('finishes in flight on both protocols, closes idle connections, and its replacement takes the retries', async () => {
    let balancer = await start(0);
    const port = Number(new URL(balancer.url).port);
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const agents = [agent];
    const session = h2Connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' });
    session.on('error', () => undefined);
    let goaway = false;
    session.on('goaway', () => (goaway = true));
    const idleSession = h2Connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' });
    idleSession.on('error', () => undefined);
    let idleSessionClosed = false;
    idleSession.on('close', () => (idleSessionClosed = true));
    try {
      // An idle kept-alive HTTP/1.1 connection, an idle HTTP/2 session; one request in flight on each protocol.
      expect((await h1(port, '/warm', agent)).connection).toBe('keep-alive');
      expect((await h2(idleSession, '/warm')).status).toBe(200);
      const idleSocket = Object.values(agent.freeSockets).flat()[0]!;
      let idleClosed = false;
      idleSocket.once('close', () => (idleClosed = true));
      // On a kept-alive connection of its own (agent: false would ask for Connection: close itself).
      const inFlightAgent = new Agent({ keepAlive: true });
      agents.push(inFlightAgent);
      const inFlight1 = h1(port, '/hold-1', inFlightAgent);
      const inFlight2 = h2(session, '/hold-2');
      await waitFor(() => held.length === 2, { what: 'both requests at the proxy' });

      let drained = false;
      const closing = balancer.close().then(() => (drained = true));
      await waitFor(() => refuses(port), { what: 'the balancer to stop accepting' });
      await waitFor(() => idleClosed && idleSessionClosed && goaway, { what: 'idle connections closed, GOAWAY on the busy session' });
      expect(drained).toBe(false);

      for (const release of held.splice(0)) release();
      const [a, b] = await Promise.all([inFlight1, inFlight2]);
      expect(a).toEqual({ status: 200, body: 'answered /hold-1', connection: 'close' });
      expect(b).toEqual({ status: 200, body: 'answered /hold-2' });
      await closing;

      // The replacement on the same port: a client retrying on a new connection is served.
      balancer = await start(port);
      expect(await h1(port, '/again', agent)).toMatchObject({ status: 200, body: 'answered /again' });
    } finally {
      session.destroy();
      idleSession.destroy();
      for (const a of agents) a.destroy();
      await balancer.close();
    }
  });
});
