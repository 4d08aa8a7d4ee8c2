import type { RegistryKeys } from '../store/index.js';

/**
 * The dashboard's Redis keys, under the registry's tagged prefix (so they share its Cluster
 * slot). Kept beside the dashboard until the registry's key module takes them in.
 */
export interface DashboardKeys {
  /** A signed-in session (JSON), by the sha256 of its id; expires with the session. */
  session(idDigest: string): string;
  /** List of one machine's load samples (JSON), newest first, capped at an hour's worth. */
  loadHistory(machine: string): string;
  /** Held for one sampling period by the registry whose turn it is to sample (SET NX PX). */
  readonly loadSamplerTurn: string;
}

export function dashboardKeys(keys: RegistryKeys): DashboardKeys {
  const p = keys.prefix;
  return {
    session: (idDigest) => `${p}dashboard:session:${idDigest}`,
    loadHistory: (machine) => `${p}dashboard:load:${machine}`,
    loadSamplerTurn: `${p}dashboard:load-sampler-turn`,
  };
}
