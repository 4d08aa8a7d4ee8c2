// A real git client pushes a real repository (an Express app with a lockfile) to a registry: the push builds, releases and serves it through the proxy; a crashing commit is rejected while the release before keeps answering; other branches and wrong tokens are refused; two pushes at once take turns; the token never lands in .git/config.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import type { BerthClient } from '../../sdk/berth-client.js';
import { runCli } from '../helpers/cli-process.js';
import { startTestHoster, traversableTempDir, type HosterFixture } from '../helpers/hoster-fixture.js';
import { startTestProxy } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, testPrefix, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const EXPRESS = fileURLToPath(new URL('../../examples/express-app', import.meta.url));
/** npm installs express from the registry during the first deploy: give it room. */
const PUSH_DEADLINE_MS = 180_000;

let redis: TestRedis;
let proxy: ProxyDaemon;
let registry: RegistryFixture;
let hoster: HosterFixture;
let client: BerthClient;
let work: string;
let gitDir: string;
let repo: string;
let env: NodeJS.ProcessEnv;

interface Run {
  code: number | string;
  stdout: string;
  stderr: string;
}

/** Runs git to its end in `cwd` with the test's environment (no prompts, no user or system config). */
function git(args: string[], cwd: string, extraEnv: NodeJS.ProcessEnv = {}, deadlineMs = 30_000): Promise<Run> {
  const child = spawn('git', args, { cwd, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`git ${args.join(' ')} did not finish within ${deadlineMs} ms\n${stdout}\n${stderr}`));
    }, deadlineMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, stdout, stderr });
    });
  });
}

/** A push to berth's remote, started now, whose output can be watched as it comes. */
function pushWatched(cwd: string, ref: string): { stderr(): string; done: Promise<Run> } {
  const child = spawn('git', ['push', 'berth', ref], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`git push did not finish within ${PUSH_DEADLINE_MS} ms\n${stderr}`));
    }, PUSH_DEADLINE_MS);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, stdout, stderr });
    });
  });
  return { stderr: () => stderr, done };
}

async function mustGit(args: string[], cwd: string): Promise<string> {
  const run = await git(args, cwd);
  if (run.code !== 0) throw new Error(`git ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return run.stdout.trim();
}

function push(cwd: string, ...args: string[]): Promise<Run> {
  return git(['push', ...args], cwd, {}, PUSH_DEADLINE_MS);
}

/** The app's server: says which release answers, its greeting, and whether .berthignore kept notes/ out. */
function server(greeting: string, extra = ''): string {
  return `const express = require('express');
const { existsSync } = require('node:fs');
const { join } = require('node:path');
${extra}
const app = express();
app.use((req, res) => res.json({ release: process.env.BERTH_RELEASE, greeting: ${JSON.stringify(greeting)}, notes: existsSync(join(__dirname, 'notes')) }));
const server = app.listen(Number(process.env.PORT), process.env.HOST || '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;
}

async function commit(cwd: string, files: Record<string, string>, message: string): Promise<string> {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(cwd, name, '..'), { recursive: true });
    writeFileSync(join(cwd, name), text);
  }
  await mustGit(['add', '-A'], cwd);
  await mustGit(['commit', '-q', '-m', message], cwd);
  return mustGit(['rev-parse', 'HEAD'], cwd);
}

async function get(): Promise<{ status: number; body: { release?: string; greeting?: string; notes?: boolean } }> {
  const res = await fetch(`${proxy.url}/shop`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: {} };
  }
}

/** GETs the app in a loop until stopped; counts what did not answer 200. */
function requestLoop(): { stop(): Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  let ok = 0;
  const failed: string[] = [];
  const loop = (async () => {
    while (running) {
      try {
        const r = await get();
        if (r.status === 200) ok++;
        else failed.push(String(r.status));
      } catch (err) {
        failed.push(String(err));
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ok, failed };
    },
  };
}

/** Command lines of running processes that work on this test's repositories. */
function gitProcesses(): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        return '';
      }
    })
    .filter((cmd) => cmd.includes(gitDir) || cmd.includes('proc-receive-hook'));
}

/** Where the registry's cache has `ref` of the app, '' when it has none. */
async function cachedRef(ref: string): Promise<string> {
  const run = await git(['--git-dir', join(gitDir, 'shop.git'), 'rev-parse', '--verify', '--quiet', ref], work);
  return run.code === 0 ? run.stdout.trim() : '';
}

beforeAll(async () => {
  redis = await startRedis();
  const prefix = testPrefix();
  work = traversableTempDir('berth-git-push-');
  gitDir = join(work, 'registry-git');
  proxy = await startTestProxy(redis, prefix, 'm1');
  registry = await startTestRegistry(redis, { keyPrefix: prefix, publicUrl: proxy.url, reconcileIntervalMs: 50, drainMs: 200, gitDir });
  client = registry.client;
  hoster = await startTestHoster(redis, prefix, 'm1', { proxyUrl: proxy.url });
  const home = join(work, 'home');
  mkdirSync(join(home, 'berth'), { recursive: true });
  // The CLI's credentials are in its file, not in the environment: the credential helper reads them there.
  writeFileSync(join(home, 'berth', 'credentials.json'), JSON.stringify({ url: registry.daemon.url, token: registry.token }), { mode: 0o600 });
  env = {
    PATH: process.env.PATH,
    HOME: home,
    BERTH_HOME: join(home, 'berth'),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Dev',
    GIT_AUTHOR_EMAIL: 'dev@example.com',
    GIT_COMMITTER_NAME: 'Dev',
    GIT_COMMITTER_EMAIL: 'dev@example.com',
  };
  // A user's own helper that would store whatever git is given: berth's remote must not feed it.
  writeFileSync(join(home, '.gitconfig'), `[credential]\n\thelper = store --file ${join(home, 'stored-credentials')}\n`);

  repo = join(work, 'shop');
  mkdirSync(repo);
  await mustGit(['init', '-q', '-b', 'main'], repo);
  copyFileSync(join(EXPRESS, 'package.json'), join(repo, 'package.json'));
  copyFileSync(join(EXPRESS, 'package-lock.json'), join(repo, 'package-lock.json'));
  await commit(repo, { 'server.js': server('hello from git'), 'notes/todo.md': 'not for production\n', '.berthignore': 'notes/\n' }, 'First version');
}, 60_000);

afterAll(async () => {
  for (const app of (await client?.listApps().catch(() => [])) ?? []) await client.deleteApp(app.name).catch(() => undefined);
  await hoster?.close({ evacuate: true });
  await proxy?.close();
  await registry?.close();
  await redis?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('git push deploys', () => {
  it('git:remote --add adds the remote with berth as its credential helper: the token is not in .git/config', async () => {
    const printed = await runCli(['git:remote', 'shop'], env, { cwd: repo });
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout.trim()).toBe(`${registry.daemon.url}/git/shop.git`);

    const added = await runCli(['git:remote', 'shop', '--add'], env, { cwd: repo });
    expect(added.code, added.stderr).toBe(0);
    expect(await mustGit(['remote', 'get-url', 'berth'], repo)).toBe(`${registry.daemon.url}/git/shop.git`);
    const config = readFileSync(join(repo, '.git', 'config'), 'utf8');
    expect(config).toContain('git:credential');
    expect(config).not.toContain(registry.token);

    const helper = await runCli(['git:remote', 'shop', '--add', '--json'], env, { cwd: repo });
    expect(JSON.parse(helper.stdout)).toMatchObject({ name: 'shop', url: `${registry.daemon.url}/git/shop.git`, remote: 'berth' });
  });

  it('a push of main builds the app (npm ci from its lockfile), releases it with its commit and serves it; .berthignore is honoured', async () => {
    const head = await mustGit(['rev-parse', 'HEAD'], repo);
    const r = await push(repo, 'berth', 'main');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`remote: -----> shop: deploying ${head.slice(0, 7)} (First version)`);
    expect(r.stderr).toMatch(/^remote: -----> Installing dependencies \(npm ci/m);
    expect(r.stderr).toMatch(/^remote: -----> shop v1 active: 1\/1 running/m);
    expect(r.stderr).toMatch(/ \* \[new branch\] +main -> main/);

    const answer = await get();
    expect(answer).toEqual({ status: 200, body: { release: 'v1', greeting: 'hello from git', notes: false } });
    const [release] = await client.listReleases('shop');
    expect(release).toMatchObject({ version: 1, commit: head, description: `Deploy ${head.slice(0, 7)}: First version`, createdBy: 'admin' });
    expect(await cachedRef('refs/heads/main')).toBe(head);
    await waitFor(async () => (await client.audit(20)).some((e) => e.path === '/git/shop.git/git-receive-pack' && e.app === 'shop' && e.token === 'admin'), { what: 'the push in the audit log' });
    const table = await runCli(['releases', 'shop'], env);
    expect(table.stdout).toMatch(new RegExp(`^v1\\s+active\\s+${head.slice(0, 7)}\\s+Deploy ${head.slice(0, 7)}: First version`, 'm'));

    // The token reached git through the helper only: not in .git/config, not in the user's own store.
    expect(readFileSync(join(repo, '.git', 'config'), 'utf8')).not.toContain(registry.token);
    expect(() => readFileSync(join(env.HOME!, 'stored-credentials'), 'utf8')).toThrow();
  }, PUSH_DEADLINE_MS);

  it('a push of a commit that crashes is rejected with the release’s failure, and v1 answers every request meanwhile', async () => {
    const good = await mustGit(['rev-parse', 'HEAD'], repo);
    await commit(repo, { 'server.js': server('never', "console.error('boom: DATABASE_URL is not set'); process.exit(3);") }, 'Break it');
    const load = requestLoop();
    const r = await push(repo, 'berth', 'main');
    const served = await load.stop();
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/remote: -----> release v2 failed: crash_loop on m1: exited with code 3/);
    expect(r.stderr).toContain('boom: DATABASE_URL is not set');
    expect(r.stderr).toMatch(/ ! \[remote rejected\] +main -> main \(release v2 failed: crash_loop on m1: exited with code 3/);
    expect(served.failed).toEqual([]);
    expect(served.ok).toBeGreaterThan(0);
    expect((await get()).body.release).toBe('v1');
    // The branch stays where the release that serves came from.
    expect(await cachedRef('refs/heads/main')).toBe(good);
    await mustGit(['reset', '-q', '--hard', good], repo);
  }, PUSH_DEADLINE_MS);

  it('a push of another branch is refused, saying how to deploy it; git:branch makes it the deploy branch', async () => {
    await mustGit(['checkout', '-q', '-b', 'feature'], repo);
    const feature = await commit(repo, { 'server.js': server('from feature') }, 'Feature');
    const refused = await push(repo, 'berth', 'feature');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/ ! \[remote rejected\] +feature -> feature \(shop deploys from main or master only: push it there \(git push berth feature:main\), or make it the deploy branch \(berth git:branch shop feature\)\)/);
    expect((await client.listReleases('shop')).length).toBe(2);
    expect(await cachedRef('refs/heads/feature')).toBe('');

    const set = await runCli(['git:branch', 'shop', 'feature'], env);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('shop deploys pushes of feature');
    const deployed = await push(repo, 'berth', 'feature');
    expect(deployed.code, deployed.stderr).toBe(0);
    expect((await get()).body).toMatchObject({ release: 'v3', greeting: 'from feature' });
    expect((await client.listReleases('shop'))[0]).toMatchObject({ version: 3, commit: feature });
    // main is not the deploy branch now.
    const main = await push(repo, 'berth', 'feature:main', '--force');
    expect(main.stderr).toMatch(/ ! \[remote rejected\] +feature -> main \(shop deploys from feature only/);
    expect((await runCli(['git:branch', 'shop', '--unset'], env)).stdout).toContain('shop deploys pushes of main and master');
    await mustGit(['checkout', '-q', 'main'], repo);
  }, PUSH_DEADLINE_MS * 2);

  it('a wrong token gets 401 with a Basic challenge, and git says the authentication failed; a token that may not change the app gets 403', async () => {
    const url = new URL(`${registry.daemon.url}/git/shop.git`);
    const challenge = await fetch(`${url}/info/refs?service=git-receive-pack`);
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get('www-authenticate')).toBe('Basic realm="berth"');
    const wrong = await fetch(`${url}/info/refs?service=git-receive-pack`, { headers: { authorization: `Basic ${Buffer.from('berth:wrong-token').toString('base64')}` } });
    expect(wrong.status).toBe(401);

    url.username = 'berth';
    url.password = 'wrong-token';
    const before = (await client.listReleases('shop')).length;
    // A password in the URL is what git sends: it is refused, and git asks no helper for another.
    const r = await git(['push', url.toString(), 'main'], repo);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Authentication failed/);

    // A token that may not change the app gets 403, and git shows berth's reason.
    for (const [name, options, why] of [
      ['reader', { readOnly: true }, 'the token reader is read-only'],
      ['other-app', { app: 'other' }, 'the token other-app is for the app other only'],
    ] as const) {
      url.password = (await client.createToken(name, options)).token;
      const refused = await git(['push', url.toString(), 'main'], repo);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(`remote: This token may not do that: ${why}`);
      expect(refused.stderr).toMatch(/403/);
    }
    expect((await client.listReleases('shop')).length).toBe(before);
  });

  it('two pushes of the app at once take turns: the second waits for the first to deploy, then finds main moved and is refused', async () => {
    const other = join(work, 'other');
    await mustGit(['clone', '-q', repo, other], work);
    const added = await runCli(['git:remote', 'shop', '--add'], env, { cwd: other });
    expect(added.code, added.stderr).toBe(0);
    await commit(repo, { 'server.js': server('from the first clone') }, 'First clone');
    await commit(other, { 'server.js': server('from the second clone') }, 'Second clone');
    const releasesBefore = (await client.listReleases('shop')).length;

    // The second push starts while the first deploys (it holds the lock from before its release until it runs).
    const first = pushWatched(repo, 'main');
    await waitFor(() => /remote: -----> Release v\d+: Deploy/.test(first.stderr()), { deadlineMs: 60_000, what: 'the first push deploying' });
    const b = await push(other, 'berth', 'main');
    const a = await first.done;
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).not.toBe(0);
    expect(b.stderr).toContain('remote: -----> another push of shop is in progress: waiting for it to finish');
    expect(b.stderr).toMatch(/ ! \[remote rejected\] +main -> main \(main moved to [0-9a-f]{7} while this push waited \(another push deployed it\): fetch, merge and push again\)/);
    // It waited for the whole deploy: it was refused only after the first push's release ran.
    expect(a.stderr).toMatch(/remote: -----> shop v\d+ active/);
    // One release only, and the lock is free again: the loser deploys once it is based on the winner.
    expect((await client.listReleases('shop')).length).toBe(releasesBefore + 1);
    // berth's remotes take pushes only: the second clone rebases on the first, then deploys.
    await mustGit(['fetch', '-q', repo, 'main'], other);
    await mustGit(['rebase', '-q', '-X', 'theirs', 'FETCH_HEAD'], other);
    const again = await push(other, 'berth', 'main');
    expect(again.code, again.stderr).toBe(0);
  }, PUSH_DEADLINE_MS * 2);

  it('a force push deploys the pushed commit, an older one included; a config change keeps its commit', async () => {
    const first = await mustGit(['rev-list', '--max-parents=0', 'HEAD'], repo);
    const r = await push(repo, '--force', 'berth', `${first}:refs/heads/main`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/\+ [0-9a-f]+\.\.\.[0-9a-f]+ +[0-9a-f]+ -> main \(forced update\)/);
    await waitFor(async () => (await get()).body.greeting === 'hello from git', { deadlineMs: 10_000, what: 'the first version serving again' });
    expect((await client.listReleases('shop'))[0]).toMatchObject({ commit: first, status: 'active' });
    // A config change runs the same code: its release keeps the commit.
    const configured = await runCli(['config:set', 'shop', 'GREETING_NOTE=1', '--timeout', '60'], env, { deadlineMs: 90_000 });
    expect(configured.code, configured.stderr).toBe(0);
    expect((await client.listReleases('shop'))[0]).toMatchObject({ description: 'Set GREETING_NOTE', commit: first });
  }, PUSH_DEADLINE_MS);
  it('a pusher who goes away mid-deploy does not stop it: the release runs, the branch moves, no git is left running', async () => {
    const head = await commit(repo, { 'server.js': server('deployed without anyone watching') }, 'Unwatched');
    const child = spawn('git', ['push', 'berth', 'main'], { cwd: repo, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise((resolve) => child.once('close', resolve));
    await waitFor(() => /remote: -----> Release v\d+: Deploy/.test(stderr), { deadlineMs: 30_000, what: 'the release made' });
    child.kill('SIGKILL');
    await exited;
    await waitFor(async () => (await get()).body.greeting === 'deployed without anyone watching', { deadlineMs: 60_000, what: 'the new release serving' });
    await waitFor(async () => (await cachedRef('refs/heads/main')) === head, { deadlineMs: 10_000, what: 'main moved' });
    await waitFor(() => !gitProcesses().some((p) => p.includes('receive-pack') || p.includes('proc-receive')), { deadlineMs: 10_000, what: 'receive-pack and the hook gone' });
  }, PUSH_DEADLINE_MS);
});

describe('a push larger than the bundle limit', () => {
  let small: RegistryFixture;

  beforeAll(async () => {
    small = await startTestRegistry(redis, { bundleLimitBytes: 64 * 1024, gitDir: join(work, 'small-git') });
  });

  afterAll(async () => {
    await small?.close();
  });

  it('is refused while it arrives, before anything is stored, and git says why', async () => {
    const big = join(work, 'big');
    mkdirSync(big);
    await mustGit(['init', '-q', '-b', 'main'], big);
    // Random bytes do not compress: the pack is as large as the file.
    await commit(big, { 'server.js': server('big'), 'blob.bin': randomBytes(256 * 1024).toString('base64') }, 'Too big');
    const url = new URL(`${small.daemon.url}/git/big.git`);
    url.username = 'berth';
    url.password = small.token;
    const r = await push(big, url.toString(), 'main');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/remote: fatal: pack exceeds maximum allowed size/);
    expect(r.stderr).toContain('remote: -----> push refused: the pack is over 65536 bytes, the largest bundle this registry takes');
    expect(r.stderr).toMatch(/ ! \[remote rejected\] +main -> main/);
    expect(await small.client.listApps()).toEqual([]);
    const objects = await git(['--git-dir', join(work, 'small-git', 'big.git'), 'count-objects', '-v'], work);
    expect(objects.stdout).toMatch(/^count: 0$/m);
    expect(objects.stdout).toMatch(/^in-pack: 0$/m);
  });
});
