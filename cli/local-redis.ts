import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LocalRedisOptions {
  /** Data directory; its append-only file and snapshot make a restart resume. */
  dir: string;
  port: number;
  password: string;
  /** Path of the redis-server binary. @default 'redis-server' */
  binary?: string;
}

/**
 * The configuration of a private redis-server: loopback only, a password, persistence on. It
 * goes in a 0600 file rather than on the command line, where any local user could read the
 * password.
 */
export function localRedisConfig(options: LocalRedisOptions): string {
  return [
    'bind 127.0.0.1',
    `port ${options.port}`,
    `requirepass ${quoted(options.password)}`,
    `dir ${quoted(options.dir)}`,
    'appendonly yes',
    'appendfsync everysec',
    'save 60 1',
    'protected-mode yes',
    'daemonize no',
    // Exit on SIGTERM even when the final save fails (its data dir removed, a full disk):
    // otherwise Redis refuses to stop and outlives the berth up that started it.
    'shutdown-on-sigterm force',
    `logfile ${quoted(join(options.dir, 'redis.log'))}`,
    '',
  ].join('\n');
}

/** A value as redis.conf reads a double-quoted string: a data dir may hold spaces, quotes or backslashes. */
function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * How to start the private redis-server: its config written to `<dir>/redis.conf`, and, where
 * util-linux's `setpriv` exists, a parent-death signal, so that a `berth up` killed with
 * SIGKILL does not leave Redis running behind it (the daemons stop by themselves; Redis cannot
 * watch its parent).
 */
export function localRedisCommand(options: LocalRedisOptions): { command: string; args: string[] } {
  const config = join(options.dir, 'redis.conf');
  writeFileSync(config, localRedisConfig(options), { mode: 0o600 });
  chmodSync(config, 0o600);
  const binary = options.binary ?? 'redis-server';
  if (spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status !== 0) return { command: binary, args: [config] };
  return { command: 'setpriv', args: ['--pdeathsig', 'SIGTERM', binary, config] };
}
