import { Command } from 'commander';
import type { CliContext } from '../cli-context.js';
import { addConfigChangeFlags, changeConfig, type ConfigChangeFlags } from '../config-change.js';
import { keyValue } from '../flag-values.js';

export function configSetCommand(ctx: CliContext): Command {
  const command = new Command('config:set')
    .description('Set environment variables of an app: one new release, rolled out without downtime.')
    .argument('<name>', 'the app')
    .argument('<KEY=VALUE...>', 'variables to set (a value may contain "=")', (text: string, previous: Record<string, string> | undefined) => {
      const [key, value] = keyValue(text);
      return { ...previous, [key]: value };
    });
  return addConfigChangeFlags(command)
    .addHelpText('after', '\nExample:\n  $ berth config:set shop CURRENCY=EUR "GREETING=hello there"')
    .action(async (name: string, set: Record<string, string>, flags: ConfigChangeFlags) => changeConfig(ctx, name, { set }, flags));
}
