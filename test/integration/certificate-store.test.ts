// Certificates in Redis: one balancer at a time holds a domain's ACME lease and only its holder's writes land, an operator's certificate is never overwritten by ACME, a domain keeps one operator certificate per key type (RSA and ECDSA), and private keys are stored sealed (unreadable without the key file's key).
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLocalCertificates } from '../../balancer/local-certificates.js';
import { CertificateStore, newSealingKeyText, readSealingKey, registryKeys } from '../../registry/store/index.js';
import { opensslCertificate } from '../helpers/openssl-certificates.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { testPrefix } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let client: Redis;
let dir: string;
let store: CertificateStore;
const prefix = testPrefix();

beforeAll(async () => {
  redis = await startRedis();
  client = redis.client();
  dir = mkdtempSync(join(tmpdir(), 'berth-certstore-'));
  writeFileSync(join(dir, 'key'), newSealingKeyText(), { mode: 0o600 });
  store = new CertificateStore(client, { keyPrefix: prefix, sealingKey: readSealingKey(join(dir, 'key')) });
});

afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the ACME lease of a domain', () => {
  it('is held by one balancer at a time, and fences what it writes', async () => {
    expect(await store.takeLease('a.example.com', 'b1', 60_000)).toBe(true);
    expect(await store.takeLease('a.example.com', 'b2', 60_000)).toBe(false);
    expect(await store.takeLease('a.example.com', 'b1', 60_000)).toBe(true);
    expect(await store.recordAcme('a.example.com', 'b2', { state: 'failed', error: 'late' })).toBe('lost');
    expect(await store.record('a.example.com')).toBeUndefined();
    expect(await store.recordAcme('a.example.com', 'b1', { state: 'pending' })).toBe('written');
    await store.dropLease('a.example.com', 'b2');
    expect(await store.takeLease('a.example.com', 'b2', 60_000)).toBe(false);
    await store.dropLease('a.example.com', 'b1');
    expect(await store.takeLease('a.example.com', 'b2', 60_000)).toBe(true);
    expect((await store.record('a.example.com'))?.state).toBe('pending');
  });

  it('expires, so a balancer that died gives the domain to another', async () => {
    expect(await store.takeLease('b.example.com', 'dead', 200)).toBe(true);
    await waitFor(() => store.takeLease('b.example.com', 'alive', 60_000), { what: 'the dead balancer’s lease to expire', deadlineMs: 5000 });
    expect(await store.recordAcme('b.example.com', 'dead', { state: 'failed', error: 'zombie' })).toBe('lost');
  });
});

describe("operators' certificates and sealed keys", () => {
  it('are never overwritten by ACME, and their keys are stored sealed', async () => {
    const pair = await ensureLocalCertificates({ dir: join(dir, 'ops'), names: ['c.example.com'] });
    await store.setOperator('c.example.com', pair.certPem, pair.keyPem);
    expect(await store.takeLease('c.example.com', 'b1', 60_000)).toBe(true);
    expect(await store.recordAcme('c.example.com', 'b1', { state: 'pending' })).toBe('operator');
    const raw = await client.hget(registryKeys(prefix).certificate('c.example.com'), 'key');
    expect(raw).not.toContain('PRIVATE KEY');
    expect((await store.servable('c.example.com'))?.pairs.map((p) => p.key)).toEqual([pair.keyPem]);
    writeFileSync(join(dir, 'other'), newSealingKeyText(), { mode: 0o600 });
    const stranger = new CertificateStore(client, { keyPrefix: prefix, sealingKey: readSealingKey(join(dir, 'other')) });
    await expect(stranger.servable('c.example.com')).rejects.toThrow();
    expect((await stranger.list()).map((c) => `${c.domain}:${c.source}`)).toContain('c.example.com:operator');
    await store.removeOperator('c.example.com');
    await expect(store.removeOperator('c.example.com')).rejects.toMatchObject({ code: 'certificate_not_found' });
  });

  it('keeps one per key type: the ECDSA one first, an RSA one beside it, a new one of a type replacing that one', async () => {
    const domain = 'd.example.com';
    const rsa = opensslCertificate(dir, { names: [domain], keyType: 'rsa' });
    const ecdsa = opensslCertificate(dir, { names: [domain], keyType: 'ecdsa' });
    const rsa2 = opensslCertificate(dir, { names: [domain], keyType: 'rsa' });
    expect(await store.takeLease(domain, 'b1', 60_000)).toBe(true);
    expect(await store.recordAcme(domain, 'b1', { state: 'failed', error: 'no', failures: 3 })).toBe('written');
    await store.setOperator(domain, rsa.cert, rsa.key);
    expect((await store.servable(domain))?.pairs.map((p) => [p.keyType, p.key])).toEqual([['rsa', rsa.key]]);
    // ACME's record is gone with its failure count.
    expect(await store.record(domain)).toMatchObject({ source: 'operator', state: 'issued', keyType: 'rsa', failures: 0 });
    await store.setOperator(domain, ecdsa.cert, ecdsa.key);
    expect((await store.servable(domain))?.pairs.map((p) => [p.keyType, p.key])).toEqual([['ecdsa', ecdsa.key], ['rsa', rsa.key]]);
    await store.setOperator(domain, rsa2.cert, rsa2.key);
    expect((await store.servable(domain))?.pairs.map((p) => [p.keyType, p.key])).toEqual([['ecdsa', ecdsa.key], ['rsa', rsa2.key]]);
    const record = (await store.record(domain))!;
    expect(record.keyType).toBe('ecdsa');
    expect(record.second).toMatchObject({ keyType: 'rsa', serial: new X509Certificate(rsa2.cert).serialNumber });
    await store.removeOperator(domain);
    expect(await store.servable(domain)).toBeUndefined();
    expect(await store.record(domain)).toBeUndefined();
  });

  it('refuses a key file that is not 64 hex characters', () => {
    writeFileSync(join(dir, 'short'), randomBytes(8).toString('hex'));
    expect(() => readSealingKey(join(dir, 'short'))).toThrow(/64 hex characters/);
  });
});
