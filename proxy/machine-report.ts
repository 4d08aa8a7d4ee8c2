import type { MachineLoad } from '../common/load-source.js';
import type { CpuSampler } from './cpu-sampler.js';

/** The body of GetLoad (`GET /_berth/load`). */
export interface LoadReport {
  /** The 5-minute load average per CPU: 1.0 is a machine at capacity. */
  load: number;
  load1: number;
  load5: number;
  load15: number;
  cpus: number;
  atCapacity: boolean;
}

/** The body of GetCulprit (`GET /_berth/culprit`). */
export interface CulpritReport {
  machine: string;
  culprit: { app: string; instance: string; pid: number; cpuShare: number; cpuCores: number } | null;
  /** Every measured instance of this machine, the busiest first (the scaler judges idle apps by it). */
  instances: { app: string; instance: string; cpuShare: number; cpuCores: number }[];
  /** How far back the culprit's CPU use was measured. */
  windowMs: number;
}

export function loadReport(load: MachineLoad): LoadReport {
  const perCpu = round3(load.perCpu);
  // Judged on the number shown, so that the body never says 1 and "not at capacity".
  return { load: perCpu, load1: round3(load.load1), load5: round3(load.load5), load15: round3(load.load15), cpus: load.cpus, atCapacity: perCpu >= 1 };
}

export function culpritReport(sampler: Pick<CpuSampler, 'culprit' | 'shares' | 'windowMs'>, machine: string): CulpritReport {
  const top = sampler.culprit();
  return {
    machine,
    culprit: top ? { app: top.service, instance: top.instance, pid: top.pid, cpuShare: round3(top.cpuShare), cpuCores: round3(top.cpuCores) } : null,
    instances: sampler.shares().map((s) => ({ app: s.service, instance: s.instance, cpuShare: round3(s.cpuShare), cpuCores: round3(s.cpuCores) })),
    windowMs: sampler.windowMs,
  };
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
