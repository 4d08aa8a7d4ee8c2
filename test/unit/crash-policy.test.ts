// An app that exits is restarted after a backoff that doubles from 250 ms to at most 10 s; the third crash within the window is a crash loop, quoted as the last exit (or the failed health check that caused it); crashes older than the window are forgotten.
import { describe, expect, it } from 'vitest';
import { CrashPolicy, MAX_RESTART_MS, restartBackoffMs } from '../../hoster/crash-policy.js';

const exit = (code: number | null, signal: string | null = null) => ({ code, signal });

describe('restartBackoffMs', () => {
  it('doubles from 250 ms with each crash in the window, up to 10 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(restartBackoffMs)).toEqual([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect(restartBackoffMs(40)).toBe(MAX_RESTART_MS);
  });
});

describe('CrashPolicy', () => {
  it('restarts the first crashes with a growing backoff, and calls the limit-th within the window a crash loop', () => {
    const policy = new CrashPolicy(3, 60_000);
    expect(policy.exited(exit(3), 1000)).toEqual({ kind: 'restart', backoffMs: 250, crashes: 1 });
    expect(policy.exited(exit(3), 2000)).toEqual({ kind: 'restart', backoffMs: 500, crashes: 2 });
    expect(policy.exited(exit(3), 3000)).toEqual({ kind: 'crash_loop', reason: 'crash_loop', crashes: 3, summary: 'exited with code 3, 3 times in 60 s' });
  });

  it('forgets crashes older than the window', () => {
    const policy = new CrashPolicy(3, 60_000);
    policy.exited(exit(1), 0);
    policy.exited(exit(1), 10_000);
    // The first crash is 60 s old now: two in the window, not three.
    expect(policy.exited(exit(1), 60_000)).toMatchObject({ kind: 'restart', crashes: 2, backoffMs: 500 });
    expect(policy.exited(exit(1), 61_000)).toMatchObject({ kind: 'crash_loop', crashes: 3 });
  });

  it('names the signal that killed the app', () => {
    const policy = new CrashPolicy(1, 30_000);
    expect(policy.exited(exit(null, 'SIGSEGV'), 5)).toEqual({ kind: 'crash_loop', reason: 'crash_loop', crashes: 1, summary: 'was killed by SIGSEGV, 1 times in 30 s' });
  });

  it('quotes the failed health check when that stop is the crash that makes the loop, and forgets it after a restart', () => {
    const policy = new CrashPolicy(2, 60_000);
    policy.failedHealthCheck('500 from GET /health, 3 checks in a row');
    expect(policy.exited(exit(null, 'SIGTERM'), 0)).toMatchObject({ kind: 'restart' });
    // The restart cleared it: this crash is the app's own exit.
    expect(policy.exited(exit(7), 1)).toMatchObject({ kind: 'crash_loop', summary: 'exited with code 7, 2 times in 60 s' });

    const again = new CrashPolicy(2, 60_000);
    again.exited(exit(1), 0);
    again.failedHealthCheck('500 from GET /health, 3 checks in a row');
    expect(again.exited(exit(null, 'SIGTERM'), 1)).toMatchObject({ kind: 'crash_loop', summary: 'failed its health check (500 from GET /health, 3 checks in a row), 2 times in 60 s' });
  });

  it('calls a crash loop ended by the kernel\'s kill at the memory limit out_of_memory', () => {
    const policy = new CrashPolicy(2, 60_000);
    policy.exited({ code: null, signal: 'SIGKILL', oom: true }, 0);
    expect(policy.exited({ code: null, signal: 'SIGKILL', oom: true }, 1)).toEqual({ kind: 'crash_loop', reason: 'out_of_memory', crashes: 2, summary: 'went over its memory limit, 2 times in 60 s' });
  });

  it('refuses a limit or window that cannot work', () => {
    expect(() => new CrashPolicy(0, 60_000)).toThrow(RangeError);
    expect(() => new CrashPolicy(3, 0)).toThrow(RangeError);
  });
});
