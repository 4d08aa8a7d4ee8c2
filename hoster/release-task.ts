import type { OutputTail } from './output-tail.js';
import type { ShimExit } from './shim-client.js';

/** A release command's time limit when its release names none (the registry's default too). */
export const DEFAULT_RELEASE_TIMEOUT_MS = 10 * 60_000;

/**
 * A running release command's time limit: at the limit it calls `stop` (SIGTERM, then SIGKILL
 * after the grace), and the exit that follows is reported as a timeout.
 */
export class ReleaseTaskClock {
  timedOut = false;
  private readonly timer: NodeJS.Timeout;

  constructor(limitMs: number, stop: () => void) {
    this.timer = setTimeout(() => {
      this.timedOut = true;
      stop();
    }, limitMs);
    // Never what keeps a stopping hoster alive: the runner clears it when it ends.
    this.timer.unref();
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

/** What a release command's exit means: exit 0 succeeded; anything else failed, with the last lines it printed. */
export function releaseTaskOutcome(
  exit: Pick<ShimExit, 'code' | 'signal'>,
  timedOut: boolean,
  limitMs: number,
  output: OutputTail,
): { status: 'succeeded' | 'failed'; summary: string; detail: string } {
  if (!timedOut && exit.code === 0) return { status: 'succeeded', summary: 'exit 0', detail: 'exit 0' };
  const summary = timedOut
    ? `timed out after ${Math.round(limitMs / 1000)} s`
    : exit.signal !== null
      ? `killed by ${exit.signal}`
      : `exit ${exit.code ?? '?'}`;
  return { status: 'failed', summary, detail: output.detail(summary) };
}
