import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { lineCount } from '../flag-values.js';
import type { Output } from '../output.js';
import { printRunOutput } from './runs.js';
import type { LogLine } from '../../sdk/types.js';

export function logsCommand(ctx: CliContext): Command {
  return new Command('logs')
    .description("Print an app's output (stdout and stderr of every instance), oldest first.")
    .argument('<name>', 'the app')
    .option('-n, --lines <n>', 'how many of the last lines', lineCount, 100)
    .option('-f, --follow', 'keep printing new lines as they come, until Ctrl-C')
    .option('--run <id>', "one run's output instead (berth runs NAME lists them; the same as berth runs:logs NAME ID)")
    .option('--build', "only the builds' output (npm's lines, berth's \"----->\" ones, and the release command's)")
    .option('--type <type>', 'only the lines of one process type: web, worker (a Procfile type), or release')
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      `
Each line starts with the instance (its id's first 8 characters) and the stream (out, err,
or build for the output of the build that prepared it). With --json: the lines as one JSON array, or with --follow one JSON object per line.

Examples:
  $ berth logs shop -n 20
  $ berth logs shop --type worker
  $ berth logs shop -f | grep -i error`,
    )
    .action(async (name: string, flags: { lines: number; follow?: boolean; build?: boolean; type?: string; run?: string; json?: boolean }) => {
      const { output } = ctx;
      if (flags.run !== undefined) return printRunOutput(ctx, name, flags.run, flags);
      const client = connect(ctx.env);
      const wanted = (line: LogLine) => (!flags.build || line.stream === 'build') && (flags.type === undefined || (line.process ?? 'web') === flags.type);
      if (!flags.follow) {
        const lines = (await client.logs(name, flags.lines)).filter(wanted);
        if (flags.json) return output.json(lines);
        for (const line of lines) printLine(output, line);
        return;
      }
      // Ctrl-C ends the follow as a normal finish (exit 0), not as an interrupted process.
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        for await (const line of client.followLogs(name, { lines: flags.lines, signal: stop.signal })) {
          if (!wanted(line)) continue;
          if (flags.json) output.jsonLine(line);
          else printLine(output, line);
        }
        if (!stop.signal.aborted) throw new Error('The registry closed the log stream (it may be restarting): run the command again.');
      } catch (err) {
        if (!stop.signal.aborted) throw err;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

function printLine(output: Output, line: LogLine): void {
  const stream = line.stream === 'err' ? output.paint.red('err') : line.stream === 'build' ? output.paint.yellow('build') : output.paint.dim('out');
  const type = line.process === undefined ? '' : ` ${output.paint.dim(line.process)}`;
  output.line(`${output.paint.cyan(line.instance.slice(0, 8))}${type} ${stream} | ${line.line}`);
}
