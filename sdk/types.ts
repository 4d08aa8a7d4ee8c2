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
  createdAt: number;
  status: ReleaseStatus;
  reason?: string;
}

export interface AppDetails {
  name: string;
  path: string;
  instances: number;
  stripPrefix: boolean;
  release: number;
  state: 'active' | 'deleting';
  createdAt: number;
  updatedAt: number;
  url: string | null;
  status: 'running' | 'deploying' | 'failed' | 'stopped' | 'deleting' | 'starting';
  current: Release | null;
  instancesByState: Partial<Record<InstanceState, number>>;
  running: number;
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
  stream: 'out' | 'err';
  line: string;
}
