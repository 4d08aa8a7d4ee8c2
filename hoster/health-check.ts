import { request } from 'node:http';
import { connect } from 'node:net';
import type { HealthCheck } from '../registry/app.js';

/**
 * One attempt: an HTTP GET of the check's path expecting its status, or a TCP connect when
 * it has no path. Resolves true or false; never throws, never outlives its timeout.
 */
export function probe(port: number, check: HealthCheck, hostHeader = 'localhost'): Promise<boolean> {
  return new Promise((resolve) => {
    if (check.path === undefined) {
      const socket = connect({ port, host: '127.0.0.1' });
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(check.timeoutMs, () => done(false));
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
      return;
    }
    const req = request({ host: '127.0.0.1', port, path: check.path, method: 'GET', headers: { host: hostHeader, 'user-agent': 'berth-health' }, timeout: check.timeoutMs, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === check.status);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

/**
 * Probes until one attempt passes (true) or `check.attempts` failed (false); `cancelled()`
 * ends it early (false). The first retries come quickly (most apps listen within a few
 * tens of milliseconds), growing to `intervalMs` apart.
 */
export async function waitHealthy(port: number, check: HealthCheck, intervalMs: number, cancelled: () => boolean): Promise<boolean> {
  for (let attempt = 0; attempt < check.attempts; attempt++) {
    if (cancelled()) return false;
    if (await probe(port, check)) return true;
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, 25 * 2 ** attempt)));
  }
  return false;
}
