// A hoster tree that apps could not reach is refused at once, with the directory that blocks
// and the fix, instead of every deploy crash-looping later (a clone in /root, a 0700 home).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon } from '../helpers/daemon-process.js';
import { getPort } from '../helpers/get-port.js';

const ROOT = process.getuid?.() === 0;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-anywhere-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!ROOT)(`start anywhere${ROOT ? '' : ' (skipped: only root runs apps as other users; CI runs as root)'}`, () => {
  for (const command of ['up', 'hoster'] as const) {
    it(`berth ${command} refuses a BERTH_HOSTER_DIR under a 0700 folder within seconds, naming the folder and the fix`, async () => {
      const blocked = join(dir, `apps-${command}`);
      const args = command === 'up'
        ? ['up', '--data-dir', join(dir, 'data'), '--api-port', String(await getPort()), '--proxy-port', String(await getPort()), '--https-port', String(await getPort()), '--redis-port', String(await getPort())]
        : ['hoster', '--data-dir', join(dir, 'data')];
      const started = Date.now();
      const daemon = startDaemon(args, { BERTH_HOSTER_DIR: blocked, BERTH_HOME: join(dir, 'home'), REDIS_URL: 'redis://127.0.0.1:1' });
      const exit = await Promise.race([daemon.exited, new Promise((r) => setTimeout(r, 20_000, 'still running'))]);
      if (exit === 'still running') daemon.kill('SIGKILL');
      expect(exit, daemon.output()).toBe(1);
      // Under a second on an idle machine; the bound here leaves room for a loaded one.
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(daemon.output()).toContain(`cannot reach ${blocked}: ${dir} has mode 0700`);
      expect(daemon.output()).toContain(`chmod o+x ${dir}`);
    });
  }
});
