// Apps as attackers: with the hoster as root, each app runs as a user of its own and builds as
// another; install scripts cannot read the machine's secrets, one app cannot read another's
// environment, files or home, nor signal it, nor take the port the hoster gave it.
import { createServer, type Server } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { APP_UID_BASE } from '../../hoster/app-users.js';
import type { Instance } from '../../registry/store/instance.js';
import type { BerthClient } from '../../sdk/berth-client.js';
import { helloApp, startTestHoster, uploadApp, type HosterFixture } from '../helpers/hoster-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const ROOT = process.getuid?.() === 0;

let redis: TestRedis;
let registry: RegistryFixture;
let client: BerthClient;
let hosters: HosterFixture[] = [];

async function hoster(overrides: Record<string, unknown> = {}): Promise<HosterFixture> {
  const h = await startTestHoster(redis, registry.prefix, 'm1', overrides);
  hosters.push(h);
  return h;
}

async function runningOne(app: string): Promise<Instance> {
  return waitFor(async () => (await client.listAppInstances(app)).find((i) => i.state === 'running'), { deadlineMs: 60_000, what: `${app} running` });
}

async function getJson(port: number, path = '/'): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as Record<string, unknown>;
}

/** What happened when the app tried: 'ok' or the error code. */
const TRY = `
function attempt(f) { try { f(); return 'ok'; } catch (e) { return e.code || String(e); } }
`;

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis, { reconcileIntervalMs: 50, drainMs: 200, leaseMs: 3000 });
  client = registry.client;
});

afterEach(async () => {
  await Promise.all(hosters.map((h) => h.close({ evacuate: false })));
  hosters = [];
  for (const app of await client.listApps()) await client.deleteApp(app.name).catch(() => undefined);
});

afterAll(async () => {
  await registry.close();
  await redis.stop();
});

describe.skipIf(!ROOT)(`apps as attackers${ROOT ? '' : ' (skipped: apps get users of their own only when the hoster is root; CI runs as root)'}`, () => {
  it("runs npm and every install script as the app's build user, who cannot read the machine's secrets, and the app as another user who cannot change its code", async () => {
    const h = await hoster();
    const secret = join(h.dataDir, 'secrets.json');
    writeFileSync(secret, '{"token":"do-not-leak"}\n', { mode: 0o600 });
    const record = `${TRY}
const fs = require('node:fs');
const path = require('node:path');
fs.writeFileSync(path.join(__dirname, process.argv[2] + '.json'), JSON.stringify({
  uid: process.getuid(),
  secret: attempt(() => fs.readFileSync(${JSON.stringify(secret)})),
  leaked: Object.keys(process.env).filter((k) => /REDIS|TOKEN|SECRET|PASSWORD/.test(k)),
}));
`;
    const bundle = await uploadApp(client, {
      'package.json': JSON.stringify({ name: 'builder', version: '1.0.0', dependencies: { dep: 'file:./dep' }, scripts: { preinstall: 'node record.js pre' } }),
      'record.js': record,
      'dep/package.json': JSON.stringify({ name: 'dep', version: '1.0.0', scripts: { postinstall: 'node ../record.js post' } }),
      'server.js': `${TRY}
const fs = require('node:fs');
require('node:http').createServer((req, res) => {
  res.end(JSON.stringify({
    uid: process.getuid(),
    pre: JSON.parse(fs.readFileSync(__dirname + '/pre.json', 'utf8')),
    post: JSON.parse(fs.readFileSync(__dirname + '/post.json', 'utf8')),
    writeOwnCode: attempt(() => fs.writeFileSync(__filename, 'hacked')),
    addToOwnCode: attempt(() => fs.writeFileSync(__dirname + '/new.js', 'x')),
  }));
}).listen(Number(process.env.PORT), process.env.HOST);
`,
    });
    await client.publishApp({ name: 'builder', path: '/builder', instances: 1, bundle, env: { SECRET_OF_APP: 'x' } });
    const instance = await runningOne('builder');
    const seen = await getJson(instance.port!);
    const uid = seen.uid as number;
    expect(uid).toBeGreaterThanOrEqual(APP_UID_BASE);
    const build = { uid: uid + 1, secret: 'EACCES', leaked: [] };
    expect(seen.pre, 'preinstall').toEqual(build);
    expect(seen.post, "a dependency's postinstall").toEqual(build);
    expect(seen.writeOwnCode).toBe('EACCES');
    expect(seen.addToOwnCode).toBe('EACCES');
  });

  it("keeps one app out of another's environment, files, home and log, and from signalling it", async () => {
    const h = await hoster();
    await client.publishApp({ name: 'victim', path: '/victim', instances: 1, bundle: await uploadApp(client, helloApp()), env: { GREETING: 'private' } });
    await client.publishApp({
      name: 'mallory',
      path: '/mallory',
      instances: 1,
      bundle: await uploadApp(client, {
        'server.js': `${TRY}
const fs = require('node:fs');
require('node:http').createServer((req, res) => {
  const q = new URL(req.url, 'http://x').searchParams;
  const pid = Number(q.get('pid'));
  const out = { uid: process.getuid(), environ: attempt(() => fs.readFileSync('/proc/' + pid + '/environ')), mem: attempt(() => fs.readFileSync('/proc/' + pid + '/mem')), signal: attempt(() => process.kill(pid, 0)), ownEnviron: attempt(() => fs.readFileSync('/proc/self/environ')) };
  for (const p of q.getAll('path')) out[p] = attempt(() => (fs.statSync(p).isDirectory() ? fs.readdirSync(p) : fs.readFileSync(p)));
  res.end(JSON.stringify(out));
}).listen(Number(process.env.PORT), process.env.HOST);
`,
      }),
    });
    const victim = await runningOne('victim');
    const mallory = await runningOne('mallory');
    const victimUid = (await getJson(victim.port!)).uid as number;
    const hosterDir = join(h.dataDir, 'hoster');
    const instanceDir = join(hosterDir, 'instances', `${victim.id}-${victim.epoch}`);
    const code = join(hosterDir, 'bundles', `${victim.files}-${victimUid}`, 'app', 'server.js');
    // The paths exist: root reads them.
    expect(readFileSync(code, 'utf8')).toContain('createServer');
    const paths = [code, join(instanceDir, 'home'), join(instanceDir, 'app.log'), join(hosterDir, 'instances'), join(hosterDir, 'app-users.json')];
    const query = new URLSearchParams([['pid', String(victim.pid)], ...paths.map((p): [string, string] => ['path', p])]);
    const seen = await getJson(mallory.port!, `/?${query}`);
    expect(seen.uid).not.toBe(victimUid);
    expect(seen.ownEnviron).toBe('ok');
    expect(seen).toMatchObject({ environ: 'EACCES', mem: 'EACCES', signal: 'EPERM' });
    for (const p of paths) expect(seen[p], p).toBe('EACCES');
  });

  it('never routes to another user listening on the port the hoster gave an instance, and runs it on another port', async () => {
    await hoster();
    // Listens late, so that the squatter gets there first.
    await client.publishApp({
      name: 'late',
      path: '/late',
      instances: 1,
      healthCheck: { attempts: 200 },
      bundle: await uploadApp(client, helloApp("if (!require('node:fs').existsSync('/tmp/berth-no-such-file')) { const until = Date.now() + 3000; while (Date.now() < until); }")),
    });
    const claimed = await waitFor(async () => (await client.listAppInstances('late')).find((i) => i.port !== null), { deadlineMs: 30_000, what: 'a port for late' });
    let squatter: Server | undefined;
    try {
      squatter = await new Promise<Server>((resolve, reject) => {
        const s = createServer((req, res) => res.end('{"squatter":true}'));
        s.once('error', reject);
        s.listen(claimed.port!, '127.0.0.1', () => resolve(s));
      });
      // Until it runs elsewhere, it must never count as running on the squatted port.
      let runningOnSquattedPort = false;
      const again = await waitFor(async () => {
        const [i] = await client.listAppInstances('late');
        if (i?.state === 'running' && i.port === claimed.port) runningOnSquattedPort = true;
        return i?.state === 'running' && i.port !== claimed.port ? i : undefined;
      }, { deadlineMs: 30_000, what: 'late running on another port' });
      expect(runningOnSquattedPort).toBe(false);
      expect(again.epoch).toBeGreaterThan(claimed.epoch);
      expect((await getJson(again.port!)).squatter).toBeUndefined();
    } finally {
      squatter?.close();
    }
  });

  it("refuses one app's connections to another app's port (and to its own: only the proxy and the hoster connect to instances)", async () => {
    await hoster();
    await client.publishApp({ name: 'target', path: '/target', instances: 1, bundle: await uploadApp(client, helloApp()) });
    await client.publishApp({
      name: 'prober',
      path: '/prober',
      instances: 1,
      bundle: await uploadApp(client, {
        'server.js': `
const http = require('node:http');
const probe = (host, port) => new Promise((resolve) => {
  const req = http.get({ host, port, path: '/', timeout: 3000 }, (res) => { res.resume(); resolve('answered ' + res.statusCode); });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  req.on('error', (e) => resolve(e.code || String(e)));
});
http.createServer(async (req, res) => {
  const q = new URL(req.url, 'http://x').searchParams;
  const out = {};
  for (const target of q.getAll('to')) { const [host, port] = target.split('|'); out[target] = await probe(host, Number(port)); }
  res.end(JSON.stringify(out));
}).listen(Number(process.env.PORT), process.env.HOST);
`,
      }),
    });
    const target = await runningOne('target');
    const prober = await runningOne('prober');
    // Root (as the proxy) reaches both.
    expect((await getJson(target.port!)).uid).toBeTypeOf('number');
    const to = [`127.0.0.1|${target.port}`, `::1|${target.port}`, `127.0.0.1|${prober.port}`];
    const seen = await getJson(prober.port!, `/?${new URLSearchParams(to.map((t): [string, string] => ['to', t]))}`);
    expect(seen).toEqual({ [to[0]!]: 'ECONNREFUSED', [to[1]!]: 'ECONNREFUSED', [to[2]!]: 'ECONNREFUSED' });
  });
});
