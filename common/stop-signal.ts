/** What StopSignal.race gives instead of a result once the signal has fired. */
export const STOPPED: unique symbol = Symbol('stopped');

/**
 * A one-shot stop for loops that wait on something which may never settle once they are
 * told to stop. The case in point: ioredis leaves a blocked read pending for ever when its
 * connection is disconnected during a reconnect delay (Redis just went away), so a close()
 * that awaits the loop would hang until the daemon's grace ran out.
 */
export class StopSignal {
  private fire: () => void = () => undefined;
  private readonly fired = new Promise<typeof STOPPED>((resolve) => {
    this.fire = () => resolve(STOPPED);
  });

  stop(): void {
    this.fire();
  }

  /** `work`'s result, or STOPPED as soon as stop() is called; `work` is left to settle (or not) on its own. */
  race<T>(work: Promise<T>): Promise<T | typeof STOPPED> {
    return Promise.race([work, this.fired]);
  }
}
