// The first SIGTERM drains within the grace period and exits 0; a second signal exits at once; close is idempotent.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { closeOnSignals, idempotentClose } from '../../common/daemon-lifecycle.js';
import { silentLogger } from '../../common/logger.js';

function fakeProcess() {
  const emitter = new EventEmitter() as EventEmitter & { exitCodes: number[]; exit: (code: number) => void };
  emitter.exitCodes = [];
  emitter.exit = (code: number) => {
    emitter.exitCodes.push(code);
  };
  return emitter;
}

describe('closeOnSignals', () => {
  it('drains on the first signal and exits 0', async () => {
    const proc = fakeProcess();
    let closed = 0;
    closeOnSignals({ close: async () => void closed++ }, { logger: silentLogger(), process: proc as unknown as NodeJS.Process });
    proc.emit('SIGTERM', 'SIGTERM');
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(1);
    expect(proc.exitCodes).toEqual([0]);
  });

  it('exits 1 at once on a second signal while draining', async () => {
    const proc = fakeProcess();
    closeOnSignals({ close: () => new Promise(() => undefined) }, { logger: silentLogger(), process: proc as unknown as NodeJS.Process });
    proc.emit('SIGINT', 'SIGINT');
    proc.emit('SIGINT', 'SIGINT');
    expect(proc.exitCodes).toEqual([1]);
  });

  it('exits 1 when the drain outlives the grace period', async () => {
    const proc = fakeProcess();
    closeOnSignals({ close: () => new Promise(() => undefined) }, { logger: silentLogger(), graceMs: 20, process: proc as unknown as NodeJS.Process });
    proc.emit('SIGTERM', 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (proc.exitCodes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(proc.exitCodes).toEqual([1]);
  });
});

describe('idempotentClose', () => {
  it('runs the clean-up once, however often it is called', async () => {
    let runs = 0;
    const close = idempotentClose(async () => void runs++);
    await Promise.all([close(), close(), close()]);
    expect(runs).toBe(1);
  });
});
