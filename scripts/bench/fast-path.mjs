// The proxy's fast path against node:http, side by side: berth's proxy server with the same
// forwarder, route table and metrics, once as it runs (simple GET and HEAD requests on the fast
// path) and once with every connection handed to node:http at once. Run scripts/bench/fast-path
// (it checks for wrk and a build). The app is proxy.mjs's hello app. One file, two roles:
//   node fast-path.mjs proxy <port> <app port> <fast: 1|0>
//   node fast-path.mjs measure                     interleaved rounds, settings in BENCH_* env
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { promisify } from 'node:util';

const role = process.argv[2];
if (role === 'proxy') await runProxy(Number(process.argv[3]), Number(process.argv[4]), process.argv[5] === '1');
else if (role === 'measure') await measure();
else {
  console.error('usage: run scripts/bench/fast-path (this file is its helper)');
  process.exit(2);
}

/** berth's proxy server with a route table filled by hand: no Redis, nothing else running. */
async function runProxy(port, appPort, fastPath) {
  const { createProxyServer } = await import('../../dist/proxy/proxy-server.js');
  const { HttpForwarder } = await import('../../dist/proxy/http-forwarder.js');
  const { RequestMetrics, RouteTable, UpstreamHealth } = await import('../../dist/forward/index.js');
  const table = new RouteTable('bench');
  table.setApp({ name: 'bench', path: '/bench', stripPrefix: false });
  table.addInstance({ id: 'i1', service: 'bench', epoch: 1, machine: 'bench', host: '127.0.0.1', port: appPort, pid: 0 });
  const metrics = new RequestMetrics();
  const health = new UpstreamHealth({ firstSetAsideMs: 500, maxSetAsideMs: 10_000 });
  const http = new HttpForwarder({ table, health, metrics, proxyOf: () => undefined, trusted: () => false, upstreamTimeoutMs: 60_000, connectTimeoutMs: 2000 });
  const server = createProxyServer({
    table,
    http,
    websocket: { handle: (_req, socket) => socket.destroy() },
    reports: {},
    metricsText: () => metrics.render(),
    isReady: () => true,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 120_000,
    keepAliveTimeoutMs: 5000,
    maxHeaderSize: 16 * 1024,
    maxConnections: 10_000,
    fastPath,
  });
  server.listener.listen(port, '127.0.0.1');
}

async function measure() {
  const run = promisify(execFile);
  const rounds = Number(process.env.BENCH_ROUNDS || 5);
  const seconds = 8;
  const freePort = () =>
    new Promise((resolve) => {
      const s = createNetServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
    });
  const children = [];
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      for (const child of children) child.kill('SIGKILL');
      process.exit(130);
    });
  }
  const start = (script, ...args) => {
    const child = spawn(process.execPath, [new URL(script, import.meta.url).pathname, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(child);
    return child;
  };
  try {
    const [appPort, fastPort, plainPort] = [await freePort(), await freePort(), await freePort()];
    start('proxy.mjs', 'app', String(appPort));
    const targets = [
      { name: 'fast path', port: fastPort, child: start('fast-path.mjs', 'proxy', String(fastPort), String(appPort), '1'), runs: [] },
      { name: 'node:http only', port: plainPort, child: start('fast-path.mjs', 'proxy', String(plainPort), String(appPort), '0'), runs: [] },
    ];
    for (const t of targets) await untilAnswers(t.port);
    await untilAnswers(appPort, '/bench');
    /** CPU time (user + system) of a process so far, in seconds. */
    const cpu = (pid) => {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    };
    console.log(`the proxy's fast path against node:http: berth's proxy server and forwarder both ways, wrk -t2 -c64 -d${seconds}s, ${rounds} interleaved rounds, Node ${process.version}`);
    const row = (cells) => [cells[0].padEnd(22), ...cells.slice(1).map((c) => c.padStart(12))].join('');
    console.log(row(['target', 'requests/s', 'p99 ms', 'CPU us/req']));
    // Both warmed up first, so that the first round does not measure one of them (and the app) still compiling.
    for (const t of targets) await run('wrk', ['-t2', '-c64', '-d5s', `http://127.0.0.1:${t.port}/bench`]);
    for (let round = 1; round <= rounds; round++) {
      for (const t of targets) {
        await run('wrk', ['-t2', '-c64', '-d2s', `http://127.0.0.1:${t.port}/bench`]);
        const before = cpu(t.child.pid);
        const { stdout } = await run('wrk', ['-t2', '-c64', `-d${seconds}s`, '--latency', `http://127.0.0.1:${t.port}/bench`]);
        const used = cpu(t.child.pid) - before;
        const requests = Number(/(\d+) requests in/.exec(stdout)[1]);
        const p99 = /^\s*99%\s+([\d.]+)(us|ms|s)/m.exec(stdout);
        const p99ms = Number(p99[1]) * (p99[2] === 'us' ? 0.001 : p99[2] === 's' ? 1000 : 1);
        const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors/.exec(stdout);
        if (errors) throw new Error(`${t.name} had errors:\n${stdout}`);
        const r = { rps: requests / seconds, p99: p99ms, cpuUs: (used / requests) * 1e6 };
        t.runs.push(r);
        console.log(row([`${t.name} #${round}`, r.rps.toFixed(0), r.p99.toFixed(2), r.cpuUs.toFixed(1)]));
      }
    }
    const [fast, plain] = targets;
    const ratio = (f) => {
      const values = fast.runs.map((r, i) => f(r, plain.runs[i])).sort((a, b) => a - b);
      return `${values[Math.floor(values.length / 2)].toFixed(2)} (${values[0].toFixed(2)}-${values[values.length - 1].toFixed(2)})`;
    };
    console.log(`fast path/node:http, the median over ${rounds} rounds (lowest-highest): throughput ${ratio((a, b) => a.rps / b.rps)}, p99 ${ratio((a, b) => a.p99 / b.p99)}, CPU per request ${ratio((a, b) => a.cpuUs / b.cpuUs)}`);
  } finally {
    for (const child of children) child.kill('SIGKILL');
  }

  async function untilAnswers(port, path = '/bench') {
    const until = Date.now() + 10_000;
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}${path}`);
        if (res.status === 200 && (await res.text()) === 'hello') return;
      } catch {
        // not listening yet
      }
      if (Date.now() > until) throw new Error(`nothing answers on port ${port} after 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
