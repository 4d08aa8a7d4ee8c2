// `berth up` with its ACME settings pointed at a real pebble: an app published and given a domain with bin/berth domains:add gets a certificate from pebble, served over HTTPS by berth up's balancer (verified against pebble's root only), with plain HTTP on the domain redirected to HTTPS and HSTS sent.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli-process.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';
import { getPort } from '../helpers/get-port.js';
import { traversableTempDir } from '../helpers/hoster-fixture.js';
import { hasPebble, startPebble, type Pebble } from '../helpers/pebble.js';
import { platformProcesses } from '../helpers/platform-processes.js';
import { instancePortRange } from '../helpers/port-range.js';
import { waitFor } from '../helpers/wait-for.js';

if (!hasPebble) console.warn('pebble is not installed: the berth up ACME test is skipped (scripts/setup as root installs it: apt-get install pebble)');

const BIN_BERTH = new URL('../../bin/berth', import.meta.url).pathname;
const DOMAIN = 'shop.up-acme.test';

let dir: string;
let pebble: Pebble | undefined;
let up: DaemonProcess | undefined;
let httpsPort: number;
let httpPort: number;
let env: NodeJS.ProcessEnv;

/** bin/berth, as a user runs it from a checkout. */
function binBerth(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN_BERTH, args, { env: { PATH: process.env.PATH, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

function httpsGet(options: RequestOptions): Promise<{ status: number; headers: Record<string, unknown>; body: string; issuer: string; subjectaltname: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: httpsPort, agent: false, ...options }, (res) => {
      const peer = (res.socket as TLSSocket).getPeerCertificate();
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, issuer: String(peer.issuer.CN ?? ''), subjectaltname: peer.subjectaltname ?? '' }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  if (!hasPebble) return;
  dir = traversableTempDir('berth-up-acme-');
  httpsPort = await getPort();
  httpPort = await getPort();
  pebble = await startPebble({ dir, httpPort, env: { PEBBLE_VA_ALWAYS_VALID: '0', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' } });
  env = {
    BERTH_HOME: join(dir, 'home'),
    BERTH_MAX_LOAD_PER_CPU: '1000',
    BERTH_PORT_RANGE: instancePortRange(),
    BERTH_ACME_DIRECTORY: pebble.directory,
    BERTH_ACME_EMAIL: 'ops@up-acme.test',
    BERTH_ACME_CA_FILE: pebble.caFile,
    BERTH_ACME_CHECK_MS: '500',
  };
  up = startDaemon(
    ['up', '--data-dir', join(dir, 'data'), '--api-port', String(await getPort()), '--proxy-port', String(await getPort()), '--https-port', String(httpsPort), '--http-port', String(httpPort), '--redis-port', String(await getPort())],
    env,
  );
  await waitFor(() => up!.output().includes('running: press Ctrl-C to stop'), { deadlineMs: 60_000, what: `berth up\n${up.output()}` });
}, 120_000);

afterAll(async () => {
  if (up !== undefined) {
    up.kill('SIGTERM');
    const code = await Promise.race([up.exited, new Promise((r) => setTimeout(r, 45_000, 'still running'))]);
    if (code === 'still running') up.kill('SIGKILL');
    expect(code, up.output().slice(-3000)).toBe(0);
    // Nothing of the platform outlives berth up (pebble, under the same directory, is stopped next).
    const left = () => platformProcesses(dir).filter((p) => !/^\d+ pebble/.test(p));
    await waitFor(() => left().length === 0, { deadlineMs: 10_000, what: `every process of the platform gone: ${left().join('\n')}` });
  }
  await pebble?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!hasPebble)('berth up with ACME from pebble', () => {
  it('obtains a certificate for a domain added with bin/berth domains:add and serves it over HTTPS, with the redirect and HSTS', async () => {
    const app = mkdtempSync(join(tmpdir(), 'berth-up-acme-app-'));
    cpSync(new URL('../../examples/hello', import.meta.url), app, { recursive: true });
    try {
      const published = await runCli(['publish', app, '--name', 'shop', '--path', '/shop'], env, { deadlineMs: 120_000 });
      expect(published.code, published.stderr).toBe(0);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
    const added = await binBerth(['domains:add', 'shop', DOMAIN]);
    expect(added.code, added.stderr).toBe(0);

    const listed = await waitFor(async () => {
      const r = await binBerth(['domains:list']);
      return /issued until 20\d\d-/.test(r.stdout) ? r.stdout : undefined;
    }, { deadlineMs: 60_000, what: `the certificate of ${DOMAIN} issued\n${up!.output().slice(-3000)}` });
    expect(listed).toMatch(new RegExp(`${DOMAIN.replace(/\./g, '\\.')}\\s+shop\\s+/\\s+issued until`));
    const certs = await binBerth(['certs']);
    expect(certs.stdout).toMatch(new RegExp(`${DOMAIN.replace(/\./g, '\\.')}\\s+acme\\s+issued\\s+Pebble`));

    // Trusting pebble's root only: berth's own certificate (or any other) fails verification.
    const root = await pebble!.root();
    const res = await waitFor(() => httpsGet({ path: '/', servername: DOMAIN, headers: { host: DOMAIN }, ca: root }).catch(() => undefined), { what: "berth up's balancer to serve pebble's certificate" });
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as { app: string }).app).toBe('shop');
    expect(res.issuer).toMatch(/Pebble/i);
    expect(res.subjectaltname).toContain(`DNS:${DOMAIN}`);
    expect(res.headers['strict-transport-security']).toBe('max-age=31536000');

    // Plain HTTP on the domain goes to HTTPS on the same name; the challenge path does not.
    const plain = (path: string) =>
      new Promise<{ status: number; location?: string }>((resolve, reject) => {
        httpRequest({ host: '127.0.0.1', port: httpPort, path, headers: { host: DOMAIN }, agent: false }, (r) => {
          r.resume();
          r.on('end', () => resolve({ status: r.statusCode!, ...(r.headers.location ? { location: r.headers.location } : {}) }));
        })
          .on('error', reject)
          .end();
      });
    expect(await plain('/cart?x=1')).toEqual({ status: 308, location: `https://${DOMAIN}:${httpsPort}/cart?x=1` });
    expect((await plain('/.well-known/acme-challenge/unknown')).status).toBe(404);

    // The shared host keeps berth's own certificate, without the domain's HSTS.
    const ca = readFileSync(join(dir, 'data', 'tls', 'ca.pem'), 'utf8');
    const shared = await httpsGet({ path: '/shop', servername: 'localhost', ca });
    expect(shared.status).toBe(200);
    expect(shared.headers['strict-transport-security']).toBeUndefined();
  });
});
