import { Command } from 'commander';
import type { CliContext } from '../cli-context.js';
import { addConfigChangeFlags, changeConfig, type ConfigChangeFlags } from '../config-change.js';

export function configUnsetCommand(ctx: CliContext): Command {
  const command = new Command('config:unset')
    .description('Remove environment variables of an app: one new release, rolled out without downtime.')
    .argument('<name>', 'the app')
    .argument('<KEY...>', 'variables to remove');
  return addConfigChangeFlags(command)
    .addHelpText('after', '\nExample:\n  $ berth config:unset shop DEBUG TRACE')
    .action(async (name: string, unset: string[], flags: ConfigChangeFlags) => changeConfig(ctx, name, { unset }, flags));
}
