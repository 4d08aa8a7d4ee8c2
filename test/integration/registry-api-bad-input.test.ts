// Every bad input to the registry REST API gets a clear 4xx {"error":{"code","message"}} and changes nothing in Redis.
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, type ErrorCode } from '../../common/errors.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { snapshot, startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';

/** Real state seeded before the bad requests, so that "unchanged" means something. */
interface Seed {
  /** An unclaimed instance of pay. */
  free: string;
  /** A claimed instance of pay, held by m1. */
  held: string;
  epoch: number;
  /** m1's earlier claim of `held`, given back since. */
  oldEpoch: number;
  /** The only instance of mail, claimed by m2. */
  mail: string;
}

type Lazy<T> = T | ((s: Seed) => T);

interface Case {
  name: string;
  method?: string;
  path: Lazy<string>;
  /** Sent as JSON with Content-Type application/json. */
  body?: Lazy<unknown>;
  /** Sent verbatim (Content-Type application/json unless `headers` says otherwise). */
  raw?: string | Uint8Array;
  headers?: Record<string, string>;
  /** The Authorization header; null sends none. Default: the fixture's Bearer token. */
  auth?: string | null;
  status: number;
  code: ErrorCode;
}

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

let redis: TestRedis;
let inspect: Redis;
let fx: RegistryFixture;
let seed: Seed;

const ID_NOBODY = 'ffffffffffffffff';
const HOLDER = { machine: 'm1', port: 4001, leaseMs: 600_000 };

function lazy<T>(v: Lazy<T>): T {
  return typeof v === 'function' ? (v as (s: Seed) => T)(seed) : v;
}

async function send(f: RegistryFixture, c: Omit<Case, 'name' | 'status' | 'code'>): Promise<Answer> {
  const headers: Record<string, string> = {};
  const auth = c.auth === undefined ? `Bearer ${f.token}` : c.auth;
  if (auth !== null) headers.authorization = auth;
  let body: string | Uint8Array | undefined;
  if (c.raw !== undefined) body = c.raw;
  else if (c.body !== undefined) body = JSON.stringify(lazy(c.body));
  if (body !== undefined) headers['content-type'] = 'application/json';
  Object.assign(headers, c.headers);
  const method = c.method ?? (body === undefined ? 'GET' : 'POST');
  const res = await fetch(`${f.daemon.url}${lazy(c.path)}`, { method, headers, body });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** A request written byte for byte on a socket: for paths fetch would normalise and lying headers. */
function sendRaw(f: RegistryFixture, head: string, body = '', timeoutMs = 5000): Promise<Answer> {
  const { hostname, port } = new URL(f.daemon.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let data = Buffer.alloc(0);
    let settled = false;
    const finish = (force: boolean) => {
      if (settled) return;
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) {
        if (force) {
          settled = true;
          reject(new Error(`no HTTP response, got ${JSON.stringify(data.toString())}`));
        }
        return;
      }
      const headText = data.subarray(0, end).toString('latin1');
      const length = /\r\ncontent-length: *(\d+)/i.exec(headText);
      const rest = data.subarray(end + 4);
      if (!force && (length === null || rest.length < Number(length[1]))) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({
        status: Number(headText.split(' ')[1]),
        contentType: /\r\ncontent-type: *([^\r]*)/i.exec(headText)?.[1] ?? '',
        text: rest.subarray(0, length === null ? rest.length : Number(length[1])).toString('utf8'),
      });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      if (!settled) reject(new Error(`no complete response within ${timeoutMs} ms, got ${JSON.stringify(data.toString())}`));
      settled = true;
    }, timeoutMs);
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => undefined); // the server may close while we still write: the answer decides
    socket.write(`${head.replace(/\n/g, '\r\n')}\r\n\r\n${body}`);
  });
}

const STACK = /\n\s+at |\(\S+:\d+:\d+\)|\.(?:ts|js|mjs|cjs):\d+|node_modules|[/\\](?:work|home|tmp|usr)[/\\]/;

/** The one error shape: exactly {"error":{"code","message"}}, code and status from the catalogue, no stack. */
function expectError(answer: Answer, status: number, code: ErrorCode): void {
  const context = `${answer.status} ${answer.text}`;
  expect(answer.status, context).toBe(status);
  expect(answer.contentType, context).toMatch(/^application\/json\b/);
  const json = JSON.parse(answer.text) as { error: { code: unknown; message: unknown } };
  expect(Object.keys(json), context).toEqual(['error']);
  expect(Object.keys(json.error).sort(), context).toEqual(['code', 'message']);
  expect(json.error.code, context).toBe(code);
  expect(ERROR_CATALOGUE[code].status).toBe(status);
  expect(typeof json.error.message).toBe('string');
  expect((json.error.message as string).trim().length, context).toBeGreaterThan(0);
  expect(answer.text, context).not.toMatch(STACK);
}

/** Runs `request` and fails if any key under the fixture's prefix (the event stream included) changed. */
async function unchanged<T>(f: RegistryFixture, request: () => Promise<T>): Promise<T> {
  const before = await snapshot(inspect, f.prefix);
  expect(before.size).toBeGreaterThan(0);
  const out = await request();
  expect(await snapshot(inspect, f.prefix)).toEqual(before);
  return out;
}

async function refused(c: Case, f: RegistryFixture = fx): Promise<void> {
  const answer = await unchanged(f, () => send(f, c));
  expectError(answer, c.status, c.code);
}

/** A JSON body that would be a valid registration but for its size. */
function bigRegistration(bytes: number): string {
  return JSON.stringify({ path: '/pay', attributes: { note: 'x'.repeat(bytes) } });
}

beforeAll(async () => {
  redis = await startRedis();
  inspect = redis.client();
  fx = await startTestRegistry(redis);
  const free = await fx.client.registerInstance('pay', { path: '/pay' });
  await fx.client.registerInstance('pay', { path: '/pay', attributes: { region: 'eu' } });
  // Claimed, given back and claimed again: the first epoch is a real, fenced, older claim.
  const first = await fx.client.claimService('pay', HOLDER);
  await fx.client.releaseInstance('pay', first.id, { machine: 'm1', epoch: first.epoch, reason: 'test' });
  const held = await fx.client.claimService('pay', HOLDER);
  expect(held.id).toBe(free.id); // the oldest is claimed first
  expect(held.epoch).toBeGreaterThan(first.epoch);
  await fx.client.registerInstance('mail', { path: '/mail' });
  const mail = await fx.client.claimService('mail', { ...HOLDER, machine: 'm2' });
  const other = (await fx.client.getServiceInfo('pay')).find((i) => i.id !== held.id)!;
  seed = { free: other.id, held: held.id, epoch: held.epoch, oldEpoch: first.epoch, mail: mail.id };
});

afterAll(async () => {
  await fx?.close();
  await redis?.stop();
});

const REGISTER = '/v1/services/pay/instances';
const VALID_REGISTRATION = { path: '/pay' };

describe('authentication', () => {
  const auths: Array<[string, (token: string) => string | null]> = [
    ['no Authorization header', () => null],
    ['a wrong token', () => 'Bearer not-the-token'],
    ['the Basic scheme', (t) => `Basic ${Buffer.from(`berth:${t}`).toString('base64')}`],
    ['the bare token without a scheme', (t) => t],
    ['Bearer without a token', () => 'Bearer '],
    ['the right token with an extra character', (t) => `Bearer ${t}x`],
    ['the right token twice', (t) => `Bearer ${t},${t}`],
    ['a token of 600 characters', () => `Bearer ${'t'.repeat(600)}`],
  ];

  it.each(auths)('%s → 401 unauthorized', (_name, auth) =>
    refused({ name: '', path: REGISTER, body: VALID_REGISTRATION, auth: auth(fx.token), status: 401, code: 'unauthorized' }),
  );

  it('checks the token before the body or the route: bad JSON and unknown routes without a token → 401', async () => {
    await refused({ name: '', path: REGISTER, raw: '{"path":', auth: null, status: 401, code: 'unauthorized' });
    await refused({ name: '', path: '/v1/nope', auth: null, status: 401, code: 'unauthorized' });
  });

  it('the Bearer scheme in any case is accepted (RFC 9110 §11.1) → 200', async () => {
    for (const scheme of ['bearer', 'BEARER']) {
      const answer = await send(fx, { path: '/v1/services', auth: `${scheme} ${fx.token}` });
      expect(answer.status, scheme).toBe(200);
    }
  });

  it('GET /healthz needs no token → 200', async () => {
    const answer = await unchanged(fx, () => send(fx, { path: '/healthz', auth: null }));
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ status: 'ok' });
  });
});

describe('request bodies', () => {
  const cases: Case[] = [
    { name: 'malformed JSON', raw: '{"path": "/pay",', status: 400, code: 'invalid_json' },
    { name: 'JSON5-style unquoted keys', raw: "{path:'/pay'}", status: 400, code: 'invalid_json' },
    { name: 'a bare null', raw: 'null', status: 400, code: 'invalid_json' },
    { name: 'a bare string', raw: '"/pay"', status: 400, code: 'invalid_json' },
    { name: 'a top-level array', raw: '[{"path":"/pay"}]', status: 400, code: 'invalid_request' },
    { name: 'text/plain', raw: '{"path":"/pay"}', headers: { 'content-type': 'text/plain' }, status: 415, code: 'unsupported_media_type' },
    {
      name: 'form-urlencoded',
      raw: 'path=%2Fpay',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'no Content-Type',
      raw: new TextEncoder().encode('{"path":"/pay"}'),
      headers: { 'content-type': '' },
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'a non-UTF-8 charset',
      raw: '{"path":"/pay"}',
      headers: { 'content-type': 'application/json; charset=latin1' },
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'an unknown Content-Encoding',
      raw: '{"path":"/pay"}',
      headers: { 'content-encoding': 'compress' },
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'Content-Encoding gzip over bytes that are not gzip',
      raw: '{"path":"/pay"}',
      headers: { 'content-encoding': 'gzip' },
      status: 400,
      code: 'invalid_request',
    },
    { name: 'a body over 64 KiB', raw: bigRegistration(70 * 1024), status: 413, code: 'payload_too_large' },
    {
      name: 'a small gzip body that inflates past 64 KiB',
      raw: gzipSync(bigRegistration(200 * 1024)),
      headers: { 'content-encoding': 'gzip' },
      status: 413,
      code: 'payload_too_large',
    },
  ].map((c) => ({ path: REGISTER, ...c })) as Case[];

  it.each(cases)('$name → $status $code', (c) => {
    if (c.headers?.['content-type'] === '') {
      const { 'content-type': _, ...rest } = c.headers;
      return refusedWithoutContentType({ ...c, headers: rest });
    }
    return refused(c);
  });
});

/** fetch adds a Content-Type for strings; a byte body with the header removed has none. */
async function refusedWithoutContentType(c: Case): Promise<void> {
  const answer = await unchanged(fx, async () => {
    const res = await fetch(`${fx.daemon.url}${lazy(c.path)}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fx.token}`, ...c.headers },
      body: c.raw,
    });
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() };
  });
  expectError(answer, c.status, c.code);
}

describe('body limit (bodyLimitBytes 1024)', () => {
  let small: RegistryFixture;
  const head = (length: number) =>
    `POST ${REGISTER} HTTP/1.1\nHost: registry\nAuthorization: Bearer ${small.token}\nContent-Type: application/json\nContent-Length: ${length}`;

  beforeAll(async () => {
    small = await startTestRegistry(redis, { bodyLimitBytes: 1024 });
    await small.client.registerInstance('pay', { path: '/pay' });
  });
  afterAll(() => small?.close());

  it('a 2 KB body → 413 payload_too_large naming the limit', async () => {
    const answer = await unchanged(small, () => send(small, { path: REGISTER, raw: bigRegistration(2048) }));
    expectError(answer, 413, 'payload_too_large');
    expect(answer.text).toContain('1024');
  });

  it('a chunked upload without Content-Length → 413 payload_too_large', async () => {
    const body = new TextEncoder().encode(bigRegistration(3000));
    let offset = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= body.length) return controller.close();
        controller.enqueue(body.subarray(offset, offset + 256));
        offset += 256;
      },
    });
    const answer = await unchanged(small, async () => {
      const res = await fetch(`${small.daemon.url}${REGISTER}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${small.token}`, 'content-type': 'application/json' },
        body: stream,
        duplex: 'half',
      } as RequestInit);
      return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() };
    });
    expectError(answer, 413, 'payload_too_large');
  });

  it('a Content-Length claiming 10 MB over a small body → 413 payload_too_large at once', async () => {
    const answer = await unchanged(small, () => sendRaw(small, head(10_000_000), '{"path":"/pay"}'));
    expectError(answer, 413, 'payload_too_large');
  });

  it('a Content-Length of 1025 with a short body that never completes → 413 at once', async () => {
    const answer = await unchanged(small, () => sendRaw(small, head(1025), '{"path":"/pay"}'));
    expectError(answer, 413, 'payload_too_large');
  });

  it('a Content-Length shorter than the body → 400 (from Node: the rest is no request), nothing registered', async () => {
    const answer = await unchanged(small, () => sendRaw(small, head(8), '{"path":"/pay"}'));
    expect(answer.status).toBe(400);
  });
});

describe('service names and instance ids in the URL', () => {
  // fetch resolves "..", ".", "%2E%2E" before sending: those go over a raw socket below.
  const badNames = ['Pay', '1pay', 'a'.repeat(64), 'pay%2Fx', 'pay%5Cx', 'pay%20x', '-pay', 'pay_x', 'p%C3%A4y', 'pay%00'];
  const routes: Array<[string, string, (name: string) => string, Lazy<unknown> | undefined]> = [
    ['GET', 'service info', (n) => `/v1/services/${n}`, undefined],
    ['POST', 'register', (n) => `/v1/services/${n}/instances`, VALID_REGISTRATION],
    ['POST', 'claim', (n) => `/v1/services/${n}/claim`, { machine: 'm9', port: 4009 }],
    ['DELETE', 'unregister by path', (n) => `/v1/services/${n}/instances?path=/pay`, undefined],
  ];
  const cases: Case[] = badNames.flatMap((name) =>
    routes.map(([method, what, path, body]) => ({
      name: `${what} of ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)}`,
      method,
      path: path(name),
      body,
      status: 400,
      code: 'invalid_request' as const,
    })),
  );
  const badIds: Case[] = ['ABCDEF', '-abc', 'a'.repeat(65), 'a%2Fb', 'a.b'].flatMap((id) => [
    { name: `GET instance ${id.slice(0, 10)}`, path: `/v1/services/pay/instances/${id}`, status: 400, code: 'invalid_request' as const },
    { name: `DELETE instance ${id.slice(0, 10)}`, method: 'DELETE', path: `/v1/services/pay/instances/${id}`, status: 400, code: 'invalid_request' as const },
    {
      name: `renew instance ${id.slice(0, 10)}`,
      path: `/v1/services/pay/instances/${id}/renew`,
      body: { machine: 'm1', epoch: 1 },
      status: 400,
      code: 'invalid_request' as const,
    },
  ]);

  it.each([...cases, ...badIds])('$name → 400 invalid_request', (c) => refused(c));

  it('malformed percent-encoding in a service name → 400 invalid_request', async () => {
    await refused({ name: '', path: '/v1/services/%E0%A4%A/instances', body: VALID_REGISTRATION, status: 400, code: 'invalid_request' });
    await refused({ name: '', path: '/v1/services/pay%/claim', body: { machine: 'm9', port: 4009 }, status: 400, code: 'invalid_request' });
  });

  it('literal ".." and "." segments (which fetch never sends) → 400 invalid_request or 404 not_found', async () => {
    const paths = ['/v1/services/../instances', '/v1/services/%2E%2E/instances', '/v1/services/./claim', '/v1/services/pay/../claim', '/v1/services/pay/instances/../running'];
    for (const path of paths) {
      const body = JSON.stringify(VALID_REGISTRATION);
      const answer = await unchanged(fx, () =>
        sendRaw(
          fx,
          `POST ${path} HTTP/1.1\nHost: registry\nAuthorization: Bearer ${fx.token}\nContent-Type: application/json\nContent-Length: ${body.length}\nConnection: close`,
          body,
        ),
      );
      const code = answer.status === 404 ? 'not_found' : 'invalid_request';
      expectError(answer, answer.status === 404 ? 404 : 400, code);
    }
  });
});

describe('register bodies', () => {
  const forty = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, i]));
  const bodies: Array<[string, unknown]> = [
    ['missing path', {}],
    ['path not a string', { path: 5 }],
    ['path null', { path: null }],
    ['path without a leading slash', { path: 'pay' }],
    ['path with ".."', { path: '/a/../b' }],
    ['path with "."', { path: '/a/./b' }],
    ['path "//x"', { path: '//x' }],
    ['path with a trailing slash', { path: '/pay/' }],
    ['path with %2F', { path: '/pay%2Fx' }],
    ['path with a space', { path: '/pay x' }],
    ['path with a control character', { path: '/pay\u0007' }],
    ['path with a NUL', { path: '/pay\u0000x' }],
    ['path with a backslash', { path: '/pay\\x' }],
    ['path with a query', { path: '/pay?x=1' }],
    ['a 300-character path', { path: `/${'a'.repeat(299)}` }],
    ['an unknown field', { path: '/pay', owner: 'me' }],
    ['a release field (not the client’s to set)', { path: '/pay', release: 3 }],
    ['an id field (not the client’s to set)', { path: '/pay', id: 'mine' }],
    ['attributes with a nested object', { path: '/pay', attributes: { a: { b: 1 } } }],
    ['attributes with an array value', { path: '/pay', attributes: { a: [1] } }],
    ['attributes with a null value', { path: '/pay', attributes: { a: null } }],
    ['attributes as an array', { path: '/pay', attributes: ['a'] }],
    ['attributes with 40 keys', { path: '/pay', attributes: forty }],
    ['an attribute key starting with a digit', { path: '/pay', attributes: { '1bad': 'x' } }],
    ['an attribute key with a space', { path: '/pay', attributes: { 'bad key': 'x' } }],
    ['a 1000-character attribute value', { path: '/pay', attributes: { a: 'x'.repeat(1000) } }],
    ['files not hex', { path: '/pay', files: 'not-a-digest' }],
    ['files in uppercase hex', { path: '/pay', files: 'A'.repeat(64) }],
    ['files one character short', { path: '/pay', files: 'a'.repeat(63) }],
    ['files null', { path: '/pay', files: null }],
  ];
  const cases: Case[] = bodies.map(([name, body]) => ({ name, path: REGISTER, body, status: 400, code: 'invalid_request' }));
  cases.push(
    { name: 'the reserved /_berth', path: REGISTER, body: { path: '/_berth' }, status: 400, code: 'reserved_path' },
    { name: 'under the reserved /_berth', path: REGISTER, body: { path: '/_berth/x' }, status: 400, code: 'reserved_path' },
    { name: 'an attribute named __proto__', path: REGISTER, raw: '{"path":"/pay","attributes":{"__proto__":{"x":1}}}', status: 400, code: 'invalid_request' },
    { name: 'a number too large for a double', path: REGISTER, raw: '{"path":"/pay","attributes":{"a":1e400}}', status: 400, code: 'invalid_request' },
    { name: 'a valid body with an unknown query parameter', path: `${REGISTER}?dryRun=1`, body: VALID_REGISTRATION, status: 400, code: 'invalid_request' },
  );

  it.each(cases)('$name → 400 invalid_request', (c) => refused(c));
});

describe('claims', () => {
  const base = { machine: 'm9', port: 4009 };
  const bodies: Array<[string, unknown]> = [
    ['port 0', { ...base, port: 0 }],
    ['port 65536', { ...base, port: 65536 }],
    ['port "80" (a string)', { ...base, port: '80' }],
    ['port 1.5', { ...base, port: 1.5 }],
    ['port -1', { ...base, port: -1 }],
    ['missing port', { machine: 'm9' }],
    ['missing machine', { port: 4009 }],
    ['a machine with a space', { ...base, machine: 'm 9' }],
    ['a 64-character machine', { ...base, machine: 'm'.repeat(64) }],
    ['an empty machine', { ...base, machine: '' }],
    ['a bad host', { ...base, host: 'a b' }],
    ['leaseMs 10', { ...base, leaseMs: 10 }],
    ['leaseMs over 10 minutes', { ...base, leaseMs: 600_001 }],
    ['leaseMs 1500.5', { ...base, leaseMs: 1500.5 }],
    ['an unknown field', { ...base, priority: 1 }],
    ['an epoch (not the client’s to set)', { ...base, epoch: 99 }],
    ['requestId too short', { ...base, requestId: 'short' }],
    ['requestId with a space', { ...base, requestId: 'request id 1' }],
    ['a path without a leading slash', { ...base, path: 'pay' }],
    ['attributes with a nested object', { ...base, attributes: { a: { b: 1 } } }],
  ];
  const cases: Case[] = bodies.map(([name, body]) => ({ name, path: '/v1/services/pay/claim', body, status: 400, code: 'invalid_request' }));
  cases.push(
    { name: 'an empty body', path: '/v1/services/pay/claim', method: 'POST', status: 400, code: 'invalid_request' },
    { name: 'an unknown service', path: '/v1/services/ghost/claim', body: base, status: 404, code: 'service_not_found' },
    { name: 'a service with nothing unclaimed', path: '/v1/services/mail/claim', body: base, status: 409, code: 'nothing_to_claim' },
    {
      name: 'a path no unclaimed instance has',
      path: '/v1/services/pay/claim',
      body: { ...base, path: '/elsewhere' },
      status: 409,
      code: 'nothing_to_claim',
    },
  );

  it.each(cases)('$name → $status $code', (c) => refused(c));
});

describe('holder calls: running, renew, release', () => {
  const holderBody: Record<string, (s: Seed, epoch: unknown, machine?: string) => unknown> = {
    running: (_s, epoch, machine = 'm1') => ({ machine, epoch, pid: 1234 }),
    renew: (_s, epoch, machine = 'm1') => ({ machine, epoch }),
    release: (_s, epoch, machine = 'm1') => ({ machine, epoch, reason: 'test' }),
  };
  const cases: Case[] = Object.entries(holderBody).flatMap(([call, body]) => {
    const on = (id: (s: Seed) => string, service = 'pay') => (s: Seed) => `/v1/services/${service}/instances/${id(s)}/${call}`;
    const held = on((s) => s.held);
    return [
      { name: `${call}: a wrong (newer) epoch`, path: held, body: (s: Seed) => body(s, s.epoch + 1000), status: 409, code: 'stale_epoch' },
      { name: `${call}: an older epoch`, path: held, body: (s: Seed) => body(s, s.oldEpoch), status: 409, code: 'stale_epoch' },
      { name: `${call}: the right epoch from another machine`, path: held, body: (s: Seed) => body(s, s.epoch, 'm2'), status: 409, code: 'stale_epoch' },
      { name: `${call}: an unclaimed instance`, path: on((s) => s.free), body: (s: Seed) => body(s, s.epoch), status: 409, code: 'stale_epoch' },
      { name: `${call}: epoch 0`, path: held, body: (s: Seed) => body(s, 0), status: 400, code: 'invalid_request' },
      { name: `${call}: a negative epoch`, path: held, body: (s: Seed) => body(s, -1), status: 400, code: 'invalid_request' },
      { name: `${call}: a fractional epoch`, path: held, body: (s: Seed) => body(s, s.epoch + 0.5), status: 400, code: 'invalid_request' },
      { name: `${call}: the epoch as a string`, path: held, body: (s: Seed) => body(s, String(s.epoch)), status: 400, code: 'invalid_request' },
      { name: `${call}: an epoch beyond 2^53`, path: held, body: (s: Seed) => body(s, 2 ** 60), status: 400, code: 'invalid_request' },
      { name: `${call}: no epoch`, path: held, body: (s: Seed) => ({ ...(body(s, 1) as object), epoch: undefined }), status: 400, code: 'invalid_request' },
      { name: `${call}: an unknown field`, path: held, body: (s: Seed) => ({ ...(body(s, s.epoch) as object), force: true }), status: 400, code: 'invalid_request' },
      { name: `${call}: an unknown instance id`, path: on(() => ID_NOBODY), body: (s: Seed) => body(s, s.epoch), status: 404, code: 'instance_not_found' },
      {
        name: `${call}: the holder's own claim under another service's URL`,
        path: on((s) => s.held, 'mail'),
        body: (s: Seed) => body(s, s.epoch),
        status: 404,
        code: 'instance_not_found',
      },
      {
        name: `${call}: the holder's own claim under an unknown service's URL`,
        path: on((s) => s.held, 'ghost'),
        body: (s: Seed) => body(s, s.epoch),
        status: 404,
        code: 'instance_not_found',
      },
    ] satisfies Case[];
  });
  cases.push(
    { name: 'running: pid 0', path: (s: Seed) => `/v1/services/pay/instances/${s.held}/running`, body: (s: Seed) => ({ machine: 'm1', epoch: s.epoch, pid: 0 }), status: 400, code: 'invalid_request' },
    { name: 'running: restarts -1', path: (s: Seed) => `/v1/services/pay/instances/${s.held}/running`, body: (s: Seed) => ({ machine: 'm1', epoch: s.epoch, pid: 7, restarts: -1 }), status: 400, code: 'invalid_request' },
    { name: 'renew: leaseMs 10', path: (s: Seed) => `/v1/services/pay/instances/${s.held}/renew`, body: (s: Seed) => ({ machine: 'm1', epoch: s.epoch, leaseMs: 10 }), status: 400, code: 'invalid_request' },
    {
      name: 'release: a reason that is not snake_case',
      path: (s: Seed) => `/v1/services/pay/instances/${s.held}/release`,
      body: (s: Seed) => ({ machine: 'm1', epoch: s.epoch, reason: 'Crash Loop!' }),
      status: 400,
      code: 'invalid_request',
    },
    { name: 'release: no reason', path: (s: Seed) => `/v1/services/pay/instances/${s.held}/release`, body: (s: Seed) => ({ machine: 'm1', epoch: s.epoch }), status: 400, code: 'invalid_request' },
  );

  it.each(cases)('$name → $status $code', (c) => refused(c));
});

describe('reads, unregistering and routes', () => {
  const cases: Case[] = [
    { name: 'DELETE an unknown instance id', method: 'DELETE', path: `/v1/services/pay/instances/${ID_NOBODY}`, status: 404, code: 'instance_not_found' },
    { name: 'DELETE an instance under another service', method: 'DELETE', path: (s) => `/v1/services/mail/instances/${s.free}`, status: 404, code: 'instance_not_found' },
    { name: 'DELETE an instance of an unknown service', method: 'DELETE', path: (s) => `/v1/services/ghost/instances/${s.free}`, status: 404, code: 'instance_not_found' },
    { name: 'DELETE an instance with a query parameter', method: 'DELETE', path: (s) => `/v1/services/pay/instances/${s.free}?force=1`, status: 400, code: 'invalid_request' },
    { name: 'GET /v1/services/ghost', path: '/v1/services/ghost', status: 404, code: 'service_not_found' },
    { name: 'GET an unknown instance id', path: `/v1/services/pay/instances/${ID_NOBODY}`, status: 404, code: 'instance_not_found' },
    { name: 'GET an instance under another service', path: (s) => `/v1/services/mail/instances/${s.free}`, status: 404, code: 'instance_not_found' },
    { name: 'DELETE by path without the path query', method: 'DELETE', path: '/v1/services/pay/instances', status: 400, code: 'invalid_request' },
    { name: 'DELETE by path with an empty path', method: 'DELETE', path: '/v1/services/pay/instances?path=', status: 400, code: 'invalid_request' },
    { name: 'DELETE by path twice over', method: 'DELETE', path: '/v1/services/pay/instances?path=/pay&path=/pay', status: 400, code: 'invalid_request' },
    { name: 'DELETE by path with a bad port', method: 'DELETE', path: '/v1/services/pay/instances?path=/pay&port=abc', status: 400, code: 'invalid_request' },
    { name: 'DELETE by path with port 70000', method: 'DELETE', path: '/v1/services/pay/instances?path=/pay&port=70000', status: 400, code: 'invalid_request' },
    { name: 'DELETE by path with a bad host', method: 'DELETE', path: '/v1/services/pay/instances?path=/pay&host=a%20b', status: 400, code: 'invalid_request' },
    { name: 'DELETE by path with an unknown parameter', method: 'DELETE', path: '/v1/services/pay/instances?path=/pay&all=1', status: 400, code: 'invalid_request' },
    { name: 'DELETE by path matching nothing', method: 'DELETE', path: '/v1/services/pay/instances?path=/nope', status: 404, code: 'instance_not_found' },
    { name: 'DELETE by path of an unknown service', method: 'DELETE', path: '/v1/services/ghost/instances?path=/pay', status: 404, code: 'service_not_found' },
    { name: 'GET /v1/services with an unknown query parameter', path: '/v1/services?limit=5', status: 400, code: 'invalid_request' },
    { name: 'GET /v1/services/pay with an unknown query parameter', path: '/v1/services/pay?x=1', status: 400, code: 'invalid_request' },
    { name: 'GET /v1/unclaimed with an unknown query parameter', path: '/v1/unclaimed?service=pay', status: 400, code: 'invalid_request' },
    { name: 'GET /v1/machines with an unknown query parameter', path: '/v1/machines?x', status: 400, code: 'invalid_request' },
    { name: 'GET /v1/events from a bad id', path: '/v1/events?from=yesterday', status: 400, code: 'invalid_request' },
    { name: 'GET /v1/events with a bad Last-Event-ID', path: '/v1/events', headers: { 'last-event-id': 'nope' }, status: 400, code: 'invalid_request' },
    { name: 'GET /v1/events with an unknown query parameter', path: '/v1/events?since=0', status: 400, code: 'invalid_request' },
    { name: 'an unknown /v1 route', path: '/v1/nope', status: 404, code: 'not_found' },
    { name: 'an unknown top-level route', path: '/nope', status: 404, code: 'not_found' },
    { name: 'an unknown deeper route', path: '/v1/services/pay/instances/abc/restart', body: {}, status: 404, code: 'not_found' },
    { name: 'a path under /healthz', path: '/healthz/x', status: 404, code: 'not_found' },
  ];

  it.each(cases)('$name → $status $code', (c) => refused(c));

  it.each([
    ['PUT', '/v1/services/pay'],
    ['PATCH', (s: Seed) => `/v1/services/pay/instances/${s.free}`],
    ['DELETE', '/v1/services'],
    ['POST', '/v1/unclaimed'],
  ] as const)('a method no route takes: %s → 404 not_found', (method, path) =>
    refused({ name: '', method, path, status: 404, code: 'not_found' }),
  );
});

describe('oversized headers', () => {
  it('a 20 KB header → 431 from Node, and the daemon still answers /healthz', async () => {
    const answer = await unchanged(fx, () => send(fx, { path: REGISTER, body: VALID_REGISTRATION, headers: { 'x-padding': 'a'.repeat(20_000) } }));
    expect(answer.status).toBe(431);
    const health = await send(fx, { path: '/healthz', auth: null });
    expect(health.status).toBe(200);
  });

  it('a 20 KB URL → 431 (or 414) from Node, and the daemon still answers /healthz', async () => {
    const answer = await unchanged(fx, () => send(fx, { path: `/v1/services/pay?${'q'.repeat(20_000)}=1` }));
    expect([414, 431]).toContain(answer.status);
    expect((await send(fx, { path: '/healthz', auth: null })).status).toBe(200);
  });
});
