/** The shapes the REST API sends and takes; kept free of server imports so browsers can use the SDK. */
export type Attributes = Record<string, string | number | boolean>;

export type InstanceState = 'unclaimed' | 'claimed' | 'running' | 'draining' | 'stopping' | 'crashed';

export interface Instance {
  id: string;
  service: string;
  path: string;
  state: InstanceState;
  attributes: Attributes;
  claimAttributes: Attributes;
  files: string | null;
  release: number | null;
  machine: string | null;
  host: string | null;
  port: number | null;
  epoch: number;
  leaseUntil: number | null;
  pid: number | null;
  reason: string | null;
  failedOn: string[];
  /** The last failure in the app's own words (exit code, the build's last lines), or null. */
  reasonDetail: string | null;
  drainUntil: number | null;
  evacuating: boolean;
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

export interface RegistryEvent {
  id: string;
  kind: string;
  instance?: string;
  service?: string;
  machine?: string;
  epoch?: number;
  release?: number;
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

export interface HealthCheck {
  /** HTTP path to GET; absent means a TCP connect is enough. */
  path?: string;
  status: number;
  timeoutMs: number;
  attempts: number;
  /** Once it runs, the check comes this often (ms), for the instance's whole life. */
  intervalMs: number;
  /** Failed checks in a row, once it runs, before it is taken out of routing and restarted. */
  failures: number;
}

export type ReleaseStatus = 'deploying' | 'active' | 'superseded' | 'failed';

export interface Release {
  version: number;
  bundle: string;
  env: Record<string, string>;
  command: string | null;
  requirements: Attributes;
  healthCheck: HealthCheck;
  description: string;
  createdBy: string;
  /** The git commit its code came from, when a `git push` deployed that code. */
  commit?: string;
  createdAt: number;
  status: ReleaseStatus;
  reason?: string;
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

/** An app's scaling policy: the scaler keeps its instances between min and max. */
export interface AutoscalePolicy {
  min: number;
  max: number;
  /** CPU per instance to aim for, in cores (1.0 = one core kept busy). @default 0.6 */
  targetCpu: number;
  /** Requests in flight per instance to aim for; absent: CPU alone decides. */
  targetInFlight?: number;
  /** After any change, no growth for this long. @default 30 */
  cooldownUpSeconds: number;
  /** After any change, no shrinking for this long. @default 120 */
  cooldownDownSeconds: number;
}

/** One decision of the scaler, with the numbers that made it. */
export interface ScaleDecision {
  app: string;
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

export interface AppDetails {
  name: string;
  path: string;
  instances: number;
  stripPrefix: boolean;
  release: number;
  state: 'active' | 'deleting';
  /** Set when the scaler changes its instances. */
  autoscale: AutoscalePolicy | null;
  createdAt: number;
  updatedAt: number;
  url: string | null;
  status: 'running' | 'deploying' | 'failed' | 'stopped' | 'deleting' | 'starting';
  current: Release | null;
  instancesByState: Partial<Record<InstanceState, number>>;
  /** Running instances of the current release. */
  running: number;
  /** Running instances by release version ("3": 2): an older release still serving shows here during a deploy. */
  runningByRelease: Record<string, number>;
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
}

export interface UpdateRequest {
  bundle?: string;
  env?: Record<string, string>;
  attributes?: Attributes;
  command?: string | null;
  healthCheck?: Partial<HealthCheck>;
  instances?: number;
  stripPrefix?: boolean;
}

export interface LogLine {
  id: string;
  time: number;
  instance: string;
  /** The app's stdout or stderr, or its build's output (npm's, with berth's "----->" lines). */
  stream: 'out' | 'err' | 'build';
  line: string;
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
