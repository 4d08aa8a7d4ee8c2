import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { machineReports } from '../machine-reports.js';
import type { LoadReport } from '../../proxy/index.js';

export function loadCommand(ctx: CliContext): Command {
  return new Command('load')
    .description("Ask every machine's proxy for its load (GetLoad, /_berth/load).")
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      '\nLOAD is the 5-minute load average per CPU (1.0 is at capacity). A machine whose proxy does not\nanswer shows why in place of its numbers.\n\nExample:\n  $ berth load',
    )
    .action(async (flags: { json?: boolean }) => {
      const { output } = ctx;
      const reports = await machineReports<LoadReport>(await connect(ctx.env).listMachines(), '/_berth/load');
      if (flags.json) return output.json(reports);
      if (reports.length === 0) return output.note('No machine has reported in: start a hoster (berth hoster, or berth up).');
      output.table(
        ['MACHINE', 'LOAD', 'LOAD1', 'LOAD5', 'LOAD15', 'CPUS', 'AT-CAPACITY'],
        reports.map(({ machine, report: r, error }) =>
          r === null
            ? [machine, output.paint.red(`error: ${error}`), '', '', '', '', '']
            : [machine, String(r.load), String(r.load1), String(r.load5), String(r.load15), String(r.cpus), r.atCapacity ? output.paint.red('yes') : 'no'],
        ),
      );
    });
}
