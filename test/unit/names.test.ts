// Names and path prefixes: what every part accepts, and the reason it gives for what it refuses.
import { describe, expect, it } from 'vitest';
import { attributesSchema, keyPrefixSchema, machineNameSchema, nameSchema, pathPrefixProblem } from '../../common/names.js';
import { registryKeys } from '../../registry/store/keys.js';

describe('path prefixes', () => {
  it.each(['/', '/payments', '/pay/v2', '/a.b/c-d_e~f', `/${'a'.repeat(200)}`])('accepts %s', (path) => {
    expect(pathPrefixProblem(path)).toBeUndefined();
  });

  it.each([
    ['payments', 'must start with "/"'],
    ['', 'must start with "/"'],
    ['/payments/', 'must not end with "/"'],
    ['//x', 'empty segments'],
    ['/a//b', 'empty segments'],
    ['/a/../b', '".."'],
    ['/a/./b', '"."'],
    ['/..', '".."'],
    ['/a%2Fb', 'segments may contain only'],
    ['/a%2e%2e', 'segments may contain only'],
    ['/a b', 'segments may contain only'],
    ['/a\u0000b', 'segments may contain only'],
    ['/a\nb', 'segments may contain only'],
    ['/caf\u00e9', 'segments may contain only'],
    ['/a?b', 'segments may contain only'],
    ['/a#b', 'segments may contain only'],
    ['/a\\b', 'segments may contain only'],
    ['/_berth', 'reserved'],
    ['/_berth/load', 'reserved'],
    [`/${'a'.repeat(300)}`, 'at most'],
  ])('refuses %j (%s)', (path, reason) => {
    expect(pathPrefixProblem(path)).toContain(reason);
  });

  it('does not reserve prefixes that merely start with the same letters', () => {
    expect(pathPrefixProblem('/_berthday')).toBeUndefined();
  });
});

describe('names', () => {
  it.each(['a', 'payments', 'pay-2', `a${'b'.repeat(62)}`])('accepts %s', (name) => {
    expect(nameSchema.safeParse(name).success).toBe(true);
  });
  it.each(['', 'Pay', '2pay', '-pay', 'pay_x', 'pay.x', `a${'b'.repeat(63)}`, 'pay/x', 'pay%2f'])('refuses %j', (name) => {
    expect(nameSchema.safeParse(name).success).toBe(false);
  });
});

describe('attributes', () => {
  it('accepts flat strings, numbers and booleans', () => {
    expect(attributesSchema.safeParse({ minMemoryMb: 256, zone: 'a', ssd: true }).success).toBe(true);
  });
  it.each([
    [{ nested: { a: 1 } }],
    [{ list: [1] }],
    [{ 'bad key': 1 }],
    [{ x: 'y'.repeat(257) }],
    [{ x: Number.POSITIVE_INFINITY }],
    [Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i]))],
  ])('refuses %j', (attrs) => {
    expect(attributesSchema.safeParse(attrs).success).toBe(false);
  });
});

describe('machine names and key prefixes', () => {
  it('takes host names as machine names, refuses what is not one', () => {
    for (const name of ['m1', 'ip-10-0-0-1.ec2.internal', 'Laptop']) expect(machineNameSchema.safeParse(name).success).toBe(true);
    for (const name of ['', '-m1', 'a b', 'm/1', 'a'.repeat(64)]) expect(machineNameSchema.safeParse(name).success).toBe(false);
  });

  it('accepts as a key prefix exactly what registryKeys accepts (one rule for the daemons and the store)', () => {
    for (const prefix of ['berth', 'prod.eu-1', 'a_b', '', 'a}b', '{x', 'a*b', 'a'.repeat(65)]) {
      let stored = true;
      try {
        registryKeys(prefix);
      } catch {
        stored = false;
      }
      expect(keyPrefixSchema.safeParse(prefix).success, prefix).toBe(stored);
    }
    expect(keyPrefixSchema.safeParse('a*b').success).toBe(false);
  });
});

