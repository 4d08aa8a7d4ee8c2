/** An instance record as the registry stores it and the API returns it. */
export type InstanceState = 'unclaimed' | 'claimed' | 'running' | 'draining' | 'stopping' | 'crashed';

export type Attributes = Record<string, string | number | boolean>;

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
  /** Why the instance last changed hands (e.g. lease_expired, crash_loop), or null. */
  reason: string | null;
  /** Machines it crashed or failed its health check on. */
  failedOn: string[];
  /** The last failure in the app's own words (exit code, the build's last lines), or null. */
  reasonDetail: string | null;
  /** While draining: when it may stop (ms, Redis clock). */
  drainUntil: number | null;
  /** Its hoster is leaving: a replacement starts, then this one is retired. */
  evacuating: boolean;
  /** Registration order across the registry (ties of createdAt are common). */
  seq: number;
  createdAt: number;
  updatedAt: number;
}

/** Decodes the flat field/value list that HGETALL (in Lua) returns. */
export function instanceFromFlat(flat: string[]): Instance {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  return instanceFromHash(h);
}

export function instanceFromHash(h: Record<string, string>): Instance {
  return {
    id: h.id ?? '',
    service: h.service ?? '',
    path: h.path ?? '',
    state: (h.state ?? 'unclaimed') as InstanceState,
    attributes: parseAttributes(h.attributes),
    claimAttributes: parseAttributes(h.claimAttributes),
    files: h.files ? h.files : null,
    release: h.release ? Number(h.release) : null,
    machine: h.machine ? h.machine : null,
    host: h.host ? h.host : null,
    port: h.port ? Number(h.port) : null,
    epoch: Number(h.epoch ?? 0),
    leaseUntil: h.leaseUntil ? Number(h.leaseUntil) : null,
    pid: h.pid ? Number(h.pid) : null,
    reason: h.reason ? h.reason : null,
    failedOn: h.failedOn ? h.failedOn.split(',') : [],
    reasonDetail: h.reasonDetail ? h.reasonDetail : null,
    drainUntil: h.drainUntil ? Number(h.drainUntil) : null,
    evacuating: h.evacuating === '1',
    seq: Number(h.seq ?? 0),
    createdAt: Number(h.createdAt ?? 0),
    updatedAt: Number(h.updatedAt ?? 0),
  };
}

function parseAttributes(json: string | undefined): Attributes {
  if (!json) return {};
  try {
    const v: unknown = JSON.parse(json);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Attributes) : {};
  } catch {
    return {};
  }
}
