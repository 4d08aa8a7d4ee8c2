// A minimal RFC 6455 client over TLS, enough to check that a real WebSocket server (the ws
// package in examples/ws-echo) echoes through the balancer and the proxy: the handshake with
// its accept key checked, masked text frames out, unmasked frames in.
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:https';
import type { Socket } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface WebSocketTarget {
  host: string;
  port: number;
  path: string;
  ca: string;
  servername: string;
}

export interface OpenWebSocket {
  send(text: string): void;
  /** The next text message, or an error when none comes within `deadlineMs`. */
  receive(deadlineMs: number): Promise<string>;
  close(): void;
}

export function openWebSocket(target: WebSocketTarget): Promise<OpenWebSocket> {
  const key = randomBytes(16).toString('base64');
  const expected = createHash('sha1').update(key + GUID).digest('base64');
  return new Promise((resolve, reject) => {
    const req = request({
      host: target.host,
      port: target.port,
      path: target.path,
      ca: target.ca,
      servername: target.servername,
      agent: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': key, 'sec-websocket-version': '13' },
    });
    req.on('response', (res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
    req.on('error', reject);
    req.on('upgrade', (res, socket, head) => {
      if (res.headers['sec-websocket-accept'] !== expected) {
        socket.destroy();
        reject(new Error(`bad Sec-WebSocket-Accept: ${String(res.headers['sec-websocket-accept'])}`));
        return;
      }
      resolve(frames(socket, head));
    });
    req.end();
  });
}

function frames(socket: Socket, head: Buffer): OpenWebSocket {
  let buffered = head;
  const messages: string[] = [];
  const waiting: Array<(message: string) => void> = [];
  const deliver = (message: string) => {
    const next = waiting.shift();
    if (next) next(message);
    else messages.push(message);
  };
  const parse = () => {
    for (;;) {
      if (buffered.length < 2) return;
      const opcode = buffered[0]! & 0x0f;
      let length = buffered[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffered.length < 4) return;
        length = buffered.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buffered.length < 10) return;
        length = Number(buffered.readBigUInt64BE(2));
        offset = 10;
      }
      if (buffered.length < offset + length) return;
      const payload = buffered.subarray(offset, offset + length);
      buffered = buffered.subarray(offset + length);
      if (opcode === 0x1) deliver(payload.toString('utf8'));
    }
  };
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    parse();
  });
  socket.on('error', () => undefined);
  parse();
  return {
    send(text) {
      const payload = Buffer.from(text, 'utf8');
      if (payload.length > 125) throw new Error('this test client sends short frames only');
      const mask = randomBytes(4);
      const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
      socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
    },
    receive(deadlineMs) {
      const ready = messages.shift();
      if (ready !== undefined) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no WebSocket message within ${deadlineMs} ms`)), deadlineMs);
        waiting.push((message) => {
          clearTimeout(timer);
          resolve(message);
        });
      });
    },
    close() {
      socket.destroy();
    },
  };
}
