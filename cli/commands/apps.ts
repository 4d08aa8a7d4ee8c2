import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';

export function appsCommand(ctx: CliContext): Command {
  return new Command('apps')
    .description('List the apps: where they are served, how many instances run and which release.')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth apps --json | jq -r \'.[] | select(.status == "failed") | .name\'')
    .action(async (flags: { json?: boolean }) => {
      const { output } = ctx;
      const apps = await connect(ctx.env).listApps();
      if (flags.json) return output.json(apps);
      if (apps.length === 0) return output.note('No apps yet: publish one with berth publish.');
      output.table(
        ['NAME', 'PATH', 'STATUS', 'RUNNING/WANTED', 'RELEASE', 'URL'],
        apps.map((a) => [a.name, a.path, output.status(a.status), `${a.running}/${a.instances}`, `v${a.release}`, a.url ?? '-']),
      );
    });
}
