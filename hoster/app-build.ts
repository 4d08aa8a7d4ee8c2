import { spawn } from 'node:child_process';
import { existsSync, writeSync } from 'node:fs';
import { appendFile, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError } from '../common/errors.js';

/** @default 600000 (10 minutes) */
export const DEFAULT_BUILD_TIMEOUT_MS = 10 * 60 * 1000;
/** How long npm gets to exit after SIGTERM (timeout) before its process group is killed. */
export const BUILD_KILL_GRACE_MS = 5000;
/** Lines of the build log quoted in a BuildFailedError. */
const LOG_TAIL_LINES = 20;
const LOG_TAIL_BYTES = 8192;
/** How long the build's output pipes may take to empty once npm has exited. */
const PIPE_DRAIN_MS = 2000;
/** Longest build line passed on (a minified blob printed by a script is cut there). */
const MAX_LINE = 2000;

export interface BuildOptions {
  /** Where npm's output (stdout and stderr) is appended, with a line before and after each run. */
  logFile: string;
  /** @default 600000 (10 minutes) */
  timeoutMs?: number;
  /** npm's environment. @default the hoster's own */
  env?: NodeJS.ProcessEnv;
  /** Who npm and its scripts run as (the app's build user, when the hoster is root). @default the hoster's user */
  user?: { uid: number; gid: number };
  /** Each line of the build's output as it comes, with berth's "----->" lines around npm's. */
  onLine?: (line: string) => void;
}

export interface BuildResult {
  ran: 'npm ci' | 'npm install' | 'none';
  ms: number;
}

/** The app could not be built: its package.json is invalid, or npm failed or timed out. */
export class BuildFailedError extends BerthError {
  /** The last lines of the build log ('' when npm did not run). */
  readonly logTail: string;
  readonly logFile: string;

  constructor(message: string, logFile: string, logTail = '') {
    super('build_failed', logTail === '' ? message : `${message}\nLast lines of ${logFile}:\n${logTail}`);
    this.name = 'BuildFailedError';
    this.logFile = logFile;
    this.logTail = logTail;
  }
}

/**
 * Installs the app's production dependencies when it declares some and ships none: `npm ci`
 * when it has a lockfile, else `npm install`. npm runs in its own process group, so that a
 * timeout kills its scripts too; whatever it leaves running when it exits is killed as well.
 */
export async function buildApp(appDir: string, options: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? DEFAULT_BUILD_TIMEOUT_MS;
  if (!(Number.isSafeInteger(timeoutMs) && timeoutMs > 0)) throw new RangeError(`buildApp timeoutMs must be a positive integer, got ${timeoutMs}.`);
  const dependencies = await declaredDependencies(appDir, options.logFile);
  if (dependencies === 0 || existsSync(join(appDir, 'node_modules'))) return { ran: 'none', ms: elapsed(started) };

  const locked = existsSync(join(appDir, 'package-lock.json')) || existsSync(join(appDir, 'npm-shrinkwrap.json'));
  const ran = locked ? 'npm ci' : 'npm install';
  const args = [locked ? 'ci' : 'install', '--omit=dev', '--no-audit', '--no-fund'];
  const logStart = await sizeOf(options.logFile);
  const say = options.onLine ?? (() => undefined);
  await appendFile(options.logFile, `\n=== ${new Date().toISOString()} npm ${args.join(' ')} (in ${appDir})\n`);
  say(`-----> Installing dependencies (npm ${args.join(' ')})`);
  const log = await open(options.logFile, 'a');
  let outcome: { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; spawnError?: Error };
  try {
    outcome = await runNpm(args, appDir, log.fd, timeoutMs, options.env, options.user, say);
  } finally {
    await log.close();
  }
  const ms = elapsed(started);
  const verdict =
    outcome.spawnError !== undefined ? `could not start (${outcome.spawnError.message})`
    : outcome.timedOut ? `timed out after ${timeoutMs} ms`
    : outcome.code === 0 ? 'succeeded'
    : outcome.signal !== null ? `was killed by ${outcome.signal}`
    : `exited with code ${outcome.code}`;
  await appendFile(options.logFile, `=== ${ran} ${verdict} after ${ms} ms\n`);
  say(`-----> ${ran} ${verdict} after ${(ms / 1000).toFixed(1)} s`);
  if (outcome.code === 0 && !outcome.timedOut) return { ran, ms };
  const next =
    outcome.spawnError !== undefined ? "install npm on this machine, on the hoster's PATH"
    : outcome.timedOut ? 'make the install faster, or raise the build timeout'
    : 'fix the dependencies in package.json (and package-lock.json), then publish again';
  throw new BuildFailedError(`${ran} ${verdict}: ${next}.`, options.logFile, await logTail(options.logFile, logStart));
}

/** How many dependencies package.json declares (0 without a package.json); throws when it is invalid. */
async function declaredDependencies(appDir: string, logFile: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(join(appDir, 'package.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let pkg: unknown;
  try {
    pkg = JSON.parse(text);
  } catch (err) {
    throw new BuildFailedError(`package.json is not valid JSON (${(err as Error).message}): fix it and publish again.`, logFile);
  }
  if (typeof pkg !== 'object' || pkg === null || Array.isArray(pkg)) {
    throw new BuildFailedError('package.json must hold a JSON object: fix it and publish again.', logFile);
  }
  const deps = (pkg as { dependencies?: unknown }).dependencies;
  if (deps === undefined || deps === null) return 0;
  if (typeof deps !== 'object' || Array.isArray(deps)) {
    throw new BuildFailedError('package.json "dependencies" must be an object of package names to versions: fix it and publish again.', logFile);
  }
  return Object.keys(deps).length;
}

/** Runs npm with its output on `fd`; never rejects, reports how it ended. */
function runNpm(
  args: string[],
  cwd: string,
  fd: number,
  timeoutMs: number,
  env: NodeJS.ProcessEnv | undefined,
  user: { uid: number; gid: number } | undefined,
  onLine: (line: string) => void,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; spawnError?: Error }> {
  return new Promise((resolve) => {
    // Its own process group (detached), so that one kill reaches npm and every script it runs.
    const child = spawn('npm', args, { cwd, env, uid: user?.uid, gid: user?.gid, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    // Both streams to the log file as they come, and line by line to onLine.
    for (const stream of [child.stdout!, child.stderr!]) {
      let partial = '';
      stream.on('data', (chunk: Buffer) => {
        writeSync(fd, chunk);
        partial += chunk.toString('utf8');
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) if (line.trim() !== '') onLine(line.slice(0, MAX_LINE));
        if (partial.length > MAX_LINE) {
          onLine(partial.slice(0, MAX_LINE));
          partial = '';
        }
      });
      stream.on('end', () => {
        if (partial.trim() !== '') onLine(partial.slice(0, MAX_LINE));
      });
    }
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // The group is already gone.
      }
    };
    // The exit listener comes first, then the timer that may signal.
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      // Nothing a build started may outlive it.
      killGroup('SIGKILL');
      // Its last lines may still be in the pipes: wait for them, but not for a process that
      // left the group and holds them open (it dies with the build user's processes later).
      const settle = () => resolve({ code, signal, timedOut });
      const drained = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        settle();
      }, PIPE_DRAIN_MS);
      child.once('close', () => {
        clearTimeout(drained);
        settle();
      });
    });
    child.once('error', (spawnError) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, timedOut: false, spawnError });
    });
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), BUILD_KILL_GRACE_MS);
    }, timeoutMs);
  });
}

/** The last lines the log gained since byte `from`. */
async function logTail(logFile: string, from: number): Promise<string> {
  const size = await sizeOf(logFile);
  const start = Math.max(from, size - LOG_TAIL_BYTES);
  const handle = await open(logFile, 'r');
  try {
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    return buffer.toString('utf8').trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
  } finally {
    await handle.close();
  }
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
