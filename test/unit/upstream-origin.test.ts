// What the forwarders dispatch to is made once per instance or backend, and stays a valid
// origin for IPv6 addresses (in brackets, once) as for IPv4 ones and names.
import { describe, expect, it } from 'vitest';
import { BackendPool } from '../../balancer/backend-pool.js';
import { RouteTable } from '../../proxy/route-table.js';

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
});
