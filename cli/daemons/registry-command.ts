import { Command } from 'commander';
import { closeOnSignals, stopWhenOrphaned } from '../../common/daemon-lifecycle.js';
import { createLogger } from '../../common/logger.js';
import { resolveOptions } from '../../common/config.js';
import { REGISTRY_OPTIONS, startRegistry } from '../../registry/index.js';

export function registryCommand(): Command {
  return new Command('registry')
    .description('Run the registry daemon: the REST API (/v1) and the lease reaper. Configure with BERTH_* variables (see docs/configuration.md).')
    .option('--host <address>', `address to listen on (env BERTH_REGISTRY_HOST, default ${REGISTRY_OPTIONS.host.default})`)
    .option('--port <port>', `port to listen on (env BERTH_REGISTRY_PORT, default ${REGISTRY_OPTIONS.port.default})`)
    .option('--key-prefix <name>', 'Redis key prefix name (env BERTH_KEY_PREFIX, default berth)')
    .option('--log-level <level>', 'log level (env BERTH_LOG_LEVEL, default info)')
    .action(async (flags: Record<string, unknown>) => {
      const config = resolveOptions(REGISTRY_OPTIONS, flags, process.env);
      const logger = createLogger({ name: 'registry', level: config.logLevel });
      const daemon = await startRegistry(config, logger);
      closeOnSignals(daemon, { logger, graceMs: config.graceMs });
      if (process.env.BERTH_SUPERVISED === '1') stopWhenOrphaned({ logger });
    });
}
