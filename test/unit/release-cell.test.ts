// berth apps's RELEASE column: the current release, or during a deploy what still serves beside it.
import { describe, expect, it } from 'vitest';
import { releaseCell } from '../../cli/commands/apps.js';

const app = (release: number, running: number, runningByRelease: Record<string, number>, status: 'active' | 'deploying' | 'failed' = 'active') => ({
  release,
  instances: 2,
  running,
  runningByRelease,
  current: { status } as never,
});

describe('releaseCell', () => {
  it('is the release alone when only it runs', () => {
    expect(releaseCell(app(3, 2, { 3: 2 }))).toBe('v3');
    expect(releaseCell(app(3, 0, {}))).toBe('v3');
  });

  it('shows the release still serving next to the one deploying', () => {
    expect(releaseCell(app(4, 0, { 3: 2 }, 'deploying'))).toBe('v3 2/2 serving, v4 deploying 0/2');
    expect(releaseCell(app(4, 1, { 3: 1, 4: 1 }, 'deploying'))).toBe('v3 1/2 serving, v4 deploying 1/2');
    expect(releaseCell(app(4, 0, { 3: 2 }, 'failed'))).toBe('v3 2/2 serving, v4 failed 0/2');
  });
});
