export { BerthClient, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, type BerthClientOptions } from './berth-client.js';
export { BerthApiError } from './api-error.js';
export type {
  AppDetails,
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
  UpdateRequest,
} from './types.js';
