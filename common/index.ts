export { BerthError, ERROR_CATALOGUE, isBerthError, type ErrorCode } from './errors.js';
export {
  option,
  resolveOptions,
  portSchema,
  positiveMsSchema,
  positiveIntSchema,
  listSchema,
  logLevelSchema,
  type OptionSpec,
  type OptionTable,
  type ResolvedOptions,
} from './config.js';
export { createLogger, silentLogger, type Logger } from './logger.js';
export {
  connectRedis,
  closeRedis,
  waitForReady,
  isRedisUnavailable,
  redisSettingsFrom,
  REDIS_OPTIONS,
  DEFAULT_REDIS_URL,
  type RedisClient,
  type RedisSettings,
} from './redis-connection.js';
export { closeOnSignals, idempotentClose, DEFAULT_GRACE_MS, type Closable } from './daemon-lifecycle.js';
export { fileLoad, systemLoad, type LoadSource, type MachineLoad } from './load-source.js';
export { parseProcfile, checkProcess, PROCESS_TYPE_PATTERN, WEB_PROCESS, RELEASE_PROCESS, MAX_PROCESS_TYPES, type Procfile } from './procfile.js';
export { startWorkerPrimary, joinWorkerPrimary, WORKER_SLOT_ENV, type WorkerPrimaryOptions, type ReportKind } from './daemon-workers.js';
