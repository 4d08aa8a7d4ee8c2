import { BerthError } from '../../common/errors.js';

/**
 * The negative integers Lua scripts return for domain failures, one per failure: the same
 * number means the same thing in every script (each script's header lists those it returns).
 */
export const SCRIPT_FAILURE = {
  instanceNotFound: -1,
  staleEpoch: -2,
  instanceExists: -3,
  invalidState: -4,
  /** Returned as `{-5, owner, the prefix it owns}`, so that the error can name the owner. */
  pathTaken: -5,
  releaseConflict: -6,
  /** The scaler's lease is another's (an answer of applyScaleDecision, not an error). */
  notLeader: -7,
  /** The app's instances changed since the decision read them (an answer, not an error). */
  appChanged: -8,
  autoscaleOn: -9,
  nothingToClaim: -10,
  serviceNotFound: -11,
  appNotFound: -12,
  appExists: -13,
  tokenExists: -14,
  tokenNotFound: -15,
  /** The upload vanished before its commit (Redis restarted or evicted it): the caller may retry. */
  uploadGone: -16,
  /** Returned as `{-17, owner}`, so that the error can name the app that owns the domain. */
  domainTaken: -17,
  domainNotFound: -18,
  /** An operator's certificate holds the domain: ACME leaves it alone (an answer, not an error). */
  operatorCertificate: -19,
  certificateNotFound: -20,
  addonExists: -21,
  noAddonPort: -22,
  addonNotFound: -23,
  addonNotAttached: -24,
  addonAttached: -25,
  /** Another claim of the add-on's machine holds it, its lease still running (an answer, not an error). */
  addonHeld: -26,
  /** Returned as `{-27, the add-on attached as that variable}`. */
  addonVarTaken: -27,
  /** The add-on was moved or re-created since the caller read it. */
  addonChanged: -28,
  /** The machine's hoster has not been heard from within the silence allowed. */
  machineSilent: -29,
} as const;

/**
 * The one place where a script's failure becomes a typed error. `args` are the call's named
 * arguments, for the messages that name the app, service, token or path.
 */
export function scriptFailure(code: number, args: Readonly<Record<string, string | number>>, reply?: unknown): BerthError {
  const app = String(args.app ?? '');
  switch (code) {
    case SCRIPT_FAILURE.instanceNotFound:
      return new BerthError('instance_not_found');
    case SCRIPT_FAILURE.staleEpoch:
      return new BerthError('stale_epoch');
    case SCRIPT_FAILURE.instanceExists:
      return new BerthError('instance_exists');
    case SCRIPT_FAILURE.invalidState:
      return new BerthError('invalid_state');
    case SCRIPT_FAILURE.pathTaken: {
      const [, owner, owned] = reply as [number, string, string];
      const path = String(args.path);
      const where = owned === path ? `The path ${path} belongs to` : `The path ${path} overlaps ${owned}, which belongs to`;
      return new BerthError('path_taken', `${where} the app "${owner}": choose a path outside it (a path of an app is only its own, and so is everything under it).`);
    }
    case SCRIPT_FAILURE.releaseConflict:
      return new BerthError('release_conflict');
    case SCRIPT_FAILURE.autoscaleOn: {
      const type = Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : 'web';
      const flag = type === 'web' ? '' : ` --type ${type}`;
      return new BerthError(
        'autoscale_on',
        `${type === 'web' ? app : `${app}'s ${type}`} scales automatically: change its policy (berth scale ${app}${flag} --min N --max N) or turn it off (berth scale ${app}${flag} --off) before setting its instances.`,
      );
    }
    case SCRIPT_FAILURE.nothingToClaim:
      return new BerthError('nothing_to_claim');
    case SCRIPT_FAILURE.serviceNotFound:
      return new BerthError('service_not_found', `No service named "${String(args.service)}": list them with GET /v1/services.`);
    case SCRIPT_FAILURE.appNotFound:
      return new BerthError('app_not_found', `No app named "${app}": list them with GET /v1/apps (berth apps).`);
    case SCRIPT_FAILURE.appExists:
      return new BerthError('app_exists', `An app named "${app}" exists: update it with PUT /v1/apps/${app}, or choose another name.`);
    case SCRIPT_FAILURE.tokenExists:
      return new BerthError('token_exists', `A token named ${String(args.tokenName)} exists: revoke it first (berth tokens:revoke ${String(args.tokenName)}), or choose another name.`);
    case SCRIPT_FAILURE.tokenNotFound:
      return new BerthError('token_not_found', `No token is named ${String(args.tokenName)}: list them with berth tokens:list.`);
    case SCRIPT_FAILURE.domainTaken: {
      const [, owner] = reply as [number, string];
      return new BerthError('domain_taken', `The domain ${String(args.domain)} belongs to the app "${owner}": remove it there first (berth domains:remove ${owner} ${String(args.domain)}), or choose another.`);
    }
    case SCRIPT_FAILURE.domainNotFound:
      return new BerthError('domain_not_found', `The app "${app}" has no domain ${String(args.domain)}: list them with berth domains:list ${app}.`);
    case SCRIPT_FAILURE.certificateNotFound:
      return new BerthError('certificate_not_found', `No operator certificate for ${String(args.domain)}: list them with berth certs.`);
    case SCRIPT_FAILURE.addonExists:
      return new BerthError('addon_exists', `An add-on named ${String(args.name)} exists: choose another name (--name), or destroy it first (berth addons:destroy ${String(args.name)} --confirm ${String(args.name)}).`);
    case SCRIPT_FAILURE.noAddonPort:
      return new BerthError('no_addon_port', `Every add-on port of the machine ${String(args.machine)} is taken: destroy an add-on there, choose another machine (--machine), or widen BERTH_ADDON_PORT_RANGE.`);
    case SCRIPT_FAILURE.addonNotFound:
      return new BerthError('addon_not_found', `No add-on is named ${String(args.name)}: list them with berth addons:list.`);
    case SCRIPT_FAILURE.addonNotAttached:
      return new BerthError('addon_not_attached', `The add-on ${String(args.name)} is not attached to ${app}: berth addons:info ${String(args.name)} lists its apps.`);
    case SCRIPT_FAILURE.addonAttached:
      return new BerthError('addon_attached', `The add-on ${String(args.name)} was attached to an app meanwhile: run the command again (it detaches every app first).`);
    case SCRIPT_FAILURE.addonVarTaken: {
      const [, other] = reply as [number, string];
      return new BerthError('addon_var_taken', `${app} already has the add-on ${other} attached as ${String(args.variable)}: detach it first (berth addons:detach ${other} ${app}), or choose another variable (--as VAR).`);
    }
    case SCRIPT_FAILURE.addonChanged:
      return new BerthError('addon_changed', `The add-on ${String(args.name)} was moved or re-created meanwhile: look at it again (berth addons:info ${String(args.name)}) and retry.`);
    case SCRIPT_FAILURE.machineSilent:
      return new BerthError('machine_unavailable', `The hoster of ${String(args.machine)} has not been heard from lately: start it there (berth hoster), or choose a machine whose hoster runs (berth machines).`);
    case SCRIPT_FAILURE.uploadGone:
      return new BerthError('redis_unavailable');
    default:
      return new BerthError('internal_error', `A registry script returned an unknown code ${code}.`);
  }
}
