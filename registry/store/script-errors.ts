import { BerthError, type ErrorCode } from '../../common/errors.js';

/**
 * The one place where the negative integers that Lua scripts return for domain failures
 * become typed errors. `-1` means "not found", whose precise meaning depends on the script.
 */
export const SCRIPT_FAILURE = {
  notFound: -1,
  staleEpoch: -2,
  exists: -3,
  invalidState: -4,
  /** Returned as `{-5, owner, the prefix it owns}`, so that the error can name the owner. */
  pathTaken: -5,
} as const;

/** The `{-5, owner, ownedPrefix}` reply of a script that found `path` owned by another app, as an error; else undefined. */
export function pathTakenFailure(out: unknown, path: string): BerthError | undefined {
  if (!Array.isArray(out) || out[0] !== SCRIPT_FAILURE.pathTaken) return undefined;
  const [, owner, owned] = out as [number, string, string];
  const where = owned === path ? `The path ${path} belongs to` : `The path ${path} overlaps ${owned}, which belongs to`;
  return new BerthError('path_taken', `${where} the app "${owner}": choose a path outside it (a path of an app is only its own, and so is everything under it).`);
}

export function scriptFailure(code: number, notFound: ErrorCode): BerthError {
  switch (code) {
    case SCRIPT_FAILURE.notFound:
      return new BerthError(notFound);
    case SCRIPT_FAILURE.staleEpoch:
      return new BerthError('stale_epoch');
    case SCRIPT_FAILURE.exists:
      return new BerthError('instance_exists');
    case SCRIPT_FAILURE.invalidState:
      return new BerthError('invalid_state');
    default:
      return new BerthError('internal_error', `A registry script returned an unknown code ${code}.`);
  }
}
