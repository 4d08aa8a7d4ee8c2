import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Instance } from '../registry/store/index.js';
import type { RegistryStore } from '../registry/store/index.js';
import type { InstanceRunner } from './instance-runner.js';
import { connectShim, type OpenShim } from './shim-client.js';
import { send } from './shim-protocol.js';

/** A survivor's shim is listening already: it gets this long to say hello. */
const HELLO_MS = 2000;

export interface AdoptionOptions {
  instancesDir: string;
  store: RegistryStore;
  machine: string;
  leaseMs: number;
  stopGraceMs: number;
  logger: Logger;
  /** True once the hoster is closing. */
  stopped: () => boolean;
  /** Supervise a survivor whose claim still holds (renewed at monotonic `sentAt`); returns its runner. */
  adopt: (instance: Instance, shim: OpenShim, sentAt: number) => InstanceRunner;
}

/**
 * Finds the shims that outlived a previous hoster on this data directory and takes their
 * instances back when the claim still holds (same processes, same claims); a shim whose claim
 * is gone is told to stop its app. Directories without a live shim are removed.
 */
export async function adoptSurvivors(o: AdoptionOptions): Promise<void> {
  for (const name of readdirSync(o.instancesDir)) {
    const dir = join(o.instancesDir, name);
    const socketPath = join(dir, 'shim.sock');
    if (!existsSync(socketPath)) {
      if (!o.stopped()) rmSync(dir, { recursive: true, force: true });
      continue;
    }
    let shim: OpenShim;
    try {
      shim = await connectShim(socketPath, { waitMs: 0, helloMs: HELLO_MS });
    } catch {
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    // The shim protocol's word for the app is "service" (a shim may be older than this hoster).
    const { hello, socket } = shim;
    const sentAt = performance.now();
    try {
      const { state } = await o.store.renew({ service: hello.service, id: hello.instance, machine: o.machine, epoch: hello.epoch, leaseMs: o.leaseMs });
      const instance = await o.store.getInstance(hello.instance);
      const runner = o.adopt(instance, shim, sentAt);
      if (state === 'stopping') void runner.stop('retired', true);
    } catch (err) {
      o.logger.warn({ instance: hello.instance, err: err instanceof Error ? err.message : String(err) }, `the claim of surviving ${hello.service}/${hello.instance} is gone: stopping it`);
      send(socket, { t: 'stop', graceMs: o.stopGraceMs });
      socket.end();
      // Read on (connectShim paused it after the hello) so that the shim's end closes the socket.
      socket.resume();
    }
  }
}
