// The balancer-workers measurement, run by scripts/bench/balancer-workers (which picks the ports,
// makes the temp dir and always cleans up; run that instead). Settings come in BENCH_* env.
// For each worker count of BENCH_WORKERS (default "1 2") it starts `bin/berth balancer
// --workers N` on loopback in front of a stand-in proxy (a Node HTTP server in this process that
// answers "hello"), and measures with wrk: keep-alive throughput, and new TLS connections per
// second (Connection: close, so every request is a full handshake), each for BENCH_SECONDS.
// wrk, the stand-in and the balancer share the machine's CPUs.
import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const env = (name) => {
  const value = process.env[name];
  if (value === undefined || value === '') {
    console.error(`${name} is not set: run scripts/bench/balancer-workers (this file is its helper)`);
    process.exit(2);
  }
  return value;
};
const dir = env('BENCH_DIR');
const httpsPort = Number(env('BENCH_HTTPS_PORT'));
const standPort = Number(env('BENCH_STAND_PORT'));
const seconds = Number(process.env.BENCH_SECONDS || 8);
const counts = (process.env.BENCH_WORKERS || '1 2').split(/[\s,]+/).filter(Boolean).map(Number);
const CONNECTIONS = 32;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const stand = createServer((req, res) => {
  if (req.url === '/_berth/health') return void res.end('{"status":"ok"}');
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' }).end('hello');
});
await new Promise((r) => stand.listen(standPort, '127.0.0.1', r));

async function wrk(headers) {
  const args = ['-t2', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), `https://127.0.0.1:${httpsPort}/bench`];
  const { stdout } = await promisify(execFile)('wrk', args, { timeout: (seconds + 30) * 1000 });
  const ms = (re) => {
    const m = re.exec(stdout);
    return m === null ? NaN : Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2]];
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN),
    p99: ms(/^\s+99%\s+([\d.]+)(us|ms|s|m)\b/m),
    bad: Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0) + (socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
  };
}

console.log(`balancer workers: ${cpus().length} CPUs, load average ${(await promisify(execFile)('cat', ['/proc/loadavg'])).stdout.split(' ').slice(0, 3).join(' ')}; wrk -t2 -c${CONNECTIONS} -d${seconds}s, loopback`);
console.log(`${'workers'.padEnd(8)} ${'keep-alive req/s'.padStart(17)} ${'p99 ms'.padStart(8)} ${'new TLS conn/s'.padStart(15)} ${'p99 ms'.padStart(8)}  failed`);
let status = 0;
for (const n of counts) {
  const balancer = spawn(process.execPath, [join(root, 'dist', 'cli', 'main.js'), 'balancer', '--workers', String(n), '--host', '127.0.0.1', '--https-port', String(httpsPort)], {
    env: { ...process.env, BERTH_BALANCER_BACKENDS: `http://127.0.0.1:${standPort}`, BERTH_BALANCER_DISCOVER: 'false', BERTH_DATA_DIR: join(dir, 'data'), BERTH_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((r) => balancer.once('exit', r));
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const up = await promisify(execFile)('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${httpsPort}/_berth/health`]).then(
        (r) => r.stdout === '200',
        () => false,
      );
      if (up) break;
      if (Date.now() > deadline) throw new Error(`the balancer with ${n} workers did not answer within 30 s`);
      await sleep(100);
    }
    await sleep(1500); // every worker listening, not just the first
    await wrk([]); // warm-up: JIT, sessions
    const keep = await wrk([]);
    const fresh = await wrk(['Connection: close']);
    console.log(`${String(n).padEnd(8)} ${keep.rps.toFixed(0).padStart(17)} ${keep.p99.toFixed(1).padStart(8)} ${fresh.rps.toFixed(0).padStart(15)} ${fresh.p99.toFixed(1).padStart(8)}  ${keep.bad + fresh.bad}`);
  } catch (err) {
    console.error(String(err));
    status = 1;
  } finally {
    balancer.kill('SIGTERM');
    await Promise.race([exited, sleep(20_000).then(() => balancer.kill('SIGKILL'))]);
  }
}
stand.close();
process.exit(status);
