import { Router } from 'express';
import { z } from 'zod';
import { BerthError } from '../../common/errors.js';
import { nameSchema } from '../../common/names.js';
import type { AppOperations } from '../app-operations.js';
import { emptyQuery } from '../api/schemas.js';
import { validate } from '../api/validate.js';
import type { GitStore } from './git-store.js';
import { branchNameProblem, deployBranches } from './ref-update.js';

const params = z.strictObject({ name: nameSchema });
const branchBody = z.strictObject({
  branch: z
    .string()
    .superRefine((name, ctx) => {
      const problem = branchNameProblem(name);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    })
    .nullable(),
});

/** An app's git remote as the API describes it. */
export interface GitRemoteInfo {
  name: string;
  /** The remote's path on the registry's URL: `/git/<name>.git`. */
  repository: string;
  /** Set with `berth git:branch`, or null. */
  branch: string | null;
  /** The branches whose pushes deploy: `branch`, else main and master. */
  deployBranches: string[];
}

/** `GET` and `PUT /v1/apps/:name/git`: the app's git remote and its deploy branch. Mounted after authentication and the JSON body parser. */
export function gitApiRoutes(options: { store: GitStore; apps: AppOperations }): Router {
  const r = Router();
  const info = (name: string, branch: string | null): GitRemoteInfo => ({ name, repository: `/git/${name}.git`, branch, deployBranches: deployBranches(branch) });

  r.get('/apps/:name/git', async (req, res) => {
    const { name } = validate(params, req.params, 'path');
    validate(emptyQuery, req.query, 'query');
    await options.apps.details(name); // 404 for an unknown app
    res.json(info(name, await options.store.branch(name)));
  });

  r.put('/apps/:name/git', async (req, res) => {
    const { name } = validate(params, req.params, 'path');
    validate(emptyQuery, req.query, 'query');
    if (req.body === undefined) throw new BerthError('invalid_request', 'Send {"branch": "NAME"} (or null for main and master).');
    const { branch } = validate(branchBody, req.body, 'body');
    await options.store.setBranch(name, branch);
    res.json(info(name, branch));
  });

  return r;
}
