// What the forwarders dispatch to is made once per instance or backend, and stays a valid
// origin for IPv6 addresses (in brackets, once) as for IPv4 ones and names.
import { describe, expect, it } from 'vitest';
import { BackendPool } from '../../balancer/backend-pool.js';
import { proxyOrigin, RouteTable } from '../../forward/index.js';

describe('upstream origins', () => {
  it("an instance's origin brackets an IPv6 host", () => {
    const table = new RouteTable('m1');
    table.setApp({ name: 'pay', path: '/pay', stripPrefix: false });
    table.addInstance({ id: 'a', service: 'pay', epoch: 1, machine: 'm1', host: '::1', port: 4001, pid: 0 });
    table.addInstance({ id: 'b', service: 'pay', epoch: 1, machine: 'm1', host: '127.0.0.1', port: 4002, pid: 0 });
    expect(table.lookup('/pay')!.local.map((u) => u.origin)).toEqual(['http://[::1]:4001', 'http://127.0.0.1:4002']);
  });

  it("a backend's origin is its URL's, without a doubled bracket or a path", () => {
    const pool = new BackendPool();
    pool.setSource('static', [
      { url: 'http://[::1]:8080', machine: null },
      { url: 'http://proxy.example:80/', machine: null },
    ]);
    expect(pool.all.map((b) => b.origin)).toEqual(['http://[::1]:8080', 'http://proxy.example']);
    pool.close();
  });

  it("another machine's proxy, from its heartbeat, is an origin, or nothing when it does not parse", () => {
    expect(proxyOrigin('http://10.0.0.2:8080/')).toBe('http://10.0.0.2:8080');
    expect(proxyOrigin('http://[::1]:8080')).toBe('http://[::1]:8080');
    expect(proxyOrigin('https://proxy.example/x')).toBe('https://proxy.example');
    for (const bad of [undefined, 42, '', 'not a url', 'ftp://x', 'file:///etc']) expect(proxyOrigin(bad), String(bad)).toBeUndefined();
  });
});
