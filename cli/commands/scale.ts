import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { instanceCount, seconds } from '../flag-values.js';
import { DEFAULT_WAIT_SECONDS, waitForInstances } from '../rollout-watch.js';

export function scaleCommand(ctx: CliContext): Command {
  return new Command('scale')
    .description('Set how many instances of an app run; waits until they do.')
    .argument('<name>', 'the app')
    .argument('<instances>', 'how many (0 stops it without deleting it)', instanceCount)
    .option('--no-wait', 'return at once, without waiting for the instances')
    .option('--timeout <seconds>', 'how long to wait', seconds, DEFAULT_WAIT_SECONDS)
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExamples:\n  $ berth scale shop 3\n  $ berth scale shop 0     # stop it, keep its releases')
    .action(async (name: string, instances: number, flags: { wait: boolean; timeout: number; json?: boolean }) => {
      const { output } = ctx;
      const client = connect(ctx.env);
      let app = await client.scaleApp(name, { instances });
      if (flags.wait) app = await waitForInstances(client, output, name, { timeoutMs: flags.timeout * 1000 });
      if (flags.json) return output.json(app);
      output.line(`${name}: ${app.running}/${app.instances} running`);
    });
}
