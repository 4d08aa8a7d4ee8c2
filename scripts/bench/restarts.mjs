// The restart drills' measurements, run by scripts/bench/restarts (which picks the ports, makes
// the temp dir and always cleans up; run that instead). Settings come in BENCH_* env.
// It starts `bin/berth up`, publishes a small app (one instance) that answers GETs and records
// every POST's id, runs a request loop through the HTTPS balancer (GETs and POSTs with a small
// body, half each, at BENCH_RATE requests/s over keep-alive connections), and for each fault
// named in BENCH_FAULTS kills or stops one daemon, waits until `berth up` has restarted it and
// the loop is served again, and prints what failed:
//   proxy-kill      SIGKILL of the proxy's primary (its workers are left to themselves)
//   proxy-kill-all  SIGKILL of the primary and every worker at once
//   proxy-term      SIGTERM of the proxy (a clean restart: `berth up` starts another)
//   balancer-kill   SIGKILL of the balancer (its primary, when it runs workers)
//   balancer-term   SIGTERM of the balancer
//   balancer-worker-kill  SIGKILL of one balancer worker (BERTH_BALANCER_WORKERS=2 or more):
//                   its primary starts another; the window closes once it is there
// Half the loops are plain clients (any error or non-2xx answer is a failure), half retrying
// clients (they send a request again, on a fresh connection, when it got no HTTP answer at all:
// refused, reset, closed; with backoff, for up to 10 s; a 5xx answer is a failure).
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const UP_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 45_000;
const REQUEST_TIMEOUT_MS = 15_000;
/** A retrying client gives up on a request after this long without an HTTP answer. */
const RETRY_FOR_MS = 10_000;
/** Load before each fault, and after the daemon is back (the fault's window closes then). */
const STEADY_MS = 3000;
const RECOVER_TIMEOUT_MS = 60_000;
const LOOPS = 6;

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const berth = join(root, 'bin', 'berth');
const env = (name) => {
  const value = process.env[name];
  if (value === undefined || value === '') {
    console.error(`${name} is not set: run scripts/bench/restarts (this file is its helper)`);
    process.exit(2);
  }
  return value;
};
const dir = env('BENCH_DIR');
const dataDir = join(dir, 'data');
const home = join(dir, 'home');
const httpsPort = Number(env('BENCH_HTTPS_PORT'));
const rate = Number(process.env.BENCH_RATE || 180);
const faults = (process.env.BENCH_FAULTS || 'proxy-kill proxy-term proxy-kill-all balancer-term balancer-kill').split(/[\s,]+/).filter(Boolean);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const baseEnv = { ...process.env };
for (const name of Object.keys(baseEnv)) {
  if (name.startsWith('BENCH_') || name === 'REDIS_URL' || name === 'BERTH_URL' || name === 'BERTH_TOKEN') delete baseEnv[name];
}
baseEnv.BERTH_HOME = home;
baseEnv.NO_COLOR = '1';

// --- berth up -------------------------------------------------------------------------------
const upLog = createWriteStream(join(dir, 'up.log'));
const up = spawn(
  berth,
  ['up', '--data-dir', dataDir, '--api-port', env('BENCH_API_PORT'), '--proxy-port', env('BENCH_PROXY_PORT'), '--https-port', String(httpsPort), '--redis-port', env('BENCH_REDIS_PORT')],
  { env: { BERTH_MAX_LOAD_PER_CPU: '1000', ...baseEnv }, stdio: ['ignore', 'pipe', 'pipe'] },
);
let upExit;
const upExited = new Promise((r) => up.once('exit', (code, signal) => r((upExit = { code, signal }))));
/** Each daemon's pid, with when it started (performance.now()). */
const daemons = new Map();
let upOutput = '';
const onUpData = (chunk) => {
  upLog.write(chunk);
  upOutput += chunk.toString();
  for (const m of chunk.toString().matchAll(/berth up: (\w+) started \(pid (\d+)\)/g)) daemons.set(m[1], { pid: Number(m[2]), at: performance.now() });
};
up.stdout.on('data', onUpData);
up.stderr.on('data', onUpData);
const fail = async (message) => {
  console.error(`restarts benchmark: ${message}`);
  if (upExit === undefined) {
    up.kill('SIGTERM');
    await Promise.race([upExited, sleep(STOP_TIMEOUT_MS)]);
  }
  process.exit(1);
};
const started = performance.now();
while (!upOutput.includes('running: press Ctrl-C to stop')) {
  if (upExit !== undefined) await fail(`berth up exited (${upExit.signal ?? `code ${upExit.code}`}) before it was ready`);
  if (performance.now() - started > UP_TIMEOUT_MS) await fail(`berth up was not ready within ${UP_TIMEOUT_MS / 1000} s`);
  await sleep(20);
}

// --- the app: answers GETs, records every POST's id -------------------------------------------------
const appDir = join(dir, 'drill-app');
mkdirSync(appDir, { recursive: true });
writeFileSync(join(appDir, 'package.json'), '{"name":"drill","private":true,"scripts":{"start":"node server.js"}}\n');
writeFileSync(
  join(appDir, 'server.js'),
  `const http = require('node:http');
const seen = [];
const server = http.createServer((req, res) => {
  if (req.url.endsWith('/_seen')) return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(seen));
  let bytes = 0;
  req.on('data', (d) => (bytes += d.length));
  req.on('end', () => {
    if (req.method === 'POST') seen.push(req.headers['x-drill-id']);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ method: req.method, bytes }));
  });
});
server.listen(Number(process.env.PORT), process.env.HOST || '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`,
);
const published = await new Promise((r) => {
  const child = spawn(berth, ['publish', appDir, '--name', 'drill', '--path', '/drill', '--instances', '1'], { env: baseEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  child.once('exit', (code) => r({ code, out }));
});
if (published.code !== 0) await fail(`berth publish failed:\n${published.out}`);

// --- the load -----------------------------------------------------------------------------------
const ca = readFileSync(join(dataDir, 'tls', 'ca.pem'));
const agent = new Agent({ ca, keepAlive: true, maxSockets: LOOPS });
const BODY = JSON.stringify({ payload: 'x'.repeat(200) });

/** One exchange: { status, body } for an HTTP answer, or { error } without one. */
const exchange = (method, id, fresh) =>
  new Promise((resolveExchange) => {
    const headers = method === 'POST' ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY), 'x-drill-id': id } : {};
    const req = request({ host: '127.0.0.1', servername: 'localhost', port: httpsPort, path: `/drill/${id}`, method, headers, ...(fresh ? { ca, agent: false } : { agent }), timeout: REQUEST_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolveExchange({ status: res.statusCode, body }));
      res.on('error', (err) => resolveExchange({ error: err.code ?? err.message }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (err) => resolveExchange({ error: err.code ?? err.message }));
    req.end(method === 'POST' ? BODY : undefined);
  });

/** Every request: method, id, start and end (ms), first outcome, final outcome after retries. */
const log = [];
let on = true;
let nextId = 1;
const loop = async (n) => {
  const period = (1000 * LOOPS) / rate;
  while (on) {
    const t0 = performance.now();
    const method = (nextId + n) % 2 === 0 ? 'GET' : 'POST';
    const id = `r${nextId++}`;
    const retrying = n >= LOOPS / 2;
    const entry = { method, id, retrying, start: t0, end: 0, first: undefined, final: undefined, attempts: 0 };
    log.push(entry);
    let outcome = await exchange(method, id, false);
    entry.attempts = 1;
    entry.first = outcome;
    let wait = 50;
    while (retrying && outcome.error !== undefined && performance.now() - t0 < RETRY_FOR_MS) {
      await sleep(wait);
      wait = Math.min(wait * 2, 500);
      outcome = await exchange(method, id, true);
      entry.attempts++;
    }
    entry.final = outcome;
    entry.end = performance.now();
    const left = period - (entry.end - t0);
    if (left > 0) await sleep(left);
  }
};
const loops = Array.from({ length: LOOPS }, (_, n) => loop(n));
const ok = (o) => o.error === undefined && o.status >= 200 && o.status < 300;
const describe = (o) => (o.error !== undefined ? o.error : `${o.status} ${safeCode(o.body)}`);
const safeCode = (body) => {
  try {
    return JSON.parse(body).error?.code ?? '';
  } catch {
    return '';
  }
};
const children = (pid) =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);

console.log(
  `berth up on ${cpus().length} CPUs, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}; ` +
    `${LOOPS / 2} plain and ${LOOPS / 2} retrying loops at ${rate} requests/s in all, each half GET, half POST (${BODY.length} bytes)`,
);
await sleep(STEADY_MS);
const results = [];
for (const fault of faults) {
  const [daemon, how] = fault.split('-');
  const before = daemons.get(daemon);
  if (before === undefined) await fail(`no ${daemon} pid in berth up's output`);
  const firstIndex = log.length;
  const t0 = performance.now();
  let workerBackAt;
  if (fault === 'balancer-worker-kill') {
    const workers = children(before.pid);
    if (workers.length < 2) await fail('the balancer runs no workers: set BERTH_BALANCER_WORKERS=2 (or more) for balancer-worker-kill');
    process.kill(workers[0], 'SIGKILL');
    // Back once the primary has started another in its place.
    const deadline = t0 + RECOVER_TIMEOUT_MS;
    const replaced = () => children(before.pid).length === workers.length && !children(before.pid).includes(workers[0]);
    while (!replaced() && performance.now() < deadline) await sleep(10);
    if (!replaced()) await fail(`the balancer did not start a worker in place of the killed one within ${RECOVER_TIMEOUT_MS / 1000} s`);
    workerBackAt = performance.now();
  } else if (how === 'term') process.kill(before.pid, 'SIGTERM');
  else if (fault === 'proxy-kill-all') for (const pid of [before.pid, ...children(before.pid)]) process.kill(pid, 'SIGKILL');
  else process.kill(before.pid, 'SIGKILL');
  const deadline = t0 + RECOVER_TIMEOUT_MS;
  while (workerBackAt === undefined && daemons.get(daemon).pid === before.pid && performance.now() < deadline) await sleep(10);
  const restartedAt = workerBackAt ?? daemons.get(daemon).at;
  if (workerBackAt === undefined && daemons.get(daemon).pid === before.pid) await fail(`${daemon} was not restarted within ${RECOVER_TIMEOUT_MS / 1000} s`);
  // Back: a request begun after the restart answered.
  while (!log.some((e) => e.start > restartedAt && e.final !== undefined && ok(e.final)) && performance.now() < deadline) await sleep(10);
  await sleep(STEADY_MS);
  const window = log.slice(firstIndex);
  while (window.some((e) => e.final === undefined)) await sleep(50);
  const plain = window.filter((e) => !e.retrying);
  const retried = window.filter((e) => e.retrying);
  const plainFailed = plain.filter((e) => !ok(e.final));
  const retryFailed = retried.filter((e) => !ok(e.final));
  const resent = retried.filter((e) => e.attempts > 1).length;
  const spread = plainFailed.length === 0 ? 0 : Math.max(...plainFailed.map((e) => e.end)) - Math.min(...plainFailed.map((e) => e.start));
  const slowest = Math.max(...window.map((e) => e.end - e.start));
  const kinds = (failed) => {
    const byKind = new Map();
    for (const e of failed) byKind.set(`${e.method} ${describe(e.final)}`, (byKind.get(`${e.method} ${describe(e.final)}`) ?? 0) + 1);
    return [...byKind].map(([k, v]) => `${v}× ${k}`).join(', ');
  };
  results.push({ fault, window, plainFailed, retryFailed });
  console.log(
    `${fault.padEnd(20)} plain client: ${plainFailed.length} of ${plain.length} failed (GET ${plainFailed.filter((e) => e.method === 'GET').length}, POST ${plainFailed.filter((e) => e.method === 'POST').length})` +
      `${plainFailed.length > 0 ? ` over ${(spread / 1000).toFixed(2)} s: ${kinds(plainFailed)}` : ''}; ` +
      `retrying client: ${retryFailed.length} of ${retried.length} failed${retryFailed.length > 0 ? ` (${kinds(retryFailed)})` : ''}, ${resent} sent again; restarted after ${((restartedAt - t0) / 1000).toFixed(2)} s; slowest answer ${(slowest / 1000).toFixed(2)} s`,
  );
}
on = false;
await Promise.all(loops);

// --- POSTs: which did the app run, and did any run twice --------------------------------------------
const seen = await exchange('GET', '_seen', true);
if (seen.error !== undefined || seen.status !== 200) await fail(`GET /drill/_seen: ${describe(seen)}`);
const counts = new Map();
for (const id of JSON.parse(seen.body)) counts.set(id, (counts.get(id) ?? 0) + 1);
const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
for (const { fault, window, plainFailed } of results) {
  const posts = plainFailed.filter((e) => e.method === 'POST');
  const ran = posts.filter((e) => counts.has(e.id)).length;
  const resent = window.filter((e) => e.retrying && e.attempts > 1);
  const doubled = window.filter((e) => (counts.get(e.id) ?? 0) > 1);
  if (posts.length === 0 && resent.length === 0) continue;
  console.log(
    `${fault.padEnd(20)} ` +
      (posts.length > 0 ? `of its ${posts.length} failed POSTs (plain client), the app ran ${ran}, never got ${posts.length - ran}; ` : '') +
      (resent.length > 0 ? `sent again by the retrying client: ${resent.map((e) => `${e.method} after ${describe(e.first)}`).join(', ')}; ` : '') +
      `POSTs the app ran twice: ${doubled.length}`,
  );
}
const posts = log.filter((e) => e.method === 'POST');
console.log(`POSTs: ${posts.length} sent, the app ran ${counts.size} distinct, ${twice.length} twice${twice.length > 0 ? ` (${twice.slice(0, 10).join(' ')})` : ''}`);

agent.destroy();
up.kill('SIGTERM');
const stopped = await Promise.race([upExited.then(() => true), sleep(STOP_TIMEOUT_MS).then(() => false)]);
if (!stopped) up.kill('SIGKILL');
upLog.end();
process.exit(stopped ? 0 : 1);
