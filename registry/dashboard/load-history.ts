import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { RedisClient } from '../../common/redis-connection.js';
import { redisCall, takeSamplerTurn } from '../store/index.js';
import type { RegistryStore } from '../store/index.js';
import type { DashboardKeys } from './dashboard-keys.js';
import type { LoadSample } from '../../sdk/types.js';

/** How often one registry asks every proxy for its load and culprit. @default 30 s */
export const DEFAULT_LOAD_SAMPLE_MS = 30_000;
/** How far back a machine's load history goes. */
export const LOAD_HISTORY_MS = 3600_000;
const REPORT_TIMEOUT_MS = 3000;

/** One sample of a machine's proxy reports: the SDK's wire type, the one definition of it. */
export type { LoadSample } from '../../sdk/types.js';

export interface LoadHistoryOptions {
  redis: RedisClient;
  store: RegistryStore;
  keys: DashboardKeys;
  sampleMs: number;
  logger: Logger;
}

/**
 * Every machine's load over the last hour, for the dashboard's charts: a capped list per
 * machine in Redis. Any number of registries run this; a SET NX PX turn key lets one of them
 * sample each period, so the lists hold one sample per period whatever their number.
 */
export class LoadHistory {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private failing = false;
  private running: Promise<unknown> | undefined;
  private readonly me = randomBytes(8).toString('hex');

  constructor(private readonly options: LoadHistoryOptions) {}

  get maxSamples(): number {
    return Math.ceil(LOAD_HISTORY_MS / this.options.sampleMs);
  }

  start(): void {
    const tick = () => {
      if (this.closed) return;
      this.running = this.sampleIfMyTurn()
        .then(() => {
          if (this.failing) this.options.logger.info('sampling the machines\' load for the dashboard again');
          this.failing = false;
        })
        .catch((err) => {
          // Once per outage, not once per period.
          if (!this.failing) this.options.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not sample the machines\' load for the dashboard: trying again each period');
          this.failing = true;
        })
        .finally(() => {
          if (!this.closed) this.timer = setTimeout(tick, this.options.sampleMs);
        });
    };
    tick();
  }

  /** Samples every machine's proxy now, when no other registry did this period. */
  async sampleIfMyTurn(): Promise<boolean> {
    const { redis, keys, sampleMs } = this.options;
    const at = await redisCall(() => takeSamplerTurn.run(redis, { keys: { turn: keys.loadSamplerTurn }, args: { holder: this.me, turnMs: Math.max(1, sampleMs - 50) } }));
    if (at === 0) return false;
    const machines = await this.options.store.listMachines();
    const samples = await Promise.all(machines.map(async (m) => ({ name: m.name, sample: await sample(m.facts.proxy, at) })));
    const pipeline = redis.multi();
    for (const { name, sample: s } of samples) {
      pipeline.lpush(keys.loadHistory(name), JSON.stringify(s));
      pipeline.ltrim(keys.loadHistory(name), 0, this.maxSamples - 1);
      pipeline.pexpire(keys.loadHistory(name), LOAD_HISTORY_MS * 2);
    }
    await redisCall(() => pipeline.exec());
    return true;
  }

  /** Each machine's samples, oldest first. */
  async read(machines: string[]): Promise<Array<{ name: string; samples: LoadSample[] }>> {
    const { redis, keys } = this.options;
    const pipeline = redis.pipeline();
    for (const name of machines) pipeline.lrange(keys.loadHistory(name), 0, this.maxSamples - 1);
    const rows = (await redisCall(() => pipeline.exec())) ?? [];
    return machines.map((name, i) => {
      const [err, list] = rows[i] ?? [null, []];
      if (err) throw err;
      return { name, samples: (list as string[]).map((s) => JSON.parse(s) as LoadSample).reverse() };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
  }
}

/** Asks one machine's proxy (its heartbeat's `proxy` URL) for GetLoad and GetCulprit; `at` is the turn's moment. */
async function sample(proxy: unknown, at: number): Promise<LoadSample> {
  if (typeof proxy !== 'string' || proxy === '') return { at, load: null, cpus: null, culprit: null, apps: {}, error: 'no proxy URL known (set BERTH_PROXY_URL for its hoster)' };
  const base = proxy.replace(/\/+$/, '');
  try {
    const [load, culprit] = await Promise.all([report(`${base}/_berth/load`), report(`${base}/_berth/culprit`)]);
    const culpritReport = culprit as { culprit?: { app: string; instance: string; cpuShare: number } | null; instances?: { app: string; cpuCores: number }[] };
    const c = culpritReport.culprit ?? null;
    const apps: Record<string, number> = {};
    for (const i of culpritReport.instances ?? []) apps[i.app] = Math.round(((apps[i.app] ?? 0) + i.cpuCores) * 1000) / 1000;
    const l = load as { load?: number; cpus?: number };
    return { at, load: typeof l.load === 'number' ? l.load : null, cpus: typeof l.cpus === 'number' ? l.cpus : null, culprit: c === null ? null : { app: c.app, instance: c.instance, cpuShare: c.cpuShare }, apps, error: null };
  } catch (err) {
    return { at, load: null, cpus: null, culprit: null, apps: {}, error: err instanceof Error ? (err.name === 'TimeoutError' ? `no answer within ${REPORT_TIMEOUT_MS / 1000} s` : err.message) : String(err) };
  }
}

async function report(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(REPORT_TIMEOUT_MS), headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`HTTP ${res.status} from ${url}`);
  return res.json();
}
