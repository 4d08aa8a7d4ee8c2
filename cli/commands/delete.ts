import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { seconds } from '../flag-values.js';
import { DEFAULT_WAIT_SECONDS, waitForDeletion } from '../rollout-watch.js';

export function deleteCommand(ctx: CliContext): Command {
  return new Command('delete')
    .description('Delete an app: stops its instances, then removes it, its releases and its logs, and frees its path.')
    .argument('<name>', 'the app')
    .option('-y, --yes', 'do not ask for confirmation (needed when not on a terminal)')
    .option('--no-wait', 'return once the deletion is recorded, without waiting for it to finish')
    .option('--timeout <seconds>', 'how long to wait', seconds, DEFAULT_WAIT_SECONDS)
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth delete shop --yes')
    .action(async (name: string, flags: { yes?: boolean; wait: boolean; timeout: number; json?: boolean }) => {
      const { output } = ctx;
      const client = connect(ctx.env);
      if (!flags.yes) {
        // An unknown app is reported before anyone is asked to confirm.
        await client.getApp(name);
        await confirm(ctx, name);
      }
      const app = await client.deleteApp(name);
      if (flags.wait) await waitForDeletion(client, output, name, { timeoutMs: flags.timeout * 1000 });
      if (flags.json) return output.json(app);
      output.line(flags.wait ? `${name} deleted` : `${name} is being deleted: its instances stop, then it is removed`);
    });
}

/** Asks for the app's name on a terminal; refuses without one (a script must say --yes). */
async function confirm(ctx: CliContext, name: string): Promise<void> {
  const refusal = `Deleting ${name} stops its instances and removes its releases and logs: run berth delete ${name} --yes to confirm.`;
  if (ctx.stdin.isTTY !== true) throw new Error(refusal);
  const answer = await ctx.output.ask(ctx.stdin, `Delete ${name}, its releases and logs? Type its name to confirm: `);
  if (answer.trim() !== name) throw new Error(`Not deleted: the name typed was not ${name}.`);
}
