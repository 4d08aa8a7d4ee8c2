// Forwarded headers, one builder for the proxy and the balancer: hop-by-hop ones dropped, X-Forwarded-* believed only from a trusted client, Host replaced only when told, prefix and hop mark added when asked.
import { describe, expect, it } from 'vitest';
import { requestHeaders, upgradeHeaderLines } from '../../forward/index.js';

function head(raw: string[]) {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    headers[name] = headers[name] === undefined ? raw[i + 1]! : `${headers[name]}, ${raw[i + 1]}`;
  }
  return { rawHeaders: raw, headers };
}

const pairs = (flat: string[]) => Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i], flat[2 * i + 1]]);

describe('requestHeaders', () => {
  const client = head(['Host', 'shop.example', 'Connection', 'keep-alive, X-Secret', 'X-Secret', 's', 'Keep-Alive', '5', 'Expect', '100-continue', 'X-Forwarded-For', '1.2.3.4', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'front.example', 'X-Berth-Hop', '1', 'Accept', '*/*']);

  it('from a trusted client (a balancer): its claims are extended', () => {
    expect(pairs(requestHeaders(client, { client: '10.0.0.9', trusted: true, proto: 'http', prefix: '/pay' }))).toEqual([
      ['Host', 'shop.example'],
      ['Accept', '*/*'],
      ['x-forwarded-for', '1.2.3.4, 10.0.0.9'],
      ['x-forwarded-proto', 'https'],
      ['x-forwarded-host', 'front.example'],
      ['x-forwarded-prefix', '/pay'],
    ]);
  });

  it('from anyone else: its claims are replaced; a hop is marked', () => {
    expect(pairs(requestHeaders(client, { client: '203.0.113.5', trusted: false, proto: 'http', hop: true }))).toEqual([
      ['Host', 'shop.example'],
      ['Accept', '*/*'],
      ['x-forwarded-for', '203.0.113.5'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'shop.example'],
      ['x-berth-hop', '1'],
    ]);
  });

  it('at the edge over HTTP/2: pseudo-headers dropped, Host from :authority', () => {
    const h2 = head([':method', 'GET', ':authority', 'shop.example:8443', 'accept', '*/*']);
    expect(pairs(requestHeaders(h2, { client: '::1', trusted: false, proto: 'https', host: 'shop.example:8443' }))).toEqual([
      ['accept', '*/*'],
      ['host', 'shop.example:8443'],
      ['x-forwarded-for', '::1'],
      ['x-forwarded-proto', 'https'],
      ['x-forwarded-host', 'shop.example:8443'],
    ]);
  });
});

describe('upgradeHeaderLines', () => {
  it("keeps Connection and Upgrade, replaces a client's X-Forwarded-* and drops its hop mark", () => {
    const ws = head(['Host', 'chat.example', 'Connection', 'Upgrade', 'Upgrade', 'websocket', 'X-Forwarded-For', '6.6.6.6', 'X-Berth-Hop', '1']);
    expect(upgradeHeaderLines(ws, { client: '127.0.0.1', trusted: false, proto: 'https' })).toEqual([
      'Host: chat.example',
      'Connection: Upgrade',
      'Upgrade: websocket',
      'x-forwarded-for: 127.0.0.1',
      'x-forwarded-proto: https',
      'x-forwarded-host: chat.example',
    ]);
  });
});
