import { defineScript } from './lua-scripts.js';
import { SCRIPT_FAILURE } from './script-errors.js';
import { RUN_SCRIPTS } from './run-scripts.js';
import { ADDON_SCRIPTS } from './addon-scripts.js';

/**
 * Every Lua script of the registry (`scripts/<name>-<keys>.lua`), declared once: its KEYS and
 * ARGV by name, in the order the script reads them, and what it replies. Callers pass named
 * objects; the positional order lives only here. Key names come from keys.ts (the key formats
 * too, for the scripts that build keys from names they read in Redis).
 */

/** An instance as a flat field/value list (HGETALL). */
type Flat = string[];

// Instances: register, claim, run, renew, release, retire, remove.

export const registerInstance = defineScript<Flat>()({
  name: 'registerInstance',
  keys: ['instance', 'serviceInstances', 'services', 'unclaimed', 'serviceUnclaimed', 'events', 'sequence', 'appPaths', 'appPathList'],
  args: ['id', 'service', 'path', 'attributes', 'files', 'release', 'eventsMaxLength'],
});

export const registerMissing = defineScript<string[]>()({
  name: 'registerMissing',
  keys: ['serviceInstances', 'services', 'unclaimed', 'serviceUnclaimed', 'events', 'sequence'],
  // Followed by the fresh ids to use (`rest`).
  args: ['instanceFormat', 'service', 'path', 'release', 'wanted', 'attributes', 'files', 'eventsMaxLength', 'process'],
});

export const claimInstance = defineScript<Flat>()({
  name: 'claimInstance',
  keys: ['serviceUnclaimed', 'unclaimed', 'leases', 'epoch', 'events', 'serviceInstances', 'claimRequest'],
  args: ['instanceFormat', 'service', 'machine', 'host', 'port', 'claimAttributes', 'leaseMs', 'requestId', 'path', 'eventsMaxLength', 'instanceId'],
});

export const markRunning = defineScript<Flat>()({
  name: 'markRunning',
  keys: ['instance', 'events'],
  args: ['machine', 'epoch', 'pid', 'eventsMaxLength', 'service', 'restarts'],
});

export const markUnhealthy = defineScript<Flat>()({
  name: 'markUnhealthy',
  keys: ['instance', 'events'],
  args: ['machine', 'epoch', 'detail', 'eventsMaxLength', 'service'],
});

/** Replies the new lease expiry (ms, Redis clock) and the instance's state. */
export const renewLease = defineScript<[number, string]>()({
  name: 'renewLease',
  keys: ['instance', 'leases'],
  args: ['machine', 'epoch', 'leaseMs', 'service'],
});

/** Replies the instance, or an empty list when it was removed instead. */
export const releaseInstance = defineScript<Flat>()({
  name: 'releaseInstance',
  keys: ['instance', 'leases', 'unclaimed', 'events', 'serviceInstances', 'serviceUnclaimed', 'services'],
  args: ['machine', 'epoch', 'reason', 'eventsMaxLength', 'service', 'detail'],
});

/** Replies the removed instance. */
export const unregisterInstance = defineScript<Flat>()({
  name: 'unregisterInstance',
  keys: ['instance', 'serviceInstances', 'services', 'unclaimed', 'serviceUnclaimed', 'leases', 'events'],
  args: ['service', 'eventsMaxLength'],
});

/** Replies the state after the step: 'removed', 'draining' or 'stopping' (or the state it stays in). */
export const retireInstance = defineScript<string>()({
  name: 'retireInstance',
  keys: ['instance', 'serviceInstances', 'services', 'unclaimed', 'serviceUnclaimed', 'leases', 'events'],
  args: ['service', 'drainMs', 'reason', 'eventsMaxLength'],
});

export const markEvacuating = defineScript<number>()({
  name: 'markEvacuating',
  keys: ['instance', 'events'],
  args: ['machine', 'epoch', 'service', 'eventsMaxLength'],
});

export const confirmStopped = defineScript<number>()({
  name: 'confirmStopped',
  keys: ['instance', 'serviceInstances', 'services', 'unclaimed', 'serviceUnclaimed', 'leases', 'events'],
  args: ['service', 'machine', 'epoch', 'eventsMaxLength'],
});

/** Replies the instances handled ({id, service, machine, epoch, outcome}) and the hold (see the script). */
export const reapExpired = defineScript<[[string, string, string, string, string][], [number, string, number, number, number, number, number]]>()({
  name: 'reapExpired',
  keys: ['leases', 'unclaimed', 'events', 'reaperState', 'presence', 'presenceGrace', 'services'],
  args: ['instanceFormat', 'limit', 'eventsMaxLength', 'leaseMs', 'silentMs', 'fraction', 'intervalMs', 'serviceInstancesFormat', 'serviceUnclaimedFormat'],
});

// Machines and leadership.

/** Replies now (ms, Redis clock) and how many machines hold claims. */
export const markPresent = defineScript<[number, number]>()({
  name: 'markPresent',
  keys: ['presence', 'presenceGrace'],
  args: ['machine', 'graceMs', 'holding', 'leaseMs'],
});

export const heartbeatMachine = defineScript<number>()({
  name: 'heartbeatMachine',
  keys: ['machine', 'machines', 'events'],
  args: ['machine', 'facts', 'eventsMaxLength'],
});

/** Replies 1 while the caller holds the lease. */
export const holdLeadership = defineScript<number>()({
  name: 'holdLeadership',
  keys: ['lease'],
  args: ['holder', 'leaseMs', 'mode'],
});

/** Replies the moment (Redis's clock, ms) the caller took the dashboard's sampling turn, or 0. */
export const takeSamplerTurn = defineScript<number>()({
  name: 'takeSamplerTurn',
  keys: ['turn'],
  args: ['holder', 'turnMs'],
});

// Apps and releases.

/** The branch whose pushes deploy an app (registry/git); -12 when there is no such app, an answer its caller words. */
export const setGitBranch = defineScript<number>()({
  name: 'setGitBranch',
  keys: ['app'],
  args: ['branch'],
  answers: [SCRIPT_FAILURE.appNotFound],
});

/** Replies the first release's version. */
export const createApp = defineScript<number>()({
  name: 'createApp',
  keys: ['app', 'apps', 'appPaths', 'appReleases', 'appReleaseSequence', 'events', 'appPathList'],
  args: ['app', 'path', 'instances', 'stripPrefix', 'release', 'eventsMaxLength'],
});

/** Replies the new release's version. */
export const createRelease = defineScript<number>()({
  name: 'createRelease',
  keys: ['app', 'appReleases', 'appReleaseSequence', 'events'],
  args: ['app', 'release', 'basedOn', 'eventsMaxLength'],
});

export const updateAppSettings = defineScript<number>()({
  name: 'updateAppSettings',
  keys: ['app', 'events'],
  args: ['app', 'instances', 'stripPrefix', 'eventsMaxLength', 'formation'],
});

export const setAutoscale = defineScript<number>()({
  name: 'setAutoscale',
  keys: ['app', 'events'],
  args: ['app', 'policy', 'eventsMaxLength', 'process'],
});

/** Replies when it was applied (ms), or one of its answers: not the leader, the app changed, no such app. */
export const applyScaleDecision = defineScript<number>()({
  name: 'applyScaleDecision',
  keys: ['app', 'scalerLease', 'events', 'scalerLog', 'scalerMemory'],
  args: ['app', 'holder', 'from', 'to', 'record', 'logLength', 'eventsMaxLength', 'cause', 'process'],
  answers: [SCRIPT_FAILURE.notLeader, SCRIPT_FAILURE.appChanged, SCRIPT_FAILURE.appNotFound],
});

export const markAppDeleting = defineScript<number>()({
  name: 'markAppDeleting',
  keys: ['app', 'events'],
  args: ['app', 'eventsMaxLength'],
});

/** Replies 1 when removed, 0 while it still has instances (or is not being deleted); no such app is an answer too. */
export const removeApp = defineScript<number>()({
  name: 'removeApp',
  keys: ['app', 'apps', 'appPaths', 'appReleases', 'appReleaseSequence', 'appLogs', 'events', 'scalerMemory', 'appPathList', 'serviceInstances', 'domains', 'appDomains', 'appAddons'],
  args: ['app', 'eventsMaxLength', 'addonFormat'],
  answers: [SCRIPT_FAILURE.appNotFound],
});

/** Replies 1 when changed, 0 when it already had that status. */
export const setReleaseStatus = defineScript<number>()({
  name: 'setReleaseStatus',
  keys: ['app', 'appReleases', 'events'],
  args: ['app', 'version', 'status', 'reason', 'fallback', 'eventsMaxLength'],
});

// Domains.

/** Replies 1 when added, 0 when the app had it already (its path then set to this one). */
export const addDomain = defineScript<number>()({
  name: 'addDomain',
  keys: ['app', 'domains', 'appDomains', 'events'],
  args: ['app', 'domain', 'path', 'eventsMaxLength'],
});

export const removeDomain = defineScript<number>()({
  name: 'removeDomain',
  keys: ['domains', 'appDomains', 'events'],
  args: ['app', 'domain', 'eventsMaxLength'],
});

// Certificates.

/** Replies 1 when `holder` holds the lease now (taken, or its own renewed), 0 when another does. */
export const takeAcmeLease = defineScript<number>()({
  name: 'takeAcmeLease',
  keys: ['lease'],
  args: ['holder', 'leaseMs'],
});

/** Replies 1 when released, 0 when the lease was not the holder's. */
export const dropAcmeLease = defineScript<number>()({
  name: 'dropAcmeLease',
  keys: ['lease'],
  args: ['holder'],
});

/**
 * Writes what became of an ACME attempt (fields and values in `rest`), fenced by the lease:
 * replies 1, 0 when the lease is not the holder's, -19 when an operator's certificate is there.
 */
export const recordAcmeCertificate = defineScript<number>()({
  name: 'recordAcmeCertificate',
  keys: ['lease', 'certificate', 'certificates', 'events'],
  args: ['holder', 'domain', 'eventsMaxLength'],
  answers: [SCRIPT_FAILURE.operatorCertificate],
});

/** An operator's certificate of one key type (fields in `rest`), or none (keyType ''): the domain's certificate is then ACME's again. */
export const setOperatorCertificate = defineScript<number>()({
  name: 'setOperatorCertificate',
  keys: ['certificate', 'certificates', 'events'],
  args: ['domain', 'eventsMaxLength', 'keyType'],
});

// Bundles and tokens.

/** Replies 1 when stored, 0 when it was already. */
export const commitBundle = defineScript<number>()({
  name: 'commitBundle',
  keys: ['upload', 'bundleData', 'bundle', 'bundles'],
  args: ['digest', 'size', 'chunks'],
});

/** Replies 1 when deleted, 0 when there was none. */
export const deleteBundle = defineScript<number>()({
  name: 'deleteBundle',
  keys: ['bundle', 'bundleData', 'bundles'],
  args: ['digest'],
});

export const createToken = defineScript<number>()({
  name: 'createToken',
  keys: ['tokens', 'tokenNames'],
  args: ['tokenName', 'digest', 'record'],
});

/** Replies the revoked token's record (JSON). */
export const revokeToken = defineScript<string>()({
  name: 'revokeToken',
  keys: ['tokens', 'tokenNames'],
  args: ['tokenName'],
});

/** Every script, for those that define them all on a client at once (and the test that checks them against their files). */
export const finishReleaseTask = defineScript<number>()({
  name: 'finishReleaseTask',
  keys: ['instance', 'serviceInstances', 'services', 'unclaimed', 'serviceUnclaimed', 'leases', 'events', 'appReleases'],
  args: ['service', 'machine', 'epoch', 'release', 'status', 'detail', 'eventsMaxLength'],
});

export const ALL_SCRIPTS = [
  registerInstance,
  registerMissing,
  claimInstance,
  markRunning,
  markUnhealthy,
  renewLease,
  releaseInstance,
  unregisterInstance,
  retireInstance,
  markEvacuating,
  confirmStopped,
  finishReleaseTask,
  reapExpired,
  markPresent,
  heartbeatMachine,
  holdLeadership,
  takeSamplerTurn,
  setGitBranch,
  createApp,
  createRelease,
  updateAppSettings,
  setAutoscale,
  applyScaleDecision,
  markAppDeleting,
  removeApp,
  setReleaseStatus,
  addDomain,
  removeDomain,
  takeAcmeLease,
  dropAcmeLease,
  recordAcmeCertificate,
  setOperatorCertificate,
  commitBundle,
  deleteBundle,
  createToken,
  revokeToken,
  ...RUN_SCRIPTS,
  ...ADDON_SCRIPTS,
] as const;
