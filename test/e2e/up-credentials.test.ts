// Two platforms on one machine do not cross: berth up leaves the CLI's credentials alone when
// they point at another berth that is running, and says how to proceed.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon } from '../helpers/daemon-process.js';
import { getPort } from '../helpers/get-port.js';

let dir: string;
let other: Server;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'berth-credentials-'));
  // Another berth's API, as far as a health check can tell.
  other = createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end('{"status":"ok"}'));
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
});

afterAll(() => {
  other.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('berth up and the CLI credentials', () => {
  it("refuses to take over credentials of another running berth, naming it and the ways out, and leaves them as they were", async () => {
    const home = join(dir, 'home');
    mkdirSync(home, { mode: 0o700 });
    const theirs = `${JSON.stringify({ url: `http://127.0.0.1:${(other.address() as AddressInfo).port}`, token: 'theirs-0123456789' }, null, 2)}\n`;
    writeFileSync(join(home, 'credentials.json'), theirs, { mode: 0o600 });
    const up = startDaemon(
      ['up', '--data-dir', join(dir, 'data'), '--api-port', String(await getPort()), '--proxy-port', String(await getPort()), '--https-port', String(await getPort()), '--redis-port', String(await getPort())],
      { BERTH_HOME: home },
    );
    const exit = await Promise.race([up.exited, new Promise((r) => setTimeout(r, 30_000, 'still running'))]);
    if (exit === 'still running') up.kill('SIGKILL');
    expect(exit, up.output()).toBe(1);
    expect(up.output()).toContain(`point at another berth that is running (http://127.0.0.1:${(other.address() as AddressInfo).port})`);
    expect(up.output()).toContain('berth up --force');
    expect(up.output()).not.toContain('started (pid');
    expect(readFileSync(join(home, 'credentials.json'), 'utf8')).toBe(theirs);
  });
});
