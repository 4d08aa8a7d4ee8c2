/**
 * Waits until `condition` returns a truthy value (which it returns), polling with a growing
 * interval (or every `intervalMs`, to time something), or fails after `deadlineMs` with `what` in the message. Tests wait on conditions,
 * never on bare sleeps.
 */
export async function waitFor<T>(condition: () => T | Promise<T>, options: { deadlineMs?: number; what?: string; intervalMs?: number } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.deadlineMs ?? 10_000);
  let interval = options.intervalMs ?? 5;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${options.deadlineMs ?? 10_000} ms waiting for ${options.what ?? 'condition'}${why}`);
    }
    await new Promise((r) => setTimeout(r, interval));
    interval = options.intervalMs ?? Math.min(interval * 2, 100);
  }
}
