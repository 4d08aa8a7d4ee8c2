// What the haproxy engine sizes from the machine (its threads, the buffer from the head limit, the check interval from the servers, maxconn from the descriptors) and how it backs off a failing change.
import { describe, expect, it } from 'vitest';
import { bufferSizeFor, maxConnectionsFor, serverHealth, type HaproxySettings } from '../../proxy/haproxy-engine/haproxy-config.js';
import { haproxyThreads } from '../../proxy/haproxy-engine/haproxy-engine.js';
import { retryDelayMs } from '../../proxy/haproxy-engine/route-applier.js';

const interOf = (servers: number): number => Number(/inter (\d+)ms/.exec(serverHealth(servers))![1]);

describe('haproxy config sizes', () => {
  it('holds a head of the limit in the buffer and little more (an L7 retry copies the whole buffer each request)', () => {
    expect(bufferSizeFor(16 * 1024)).toBe(18 * 1024);
    expect(bufferSizeFor(64 * 1024)).toBe(66 * 1024);
    // haproxy's default is the least.
    expect(bufferSizeFor(1024)).toBe(16 * 1024);
  });

  it('checks servers that are up every 2 s, less often past 200 of them (100 checks a second at most); those down every 500 ms', () => {
    expect(interOf(1)).toBe(2000);
    expect(interOf(200)).toBe(2000);
    expect(interOf(1000)).toBe(10_000);
    expect(interOf(10_000)).toBe(100_000);
    for (const n of [1, 500, 2500, 10_000, 40_000]) expect(n / (interOf(n) / 1000), String(n)).toBeLessThanOrEqual(100);
    expect(serverHealth(10_000)).toMatch(/ downinter 500ms rise 1 fall 1 observe layer4 error-limit 1 on-error mark-down$/);
  });

  it('keeps maxconn within the descriptors left beside the servers (two a connection)', () => {
    const s = { maxConnections: 10_000, fdLimit: 20_000 } as HaproxySettings;
    expect(maxConnectionsFor(s, 0)).toBe(9500);
    expect(maxConnectionsFor(s, 10_000)).toBe(4500);
    expect(maxConnectionsFor({ ...s, fdLimit: undefined }, 10_000)).toBe(10_000);
    expect(maxConnectionsFor({ ...s, fdLimit: 1000 }, 10_000)).toBe(100);
  });

  it('tries a failed route change again after 200 ms, twice as long after each failure more, 10 s at most', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 100].map(retryDelayMs)).toEqual([200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
  });

  it('runs a thread per CPU by default', () => {
    expect([1, 2, 4, 16].map(haproxyThreads)).toEqual([1, 2, 4, 16]);
  });
});
