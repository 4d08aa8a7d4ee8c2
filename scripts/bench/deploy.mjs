// The deploy benchmark's measurements, run by scripts/bench/deploy (which picks the ports,
// makes the temp dir and always cleans up; run that instead). Settings come in BENCH_* env.
// It starts `bin/berth up`, times 20 publishes of examples/hello (10 with a bundle never seen,
// 10 with one already uploaded, alternating) from invoking
// `bin/berth publish ... --no-wait` to the first HTTP 200 through the HTTPS balancer, then
// three kinds of publish that cannot succeed, three times each, from invoking `bin/berth publish`
// to its exit, then
// stops `berth up` with SIGTERM and checks that none of its processes is left.
import { execFile, spawn } from 'node:child_process';
import { cpSync, createWriteStream, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/** Runs alternate: odd ones ship a bundle never seen, even ones the previous run's again. */
const RUNS = 20;
const POLL_MS = 5;
const RUN_TIMEOUT_MS = 30_000;
const UP_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 45_000;
const MAX_LOAD_PER_CPU = '1000';
/** Room for every run's app on the one machine (the default is 8 per CPU). */
const CAPACITY = '64';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const berth = join(root, 'bin', 'berth');
const hello = join(root, 'examples', 'hello');
const env = (name) => {
  const value = process.env[name];
  if (value === undefined || value === '') {
    console.error(`${name} is not set: run scripts/bench/deploy (this file is its helper)`);
    process.exit(2);
  }
  return value;
};
const dir = env('BENCH_DIR');
const dataDir = join(dir, 'data');
const home = join(dir, 'home');
const httpsPort = Number(env('BENCH_HTTPS_PORT'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (ms) => ms.toFixed(0).padStart(6);
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

// Only what the benchmark sets: no BERTH_URL, token or REDIS_URL from the caller's shell.
const baseEnv = { ...process.env };
for (const name of Object.keys(baseEnv)) {
  if (name.startsWith('BERTH_') || name.startsWith('BENCH_') || name === 'REDIS_URL') delete baseEnv[name];
}
baseEnv.BERTH_HOME = home;
baseEnv.NO_COLOR = '1';

// --- berth up -------------------------------------------------------------------------------
const upLog = createWriteStream(join(dir, 'up.log'));
const upStarted = performance.now();
const up = spawn(
  berth,
  [
    'up',
    '--data-dir', dataDir,
    '--api-port', env('BENCH_API_PORT'),
    '--proxy-port', env('BENCH_PROXY_PORT'),
    '--https-port', String(httpsPort),
    '--redis-port', env('BENCH_REDIS_PORT'),
  ],
  { env: { ...baseEnv, BERTH_MAX_LOAD_PER_CPU: MAX_LOAD_PER_CPU, BERTH_CAPACITY: CAPACITY }, stdio: ['ignore', 'pipe', 'pipe'] },
);
let upExit;
const upExited = new Promise((r) => up.once('exit', (code, signal) => r((upExit = { code, signal }))));
const daemonPids = new Map();
let upOutput = '';
let httpsLine;
const onUpData = (chunk) => {
  upLog.write(chunk);
  upOutput += chunk.toString();
  for (const m of upOutput.matchAll(/berth up: (\w+) started \(pid (\d+)\)/g)) daemonPids.set(m[1], Number(m[2]));
  httpsLine ??= /berth up: HTTPS: (https:\/\/\S+)\/<app path>/.exec(upOutput)?.[1];
};
up.stdout.on('data', onUpData);
up.stderr.on('data', onUpData);

const fail = async (message) => {
  console.error(`deploy benchmark: ${message}`);
  if (upExit === undefined) {
    up.kill('SIGTERM');
    await Promise.race([upExited, sleep(STOP_TIMEOUT_MS)]);
  }
  process.exit(1);
};

while (httpsLine === undefined) {
  if (upExit !== undefined) await fail(`berth up exited (${upExit.signal ?? `code ${upExit.code}`}) before printing its HTTPS URL`);
  if (performance.now() - upStarted > UP_TIMEOUT_MS) await fail(`berth up printed no HTTPS URL within ${UP_TIMEOUT_MS / 1000} s`);
  await sleep(20);
}
const upReadyMs = performance.now() - upStarted;
const agent = new Agent({ ca: readFileSync(join(dataDir, 'tls', 'ca.pem')), keepAlive: true, maxSockets: 1 });

/** One GET through the balancer, the certificate checked against berth's CA. */
const get = (path) =>
  new Promise((resolveGet) => {
    const req = request({ host: 'localhost', port: httpsPort, path, agent, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolveGet({ status: res.statusCode, body }));
      res.on('error', (err) => resolveGet({ status: 0, body: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => resolveGet({ status: 0, body: err.message }));
    req.end();
  });

/** Runs `bin/berth publish` and resolves with its exit code, stderr and when it exited. */
const publish = (folder, name, t0) =>
  new Promise((resolvePublish) => {
    const child = spawn(berth, ['publish', folder, '--name', name, '--path', `/${name}`, '--no-wait'], {
      env: baseEnv,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c) => (stderr += c));
    child.once('exit', (code) => resolvePublish({ code, stderr, ms: performance.now() - t0 }));
  });

/** A copy of examples/hello with a file of its own: the same app, a bundle never uploaded. */
const freshCopy = (i) => {
  const folder = join(dir, `hello-${i}`);
  cpSync(hello, folder, { recursive: true });
  writeFileSync(join(folder, 'bench-run.txt'), `${i}\n`);
  return folder;
};

// --- 20 publishes ----------------------------------------------------------------------------
console.log(
  `berth up ready in ${(upReadyMs / 1000).toFixed(1)} s on ${cpus().length} CPUs; the hoster runs with ` +
    `BERTH_MAX_LOAD_PER_CPU=${MAX_LOAD_PER_CPU}, so the benchmark's own load does not gate its claims`,
);
console.log('run  app   bundle                    CLI exits ms   first 200 ms   polls');
const results = [];
let folder;
for (let i = 1; i <= RUNS; i++) {
  const name = `h${i}`;
  if (i % 2 === 1) folder = freshCopy(i);
  const t0 = performance.now();
  const cli = publish(folder, name, t0);
  let polls = 0;
  let first200;
  let last = { status: 0, body: '' };
  while (performance.now() - t0 < RUN_TIMEOUT_MS) {
    polls++;
    last = await get(`/${name}`);
    if (last.status === 200) {
      first200 = performance.now() - t0;
      break;
    }
    await sleep(POLL_MS);
  }
  const done = await cli;
  if (done.code !== 0) await fail(`${name}: berth publish exited with code ${done.code}:\n${done.stderr}`);
  if (first200 === undefined) await fail(`${name}: no HTTP 200 within ${RUN_TIMEOUT_MS / 1000} s (last: ${last.status} ${last.body.trim().slice(0, 200)})`);
  let answeredBy;
  try {
    answeredBy = JSON.parse(last.body).app;
  } catch {
    answeredBy = undefined;
  }
  if (answeredBy !== name) await fail(`${name}: the 200 came from ${answeredBy ?? 'something else'}: ${last.body.trim().slice(0, 200)}`);
  // What the CLI said, not what is expected: the two cases are told apart by its own note.
  const bundle = /bundle already uploaded/.test(done.stderr) ? 'already uploaded' : /uploaded bundle/.test(done.stderr) ? 'new' : 'unknown';
  results.push({ name, bundle, first200, cliMs: done.ms });
  console.log(`${String(i).padStart(3)}  ${name.padEnd(4)}  ${bundle.padEnd(24)}  ${fmt(done.ms)}         ${fmt(first200)}       ${String(polls).padStart(5)}`);
}

const summarise = (label, rows) => {
  if (rows.length === 0) {
    console.log(`${label}: no runs`);
    return;
  }
  const first = rows.map((r) => r.first200).sort((a, b) => a - b);
  const cli = rows.map((r) => r.cliMs).sort((a, b) => a - b);
  console.log(
    `${label.padEnd(36)} publish -> first 200: p50 ${percentile(first, 50).toFixed(0)} ms  max ${first.at(-1).toFixed(0)} ms` +
      `   (CLI exits: p50 ${percentile(cli, 50).toFixed(0)} ms)`,
  );
};
summarise(`bundle new (n=${results.filter((r) => r.bundle === 'new').length})`, results.filter((r) => r.bundle === 'new'));
summarise(
  `bundle already uploaded (n=${results.filter((r) => r.bundle === 'already uploaded').length})`,
  results.filter((r) => r.bundle === 'already uploaded'),
);
const odd = results.filter((r) => r.bundle === 'unknown');
if (odd.length > 0) console.log(`${odd.length} run(s) where the CLI said neither: ${odd.map((r) => r.name).join(' ')}`);

// --- failing deploys ----------------------------------------------------------------------------
// Each a new app whose release cannot succeed, published with the CLI waiting (as a user would):
// timed from invoking the command to its exit, which must be non-zero and name the app's reason.
/** A folder of files: name -> contents. */
const failing = [
  { kind: 'throws at start', reason: 'crash_loop', files: { 'server.js': "throw new Error('cannot start: DATABASE_URL is not set');\n" } },
  {
    kind: 'npm install fails',
    reason: 'build_failed',
    files: {
      'server.js': "require('node:http').createServer((q, r) => r.end('x')).listen(process.env.PORT, process.env.HOST);\n",
      // A name the npm registry does not have (a scope nobody may publish under).
      'package.json': JSON.stringify({ name: 'bad-dep', version: '1.0.0', private: true, dependencies: { '@berth-bench-no-such-scope/no-such-package': '1.0.0' } }),
    },
  },
  { kind: 'never listens on $PORT', reason: 'not_listening', files: { 'server.js': 'setInterval(() => {}, 1000);\n' } },
];
const publishAndWait = (folder, name, t0) =>
  new Promise((resolvePublish) => {
    const child = spawn(berth, ['publish', folder, '--name', name, '--path', `/${name}`], { env: baseEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const timer = setTimeout(() => child.kill('SIGTERM'), RUN_TIMEOUT_MS * 4);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolvePublish({ code, out, ms: performance.now() - t0 });
    });
  });
/** Each failing kind is published this many times (a new app each), for a median. */
const FAILING_RUNS = 3;
console.log('');
console.log(`failing deploy (${FAILING_RUNS} runs each)   CLI exits ms: median  (each)            exit   reason the CLI gave`);
const failures = [];
for (const [i, f] of failing.entries()) {
  const runs = [];
  for (let run = 1; run <= FAILING_RUNS; run++) {
    const name = `bad${i + 1}-${run}`;
    const folder = join(dir, name);
    mkdirSync(folder, { recursive: true });
    for (const [file, text] of Object.entries(f.files)) writeFileSync(join(folder, file), text);
    const done = await publishAndWait(folder, name, performance.now());
    const said = new RegExp(f.reason).test(done.out);
    runs.push({ ...done, said });
    failures.push({ ...f, ...done, said });
    if (done.code === 0 || !said) console.log(`${f.kind}: expected exit 1 with ${f.reason}; exit ${done.code}, the CLI said:\n${done.out.trim()}`);
  }
  const ms = runs.map((r) => r.ms).sort((a, b) => a - b);
  const each = runs.map((r) => r.ms.toFixed(0)).join(' ');
  const ok = runs.every((r) => r.code !== 0 && r.said);
  console.log(`${f.kind.padEnd(28)}  ${fmt(percentile(ms, 50))}  (${each})`.padEnd(66) + `${runs.map((r) => r.code).join('/')}   ${ok ? f.reason : 'see above'}`);
}
const failuresOk = failures.every((f) => f.code !== 0 && f.said);

// --- stop and check ----------------------------------------------------------------------------
agent.destroy();
const stopStarted = performance.now();
up.kill('SIGTERM');
const stopped = await Promise.race([upExited.then(() => true), sleep(STOP_TIMEOUT_MS).then(() => false)]);
const stopMs = performance.now() - stopStarted;
if (!stopped) {
  up.kill('SIGKILL');
  console.log(`berth up did not exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM: killed`);
}
upLog.end();
// Give the daemons' own exits a moment to be reaped by the system.
await sleep(300);

const pgrep = await new Promise((r) =>
  execFile('pgrep', ['-a', '-f', dataDir], (err, stdout) => r(err && err.code !== 1 ? `pgrep failed: ${err.message}` : stdout.trim())),
);
// Besides pgrep: any process run in the temp dir or with it in its environment (the apps, Redis).
const mine = new Set([process.pid, process.ppid]);
const others = [];
for (const entry of readdirSync('/proc')) {
  if (!/^\d+$/.test(entry) || mine.has(Number(entry))) continue;
  try {
    const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    let cwd = '';
    try {
      cwd = readlinkSync(`/proc/${entry}/cwd`);
    } catch {}
    let environ = '';
    try {
      environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
    } catch {}
    if (cmdline.includes(dir) || cwd.startsWith(dir) || environ.includes(dir)) others.push(`${entry} ${cmdline.replaceAll('\0', ' ').trim()}`);
  } catch {}
}
const daemonsAlive = [...daemonPids].filter(([, pid]) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
});
console.log(
  `berth up ${stopped ? `exited (${upExit.signal ?? `code ${upExit.code}`}) ${(stopMs / 1000).toFixed(1)} s after SIGTERM` : 'was killed'}, ` +
    `stopping ${daemonPids.size} daemons and ${results.length} apps`,
);
console.log(
  `left: pgrep -f <data dir>: ${pgrep === '' ? 'nothing' : pgrep}; ` +
    `processes in or naming the temp dir: ${others.length === 0 ? 'none' : others.join('; ')}; ` +
    `daemon pids alive: ${daemonsAlive.length === 0 ? 'none' : daemonsAlive.map(([n, p]) => `${n} ${p}`).join(', ')}`,
);
process.exit(failuresOk && stopped && pgrep === '' && others.length === 0 && daemonsAlive.length === 0 ? 0 : 1);
