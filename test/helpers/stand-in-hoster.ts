import { BerthError } from '../../common/errors.js';
import type { Instance } from '../../registry/store/instance.js';
import type { RegistryStore } from '../../registry/store/registry-store.js';

/**
 * A hoster without processes, for testing the control plane: it claims unclaimed instances
 * through the real Lua scripts, reports them running (or crashing, for releases it is told
 * are broken), renews its leases, and confirms stops when asked to stop.
 */
export class StandInHoster {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private port = 20_000;
  /** Instances this stand-in holds, by id, with the epoch of its claim. */
  readonly held = new Map<string, number>();

  constructor(
    private readonly store: RegistryStore,
    readonly machine: string,
    private readonly options: { crashes?: (i: Instance) => boolean; intervalMs?: number; leaseMs?: number } = {},
  ) {}

  start(): this {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.round()
        .catch(() => undefined)
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.options.intervalMs ?? 20);
        });
    };
    tick();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private async round(): Promise<void> {
    const store = this.store;
    for (const service of new Set(await store.listUnclaimed())) {
      const candidates = (await store.instancesOf(service)).filter((i) => i.state === 'unclaimed');
      // Like a real hoster: never take back an instance that already failed here.
      if (candidates.length === 0 || candidates.every((i) => i.failedOn.includes(this.machine))) continue;
      let claimed: Instance;
      try {
        claimed = await store.claim({ service, machine: this.machine, port: this.port++, leaseMs: this.options.leaseMs ?? 3000 });
      } catch (err) {
        if (err instanceof BerthError && (err.code === 'nothing_to_claim' || err.code === 'service_not_found')) continue;
        throw err;
      }
      const holder = { service, id: claimed.id, machine: this.machine, epoch: claimed.epoch };
      if (claimed.failedOn.includes(this.machine) || this.options.crashes?.(claimed)) {
        await store.release({ ...holder, reason: 'crash_loop' });
        continue;
      }
      this.held.set(claimed.id, claimed.epoch);
      await store.markRunning({ ...holder, pid: 1000 + this.port });
    }
    for (const [id, epoch] of [...this.held]) {
      let instance: Instance;
      try {
        instance = await store.getInstance(id);
      } catch {
        this.held.delete(id);
        continue;
      }
      const holder = { service: instance.service, id, machine: this.machine, epoch };
      if (instance.machine !== this.machine || instance.epoch !== epoch) {
        this.held.delete(id);
      } else if (instance.state === 'stopping') {
        await store.confirmStopped(holder);
        this.held.delete(id);
      } else {
        await store.renew({ ...holder, leaseMs: this.options.leaseMs ?? 3000 });
      }
    }
  }
}
