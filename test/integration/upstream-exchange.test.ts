// forwardExchange against real servers: a request undici refuses to send is the client's 400
// (nothing reaches the upstream), and a refused connection is reported to the caller as such.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CUT_AT_APP, forwardExchange, upstreamAgent, type ExchangeFailure } from '../../forward/index.js';

const agent = upstreamAgent({ connectTimeoutMs: 2000, upstreamTimeoutMs: 5000 });
let upstream: Server;
let upstreamHits = 0;
let front: Server;
/** What the front server forwards: the headers list to send, and what the exchange reported. */
let headersToSend: string[] = [];
let origin = '';
/** The front server forwards as to a proxy (a 503 with x-berth-unsent is the failure `unsent`). */
let toProxy = false;
const failures: [ExchangeFailure, string][] = [];

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    upstreamHits++;
    if (req.url === '/unsent') res.writeHead(503, { 'x-berth-unsent': '1' }).end('{"error":{"code":"no_healthy_instance"}}');
    else if (req.url === '/unsent-after-cut') res.writeHead(503, { 'x-berth-unsent': 'cut' }).end('{"error":{"code":"no_healthy_instance"}}');
    else res.end('from upstream');
  });
  origin = `http://127.0.0.1:${await listen(upstream)}`;
  front = createServer((req, res) =>
    forwardExchange(agent, req, res, {
      origin,
      path: req.url ?? '/',
      headers: headersToSend,
      body: null,
      unsentIsFailure: toProxy,
      onAnswer: () => undefined,
      onDone: () => undefined,
      onFailure: (failure, code) => {
        failures.push([failure, code]);
        res.writeHead(502).end(failure);
      },
    }),
  );
  await listen(front);
});

afterAll(async () => {
  await agent.close();
  front.closeAllConnections();
  upstream.closeAllConnections();
  await new Promise((resolve) => front.close(resolve));
  await new Promise((resolve) => upstream.close(resolve));
});

const frontUrl = (path = '/x') => `http://127.0.0.1:${(front.address() as AddressInfo).port}${path}`;

describe('forwardExchange', () => {
  it('relays an answer', async () => {
    headersToSend = ['x-ok', '1'];
    const res = await fetch(frontUrl());
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('from upstream');
  });

  it('answers 400 invalid_request for a request undici will not send, and sends nothing', async () => {
    const before = upstreamHits;
    // A header value with a line break: undici refuses it (header injection).
    headersToSend = ['x-bad', 'a\r\nx-injected: 1'];
    const res = await fetch(frontUrl());
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
    expect(upstreamHits).toBe(before);
    expect(failures).toEqual([]);
  });

  it('reports a refused connection as refused, for the caller to try elsewhere', async () => {
    const closed = createServer();
    const port = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const saved = origin;
    origin = `http://127.0.0.1:${port}`;
    headersToSend = [];
    try {
      const res = await fetch(frontUrl());
      expect(res.status).toBe(502);
      expect(failures.at(-1)).toEqual(['refused', 'ECONNREFUSED']);
    } finally {
      origin = saved;
    }
  });

  it("reports a proxy's answer that it sent the request to no app as unsent, and relays it from anything else", async () => {
    headersToSend = [];
    toProxy = true;
    try {
      const res = await fetch(frontUrl('/unsent'));
      expect(res.status).toBe(502);
      expect(await res.text()).toBe('unsent');
      expect(failures.at(-1)).toEqual(['unsent', 'no instance there']);
      // Its one app cut it: a cut, as if on this connection, for the retry rule to judge.
      const cut = await fetch(frontUrl('/unsent-after-cut'));
      expect(await cut.text()).toBe('cut');
      expect(failures.at(-1)).toEqual(['cut', CUT_AT_APP]);
    } finally {
      toProxy = false;
    }
    const count = failures.length;
    const relayed = await fetch(frontUrl('/unsent'));
    expect(relayed.status).toBe(503);
    expect(relayed.headers.get('x-berth-unsent')).toBe('1');
    expect(failures.length).toBe(count);
  });
});
