// The proxy benchmark's parts, run by scripts/bench/proxy (which starts and always stops every
// process; run that instead). One file, three roles:
//   node proxy.mjs app <port>                              the upstream app: answers "hello"
//   node proxy.mjs http-proxy-3 <port> <app port> <dir>    a minimal http-proxy-3 reverse proxy
//   node proxy.mjs floor <port> <app port>                 Node's floor: the least a Node proxy does
//   node proxy.mjs measure                                 the measurements (settings in BENCH_* env)
// It uses the compiled code, as berth runs it.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const role = process.argv[2];
if (role === 'app') runApp(Number(process.argv[3]));
else if (role === 'http-proxy-3') runHttpProxy3(Number(process.argv[3]), Number(process.argv[4]), process.argv[5]);
else if (role === 'floor') await runFloor(Number(process.argv[3]), Number(process.argv[4]));
else if (role === 'measure') await measure();
else {
  console.error('usage: run scripts/bench/proxy (this file is its helper)');
  process.exit(2);
}

/** The tiny upstream app: "hello" to everything, keep-alive (Node's default). */
function runApp(port) {
  const body = Buffer.from('hello');
  createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  }).listen(port, '127.0.0.1');
}

/** The same reverse proxy with http-proxy-3 and a keep-alive agent like berth's. */
function runHttpProxy3(port, appPort, dir) {
  const { createProxyServer } = createRequire(join(dir, 'noop.js'))('http-proxy-3');
  const agent = new Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 256, timeout: 4000, scheduling: 'lifo' });
  const proxy = createProxyServer({ target: `http://127.0.0.1:${appPort}`, agent, xfwd: true });
  proxy.on('error', (err, req, res) => {
    if (typeof res.writeHead === 'function' && !res.headersSent) res.writeHead(502);
    res.end();
  });
  createServer((req, res) => proxy.web(req, res)).listen(port, '127.0.0.1');
}

/** Node's floor (see floor-forwarder.mjs) over plain HTTP. */
async function runFloor(port, appPort) {
  const { floorForwarder } = await import('./floor-forwarder.mjs');
  createServer(await floorForwarder(`http://127.0.0.1:${appPort}`)).listen(port, '127.0.0.1');
}

async function measure() {
  const { closeRedis, connectRedis, waitForReady } = await import('../../dist/common/redis-connection.js');
  const { RegistryStore } = await import('../../dist/registry/store/index.js');

  const env = (name) => process.env[name] ?? '';
  const redisPort = Number(env('BENCH_REDIS_PORT'));
  const appPort = Number(env('BENCH_APP_PORT'));
  const proxyPort = Number(env('BENCH_PROXY_PORT'));
  const proxyPid = Number(env('BENCH_PROXY_PID'));
  const workersPort = Number(env('BENCH_WORKERS_PORT'));
  // The instances' pid: the app's (the proxy samples the CPU of each local instance's process).
  const appPid = Number(env('BENCH_APP_PID'));
  const nginxPort = Number(env('BENCH_NGINX_PORT'));
  const floorPort = Number(env('BENCH_FLOOR_PORT'));
  const hp3Port = env('BENCH_HP3_PORT') === '' ? undefined : Number(env('BENCH_HP3_PORT'));
  const enginePort = env('BENCH_ENGINE_PORT') === '' ? undefined : Number(env('BENCH_ENGINE_PORT'));
  const haproxyPort = env('BENCH_HAPROXY_PORT') === '' ? undefined : Number(env('BENCH_HAPROXY_PORT'));
  const machine = env('BENCH_MACHINE');
  const keyPrefix = env('BENCH_KEY_PREFIX');
  const loadTool = env('BENCH_LOAD_TOOL') || 'wrk';

  const WARMUP_S = 3;
  const LOAD_S = 10;
  const ROUNDS = Math.max(1, Number(env('BENCH_ROUNDS') || 3));
  const CONNECTIONS = 64;
  const PROPAGATION_RUNS = 50;
  const MEMORY_ROUTES = 10_000;
  const REGISTER_CONCURRENCY = 64;
  const LEASE_MS = 3_600_000;
  const UNDER_LOAD_S = 20;
  const UNDER_LOAD_CONNECTIONS = 16;
  const UNDER_LOAD_RUNS = 20;

  const fmt = (n, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });

  /** One GET on a keep-alive connection: status and body. */
  const get = (port, path) =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode, body }));
        res.on('error', reject);
      });
      req.setTimeout(5000, () => req.destroy(new Error(`GET 127.0.0.1:${port}${path} timed out`)));
      req.on('error', reject);
      req.end();
    });

  async function waitFor(what, check, timeoutMs = 15_000, everyMs = 50) {
    const until = Date.now() + timeoutMs;
    let last;
    for (;;) {
      try {
        if (await check()) return;
      } catch (err) {
        last = err;
      }
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? ` (${last.message})` : ''}`);
      await sleep(everyMs);
    }
  }
  const answersHello = (port, path) => async () => {
    const r = await get(port, path);
    return r.status === 200 && r.body === 'hello';
  };
  const proxyHealth = async () => JSON.parse((await get(proxyPort, '/_berth/health')).body);
  const rssOf = (pid) => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  const rssKiB = () => rssOf(proxyPid);
  /** The haproxy engine's part of /_berth/routes: pids, reloads, backends. */
  const engineRoutes = async () => {
    try {
      return JSON.parse((await get(enginePort, '/_berth/routes')).body).engine;
    } catch {
      // once more, on a new connection: an old worker closes its idle ones as it stops after a reload
      return JSON.parse((await get(enginePort, '/_berth/routes')).body).engine;
    }
  };
  let haproxyMaster = 0;
  /** RSS of haproxy's master and all its children (the worker, and old ones draining). */
  const haproxyRss = () => {
    const pids = [haproxyMaster];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ')[1]) === haproxyMaster) pids.push(Number(entry));
      } catch {
        // gone
      }
    }
    return { kib: pids.reduce((sum, pid) => sum + rssOf(pid), 0), processes: pids.length };
  };

  const redis = connectRedis(
    { url: `redis://127.0.0.1:${redisPort}`, sentinels: [], sentinelName: 'mymaster', clusterNodes: [], commandTimeoutMs: 10_000 },
    { name: 'bench-proxy' },
  );
  try {
    await waitForReady(redis, 10_000);
    const store = new RegistryStore(redis, { keyPrefix });

    /** Registers, claims (for this machine, at the app's port) and marks running one instance. */
    const runInstance = async (service, path) => {
      const registered = await store.register({ service, path });
      const claimed = await store.claim({ service, machine, host: '127.0.0.1', port: appPort, instanceId: registered.id, leaseMs: LEASE_MS });
      return () => store.markRunning({ service, id: claimed.id, machine, epoch: claimed.epoch, pid: appPid });
    };

    await waitFor('the app', answersHello(appPort, '/bench'));
    await waitFor("the proxy's route table", async () => (await proxyHealth()).status === 'ok');
    await (await runInstance('bench', '/bench'))();
    await waitFor('the proxy to route /bench', answersHello(proxyPort, '/bench'));
    await waitFor('the proxy workers to route /bench', answersHello(workersPort, '/bench'));
    await waitFor('nginx', answersHello(nginxPort, '/bench'));
    await waitFor("Node's floor proxy", answersHello(floorPort, '/bench'));
    if (hp3Port !== undefined) await waitFor('the http-proxy-3 proxy', answersHello(hp3Port, '/bench'));
    if (enginePort !== undefined) await waitFor("berth's haproxy engine", answersHello(enginePort, '/bench'));
    if (haproxyPort !== undefined) await waitFor('HAProxy alone', answersHello(haproxyPort, '/bench'));
    if (enginePort !== undefined) haproxyMaster = (await engineRoutes()).masterPid;

    const hp3Version = hp3Port === undefined ? '' : JSON.parse(readFileSync(join(env('BENCH_HP3_DIR'), 'node_modules/http-proxy-3/package.json'), 'utf8')).version;
    const redisVersion = /^redis_version:(\S+)/m.exec(await redis.info('server'))[1];
    const toolName = loadTool === 'wrk' ? `wrk -t2 -c${CONNECTIONS} -d${LOAD_S}s --latency` : `autocannon -c ${CONNECTIONS} -d ${LOAD_S} (wrk is missing)`;
    console.log(`berth proxy benchmark: Node ${process.version}, ${env('BENCH_NGINX_VERSION').replace(/^nginx version: /, '')}, ${env('BENCH_HAPROXY_VERSION').replace(/ - https.*/, '') || 'no haproxy'}, redis-server ${redisVersion}, ${cpus().length} CPUs, loopback`);
    console.log(`(the load generator, the app, the proxy under test and Redis all share these CPUs)`);
    console.log('');

    // 1. Throughput and latency, back to back.
    const targets = [
      { name: 'app direct', port: appPort },
      { name: 'berth, 1 process', port: proxyPort },
      // Right after berth's one process, so that the two compare under the same conditions.
      { name: 'Node floor (undici)', port: floorPort },
      { name: `berth, ${cpus().length} workers`, port: workersPort },
      { name: 'nginx (1 worker)', port: nginxPort },
      ...(hp3Port === undefined ? [] : [{ name: `http-proxy-3 ${hp3Version}`, port: hp3Port }]),
      ...(enginePort === undefined ? [] : [{ name: 'berth, haproxy engine', port: enginePort }]),
      ...(haproxyPort === undefined ? [] : [{ name: 'HAProxy alone', port: haproxyPort }]),
    ];
    const E = 'berth, haproxy engine';
    const H = 'HAProxy alone';
    // Those compared side by side run again in later rounds, interleaved: on a shared
    // 2-CPU machine one 10 s run moves by 15 %, so ratios are taken within each round and
    // their median and range reported.
    const workersName = targets[3].name;
    const compared = new Set(['berth, 1 process', 'Node floor (undici)', workersName, 'nginx (1 worker)', E, H]);
    console.log(`keep-alive load on GET /bench ("hello"): ${toolName}, each after a ${WARMUP_S} s warm-up; ${ROUNDS} rounds of the ${targets.filter((t) => compared.has(t.name)).length} compared`);
    if (hp3Port === undefined) console.log('(http-proxy-3 could not be installed from npm: its line is skipped)');
    const rounds = [];
    const widths = [24, 12, 9, 9];
    const row = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[0]) : i < widths.length ? c.padStart(widths[i]) : c)).join('  ');
    console.log(row(['target', 'requests/s', 'p50 ms', 'p99 ms', 'check']));
    for (let round = 1; round <= ROUNDS; round++) {
      const results = new Map();
      for (const t of targets) {
        if (round > 1 && !compared.has(t.name)) continue;
        await runLoad(loadTool, t.port, WARMUP_S, CONNECTIONS);
        const r = await runLoad(loadTool, t.port, LOAD_S, CONNECTIONS);
        results.set(t.name, r);
        const bad = r.non2xx + r.errors;
        const check = bad === 0 ? `${fmt(r.requests)} requests, all 2xx` : `${fmt(r.requests)} requests, ${fmt(r.non2xx)} not 2xx, ${fmt(r.errors)} errors`;
        console.log(row([round === 1 ? t.name : `${t.name} #${round}`, fmt(r.rps), fmt(r.p50, 2), fmt(r.p99, 2), check]));
      }
      rounds.push(results);
    }
    /** The median and range over the rounds of one ratio, each taken within its round. */
    const ratio = (f) => {
      const values = rounds.map(f).sort((a, b) => a - b);
      const median = values[Math.floor(values.length / 2)];
      return values.length === 1 ? fmt(median, 2) : `${fmt(median, 2)} (${fmt(values[0], 2)}-${fmt(values[values.length - 1], 2)})`;
    };
    const first = rounds[0];
    const B = 'berth, 1 process';
    const N = 'nginx (1 worker)';
    const F = 'Node floor (undici)';
    console.log(`ratios: the median over ${ROUNDS} rounds (lowest-highest)`);
    console.log(`berth/direct throughput ${fmt(first.get(B).rps / first.get('app direct').rps, 2)} (round 1), berth/nginx throughput ${ratio((r) => r.get(B).rps / r.get(N).rps)}, berth/nginx p99 ${ratio((r) => r.get(B).p99 / r.get(N).p99)}`);
    console.log(`with ${cpus().length} workers (the default): berth/nginx throughput ${ratio((r) => r.get(workersName).rps / r.get(N).rps)}, berth/nginx p99 ${ratio((r) => r.get(workersName).p99 / r.get(N).p99)}`);
    console.log(`berth/Node floor throughput ${ratio((r) => r.get(B).rps / r.get(F).rps)} (berth's own cost, or gain), Node floor/nginx ${ratio((r) => r.get(F).rps / r.get(N).rps)} (Node's)`);
    if (hp3Port !== undefined) {
      const hp3 = first.get(targets[5].name);
      console.log(`berth/http-proxy-3 throughput ${fmt(first.get(B).rps / hp3.rps, 2)}, berth/http-proxy-3 p99 ${fmt(first.get(B).p99 / hp3.p99, 2)} (round 1)`);
    }
    if (enginePort !== undefined && haproxyPort !== undefined) {
      console.log(`haproxy engine/HAProxy alone throughput ${ratio((r) => r.get(E).rps / r.get(H).rps)}, p99 ${ratio((r) => r.get(E).p99 / r.get(H).p99)}`);
      console.log(`haproxy engine/nginx throughput ${ratio((r) => r.get(E).rps / r.get(N).rps)}, p99 ${ratio((r) => r.get(E).p99 / r.get(N).p99)}; haproxy engine/Node engine throughput (1 process) ${ratio((r) => r.get(E).rps / r.get(B).rps)}, (${cpus().length} workers) ${ratio((r) => r.get(E).rps / r.get(workersName).rps)}`);
    }
    console.log('');

    // 2. Route-change propagation: markRunning returned -> first 200 through the proxy.
    const propagation = async (port, label, name) => {
      const delays = [];
      let failures = 0;
      for (let n = 0; n < PROPAGATION_RUNS; n++) {
        const path = `/${name}${n}`;
        const markRunning = await runInstance(`bench-${name}${n}`, path);
        const before = await get(port, path);
        if (before.status === 200) throw new Error(`${path} answered 200 before its instance was running`);
        await markRunning();
        const start = performance.now();
        let delay;
        while (performance.now() - start < 5000) {
          if ((await get(port, path)).status === 200) {
            delay = performance.now() - start;
            break;
          }
          await sleep(1);
        }
        if (delay === undefined) failures++;
        else delays.push(delay);
      }
      delays.sort((a, b) => a - b);
      const rank = (p) => delays[Math.max(0, Math.ceil(p * delays.length) - 1)];
      console.log(`route propagation ${label}, ${PROPAGATION_RUNS} new services (markRunning returned -> first 200, polled every ~1 ms):`);
      if (delays.length > 0) {
        console.log(`  p50 ${fmt(rank(0.5), 1)} ms   p99 ${fmt(rank(0.99), 1)} ms   max ${fmt(delays.at(-1), 1)} ms   min ${fmt(delays[0], 1)} ms` + (delays.length < 100 ? '   (p99 of fewer than 100 samples is the largest)' : ''));
      }
      if (failures > 0) console.log(`  ${failures} of ${PROPAGATION_RUNS} were not routed within 5 s`);
    };
    await propagation(proxyPort, 'through the Node engine', 'p');
    // A new app takes a spare backend through the Runtime API (a reload only when none is left).
    if (enginePort !== undefined) await propagation(enginePort, 'through the haproxy engine (each a new app: a spare backend)', 'h');
    console.log('');
    // 3. Memory with 10,000 more routes: the Node proxy's RSS before and after; with the haproxy
    // engine, at 1,000 and at 10,000 routes, the RSS of haproxy (all its processes) and of berth's
    // engine process, and route changes while wrk loads another route through the engine.
    const enginePid = env('BENCH_ENGINE_PID') === '' ? undefined : Number(env('BENCH_ENGINE_PID'));
    const routesBefore = (await proxyHealth()).routes;
    await sleep(1000);
    const rssBefore = rssKiB();
    const registerStart = performance.now();
    let next = 0;
    /** Registers /r<next>../r<upTo - 1>, each a running instance of a service of its own. */
    const registerUpTo = async (upTo) => {
      const worker = async () => {
        while (next < upTo) {
          const n = next++;
          await (await runInstance(`bench-r${n}`, `/r${n}`))();
        }
      };
      await Promise.all(Array.from({ length: REGISTER_CONCURRENCY }, worker));
    };
    const engineStages = enginePort === undefined ? [] : [1000, MEMORY_ROUTES];
    for (const [stage, upTo] of engineStages.entries()) {
      const peak = { kib: 0 };
      const sampler = setInterval(() => {
        try {
          peak.kib = Math.max(peak.kib, haproxyRss().kib);
        } catch {
          // between two workers
        }
      }, 200);
      const t0 = performance.now();
      await registerUpTo(upTo);
      const registeredAt = performance.now();
      // haproxy serves them all itself: as many app backends as services with an instance here.
      const apps = upTo + 1 + 2 * PROPAGATION_RUNS + stage * UNDER_LOAD_RUNS;
      let engine = await engineRoutes();
      await waitFor(`the haproxy engine to serve ${fmt(apps)} apps itself`, async () => (engine = await engineRoutes()).appBackends >= apps, 180_000, 500);
      const servedAt = performance.now();
      clearInterval(sampler);
      await sleep(2000);
      const hp = haproxyRss();
      const reloadsBefore = engine.reloads;
      console.log(`haproxy engine (restarts so far ${engine.restarts}) with ${fmt(upTo)} more routes (/r0../r${upTo - 1}, registered in ${fmt((registeredAt - t0) / 1000, 1)} s; haproxy served them all itself ${fmt((servedAt - registeredAt) / 1000, 1)} s later):`);
      console.log(
        `  haproxy RSS ${fmt(hp.kib / 1024, 1)} MiB in ${hp.processes} processes (master and workers; peak ${fmt(Math.max(peak.kib, hp.kib) / 1024, 1)} MiB while they came),` +
          ` berth's engine process ${fmt(rssOf(enginePid) / 1024, 1)} MiB; ${engine.reloads} reloads so far, ${fmt(engine.backends)} backends of which ${fmt(engine.spares)} spare`,
      );
      // Route changes under load: wrk on /bench through the engine while new services start.
      const load = runLoad(loadTool, enginePort, UNDER_LOAD_S, UNDER_LOAD_CONNECTIONS, 1);
      await sleep(2000);
      // The same new services through the one-process Node proxy too (it holds the same routes),
      // polled in turn: what berth's route sync costs at this size, beside what the engine adds.
      const delays = { engine: [], node: [] };
      let failures = 0;
      let resets = 0;
      for (let n = 0; n < UNDER_LOAD_RUNS; n++) {
        const path = `/u${upTo}x${n}`;
        const markRunning = await runInstance(`bench-u${upTo}x${n}`, path);
        await markRunning();
        const start = performance.now();
        const pending = new Map([['engine', enginePort], ['node', proxyPort]]);
        while (pending.size > 0 && performance.now() - start < 10_000) {
          for (const [name, port] of [...pending]) {
            // An idle keep-alive connection to an old worker is closed when it stops after a reload (counted).
            const status = await get(port, path).then((r) => r.status, () => (resets++, 0));
            if (status === 200) {
              delays[name].push(performance.now() - start);
              pending.delete(name);
            }
          }
          await sleep(1);
        }
        failures += pending.size;
        await sleep(200);
      }
      const loaded = await load;
      const summary = (list) => {
        list.sort((a, b) => a - b);
        const rank = (p) => list[Math.max(0, Math.ceil(p * list.length) - 1)];
        return list.length === 0 ? 'none routed' : `p50 ${fmt(rank(0.5), 1)} ms, p99 ${fmt(rank(0.99), 1)} ms, max ${fmt(list.at(-1), 1)} ms`;
      };
      const after = await engineRoutes();
      console.log(
        `  route changes under load (${UNDER_LOAD_RUNS} new services, markRunning returned -> first 200, while ${loadTool === 'wrk' ? `wrk -t1 -c${UNDER_LOAD_CONNECTIONS}` : 'autocannon'} loads /bench through the engine):` +
          ` through the engine ${summary(delays.engine)}; through the one-process Node proxy ${summary(delays.node)}` +
          (failures > 0 ? `; ${failures} not routed within 10 s` : '') +
          `; reloads meanwhile ${after.reloads - reloadsBefore}, restarts so far ${after.restarts}${resets > 0 ? `, ${resets} polls on a connection closed under them` : ''}`,
      );
      console.log(`  the load meanwhile: ${fmt(loaded.rps)} requests/s, p99 ${fmt(loaded.p99, 2)} ms, ${fmt(loaded.non2xx)} not 2xx, ${fmt(loaded.errors)} errors`);
      if (upTo === 1000) console.log(`  (the one-process Node proxy with the same 1,000 routes: RSS ${fmt(rssKiB() / 1024, 1)} MiB, ${fmt(rssBefore / 1024, 1)} MiB before them)`);
    }
    await registerUpTo(MEMORY_ROUTES);
    const registered = performance.now();
    const expectedRoutes = routesBefore + MEMORY_ROUTES + (enginePort === undefined ? 0 : engineStages.length * UNDER_LOAD_RUNS);
    let routesAfter = routesBefore;
    await waitFor(
      `the proxy to hold ${fmt(expectedRoutes)} routes`,
      async () => (routesAfter = (await proxyHealth()).routes) >= expectedRoutes,
      90_000,
      100,
    );
    const routed = performance.now();
    const sample = await get(proxyPort, `/r${MEMORY_ROUTES - 1}`);
    if (sample.status !== 200 || sample.body !== 'hello') throw new Error(`/r${MEMORY_ROUTES - 1} answered ${sample.status} through the proxy`);
    // A moment for the last events' garbage; RSS still holds whatever V8 has not given back.
    await sleep(2000);
    const rssAfter = rssKiB();
    console.log(`proxy memory (VmRSS of the one-process proxy, pid ${proxyPid}; each worker holds as much) with ${fmt(MEMORY_ROUTES)} more running instances of as many services (/r0../r${MEMORY_ROUTES - 1}):`);
    console.log(
      `  registered+claimed+running in ${fmt((registered - registerStart) / 1000, 1)} s${enginePort === undefined ? '' : ' (with the engine measures above between)'}; the proxy held them all ${fmt((routed - registered) / 1000, 1)} s later` +
        ` (routes ${fmt(routesBefore)} -> ${fmt(routesAfter)}, checked with /r${MEMORY_ROUTES - 1})`,
    );
    console.log(
      `  RSS before ${fmt(rssBefore / 1024, 1)} MiB, after ${fmt(rssAfter / 1024, 1)} MiB: +${fmt((rssAfter - rssBefore) / 1024, 1)} MiB` +
        ` = ${fmt(((rssAfter - rssBefore) * 1024) / (routesAfter - routesBefore))} bytes per route (route table, sync and CPU-sampler state; uncollected garbage included)`,
    );
  } finally {
    agent.destroy();
    await closeRedis(redis);
  }
}

/** One load run against 127.0.0.1:<port>/bench: requests/s, p50 and p99 (ms), and what failed. */
async function runLoad(tool, port, seconds, connections, threads = 2) {
  const url = `http://127.0.0.1:${port}/bench`;
  const run = promisify(execFile);
  if (tool === 'wrk') {
    const { stdout } = await run('wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', url], { timeout: (seconds + 30) * 1000 });
    const ms = (re) => {
      const m = re.exec(stdout);
      if (m === null) throw new Error(`cannot read ${re} from wrk's output:\n${stdout}`);
      return Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2]];
    };
    const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
    return {
      rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)[1]),
      p50: ms(/^\s+50%\s+([\d.]+)(us|ms|s|m)\b/m),
      p99: ms(/^\s+99%\s+([\d.]+)(us|ms|s|m)\b/m),
      requests: Number(/(\d+) requests in/.exec(stdout)[1]),
      non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0),
      errors: socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    };
  }
  const { stdout } = await run(tool, ['-c', String(connections), '-d', String(seconds), '-j', url], { timeout: (seconds + 30) * 1000, maxBuffer: 64 * 1024 * 1024 });
  const r = JSON.parse(stdout);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, requests: r.requests.total, non2xx: r.non2xx, errors: r.errors + r.timeouts };
}
