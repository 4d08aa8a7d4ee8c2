import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';

export function instancesCommand(ctx: CliContext): Command {
  return new Command('instances')
    .description("List an app's instances: state, where they run, claim epoch and release.")
    .argument('<name>', 'the app')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth instances shop')
    .action(async (name: string, flags: { json?: boolean }) => {
      const { output } = ctx;
      const instances = await connect(ctx.env).listAppInstances(name);
      if (flags.json) return output.json(instances);
      if (instances.length === 0) return output.note(`${name} has no instances.`);
      output.table(
        ['ID', 'STATE', 'MACHINE', 'PORT', 'EPOCH', 'RELEASE'],
        instances.map((i) => [
          i.id,
          output.status(i.state) + (i.reason !== null && i.state !== 'running' ? ` (${i.reason})` : ''),
          i.machine ?? '-',
          i.port === null ? '-' : String(i.port),
          String(i.epoch),
          i.release === null ? '-' : `v${i.release}`,
        ]),
      );
    });
}
