import { certificateFacts, certificateKeyType, type CertificateKeyType } from '../../common/certificate-check.js';
import type { RedisClient } from '../../common/redis-connection.js';
import type { CertificateRecord, DomainCertificate } from '../../sdk/types.js';
import { DEFAULT_KEY_PREFIX, registryKeys, type RegistryKeys } from './keys.js';
import { defineScripts, redisCall } from './lua-scripts.js';
import { DEFAULT_EVENTS_MAX_LENGTH } from './registry-store.js';
import { seal, unseal, type SealingKey } from './sealed-key.js';
import * as scripts from './script-declarations.js';
import { SCRIPT_FAILURE } from './script-errors.js';

/** A domain's certificate as berth lists it (berth certs), never with its key: the SDK's wire type. */
export type { CertificateRecord };

/** One certificate a balancer can serve: the chain and its key, unsealed. */
export interface ServablePair {
  keyType: CertificateKeyType;
  cert: string;
  key: string;
  notBefore: number;
  notAfter: number;
}

/** What a balancer can serve for a domain: one certificate per key type (ECDSA first). */
export interface ServableCertificate {
  domain: string;
  source: 'acme' | 'operator';
  pairs: ServablePair[];
}

/** The fields of one certificate in a domain's hash; a second one (the RSA one beside an ECDSA one) has them prefixed `second.`. */
const RECORD_FIELDS = ['source', 'state', 'issuer', 'notBefore', 'notAfter', 'serial', 'error', 'failures', 'retryAt', 'keyType', 'second.keyType', 'second.issuer', 'second.notBefore', 'second.notAfter', 'second.serial'];

const SCRIPTS = [scripts.takeAcmeLease, scripts.dropAcmeLease, scripts.recordAcmeCertificate, scripts.setOperatorCertificate];

/**
 * Certificates of apps' domains in Redis, shared by every balancer: ACME's (obtained by one
 * balancer at a time, under a lease per domain) and operators' (berth certs:add, which take
 * precedence). Private keys are sealed (sealed-key.ts). The HTTP-01 answers live here too, so
 * that whichever balancer the CA reaches can answer.
 */
export class CertificateStore {
  readonly keys: RegistryKeys;
  private readonly redis: RedisClient;
  private readonly maxLen: number;

  constructor(redis: RedisClient, options: { keyPrefix?: string; eventsMaxLength?: number; sealingKey?: SealingKey } = {}) {
    this.keys = registryKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.maxLen = options.eventsMaxLength ?? DEFAULT_EVENTS_MAX_LENGTH;
    this.sealingKey = options.sealingKey;
    defineScripts(redis, SCRIPTS);
    this.redis = redis;
  }

  /** Without it, keys can be neither stored nor read (listing works). */
  readonly sealingKey: SealingKey | undefined;

  async list(): Promise<CertificateRecord[]> {
    const domains = (await redisCall(() => this.redis.smembers(this.keys.certificates))).sort();
    const hashes = await this.hashes(domains, RECORD_FIELDS);
    const out: CertificateRecord[] = [];
    for (const [domain, h] of hashes) {
      const r = recordFrom(domain, h);
      if (r !== undefined) out.push(r);
    }
    return out;
  }

  async record(domain: string): Promise<CertificateRecord | undefined> {
    const [[, h] = [domain, []]] = await this.hashes([domain], RECORD_FIELDS);
    return recordFrom(domain, h);
  }

  /** Where each domain stands, as berth domains:list shows it (absent: no certificate of its own). */
  async statuses(domains: readonly string[]): Promise<Map<string, DomainCertificate>> {
    const out = new Map<string, DomainCertificate>();
    for (const [domain, h] of await this.hashes(domains, RECORD_FIELDS)) {
      const r = recordFrom(domain, h);
      if (r === undefined) continue;
      out.set(domain, {
        state: r.state,
        source: r.source,
        ...(r.issuer === undefined ? {} : { issuer: r.issuer }),
        ...(r.notAfter === undefined ? {} : { notAfter: r.notAfter }),
        ...(r.error === undefined ? {} : { error: r.error }),
        ...(r.retryAt === undefined ? {} : { retryAt: r.retryAt }),
      });
    }
    return out;
  }

  /** The certificates to serve for `domain`, or undefined (none issued, or no sealing key to open their keys). */
  async servable(domain: string): Promise<ServableCertificate | undefined> {
    const fields = ['cert', 'key', 'notBefore', 'notAfter', 'keyType'];
    const h = await redisCall(() => this.redis.hmget(this.keys.certificate(domain), 'source', ...fields, ...fields.map((f) => `second.${f}`)));
    const source = h[0];
    if ((source !== 'acme' && source !== 'operator') || this.sealingKey === undefined) return undefined;
    const pairs: ServablePair[] = [];
    for (const at of [1, 1 + fields.length]) {
      const [cert, key, notBefore, notAfter, keyType] = h.slice(at, at + fields.length);
      if (!cert || !key) continue;
      // Certificates stored before RSA was served have no keyType: they are ECDSA.
      pairs.push({ keyType: keyType === 'rsa' ? 'rsa' : 'ecdsa', cert, key: unseal(key, this.sealingKey), notBefore: Number(notBefore), notAfter: Number(notAfter) });
    }
    return pairs.length === 0 ? undefined : { domain, source, pairs };
  }

  /** Every domain with a certificate hash. */
  async domains(): Promise<string[]> {
    return redisCall(() => this.redis.smembers(this.keys.certificates));
  }

  /**
   * Sets an operator's certificate (checked by the caller: certificateProblem). A domain keeps
   * one per key type: an RSA one and an ECDSA one are served side by side, a new one of a
   * type the domain has replaces that one.
   */
  async setOperator(domain: string, cert: string, key: string): Promise<void> {
    const facts = certificateFacts(cert);
    const keyType = certificateKeyType(cert);
    if (keyType === undefined) throw new TypeError('setOperator takes RSA and ECDSA certificates only (see certificateProblem).');
    const fields = ['cert', cert, 'key', seal(key, this.requireKey()), 'issuer', facts.issuer, 'notBefore', facts.notBefore, 'notAfter', facts.notAfter, 'serial', facts.serial];
    await redisCall(() =>
      scripts.setOperatorCertificate.run(this.redis, {
        keys: { certificate: this.keys.certificate(domain), certificates: this.keys.certificates, events: this.keys.events },
        args: { domain, eventsMaxLength: this.maxLen, keyType },
        rest: fields,
      }),
    );
  }

  /** Removes an operator's certificates (both key types): ACME (when on) obtains one again. */
  async removeOperator(domain: string): Promise<void> {
    await redisCall(() =>
      scripts.setOperatorCertificate.run(this.redis, {
        keys: { certificate: this.keys.certificate(domain), certificates: this.keys.certificates, events: this.keys.events },
        args: { domain, eventsMaxLength: this.maxLen, keyType: '' },
      }),
    );
  }

  // ACME: leases, answers, attempts.

  async takeLease(domain: string, holder: string, leaseMs: number): Promise<boolean> {
    return (await redisCall(() => scripts.takeAcmeLease.run(this.redis, { keys: { lease: this.keys.acmeLease(domain) }, args: { holder, leaseMs } }))) === 1;
  }

  async dropLease(domain: string, holder: string): Promise<void> {
    await redisCall(() => scripts.dropAcmeLease.run(this.redis, { keys: { lease: this.keys.acmeLease(domain) }, args: { holder } }));
  }

  /**
   * Records an attempt's outcome under the lease: 'written', 'lost' (the lease is not the
   * holder's any more) or 'operator' (an operator's certificate holds the domain).
   */
  async recordAcme(domain: string, holder: string, fields: Record<string, string | number>): Promise<'written' | 'lost' | 'operator'> {
    const rest: (string | number)[] = ['source', 'acme'];
    for (const [field, value] of Object.entries(fields)) rest.push(field, field === 'key' && value !== '' ? seal(String(value), this.requireKey()) : value);
    const out = await redisCall(() =>
      scripts.recordAcmeCertificate.run(this.redis, {
        keys: { lease: this.keys.acmeLease(domain), certificate: this.keys.certificate(domain), certificates: this.keys.certificates, events: this.keys.events },
        args: { holder, domain, eventsMaxLength: this.maxLen },
        rest,
      }),
    );
    if (out === SCRIPT_FAILURE.operatorCertificate) return 'operator';
    return out === 1 ? 'written' : 'lost';
  }

  async putChallenge(token: string, keyAuthorization: string, ttlMs: number): Promise<void> {
    await redisCall(() => this.redis.set(this.keys.acmeChallenge(token), keyAuthorization, 'PX', ttlMs));
  }

  async challenge(token: string): Promise<string | null> {
    return redisCall(() => this.redis.get(this.keys.acmeChallenge(token)));
  }

  async dropChallenge(token: string): Promise<void> {
    await redisCall(() => this.redis.del(this.keys.acmeChallenge(token)));
  }

  /** The shared ACME account of `directory` (its key unsealed), or undefined when none was made yet. */
  async account(directory: string): Promise<{ key: string; url: string } | undefined> {
    const [key, url, dir] = await redisCall(() => this.redis.hmget(this.keys.acmeAccount, 'key', 'url', 'directory'));
    if (!key || !url || dir !== directory) return undefined;
    return { key: unseal(key, this.requireKey()), url };
  }

  /** Keeps the first account made (two balancers making one at once keep the first to land). */
  async saveAccount(directory: string, key: string, url: string): Promise<void> {
    const sealed = seal(key, this.requireKey());
    await redisCall(async () => {
      const [dir] = await this.redis.hmget(this.keys.acmeAccount, 'directory');
      if (dir !== directory) await this.redis.del(this.keys.acmeAccount);
      await this.redis.hsetnx(this.keys.acmeAccount, 'key', sealed);
      await this.redis.hsetnx(this.keys.acmeAccount, 'url', url);
      await this.redis.hsetnx(this.keys.acmeAccount, 'directory', directory);
    });
  }

  private requireKey(): SealingKey {
    if (this.sealingKey === undefined) throw new Error('No certificate key file (BERTH_ACME_KEY_FILE) is configured: keys of certificates cannot be sealed or opened.');
    return this.sealingKey;
  }

  private async hashes(domains: readonly string[], fields: string[]): Promise<[string, (string | null)[]][]> {
    if (domains.length === 0) return [];
    const rows = await redisCall(async () => {
      const pipeline = this.redis.pipeline();
      for (const d of domains) pipeline.hmget(this.keys.certificate(d), ...fields);
      return (await pipeline.exec()) ?? [];
    });
    return rows.map(([err, values], i) => {
      if (err) throw err;
      return [domains[i]!, values as (string | null)[]];
    });
  }
}

function recordFrom(domain: string, h: (string | null)[]): CertificateRecord | undefined {
  const [source, state, issuer, notBefore, notAfter, serial, error, failures, retryAt, keyType, secondKeyType, secondIssuer, secondNotBefore, secondNotAfter, secondSerial] = h;
  if (source !== 'acme' && source !== 'operator') return undefined;
  const num = (v: string | null | undefined) => (v ? Number(v) : undefined);
  const r: CertificateRecord = { domain, source, state: state === 'issued' || state === 'failed' ? state : 'pending', failures: Number(failures ?? 0) };
  if (notAfter) r.keyType = keyType === 'rsa' ? 'rsa' : 'ecdsa';
  if (secondNotAfter) {
    r.second = { keyType: secondKeyType === 'ecdsa' ? 'ecdsa' : 'rsa', issuer: secondIssuer ?? '', notBefore: num(secondNotBefore)!, notAfter: num(secondNotAfter)!, serial: secondSerial ?? '' };
  }
  if (issuer) r.issuer = issuer;
  if (notBefore) r.notBefore = num(notBefore)!;
  if (notAfter) r.notAfter = num(notAfter)!;
  if (serial) r.serial = serial;
  if (error) r.error = error;
  if (retryAt) r.retryAt = num(retryAt)!;
  return r;
}
