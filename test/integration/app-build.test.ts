// The build runs the real npm only when an app declares dependencies and ships none (npm ci with a lockfile, npm install without), logs its output, and turns a failed, timed-out or invalid build into a BuildFailedError with the log's tail, leaving no process behind.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, BuildFailedError } from '../../hoster/app-build.js';
import { waitFor } from '../helpers/wait-for.js';

let root: string;
/** npm kept off the network and out of the user's cache: every dependency here is local. */
let env: NodeJS.ProcessEnv;
let n = 0;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'berth-build-'));
  env = { ...process.env, npm_config_offline: 'true', npm_config_cache: join(root, 'npm-cache'), npm_config_update_notifier: 'false' };
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A fresh app directory holding `files`; its log file goes beside it. */
function app(files: Record<string, string>): { dir: string; logFile: string } {
  const dir = join(root, `app-${++n}`);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  mkdirSync(dir, { recursive: true });
  return { dir, logFile: join(root, `build-${n}.log`) };
}

const vendoredDep = {
  'vendor/dep/package.json': JSON.stringify({ name: 'dep', version: '1.0.0', main: 'index.js' }),
  'vendor/dep/index.js': 'module.exports = 42;\n',
};
const withDep = JSON.stringify({ name: 'app', version: '1.0.0', dependencies: { dep: 'file:./vendor/dep' } });

describe('buildApp', () => {
  it('runs nothing for an app without dependencies, or without a package.json', async () => {
    const noDeps = app({ 'package.json': JSON.stringify({ name: 'app', version: '1.0.0', dependencies: {} }) });
    expect(await buildApp(noDeps.dir, { logFile: noDeps.logFile })).toMatchObject({ ran: 'none' });
    const bare = app({ 'server.js': '' });
    expect(await buildApp(bare.dir, { logFile: bare.logFile })).toMatchObject({ ran: 'none' });
    expect(existsSync(noDeps.logFile)).toBe(false);
  });

  it('runs nothing when the bundle ships its node_modules', async () => {
    const shipped = app({ 'package.json': withDep, 'node_modules/dep/index.js': '' });
    expect(await buildApp(shipped.dir, { logFile: shipped.logFile, env })).toMatchObject({ ran: 'none' });
  });

  it('runs npm install without a lockfile: the dependency appears and the log is written', async () => {
    const a = app({ 'package.json': withDep, ...vendoredDep });
    const result = await buildApp(a.dir, { logFile: a.logFile, env });
    expect(result.ran).toBe('npm install');
    expect(result.ms).toBeGreaterThan(0);
    expect(readFileSync(join(a.dir, 'node_modules', 'dep', 'index.js'), 'utf8')).toBe('module.exports = 42;\n');
    const log = readFileSync(a.logFile, 'utf8');
    expect(log).toMatch(/^=== .* npm install --omit=dev --no-audit --no-fund/m);
    expect(log).toMatch(/added 1 package/);
    expect(log).toMatch(/^=== npm install succeeded after \d+ ms$/m);
  });

  it('runs npm ci with a lockfile', async () => {
    // The lockfile comes from a real npm install of the same app, then the app ships without node_modules.
    const scratch = app({ 'package.json': withDep, ...vendoredDep });
    execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: scratch.dir, env, stdio: 'ignore' });
    const a = app({ 'package.json': withDep, ...vendoredDep });
    copyFileSync(join(scratch.dir, 'package-lock.json'), join(a.dir, 'package-lock.json'));

    const result = await buildApp(a.dir, { logFile: a.logFile, env });
    expect(result.ran).toBe('npm ci');
    expect(existsSync(join(a.dir, 'node_modules', 'dep', 'package.json'))).toBe(true);
    expect(readFileSync(a.logFile, 'utf8')).toMatch(/^=== .* npm ci --omit=dev --no-audit --no-fund/m);
  });

  it('throws BuildFailedError with the log tail when npm fails, appending to the log', async () => {
    const a = app({ 'package.json': JSON.stringify({ name: 'app', version: '1.0.0', dependencies: { dep: 'file:./vendor/missing-1.0.0.tgz' } }) });
    writeFileSync(a.logFile, 'an earlier build\n');
    const err = await buildApp(a.dir, { logFile: a.logFile, env }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    const failed = err as BuildFailedError;
    expect(failed.message).toMatch(/^npm install exited with code \d+: fix the dependencies/);
    expect(failed.logTail).toMatch(/ENOENT/);
    expect(failed.logTail).toMatch(/missing-1\.0\.0\.tgz/);
    expect(failed.logTail).not.toMatch(/an earlier build/);
    expect(failed.message).toContain(failed.logTail);
    expect(failed.logFile).toBe(a.logFile);
    const log = readFileSync(a.logFile, 'utf8');
    expect(log.startsWith('an earlier build\n')).toBe(true);
    expect(log).toMatch(/^=== npm install exited with code \d+ after \d+ ms$/m);
  });

  it('kills the whole build on timeout, scripts included', async () => {
    const TIMEOUT_MS = 12_000;
    const pidFile = join(root, 'sleeper.pid');
    const a = app({
      'package.json': JSON.stringify({ name: 'app', version: '1.0.0', dependencies: { dep: 'file:./vendor/dep' }, scripts: { preinstall: 'node sleeper.js' } }),
      'sleeper.js': `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 1000);`,
      ...vendoredDep,
    });
    const started = Date.now();
    // Long enough for a loaded machine's npm to reach the script before the timeout.
    const err = await buildApp(a.dir, { logFile: a.logFile, env, timeoutMs: TIMEOUT_MS }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    expect((err as Error).message).toMatch(new RegExp(`^npm install timed out after ${TIMEOUT_MS} ms: make the install faster, or raise the build timeout`));
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 10_000);
    // The script is npm's grandchild: only a kill of the process group reaches it.
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(() => !isAlive(pid), { deadlineMs: 5000, what: `the build script (pid ${pid}) to be gone` });
    expect(readFileSync(a.logFile, 'utf8')).toMatch(new RegExp(`^=== npm install timed out after ${TIMEOUT_MS} ms after \\d+ ms$`, 'm'));
  });

  it('throws BuildFailedError when npm cannot be started', async () => {
    const a = app({ 'package.json': withDep, ...vendoredDep });
    await expect(buildApp(a.dir, { logFile: a.logFile, env: { PATH: join(root, 'no-such-bin') } })).rejects.toThrow(
      /^npm install could not start \(spawn npm ENOENT\): install npm on this machine/,
    );
  });

  it('throws BuildFailedError for an invalid package.json', async () => {
    const broken = app({ 'package.json': '{"name": "app",' });
    await expect(buildApp(broken.dir, { logFile: broken.logFile })).rejects.toThrow(/^package\.json is not valid JSON \(.*\): fix it and publish again\.$/);
    const notObject = app({ 'package.json': '[1, 2]' });
    await expect(buildApp(notObject.dir, { logFile: notObject.logFile })).rejects.toThrow(BuildFailedError);
    const badDeps = app({ 'package.json': JSON.stringify({ name: 'app', dependencies: ['dep'] }) });
    await expect(buildApp(badDeps.dir, { logFile: badDeps.logFile })).rejects.toThrow(/"dependencies" must be an object/);
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
