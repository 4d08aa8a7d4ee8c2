// parseSimpleHead decides which requests the proxy's fast path serves itself: what it accepts
// must read exactly as node:http reads it, and everything else goes to node:http untouched.
import { describe, expect, it } from 'vitest';
import { parseSimpleHead } from '../../proxy/simple-request.js';

const head = (lines: string[]) => lines.join('\r\n');

describe('parseSimpleHead', () => {
  it('reads a simple GET or HEAD: method, target, raw headers, and headers combined as node:http combines them', () => {
    const req = parseSimpleHead(
      head(['GET /pay/x?y=1 HTTP/1.1', 'Host: shop.example', 'Accept:  text/html \t', 'X-Forwarded-For: 1.2.3.4', 'x-forwarded-for: 5.6.7.8', 'Cookie: a=1', 'Cookie: b=2', 'Host2: y', 'User-Agent: one', 'User-Agent: two']),
      '10.0.0.1',
    );
    expect(req).toEqual({
      method: 'GET',
      url: '/pay/x?y=1',
      httpVersionMajor: 1,
      rawHeaders: ['Host', 'shop.example', 'Accept', 'text/html', 'X-Forwarded-For', '1.2.3.4', 'x-forwarded-for', '5.6.7.8', 'Cookie', 'a=1', 'Cookie', 'b=2', 'Host2', 'y', 'User-Agent', 'one', 'User-Agent', 'two'],
      headers: { host: 'shop.example', accept: 'text/html', 'x-forwarded-for': '1.2.3.4, 5.6.7.8', cookie: 'a=1; b=2', host2: 'y', 'user-agent': 'one' },
      socket: { remoteAddress: '10.0.0.1' },
    });
    expect(parseSimpleHead(head(['HEAD / HTTP/1.1', 'Host: x', 'Connection: keep-alive', 'X-Empty:']), undefined)).toMatchObject({ method: 'HEAD', url: '/', headers: { connection: 'keep-alive', 'x-empty': '' } });
    // A header named like an Object property is only a header.
    expect(parseSimpleHead(head(['GET / HTTP/1.1', 'Host: x', 'Constructor: a', 'constructor: b']), undefined)?.headers.constructor).toBe('a, b');
    expect(parseSimpleHead(head(['GET / HTTP/1.1', 'Host: x', 'Proxy-Connection: keep-alive']), undefined)).toBeDefined();
    // obs-text in a value is allowed, as node:http allows it.
    expect(parseSimpleHead(head(['GET / HTTP/1.1', 'Host: x', 'X-Name: caf\u00e9']), undefined)?.headers['x-name']).toBe('caf\u00e9');
  });

  it('leaves every other request to node:http', () => {
    const notSimple: [string, string[]][] = [
      ['another method', ['POST / HTTP/1.1', 'Host: x']],
      ['a lower-case method', ['get / HTTP/1.1', 'Host: x']],
      ['HTTP/1.0', ['GET / HTTP/1.0', 'Host: x']],
      ['HTTP/2 preface-like', ['GET / HTTP/2.0', 'Host: x']],
      ['absolute-form', ['GET http://x/ HTTP/1.1', 'Host: x']],
      ['asterisk-form', ['GET * HTTP/1.1', 'Host: x']],
      ['two spaces', ['GET  / HTTP/1.1', 'Host: x']],
      ['a control character in the target', ['GET /a\x01b HTTP/1.1', 'Host: x']],
      ['a non-ASCII target', ['GET /caf\u00e9 HTTP/1.1', 'Host: x']],
      ['no Host', ['GET / HTTP/1.1', 'Accept: */*']],
      ['two Hosts', ['GET / HTTP/1.1', 'Host: x', 'host: y']],
      ['a body by length', ['GET / HTTP/1.1', 'Host: x', 'Content-Length: 0']],
      ['a chunked body', ['GET / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked']],
      ['an upgrade', ['GET / HTTP/1.1', 'Host: x', 'Connection: Upgrade', 'Upgrade: websocket']],
      ['100-continue', ['GET / HTTP/1.1', 'Host: x', 'Expect: 100-continue']],
      ['Connection: close', ['GET / HTTP/1.1', 'Host: x', 'Connection: keep-alive, Close']],
      // node:http's parser reads Proxy-Connection as Connection: it would close after this request.
      ['Proxy-Connection: close', ['GET / HTTP/1.1', 'Host: x', 'Proxy-Connection: close']],
      ['a space before the colon', ['GET / HTTP/1.1', 'Host : x']],
      ['obs-fold', ['GET / HTTP/1.1', 'Host: x', 'X-A: 1', ' continued']],
      ['no colon', ['GET / HTTP/1.1', 'Host: x', 'Broken']],
      ['an empty name', ['GET / HTTP/1.1', 'Host: x', ': v']],
      ['a bare LF', ['GET / HTTP/1.1', 'Host: x\nX-Smuggled: 1']],
      ['a NUL in a value', ['GET / HTTP/1.1', 'Host: x', 'X-A: a\0b']],
      ['a CR in a value', ['GET / HTTP/1.1', 'Host: x', 'X-A: a\rb']],
      ['a DEL in a value', ['GET / HTTP/1.1', 'Host: x', 'X-A: a\x7fb']],
      ['a separator in a name', ['GET / HTTP/1.1', 'Host: x', 'X(A): b']],
      ['a request Set-Cookie', ['GET / HTTP/1.1', 'Host: x', 'Set-Cookie: a=1']],
      ['more than 100 headers', ['GET / HTTP/1.1', 'Host: x', ...Array.from({ length: 100 }, (_, i) => `X-${i}: v`)]],
      ['an empty head', ['']],
    ];
    for (const [why, lines] of notSimple) expect(parseSimpleHead(head(lines), undefined), why).toBeUndefined();
    // 100 headers in all is still simple.
    expect(parseSimpleHead(head(['GET / HTTP/1.1', 'Host: x', ...Array.from({ length: 99 }, (_, i) => `X-${i}: v`)]), undefined)).toBeDefined();
  });
});
