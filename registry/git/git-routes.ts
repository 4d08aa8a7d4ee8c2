import { createGunzip } from 'node:zlib';
import type { Duplex, Readable, Writable } from 'node:stream';
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { BerthError } from '../../common/errors.js';
import { isRedisUnavailable } from '../../common/redis-connection.js';
import { refusal, forbidden } from '../api/authorize.js';
import type { TokenGrant, TokenStore } from '../store/index.js';
import { gitRequestToken } from './git-auth.js';
import type { GitRepos } from './git-repos.js';
import { FLUSH, pktLine } from './pkt-line.js';
import { serveProcReceive } from './proc-receive-session.js';
import { asksForSideband, SidebandRelay } from './sideband.js';
import type { PushDeployer } from './push-deploy.js';
import { repositoryApp } from './ref-update.js';

export interface GitRoutesOptions {
  repos: GitRepos;
  deployer: PushDeployer;
  /** What a token may do (undefined: no such token), as the REST API checks it. */
  checkToken: (token: string) => Promise<TokenGrant | undefined>;
  /** For the audit log: a push is a change like any API call. */
  tokens: TokenStore;
  /** The largest bundle: no pack larger than it is taken either (receive.maxInputSize). */
  bundleLimitBytes: number;
  logger: Logger;
}

const RECEIVE_PACK = 'git-receive-pack';
/** Room for a push's commands before its pack: a body this much over the limit holds a pack over it. */
const COMMANDS_MARGIN_BYTES = 64 * 1024;

/**
 * `/git/<app>.git/…`: git's smart HTTP for pushes, served by git's own receive-pack
 * (`--stateless-rpc`), with berth's proc-receive hook deciding every pushed ref (see
 * push-deploy.ts). Errors are plain text, which git prints as `remote: …`; a missing or
 * wrong token gets 401 with `WWW-Authenticate: Basic`, so that git asks its credential helper.
 */
export function gitRoutes(options: GitRoutesOptions): Router {
  const { repos, logger } = options;
  const r = Router();

  /** The app the URL names and the grant of a token that may push to it; throws the refusal otherwise. */
  const allow = async (req: Request, res: Response): Promise<{ app: string; grant: TokenGrant }> => {
    const app = repositoryApp(String(req.params.repo));
    if (app === undefined) {
      throw new BerthError('invalid_request', `${String(req.params.repo)} is not an app's repository: the URL is /git/<app>.git, with the app's name (berth git:remote NAME prints it).`);
    }
    const token = gitRequestToken(req);
    const grant = token === undefined ? undefined : await options.checkToken(token);
    if (grant === undefined) {
      res.setHeader('WWW-Authenticate', 'Basic realm="berth"');
      throw new BerthError('unauthorized', 'Missing or wrong berth token: give a berth API token as the password (any user name), or let git ask berth for it (berth git:remote NAME --add sets up the credential helper).');
    }
    // A push changes the app (and makes it on the first push): it needs a token that may publish it.
    const why = refusal(grant, 'PUT', `/apps/${app}`);
    if (why !== undefined) throw forbidden(why);
    return { app, grant };
  };

  r.get('/:repo/info/refs', async (req, res) => {
    const service = req.query.service;
    if (service !== RECEIVE_PACK) {
      await allow(req, res);
      throw new BerthError('git_push_only');
    }
    const { app } = await allow(req, res);
    const repo = await repos.ensure(app);
    res.status(200).setHeader('Content-Type', `application/x-${RECEIVE_PACK}-advertisement`);
    res.setHeader('Cache-Control', 'no-cache, max-age=0, must-revalidate');
    res.write(Buffer.concat([pktLine(`# service=${RECEIVE_PACK}\n`), FLUSH]));
    const child = repos.spawn(['receive-pack', '--stateless-rpc', '--advertise-refs', repo], { stdio: ['ignore', 'pipe', 'pipe'] });
    await relayOutput(child.stdout!, child.stderr!, responseSink(res), child, logger);
  });

  r.post('/:repo/git-upload-pack', async (req, res) => {
    await allow(req, res);
    throw new BerthError('git_push_only');
  });

  r.post(`/:repo/${RECEIVE_PACK}`, async (req, res) => {
    const { app, grant } = await allow(req, res);
    if (req.headers['content-type'] !== `application/x-${RECEIVE_PACK}-request`) {
      throw new BerthError('unsupported_media_type', `Send the push as git does, with "Content-Type: application/x-${RECEIVE_PACK}-request".`);
    }
    const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding !== 'identity' && encoding !== 'gzip') throw new BerthError('unsupported_media_type', 'Send the push uncompressed or gzip-compressed.');
    const repo = await repos.ensure(app);
    const child = repos.spawn(
      [
        // Every pushed ref goes to berth's hook, which deploys the deploy branch and refuses the rest.
        '-c', 'receive.procReceiveRefs=refs/',
        '-c', `core.hooksPath=${repos.hooksDir}`,
        // A pack larger than a bundle may be is refused while it arrives, before it is stored.
        '-c', `receive.maxInputSize=${options.bundleLimitBytes}`,
        'receive-pack', '--stateless-rpc', repo,
      ],
      // fd 3: the hook's protocol, fd 4: the lines shown to the pusher (the hook relays both).
      { stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'] },
    );
    const protocol = child.stdio[3] as Duplex;
    const lines = child.stdio[4] as Writable;
    const pusher = { app, user: grant.name };
    const session = serveProcReceive(protocol, lines, (updates, say) => options.deployer.handle(pusher, updates, say));
    const body: Readable = encoding === 'gzip' ? req.pipe(createGunzip()) : req;
    body.on('error', () => child.stdin!.destroy());
    body.pipe(child.stdin!);
    child.stdin!.on('error', () => undefined);
    res.status(200).setHeader('Content-Type', `application/x-${RECEIVE_PACK}-result`);
    res.setHeader('Cache-Control', 'no-cache, max-age=0, must-revalidate');
    const relay = new SidebandRelay((bytes) => {
      if (!res.destroyed && !res.writableEnded) res.write(bytes);
    });
    // receive-pack refuses the pack itself (receive.maxInputSize); berth adds what to do about it.
    let received = 0;
    let sideband: boolean | undefined;
    body.on('data', (chunk: Buffer) => {
      sideband ??= asksForSideband(chunk);
      const before = received;
      received += chunk.length;
      const over = options.bundleLimitBytes + COMMANDS_MARGIN_BYTES;
      if (sideband && before <= over && received > over) {
        relay.say(
          `-----> push refused: the pack is over ${options.bundleLimitBytes} bytes, the largest bundle this registry takes: ` +
            'leave build output and large files out of the commits (or push a short history), or raise BERTH_BUNDLE_LIMIT_BYTES',
        );
      }
    });
    await relayOutput(child.stdout!, child.stderr!, relay, child, logger);
    if (!res.writableEnded) res.end();
    await session;
    options.tokens
      .audit({ token: grant.name, method: 'POST', path: `/git/${app}.git/${RECEIVE_PACK}`, app, status: res.statusCode })
      .catch((err: unknown) => logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not write the audit log entry'));
  });

  r.use((req: Request, _res: Response, next: NextFunction) => {
    next(new BerthError('not_found', `No git endpoint ${req.method} /git${req.path}: push to /git/<app>.git (berth git:remote NAME prints the URL).`));
  });
  r.use(gitErrors(logger));
  return r;
}

/**
 * Streams a git child's stdout into `sink` until the child ends. A client gone early leaves
 * the child running to its end (a deploy under way goes on), its output read and dropped.
 */
function relayOutput(
  stdout: Readable,
  stderr: Readable,
  sink: { push(bytes: Buffer): void; end(): void },
  child: { once(e: 'close', f: (code: number | null) => void): unknown },
  logger: Logger,
): Promise<void> {
  let errors = '';
  stderr.on('data', (d: Buffer) => (errors = (errors + d.toString()).slice(-4000)));
  stdout.on('data', (d: Buffer) => sink.push(d));
  return new Promise((resolve) => {
    child.once('close', (code) => {
      if (code !== 0) logger.warn({ code, stderr: errors.trim().slice(-1000) }, 'git receive-pack ended with an error');
      sink.end();
      resolve();
    });
  });
}

/** The answer as a sink of bytes, written while the client is there. */
function responseSink(res: Response): { push(bytes: Buffer): void; end(): void } {
  return {
    push: (bytes) => {
      if (!res.destroyed && !res.writableEnded) res.write(bytes);
    },
    end: () => {
      if (!res.writableEnded) res.end();
    },
  };
}

/** Errors as plain text: git shows a text/plain body of a refused request as `remote: …`. */
function gitErrors(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let error: BerthError;
    if (err instanceof BerthError) error = err;
    else if (isRedisUnavailable(err)) error = new BerthError('redis_unavailable');
    else {
      logger.error({ err, method: req.method, url: req.originalUrl }, 'git request failed unexpectedly');
      error = new BerthError('internal_error');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (error.status === 503) res.setHeader('Retry-After', '1');
    // Refused before the body (a pack) was read: close rather than read on.
    if (!req.complete) res.setHeader('Connection', 'close');
    res.status(error.status).type('text/plain').send(`${error.message} (${error.code})\n`);
  };
}
