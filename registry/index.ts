// The registry as a service (its daemon, the reconciler and the leader loop); its data layer is registry/store/index.ts.
export { startRegistry, REGISTRY_OPTIONS, DEFAULT_REGISTRY_PORT, type RegistryConfig, type RegistryDaemon } from './registry-daemon.js';
export { AppService } from './app-service.js';
export { Reconciler } from './reconciler.js';
export { LeaderLoop } from './leader-loop.js';
