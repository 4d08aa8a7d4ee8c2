import { freemem, totalmem } from 'node:os';
import type { RegistryStore } from '../registry/store/index.js';
import type { LoadSource } from '../common/load-source.js';

export interface HeartbeatOptions {
  store: RegistryStore;
  machine: string;
  /** Where this machine's proxy listens, as others reach it. */
  proxyUrl: string;
  load: LoadSource;
  labels: Record<string, string>;
  capacity: number;
  everyMs: number;
  /** Instances this machine holds now. */
  instances: () => number;
  /** After each beat, while Redis answers: what to read for when it stops answering (the control-plane watch's refresh). */
  afterBeat: () => Promise<void>;
}

/** The machine's heartbeat: its facts (load, memory, labels, room) in the registry every `everyMs`. */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: HeartbeatOptions) {}

  /** Beats once now (a failure is only missed), then every `everyMs`. */
  async start(): Promise<void> {
    await this.beat().catch(() => undefined);
    this.timer = setInterval(() => void this.beat().catch(() => undefined), this.o.everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async beat(): Promise<void> {
    const o = this.o;
    const load = o.load();
    await o.store.heartbeat(o.machine, {
      proxy: o.proxyUrl,
      cpus: load.cpus,
      memoryMb: Math.round(totalmem() / 2 ** 20),
      freeMemoryMb: Math.round(freemem() / 2 ** 20),
      load: Number(load.perCpu.toFixed(3)),
      load1: load.load1,
      load5: load.load5,
      load15: load.load15,
      labels: o.labels,
      instances: o.instances(),
      capacity: o.capacity,
    });
    await o.afterBeat().catch(() => undefined);
  }
}
