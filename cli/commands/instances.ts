import { Command } from 'commander';
import { connect } from '../api-client.js';
import type { Instance } from '../../sdk/types.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { firstLine } from '../output.js';

export function instancesCommand(ctx: CliContext): Command {
  return new Command('instances')
    .description("List an app's instances: process type, state, where they run, claim epoch, restarts under that claim and release.")
    .argument('<name>', 'the app')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth instances shop')
    .action(async (name: string, flags: { json?: boolean }) => {
      const { output } = ctx;
      const instances = await connect(ctx.env).listAppInstances(name);
      if (flags.json) return output.json(instances);
      if (instances.length === 0) return output.note(`${name} has no instances.`);
      output.table(
        ['ID', 'TYPE', 'STATE', 'MACHINE', 'PORT', 'EPOCH', 'RESTARTS', 'RELEASE'],
        instances.map((i) => [
          i.id,
          i.process ?? 'web',
          stateCell(i, output.status(i.state)),
          i.machine ?? '-',
          i.port === null ? '-' : String(i.port),
          String(i.epoch),
          // A registry older than the count sends none.
          String(i.restarts ?? 0),
          i.release === null ? '-' : `v${i.release}`,
        ]),
      );
    });
}

/** The state, and why when it is not running: `unhealthy (last: 500 from GET /healthz, 3 checks in a row)`. */
export function stateCell(i: Pick<Instance, 'state' | 'reason' | 'reasonDetail'>, painted: string): string {
  if (i.state === 'claimed' && i.reason === 'unhealthy') return `unhealthy${i.reasonDetail ? ` (last: ${firstLine(i.reasonDetail)})` : ''}`;
  return painted + (i.reason !== null && i.state !== 'running' ? ` (${i.reason})` : '');
}
