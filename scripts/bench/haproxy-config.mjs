// The haproxy engine's config, part by part, against HAProxy alone: run by scripts/bench/haproxy-config.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findHaproxy } from '../../dist/proxy/haproxy-engine/index.js';
import { haproxyThreads } from '../../dist/proxy/haproxy-engine/haproxy-engine.js';
import { renderConfig, renderMap } from '../../dist/proxy/haproxy-engine/haproxy-config.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = 5;
const MAX_HEADER_BYTES = 16 * 1024; // the proxy's default (BERTH_MAX_HEADER_BYTES)
const cpus = availableParallelism();
const threads = haproxyThreads(cpus);
const haproxy = findHaproxy();
if (haproxy === undefined) {
  console.error('haproxy is not installed: as root, run scripts/setup (or apt-get install -y haproxy).');
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), 'berth-bench-haproxy-config-'));
const children = [];
const stopAll = () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', stopAll);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The config with `from` replaced by `to`; throws when `from` is not in it (the engine's config changed: update this script). */
function edit(config, from, to) {
  if (!(typeof from === 'string' ? config.includes(from) : from.test(config))) throw new Error(`the engine's config has no ${from}: update scripts/bench/haproxy-config.mjs`);
  return config.replace(from, to);
}

function engineConfig(name, port, appPort) {
  const d = join(dir, name.replace(/[^a-z0-9]+/gi, '-'));
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  const settings = {
    adminSocket: join(d, 'admin.sock'),
    mapFile: join(d, 'routes.map'),
    hostsFile: join(d, 'hosts.map'),
    stateFile: join(d, 'state.map'),
    nodePort: 9, // nothing of this benchmark goes to berth's Node listener
    trustedProxies: ['127.0.0.1'],
    threads,
    maxConnections: 4096, // as HAProxy alone's maxconn
    fdLimit: undefined,
    connectTimeoutMs: 2000,
    upstreamTimeoutMs: 60_000,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 120_000,
    keepAliveTimeoutMs: 5000,
    maxHeaderBytes: MAX_HEADER_BYTES,
    graceMs: 10_000,
  };
  const backend = { name: 'app-bench', app: 'bench', prefix: '/bench', stripPrefix: false, servers: new Map([['bench-1-e1', { name: 'bench-1-e1', host: '127.0.0.1', port: appPort }]]) };
  writeFileSync(settings.mapFile, renderMap(new Map([['/bench', 'app-bench']])));
  writeFileSync(settings.hostsFile, '');
  writeFileSync(settings.stateFile, '');
  return { dir: d, config: edit(renderConfig(settings, [backend], 8), /bind fd@\d+/, `bind 127.0.0.1:${port}`) };
}

function aloneConfig(port, appPort, nbthread) {
  return ['global', `  nbthread ${nbthread}`, '  maxconn 4096', 'defaults', '  mode http', '  timeout connect 2s', '  timeout client 30s', '  timeout server 60s', '  option forwardfor', '  http-reuse safe', 'frontend bench', `  bind 127.0.0.1:${port}`, '  use_backend app if { path_beg /bench }', 'backend app', '  balance leastconn', `  server app 127.0.0.1:${appPort}`, ''].join('\n');
}


async function startHaproxy(name, config) {
  const file = join(dir, `${name.replace(/[^a-z0-9]+/gi, '-')}.cfg`);
  writeFileSync(file, config);
  await promisify(execFile)(haproxy, ['-c', '-q', '-f', file]);
  const child = spawn(haproxy, ['-f', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  return child;
}

async function wrk(port, seconds) {
  const { stdout } = await promisify(execFile)('wrk', ['-t2', '-c64', `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/bench`], { timeout: (seconds + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)$/m.exec(stdout);
  const p99Ms = p99 === null ? NaN : Number(p99[1]) * { us: 0.001, ms: 1, s: 1000 }[p99[2]];
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const errors = /Socket errors: (.*)/.exec(stdout)?.[1];
  return { rps, p99Ms, bad: non2xx > 0 || errors !== undefined ? `${non2xx} not 2xx${errors ? `, errors ${errors}` : ''}` : '' };
}

async function waitAnswers(port) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/bench`).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing answers on port ${port} within 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function compare(backendName, appPort) {
  const targets = [
    { name: 'HAProxy alone', config: (port) => aloneConfig(port, appPort, threads) },
    { name: "engine's config", config: (port) => engineConfig('engine', port, appPort).config },
    { name: 'engine, 32 KB buffer (before)', config: (port) => edit(engineConfig('engine-32k', port, appPort).config, /tune\.bufsize \d+/, `tune.bufsize ${2 * MAX_HEADER_BYTES}`) },
    { name: 'engine, no L7 retry', config: (port) => edit(engineConfig('engine-noretry', port, appPort).config, 'retry-on conn-failure empty-response', 'retry-on conn-failure') },
  ];
  // One thread fewer, for the apps (a choice tried and not kept: docs/benchmarks.md).
  if (threads > 1) {
    targets.push({ name: `engine, ${threads - 1} thread(s)`, config: (port) => edit(engineConfig('engine-threads', port, appPort).config, /nbthread \d+/, `nbthread ${threads - 1}`) });
    targets.push({ name: `HAProxy alone, ${threads - 1} thread(s)`, config: (port) => aloneConfig(port, appPort, threads - 1) });
  }
  for (const t of targets) {
    t.port = await freePort();
    t.process = await startHaproxy(`${backendName}-${t.name}`, t.config(t.port));
    await waitAnswers(t.port);
    await wrk(t.port, 2); // warm-up
  }
  console.log(`\nin front of ${backendName}: wrk -t2 -c64 -d${SECONDS}s --latency, ${ROUNDS} interleaved rounds, haproxy threads ${threads} (${cpus} CPUs)`);
  console.log(`${'target'.padEnd(34)} ${'requests/s'.padStart(10)} ${'p99 ms'.padStart(8)} ${'/alone'.padStart(7)}`);
  const ratios = new Map(targets.map((t) => [t.name, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    let alone;
    for (const t of targets) {
      const r = await wrk(t.port, SECONDS);
      alone ??= r.rps;
      ratios.get(t.name).push(r.rps / alone);
      console.log(`${`${t.name} #${round}`.padEnd(34)} ${Math.round(r.rps).toLocaleString('en-US').padStart(10)} ${r.p99Ms.toFixed(2).padStart(8)} ${(r.rps / alone).toFixed(2).padStart(7)} ${r.bad}`);
    }
  }
  console.log(`throughput / HAProxy alone, median over ${ROUNDS} rounds (lowest-highest):`);
  for (const [name, xs] of ratios) if (name !== 'HAProxy alone') console.log(`  ${name}: ${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`);
  for (const t of targets) t.process.kill('SIGKILL');
}

const { stdout: version } = await promisify(execFile)(haproxy, ['-v']);
console.log(`the haproxy engine's config against HAProxy alone: ${version.split('\n')[0]}, Node ${process.version}, ${cpus} CPUs, loopback`);
const appPort = await freePort();
const app = spawn(process.execPath, ['-e', `require('node:http').createServer((q, r) => { r.writeHead(200, { 'content-type': 'text/plain' }); r.end('hello'); }).listen(${appPort}, '127.0.0.1')`], { stdio: 'inherit' });
children.push(app);
await waitAnswers(appPort);
await compare('a Node hello app', appPort);
const fastPort = await freePort();
await startHaproxy('fast-backend', ['global', '  nbthread 1', 'defaults', '  mode http', '  timeout client 30s', 'frontend answer', `  bind 127.0.0.1:${fastPort}`, '  http-request return status 200 content-type text/plain string hello', ''].join('\n'));
await waitAnswers(fastPort);
await compare('a haproxy that answers by itself', fastPort);
