import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

/** A machine's load as `uptime` shows it, and per CPU (1.0 = at capacity). */
export interface MachineLoad {
  load1: number;
  load5: number;
  load15: number;
  cpus: number;
  /** The 5-minute load average divided by the CPU count: what the claim gate uses. */
  perCpu: number;
}

/** Where load is read from (the hoster's claim gate, the proxy's GetLoad); injected so that both can be tested with fixed numbers. */
export type LoadSource = () => MachineLoad;

export const systemLoad: LoadSource = () => {
  const [load1 = 0, load5 = 0, load15 = 0] = loadavg();
  const n = Math.max(1, cpus().length);
  return { load1, load5, load15, cpus: n, perCpu: load5 / n };
};

/**
 * Load read from a file in `/proc/loadavg` form (`load1 load5 load15 …`) on every look.
 * Machines that share one kernel (network namespaces, containers) share its load average:
 * a file gives each its own. A file that cannot be read counts as no load, with the reason.
 */
export function fileLoad(path: string, onUnreadable: (reason: string) => void = () => undefined): LoadSource {
  return () => {
    const n = Math.max(1, cpus().length);
    let values: number[] = [];
    try {
      values = readFileSync(path, 'utf8').trim().split(/\s+/).slice(0, 3).map(Number);
    } catch (err) {
      onUnreadable(err instanceof Error ? err.message : String(err));
    }
    const [load1 = 0, load5 = load1, load15 = load5] = values.map((v) => (Number.isFinite(v) && v >= 0 ? v : 0));
    return { load1, load5, load15, cpus: n, perCpu: load5 / n };
  };
}
