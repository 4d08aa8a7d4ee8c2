// The registry's surface for the rest of berth: its daemon, the app operations and the reconciler; its data layer is registry/store/index.ts.
export { startRegistry, REGISTRY_OPTIONS, DEFAULT_REGISTRY_PORT, type RegistryConfig, type RegistryDaemon } from './registry-daemon.js';
export { AppOperations } from './app-operations.js';
export { Reconciler } from './reconciler.js';
