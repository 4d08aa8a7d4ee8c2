// ami/provision.sh run for real: in throwaway Debian 13 roots (debootstrap, then an overlay per
// machine, entered with chroot in mount namespaces of their own), as the Packer build and a
// person would run it. Slow the first time (debootstrap); the root is cached after.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir, hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_UID_BASE } from '../../hoster/app-users.js';

const ROOT = join(import.meta.dirname, '..', '..');
const THROWAWAY = join(import.meta.dirname, 'throwaway-root.sh');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
// debootstrap and the first package installs under a loaded 2-core machine.
const BUILD_DEADLINE_MS = 30 * 60_000;
const PROVISION_DEADLINE_MS = 15 * 60_000;
const CHECK_DEADLINE_MS = 2 * 60_000;
// Two machines' worth of files, on a loaded disk.
const CLEANUP_DEADLINE_MS = 5 * 60_000;

const ALL_ROLES = 'registry,hoster,proxy,balancer';
const tool = (cmd: string, ...args: string[]) => spawnSync(cmd, args).error === undefined;
const missing = [
  process.getuid?.() !== 0 ? 'root' : '',
  tool('debootstrap', '--version') ? '' : 'debootstrap',
  tool('unshare', '--version') ? '' : 'unshare',
  tool('ip', '-V') ? '' : 'ip (iproute2)',
  tool('npm', '--version') ? '' : 'npm',
].filter(Boolean);
if (missing.length > 0) console.warn(`skipped: running ami/provision.sh in a throwaway root needs ${missing.join(', ')} (scripts/setup installs the tools as root)`);

// One cached root per version of the script that builds it; older ones are removed.
const CACHE_PARENT = process.env.BERTH_TEST_CACHE_DIR ?? join(homedir(), '.cache', 'berth-test');
const CACHE = join(CACHE_PARENT, `throwaway-debian-${createHash('sha256').update(readFileSync(THROWAWAY)).digest('hex').slice(0, 12)}`);

let work: string;
let tarball: string;

interface Machine {
  run(command: string[], options?: { network?: boolean; addresses?: string[] }): { status: number | null; out: string };
  sh(script: string): { status: number | null; out: string };
}

/** A fresh machine: an overlay over `lower`, with the tarball and ami/ in /srv/berth. */
function machine(name: string, lower: string): Machine {
  const upper = join(work, name);
  const srv = join(upper, 'data', 'srv', 'berth');
  mkdirSync(srv, { recursive: true });
  cpSync(tarball, join(srv, 'berth.tgz'));
  cpSync(join(ROOT, 'ami'), join(srv, 'ami'), { recursive: true });
  cpSync(join(ROOT, 'examples', 'hello'), join(srv, 'hello'), { recursive: true });
  const run = (command: string[], options: { network?: boolean; addresses?: string[] } = {}) => {
    const args = ['run', lower, upper, ...command];
    // Without the network: a network namespace of its own, with only loopback carrying the
    // machine's own addresses (and a pid namespace, so nothing started in it outlives the command).
    const up = ['ip link set lo up', ...(options.addresses ?? []).map((a) => `ip addr add ${a}/${a.includes(':') ? 128 : 32} dev lo`)].join(' && ');
    const r = options.network === false
      ? spawnSync('unshare', ['--net', '--pid', '--fork', '--', '/bin/sh', '-c', `${up} && exec "$@"`, 'sh', THROWAWAY, ...args], { encoding: 'utf8', timeout: PROVISION_DEADLINE_MS })
      : spawnSync(THROWAWAY, args, { encoding: 'utf8', timeout: PROVISION_DEADLINE_MS });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };
  return { run, sh: (script) => run(['/bin/bash', '-c', script]) };
}

/** `stat` of paths in the machine: path → "mode owner:group". */
function stats(m: Machine, paths: string[]): Record<string, string> {
  const r = m.sh(`stat -c '%n %a %U:%G' ${paths.join(' ')}`);
  expect(r.status, r.out).toBe(0);
  return Object.fromEntries(r.out.trim().split('\n').map((l) => { const [p, ...rest] = l.split(' '); return [p!, rest.join(' ')]; }));
}

function envFile(m: Machine): Record<string, string> {
  const r = m.sh('cat /etc/berth/berth.env');
  expect(r.status, r.out).toBe(0);
  return Object.fromEntries(r.out.split('\n').filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

describe.skipIf(missing.length > 0)('ami/provision.sh in a throwaway Debian root', () => {
  beforeAll(() => {
    mkdirSync(CACHE_PARENT, { recursive: true });
    for (const old of readdirSync(CACHE_PARENT)) {
      if (old.startsWith('throwaway-debian-') && !old.startsWith(basename(CACHE))) rmSync(join(CACHE_PARENT, old), { recursive: true, force: true });
    }
    if (!existsSync(join(CACHE, '.complete'))) execFileSync(THROWAWAY, ['build', CACHE], { stdio: 'inherit', timeout: BUILD_DEADLINE_MS });
    work = mkdtempSync(join(tmpdir(), 'berth-provision-'));
    const name = execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!;
    tarball = join(work, name);
  }, BUILD_DEADLINE_MS);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  }, CLEANUP_DEADLINE_MS);

  describe('a whole platform on one machine (registry with its Redis, hoster, proxy, balancer), from a bare Debian', () => {
    let m: Machine;
    let first: { status: number | null; out: string };
    beforeAll(() => {
      m = machine('registry', join(CACHE, 'base'));
      first = m.run(['/srv/berth/ami/provision.sh', '--roles', ALL_ROLES, '--redis-bind', '0.0.0.0', '--env', 'BERTH_LOG_LEVEL=info', '--tarball', '/srv/berth/berth.tgz']);
    }, PROVISION_DEADLINE_MS);

    it('installs Node.js, npm, Redis and berth, and berth runs there', () => {
      expect(first.status, first.out).toBe(0);
      expect(first.out).toContain('installing nodejs');
      expect(first.out).toContain('installing redis-server');
      expect(first.out).toContain('systemd is not running here');
      const r = m.sh('berth --version && readlink -f /usr/local/bin/berth && node --version && berth registry --help');
      expect(r.status, r.out).toBe(0);
      const [version, target, node] = r.out.split('\n');
      expect(version).toBe(VERSION);
      expect(target).toBe('/opt/berth/lib/node_modules/berth/dist/cli/main.js');
      expect(Number(/^v(\d+)/.exec(node!)?.[1])).toBeGreaterThanOrEqual(20);
      expect(r.out).toContain('--key-prefix');
    });

    it('makes the users, directories and settings with the right owners and modes', () => {
      const users = m.sh('getent passwd berth');
      expect(users.status, users.out).toBe(0);
      expect(users.out).toMatch(/^berth:x:\d+:\d+::\/var\/lib\/berth:\/usr\/sbin\/nologin$/m);
      expect(stats(m, ['/etc/berth', '/etc/berth/berth.env', '/etc/berth/acme-key', '/etc/berth/redis.conf', '/var/lib/berth', '/var/lib/berth/hoster', '/var/lib/berth/tls', '/var/lib/berth/redis', '/var/lib/berth/git', '/var/lib/berth/addon-backups'])).toEqual({
        '/etc/berth': '755 root:root',
        '/etc/berth/berth.env': '640 root:berth',
        '/etc/berth/acme-key': '640 root:berth',
        '/etc/berth/redis.conf': '640 root:redis',
        '/var/lib/berth': '711 root:root',
        '/var/lib/berth/hoster': '711 root:root',
        '/var/lib/berth/tls': '700 berth:berth',
        '/var/lib/berth/redis': '750 redis:redis',
        '/var/lib/berth/git': '700 berth:berth',
        '/var/lib/berth/addon-backups': '700 berth:berth',
      });
      const env = envFile(m);
      expect(env.BERTH_TOKEN).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect(env.BERTH_TOKEN_SHA256).toBe(createHash('sha256').update(env.BERTH_TOKEN!).digest('hex'));
      expect(env.BERTH_DATA_DIR).toBe('/var/lib/berth');
      expect(env.BERTH_GIT_DIR).toBe('/var/lib/berth/git');
      // Not the unit's private /tmp, which each restart wipes.
      expect(env.BERTH_ADDON_BACKUP_DIR).toBe('/var/lib/berth/addon-backups');
      // The key sealing certificates' keys in Redis, made up here: other balancers and registries get it with --acme-key.
      expect(env.BERTH_ACME_KEY_FILE).toBe('/etc/berth/acme-key');
      expect(m.sh('cat /etc/berth/acme-key').out).toMatch(/^[0-9a-f]{64}\n$/);
      const address = /^http:\/\/([0-9a-f.:]+):8080$/.exec(env.BERTH_PROXY_URL!)?.[1];
      expect(address, env.BERTH_PROXY_URL).toBeDefined();
      expect(env.BERTH_TRUSTED_PROXIES).toBe(`127.0.0.1,::1,::ffff:127.0.0.1,${address}`);
      const password = /^redis:\/\/:([A-Za-z0-9_-]{32})@127\.0\.0\.1:6379$/.exec(env.REDIS_URL!)?.[1];
      expect(password, env.REDIS_URL).toBeDefined();
      const conf = m.sh('cat /etc/berth/redis.conf').out;
      expect(conf).toMatch(/^appendonly yes$/m);
      expect(conf).toMatch(/^bind 0\.0\.0\.0$/m);
      expect(conf).toContain(`requirepass "${password}"`);
      // Apps see only their own processes from the next boot: /proc with hidepid=2, but for
      // group berth (the proxy's CPU sampler names the busiest instance).
      const gid = m.sh('getent group berth | cut -d: -f3').out.trim();
      expect(gid).toMatch(/^\d+$/);
      expect(m.sh('cat /etc/fstab').out).toContain(`proc /proc proc defaults,hidepid=2,gid=${gid} 0 0`);
    });

    it('installs and enables the units of its roles and Redis, and masks Debian\'s redis-server', () => {
      const r = m.sh('cd /etc/systemd/system && ls berth-*.service && for u in multi-user.target.wants/berth-*; do echo "$u -> $(readlink "$u")"; done && echo "redis-server -> $(readlink redis-server.service)"');
      expect(r.status, r.out).toBe(0);
      expect(r.out.split('\n').filter(Boolean)).toEqual([
        'berth-balancer.service',
        'berth-hoster.service',
        'berth-proxy.service',
        'berth-redis.service',
        'berth-registry.service',
        ...['balancer', 'hoster', 'proxy', 'redis', 'registry'].map((u) => `multi-user.target.wants/berth-${u}.service -> /etc/systemd/system/berth-${u}.service`),
        'redis-server -> /dev/null',
      ]);
      for (const unit of ['balancer', 'hoster', 'proxy', 'redis', 'registry'].map((u) => `berth-${u}.service`)) {
        expect(m.sh(`cmp /etc/systemd/system/${unit} /srv/berth/ami/systemd/${unit}`).status).toBe(0);
      }
      // Verified where they are installed, with the programs they name really there.
      const verify = m.sh('systemd-analyze verify /etc/systemd/system/berth-*.service');
      expect(verify.out).toBe('');
      expect(verify.status).toBe(0);
    });

    it('runs as set up: Redis, the registry with the token, the hoster with only its unit\'s capabilities running an app as a user of its own, the balancer on 443', () => {
      // Each daemon as its unit runs it (user, capabilities, no new privileges), without systemd.
      const script = `
        set -e
        set -a; . /etc/berth/berth.env; set +a
        as() { user=$1; shift; setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs "$@"; }
        as redis redis-server /etc/berth/redis.conf >/tmp/redis.log 2>&1 &
        as berth berth registry >/tmp/registry.log 2>&1 &
        as berth berth proxy >/tmp/proxy.log 2>&1 &
        # The balancer on 443 and 80 as its unit says: user berth with CAP_NET_BIND_SERVICE alone.
        unit=/etc/systemd/system/berth-balancer.service
        bind=$(sed -n 's/^AmbientCapabilities=//p' $unit | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
        env $(sed -n 's/^Environment=//p' $unit) setpriv --reuid=berth --regid=berth --init-groups --no-new-privs --inh-caps="-all,$bind" --ambient-caps="-all,$bind" --bounding-set="-all,$bind" berth balancer >/tmp/balancer.log 2>&1 &
        caps=$(sed -n 's/^CapabilityBoundingSet=//p' /etc/systemd/system/berth-hoster.service | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
        # This shared test machine's load average is no measure of the throwaway root's room.
        BERTH_MAX_LOAD_PER_CPU=1000 setpriv --no-new-privs --inh-caps=-all --bounding-set="-all,$caps" berth hoster >/tmp/hoster.log 2>&1 &
        logs() { tail -n 20 /tmp/redis.log /tmp/registry.log /tmp/hoster.log /tmp/proxy.log /tmp/balancer.log; }
        trap 'logs' ERR
        node --input-type=module -e '
          const deadline = Date.now() + ${CHECK_DEADLINE_MS};
          const get = (path, token) => fetch("http://127.0.0.1:7070" + path, { headers: token ? { authorization: "Bearer " + token } : {} });
          for (;;) {
            try { if ((await get("/healthz")).ok) break; } catch {}
            if (Date.now() > deadline) { console.log("registry never answered"); process.exit(1); }
            await new Promise((r) => setTimeout(r, 200));
          }
          console.log("apps with token", (await get("/v1/apps", process.env.BERTH_TOKEN)).status);
          console.log("apps without token", (await get("/v1/apps")).status);
        '
        BERTH_URL=http://127.0.0.1:7070 berth publish /srv/berth/hello --timeout ${CHECK_DEADLINE_MS / 1000} >/tmp/publish.log 2>&1 || { cat /tmp/publish.log; logs; exit 1; }
        node -e 'fetch("http://127.0.0.1:8080/hello").then(async (r) => console.log("hello through the proxy", r.status, (await r.text()).length > 0))'
        # The balancer finds the machine's proxy through the registry (BERTH_PROXY_URL) and
        # answers HTTPS with the certificate of its self-made CA.
        NODE_EXTRA_CA_CERTS=/var/lib/berth/tls/ca.pem node --input-type=module -e '
          const deadline = Date.now() + ${CHECK_DEADLINE_MS};
          for (;;) {
            try {
              const r = await fetch("https://localhost/hello");
              if (r.ok) { console.log("hello through the balancer", r.status, JSON.parse(await r.text()) !== null); break; }
            } catch {}
            if (Date.now() > deadline) { console.log("the balancer never served /hello"); process.exit(1); }
            await new Promise((r) => setTimeout(r, 200));
          }
          const plain = await fetch("http://localhost/hello", { redirect: "manual" });
          console.log("plain HTTP", plain.status, plain.headers.get("location"));
          const internal = await fetch("https://localhost/_berth/balancer");
          const asAdmin = await fetch("https://localhost/_berth/balancer", { headers: { authorization: "Bearer " + process.env.BERTH_TOKEN } });
          console.log("internal report", internal.status, "with the token", asAdmin.status);
        '
        for p in /proc/[0-9]*; do
          if tr '\\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q '^node server.js'; then echo "app uid $(awk '/^Uid:/ { print $2 }' "$p/status")"; fi
        done
        ls /var/lib/berth/redis/appendonlydir | sed -n 's/.*\\.\\(manifest\\)$/aof \\1/p'
      `;
      const address = new URL(envFile(m).BERTH_PROXY_URL!).hostname;
      const r = m.run(['/bin/bash', '-c', script], { network: false, addresses: [address] });
      expect(r.status, r.out).toBe(0);
      expect(r.out).toContain('apps with token 200');
      expect(r.out).toContain('apps without token 401');
      expect(r.out).toContain('hello through the proxy 200 true');
      expect(r.out).toContain('hello through the balancer 200 true');
      // The redirect goes to the platform's own name (here the host name), never the client's Host.
      expect(r.out).toContain(`plain HTTP 308 https://${hostname()}/hello`);
      // Internal reports only to a token: the balancer checks it by the digest provisioning wrote.
      expect(r.out).toContain('internal report 401 with the token 200');
      const uid = /^app uid (\d+)$/m.exec(r.out);
      expect(uid, r.out).not.toBeNull();
      expect(Number(uid![1])).toBeGreaterThanOrEqual(APP_UID_BASE);
      expect(r.out).toContain('aof manifest');
    }, CHECK_DEADLINE_MS * 3);

    it('changes nothing when run again with the same roles', () => {
      const before = m.sh('sha256sum /etc/berth/berth.env /etc/berth/acme-key /etc/berth/redis.conf /etc/fstab /etc/systemd/system/berth-*.service').out;
      const again = m.run(['/srv/berth/ami/provision.sh', '--roles', ALL_ROLES, '--redis-bind', '0.0.0.0', '--env', 'BERTH_LOG_LEVEL=info', '--tarball', '/srv/berth/berth.tgz']);
      expect(again.status, again.out).toBe(0);
      expect(again.out).not.toContain('installing');
      expect(again.out).not.toContain('creating');
      expect(m.sh('sha256sum /etc/berth/berth.env /etc/berth/acme-key /etc/berth/redis.conf /etc/fstab /etc/systemd/system/berth-*.service').out).toBe(before);
    }, PROVISION_DEADLINE_MS);
  });

  describe('an app machine (hoster, proxy) from the image, joining it at first boot', () => {
    let m: Machine;
    beforeAll(() => {
      // Node.js and npm already installed (their install is tested above).
      m = machine('app', `${join(CACHE, 'node')}:${join(CACHE, 'base')}`);
    });

    it('--image (the Packer build) installs berth, itself and the units, but writes no settings and enables nothing', () => {
      const r = m.run(['/srv/berth/ami/provision.sh', '--image', '--roles', 'hoster,proxy', '--tarball', '/srv/berth/berth.tgz']);
      expect(r.status, r.out).toBe(0);
      expect(r.out).not.toContain('installing nodejs');
      const state = m.sh('berth --version; readlink /usr/local/sbin/berth-provision; ls /etc/systemd/system/berth-*; ls /etc/systemd/system/multi-user.target.wants | grep -c berth; test -e /etc/berth/berth.env || echo no settings');
      expect(state.out.split('\n').filter(Boolean)).toEqual([
        VERSION,
        '/opt/berth/lib/node_modules/berth/ami/provision.sh',
        '/etc/systemd/system/berth-hoster.service',
        '/etc/systemd/system/berth-proxy.service',
        '0',
        'no settings',
      ]);
    }, PROVISION_DEADLINE_MS);

    it('refuses to join without the platform\'s token, and says where it is', () => {
      const r = m.run(['/usr/local/sbin/berth-provision', '--roles', 'hoster,proxy', '--redis-url', 'redis://:pw@10.0.0.5:6379']);
      expect(r.status).not.toBe(0);
      expect(r.out).toContain('--token');
    }, PROVISION_DEADLINE_MS);

    it('joins with the Redis URL and token of its user-data, ', () => {
      const r = m.run(['/usr/local/sbin/berth-provision', '--roles', 'hoster,proxy', '--redis-url', 'redis://:pw@10.0.0.5:6379', '--token', 'tok-123', '--env', 'BERTH_TRUSTED_PROXIES=10.0.0.5']);
      expect(r.status, r.out).toBe(0);
      expect(envFile(m)).toEqual({
        REDIS_URL: 'redis://:pw@10.0.0.5:6379',
        BERTH_TOKEN: 'tok-123',
        BERTH_TOKEN_SHA256: createHash('sha256').update('tok-123').digest('hex'),
        BERTH_DATA_DIR: '/var/lib/berth',
        BERTH_TRUSTED_PROXIES: '10.0.0.5',
        BERTH_PROXY_URL: expect.stringMatching(/^http:\/\/[0-9a-f.:]+:8080$/),
      });
      expect(stats(m, ['/var/lib/berth', '/var/lib/berth/hoster'])).toEqual({ '/var/lib/berth': '711 root:root', '/var/lib/berth/hoster': '711 root:root' });
      // redis-server is there for Redis add-ons (one server per add-on, run by the hoster), its own service off.
      const units = m.sh('ls /etc/systemd/system/multi-user.target.wants/ | grep -e berth -e redis; command -v redis-server; test -e /etc/berth/acme-key || echo no certificate key');
      expect(units.out.split('\n').filter(Boolean)).toEqual(['berth-hoster.service', 'berth-proxy.service', '/usr/bin/redis-server', 'no certificate key']);
      const verify = m.sh('systemd-analyze verify /etc/systemd/system/berth-*.service');
      expect(verify.out).toBe('');
      expect(verify.status).toBe(0);
    }, PROVISION_DEADLINE_MS);

    it('as a balancer too, refuses to go on without the certificate key, then holds the one it is given', () => {
      const join = ['/usr/local/sbin/berth-provision', '--roles', 'hoster,proxy,balancer', '--redis-url', 'redis://:pw@10.0.0.5:6379', '--token', 'tok-123', '--no-start'];
      const refused = m.run(join);
      expect(refused.status).not.toBe(0);
      expect(refused.out).toContain('--acme-key');
      expect(refused.out).toContain('/etc/berth/acme-key');
      expect(m.run([...join, '--acme-key', 'not-hex']).out).toContain('64 hex characters');
      const key = 'ab'.repeat(32);
      const r = m.run([...join, '--acme-key', key]);
      expect(r.status, r.out).toBe(0);
      expect(m.sh('cat /etc/berth/acme-key').out).toBe(`${key}\n`);
      expect(stats(m, ['/etc/berth/acme-key'])).toEqual({ '/etc/berth/acme-key': '640 root:berth' });
      expect(envFile(m).BERTH_ACME_KEY_FILE).toBe('/etc/berth/acme-key');
      // Run again without it: the key it holds is kept.
      const again = m.run(join);
      expect(again.status, again.out).toBe(0);
      expect(m.sh('cat /etc/berth/acme-key').out).toBe(`${key}\n`);
    }, PROVISION_DEADLINE_MS);
  });
});
