import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { ago, firstLine } from '../output.js';

export function releasesCommand(ctx: CliContext): Command {
  return new Command('releases')
    .description("List an app's releases, newest first: each code or configuration change made one.")
    .argument('<name>', 'the app')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth releases shop')
    .action(async (name: string, flags: { json?: boolean }) => {
      const { output } = ctx;
      const releases = await connect(ctx.env).listReleases(name);
      // Values may be secrets (an add-on's password among them): berth config NAME shows them.
      if (flags.json) return output.json(releases.map((r) => ({ ...r, env: Object.fromEntries(Object.keys(r.env).map((k) => [k, '***'])) })));
      output.table(
        ['VERSION', 'STATUS', 'COMMIT', 'DESCRIPTION', 'BY', 'WHEN'],
        releases.map((r) => [
          `v${r.version}`,
          output.status(r.status),
          // The commit a git push deployed (kept by config changes, rollbacks and restarts of its code).
          r.commit?.slice(0, 7) ?? '-',
          r.description + (r.reason ? ` (${firstLine(r.reason)})` : ''),
          r.createdBy,
          ago(r.createdAt),
        ]),
      );
    });
}
