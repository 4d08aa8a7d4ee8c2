import { existsSync } from 'node:fs';
import type { Attributes } from '../registry/store/index.js';

/** App settings that limit its processes rather than choose its machine. */
export const LIMIT_ATTRIBUTES = new Set(['maxOpenFiles', 'maxFileSizeMb', 'maxMemoryMb', 'cpuWeight']);

const PRLIMIT = ['/usr/bin/prlimit', '/bin/prlimit'].find((p) => existsSync(p));

/**
 * Wraps a start command in `prlimit` with the limits the app asks for (open files, largest
 * file it may write), where this machine has prlimit. Memory is limited by cgroups instead
 * (cgroup-limits.ts): an address-space limit breaks V8, which reserves far more than it uses.
 */
export function withResourceLimits(
  command: { shell: string } | { file: string; args: string[] },
  attributes: Attributes,
): { shell: string } | { file: string; args: string[] } {
  const limits: string[] = [];
  const files = Number(attributes.maxOpenFiles);
  if (Number.isInteger(files) && files > 0) limits.push(`--nofile=${files}:${files}`);
  const sizeMb = Number(attributes.maxFileSizeMb);
  if (Number.isInteger(sizeMb) && sizeMb > 0) limits.push(`--fsize=${sizeMb * 1024 * 1024}:${sizeMb * 1024 * 1024}`);
  if (limits.length === 0 || PRLIMIT === undefined) return command;
  const inner = 'shell' in command ? ['/bin/sh', '-c', command.shell] : [command.file, ...command.args];
  return { file: PRLIMIT, args: [...limits, '--', ...inner] };
}
