// Stream ids order by time, then sequence, as numbers (not as strings).
import { describe, expect, it } from 'vitest';
import { compareEventIds } from '../../registry/store/event-stream.js';

describe('compareEventIds', () => {
  it.each([
    ['1-0', '2-0', -1],
    ['2-0', '1-0', 1],
    ['5-5', '5-5', 0],
    ['9-0', '10-0', -1],
    ['10-2', '10-10', -1],
    ['1795315917603-21', '1795315917603-3', 1],
    ['0-0', '1-0', -1],
  ])('%s vs %s → %i', (a, b, expected) => {
    expect(compareEventIds(a, b)).toBe(expected);
  });
});
