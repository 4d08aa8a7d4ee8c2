import type { Closable } from '../common/daemon-lifecycle.js';
import { idempotentClose } from '../common/daemon-lifecycle.js';
import { startWorkerPrimary } from '../common/daemon-workers.js';
import type { Logger } from '../common/logger.js';
import { closeRedis, connectRedis, redisSettingsFrom, waitForReady, type RedisClient } from '../common/redis-connection.js';
import { CertificateStore, DomainStore, readSealingKey } from '../registry/store/index.js';
import type { AcmeIssuer } from './acme-issuer.js';
import { acmeEnabled, balancerAcmeIssuer, localCertificatesOf, type BalancerConfig } from './balancer-daemon.js';

/*
 * The primary of a balancer run as several worker processes (BERTH_BALANCER_WORKERS). Each
 * worker is a whole balancer following Redis itself (routes, domains, certificates): a change
 * reaches every worker as it reaches a one-process balancer, by the event stream, with no relay
 * in between to lag or to fail. The primary does what must happen once per balancer: it makes
 * the self-made certificate before any worker reads it (two workers making a CA at once would
 * leave one CA's key beside the other's certificate), and it runs the ACME issuer (whose
 * per-domain leases would otherwise be raced for by every worker of the same balancer).
 */

export async function startBalancerPrimary(config: BalancerConfig, count: number, logger: Logger): Promise<Closable> {
  const acmeOn = acmeEnabled(config);
  await localCertificatesOf(config);
  let redis: RedisClient | undefined;
  let issuer: AcmeIssuer | undefined;
  if (acmeOn) {
    redis = connectRedis(redisSettingsFrom(config), { name: 'berth-balancer-acme' });
    // As a one-process balancer: briefly, and never failing the start (the issuer retries at each check).
    await waitForReady(redis, 5000).catch(() => logger.warn('Redis is not reachable yet: ACME checks start once it is'));
    const certificates = new CertificateStore(redis, { keyPrefix: config.keyPrefix, sealingKey: readSealingKey(config.acmeKeyFile) });
    const domains = new DomainStore(redis, { keyPrefix: config.keyPrefix });
    // The registry's domain records: what every worker's route table holds (RouteSync loads them all).
    issuer = balancerAcmeIssuer(config, certificates, async () => (await domains.list()).map((d) => d.domain), logger);
    if (config.httpPort < 0) logger.warn('ACME is on but no plain-HTTP listener runs (BERTH_HTTP_PORT): HTTP-01 challenges can only be answered by other balancers');
  }
  // Each worker accepts for itself: a SIGKILLed worker then takes nothing with it but what it had
  // accepted (with round-robin, a connection being handed to it would hang in the primary).
  const workers = startWorkerPrimary({ name: 'balancer', count, logger, graceMs: config.graceMs, accept: 'workers' });
  issuer?.start();
  const close = idempotentClose(async () => {
    await issuer?.close();
    await workers.close();
    if (redis) await closeRedis(redis);
  });
  return { close };
}
