import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const UNITS = join(ROOT, 'ami', 'systemd');
const ROLES = ['registry', 'hoster', 'proxy', 'balancer'];
const unitFiles = readdirSync(UNITS).filter((f) => f.endsWith('.service'));

/** `Key=value` lines of a unit, all values of each key (a key may repeat). */
function directives(file: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of readFileSync(join(UNITS, file), 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) map.set(m[1]!, [...(map.get(m[1]!) ?? []), m[2]!]);
  }
  return map;
}

describe('the systemd units of ami/', () => {
  it('has one per role and one for Redis', () => {
    expect(unitFiles.sort()).toEqual([...ROLES.map((r) => `berth-${r}.service`), 'berth-redis.service'].sort());
  });

  it.each(unitFiles)('%s is sandboxed, restarts on failure and has limits', (file) => {
    const d = directives(file);
    for (const [key, value] of Object.entries({
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      Restart: 'on-failure',
    })) {
      expect(d.get(key), `${file}: ${key}`).toEqual([value]);
    }
    expect(d.get('RestartSec'), `${file}: RestartSec`).toHaveLength(1);
    expect(Number(d.get('LimitNOFILE')?.[0])).toBeGreaterThanOrEqual(65536);
    expect(d.get('CapabilityBoundingSet'), `${file}: CapabilityBoundingSet`).toHaveLength(1);
    expect(d.get('WantedBy')).toEqual(['multi-user.target']);
  });

  it('gives each daemon what it needs and no more', () => {
    const hoster = directives('berth-hoster.service');
    expect(hoster.get('KillMode')).toEqual(['control-group']);
    // Apps run as their own users only when the hoster is root: root bounded to switching
    // users, owning their files and stopping them.
    expect(hoster.get('User')).toEqual(['root']);
    expect(hoster.get('CapabilityBoundingSet')![0]!.split(' ')).toEqual(expect.arrayContaining(['CAP_SETUID', 'CAP_SETGID', 'CAP_CHOWN', 'CAP_KILL']));
    expect(hoster.get('ReadWritePaths')).toEqual(['/var/lib/berth/hoster']);
    const balancer = directives('berth-balancer.service');
    expect(balancer.get('User')).toEqual(['berth']);
    expect(balancer.get('AmbientCapabilities')).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(balancer.get('CapabilityBoundingSet')).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(balancer.get('ReadWritePaths')).toEqual(['/var/lib/berth/tls']);
    for (const role of ['registry', 'proxy']) {
      const d = directives(`berth-${role}.service`);
      expect(d.get('User')).toEqual(['berth']);
      expect(d.get('CapabilityBoundingSet')).toEqual(['']);
    }
    // The registry writes only the git remotes' cache and the add-on backups; the proxy nothing.
    expect(directives('berth-registry.service').get('ReadWritePaths')).toEqual(['-/var/lib/berth/git -/var/lib/berth/addon-backups']);
    expect(directives('berth-proxy.service').get('ReadWritePaths')).toBeUndefined();
    const redis = directives('berth-redis.service');
    expect(redis.get('ExecStart')).toEqual(['/usr/bin/redis-server /etc/berth/redis.conf']);
    expect(redis.get('ReadWritePaths')).toEqual(['/var/lib/berth/redis']);
  });
});

const canVerify = spawnSync('systemd-analyze', ['--version']).status === 0 && process.getuid?.() === 0 && spawnSync('redis-server', ['--version']).status === 0;
if (!canVerify) console.warn('skipped: systemd-analyze verify on the host needs root, systemd-analyze and redis-server (scripts/setup installs them)');

/**
 * verify checks that each ExecStart program exists on this machine. The units name
 * /usr/local/bin/berth: in a mount namespace of its own, that is this checkout's bin/berth.
 * (The provisioning test verifies them again where provision.sh installed them for real.)
 */
function verify(unitPaths: string[]) {
  const script = 'mount -t tmpfs tmpfs /usr/local/bin && ln -s "$0" /usr/local/bin/berth && exec systemd-analyze verify "$@"';
  return spawnSync('unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script, join(ROOT, 'bin', 'berth'), ...unitPaths], { encoding: 'utf8' });
}

describe.skipIf(!canVerify)('systemd-analyze verify', () => {
  it('accepts every unit', () => {
    const run = verify(unitFiles.map((f) => join(UNITS, f)));
    expect(run.stderr + run.stdout).toBe('');
    expect(run.status).toBe(0);
  });

  it('rejects a unit whose program is missing (the check can fail)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-units-'));
    try {
      const broken = join(dir, 'berth-proxy.service');
      writeFileSync(broken, readFileSync(join(UNITS, 'berth-proxy.service'), 'utf8').replace('/usr/local/bin/berth', join(dir, 'no-such-berth')));
      const run = verify([broken]);
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain('no-such-berth');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
