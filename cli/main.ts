#!/usr/bin/env node
// The `berth` command: apps, machines and the daemons. Only this entry reads argv and the environment, and only it exits.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import type { CliContext } from './cli-context.js';
import { appsCommand } from './commands/apps.js';
import { auditCommand } from './commands/audit.js';
import { configCommand } from './commands/config.js';
import { configSetCommand } from './commands/config-set.js';
import { configUnsetCommand } from './commands/config-unset.js';
import { culpritCommand } from './commands/culprit.js';
import { deleteCommand } from './commands/delete.js';
import { certsAddCommand, certsCommand, certsRemoveCommand } from './commands/certs.js';
import { addonsAttachCommand, addonsPsqlCommand, addonsRedisCliCommand, addonsBackupCommand, addonsBackupsCommand, addonsRestoreCommand, addonsCreateCommand, addonsDestroyCommand, addonsDetachCommand, addonsInfoCommand, addonsListCommand } from './commands/addons.js';
import { domainsAddCommand, domainsListCommand, domainsRemoveCommand } from './commands/domains.js';
import { gitBranchCommand } from './commands/git-branch.js';
import { gitCredentialCommand } from './commands/git-credential.js';
import { gitRemoteCommand } from './commands/git-remote.js';
import { infoCommand } from './commands/info.js';
import { instancesCommand } from './commands/instances.js';
import { loadCommand } from './commands/load.js';
import { loginCommand } from './commands/login.js';
import { logsCommand } from './commands/logs.js';
import { machinesCommand } from './commands/machines.js';
import { publishCommand } from './commands/publish.js';
import { releasesCommand } from './commands/releases.js';
import { restartCommand } from './commands/restart.js';
import { rollbackCommand } from './commands/rollback.js';
import { scaleCommand } from './commands/scale.js';
import { statusCommand } from './commands/status.js';
import { tokensCreateCommand, tokensListCommand, tokensRevokeCommand } from './commands/tokens.js';
import { updateCommand } from './commands/update.js';
import { Output } from './output.js';
import { CommandExit } from './command-exit.js';
import { runCommand } from './commands/run.js';
import { runsCommand, runsLogsCommand, runsStopCommand } from './commands/runs.js';
import { cronAddCommand, cronListCommand, cronRemoveCommand } from './commands/cron.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

type MakeCommand = (ctx: CliContext) => Command;

/**
 * The commands that start daemons, loaded only when asked for (or for help): their modules
 * (express, the TLS stack, the hoster…) take longer to load than an app command needs in all.
 */
const DAEMON_COMMANDS: Record<string, () => Promise<MakeCommand>> = {
  up: async () => (await import('./daemons/up-command.js')).upCommand,
  registry: async () => (await import('./daemons/registry-command.js')).registryCommand,
  hoster: async () => (await import('./daemons/hoster-command.js')).hosterCommand,
  proxy: async () => (await import('./daemons/proxy-command.js')).proxyCommand,
  balancer: async () => (await import('./daemons/balancer-command.js')).balancerCommand,
  scaler: async () => (await import('./daemons/scaler-command.js')).scalerCommand,
};

// --verbose, anywhere before "--", for every command: each one that talks to the API then says
// which API on stderr (as BERTH_VERBOSE=1 does).
{
  const end = process.argv.indexOf('--');
  const at = process.argv.indexOf('--verbose');
  if (at >= 2 && (end < 0 || at < end)) {
    process.argv.splice(at, 1);
    process.env.BERTH_VERBOSE = '1';
  }
}

/** A command of the table: an app command's maker, or a daemon command by its name (loaded when needed). */
type Entry = MakeCommand | { daemon: keyof typeof DAEMON_COMMANDS };

/** Every command, in the order and under the headings of `berth --help`: the one list of them. */
const COMMAND_TABLE: ReadonlyArray<{ heading: string; commands: ReadonlyArray<Entry> }> = [
  {
    heading: 'Apps:',
    commands: [
      publishCommand,
      updateCommand,
      appsCommand,
      infoCommand,
      instancesCommand,
      scaleCommand,
      releasesCommand,
      rollbackCommand,
      restartCommand,
      configCommand,
      configSetCommand,
      configUnsetCommand,
      logsCommand,
      deleteCommand,
    ],
  },
  { heading: 'Add-ons (databases):', commands: [addonsCreateCommand, addonsListCommand, addonsInfoCommand, addonsAttachCommand, addonsDetachCommand, addonsDestroyCommand, addonsBackupCommand, addonsBackupsCommand, addonsRestoreCommand, addonsPsqlCommand, addonsRedisCliCommand] },
  { heading: 'Domains and certificates:', commands: [domainsAddCommand, domainsRemoveCommand, domainsListCommand, certsCommand, certsAddCommand, certsRemoveCommand] },
  { heading: 'Runs and scheduled jobs:', commands: [runCommand, runsCommand, runsLogsCommand, runsStopCommand, cronAddCommand, cronListCommand, cronRemoveCommand] },
  { heading: 'Git (a push deploys):', commands: [gitRemoteCommand, gitBranchCommand, gitCredentialCommand] },
  { heading: 'Machines:', commands: [machinesCommand, loadCommand, culpritCommand] },
  { heading: 'Access:', commands: [tokensCreateCommand, tokensListCommand, tokensRevokeCommand, auditCommand] },
  { heading: 'Set-up:', commands: [{ daemon: 'up' }, loginCommand, statusCommand] },
  { heading: 'Daemons (berth up runs them for one machine):', commands: (['registry', 'hoster', 'proxy', 'balancer', 'scaler'] as const).map((daemon) => ({ daemon })) },
];

// A reader that stops early (berth logs x | head -1) closes the pipe: that is not a failure.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const ctx: CliContext = {
  env: process.env,
  output: new Output({ stdout: process.stdout, stderr: process.stderr, env: process.env }),
  // Opened only by a command that asks something: an unused stdin stays untouched.
  get stdin() {
    return process.stdin;
  },
  get terminal() {
    return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
  },
};

/** The command named on the command line, if any (the first word that is not an option). */
const named = process.argv.slice(2).find((arg) => !arg.startsWith('-'));
const appCommands = COMMAND_TABLE.flatMap(({ commands }) => commands.filter((e): e is MakeCommand => typeof e === 'function'));
const loaded: Partial<Record<string, MakeCommand>> = {};
// An app command needs no daemon's module; a daemon command only its own; help and typos all.
if (named === undefined || !appCommands.some((make) => make(ctx).name() === named)) {
  for (const [name, load] of Object.entries(DAEMON_COMMANDS)) {
    if (named !== undefined && named in DAEMON_COMMANDS && named !== name) continue;
    loaded[name] = await load();
  }
}

const program = new Command()
  .name('berth')
  .description('A self-hosted Platform as a Service: publish a Node.js web app with one command.')
  .version(pkg.version, '-V, --version')
  .showHelpAfterError('(run berth --help for the commands)')
  .exitOverride()
  .addHelpText(
    'after',
    `
Every app command finds the API in BERTH_URL and BERTH_TOKEN, else in the credentials file
that berth up and berth login write. Each takes --json to print its result as JSON on
stdout, and --help for its flags and examples. Errors go to stderr as "berth: <message>",
with exit code 1. --verbose (or BERTH_VERBOSE=1) says on stderr which API a command uses.

Examples:
  $ berth up                          # run berth on this machine
  $ cd my-app && berth publish        # publish this folder as an app, served on /my-app
  $ berth apps
  $ berth logs my-app -f
  $ berth scale my-app 3`,
  );

for (const { heading, commands } of COMMAND_TABLE) {
  program.commandsGroup(heading);
  for (const entry of commands) {
    const make = typeof entry === 'function' ? entry : loaded[entry.daemon];
    if (make === undefined) continue;
    const command = make(ctx);
    // addCommand, unlike .command(), does not pass settings down: commands must throw, not exit.
    command.copyInheritedSettings(program);
    command.showHelpAfterError(`(run berth ${command.name()} --help for its usage)`);
    for (const sub of command.commands) {
      sub.copyInheritedSettings(command);
      sub.showHelpAfterError(`(run berth ${command.name()} ${sub.name()} --help for its usage)`);
    }
    program.addCommand(command);
  }
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  if (err instanceof CommandExit) {
    if (err.message !== '') process.stderr.write(`berth: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  ctx.output.endProgress();
  process.stderr.write(`berth: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
