import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { ago } from '../output.js';
import type { Run } from '../../sdk/types.js';

export function runsCommand(ctx: CliContext): Command {
  return new Command('runs')
    .description("List an app's one-off runs (berth run, cron ticks), newest first.")
    .argument('<name>', 'the app')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth runs shop')
    .action(async (name: string, flags: { json?: boolean }) => {
      const { output } = ctx;
      const runs = await connect(ctx.env).listRuns(name);
      if (flags.json) return output.json(runs);
      if (runs.length === 0) return output.note(`${name} has no runs yet: start one with berth run ${name} -- COMMAND`);
      output.table(
        ['ID', 'COMMAND', 'STATE', 'EXIT', 'STARTED', 'MACHINE', 'RELEASE'],
        runs.map((r) => [r.id, commandCell(r), output.status(r.state), exitCell(r), r.startedAt === null ? '-' : ago(r.startedAt), r.machine ?? '-', `v${r.release}`]),
      );
    });
}

export function runsLogsCommand(ctx: CliContext): Command {
  return new Command('runs:logs')
    .description("Print a run's output from its start (berth logs NAME --run ID does the same).")
    .argument('<name>', 'the app')
    .argument('<id>', 'the run (berth runs NAME lists them)')
    .option('-f, --follow', 'keep printing until the run ends (Ctrl-C leaves it running)')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth runs:logs shop 3f9c2a71d04e8b65 -f')
    .action((name: string, id: string, flags: { follow?: boolean; json?: boolean }) => printRunOutput(ctx, name, id, flags));
}

export function runsStopCommand(ctx: CliContext): Command {
  return new Command('runs:stop')
    .description('Stop a run (SIGTERM, then SIGKILL after the grace).')
    .argument('<name>', 'the app')
    .argument('<id>', 'the run')
    .option(...JSON_FLAG)
    .action(async (name: string, id: string, flags: { json?: boolean }) => {
      const run = await connect(ctx.env).stopRun(name, id);
      if (flags.json) return ctx.output.json(run);
      ctx.output.line(`run ${id}: ${run.state === 'running' || run.state === 'starting' ? 'stopping' : run.state}`);
    });
}

/** A run's output (followed until it ends with `follow`; leaving early does not stop a detached run). */
export async function printRunOutput(ctx: CliContext, name: string, id: string, flags: { follow?: boolean; json?: boolean }): Promise<void> {
  const client = connect(ctx.env);
  const run = await client.getRun(name, id);
  if (run.interactive) ctx.output.note('An interactive run: its terminal was not recorded, only its end.');
  const write = (piece: Awaited<ReturnType<typeof client.runOutput>>[number]) => {
    if (flags.json) return ctx.output.jsonLine(piece);
    if ('exit' in piece) return ctx.output.note(`run ${id} ended: ${piece.exit.state}${piece.exit.exitCode === null ? '' : ` (exit ${piece.exit.exitCode})`}${piece.exit.reason ? `, ${piece.exit.reason}` : ''}`);
    (piece.stream === 'err' ? ctx.terminal.stderr : ctx.terminal.stdout).write(piece.data);
  };
  if (!flags.follow || !run.detached) {
    // An attached run is followed by its own CLI: following it here too would stop it on leaving.
    for (const piece of await client.runOutput(name, id)) write(piece);
    return;
  }
  const leave = new AbortController();
  const onSignal = () => leave.abort();
  process.once('SIGINT', onSignal);
  try {
    for await (const piece of client.followRun(name, id, { signal: leave.signal })) {
      write(piece);
      if ('exit' in piece) return;
    }
  } catch (err) {
    if (!leave.signal.aborted) throw err;
  } finally {
    process.off('SIGINT', onSignal);
  }
}

function commandCell(r: Run): string {
  const text = r.command.join(' ');
  const cell = text.length > 40 ? `${text.slice(0, 39)}…` : text;
  return r.interactive ? `${cell} (-it)` : cell;
}

function exitCell(r: Run): string {
  if (r.exitCode !== null) return String(r.exitCode);
  if (r.signal !== null) return r.signal;
  return r.reason ?? '-';
}
