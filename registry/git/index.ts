export { gitRoutes, type GitRoutesOptions } from './git-routes.js';
export { gitApiRoutes, type GitRemoteInfo } from './git-api-routes.js';
export { GitRepos } from './git-repos.js';
export { GitStore, DEFAULT_PUSH_LEASE_MS } from './git-store.js';
export { PushDeployer, DEFAULT_PUSH_WAIT_MS } from './push-deploy.js';
