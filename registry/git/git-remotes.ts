import type { Router } from 'express';
import type { Logger } from 'pino';
import type { RedisClient } from '../../common/redis-connection.js';
import type { AppOperations } from '../app-operations.js';
import type { BundleStore } from '../store/index.js';
import type { RegistryKeys } from '../store/index.js';
import type { TokenGrant, TokenStore } from '../store/index.js';
import { gitApiRoutes } from './git-api-routes.js';
import { GitRepos } from './git-repos.js';
import { gitRoutes } from './git-routes.js';
import { GitStore } from './git-store.js';
import { PushDeployer } from './push-deploy.js';

export interface GitRemotesOptions {
  /** Where the bare repositories are cached. */
  dir: string;
  /** The node that runs the hook, and the PATH git is found on. */
  nodePath: string;
  searchPath: string;
  redis: RedisClient;
  keys: RegistryKeys;
  apps: AppOperations;
  bundles: BundleStore;
  tokens: TokenStore;
  checkToken: (token: string) => Promise<TokenGrant | undefined>;
  rolloutTimeoutMs: number;
  logger: Logger;
}

/** The git remotes of a registry: `/git/<app>.git` (mounted at /git) and `/v1/apps/:name/git` (mounted in /v1). */
export function createGitRemotes(options: GitRemotesOptions): { remote: Router; api: Router } {
  const logger = options.logger.child({ part: 'git' });
  const repos = new GitRepos(options.dir, { nodePath: options.nodePath, searchPath: options.searchPath });
  void repos.problem().then((problem) => {
    if (problem !== undefined) logger.warn(`${problem}; every other call works without it`);
  });
  const store = new GitStore(options.redis, options.keys);
  const deployer = new PushDeployer({ repos, store, apps: options.apps, bundles: options.bundles, redis: options.redis, keys: options.keys, rolloutTimeoutMs: options.rolloutTimeoutMs, logger });
  return {
    remote: gitRoutes({ repos, deployer, checkToken: options.checkToken, tokens: options.tokens, bundleLimitBytes: options.bundles.limitBytes, logger }),
    api: gitApiRoutes({ store, apps: options.apps }),
  };
}
