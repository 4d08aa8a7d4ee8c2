import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { hostname } from 'node:os';
import { rootCertificates } from 'node:tls';
import acme from 'acme-client';
import type { Logger } from 'pino';
import { certificateFacts } from '../common/certificate-check.js';
import type { CertificateStore } from '../registry/store/index.js';

export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';
/** Renew once this share of a certificate's lifetime has passed (Let's Encrypt's 90 days: at 60). */
export const DEFAULT_RENEW_FRACTION = 2 / 3;
/** The first retry after a failure; each next one waits twice as long, up to DEFAULT_RETRY_MAX_MS. */
export const DEFAULT_RETRY_MS = 60_000;
export const DEFAULT_RETRY_MAX_MS = 6 * 3600_000;
export const DEFAULT_CHECK_MS = 10_000;
/** One attempt holds the domain's lease this long at most (an order takes seconds). */
const LEASE_MS = 5 * 60_000;
/** An HTTP-01 answer outlives its attempt by no more than this. */
const CHALLENGE_TTL_MS = 10 * 60_000;

export interface AcmeIssuerOptions {
  certificates: CertificateStore;
  /** The domains to hold certificates for, now (the route table's, or the registry's records). */
  domains: () => Iterable<string> | Promise<Iterable<string>>;
  /** @default LETS_ENCRYPT_DIRECTORY */
  directory?: string;
  email?: string;
  /** PEM file of a CA to trust for the directory's HTTPS besides the system's (a private ACME CA). */
  caFile?: string;
  /** @default DEFAULT_RENEW_FRACTION */
  renewFraction?: number;
  /** @default DEFAULT_RETRY_MS */
  retryMs?: number;
  /** @default DEFAULT_RETRY_MAX_MS */
  retryMaxMs?: number;
  /** How often every domain is looked at. @default DEFAULT_CHECK_MS */
  checkMs?: number;
  logger: Logger;
}

/**
 * Obtains and renews the certificates of the apps' domains with ACME's HTTP-01 challenge, for
 * every balancer at once: each domain's work is under a lease in Redis (one balancer at a
 * time), the challenge's answer is put in Redis (whichever balancer the CA reaches answers
 * it), and the certificate lands in Redis for every balancer to serve. Renewal starts at
 * `renewFraction` of the lifetime; a failure is recorded with the CA's words and retried
 * after a doubling wait. Wildcard domains are left alone: HTTP-01 cannot prove them.
 */
export class AcmeIssuer {
  private readonly holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly directory: string;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private client: acme.Client | undefined;

  constructor(private readonly o: AcmeIssuerOptions) {
    this.directory = o.directory || LETS_ENCRYPT_DIRECTORY;
    if (o.caFile) {
      // acme-client speaks through its own axios instance: trust the private CA there only.
      acme.axios.defaults.httpsAgent = new Agent({ ca: [...rootCertificates, readFileSync(o.caFile, 'utf8')], keepAlive: false });
    }
  }

  start(): void {
    const tick = () => {
      if (this.closed) return;
      this.running = this.checkAll()
        .catch((err) => this.o.logger.warn({ err: String(err) }, 'ACME check failed: trying again at the next one'))
        .finally(() => {
          if (!this.closed) this.timer = setTimeout(tick, this.o.checkMs ?? DEFAULT_CHECK_MS);
        });
    };
    tick();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** Looks at every domain once; works on those due, one at a time. */
  async checkAll(): Promise<void> {
    for (const domain of [...(await this.o.domains())]) {
      if (this.closed) return;
      if (domain.startsWith('*.')) continue;
      if (!(await this.due(domain))) continue;
      if (!(await this.o.certificates.takeLease(domain, this.holder, LEASE_MS))) continue;
      try {
        // Read again under the lease: another balancer may just have finished it.
        if (await this.due(domain)) await this.obtain(domain);
      } finally {
        await this.o.certificates.dropLease(domain, this.holder).catch(() => undefined);
      }
    }
  }

  private async due(domain: string): Promise<boolean> {
    const r = await this.o.certificates.record(domain);
    const now = Date.now();
    if (r === undefined) return true;
    if (r.source === 'operator') return false;
    if (r.state === 'failed') return now >= (r.retryAt ?? 0);
    if (r.state === 'issued' && r.notBefore !== undefined && r.notAfter !== undefined) {
      return now >= r.notBefore + (r.notAfter - r.notBefore) * (this.o.renewFraction ?? DEFAULT_RENEW_FRACTION);
    }
    return true;
  }

  private async obtain(domain: string): Promise<void> {
    const { certificates, logger } = this.o;
    const before = await certificates.record(domain);
    if (before === undefined) await certificates.recordAcme(domain, this.holder, { state: 'pending' });
    const tokens: string[] = [];
    try {
      const client = await this.account();
      // ECDSA, as the balancer's own certificate: a context switched to by SNI is served only when its key is of the same type (OpenSSL keeps the first one's).
      const [key, csr] = await acme.crypto.createCsr({ commonName: domain, altNames: [domain] }, await acme.crypto.createPrivateEcdsaKey('P-256'));
      const cert = await client.auto({
        csr,
        ...(this.o.email ? { email: this.o.email } : {}),
        termsOfServiceAgreed: true,
        challengePriority: ['http-01'],
        // The CA checks the balancers; a check from here would need the DNS the CA sees.
        skipChallengeVerification: true,
        challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
          tokens.push(challenge.token);
          await certificates.putChallenge(challenge.token, keyAuthorization, CHALLENGE_TTL_MS);
        },
        challengeRemoveFn: async (_authz, challenge) => {
          await certificates.dropChallenge(challenge.token);
        },
      });
      const facts = certificateFacts(cert);
      const outcome = await certificates.recordAcme(domain, this.holder, {
        state: 'issued',
        cert,
        key: key.toString(),
        issuer: facts.issuer,
        notBefore: facts.notBefore,
        notAfter: facts.notAfter,
        serial: facts.serial,
        error: '',
        failures: 0,
        retryAt: '',
      });
      logger.info({ domain, issuer: facts.issuer, notAfter: new Date(facts.notAfter).toISOString(), outcome }, `certificate for ${domain} ${before?.state === 'issued' ? 'renewed' : 'obtained'}`);
    } catch (err) {
      const failures = (before?.failures ?? 0) + 1;
      const retryMs = Math.min((this.o.retryMs ?? DEFAULT_RETRY_MS) * 2 ** (failures - 1), this.o.retryMaxMs ?? DEFAULT_RETRY_MAX_MS);
      const error = (err instanceof Error ? err.message : String(err)).slice(0, 500) || 'the CA gave no reason';
      // A renewal that fails keeps serving the certificate it has (until it expires): only the state and error change.
      await certificates.recordAcme(domain, this.holder, { state: 'failed', error, failures, retryAt: Date.now() + retryMs }).catch(() => undefined);
      logger.warn({ domain, error, failures, retryInMs: retryMs }, `could not obtain a certificate for ${domain}: trying again in ${Math.round(retryMs / 1000)} s`);
    } finally {
      for (const t of tokens) await certificates.dropChallenge(t).catch(() => undefined);
    }
  }

  /** The ACME client on the account every balancer shares (made once, kept sealed in Redis). */
  private async account(): Promise<acme.Client> {
    if (this.client !== undefined) return this.client;
    const { certificates } = this.o;
    const backoff = { backoffAttempts: 12, backoffMin: 250, backoffMax: 5000 };
    const known = await certificates.account(this.directory);
    if (known !== undefined) {
      this.client = new acme.Client({ directoryUrl: this.directory, accountKey: known.key, accountUrl: known.url, ...backoff });
      return this.client;
    }
    const accountKey = (await acme.crypto.createPrivateKey()).toString();
    const client = new acme.Client({ directoryUrl: this.directory, accountKey, ...backoff });
    await client.createAccount({ termsOfServiceAgreed: true, ...(this.o.email ? { contact: [`mailto:${this.o.email}`] } : {}) });
    await certificates.saveAccount(this.directory, accountKey, client.getAccountUrl());
    this.client = client;
    return client;
  }
}
