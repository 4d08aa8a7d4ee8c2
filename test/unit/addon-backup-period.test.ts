// The periods of scheduled add-on backups (berth addons:backup NAME --every PERIOD): what parses, what is refused, how they are shown.
import { describe, expect, it } from 'vitest';
import { formatBackupPeriod, parseBackupPeriod } from '../../registry/addon-backup-period.js';

describe('backup periods', () => {
  it('reads number-and-unit groups, and off', () => {
    expect(parseBackupPeriod('24h', 60_000)).toBe(86_400_000);
    expect(parseBackupPeriod('1h30m', 60_000)).toBe(5_400_000);
    expect(parseBackupPeriod('7d', 60_000)).toBe(7 * 86_400_000);
    expect(parseBackupPeriod('90s', 60_000)).toBe(90_000);
    expect(parseBackupPeriod('off', 60_000)).toBe(0);
  });

  it('refuses what does not parse, what is shorter than the minimum, and more than a year, saying what to give', () => {
    for (const bad of ['', 'daily', '24', 'h', '1.5h', '-1h', '24H', '1h 30m', '500ms', 'off ']) {
      expect(() => parseBackupPeriod(bad, 60_000), bad).toThrow(/is not a period: give e\.g\. 24h/);
    }
    expect(() => parseBackupPeriod('30s', 60_000)).toThrow(/shorter than this registry allows \(1m, BERTH_ADDON_BACKUP_MIN_EVERY_MS\)/);
    expect(() => parseBackupPeriod('0s', 1000)).toThrow(/shorter/);
    expect(() => parseBackupPeriod('367d', 60_000)).toThrow(/longer than a year/);
  });

  it('shows a period as the shortest text that reads back to it', () => {
    for (const [ms, text] of [[86_400_000, '1d'], [5_400_000, '1h30m'], [90_000, '1m30s'], [2000, '2s'], [90_061_000, '1d1h1m1s']] as const) {
      expect(formatBackupPeriod(ms)).toBe(text);
      expect(parseBackupPeriod(text, 1000)).toBe(ms);
    }
  });
});
