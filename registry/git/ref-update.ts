import { NAME_PATTERN } from '../../common/names.js';

/** The object id git uses for "no such ref" (a create, or a delete's new value). */
export const ZERO_OID = '0'.repeat(40);

/** One ref a push asks to change: `<old-oid> <new-oid> <ref>`, as receive-pack hands it on. */
export interface RefUpdate {
  oldOid: string;
  newOid: string;
  ref: string;
}

const OID = /^[0-9a-f]{40}$/;

/** Parses one command line of a push; throws on anything else (receive-pack never sends it). */
export function parseRefUpdate(line: string): RefUpdate {
  const [oldOid = '', newOid = '', ref = '', ...rest] = line.trim().split(' ');
  if (!OID.test(oldOid) || !OID.test(newOid) || !ref.startsWith('refs/') || rest.length > 0) {
    throw new Error(`not a ref update: ${JSON.stringify(line)}`);
  }
  return { oldOid, newOid, ref };
}

/** The branches that deploy when none is set: whichever of the two a repository calls its first. */
export const DEFAULT_DEPLOY_BRANCHES = ['main', 'master'] as const;

/** The branches a push may deploy: the one set with `berth git:branch`, else main and master. */
export function deployBranches(setting: string | null | undefined): string[] {
  return setting ? [setting] : [...DEFAULT_DEPLOY_BRANCHES];
}

/**
 * Why `name` cannot be a deploy branch, or undefined when it can: git's own rules for a
 * branch name (git check-ref-format --branch), kept to what a URL and a shell carry safely.
 */
export function branchNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > 200) return 'must be 1 to 200 characters';
  if (!/^[A-Za-z0-9._/-]+$/.test(name)) return 'may hold only letters, digits and ".", "_", "/", "-"';
  if (name.startsWith('-') || name.startsWith('/') || name.endsWith('/') || name.endsWith('.') || name.endsWith('.lock')) {
    return 'must not start with "-" or "/", nor end with "/", "." or ".lock"';
  }
  if (name.includes('..') || name.includes('//') || name.split('/').some((part) => part.startsWith('.'))) {
    return 'must not hold "..", "//" or a part starting with "."';
  }
  if (name === 'HEAD') return 'must not be HEAD';
  return undefined;
}

/** What becomes of one ref of a push. */
export type RefVerdict = { deploy: true; branch: string } | { deploy: false; reason: string };

/**
 * Whether `update` deploys `app`: only a deploy branch that is created or moved does. The
 * reason of a refusal is what git prints after `! [remote rejected] <ref> (…)`: one line that
 * says what to do.
 */
export function refVerdict(update: RefUpdate, app: string, branches: readonly string[]): RefVerdict {
  const wanted = branches.length === 1 ? branches[0]! : `${branches.slice(0, -1).join(', ')} or ${branches.at(-1)}`;
  if (!update.ref.startsWith('refs/heads/')) {
    return { deploy: false, reason: `berth deploys branches only (${update.ref} is not one): push ${wanted}` };
  }
  const branch = update.ref.slice('refs/heads/'.length);
  if (!branches.includes(branch)) {
    return {
      deploy: false,
      reason: `${app} deploys from ${wanted} only: push it there (git push berth ${branch}:${branches[0]}), or make it the deploy branch (berth git:branch ${app} ${branch})`,
    };
  }
  if (update.newOid === ZERO_OID) {
    return { deploy: false, reason: `deleting ${branch} would not stop ${app}: delete the app with berth delete ${app}` };
  }
  return { deploy: true, branch };
}

/** `/git/<app>.git` names an app as the API does: the repository's name without `.git`. */
export function repositoryApp(segment: string): string | undefined {
  const match = /^(.+)\.git$/.exec(segment);
  return match !== null && NAME_PATTERN.test(match[1]!) ? match[1] : undefined;
}
