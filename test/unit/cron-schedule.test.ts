// Cron schedules as croner reads them, in UTC: five fields or six with seconds, the ticks in a window (each once, none before its start), and bad expressions refused with croner's words as bad_cron.
import { describe, expect, it } from 'vitest';
import { CronSchedule } from '../../registry/cron/index.js';
import { BerthError } from '../../common/errors.js';

const at = (iso: string) => Date.parse(iso);

describe('CronSchedule', () => {
  it('gives the ticks in (from, to], oldest first, in UTC', () => {
    const every5 = new CronSchedule('*/5 * * * *');
    expect(every5.ticksBetween(at('2026-01-01T10:00:00Z'), at('2026-01-01T10:16:00Z')).map((t) => new Date(t).toISOString())).toEqual([
      '2026-01-01T10:05:00.000Z',
      '2026-01-01T10:10:00.000Z',
      '2026-01-01T10:15:00.000Z',
    ]);
    expect(new CronSchedule('0 3 * * *').next(at('2026-01-01T10:00:00Z'))).toBe(at('2026-01-02T03:00:00Z'));
  });

  it('reads seconds as a sixth field, first', () => {
    const everySecond = new CronSchedule('* * * * * *');
    expect(everySecond.ticksBetween(at('2026-01-01T10:00:00.500Z'), at('2026-01-01T10:00:03.000Z'))).toEqual([
      at('2026-01-01T10:00:01Z'),
      at('2026-01-01T10:00:02Z'),
      at('2026-01-01T10:00:03Z'),
    ]);
  });

  it('caps the ticks of one window', () => {
    expect(new CronSchedule('* * * * * *').ticksBetween(0, 3_600_000)).toHaveLength(20);
  });

  it.each([
    ['61 * * * *', 'Invalid value for minute: 61'],
    ['every tuesday', 'exactly five, six, or seven space separated parts are required'],
    ['* * * * * * * *', 'exactly five, six, or seven'],
  ])('refuses %j as bad_cron with the parser words', (expression, words) => {
    let caught: unknown;
    try {
      new CronSchedule(expression);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(BerthError);
    expect((caught as BerthError).code).toBe('bad_cron');
    expect((caught as BerthError).status).toBe(400);
    expect((caught as BerthError).message).toContain(words);
  });
});
