import type { Machine } from '../registry/store/index.js';
import type { CulpritReport, LoadReport } from '../proxy/index.js';
import type { InstanceUse, MachineObservation } from './scaling-plan.js';

/** The part of a proxy's GET /_berth/routes the scaler reads: requests in flight per local instance. */
interface RoutesReport {
  routes: { app: string; local: { instance: string; inFlight: number }[] }[];
}

/**
 * Asks one machine's proxy (its `facts.proxy` URL from the hoster's heartbeat) for its load,
 * culprit and routes, all at once, each within `timeoutMs`. Its instances are the routed ones
 * (with requests in flight) and the measured ones without a route (workers). A proxy that is down, slow or
 * unknown makes the machine unreachable, never a failed round.
 */
export async function observeMachine(machine: Machine, timeoutMs: number): Promise<MachineObservation & { error?: string }> {
  const proxy = typeof machine.facts.proxy === 'string' && machine.facts.proxy !== '' ? machine.facts.proxy.replace(/\/+$/, '') : null;
  const unreachable = (error: string) => ({ name: machine.name, reachable: false, load: 0, culprit: null, instances: [], error });
  if (proxy === null) return unreachable('no proxy URL known (set BERTH_PROXY_URL for its hoster)');
  try {
    const [load, culprit, routes] = await Promise.all([
      getJson<LoadReport>(`${proxy}/_berth/load`, timeoutMs),
      getJson<CulpritReport>(`${proxy}/_berth/culprit`, timeoutMs),
      getJson<RoutesReport>(`${proxy}/_berth/routes`, timeoutMs),
    ]);
    const cpu = new Map((culprit.instances ?? []).map((i) => [i.instance, i.cpuCores]));
    const instances: InstanceUse[] = [];
    const routed = new Set<string>();
    for (const route of routes.routes) {
      for (const local of route.local) {
        routed.add(local.instance);
        instances.push({ app: route.app, instance: local.instance, cpuCores: cpu.get(local.instance) ?? 0, inFlight: local.inFlight });
      }
    }
    // Measured but not routed: a worker (or another type with no route), with no requests in flight.
    for (const i of culprit.instances ?? []) {
      if (!routed.has(i.instance)) instances.push({ app: i.app, instance: i.instance, cpuCores: i.cpuCores, inFlight: 0 });
    }
    return {
      name: machine.name,
      reachable: true,
      load: load.load,
      culprit: culprit.culprit === null ? null : { app: culprit.culprit.app, instance: culprit.culprit.instance, cpuCores: culprit.culprit.cpuCores },
      instances,
    };
  } catch (err) {
    return unreachable(err instanceof Error ? (err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : err.message) : String(err));
  }
}

async function getJson<T>(url: string, timeoutMs: number): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  const text = await res.text();
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return JSON.parse(text) as T;
}
