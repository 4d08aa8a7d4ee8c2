import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The hook receive-pack runs for every pushed ref (registry/git/proc-receive-hook.ts, compiled). */
function hookScript(): string {
  const beside = fileURLToPath(new URL('./proc-receive-hook.js', import.meta.url));
  // Run from TypeScript sources (tests): use the compiled hook, as the hoster does its shim.
  return existsSync(beside) ? beside : fileURLToPath(new URL('../../dist/registry/git/proc-receive-hook.js', import.meta.url));
}

/** What a git command printed, once it ended. */
export interface GitRun {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * The bare repositories of the git remotes, one per app under `dir`: a cache. What a push
 * deploys lives in the bundle store and the release, so any registry can serve any push; a
 * registry whose cache lacks the history only makes the client send more of it.
 */
export class GitRepos {
  readonly hooksDir: string;

  private readonly env: NodeJS.ProcessEnv;

  private prepared = false;

  /** `searchPath`: the PATH git is found on (and the only variable it gets from the registry). Nothing is written before the first push. */
  constructor(readonly dir: string, private readonly options: { nodePath: string; searchPath: string }) {
    this.env = gitEnv(options.searchPath);
    this.hooksDir = join(dir, 'hooks');
  }

  /** Makes the folder and the hook, once per start (so that the hook follows this registry's node and install). */
  private prepare(): void {
    if (this.prepared) return;
    mkdirSync(this.hooksDir, { recursive: true, mode: 0o700 });
    const hook = join(this.hooksDir, 'proc-receive');
    writeFileSync(hook, `#!/bin/sh\nexec ${shellQuote(this.options.nodePath)} ${shellQuote(hookScript())}\n`, { mode: 0o700 });
    chmodSync(hook, 0o700);
    this.prepared = true;
  }

  /** Why this machine's git cannot serve pushes (missing, or older than 2.29, which brought proc-receive), or undefined when it can. */
  async problem(): Promise<string | undefined> {
    const version = await this.run(['--version']).catch(() => undefined);
    const match = version === undefined ? null : /git version (\d+)\.(\d+)/.exec(version.stdout.toString());
    if (match === null) return 'git is not installed (or not on the PATH): install it (apt-get install git) for git push deploys';
    const [major, minor] = [Number(match[1]), Number(match[2])];
    if (major < 2 || (major === 2 && minor < 29)) return `git ${major}.${minor} is too old for git push deploys: install git 2.29 or newer`;
    return undefined;
  }

  /** The path of `app`'s repository. */
  path(app: string): string {
    return join(this.dir, `${app}.git`);
  }

  exists(app: string): boolean {
    return existsSync(join(this.path(app), 'HEAD'));
  }

  /** Makes `app`'s bare repository unless it exists: made aside and renamed, so two first pushes cannot half-make it. */
  async ensure(app: string): Promise<string> {
    this.prepare();
    const path = this.path(app);
    if (this.exists(app)) return path;
    const aside = join(this.dir, `.new-${app}-${randomBytes(6).toString('hex')}`);
    const made = await this.run(['init', '--quiet', '--bare', '--initial-branch=main', aside]);
    if (made.code !== 0) throw new Error(`git init failed: ${made.stderr.trim()}`);
    try {
      renameSync(aside, path);
    } catch (err) {
      // Another push made it first: use that one.
      rmSync(aside, { recursive: true, force: true });
      if (!this.exists(app)) throw err;
    }
    return path;
  }

  /** Starts git with a clean environment: no user or system config, no prompts. */
  spawn(args: string[], options: SpawnOptions = {}): ChildProcess {
    return spawn('git', args, { ...options, env: { ...this.env, ...(options.env ?? {}) } });
  }

  /** Runs git to its end (stdin closed). */
  run(args: string[], options: { cwd?: string } = {}): Promise<GitRun> {
    return new Promise((resolve, reject) => {
      const child = this.spawn(args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => out.push(d));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    });
  }
}

/** git as berth runs it: only PATH from the registry's environment, and neither the host's nor a user's git config. */
export function gitEnv(searchPath: string): NodeJS.ProcessEnv {
  return {
    PATH: searchPath,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    LANG: 'C',
  };
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
