import type { Attributes, Instance, InstanceState } from './instance.js';

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
  /** Once it runs, the check comes this often, for the instance's whole life. @default 5000 */
  intervalMs: number;
  /** Failed checks in a row, once it runs, before it is taken out of routing and restarted. @default 3 */
  failures: number;
}

export const DEFAULT_HEALTH_CHECK: HealthCheck = { status: 200, timeoutMs: 2000, attempts: 30, intervalMs: 5000, failures: 3 };

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
  /** The git commit (40 hex) its code came from, when a `git push` made it or its code. */
  commit?: string;
  createdAt: number;
  status: ReleaseStatus;
  /** Why it failed, when it did. */
  reason?: string;
}

/** An app's scaling policy (see docs/scaler.md); an app without one is never touched. */
export interface AutoscalePolicy {
  min: number;
  max: number;
  /** CPU per instance to aim for, in cores (1.0 = one core kept busy; a Node app uses at most about one). */
  targetCpu: number;
  /** Requests in flight per instance to aim for; absent: CPU alone decides. */
  targetInFlight?: number;
  /** After any change, no growth for this long. */
  cooldownUpSeconds: number;
  /** After any change, no shrinking for this long. */
  cooldownDownSeconds: number;
}

/** What a policy set with only min and max aims for. */
export const DEFAULT_AUTOSCALE: Omit<AutoscalePolicy, 'min' | 'max'> = { targetCpu: 0.6, cooldownUpSeconds: 30, cooldownDownSeconds: 120 };

/** What the user wants of an app. */
export interface App {
  name: string;
  path: string;
  /** Instances wanted. */
  instances: number;
  stripPrefix: boolean;
  /** Version of the release the app should run. */
  release: number;
  state: 'active' | 'deleting';
  /** When set, the scaler changes `instances` within it (berth scale NAME --min --max --target). */
  autoscale: AutoscalePolicy | null;
  createdAt: number;
  updatedAt: number;
}

/** An app with what actually runs: the answer of GetAppDetails. */
export interface AppDetails extends App {
  url: string | null;
  status: 'running' | 'deploying' | 'failed' | 'stopped' | 'deleting' | 'starting';
  current: Release | null;
  instancesByState: Partial<Record<InstanceState, number>>;
  /** Running instances of the current release. */
  running: number;
  /** Running instances by release version: an older release still serving shows here during a deploy. */
  runningByRelease: Record<string, number>;
}

export function appFromHash(h: Record<string, string>): App | undefined {
  if (!h.name) return undefined;
  return {
    name: h.name,
    path: h.path ?? '',
    instances: Number(h.instances ?? 0),
    stripPrefix: h.stripPrefix === '1',
    release: Number(h.release ?? 0),
    state: h.state === 'deleting' ? 'deleting' : 'active',
    autoscale: h.autoscale ? (JSON.parse(h.autoscale) as AutoscalePolicy) : null,
    createdAt: Number(h.createdAt ?? 0),
    updatedAt: Number(h.updatedAt ?? 0),
  };
}

export function releaseFromJson(json: string): Release {
  const r = JSON.parse(json) as Release;
  // Lua's cjson has no empty-object/array distinction: normalise what may come back as [].
  if (Array.isArray(r.env)) r.env = {};
  if (Array.isArray(r.requirements)) r.requirements = {};
  return r;
}

/** Summarises what runs for an app. */
export function appDetails(app: App, current: Release | null, instances: Instance[], publicUrl: string | null): AppDetails {
  const instancesByState: Partial<Record<InstanceState, number>> = {};
  for (const i of instances) instancesByState[i.state] = (instancesByState[i.state] ?? 0) + 1;
  const running = instances.filter((i) => i.release === app.release && i.state === 'running').length;
  const runningByRelease: Record<string, number> = {};
  for (const i of instances) if (i.state === 'running' && i.release !== null) runningByRelease[i.release] = (runningByRelease[i.release] ?? 0) + 1;
  let status: AppDetails['status'];
  if (app.state === 'deleting') status = 'deleting';
  else if (current?.status === 'failed') status = 'failed';
  else if (app.instances === 0) status = 'stopped';
  else if (current?.status === 'deploying') status = instances.some((i) => i.state === 'running') ? 'deploying' : 'starting';
  else status = running >= app.instances ? 'running' : 'starting';
  return {
    ...app,
    url: publicUrl === null ? null : `${publicUrl.replace(/\/+$/, '')}${app.path === '/' ? '/' : app.path}`,
    status,
    current,
    instancesByState,
    running,
    runningByRelease,
  };
}
