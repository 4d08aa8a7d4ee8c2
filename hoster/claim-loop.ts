import { freemem } from 'node:os';
import type { Logger } from 'pino';
import { BerthError } from '../common/errors.js';
import type { Instance } from '../registry/store/index.js';
import type { RegistryStore } from '../registry/store/index.js';
import type { LoadSource } from '../common/load-source.js';
import { unmetRequirement } from './machine-fit.js';
import type { PortAllocator } from './port-allocator.js';

/** How long an instance that failed on this machine is left for others before it is tried here again. */
export const FAILED_HERE_BACKOFF_MS = 60_000;
/**
 * Unclaimed instances one claim round looks at (twice this, see unclaimedServicesSample): a round
 * claims a few, so reading every unclaimed one (O(n) per round, per hoster) would only cost.
 */
const UNCLAIMED_SAMPLE = 64;

export interface ClaimLoopOptions {
  store: RegistryStore;
  machine: string;
  leaseMs: number;
  ports: PortAllocator;
  logger: Logger;
  load: LoadSource;
  /** Claim only while the 5-minute load per CPU is below this. */
  maxLoadPerCpu: number;
  /** Most instances this machine runs. */
  capacity: number;
  /** Most instances claimed in one round: the load average lags, so claim in small steps. */
  claimsPerRound: number;
  /** Wait per instance of the same app already here before claiming another: spreads apps. */
  spreadDelayMs: number;
  labels: Record<string, string>;
  /** Full look at the registry this often, besides being poked. */
  pollIntervalMs: number;
  /** The instances this machine holds now, by id. */
  held: ReadonlyMap<string, { readonly app: string }>;
  /** True once the hoster is closing: no more rounds, no more claims. */
  stopped: () => boolean;
  /** Waited on before each round (after Redis was out of reach: every lease is renewed first). */
  before: () => Promise<void>;
  /** A claim this machine won, on `port`, sent at monotonic `sentAt`: run it. */
  onClaimed: (instance: Instance, port: number, sentAt: number) => void;
}

/**
 * The claim loop: a round every pollIntervalMs, or at once when poked (the event stream said
 * that work appeared, an instance here ended). A round claims what fits this machine while its
 * load is low and it has room, a few at a time, letting less loaded machines win the race.
 */
export class ClaimLoop {
  private readonly log: Logger;
  private wake: (() => void) | undefined;
  private pokedDuringRound = false;
  private gateOpen: boolean | undefined;
  private loop: Promise<void> = Promise.resolve();

  constructor(private readonly o: ClaimLoopOptions) {
    this.log = o.logger;
  }

  start(): void {
    this.loop = this.run();
  }

  /** Settles once the loop has ended (after stopped() turned true and it was poked). */
  done(): Promise<void> {
    return this.loop;
  }

  /** Wakes the loop now, or makes its next wait end at once when it is mid-round. */
  poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    if (wake) wake();
    else this.pokedDuringRound = true;
  }

  private async run(): Promise<void> {
    while (!this.o.stopped()) {
      this.pokedDuringRound = false;
      try {
        await this.claimRound();
      } catch (err) {
        if (!(err instanceof BerthError && err.code === 'redis_unavailable')) this.log.error({ err }, 'claim round failed');
      }
      if (this.o.stopped()) return;
      if (this.pokedDuringRound) {
        this.pokedDuringRound = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.o.pollIntervalMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** One look at the unclaimed instances: claims what fits, within the gate and capacity. */
  async claimRound(): Promise<number> {
    const o = this.o;
    await o.before();
    const load = o.load();
    const open = load.perCpu < o.maxLoadPerCpu;
    if (open !== this.gateOpen) {
      this.log.info({ loadPerCpu: Number(load.perCpu.toFixed(2)), max: o.maxLoadPerCpu }, open ? 'load is low: claiming' : 'load is high: not claiming');
      this.gateOpen = open;
    }
    if (!open || o.held.size >= o.capacity) return 0;
    // The store's word for apps is still "services" (its API).
    const apps = await o.store.unclaimedServicesSample(UNCLAIMED_SAMPLE);
    let claimed = 0;
    const full = () => o.stopped() || claimed >= o.claimsPerRound || o.held.size >= o.capacity;
    for (const app of apps) {
      if (full()) break;
      const offer = { cpus: load.cpus, freeMemoryMb: freemem() / 2 ** 20, labels: o.labels };
      const now = Date.now();
      const candidates = (await o.store.instancesOf(app)).filter(
        (i) =>
          i.state === 'unclaimed' &&
          // Failed here lately: let another machine try first (it may come back to us later).
          !(i.failedOn.includes(o.machine) && now - i.updatedAt < FAILED_HERE_BACKOFF_MS) &&
          unmetRequirement(i.attributes, offer) === undefined,
      );
      for (const fit of candidates) {
        if (full()) break;
        const here = [...o.held.values()].filter((r) => r.app === app).length;
        // A machine that already runs this app, or is busier, lets a less loaded one win the race.
        const delay = here * o.spreadDelayMs + Math.min(load.perCpu, 1) * o.spreadDelayMs;
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
        if (await this.claim(fit)) claimed++;
      }
    }
    // More may be waiting than one round takes: look again at once.
    if (claimed >= o.claimsPerRound) this.poke();
    return claimed;
  }

  private async claim(candidate: Instance): Promise<boolean> {
    const o = this.o;
    // Only web listens: a worker or release task gets no port.
    const port = candidate.process === 'web' ? await o.ports.allocate() : 0;
    const sentAt = performance.now();
    let instance: Instance;
    try {
      instance = await o.store.claim({ service: candidate.service, instanceId: candidate.id, machine: o.machine, host: '127.0.0.1', port, leaseMs: o.leaseMs });
    } catch (err) {
      o.ports.release(port);
      if (err instanceof BerthError && (err.code === 'nothing_to_claim' || err.code === 'service_not_found')) return false;
      throw err;
    }
    this.log.info({ app: instance.service, instance: instance.id, epoch: instance.epoch, port }, `claimed ${instance.service}/${instance.id} (epoch ${instance.epoch})`);
    o.onClaimed(instance, port, sentAt);
    return true;
  }
}
