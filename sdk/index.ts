export { BerthClient, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, type BerthClientOptions } from './berth-client.js';
export { BerthApiError } from './api-error.js';
export type { Attributes, ClaimRequest, Instance, InstanceState, Machine, RegistryEvent } from './types.js';
