// The TLS benchmark's measurements, run by scripts/bench/tls (which starts and always stops
// every process: run that instead). Settings come in BENCH_* variables. It uses the compiled
// code, as berth runs it.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';

const { closeRedis, connectRedis, waitForReady } = await import('../../dist/common/redis-connection.js');
const { RegistryStore } = await import('../../dist/registry/store/index.js');

const env = (name) => process.env[name] ?? '';
const redisPort = Number(env('BENCH_REDIS_PORT'));
const appPort = Number(env('BENCH_APP_PORT'));
const appPid = Number(env('BENCH_APP_PID'));
const proxyPort = Number(env('BENCH_PROXY_PORT'));
const balancerPort = Number(env('BENCH_BALANCER_PORT'));
const nginxPort = Number(env('BENCH_NGINX_PORT'));
const floorPort = Number(env('BENCH_FLOOR_PORT'));
const machine = env('BENCH_MACHINE');
const keyPrefix = env('BENCH_KEY_PREFIX');
const ca = readFileSync(env('BENCH_CA'), 'utf8');
/** The key of the certificate every TLS server here serves (the balancer's self-made one, beside its CA). */
const leafKey = new X509Certificate(readFileSync(join(dirname(env('BENCH_CA')), 'server.pem'))).publicKey;
const keyName = leafKey.asymmetricKeyType === 'ec' ? `ECDSA ${leafKey.asymmetricKeyDetails?.namedCurve}` : `${leafKey.asymmetricKeyType?.toUpperCase()} ${leafKey.asymmetricKeyDetails?.modulusLength}`;

const WARMUP_S = 3;
const LOAD_S = 10;
const CONNECTIONS = 64;
/** Handshake load: fewer connections, each closed after its one request. */
const HANDSHAKE_CONNECTIONS = 16;
const RESUMPTION_TRIES = 5;
const LEASE_MS = 3_600_000;

const fmt = (n, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

/** One GET: status and body; over TLS (verified against berth's CA) when `tls`. */
const get = (port, path, tls = false) =>
  new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path, ...(tls ? { ca, servername: 'localhost', agent: false } : { agent }) };
    const req = (tls ? httpsRequest : request)(options, (res) => {
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
const answersHello = (port, tls = false) => async () => {
  const r = await get(port, '/bench', tls);
  return r.status === 200 && r.body === 'hello';
};

/**
 * Whether a client that kept its session from a first connection resumes it on the next:
 * out of RESUMPTION_TRIES reconnections, how many the server resumed.
 */
async function resumptions(port, version) {
  const once = (session) =>
    new Promise((resolve, reject) => {
      let got = session;
      const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', minVersion: version, maxVersion: version, session }, () => {
        const reused = socket.isSessionReused();
        // TLS 1.3 tickets come after the handshake: give the server a moment to send one.
        socket.write('GET /bench HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
        socket.on('data', () => undefined);
        socket.on('end', () => resolve({ reused, session: got }));
      });
      socket.on('session', (s) => (got = s));
      socket.on('error', reject);
    });
  let { session } = await once(undefined);
  let reused = 0;
  for (let i = 0; i < RESUMPTION_TRIES; i++) {
    const r = await once(session);
    if (r.reused) reused++;
    session = r.session;
  }
  return reused;
}

/** One wrk run: requests/s, p50 and p99 (ms), and what failed. */
async function runLoad(url, seconds, connections, headers = []) {
  const run = promisify(execFile);
  const args = ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), url];
  const { stdout } = await run('wrk', args, { timeout: (seconds + 30) * 1000 });
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

const widths = [34, 12, 9, 9];
const row = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[0]) : i < widths.length ? c.padStart(widths[i]) : c)).join('  ');
const check = (r) => (r.non2xx + r.errors === 0 ? `${fmt(r.requests)} requests, all 2xx` : `${fmt(r.requests)} requests, ${fmt(r.non2xx)} not 2xx, ${fmt(r.errors)} socket errors`);

const redis = connectRedis(
  { url: `redis://127.0.0.1:${redisPort}`, sentinels: [], sentinelName: 'mymaster', clusterNodes: [], commandTimeoutMs: 10_000 },
  { name: 'bench-tls' },
);
try {
  await waitForReady(redis, 10_000);
  const store = new RegistryStore(redis, { keyPrefix });
  await waitFor('the app', answersHello(appPort));
  const registered = await store.register({ service: 'bench', path: '/bench' });
  const claimed = await store.claim({ service: 'bench', machine, host: '127.0.0.1', port: appPort, instanceId: registered.id, leaseMs: LEASE_MS });
  await store.markRunning({ service: 'bench', id: claimed.id, machine, epoch: claimed.epoch, pid: appPid });
  await waitFor('the proxy to route /bench', answersHello(proxyPort));
  await waitFor('the balancer to answer /bench over HTTPS', answersHello(balancerPort, true));
  await waitFor('nginx to answer /bench over HTTPS', answersHello(nginxPort, true));
  await waitFor("Node's floor to answer /bench over HTTPS", answersHello(floorPort, true));

  const redisVersion = /^redis_version:(\S+)/m.exec(await redis.info('server'))[1];
  console.log(`berth TLS benchmark: Node ${process.version} (OpenSSL ${process.versions.openssl}), ${env('BENCH_NGINX_VERSION').replace(/^nginx version: /, '')}, redis-server ${redisVersion}, ${cpus().length} CPUs, loopback`);
  console.log(`(wrk, the app, the proxy, the balancer, nginx and Redis all share these CPUs; the TLS servers serve the same ${keyName} certificate, TLS 1.3 negotiated)`);
  console.log('');

  // 1. Keep-alive throughput and latency, back to back.
  console.log(`keep-alive load on GET /bench ("hello"): wrk -t2 -c${CONNECTIONS} -d${LOAD_S}s --latency, each after a ${WARMUP_S} s warm-up`);
  const targets = [
    { name: 'app direct (HTTP)', url: `http://127.0.0.1:${appPort}/bench` },
    { name: 'berth proxy -> app (HTTP)', url: `http://127.0.0.1:${proxyPort}/bench` },
    { name: 'berth balancer -> proxy -> app', url: `https://127.0.0.1:${balancerPort}/bench` },
    { name: 'nginx (1 worker) -> proxy -> app', url: `https://127.0.0.1:${nginxPort}/bench` },
    // Node's https server and berth's undici agent, forwarding and nothing else.
    { name: 'Node floor -> proxy -> app', url: `https://127.0.0.1:${floorPort}/bench` },
  ];
  console.log(row(['target', 'requests/s', 'p50 ms', 'p99 ms', 'check']));
  const results = new Map();
  for (const t of targets) {
    await runLoad(t.url, WARMUP_S, CONNECTIONS);
    const r = await runLoad(t.url, LOAD_S, CONNECTIONS);
    results.set(t.name, r);
    console.log(row([t.name, fmt(r.rps), fmt(r.p50, 2), fmt(r.p99, 2), check(r)]));
  }
  const direct = results.get(targets[0].name);
  const berth = results.get(targets[2].name);
  const nginx = results.get(targets[3].name);
  const floor = results.get(targets[4].name);
  console.log(
    `berth HTTPS/nginx HTTPS throughput ${fmt(berth.rps / nginx.rps, 2)} (target >= 0.5), p99 ${fmt(berth.p99 / nginx.p99, 2)}; ` +
      `Node floor/nginx ${fmt(floor.rps / nginx.rps, 2)}, berth/Node floor ${fmt(berth.rps / floor.rps, 2)}; ` +
      `berth HTTPS/direct ${fmt(berth.rps / direct.rps, 2)}, nginx HTTPS/direct ${fmt(nginx.rps / direct.rps, 2)}`,
  );
  console.log('');

  // 2. New TLS handshakes per second: every request on a new connection.
  console.log(`new TLS handshakes: wrk -t2 -c${HANDSHAKE_CONNECTIONS} -d${LOAD_S}s -H 'Connection: close' (one request per connection), each after a ${WARMUP_S} s warm-up`);
  console.log(row(['target', 'handshakes/s', 'p50 ms', 'p99 ms', 'check']));
  const handshakes = new Map();
  for (const t of targets.slice(2)) {
    await runLoad(t.url, WARMUP_S, HANDSHAKE_CONNECTIONS, ['Connection: close']);
    const r = await runLoad(t.url, LOAD_S, HANDSHAKE_CONNECTIONS, ['Connection: close']);
    handshakes.set(t.name, r);
    console.log(row([t.name, fmt(r.rps), fmt(r.p50, 2), fmt(r.p99, 2), check(r)]));
  }
  const hb = handshakes.get(targets[2].name);
  const hn = handshakes.get(targets[3].name);
  const hf = handshakes.get(targets[4].name);
  console.log(`berth/nginx handshakes/s ${fmt(hb.rps / hn.rps, 2)} (target >= 0.5); Node floor/nginx ${fmt(hf.rps / hn.rps, 2)}, berth/Node floor ${fmt(hb.rps / hf.rps, 2)}`);
  console.log('');

  // 3. Session resumption, as a client that keeps its session sees it.
  const line = [];
  for (const [name, port] of [['berth', balancerPort], ['nginx', nginxPort]]) {
    line.push(`${name}: TLS 1.3 ${await resumptions(port, 'TLSv1.3')}/${RESUMPTION_TRIES}, TLS 1.2 ${await resumptions(port, 'TLSv1.2')}/${RESUMPTION_TRIES}`);
  }
  console.log(`session resumption (reconnections resumed): ${line.join('; ')}`);
} finally {
  agent.destroy();
  await closeRedis(redis);
}
