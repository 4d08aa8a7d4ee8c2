// The registry benchmark's measurements, run by scripts/bench/registry against the redis-server
// it started on 127.0.0.1:<port> (the only argument). It uses the compiled code, as berth runs it.
import { execFile } from 'node:child_process';
import { cpus } from 'node:os';
import { promisify } from 'node:util';
import { closeRedis, connectRedis, waitForReady } from '../../dist/common/redis-connection.js';
import { RegistryStore } from '../../dist/registry/store/index.js';

const CLAIM_INSTANCES = 10_000;
const CLAIMERS = [1, 4, 16];
const MEMORY_INSTANCES = 100_000;
// Enough registrations in flight to keep Redis busy, so 100,000 take seconds.
const REGISTER_CONCURRENCY = 64;
const SERVICE = 'bench';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node scripts/bench/registry.mjs <redis port>  (run scripts/bench/registry instead)');
  process.exit(2);
}
const settings = {
  url: `redis://127.0.0.1:${port}`,
  sentinels: [],
  sentinelName: 'mymaster',
  clusterNodes: [],
  commandTimeoutMs: 10_000,
};

const clients = [];
async function connect(name) {
  const client = connectRedis(settings, { name });
  clients.push(client);
  await waitForReady(client, 10_000);
  return client;
}

/** Calls fn(0..n-1) with at most `concurrency` calls in flight; returns the results in order. */
async function pool(n, concurrency, fn) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

async function registerMany(store, n) {
  const instances = await pool(n, REGISTER_CONCURRENCY, () => store.register({ service: SERVICE, path: '/bench' }));
  return instances.map((i) => i.id);
}

async function redisBenchmarkSetRate() {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-t', 'set', '-n', '200000', '-c', '16', '-q'];
  const { stdout } = await promisify(execFile)('redis-benchmark', args);
  // -q prints progress lines separated by \r, then "SET: 123456.79 requests per second, ...".
  const rates = [...stdout.matchAll(/SET: ([\d.]+) requests per second/g)];
  if (rates.length === 0) throw new Error(`cannot read the SET rate from redis-benchmark's output: ${JSON.stringify(stdout)}`);
  return Number(rates.at(-1)[1]);
}

/** Registers CLAIM_INSTANCES (untimed), then times `claimers` connections claiming them all. */
async function claimRound(admin, claimers) {
  // A fresh prefix, so every round starts from the same empty registry.
  const keyPrefix = `bench-claim-${claimers}-${Date.now()}`;
  const registered = await registerMany(new RegistryStore(admin, { keyPrefix }), CLAIM_INSTANCES);

  const connections = [];
  const stores = [];
  for (let c = 0; c < claimers; c++) {
    connections.push(await connect(`bench-claimer-${c}`));
    const store = new RegistryStore(connections[c], { keyPrefix });
    // One untimed call loads the claim script, so the timed loop never pays for that.
    await store.claim({ service: 'bench-warmup', machine: 'warmup', port: 1 }).catch(() => undefined);
    stores.push(store);
  }

  const claimedBy = stores.map(() => []);
  const loop = async (store, c) => {
    for (;;) {
      try {
        const instance = await store.claim({ service: SERVICE, machine: `machine-${c}`, port: 3000 + c });
        claimedBy[c].push(instance.id);
      } catch (err) {
        if (err?.code === 'nothing_to_claim') return;
        throw err;
      }
    }
  };
  const start = performance.now();
  await Promise.all(stores.map(loop));
  const seconds = (performance.now() - start) / 1000;

  await Promise.all(connections.map(closeRedis));

  // Exactly once: as many claims as instances, no id twice, and every registered id among them.
  const all = claimedBy.flat();
  const unique = new Set(all);
  const missing = registered.filter((id) => !unique.has(id)).length;
  const ok = all.length === registered.length && unique.size === all.length && missing === 0;
  const check = ok
    ? `all ${fmt(registered.length)} claimed exactly once`
    : `FAILED: ${fmt(all.length)} claims, ${fmt(all.length - unique.size)} duplicates, ${fmt(missing)} never claimed`;
  return { claimers, rate: all.length / seconds, ok, check };
}

async function usedMemory(admin) {
  const info = await admin.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)[1]);
}

/** used_memory growth for MEMORY_INSTANCES registered (unclaimed) instances of one service. */
async function memoryRound(admin) {
  const store = new RegistryStore(admin, { keyPrefix: `bench-memory-${Date.now()}` });
  const before = await usedMemory(admin);
  await registerMany(store, MEMORY_INSTANCES);
  const after = await usedMemory(admin);
  return { bytes: after - before, perInstance: (after - before) / MEMORY_INSTANCES };
}

const fmt = (n, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main() {
  const admin = await connect('bench-admin');
  const version = /^redis_version:(\S+)/m.exec(await admin.info('server'))[1];

  const setRate = await redisBenchmarkSetRate();
  const rounds = [];
  for (const claimers of CLAIMERS) rounds.push(await claimRound(admin, claimers));
  const memory = await memoryRound(admin);

  const rows = [
    ['claimers', 'claims/s', 'ratio to SET', 'check'],
    ...rounds.map((r) => [String(r.claimers), fmt(r.rate), fmt(r.rate / setRate, 3), r.check]),
  ];
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
  const line = (row) => row.map((cell, col) => (col < 3 ? cell.padStart(widths[col]) : cell)).join('   ');

  console.log(`berth registry benchmark: redis-server ${version} on 127.0.0.1:${port}, ${cpus().length} CPUs`);
  console.log(`(claimers share this one Node process, on the same machine as Redis)`);
  console.log(`redis-benchmark -t set -n 200000 -c 16: ${fmt(setRate)} SET/s`);
  console.log('');
  console.log(`claims of ${fmt(CLAIM_INSTANCES)} instances of one service:`);
  for (const row of rows) console.log(line(row));
  console.log('');
  console.log(
    `memory: ${fmt(MEMORY_INSTANCES)} instances added ${fmt(memory.bytes / 1024 / 1024, 1)} MiB of used_memory` +
      ` = ${fmt(memory.perInstance)} bytes per instance (its hash, index entries and "registered" event)`,
  );

  if (!rounds.every((r) => r.ok)) {
    console.error('Some instance was not claimed exactly once: see the check column.');
    process.exitCode = 1;
  }
}

try {
  await main();
} finally {
  // Closing one twice is harmless: an ended connection is just disconnected again.
  await Promise.all(clients.map(closeRedis));
}
