export { RegistryStore, DEFAULT_LEASE_MS, type ClaimInput, type RegisterInput, type HolderInput, type Machine, type MachineFacts, type ReapedInstance } from './registry-store.js';
export { registryKeys, DEFAULT_KEY_PREFIX, type RegistryKeys } from './keys.js';
export { readEvents, currentEventId, compareEventIds, type RegistryEvent, type EventBatch } from './event-stream.js';
export { type Instance, type InstanceState, type Attributes } from './instance.js';
export { startRegistry, REGISTRY_OPTIONS, DEFAULT_REGISTRY_PORT, type RegistryConfig, type RegistryDaemon } from './registry-daemon.js';
