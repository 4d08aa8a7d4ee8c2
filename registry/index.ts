// The registry as a service (its daemon and the reconciler); its data layer is registry/store/index.ts.
export { startRegistry, REGISTRY_OPTIONS, DEFAULT_REGISTRY_PORT, type RegistryConfig, type RegistryDaemon } from './registry-daemon.js';
export { AppService } from './app-service.js';
export { Reconciler } from './reconciler.js';
