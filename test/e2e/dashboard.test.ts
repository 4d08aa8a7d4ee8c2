// The dashboard in a real headless Chromium against a real berth up: sign-in (a wrong token refused), apps and an app's page kept current by the event stream, scale from the CLI and from the page, followed logs, rollback, an app's domains and their certificates (added and removed from the page), a pushed release's commit, an app's process types (a worker scaled from the page), its one-off runs (state, output, stop) and cron jobs, machines and the scaler, a read-only token that sees no action and gets 403, CSRF attempts refused, and a first load under 200 KB.
import { execFile, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BerthClient } from '../../sdk/index.js';
import type { AppDetails, Run } from '../../sdk/types.js';
import { runCli } from '../helpers/cli-process.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';
import { getPort } from '../helpers/get-port.js';
import { traversableTempDir } from '../helpers/hoster-fixture.js';
import { instancePortRange } from '../helpers/port-range.js';
import { TEXT_CONTRAST_SCRIPT, type ContrastReport } from '../helpers/text-contrast.js';
import { waitFor } from '../helpers/wait-for.js';

// The page's globals, as the functions given to page.evaluate see them (the DOM lib stays out of the Node tests).
interface PageElement { textContent: string | null; disabled: boolean; value: string; tagName: string; className: string; click(): void; getAttribute(name: string): string | null; getBoundingClientRect(): { right: number }; closest(s: string): PageElement | null }
declare const document: { querySelector(s: string): PageElement | null; querySelectorAll(s: string): Iterable<PageElement>; cookie: string; documentElement: { scrollWidth: number } };
declare const window: Record<string, unknown>;
declare const location: { hash: string };
declare const performance: { getEntriesByType(type: string): unknown[] };

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = spawnSync(CHROMIUM, ['--version']).status === 0;
if (!hasChromium) console.warn('skipped: chromium is not installed (scripts/setup installs it as root: apt-get install -y chromium)');
const SHOTS = new URL('../../test-output/dashboard/', import.meta.url).pathname;

let dir: string;
let app: string;
/** An app with a web and a worker process type (its Procfile). */
let jobs: string;
let up: DaemonProcess;
let env: NodeJS.ProcessEnv;
let base: string;
let httpsPort: number;
let token: string;
let client: BerthClient;
let browser: Browser;
let page: Page;

/** Runs git in `cwd` with a home of its own (no user or system config, no prompts), as the person pushing. */
async function git(cwd: string, ...args: string[]): Promise<string> {
  const gitEnv = {
    PATH: process.env.PATH, HOME: join(dir, 'git-home'), GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Dev', GIT_AUTHOR_EMAIL: 'dev@example.com', GIT_COMMITTER_NAME: 'Dev', GIT_COMMITTER_EMAIL: 'dev@example.com',
  };
  const { stdout } = await promisify(execFile)('git', args, { cwd, env: gitEnv, timeout: 120_000 });
  return stdout.trim();
}

/** A random block of ten ports for add-ons, below the test hosters' instance ports. */
function addonPorts(): string {
  const first = 6000 + Math.floor(Math.random() * 390) * 10;
  return `${first}-${first + 9}`;
}

async function berth(...args: string[]): Promise<string> {
  const run = await runCli(args, env, { deadlineMs: 120_000 });
  if (run.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return run.stdout;
}

/** The text of the first element matching `selector`, '' when there is none. */
function textOf(p: Page, selector: string): Promise<string> {
  return p.evaluate((s) => document.querySelector(s)?.textContent ?? '', selector);
}

async function shot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Clicks the button whose visible text is exactly `label`. */
async function clickButton(p: Page, label: string): Promise<void> {
  await waitFor(() => p.evaluate((l) => [...document.querySelectorAll('button')].some((b) => b.textContent?.trim() === l && !b.disabled), label), { deadlineMs: 10_000, what: `a button "${label}"` });
  await p.evaluate((l) => [...document.querySelectorAll('button')].find((b) => b.textContent?.trim() === l && !b.disabled)!.click(), label);
}

/** Clicks the enabled element matching `selector` (a button named by its aria-label, say). */
async function clickOn(p: Page, selector: string): Promise<void> {
  await waitFor(() => p.evaluate((s) => document.querySelector(s)?.disabled === false, selector), { deadlineMs: 10_000, what: selector });
  await p.evaluate((s) => document.querySelector(s)!.click(), selector);
}

/** A run's row's state on the page, '' while it is not listed. */
function runState(p: Page, id: string): Promise<string> {
  return textOf(p, `tr[data-run="${id}"] [data-status]`);
}

async function signIn(p: Page, withToken: string): Promise<void> {
  await p.goto(`${base}/dashboard/`);
  await p.waitForSelector('#token');
  await p.type('#token', withToken);
  // By keyboard: Enter in the field submits the form.
  await p.keyboard.press('Enter');
}

/** A request to the balancer's HTTPS port, trusting berth up's CA. */
function overHttps(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const ca = readFileSync(join(dir, 'data', 'tls', 'ca.pem'), 'utf8');
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: httpsPort, path, method, ca, servername: 'localhost', agent: false, headers: { host: `localhost:${httpsPort}`, ...headers } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** A POST from inside the page, as a script of this origin would send it. */
function postFromPage(p: Page, path: string, headers: Record<string, string>): Promise<{ status: number; body: { error?: { code: string; message: string } } }> {
  return p.evaluate(async (url, h) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...h }, body: '{}' });
    return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } };
  }, path, headers);
}

beforeAll(async () => {
  if (!hasChromium) return;
  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });
  dir = traversableTempDir('berth-dashboard-');
  const apiPort = await getPort();
  base = `http://127.0.0.1:${apiPort}`;
  httpsPort = await getPort();
  env = {
    BERTH_HOME: join(dir, 'home'),
    BERTH_MAX_LOAD_PER_CPU: '1000', BERTH_PORT_RANGE: instancePortRange(),
    BERTH_DRAIN_MS: '500',
    // A sample a second, so that the machines page has a chart within the test.
    BERTH_DASHBOARD_SAMPLE_MS: '1000',
    // The scaler looks often, so that its decision shows within the test.
    BERTH_SCALER_INTERVAL_MS: '500',
    BERTH_ADDON_USAGE_MS: '1000',
    // Below every test hoster's instance ports (10000 and up), as the tour has them.
    BERTH_ADDON_PORT_RANGE: addonPorts(),
  };
  up = startDaemon(
    ['up', '--data-dir', join(dir, 'data'), '--api-port', String(apiPort), '--proxy-port', String(await getPort()), '--https-port', String(httpsPort), '--redis-port', String(await getPort())],
    env,
  );
  const [launched] = await Promise.all([
    // berth up's certificate comes from its own CA, made at start: the browser is told to take it.
    puppeteer.launch({ executablePath: CHROMIUM, headless: true, acceptInsecureCerts: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] }),
    waitFor(() => up.output().includes('running: press Ctrl-C to stop'), { deadlineMs: 60_000, what: 'berth up' }),
  ]);
  browser = launched;
  token = (JSON.parse(readFileSync(join(dir, 'data', 'secrets.json'), 'utf8')) as { token: string }).token;
  client = new BerthClient({ url: base, token });
  app = mkdtempSync(join(tmpdir(), 'berth-dashboard-app-'));
  cpSync(new URL('../../examples/hello', import.meta.url), app, { recursive: true });
  await berth('publish', app, '--name', 'hello', '--path', '/hello', '--instances', '1');
  jobs = mkdtempSync(join(tmpdir(), 'berth-dashboard-jobs-'));
  writeFileSync(join(jobs, 'package.json'), JSON.stringify({ name: 'jobs', version: '1.0.0' }));
  writeFileSync(join(jobs, 'Procfile'), 'web: node server.js\nworker: node worker.js\n');
  writeFileSync(join(jobs, 'server.js'), "require('node:http').createServer((req, res) => res.end('jobs')).listen(process.env.PORT, '127.0.0.1');\n");
  writeFileSync(join(jobs, 'worker.js'), "setInterval(() => console.log('worker tick'), 500);\n");
  page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 800 });
}, 180_000);

afterAll(async () => {
  if (!hasChromium) return;
  await browser?.close();
  up?.kill('SIGTERM');
  if (up !== undefined) await up.exited;
  rmSync(dir, { recursive: true, force: true });
  rmSync(app, { recursive: true, force: true });
  if (jobs !== undefined) rmSync(jobs, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!hasChromium)('the dashboard in Chromium', () => {
  it('loads in under 200 KB with a strict Content-Security-Policy and refuses a wrong token in the API\'s words', async () => {
    const cdp = await page.createCDPSession();
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    let transferred = 0;
    cdp.on('Network.loadingFinished', (e) => (transferred += e.encodedDataLength));
    const res = await page.goto(`${base}/dashboard/`, { waitUntil: 'networkidle0' });
    expect(res!.headers()['content-security-policy']).toContain("script-src 'self'");
    expect(res!.headers()['content-security-policy']).toContain("default-src 'none'");
    expect(res!.headers()['content-type']).toBe('text/html; charset=utf-8');
    await page.waitForSelector('#token');
    expect(transferred).toBeGreaterThan(1000);
    expect(transferred, 'bytes of the first load').toBeLessThan(200_000);
    console.info(`dashboard first load: ${transferred} bytes transferred`);
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
    await cdp.detach();
    await shot(page, '1-sign-in');

    await page.type('#token', 'not-a-token-of-this-platform');
    await page.click('button[type="submit"]');
    await page.waitForSelector('.error[role="alert"]');
    expect(await textOf(page, '.error[role="alert"]')).toContain("That token is not one of this platform's");
    expect(await textOf(page, '.error .code')).toBe('unauthorized');
    expect((await page.cookies()).find((c) => c.name === 'berth_session')).toBeUndefined();
    await shot(page, '2-wrong-token');
  });

  it('signs in with an HttpOnly SameSite=Strict session cookie that holds no token, and lists the published app', async () => {
    await signIn(page, token);
    await page.waitForSelector('tr[data-app="hello"]');
    await waitFor(async () => (await textOf(page, 'tr[data-app="hello"] [data-field="running"]')) === '1', { deadlineMs: 30_000, what: 'hello running 1' });
    const cookie = (await page.cookies()).find((c) => c.name === 'berth_session')!;
    expect(cookie.httpOnly).toBe(true);
    expect(cookie.sameSite).toBe('Strict');
    expect(cookie.path).toBe('/dashboard');
    expect(cookie.value).not.toContain(token);
    expect(cookie.value).not.toContain(token.slice(0, 12));
    expect(await page.evaluate(() => document.cookie)).toBe('');
    await shot(page, '3-apps');
  });

  it('follows a scale made with the CLI without a reload', async () => {
    await page.evaluate(() => (window.marker = 42));
    await berth('scale', 'hello', '2');
    await waitFor(async () => (await textOf(page, 'tr[data-app="hello"] [data-field="wanted"]')) === '2', { deadlineMs: 10_000, what: 'wanted 2 on the page' });
    await waitFor(async () => (await textOf(page, 'tr[data-app="hello"] [data-field="running"]')) === '2', { deadlineMs: 30_000, what: 'running 2 on the page' });
    expect(await page.evaluate(() => window.marker)).toBe(42);
  });

  it("shows the app's releases, instances by machine, hidden config and followed logs; scales from the page and the API agrees", async () => {
    await berth('config:set', 'hello', 'GREETING=from-the-cli');
    await page.evaluate(() => (location.hash = '#/apps/hello'));
    await page.waitForSelector('tr[data-release="2"]');
    expect(await textOf(page, 'tr[data-release="2"]')).toContain('admin');
    expect(await page.$$eval('table.instances', (t) => t.length)).toBeGreaterThanOrEqual(1);
    // Config values stay hidden until revealed.
    await page.waitForSelector('[data-var="GREETING"]');
    expect(await textOf(page, '[data-var="GREETING"] [data-field="value"]')).not.toContain('from-the-cli');
    await clickButton(page, 'Reveal values');
    expect(await textOf(page, '[data-var="GREETING"] [data-field="value"]')).toBe('from-the-cli');

    // Logs: the backlog, then lines that arrive while the page follows.
    await waitFor(async () => (await textOf(page, 'pre.logs')).includes('hello listening'), { deadlineMs: 20_000, what: 'log lines on the page' });
    await waitFor(async () => (await client.getApp('hello')).running === 2 && (await client.getApp('hello')).status === 'running', { deadlineMs: 60_000, what: 'v2 running' });
    const before = (await textOf(page, 'pre.logs')).split('hello listening').length;
    await client.scaleApp('hello', { instances: 3 });
    await waitFor(async () => (await textOf(page, 'pre.logs')).split('hello listening').length > before, { deadlineMs: 30_000, what: 'a new log line followed' });
    await waitFor(async () => (await textOf(page, '[data-field="running"]')) === '3', { deadlineMs: 30_000, what: 'running 3 on the page' });
    // The app's CPU over the hour, from the machines' sampled reports.
    await waitFor(async () => Number(await page.$eval('#cpu-h + svg.chart', (e) => e.getAttribute('data-samples'))) >= 1, { deadlineMs: 30_000, what: "the app's CPU chart" });
    // Every field has a label, every button a name.
    expect(await page.evaluate(() => [...document.querySelectorAll('input')].filter((i) => (i as unknown as { labels: unknown[] }).labels.length === 0).length)).toBe(0);
    expect(await page.evaluate(() => [...document.querySelectorAll('button')].filter((b) => (b.textContent ?? '').trim() === '' && b.getAttribute('aria-label') === null).length)).toBe(0);
    await shot(page, '4-app');

    // Scale from the page: the API agrees.
    await page.$eval('#scale-web', (el) => ((el as unknown as PageElement).value = ''));
    await page.type('#scale-web', '1');
    await clickButton(page, 'Scale web');
    await page.waitForSelector('.outcome .ok');
    expect(await textOf(page, '.outcome .ok')).toBe('Scaled web to 1.');
    expect((await client.getApp('hello')).instances).toBe(1);
    expect(JSON.parse(await berth('info', 'hello', '--json')).instances).toBe(1);
    await waitFor(async () => (await textOf(page, '[data-field="wanted"]')) === '1', { deadlineMs: 10_000, what: 'wanted 1 on the page' });

    // The API's errors as it words them: 0 instances then asking for more than allowed.
    await page.$eval('#scale-web', (el) => ((el as unknown as PageElement).value = ''));
    await page.type('#scale-web', '100000');
    await clickButton(page, 'Scale web');
    await page.waitForSelector('.outcome .error');
    expect(await textOf(page, '.outcome .error .code')).toBe('invalid_request');
  });

  it('rolls back to a chosen release', async () => {
    await clickButton(page, 'Roll back to v1');
    await page.waitForSelector('.outcome .ok');
    const current = (await client.getApp('hello')).current!;
    expect(current.version).toBe(3);
    expect(current.description).toContain('v1');
    expect(current.env.GREETING).toBeUndefined();
    await page.waitForSelector('tr[data-release="3"]');
    await shot(page, '5-rolled-back');
  });

  it("shows the app's domains with their certificates, adds and removes one from the page as berth domains:add and domains:remove do", async () => {
    // A published app's releases came from no commit; its instances' failures are machines, and their restarts a count beside.
    expect(await textOf(page, 'tr[data-release="1"] [data-field="commit"]')).toBe('—');
    const headers = await page.$$eval('table.instances thead th', (ths) => ths.map((t) => t.textContent));
    // One table per machine (and one for instances not placed yet): in each, Restarts follows Failed on.
    const afterFailedOn = headers.flatMap((h, k) => (h === 'Failed on' ? [headers[k + 1]] : []));
    expect(afterFailedOn.length).toBeGreaterThanOrEqual(1);
    expect(afterFailedOn.every((h) => h === 'Restarts'), JSON.stringify(headers)).toBe(true);
    expect(await textOf(page, 'table.instances [data-field="failed-on"]')).toBe('—');
    // Its app killed: restarted in place under the same claim, and the page counts it without a reload.
    const serving = await waitFor(async () => (await client.listAppInstances('hello')).find((i) => i.state === 'running' && i.release === 3), { deadlineMs: 20_000, what: 'v3 running' });
    const cell = `tr[data-instance="${serving.id}"] [data-field="restarts"]`;
    await waitFor(async () => (await textOf(page, cell).catch(() => '')) === '0', { deadlineMs: 10_000, what: 'its row with 0 restarts' });
    process.kill(serving.pid!, 'SIGKILL');
    await waitFor(async () => (await textOf(page, cell).catch(() => '')) === '1', { deadlineMs: 20_000, what: 'its row with 1 restart' });
    expect((await client.listAppInstances('hello')).find((i) => i.id === serving.id)).toMatchObject({ epoch: serving.epoch, restarts: 1 });

    await client.addDomain('hello', 'hello.example.com');
    await page.waitForSelector('tr[data-domain="hello.example.com"]');
    // No ACME on this berth up: the balancer's own certificate serves it, as berth domains:list says.
    const [listed] = await client.listDomains('hello');
    expect(listed!.certificate.state).toBe('none');
    expect(await textOf(page, 'tr[data-domain="hello.example.com"] [data-field="certificate"] [data-status]')).toBe('none');
    expect(await textOf(page, 'tr[data-domain="hello.example.com"] [data-field="certificate"]')).toContain("the balancer's own certificate");

    // A name that is no domain is refused in the API's words, and stays in the field to correct.
    await page.type('#domain-name', 'localhost');
    await clickButton(page, 'Add domain');
    await waitFor(async () => (await textOf(page, '.outcome .error .code')) === 'invalid_domain', { deadlineMs: 30_000, what: 'the refusal on the page' });
    expect(await page.$eval('#domain-name', (el) => (el as unknown as PageElement).value)).toBe('localhost');
    await page.$eval('#domain-name', (el) => ((el as unknown as PageElement).value = ''));
    await page.type('#domain-name', 'www.hello.example.com');
    await clickButton(page, 'Add domain');
    await waitFor(async () => (await textOf(page, '.outcome .ok')).startsWith('Added www.hello.example.com'), { deadlineMs: 30_000, what: 'the add outcome' });
    expect(await page.$eval('#domain-name', (el) => (el as unknown as PageElement).value)).toBe('');
    expect((await client.listDomains('hello')).map((d) => d.domain).sort()).toEqual(['hello.example.com', 'www.hello.example.com']);
    expect(await berth('domains:list', 'hello')).toContain('www.hello.example.com');
    await page.waitForSelector('tr[data-domain="www.hello.example.com"]');
    await shot(page, '5b-app-domains');

    await clickOn(page, 'button[aria-label="Remove domain www.hello.example.com"]');
    await waitFor(async () => (await textOf(page, '.outcome .ok')) === 'Removed www.hello.example.com.', { deadlineMs: 30_000, what: 'the remove outcome' });
    expect((await client.listDomains('hello')).map((d) => d.domain)).not.toContain('www.hello.example.com');
    await waitFor(async () => (await page.$('tr[data-domain="www.hello.example.com"]')) === null, { deadlineMs: 30_000, what: 'the removed domain gone from the page' });
    expect(await page.evaluate(() => [...document.querySelectorAll('input')].filter((i) => (i as unknown as { labels: unknown[] }).labels.length === 0).length)).toBe(0);
  });

  it('shows the commit of a release that a git push made', async () => {
    const repo = join(dir, 'pushed');
    cpSync(new URL('../../examples/hello', import.meta.url), repo, { recursive: true });
    mkdirSync(join(dir, 'git-home'), { recursive: true });
    await git(repo, 'init', '-q', '-b', 'main');
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-q', '-m', 'First push');
    const head = await git(repo, 'rev-parse', 'HEAD');
    const added = await runCli(['git:remote', 'pushed', '--add'], env, { cwd: repo });
    expect(added.code, added.stderr).toBe(0);
    // The push waits for its release to run: then the app, new, is on /pushed with its v1.
    await git(repo, 'push', '-q', 'berth', 'main');
    expect((await client.listReleases('pushed'))[0]).toMatchObject({ version: 1, commit: head });
    await page.evaluate(() => (location.hash = '#/apps/pushed'));
    // The page before (hello's) has a release 1 too: wait for pushed's, by its heading and its commit.
    await waitFor(async () => (await textOf(page, 'h1')).startsWith('pushed') && (await textOf(page, 'tr[data-release="1"] [data-field="commit"]')) === head.slice(0, 7), { deadlineMs: 10_000, what: "pushed's page with its release's commit" });
    expect(await page.$eval('tr[data-release="1"] [data-field="commit"] code', (c) => c.getAttribute('title'))).toBe(head);
    // A config change keeps the code, and so its commit.
    await client.setConfig('pushed', { set: { MODE: 'kept' } });
    await page.waitForSelector('tr[data-release="2"]');
    expect(await textOf(page, 'tr[data-release="2"] [data-field="commit"]')).toBe(head.slice(0, 7));
    await shot(page, '5c-app-commit');
    await page.evaluate(() => (location.hash = '#/apps/hello'));
    await client.deleteApp('pushed');
    await waitFor(async () => !(await client.listApps()).some((a) => a.name === 'pushed'), { deadlineMs: 30_000, what: 'pushed deleted' });
  }, 120_000);

  it("shows an app's process types with their commands and instances with their type; scales its worker from the page and the API agrees", async () => {
    await berth('publish', jobs, '--name', 'jobs', '--path', '/jobs', '--instances', '1');
    await page.evaluate(() => (location.hash = '#/apps/jobs'));
    await page.waitForSelector('tr[data-process="worker"]');
    expect(await page.$$eval('table.processes tbody tr', (rows) => rows.map((r) => r.getAttribute('data-process')))).toEqual(['web', 'worker']);
    expect(await textOf(page, 'tr[data-process="worker"] code')).toBe('node worker.js');
    // web's line stays the hoster's to read from the Procfile: the page says where its command comes from.
    expect(await textOf(page, 'tr[data-process="web"]')).toContain("Procfile's web: line");
    await waitFor(async () => (await textOf(page, 'tr[data-process="worker"] [data-field="process-running"]')) === '1' && (await textOf(page, 'tr[data-process="web"] [data-field="process-running"]')) === '1', { deadlineMs: 30_000, what: 'web and worker running on the page' });
    const types = await page.$$eval('table.instances [data-field="process"]', (cells) => cells.map((c) => c.textContent).sort());
    expect(types).toEqual(['web', 'worker']);
    // The worker's lines are in the followed logs, marked with its type.
    await waitFor(async () => /\/worker out worker tick/.test(await textOf(page, 'pre.logs')), { deadlineMs: 20_000, what: "the worker's log lines on the page" });

    // Scale the worker from the page: the same call as berth scale jobs worker=2.
    await page.$eval('#scale-worker', (el) => ((el as unknown as PageElement).value = ''));
    await page.type('#scale-worker', '2');
    await clickButton(page, 'Scale worker');
    await waitFor(async () => (await textOf(page, '.outcome .ok')) === 'Scaled worker to 2.', { deadlineMs: 10_000, what: 'the scale outcome' });
    const scaled = await client.getApp('jobs');
    expect(scaled.formation).toEqual({ worker: 2 });
    expect(scaled.instances).toBe(1);
    expect((JSON.parse(await berth('info', 'jobs', '--json')) as AppDetails).formation.worker).toBe(2);
    await waitFor(async () => (await textOf(page, 'tr[data-process="worker"] [data-field="process-running"]')) === '2', { deadlineMs: 30_000, what: 'two workers running on the page' });
    expect(await textOf(page, 'tr[data-process="worker"] [data-field="process-wanted"]')).toBe('2');
    // A type the app does not have is refused in the API's words, and nothing changes.
    const unknown = await client.scaleApp('jobs', { formation: { mailer: 1 } }).catch((err: { code: string }) => err);
    expect((unknown as { code: string }).code).toBe('unknown_process_type');
    expect(await page.evaluate(() => [...document.querySelectorAll('input')].filter((i) => (i as unknown as { labels: unknown[] }).labels.length === 0).length)).toBe(0);
    await shot(page, '11-app-processes');
  }, 120_000);

  it("shows a run made with the API with its state, exit code and output, and stops a running one from the page", async () => {
    const done = await client.createRun('jobs', { command: ['node', '-e', "console.log('from a run'); console.error('to err'); process.exit(3)"], detached: true });
    await waitFor(async () => (await runState(page, done.id)) === 'exited', { deadlineMs: 30_000, what: 'the run exited on the page' });
    expect(await textOf(page, `tr[data-run="${done.id}"] [data-field="exit"]`)).toBe('exit 3');
    expect(await textOf(page, `tr[data-run="${done.id}"]`)).toContain("node -e console.log('from a run')");
    const ran = await client.getRun('jobs', done.id);
    expect(await textOf(page, `tr[data-run="${done.id}"]`)).toContain(ran.machine!);
    // Its output on demand, with how it ended.
    expect(await page.$(`pre[data-run="${done.id}"]`)).toBeNull();
    await clickOn(page, `button[aria-label="Show output of run ${done.id}"]`);
    await waitFor(async () => (await textOf(page, `pre[data-run="${done.id}"]`)).includes('exited (exit 3)'), { deadlineMs: 10_000, what: "the run's output on the page" });
    expect(await textOf(page, `pre[data-run="${done.id}"]`)).toContain('from a run\n');
    expect(await textOf(page, `pre[data-run="${done.id}"]`)).toContain('to err\n');
    // A finished run has no stop button.
    expect(await page.$(`button[aria-label="Stop run ${done.id}"]`)).toBeNull();

    const long = await client.createRun('jobs', { command: ['node', '-e', "console.log('still going'); setInterval(() => {}, 1000)"], detached: true });
    await waitFor(async () => (await runState(page, long.id)) === 'running', { deadlineMs: 30_000, what: 'the long run running on the page' });
    await clickOn(page, `button[aria-label="Show output of run ${long.id}"]`);
    await waitFor(async () => (await textOf(page, `pre[data-run="${long.id}"]`)).includes('still going'), { deadlineMs: 10_000, what: "a running run's output on the page" });
    await shot(page, '12-app-runs');
    // Every field has a label, every button a name.
    expect(await page.evaluate(() => [...document.querySelectorAll('input')].filter((i) => (i as unknown as { labels: unknown[] }).labels.length === 0).length)).toBe(0);
    expect(await page.evaluate(() => [...document.querySelectorAll('button')].filter((b) => (b.textContent ?? '').trim() === '' && b.getAttribute('aria-label') === null).length)).toBe(0);
    await clickOn(page, `button[aria-label="Stop run ${long.id}"]`);
    await waitFor(async () => (await textOf(page, '.outcome .ok')) === `Stopping run ${long.id}.`, { deadlineMs: 10_000, what: 'the stop outcome' });
    await waitFor(async () => (await client.getRun('jobs', long.id)).state === 'stopped', { deadlineMs: 30_000, what: 'the run stopped' });
    await waitFor(async () => (await runState(page, long.id)) === 'stopped', { deadlineMs: 10_000, what: 'the run stopped on the page' });
    await waitFor(async () => (await textOf(page, `pre[data-run="${long.id}"]`)).includes('— stopped'), { deadlineMs: 10_000, what: "the stopped run's end in its output" });
    expect(await page.$(`button[aria-label="Stop run ${long.id}"]`)).toBeNull();
  }, 90_000);

  it("shows the app's cron jobs with their schedule, command, next tick and the last tick's run", async () => {
    const yearly = await client.addCron('jobs', { schedule: '0 0 1 1 *', command: ['node', 'jobs/report.js'] });
    const everySecond = await client.addCron('jobs', { schedule: '* * * * * *', command: ['node', '-e', "console.log('tick')"] });
    try {
      await page.waitForSelector(`tr[data-cron="${yearly.id}"]`, { timeout: 40_000 });
      expect(await textOf(page, `tr[data-cron="${yearly.id}"] [data-field="schedule"]`)).toBe('0 0 1 1 *');
      expect(await textOf(page, `tr[data-cron="${yearly.id}"]`)).toContain('node jobs/report.js');
      // The next tick as the API gives it, in the page's words: next 1 January.
      const next = new Date(yearly.nextAt!);
      expect(next.getUTCMonth()).toBe(0);
      expect(await textOf(page, `tr[data-cron="${yearly.id}"] [data-field="next"]`)).toContain(String(next.getFullYear()));
      expect(await textOf(page, `tr[data-cron="${yearly.id}"] [data-field="last"]`)).toBe('none yet');
      // A tick fires: its run shows as the job's last, and in the runs with its job's id.
      await waitFor(async () => /^[0-9a-f]{16}/.test(await textOf(page, `tr[data-cron="${everySecond.id}"] [data-field="last"]`)), { deadlineMs: 30_000, what: "the cron job's last run on the page" });
      const lastId = (await textOf(page, `tr[data-cron="${everySecond.id}"] [data-field="last"] code`));
      const fired: Run = await client.getRun('jobs', lastId);
      expect(fired.cron).toBe(everySecond.id);
      await waitFor(async () => (await textOf(page, `tr[data-run="${lastId}"]`)).includes(`cron job ${everySecond.id}`), { deadlineMs: 10_000, what: 'the tick in the runs table' });
      await shot(page, '13-app-cron');
    } finally {
      await client.removeCron('jobs', everySecond.id);
    }
    await waitFor(async () => (await page.$(`tr[data-cron="${everySecond.id}"]`)) === null, { deadlineMs: 40_000, what: 'the removed job gone from the page' });
  }, 120_000);

  it('shows the machines with their load over time, and the scaler', async () => {
    await page.evaluate(() => (location.hash = '#/machines'));
    await page.waitForSelector('section[data-machine]');
    await waitFor(async () => Number(await page.$eval('svg.chart', (s) => s.getAttribute('data-samples'))) >= 2, { deadlineMs: 30_000, what: 'two load samples charted' });
    expect(await textOf(page, 'section[data-machine] [data-field="load"]')).toMatch(/^\d/);
    const history = await client.listMachines();
    expect(history.length).toBe(1);
    await shot(page, '6-machines');
    await page.evaluate(() => (location.hash = '#/scaler'));
    await page.waitForSelector('main h1');
    // A policy above what runs: the scaler scales up, and its decision appears on the page.
    const wanted = (await client.getApp('hello')).instances;
    await client.setAutoscale('hello', { min: wanted + 1, max: wanted + 2 });
    try {
      await waitFor(async () => (await textOf(page, 'main table')).includes('below_min'), { deadlineMs: 30_000, what: "the scaler's decision on the page" });
      expect(await textOf(page, 'main table tbody tr')).toContain(`${wanted} → ${wanted + 1}`);
      await shot(page, '7-scaler');
    } finally {
      await client.removeAutoscale('hello');
    }
    // Phone width: nothing wider than the screen but the tables' own scroll boxes.
    await page.setViewport({ width: 375, height: 740 });
    await page.evaluate(() => (location.hash = '#/apps/hello'));
    await page.waitForSelector('tr[data-release]');
    await waitFor(async () => (await textOf(page, 'pre.logs')).includes('hello listening'), { deadlineMs: 20_000, what: 'logs at phone width' });
    const tooWide = () => page.evaluate(() =>
      [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 376 && e.closest('.scroll') === null).map((e) => `${e.tagName}.${e.className} ${e.getBoundingClientRect().right}`).slice(0, 8),
    );
    const wide = await tooWide();
    expect(await page.evaluate(() => document.documentElement.scrollWidth), `wider than the phone: ${wide.join(', ')}`).toBeLessThanOrEqual(375);
    await shot(page, '8-app-phone');
    // The app with process types, runs and cron jobs too.
    await page.evaluate(() => (location.hash = '#/apps/jobs'));
    await page.waitForSelector('tr[data-process="worker"]');
    await page.waitForSelector('tr[data-run]');
    await page.waitForSelector('tr[data-cron]');
    const jobsWide = await tooWide();
    expect(await page.evaluate(() => document.documentElement.scrollWidth), `wider than the phone: ${jobsWide.join(', ')}`).toBeLessThanOrEqual(375);
    await shot(page, '8b-app-jobs-phone');
    await page.setViewport({ width: 1100, height: 800 });
  });

  it('keeps every text at WCAG AA contrast against its background (4.5:1, large text 3:1), light and dark', async () => {
    const pages: [string, string][] = [
      ['#/apps', 'tr[data-app="hello"]'],
      ['#/apps/hello', 'tr[data-release]'],
      ['#/apps/jobs', 'tr[data-process="worker"]'],
      ['#/machines', 'section[data-machine]'],
      ['#/scaler', 'main h1'],
    ];
    try {
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }]);
        for (const [hash, ready] of pages) {
          await page.evaluate((h) => (location.hash = h), hash);
          await page.waitForSelector(ready);
          const report = (await page.evaluate(TEXT_CONTRAST_SCRIPT)) as ContrastReport;
          expect(report.checked, `${scheme} ${hash}: texts measured`).toBeGreaterThan(5);
          expect(report.low, `${scheme} ${hash}`).toEqual([]);
        }
      }
      // The check finds a low contrast where there is one (grey #999 on white is 2.85:1).
      await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
      // Styled through the CSSOM: the page's Content-Security-Policy refuses style attributes.
      await page.evaluate(`(() => { const p = document.createElement('p'); p.id = 'contrast-probe'; p.textContent = 'probe'; p.style.color = '#999'; p.style.background = '#fff'; document.body.append(p); })()`);
      const probed = (await page.evaluate(TEXT_CONTRAST_SCRIPT)) as ContrastReport;
      expect(probed.low.map((f) => [f.what, f.ratio])).toEqual([['p "probe"', 2.85]]);
    } finally {
      await page.evaluate(`document.getElementById('contrast-probe')?.remove()`);
      await page.emulateMediaFeatures([]);
    }
  });

  it('refuses calls without the CSRF token or from another origin', async () => {
    const noHeader = await postFromPage(page, '/dashboard/v1/apps/hello/restart', {});
    expect(noHeader.status).toBe(403);
    expect(noHeader.body.error!.code).toBe('forbidden');
    expect(noHeader.body.error!.message).toContain('CSRF');
    // A foreign page cannot set Origin in a browser; a request that says it came from one is refused even with the right CSRF token.
    const session = await page.evaluate(async () => (await (await fetch('/dashboard/session')).json()) as { csrf: string });
    const cookie = (await page.cookies()).find((c) => c.name === 'berth_session')!;
    const foreign = await fetch(`${base}/dashboard/v1/apps/hello/restart`, {
      method: 'POST',
      headers: { cookie: `berth_session=${cookie.value}`, origin: 'https://attacker.example', 'x-berth-csrf': session.csrf, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(foreign.status).toBe(403);
    expect(((await foreign.json()) as { error: { message: string } }).error.message).toContain('Origin');
    // A form posted from another site (localhost is another site than 127.0.0.1) carries no cookie at all (SameSite=Strict): 401.
    const site = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<form id="f" method="POST" action="${base}/dashboard/v1/apps/hello/restart" enctype="text/plain"><input name='{"a":"' value='"}'></form>`);
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    const other = await browser.createBrowserContext();
    try {
      const evil = await other.newPage();
      await evil.goto(`http://localhost:${(site.address() as AddressInfo).port}/`);
      await Promise.all([evil.waitForNavigation(), evil.evaluate(() => (document.querySelector('#f') as unknown as { submit(): void }).submit())]);
      expect(await evil.evaluate(() => document.querySelector('body')?.textContent ?? '')).toContain('"code":"unauthorized"');
    } finally {
      await other.close();
      site.close();
    }
    // Nothing of these restarted the app.
    expect((await client.getApp('hello')).current!.version).toBe(3);
    // The same call with the header, from the page, is allowed.
    const allowed = await postFromPage(page, '/dashboard/v1/apps/hello/restart', { 'x-berth-csrf': session.csrf });
    expect(allowed.status).toBe(201);
  });

  it('gives a read-only token no action buttons, and 403 to its POSTs', async () => {
    const viewer = await client.createToken('viewer', { readOnly: true });
    const context = await browser.createBrowserContext();
    const ro = await context.newPage();
    await ro.setViewport({ width: 1100, height: 800 });
    await signIn(ro, viewer.token);
    await ro.waitForSelector('tr[data-app="hello"]');
    expect(await textOf(ro, '[data-field="who"]')).toContain('read-only');
    await ro.evaluate(() => (location.hash = '#/apps/hello'));
    await ro.waitForSelector('tr[data-release="1"]');
    await ro.waitForSelector('tr[data-domain="hello.example.com"]');
    const buttons = await ro.$$eval('main button', (bs) => bs.map((b) => b.textContent?.trim()));
    for (const label of ['Scale web', 'Restart', 'Roll back to v1', 'Set', 'Unset', 'Add domain', 'Remove', 'Delete hello']) expect(buttons).not.toContain(label);
    expect(await ro.$('#scale-web')).toBeNull();
    expect(await ro.$('#domain-name')).toBeNull();
    await waitFor(async () => (await textOf(ro, 'pre.logs')).includes('hello listening'), { deadlineMs: 20_000, what: "the read-only token following the app's logs" });
    await shot(ro, '9-read-only');
    const session = await ro.evaluate(async () => (await (await fetch('/dashboard/session')).json()) as { csrf: string });
    const refused = await postFromPage(ro, '/dashboard/v1/apps/hello/restart', { 'x-berth-csrf': session.csrf });
    expect(refused.status).toBe(403);
    expect(refused.body.error!.message).toContain('read-only');
    // The app with a worker, a running run and a cron job: it sees them all, with no scale or stop control, and may read a run's output.
    const running = await client.createRun('jobs', { command: ['node', '-e', 'setInterval(() => {}, 1000)'], detached: true });
    try {
      await ro.evaluate(() => (location.hash = '#/apps/jobs'));
      await ro.waitForSelector('tr[data-process="worker"]');
      await waitFor(async () => (await runState(ro, running.id)) === 'running', { deadlineMs: 30_000, what: 'the running run on the read-only page' });
      await ro.waitForSelector('tr[data-cron]');
      const seen = await ro.$$eval('main button', (bs) => bs.map((b) => b.textContent?.trim()));
      for (const label of ['Scale web', 'Scale worker', 'Stop', 'Restart']) expect(seen).not.toContain(label);
      expect(seen).toContain('Show output');
      expect(await ro.$('#scale-worker')).toBeNull();
      await clickOn(ro, `button[aria-label="Show output of run ${running.id}"]`);
      await ro.waitForSelector(`pre[data-run="${running.id}"]`);
      await shot(ro, '9b-read-only-processes-runs');
      const stop = await postFromPage(ro, `/dashboard/v1/apps/jobs/runs/${running.id}/stop`, { 'x-berth-csrf': session.csrf });
      expect(stop.status).toBe(403);
      expect((await client.getRun('jobs', running.id)).state).toBe('running');
    } finally {
      await client.stopRun('jobs', running.id);
    }
    // Revoking the token ends its dashboard session on the next request.
    await client.revokeToken('viewer');
    const after = await ro.evaluate(async () => (await fetch('/dashboard/v1/apps')).status);
    expect(after).toBe(401);
    // The page itself goes back to sign-in at its next call.
    await ro.evaluate(() => (location.hash = '#/machines'));
    await ro.waitForSelector('#token');
    await context.close();
  });

  it("is served through the balancer on the platform's HTTPS host, where the cookie is Secure", async () => {
    const pageAnswer = await overHttps('GET', '/dashboard/', { 'accept-encoding': 'gzip' });
    expect(pageAnswer.status).toBe(200);
    expect(pageAnswer.headers['content-security-policy']).toContain("default-src 'none'");
    expect(pageAnswer.headers['content-encoding']).toBe('gzip');
    const origin = `https://localhost:${httpsPort}`;
    const signedIn = await overHttps('POST', '/dashboard/session', { origin, 'content-type': 'application/json' }, JSON.stringify({ token }));
    expect(signedIn.status).toBe(201);
    const setCookie = String(signedIn.headers['set-cookie']);
    expect(setCookie).toMatch(/^berth_session=[A-Za-z0-9_-]+; Path=\/dashboard; Max-Age=\d+; HttpOnly; SameSite=Strict; Secure$/);
    const cookie = setCookie.split(';')[0]!;
    const apps = await overHttps('GET', '/dashboard/v1/apps', { cookie });
    expect(apps.status).toBe(200);
    expect((JSON.parse(apps.body) as { apps: { name: string }[] }).apps.map((a) => a.name)).toContain('hello');
    const { csrf } = JSON.parse(signedIn.body) as { csrf: string };
    const forged = await overHttps('PATCH', '/dashboard/v1/apps/hello', { cookie, origin: 'https://attacker.example', 'x-berth-csrf': csrf, 'content-type': 'application/json' }, '{"instances":2}');
    expect(forged.status).toBe(403);
    // In the browser, over HTTP/2 through the balancer: signed in with a Secure cookie, and live.
    const context = await browser.createBrowserContext();
    try {
      const tls = await context.newPage();
      await tls.goto(`${origin}/dashboard/`);
      await tls.waitForSelector('#token');
      await tls.type('#token', token);
      await tls.click('button[type="submit"]');
      await tls.waitForSelector('tr[data-app="hello"]');
      expect((await tls.cookies()).find((c) => c.name === 'berth_session')!.secure).toBe(true);
      expect(await tls.evaluate(() => (performance.getEntriesByType('navigation')[0] as unknown as { nextHopProtocol: string }).nextHopProtocol)).toBe('h2');
      await waitFor(async () => (await textOf(tls, '[data-live]')) === 'live', { deadlineMs: 10_000, what: 'the event stream through the balancer' });
      const wanted = Number(await textOf(tls, 'tr[data-app="hello"] [data-field="wanted"]'));
      await client.scaleApp('hello', { instances: wanted + 1 });
      await waitFor(async () => Number(await textOf(tls, 'tr[data-app="hello"] [data-field="wanted"]')) === wanted + 1, { deadlineMs: 10_000, what: 'a live update through the balancer' });
      await shot(tls, '10-through-the-balancer');
    } finally {
      await context.close();
    }
    // Over the registry's plain-HTTP port the cookie is not Secure: a browser would not send it back there.
    const plain = await fetch(`${base}/dashboard/session`, { method: 'POST', headers: { origin: base, 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    expect(plain.headers.get('set-cookie')).not.toContain('Secure');
  });

  it("shows the app's add-ons with where each runs, its data size and its connections, as berth addons:info does", async () => {
    await page.evaluate(() => (location.hash = '#/apps/hello'));
    await page.waitForSelector('#addons-h');
    expect(await textOf(page, 'section[aria-labelledby="addons-h"]')).toContain('No add-on');
    const created = await client.createAddon({ app: 'hello', kind: 'redis' });
    const row = `tr[data-addon="${created.name}"]`;
    await waitFor(async () => (await textOf(page, `${row} [data-status]`)) === 'running', { deadlineMs: 60_000, what: 'the add-on running on the page' });
    expect(await textOf(page, row)).toContain('REDIS_URL');
    // Its variable is the add-on's: no Unset beside it (the API would refuse it with addon_var_taken).
    await waitFor(async () => (await textOf(page, '[data-var="REDIS_URL"] [data-field="held-by"]')).includes(created.name), { deadlineMs: 10_000, what: 'REDIS_URL shown as the add-on\'s' });
    expect(await page.$('button[aria-label="Unset REDIS_URL"]')).toBeNull();
    const info = await client.getAddon(created.name);
    expect(await textOf(page, `${row} [data-field="machine"]`)).toBe(`${info.machine} (${info.host}:${info.port})`);
    // Its hoster measures it (BERTH_ADDON_USAGE_MS); the page reads it again without a reload.
    await waitFor(async () => /^\d+(\.\d)? (B|kB|MB)/.test(await textOf(page, `${row} [data-field="size"]`)), { deadlineMs: 30_000, what: 'its data size on the page' });
    expect(await textOf(page, `${row} [data-field="connections"]`)).toMatch(/^\d+$/);
    await shot(page, '11-app-addons');
    await client.destroyAddon(created.name, created.name);
    await waitFor(async () => (await page.$(row)) === null, { deadlineMs: 30_000, what: 'the destroyed add-on gone from the page' });
  }, 120_000);

  it('deletes with a typed confirmation', async () => {
    await page.evaluate(() => (location.hash = '#/apps/hello'));
    await page.waitForSelector('#delete-confirm');
    expect(await page.$eval('button.danger-button', (b) => (b as unknown as PageElement).disabled)).toBe(true);
    await page.type('#delete-confirm', 'hello');
    await clickButton(page, 'Delete hello');
    await waitFor(async () => !(await client.listApps()).some((a) => a.name === 'hello'), { deadlineMs: 30_000, what: 'hello deleted' });
    // Back on the apps list, which follows the delete to its end.
    await waitFor(async () => (await page.evaluate(() => location.hash)) === '#/apps' && (await page.$('tr[data-app="hello"]')) === null, { deadlineMs: 10_000, what: 'hello gone from the apps list' });
  });
});
