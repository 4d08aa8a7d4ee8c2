import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/**
 * A request with a head and no body, as a server that parses heads itself hands it over (the
 * proxy's fast path): what forwarding reads of node:http's IncomingMessage, nothing more.
 */
export interface HeadOnlyRequest {
  method: 'GET' | 'HEAD';
  url: string;
  httpVersionMajor: 1;
  /** As sent: [name, value, …]. */
  rawHeaders: string[];
  /** By lower-case name, duplicates combined as node:http combines them. */
  headers: IncomingHttpHeaders;
  socket: { remoteAddress?: string | undefined };
}

/** A client's request as forwarding reads it: node:http's (HTTP/1.1 or HTTP/2), or a head-only one. */
export type ClientRequest = IncomingMessage | HeadOnlyRequest;

/** node:http's requests, HTTP/2's included (whose class is another), are streams that may carry a body; a head-only one is not. */
export function isStreamed(req: ClientRequest): req is IncomingMessage {
  return typeof (req as { pipe?: unknown }).pipe === 'function';
}

/**
 * What forwarding answers on: node:http's ServerResponse (HTTP/1.1 and HTTP/2), or the
 * proxy fast path's RawResponse, which does the same with less.
 */
export interface ClientResponse {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  readonly statusCode: number;
  writeHead(status: number, headers?: string[] | Record<string, string>): this;
  write(chunk: Buffer): boolean;
  end(body?: string | Buffer): this;
  destroy(): void;
  removeHeader(name: string): void;
  once(event: 'close' | 'drain' | 'finish', listener: () => void): this;
  off(event: 'close' | 'drain', listener: () => void): this;
}
