export { createGitRemotes, type GitRemotesOptions } from './git-remotes.js';
export { type GitRemoteInfo } from './git-api-routes.js';
export { DEFAULT_PUSH_LEASE_MS } from './git-store.js';
export { DEFAULT_PUSH_WAIT_MS } from './push-deploy.js';
