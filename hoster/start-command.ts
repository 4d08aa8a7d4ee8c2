import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '../common/errors.js';

/** How to start an app: a line for `/bin/sh -c`, or a program and its arguments. */
export type StartCommand = { shell: string } | { file: string; args: string[] };

/** Nothing in the app says how to start it. */
export class NoStartCommandError extends BerthError {
  constructor(message: string) {
    super('no_start_command', message);
    this.name = 'NoStartCommandError';
  }
}

const WEB_LINE = /^web\s*:(.*)$/;

/**
 * The command that starts the app in `appDir`, by precedence: the release's own command (run
 * by the shell); the `web:` line of a Procfile (by the shell); package.json's start script;
 * `node server.js`, then `node index.js`, when present (as `npm start` would without a
 * script). Reads files, runs nothing. Commands are meant to run with `appDir` as their cwd.
 *
 * The start script runs through the shell directly rather than through `npm start`, with
 * `node_modules/.bin` put first on PATH as npm would: an npm process in between costs tens
 * of megabytes and most of a second per start, and puts a process that is not the app
 * between the supervisor's signals and the app. What is lost is npm's prestart/poststart
 * hooks and its npm_package_* variables.
 */
export function startCommand(appDir: string, releaseCommand: string | null): StartCommand {
  if (releaseCommand !== null && releaseCommand.trim() !== '') return { shell: releaseCommand };

  const procfile = readIfPresent(join(appDir, 'Procfile'));
  if (procfile !== undefined) {
    for (const line of procfile.split(/\r?\n/)) {
      const web = WEB_LINE.exec(line.trim());
      if (web === null) continue;
      const command = web[1]!.trim();
      if (command === '') throw new NoStartCommandError('The Procfile\'s "web:" line has no command: write it as "web: node server.js".');
      return { shell: command };
    }
  }

  const packageJson = readIfPresent(join(appDir, 'package.json'));
  if (packageJson !== undefined) {
    const start = startScript(packageJson);
    if (start !== undefined) {
      const bin = shellQuote(join(appDir, 'node_modules', '.bin'));
      // An assignment to PATH (already exported) reaches every command of the script.
      return { shell: `PATH=${bin}\${PATH:+:\$PATH}\n${start}` };
    }
  }

  for (const main of ['server.js', 'index.js']) {
    if (existsSync(join(appDir, main))) return { file: process.execPath, args: [join(appDir, main)] };
  }
  throw new NoStartCommandError(
    'The app has no start command: add a Procfile with a line "web: node server.js", or a "start" script in package.json, or a server.js.',
  );
}

function startScript(text: string): string | undefined {
  let pkg: unknown;
  try {
    pkg = JSON.parse(text);
  } catch (err) {
    throw new NoStartCommandError(`package.json is not valid JSON (${(err as Error).message}): fix it and publish again.`);
  }
  const scripts = typeof pkg === 'object' && pkg !== null ? (pkg as { scripts?: unknown }).scripts : undefined;
  if (typeof scripts !== 'object' || scripts === null) return undefined;
  const start = (scripts as { start?: unknown }).start;
  return typeof start === 'string' && start.trim() !== '' ? start : undefined;
}

function readIfPresent(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** One word for /bin/sh, whatever it contains. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
