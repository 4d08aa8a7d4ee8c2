import { Command } from 'commander';
import type { CliContext } from '../cli-context.js';
import { addDeployFlags, deploy, type DeployFlags } from '../deployment.js';

export function publishCommand(ctx: CliContext): Command {
  const command = new Command('publish')
    .description('Publish a folder as an app, or deploy it as a new release when the app exists; waits until it runs.')
    .argument('[dir]', 'the app\'s folder', '.');
  return addDeployFlags(command)
    .addHelpText(
      'after',
      `
The folder is packed as a .tar.gz without what .gitignore and .berthignore list (in any folder
of it: name, dir/, *.ext, **, !negation, # comments) and never with .git/, node_modules/ or
.berth/ (the hoster installs the dependencies itself). Symbolic links are refused. An
unchanged folder is not uploaded again.

Examples:
  $ berth publish                                  # this folder, named after package.json
  $ berth publish ./shop --path /shop --instances 3 --env CURRENCY=EUR
  $ berth publish --health-path /healthz --attr minMemoryMb=256
  $ berth publish --json | jq -r .url`,
    )
    .action(async (dir: string, flags: DeployFlags) => deploy(ctx, 'publish', dir, flags));
}
