// A failed install or start is released with the reason its error's code names (bundle_rejected, build_failed, no_start_command, invalid_env), any other failure as start_failed (the machine's), with a detail of the error's first line and the last lines of output; a check that never passed is not_listening (TCP) or unhealthy (HTTP).
import { describe, expect, it } from 'vitest';
import { BerthError } from '../../common/errors.js';
import { BuildFailedError } from '../../hoster/app-build.js';
import { BundleRejectedError } from '../../hoster/bundle-unpacker.js';
import { DETAIL_LINES, OutputTail } from '../../hoster/output-tail.js';
import { startFailure, startFailureReason } from '../../hoster/start-failure.js';
import { NoStartCommandError } from '../../hoster/start-command.js';
import { neverHealthy } from '../../hoster/health-check.js';
import { DEFAULT_HEALTH_CHECK } from '../../registry/store/index.js';

describe('startFailureReason', () => {
  it('looks the reason up by the error code', () => {
    expect(startFailureReason(new BundleRejectedError('it is compressed twice'))).toBe('bundle_rejected');
    expect(startFailureReason(new BuildFailedError('npm ci failed', '/x/build.log'))).toBe('build_failed');
    expect(startFailureReason(new NoStartCommandError('add a start script'))).toBe('no_start_command');
    expect(startFailureReason(new BerthError('invalid_env', 'NUL'))).toBe('invalid_env');
  });

  it('calls anything else the machine\'s failure', () => {
    expect(startFailureReason(new BerthError('redis_unavailable'))).toBe('start_failed');
    expect(startFailureReason(new Error('ENOSPC'))).toBe('start_failed');
    expect(startFailureReason('a string')).toBe('start_failed');
  });
});

describe('OutputTail', () => {
  it('keeps the last lines, each cut to 500 characters', () => {
    const tail = new OutputTail();
    for (let i = 0; i < DETAIL_LINES + 5; i++) tail.remember(`line ${i}`);
    tail.remember('x'.repeat(600));
    expect(tail.lines).toHaveLength(DETAIL_LINES);
    expect(tail.lines[0]).toBe('line 6');
    expect(tail.lines.at(-1)).toBe(`${'x'.repeat(500)}…`);
    expect(tail.detail('it failed')).toBe(['it failed', ...tail.lines].join('\n'));
    expect(new OutputTail().detail('it failed')).toBe('it failed');
  });
});

describe('startFailure', () => {
  it('quotes a build failure\'s own last lines rather than the output kept', () => {
    const output = new OutputTail();
    output.remember('printed by the app');
    const failure = startFailure(new BuildFailedError('npm ci failed: fix it', '/x/build.log', 'npm ERR! one\nnpm ERR! two'), output);
    expect(failure.reason).toBe('build_failed');
    expect(failure.detail).toBe('npm ci failed: fix it\nLast lines of /x/build.log:\nnpm ERR! one\nnpm ERR! two');
  });

  it('quotes the output kept after a one-line error', () => {
    const output = new OutputTail();
    output.remember('Error: cannot find module');
    expect(startFailure(new NoStartCommandError('add a start script'), output)).toEqual({
      reason: 'no_start_command',
      message: 'add a start script',
      detail: 'add a start script\nError: cannot find module',
    });
  });
});

describe('neverHealthy', () => {
  it('says nothing listens on $PORT when the check is a TCP connect, else what the path never answered', () => {
    const check = { ...DEFAULT_HEALTH_CHECK, attempts: 5 };
    expect(neverHealthy(20_001, { ...check, path: undefined })).toEqual({ reason: 'not_listening', summary: 'nothing listened on $PORT (20001) after 5 attempts: listen on process.env.PORT' });
    expect(neverHealthy(20_001, { ...check, path: '/health', status: 200 })).toEqual({ reason: 'unhealthy', summary: 'GET /health never answered 200 after 5 attempts' });
  });
});
