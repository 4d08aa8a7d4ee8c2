// Every bad input to the app endpoints (/v1/apps…) gets a clear 4xx {"error":{"code","message"}} from the catalogue and changes nothing in Redis, its event stream included.
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, type ErrorCode } from '../../common/errors.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { snapshot, startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

type Lazy<T> = T | (() => T);

interface Case {
  name: string;
  method?: string;
  path: string;
  /** Sent as JSON with Content-Type application/json; a function is called once the seed exists. */
  body?: Lazy<unknown>;
  /** Sent verbatim as application/json (unless `headers` says otherwise). */
  raw?: Lazy<string>;
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

const MAX_INSTANCES = 10;
/** A well-formed digest of a bundle nobody uploaded. */
const UNKNOWN_DIGEST = 'ab'.repeat(32);
const KIB = 1024;
/** shop's environment: 150 variables and one of 30 KiB, so that a config change can push it over the limits. */
const SEED_ENV: Record<string, string> = {
  ...Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`K${i}`, 'v'])),
  BIG: 'x'.repeat(30 * KIB),
};

let redis: TestRedis;
let inspect: Redis;
let fx: RegistryFixture;
/** The uploaded bundle that shop's v1 runs. */
let digest: string;

function lazy<T>(v: Lazy<T>): T {
  return typeof v === 'function' ? (v as () => T)() : v;
}

async function send(c: Omit<Case, 'name' | 'status' | 'code'>): Promise<Answer> {
  const headers: Record<string, string> = {};
  const auth = c.auth === undefined ? `Bearer ${fx.token}` : c.auth;
  if (auth !== null) headers.authorization = auth;
  let body: string | undefined;
  if (c.raw !== undefined) body = lazy(c.raw);
  else if (c.body !== undefined) body = JSON.stringify(lazy(c.body));
  if (body !== undefined) headers['content-type'] = 'application/json';
  Object.assign(headers, c.headers);
  const method = c.method ?? (body === undefined ? 'GET' : 'POST');
  const res = await fetch(`${fx.daemon.url}${c.path}`, { method, headers, body });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() };
}

const STACK = /\n\s+at |\(\S+:\d+:\d+\)|\.(?:ts|js|mjs|cjs):\d+|node_modules|[/\\](?:work|home|tmp|usr)[/\\]/;

/** The one error shape: exactly {"error":{"code","message"}}, code and status from the catalogue, no stack. */
function expectError(answer: Answer, status: number, code: ErrorCode): void {
  const context = `${answer.status} ${answer.text.slice(0, 500)}`;
  expect(ERROR_CATALOGUE[code].status, `the catalogue's status for ${code}`).toBe(status);
  expect(answer.status, context).toBe(status);
  expect(answer.contentType, context).toMatch(/^application\/json\b/);
  const json = JSON.parse(answer.text) as { error: { code: unknown; message: unknown } };
  expect(Object.keys(json), context).toEqual(['error']);
  expect(Object.keys(json.error).sort(), context).toEqual(['code', 'message']);
  expect(json.error.code, context).toBe(code);
  expect(typeof json.error.message, context).toBe('string');
  expect((json.error.message as string).trim().length, context).toBeGreaterThan(0);
  expect(answer.text, context).not.toMatch(STACK);
}

/** Sends the case and fails unless it is refused as expected with every key under the prefix (events too) unchanged. */
async function refused(c: Case): Promise<Answer> {
  const before = await snapshot(inspect, fx.prefix);
  expect(before.size).toBeGreaterThan(0);
  const answer = await send(c);
  expectError(answer, c.status, c.code);
  expect(await snapshot(inspect, fx.prefix)).toEqual(before);
  return answer;
}

/** A publish body that would create app "other" but for what `change` does to it. */
const publish =
  (change: Record<string, unknown> = {}, omit?: string) =>
  () => {
    const body: Record<string, unknown> = { name: 'other', path: '/other', instances: 0, bundle: digest, ...change };
    if (omit !== undefined) delete body[omit];
    return body;
  };

const invalid = (name: string, path: string, method: string, body?: Lazy<unknown>, extra: Partial<Case> = {}): Case => ({
  name,
  method,
  path,
  body,
  status: 400,
  code: 'invalid_request',
  ...extra,
});

beforeAll(async () => {
  redis = await startRedis();
  inspect = redis.client();
  fx = await startTestRegistry(redis, { reconcileIntervalMs: 50, maxInstances: MAX_INSTANCES });
  const bytes = randomBytes(4096);
  digest = createHash('sha256').update(bytes).digest('hex');
  await fx.client.uploadBundle(digest, bytes);
  await fx.client.publishApp({ name: 'shop', path: '/shop', instances: 0, bundle: digest, env: SEED_ENV });
  // The reconciler marks v1 active asynchronously: until it has, Redis changes on its own.
  await waitFor(async () => (await fx.client.getApp('shop')).current?.status === 'active', { what: 'shop v1 active' });
});

afterAll(async () => {
  await fx?.close();
  await redis?.stop();
});

describe('POST /v1/apps (publish)', () => {
  const bad: Array<[string, () => unknown]> = [
    ['missing name', publish({}, 'name')],
    ['missing path', publish({}, 'path')],
    ['missing instances', publish({}, 'instances')],
    ['missing bundle', publish({}, 'bundle')],
    ['an empty object', () => ({})],
    ['name in uppercase', publish({ name: 'Other' })],
    ['name with a leading digit', publish({ name: '1other' })],
    ['name of 64 characters', publish({ name: `o${'x'.repeat(63)}` })],
    ['name empty', publish({ name: '' })],
    ['name with "_"', publish({ name: 'other_app' })],
    ['name starting with "-"', publish({ name: '-other' })],
    ['name not a string', publish({ name: 5 })],
    ['path without a leading slash', publish({ path: 'other' })],
    ['path with a trailing slash', publish({ path: '/other/' })],
    ['path with ".."', publish({ path: '/a/../other' })],
    ['path ".." alone', publish({ path: '/..' })],
    ['path "//x"', publish({ path: '//other' })],
    ['path with %2F', publish({ path: '/other%2Fx' })],
    ['path with a space', publish({ path: '/other x' })],
    ['path of 257 characters', publish({ path: `/${'a'.repeat(256)}` })],
    ['path empty', publish({ path: '' })],
    ['path null', publish({ path: null })],
    ['instances -1', publish({ instances: -1 })],
    ['instances 1.5', publish({ instances: 1.5 })],
    ['instances "2" (a string)', publish({ instances: '2' })],
    [`instances ${MAX_INSTANCES + 1} (over maxInstances)`, publish({ instances: MAX_INSTANCES + 1 })],
    ['instances null', publish({ instances: null })],
    ['bundle not hex', publish({ bundle: 'not-a-digest' })],
    ['bundle in uppercase hex', publish({ bundle: 'A'.repeat(64) })],
    ['bundle of 63 hex characters', publish({ bundle: 'a'.repeat(63) })],
    ['bundle of 65 hex characters', publish({ bundle: 'a'.repeat(65) })],
    ['env with a lowercase key', publish({ env: { debug: '1' } })],
    ['env with a key starting with a digit', publish({ env: { '1DEBUG': '1' } })],
    ['env with a key containing "-"', publish({ env: { 'MY-VAR': '1' } })],
    ['env with an empty key', publish({ env: { '': '1' } })],
    ['env with a key of 129 characters', publish({ env: { [`A${'B'.repeat(128)}`]: '1' } })],
    ['env setting the reserved PORT', publish({ env: { PORT: '8080' } })],
    ['env setting the reserved HOST', publish({ env: { HOST: '0.0.0.0' } })],
    ['env setting the reserved BERTH_X', publish({ env: { BERTH_X: '1' } })],
    ['env with a number value', publish({ env: { DEBUG: 1 } })],
    ['env with a boolean value', publish({ env: { DEBUG: true } })],
    ['env with a null value', publish({ env: { DEBUG: null } })],
    ['env with an object value', publish({ env: { DEBUG: { on: '1' } } })],
    ['env with 201 keys', publish({ env: Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`V${i}`, '1'])) })],
    ['env with a 40 KiB value', publish({ env: { BLOB: 'x'.repeat(40 * KIB) } })],
    ['env as an array', publish({ env: ['A=1'] })],
    ['env as a string', publish({ env: 'A=1' })],
    ['env null', publish({ env: null })],
    ['attributes with a nested object', publish({ attributes: { a: { b: 1 } } })],
    ['attributes with a key starting with a digit', publish({ attributes: { '1a': 'x' } })],
    ['attributes with a key containing a space', publish({ attributes: { 'a b': 'x' } })],
    ['attributes with an array value', publish({ attributes: { a: [1] } })],
    ['attributes as an array', publish({ attributes: ['a'] })],
    ['attributes with 33 keys', publish({ attributes: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`a${i}`, i])) })],
    ['command empty', publish({ command: '' })],
    ['command with a newline', publish({ command: 'node server.js\nrm -rf /' })],
    ['command with a NUL', publish({ command: 'node\u0000server.js' })],
    ['command with a tab', publish({ command: 'node\tserver.js' })],
    ['command of 1025 characters', publish({ command: 'x'.repeat(1025) })],
    ['a process type with an uppercase name', publish({ processes: { Worker: 'node w.js' } })],
    ['a process type without a name', publish({ processes: { '': 'node w.js' } })],
    ['a process type without a command', publish({ processes: { worker: '' } })],
    ['a process command with a newline', publish({ processes: { worker: 'node w.js\nrm -rf /' } })],
    ['processes as an array', publish({ processes: ['worker'] })],
    ['releaseCommand empty', publish({ releaseCommand: '' })],
    ['releaseTimeoutMs 0', publish({ releaseTimeoutMs: 0 })],
    ['command not a string', publish({ command: ['node', 'server.js'] })],
    ['healthCheck with an unknown field', publish({ healthCheck: { path: '/health', interval: 5 } })],
    ['healthCheck status 700', publish({ healthCheck: { status: 700 } })],
    ['healthCheck status "200" (a string)', publish({ healthCheck: { status: '200' } })],
    ['healthCheck timeoutMs 10', publish({ healthCheck: { timeoutMs: 10 } })],
    ['healthCheck timeoutMs over a minute', publish({ healthCheck: { timeoutMs: 60_001 } })],
    ['healthCheck attempts 0', publish({ healthCheck: { attempts: 0 } })],
    ['healthCheck attempts 1.5', publish({ healthCheck: { attempts: 1.5 } })],
    ['healthCheck path without a leading slash', publish({ healthCheck: { path: 'health' } })],
    ['healthCheck path with a space', publish({ healthCheck: { path: '/he alth' } })],
    ['healthCheck not an object', publish({ healthCheck: '/health' })],
    ['stripPrefix "yes"', publish({ stripPrefix: 'yes' })],
    ['stripPrefix 1', publish({ stripPrefix: 1 })],
    ['an unknown top-level field', publish({ owner: 'me' })],
    ['a release field (not the client’s to set)', publish({ release: 2 })],
    ['a state field (not the client’s to set)', publish({ state: 'deleting' })],
  ];
  const cases: Case[] = [
    ...bad.map(([name, body]) => invalid(name, '/v1/apps', 'POST', body)),
    invalid('the reserved /_berth', '/v1/apps', 'POST', publish({ path: '/_berth' }), { code: 'reserved_path' }),
    invalid('under the reserved /_berth', '/v1/apps', 'POST', publish({ path: '/_berth/other' }), { code: 'reserved_path' }),
    invalid('a top-level array', '/v1/apps', 'POST', () => [publish()()]),
    invalid('no body at all', '/v1/apps', 'POST'),
    invalid('a valid body with an unknown query parameter', '/v1/apps?dryRun=1', 'POST', publish()),
    // JSON.parse makes "__proto__" an own key, which a zod record skips instead of checking.
    invalid('env with a "__proto__" key', '/v1/apps', 'POST', undefined, { raw: () => JSON.stringify(publish()()).replace(/}$/, ',"env":{"__proto__":"x"}}') }),
    invalid('env with a "__proto__" object', '/v1/apps', 'POST', undefined, { raw: () => JSON.stringify(publish()()).replace(/}$/, ',"env":{"__proto__":{"A":"1"}}}') }),
    invalid('attributes with a "__proto__" key', '/v1/apps', 'POST', undefined, { raw: () => JSON.stringify(publish()()).replace(/}$/, ',"attributes":{"__proto__":{"a":1}}}') }),
    { name: 'env over 64 KiB in all (over the body limit)', path: '/v1/apps', body: publish({ env: { A: 'x'.repeat(22 * KIB), B: 'x'.repeat(22 * KIB), C: 'x'.repeat(22 * KIB) } }), status: 413, code: 'payload_too_large' },
    { name: 'malformed JSON', path: '/v1/apps', raw: '{"name": "other",', status: 400, code: 'invalid_json' },
    { name: 'a bare null', path: '/v1/apps', raw: 'null', status: 400, code: 'invalid_json' },
    { name: 'a JSON body sent as text/plain', path: '/v1/apps', raw: () => JSON.stringify(publish()()), headers: { 'content-type': 'text/plain' }, status: 415, code: 'unsupported_media_type' },
    { name: 'a form body', path: '/v1/apps', raw: 'name=other&path=%2Fother', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'unsupported_media_type' },
    { name: 'no token', path: '/v1/apps', body: publish(), auth: null, status: 401, code: 'unauthorized' },
    { name: 'a bundle digest nobody uploaded', path: '/v1/apps', body: publish({ bundle: UNKNOWN_DIGEST }), status: 404, code: 'bundle_not_found' },
    { name: 'the name of an existing app', path: '/v1/apps', body: publish({ name: 'shop' }), status: 409, code: 'app_exists' },
    { name: 'the path of an existing app', path: '/v1/apps', body: publish({ path: '/shop' }), status: 409, code: 'path_taken' },
  ];

  it.each(cases)('$name → $status $code', async (c) => {
    await refused(c);
  });
});

describe('PUT /v1/apps/:name (update)', () => {
  const bodies: Array<[string, unknown]> = [
    ['env with a lowercase key', { env: { debug: '1' } }],
    ['a process type named with a space', { processes: { 'my worker': 'node w.js' } }],
    ['releaseTimeoutMs as a string', { releaseTimeoutMs: '600' }],
    ['env setting the reserved PORT', { env: { PORT: '1' } }],
    ['env setting BERTH_TOKEN', { env: { BERTH_TOKEN: 'x' } }],
    ['env with a number value', { env: { DEBUG: 1 } }],
    ['env with 201 keys', { env: Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`V${i}`, '1'])) }],
    ['env with a 40 KiB value', { env: { BLOB: 'x'.repeat(40 * KIB) } }],
    ['env null', { env: null }],
    ['bundle not hex', { bundle: 'not-a-digest' }],
    ['bundle in uppercase hex', { bundle: 'A'.repeat(64) }],
    [`instances ${MAX_INSTANCES + 1}`, { instances: MAX_INSTANCES + 1 }],
    ['instances -1', { instances: -1 }],
    ['instances "2"', { instances: '2' }],
    ['command empty', { command: '' }],
    ['command with a newline', { command: 'a\nb' }],
    ['command of 1025 characters', { command: 'x'.repeat(1025) }],
    ['healthCheck status 700', { healthCheck: { status: 700 } }],
    ['healthCheck with an unknown field', { healthCheck: { retries: 3 } }],
    ['attributes with a nested object', { attributes: { a: { b: 1 } } }],
    ['stripPrefix "yes"', { stripPrefix: 'yes' }],
    ['a name (not changeable)', { name: 'renamed' }],
    ['a path (not changeable here)', { path: '/elsewhere' }],
    ['an unknown field', { restart: true }],
    ['a valid change beside an unknown field', { instances: 1, restart: true }],
    ['a valid change beside a bad one', { instances: 1, env: { PORT: '1' } }],
  ];
  const cases: Case[] = [
    { name: 'an empty object', method: 'PUT', path: '/v1/apps/shop', body: {}, status: 400, code: 'nothing_to_change' },
    { name: 'no body at all', method: 'PUT', path: '/v1/apps/shop', status: 400, code: 'nothing_to_change' },
    ...bodies.map(([name, body]) => invalid(name, '/v1/apps/shop', 'PUT', body)),
    invalid('env with a "__proto__" key', '/v1/apps/shop', 'PUT', undefined, { raw: '{"env":{"__proto__":"x"}}' }),
    invalid('a top-level array', '/v1/apps/shop', 'PUT', [{ instances: 1 }]),
    invalid('a valid body with a query parameter', '/v1/apps/shop?force=1', 'PUT', { instances: 1 }),
    { name: 'malformed JSON', method: 'PUT', path: '/v1/apps/shop', raw: '{"instances":', status: 400, code: 'invalid_json' },
    { name: 'text/plain', method: 'PUT', path: '/v1/apps/shop', raw: '{"instances":1}', headers: { 'content-type': 'text/plain' }, status: 415, code: 'unsupported_media_type' },
    { name: 'a bundle digest nobody uploaded', method: 'PUT', path: '/v1/apps/shop', body: { bundle: UNKNOWN_DIGEST }, status: 404, code: 'bundle_not_found' },
  ];

  it.each(cases)('$name → $status $code', async (c) => {
    await refused(c);
  });
});

describe('PATCH /v1/apps/:name (scale)', () => {
  const cases: Case[] = [
    { name: 'an empty object', method: 'PATCH', path: '/v1/apps/shop', body: {}, status: 400, code: 'nothing_to_change' },
    { name: 'no body at all', method: 'PATCH', path: '/v1/apps/shop', status: 400, code: 'nothing_to_change' },
    invalid(`instances ${MAX_INSTANCES + 1}`, '/v1/apps/shop', 'PATCH', { instances: MAX_INSTANCES + 1 }),
    invalid('instances -1', '/v1/apps/shop', 'PATCH', { instances: -1 }),
    invalid('instances 1.5', '/v1/apps/shop', 'PATCH', { instances: 1.5 }),
    invalid('instances "2"', '/v1/apps/shop', 'PATCH', { instances: '2' }),
    invalid('instances null', '/v1/apps/shop', 'PATCH', { instances: null }),
    invalid('stripPrefix "yes"', '/v1/apps/shop', 'PATCH', { stripPrefix: 'yes' }),
    invalid('an unknown field', '/v1/apps/shop', 'PATCH', { replicas: 2 }),
    invalid('a release field (PUT’s, not PATCH’s)', '/v1/apps/shop', 'PATCH', () => ({ bundle: digest })),
    invalid('a valid change beside an unknown field', '/v1/apps/shop', 'PATCH', { instances: 1, replicas: 2 }),
    invalid('a valid body with a query parameter', '/v1/apps/shop?dryRun=1', 'PATCH', { instances: 1 }),
    invalid('an empty formation', '/v1/apps/shop', 'PATCH', { formation: {} }),
    invalid(`a formation count over ${MAX_INSTANCES}`, '/v1/apps/shop', 'PATCH', { formation: { worker: MAX_INSTANCES + 1 } }),
    invalid('a negative formation count', '/v1/apps/shop', 'PATCH', { formation: { web: -1 } }),
    invalid('a count for the release command', '/v1/apps/shop', 'PATCH', { formation: { release: 1 } }),
    invalid('a formation with a bad type name', '/v1/apps/shop', 'PATCH', { formation: { 'Worker!': 1 } }),
    invalid('web given twice, differently', '/v1/apps/shop', 'PATCH', { instances: 1, formation: { web: 2 } }),
    { name: 'a type the release does not have', method: 'PATCH', path: '/v1/apps/shop', body: { formation: { worker: 1 } }, status: 400, code: 'unknown_process_type' },
    { name: 'malformed JSON', method: 'PATCH', path: '/v1/apps/shop', raw: '{instances: 1}', status: 400, code: 'invalid_json' },
  ];

  it.each(cases)('$name → $status $code', async (c) => {
    await refused(c);
  });
});

describe('PATCH /v1/apps/:name/config', () => {
  const path = '/v1/apps/shop/config';
  const nothing: Array<[string, unknown]> = [
    ['an empty object', {}],
    ['an empty set', { set: {} }],
    ['an empty unset', { unset: [] }],
    ['an empty set and unset', { set: {}, unset: [] }],
  ];
  const bodies: Array<[string, unknown]> = [
    ['set with a lowercase key', { set: { debug: '1' } }],
    ['set with a key starting with a digit', { set: { '1A': '1' } }],
    ['set of the reserved PORT', { set: { PORT: '1' } }],
    ['set of the reserved BERTH_X', { set: { BERTH_X: '1' } }],
    ['set with a number value', { set: { DEBUG: 1 } }],
    ['set with a 40 KiB value', { set: { BLOB: 'x'.repeat(40 * KIB) } }],
    ['set as an array', { set: ['DEBUG=1'] }],
    ['unset with a lowercase key', { unset: ['debug'] }],
    ['unset of the reserved HOST', { unset: ['HOST'] }],
    ['unset not an array', { unset: 'K1' }],
    ['unset with a number', { unset: [1] }],
    ['unset of 201 keys', { unset: Array.from({ length: 201 }, (_, i) => `K${i}`) }],
    ['an unknown field', { replace: { A: '1' } }],
    ['a valid set beside a bad unset', { set: { DEBUG: '1' }, unset: ['bad key'] }],
    // shop has 151 variables, 30 KiB of them in BIG: these would take it past the limits.
    ['set taking the app to 211 variables', { set: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`N${i}`, '1'])) }],
    ['set taking the app past 64 KiB of variables', { set: { HUGE: 'y'.repeat(32 * KIB), MORE: 'y'.repeat(8 * KIB) } }],
  ];
  const cases: Case[] = [
    ...nothing.map(([name, body]): Case => ({ name, method: 'PATCH', path, body, status: 400, code: 'nothing_to_change' })),
    ...bodies.map(([name, body]) => invalid(name, path, 'PATCH', body)),
    invalid('set with a "__proto__" key', path, 'PATCH', undefined, { raw: '{"set":{"__proto__":"x"}}' }),
    invalid('a valid body with a query parameter', `${path}?x=1`, 'PATCH', { set: { DEBUG: '1' } }),
    { name: 'malformed JSON', method: 'PATCH', path, raw: '{"set":{"A":"1"}', status: 400, code: 'invalid_json' },
  ];

  it.each(cases)('$name → $status $code', async (c) => {
    await refused(c);
  });
});

describe('POST /v1/apps/:name/rollback', () => {
  const path = '/v1/apps/shop/rollback';
  const cases: Case[] = [
    { name: 'version 99 (no such release)', path, body: { version: 99 }, status: 404, code: 'release_not_found' },
    { name: 'no version with no earlier release', path, body: {}, status: 404, code: 'release_not_found' },
    { name: 'no body with no earlier release', method: 'POST', path, status: 404, code: 'release_not_found' },
    invalid('version 0', path, 'POST', { version: 0 }),
    invalid('version -1', path, 'POST', { version: -1 }),
    invalid('version "1" (a string)', path, 'POST', { version: '1' }),
    invalid('version 1.5', path, 'POST', { version: 1.5 }),
    invalid('version 2^60', path, 'POST', { version: 2 ** 60 }),
    invalid('version null', path, 'POST', { version: null }),
    invalid('an unknown field', path, 'POST', { to: 1 }),
    invalid('a top-level array', path, 'POST', [1]),
    invalid('a version in the query', `${path}?version=1`, 'POST', {}),
    { name: 'malformed JSON', path, raw: '{"version":1', status: 400, code: 'invalid_json' },
  ];

  it.each(cases)('$name → $status $code', async (c) => {
    await refused(c);
  });
});

describe('POST /v1/apps/:name/instances/:id/restart', () => {
  const cases: Case[] = [
    { name: 'an instance the app does not have', path: '/v1/apps/shop/instances/ffffffffffffffff/restart', body: {}, status: 404, code: 'instance_not_found' },
    { name: 'an unknown app', path: '/v1/apps/ghost/instances/ffffffffffffffff/restart', body: {}, status: 404, code: 'app_not_found' },
    invalid('an id with upper case', '/v1/apps/shop/instances/ABC/restart', 'POST', {}),
    invalid('an id of 65 characters', `/v1/apps/shop/instances/${'a'.repeat(65)}/restart`, 'POST', {}),
    invalid('an unknown field', '/v1/apps/shop/instances/ffffffffffffffff/restart', 'POST', { now: true }),
    invalid('a query', '/v1/apps/shop/instances/ffffffffffffffff/restart?x=1', 'POST', {}),
  ];

  it.each(cases)('$name → $status $code', async (c) => {
    await refused(c);
  });
});

describe('GET /v1/apps/:name/logs', () => {
  const queries = ['lines=0', 'lines=abc', 'lines=20000', 'lines=-1', 'lines=', 'lines=1e3', 'lines=1.5', 'lines=1&lines=2', 'follow=maybe', 'follow=', 'follow=yes', 'tail=5', 'lines=5&since=0'];
  it.each(queries)('?%s → 400 invalid_request', async (q) => {
    await refused(invalid('', `/v1/apps/shop/logs?${q}`, 'GET'));
  });
});

describe('reads and deletes with a query', () => {
  const cases: Case[] = [
    invalid('GET /v1/apps?limit=5', '/v1/apps?limit=5', 'GET'),
    invalid('GET /v1/apps/shop?x=1', '/v1/apps/shop?x=1', 'GET'),
    invalid('GET instances?state=running', '/v1/apps/shop/instances?state=running', 'GET'),
    invalid('GET releases?limit=1', '/v1/apps/shop/releases?limit=1', 'GET'),
    invalid('GET config?key=A', '/v1/apps/shop/config?key=A', 'GET'),
    invalid('DELETE /v1/apps/shop?force=1', '/v1/apps/shop?force=1', 'DELETE'),
  ];
  it.each(cases)('$name → 400 invalid_request', async (c) => {
    await refused(c);
  });
});

/** Every app route, with a body that would be valid for it. */
const ROUTES: Array<[string, string, (name: string) => string, Lazy<unknown> | undefined]> = [
  ['details', 'GET', (n) => `/v1/apps/${n}`, undefined],
  ['update (settings)', 'PUT', (n) => `/v1/apps/${n}`, { instances: 1 }],
  ['update (release)', 'PUT', (n) => `/v1/apps/${n}`, { env: { DEBUG: '1' } }],
  ['scale', 'PATCH', (n) => `/v1/apps/${n}`, { instances: 1 }],
  ['delete', 'DELETE', (n) => `/v1/apps/${n}`, undefined],
  ['instances', 'GET', (n) => `/v1/apps/${n}/instances`, undefined],
  ['releases', 'GET', (n) => `/v1/apps/${n}/releases`, undefined],
  ['rollback', 'POST', (n) => `/v1/apps/${n}/rollback`, {}],
  ['rollback to v1', 'POST', (n) => `/v1/apps/${n}/rollback`, { version: 1 }],
  ['config', 'GET', (n) => `/v1/apps/${n}/config`, undefined],
  ['config set', 'PATCH', (n) => `/v1/apps/${n}/config`, { set: { DEBUG: '1' } }],
  ['config unset', 'PATCH', (n) => `/v1/apps/${n}/config`, { unset: ['K1'] }],
  ['logs', 'GET', (n) => `/v1/apps/${n}/logs`, undefined],
  ['logs?lines=5', 'GET', (n) => `/v1/apps/${n}/logs?lines=5`, undefined],
  ['logs?follow=1', 'GET', (n) => `/v1/apps/${n}/logs?follow=1`, undefined],
];

describe('app names in the URL', () => {
  const badNames = ['Shop', '1shop', `s${'h'.repeat(63)}`, 'shop%2Fx', 'shop%20x', '-shop', 'shop_x', 'sh%C3%B6p', 'shop%00', 'shop.x'];
  const cases = badNames.flatMap((n) =>
    ROUTES.map(([what, method, path, body]) => invalid(`${what} of ${JSON.stringify(n.length > 20 ? `${n.slice(0, 8)}…(${n.length})` : n)}`, path(n), method, body)),
  );
  it.each(cases)('$name → 400 invalid_request', async (c) => {
    await refused(c);
  });

  it('malformed percent-encoding in an app name → 400 invalid_request', async () => {
    await refused(invalid('', '/v1/apps/shop%', 'GET'));
    await refused(invalid('', '/v1/apps/%E0%A4%A/config', 'PATCH', { set: { DEBUG: '1' } }));
  });
});

describe('an unknown app', () => {
  const cases: Case[] = ROUTES.map(([what, method, path, body]) => ({ name: `${what} of ghost`, method, path: path('ghost'), body, status: 404, code: 'app_not_found' }));
  it.each(cases)('$name → 404 app_not_found', async (c) => {
    await refused(c);
  });

  it.each([
    ['POST', '/v1/apps/shop'],
    ['PUT', '/v1/apps'],
    ['DELETE', '/v1/apps'],
    ['POST', '/v1/apps/shop/releases'],
    ['PUT', '/v1/apps/shop/config'],
  ] as const)('a method no route takes: %s %s → 404 not_found', async (method, path) => {
    await refused({ name: '', method, path, body: { instances: 1 }, status: 404, code: 'not_found' });
  });
});

describe('after all of it', () => {
  it('shop is as published: v1 active, no other release, its environment unchanged, and no app "other"', async () => {
    const shop = await fx.client.getApp('shop');
    expect(shop).toMatchObject({ name: 'shop', path: '/shop', instances: 0, release: 1, state: 'active', stripPrefix: false });
    expect(shop.current).toMatchObject({ version: 1, status: 'active', bundle: digest, createdBy: 'admin' });
    expect(await fx.client.getConfig('shop')).toEqual(SEED_ENV);
    expect((await fx.client.listReleases('shop')).map((r) => r.version)).toEqual([1]);
    expect((await fx.client.listApps()).map((a) => a.name)).toEqual(['shop']);
  });
});
