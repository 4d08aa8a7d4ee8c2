import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { releaseVersion, seconds } from '../flag-values.js';
import { DEFAULT_WAIT_SECONDS, waitForRelease } from '../rollout-watch.js';

export function rollbackCommand(ctx: CliContext): Command {
  return new Command('rollback')
    .description("Deploy an earlier release's code and configuration again, as a new release; waits until it runs.")
    .argument('<name>', 'the app')
    .argument('[version]', 'the release to go back to, e.g. 3 or v3 (default: the last working one before the current)', releaseVersion)
    .option('--no-wait', 'return once the release is made, without waiting for it to run')
    .option('--timeout <seconds>', 'how long to wait', seconds, DEFAULT_WAIT_SECONDS)
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExamples:\n  $ berth rollback shop        # to the release before\n  $ berth rollback shop v3')
    .action(async (name: string, version: number | undefined, flags: { wait: boolean; timeout: number; json?: boolean }) => {
      const { output } = ctx;
      const client = connect(ctx.env);
      let release = await client.rollback(name, version);
      output.note(`${name} v${release.version}: ${release.description}`);
      if (flags.wait) {
        await waitForRelease(client, output, name, release.version, { timeoutMs: flags.timeout * 1000 });
        release = (await client.listReleases(name)).find((r) => r.version === release.version) ?? release;
      }
      if (flags.json) return output.json(release);
      output.line(`${name} v${release.version} ${output.status(release.status)} (${release.description})`);
    });
}
