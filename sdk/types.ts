/**
 * The shapes the REST API sends and takes, and the one source of the wire types: the registry
 * imports them from here. Kept free of server imports so browsers can use the SDK.
 */
export type Attributes = Record<string, string | number | boolean>;

export type InstanceState = 'unclaimed' | 'claimed' | 'running' | 'draining' | 'stopping' | 'crashed';

/**
 * Every kind of event on the registry's stream (`RegistryEvent.kind`), as the Lua scripts
 * append them; test/unit/wire-vocabulary.test.ts keeps the scripts to this list.
 */
export const EVENT_KINDS = [
  'registered',
  'claimed',
  'running',
  'unroutable',
  'released',
  'expired',
  'evacuating',
  'draining',
  'stopping',
  'unregistered',
  'machine-joined',
  'app-created',
  'app-updated',
  'app-deleting',
  'app-deleted',
  'app-autoscale',
  'release-created',
  'release-active',
  'release-failed',
  'scaler-decision',
  'domain-added',
  'domain-removed',
  'certificate-changed',
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/**
 * Why a hoster gave an instance back because it failed there: the machine is recorded in the
 * instance's `failedOn`, so that the reconciler can tell a bad release from a bad machine.
 */
export const FAILURE_REASONS = ['crash_loop', 'out_of_memory', 'unhealthy', 'not_listening', 'build_failed', 'bundle_rejected', 'no_start_command', 'invalid_env', 'limits_unavailable', 'release_command_failed'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** Why an instance is being retired by the reconciler (its `reason` while draining and stopping). */
export const RETIRE_REASONS = ['scaled_down', 'replaced', 'app_deleted', 'release_failed'] as const;
export type RetireReason = (typeof RETIRE_REASONS)[number];

/**
 * Every reason berth itself gives an instance (`Instance.reason`, an event's `reason` for
 * instance events): failures, the other ways a claim ends, retirement. A hoster speaking the
 * REST API may give its own snake_case reasons too.
 */
export const INSTANCE_REASONS = [
  ...FAILURE_REASONS,
  ...RETIRE_REASONS,
  /** Its port was held by another user's process. */
  'port_taken',
  /** It could not start (the shim or the process failed before the health check). */
  'start_failed',
  /** Its hoster stopped (and gave back what it ran). */
  'hoster_stopped',
  /** Its hoster found its claim taken over (a higher epoch) and stopped its copy. */
  'fenced',
  /** Its lease ended without a renewal. */
  'lease_expired',
  /** Its hoster stopped it once it was stopping, and its record went. */
  'stopped',
] as const;
export type InstanceReason = (typeof INSTANCE_REASONS)[number];

/** An instance record as the registry stores it and the API returns it. */
export interface Instance {
  id: string;
  service: string;
  path: string;
  state: InstanceState;
  /** Requirements and labels given at registration. */
  attributes: Attributes;
  /** Facts the claiming machine gave with its claim. */
  claimAttributes: Attributes;
  /** Digest of the bundle the instance runs, or null. */
  files: string | null;
  release: number | null;
  machine: string | null;
  host: string | null;
  port: number | null;
  /** Fencing token of the current (or last) claim; 0 when never claimed. */
  epoch: number;
  /** When the current lease ends (ms since the epoch, Redis clock), or null when unclaimed. */
  leaseUntil: number | null;
  pid: number | null;
  /** Why the instance last changed hands (one of INSTANCE_REASONS, or a REST client's own), or null. */
  reason: string | null;
  /** Machines it crashed or failed its health check on. */
  failedOn: string[];
  /**
   * How many times its hoster started it again in place under the current (or last) claim, after
   * a crash or a failed health check; 0 for a new claim (and in records from before the count).
   */
  restarts: number;
  /** The last failure in the app's own words (exit code, the build's last lines), or null. */
  reasonDetail: string | null;
  /** While draining: when it may stop (ms, Redis clock). */
  drainUntil: number | null;
  /** Its hoster is leaving: a replacement starts, then this one is retired. */
  evacuating: boolean;
  /**
   * Its process type: `web` (routed on the app's path, health-checked), a Procfile type such as
   * `worker` (no port, no route), or `release` (the release's release command, run once).
   * Records written before process types existed have none: they are `web`.
   */
  process: string;
  /** Registration order across the registry (ties of createdAt are common). */
  seq: number;
  createdAt: number;
  updatedAt: number;
}

export interface Machine {
  name: string;
  facts: Record<string, unknown>;
  heartbeatAt: number;
  joinedAt: number;
}

/** One sample of a machine's proxy reports (GetLoad and GetCulprit), taken by the registry. */
export interface LoadSample {
  /** ms since the epoch. */
  at: number;
  /** 5-minute load per CPU, or null when the proxy did not answer. */
  load: number | null;
  cpus: number | null;
  culprit: { app: string; instance: string; cpuShare: number } | null;
  /** CPU cores each app's instances on the machine used. */
  apps: Record<string, number>;
  /** Why there are no numbers, when there are none. */
  error: string | null;
}

export interface MachineLoadHistory {
  name: string;
  facts: Record<string, unknown>;
  heartbeatAt: number;
  /** The last hour, oldest first. */
  samples: LoadSample[];
}

/** One change in the registry, as appended to the event stream. */
export interface RegistryEvent {
  /** Stream entry id; pass the last one seen to read what follows. */
  id: string;
  kind: EventKind;
  instance?: string;
  service?: string;
  machine?: string;
  epoch?: number;
  /** For app events: the release version concerned. */
  release?: number;
  /** For domain events: the domain (lowercase ASCII; `service` is its app). */
  domain?: string;
  /** For instance events one of INSTANCE_REASONS (or a REST client's own); for app and scaler events, what happened in words. */
  reason?: string;
}

export interface ClaimRequest {
  machine: string;
  host?: string;
  port: number;
  attributes?: Attributes;
  path?: string;
  leaseMs?: number;
  /** Set by the client when absent, and kept across its retries. */
  requestId?: string;
}

/** How a hoster decides that an instance is ready to be routed. */
export interface HealthCheck {
  /** HTTP path to GET; absent means a TCP connect is enough. */
  path?: string;
  /** Status the HTTP check expects. @default 200 */
  status: number;
  /** Per attempt. @default 2000 */
  timeoutMs: number;
  /** Failed attempts (the first few quickly, then one a second) before the instance counts as unhealthy. @default 30 */
  attempts: number;
  /** Once it runs, the check comes this often (ms), for the instance's whole life. @default 5000 */
  intervalMs: number;
  /** Failed checks in a row, once it runs, before it is taken out of routing and restarted. @default 3 */
  failures: number;
}

export type ReleaseStatus = 'deploying' | 'active' | 'superseded' | 'failed';

/** An immutable snapshot of what an app runs: code and configuration together. */
export interface Release {
  version: number;
  /** sha256 of the bundle (.tar.gz). */
  bundle: string;
  env: Record<string, string>;
  /** Start command; null lets the hoster choose (Procfile, npm start, server.js, index.js). */
  command: string | null;
  /** Attributes a machine must meet (e.g. minMemoryMb) and labels. */
  requirements: Attributes;
  healthCheck: HealthCheck;
  /** What made it, e.g. "Deploy 3f2a9c1", "Set DEBUG", "Rollback to v2". */
  description: string;
  createdBy: string;
  /** The git commit its code came from, when a `git push` deployed that code. */
  commit?: string;
  createdAt: number;
  status: ReleaseStatus;
  /** Why it failed, when it did. */
  reason?: string;
  /** Process types other than web and their commands (`worker: node worker.js`); absent on older releases: none. */
  processes?: Record<string, string>;
  /** Run once, before any instance of this release starts (the Procfile's `release:` line); null or absent: none. */
  releaseCommand?: string | null;
  /** How long the release command may run. @default 600000 */
  releaseTimeoutMs?: number;
  /** What became of the release command, once it finished. */
  releaseTask?: ReleaseTaskOutcome;
}

/** The outcome of a release's release command, recorded once by the hoster that ran it. */
export interface ReleaseTaskOutcome {
  status: 'succeeded' | 'failed';
  /** `exit 0`, `exit 1`, `killed by SIGKILL`, `timed out after 600 s`, and on failure its last lines. */
  detail: string;
  machine: string;
  /** ms since the epoch (Redis clock). */
  at: number;
}

/** An app's git remote (`GET /v1/apps/:name/git`): push to `<API URL><repository>` to deploy. */
export interface GitRemote {
  name: string;
  /** `/git/<name>.git`, on the registry API's URL. */
  repository: string;
  /** The branch set with `berth git:branch`, or null. */
  branch: string | null;
  /** The branches whose pushes deploy: `branch`, else main and master. */
  deployBranches: string[];
}

/** A scaling policy of one process type of an app: the scaler keeps that type's instances between min and max (see docs/scaler.md); a type without one is never touched. */
export interface AutoscalePolicy {
  min: number;
  max: number;
  /** CPU per instance to aim for, in cores (1.0 = one core kept busy). @default 0.6 */
  targetCpu: number;
  /** Requests in flight per instance to aim for; absent: CPU alone decides. Web's only: other types serve no requests. */
  targetInFlight?: number;
  /** After any change, no growth for this long. @default 30 */
  cooldownUpSeconds: number;
  /** After any change, no shrinking for this long. @default 120 */
  cooldownDownSeconds: number;
}

/** The body of PUT /v1/apps/:name/autoscale: a policy, of the process type `type` (default web). */
export type AutoscaleRequest = Pick<AutoscalePolicy, 'min' | 'max'> & Partial<AutoscalePolicy> & { type?: string };

/** One decision of the scaler, with the numbers that made it. */
export interface ScaleDecision {
  app: string;
  /** The process type it scales; absent in decisions logged before types could be scaled: web. */
  process?: string;
  from: number;
  /** Equal to `from` for a notice (at_max) and a move (rebalance). */
  to: number;
  cause: 'below_min' | 'above_max' | 'hot_machine' | 'over_target' | 'idle' | 'at_max' | 'rebalance';
  reason: string;
  /** For a move (rebalance): the instance moved, the machine it leaves and the cool machines. */
  move?: { instance: string; from: string; to: string[] };
  /** When it was applied (ms). */
  at: number;
  /** The scaler that made it. */
  scaler: string;
  inputs: {
    wanted: number;
    running: number;
    policy: AutoscalePolicy;
    cpuCores: number | null;
    inFlight: number | null;
    cpuPerInstance: number | null;
    inFlightPerInstance: number | null;
    hotCulpritOn: string[];
    machineLoads: Record<string, number | null>;
    everyMachineHot: boolean;
  };
}

/** What the user wants of an app (its record in the registry). */
export interface App {
  name: string;
  path: string;
  /** Instances wanted (of web). */
  instances: number;
  stripPrefix: boolean;
  /** Version of the release the app should run. */
  release: number;
  state: 'active' | 'deleting';
  /** Web's policy: when set, the scaler changes `instances` within it (berth scale NAME --min --max --target). */
  autoscale: AutoscalePolicy | null;
  /** Policies of process types other than web, by type: the scaler changes that type's formation entry within each (berth scale NAME --type worker --min --max). */
  autoscaleByType: Record<string, AutoscalePolicy>;
  /** Instances wanted of each process type other than web (`instances` is web's); a type of the release left out runs 1. */
  formation: Record<string, number>;
  createdAt: number;
  updatedAt: number;
}

/** An app with what actually runs: the answer of getApp. */
export interface AppDetails extends App {
  url: string | null;
  status: 'running' | 'deploying' | 'failed' | 'stopped' | 'deleting' | 'starting';
  current: Release | null;
  instancesByState: Partial<Record<InstanceState, number>>;
  /** Running instances of the current release. */
  running: number;
  /** Running instances by release version ("3": 2): an older release still serving shows here during a deploy. */
  runningByRelease: Record<string, number>;
  /** The add-ons attached to it (berth addons:attach), with where each stands. */
  addons?: AppAddon[];
}

/** Where an app's own domain stands with its certificate (berth domains:list). */
export interface DomainCertificate {
  /**
   * `none`: no certificate of its own (ACME is off): the balancer's own or configured one serves it.
   * `pending`: ACME is on and none was issued yet. `issued`: one is served, until `notAfter`.
   * `failed`: the last attempt failed with `error` (the CA's words); the next is at `retryAt`.
   */
  state: 'none' | 'pending' | 'issued' | 'failed';
  /** `acme` or `operator` (berth certs:add), once there is one. */
  source?: 'acme' | 'operator';
  issuer?: string;
  /** Expiry (ms since the epoch). */
  notAfter?: number;
  error?: string;
  retryAt?: number;
}

/** A domain's certificate as berth certs lists it (never with its key). */
export interface CertificateRecord {
  domain: string;
  /** `operator` (berth certs:add, taking precedence) or `acme`. */
  source: 'acme' | 'operator';
  state: 'pending' | 'issued' | 'failed';
  issuer?: string;
  notBefore?: number;
  notAfter?: number;
  serial?: string;
  /** The key of the certificate these fields describe (ECDSA when the domain has both). */
  keyType?: 'ecdsa' | 'rsa';
  /** An operator's RSA certificate served beside the ECDSA one (to clients that cannot verify ECDSA). */
  second?: { keyType: 'ecdsa' | 'rsa'; issuer: string; notBefore: number; notAfter: number; serial: string };
  /** The last ACME failure in the CA's words, and when the next attempt is. */
  error?: string;
  failures: number;
  retryAt?: number;
}

/** One of an app's own hosts (berth domains:add). */
export interface Domain {
  /** Lowercase ASCII (punycode), without a trailing dot; `*.example.com` for a wildcard. */
  domain: string;
  app: string;
  /** The path prefix the app answers on inside the domain (`/` by default). */
  path: string;
  createdAt: number;
  certificate: DomainCertificate;
}

/** The kinds of add-on berth runs. */
export type AddonKind = 'postgres' | 'redis';

/**
 * Where an add-on's server stands: `unclaimed` before its machine's hoster took it, `starting`,
 * `running`, `crashed` (restarted with backoff), `stopped` (its hoster gave it back, e.g. on
 * shutdown), `unavailable` (its machine is silent, or its hoster's lease ended: the add-on is on
 * that machine's disk and runs nowhere else until the machine returns, or until a restore moves
 * it to another machine: restoreAddon's `toMachine`).
 */
export type AddonState = 'unclaimed' | 'starting' | 'running' | 'crashed' | 'stopped' | 'unavailable';

/** An add-on (berth addons:info): a PostgreSQL or a Redis pinned to one machine. The password is never in it. */
export interface Addon {
  name: string;
  kind: AddonKind;
  machine: string;
  /** Where the server listens (the machine's address that apps reach). */
  host: string;
  port: number;
  /** The plan: Redis's maxmemory; PostgreSQL's shared_buffers is a quarter of it. */
  memoryMb: number;
  state: AddonState;
  /** Why it is in that state, when it is not running (the server's last words, or the machine's silence). */
  detail: string;
  /** Restarts of its server since its hoster took it. */
  restarts: number;
  /** Its connection URL with the password left out (apps get the whole one as their variable). */
  url: string;
  /** The apps it is attached to, and as which variable. */
  attachments: { app: string; variable: string }[];
  createdAt: number;
  createdBy: string;
  /** What its hoster last measured of its server (every 15 s by default); null before the first measurement. */
  usage: AddonUsage | null;
  /** Its scheduled backups (berth addons:backup NAME --every 24h); null when off. */
  backupSchedule: AddonBackupSchedule | null;
  /** The last scheduled backup tried (kept when the schedule is turned off); null before any. */
  lastScheduledBackup: { at: number; backup: string | null; error: string | null } | null;
}

/** How often an add-on is backed up by the registries (once per period across all of them). */
export interface AddonBackupSchedule {
  /** The period as given back: 24h, 30m, 1h30m. */
  every: string;
  everyMs: number;
  /** When the next is due (ms since the epoch, Redis's clock): the start of the next period. */
  nextAt: number;
}

/** An add-on's data size and connections at a moment (berth addons:info: "data size", "connections"). */
export interface AddonUsage {
  /** Its data on disk: PostgreSQL's pg_database_size; Redis's data folder (append-only file and snapshot). */
  bytes: number;
  /** Clients connected then (PostgreSQL: the client backends of its database). */
  connections: number;
  /** Redis's used_memory (what the plan's maxmemory limits); null for PostgreSQL. */
  memoryBytes: number | null;
  /** When it was measured (ms since the epoch). */
  measuredAt: number;
}

/** A backup of an add-on (berth addons:backups): kept by the add-on's name, the newest first. */
export interface AddonBackup {
  /** Its time, UTC: 20261203T183500123Z. */
  id: string;
  addon: string;
  kind: AddonKind;
  sizeBytes: number;
  createdAt: number;
}

/** An add-on as an app sees it (berth info): attached as `variable`. */
export interface AppAddon {
  name: string;
  kind: AddonKind;
  variable: string;
  state: AddonState;
}

export interface CreateAddonRequest {
  app: string;
  kind: string;
  name?: string;
  machine?: string;
  /** The variable the app gets its URL as (default DATABASE_URL for postgres, REDIS_URL for redis). */
  as?: string;
  memoryMb?: number;
}

export interface PublishRequest {
  name: string;
  path: string;
  instances: number;
  /** sha256 of a bundle uploaded with uploadBundle. */
  bundle: string;
  env?: Record<string, string>;
  attributes?: Attributes;
  command?: string;
  healthCheck?: Partial<HealthCheck>;
  stripPrefix?: boolean;
  /** Process types besides the Procfile's (`{"worker":"node worker.js"}`); they win over its lines of the same name. */
  processes?: Record<string, string>;
  /** The release command (wins over the Procfile's `release:` line). */
  releaseCommand?: string;
  releaseTimeoutMs?: number;
}

export interface UpdateRequest {
  bundle?: string;
  env?: Record<string, string>;
  attributes?: Attributes;
  command?: string | null;
  healthCheck?: Partial<HealthCheck>;
  instances?: number;
  stripPrefix?: boolean;
  processes?: Record<string, string>;
  /** null: back to the Procfile's (or none). */
  releaseCommand?: string | null;
  releaseTimeoutMs?: number;
}

export interface LogLine {
  id: string;
  time: number;
  instance: string;
  /** The app's stdout or stderr, or its build's output (npm's, with berth's "----->" lines). */
  stream: 'out' | 'err' | 'build';
  line: string;
  /** The process type of the instance that printed it (absent: web). */
  process?: string;
}

/** A named API token's grant (never the token itself, except once in NewToken). */
export interface TokenRecord {
  name: string;
  /** The one app it may read and change, or null for every app. */
  app: string | null;
  /** Reads only. */
  readOnly: boolean;
  /** ms since the epoch. */
  createdAt: number;
  /** The name of the token that made it. */
  createdBy: string;
}

/** A token just made: `token` is shown this once and never again. */
export interface NewToken extends TokenRecord {
  token: string;
}

/** One call that could change something, as the audit log keeps it. */
export interface AuditEntry {
  id: string;
  /** ms since the epoch. */
  at: number;
  /** The name of the token that made the call. */
  token: string;
  method: string;
  path: string;
  app: string | null;
  status: number;
}

/** How a one-off run stands: waiting for a hoster, claimed and starting, running, or ended (exited with a code, failed to start, stopped, lost with its machine). */
export type RunState = 'pending' | 'starting' | 'running' | 'exited' | 'failed' | 'stopped' | 'lost';
export const RUN_STATES: readonly RunState[] = ['pending', 'starting', 'running', 'exited', 'failed', 'stopped', 'lost'];

/** A one-off run of an app's release (berth run, or a cron job's tick). */
export interface Run {
  id: string;
  app: string;
  release: number;
  /** The program and its arguments. */
  command: string[];
  /** Runs on a PTY, driven over the registry's WebSocket (berth run -it). */
  interactive: boolean;
  /** Keeps running when its CLI goes away. */
  detached: boolean;
  timeoutMs: number;
  state: RunState;
  createdAt: number;
  machine: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  exitCode: number | null;
  signal: string | null;
  /** Why it ended other than by exiting (timeout, client_gone, stopped, lease_expired, not_started, or the install's error code). */
  reason: string | null;
  /** The cron job that fired it, if one did, and the tick it fired for (ms since 1970). */
  cron: string | null;
  cronTick: number | null;
}

/** What POST /v1/apps/:name/runs takes. */
export interface RunRequest {
  command: string[];
  interactive?: boolean;
  detached?: boolean;
  /** @default 3600000 (1 h) */
  timeoutMs?: number;
}

/** One piece of a run's output, as GET /v1/apps/:name/runs/:id/output streams it (NDJSON); the last one has `exit`. */
export type RunOutput = { stream: 'out' | 'err'; data: string } | { exit: Pick<Run, 'state' | 'exitCode' | 'signal' | 'reason'> };

/** A scheduled job: a detached run of the app's current release at each tick of its schedule. */
export interface CronJob {
  id: string;
  app: string;
  /** A cron expression (5 fields, or 6 with seconds first), in UTC. */
  schedule: string;
  command: string[];
  timeoutMs: number;
  createdAt: number;
  /** The next tick (ms since 1970). */
  nextAt: number | null;
  /** The run of its last tick, if any has fired. */
  lastRun: Pick<Run, 'id' | 'state' | 'exitCode' | 'createdAt' | 'finishedAt'> | null;
}

/** What POST /v1/apps/:name/cron takes. */
export interface CronRequest {
  schedule: string;
  command: string[];
  /** Each tick's run's time limit. @default 3600000 (1 h) */
  timeoutMs?: number;
}
