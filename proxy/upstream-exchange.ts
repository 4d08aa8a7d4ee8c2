import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { responseHeaders } from './http-headers.js';
import { sendProxyError } from './proxy-errors.js';

/**
 * Wires one forwarded request to its client, the same way for the proxy and the balancer:
 * the body flows only once the upstream connection is up (a refused connection leaves it
 * unread, so another upstream can still get the whole request); timeouts are named for
 * what was missed (`BERTH_CONNECT_TIMEOUT` before connecting, `BERTH_UPSTREAM_TIMEOUT`
 * before the answer starts); the answer is relayed minus hop-by-hop headers; an upstream
 * that dies mid-answer breaks the client's response rather than leaving it waiting; and a
 * client that goes away ends the upstream request. Errors stay with the caller.
 */
export function wireExchange(
  req: IncomingMessage,
  res: ServerResponse,
  proxyReq: ClientRequest,
  o: { upstreamTimeoutMs: number; onResponse: () => void; finish: () => void },
): void {
  let sent = false;
  proxyReq.once('socket', (socket: Socket) => {
    const onConnected = () => {
      sent = true;
      proxyReq.setTimeout(o.upstreamTimeoutMs);
      // A retry of a request without a body: the first attempt read it to its end.
      if (req.readableEnded) proxyReq.end();
      else req.pipe(proxyReq);
    };
    if (socket.connecting) socket.once('connect', onConnected);
    else onConnected();
  });
  proxyReq.once('timeout', () =>
    proxyReq.destroy(Object.assign(new Error('upstream timeout'), { code: sent ? 'BERTH_UPSTREAM_TIMEOUT' : 'BERTH_CONNECT_TIMEOUT' })),
  );
  let answered = false;
  proxyReq.once('response', (proxyRes: IncomingMessage) => {
    answered = true;
    // The timeout is for the answer to start; a long or quiet body (SSE, slow readers) is fine.
    proxyReq.setTimeout(0);
    o.onResponse();
    if (res.headersSent || res.destroyed) {
      // The client was answered already (the balancer's HTTP/2 request timeout): nothing to relay.
      proxyReq.destroy();
      o.finish();
      return;
    }
    proxyRes.once('end', o.finish);
    proxyRes.once('close', () => {
      o.finish();
      // Cut short by the app: break the client's answer too. Not a 502 sent in its place.
      if (!proxyRes.complete && !res.writableEnded) res.destroy();
    });
    proxyRes.on('error', () => undefined);
    const headers = responseHeaders(proxyRes.rawHeaders);
    try {
      res.writeHead(proxyRes.statusCode ?? 502, headers);
    } catch (err) {
      // An answer HTTP/1.1 carried but this client's protocol cannot (HTTP/2 allows only
      // statuses 200-599 and is stricter about headers): a 502 for this request, never a crash.
      proxyReq.destroy();
      // The failed writeHead may have kept some of them (a Content-Length would cut the 502's body).
      for (let i = 0; i < headers.length; i += 2) res.removeHeader(headers[i]!);
      sendProxyError(res, req.headers.accept, 'upstream_failed', `The app's answer cannot be passed on to this client (${(err as Error).message}): fix its status or headers.`);
      return;
    }
    proxyRes.pipe(res);
  });
  res.once('close', () => {
    if (!res.writableFinished || !answered) proxyReq.destroy();
  });
}
