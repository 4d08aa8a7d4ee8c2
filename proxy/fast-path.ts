import type { Socket } from 'node:net';
import { DRAINING_HEADER } from '../forward/index.js';
import { RawResponse } from './raw-response.js';
import { parseSimpleHead, type SimpleRequest } from './simple-request.js';

export interface FastPathOptions {
  /** Serves one simple request (the forwarder). */
  handle: (req: SimpleRequest, res: RawResponse) => void;
  /** Whether a path is the proxy's own (/_berth/*, /metrics): node:http answers those. */
  isOwn: (url: string) => boolean;
  /** Gives the connection, with the bytes read and not yet served, to node:http for good. */
  handOver: (socket: Socket) => void;
  /** Requests in flight per connection, for a graceful close. */
  started: (socket: Socket) => void;
  finished: (socket: Socket) => void;
  /** A drain has begun: each new answer says `Connection: close` (and DRAINING_HEADER), and its connection closes after it. */
  draining: () => boolean;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxHeaderSize: number;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const REQUEST_TIMEOUT = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
/** A draining proxy's last answer on a connection, which tells a balancer to send it nothing new. */
const CLOSE = `Connection: close\r\n${DRAINING_HEADER}: 1\r\n`;

/**
 * The proxy's fast path, one per client connection. It serves the common request (a simple
 * GET or HEAD, see parseSimpleHead) without node:http's request and response objects, which
 * cost more than berth's own routing: side by side with the same forwarder on node:http
 * (scripts/bench/fast-path), 1.26-1.28 times the throughput at 0.77-0.80 of the CPU per
 * request. The first request that is not simple, and a head that has not arrived whole,
 * sends the connection to node:http with every byte not yet served: from then on node:http
 * parses, limits and answers it as before (bodies, upgrades, 400, 408, 431). Requests are
 * served one at a time, in order.
 */
export function serveFastPath(socket: Socket, o: FastPathOptions): void {
  new FastConnection(socket, o);
}

class FastConnection {
  private buffered: Buffer | undefined;
  private current: RawResponse | undefined;
  private served = 0;
  /** An answer here said Connection: close: nothing more is read or served on this connection. */
  private last = false;
  /** Asked by each answer as its head is written: a drain begun by then makes it the last. */
  private readonly connection = () => {
    if (!this.o.draining()) return this.keepAlive;
    this.last = true;
    return CLOSE;
  };
  /** An inactivity timer runs: the headers timeout, or keep-alive between requests. */
  private timed = true;
  private readonly keepAlive: string;

  private readonly onData = (chunk: Buffer) => {
    if (this.last) return;
    this.buffered = this.buffered === undefined ? chunk : Buffer.concat([this.buffered, chunk]);
    if (this.current === undefined) this.next();
    // Pipelined requests wait their turn; stop reading once a whole head's worth waits.
    else if (this.buffered.length > this.o.maxHeaderSize) this.socket.pause();
  };
  private readonly onFinish = () => {
    this.current = undefined;
    this.o.finished(this.socket);
    if (this.socket.destroyed) return;
    if (this.last) {
      this.socket.end();
      return;
    }
    if (this.socket.isPaused()) this.socket.resume();
    this.next();
  };
  private readonly onTimeout = () => {
    if (this.current !== undefined) return;
    // A connection that never sent a whole request gets node:http's 408; an idle kept-alive one just closes.
    if (this.served === 0 && this.socket.writable) this.socket.end(REQUEST_TIMEOUT);
    else this.socket.destroy();
  };
  private readonly onDrain = () => this.current?.emit('drain');
  private readonly onClose = () => this.current?.socketClosed();
  private readonly onError = () => undefined; // 'close' follows

  constructor(
    private readonly socket: Socket,
    private readonly o: FastPathOptions,
  ) {
    this.keepAlive = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(o.keepAliveTimeoutMs / 1000)}\r\n`;
    socket.setTimeout(o.headersTimeoutMs);
    socket.on('data', this.onData);
    socket.on('timeout', this.onTimeout);
    socket.on('drain', this.onDrain);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
  }

  /** Serves the next buffered request, or waits for one, or hands the connection over. */
  private next(): void {
    const buffered = this.buffered;
    if (buffered === undefined) {
      if (this.served > 0 && !this.timed) {
        this.socket.setTimeout(this.o.keepAliveTimeoutMs);
        this.timed = true;
      }
      return;
    }
    const end = buffered.indexOf(HEAD_END);
    if (end < 0 || end + 4 > this.o.maxHeaderSize) return this.handOver();
    const req = parseSimpleHead(buffered.toString('latin1', 0, end), this.socket.remoteAddress);
    if (req === undefined || this.o.isOwn(req.url)) return this.handOver();
    this.buffered = end + 4 === buffered.length ? undefined : buffered.subarray(end + 4);
    this.served++;
    if (this.timed) {
      this.socket.setTimeout(0);
      this.timed = false;
    }
    const res = new RawResponse(this.socket, req.method === 'HEAD', this.connection);
    this.current = res;
    this.o.started(this.socket);
    res.once('finish', this.onFinish);
    this.o.handle(req, res);
  }

  private handOver(): void {
    const socket = this.socket;
    socket.off('data', this.onData);
    socket.off('timeout', this.onTimeout);
    socket.off('drain', this.onDrain);
    socket.off('close', this.onClose);
    socket.off('error', this.onError);
    socket.setTimeout(0);
    // Read already, served not: node:http reads these bytes first (the stream keeps flowing,
    // and its 'data' listener is added before the next tick delivers them).
    if (this.buffered !== undefined) socket.unshift(this.buffered);
    this.buffered = undefined;
    if (socket.isPaused()) socket.resume();
    this.o.handOver(socket);
  }
}
