// Request smuggling probes against the proxy: raw requests with ambiguous framing, each
// followed on the same connection by a second request to another app. The proxy must refuse
// the first (400, or close the connection) or read it exactly as the app then does; never may
// the app behind it read the second as a request of its own that the proxy did not route (a
// desync: it would pass the proxy's routing, and the next client's request would get its
// answer). The apps are real processes that record every request they parse.
// proxy-smuggling-haproxy.test.ts runs these through the haproxy engine.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import { createRoutedApp, runInstance, startTestProxy, testProxyEngine } from '../helpers/proxy-fixture.js';
import { startRecordingApp, type RecordingApp } from '../helpers/recording-app.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

/** Idle connections close after this, which ends a probe whose connection the proxy kept. */
const KEEP_ALIVE_MS = 1000;

let redis: TestRedis;
let registry: RegistryFixture;
let proxy: ProxyDaemon;
let port: number;
/** The app the probes are sent to, and the one the smuggled requests name. */
let front: RecordingApp;
let other: RecordingApp;

const smuggled = (n: string) => `GET /other/smuggled-${n} HTTP/1.1\r\nHost: smuggle.test\r\n\r\n`;

/**
 * What the proxy does with a probe. `first`: the status of its answer to the probe. `front`:
 * the body the app the probe names got with it (one request), or nothing got there.
 * `smuggled`: the second request was never read as a request ("never": refused with the probe,
 * or read as its body, or dropped with the connection), or the proxy read it as a request of
 * its own and routed it, answering it too ("routed": a pipelined request, no desync).
 * `closes`: the probe's answer says Connection: close (nothing after it on the connection is read).
 */
interface Outcome {
  first: number;
  closes: boolean;
  front?: 'empty' | 'the smuggled request' | 'abc';
  smuggled: 'never' | 'routed';
}

const REFUSED: Outcome = { first: 400, closes: true, smuggled: 'never' };

/** A head whose framing is ambiguous, then the smuggled request, as one write. */
interface Probe {
  name: string;
  bytes: (n: string) => string;
  node: Outcome;
  /** Where haproxy differs: it reads the request one way, sends it on framed that way, and closes the connection after it (docs/proxy.md). */
  haproxy?: Outcome;
}

const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;

const PROBES: Probe[] = [
  {
    name: 'Content-Length and Transfer-Encoding, the length covering the smuggled request (CL.TE)',
    bytes: (n) => `POST /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: ${5 + smuggled(n).length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled(n)}`,
    node: REFUSED,
    haproxy: { first: 200, closes: true, front: 'empty', smuggled: 'never' },
  },
  {
    name: 'Transfer-Encoding and a short Content-Length (TE.CL)',
    bytes: (n) => `POST /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${chunk(smuggled(n))}0\r\n\r\n`,
    node: REFUSED,
    haproxy: { first: 200, closes: true, front: 'the smuggled request', smuggled: 'never' },
  },
  {
    name: 'two different Content-Length headers',
    bytes: (n) => `POST /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: 0\r\nContent-Length: ${smuggled(n).length}\r\n\r\n${smuggled(n)}`,
    node: REFUSED,
  },
  {
    name: 'one Content-Length with two different values',
    bytes: (n) => `POST /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: 0, ${smuggled(n).length}\r\n\r\n${smuggled(n)}`,
    node: REFUSED,
  },
  {
    name: 'Transfer-Encoding: chunked, identity (chunked not last) with a Content-Length',
    bytes: (n) => `POST /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: ${5 + smuggled(n).length}\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${smuggled(n)}`,
    node: REFUSED,
  },
  {
    name: 'Transfer-Encoding: xchunked with a Content-Length',
    bytes: (n) => `POST /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: ${5 + smuggled(n).length}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${smuggled(n)}`,
    node: REFUSED,
  },
  {
    name: 'a space before the colon of Transfer-Encoding',
    bytes: (n) => `POST /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: ${5 + smuggled(n).length}\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n${smuggled(n)}`,
    node: REFUSED,
  },
  {
    name: 'a space before the colon of Content-Length',
    bytes: (n) => `POST /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length : ${smuggled(n).length}\r\n\r\n${smuggled(n)}`,
    node: REFUSED,
  },
  {
    name: 'Transfer-Encoding folded onto the next line (obs-fold)',
    bytes: (n) => `POST /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: ${5 + smuggled(n).length}\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n${smuggled(n)}`,
    node: REFUSED,
    haproxy: { first: 200, closes: true, front: 'empty', smuggled: 'never' },
  },
  {
    name: 'a header line ended by a bare LF',
    bytes: (n) => `POST /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\nX-Pad: 1\nContent-Length: ${smuggled(n).length}\r\n\r\n${smuggled(n)}`,
    node: REFUSED,
    haproxy: { first: 200, closes: false, front: 'the smuggled request', smuggled: 'never' },
  },
  {
    name: 'a chunk line ended by a bare LF',
    bytes: (n) => `POST /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n${smuggled(n)}`,
    node: REFUSED,
    haproxy: { first: 200, closes: false, front: 'abc', smuggled: 'routed' },
  },
  {
    name: 'a chunk size that is not hex',
    bytes: (n) => `POST /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n${smuggled(n)}\r\n0\r\n\r\n`,
    node: REFUSED,
  },
  {
    name: 'a chunk size that overflows 64 bits',
    bytes: (n) => `POST /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\nTransfer-Encoding: chunked\r\n\r\n1${'0'.repeat(16)}${smuggled(n).length.toString(16)}\r\n${smuggled(n)}\r\n0\r\n\r\n`,
    node: REFUSED,
  },
  {
    name: 'a GET with a body (the fast path hands it over)',
    bytes: (n) => `GET /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: ${smuggled(n).length}\r\n\r\n${smuggled(n)}`,
    node: { first: 200, closes: false, front: 'the smuggled request', smuggled: 'never' },
  },
  {
    name: 'an absolute-form target naming the other app',
    bytes: (n) => `GET http://smuggle.test/other/smuggled-${n} HTTP/1.1\r\nHost: smuggle.test\r\n\r\n${smuggled(n)}`,
    node: { first: 400, closes: false, smuggled: 'routed' },
  },
  {
    name: 'a request line with spaces in its target',
    bytes: (n) => `GET /smug/${n} /other/smuggled-${n} HTTP/1.1\r\nHost: smuggle.test\r\n\r\n${smuggled(n)}`,
    node: REFUSED,
  },
  {
    name: 'a request line with two spaces',
    bytes: (n) => `GET  /smug/${n} HTTP/1.1\r\nHost: smuggle.test\r\n\r\n${smuggled(n)}`,
    node: { first: 200, closes: false, front: 'empty', smuggled: 'routed' },
  },
];

interface Exchange {
  /** The status of each answer on the connection, in order. */
  statuses: number[];
  /** Whether each said Connection: close. */
  closes: boolean[];
  /** The connection was closed (by the proxy) within the probe's wait. */
  closed: boolean;
}

/** Sends `bytes` on a connection of its own and reads every answer until the proxy closes it (an idle one after KEEP_ALIVE_MS). */
function exchange(bytes: string): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (text += d));
    socket.on('error', () => undefined);
    const timer = setTimeout(() => socket.destroy(), KEEP_ALIVE_MS * 10);
    let closed = true;
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ ...answers(text), closed });
    });
    timer.unref();
    socket.once('connect', () => socket.write(bytes));
    setTimeout(() => (closed = false), KEEP_ALIVE_MS * 10 - 1).unref();
  });
}

/** The answers in `text`, each framed by its Content-Length or chunked (what the proxy sends). */
function answers(text: string): { statuses: number[]; closes: boolean[] } {
  const statuses: number[] = [];
  const closes: boolean[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const [statusLine, ...lines] = text.slice(at, end).split('\r\n');
    statuses.push(Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine!)?.[1] ?? 0));
    const header = (name: string) => lines.find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
    closes.push(header('connection')?.toLowerCase() === 'close');
    at = end + 4;
    if (header('transfer-encoding')?.toLowerCase() === 'chunked') {
      for (;;) {
        const lineEnd = text.indexOf('\r\n', at);
        if (lineEnd < 0) return { statuses, closes };
        const size = parseInt(text.slice(at, lineEnd), 16);
        at = lineEnd + 2 + size + 2;
        if (size === 0) break;
      }
    } else {
      at += Number(header('content-length') ?? 0);
    }
  }
  return { statuses, closes };
}

/** A plain GET on a connection of its own: the app's answer names the target it read. */
async function plainGet(path: string): Promise<{ status: number; url?: string }> {
  const res = await fetch(`${proxy.url}${path}`, { signal: AbortSignal.timeout(10_000) });
  const body = await res.text();
  return { status: res.status, url: res.status === 200 ? (JSON.parse(body) as { url: string }).url : undefined };
}

const seenSmuggled = (app: RecordingApp, n: string) => app.requests.filter((r) => r.url.includes(`smuggled-${n}`));

describe(`request smuggling probes (engine ${testProxyEngine()})`, () => {
  beforeAll(async () => {
    redis = await startRedis();
    registry = await startTestRegistry(redis);
    front = await startRecordingApp('smug');
    other = await startRecordingApp('other');
    await createRoutedApp(registry.daemon.apps, 'smug', '/smug');
    await createRoutedApp(registry.daemon.apps, 'other', '/other');
    await runInstance(registry.daemon.store, 'smug', '/smug', 'm1', front.port);
    await runInstance(registry.daemon.store, 'other', '/other', 'm1', other.port);
    proxy = await startTestProxy(redis, registry.prefix, 'm1', { keepAliveTimeoutMs: KEEP_ALIVE_MS });
    port = Number(new URL(proxy.url).port);
    await waitFor(async () => (await plainGet('/smug/ready')).status === 200 && (await plainGet('/other/ready')).status === 200, { what: 'both apps routed' });
  });

  afterAll(async () => {
    await proxy?.close();
    await front?.close();
    await other?.close();
    await registry?.close();
    await redis?.stop();
  });

  it.each(PROBES.map((p, i) => [p.name, p, String(i)] as const))('%s', async (_name, probe, n) => {
    const expected = (testProxyEngine() === 'haproxy' ? probe.haproxy : undefined) ?? probe.node;
    const { statuses, closes, closed } = await exchange(probe.bytes(n));
    // Follow-ups on fresh connections: a desync left on a kept-alive connection to the app
    // would hand one of them the smuggled request's answer.
    for (let i = 0; i < 3; i++) expect(await plainGet(`/smug/after-${n}-${i}`)).toEqual({ status: 200, url: `/smug/after-${n}-${i}` });
    // Never a desync: the app the probe went to never reads the smuggled request, and neither app reads anything malformed.
    expect(seenSmuggled(front, n)).toEqual([]);
    expect(front.clientErrors).toEqual([]);
    expect(other.clientErrors).toEqual([]);
    expect(closed).toBe(true);
    expect(statuses[0]).toBe(expected.first);
    expect(closes[0]).toBe(expected.closes);
    const body = { empty: '', 'the smuggled request': smuggled(n), abc: 'abc' };
    expect(front.requests.filter((r) => r.url === `/smug/${n}`).map((r) => r.body)).toEqual(expected.front === undefined ? [] : [body[expected.front]]);
    // A second request the proxy read as its own is routed and answered, once; otherwise nobody reads it.
    expect(seenSmuggled(other, n).length).toBe(expected.smuggled === 'routed' ? 1 : 0);
    expect(statuses.length).toBe(expected.smuggled === 'routed' ? 2 : 1);
  });
});
