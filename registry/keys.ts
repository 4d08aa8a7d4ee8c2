/**
 * Every Redis key of the registry, built in one place. All keys share one prefix that carries
 * a Redis Cluster hash tag (`{berth}:`), so that every multi-key script runs in one slot.
 * Scripts that must reach an instance they only learn about inside Lua (claim, reap) build
 * its key from `prefix` the same way `instance()` does here.
 */
export const DEFAULT_KEY_PREFIX = 'berth';

const PREFIX_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export interface RegistryKeys {
  /** The tagged prefix itself, passed to scripts that build instance keys. */
  readonly prefix: string;
  instance(id: string): string;
  /** Sorted set of the service's instance ids, scored by registration order. */
  serviceInstances(service: string): string;
  /** Sorted set of the service's unclaimed instance ids, scored by registration order. */
  serviceUnclaimed(service: string): string;
  /** Set of service names that have at least one instance. */
  readonly services: string;
  /** Sorted set of every unclaimed instance id, scored by registration order. */
  readonly unclaimed: string;
  /** Sorted set of claimed instance ids, scored by lease expiry (ms, Redis clock). */
  readonly leases: string;
  /** Counter of claim epochs: only ever increases, so a later claim always has a higher epoch. */
  readonly epoch: string;
  /** Counter giving each registration its order. */
  readonly sequence: string;
  /** Remembers which instance a claim request got, so that a retried request is not a second claim. */
  claimRequest(requestId: string): string;
  machine(name: string): string;
  /** Sorted set of machine names, scored by last heartbeat (ms). */
  readonly machines: string;
  /** The one event stream every change appends to. */
  readonly events: string;
}

export function registryKeys(prefixName: string = DEFAULT_KEY_PREFIX): RegistryKeys {
  if (!PREFIX_NAME.test(prefixName)) {
    throw new Error(`key prefix ${JSON.stringify(prefixName)} must match ${PREFIX_NAME}`);
  }
  const p = `{${prefixName}}:`;
  return {
    prefix: p,
    instance: (id) => `${p}instance:${id}`,
    serviceInstances: (service) => `${p}service:${service}:instances`,
    serviceUnclaimed: (service) => `${p}service:${service}:unclaimed`,
    services: `${p}services`,
    unclaimed: `${p}unclaimed`,
    leases: `${p}leases`,
    epoch: `${p}epoch`,
    sequence: `${p}sequence`,
    claimRequest: (requestId) => `${p}claim-request:${requestId}`,
    machine: (name) => `${p}machine:${name}`,
    machines: `${p}machines`,
    events: `${p}events`,
  };
}
