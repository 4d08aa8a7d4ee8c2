import { z } from 'zod';
import { logLevelSchema, option, positiveIntSchema, positiveMsSchema, type ResolvedOptions } from '../common/config.js';
import { idempotentClose } from '../common/daemon-lifecycle.js';
import { BerthError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { closeRedis, connectRedis, REDIS_OPTIONS, redisSettingsFrom, waitForReady } from '../common/redis-connection.js';
import { keyPrefixSchema } from '../common/names.js';
import { AppStore, DEFAULT_KEY_PREFIX, DEFAULT_EVENTS_MAX_LENGTH, RegistryStore } from '../registry/store/index.js';
import {
  DEFAULT_DECISION_LOG_LENGTH,
  DEFAULT_HOT_LOAD,
  DEFAULT_IDLE_RATIO,
  DEFAULT_MACHINE_STALE_MS,
  DEFAULT_NOTICE_INTERVAL_MS,
  DEFAULT_REBALANCE_LOAD,
  DEFAULT_REPORT_TIMEOUT_MS,
  DEFAULT_SCALER_INTERVAL_MS,
  DEFAULT_SCALER_LEASE_MS,
  Scaler,
  type ScalerOptions,
} from './scaler.js';

/** Every option of `berth scaler`. */
export const SCALER_OPTIONS = {
  keyPrefix: option({ env: 'BERTH_KEY_PREFIX', default: DEFAULT_KEY_PREFIX, schema: keyPrefixSchema, describe: 'Name inside the Redis key prefix.' }),
  intervalMs: option({ env: 'BERTH_SCALER_INTERVAL_MS', default: DEFAULT_SCALER_INTERVAL_MS, schema: positiveMsSchema, describe: 'How often the acting scaler reads every machine\'s reports and decides.' }),
  leaseMs: option({ env: 'BERTH_SCALER_LEASE_MS', default: DEFAULT_SCALER_LEASE_MS, schema: z.coerce.number().int().min(1000).max(600_000), describe: 'Lease of the acting scaler; another takes over this long after it is last heard of.' }),
  hotLoad: option({ env: 'BERTH_SCALER_HOT_LOAD', default: DEFAULT_HOT_LOAD, schema: z.coerce.number().positive().max(100), describe: 'A machine whose 5-minute load per CPU is at least this runs hot: its culprit\'s app grows.' }),
  idleRatio: option({ env: 'BERTH_SCALER_IDLE_RATIO', default: DEFAULT_IDLE_RATIO, schema: z.coerce.number().positive().max(1), describe: 'An app shrinks only if, with one instance fewer, it would use under this share of its target.' }),
  rebalanceLoad: option({ env: 'BERTH_SCALER_REBALANCE_LOAD', default: DEFAULT_REBALANCE_LOAD, schema: z.coerce.number().positive(), describe: 'An app at its max that is the culprit of a machine this loaded has that instance moved to a machine under the hot load (make before break).' }),
  noticeIntervalMs: option({ env: 'BERTH_SCALER_NOTICE_INTERVAL_MS', default: DEFAULT_NOTICE_INTERVAL_MS, schema: positiveMsSchema, describe: 'An app that needs more than its max is reported (at_max) at most this often.' }),
  reportTimeoutMs: option({ env: 'BERTH_SCALER_REPORT_TIMEOUT_MS', default: DEFAULT_REPORT_TIMEOUT_MS, schema: positiveMsSchema, describe: 'Each proxy report must come within this (under half the lease).' }),
  logLength: option({ env: 'BERTH_SCALER_LOG_LENGTH', default: DEFAULT_DECISION_LOG_LENGTH, schema: positiveIntSchema, describe: 'Decisions the decision log keeps (berth scaler log).' }),
  machineStaleMs: option({ env: 'BERTH_SCALER_MACHINE_STALE_MS', default: DEFAULT_MACHINE_STALE_MS, schema: positiveMsSchema, describe: 'A machine whose last heartbeat is older is left out.' }),
  eventsMaxLength: option({ env: 'BERTH_EVENTS_MAX_LENGTH', default: DEFAULT_EVENTS_MAX_LENGTH, schema: positiveIntSchema, describe: 'Approximate number of events the stream keeps.' }),
  graceMs: option({ env: 'BERTH_GRACE_MS', default: 10_000, schema: positiveMsSchema, describe: 'How long a drain may take after SIGTERM.' }),
  logLevel: option({ env: 'BERTH_LOG_LEVEL', default: 'info', schema: logLevelSchema, describe: 'Log level.' }),
  ...REDIS_OPTIONS,
};

export type ScalerConfig = ResolvedOptions<typeof SCALER_OPTIONS>;

export interface ScalerDaemon {
  scaler: Scaler;
  close(): Promise<void>;
}

/** Starts `berth scaler`; it needs only Redis (machines, apps and the proxies' addresses are there). */
export async function startScaler(config: ScalerConfig, logger: Logger, hooks: Pick<ScalerOptions, 'onDecision' | 'onRound'> = {}): Promise<ScalerDaemon> {
  if (config.reportTimeoutMs >= config.leaseMs / 2) {
    throw new BerthError('invalid_config', `BERTH_SCALER_REPORT_TIMEOUT_MS (${config.reportTimeoutMs}) must be under half of BERTH_SCALER_LEASE_MS (${config.leaseMs}): a round must end well within the lease.`);
  }
  const redis = connectRedis(redisSettingsFrom(config), { name: 'berth-scaler' });
  await waitForReady(redis, 5000).catch(() => logger.warn('Redis is not reachable yet: the scaler waits for it'));
  const store = new RegistryStore(redis, { keyPrefix: config.keyPrefix, eventsMaxLength: config.eventsMaxLength });
  const apps = new AppStore(redis, { keyPrefix: config.keyPrefix, eventsMaxLength: config.eventsMaxLength });
  const scaler = new Scaler({
    store,
    apps,
    logger,
    intervalMs: config.intervalMs,
    leaseMs: config.leaseMs,
    hotLoad: config.hotLoad,
    idleRatio: config.idleRatio,
    rebalanceLoad: config.rebalanceLoad,
    noticeIntervalMs: config.noticeIntervalMs,
    reportTimeoutMs: config.reportTimeoutMs,
    logLength: config.logLength,
    machineStaleMs: config.machineStaleMs,
    ...hooks,
  }).start();
  logger.info({ holder: scaler.holder, keyPrefix: config.keyPrefix }, 'scaler started: acts while it holds the scaler lease');
  const close = idempotentClose(async () => {
    await scaler.close();
    await closeRedis(redis);
  });
  return { scaler, close };
}
