import { constants } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { CommandExit } from '../command-exit.js';
import { attachTerminal } from '../run-terminal-client.js';
import type { Run, RunOutput } from '../../sdk/types.js';

/** A run's time limit in seconds: 1 s to a day. */
function runTimeout(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 86_400) throw new InvalidArgumentError('Expected a whole number of seconds from 1 to 86400 (a day).');
  return n;
}

export function runCommand(ctx: CliContext): Command {
  return new Command('run')
    .description("Run a command once in a fresh process of an app's current release (its code, build, config and user), and exit with its exit code.")
    .argument('<name>', 'the app')
    .argument('<command...>', 'the program and its arguments, after --')
    .option('-i, --interactive', 'an interactive terminal (a PTY on the machine): keys, Ctrl-C and window size go through')
    .option('-t, --tty', 'the same as -i (so that -it reads as it does elsewhere)')
    .option('-d, --detach', 'leave it running and print its id (follow it with berth runs:logs NAME ID)')
    .option('--timeout <seconds>', 'stop it after this long', runTimeout, 3600)
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      `
The command runs on a machine with room, as the app's own user, with the release's config
vars, in the app's folder (its node_modules/.bin first on PATH); it gets no port and no route.
Its stdout and stderr come here as it prints them. If this command goes away (Ctrl-C, a lost
connection) the run is stopped, unless it was started with --detach. With --json: each piece
of output as one JSON object per line, or with --detach the run itself.

Exit codes: the command's own; 128+N when a signal N ended it; 124 when it reached its time
limit; 1 when it could not start or its machine was lost.

Examples:
  $ berth run shop -- node scripts/migrate.js
  $ berth run shop --detach --timeout 600 -- node jobs/reindex.js
  $ berth run -it shop -- node`,
    )
    .action(async (name: string, command: string[], flags: { interactive?: boolean; tty?: boolean; detach?: boolean; timeout: number; json?: boolean }) => {
      const { output } = ctx;
      const client = connect(ctx.env);
      const interactive = flags.interactive === true || flags.tty === true;
      if (interactive && flags.detach) throw new Error('An interactive run cannot be detached: drop --detach, or -i and -t.');
      const run = await client.createRun(name, { command, interactive, detached: flags.detach === true, timeoutMs: flags.timeout * 1000 });
      if (flags.detach) {
        if (flags.json) return output.json(run);
        output.note(`Started run ${run.id} of ${name} v${run.release}: ${command.join(' ')}`);
        output.line(run.id);
        output.note(`Follow it with: berth runs:logs ${name} ${run.id} -f`);
        return;
      }
      if (interactive) {
        const end = await attachTerminal(ctx, client, name, run);
        throw exitFor(end);
      }
      output.note(`Running ${command.join(' ')} on ${name} v${run.release} (run ${run.id})…`);
      const end = await follow(ctx, name, run, flags.json === true);
      throw exitFor(end);
    });
}

/** Streams the run's output to stdout and stderr until it ends; Ctrl-C stops it. */
export async function follow(ctx: CliContext, name: string, run: Run, json: boolean): Promise<Extract<RunOutput, { exit: unknown }>['exit']> {
  const client = connect(ctx.env);
  const leave = new AbortController();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    // Stopped by the registry when the stream closes; said at once too, should the close be lost.
    void client.stopRun(name, run.id).catch(() => undefined);
    leave.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for await (const piece of client.followRun(name, run.id, { signal: leave.signal })) {
      if (json) ctx.output.jsonLine(piece);
      if ('exit' in piece) return piece.exit;
      if (!json) (piece.stream === 'err' ? ctx.terminal.stderr : ctx.terminal.stdout).write(piece.data);
    }
    throw new Error(`The registry closed the run's output before it ended: see berth runs ${name}, and berth runs:logs ${name} ${run.id}.`);
  } catch (err) {
    if (interrupted) throw new CommandExit(130, `interrupted: run ${run.id} is being stopped`);
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}


/** How `berth run` exits for a run's end. */
export function exitFor(end: Extract<RunOutput, { exit: unknown }>['exit']): CommandExit {
  if (end.state === 'exited') {
    if (end.exitCode !== null) return new CommandExit(end.exitCode);
    return new CommandExit(128 + ((constants.signals as Record<string, number>)[end.signal ?? ''] ?? 1), `the command was ended by ${end.signal}`);
  }
  if (end.state === 'stopped' && end.reason === 'timeout') return new CommandExit(124, 'the run reached its time limit and was stopped (give it longer with --timeout SECONDS)');
  if (end.state === 'stopped') return new CommandExit(130, `the run was stopped (${end.reason ?? 'asked to'})`);
  if (end.state === 'failed' && end.reason === 'not_started') {
    return new CommandExit(1, 'no machine took the run in time (BERTH_RUN_START_TIMEOUT_MS on the registry): every machine is busy or no hoster is running; see berth machines, then run it again');
  }
  if (end.state === 'failed') return new CommandExit(1, `the run could not start (${end.reason ?? 'unknown'}): its output above says why`);
  return new CommandExit(1, `the run's machine was lost (${end.reason ?? 'lease expired'}): it was not started again, since it may have had its effect; run it again if it is safe to`);
}
