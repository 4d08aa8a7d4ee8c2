import type { Attributes } from '../registry/store/index.js';
import { LIMIT_ATTRIBUTES } from './resource-limits.js';

/** What a machine offers, against which an instance's requirements are checked. */
export interface MachineOffer {
  cpus: number;
  freeMemoryMb: number;
  /** Free-form labels of this machine (e.g. zone=a, ssd=true). */
  labels: Record<string, string>;
}

/**
 * Why this machine cannot take an instance with these requirements, or undefined when it
 * can. `minMemoryMb` and `minCpus` are measured; every other attribute is a label the
 * machine must carry with the same value.
 */
export function unmetRequirement(requirements: Attributes, machine: MachineOffer): string | undefined {
  for (const [key, want] of Object.entries(requirements)) {
    // Limits on the app's own processes, not a requirement of the machine.
    if (LIMIT_ATTRIBUTES.has(key)) continue;
    if (key === 'minMemoryMb') {
      if (machine.freeMemoryMb < Number(want)) return `needs ${want} MB free memory, this machine has ${Math.floor(machine.freeMemoryMb)}`;
    } else if (key === 'minCpus') {
      if (machine.cpus < Number(want)) return `needs ${want} CPUs, this machine has ${machine.cpus}`;
    } else if (machine.labels[key] !== String(want)) {
      return `needs label ${key}=${String(want)}`;
    }
  }
  return undefined;
}
