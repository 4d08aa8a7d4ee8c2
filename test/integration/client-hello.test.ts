// The balancer's reading of a ClientHello, on hellos real clients send (Node's tls.connect and openssl s_client, limited to RSA or ECDSA signatures, TLS 1.2 or 1.3): the SNI name and whether an ECDSA certificate would do, also when the hello is split over several records or TCP reads, and nothing read from what is not a hello.
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClientHello } from '../../balancer/client-hello.js';
import { waitFor } from '../helpers/wait-for.js';

let server: Server;
let port: number;
/** The first bytes of each connection, once the client has been quiet for a moment (it waits for an answer). */
const received: Buffer[] = [];

beforeAll(async () => {
  server = createServer((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (parseClientHello(Buffer.concat(chunks)) !== 'more') {
        received.push(Buffer.concat(chunks));
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => server.close());

/** The hello Node's TLS client sends with these options. */
async function nodeHello(options: { servername?: string; sigalgs?: string; maxVersion?: 'TLSv1.2' | 'TLSv1.3'; ciphers?: string }): Promise<Buffer> {
  const before = received.length;
  const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
  s.on('error', () => undefined);
  await waitFor(() => received.length > before, { what: 'the hello' });
  s.destroy();
  return received[before]!;
}

/** The hello openssl s_client sends with these arguments. */
async function opensslHello(args: string[]): Promise<Buffer> {
  const before = received.length;
  const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await waitFor(() => received.length > before, { what: 'the hello of openssl s_client' });
  child.kill();
  await exited;
  return received[before]!;
}

describe('parseClientHello', () => {
  it("reads Node's hellos: the name, and whether ECDSA would do", async () => {
    expect(parseClientHello(await nodeHello({ servername: 'shop.example.com' }))).toEqual({ servername: 'shop.example.com', acceptsEcdsa: true });
    expect(parseClientHello(await nodeHello({ servername: 'shop.example.com', sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256' }))).toEqual({ servername: 'shop.example.com', acceptsEcdsa: false });
    expect(parseClientHello(await nodeHello({ servername: 'shop.example.com', sigalgs: 'ecdsa_secp256r1_sha256' }))).toEqual({ servername: 'shop.example.com', acceptsEcdsa: true });
    // TLS 1.2 with ECDHE-RSA suites only: an ECDSA certificate cannot serve it, whatever its signatures.
    expect(parseClientHello(await nodeHello({ servername: 'a.example.com', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }))).toEqual({ servername: 'a.example.com', acceptsEcdsa: false });
    expect(parseClientHello(await nodeHello({ servername: 'a.example.com', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256' }))).toEqual({ servername: 'a.example.com', acceptsEcdsa: true });
    // No SNI (Node sends none for an IP address).
    expect(parseClientHello(await nodeHello({}))).toEqual({ servername: undefined, acceptsEcdsa: true });
  });

  it("reads openssl s_client's hellos", async () => {
    expect(parseClientHello(await opensslHello(['-servername', 'shop.example.com', '-sigalgs', 'RSA-PSS+SHA256:RSA+SHA256']))).toEqual({ servername: 'shop.example.com', acceptsEcdsa: false });
    expect(parseClientHello(await opensslHello(['-servername', 'shop.example.com', '-tls1_2', '-sigalgs', 'ECDSA+SHA256']))).toEqual({ servername: 'shop.example.com', acceptsEcdsa: true });
  });

  it('reads a hello split over several records and over several reads, and waits for the rest of one cut short', async () => {
    const hello = await nodeHello({ servername: 'split.example.com', sigalgs: 'rsa_pss_rsae_sha256' });
    // The same handshake message in two records of 40 bytes and the rest.
    const body = hello.subarray(5, 5 + hello.readUInt16BE(3));
    const record = (part: Buffer) => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, part.length >> 8, part.length & 0xff]), part]);
    const split = Buffer.concat([record(body.subarray(0, 40)), record(body.subarray(40))]);
    expect(parseClientHello(split)).toEqual({ servername: 'split.example.com', acceptsEcdsa: false });
    for (const cut of [1, 5, 30, 45, split.length - 1]) expect(parseClientHello(split.subarray(0, cut)), `cut at ${cut}`).toBe('more');
  });

  it('reads nothing from what is not a hello', () => {
    expect(parseClientHello(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'))).toBeUndefined();
    // A handshake record that is not a ClientHello (type 2, ServerHello).
    expect(parseClientHello(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]))).toBeUndefined();
    // A ClientHello whose inner lengths run past its end.
    expect(parseClientHello(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x06, 0x01, 0x00, 0x00, 0x02, 0x03, 0x03]))).toBeUndefined();
  });
});
