import { Command } from 'commander';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { ago, firstLine } from '../output.js';
import { describePolicy } from './scale.js';

export function infoCommand(ctx: CliContext): Command {
  return new Command('info')
    .description('Show an app: its settings, current release and instances by state.')
    .argument('<name>', 'the app')
    .option(...JSON_FLAG)
    .addHelpText('after', '\nExample:\n  $ berth info shop')
    .action(async (name: string, flags: { json?: boolean }) => {
      const { output } = ctx;
      const app = await connect(ctx.env).getApp(name);
      if (flags.json) return output.json(app);
      const release = app.current;
      const health = release?.healthCheck.path === undefined ? 'TCP connect' : `GET ${release.healthCheck.path} answers ${release.healthCheck.status}`;
      const states = Object.entries(app.instancesByState)
        .map(([state, n]) => `${n} ${output.status(state)}`)
        .join(', ');
      const rows: Array<[string, string]> = [
        ['status', output.status(app.status)],
        ['path', app.path + (app.stripPrefix ? ' (prefix stripped)' : '')],
        ['url', app.url ?? '-'],
        ['instances', `${app.running}/${app.instances} running`],
        ['autoscale', app.autoscale ? describePolicy(app.autoscale) : 'off'],
        ...Object.entries(app.autoscaleByType ?? {}).map(([type, p]): [string, string] => [`autoscale ${type}`, describePolicy(p)]),
        ['by state', states === '' ? 'none' : states],
        [
          'release',
          release === null
            ? '-'
            : `v${release.version} ${output.status(release.status)}: ${release.description}, by ${release.createdBy}, ${ago(release.createdAt)}${release.reason ? ` (${firstLine(release.reason)})` : ''}`,
        ],
        ['bundle', release?.bundle.slice(0, 12) ?? '-'],
        ['command', release?.command ?? '(default)'],
        // Each type with its count (berth scale NAME TYPE=N): a type left out runs 1.
        ['processes', release === null || Object.keys(release.processes ?? {}).length === 0 ? 'web only' : Object.entries(release.processes ?? {}).map(([t, c]) => `${t}×${app.formation?.[t] ?? 1}: ${c}`).join('; ')],
        ['release command', release?.releaseCommand ? `${release.releaseCommand}${release.releaseTask ? ` (${release.releaseTask.status}, ${firstLine(release.releaseTask.detail)})` : ''}` : 'none'],
        ['health check', health],
        ['limits', limitsOf(release?.requirements ?? {})],
        ['requirements', release === null || Object.keys(release.requirements).length === 0 ? 'none' : Object.entries(release.requirements).map(([k, v]) => `${k}=${v}`).join(', ')],
        // Names only: values may be secrets (berth config shows them).
        ['variables', release === null || Object.keys(release.env).length === 0 ? 'none' : Object.keys(release.env).sort().join(', ')],
        // An add-on whose machine is silent says so plainly: the app cannot reach its data meanwhile.
        ['add-ons', (app.addons ?? []).length === 0 ? 'none' : (app.addons ?? []).map((a) => `${a.name} (${a.kind}, ${a.variable}): ${output.status(a.state)}`).join('; ')],
      ];
      output.line(output.paint.bold(app.name));
      const width = Math.max(...rows.map(([k]) => k.length));
      for (const [key, value] of rows) output.line(`  ${key.padEnd(width)}  ${value}`);
    });
}

/** The memory and CPU limits an app's instances run under (its maxMemoryMb and cpuWeight attributes), as a person reads them. */
function limitsOf(requirements: Record<string, string | number | boolean>): string {
  const memory = requirements.maxMemoryMb;
  const weight = requirements.cpuWeight;
  return `memory ${memory === undefined ? 'unlimited' : `${memory} MB (over it: out_of_memory)`}, CPU weight ${weight ?? '100 (default)'}`;
}
