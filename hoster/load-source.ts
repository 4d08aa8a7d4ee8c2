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

/** Where the hoster reads load from; injected so that the gate can be tested with fixed numbers. */
export type LoadSource = () => MachineLoad;

export const systemLoad: LoadSource = () => {
  const [load1 = 0, load5 = 0, load15 = 0] = loadavg();
  const n = Math.max(1, cpus().length);
  return { load1, load5, load15, cpus: n, perCpu: load5 / n };
};
