/**
 * Loopback ports for a test hoster's app instances. They lie below the OS's ephemeral range
 * (32768 and up), where getPort() draws every other test port, and apart for each vitest
 * worker: two test files side by side must never hand one port to two listeners, or one
 * platform's proxy would forward to another platform's app.
 */
const WORKER = Number(process.env.VITEST_POOL_ID ?? '1');
const FIRST = 10_000;
const PER_WORKER = 5000;
const WORKERS = 4;
const SIZE = 500;
let next = 0;

export function instancePortRange(): string {
  const first = FIRST + ((WORKER - 1) % WORKERS) * PER_WORKER + (next++ % (PER_WORKER / SIZE)) * SIZE;
  return `${first}-${first + SIZE - 1}`;
}
