import { EventEmitter } from 'node:events';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { isFieldValue, isToken } from '../forward/index.js';

/**
 * The answer to a fast-path request, written straight to the client's socket: the part of
 * node:http's ServerResponse the forwarder uses (writeHead, write, end, destroy; 'drain',
 * 'finish' and 'close'), and the same framing rules. A body without Content-Length goes
 * chunked; HEAD, 204 and 304 answers have none; an answer ended in one go gets a
 * Content-Length. The head goes out with the first body bytes, in one write.
 */
export class RawResponse extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  destroyed = false;
  writableEnded = false;
  private head = '';
  private hasLength = false;
  private bodyless: boolean;
  private chunked = false;
  private started = false;

  constructor(
    private readonly socket: Socket,
    isHead: boolean,
    /**
     * The connection's lines of the head, asked for when it is written: `Connection: keep-alive`
     * and its `Keep-Alive: timeout=` line, as node:http sends them, or `Connection: close`.
     */
    private readonly connection: () => string,
  ) {
    super();
    this.bodyless = isHead;
  }

  /** Throws, like node:http, on a status or header that cannot be written (nothing is sent then). */
  writeHead(status: number, headers: readonly string[] | Record<string, string> = []): this {
    if (this.headersSent) throw new Error('the answer has started already');
    if (!Number.isInteger(status) || status < 100 || status > 999) throw new RangeError(`invalid status code ${status}`);
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'unknown'}\r\n`;
    let hasDate = false;
    let hasLength = false;
    const add = (name: string, value: string) => {
      if (!isToken(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
      if (!isFieldValue(value)) throw new TypeError(`invalid character in header ${name}`);
      if (name.length === 14 && name.toLowerCase() === 'content-length') hasLength = true;
      else if (name.length === 4 && name.toLowerCase() === 'date') hasDate = true;
      head += `${name}: ${value}\r\n`;
    };
    if (Array.isArray(headers)) for (let i = 0; i + 1 < headers.length; i += 2) add(headers[i]!, headers[i + 1]!);
    else for (const [name, value] of Object.entries(headers)) add(name, value);
    if (!hasDate) head += `Date: ${httpDate()}\r\n`;
    this.head = head + this.connection();
    this.hasLength = hasLength;
    if (status === 204 || status === 304) this.bodyless = true;
    this.statusCode = status;
    this.headersSent = true;
    return this;
  }

  write(chunk: Buffer): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(this.statusCode);
    if (this.bodyless || chunk.length === 0) return true;
    const socket = this.socket;
    socket.cork();
    if (!this.started) {
      if (!this.hasLength) this.chunked = true;
      socket.write(this.takeHead(), 'latin1');
    }
    let ok: boolean;
    if (this.chunked) {
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
    } else ok = socket.write(chunk);
    socket.uncork();
    return ok;
  }

  /** Ends the answer; 'finish' follows once the last bytes are handed to the system. */
  end(body?: string | Buffer): this {
    if (this.writableEnded || this.destroyed) return this;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const socket = this.socket;
    const finished = (err?: Error | null) => {
      if (err == null) this.emit('finish');
    };
    const withBody = body !== undefined && body.length > 0 && !this.bodyless;
    socket.cork();
    if (!this.started) {
      // All of the body at once: its length is known.
      if (!this.bodyless && !this.hasLength) {
        this.head += `Content-Length: ${withBody ? Buffer.byteLength(body) : 0}\r\n`;
        this.hasLength = true;
      }
      if (withBody) {
        socket.write(this.takeHead(), 'latin1');
        socket.write(body, finished);
      } else socket.write(this.takeHead(), 'latin1', finished);
    } else {
      if (withBody) this.write(typeof body === 'string' ? Buffer.from(body) : body);
      if (this.chunked) socket.write('0\r\n\r\n', 'latin1', finished);
      // Everything was handed to the system already (as node:http checks): no empty write to wait on.
      else if (socket.writableLength === 0) process.nextTick(finished);
      else socket.write('', 'latin1', finished);
    }
    this.writableEnded = true;
    socket.uncork();
    return this;
  }

  /** Breaks the connection: what the client got so far is all it gets. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.socket.destroy();
  }

  /** The head is written whole by writeHead; nothing to take back. */
  removeHeader(): void {}

  /** The client's connection closed (it went away, or this answer broke it). */
  socketClosed(): void {
    if (!this.writableEnded) this.destroyed = true;
    this.emit('close');
  }

  /** The head, with its framing, once: it goes out before the first body bytes. */
  private takeHead(): string {
    this.started = true;
    return `${this.head}${this.chunked ? 'Transfer-Encoding: chunked\r\n' : ''}\r\n`;
  }
}

let dateSecond = -1;
let dateText = '';

/** The Date header's value, made once a second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
