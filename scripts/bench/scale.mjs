// The scale benchmark's measurements, run by scripts/bench/scale (which makes the temp dir and
// always cleans up; run that instead). It runs a registry, a proxy, a hoster and a scaler in
// this process (from dist/) against its own redis-server, publishes examples/cpu-burner with
// a policy of 1 to 2 instances, then, RUNS times: starts request load that burns CPU in the
// one instance (GET /work?ms=WORK_MS from CONCURRENCY loops through the proxy) and times
//   load start -> the scaler's grow decision -> the new instance running -> its first answer
// through the proxy. Between runs it stops the load, turns the policy off, scales back to 1
// and lets the 10 s CPU window empty.
//
// The hot-machine path is switched off (hot load 100): the 5-minute load average of a shared
// machine is someone else's load and moves over minutes. What triggers growth here is the
// real CPU per instance sampled by the proxy from /proc (over_target).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { create } from 'tar';

const RUNS = 3;
const CONCURRENCY = 4;
const WORK_MS = 30;
const TARGET_CPU = 0.15;
const SCALER_INTERVAL_MS = 500;
const RUN_TIMEOUT_MS = 90_000;
const COOL_WAIT_MS = 12_000;
const POLL_MS = 20;

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const dist = (p) => import(join(root, 'dist', p));
const dir = process.env.BENCH_DIR;
const redisPort = Number(process.env.BENCH_REDIS_PORT);
if (!dir || !redisPort) {
  console.error('BENCH_DIR / BENCH_REDIS_PORT are not set: run scripts/bench/scale (this file is its helper)');
  process.exit(2);
}

const { resolveOptions } = await dist('common/config.js');
const { silentLogger } = await dist('common/logger.js');
const { REGISTRY_OPTIONS, startRegistry } = await dist('registry/registry-daemon.js');
const { PROXY_OPTIONS, startProxy } = await dist('proxy/proxy-daemon.js');
const { HOSTER_OPTIONS, startHoster } = await dist('hoster/hoster-daemon.js');
const { SCALER_OPTIONS, startScaler } = await dist('scaler/scaler-daemon.js');
const { BerthClient } = await dist('sdk/berth-client.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (ms) => `${ms.toFixed(0).padStart(6)} ms`;
async function until(what, fn, timeoutMs = RUN_TIMEOUT_MS) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
const closers = [];
let failed = false;
try {
  const env = { REDIS_URL: `redis://127.0.0.1:${redisPort}`, BERTH_TOKEN: 'bench-token-0123456789' };
  const logger = silentLogger();
  const registry = await until('the registry', async () => startRegistry(resolveOptions(REGISTRY_OPTIONS, { port: 0, drainMs: 500 }, env), logger), 10_000);
  closers.push(() => registry.close());
  const proxy = await startProxy(resolveOptions(PROXY_OPTIONS, { host: '127.0.0.1', port: 0, machine: 'bench' }, env), logger);
  closers.push(() => proxy.close());
  const hoster = await startHoster(
    resolveOptions(HOSTER_OPTIONS, { machine: 'bench', dataDir: join(dir, 'hoster'), proxyUrl: proxy.url, maxLoadPerCpu: 1000, spreadDelayMs: 0, heartbeatMs: 1000, healthIntervalMs: 100, stopGraceMs: 1000 }, env),
    logger,
  );
  closers.push(() => hoster.close({ evacuate: false }));
  const scaler = await startScaler(resolveOptions(SCALER_OPTIONS, { intervalMs: SCALER_INTERVAL_MS, leaseMs: 5000, reportTimeoutMs: 1000, hotLoad: 100 }, env), logger);
  closers.push(() => scaler.close());
  const client = new BerthClient({ url: registry.url, token: env.BERTH_TOKEN });

  // Upload and publish the burner.
  const burner = join(root, 'examples', 'cpu-burner');
  const chunks = [];
  for await (const c of create({ gzip: true, cwd: burner, portable: true }, ['server.js', 'package.json'])) chunks.push(c);
  const bytes = Buffer.concat(chunks);
  const digest = createHash('sha256').update(bytes).digest('hex');
  await client.uploadBundle(digest, bytes);
  await client.publishApp({ name: 'burner', path: '/burner', instances: 1, bundle: digest });
  const running = async () => (await client.listAppInstances('burner')).filter((i) => i.state === 'running');
  await until('the first instance', async () => (await running()).length === 1);

  const results = [];
  for (let run = 1; run <= RUNS; run++) {
    const before = new Set((await running()).map((i) => i.id));
    const logBefore = (await client.scalerLog({ app: 'burner', limit: 1 }))[0]?.at ?? 0;
    await client.setAutoscale('burner', { min: 1, max: 2, targetCpu: TARGET_CPU, cooldownUpSeconds: 0, cooldownDownSeconds: 3600 });
    let stop = false;
    let served = 0;
    let failures = 0;
    let newServedAt = 0;
    let newId = '';
    const t0 = performance.now();
    const wall0 = Date.now();
    const loops = Array.from({ length: CONCURRENCY }, async () => {
      while (!stop) {
        try {
          const res = await fetch(`${proxy.url}/burner/work?ms=${WORK_MS}`, { signal: AbortSignal.timeout(10_000) });
          const body = await res.json();
          if (res.status !== 200) failures++;
          else {
            served++;
            if (!before.has(body.instance) && newServedAt === 0) {
              newServedAt = performance.now();
              newId = body.instance;
            }
          }
        } catch {
          failures++;
        }
      }
    });
    const decision = await until('the grow decision', async () => (await client.scalerLog({ app: 'burner', limit: 1 })).find((d) => d.at > logBefore && d.to === 2));
    const decidedAt = performance.now() - (Date.now() - decision.at);
    const fresh = await until('the new instance running', async () => (await running()).find((i) => !before.has(i.id)));
    const runningAt = performance.now();
    await until('an answer from the new instance', async () => newServedAt > 0);
    stop = true;
    await Promise.all(loops);
    results.push({
      run,
      decide: decidedAt - t0,
      start: runningAt - decidedAt,
      serve: newServedAt - runningAt,
      total: newServedAt - t0,
      cpu: decision.inputs.cpuPerInstance,
      cause: decision.cause,
      served,
      failures,
      newId: fresh.id === newId,
      wall0,
    });
    // Back to one instance, and let the proxy's 10 s CPU window forget this run's load.
    await client.removeAutoscale('burner');
    await client.scaleApp('burner', { instances: 1 });
    await until('one instance again', async () => (await client.listAppInstances('burner')).length === 1);
    if (run < RUNS) await sleep(COOL_WAIT_MS);
  }

  const [l1, l5] = loadavg();
  console.log(`scale benchmark: ${cpus().length} CPUs, load average ${l1.toFixed(2)} (1 min) ${l5.toFixed(2)} (5 min) during the runs`);
  console.log(`load: ${CONCURRENCY} loops of GET /work?ms=${WORK_MS} through the proxy; policy 1-2 instances, target ${TARGET_CPU} CPU; scaler every ${SCALER_INTERVAL_MS} ms; CPU window 10 s`);
  console.log('run  cause        cpu/inst  load->decision  decision->running  running->serving  load->serving  served  failed');
  for (const r of results) {
    console.log(
      `${String(r.run).padStart(3)}  ${r.cause.padEnd(11)}  ${String(r.cpu).padStart(8)}  ${fmt(r.decide).padStart(14)}  ${fmt(r.start).padStart(17)}  ${fmt(r.serve).padStart(16)}  ${fmt(r.total).padStart(13)}  ${String(r.served).padStart(6)}  ${String(r.failures).padStart(6)}`,
    );
  }
  const totals = results.map((r) => r.total).sort((a, b) => a - b);
  const median = totals[Math.floor(totals.length / 2)];
  const meanShare = (k) => results.reduce((a, r) => a + r[k] / r.total, 0) / results.length;
  console.log(`median load->serving ${fmt(median)}; of it, on average: deciding ${(meanShare('decide') * 100).toFixed(0)}%, starting ${(meanShare('start') * 100).toFixed(0)}%, first answer ${(meanShare('serve') * 100).toFixed(0)}%`);
  console.log(`median load->serving / scaler interval = ${(median / SCALER_INTERVAL_MS).toFixed(1)}x`);
  console.log('\nberth scaler log (newest first):');
  for (const d of await client.scalerLog({ app: 'burner', limit: 10 })) console.log(`  ${new Date(d.at).toISOString()} ${d.from} -> ${d.to} ${d.cause}: ${d.reason}`);
} catch (err) {
  failed = true;
  console.error(`scale benchmark failed: ${err instanceof Error ? err.message : err}`);
} finally {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  redis.kill('SIGTERM');
}
process.exit(failed ? 1 : 0);
