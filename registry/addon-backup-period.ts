import { BerthError } from '../common/errors.js';

/** The shortest period of scheduled backups a registry allows by default (BERTH_ADDON_BACKUP_MIN_EVERY_MS). @default 60000 */
export const DEFAULT_ADDON_BACKUP_MIN_EVERY_MS = 60_000;
/** The longest: a year. */
const MAX_EVERY_MS = 366 * 24 * 3_600_000;

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PERIOD = /^(?:[0-9]{1,6}[smhd])+$/;

/**
 * The period of `berth addons:backup NAME --every 24h`, in ms: one or more number-and-unit
 * groups (`90s`, `30m`, `1h30m`, `24h`, `7d`), or 0 for `off`. Refused (invalid_request) when
 * it does not parse or is shorter than `minMs`.
 */
export function parseBackupPeriod(text: string, minMs: number): number {
  if (text === 'off') return 0;
  if (!PERIOD.test(text)) {
    throw new BerthError('invalid_request', `Invalid body: every: ${JSON.stringify(text.slice(0, 40))} is not a period: give e.g. 24h, 30m, 1h30m or 7d, or off.`);
  }
  let ms = 0;
  for (const [, n, unit] of text.matchAll(/([0-9]+)([smhd])/g)) ms += Number(n) * UNIT_MS[unit!]!;
  if (ms < minMs) throw new BerthError('invalid_request', `Invalid body: every: ${text} is shorter than this registry allows (${formatBackupPeriod(minMs)}, BERTH_ADDON_BACKUP_MIN_EVERY_MS): give a longer period.`);
  if (ms > MAX_EVERY_MS) throw new BerthError('invalid_request', `Invalid body: every: ${text} is longer than a year: give a shorter period.`);
  return ms;
}

/** A period as the shortest text that parses back to it (`24h`, `1h30m`, `90s` is `1m30s`). */
export function formatBackupPeriod(ms: number): string {
  let rest = Math.round(ms / 1000) * 1000;
  let out = '';
  for (const unit of ['d', 'h', 'm', 's']) {
    const n = Math.floor(rest / UNIT_MS[unit]!);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * UNIT_MS[unit]!;
  }
  return out === '' ? '0s' : out;
}
