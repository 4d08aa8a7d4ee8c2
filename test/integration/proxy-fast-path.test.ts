// The proxy's fast path (simple GET and HEAD requests, answered without node:http's objects)
// against real app servers and raw client sockets: pipelining in order, the move to node:http
// mid-connection with every unread byte, the framing of answers (chunked, HEAD, 204), a client
// that goes away, its timeouts, and a graceful close that does not wait for idle connections.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import { createRoutedApp, runInstance, startAppServer, startTestProxy } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let registry: RegistryFixture;
let proxy: ProxyDaemon;
const closers: (() => Promise<void>)[] = [];
let slowClosed = 0;

/** What the app saw, as JSON: method, target and body. */
function echo(req: IncomingMessage, res: ServerResponse): void {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d: string) => (body += d));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ method: req.method, url: req.url, body }));
  });
}

function handler(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/t/chunky') {
    // No Content-Length: the proxy must frame it (chunked) for its client.
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first,');
    setImmediate(() => res.end('second'));
  } else if (req.url === '/t/none') {
    res.writeHead(204).end();
  } else if (req.url === '/t/endless') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const timer = setInterval(() => res.write('tick\n'), 10);
    res.once('close', () => {
      clearInterval(timer);
      slowClosed++;
    });
  } else echo(req, res);
}

function port(daemon: ProxyDaemon = proxy): number {
  return Number(new URL(daemon.url).port);
}

/** Writes `text` at once and collects everything until the proxy closes the connection. */
function exchange(text: string | string[], to = port()): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(to, '127.0.0.1');
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (out += d));
    s.on('error', reject);
    s.on('close', () => resolve(out));
    const parts = typeof text === 'string' ? [text] : text;
    // Parts go out in separate writes, a turn of the event loop apart.
    const writeFrom = (i: number) => {
      if (i === parts.length) return;
      s.write(parts[i]!);
      setImmediate(() => writeFrom(i + 1));
    };
    writeFrom(0);
  });
}

/** Opens a connection and resolves with it and what it received, once `until` matches. */
function openAndRead(text: string, until: RegExp): Promise<{ socket: Socket; received: () => string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port(), '127.0.0.1');
    let out = '';
    let done = false;
    socket.setEncoding('latin1');
    socket.on('error', reject);
    socket.on('data', (d: string) => {
      out += d;
      if (!done && until.test(out)) {
        done = true;
        resolve({ socket, received: () => out });
      }
    });
    socket.write(text);
  });
}

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis);
  proxy = await startTestProxy(redis, registry.prefix, 'm1', { headersTimeoutMs: 1000, keepAliveTimeoutMs: 1000 });
  await createRoutedApp(registry.daemon.apps, 't', '/t');
  const app = await startAppServer('t', handler);
  closers.push(app.close);
  await runInstance(registry.daemon.store, 't', '/t', 'm1', app.port);
  await waitFor(async () => (await fetch(`${proxy.url}/t/ready`)).status === 200, { what: 'the route to /t' });
});

afterAll(async () => {
  await proxy.close();
  for (const c of closers) await c();
  await registry.close();
  await redis.stop();
});

describe('the fast path', () => {
  it('answers pipelined requests in order, and hands the connection to node:http at a request with a body, unread bytes and all', async () => {
    const reply = await exchange(
      'GET /t/1 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'HEAD /t/2 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /t/3 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'POST /t/4 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello' +
        'GET /t/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(reply.match(/^HTTP\/1\.1 \d+/gm)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200']);
    const bodies = reply.match(/\{[^}]*\}/g)!.map((b) => JSON.parse(b) as { method: string; url: string; body: string });
    // HEAD's answer has no body: four bodies for five answers.
    expect(bodies.map((b) => `${b.method} ${b.url} ${b.body}`)).toEqual(['GET /t/1 ', 'GET /t/3 ', 'POST /t/4 hello', 'GET /t/5 ']);
  });

  it('serves a head that arrives in pieces (through node:http)', async () => {
    const reply = await exchange(['GET /t/pie', 'ces HTTP/1.1\r\nHo', 'st: x\r\nConnection: close\r\n\r\n']);
    expect(reply).toMatch(/^HTTP\/1\.1 200 /);
    expect(reply).toContain('"url":"/t/pieces"');
  });

  it('frames answers as the client needs: chunked without a length, none for HEAD and 204, on one kept-alive connection', async () => {
    const { socket, received } = await openAndRead('GET /t/chunky HTTP/1.1\r\nHost: x\r\n\r\n', /0\r\n\r\n$/);
    // The next request goes out once the previous answer's head (and its body, if any) is in.
    const next = async (text: string, answers: number) => {
      socket.write(text);
      await waitFor(() => (received().match(/^HTTP\/1\.1 /gm) ?? []).length === answers && received().endsWith('\r\n\r\n'), { what: `answer ${answers}` });
    };
    await next('HEAD /t/head HTTP/1.1\r\nHost: x\r\n\r\n', 2);
    await next('GET /t/none HTTP/1.1\r\nHost: x\r\n\r\n', 3);
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write('GET /t/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await closed;
    const answers = received().split(/(?=HTTP\/1\.1 )/);
    expect(answers).toHaveLength(4);
    const [chunky, head, none, after] = answers as [string, string, string, string];
    expect(chunky).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(chunky).toMatch(/\r\nTransfer-Encoding: chunked\r\n/i);
    expect(chunky).toMatch(/\r\nDate: /i);
    expect(chunky.endsWith('\r\n\r\n6\r\nfirst,\r\n6\r\nsecond\r\n0\r\n\r\n')).toBe(true);
    // No body after the heads of HEAD and 204 answers, and no framing that promises one.
    expect(head.endsWith('\r\n\r\n')).toBe(true);
    expect(head).not.toMatch(/transfer-encoding/i);
    expect(none.endsWith('\r\n\r\n')).toBe(true);
    expect(none).not.toMatch(/transfer-encoding|content-length/i);
    expect(after).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(after).toContain('"url":"/t/after"');
  });

  it('ends the upstream request when the client goes away mid-answer', async () => {
    const before = slowClosed;
    const { socket } = await openAndRead('GET /t/endless HTTP/1.1\r\nHost: x\r\n\r\n', /tick/);
    socket.destroy();
    await waitFor(() => slowClosed === before + 1, { what: "the app's answer to end" });
  });

  it('answers 408 to a connection that sends nothing, and closes an idle kept-alive one', async () => {
    expect(await exchange('')).toMatch(/^HTTP\/1\.1 408 /);
    const { socket, received } = await openAndRead('GET /t/idle HTTP/1.1\r\nHost: x\r\n\r\n', /"url":"\/t\/idle"/);
    await new Promise((resolve) => socket.once('close', resolve));
    expect(received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(received().match(/^HTTP\/1\.1/gm)).toHaveLength(1);
  });

  it("never writes an error answer inside an answer that has started: a bad request pipelined behind a streaming one cuts the connection", async () => {
    // A POST goes to node:http; the line after it is not HTTP.
    const { socket, received } = await openAndRead('POST /t/endless HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n', /tick/);
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write('not a request\r\n\r\n');
    await closed;
    expect(received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(received()).not.toContain('400 Bad Request');
  });

  it('refuses path escapes it is given, like node:http does', async () => {
    const reply = await exchange('GET /t/../x HTTP/1.1\r\nHost: x\r\n\r\nGET /t/ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(reply.match(/^HTTP\/1\.1 \d+/gm)).toEqual(['HTTP/1.1 400', 'HTTP/1.1 200']);
    expect(reply).toContain('"code":"bad_path"');
  });
});

describe('closing', () => {
  it('closes idle fast-path connections at once, not after its grace, with one that never sent a byte', async () => {
    const other = await startTestProxy(redis, registry.prefix, 'm1', { graceMs: 8000 });
    await waitFor(async () => (await fetch(`${other.url}/t/ready`)).status === 200, { what: 'the route in the second proxy' });
    const silent = connect(port(other), '127.0.0.1');
    silent.on('error', () => undefined);
    const silentClosed = new Promise((resolve) => silent.once('close', resolve));
    await new Promise((resolve) => silent.once('connect', resolve));
    const idle = connect(port(other), '127.0.0.1');
    const idleClosed = new Promise((resolve) => idle.once('close', resolve));
    idle.on('error', () => undefined);
    let idleAnswer = '';
    idle.setEncoding('latin1');
    idle.on('data', (d: string) => (idleAnswer += d));
    idle.write('GET /t/idle HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => idleAnswer.includes('"url":"/t/idle"'), { what: 'the first answer' });

    const started = Date.now();
    await other.close();
    await Promise.all([idleClosed, silentClosed]);
    // The drain did not wait for the idle connection until its grace (8 s) ran out.
    expect(Date.now() - started).toBeLessThan(6000);
  });
});
