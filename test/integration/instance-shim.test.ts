// An app that ends before its hoster has connected to the shim: the hoster still hears, after the hello, the app's lines and its exit code, and the shim then goes.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { connectShim, ShimLink, type ShimExit } from '../../hoster/shim-client.js';
import type { ShimSpec } from '../../hoster/shim-protocol.js';
import { alive } from '../helpers/process-table.js';
import { waitFor } from '../helpers/wait-for.js';

const SHIM = fileURLToPath(new URL('../../dist/hoster/instance-shim.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'berth-shim-'));

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('instance shim', () => {
  it('an app that exits at once is reported to the first hoster that connects, lines and exit code included', async () => {
    const spec: ShimSpec = {
      instance: 'i1',
      service: 'shop',
      epoch: 1,
      release: 1,
      port: 0,
      socketPath: join(work, 'shim.sock'),
      logFile: join(work, 'app.log'),
      cwd: work,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      command: { shell: 'echo starting; echo DATABASE_URL is not set >&2; exit 3' },
      leaseValidForMs: 60_000,
      stopGraceMs: 1000,
    };
    const specFile = join(work, 'spec.json');
    writeFileSync(specFile, JSON.stringify(spec), { mode: 0o600 });
    spawn(process.execPath, [SHIM, specFile], { detached: true, stdio: 'ignore' }).unref();
    // The app is gone before any hoster asks, as a bad NODE_OPTIONS or a missing file makes it.
    await waitFor(() => {
      try {
        return readFileSync(spec.logFile, 'utf8').includes('app exited (code 3');
      } catch {
        return false;
      }
    }, { what: 'the app to exit' });

    const { socket, hello } = await connectShim(spec.socketPath, { waitMs: 2000, helloMs: 2000 });
    expect(hello).toMatchObject({ t: 'hello', instance: 'i1', epoch: 1 });
    const lines: string[] = [];
    const exited = new Promise<{ exit: ShimExit; lost: boolean }>((resolve) => {
      new ShimLink(socket, { onLog: (stream, line) => lines.push(`${stream} ${line}`), onExit: (exit, lost) => resolve({ exit, lost }) });
    });
    const { exit, lost } = await exited;
    expect(lost).toBe(false);
    expect(exit).toMatchObject({ code: 3, signal: null, why: 'exited' });
    expect(lines).toEqual(['out starting', 'err DATABASE_URL is not set']);
    await waitFor(() => !alive(hello.pid), { what: 'the shim to exit' });
  });
});
