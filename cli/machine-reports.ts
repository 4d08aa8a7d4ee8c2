import type { Machine } from '../sdk/types.js';

/** How long a machine's proxy may take to answer before its cell shows an error. */
export const REPORT_TIMEOUT_MS = 3000;

/** One machine's answer to a proxy report endpoint, or why there is none. */
export interface MachineReport<T> {
  machine: string;
  proxy: string | null;
  report: T | null;
  error: string | null;
}

/**
 * Asks every machine's proxy (its `facts.proxy` URL, from the hoster's heartbeat) for
 * `endpoint`, all at once. A proxy that is down, slow or unknown gives an error for that
 * machine only.
 */
export async function machineReports<T>(machines: Machine[], endpoint: '/_berth/load' | '/_berth/culprit'): Promise<Array<MachineReport<T>>> {
  return Promise.all(
    machines.map(async (m): Promise<MachineReport<T>> => {
      const proxy = typeof m.facts.proxy === 'string' && m.facts.proxy !== '' ? m.facts.proxy : null;
      if (proxy === null) return { machine: m.name, proxy, report: null, error: 'no proxy URL known (set BERTH_PROXY_URL for its hoster)' };
      try {
        const res = await fetch(`${proxy.replace(/\/+$/, '')}${endpoint}`, { signal: AbortSignal.timeout(REPORT_TIMEOUT_MS), headers: { accept: 'application/json' } });
        const text = await res.text();
        if (!res.ok) return { machine: m.name, proxy, report: null, error: `HTTP ${res.status}: ${text.slice(0, 120).trim()}` };
        return { machine: m.name, proxy, report: JSON.parse(text) as T, error: null };
      } catch (err) {
        return { machine: m.name, proxy, report: null, error: whyNot(err) };
      }
    }),
  );
}

function whyNot(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return `no answer within ${REPORT_TIMEOUT_MS / 1000} s`;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}
