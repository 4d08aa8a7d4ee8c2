import { Command } from 'commander';
import type { CliContext } from '../cli-context.js';
import { addDeployFlags, deploy, type DeployFlags } from '../deployment.js';

export function updateCommand(ctx: CliContext): Command {
  const command = new Command('update')
    .description('Change an app: only what is given changes. With a folder, its code is deployed as a new release; without, the code stays.')
    .argument('[dir]', 'the app\'s folder, for new code');
  return addDeployFlags(command)
    .addHelpText(
      'after',
      `
Code, variables, requirements, command and health check make a new release (rolled out
without downtime); --instances and --strip-prefix change settings only. Variables and
requirements are added to those set already: remove variables with berth config:unset.
Without --name, the name comes from the folder (or this folder) as for publish.

Examples:
  $ berth update ./shop                         # new code, same settings
  $ berth update --name shop --instances 4
  $ berth update --name shop --env DEBUG=1 --command "node server.js --verbose"`,
    )
    .action(async (dir: string | undefined, flags: DeployFlags) => deploy(ctx, 'update', dir, flags));
}
