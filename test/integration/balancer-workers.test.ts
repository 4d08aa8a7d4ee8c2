// `berth balancer --workers 2` as a real process: a SIGKILLed worker loses only the requests it had in flight while the other keeps serving, and comes back; SIGTERM drains every worker so that a retrying client loses nothing across a replacement; a route and a certificate change reach every worker; an HTTP-01 challenge is answered whichever worker takes the connection; ACME runs in the primary only.
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { Agent, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLocalCertificates } from '../../balancer/local-certificates.js';
import { CertificateStore, DomainStore, newSealingKeyText, readSealingKey } from '../../registry/store/index.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';
import { getPort } from '../helpers/get-port.js';
import { traversableTempDir } from '../helpers/hoster-fixture.js';
import { createRoutedApp, runInstance, startAppServer } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';
import { alive, childrenOf } from '../helpers/process-table.js';

const TOKEN = 'balancer-workers-test-token';
/** A change in Redis reaches a worker's route table and certificates by the event stream within this. */
const PROPAGATION_MS = 5000;

let redis: TestRedis;
let registry: RegistryFixture;
let inspect: Redis;
let stand: Server;
let backend: string;
let dataDir: string;
let ca: string | undefined;
/** Requests the stand-in proxy holds until released. */
const held: (() => void)[] = [];
const daemons: DaemonProcess[] = [];

type Answer = { status: number; body: string; headers: IncomingHttpHeaders; fingerprint?: string };

function https(port: number, path: string, options: { agent?: Agent | false; servername?: string; headers?: Record<string, string>; timeoutMs?: number; anyCertificate?: boolean } = {}): Promise<Answer> {
  const servername = options.servername ?? 'localhost';
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, ca, servername, headers: { host: servername, ...options.headers }, agent: options.agent ?? false, checkServerIdentity: () => undefined, rejectUnauthorized: !options.anyCertificate },
      (res) => {
        const fingerprint = (res.socket as TLSSocket).getPeerCertificate?.().fingerprint256;
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, fingerprint }));
        res.on('error', reject);
      },
    );
    req.setTimeout(options.timeoutMs ?? 20_000, () => req.destroy(new Error('no answer in time')));
    req.on('error', reject);
    req.end();
  });
}

function http(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

interface WorkerReport {
  worker: number;
  pid: number;
  routes: Record<string, unknown> | null;
  backends: { inFlight: number }[];
}

/** Each worker's /_berth/balancer, asked on fresh connections until every one of `count` answered. */
async function reportsOfEach(adminPort: number, count: number): Promise<Map<number, WorkerReport>> {
  const seen = new Map<number, WorkerReport>();
  await waitFor(
    async () => {
      const r = JSON.parse((await http(adminPort, '/_berth/balancer')).body) as WorkerReport;
      seen.set(r.worker, r);
      return seen.size >= count;
    },
    { deadlineMs: 10_000, intervalMs: 5, what: `/_berth/balancer from each of ${count} workers` },
  );
  return seen;
}

interface Balancer {
  daemon: DaemonProcess;
  port: number;
  adminPort: number;
  httpPort: number;
}

async function startBalancer(env: Record<string, string>, port?: number): Promise<Balancer> {
  const [httpsPort, adminPort, httpPort] = [port ?? (await getPort()), await getPort(), await getPort()];
  const daemon = startDaemon(['balancer', '--workers', '2', '--host', '127.0.0.1', '--https-port', String(httpsPort), '--http-port', String(httpPort)], {
    BERTH_DATA_DIR: dataDir,
    BERTH_ADMIN_PORT: String(adminPort),
    BERTH_GRACE_MS: '5000',
    ...env,
  });
  daemons.push(daemon);
  // The CA of the workers' certificate: made by the primary before its workers start, kept for the next balancers.
  ca ??= await waitFor(() => (existsSync(join(dataDir, 'tls', 'ca.pem')) ? readFileSync(join(dataDir, 'tls', 'ca.pem'), 'utf8') : undefined), { deadlineMs: 30_000, what: 'the CA made' });
  await waitFor(async () => (await https(httpsPort, '/_berth/health', { timeoutMs: 2000 }).catch(() => ({ status: 0 }))).status !== 0 && childrenOf(daemon.child.pid!).length === 2, {
    deadlineMs: 30_000,
    what: 'the balancer and its 2 workers serving',
  });
  await reportsOfEach(adminPort, 2);
  return { daemon, port: httpsPort, adminPort, httpPort };
}

/** Behind a static stand-in proxy: no Redis needed. */
const staticEnv = () => ({ BERTH_BALANCER_BACKENDS: backend, BERTH_BALANCER_DISCOVER: 'false' });

beforeAll(async () => {
  dataDir = traversableTempDir('berth-balancer-workers-');
  stand = createServer((req, res) => {
    if (req.url === '/_berth/health') return void res.end('{"status":"ok"}');
    const answer = () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`answered ${req.url}`);
    if (req.url?.includes('hold')) held.push(answer);
    else answer();
  });
  await new Promise<void>((resolve) => stand.listen(0, '127.0.0.1', resolve));
  backend = `http://127.0.0.1:${(stand.address() as AddressInfo).port}`;
  redis = await startRedis();
  registry = await startTestRegistry(redis);
  inspect = new Redis(redis.url);
});

afterAll(async () => {
  for (const d of daemons) d.kill('SIGKILL');
  for (const release of held.splice(0)) release();
  stand?.closeAllConnections();
  stand?.close();
  inspect?.disconnect();
  await registry?.close();
  await redis?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('balancer workers', () => {
  it('a SIGKILLed worker loses only what it had in flight; the other keeps serving; the worker comes back', async () => {
    const { daemon, port, adminPort } = await startBalancer(staticEnv());
    // Requests held at the proxy, on connections of their own: cluster spreads them over the workers.
    const HELD = 4;
    // (Held as long as a slow worker restart on a loaded machine may take: only the kill may fail them.)
    const heldErrors: string[] = [];
    const holding = Array.from({ length: HELD }, (_, i) =>
      https(port, `/hold-${i}`, { timeoutMs: 80_000 }).then(
        (a) => a.status,
        (err: Error) => (heldErrors.push(err.message), 0),
      ),
    );
    await waitFor(() => held.length === HELD, { what: 'the held requests at the proxy' });
    const before = await reportsOfEach(adminPort, 2);
    const victim = [...before.values()].sort((a, b) => b.backends[0]!.inFlight - a.backends[0]!.inFlight)[0]!;
    const victimHeld = victim.backends[0]!.inFlight;
    expect(victimHeld).toBeGreaterThan(0);

    // A request loop, each request on a new connection (so no idle kept-alive socket to the victim counts).
    const LOOPS = 2;
    const outcomes: { start: number; end: number; ok: boolean }[] = [];
    let looping = true;
    const loops = Array.from({ length: LOOPS }, async (_, n) => {
      for (let i = 0; looping; i++) {
        const start = Date.now();
        const ok = await https(port, `/loop-${n}-${i}`).then(
          (a) => a.status === 200,
          () => false,
        );
        outcomes.push({ start, end: Date.now(), ok });
      }
    });
    await waitFor(() => outcomes.length >= 10, { what: 'the loop under way' });

    const killedAt = Date.now();
    process.kill(victim.pid, 'SIGKILL');
    await waitFor(() => daemon.output().includes(`balancer worker ${victim.worker} exited (SIGKILL)`), { what: 'the primary saying why it restarts the worker' });
    await waitFor(
      async () => {
        const now = await reportsOfEach(adminPort, 2);
        return now.get(victim.worker)!.pid !== victim.pid;
      },
      { deadlineMs: 20_000, what: 'a new worker in the killed one\'s slot, serving' },
    );
    const backAt = Date.now();
    await waitFor(() => outcomes.some((o) => o.start > backAt && o.ok), { what: 'the loop served after the restart' });
    looping = false;
    await Promise.all(loops);

    for (const release of held.splice(0)) release();
    const heldStatuses = await Promise.all(holding);
    // Exactly the victim's held requests were lost; the other worker's finished.
    expect(heldStatuses.filter((s) => s === 0), heldErrors.join(', ')).toHaveLength(victimHeld);
    expect(heldStatuses.filter((s) => s === 200)).toHaveLength(HELD - victimHeld);
    // Of the loop, at most what the victim had in flight at the kill (one per loop) failed; while
    // its slot was empty, the other worker served.
    const failed = outcomes.filter((o) => !o.ok);
    expect(failed.length).toBeLessThanOrEqual(LOOPS);
    // ...begun before the kill (a signal takes effect within microseconds: 100 ms is slack), and
    // answered at once by the connection's end, never left hanging.
    expect(failed.filter((o) => o.start > killedAt + 100 || o.end > killedAt + 5000)).toEqual([]);
    expect(outcomes.filter((o) => o.ok && o.start > killedAt && o.end < backAt).length).toBeGreaterThan(0);

    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  }, 90_000);

  it('SIGTERM drains every worker: a retrying client loses nothing across the replacement', async () => {
    const first = await startBalancer(staticEnv());
    const port = first.port;
    const HELD = 2;
    const holding = Array.from({ length: HELD }, (_, i) => https(port, `/hold-term-${i}`));
    await waitFor(() => held.length === HELD, { what: 'the held requests at the proxy' });

    // Retrying clients over kept-alive connections: a request that got no HTTP answer at all
    // (refused, reset, closed) goes again on a new connection, with backoff, for up to 15 s.
    const LOOPS = 3;
    const agents = Array.from({ length: LOOPS }, () => new Agent({ keepAlive: true, ca }));
    const results: { ok: boolean; attempts: number; start: number; what: string }[] = [];
    let looping = true;
    const loops = agents.map(async (agent, n) => {
      for (let i = 0; looping; i++) {
        const start = Date.now();
        let attempts = 0;
        let wait = 50;
        let answer: Answer | Error;
        for (;;) {
          attempts++;
          answer = await https(port, `/term-${n}-${i}`, { agent: attempts === 1 ? agent : false }).catch((err: Error) => err);
          if (!(answer instanceof Error) || Date.now() - start > 15_000) break;
          await new Promise((r) => setTimeout(r, wait));
          wait = Math.min(wait * 2, 250);
        }
        const ok = !(answer instanceof Error) && answer.status === 200 && answer.body === `answered /term-${n}-${i}`;
        results.push({ ok, attempts, start, what: answer instanceof Error ? answer.message : `${answer.status}` });
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    await waitFor(() => results.length >= 10, { what: 'the loops under way' });

    const workers = childrenOf(first.daemon.child.pid!);
    expect(workers).toHaveLength(2);
    first.daemon.kill('SIGTERM');
    await waitFor(() => (first.daemon.output().match(/the primary asks this worker to drain/g) ?? []).length === 2, { what: 'both workers draining' });
    for (const release of held.splice(0)) release();
    const heldAnswers = await Promise.all(holding);
    expect(heldAnswers.map((a) => [a.status, a.headers.connection])).toEqual(Array.from({ length: HELD }, () => [200, 'close']));
    expect(await first.daemon.exited).toBe(0);
    expect(workers.filter(alive)).toEqual([]);

    const stoppedAt = Date.now();
    const second = await startBalancer(staticEnv(), port);
    await waitFor(() => results.some((r) => r.start > stoppedAt && r.ok), { what: 'the loops served by the replacement' });
    looping = false;
    await Promise.all(loops);
    for (const a of agents) a.destroy();

    expect(results.filter((r) => !r.ok)).toEqual([]);
    // The gap between the two balancers was bridged by sending again, not by luck.
    expect(results.some((r) => r.attempts > 1)).toBe(true);
    second.daemon.kill('SIGTERM');
    expect(await second.daemon.exited).toBe(0);
  }, 90_000);

  it('a route and a certificate change reach every worker; an HTTP-01 challenge is answered by any; ACME runs in the primary only', async () => {
    const keyFile = join(dataDir, 'acme-key');
    writeFileSync(keyFile, newSealingKeyText(), { mode: 0o600 });
    const certificates = new CertificateStore(inspect, { keyPrefix: registry.prefix, sealingKey: readSealingKey(keyFile) });
    const domains = new DomainStore(inspect, { keyPrefix: registry.prefix });
    const directory = createServer((req, res) => res.writeHead(403, { 'content-type': 'application/problem+json' }).end('{"type":"urn:ietf:params:acme:error:unauthorized","detail":"this test CA refuses everyone"}'));
    await new Promise<void>((resolve) => directory.listen(0, '127.0.0.1', resolve));
    const refusingDirectory = `http://127.0.0.1:${(directory.address() as AddressInfo).port}`;
    const { daemon, port, adminPort, httpPort } = await startBalancer({
      ...staticEnv(),
      BERTH_BALANCER_DISCOVER: 'true',
      REDIS_URL: redis.url,
      BERTH_KEY_PREFIX: registry.prefix,
      BERTH_ACME_KEY_FILE: keyFile,
      BERTH_TOKEN_SHA256: createHash('sha256').update(TOKEN).digest('hex'),
      // ACME on, towards a directory that refuses: every attempt fails, and says so in the log of whoever made it.
      BERTH_ACME_DIRECTORY: `${refusingDirectory}/dir`,
      BERTH_ACME_CHECK_MS: '200',
      BERTH_ACME_RETRY_MS: '500',
    });
    const auth = { authorization: `Bearer ${TOKEN}` };
    // What each worker serves for shop.test, as told by the worker that answered the connection.
    const views = async () => {
      const seen = new Map<number, { fingerprint?: string; routes: Record<string, unknown> | null }>();
      await waitFor(
        async () => {
          const a = await https(port, '/_berth/balancer', { servername: 'shop.test', headers: auth, anyCertificate: true });
          const r = JSON.parse(a.body) as WorkerReport;
          seen.set(r.worker, { fingerprint: a.fingerprint, routes: r.routes });
          return seen.size >= 2;
        },
        { deadlineMs: 10_000, intervalMs: 5, what: 'a view from each worker' },
      );
      return seen;
    };
    const defaultFingerprint = (await https(port, '/_berth/health')).fingerprint;
    const start = await views();
    for (const v of start.values()) {
      expect(v.routes).not.toHaveProperty('/late');
      expect(v.fingerprint).toBe(defaultFingerprint);
    }

    // A new app's route, a domain and its operator's certificate, written to Redis once.
    const app = await startAppServer('late');
    try {
      await createRoutedApp(registry.daemon.apps, 'late', '/late');
      await runInstance(registry.daemon.store, 'late', '/late', 'm1', app.port);
      await domains.add('late', 'shop.test', '/');
      const pair = await ensureLocalCertificates({ dir: join(dataDir, 'shop'), names: ['shop.test'] });
      const shopFingerprint = new X509Certificate(pair.certPem).fingerprint256;
      const changedAt = Date.now();
      await certificates.setOperator('shop.test', pair.certPem, pair.keyPem);
      await waitFor(
        async () => {
          const now = await views();
          return [...now.values()].every((v) => v.routes !== null && '/late' in v.routes && v.fingerprint === shopFingerprint);
        },
        { deadlineMs: PROPAGATION_MS, what: 'the route and the certificate in every worker' },
      );
      expect(Date.now() - changedAt).toBeLessThan(PROPAGATION_MS);

      // HTTP-01: the answer is in Redis, so whichever worker cluster hands a connection to answers it.
      await certificates.putChallenge('tok-123', 'tok-123.thumbprint', 60_000);
      const answers = await Promise.all(Array.from({ length: 8 }, () => http(httpPort, '/.well-known/acme-challenge/tok-123')));
      expect(answers).toEqual(Array.from({ length: 8 }, () => ({ status: 200, body: 'tok-123.thumbprint' })));

      // ACME is the primary's alone: one issuer per balancer, not one per worker racing for the lease.
      await domains.add('late', 'acme-only.test', '/');
      const attempts = () => daemon.logLines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('could not obtain a certificate for acme-only.test'));
      await waitFor(() => attempts().length >= 2, { deadlineMs: 20_000, what: `two failed ACME attempts:\n${daemon.output().split('\n').filter((l) => /acme|ACME|certificate/.test(l)).slice(-8).join('\n')}` });
      expect(new Set(attempts().map((l) => l.pid))).toEqual(new Set([daemon.child.pid]));
    } finally {
      await app.close();
      directory.closeAllConnections();
      directory.close();
    }
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  }, 90_000);
});
