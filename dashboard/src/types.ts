// The parts of the API's answers the pages show (docs/api.md has them whole).

export interface Release {
  version: number;
  description: string;
  createdBy: string;
  createdAt: number;
  status: string;
  reason?: string;
  bundle: string;
}

export interface AppDetails {
  name: string;
  path: string;
  instances: number;
  status: string;
  url: string | null;
  /** Running instances of the current release. */
  running: number;
  /** Running instances by release version: what serves now (during a rollout, more than one). */
  runningByRelease: Record<string, number>;
  instancesByState: Record<string, number>;
  autoscale: { min: number; max: number } | null;
  current: Release | null;
}

export interface Instance {
  id: string;
  state: string;
  release: number | null;
  machine: string | null;
  port: number | null;
  pid: number | null;
  reason: string | null;
  reasonDetail: string | null;
  failedOn: string[];
  updatedAt: number;
}

export interface LoadSample {
  at: number;
  load: number | null;
  cpus: number | null;
  culprit: { app: string; instance: string; cpuShare: number } | null;
  /** CPU cores used by each app's instances on the machine. */
  apps?: Record<string, number>;
  error: string | null;
}

export interface MachineLoad {
  name: string;
  facts: { cpus?: number; memoryMb?: number; freeMemoryMb?: number; load?: number; proxy?: string };
  heartbeatAt: number;
  samples: LoadSample[];
}

export interface ScaleDecision {
  app: string;
  from: number;
  to: number;
  cause: string;
  reason: string;
  at: number;
  scaler: string;
  inputs: { wanted: number; running: number; cpuPerInstance: number | null; inFlightPerInstance: number | null; machineLoads: Record<string, number | null> };
}
