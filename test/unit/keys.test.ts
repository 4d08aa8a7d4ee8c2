// Every registry key carries the same Redis Cluster hash tag, so multi-key scripts stay in one slot.
import { describe, expect, it } from 'vitest';
import { KEY_NAME_SLOT, registryKeys } from '../../registry/store/keys.js';

function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return key.slice(open + 1, close);
}

describe('registryKeys', () => {
  it('puts every key under one hash tag', () => {
    const k = registryKeys('prod');
    const all = [
      k.instance('abc'),
      k.serviceInstances('pay'),
      k.serviceUnclaimed('pay'),
      k.services,
      k.unclaimed,
      k.leases,
      k.epoch,
      k.sequence,
      k.claimRequest('r1'),
      k.machine('m1'),
      k.machines,
      k.events,
      k.presence,
      k.presenceGrace,
      k.reaperState,
      k.app('pay'),
      k.apps,
      k.appPaths,
      k.appReleases('pay'),
      k.appReleaseSequence('pay'),
      k.appLogs('pay'),
      k.bundle('d'),
      k.bundleData('d'),
      k.bundles,
      k.upload('u'),
      k.reconcilerLease,
      k.gitPushLock('pay'),
    ];
    expect(new Set(all.map(hashTag))).toEqual(new Set(['prod']));
    expect(new Set(all).size).toBe(all.length);
    expect(all.every((key) => key.startsWith(k.prefix))).toBe(true);
  });

  it('refuses a prefix that could break the hash tag', () => {
    expect(() => registryKeys('a}b')).toThrow();
    expect(() => registryKeys('')).toThrow();
  });

  it('gives scripts key formats that make the same keys as its functions (scripts/include/keyFormat.lua fills the slot)', () => {
    const k = registryKeys('prod');
    const fill = (format: string, name: string) => format.replace(KEY_NAME_SLOT, name);
    expect(k.prefix.includes(KEY_NAME_SLOT)).toBe(false);
    expect(fill(k.formats.instance, 'abc123')).toBe(k.instance('abc123'));
    expect(fill(k.formats.serviceInstances, 'shop')).toBe(k.serviceInstances('shop'));
    expect(fill(k.formats.serviceUnclaimed, 'shop')).toBe(k.serviceUnclaimed('shop'));
    expect(k.instance('abc123')).toBe('{prod}:instance:abc123');
  });
});
