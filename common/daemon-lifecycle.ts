import type { Logger } from 'pino';

/** Anything long-lived: `close()` stops taking work, cleans up in order, and may be called twice. */
export interface Closable {
  close(): Promise<void>;
}

/** Wraps a close function so that every call after the first returns the first call's promise. */
export function idempotentClose(fn: () => Promise<void>): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => (closing ??= fn());
}

export const DEFAULT_GRACE_MS = 10_000;

export interface SignalHandlingOptions {
  logger: Logger;
  /** How long the first signal's drain may take before the process exits anyway. @default 10000 */
  graceMs?: number;
  /** Injected for tests; defaults to the real process. */
  process?: NodeJS.Process;
}

/**
 * Entry points call this once: the first SIGTERM or SIGINT drains the daemon within the
 * grace period and exits 0 (1 when the drain failed or ran out of time); a second signal
 * exits at once.
 */
export function closeOnSignals(daemon: Closable, options: SignalHandlingOptions): void {
  const proc = options.process ?? process;
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const log = options.logger;
  let received: string | undefined;

  const onSignal = (signal: NodeJS.Signals) => {
    if (received !== undefined) {
      log.warn({ signal }, `second signal (${signal}) while draining: exiting now`);
      proc.exit(1);
      return;
    }
    received = signal;
    log.info({ signal, graceMs }, `${signal} received: draining (send it again to exit at once)`);
    const timer = setTimeout(() => {
      log.error({ graceMs }, 'drain did not finish within the grace period: exiting');
      proc.exit(1);
    }, graceMs);
    timer.unref();
    daemon.close().then(
      () => {
        clearTimeout(timer);
        log.info('drained: exiting');
        proc.exit(0);
      },
      (err: unknown) => {
        clearTimeout(timer);
        log.error({ err }, 'drain failed: exiting');
        proc.exit(1);
      },
    );
  };
  proc.on('SIGTERM', onSignal);
  proc.on('SIGINT', onSignal);
}

/**
 * For daemons run by a supervisor (`berth up`): when the supervisor dies, even by SIGKILL,
 * the daemon is re-parented; it notices within a second and stops as if sent SIGTERM, so
 * that nothing of the platform is left running on its own.
 */
export function stopWhenOrphaned(options: { logger: Logger; process?: NodeJS.Process; intervalMs?: number }): void {
  const proc = options.process ?? process;
  const parent = proc.ppid;
  const timer = setInterval(() => {
    if (proc.ppid !== parent) {
      clearInterval(timer);
      options.logger.warn({ parent }, 'the supervising process is gone: stopping');
      proc.kill(proc.pid, 'SIGTERM');
    }
  }, options.intervalMs ?? 1000);
  timer.unref();
}
