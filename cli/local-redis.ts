import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
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
 * The arguments of a private redis-server: loopback only, a password, persistence on, and
 * no dangerous admin commands reachable from outside (it never leaves loopback).
 */
export function localRedisArgs(options: LocalRedisOptions): string[] {
  return [
    '--bind', '127.0.0.1',
    '--port', String(options.port),
    '--requirepass', options.password,
    '--dir', options.dir,
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    '--save', '60 1',
    '--protected-mode', 'yes',
    '--daemonize', 'no',
    '--logfile', join(options.dir, 'redis.log'),
  ];
}

/** Starts redis-server as a child process (it saves and exits on SIGTERM). */
export function spawnLocalRedis(options: LocalRedisOptions): ChildProcess {
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  return spawn(options.binary ?? 'redis-server', localRedisArgs(options), { stdio: ['ignore', 'inherit', 'inherit'] });
}
