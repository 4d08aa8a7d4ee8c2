// A cluster of machines on one host: each machine a network namespace with its own address,
// hoster, proxy and apps; Redis, the registry and the balancer in the root namespace beside
// them, joined by a bridge. Used by the drills in test/cluster/ and by hand (scripts/cluster).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { BerthClient } from '../../sdk/berth-client.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';
import { getPort } from '../helpers/get-port.js';
import { waitFor } from '../helpers/wait-for.js';

/** Every name this harness makes starts with this, then a per-run suffix: `bc<4 hex>`. */
export const NAME_PREFIX = 'bc';
const STATE_ROOT = '/tmp/berth-cluster';
const PROXY_PORT = 8080;
/** A daemon starting on a loaded 2-core machine (a dozen start at once) answers within this. */
const DAEMON_START_MS = 45_000;
/** How long teardown waits for a SIGKILLed process's exit to be seen before going on. */
const KILLED_EXIT_WAIT_MS = 2000;
const NAME_RE = new RegExp(`^${NAME_PREFIX}([0-9a-f]{4})`);

export interface ClusterOptions {
  machines: number;
  /** Lease of every claim: short, so that drills are fast. */
  leaseMs?: number;
  /** Extra environment for every hoster (overrides the defaults below). */
  hosterEnv?: Record<string, string>;
  registryEnv?: Record<string, string>;
  /** Print each step (scripts/cluster). */
  verbose?: boolean;
}

export interface Machine {
  name: string;
  /** The network namespace's name. */
  ns: string;
  ip: string;
  proxyUrl: string;
  dataDir: string;
  /** Its load as the hoster reads it (`/proc/loadavg` form): the shared kernel's load is everyone's. */
  loadFile: string;
  hoster: DaemonProcess | undefined;
  proxy: DaemonProcess | undefined;
  startHoster(): DaemonProcess;
  startProxy(): Promise<DaemonProcess>;
  /** Drops every packet from this machine to Redis (a blackhole route to Redis's address). */
  cutFromRedis(): void;
  healRedis(): void;
  /** Sets the 5-minute load per CPU its hoster sees. */
  setLoad(perCpu: number): void;
  /** Runs a command inside the machine's namespace. */
  exec(command: string, args: string[]): ChildProcess;
}

export interface Cluster {
  id: string;
  subnet: string;
  /** The root namespace's address on the bridge (collector, balancer's source). */
  hostIp: string;
  machines: Machine[];
  redis: {
    url: string;
    localUrl: string;
    port: number;
    dir: string;
    kill(): Promise<void>;
    start(): Promise<void>;
    /** FLUSHALL: every key gone. */
    wipe(): void;
    /** SIGSTOP: connections stay open, nothing is answered (a frozen or stalled Redis); thaw() is SIGCONT. */
    freeze(): void;
    thaw(): void;
  };
  registry: { url: string; token: string; prefix: string; client: BerthClient; proc: DaemonProcess };
  balancer: { url: string; ca: string; proc: DaemonProcess };
  /** Everything the daemons printed, last lines first: for failure messages. */
  tail(lines?: number): string;
  down(): Promise<void>;
}

/** Why a cluster cannot be made here, or undefined when it can. */
export function clusterUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root (CI runs as root): run the cluster drills as root';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch {
    return 'the ip command (iproute2) cannot list network namespaces: install iproute2';
  }
  if (!commandExists('redis-server')) return 'redis-server is missing: run scripts/setup';
  return undefined;
}

function commandExists(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function quiet(fn: () => void): void {
  try {
    fn();
  } catch {
    // already gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killPid(pid: number): void {
  quiet(() => process.kill(pid, 'SIGCONT'));
  quiet(() => process.kill(pid, 'SIGKILL'));
}

function namespacesOf(id?: string): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => NAME_RE.test(n) && (id === undefined || n.startsWith(id)));
}

function bridgesOf(id?: string): string[] {
  const out = execFileSync('ip', ['-o', 'link', 'show', 'type', 'bridge'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '')
    .filter((n) => NAME_RE.test(n) && (id === undefined || n.startsWith(id)));
}

/** Kills every process of one run (root-side daemons by recorded pid, all of each namespace) and deletes its namespaces and bridge. */
function removeRun(id: string): void {
  const stateDir = join(STATE_ROOT, id);
  const pidsFile = join(stateDir, 'pids');
  if (existsSync(pidsFile)) for (const pid of readFileSync(pidsFile, 'utf8').split('\n').filter(Boolean).map(Number)) killPid(pid);
  for (const ns of namespacesOf(id)) {
    let pids: number[] = [];
    quiet(() => {
      pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
    });
    for (const pid of pids) killPid(pid);
    quiet(() => ip('netns', 'del', ns));
  }
  for (const br of bridgesOf(id)) quiet(() => ip('link', 'del', br));
  rmSync(stateDir, { recursive: true, force: true });
}

/** Removes what runs left behind whose owning process died (a crashed test run). */
export function cleanLeftovers(): string[] {
  const runs = new Set<string>();
  for (const n of [...namespacesOf(), ...bridgesOf()]) runs.add(NAME_RE.exec(n)![0]);
  if (existsSync(STATE_ROOT)) for (const d of readdirSync(STATE_ROOT)) if (NAME_RE.test(d)) runs.add(d);
  const removed: string[] = [];
  for (const id of runs) {
    const ownerFile = join(STATE_ROOT, id, 'owner');
    const owner = existsSync(ownerFile) ? Number(readFileSync(ownerFile, 'utf8')) : 0;
    if (owner > 0 && alive(owner) && owner !== process.pid) continue;
    removeRun(id);
    removed.push(id);
  }
  return removed;
}

/** Stops every run of this host (by hand: `scripts/cluster down`): asks each owner to stop, then removes what is left. */
export async function downAll(): Promise<string[]> {
  const runs = new Set<string>();
  const collect = () => {
    for (const n of [...namespacesOf(), ...bridgesOf()]) runs.add(NAME_RE.exec(n)![0]);
    if (existsSync(STATE_ROOT)) for (const d of readdirSync(STATE_ROOT)) if (NAME_RE.test(d)) runs.add(d);
  };
  collect();
  const owners = existsSync(STATE_ROOT)
    ? readdirSync(STATE_ROOT)
        .filter((d) => NAME_RE.test(d) && existsSync(join(STATE_ROOT, d, 'owner')))
        .map((d) => Number(readFileSync(join(STATE_ROOT, d, 'owner'), 'utf8')))
    : [];
  for (const pid of owners) if (pid !== process.pid) quiet(() => process.kill(pid, 'SIGTERM'));
  await waitFor(() => owners.every((pid) => pid === process.pid || !alive(pid)), { deadlineMs: 15_000, what: 'the owners of cluster runs to stop' }).catch(() => undefined);
  for (const pid of owners) if (pid !== process.pid) killPid(pid);
  collect();
  for (const id of runs) removeRun(id);
  return [...runs];
}

/** A /24 in 10.0.0.0/8 that no interface of this host uses yet. */
function freeSubnet(): string {
  const used = execFileSync('ip', ['-o', '-4', 'addr'], { encoding: 'utf8' });
  const routes = execFileSync('ip', ['-4', 'route'], { encoding: 'utf8' });
  for (let attempt = 0; attempt < 200; attempt++) {
    const b = 200 + (randomBytes(1)[0]! % 50);
    const c = randomBytes(1)[0]! % 250;
    const net = `10.${b}.${c}`;
    if (!used.includes(`${net}.`) && !routes.includes(`${net}.`) && !routes.startsWith('10.0.0.0/8')) return net;
  }
  throw new Error('no free 10.x.y.0/24 subnet found for the cluster bridge: remove unused bridges (ip link) and try again');
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const why = clusterUnavailable();
  if (why) throw new Error(why);
  cleanLeftovers();
  const id = `${NAME_PREFIX}${randomBytes(2).toString('hex')}`;
  const stateDir = join(STATE_ROOT, id);
  mkdirSync(stateDir, { recursive: true });
  chmodSync(STATE_ROOT, 0o711);
  chmodSync(stateDir, 0o711);
  writeFileSync(join(stateDir, 'owner'), String(process.pid));
  const t0 = Date.now();
  const verbose = options.verbose ?? process.env.BERTH_CLUSTER_VERBOSE === '1';
  const say = (m: string) => verbose && process.stdout.write(`cluster ${id} +${Date.now() - t0} ms: ${m}\n`);
  const leaseMs = options.leaseMs ?? 4000;
  const procs: { name: string; proc: DaemonProcess }[] = [];
  const track = (name: string, proc: DaemonProcess) => {
    procs.push({ name, proc });
    if (proc.child.pid) writeFileSync(join(stateDir, 'pids'), `${proc.child.pid}\n`, { flag: 'a' });
    return proc;
  };
  let redisChild: ChildProcess | undefined;
  const downOnExit = () => removeRun(id);
  process.once('exit', downOnExit);

  try {
    const net = freeSubnet();
    const hostIp = `${net}.1`;
    const redisIp = `${net}.254`;
    const bridge = `${id}br`;
    ip('link', 'add', bridge, 'type', 'bridge', 'forward_delay', '0');
    // The host's own address first (it is the source of the balancer's connections); Redis
    // gets a second one, so a machine cut off from Redis still reaches and is reached by the rest.
    ip('addr', 'add', `${hostIp}/24`, 'dev', bridge);
    ip('addr', 'add', `${redisIp}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    say(`bridge ${bridge} on ${net}.0/24`);

    // Redis on the bridge (for the machines) and loopback (for inspection), with its append-only file.
    const redisDir = join(stateDir, 'redis');
    mkdirSync(redisDir);
    const redisPort = await getPort();
    // Off loopback Redis wants a password (protected mode): one per run.
    const redisPassword = randomBytes(12).toString('hex');
    const startRedisServer = async () => {
      if (redisChild && redisChild.exitCode === null && redisChild.signalCode === null) return;
      redisChild = spawn('redis-server', ['--port', String(redisPort), '--bind', redisIp, '127.0.0.1', '--requirepass', redisPassword, '--dir', redisDir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no'], { stdio: 'ignore' });
      if (redisChild.pid) writeFileSync(join(stateDir, 'pids'), `${redisChild.pid}\n`, { flag: 'a' });
      await waitFor(() => {
        try {
          return execFileSync('redis-cli', ['-p', String(redisPort), 'ping'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, REDISCLI_AUTH: redisPassword } }).trim() === 'PONG';
        } catch {
          return false;
        }
      }, { deadlineMs: 10_000, what: `redis-server on ${redisIp}:${redisPort}` });
    };
    const killRedisServer = async () => {
      const child = redisChild;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    };
    await startRedisServer();
    const redisUrl = `redis://:${redisPassword}@${redisIp}:${redisPort}`;
    say(`redis on ${redisUrl}`);

    const prefix = id;
    const token = randomBytes(16).toString('hex');
    const common = { REDIS_URL: redisUrl, BERTH_KEY_PREFIX: prefix, BERTH_LOG_LEVEL: 'info', BERTH_REDIS_COMMAND_TIMEOUT_MS: '1000' };

    const registryPort = await getPort();
    const registryProc = track(
      'registry',
      startDaemon(['registry'], {
        ...common,
        BERTH_TOKEN: token,
        BERTH_REGISTRY_HOST: '127.0.0.1',
        BERTH_REGISTRY_PORT: String(registryPort),
        BERTH_LEASE_MS: String(leaseMs),
        BERTH_REAP_INTERVAL_MS: '200',
        BERTH_RECONCILE_INTERVAL_MS: '100',
        BERTH_DRAIN_MS: '500',
        ...options.registryEnv,
      }),
    );
    const registryUrl = `http://127.0.0.1:${registryPort}`;
    const client = new BerthClient({ url: registryUrl, token, retries: 0 });
    await waitFor(async () => (await client.health().catch(() => undefined))?.status === 'ok', { deadlineMs: DAEMON_START_MS, what: 'the registry to answer' }).catch((err) => {
      throw new Error(`${(err as Error).message}: ${registryProc.output().slice(-2000)}`);
    });
    say(`registry on ${registryUrl}`);

    const machines: Machine[] = [];
    for (let n = 1; n <= options.machines; n++) {
      const name = `m${n}`;
      const ns = `${id}-${name}`;
      const mip = `${net}.${10 + n}`;
      const outside = `${id}v${n}`;
      ip('netns', 'add', ns);
      ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', `${id}p${n}`);
      ip('link', 'set', `${id}p${n}`, 'netns', ns);
      ip('link', 'set', outside, 'master', bridge);
      ip('link', 'set', outside, 'up');
      ip('-n', ns, 'link', 'set', `${id}p${n}`, 'name', 'eth0');
      ip('-n', ns, 'addr', 'add', `${mip}/24`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      const dataDir = join(stateDir, name);
      mkdirSync(dataDir, { mode: 0o711 });
      chmodSync(dataDir, 0o711);
      const loadFile = join(stateDir, `${name}.load`);
      writeFileSync(loadFile, '0.00 0.00 0.00 1/100 1\n');
      const wrap = ['ip', 'netns', 'exec', ns];
      const machine: Machine = {
        name,
        ns,
        ip: mip,
        proxyUrl: `http://${mip}:${PROXY_PORT}`,
        dataDir,
        loadFile,
        hoster: undefined,
        proxy: undefined,
        startHoster: () => {
          machine.hoster = track(
            `${name} hoster`,
            startDaemon(
              ['hoster', '--machine', name, '--data-dir', dataDir],
              {
                ...common,
                BERTH_LEASE_MS: String(leaseMs),
                BERTH_POLL_INTERVAL_MS: '1000',
                BERTH_LOAD_FILE: loadFile,
                BERTH_MAX_LOAD_PER_CPU: '1',
                BERTH_HEALTH_INTERVAL_MS: '200',
                BERTH_STOP_GRACE_MS: '500',
                BERTH_SPREAD_DELAY_MS: '100',
                BERTH_HEARTBEAT_MS: '1000',
                BERTH_EVACUATE_TIMEOUT_MS: '30000',
                BERTH_CAPACITY: '20',
                BERTH_PROXY_URL: `http://${mip}:${PROXY_PORT}`,
                ...options.hosterEnv,
              },
              { wrap },
            ),
          );
          return machine.hoster;
        },
        startProxy: async () => {
          machine.proxy = track(
            `${name} proxy`,
            startDaemon(['proxy', '--machine', name], { ...common, BERTH_PROXY_HOST: '0.0.0.0', BERTH_PROXY_PORT: String(PROXY_PORT), BERTH_CONNECT_TIMEOUT_MS: '1000' }, { wrap }),
          );
          await waitFor(async () => (await fetch(`${machine.proxyUrl}/_berth/health`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined))?.ok, {
            deadlineMs: DAEMON_START_MS,
            what: `the proxy of ${name} to answer`,
          }).catch((err) => {
            throw new Error(`${(err as Error).message}: ${machine.proxy?.output().slice(-1500)}`);
          });
          return machine.proxy;
        },
        cutFromRedis: () => ip('-n', ns, 'route', 'add', 'blackhole', `${redisIp}/32`),
        healRedis: () => ip('-n', ns, 'route', 'del', 'blackhole', `${redisIp}/32`),
        setLoad: (perCpu: number) => {
          // The hoster divides by the CPU count it sees, as for the system's load.
          const l = (perCpu * Math.max(1, cpus().length)).toFixed(2);
          writeFileSync(loadFile, `${l} ${l} ${l} 1/100 1\n`);
        },
        exec: (command, args) => spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: 'ignore' }),
      };
      machines.push(machine);
      say(`${name}: namespace ${ns}, ${mip}`);
    }
    for (const m of machines) m.startHoster();
    await Promise.all(machines.map((m) => m.startProxy()));
    say('proxies answer');
    await waitFor(async () => (await client.listMachines()).filter((m) => machines.some((x) => x.name === m.name)).length === machines.length, {
      deadlineMs: DAEMON_START_MS,
      what: 'every hoster to join',
    });

    say('hosters joined');
    const httpsPort = await getPort();
    const balancerDir = join(stateDir, 'balancer');
    const balancerProc = track(
      'balancer',
      startDaemon(['balancer'], { ...common, BERTH_BALANCER_HOST: '127.0.0.1', BERTH_HTTPS_PORT: String(httpsPort), BERTH_DATA_DIR: balancerDir, BERTH_CONNECT_TIMEOUT_MS: '1000' }),
    );
    const caFile = join(balancerDir, 'tls', 'ca.pem');
    await waitFor(() => existsSync(caFile) && balancerProc.output().includes('listening'), { deadlineMs: DAEMON_START_MS, what: 'the balancer to listen' }).catch(() =>
      waitFor(() => existsSync(caFile), { deadlineMs: 5000, what: 'the balancer CA' }),
    );
    say(`balancer on https://127.0.0.1:${httpsPort} (CA ${caFile})`);

    const down = async () => {
      process.removeListener('exit', downOnExit);
      for (const { proc } of procs) proc.kill('SIGKILL');
      await Promise.all(procs.map(({ proc }) => Promise.race([proc.exited, new Promise((r) => setTimeout(r, KILLED_EXIT_WAIT_MS))])));
      // BERTH_DRILL_LOGS=<dir> keeps every daemon's whole output, to read why a drill failed.
      const keep = process.env.BERTH_DRILL_LOGS;
      if (keep) {
        mkdirSync(keep, { recursive: true });
        for (const { name, proc } of procs) writeFileSync(join(keep, `${id}-${name}.log`), proc.output());
      }
      await killRedisServer();
      removeRun(id);
      say('down');
    };

    return {
      id,
      subnet: `${net}.0/24`,
      hostIp,
      machines,
      redis: { url: redisUrl, localUrl: `redis://:${redisPassword}@127.0.0.1:${redisPort}`, port: redisPort, dir: redisDir, kill: killRedisServer,
        start: startRedisServer,
        wipe: () => execFileSync('redis-cli', ['-p', String(redisPort), 'flushall'], { stdio: 'ignore', env: { ...process.env, REDISCLI_AUTH: redisPassword } }),
        freeze: () => void redisChild?.kill('SIGSTOP'),
        thaw: () => void redisChild?.kill('SIGCONT'),
      },
      registry: { url: registryUrl, token, prefix, client, proc: registryProc },
      balancer: { url: `https://127.0.0.1:${httpsPort}`, ca: readFileSync(caFile, 'utf8'), proc: balancerProc },
      tail: (lines = 30) => procs.map(({ name, proc }) => `--- ${name}\n${proc.output().split('\n').slice(-lines).join('\n')}`).join('\n'),
      down,
    };
  } catch (err) {
    for (const { proc } of procs) proc.kill('SIGKILL');
    redisChild?.kill('SIGKILL');
    removeRun(id);
    process.removeListener('exit', downOnExit);
    throw err;
  }
}
