// Requests that never reached a proxy (its connection refused) are not lost: the balancer
// tries again, with backoff, any proxy, the one that refused included, until its budget is
// spent, POSTs and their bodies too; and it closes its idle connections to a proxy that
// refused one or says it is draining, so that a draining proxy is not left to close them (or
// its listener) under a request, and sends a draining one nothing new: when it is the only
// one, requests wait for its replacement. A GET whose app cut it behind a proxy goes to
// another proxy, once.
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as h2Connect } from 'node:http2';
import { request } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { BALANCER_OPTIONS, startBalancer, type BalancerDaemon } from '../../balancer/balancer-daemon.js';
import { resolveOptions } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import { getPort } from '../helpers/get-port.js';
import { traversableTempDir } from '../helpers/hoster-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs: string[] = [];
const closers: (() => void | Promise<void>)[] = [];

/**
 * A stand-in proxy whose listener can stop and start again on the same port while the
 * connections it accepted stay open (as a proxy that drains, then its replacement). Every
 * connection it ever accepted is kept, with whether its client closed it.
 */
function standIn(port: number, handler: (req: IncomingMessage, res: ServerResponse) => void, healthy: () => boolean = () => true) {
  const sockets: { socket: Socket; clientEnded: boolean; app: boolean }[] = [];
  const http: Server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    if (req.url === '/_berth/health') return void (healthy() ? res.end('{"status":"ok"}') : res.writeHead(503).end('{"status":"draining"}'));
    const entry = sockets.find((s) => s.socket === req.socket);
    if (entry) entry.app = true;
    handler(req, res);
  });
  let listener: NetServer | undefined;
  const self = {
    /** Connections that carried requests other than health checks. */
    sockets: () => sockets.filter((s) => s.app),
    listening: () => listener !== undefined,
    start: () =>
      new Promise<void>((resolve, reject) => {
        const l = createNetServer((socket) => {
          const entry = { socket, clientEnded: false, app: false };
          sockets.push(entry);
          socket.once('end', () => (entry.clientEnded = true));
          http.emit('connection', socket);
        });
        l.once('error', reject);
        l.listen(port, '127.0.0.1', () => {
          listener = l;
          resolve();
        });
      }),
    /** Stops accepting; the connections it accepted stay open. */
    stop: () => {
      listener?.close();
      listener = undefined;
    },
    close: () => {
      self.stop();
      for (const { socket } of sockets) socket.destroy();
    },
  };
  closers.push(self.close);
  return self;
}

/** Answers with the method and the number of body bytes it read. */
function echo(req: IncomingMessage, res: ServerResponse): void {
  let bytes = 0;
  req.on('data', (d: Buffer) => (bytes += d.length));
  req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`${req.method} ${bytes}`));
}

async function balancerFor(backends: string[], unsentRetryMs: number): Promise<{ balancer: BalancerDaemon; ca: string }> {
  const dataDir = traversableTempDir('berth-balancer-unsent-');
  dirs.push(dataDir);
  const config = resolveOptions(
    BALANCER_OPTIONS,
    { host: '127.0.0.1', httpsPort: 0, dataDir, unsentRetryMs, adminPort: 0 },
    { BERTH_BALANCER_BACKENDS: backends.join(','), BERTH_BALANCER_DISCOVER: 'false' },
  );
  const balancer = await startBalancer(config, silentLogger());
  closers.push(() => balancer.close());
  return { balancer, ca: readFileSync(balancer.caCertPath!, 'utf8') };
}

function send(b: { balancer: BalancerDaemon; ca: string }, method: string, path: string, body?: Buffer): Promise<{ status: number; body: string }> {
  const port = Number(new URL(b.balancer.url).port);
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-length': String(body.length) };
    const req = request({ host: '127.0.0.1', port, path, method, headers, ca: b.ca, servername: 'localhost', agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.setTimeout(60_000, () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** The same over HTTP/2 (a body there has no Content-Length to go by). */
function sendH2(b: { balancer: BalancerDaemon; ca: string }, path: string, body: Buffer): Promise<{ status: number; body: string }> {
  const session = h2Connect(b.balancer.url.replace('localhost', '127.0.0.1'), { ca: b.ca, servername: 'localhost' });
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    session.on('error', reject);
    const stream = session.request({ ':method': 'POST', ':path': path });
    let status = 0;
    let text = '';
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (d: Buffer) => (text += d.toString()));
    stream.on('end', () => resolve({ status, body: text }));
    stream.on('error', reject);
    stream.end(body);
  }).finally(() => session.close());
}

afterAll(async () => {
  for (const c of closers.reverse()) await c();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('never-sent requests through the balancer', () => {
  it('waits for a proxy that is not listening yet and gives it the whole POST, body and all (HTTP/1.1 and HTTP/2), and the GET', async () => {
    const port = await getPort();
    const proxy = standIn(port, echo);
    // A budget no loaded machine runs out of: the test is about what is sent, not when.
    const b = await balancerFor([`http://127.0.0.1:${port}`], 60_000);
    const body = Buffer.alloc(256 * 1024, 7);
    const post = send(b, 'POST', '/app/x', body);
    const get = send(b, 'GET', '/app/y');
    const h2Post = sendH2(b, '/app/z', body);
    // All three refused and waiting to be tried again.
    await waitFor(async () => ((await (await fetch(`${b.balancer.adminUrl}/_berth/balancer`)).json()) as { waitingToRetry: number }).waitingToRetry === 3, { what: 'the three requests waiting to be tried again' });
    // The proxy is back (its replacement listens): both go to it, the POST's body whole.
    await proxy.start();
    expect(await post).toEqual({ status: 200, body: `POST ${body.length}` });
    expect(await get).toEqual({ status: 200, body: 'GET 0' });
    expect(await h2Post).toEqual({ status: 200, body: `POST ${body.length}` });
  });

  it('answers 503, saying the request was not sent, once its budget is spent', async () => {
    const port = await getPort();
    const b = await balancerFor([`http://127.0.0.1:${port}`], 300);
    const started = Date.now();
    const answer = await send(b, 'POST', '/app/x', Buffer.from('payload'));
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body).error).toMatchObject({ code: 'no_healthy_instance' });
    expect(JSON.parse(answer.body).error.message).toContain('not sent');
    // It did wait (at least the budget less one jittered wait), and several attempts were made.
    expect(Date.now() - started).toBeGreaterThanOrEqual(300 - 250);
    expect(b.balancer.pool.all[0]!.errors).toBeGreaterThan(2);
  });

  it('closes its idle connections to a proxy that refused it one, each once its request is answered', async () => {
    const port = await getPort();
    const held: (() => void)[] = [];
    const proxy = standIn(port, (req, res) => {
      if (req.url?.includes('hold')) held.push(() => echo(req, res));
      else echo(req, res);
    });
    await proxy.start();
    const b = await balancerFor([`http://127.0.0.1:${port}`], 60_000);
    // Two connections, kept alive.
    const warm = [send(b, 'GET', '/app/hold-1'), send(b, 'GET', '/app/hold-2')];
    await waitFor(() => held.length === 2, { what: 'two requests held on two connections' });
    for (const release of held.splice(0)) release();
    await Promise.all(warm);
    const old = proxy.sockets();
    expect(old).toHaveLength(2);

    // The proxy stops accepting (it drains); its two connections stay open.
    proxy.stop();
    // Three at once: two go on the kept-alive connections, the third needs a new one: refused.
    const three = [send(b, 'GET', '/app/hold-3'), send(b, 'POST', '/app/hold-4', Buffer.from('four')), send(b, 'GET', '/app/hold-5')];
    await waitFor(() => held.length === 2 && b.balancer.pool.all[0]!.errors >= 1, { what: 'two requests held, one refused' });
    // The balancer has let go of its old connections: each closes, from its side, once answered.
    for (const release of held.splice(0)) release();
    await waitFor(() => old.every((s) => s.clientEnded), { deadlineMs: 20_000, what: 'the balancer to close both old connections itself' });
    // The refused one is still being retried: the replacement takes it.
    await proxy.start();
    await waitFor(() => held.length === 1, { what: 'the refused request to reach the replacement' });
    for (const release of held.splice(0)) release();
    expect((await Promise.all(three)).map((a) => a.status)).toEqual([200, 200, 200]);
  });

  it('sends nothing new to a proxy that says it is draining, and closes its connections to it itself', async () => {
    const [portA, portB] = [await getPort(), await getPort()];
    let draining = false;
    const named = (name: string, sayDraining: () => boolean) => (req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      req.on('end', () => res.writeHead(200, sayDraining() ? { 'x-berth-draining': '1' } : {}).end(name));
    };
    const a = standIn(portA, named('A', () => draining), () => !draining);
    const b = standIn(portB, named('B', () => false));
    await a.start();
    await b.start();
    const balancer = await balancerFor([`http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`], 60_000);
    const answered = { A: 0, B: 0 };
    const one = async (method = 'GET') => {
      const answer = await send(balancer, method, '/app/x', method === 'POST' ? Buffer.from('p') : undefined);
      expect(answer.status).toBe(200);
      answered[answer.body as 'A' | 'B']++;
      return answer.body;
    };
    await waitFor(async () => (await one()) === 'A', { what: 'a request to reach A' });

    // A begins to drain: its next answer says so, and from then on it gets nothing new.
    draining = true;
    await waitFor(async () => (await one()) === 'A', { what: "A's answer saying that it drains" });
    answered.A = answered.B = 0;
    for (let i = 0; i < 30; i++) await one(i % 2 === 0 ? 'GET' : 'POST');
    expect(answered).toEqual({ A: 0, B: 30 });
    await waitFor(() => a.sockets().every((s) => s.clientEnded), { what: 'the balancer to close its connections to A itself' });

    // A's replacement passes its health check: it is chosen again.
    draining = false;
    await waitFor(async () => (await one()) === 'A', { deadlineMs: 20_000, what: 'A to be chosen again once healthy' });
  });

  it('holds new requests while its only proxy drains, sends that proxy none of them, and gives them all to its replacement', async () => {
    const port = await getPort();
    let generation = 1;
    let draining = false;
    const proxy = standIn(
      port,
      (req, res) => {
        let bytes = 0;
        req.on('data', (d: Buffer) => (bytes += d.length));
        req.on('end', () => res.writeHead(200, draining ? { 'x-berth-draining': '1' } : {}).end(`${generation} ${req.method} ${bytes}`));
      },
      () => !draining,
    );
    await proxy.start();
    const b = await balancerFor([`http://127.0.0.1:${port}`], 60_000);
    expect((await send(b, 'GET', '/app/x')).body).toBe('1 GET 0');
    // It drains: its answer says so, and from then on it is sent nothing new.
    draining = true;
    expect((await send(b, 'GET', '/app/x')).body).toBe('1 GET 0');
    const served = proxy.sockets().length;
    const held = [send(b, 'GET', '/app/y'), send(b, 'POST', '/app/z', Buffer.from('body')), send(b, 'GET', '/app/w')];
    await waitFor(async () => ((await (await fetch(`${b.balancer.adminUrl}/_berth/balancer`)).json()) as { waitingToRetry: number }).waitingToRetry === 3, {
      what: 'the three requests waiting for a proxy that does not drain',
    });
    expect(proxy.sockets().length).toBe(served);
    // Its listener closes (it exits); its replacement listens on the same port and is healthy.
    proxy.stop();
    generation = 2;
    draining = false;
    await proxy.start();
    expect(await Promise.all(held)).toEqual([
      { status: 200, body: '2 GET 0' },
      { status: 200, body: '2 POST 4' },
      { status: 200, body: '2 GET 0' },
    ]);
  });

  it("sends a GET whose app cut it behind one proxy (x-berth-unsent: cut) to another, once; a POST's answer is relayed", async () => {
    const [portA, portB] = [await getPort(), await getPort()];
    const hits = { A: 0, B: 0 };
    let bCuts = false;
    const cutter = (name: 'A' | 'B', cuts: () => boolean) => (req: IncomingMessage, res: ServerResponse) => {
      hits[name]++;
      req.resume();
      req.on('end', () => {
        if (cuts() && req.headers['content-length'] === undefined) {
          res.writeHead(503, { 'content-type': 'application/json', 'x-berth-unsent': 'cut' }).end('{"error":{"code":"no_healthy_instance","message":"cut"}}');
        } else res.writeHead(200).end(`${name} ${req.method}`);
      });
    };
    const a = standIn(portA, cutter('A', () => true));
    const b = standIn(portB, cutter('B', () => bCuts));
    await a.start();
    await b.start();
    const balancer = await balancerFor([`http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`], 60_000);
    // Until a GET went to A first: it is answered by B.
    await waitFor(async () => {
      const before = hits.A;
      const answer = await send(balancer, 'GET', '/app/x');
      expect(answer).toEqual({ status: 200, body: 'B GET' });
      return hits.A > before;
    }, { what: 'a GET to go to A first' });
    // A POST with a body is A's to answer (a proxy never says `cut` of one: it may have run).
    await waitFor(async () => (await send(balancer, 'POST', '/app/p', Buffer.from('p'))).body === 'A POST', { what: 'a POST answered by A' });
    // Both cut it: one resend, then the cut is the answer.
    bCuts = true;
    hits.A = hits.B = 0;
    const answer = await send(balancer, 'GET', '/app/x');
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body).error.code).toBe('upstream_failed');
    expect(hits).toEqual({ A: 1, B: 1 });
  });
});
