// Drill 9: the machine of an add-on dies (its hoster, its proxy and the add-on's own server
// SIGKILLed: nothing of it runs any more). The add-on's data is on that machine's disk, so it
// is pinned there: the registry says `unavailable` (in addons:info and in the app's berth info)
// once its lease ends, no other machine ever starts it, and when the machine comes back its
// hoster runs it again on the same data, reachable over the machines' network as before.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';
import { monotonicMs } from './observer.js';

const LEASE_MS = 4000;
/** How long the drill watches that nothing starts the add-on elsewhere: several leases. */
const WATCH_MS = 4 * LEASE_MS;

/** Live processes working in this add-on's folder or below (redis-server rewrites its command line, and works in its data folder). */
function serversOf(addonId: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cwd.endsWith(`/addons/${addonId}`) || cwd.includes(`/addons/${addonId}/`)) out.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

let drill: Drill;
let inspect: Redis;

/** The add-on's id and its server's pid (0: none), as its hoster recorded them. */
async function serverOf(name: string): Promise<{ id: string; pid: number }> {
  const [id, pid] = await inspect.hmget(`{${drill.cluster.registry.prefix}}:addon:${name}`, 'id', 'pid');
  return { id: id ?? '', pid: Number(pid ?? 0) };
}

describe.skipIf(UNAVAILABLE !== undefined)(`drill: the machine of an add-on dies${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    drill = await startDrill({ machines: 3, leaseMs: LEASE_MS });
    inspect = new Redis(drill.cluster.redis.localUrl, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    inspect?.disconnect();
    await drill?.down();
  });

  it('is unavailable while its machine is gone, never runs elsewhere, and runs again on its data when the machine returns', async () => {
    const client = drill.cluster.registry.client;
    await drill.publish('shop', 2);
    const home = drill.cluster.machines[1]!;
    const addon = await client.createAddon({ app: 'shop', kind: 'redis', machine: home.name });
    await waitFor(async () => (await client.getAddon(addon.name)).state === 'running', { deadlineMs: 30_000, what: `${addon.name} running on ${home.name}` });
    const url = (await client.getConfig('shop')).REDIS_URL!;
    // The machine's own address: reached over the machines' network, not loopback.
    expect(new URL(url).hostname).toBe(home.ip);
    const r = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
    await r.connect();
    await r.set('kept', 'yes');
    await r.call('BGREWRITEAOF');
    await waitFor(async () => (await r.info('persistence')).includes('aof_rewrite_in_progress:0'), { deadlineMs: 10_000, what: 'the AOF rewritten' });
    r.disconnect();
    const { id, pid } = await serverOf(addon.name);
    expect(pid).toBeGreaterThan(0);
    // The watch below finds its server by the folder it works in.
    expect(serversOf(id)).toEqual([pid]);

    // The machine dies: everything on it.
    const diedAt = monotonicMs();
    home.hoster!.kill('SIGKILL');
    home.proxy!.kill('SIGKILL');
    process.kill(pid, 'SIGKILL');
    await Promise.all([home.hoster!.exited, home.proxy!.exited]);
    await waitFor(async () => (await client.getAddon(addon.name)).state === 'unavailable', { deadlineMs: 3 * LEASE_MS + 10_000, what: `${addon.name} unavailable` });
    const unavailableAfter = monotonicMs() - diedAt;
    expect((await client.getApp('shop')).addons).toEqual([{ name: addon.name, kind: 'redis', variable: 'REDIS_URL', state: 'unavailable' }]);

    // Several leases on, no other machine has started it: its record, its lease and the host's processes agree.
    const watchedUntil = monotonicMs() + WATCH_MS;
    const seen: string[] = [];
    await waitFor(
      async () => {
        const a = await client.getAddon(addon.name);
        if (a.machine !== home.name || a.state !== 'unavailable') seen.push(`${a.machine} ${a.state}`);
        const running = serversOf(id);
        if (running.length > 0) seen.push(`a server of it runs (pid ${running.join(', ')})`);
        return monotonicMs() >= watchedUntil;
      },
      { deadlineMs: WATCH_MS + 10_000, intervalMs: 250, what: `${WATCH_MS} ms of watching ${addon.name}` },
    );
    expect(seen).toEqual([]);
    for (const m of drill.cluster.machines) if (m !== home) expect(m.hoster!.output(), m.name).not.toContain(`took the add-on ${addon.name}`);

    // The machine returns: its hoster runs the add-on again, on the data it had.
    const backAt = monotonicMs();
    await home.startProxy();
    home.startHoster();
    await waitFor(async () => (await client.getAddon(addon.name)).state === 'running', { deadlineMs: 40_000, what: `${addon.name} running again on ${home.name}` });
    const runningAfter = monotonicMs() - backAt;
    const again = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
    await again.connect();
    expect(await again.get('kept')).toBe('yes');
    again.disconnect();
    expect((await client.getAddon(addon.name)).machine).toBe(home.name);
    process.stdout.write(
      `drill 9: ${addon.name} on ${home.name}; unavailable ${unavailableAfter.toFixed(0)} ms after its machine died (lease ${LEASE_MS} ms); started nowhere else for ${WATCH_MS} ms; running again ${runningAfter.toFixed(0)} ms after the machine returned, its data kept\n`,
    );
  }, 150_000);
});
