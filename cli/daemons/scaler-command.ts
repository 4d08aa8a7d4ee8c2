import { Command } from 'commander';
import { resolveOptions } from '../../common/config.js';
import { closeOnSignals, stopWhenOrphaned } from '../../common/daemon-lifecycle.js';
import { createLogger } from '../../common/logger.js';
import { SCALER_OPTIONS, startScaler } from '../../scaler/index.js';
import { connect } from '../api-client.js';
import { JSON_FLAG, type CliContext } from '../cli-context.js';
import { decisionCount } from '../flag-values.js';
import { ago } from '../output.js';

export function scalerCommand(ctx: CliContext): Command {
  const command = new Command('scaler')
    .description("Run the scaler: grows apps whose instances run hot and shrinks idle ones, within each app's policy (berth scale NAME --min --max). Any number may run; one acts.")
    .option('--interval-ms <ms>', `how often it decides (env BERTH_SCALER_INTERVAL_MS, default ${SCALER_OPTIONS.intervalMs.default})`)
    .option('--hot-load <n>', `load per CPU at which a machine runs hot (env BERTH_SCALER_HOT_LOAD, default ${SCALER_OPTIONS.hotLoad.default})`)
    .option('--log-level <level>', 'log level (env BERTH_LOG_LEVEL, default info)')
    .action(async (flags: Record<string, unknown>) => {
      const config = resolveOptions(SCALER_OPTIONS, flags, process.env);
      const logger = createLogger({ name: 'scaler', level: config.logLevel });
      const daemon = await startScaler(config, logger);
      closeOnSignals(daemon, { logger, graceMs: config.graceMs });
      if (process.env.BERTH_SUPERVISED === '1') stopWhenOrphaned({ logger });
    });
  command.addCommand(
    new Command('log')
      .description("Show the scaler's recent decisions and why it made them, newest first.")
      .argument('[app]', 'only this app')
      .option('-n, --limit <n>', 'how many decisions (1-1000)', decisionCount, 20)
      .option(...JSON_FLAG)
      .addHelpText('after', '\nExamples:\n  $ berth scaler log\n  $ berth scaler log shop -n 50')
      .action(async (app: string | undefined, flags: { limit: number; json?: boolean }) => {
        const { output } = ctx;
        const decisions = await connect(ctx.env).scalerLog({ app, limit: flags.limit });
        if (flags.json) return output.json(decisions);
        if (decisions.length === 0) return output.line(app === undefined ? 'No scaler decisions yet.' : `No scaler decisions for ${app} yet.`);
        for (const d of decisions) {
          const change = d.move !== undefined ? `moves ${d.move.instance.slice(0, 8)} off ${d.move.from}` : d.to === d.from ? `stays at ${d.to}` : `${d.from} -> ${d.to}`;
          const i = d.inputs;
          const numbers = `cpu/instance ${i.cpuPerInstance ?? '?'}${i.inFlightPerInstance === null ? '' : `, in flight/instance ${i.inFlightPerInstance}`}, loads ${Object.entries(i.machineLoads).map(([m, l]) => `${m}=${l ?? '?'}`).join(' ')}`;
          // Web's decisions name the app alone, as before types could be scaled.
          const what = d.process === undefined || d.process === 'web' ? d.app : `${d.app} ${d.process}`;
          output.line(`${ago(d.at).padEnd(10)} ${what}  ${change}  ${output.status(d.cause)}: ${d.reason}  (${numbers})`);
        }
      }),
  );
  return command;
}
