// Drill 1b: the machine running an app's workers dies (its hoster SIGKILLed). Workers have no
// port and no route, but are leased and fenced as web instances are: the old copies stop under
// their shims within the lease, the workers run on other machines within lease + reap + poll +
// start, and the observer never sees one worker run twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadApp } from '../helpers/hoster-fixture.js';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';
import { monotonicMs, observerApp, reporterSource } from './observer.js';

const LEASE_MS = 4000;
const POLL_MS = 1000;
const REAP_MS = 200;
const START_BUDGET_MS = 6000;
const WORKERS = 3;

/** The observer's reporting loop without a server: what a queue worker looks like to berth. */
const WORKER = `${reporterSource('process.env.BERTH_PROCESS')}
process.on('SIGTERM', () => { report(); process.exit(0); });
`;

let drill: Drill;

describe.skipIf(UNAVAILABLE !== undefined)(`drill: the machine of a worker dies${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    drill = await startDrill({ machines: 3, leaseMs: LEASE_MS });
  });
  afterAll(async () => {
    await drill?.down();
  });

  it('runs its workers on other machines within the bound, never one twice', async () => {
    const client = drill.cluster.registry.client;
    const bundle = await uploadApp(client, { ...observerApp('web'), 'worker.js': WORKER });
    await client.publishApp({ name: 'wrk', path: '/wrk', instances: 1, bundle, env: { COLLECTOR_URL: drill.collector.url }, processes: { worker: 'node worker.js' } });
    await client.scaleApp('wrk', { formation: { worker: WORKERS } });
    const workers = async () => (await client.listAppInstances('wrk')).filter((i) => i.process === 'worker' && i.state === 'running');
    const running = await waitFor(async () => ((await workers()).length === WORKERS ? workers() : undefined), { deadlineMs: 40_000, what: `${WORKERS} workers running` });
    expect(running.every((i) => i.port === null)).toBe(true);
    const byMachine = new Map<string, string[]>();
    for (const i of running) byMachine.set(i.machine!, [...(byMachine.get(i.machine!) ?? []), i.id]);
    const [victimName, victims] = [...byMachine.entries()].sort((a, b) => b[1].length - a[1].length)[0]!;
    const victim = drill.cluster.machines.find((m) => m.name === victimName)!;
    await waitFor(() => victims.every((id) => drill.collector.live().some((r) => r.instance === id)), { deadlineMs: 10_000, what: 'the victim’s workers reporting' });

    const killedAt = monotonicMs();
    victim.hoster!.kill('SIGKILL');
    await victim.hoster!.exited;
    const moved = await waitFor(
      () => {
        const elsewhere = drill.collector.runs().filter((r) => victims.includes(r.instance) && r.machine !== victimName && r.first > killedAt);
        return new Set(elsewhere.map((r) => r.instance)).size === victims.length ? elsewhere : undefined;
      },
      { deadlineMs: LEASE_MS + REAP_MS + POLL_MS + START_BUDGET_MS + 10_000, what: 'the dead machine’s workers reporting from other machines' },
    );
    const lastOld = Math.max(...drill.collector.runs().filter((r) => r.machine === victimName && victims.includes(r.instance)).map((r) => r.last)) - killedAt;
    const allNew = Math.max(...moved.map((r) => r.first)) - killedAt;
    expect(lastOld).toBeLessThan(LEASE_MS);
    expect(allNew).toBeLessThan(LEASE_MS + REAP_MS + POLL_MS + START_BUDGET_MS);
    expect(moved.every((r) => r.version === 'worker')).toBe(true);
    drill.check();
    process.stdout.write(`drill 1b: ${victims.length} worker(s) on ${victimName}; old copies' last report ${lastOld.toFixed(0)} ms after SIGKILL; all running elsewhere ${allNew.toFixed(0)} ms after\n`);
  });
});
