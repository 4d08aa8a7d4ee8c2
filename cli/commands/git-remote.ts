import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { NAME_PATTERN } from '../../common/names.js';
import { resolveCredentials } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';

/** The name `--add` gives the remote unless told otherwise. */
export const DEFAULT_REMOTE = 'berth';

/** `<API URL>/git/<name>.git`: the app's git remote on the registry the CLI uses. */
export function gitRemoteUrl(apiUrl: string, name: string): string {
  return `${apiUrl.replace(/\/+$/, '')}/git/${name}.git`;
}

export function gitRemoteCommand(ctx: CliContext): Command {
  return new Command('git:remote')
    .description("Print the app's git remote (a push to it deploys); --add adds it to this repository, with berth as its credential helper.")
    .argument('<name>', 'the app (made on the first push when it does not exist)')
    .option('--add', 'run git remote add in this repository and let git ask berth for the token (it never lands in .git/config)')
    .option('--remote <remote>', 'the name of the remote to add', DEFAULT_REMOTE)
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      `
A push of main (or master, or the branch set with berth git:branch) builds and deploys it;
the push is accepted only once the new release runs.

Examples:
  $ berth git:remote shop --add && git push berth main
  $ git remote add berth "$(berth git:remote shop)"`,
    )
    .action(async (name: string, flags: { add?: boolean; remote: string; json?: boolean }) => {
      const { output } = ctx;
      if (!NAME_PATTERN.test(name)) throw new Error(`${JSON.stringify(name)} is not an app name: lowercase letters, digits and "-", starting with a letter.`);
      const url = gitRemoteUrl(resolveCredentials(ctx.env).url, name);
      if (!flags.add) {
        if (flags.json) return output.json({ name, url, remote: null, credentialHelper: null });
        return output.line(url);
      }
      const helper = credentialHelper(ctx.env);
      addRemote(flags.remote, url, helper, (line) => output.note(line));
      if (flags.json) return output.json({ name, url, remote: flags.remote, credentialHelper: helper });
      output.note(`git push ${flags.remote} main deploys ${name} (git asks berth git:credential for the token)`);
      output.line(url);
    });
}

/** The helper git runs for the remote's URL: this very CLI, told where its credentials are when BERTH_HOME says so. */
function credentialHelper(env: NodeJS.ProcessEnv): string {
  const main = fileURLToPath(new URL('../main.js', import.meta.url));
  const home = env.BERTH_HOME ? `BERTH_HOME=${shellQuote(env.BERTH_HOME)} ` : '';
  return `!${home}${shellQuote(process.execPath)} ${shellQuote(main)} git:credential`;
}

/** Adds (or points) the remote at `url` and makes berth its only credential helper. */
function addRemote(remote: string, url: string, helper: string, note: (line: string) => void): void {
  if (git(['rev-parse', '--git-dir']).code !== 0) throw new Error('This is not a git repository: run berth git:remote --add in your app\'s repository (git init makes one).');
  const current = git(['remote', 'get-url', remote]);
  if (current.code !== 0) {
    must(['remote', 'add', remote, url]);
    note(`added the git remote ${remote}: ${url}`);
  } else if (current.stdout.trim() !== url) {
    must(['remote', 'set-url', remote, url]);
    note(`the git remote ${remote} pointed at ${current.stdout.trim()}: it points at ${url} now`);
  }
  const key = `credential.${url}.helper`;
  git(['config', '--local', '--unset-all', key]);
  // An empty helper first: git then asks no other helper for this URL (a "store" helper would write the token to disk).
  must(['config', '--local', '--add', key, '']);
  must(['config', '--local', '--add', key, helper]);
}

function git(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const run = spawnSync('git', args, { encoding: 'utf8' });
  if (run.error) throw new Error(`Cannot run git (${run.error.message}): install git, then try again.`);
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

function must(args: string[]): void {
  const run = git(args);
  if (run.code !== 0) throw new Error(`git ${args.join(' ')} failed: ${run.stderr.trim()}`);
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
