import { BerthError, type ErrorCode } from '../common/errors.js';
import { DETAIL_LINES, type OutputTail } from './output-tail.js';

/**
 * Install and start failures that are the release's fault, by their error's code, and the
 * reason the instance is released with: the machine is recorded in failedOn, so no hoster
 * takes it back at once and the reconciler can tell a bad release from a bad machine.
 */
export const RELEASE_REASONS: Partial<Record<ErrorCode, string>> = {
  bundle_rejected: 'bundle_rejected',
  build_failed: 'build_failed',
  no_start_command: 'no_start_command',
  invalid_env: 'invalid_env',
  // The machine's, strictly, but every machine of a platform is set up alike: counted as a
  // failure here (failedOn), so that a platform without cgroups fails the release at once.
  limits_unavailable: 'limits_unavailable',
};

/** Anything else that stops an install or start (Redis, the disk, the shim) is this machine's. */
export const MACHINE_FAILURE_REASON = 'start_failed';

/** The release reason for an instance that could not be installed or started because of `err`. */
export function startFailureReason(err: unknown): string {
  return (err instanceof BerthError ? RELEASE_REASONS[err.code] : undefined) ?? MACHINE_FAILURE_REASON;
}

/**
 * The reason and detail of a failed install or start: the error's first line, then its own
 * last lines (a build failure's message ends with the build's) or else the output kept.
 */
export function startFailure(err: unknown, output: OutputTail): { reason: string; message: string; detail: string } {
  const message = err instanceof Error ? err.message : String(err);
  const [summary = '', ...rest] = message.split('\n');
  return { reason: startFailureReason(err), message, detail: output.detail(summary, rest.length > 0 ? rest.slice(-DETAIL_LINES) : output.lines) };
}
