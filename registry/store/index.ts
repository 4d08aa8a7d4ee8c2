// The registry's data layer: what the daemons (hoster, proxy, balancer, scaler) and the registry's own layers on top (API, app operations, reconciler, reaper) use of Redis.
export {
  RegistryStore,
  DEFAULT_LEASE_MS,
  DEFAULT_EVENTS_MAX_LENGTH,
  DEFAULT_REAP_BATCH,
  DEFAULT_SILENT_FRACTION,
  SILENT_AFTER_MS,
  type ClaimInput,
  type RegisterInput,
  type HolderInput,
  type Machine,
  type MachineFacts,
  type ReapedInstance,
  type ReapHold,
  type ReaperSettings,
} from './registry-store.js';
export { registryKeys, DEFAULT_KEY_PREFIX, type RegistryKeys } from './keys.js';
export { readEvents, currentEventId, compareEventIds, type RegistryEvent, type EventBatch } from './event-stream.js';
export { type Instance, type InstanceState, type Attributes } from './instance.js';
export { AppStore, type ReleaseInput, type CreateAppInput } from './app-store.js';
export { DomainStore, type DomainRecord } from './domain-store.js';
export { CertificateStore, type CertificateRecord, type ServableCertificate } from './certificate-store.js';
export { newSealingKeyText, readSealingKey, type SealingKey } from './sealed-key.js';
export { BundleStore, DEFAULT_BUNDLE_LIMIT_BYTES } from './bundle-store.js';
export { TokenStore, ADMIN_TOKEN_NAME, type TokenGrant } from './token-store.js';
export { appendLogs, followLogs, recentLogs, type LogLine, type LogStream } from './app-logs.js';
export {
  appDetails,
  wantedOf,
  policyOf,
  DEFAULT_AUTOSCALE,
  DEFAULT_HEALTH_CHECK,
  type App,
  type AppDetails,
  type AutoscalePolicy,
  type Release,
  type ReleaseStatus,
  type HealthCheck,
} from './app.js';
/** Runs a Redis call, turning "Redis is away or too slow" into the typed redis_unavailable (for stores beside these, e.g. the dashboard's). */
export { redisCall } from './lua-scripts.js';
/** Scripts a part beside the store runs itself (the git remotes' branch and push lease). */
export { holdLeadership, setGitBranch, takeSamplerTurn } from './script-declarations.js';
export { SCRIPT_FAILURE } from './script-errors.js';
export { RunStore, runOutputOf, DEFAULT_RUN_TIMEOUT_MS, MAX_RUN_TIMEOUT_MS, type NewRun, type RunHolder, type RunEnd, type RunInput, type RunStreamEntry } from './run-store.js';
export { runKeys, type RunKeys } from './run-keys.js';
export { CronStore, type StoredCron } from './cron-store.js';
export { LeaderLoop, type LeaderLoopOptions } from './leader-loop.js';
export { AddonStore, ADDON_KINDS, postgresIdentifier, type AddonKind, type AddonServerState, type AddonUsage, type StoredAddon, type StoredBackupSchedule, type NewAddon } from './addon-store.js';
export { addonKeys, type AddonKeys } from './addon-keys.js';
