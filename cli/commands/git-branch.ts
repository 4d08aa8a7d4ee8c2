import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';

export function gitBranchCommand(ctx: CliContext): Command {
  return new Command('git:branch')
    .description("Show or set the branch whose pushes deploy the app (main and master until one is set).")
    .argument('<name>', 'the app')
    .argument('[branch]', 'the branch to deploy from')
    .option('--unset', 'deploy from main and master again')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExamples:\n  $ berth git:branch shop              # which branch deploys\n  $ berth git:branch shop production\n  $ berth git:branch shop --unset')
    .action(async (name: string, branch: string | undefined, flags: { unset?: boolean; json?: boolean }) => {
      const { output } = ctx;
      const client = connect(ctx.env);
      if (branch !== undefined && flags.unset) throw new Error('Give a branch or --unset, not both.');
      const remote = branch !== undefined || flags.unset ? await client.setGitBranch(name, branch ?? null) : await client.getGitRemote(name);
      if (flags.json) return output.json(remote);
      output.line(`${name} deploys pushes of ${remote.deployBranches.join(' and ')}`);
    });
}
