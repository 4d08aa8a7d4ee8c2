import type { RedisClient } from '../common/redis-connection.js';
import { StopSignal, STOPPED } from '../common/stop-signal.js';
import { currentEventId, readEvents, type RegistryEvent } from '../registry/store/index.js';
import type { RegistryKeys } from '../registry/store/index.js';

/** Events after which something may be claimable. */
const WORK_EVENTS = new Set(['registered', 'released', 'expired', 'unregistered']);
/** Events that end a claim: its holder stops its copy (and does not confirm). */
const LOST_EVENTS = new Set(['unregistered', 'expired', 'released']);

export interface EventFollowerOptions {
  /** A connection of its own: the reads block on it. */
  events: RedisClient;
  keys: RegistryKeys;
  /** True once the hoster is closing. */
  stopped: () => boolean;
  /** Something may be claimable now (new work, or following again from now: a full look is due). */
  onWork: () => void;
  /** The registry retires an instance (`stopping`): its holder stops it and confirms. */
  onRetired: (instance: string, epoch: number | undefined) => void;
  /** A claim ended in the registry (released, expired, unregistered): its holder stops its copy. */
  onLost: (instance: string, epoch: number | undefined) => void;
}

/**
 * Follows the registry's event stream so that the hoster reacts within milliseconds: wakes
 * the claim loop on new work, and stops copies whose claims ended. After a gap (an error, a
 * resync) it follows again from now and asks for a full look.
 */
export class EventFollower {
  /** Ends the wait on the blocking connection (see StopSignal). */
  private readonly stopSignal = new StopSignal();
  private loop: Promise<void> = Promise.resolve();

  constructor(private readonly o: EventFollowerOptions) {}

  start(): void {
    this.loop = this.run();
  }

  /** Ends the read in progress; the loop ends once stopped() is true. */
  interrupt(): void {
    this.stopSignal.stop();
  }

  done(): Promise<void> {
    return this.loop;
  }

  private async run(): Promise<void> {
    const { events, keys } = this.o;
    let position: string | undefined;
    while (!this.o.stopped()) {
      try {
        if (position === undefined) {
          const now = await this.stopSignal.race(currentEventId(events, keys));
          if (now === STOPPED) return;
          position = now;
          // Following (again) from now: whatever happened before is seen by a full look.
          this.o.onWork();
        }
        const batch = await this.stopSignal.race(readEvents(events, keys, position, { blockMs: 2000, count: 200 }));
        if (batch === STOPPED) return;
        if (batch.resync) {
          position = undefined;
          continue;
        }
        for (const e of batch.events) {
          position = e.id;
          this.dispatch(e);
        }
      } catch {
        if (this.o.stopped()) return;
        position = undefined;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private dispatch(e: RegistryEvent): void {
    if (WORK_EVENTS.has(e.kind)) this.o.onWork();
    if (e.instance === undefined) return;
    if (e.kind === 'stopping') this.o.onRetired(e.instance, e.epoch);
    else if (LOST_EVENTS.has(e.kind)) this.o.onLost(e.instance, e.epoch);
  }
}
