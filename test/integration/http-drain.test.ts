// trackConnections against a real node:http server and real client sockets: it forgets a
// connection once it closes, however its requests ended, and its drain closes idle ones at once.
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { trackConnections } from '../../common/http-drain.js';
import { waitFor } from '../helpers/wait-for.js';

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

async function listen(s: Server): Promise<number> {
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return (s.address() as AddressInfo).port;
}

describe('trackConnections', () => {
  it('forgets connections whose clients went away before their answers ended', async () => {
    // Answers that start and never end, until the client leaves.
    server = createServer((_req, res) => res.writeHead(200).write('started'));
    const tracker = trackConnections(server);
    const port = await listen(server);
    const clients: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const client = connect(port, '127.0.0.1');
      client.on('error', () => undefined);
      client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise((resolve) => client.once('data', resolve));
      clients.push(client);
    }
    expect(tracker.open()).toBe(3);
    for (const client of clients) client.destroy();
    await waitFor(() => tracker.open() === 0, { what: 'the tracker to forget the closed connections' });
  });

  it('drains at once when every connection is idle', async () => {
    server = createServer((_req, res) => res.end('ok'));
    const tracker = trackConnections(server);
    const port = await listen(server);
    const client = connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    const closed = new Promise((resolve) => client.once('close', resolve));
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((resolve) => client.once('data', resolve));
    await tracker.drain(60_000);
    await closed;
    expect(tracker.open()).toBe(0);
    server = undefined;
  });
});
