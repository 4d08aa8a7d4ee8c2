import type { App, AppDetails, AutoscalePolicy, HealthCheck, Instance, InstanceState, Release, ReleaseStatus } from '../../sdk/types.js';

/** The wire types of apps, releases and their settings are the SDK's (sdk/types.ts is their one source). */
export type { App, AppDetails, AutoscalePolicy, HealthCheck, Release, ReleaseStatus };

export const DEFAULT_HEALTH_CHECK: HealthCheck = { status: 200, timeoutMs: 2000, attempts: 30, intervalMs: 5000, failures: 3 };

/** What a policy set with only min and max aims for. */
export const DEFAULT_AUTOSCALE: Omit<AutoscalePolicy, 'min' | 'max'> = { targetCpu: 0.6, cooldownUpSeconds: 30, cooldownDownSeconds: 120 };


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
    autoscaleByType: parseObject(h.autoscaleByType) as Record<string, AutoscalePolicy>,
    formation: parseObject(h.formation) as Record<string, number>,
    createdAt: Number(h.createdAt ?? 0),
    updatedAt: Number(h.updatedAt ?? 0),
  };
}

/** A JSON object field of the app hash; absent (or Lua's empty []) is {}. */
function parseObject(json: string | undefined): Record<string, unknown> {
  if (!json) return {};
  const v: unknown = JSON.parse(json);
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** The policy of a process type: web's is the app's `autoscale`, every other type's its `autoscaleByType` entry. */
export function policyOf(app: Pick<App, 'autoscale' | 'autoscaleByType'>, process: string): AutoscalePolicy | null {
  return process === 'web' ? app.autoscale : (app.autoscaleByType[process] ?? null);
}

/** Instances wanted of a process type: web's is the app's `instances`, every other type's its formation entry, 1 when none. */

export function wantedOf(app: Pick<App, 'instances' | 'formation'>, process: string): number {
  return process === 'web' ? app.instances : (app.formation[process] ?? 1);
}

export function releaseFromJson(json: string): Release {
  const r = JSON.parse(json) as Release;
  // Lua's cjson has no empty-object/array distinction: normalise what may come back as [].
  if (Array.isArray(r.env)) r.env = {};
  if (Array.isArray(r.requirements)) r.requirements = {};
  if (Array.isArray(r.processes)) r.processes = {};
  return r;
}

/** Summarises what runs for an app. */
export function appDetails(app: App, current: Release | null, instances: Instance[], publicUrl: string | null): AppDetails {
  const instancesByState: Partial<Record<InstanceState, number>> = {};
  for (const i of instances) instancesByState[i.state] = (instancesByState[i.state] ?? 0) + 1;
  // Web's: `instances` is web's count (workers show in the instance list with their type).
  const running = instances.filter((i) => i.process === 'web' && i.release === app.release && i.state === 'running').length;
  const runningByRelease: Record<string, number> = {};
  for (const i of instances) if (i.process === 'web' && i.state === 'running' && i.release !== null) runningByRelease[i.release] = (runningByRelease[i.release] ?? 0) + 1;
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
