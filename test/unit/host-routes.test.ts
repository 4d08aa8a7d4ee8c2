// Domains as berth accepts and matches them: punycode kept, Unicode converted, IP literals and bad labels refused; the route table matches the host (exact, then one-level wildcard) before the longest prefix, and any other host keeps the shared prefixes.
import { describe, expect, it } from 'vitest';
import { parseDomain } from '../../common/domain-names.js';
import { RouteTable, requestHostName, wildcardOf } from '../../forward/route-table.js';

const domain = (s: string) => {
  const p = parseDomain(s);
  return 'domain' in p ? p.domain : `refused: ${p.problem}`;
};

describe('domain names', () => {
  it('stores lowercase ASCII without a trailing dot', () => {
    expect(domain('Shop.Example.COM.')).toBe('shop.example.com');
    expect(domain('*.Example.com')).toBe('*.example.com');
    expect(domain('xn--bcher-kva.example')).toBe('xn--bcher-kva.example');
  });

  it('converts raw Unicode to punycode', () => {
    expect(domain('Bücher.example')).toBe('xn--bcher-kva.example');
  });

  it('refuses IP literals, single labels, bad labels and misplaced wildcards', () => {
    for (const bad of ['127.0.0.1', '::1', '[::1]', 'localhost', '-shop.example.com', 'shop-.example.com', 'sh_op.example.com', 'a..b.com', 'shop.*.com', '*', '*.com', 'shop.example.123', '', `${'a'.repeat(64)}.com`, `${'a.'.repeat(127)}com`]) {
      expect(domain(bad), bad).toMatch(/^refused: /);
    }
  });
});

describe('request host names', () => {
  it('drop the port and a trailing dot, and lowercase', () => {
    expect(requestHostName('Shop.Example.com.:8443')).toBe('shop.example.com');
    expect(requestHostName('shop.example.com')).toBe('shop.example.com');
    expect(requestHostName('[::1]:443')).toBe('[::1]');
    expect(requestHostName(undefined)).toBe('');
    expect(wildcardOf('a.shop.example.com')).toBe('*.shop.example.com');
    expect(wildcardOf('localhost')).toBeUndefined();
  });
});

describe('the route table with domains', () => {
  const running = (id: string, service: string) => ({ id, service, epoch: 1, machine: 'here', host: '127.0.0.1', port: 4000, pid: 0 });

  function table(): RouteTable {
    const t = new RouteTable('here');
    t.setApp({ name: 'shop', path: '/shop', stripPrefix: true });
    t.setApp({ name: 'api', path: '/api', stripPrefix: false });
    t.setApp({ name: 'blog', path: '/blog', stripPrefix: false });
    t.addInstance(running('s1', 'shop'));
    t.addInstance(running('a1', 'api'));
    t.setDomain({ domain: 'shop.example.com', app: 'shop', path: '/' });
    t.setDomain({ domain: '*.example.com', app: 'blog', path: '/' });
    t.setDomain({ domain: 'example.com', app: 'api', path: '/v2' });
    return t;
  }

  it('routes an exact domain before the wildcard, case- and port-blind', () => {
    const t = table();
    expect(t.lookup('/cart', 'SHOP.example.com.:443')?.app).toBe('shop');
    expect(t.lookup('/cart', 'news.example.com')?.app).toBe('blog');
    // One level only: a name two levels under the wildcard is not covered, nor the bare name.
    expect(t.lookup('/shop', 'a.news.example.com')?.app).toBe('shop');
    expect(t.lookup('/v2/items', 'example.com')?.app).toBe('api');
  });

  it("routes only within a domain's own prefixes", () => {
    const t = table();
    expect(t.lookup('/shop', 'example.com')).toBeUndefined();
    expect(t.lookup('/v2x', 'example.com')).toBeUndefined();
  });

  it('keeps the shared prefixes for any other host, and without one', () => {
    const t = table();
    expect(t.lookup('/shop/x', 'paas.example.org')?.app).toBe('shop');
    expect(t.lookup('/api', '127.0.0.1:8443')?.app).toBe('api');
    expect(t.lookup('/api')?.app).toBe('api');
  });

  it("follows the app's instances and settings, strips the domain's own prefix", () => {
    const t = table();
    const route = t.lookup('/', 'shop.example.com')!;
    expect(route.prefix).toBe('/');
    expect(route.stripPrefix).toBe(true);
    expect(route.local.map((u) => u.id)).toEqual(['s1']);
    t.addInstance(running('s2', 'shop'));
    expect(t.lookup('/', 'shop.example.com')!.local.map((u) => u.id)).toEqual(['s1', 's2']);
  });

  it('forgets a removed domain, and the domains of a removed app', () => {
    const t = table();
    t.removeDomain('shop.example.com');
    expect(t.lookup('/cart', 'shop.example.com')?.app).toBe('blog');
    t.removeApp('blog');
    expect(t.lookup('/cart', 'shop.example.com')).toBeUndefined();
    expect([...t.domains()].map((d) => d.domain)).toEqual(['example.com']);
  });

  it('keeps domains through a full resync', () => {
    const t = table();
    t.replaceAll([{ name: 'shop', path: '/shop', stripPrefix: false }], [running('s1', 'shop')], [{ domain: 'shop.example.com', app: 'shop', path: '/' }]);
    expect(t.lookup('/', 'shop.example.com')?.local.map((u) => u.id)).toEqual(['s1']);
    expect(t.lookup('/', 'news.example.com')).toBeUndefined();
  });
});
