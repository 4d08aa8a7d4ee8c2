import { KEY_PREFIX_PATTERN } from '../../common/names.js';

/**
 * Every Redis key of the registry, built in one place. All keys share one prefix that carries
 * a Redis Cluster hash tag (`{berth}:`), so that every multi-key script runs in one slot.
 * Scripts that must reach a key they only learn the name of inside Lua (claim, reap) get its
 * format from `formats`: the key built here with KEY_NAME_SLOT where the name goes
 * (scripts/include/keyFormat.lua fills it in), so that every key name is made here.
 */
export const DEFAULT_KEY_PREFIX = 'berth';


/** Where the name goes in a key format: a character no prefix can hold, so the first one is the slot. */
export const KEY_NAME_SLOT = '*';

/** Formats of the keys that scripts build from names they read in Redis. */
export interface KeyFormats {
  instance: string;
  serviceInstances: string;
  serviceUnclaimed: string;
}

export interface RegistryKeys {
  /** The tagged prefix itself. */
  readonly prefix: string;
  /** Key formats for scripts (see KEY_NAME_SLOT). */
  readonly formats: KeyFormats;
  instance(id: string): string;
  /** Sorted set of the service's instance ids, scored by registration order. */
  serviceInstances(service: string): string;
  /** Sorted set of the service's unclaimed instance ids, scored by registration order. */
  serviceUnclaimed(service: string): string;
  /** Set of service names that have at least one instance. */
  readonly services: string;
  /** Sorted set of every unclaimed instance id, scored by registration order. */
  readonly unclaimed: string;
  /** Sorted set of claimed instance ids, scored by lease expiry (ms, Redis clock). */
  readonly leases: string;
  /** Counter of claim epochs: only ever increases, so a later claim always has a higher epoch. */
  readonly epoch: string;
  /** Counter giving each registration its order. */
  readonly sequence: string;
  /** Remembers which instance a claim request got, so that a retried request is not a second claim. */
  claimRequest(requestId: string): string;
  machine(name: string): string;
  /** Sorted set of machine names, scored by last heartbeat (ms). */
  readonly machines: string;
  /** The one event stream every change appends to. */
  readonly events: string;
  /** Sorted set of machines holding claims, scored by when each was last heard from (ms, Redis clock). */
  readonly presence: string;
  /** Hash of machine → its control-plane grace (ms), as it last told it. */
  readonly presenceGrace: string;
  /** Hash of the reaper's last tick, its hold on expiries, and its settings (hosters read them). */
  readonly reaperState: string;

  /** Hash of an app's desired state (path, instances wanted, current release, …). */
  app(name: string): string;
  /** Set of app names. */
  readonly apps: string;
  /** Hash of path prefix → app name: keeps paths unique across apps. */
  readonly appPaths: string;
  /** Sorted set (scores 0) of the same path prefixes, to find those under a path by range. */
  readonly appPathList: string;
  /** Hash of domain (lowercase ASCII, `*.` for a wildcard) → its record (JSON: app, path, createdAt): a domain belongs to one app. */
  readonly domains: string;
  /** Set of an app's domains. */
  appDomains(name: string): string;
  /**
   * Hash of a domain's certificate: `source` (acme, operator), `cert` (PEM chain), `key` (sealed,
   * sealed-key.ts), `issuer`, `notBefore`, `notAfter`, and for ACME `state` (pending, issued,
   * failed), `error`, `failures`, `retryAt`.
   */
  certificate(domain: string): string;
  /** Set of the domains that have a certificate hash. */
  readonly certificates: string;
  /** A balancer's lease on obtaining or renewing one domain's certificate: one at a time. */
  acmeLease(domain: string): string;
  /** An HTTP-01 challenge's key authorization, by token (expires): any balancer answers it. */
  acmeChallenge(token: string): string;
  /** Hash of the shared ACME account: `key` (sealed), `url`, `directory`. */
  readonly acmeAccount: string;
  /** Hash of version → release (JSON) of one app. */
  appReleases(name: string): string;
  /** Counter giving an app's releases their version numbers. */
  appReleaseSequence(name: string): string;
  /** Stream of an app's log lines (capped). */
  appLogs(name: string): string;

  /** Hash of a stored bundle's facts (size, chunk count, stored at). */
  bundle(digest: string): string;
  /** Hash of chunk index → bytes of a stored bundle. */
  bundleData(digest: string): string;
  /** Sorted set of stored bundle digests, scored by when they were stored (ms). */
  readonly bundles: string;
  /** Hash of chunk index → bytes of an upload in progress (expires if abandoned). */
  upload(uploadId: string): string;

  /** The reconciler's leadership lease: only its holder acts. */
  readonly reconcilerLease: string;
  /** The scaler's lease: only its holder changes instances (any number of scalers may run). */
  readonly scalerLease: string;
  /** List of the scaler's decisions (JSON), newest first, capped. */
  readonly scalerLog: string;
  /** Hash of app name → when the scaler last changed it and last noticed it at its max (JSON). */
  readonly scalerMemory: string;

  /** Hash of a token's sha256 (hex) → what it may do (JSON): tokens themselves are never stored. */
  readonly tokens: string;
  /** Hash of token name → its sha256 (hex): names are unique. */
  readonly tokenNames: string;
  /** Stream of every mutating API call (token, method, path, app, status), capped. */
  readonly audit: string;

  /** The lease of the push deploying an app now (registry/git): pushes of one app take turns. */
  gitPushLock(name: string): string;
}

export function registryKeys(prefixName: string = DEFAULT_KEY_PREFIX): RegistryKeys {
  if (!KEY_PREFIX_PATTERN.test(prefixName)) {
    throw new Error(`key prefix ${JSON.stringify(prefixName)} must match ${KEY_PREFIX_PATTERN}`);
  }
  const p = `{${prefixName}}:`;
  const instance = (id: string): string => `${p}instance:${id}`;
  const serviceInstances = (service: string): string => `${p}service:${service}:instances`;
  const serviceUnclaimed = (service: string): string => `${p}service:${service}:unclaimed`;
  return {
    prefix: p,
    formats: { instance: instance(KEY_NAME_SLOT), serviceInstances: serviceInstances(KEY_NAME_SLOT), serviceUnclaimed: serviceUnclaimed(KEY_NAME_SLOT) },
    instance,
    serviceInstances,
    serviceUnclaimed,
    services: `${p}services`,
    unclaimed: `${p}unclaimed`,
    leases: `${p}leases`,
    epoch: `${p}epoch`,
    sequence: `${p}sequence`,
    claimRequest: (requestId) => `${p}claim-request:${requestId}`,
    machine: (name) => `${p}machine:${name}`,
    machines: `${p}machines`,
    events: `${p}events`,
    presence: `${p}presence`,
    presenceGrace: `${p}presence-grace`,
    reaperState: `${p}reaper`,
    app: (name) => `${p}app:${name}`,
    apps: `${p}apps`,
    appPaths: `${p}app-paths`,
    appPathList: `${p}app-path-list`,
    domains: `${p}domains`,
    appDomains: (name) => `${p}app:${name}:domains`,
    certificate: (domain) => `${p}certificate:${domain}`,
    certificates: `${p}certificates`,
    acmeLease: (domain) => `${p}acme-lease:${domain}`,
    acmeChallenge: (token) => `${p}acme-challenge:${token}`,
    acmeAccount: `${p}acme-account`,
    appReleases: (name) => `${p}app:${name}:releases`,
    appReleaseSequence: (name) => `${p}app:${name}:release-sequence`,
    appLogs: (name) => `${p}app:${name}:logs`,
    bundle: (digest) => `${p}bundle:${digest}`,
    bundleData: (digest) => `${p}bundle:${digest}:data`,
    bundles: `${p}bundles`,
    upload: (uploadId) => `${p}upload:${uploadId}`,
    reconcilerLease: `${p}reconciler-lease`,
    scalerLease: `${p}scaler-lease`,
    scalerLog: `${p}scaler-log`,
    scalerMemory: `${p}scaler-memory`,
    tokens: `${p}tokens`,
    tokenNames: `${p}token-names`,
    audit: `${p}audit`,
    gitPushLock: (name) => `${p}app:${name}:git-push`,
  };
}
