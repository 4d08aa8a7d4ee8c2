export { BerthClient, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, type BerthClientOptions } from './berth-client.js';
export { BerthApiError } from './api-error.js';
export type {
  AppDetails,
  AutoscalePolicy,
  Attributes,
  ClaimRequest,
  HealthCheck,
  Instance,
  InstanceState,
  LogLine,
  Machine,
  PublishRequest,
  RegistryEvent,
  Release,
  ReleaseStatus,
  ScaleDecision,
  UpdateRequest,
} from './types.js';
