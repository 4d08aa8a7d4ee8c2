import { BerthApiError } from './api-error.js';
import type { Addon, AddonBackup, CreateAddonRequest, AppDetails, Attributes, AuditEntry, AutoscaleRequest, CertificateRecord, ClaimRequest, CronJob, CronRequest, Domain, GitRemote, Instance, LogLine, Machine, MachineLoadHistory, NewToken, PublishRequest, RegistryEvent, Release, Run, RunOutput, RunRequest, ScaleDecision, TokenRecord, UpdateRequest } from './types.js';

export interface BerthClientOptions {
  /** The registry API's base URL, e.g. http://127.0.0.1:7070 */
  url: string;
  token: string;
  /** Per-attempt timeout. @default 10000 */
  timeoutMs?: number;
  /** Extra attempts for calls that are safe to repeat. @default 3 */
  retries?: number;
  /** Injected fetch (for tests or old runtimes). @default globalThis.fetch */
  fetch?: typeof fetch;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_RETRIES = 3;
/** Per-attempt timeout of an add-on's backup or restore: a dump of a large database, or a move's start on a new machine (the registry's request limit is 5 min). */
const ADDON_DATA_TIMEOUT_MS = 5 * 60_000;
/** Per-attempt timeout of a bundle upload or download, which may be large. */
const BUNDLE_TIMEOUT_MS = 10 * 60_000;

interface CallOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  /** Safe to send again after a network failure or a 503. */
  idempotent: boolean;
  /** A longer per-attempt timeout than the client's, for calls that take long by nature. */
  timeoutMs?: number;
}

/**
 * A typed client of the berth REST API, for Node and browsers. Calls that are safe to repeat
 * are retried with backoff on network failures and 503s; a claim is made safe to repeat by a
 * request id that the registry remembers.
 */
export class BerthClient {
  private readonly base: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: BerthClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retries = options.retries ?? DEFAULT_RETRIES;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** RegisterInstance: records a new unclaimed instance of `service`. */
  registerInstance(service: string, input: { path: string; attributes?: Attributes; files?: string }): Promise<Instance> {
    return this.call('POST', `/v1/services/${enc(service)}/instances`, { body: input, idempotent: false });
  }

  /** UnregisterInstance by id. */
  unregisterInstance(service: string, id: string): Promise<Instance> {
    return this.call('DELETE', `/v1/services/${enc(service)}/instances/${enc(id)}`, { idempotent: false });
  }

  /** UnregisterInstance(service, path, [host], [port]): removes one matching instance. */
  unregisterMatching(service: string, match: { path: string; host?: string; port?: number }): Promise<Instance> {
    return this.call('DELETE', `/v1/services/${enc(service)}/instances`, { query: match, idempotent: false });
  }

  /** GetServiceInfo: every instance of `service`. */
  async getServiceInfo(service: string): Promise<Instance[]> {
    const out = await this.call<{ instances: Instance[] }>('GET', `/v1/services/${enc(service)}`, { idempotent: true });
    return out.instances;
  }

  getInstance(service: string, id: string): Promise<Instance> {
    return this.call('GET', `/v1/services/${enc(service)}/instances/${enc(id)}`, { idempotent: true });
  }

  /** ListServices: names of services with instances. */
  async listServices(): Promise<string[]> {
    return (await this.call<{ services: string[] }>('GET', '/v1/services', { idempotent: true })).services;
  }

  /** ListUnclaimedServices: a service name once per unclaimed instance. */
  async listUnclaimedServices(): Promise<string[]> {
    return (await this.call<{ services: string[] }>('GET', '/v1/unclaimed', { idempotent: true })).services;
  }

  /** ClaimService: claims one unclaimed instance; `nothing_to_claim` (409) when there is none. */
  claimService(service: string, claim: ClaimRequest): Promise<Instance> {
    const body = { ...claim, requestId: claim.requestId ?? newRequestId() };
    return this.call('POST', `/v1/services/${enc(service)}/claim`, { body, idempotent: true });
  }

  /** Reports the holder's instance as running (routable). Safe to repeat. */
  markRunning(service: string, id: string, holder: { machine: string; epoch: number; pid: number; restarts?: number }): Promise<Instance> {
    return this.call('POST', `/v1/services/${enc(service)}/instances/${enc(id)}/running`, { body: holder, idempotent: true });
  }

  /** Extends the holder's lease; `stale_epoch` when the claim is gone. Safe to repeat. */
  async renewLease(service: string, id: string, holder: { machine: string; epoch: number; leaseMs?: number }): Promise<number> {
    const out = await this.call<{ leaseUntil: number }>('POST', `/v1/services/${enc(service)}/instances/${enc(id)}/renew`, {
      body: holder,
      idempotent: true,
    });
    return out.leaseUntil;
  }

  /** Gives the holder's claim back with a reason. */
  releaseInstance(service: string, id: string, holder: { machine: string; epoch: number; reason: string }): Promise<Instance | { id: string; removed: true }> {
    return this.call('POST', `/v1/services/${enc(service)}/instances/${enc(id)}/release`, { body: holder, idempotent: false });
  }

  /** Confirms that the holder stopped a `stopping` instance (its record is removed). */
  async confirmStopped(service: string, id: string, holder: { machine: string; epoch: number }): Promise<void> {
    await this.call('POST', `/v1/services/${enc(service)}/instances/${enc(id)}/stopped`, { body: holder, idempotent: false });
  }

  /** PublishApp: creates an app running a bundle uploaded first (uploadBundle). */
  publishApp(app: PublishRequest): Promise<AppDetails> {
    return this.call('POST', '/v1/apps', { body: app, idempotent: false });
  }

  /** UpdateApp: new code and/or configuration (a new release, rolled out without downtime) and/or settings. */
  updateApp(name: string, change: UpdateRequest): Promise<AppDetails> {
    return this.call('PUT', `/v1/apps/${enc(name)}`, { body: change, idempotent: false });
  }

  /** Sets how many instances run (and optionally prefix stripping). */
  /** Sets instances wanted: `instances` is web's; `formation` per process type (`{ web: 3, worker: 2 }`). */
  scaleApp(name: string, settings: { instances?: number; stripPrefix?: boolean; formation?: Record<string, number> }): Promise<AppDetails> {
    return this.call('PATCH', `/v1/apps/${enc(name)}`, { body: settings, idempotent: true });
  }

  /**
   * Turns automatic scaling on, or changes its policy: the scaler keeps the instances of the
   * process type `policy.type` (default web) between min and max. Fields left out take their defaults.
   */
  setAutoscale(name: string, policy: AutoscaleRequest): Promise<AppDetails> {
    return this.call('PUT', `/v1/apps/${enc(name)}/autoscale`, { body: policy, idempotent: true });
  }

  /** Turns automatic scaling of one process type (default web) off; it keeps the instances it has. */
  removeAutoscale(name: string, type?: string): Promise<AppDetails> {
    return this.call('DELETE', `/v1/apps/${enc(name)}/autoscale`, { query: { type }, idempotent: true });
  }

  /** The scaler's recent decisions with their inputs, newest first (of one app, or all). */
  async scalerLog(options: { app?: string; limit?: number } = {}): Promise<ScaleDecision[]> {
    return (await this.call<{ decisions: ScaleDecision[] }>('GET', '/v1/scaler/log', { query: { app: options.app, limit: options.limit }, idempotent: true })).decisions;
  }

  /** DeleteApp: retires every instance, then removes the app. */
  deleteApp(name: string): Promise<AppDetails> {
    return this.call('DELETE', `/v1/apps/${enc(name)}`, { idempotent: true });
  }

  /** GetAppDetails: desired and actual state. */
  getApp(name: string): Promise<AppDetails> {
    return this.call('GET', `/v1/apps/${enc(name)}`, { idempotent: true });
  }

  /** ListApps */
  async listApps(): Promise<AppDetails[]> {
    return (await this.call<{ apps: AppDetails[] }>('GET', '/v1/apps', { idempotent: true })).apps;
  }

  /** ListAppInstances */
  async listAppInstances(name: string): Promise<Instance[]> {
    return (await this.call<{ instances: Instance[] }>('GET', `/v1/apps/${enc(name)}/instances`, { idempotent: true })).instances;
  }

  /** Every release, newest first. */
  async listReleases(name: string): Promise<Release[]> {
    return (await this.call<{ releases: Release[] }>('GET', `/v1/apps/${enc(name)}/releases`, { idempotent: true })).releases;
  }

  /** A new release with the code and configuration of `version` (default: the one before). */
  rollback(name: string, version?: number): Promise<Release> {
    return this.call('POST', `/v1/apps/${enc(name)}/rollback`, { body: version === undefined ? {} : { version }, idempotent: false });
  }

  /** Replaces one running instance, make before break (no new release); returns it, flagged. */
  restartInstance(name: string, id: string): Promise<Instance> {
    return this.call('POST', `/v1/apps/${enc(name)}/instances/${enc(id)}/restart`, { body: {}, idempotent: true });
  }

  /** A rolling restart: a new release with the current code and configuration, rolled out without downtime. */
  restart(name: string): Promise<Release> {
    return this.call('POST', `/v1/apps/${enc(name)}/restart`, { body: {}, idempotent: false });
  }

  async getConfig(name: string): Promise<Record<string, string>> {
    return (await this.call<{ env: Record<string, string> }>('GET', `/v1/apps/${enc(name)}/config`, { idempotent: true })).env;
  }

  /** Sets and unsets variables: one new release. */
  setConfig(name: string, change: { set?: Record<string, string>; unset?: string[] }): Promise<Release> {
    return this.call('PATCH', `/v1/apps/${enc(name)}/config`, { body: change, idempotent: false });
  }

  /** The app's git remote: its path on this API (`/git/<name>.git`) and the branches whose pushes deploy it. */
  getGitRemote(name: string): Promise<GitRemote> {
    return this.call('GET', `/v1/apps/${enc(name)}/git`, { idempotent: true });
  }

  /** Makes `branch` the one whose pushes deploy the app (null: main and master again). */
  setGitBranch(name: string, branch: string | null): Promise<GitRemote> {
    return this.call('PUT', `/v1/apps/${enc(name)}/git`, { body: { branch }, idempotent: true });
  }

  /** AddDomain: the app answers on `domain` too, under `path` inside it (`/` by default); 409 domain_taken when another app has it. */
  addDomain(name: string, domain: string, options: { path?: string } = {}): Promise<Domain> {
    return this.call('POST', `/v1/apps/${enc(name)}/domains`, { body: { domain, ...options }, idempotent: true });
  }

  /** RemoveDomain: the app no longer answers on `domain`. */
  async removeDomain(name: string, domain: string): Promise<void> {
    await this.call('DELETE', `/v1/apps/${enc(name)}/domains/${enc(domain)}`, { idempotent: false });
  }

  /** ListDomains: the domains of one app, or of every app, with where each stands with its certificate. */
  async listDomains(name?: string): Promise<Domain[]> {
    return (await this.call<{ domains: Domain[] }>('GET', name === undefined ? '/v1/domains' : `/v1/apps/${enc(name)}/domains`, { idempotent: true })).domains;
  }

  /** CreateAddon: a PostgreSQL or a Redis pinned to a machine, attached to `app` (a new release sets its variable); 400 addon_kind_unknown, 404 app_not_found or machine_not_found, 409 addon_exists. */
  createAddon(request: CreateAddonRequest): Promise<Addon> {
    return this.call('POST', '/v1/addons', { body: request, idempotent: false });
  }

  /** ListAddons: every add-on, with where each stands. */
  async listAddons(): Promise<Addon[]> {
    return (await this.call<{ addons: Addon[] }>('GET', '/v1/addons', { idempotent: true })).addons;
  }

  /** GetAddon: one add-on (its machine, port, state, apps); 404 addon_not_found. */
  getAddon(name: string): Promise<Addon> {
    return this.call('GET', `/v1/addons/${enc(name)}`, { idempotent: true });
  }

  /** AttachAddon: `app` gets the add-on's URL as `as` (its kind's default variable when not given), in a new release. */
  attachAddon(name: string, app: string, options: { as?: string } = {}): Promise<Addon> {
    return this.call('POST', `/v1/addons/${enc(name)}/attachments`, { body: { app, ...options }, idempotent: true });
  }

  /** DetachAddon: `app` loses the add-on's variable, in a new release; 404 addon_not_attached. */
  detachAddon(name: string, app: string): Promise<Addon> {
    return this.call('DELETE', `/v1/addons/${enc(name)}/attachments/${enc(app)}`, { idempotent: false });
  }

  /** DestroyAddon: detaches every app and removes the add-on and its data; `confirm` must repeat the name (400 confirmation_required). */
  async destroyAddon(name: string, confirm: string): Promise<Addon> {
    return (await this.call<{ destroyed: Addon }>('DELETE', `/v1/addons/${enc(name)}`, { body: { confirm }, idempotent: false })).destroyed;
  }

  /** BackupAddon: a backup now (pg_dump custom format, or every Redis key's DUMP); 409 addon_unavailable when it does not run. */
  backupAddon(name: string): Promise<AddonBackup> {
    return this.call('POST', `/v1/addons/${enc(name)}/backups`, { body: {}, idempotent: false, timeoutMs: ADDON_DATA_TIMEOUT_MS });
  }

  /**
   * ScheduleAddonBackups: a backup once per period (`every`: 24h, 30m, 1h30m, 7d…; at least the registry's
   * BERTH_ADDON_BACKUP_MIN_EVERY_MS), taken by one of the registries at each period's start; `off` stops them. Replies the add-on
   * (its `backupSchedule`); 400 invalid_request for a period that does not parse or is too short, 404 addon_not_found.
   */
  scheduleAddonBackups(name: string, every: string): Promise<Addon> {
    return this.call('PUT', `/v1/addons/${enc(name)}/backup-schedule`, { body: { every }, idempotent: true });
  }

  /** ListAddonBackups: the backups kept under the add-on's name, newest first. */
  async listAddonBackups(name: string): Promise<AddonBackup[]> {
    return (await this.call<{ backups: AddonBackup[] }>('GET', `/v1/addons/${enc(name)}/backups`, { idempotent: true })).backups;
  }

  /**
   * RestoreAddon: replaces the add-on's data with a backup of its name; `confirm` repeats the name; 409 addon_backup_kind for a
   * backup of the other kind. `toMachine` (another machine) moves it there first, started with fresh data, its apps given its new
   * address as new releases: 404 machine_not_found, 409 machine_unavailable when that machine's hoster is silent.
   */
  async restoreAddon(name: string, backup: string, confirm: string, options: { toMachine?: string } = {}): Promise<AddonBackup> {
    // A move waits for the server to start on its new machine (up to 2 min by default) before loading the backup.
    return (await this.call<{ restored: AddonBackup }>('POST', `/v1/addons/${enc(name)}/restore`, { body: { backup, confirm, ...options }, idempotent: false, timeoutMs: ADDON_DATA_TIMEOUT_MS })).restored;
  }

  /** ListCertificates: every domain's certificate (ACME's and operators'), with issuer and expiry. */
  async listCertificates(): Promise<CertificateRecord[]> {
    return (await this.call<{ certificates: CertificateRecord[] }>('GET', '/v1/certificates', { idempotent: true })).certificates;
  }

  /** AddCertificate: an operator's certificate for `domain` (PEM chain and unencrypted key), served before ACME's. */
  addCertificate(domain: string, pem: { cert: string; key: string }): Promise<CertificateRecord> {
    return this.call('PUT', `/v1/certificates/${enc(domain)}`, { body: pem, idempotent: true });
  }

  /** RemoveCertificate: drops an operator's certificate (ACME, when on, obtains one again). */
  async removeCertificate(domain: string): Promise<void> {
    await this.call('DELETE', `/v1/certificates/${enc(domain)}`, { idempotent: false });
  }

  /** CreateToken: a named token for every app or one (`app`), read-only or not. The token is in this answer only. */
  createToken(name: string, options: { app?: string; readOnly?: boolean } = {}): Promise<NewToken> {
    return this.call('POST', '/v1/tokens', { body: { name, ...options }, idempotent: false });
  }

  /** WhoAmI: what this client's token may do (`admin` for BERTH_TOKEN's tokens). */
  whoAmI(): Promise<Pick<TokenRecord, 'name' | 'app' | 'readOnly'>> {
    return this.call('GET', '/v1/token', { idempotent: true });
  }

  /** ListTokens: every named token's grant (never the tokens). */
  async listTokens(): Promise<TokenRecord[]> {
    return (await this.call<{ tokens: TokenRecord[] }>('GET', '/v1/tokens', { idempotent: true })).tokens;
  }

  /** RevokeToken: refused from the next request on, by every registry. */
  async revokeToken(name: string): Promise<TokenRecord> {
    return (await this.call<{ revoked: TokenRecord }>('DELETE', `/v1/tokens/${enc(name)}`, { idempotent: false })).revoked;
  }

  /** GetAudit: the newest `limit` changes made through the API, newest first. */
  async audit(limit = 100): Promise<AuditEntry[]> {
    return (await this.call<{ entries: AuditEntry[] }>('GET', '/v1/audit', { query: { limit }, idempotent: true })).entries;
  }

  /** The app's last `lines` log lines, oldest first. */
  async logs(name: string, lines = 100): Promise<LogLine[]> {
    return (await this.call<{ lines: LogLine[] }>('GET', `/v1/apps/${enc(name)}/logs`, { query: { lines }, idempotent: true })).lines;
  }

  /** Follows the app's log: the last `lines`, then each new line as it comes. */
  async *followLogs(name: string, options: { lines?: number; signal?: AbortSignal } = {}): AsyncGenerator<LogLine> {
    const res = await this.fetchImpl(`${this.base}/v1/apps/${enc(name)}/logs?follow=1&lines=${options.lines ?? 100}`, {
      headers: { authorization: `Bearer ${this.token}` },
      signal: options.signal,
    });
    if (!res.ok || res.body === null) throw await errorFrom(res);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 1);
        if (line !== '') yield JSON.parse(line) as LogLine;
      }
    }
  }

  /** CreateRun: a one-off run of the app's current release (berth run). */
  createRun(name: string, request: RunRequest): Promise<Run> {
    return this.call('POST', `/v1/apps/${enc(name)}/runs`, { body: request, idempotent: false });
  }

  /** ListRuns: the app's runs, newest first. */
  async listRuns(name: string): Promise<Run[]> {
    return (await this.call<{ runs: Run[] }>('GET', `/v1/apps/${enc(name)}/runs`, { idempotent: true })).runs;
  }

  getRun(name: string, id: string): Promise<Run> {
    return this.call('GET', `/v1/apps/${enc(name)}/runs/${enc(id)}`, { idempotent: true });
  }

  /** StopRun: a pending run ends at once, a running one is stopped by its hoster (SIGTERM, then SIGKILL). */
  stopRun(name: string, id: string): Promise<Run> {
    return this.call('POST', `/v1/apps/${enc(name)}/runs/${enc(id)}/stop`, { idempotent: true });
  }

  /** The run's output so far (the last piece has `exit` once it ended). */
  async runOutput(name: string, id: string): Promise<RunOutput[]> {
    return (await this.call<{ output: RunOutput[] }>('GET', `/v1/apps/${enc(name)}/runs/${enc(id)}/output`, { idempotent: true })).output;
  }

  /**
   * Follows the run's output from its start until its end (the last piece has `exit`). Leaving
   * early (abort `signal`) stops a run that was not detached.
   */
  async *followRun(name: string, id: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<RunOutput> {
    const res = await this.fetchImpl(`${this.base}/v1/apps/${enc(name)}/runs/${enc(id)}/output?follow=1`, {
      headers: { authorization: `Bearer ${this.token}` },
      signal: options.signal,
    });
    if (!res.ok || res.body === null) throw await errorFrom(res);
    yield* ndjson<RunOutput>(res.body as unknown as AsyncIterable<Uint8Array>);
  }

  /** The WebSocket URL of an interactive run's terminal (send the token as a bearer header). */
  runTerminalUrl(name: string, id: string): string {
    return `${this.base.replace(/^http/, 'ws')}/v1/apps/${enc(name)}/runs/${enc(id)}/terminal`;
  }

  /** AddCron: a scheduled job of the app (berth cron:add). */
  addCron(name: string, request: CronRequest): Promise<CronJob> {
    return this.call('POST', `/v1/apps/${enc(name)}/cron`, { body: request, idempotent: false });
  }

  /** ListCron: the app's scheduled jobs, with their next tick and last result. */
  async listCron(name: string): Promise<CronJob[]> {
    return (await this.call<{ jobs: CronJob[] }>('GET', `/v1/apps/${enc(name)}/cron`, { idempotent: true })).jobs;
  }

  /** RemoveCron by id. */
  removeCron(name: string, id: string): Promise<CronJob> {
    return this.call('DELETE', `/v1/apps/${enc(name)}/cron/${enc(id)}`, { idempotent: true });
  }

  async listMachines(): Promise<Machine[]> {
    return (await this.call<{ machines: Machine[] }>('GET', '/v1/machines', { idempotent: true })).machines;
  }

  /** Every machine with its proxy's load and culprit over the last hour, oldest sample first. */
  async machinesLoad(): Promise<MachineLoadHistory[]> {
    return (await this.call<{ machines: MachineLoadHistory[] }>('GET', '/v1/machines/load', { idempotent: true })).machines;
  }

  /**
   * Stores a bundle (an app's .tar.gz) under its sha256 hex digest. `created` is false when
   * it was stored already. A byte array is sent again after a network failure or a 503; a
   * stream cannot be, so it is sent once.
   */
  async uploadBundle(digest: string, body: Uint8Array | ReadableStream<Uint8Array>): Promise<{ digest: string; size: number; created: boolean }> {
    const repeatable = body instanceof Uint8Array;
    const res = await this.send(
      'PUT',
      `/v1/bundles/${enc(digest)}`,
      {
        headers: { 'content-type': 'application/gzip', accept: 'application/json' },
        body,
        // fetch streams a ReadableStream body only in half-duplex mode.
        ...(repeatable ? {} : { duplex: 'half' }),
      },
      { idempotent: repeatable, timeoutMs: BUNDLE_TIMEOUT_MS },
    );
    const out = (await res.json()) as { digest: string; size: number };
    return { digest: out.digest, size: out.size, created: res.status === 201 };
  }

  /** True when the registry stores the bundle `digest`. */
  async hasBundle(digest: string): Promise<boolean> {
    const res = await this.send('HEAD', `/v1/bundles/${enc(digest)}`, {}, { idempotent: true, timeoutMs: this.timeoutMs, okStatuses: [404] });
    return res.status !== 404;
  }

  /** The bytes of bundle `digest` (`bundle_not_found` when absent). Verify them against the digest before use. */
  async downloadBundle(digest: string): Promise<Uint8Array> {
    const res = await this.send('GET', `/v1/bundles/${enc(digest)}`, { headers: { accept: 'application/gzip' } }, { idempotent: true, timeoutMs: BUNDLE_TIMEOUT_MS });
    return new Uint8Array(await res.arrayBuffer());
  }

  async health(): Promise<{ status: string }> {
    return this.call('GET', '/healthz', { idempotent: true });
  }

  /**
   * Follows the event stream (server-sent events) from `from`, or from now. Yields events;
   * a `resync` event means events were lost: reload full state, then keep reading.
   */
  async *events(options: { from?: string; signal?: AbortSignal } = {}): AsyncGenerator<RegistryEvent | { kind: 'resync'; from: string }> {
    const query = options.from !== undefined ? `?from=${enc(options.from)}` : '';
    const res = await this.fetchImpl(`${this.base}/v1/events${query}`, {
      headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' },
      signal: options.signal,
    });
    if (!res.ok || res.body === null) throw await errorFrom(res);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let kind = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) kind = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (data === '' || kind === 'ready') continue;
        if (kind === 'resync') yield { kind: 'resync', from: (JSON.parse(data) as { from: string }).from };
        else yield JSON.parse(data) as RegistryEvent;
      }
    }
  }

  private async call<T>(method: string, path: string, options: CallOptions): Promise<T> {
    let url = `${this.base}${path}`;
    if (options.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(options.query)) if (v !== undefined) q.set(k, String(v));
      const s = q.toString();
      if (s) url += `?${s}`;
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: 'application/json' };
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const attempts = options.idempotent ? this.retries + 1 : 1;
    let lastError: BerthApiError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await delay(Math.min(100 * 2 ** attempt, 2000) * (0.5 + Math.random() / 2));
      let res: Response;
      try {
        res = await this.fetchImpl(url, { method, headers, body, signal: AbortSignal.timeout(Math.max(this.timeoutMs, options.timeoutMs ?? 0)) });
      } catch (err) {
        lastError = new BerthApiError('network_error', 0, `Cannot reach the berth API at ${this.base}: ${describe(err)}. Check BERTH_URL and that the registry runs.`, { cause: err });
        continue;
      }
      if (res.ok) return (await res.json()) as T;
      lastError = await errorFrom(res);
      if (res.status !== 503) break;
    }
    throw lastError!;
  }

  /**
   * Sends one request that is not JSON both ways (bundles) and returns the answer when it is
   * 2xx or in `okStatuses`; otherwise throws it as a BerthApiError. Retries like `call`.
   */
  private async send(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: Uint8Array | ReadableStream<Uint8Array>; duplex?: 'half' },
    options: { idempotent: boolean; timeoutMs: number; okStatuses?: number[] },
  ): Promise<Response> {
    const headers = { authorization: `Bearer ${this.token}`, ...init.headers };
    const attempts = options.idempotent ? this.retries + 1 : 1;
    let lastError: BerthApiError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await delay(Math.min(100 * 2 ** attempt, 2000) * (0.5 + Math.random() / 2));
      let res: Response;
      try {
        res = await this.fetchImpl(`${this.base}${path}`, { ...init, method, headers, signal: AbortSignal.timeout(options.timeoutMs) } as RequestInit);
      } catch (err) {
        lastError = new BerthApiError('network_error', 0, `Cannot reach the berth API at ${this.base}: ${describe(err)}. Check BERTH_URL and that the registry runs.`, { cause: err });
        continue;
      }
      if (res.ok || options.okStatuses?.includes(res.status)) return res;
      lastError = await errorFrom(res);
      if (res.status !== 503) break;
    }
    throw lastError!;
  }
}

async function errorFrom(res: Response): Promise<BerthApiError> {
  const text = await res.text().catch(() => '');
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === 'string') {
      return new BerthApiError(parsed.error.code, res.status, String(parsed.error.message ?? parsed.error.code));
    }
  } catch {
    // not JSON: fall through
  }
  return new BerthApiError('http_error', res.status, `The berth API answered ${res.status} ${res.statusText}: ${text.slice(0, 200)}`);
}

/** Objects of a newline-delimited JSON body, one per line. */
async function* ndjson<T>(body: AsyncIterable<Uint8Array>): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      if (line !== '') yield JSON.parse(line) as T;
    }
  }
}

function newRequestId(): string {
  return globalThis.crypto.randomUUID().replace(/-/g, '');
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
