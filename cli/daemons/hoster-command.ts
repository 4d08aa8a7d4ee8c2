import { Command } from 'commander';
import { resolveOptions } from '../../common/config.js';
import { closeOnSignals, stopWhenOrphaned } from '../../common/daemon-lifecycle.js';
import { createLogger } from '../../common/logger.js';
import { HOSTER_OPTIONS, startHoster } from '../../hoster/index.js';

export function hosterCommand(): Command {
  return new Command('hoster')
    .description(
      "Run this machine's hoster: claims instances while the load is low, runs and supervises them. SIGTERM hands the instances over to other machines first; SIGUSR2 exits and leaves them running for the next hoster to re-adopt.",
    )
    .option('--machine <name>', 'this machine in the registry (env BERTH_MACHINE, default the host name)')
    .option('--data-dir <dir>', 'bundles, builds and instances (env BERTH_DATA_DIR, default ./.berth)')
    .option('--log-level <level>', 'log level (env BERTH_LOG_LEVEL, default info)')
    .action(async (flags: Record<string, unknown>) => {
      const config = resolveOptions(HOSTER_OPTIONS, flags, process.env);
      const logger = createLogger({ name: 'hoster', level: config.logLevel });
      const daemon = await startHoster(config, logger);
      closeOnSignals(daemon, { logger, graceMs: config.evacuateTimeoutMs + config.stopGraceMs + 10_000 });
      if (process.env.BERTH_SUPERVISED === '1') stopWhenOrphaned({ logger });
      process.once('SIGUSR2', () => {
        logger.info('SIGUSR2: exiting and leaving the apps running for the next hoster');
        void daemon.close({ evacuate: false }).then(() => process.exit(0));
      });
    });
}
