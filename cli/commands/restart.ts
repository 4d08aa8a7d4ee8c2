import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { seconds } from '../flag-values.js';
import { DEFAULT_WAIT_SECONDS, waitForRelease, waitForReplacement } from '../rollout-watch.js';

export function restartCommand(ctx: CliContext): Command {
  return new Command('restart')
    .description('Restart every instance of an app without downtime: new ones start and pass their health check before the old ones drain.')
    .argument('<name>', 'the app')
    .option('--instance <id>', 'restart only this instance: a replacement starts and passes its health check, then this one drains (no new release)')
    .option('--no-wait', 'return once the restart is asked for, without waiting for it')
    .option('--timeout <seconds>', 'how long to wait', seconds, DEFAULT_WAIT_SECONDS)
    .option(...JSON_FLAG)
    .addHelpText('after', '\nThe restart is a new release with the same code and configuration (berth releases lists it).\nWith --instance, only that instance is replaced, and no release is made.\n\nExamples:\n  $ berth restart shop\n  $ berth restart shop --instance 3f2a9c1e5b7d8a06')
    .action(async (name: string, flags: { instance?: string; wait: boolean; timeout: number; json?: boolean }) => {
      const { output } = ctx;
      const client = connect(ctx.env);
      if (flags.instance !== undefined) {
        const instance = await client.restartInstance(name, flags.instance);
        output.note(`${name}: replacing instance ${instance.id} on ${instance.machine ?? '?'}`);
        if (flags.wait) await waitForReplacement(client, output, name, instance.id, { timeoutMs: flags.timeout * 1000 });
        if (flags.json) return output.json(await client.getInstance(name, instance.id).catch(() => instance));
        output.line(flags.wait ? `${name}: instance ${instance.id} replaced` : `${name}: instance ${instance.id} is being replaced`);
        return;
      }
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
