// Drill 10: two balancers on two machines, each in its machine's namespace, and a real ACME CA
// (Debian's pebble, in the root namespace, its DNS naming one domain by the first machine's
// address and the other by the second's). Only the first balancer orders certificates (ACME on);
// the second's challenge is checked at the second machine, whose balancer answers it from Redis:
// whichever balancer the CA reaches can answer. Both then serve both pebble certificates by
// SNI, each reaching the domain's app.
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newSealingKeyText } from '../../registry/store/index.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';
import { traversableTempDir } from '../helpers/hoster-fixture.js';
import { hasPebble, startPebble, type Pebble } from '../helpers/pebble.js';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';

/** The plain-HTTP port of both balancers, where pebble checks the challenges. */
const HTTP_PORT = 5002;
const HTTPS_PORT = 8443;
const DOMAINS = { shop: 'shop.drill.test', blog: 'blog.drill.test' } as const;

const skip = UNAVAILABLE ?? (hasPebble ? undefined : 'pebble is not installed (scripts/setup installs it as root)');
let drill: Drill;
let pebble: Pebble;
let root: string;
const balancers: { machine: string; ip: string; proc: DaemonProcess }[] = [];

/** The certificate `ip` serves for `servername`, checked against pebble's root only. */
function served(ip: string, servername: string): Promise<{ authorized: boolean; cert: PeerCertificate }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: ip, port: HTTPS_PORT, servername, ca: root, rejectUnauthorized: false }, () => {
      const out = { authorized: socket.authorized, cert: socket.getPeerCertificate() };
      socket.destroy();
      resolve(out);
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('no handshake within 5 s')));
    socket.on('error', reject);
  });
}

/** GET / on `domain` through the balancer at `ip`, trusting pebble's root only; the version (app) that answered. */
function answeredBy(ip: string, domain: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: ip, port: HTTPS_PORT, path: '/', servername: domain, headers: { host: domain }, ca: root, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve((JSON.parse(body) as { version: string }).version) : reject(new Error(`${res.statusCode} ${body.slice(0, 200)}`))));
    });
    req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(skip !== undefined)(`drill: two balancers on two machines share ACME certificates${skip ? ` (skipped: ${skip})` : ''}`, () => {
  beforeAll(async () => {
    const dir = traversableTempDir('berth-acme-drill-');
    const keyFile = join(dir, 'acme-key');
    writeFileSync(keyFile, newSealingKeyText(), { mode: 0o600 });
    drill = await startDrill({ machines: 2, registryEnv: { BERTH_ACME_KEY_FILE: keyFile } });
    pebble = await startPebble({ dir, httpPort: HTTP_PORT, host: drill.cluster.hostIp });
    root = await pebble.root();
    const [m1, m2] = drill.cluster.machines;
    await pebble.resolve(DOMAINS.shop, [m1!.ip]);
    await pebble.resolve(DOMAINS.blog, [m2!.ip]);
    for (const m of [m1!, m2!]) {
      const acme =
        m === m1
          ? { BERTH_ACME_DIRECTORY: pebble.directory, BERTH_ACME_EMAIL: 'ops@drill.test', BERTH_ACME_CA_FILE: pebble.caFile, BERTH_ACME_CHECK_MS: '200', BERTH_ACME_RETRY_MS: '1000' }
          : {};
      const proc = startDaemon(
        ['balancer'],
        {
          REDIS_URL: drill.cluster.redis.url,
          BERTH_KEY_PREFIX: drill.cluster.registry.prefix,
          BERTH_ACME_KEY_FILE: keyFile,
          BERTH_BALANCER_HOST: '0.0.0.0',
          BERTH_HTTPS_PORT: String(HTTPS_PORT),
          BERTH_HTTP_PORT: String(HTTP_PORT),
          BERTH_DATA_DIR: join(dir, `balancer-${m.name}`),
          BERTH_BALANCER_WORKERS: '1',
          ...acme,
        },
        { wrap: ['ip', 'netns', 'exec', m.ns] },
      );
      balancers.push({ machine: m.name, ip: m.ip, proc });
    }
    for (const b of balancers) {
      await waitFor(() => b.proc.output().includes('balancer listening'), { deadlineMs: 20_000, what: `the balancer of ${b.machine} to listen\n${b.proc.output().slice(-1500)}` });
    }
  }, 120_000);

  afterAll(async () => {
    for (const b of balancers) {
      b.proc.kill('SIGKILL');
      await b.proc.exited;
    }
    await pebble?.stop();
    await drill?.down();
  });

  it('issues both domains, one challenge answered by the balancer that did not order it, and both balancers serve both certificates', async () => {
    const client = drill.cluster.registry.client;
    await drill.publish('shop', 2, 'shop');
    await drill.publish('blog', 2, 'blog');
    await client.addDomain('shop', DOMAINS.shop);
    await client.addDomain('blog', DOMAINS.blog);
    await waitFor(async () => (await client.listDomains()).filter((d) => d.certificate.state === 'issued').length === 2, {
      deadlineMs: 60_000,
      what: `both certificates issued\n${balancers.map((b) => `--- ${b.machine}\n${b.proc.output().slice(-1500)}`).join('\n')}`,
    });
    const certificates = await client.listCertificates();
    for (const b of balancers) {
      for (const [app, domain] of Object.entries(DOMAINS)) {
        const serial = certificates.find((c) => c.domain === domain)!.serial!;
        // Served by SNI once the certificate's event reached this balancer.
        await waitFor(async () => (await served(b.ip, domain)).cert.serialNumber?.toLowerCase() === serial.toLowerCase(), { deadlineMs: 10_000, what: `${b.machine} to serve ${domain}` });
        const s = await served(b.ip, domain);
        expect(s.authorized, `${b.machine} ${domain}`).toBe(true);
        expect(s.cert.subjectaltname).toContain(`DNS:${domain}`);
        expect(await waitFor(() => answeredBy(b.ip, domain), { deadlineMs: 10_000, what: `${domain} through ${b.machine}` })).toBe(app);
      }
    }
    process.stdout.write(`drill 10: ${Object.values(DOMAINS).join(' and ')} ordered by the balancer of ${balancers[0]!.machine}, checked at ${balancers.map((b) => b.machine).join(' and ')}; both balancers serve both\n`);
  }, 120_000);
});
