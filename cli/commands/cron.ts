import { Command, InvalidArgumentError } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { ago } from '../output.js';
import type { CronJob } from '../../sdk/types.js';

function runTimeout(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 86_400) throw new InvalidArgumentError('Expected a whole number of seconds from 1 to 86400 (a day).');
  return n;
}

export function cronAddCommand(ctx: CliContext): Command {
  return new Command('cron:add')
    .description("Run a command of an app on a schedule: each tick is a detached run of the app's current release, once across the cluster.")
    .argument('<name>', 'the app')
    .argument('<schedule>', 'a cron expression in UTC: five fields, or six with seconds first (quote it)')
    .argument('<command...>', 'the program and its arguments, after --')
    .option('--timeout <seconds>', "each run's time limit", runTimeout, 3600)
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      `
A tick that no registry saw within 10 s of its time (every registry was down) is skipped, not
run late. Each tick's output is in the app's logs and in berth runs:logs; cron:list shows the
last one's result.

Examples:
  $ berth cron:add shop "*/5 * * * *" -- node jobs/report.js
  $ berth cron:add shop "0 3 * * *" --timeout 600 -- node jobs/cleanup.js`,
    )
    .action(async (name: string, schedule: string, command: string[], flags: { timeout: number; json?: boolean }) => {
      const job = await connect(ctx.env).addCron(name, { schedule, command, timeoutMs: flags.timeout * 1000 });
      if (flags.json) return ctx.output.json(job);
      ctx.output.line(`Added cron job ${job.id} to ${name}: ${schedule} ${command.join(' ')} (next ${job.nextAt === null ? 'never' : new Date(job.nextAt).toISOString()})`);
    });
}

export function cronListCommand(ctx: CliContext): Command {
  return new Command('cron:list')
    .description("List an app's scheduled jobs, with their next tick and the last tick's result.")
    .argument('<name>', 'the app')
    .option(...JSON_FLAG)
    .action(async (name: string, flags: { json?: boolean }) => {
      const { output } = ctx;
      const jobs = await connect(ctx.env).listCron(name);
      if (flags.json) return output.json(jobs);
      if (jobs.length === 0) return output.note(`${name} has no cron jobs: add one with berth cron:add ${name} "*/5 * * * *" -- COMMAND`);
      output.table(
        ['ID', 'SCHEDULE', 'COMMAND', 'NEXT', 'LAST RUN', 'LAST RESULT'],
        jobs.map((j) => [j.id, j.schedule, j.command.join(' '), j.nextAt === null ? '-' : new Date(j.nextAt).toISOString(), j.lastRun?.id ?? '-', lastResult(output, j)]),
      );
    });
}

export function cronRemoveCommand(ctx: CliContext): Command {
  return new Command('cron:remove')
    .description('Remove a scheduled job (its past runs stay in berth runs).')
    .argument('<name>', 'the app')
    .argument('<id>', 'the job (berth cron:list NAME lists them)')
    .option(...JSON_FLAG)
    .action(async (name: string, id: string, flags: { json?: boolean }) => {
      const job = await connect(ctx.env).removeCron(name, id);
      if (flags.json) return ctx.output.json(job);
      ctx.output.line(`Removed cron job ${id} of ${name}`);
    });
}

function lastResult(output: CliContext['output'], job: CronJob): string {
  const last = job.lastRun;
  if (last === null) return '-';
  const code = last.exitCode === null ? '' : ` ${last.exitCode}`;
  return `${output.status(last.state)}${code} ${ago(last.finishedAt ?? last.createdAt)}`;
}
