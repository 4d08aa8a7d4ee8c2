export { BerthClient, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, type BerthClientOptions } from './berth-client.js';
export { BerthApiError } from './api-error.js';
export type {
  AppDetails,
  AuditEntry,
  AutoscalePolicy,
  Attributes,
  ClaimRequest,
  HealthCheck,
  Instance,
  InstanceState,
  LoadSample,
  LogLine,
  Machine,
  MachineLoadHistory,
  NewToken,
  PublishRequest,
  RegistryEvent,
  Release,
  ReleaseStatus,
  ScaleDecision,
  TokenRecord,
  UpdateRequest,
} from './types.js';
