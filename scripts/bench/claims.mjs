// Scale by simulation, run by scripts/bench/claims against the redis-server it started on
// 127.0.0.1:<port> (the first argument). Simulated hosters (one Redis connection each, no apps)
// place every instance through the registry's real Lua scripts, in the compiled code berth runs:
//
//   1. "script alone": each hoster claims by app name (claimInstance picks the oldest) and reports
//      it running: the cost of the scripts with no reads around them.
//   2. "hoster rounds": each hoster does what hoster/claim-loop.ts's claimRound does: look at the
//      unclaimed instances, read the instances of each app it sees, claim by id (at most
//      BERTH_CLAIMS_PER_ROUND per round), report running; and meanwhile renews every claim it holds
//      every lease/4, as a real hoster does, while one reaper runs every second as a registry does.
//
// Each phase checks that no instance was claimed twice, from the final state in Redis and from
// each hoster's own record of what it claimed and still holds; then prints the spread.
import { cpus } from 'node:os';
import { closeRedis, connectRedis, waitForReady } from '../../dist/common/redis-connection.js';
import { RegistryStore } from '../../dist/registry/store/index.js';

const num = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number (got ${JSON.stringify(v)})`);
  return n;
};
const HOSTERS = num('BENCH_HOSTERS', 50);
const INSTANCES = num('BENCH_INSTANCES', 20_000);
const APPS = num('BENCH_APPS', 1_000);
// A phase that has not placed everything by then stops and says how far it got.
const PHASE_CAP_MS = num('BENCH_PHASE_CAP_S', 150) * 1000;
// The hoster's defaults: a 15 s lease renewed every lease/4, 4 claims per round.
const LEASE_MS = num('BENCH_LEASE_MS', 15_000);
const RENEW_EVERY_MS = Math.floor(LEASE_MS / 4);
const CLAIMS_PER_ROUND = num('BENCH_CLAIMS_PER_ROUND', 4);
const SPREAD_DELAY_MS = num('BENCH_SPREAD_DELAY_MS', 150);
// As hoster/claim-loop.ts looks; BENCH_SCAN_ALL=1 reads every unclaimed instance each round, as it did before.
const UNCLAIMED_SAMPLE = 64;
const SCAN_ALL = process.env.BENCH_SCAN_ALL === '1';
const REAP_EVERY_MS = 1000;
// Longer than berth's default (2 s): a burst of 20,000 queued commands is measured, not failed.
const COMMAND_TIMEOUT_MS = num('BENCH_COMMAND_TIMEOUT_MS', 10_000);
const REGISTER_CONCURRENCY = 64;
const VERIFY_BATCH = 500;

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node scripts/bench/claims.mjs <redis port> [script|rounds]...  (run scripts/bench/claims instead)');
  process.exit(2);
}
const phasesWanted = process.argv.slice(3).length > 0 ? process.argv.slice(3) : ['script', 'rounds'];
const settings = { url: `redis://127.0.0.1:${port}`, sentinels: [], sentinelName: 'mymaster', clusterNodes: [], commandTimeoutMs: COMMAND_TIMEOUT_MS };

const clients = [];
async function connect(name) {
  const client = connectRedis(settings, { name });
  clients.push(client);
  await waitForReady(client, 10_000);
  return client;
}

async function pool(n, concurrency, fn) {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

const appName = (a) => `app-${String(a).padStart(5, '0')}`;
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Registers INSTANCES instances spread evenly over APPS apps (untimed). */
async function registerAll(store) {
  const ids = [];
  await pool(INSTANCES, REGISTER_CONCURRENCY, async (i) => {
    const a = i % APPS;
    const instance = await store.register({ service: appName(a), path: `/${appName(a)}` });
    ids.push(instance.id);
  });
  return ids;
}

async function redisCpuSeconds(admin) {
  const info = await admin.info('cpu');
  const user = Number(/^used_cpu_user:([\d.]+)/m.exec(info)[1]);
  const sys = Number(/^used_cpu_sys:([\d.]+)/m.exec(info)[1]);
  return user + sys;
}

async function commandsProcessed(admin) {
  return Number(/^total_commands_processed:(\d+)/m.exec(await admin.info('stats'))[1]);
}

/**
 * One simulated hoster: its own connection and store, and its own record of what it claimed.
 * `held` maps instance id -> epoch of the claims it still holds; `claims` counts every claim it made.
 */
class SimulatedHoster {
  constructor(index, store) {
    this.machine = `machine-${String(index).padStart(3, '0')}`;
    this.store = store;
    this.held = new Map();
    this.services = new Map();
    this.claims = 0;
    this.lost = 0;
    this.rounds = 0;
    this.timeouts = 0;
    this.renewTimeouts = 0;
    this.renewals = 0;
    this.stopped = false;
  }

  async claimAndRun(claimInput) {
    let instance;
    try {
      instance = await this.store.claim({ ...claimInput, machine: this.machine, host: '127.0.0.1', port: 20_000 + this.held.size, leaseMs: LEASE_MS });
    } catch (err) {
      if (err?.code === 'nothing_to_claim' || err?.code === 'service_not_found') return false;
      throw err;
    }
    this.claims++;
    if (this.held.has(instance.id)) throw new Error(`${this.machine} got ${instance.id} a second time (epochs ${this.held.get(instance.id)} and ${instance.epoch})`);
    // Recorded before the next await, so a renewal that runs meanwhile renews it too.
    this.held.set(instance.id, instance.epoch);
    this.services.set(instance.id, instance.service);
    await this.store.markRunning({ service: instance.service, id: instance.id, machine: this.machine, epoch: instance.epoch, pid: 1 });
    return true;
  }

  /** Phase 1: claim by app name until every app is exhausted. */
  async claimByName(apps, deadline) {
    const mine = [...apps];
    let i = this.machine.length + Number(this.machine.slice(-3));
    while (mine.length > 0 && performance.now() < deadline) {
      i = (i + 1) % mine.length;
      if (!(await this.claimAndRun({ service: mine[i] }))) mine.splice(i, 1);
    }
  }

  /**
   * Phase 2: hoster/claim-loop.ts's claimRound, minus its load gate and capacity (no load here):
   * the same reads, the same claims by id, the same spread delay per instance of the app it holds.
   */
  async claimRound() {
    this.rounds++;
    const services = SCAN_ALL ? [...new Set(await this.store.listUnclaimed())] : await this.store.unclaimedServicesSample(UNCLAIMED_SAMPLE);
    let claimed = 0;
    for (const service of services) {
      if (claimed >= CLAIMS_PER_ROUND) break;
      const candidates = (await this.store.instancesOf(service)).filter((i) => i.state === 'unclaimed');
      for (const fit of candidates) {
        if (claimed >= CLAIMS_PER_ROUND) break;
        const here = [...this.services.values()].filter((s) => s === service).length;
        if (here > 0 && SPREAD_DELAY_MS > 0) await new Promise((r) => setTimeout(r, here * SPREAD_DELAY_MS));
        if (await this.claimAndRun({ service, instanceId: fit.id })) claimed++;
      }
    }
    return { claimed, looked: services.length };
  }

  async roundsUntilDone(deadline) {
    while (performance.now() < deadline) {
      let result;
      try {
        result = await this.claimRound();
      } catch (err) {
        // Redis too busy to answer within the command timeout: the real hoster tries again too.
        if (err?.code !== 'redis_unavailable') throw err;
        this.timeouts++;
        continue;
      }
      const { claimed, looked } = result;
      // Nothing unclaimed left: a real hoster would wait for the next event or poll.
      if (looked === 0) return;
      if (claimed === 0) await new Promise((r) => setImmediate(r));
    }
  }

  /** Renews every claim it holds, each as its own call (as each InstanceRunner does); drops lost ones. */
  async renewAll() {
    const entries = [...this.held];
    let done = 0;
    await Promise.all(
      entries.map(async ([id, epoch]) => {
        try {
          await this.store.renew({ service: this.services.get(id), id, machine: this.machine, epoch, leaseMs: LEASE_MS });
          this.renewals++;
          done++;
        } catch (err) {
          // Too slow: the claim still holds, the next renewal may make it (counted, not fatal).
          if (err?.code === 'redis_unavailable') {
            this.renewTimeouts++;
            return;
          }
          if (err?.code !== 'stale_epoch' && err?.code !== 'instance_not_found') throw err;
          // The real hoster stops the app here: its claim is gone.
          this.held.delete(id);
          this.services.delete(id);
          this.lost++;
        }
      }),
    );
    return done;
  }

  startRenewing() {
    const tick = async () => {
      if (this.stopped) return;
      this.ticking = this.renewAll().catch((err) => console.error(`${this.machine}: renewal failed: ${err.message}`));
      await this.ticking;
      if (!this.stopped) this.renewTimer = setTimeout(tick, RENEW_EVERY_MS);
    };
    this.renewTimer = setTimeout(tick, RENEW_EVERY_MS);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.renewTimer);
  }
}

/** No instance claimed twice: from the final state, and from the hosters' own records. */
async function verify(admin, store, registered, hosters) {
  const problems = [];
  const holderOf = new Map();
  for (const h of hosters) {
    for (const [id, epoch] of h.held) {
      const other = holderOf.get(id);
      if (other) problems.push(`${id} is held by ${other.machine} and ${h.machine}`);
      holderOf.set(id, { machine: h.machine, epoch });
    }
  }
  const epochs = new Set();
  let running = 0;
  let unclaimed = 0;
  for (let i = 0; i < registered.length; i += VERIFY_BATCH) {
    const ids = registered.slice(i, i + VERIFY_BATCH);
    const pipeline = admin.pipeline();
    for (const id of ids) pipeline.hmget(store.keys.instance(id), 'state', 'machine', 'epoch');
    const rows = await pipeline.exec();
    rows.forEach(([err, [state, machine, epoch]], j) => {
      if (err) throw err;
      const id = ids[j];
      const holder = holderOf.get(id);
      if (state === 'unclaimed') {
        unclaimed++;
        if (holder) problems.push(`${id} is unclaimed in Redis but ${holder.machine} thinks it holds it`);
        return;
      }
      if (state === 'running') running++;
      if (epochs.has(epoch)) problems.push(`epoch ${epoch} was given twice`);
      epochs.add(epoch);
      if (!holder) problems.push(`${id} is ${state} on ${machine} (epoch ${epoch}) in Redis but no hoster holds it`);
      else if (holder.machine !== machine || String(holder.epoch) !== epoch) {
        problems.push(`${id}: Redis says ${machine} epoch ${epoch}, ${holder.machine} holds epoch ${holder.epoch}`);
      }
    });
  }
  const claimsMade = hosters.reduce((s, h) => s + h.claims, 0);
  const lost = hosters.reduce((s, h) => s + h.lost, 0);
  const claimedEvents = await countEvents(admin, store, 'claimed');
  if (claimedEvents !== claimsMade) problems.push(`${claimedEvents} "claimed" events but the hosters made ${claimsMade} claims`);
  return { problems, running, unclaimed, claimsMade, lost, claimedEvents };
}

async function countEvents(admin, store, kind) {
  let n = 0;
  let from = '-';
  for (;;) {
    const batch = await admin.xrange(store.keys.events, from, '+', 'COUNT', 5000);
    for (const [, fields] of batch) if (fields[1] === kind) n++;
    if (batch.length < 5000) return n;
    from = `(${batch.at(-1)[0]}`;
  }
}

function spread(hosters, registeredCount) {
  const counts = hosters.map((h) => h.held.size).sort((a, b) => a - b);
  const mean = counts.reduce((s, c) => s + c, 0) / counts.length;
  const stddev = Math.sqrt(counts.reduce((s, c) => s + (c - mean) ** 2, 0) / counts.length);
  const median = counts.length % 2 ? counts[(counts.length - 1) / 2] : (counts[counts.length / 2 - 1] + counts[counts.length / 2]) / 2;
  // Per app: on how many different machines its instances run (the best is min(instances, hosters)).
  const machinesPerApp = new Map();
  for (const h of hosters) for (const [id] of h.held) {
    const app = h.services.get(id);
    let set = machinesPerApp.get(app);
    if (!set) machinesPerApp.set(app, (set = new Set()));
    set.add(h.machine);
  }
  const perApp = [...machinesPerApp.values()].map((s) => s.size).sort((a, b) => a - b);
  const best = Math.min(Math.ceil(registeredCount / APPS), hosters.length);
  return {
    line: `per hoster: min ${counts[0]}  median ${median}  max ${counts.at(-1)}  mean ${fmt(mean, 1)}  stddev ${fmt(stddev, 1)} (${fmt((stddev / mean) * 100, 1)} % of the mean)`,
    appLine:
      perApp.length === 0
        ? 'per app: nothing placed'
        : `per app, machines its ${best} instances run on: min ${perApp[0]}  median ${perApp[Math.floor(perApp.length / 2)]}  max ${perApp.at(-1)} (best possible ${best})`,
  };
}

async function runPhase(admin, name) {
  const keyPrefix = `bench-${name}-${Date.now()}`;
  const adminStore = new RegistryStore(admin, { keyPrefix, leaseMs: LEASE_MS });
  const t0 = performance.now();
  const registered = await registerAll(adminStore);
  const registerSeconds = (performance.now() - t0) / 1000;

  const hosters = [];
  for (let h = 0; h < HOSTERS; h++) {
    const store = new RegistryStore(await connect(`bench-hoster-${h}`), { keyPrefix, leaseMs: LEASE_MS });
    const hoster = new SimulatedHoster(h, store);
    hosters.push(hoster);
  }
  // One untimed call per connection loads the scripts, so the timed part never pays for that.
  await Promise.all(hosters.map((h) => h.store.claim({ service: 'warm-up', machine: 'warm-up', port: 1 }).catch(() => undefined)));

  const cpuBefore = await redisCpuSeconds(admin);
  const commandsBefore = await commandsProcessed(admin);
  const start = performance.now();
  const deadline = start + PHASE_CAP_MS;
  let reaped = 0;
  let reaper;
  if (name === 'rounds') {
    for (const h of hosters) h.startRenewing();
    const reap = async () => {
      reaped += (await adminStore.reapExpired().catch(() => [])).length;
      reaper = setTimeout(reap, REAP_EVERY_MS);
    };
    reaper = setTimeout(reap, REAP_EVERY_MS);
  }
  const apps = Array.from({ length: APPS }, (_, a) => appName(a));
  await Promise.all(hosters.map((h) => (name === 'script' ? h.claimByName(apps, deadline) : h.roundsUntilDone(deadline))));
  const seconds = (performance.now() - start) / 1000;
  const cpu = (await redisCpuSeconds(admin)) - cpuBefore;
  const commands = (await commandsProcessed(admin)) - commandsBefore;
  for (const h of hosters) h.stop();
  clearTimeout(reaper);

  // Renewal throughput: every hoster renews all it holds at once.
  // A renewal tick that was under way when the phase ended finishes first.
  await Promise.all(hosters.map((h) => h.ticking));
  const renewCpuBefore = await redisCpuSeconds(admin);
  const r0 = performance.now();
  const renewals = (await Promise.all(hosters.map((h) => h.renewAll()))).reduce((a, b) => a + b, 0);
  const renewSeconds = (performance.now() - r0) / 1000;
  const renewCpu = (await redisCpuSeconds(admin)) - renewCpuBefore;

  const check = await verify(admin, adminStore, registered, hosters);
  const placed = hosters.reduce((s, h) => s + h.held.size, 0);
  const s = spread(hosters, registered.length);
  const rounds = hosters.reduce((sum, h) => sum + h.rounds, 0);
  const timeouts = hosters.reduce((sum, h) => sum + h.timeouts, 0);
  return { renewTimeouts: hosters.reduce((sum, h) => sum + h.renewTimeouts, 0), renewCpu, timeouts, name, registered, registerSeconds, seconds, placed, check, s, cpu, commands, renewals, renewSeconds, reaped, rounds, claimsMade: check.claimsMade };
}

function report(r) {
  const title = r.name === 'script' ? 'script alone (each hoster claims by app name)' : `hoster rounds (${SCAN_ALL ? 'every unclaimed instance' : `a sample of ${UNCLAIMED_SAMPLE}+${UNCLAIMED_SAMPLE} unclaimed`}, read the app, claim by id; renewals and reaper running)`;
  const done = r.placed === r.registered.length && r.check.unclaimed === 0;
  console.log(`\n${title}:`);
  console.log(`  registered ${fmt(r.registered.length)} instances of ${fmt(APPS)} apps in ${fmt(r.registerSeconds, 1)} s (untimed)`);
  console.log(
    done
      ? `  placed all ${fmt(r.placed)} (claimed and running) in ${fmt(r.seconds, 2)} s: ${fmt(r.claimsMade / r.seconds)} claims/s`
      : `  STOPPED at the ${fmt(PHASE_CAP_MS / 1000)} s cap: placed ${fmt(r.placed)} of ${fmt(r.registered.length)} in ${fmt(r.seconds, 1)} s: ${fmt(r.claimsMade / r.seconds)} claims/s; all ${fmt(r.registered.length)} would take about ${fmt(r.registered.length / (r.claimsMade / r.seconds))} s at that rate`,
  );
  console.log(
    `  Redis: ${fmt(r.cpu, 2)} CPU s busy of ${fmt(r.seconds, 2)} s (${fmt((r.cpu / r.seconds) * 100)} %), ${fmt(r.commands)} commands = ${fmt(r.commands / Math.max(r.claimsMade, 1), 1)} per claim, ` +
      `${fmt((r.cpu / Math.max(r.claimsMade, 1)) * 1e6)} µs of Redis CPU per claim (everything of the phase included)`,
  );
  if (r.name === 'rounds') console.log(`  ${fmt(r.rounds)} claim rounds (${fmt(r.claimsMade / Math.max(r.rounds, 1), 2)} claims per round), ${fmt(r.timeouts)} failed with a Redis timeout (${fmt(settings.commandTimeoutMs / 1000)} s); reaper returned ${r.reaped} expired leases`);
  console.log(
    `  renewals: ${fmt(r.renewals)} in ${fmt(r.renewSeconds, 2)} s = ${fmt(r.renewals / r.renewSeconds)} renewals/s (all hosters renewing everything at once); ` +
      `Redis CPU ${fmt((r.renewCpu / Math.max(r.renewals, 1)) * 1e6, 1)} µs per renewal; ${fmt(r.renewTimeouts)} renewals timed out in the whole phase`,
  );
  console.log(`  ${r.s.line}`);
  console.log(`  ${r.s.appLine}`);
  const c = r.check;
  if (c.problems.length === 0) {
    console.log(
      `  check: no double claim: ${fmt(c.claimsMade)} claims = ${fmt(c.claimedEvents)} "claimed" events, every held (instance, epoch) matches Redis, ` +
        `${fmt(c.running)} running, ${fmt(c.unclaimed)} unclaimed, no epoch twice, ${c.lost} claims lost`,
    );
  } else {
    console.log(`  check FAILED (${c.problems.length} problems): ${c.problems.slice(0, 5).join('; ')}`);
  }
  return c.problems.length === 0;
}

async function main() {
  const admin = await connect('bench-admin');
  const version = /^redis_version:(\S+)/m.exec(await admin.info('server'))[1];
  console.log(`berth claims benchmark: redis-server ${version} on 127.0.0.1:${port}, ${cpus().length} CPUs`);
  console.log(`${HOSTERS} simulated hosters (one connection each, all in this one Node process beside Redis), ${fmt(INSTANCES)} instances, lease ${LEASE_MS} ms renewed every ${RENEW_EVERY_MS} ms, ${CLAIMS_PER_ROUND} claims per round, spread delay ${SPREAD_DELAY_MS} ms`);
  let ok = true;
  for (const phase of phasesWanted) {
    if (phase !== 'script' && phase !== 'rounds') throw new Error(`unknown phase ${phase}: use script or rounds`);
    ok = report(await runPhase(admin, phase)) && ok;
    await admin.flushall();
  }
  if (!ok) process.exitCode = 1;
}

try {
  await main();
} finally {
  await Promise.all(clients.map(closeRedis));
}
