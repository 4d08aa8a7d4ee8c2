import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { ago } from '../output.js';

export function machinesCommand(ctx: CliContext): Command {
  return new Command('machines')
    .description('List the machines whose hosters report in: their proxy, CPUs, load and instances.')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nLOAD is the 5-minute load average per CPU (1.0 is a machine at capacity).\n\nExample:\n  $ berth machines')
    .action(async (flags: { json?: boolean }) => {
      const { output } = ctx;
      const machines = await connect(ctx.env).listMachines();
      if (flags.json) return output.json(machines);
      if (machines.length === 0) return output.note('No machine has reported in: start a hoster (berth hoster, or berth up).');
      output.table(
        ['NAME', 'PROXY', 'CPUS', 'LOAD', 'INSTANCES', 'LAST-HEARTBEAT'],
        machines.map((m) => {
          const f = m.facts;
          const instances = typeof f.instances === 'number' ? (typeof f.capacity === 'number' ? `${f.instances}/${f.capacity}` : String(f.instances)) : '-';
          return [m.name, typeof f.proxy === 'string' && f.proxy !== '' ? f.proxy : '-', show(f.cpus), show(f.load), instances, ago(m.heartbeatAt)];
        }),
      );
    });
}

function show(value: unknown): string {
  return typeof value === 'number' || typeof value === 'string' ? String(value) : '-';
}
