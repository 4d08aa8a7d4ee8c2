import { request } from 'node:http';
import { connect } from 'node:net';
import type { HealthCheck } from '../registry/store/index.js';

/** One attempt: resolves true when it passed. */
export async function probe(port: number, check: HealthCheck, hostHeader = 'localhost'): Promise<boolean> {
  return (await checkOnce(port, check, hostHeader)) === undefined;
}

/**
 * One attempt: an HTTP GET of the check's path expecting its status, or a TCP connect when
 * it has no path. Resolves undefined when it passed, else what it saw ("500 from GET
 * /healthz", "no answer from GET /healthz in 2000 ms", "nothing listens on port 20001");
 * never throws, never outlives its timeout.
 */
export function checkOnce(port: number, check: HealthCheck, hostHeader = 'localhost'): Promise<string | undefined> {
  return new Promise((resolve) => {
    if (check.path === undefined) {
      const socket = connect({ port, host: '127.0.0.1' });
      const done = (failure: string | undefined) => {
        socket.destroy();
        resolve(failure);
      };
      socket.setTimeout(check.timeoutMs, () => done(`no TCP connection to port ${port} in ${check.timeoutMs} ms`));
      socket.once('connect', () => done(undefined));
      socket.once('error', () => done(`nothing listens on port ${port}`));
      return;
    }
    const what = `GET ${check.path}`;
    const req = request({ host: '127.0.0.1', port, path: check.path, method: 'GET', headers: { host: hostHeader, 'user-agent': 'berth-health' }, timeout: check.timeoutMs, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === check.status ? undefined : `${res.statusCode} from ${what}`);
    });
    req.once('timeout', () => req.destroy(new Error(`no answer from ${what} in ${check.timeoutMs} ms`)));
    req.once('error', (err) => resolve(err.message.startsWith('no answer') ? err.message : `${what} failed (${(err as NodeJS.ErrnoException).code ?? err.message})`));
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

/**
 * Why an instance whose check never passed at start is released: `not_listening` when the
 * check is a TCP connect (nothing listens on $PORT), else `unhealthy`; with the summary of its
 * detail.
 */
export function neverHealthy(port: number, check: HealthCheck): { reason: 'not_listening' | 'unhealthy'; summary: string } {
  if (check.path === undefined) {
    return { reason: 'not_listening', summary: `nothing listened on $PORT (${port}) after ${check.attempts} attempts: listen on process.env.PORT` };
  }
  return { reason: 'unhealthy', summary: `GET ${check.path} never answered ${check.status} after ${check.attempts} attempts` };
}

/**
 * The check for an instance's whole life: every `check.intervalMs` while `alive()`. After
 * `check.failures` failed checks in a row, `onFailing` hears what the last one saw and how
 * many failed, and the watch ends (the caller takes the instance out and restarts it).
 */
export function watchHealth(port: number, check: HealthCheck, alive: () => boolean, onFailing: (failure: string, failed: number) => Promise<void>): void {
  let failed = 0;
  const tick = async () => {
    if (!alive()) return;
    const failure = await checkOnce(port, check);
    if (!alive()) return;
    failed = failure === undefined ? 0 : failed + 1;
    if (failure === undefined || failed < check.failures) {
      setTimeout(() => void tick(), check.intervalMs).unref();
      return;
    }
    await onFailing(failure, failed);
  };
  setTimeout(() => void tick(), check.intervalMs).unref();
}
