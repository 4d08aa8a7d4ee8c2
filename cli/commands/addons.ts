import { Command } from 'commander';
import type { Addon } from '../../sdk/index.js';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { ago, bytes } from '../output.js';
import { attachTerminal } from '../run-terminal-client.js';
import { exitFor, follow } from './run.js';

/** addons:create, :list, :info, :attach, :detach, :destroy: a PostgreSQL or a Redis for an app. */
export function addonsCreateCommand(ctx: CliContext): Command {
  return new Command('addons:create')
    .description("Create a PostgreSQL or a Redis on a machine of the cluster and attach it to an app (a new release sets DATABASE_URL or REDIS_URL).")
    .argument('<app>', 'the app it is for')
    .argument('<kind>', 'postgres or redis')
    .option('--name <name>', 'its name (default <app>-<kind>)')
    .option('--machine <machine>', 'the machine it lives on, for good (default: the one with the most free memory)')
    .option('--as <var>', 'the variable the app gets its URL as (default DATABASE_URL or REDIS_URL)')
    .option('--memory <mb>', "its plan's memory in MB: Redis's maxmemory, a quarter of it PostgreSQL's shared_buffers (default 256)")
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExamples:\n  $ berth addons:create shop postgres\n  $ berth addons:create shop redis --as CACHE_URL --memory 64')
    .action(async (app: string, kind: string, flags: { name?: string; machine?: string; as?: string; memory?: string; json?: boolean }) => {
      const memoryMb = flags.memory === undefined ? undefined : Number(flags.memory);
      if (memoryMb !== undefined && !Number.isInteger(memoryMb)) throw new Error(`--memory ${flags.memory} is not a whole number of MB: give e.g. --memory 256.`);
      const addon = await connect(ctx.env).createAddon({ app, kind, ...(flags.name === undefined ? {} : { name: flags.name }), ...(flags.machine === undefined ? {} : { machine: flags.machine }), ...(flags.as === undefined ? {} : { as: flags.as }), ...(memoryMb === undefined ? {} : { memoryMb }) });
      if (flags.json) return ctx.output.json(addon);
      const variable = addon.attachments.find((a) => a.app === app)?.variable ?? '?';
      ctx.output.note(`Created ${addon.name} (${addon.kind}) on ${addon.machine}, attached to ${app} as ${variable}: its release rolls out once the server runs (berth addons:info ${addon.name}).`);
    });
}

export function addonsListCommand(ctx: CliContext): Command {
  return new Command('addons:list')
    .description('List the add-ons: where each runs, its state and its apps.')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth addons:list')
    .action(async (flags: { json?: boolean }) => {
      const addons = await connect(ctx.env).listAddons();
      if (flags.json) return ctx.output.json(addons);
      if (addons.length === 0) return ctx.output.note('No add-ons: create one with berth addons:create APP postgres|redis.');
      ctx.output.table(
        ['NAME', 'KIND', 'MACHINE', 'STATE', 'APPS', 'CREATED'],
        addons.map((a) => [a.name, a.kind, a.machine, ctx.output.status(a.state), attachmentsText(a), ago(a.createdAt)]),
      );
    });
}

export function addonsInfoCommand(ctx: CliContext): Command {
  return new Command('addons:info')
    .description('Show an add-on: its machine, address, plan, state, data size, connections and apps (never its password: berth config APP has the URL).')
    .argument('<name>', 'the add-on')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth addons:info shop-postgres')
    .action(async (name: string, flags: { json?: boolean }) => {
      const { output } = ctx;
      const a = await connect(ctx.env).getAddon(name);
      if (flags.json) return output.json(a);
      const rows: Array<[string, string]> = [
        ['kind', a.kind],
        ['state', output.status(a.state) + (a.detail === '' ? '' : ` (${a.detail})`)],
        ['machine', a.machine],
        ['address', `${a.host}:${a.port}`],
        ['url', a.url],
        ['memory', `${a.memoryMb} MB`],
        ['restarts', String(a.restarts)],
        ...usageRows(a),
        ...backupRows(a),
        ['apps', attachmentsText(a)],
        ['created', `${ago(a.createdAt)} by ${a.createdBy}`],
      ];
      output.line(output.paint.bold(a.name));
      const width = Math.max(...rows.map(([k]) => k.length));
      for (const [key, value] of rows) output.line(`  ${key.padEnd(width)}  ${value}`);
    });
}

export function addonsAttachCommand(ctx: CliContext): Command {
  return new Command('addons:attach')
    .description("Give an app an add-on's URL as a variable (a new release): one add-on may serve several apps.")
    .argument('<name>', 'the add-on')
    .argument('<app>', 'the app')
    .option('--as <var>', 'the variable (default DATABASE_URL or REDIS_URL)')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth addons:attach shop-postgres reports --as SHOP_DATABASE_URL')
    .action(async (name: string, app: string, flags: { as?: string; json?: boolean }) => {
      const addon = await connect(ctx.env).attachAddon(name, app, flags.as === undefined ? {} : { as: flags.as });
      if (flags.json) return ctx.output.json(addon);
      ctx.output.note(`Attached ${name} to ${app} as ${addon.attachments.find((a) => a.app === app)?.variable ?? '?'}: its release rolls out now.`);
    });
}

export function addonsDetachCommand(ctx: CliContext): Command {
  return new Command('addons:detach')
    .description("Take an add-on's variable away from an app (a new release); the add-on and its data stay.")
    .argument('<name>', 'the add-on')
    .argument('<app>', 'the app')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth addons:detach shop-postgres reports')
    .action(async (name: string, app: string, flags: { json?: boolean }) => {
      const addon = await connect(ctx.env).detachAddon(name, app);
      if (flags.json) return ctx.output.json(addon);
      ctx.output.note(`Detached ${name} from ${app}: its release rolls out now.`);
    });
}

export function addonsDestroyCommand(ctx: CliContext): Command {
  return new Command('addons:destroy')
    .description('Destroy an add-on: detach it from every app, stop its server and remove its data, for good.')
    .argument('<name>', 'the add-on')
    .option('--confirm <name>', 'its name again: the data is removed for good')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth addons:destroy shop-redis --confirm shop-redis')
    .action(async (name: string, flags: { confirm?: string; json?: boolean }) => {
      // Sent as given: the registry refuses a missing or wrong one (confirmation_required), so scripts see one answer.
      const addon = await connect(ctx.env).destroyAddon(name, flags.confirm ?? '');
      if (flags.json) return ctx.output.json(addon);
      ctx.output.note(`Destroyed ${name}: its machine ${addon.machine} removes its data now.`);
    });
}

export function addonsBackupCommand(ctx: CliContext): Command {
  return new Command('addons:backup')
    .description('Back an add-on up now (PostgreSQL: pg_dump custom format; Redis: every key), kept under its name by count; --every schedules one per period instead.')
    .argument('<name>', 'the add-on')
    .option('--every <period>', 'take one at the start of every period (24h, 30m, 1h30m, 7d; at least 1m by default), or off')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExamples:\n  $ berth addons:backup shop-postgres\n  $ berth addons:backup shop-postgres --every 24h\n  $ berth addons:backup shop-postgres --every off')
    .action(async (name: string, flags: { every?: string; json?: boolean }) => {
      if (flags.every !== undefined) {
        const addon = await connect(ctx.env).scheduleAddonBackups(name, flags.every);
        if (flags.json) return ctx.output.json(addon);
        const s = addon.backupSchedule;
        return ctx.output.note(s === null ? `${name} is no longer backed up on a schedule (its backups stay).` : `${name} is backed up every ${s.every}, next at ${new Date(s.nextAt).toISOString()} (berth addons:backups ${name} lists them).`);
      }
      const backup = await connect(ctx.env).backupAddon(name);
      if (flags.json) return ctx.output.json(backup);
      ctx.output.note(`Backed ${name} up as ${backup.id} (${backup.sizeBytes} bytes). Restore it with berth addons:restore ${name} ${backup.id} --confirm ${name}.`);
    });
}

export function addonsBackupsCommand(ctx: CliContext): Command {
  return new Command('addons:backups')
    .description("List an add-on's backups, newest first (a destroyed add-on's stay, for a new one of its name).")
    .argument('<name>', 'the add-on')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth addons:backups shop-postgres')
    .action(async (name: string, flags: { json?: boolean }) => {
      const backups = await connect(ctx.env).listAddonBackups(name);
      if (flags.json) return ctx.output.json(backups);
      if (backups.length === 0) return ctx.output.note(`No backups of ${name}: take one with berth addons:backup ${name}.`);
      ctx.output.table(['BACKUP', 'KIND', 'SIZE', 'TAKEN'], backups.map((b) => [b.id, b.kind, `${b.sizeBytes} B`, ago(b.createdAt)]));
    });
}

export function addonsRestoreCommand(ctx: CliContext): Command {
  return new Command('addons:restore')
    .description("Replace an add-on's data with one of its name's backups (of its kind); --to-machine moves it to another machine first (when its own died).")
    .argument('<name>', 'the add-on')
    .argument('<backup>', 'the backup (berth addons:backups NAME lists them)')
    .option('--confirm <name>', 'its name again: its data now is replaced')
    .option('--to-machine <machine>', 'start it on this machine with the backup, its apps given the new address as new releases (its old machine removes its copy if it returns)')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExamples:\n  $ berth addons:restore shop-postgres 20261203T183500123Z --confirm shop-postgres\n  $ berth addons:restore shop-postgres 20261203T183500123Z --to-machine m2 --confirm shop-postgres')
    .action(async (name: string, backup: string, flags: { confirm?: string; toMachine?: string; json?: boolean }) => {
      const restored = await connect(ctx.env).restoreAddon(name, backup, flags.confirm ?? '', flags.toMachine === undefined ? {} : { toMachine: flags.toMachine });
      if (flags.json) return ctx.output.json(restored);
      ctx.output.note(flags.toMachine === undefined ? `Restored ${name} from ${restored.id}.` : `Restored ${name} from ${restored.id} on ${flags.toMachine} (when it moved there, its apps' new releases roll out now: berth addons:info ${name}).`);
    });
}

/** Data size and connections as its hoster last measured them, with how long ago (a silent machine's stay as they were). */
function usageRows(a: Addon): Array<[string, string]> {
  const u = a.usage;
  if (u === null) return [['data size', a.state === 'running' ? 'not measured yet' : `not measured (${a.state})`]];
  const rows: Array<[string, string]> = [
    ['data size', `${bytes(u.bytes)} (measured ${ago(u.measuredAt)})`],
    ['connections', String(u.connections)],
  ];
  if (u.memoryBytes !== null) rows.push(['memory used', bytes(u.memoryBytes)]);
  return rows;
}

/** The schedule of its backups and how the last scheduled one went. */
function backupRows(a: Addon): Array<[string, string]> {
  const s = a.backupSchedule;
  const rows: Array<[string, string]> = [['backups', s === null ? 'not scheduled (berth addons:backup NAME --every 24h)' : `every ${s.every}, next at ${new Date(s.nextAt).toISOString()}`]];
  const last = a.lastScheduledBackup;
  if (last !== null) {
    rows.push(['last scheduled backup', last.error === null ? `${last.backup ?? '?'} (${ago(last.at)})` : `failed ${ago(last.at)}: ${last.error}`]);
  }
  return rows;
}

function attachmentsText(a: Addon): string {
  return a.attachments.length === 0 ? 'none' : a.attachments.map((t) => `${t.app} (${t.variable})`).join(', ');
}

/**
 * The program a client session runs on a machine of the app (through berth run): it reads the
 * add-on's URL from the app's variable and hands the password to the client in its environment,
 * never on a command line (`ps` shows those to every user of the machine).
 */
function clientLauncher(kind: 'postgres' | 'redis', variable: string, args: string[]): string[] {
  const script = [
    `const u = new URL(process.env[${JSON.stringify(variable)}] || '');`,
    "const host = u.hostname.replace(/^\\[|\\]$/g, '');",
    kind === 'postgres'
      ? "const [file, argv, env] = ['psql', ['-h', host, '-p', u.port, '-U', decodeURIComponent(u.username), u.pathname.slice(1), ...JSON.parse(process.argv[1])], { PGPASSWORD: decodeURIComponent(u.password) }];"
      : "const [file, argv, env] = ['redis-cli', ['-h', host, '-p', u.port, ...JSON.parse(process.argv[1])], { REDISCLI_AUTH: decodeURIComponent(u.password) }];",
    "const c = require('node:child_process').spawn(file, argv, { stdio: 'inherit', env: { ...process.env, ...env } });",
    "c.on('error', (e) => { console.error(file + ' could not start: ' + e.message + ' (install it on the machines: scripts/setup and ami/provision.sh do)'); process.exit(127); });",
    "c.on('exit', (code, signal) => process.exit(code === null ? 128 + (require('node:os').constants.signals[signal] || 0) : code));",
  ].join('\n');
  return ['node', '-e', script, JSON.stringify(args)];
}

function clientCommand(ctx: CliContext, kind: 'postgres' | 'redis'): Command {
  const name = kind === 'postgres' ? 'addons:psql' : 'addons:redis-cli';
  const tool = kind === 'postgres' ? 'psql' : 'redis-cli';
  return new Command(name)
    .description(`Open ${tool} on a ${kind} add-on, through berth run on a machine of an app it is attached to (as that app's user).`)
    .argument('<name>', 'the add-on')
    .argument('[args...]', `${tool}'s own arguments, after -- (none: an interactive session on a terminal)`)
    .option('--app <app>', 'the attached app to run it as (default: the first attached)')
    .addHelpText('after', kind === 'postgres' ? '\nExamples:\n  $ berth addons:psql shop-postgres\n  $ berth addons:psql shop-postgres -- -c "SELECT count(*) FROM orders"' : '\nExamples:\n  $ berth addons:redis-cli shop-redis\n  $ berth addons:redis-cli shop-redis -- GET greeting')
    .action(async (addonName: string, args: string[], flags: { app?: string }) => {
      const client = connect(ctx.env);
      const addon = await client.getAddon(addonName);
      if (addon.kind !== kind) throw new Error(`${addonName} is a ${addon.kind} add-on: use berth addons:${addon.kind === 'postgres' ? 'psql' : 'redis-cli'} ${addonName}.`);
      const attachment = flags.app === undefined ? addon.attachments[0] : addon.attachments.find((a) => a.app === flags.app);
      if (attachment === undefined) {
        throw new Error(flags.app === undefined ? `${addonName} is attached to no app, and the client runs as one: attach it first (berth addons:attach ${addonName} APP).` : `${addonName} is not attached to ${flags.app}: berth addons:info ${addonName} lists its apps.`);
      }
      const interactive = args.length === 0;
      const command = clientLauncher(kind, attachment.variable, args);
      const run = await client.createRun(attachment.app, { command, interactive, detached: false, timeoutMs: 3600_000 });
      if (interactive) throw exitFor(await attachTerminal(ctx, client, attachment.app, run));
      throw exitFor(await follow(ctx, attachment.app, run, false));
    });
}

export function addonsPsqlCommand(ctx: CliContext): Command {
  return clientCommand(ctx, 'postgres');
}

export function addonsRedisCliCommand(ctx: CliContext): Command {
  return clientCommand(ctx, 'redis');
}
