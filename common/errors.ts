/**
 * The error catalogue: every error berth reports to a user or a program has a stable code,
 * an HTTP status and a default message that says what to do next. SDK users match on `code`.
 * The error table of docs/api.md lists exactly these codes (a test keeps the two in step).
 */
export const ERROR_CATALOGUE = {
  invalid_json: { status: 400, message: 'The request body is not valid JSON: check its quoting and commas.' },
  invalid_request: { status: 400, message: 'The request is not valid: see the message for the field to fix.' },
  unauthorized: {
    status: 401,
    message: 'Missing or wrong API token: send "Authorization: Bearer <token>" with a token from BERTH_TOKEN.',
  },
  forbidden: {
    status: 403,
    message: 'This token may not do that (it is read-only, or scoped to another app): use a token that may (berth tokens:list).',
  },
  not_found: { status: 404, message: 'No such endpoint: see docs/api.md for the REST reference.' },
  token_not_found: { status: 404, message: 'No token has this name: list them with berth tokens:list.' },
  service_not_found: { status: 404, message: 'No such service: list them with GET /v1/services.' },
  bundle_not_found: { status: 404, message: 'No bundle with this digest: upload it first with PUT /v1/bundles/:sha256.' },
  instance_not_found: {
    status: 404,
    message: 'No such instance of this service: list them with GET /v1/services/:service.',
  },
  app_not_found: { status: 404, message: 'No such app: list them with GET /v1/apps (berth apps).' },
  release_not_found: { status: 404, message: 'No such release of this app: list them with GET /v1/apps/:name/releases.' },
  run_not_found: { status: 404, message: 'No such run of this app: list them with berth runs NAME (GET /v1/apps/:name/runs).' },
  cron_not_found: { status: 404, message: 'No such cron job: list them with berth cron:list NAME (GET /v1/apps/:name/cron).' },
  no_release: { status: 409, message: 'The app has no release to run: publish it first (berth publish).' },
  run_not_interactive: { status: 409, message: 'The run was not started with -it: follow its output with berth runs:logs instead.' },
  bad_cron: { status: 400, message: 'The cron expression does not parse: write five fields (minute hour day month weekday), or six with seconds first.' },
  method_not_allowed: { status: 405, message: 'This endpoint does not take that method: the Allow header lists the ones it takes.' },
  app_exists: { status: 409, message: 'An app with this name exists: update it, or choose another name.' },
  token_exists: { status: 409, message: 'A token with this name exists: revoke it first (berth tokens:revoke), or choose another name.' },
  path_taken: { status: 409, message: 'Another app owns this path, a prefix above it or one under it: choose a path outside it.' },
  domain_taken: { status: 409, message: 'Another app owns this domain: remove it there first (berth domains:remove OWNER DOMAIN), or choose another.' },
  domain_not_found: { status: 404, message: 'This app has no such domain: list them with berth domains:list.' },
  certificate_not_found: { status: 404, message: 'No operator certificate for this domain: list them with berth certs.' },
  invalid_certificate: { status: 400, message: 'This certificate cannot serve the domain: see the message for what to fix.' },
  certificate_key_missing: {
    status: 503,
    message: 'This registry has no certificate key file (BERTH_ACME_KEY_FILE): certificate keys cannot be stored sealed. Give it the file the balancers read.',
  },
  invalid_domain: { status: 400, message: 'Not a domain berth can serve: give a DNS name such as shop.example.com (or *.example.com), not an IP address.' },
  reserved_path: { status: 400, message: "The path \"/\" and those under /_berth are reserved (\"/\" would take every other path, /_berth is berth's own): choose a prefix such as /shop." },
  addon_not_found: { status: 404, message: 'No add-on has this name: list them with berth addons:list.' },
  addon_exists: { status: 409, message: 'An add-on with this name exists: choose another name (--name), or destroy it first (berth addons:destroy NAME --confirm NAME).' },
  addon_kind_unknown: { status: 400, message: 'berth offers two kinds of add-on: postgres and redis. Give one of them.' },
  addon_not_attached: { status: 404, message: 'The add-on is not attached to this app: berth addons:info NAME lists its apps.' },
  addon_attached: { status: 409, message: 'The add-on is still attached to an app (attached meanwhile): run the command again, or detach it first (berth addons:detach NAME APP).' },
  addon_var_taken: { status: 409, message: 'The app already has an add-on attached as this variable: detach that one first, or choose another variable (--as VAR).' },
  confirmation_required: { status: 400, message: 'Destroying an add-on removes its data: repeat its name to confirm (berth addons:destroy NAME --confirm NAME).' },
  addon_backup_not_found: { status: 404, message: 'The add-on has no backup of this name: list them with berth addons:backups NAME.' },
  addon_backup_kind: { status: 409, message: 'The backup is of the other kind of add-on (postgres or redis): restore it into an add-on of its kind.' },
  addon_unavailable: { status: 409, message: 'The add-on is not running right now (berth addons:info NAME says why): retry once it runs.' },
  addon_backup_failed: { status: 502, message: "The add-on's backup or restore failed: the message quotes the tool; check that the add-on runs (berth addons:info NAME)." },
  machine_not_found: { status: 404, message: 'No machine has this name: list them with berth machines.' },
  machine_unavailable: { status: 409, message: "The machine's hoster has not been heard from lately: start it there (berth hoster), or choose a machine whose hoster runs (berth machines)." },
  addon_changed: { status: 409, message: 'The add-on was moved or re-created meanwhile: look at it again (berth addons:info NAME) and retry.' },
  no_addon_port: { status: 409, message: 'Every add-on port of this machine is taken: destroy an add-on there, choose another machine (--machine), or widen BERTH_ADDON_PORT_RANGE.' },
  release_conflict: {
    status: 409,
    message: 'The app changed while this change was being made: read it again and retry.',
  },
  autoscale_on: {
    status: 409,
    message: 'This app scales automatically: change its policy (berth scale NAME --min N --max N) or turn it off (berth scale NAME --off) before setting its instances.',
  },
  git_push_only: {
    status: 403,
    message: "berth's git remotes take pushes only (a push deploys): fetch and clone from your own repository.",
  },
  nothing_to_change: { status: 400, message: 'The request changes nothing: give at least one field to change.' },
  nothing_to_claim: {
    status: 409,
    message: 'No unclaimed instance of this service: poll GET /v1/unclaimed or follow GET /v1/events and try again.',
  },
  instance_exists: { status: 409, message: 'An instance with this id already exists: choose another id.' },
  stale_epoch: {
    status: 409,
    message: 'This claim is no longer yours (its epoch or machine changed): stop the instance; do not renew or report it.',
  },
  invalid_state: { status: 409, message: 'The instance is not in a state that allows this change: read it again.' },
  payload_too_large: { status: 413, message: 'The request body is too large: send a smaller body.' },
  bundle_too_large: { status: 413, message: `The bundle is ${bundleTooLarge()}` },
  unsupported_media_type: {
    status: 415,
    message: 'Send the body as JSON with "Content-Type: application/json".',
  },
  digest_mismatch: {
    status: 422,
    message: "The body's sha256 digest is not the one in the URL: compute it over the exact bytes you send, and send them unaltered.",
  },
  bundle_rejected: {
    status: 422,
    message: 'The bundle cannot be installed (an unsafe entry, over a limit, damaged or not a .tar.gz): make it with berth publish or tar -czf, and publish again.',
  },
  build_failed: {
    status: 422,
    message: "The app's build failed (invalid package.json, or npm failed): the build log (berth logs --build) says why; fix it and publish again.",
  },
  no_start_command: {
    status: 422,
    message: 'Nothing in the app says how to start it: add a start script to package.json, a "web:" line to a Procfile, or a server.js.',
  },
  limits_unavailable: {
    status: 422,
    message: "The app has a memory or CPU limit and this machine cannot make cgroups for it (the hoster is not root, or has no memory controller): run the hoster as root on a machine with cgroups, or publish without --memory/--cpu-weight.",
  },
  invalid_procfile: {
    status: 422,
    message: 'The Procfile has a line that is not "name: command" (a name of lowercase letters, digits and dashes, then a command): fix the line it names and publish again.',
  },
  unknown_process_type: {
    status: 400,
    message: "The app's current release has no process type of that name: scale web or a type of its Procfile (berth info NAME lists them).",
  },
  release_command_failed: {
    status: 422,
    message: "The release command exited non-zero or ran out of time, so nothing of the release started: berth logs NAME --build shows its output; fix it and publish again.",
  },
  addon_not_started: {
    status: 422,
    message: "An add-on attached to the app never started, so nothing of the release did: berth addons:info NAME says why (its machine's hoster runs it); publish again once it runs.",
  },
  invalid_env: {
    status: 422,
    message: 'A config var cannot be given to a process (it contains a NUL byte): set it again without one (berth config:set).',
  },
  bad_path: {
    status: 400,
    message: 'The request path is not allowed: no "." or ".." segments, no encoded slashes or dots.',
  },
  bad_host: {
    status: 400,
    message: 'The request must carry exactly one Host header: send the host name of the platform once.',
  },
  no_route: { status: 404, message: 'No app is published on this path: check the URL, or list the apps with berth apps.' },
  upstream_failed: {
    status: 502,
    message: "The app's instance failed to answer properly: the app's logs (berth logs) say why; retry shortly.",
  },
  no_healthy_instance: {
    status: 503,
    message: 'The app has no instance able to answer right now (starting, or all failing): retry in a moment.',
  },
  upstream_timeout: { status: 504, message: "The app's instance did not answer in time: it may be overloaded." },
  internal_error: { status: 500, message: 'berth failed unexpectedly: the daemon log has the details.' },
  redis_unavailable: {
    status: 503,
    message: 'The registry cannot reach Redis right now: retry shortly; if it persists, check REDIS_URL and that Redis runs.',
  },
  too_many_followers: {
    status: 503,
    message: 'Too many clients follow the event stream of this registry: retry later, or follow the Redis stream directly.',
  },
  shutting_down: { status: 503, message: 'This daemon is shutting down: retry against another one or in a moment.' },
  invalid_config: { status: 500, message: 'The configuration is not valid: fix the options named in the message.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** An error with a stable code from the catalogue; safe to show to users (never a stack trace). */
export class BerthError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_CATALOGUE[code].message, options);
    this.name = 'BerthError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export function isBerthError(err: unknown): err is BerthError {
  return err instanceof BerthError;
}

/**
 * The one wording of a bundle over a size limit, the condition and its fix, wherever a limit
 * is met (the registry's upload: bundle_too_large; the hoster's download): "The bundle is " +
 * this. `setting`: the option that raises the limit, null when none does.
 */
export function bundleTooLarge(limitBytes?: number, setting: string | null = 'BERTH_BUNDLE_LIMIT_BYTES'): string {
  const limit = limitBytes === undefined ? 'the limit' : `the limit of ${limitBytes} bytes`;
  return `larger than ${limit}: leave dependencies and build output out of it (.berthignore)${setting === null ? '' : `, or raise ${setting}`}.`;
}
