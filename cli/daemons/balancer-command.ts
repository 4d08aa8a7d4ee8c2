import { Command } from 'commander';
import { resolveOptions } from '../../common/config.js';
import { closeOnSignals, stopWhenOrphaned } from '../../common/daemon-lifecycle.js';
import { createLogger } from '../../common/logger.js';
import { BALANCER_OPTIONS, startBalancer } from '../../balancer/balancer-daemon.js';

export function balancerCommand(): Command {
  return new Command('balancer')
    .description("Run the TLS balancer: the platform's HTTPS door, spreading traffic over the machines' proxies (static list and/or the registry's machines, route-aware).")
    .option('--host <address>', `address to listen on (env BERTH_BALANCER_HOST, default ${BALANCER_OPTIONS.host.default})`)
    .option('--https-port <port>', `HTTPS port (env BERTH_HTTPS_PORT, default ${BALANCER_OPTIONS.httpsPort.default})`)
    .option('--http-port <port>', 'plain-HTTP port redirecting to HTTPS (env BERTH_HTTP_PORT; default none)')
    .option('--tls-host <name=cert:key>', 'certificate and key for one host name (SNI), repeatable (env BERTH_TLS_HOSTS, comma-separated)', (value: string, previous: string[] = []) => [...previous, value])
    .option('--log-level <level>', 'log level (env BERTH_LOG_LEVEL, default info)')
    .action(async (flags: Record<string, unknown>) => {
      const config = resolveOptions(BALANCER_OPTIONS, flags, process.env);
      const logger = createLogger({ name: 'balancer', level: config.logLevel });
      const daemon = await startBalancer(config, logger);
      closeOnSignals(daemon, { logger, graceMs: config.graceMs });
      if (process.env.BERTH_SUPERVISED === '1') stopWhenOrphaned({ logger });
    });
}
