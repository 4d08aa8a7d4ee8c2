import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';

export function configCommand(ctx: CliContext): Command {
  return new Command('config')
    .description("Show an app's environment variables (of its current release).")
    .argument('<name>', 'the app')
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      `
Change them with config:set and config:unset; each change is a new release, rolled out
without downtime.

Examples:
  $ berth config shop
  $ berth config:set shop CURRENCY=EUR DEBUG=1
  $ berth config:unset shop DEBUG`,
    )
    .action(async (name: string, flags: { json?: boolean }) => {
      const { output } = ctx;
      const env = await connect(ctx.env).getConfig(name);
      if (flags.json) return output.json(env);
      const keys = Object.keys(env).sort();
      if (keys.length === 0) return output.note(`${name} has no variables: set some with berth config:set ${name} KEY=VALUE.`);
      for (const key of keys) output.line(`${key}=${env[key]}`);
    });
}
