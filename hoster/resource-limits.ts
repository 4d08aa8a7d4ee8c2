import { existsSync } from 'node:fs';
import type { Attributes } from '../registry/store/index.js';

/** App settings that limit its processes rather than choose its machine. */
export const LIMIT_ATTRIBUTES = new Set(['maxOpenFiles', 'maxFileSizeMb', 'maxMemoryMb', 'cpuWeight']);

/** Where util-linux puts prlimit. */
export const PRLIMIT_PATHS = ['/usr/bin/prlimit', '/bin/prlimit'];
const PRLIMIT = PRLIMIT_PATHS.find((p) => existsSync(p));

/**
 * Wraps a start command in `prlimit` with the limits the app asks for (open files, largest
 * file it may write), where this machine has prlimit. Memory is limited by cgroups
 * (cgroup-limits.ts), or, on a machine without them, by RLIMIT_DATA (`memoryByRlimitMb`): it
 * counts what a process writes to (its heap), not what it merely reserves, so V8 runs under it
 * and fails its allocations past it (an address-space limit, RLIMIT_AS, breaks V8, which
 * reserves far more than it uses). Unlike a cgroup it holds each process, not their sum.
 */
export function withResourceLimits(
  command: { shell: string } | { file: string; args: string[] },
  attributes: Attributes,
  o: { memoryByRlimitMb?: number } = {},
): { shell: string } | { file: string; args: string[] } {
  const limits: string[] = [];
  if (o.memoryByRlimitMb !== undefined) {
    const bytes = o.memoryByRlimitMb * 1024 * 1024;
    limits.push(`--data=${bytes}:${bytes}`);
  }
  const files = Number(attributes.maxOpenFiles);
  if (Number.isInteger(files) && files > 0) limits.push(`--nofile=${files}:${files}`);
  const sizeMb = Number(attributes.maxFileSizeMb);
  if (Number.isInteger(sizeMb) && sizeMb > 0) limits.push(`--fsize=${sizeMb * 1024 * 1024}:${sizeMb * 1024 * 1024}`);
  if (limits.length === 0 || PRLIMIT === undefined) return command;
  const inner = 'shell' in command ? ['/bin/sh', '-c', command.shell] : [command.file, ...command.args];
  return { file: PRLIMIT, args: [...limits, '--', ...inner] };
}

/** prlimit is there to set RLIMIT_DATA with: a memory limit can be held without cgroups. */
export function canLimitMemoryByRlimit(): boolean {
  return PRLIMIT !== undefined;
}

/**
 * A line of a process whose allocation failed at its RLIMIT_DATA: V8's own words ("FATAL ERROR:
 * … Allocation failed - JavaScript heap out of memory", followed by a long stack and an
 * abort), or the C library's (ENOMEM). Other runtimes fail in words of their own.
 */
export function isAllocationFailure(line: string): boolean {
  return /heap out of memory|Allocation failed|Fatal process out of memory|Cannot allocate memory|MemoryError/i.test(line);
}
