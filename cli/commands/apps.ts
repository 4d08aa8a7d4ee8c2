import { Command } from 'commander';
import type { AppDetails } from '../../sdk/types.js';
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
        apps.map((a) => [a.name, a.path, output.status(a.status), `${a.running}/${a.instances}`, releaseCell(a), a.url ?? '-']),
      );
    });
}

/** `v3`, or during a deploy what serves and what is coming: `v3 2/2 serving, v4 deploying 0/2`. */
export function releaseCell(a: Pick<AppDetails, 'release' | 'instances' | 'running' | 'runningByRelease' | 'current'>): string {
  const serving = Object.entries(a.runningByRelease ?? {})
    .filter(([version, count]) => Number(version) !== a.release && count > 0)
    .sort(([x], [y]) => Number(y) - Number(x));
  if (serving.length === 0) return `v${a.release}`;
  const coming = a.current?.status === 'failed' ? 'failed' : 'deploying';
  return `${serving.map(([version, count]) => `v${version} ${count}/${a.instances} serving`).join(', ')}, v${a.release} ${coming} ${a.running}/${a.instances}`;
}
