// StopSignal.race gives the work's result until stop(), and STOPPED from then on, even for
// work that never settles; a rejection that comes after it gave up is not unhandled.
import { describe, expect, it } from 'vitest';
import { StopSignal, STOPPED } from '../../common/stop-signal.js';

describe('StopSignal', () => {
  it("gives the work's result, or its rejection, while not stopped", async () => {
    const signal = new StopSignal();
    await expect(signal.race(Promise.resolve(42))).resolves.toBe(42);
    await expect(signal.race(Promise.reject(new Error('read failed')))).rejects.toThrow('read failed');
  });

  it('gives STOPPED for work that never settles, once stopped, and at once for later work', async () => {
    const signal = new StopSignal();
    const waiting = signal.race(new Promise<never>(() => undefined));
    signal.stop();
    await expect(waiting).resolves.toBe(STOPPED);
    await expect(signal.race(new Promise<never>(() => undefined))).resolves.toBe(STOPPED);
  });

  it('leaves no unhandled rejection when the abandoned work fails later', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const signal = new StopSignal();
      let fail: (err: Error) => void = () => undefined;
      const work = new Promise<never>((_, reject) => (fail = reject));
      const raced = signal.race(work);
      signal.stop();
      await expect(raced).resolves.toBe(STOPPED);
      fail(new Error('connection closed'));
      // Unhandled rejections are reported after the microtask queue drains: give it a turn.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
