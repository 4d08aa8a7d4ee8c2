import { Command } from 'commander';
import { resolveOptions } from '../common/config.js';
import { closeOnSignals, stopWhenOrphaned } from '../common/daemon-lifecycle.js';
import { createLogger } from '../common/logger.js';
import { PROXY_OPTIONS, startProxy } from '../proxy/proxy-daemon.js';

export function proxyCommand(): Command {
  return new Command('proxy')
    .description("Run this machine's proxy: routes URL path prefixes to running instances (here first, else another machine's proxy) and reports load (/_berth/load, /_berth/culprit).")
    .option('--host <address>', `address to listen on (env BERTH_PROXY_HOST, default ${PROXY_OPTIONS.host.default})`)
    .option('--port <port>', `port to listen on (env BERTH_PROXY_PORT, default ${PROXY_OPTIONS.port.default})`)
    .option('--machine <name>', 'this machine in the registry (env BERTH_MACHINE, default the host name)')
    .option('--log-level <level>', 'log level (env BERTH_LOG_LEVEL, default info)')
    .action(async (flags: Record<string, unknown>) => {
      const config = resolveOptions(PROXY_OPTIONS, flags, process.env);
      const logger = createLogger({ name: 'proxy', level: config.logLevel });
      const daemon = await startProxy(config, logger);
      closeOnSignals(daemon, { logger, graceMs: config.graceMs });
      if (process.env.BERTH_SUPERVISED === '1') stopWhenOrphaned({ logger });
    });
}
