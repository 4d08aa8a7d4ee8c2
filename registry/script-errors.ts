import { BerthError, type ErrorCode } from '../common/errors.js';

/**
 * The one place where the negative integers that Lua scripts return for domain failures
 * become typed errors. `-1` means "not found", whose precise meaning depends on the script.
 */
export const SCRIPT_FAILURE = {
  notFound: -1,
  staleEpoch: -2,
  exists: -3,
  invalidState: -4,
} as const;

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
