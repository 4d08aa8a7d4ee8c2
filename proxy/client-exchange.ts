import type { IncomingMessage } from 'node:http';
import type { SimpleRequest } from './simple-request.js';

/** A client's request as the forwarder reads it: node:http's, or a simple one of the fast path (which has no body). */
export type ClientRequest = IncomingMessage | SimpleRequest;

/**
 * What the forwarders answer on: node:http's ServerResponse (HTTP/1.1 and HTTP/2), or the
 * fast path's RawResponse, which does the same with less.
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
