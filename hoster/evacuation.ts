import type { Logger } from 'pino';
import type { RegistryStore } from '../registry/store/index.js';
import type { InstanceRunner } from './instance-runner.js';

/** How often an evacuation looks whether every copy here has been retired. */
const CHECK_EVERY_MS = 100;

export interface EvacuationOptions {
  store: RegistryStore;
  machine: string;
  heartbeatMs: number;
  /** How long to wait for replacements before stopping what is left. */
  timeoutMs: number;
  logger: Logger;
  /** The instances this machine holds (each leaves it when its runner is done). */
  runners: ReadonlyMap<string, InstanceRunner>;
}

/**
 * Make before break, on shutdown: flags this machine's instances as evacuating, so that the
 * reconciler starts replacements on other machines and then retires each copy here (its
 * runner sees that at its next renewal and stops it); waits until none is left or the
 * deadline passes. With no other live machine nobody can take over: returns at once, and the
 * caller stops the instances.
 */
export async function evacuate(o: EvacuationOptions): Promise<void> {
  const runners = [...o.runners.values()];
  o.logger.info({ instances: runners.length }, `evacuating ${runners.length} instance(s): replacements start elsewhere first`);
  const others = (await o.store.listMachines().catch(() => [])).filter(
    (m) => m.name !== o.machine && Date.now() - m.heartbeatAt < Math.max(15_000, 3 * o.heartbeatMs),
  );
  if (others.length === 0) {
    o.logger.info('no other machine is alive to take over: stopping the instances here');
    return;
  }
  for (const r of runners) {
    await o.store.markEvacuating({ service: r.app, id: r.id, machine: o.machine, epoch: r.epoch }).catch(() => undefined);
  }
  const deadline = Date.now() + o.timeoutMs;
  while (o.runners.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, CHECK_EVERY_MS));
  if (o.runners.size > 0) o.logger.warn({ left: o.runners.size }, 'evacuation deadline passed: stopping what is left');
}
