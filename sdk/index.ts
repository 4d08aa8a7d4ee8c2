export { BerthClient, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, type BerthClientOptions } from './berth-client.js';
export { BerthApiError } from './api-error.js';
export type {
  AppDetails,
  AuditEntry,
  AutoscalePolicy,
  Attributes,
  ClaimRequest,
  GitRemote,
  HealthCheck,
  Instance,
  InstanceState,
  LogLine,
  Machine,
  NewToken,
  PublishRequest,
  RegistryEvent,
  Release,
  ReleaseStatus,
  ScaleDecision,
  TokenRecord,
  UpdateRequest,
} from './types.js';
