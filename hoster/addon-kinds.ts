import { spawn } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { postgresIdentifier, type AddonUsage, type StoredAddon } from '../registry/store/index.js';
import type { AddonUser } from './addon-user.js';

/** Where the servers' programs are. */
export interface AddonBinaries {
  /** Folder of Debian's PostgreSQL programs (initdb, postgres, psql). */
  postgresBinDir: string;
  /** The redis-server program. */
  redisServer: string;
}

/** The superuser of an add-on's own PostgreSQL cluster: reached only over its Unix socket, in a folder only its user (and root) may enter. */
const PG_SUPERUSER = 'berth';

/** One kind of add-on server: how its folder is made once, how it starts, what follows its start. */
export interface AddonKindServer {
  /** Makes what the server needs in `dir` that is not there yet (never removes data). */
  prepare(): Promise<void>;
  /** The program and arguments of the server (no secret among them: `ps` shows them to everyone). */
  command(): { file: string; args: string[] };
  /** The file the server writes its pid into, for stopping a server a previous hoster left running. */
  pidFile(): string;
  /** After it accepts connections: the role and database with the current password (PostgreSQL). */
  afterStart(): Promise<void>;
  /** How big its data is and how many clients it has now (of a running server; the measuring connection not counted). */
  measure(): Promise<Omit<AddonUsage, 'measuredAt'>>;
}

/** A measurement that takes longer than this is given up (the next one is due soon). */
const MEASURE_TIMEOUT_MS = 5000;

export function addonKindServer(addon: StoredAddon, dir: string, user: AddonUser, bin: AddonBinaries): AddonKindServer {
  return addon.kind === 'postgres' ? postgresServer(addon, dir, user, bin) : redisServer(addon, dir, user, bin);
}

/** The add-on's folder and its data folder, the add-on user's own, 0700. */
export function makeOwnDir(path: string, user: AddonUser): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  if (user.name !== null) chownSync(path, user.uid, user.gid);
}

function writeOwnFile(path: string, text: string, user: AddonUser): void {
  writeFileSync(path, text, { mode: 0o600 });
  if (user.name !== null) chownSync(path, user.uid, user.gid);
}

function redisServer(addon: StoredAddon, dir: string, user: AddonUser, bin: AddonBinaries): AddonKindServer {
  const data = join(dir, 'data');
  const conf = join(dir, 'redis.conf');
  return {
    async prepare() {
      makeOwnDir(dir, user);
      makeOwnDir(data, user);
      // The password is in this file (0600, the add-on user's), never on the command line.
      writeOwnFile(
        conf,
        [
          `bind ${addon.host}`,
          `port ${addon.port}`,
          `requirepass ${addon.password}`,
          'appendonly yes',
          'appendfsync everysec',
          `dir ${data}`,
          `maxmemory ${addon.memoryMb}mb`,
          'maxmemory-policy noeviction',
          `pidfile ${join(dir, 'redis.pid')}`,
          'daemonize no',
          'save 3600 1 300 100 60 10000',
          '',
        ].join('\n'),
        user,
      );
    },
    command: () => ({ file: bin.redisServer, args: [conf] }),
    pidFile: () => join(dir, 'redis.pid'),
    afterStart: async () => undefined,
    async measure() {
      // The password goes in AUTH over the connection, never on a command line (`ps` shows those).
      const client = new Redis({ host: addon.host, port: addon.port, password: addon.password, lazyConnect: true, connectTimeout: MEASURE_TIMEOUT_MS, commandTimeout: MEASURE_TIMEOUT_MS, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
      client.on('error', () => undefined);
      try {
        await client.connect();
        const memory = infoFields(await client.info('memory'));
        const clients = infoFields(await client.info('clients'));
        return {
          bytes: folderBytes(data),
          // This connection is one of them.
          connections: Math.max(0, Number(clients.connected_clients ?? 0) - 1),
          memoryBytes: Number(memory.used_memory ?? 0),
        };
      } finally {
        client.disconnect();
      }
    },
  };
}

/** `INFO` text as field → value. */
function infoFields(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) out[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return out;
}

/** What the files under a folder take (their sizes; links not followed). */
function folderBytes(path: string): number {
  let total = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const full = join(path, entry.name);
    try {
      if (entry.isDirectory()) total += folderBytes(full);
      else if (entry.isFile()) total += lstatSync(full).size;
    } catch {
      // Gone meanwhile (a rewrite of the append-only file): counted at the next measurement.
    }
  }
  return total;
}

function postgresServer(addon: StoredAddon, dir: string, user: AddonUser, bin: AddonBinaries): AddonKindServer {
  const data = join(dir, 'data');
  const socketDir = join(dir, 'run');
  const id = postgresIdentifier(addon.name);
  const asUser = user.name === null ? {} : { uid: user.uid, gid: user.gid };
  return {
    async prepare() {
      makeOwnDir(dir, user);
      makeOwnDir(socketDir, user);
      if (!existsSync(join(data, 'PG_VERSION'))) {
        // A half-made cluster (initdb cut short) is made again; a complete one is never touched.
        if (existsSync(data) && readdirSync(data).length > 0) throw new Error(`${data} holds files but no PG_VERSION: move it away to let berth make the cluster again`);
        await runTo(join(bin.postgresBinDir, 'initdb'), ['-D', data, '-U', PG_SUPERUSER, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-instructions'], { cwd: dir, ...asUser });
      }
      // Every address, password (SCRAM) only; the socket is for the hoster, in a folder no app may enter.
      writeOwnFile(
        join(data, 'pg_hba.conf'),
        ['# Written by berth at each start.', 'local all all trust', 'host all all 0.0.0.0/0 scram-sha-256', 'host all all ::/0 scram-sha-256', ''].join('\n'),
        user,
      );
    },
    command: () => ({
      file: join(bin.postgresBinDir, 'postgres'),
      args: [
        '-D', data,
        '-c', `listen_addresses=${addon.host}`,
        '-c', `port=${addon.port}`,
        '-c', `unix_socket_directories=${socketDir}`,
        '-c', `shared_buffers=${Math.max(16, Math.floor(addon.memoryMb / 4))}MB`,
        '-c', 'password_encryption=scram-sha-256',
        '-c', 'logging_collector=off',
      ],
    }),
    pidFile: () => join(data, 'postmaster.pid'),
    async afterStart() {
      // On stdin, never in argv; statements are kept out of the server's log even when one fails.
      const sql = [
        'SET log_min_error_statement = panic;',
        'SET log_statement = none;',
        `SELECT 'CREATE ROLE ${id} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${id}')\\gexec`,
        `ALTER ROLE ${id} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '${addon.password}';`,
        `SELECT 'CREATE DATABASE ${id} OWNER ${id}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${id}')\\gexec`,
        `REVOKE ALL ON DATABASE ${id} FROM PUBLIC;`,
        `GRANT ALL ON DATABASE ${id} TO ${id};`,
        '',
      ].join('\n');
      await runTo(join(bin.postgresBinDir, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', socketDir, '-p', String(addon.port), '-U', PG_SUPERUSER, '-d', 'postgres', '-f', '-'], { cwd: dir, input: sql, ...asUser });
    },
    async measure() {
      // From the postgres database: this session is not among the add-on database's client backends.
      const sql = `SELECT pg_database_size('${id}'), (SELECT count(*) FROM pg_stat_activity WHERE datname = '${id}' AND backend_type = 'client backend');\n`;
      const out = await runTo(join(bin.postgresBinDir, 'psql'), ['-X', '-q', '-t', '-A', '-F', ' ', '-v', 'ON_ERROR_STOP=1', '-h', socketDir, '-p', String(addon.port), '-U', PG_SUPERUSER, '-d', 'postgres', '-f', '-'], { cwd: dir, input: sql, timeoutMs: MEASURE_TIMEOUT_MS, ...asUser });
      const [bytes, connections] = out.trim().split(' ').map(Number);
      if (!Number.isFinite(bytes) || !Number.isFinite(connections)) throw new Error(`psql answered ${JSON.stringify(out.trim().slice(0, 100))}, not a size and a count`);
      return { bytes: bytes!, connections: connections!, memoryBytes: null };
    },
  };
}

/**
 * Runs a program to its end and replies its standard output; its output is its error's words when
 * it fails (secrets never reach it: they go in on stdin). Past `timeoutMs` it is killed.
 */
function runTo(file: string, args: string[], o: { cwd: string; input?: string; timeoutMs?: number; uid?: number; gid?: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: o.cwd, stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' }, ...(o.uid === undefined ? {} : { uid: o.uid, gid: o.gid }) });
    let out = '';
    let stdout = '';
    const keep = (chunk: Buffer) => {
      out = (out + chunk.toString('utf8')).slice(-2000);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      stdout = (stdout + chunk.toString('utf8')).slice(-2000);
      keep(chunk);
    });
    child.stderr.on('data', keep);
    const timer = o.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${file.split('/').pop()} failed (${signal ?? `exit ${code}`}): ${out.trim().split('\n').slice(-3).join(' / ')}`));
    });
    child.stdin.end(o.input ?? '');
  });
}
