import { Command, InvalidArgumentError } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { ago } from '../output.js';

export function auditCommand(ctx: CliContext): Command {
  return new Command('audit')
    .description('Show the latest calls that could change something: which token, when, what, which app, and the answer.')
    .option('-n, --lines <count>', 'how many, newest first (1-1000)', (v) => {
      if (!/^[0-9]{1,4}$/.test(v) || Number(v) < 1 || Number(v) > 1000) throw new InvalidArgumentError('give a number from 1 to 1000.');
      return Number(v);
    }, 50)
    .option(...JSON_FLAG)
    .addHelpText('after', '\nThe registry keeps the latest 10,000.\n\nExample:\n  $ berth audit -n 20')
    .action(async (flags: { lines: number; json?: boolean }) => {
      const { output } = ctx;
      const entries = await connect(ctx.env).audit(flags.lines);
      if (flags.json) return output.json(entries);
      if (entries.length === 0) return output.note('Nothing has been changed through the API yet.');
      output.table(
        ['WHEN', 'TOKEN', 'CALL', 'APP', 'STATUS'],
        entries.map((e) => [ago(e.at), e.token, `${e.method} ${e.path}`, e.app ?? '', e.status < 400 ? String(e.status) : output.paint.red(String(e.status))]),
      );
    });
}
