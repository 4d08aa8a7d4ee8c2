import type { Attributes, Instance, InstanceState } from '../../sdk/types.js';

/** The wire types of an instance are the SDK's (sdk/types.ts is their one source). */
export type { Attributes, Instance, InstanceState };

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
    // Port 0: a process without one (a worker, a release task).
    port: h.port && h.port !== '0' ? Number(h.port) : null,
    epoch: Number(h.epoch ?? 0),
    leaseUntil: h.leaseUntil ? Number(h.leaseUntil) : null,
    pid: h.pid ? Number(h.pid) : null,
    reason: h.reason ? h.reason : null,
    failedOn: h.failedOn ? h.failedOn.split(',') : [],
    // Records from before the count, and new claims, have none.
    restarts: h.restarts ? Number(h.restarts) : 0,
    reasonDetail: h.reasonDetail ? h.reasonDetail : null,
    drainUntil: h.drainUntil ? Number(h.drainUntil) : null,
    evacuating: h.evacuating === '1',
    // Records from before process types are web.
    process: h.process ? h.process : 'web',
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
