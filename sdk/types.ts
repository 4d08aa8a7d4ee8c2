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
