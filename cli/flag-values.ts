import { InvalidArgumentError } from 'commander';
import type { Attributes } from '../sdk/types.js';

/**
 * Parsers of flag and argument values, for commander's argParser: a bad value becomes a usage
 * error that names the flag. The API validates meaning (names, limits); these only read shape.
 */

/** `K=V` split at the first "=" (a value may hold more). */
export function keyValue(text: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`Expected KEY=VALUE, like GREETING=hello.`);
  return [text.slice(0, at), text.slice(at + 1)];
}

/** Collects repeated `--env K=V` flags into one object. */
export function collectEnv(text: string, previous: Record<string, string> | undefined): Record<string, string> {
  const [key, value] = keyValue(text);
  return { ...previous, [key]: value };
}

/** Collects repeated `--attr K=V` flags; "true"/"false" and numbers become what they say (minMemoryMb=256). */
export function collectAttribute(text: string, previous: Attributes | undefined): Attributes {
  const [key, raw] = keyValue(text);
  let value: string | number | boolean = raw;
  if (raw === 'true' || raw === 'false') value = raw === 'true';
  else if (/^-?\d+(\.\d+)?$/.test(raw)) value = Number(raw);
  return { ...previous, [key]: value };
}

/** A whole number of instances, 0 or more. */
export function instanceCount(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('Expected a whole number of instances (0 or more).');
  return Number(text);
}

/** A whole number, 1 or more (health-check attempts, failures in a row). */
export function positiveCount(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new InvalidArgumentError('Expected a whole number, 1 or more.');
  return Number(text);
}

/** A memory size in MiB from `512M`, `1G`, `1.5G` or `256` (MiB). */
export function memorySize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([MmGg])?[Bb]?$/.exec(text.trim());
  const mb = m === null ? NaN : Number(m[1]) * (m[2]?.toLowerCase() === 'g' ? 1024 : 1);
  if (!Number.isInteger(mb) || mb < 16) throw new InvalidArgumentError('Expected a memory size of 16M or more, like 512M or 1G.');
  return mb;
}

/** A CPU weight from 1 to 10000 (100 is every instance's default). */
export function cpuWeight(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 10_000) throw new InvalidArgumentError('Expected a CPU weight from 1 to 10000 (100 is the default).');
  return n;
}

/** A positive number of seconds. */
export function seconds(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || n <= 0) throw new InvalidArgumentError('Expected a number of seconds above 0.');
  return n;
}

/** A count of log lines, 1 to 10,000 (what the API keeps answers to). */
export function lineCount(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 10_000) throw new InvalidArgumentError('Expected a number of lines from 1 to 10000.');
  return n;
}

/** A release version: `3` or `v3`. */
export function releaseVersion(text: string): number {
  const match = /^v?(\d+)$/.exec(text);
  if (match === null || Number(match[1]) < 1) throw new InvalidArgumentError('Expected a release version like 3 or v3 (see berth releases NAME).');
  return Number(match[1]);
}

/** A positive number (a target such as CPU cores or requests in flight per instance). */
export function positiveNumber(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || n <= 0) throw new InvalidArgumentError('Expected a number above 0, like 0.6.');
  return n;
}

/** How long one health check may take, in seconds: 0.1 to 60 (the API's 100 to 60,000 ms). */
export function healthTimeout(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || n < 0.1 || n > 60) throw new InvalidArgumentError('Expected a number of seconds from 0.1 to 60, like 2 or 0.5.');
  return n;
}

/** A whole number of seconds, 0 or more. */
export function wholeSeconds(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('Expected a whole number of seconds (0 or more).');
  return Number(text);
}

/** How many decisions of the scaler's log to show, 1 to 1,000 (what the API answers). */
export function decisionCount(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 1000) throw new InvalidArgumentError('Expected a number of decisions from 1 to 1000.');
  return n;
}
