import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { machineReports } from '../machine-reports.js';
import type { CulpritReport } from '../../proxy/index.js';

export function culpritCommand(ctx: CliContext): Command {
  return new Command('culprit')
    .description("Ask every machine's proxy which instance uses the most CPU there (GetCulprit, /_berth/culprit).")
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      "\nCPU is the instance's share of the machine's CPUs over the last WINDOW (its whole process tree).\nA machine whose proxy does not answer shows why instead.\n\nExample:\n  $ berth culprit",
    )
    .action(async (flags: { json?: boolean }) => {
      const { output } = ctx;
      const reports = await machineReports<CulpritReport>(await connect(ctx.env).listMachines(), '/_berth/culprit');
      if (flags.json) return output.json(reports);
      if (reports.length === 0) return output.note('No machine has reported in: start a hoster (berth hoster, or berth up).');
      output.table(
        ['MACHINE', 'APP', 'INSTANCE', 'PID', 'CPU', 'CORES', 'WINDOW'],
        reports.map(({ machine, report: r, error }) => {
          if (r === null) return [machine, output.paint.red(`error: ${error}`), '', '', '', '', ''];
          const c = r.culprit;
          const window = `${Math.round(r.windowMs / 1000)}s`;
          if (c === null) return [machine, output.paint.dim('(no instance)'), '', '', '', '', window];
          return [machine, c.app, c.instance, String(c.pid), `${(c.cpuShare * 100).toFixed(1)}%`, String(c.cpuCores), window];
        }),
      );
    });
}
