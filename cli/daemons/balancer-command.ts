import { availableParallelism } from 'node:os';
import { Command } from 'commander';
import { resolveOptions } from '../../common/config.js';
import { createLogger } from '../../common/logger.js';
import { BALANCER_OPTIONS, MIN_DEFAULT_BALANCER_WORKERS, startBalancer, startBalancerPrimary } from '../../balancer/index.js';
import { runWorkerProcesses } from './worker-processes.js';

export function balancerCommand(): Command {
  return new Command('balancer')
    .description("Run the TLS balancer: the platform's HTTPS door, spreading traffic over the machines' proxies (static list and/or the registry's machines, route-aware).")
    .option('--host <address>', `address to listen on (env BERTH_BALANCER_HOST, default ${BALANCER_OPTIONS.host.default})`)
    .option('--https-port <port>', `HTTPS port (env BERTH_HTTPS_PORT, default ${BALANCER_OPTIONS.httpsPort.default})`)
    .option('--http-port <port>', 'plain-HTTP port redirecting to HTTPS (env BERTH_HTTP_PORT; default none)')
    .option('--tls-host <name=cert:key>', 'certificate and key for one host name (SNI), repeatable (env BERTH_TLS_HOSTS, comma-separated)', (value: string, previous: string[] = []) => [...previous, value])
    .option('--workers <n>', 'balancer processes sharing the ports (env BERTH_BALANCER_WORKERS, default 0: one per CPU, at least 2; 1: one process)')
    .option('--log-level <level>', 'log level (env BERTH_LOG_LEVEL, default info)')
    .action(async (flags: Record<string, unknown>) => {
      const config = resolveOptions(BALANCER_OPTIONS, flags, process.env);
      const logger = createLogger({ name: 'balancer', level: config.logLevel });
      const workers = config.workers === 0 ? Math.max(MIN_DEFAULT_BALANCER_WORKERS, availableParallelism()) : config.workers;
      await runWorkerProcesses({
        logger,
        workers,
        graceMs: config.graceMs,
        primary: () => startBalancerPrimary(config, workers, logger),
        serve: (log, worker) => startBalancer(config, log, worker),
      });
    });
}
