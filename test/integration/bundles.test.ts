// Bundles are stored once by sha256 digest and come back byte-identical; a wrong digest, an oversized, mistyped or aborted upload leaves Redis exactly as it was.
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../common/errors.js';
import { BundleStore } from '../../registry/store/bundle-store.js';
import { BerthApiError } from '../../sdk/api-error.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { snapshot, startTestRegistry, testPrefix, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const MiB = 1024 * 1024;
const SMALL_LIMIT = 64 * 1024;

let redis: TestRedis;
let inspect: Redis;
let fx: RegistryFixture;
/** A registry whose bundle limit is 64 KiB. */
let small: RegistryFixture;
/** A bundle stored before each "nothing changed" check, so that an unchanged snapshot means something. */
let seed: Buffer;

beforeAll(async () => {
  redis = await startRedis();
  inspect = redis.client();
  fx = await startTestRegistry(redis);
  small = await startTestRegistry(redis, { bundleLimitBytes: SMALL_LIMIT });
  seed = randomBytes(1000);
  await fx.client.uploadBundle(sha256(seed), seed);
  await small.client.uploadBundle(sha256(seed), seed);
});

afterAll(async () => {
  await small?.close();
  await fx?.close();
  await redis?.stop();
});

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** A PUT of `body` as a bundle, with the fixture's token and `application/gzip` unless `headers` say otherwise. */
async function put(f: RegistryFixture, digest: string, body: Uint8Array | ReadableStream<Uint8Array>, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${f.daemon.url}/v1/bundles/${digest}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${f.token}`, 'content-type': 'application/gzip', ...headers },
    body,
    ...(body instanceof Uint8Array ? {} : { duplex: 'half' }),
  } as RequestInit);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function expectError(answer: { status: number; text: string }, status: number, code: ErrorCode): void {
  const context = `${answer.status} ${answer.text}`;
  expect(answer.status, context).toBe(status);
  const json = JSON.parse(answer.text) as { error: { code: string; message: string } };
  expect(json.error.code, context).toBe(code);
  expect(json.error.message.length).toBeGreaterThan(0);
}

/** Runs `request` and fails if any key under the fixture's prefix changed (none added, none removed). */
async function unchanged<T>(f: RegistryFixture, request: () => Promise<T>): Promise<T> {
  const before = await snapshot(inspect, f.prefix);
  expect(before.size).toBeGreaterThan(0);
  const out = await request();
  expect(await snapshot(inspect, f.prefix)).toEqual(before);
  return out;
}

/** A stream of `bytes` in pieces of `pieceBytes`, sent without a Content-Length. */
function streamOf(bytes: Uint8Array, pieceBytes: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(offset, offset + pieceBytes));
      offset += pieceBytes;
    },
  });
}

/** A request written byte for byte on a socket, for headers fetch would not send; resolves with what came back. */
function sendRaw(f: RegistryFixture, head: string, body: Buffer, timeoutMs = 5000): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(f.daemon.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close within ${timeoutMs} ms, got ${JSON.stringify(data.toString('latin1'))}`));
    }, timeoutMs);
    socket.on('data', (d: Buffer) => (data = Buffer.concat([data, d])));
    socket.on('error', () => undefined); // the server may close while we still write: the answer decides
    socket.on('close', () => {
      clearTimeout(timer);
      const text = data.toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
    socket.write(Buffer.concat([Buffer.from(`${head.replace(/\n/g, '\r\n')}\r\n\r\n`, 'latin1'), body]));
  });
}

describe('storing and fetching bundles', () => {
  it('stores a bundle once: 201 the first time, 200 after, nothing duplicated', async () => {
    const bytes = randomBytes(5000);
    const digest = sha256(bytes);
    const first = await put(fx, digest, bytes);
    expect(first.status).toBe(201);
    expect(JSON.parse(first.text)).toEqual({ digest, size: 5000 });
    expect(first.headers.get('location')).toBe(`/v1/bundles/${digest}`);

    const again = await unchanged(fx, () => put(fx, digest, bytes));
    expect(again.status).toBe(200);
    expect(JSON.parse(again.text)).toEqual({ digest, size: 5000 });
    expect(await inspect.keys(`{${fx.prefix}}:upload:*`)).toEqual([]);

    expect(await fx.client.uploadBundle(digest, bytes)).toEqual({ digest, size: 5000, created: false });
    expect((await fx.daemon.bundles.list()).filter((b) => b.digest === digest)).toHaveLength(1);
  });

  it('gives back a 3.5 MiB bundle byte-identical, stored in 1 MiB chunks', async () => {
    const bytes = randomBytes(3.5 * MiB);
    const digest = sha256(bytes);
    expect(await fx.client.hasBundle(digest)).toBe(false);
    expect(await fx.client.uploadBundle(digest, bytes)).toEqual({ digest, size: bytes.length, created: true });
    expect(await fx.client.hasBundle(digest)).toBe(true);

    const info = await fx.daemon.bundles.info(digest);
    expect(info).toMatchObject({ digest, size: bytes.length, chunks: 4 });
    expect(await inspect.hlen(`{${fx.prefix}}:bundle:${digest}:data`)).toBe(4);
    expect(await inspect.ttl(`{${fx.prefix}}:bundle:${digest}:data`)).toBe(-1);

    const res = await fetch(`${fx.daemon.url}/v1/bundles/${digest}`, { headers: { authorization: `Bearer ${fx.token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/gzip');
    expect(res.headers.get('content-length')).toBe(String(bytes.length));
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);

    const downloaded = await fx.client.downloadBundle(digest);
    expect(sha256(downloaded)).toBe(digest);
  });

  it('stores an upload streamed in odd pieces without a Content-Length (SDK, ReadableStream)', async () => {
    const bytes = randomBytes(2 * MiB + 12_345);
    const digest = sha256(bytes);
    expect(await fx.client.uploadBundle(digest, streamOf(bytes, 100_003))).toEqual({ digest, size: bytes.length, created: true });
    expect(Buffer.from(await fx.client.downloadBundle(digest)).equals(bytes)).toBe(true);
  });

  it('answers HEAD with 200 and the size, or 404 without a body', async () => {
    const head = await fetch(`${fx.daemon.url}/v1/bundles/${sha256(seed)}`, { method: 'HEAD', headers: { authorization: `Bearer ${fx.token}` } });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('1000');

    const missing = await fetch(`${fx.daemon.url}/v1/bundles/${'0'.repeat(64)}`, { method: 'HEAD', headers: { authorization: `Bearer ${fx.token}` } });
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe('');
    expect(await fx.client.hasBundle('0'.repeat(64))).toBe(false);
  });

  it('answers GET of an unknown digest with 404 bundle_not_found', async () => {
    const res = await fetch(`${fx.daemon.url}/v1/bundles/${'0'.repeat(64)}`, { headers: { authorization: `Bearer ${fx.token}` } });
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expectError({ status: res.status, text: await res.text() }, 404, 'bundle_not_found');
    await expect(fx.client.downloadBundle('0'.repeat(64))).rejects.toMatchObject({ code: 'bundle_not_found', status: 404 });
  });
});

describe('uploads that are refused change nothing in Redis', () => {
  it('a body whose digest is not the URL’s → 422 digest_mismatch', async () => {
    const bytes = randomBytes(4000);
    const answer = await unchanged(fx, () => put(fx, sha256(Buffer.from('something else')), bytes));
    expectError(answer, 422, 'digest_mismatch');
    expect(answer.text).toContain(sha256(bytes));
  });

  it('a 2.5 MiB body with the wrong digest → 422, its chunks already written are dropped', async () => {
    const bytes = randomBytes(2.5 * MiB);
    const answer = await unchanged(fx, () => put(fx, 'f'.repeat(64), bytes));
    expectError(answer, 422, 'digest_mismatch');
  });

  it('an empty body → 400 invalid_request', async () => {
    const empty = new Uint8Array(0);
    expectError(await unchanged(fx, () => put(fx, sha256(empty), empty)), 400, 'invalid_request');
  });

  it('an honest Content-Length over the limit → 413 bundle_too_large at once, connection closed', async () => {
    const bytes = randomBytes(SMALL_LIMIT + 1);
    const answer = await unchanged(small, () => put(small, sha256(bytes), bytes));
    expectError(answer, 413, 'bundle_too_large');
    expect(answer.text).toContain(String(SMALL_LIMIT));
    expect(answer.headers.get('connection')).toBe('close');
  });

  it('a Content-Length announcing 1 GB over a short body → 413 at once, without waiting for the body', async () => {
    const head = [`PUT /v1/bundles/${'a'.repeat(64)} HTTP/1.1`, 'Host: x', `Authorization: Bearer ${small.token}`, 'Content-Type: application/gzip', 'Content-Length: 1000000000'].join('\n');
    const answer = await unchanged(small, () => sendRaw(small, head, randomBytes(100)));
    expect(answer.status).toBe(413);
    expect(answer.text).toContain('"bundle_too_large"');
  });

  it('a chunked upload without Content-Length that streams past the limit → 413 bundle_too_large', async () => {
    const bytes = randomBytes(4 * SMALL_LIMIT);
    const answer = await unchanged(small, () => put(small, sha256(bytes), streamOf(bytes, 4096)));
    expectError(answer, 413, 'bundle_too_large');
  });

  it('the SDK reports an upload over the limit as bundle_too_large', async () => {
    const bytes = randomBytes(SMALL_LIMIT + 10);
    const err = await unchanged(small, () => small.client.uploadBundle(sha256(bytes), bytes).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(BerthApiError);
    expect(err).toMatchObject({ code: 'bundle_too_large', status: 413 });
  });

  it('a body of exactly the limit is accepted', async () => {
    const bytes = randomBytes(SMALL_LIMIT);
    expect((await put(small, sha256(bytes), bytes)).status).toBe(201);
    expect(await small.daemon.bundles.delete(sha256(bytes))).toBe(true);
  });

  it('a lying Content-Length under the limit cannot sneak more in: Node answers 400 for the bytes past it', async () => {
    // Node reads exactly the announced 1000 bytes as the body (whose digest then fails), and
    // parses what follows in the same read as the next request: not HTTP, so its parser
    // answers a bare 400 and closes before the upload's own answer is ready.
    const bytes = randomBytes(4 * SMALL_LIMIT);
    const head = [`PUT /v1/bundles/${sha256(bytes)} HTTP/1.1`, 'Host: x', `Authorization: Bearer ${small.token}`, 'Content-Type: application/gzip', 'Content-Length: 1000'].join('\n');
    const answer = await unchanged(small, () => sendRaw(small, head, bytes));
    expect(answer.status).toBe(400);
    expect(await inspect.keys(`{${small.prefix}}:upload:*`)).toEqual([]);
  });

  it('a lying Content-Length whose announced bytes alone arrive → 422 digest_mismatch for those bytes', async () => {
    const bytes = randomBytes(4 * SMALL_LIMIT);
    const head = [`PUT /v1/bundles/${sha256(bytes)} HTTP/1.1`, 'Host: x', `Authorization: Bearer ${small.token}`, 'Content-Type: application/gzip', 'Content-Length: 1000', 'Connection: close'].join('\n');
    const answer = await unchanged(small, () => sendRaw(small, head, bytes.subarray(0, 1000)));
    expect(answer.status).toBe(422);
    expect(answer.text).toContain(sha256(bytes.subarray(0, 1000)));
  });

  it.each([
    ['application/json', { 'content-type': 'application/json' }],
    ['text/plain', { 'content-type': 'text/plain' }],
    ['a gzip Content-Encoding', { 'content-encoding': 'gzip' }],
  ])('a body sent as %s → 415 unsupported_media_type', async (_name, headers) => {
    const bytes = randomBytes(100);
    expectError(await unchanged(fx, () => put(fx, sha256(bytes), bytes, headers)), 415, 'unsupported_media_type');
  });

  it('a body without Content-Type → 415 unsupported_media_type', async () => {
    const bytes = randomBytes(100);
    const answer = await unchanged(fx, async () => {
      const res = await fetch(`${fx.daemon.url}/v1/bundles/${sha256(bytes)}`, { method: 'PUT', headers: { authorization: `Bearer ${fx.token}` }, body: bytes });
      return { status: res.status, text: await res.text() };
    });
    expectError(answer, 415, 'unsupported_media_type');
  });

  it.each(['abc', 'A'.repeat(64), 'a'.repeat(65), 'g'.repeat(64), `${'a'.repeat(63)}%20`])('a digest %j in the URL → 400 invalid_request', async (digest) => {
    const bytes = randomBytes(100);
    expectError(await unchanged(fx, () => put(fx, digest, bytes)), 400, 'invalid_request');
    const get = await fetch(`${fx.daemon.url}/v1/bundles/${digest}`, { headers: { authorization: `Bearer ${fx.token}` } });
    expectError({ status: get.status, text: await get.text() }, 400, 'invalid_request');
    const head = await fetch(`${fx.daemon.url}/v1/bundles/${digest}`, { method: 'HEAD', headers: { authorization: `Bearer ${fx.token}` } });
    expect(head.status).toBe(400);
  });

  it('an upload without the token → 401 unauthorized', async () => {
    const bytes = randomBytes(100);
    expectError(await unchanged(fx, () => put(fx, sha256(bytes), bytes, { authorization: 'Bearer wrong' })), 401, 'unauthorized');
  });

  it('a client that aborts mid-upload leaves no upload key behind', async () => {
    const before = await snapshot(inspect, fx.prefix);
    const req = httpRequest(`${fx.daemon.url}/v1/bundles/${'b'.repeat(64)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${fx.token}`, 'content-type': 'application/gzip' },
    });
    req.on('error', () => undefined); // we destroy it ourselves
    req.write(randomBytes(MiB));
    req.write(randomBytes(MiB));
    // Two chunks written proves the upload key exists and would otherwise live for an hour.
    const uploads = await waitFor(async () => {
      const keys = await inspect.keys(`{${fx.prefix}}:upload:*`);
      return keys.length === 1 && (await inspect.hlen(keys[0]!)) >= 1 ? keys : undefined;
    }, { what: 'the upload key' });
    expect(await inspect.ttl(uploads[0]!)).toBeGreaterThan(0);
    req.destroy();
    await waitFor(async () => isDeepStrictEqual(await snapshot(inspect, fx.prefix), before), { what: 'the upload key to be deleted' });
  });
});

describe('BundleStore', () => {
  let store: BundleStore;
  let prefix: string;
  let client: Redis;

  beforeAll(() => {
    prefix = testPrefix();
    client = redis.client();
    store = new BundleStore(client, { keyPrefix: prefix, chunkBytes: 1000, limitBytes: 100_000 });
  });

  async function* pieces(bytes: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
    let offset = 0;
    for (let i = 0; offset < bytes.length; i++) {
      const n = sizes[i % sizes.length]!;
      yield bytes.subarray(offset, offset + n);
      offset += n;
    }
  }

  it('stores pieces of any size as fixed chunks and reads them back', async () => {
    const bytes = randomBytes(10_500);
    const digest = sha256(bytes);
    expect(await store.put(digest, pieces(bytes, [1, 999, 1000, 1001, 2500, 0, 7]))).toEqual({ created: true, size: 10_500 });
    expect(await store.info(digest)).toMatchObject({ digest, size: 10_500, chunks: 11 });
    const read: Buffer[] = [];
    for await (const chunk of store.read(digest)) read.push(chunk);
    expect(read.map((c) => c.length)).toEqual([...Array(10).fill(1000), 500]);
    expect(Buffer.concat(read).equals(bytes)).toBe(true);
    expect(await store.has(digest)).toBe(true);
    expect((await store.list()).map((b) => b.digest)).toContain(digest);
  });

  it('lets one of two concurrent uploads of the same bundle store it; the other is a no-op', async () => {
    const bytes = randomBytes(5000);
    const digest = sha256(bytes);
    const results = await Promise.all([store.put(digest, pieces(bytes, [700])), store.put(digest, pieces(bytes, [1300]))]);
    expect(results.map((r) => r.created).sort()).toEqual([false, true]);
    expect(await client.keys(`{${prefix}}:upload:*`)).toEqual([]);
  });

  it('drops the upload when the body fails mid-way', async () => {
    const before = await snapshot(client, prefix);
    async function* failing(): AsyncGenerator<Buffer> {
      yield randomBytes(3000);
      throw new Error('the client went away');
    }
    await expect(store.put('c'.repeat(64), failing())).rejects.toThrow('the client went away');
    expect(await snapshot(client, prefix)).toEqual(before);
  });

  it('stops reading at the limit given to put', async () => {
    let pulled = 0;
    async function* endless(): AsyncGenerator<Buffer> {
      for (;;) {
        pulled++;
        yield Buffer.alloc(1000);
      }
    }
    await expect(store.put('d'.repeat(64), endless(), { limitBytes: 5500 })).rejects.toMatchObject({ code: 'bundle_too_large' });
    expect(pulled).toBe(6);
    expect(await client.keys(`{${prefix}}:upload:*`)).toEqual([]);
  });

  it('delete removes the facts, the data and the index entry', async () => {
    const bytes = randomBytes(2500);
    const digest = sha256(bytes);
    await store.put(digest, pieces(bytes, [2500]));
    expect(await client.exists(`{${prefix}}:bundle:${digest}`, `{${prefix}}:bundle:${digest}:data`)).toBe(2);
    expect(await store.delete(digest)).toBe(true);
    expect(await client.exists(`{${prefix}}:bundle:${digest}`, `{${prefix}}:bundle:${digest}:data`)).toBe(0);
    expect(await client.zscore(`{${prefix}}:bundles`, digest)).toBeNull();
    expect(await store.has(digest)).toBe(false);
    expect(await store.info(digest)).toBeUndefined();
    expect(await store.delete(digest)).toBe(false);
    await expect(store.read(digest).next()).rejects.toMatchObject({ code: 'bundle_not_found' });
  });
});
