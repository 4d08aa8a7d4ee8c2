import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { seconds } from '../flag-values.js';
import { DEFAULT_WAIT_SECONDS, waitForRelease } from '../rollout-watch.js';

export function restartCommand(ctx: CliContext): Command {
  return new Command('restart')
    .description('Restart every instance of an app without downtime: new ones start and pass their health check before the old ones drain.')
    .argument('<name>', 'the app')
    .option('--no-wait', 'return once the restart is asked for, without waiting for it')
    .option('--timeout <seconds>', 'how long to wait', seconds, DEFAULT_WAIT_SECONDS)
    .option(...JSON_FLAG)
    .addHelpText('after', '\nThe restart is a new release with the same code and configuration (berth releases lists it).\n\nExample:\n  $ berth restart shop')
    .action(async (name: string, flags: { wait: boolean; timeout: number; json?: boolean }) => {
      const { output } = ctx;
      const client = connect(ctx.env);
      let release = await client.restart(name);
      output.note(`${name} v${release.version}: ${release.description}`);
      if (flags.wait) {
        await waitForRelease(client, output, name, release.version, { timeoutMs: flags.timeout * 1000 });
        release = (await client.listReleases(name)).find((r) => r.version === release.version) ?? release;
      }
      if (flags.json) return output.json(release);
      output.line(`${name} restarted: v${release.version} ${output.status(release.status)}`);
    });
}
