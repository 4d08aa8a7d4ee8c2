import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { Command } from 'commander';
import { resolveOptions } from '../../common/config.js';
import { closeOnSignals, stopWhenOrphaned } from '../../common/daemon-lifecycle.js';
import { WORKER_SLOT_ENV } from '../../common/daemon-workers.js';
import { createLogger } from '../../common/logger.js';
import { BALANCER_OPTIONS, MIN_DEFAULT_BALANCER_WORKERS, startBalancer } from '../../balancer/balancer-daemon.js';
import { startBalancerPrimary } from '../../balancer/balancer-primary.js';

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
      if (workers > 1 && cluster.isPrimary) {
        const primary = await startBalancerPrimary(config, workers, logger);
        closeOnSignals(primary, { logger, graceMs: config.graceMs + 2000 });
        if (process.env.BERTH_SUPERVISED === '1') stopWhenOrphaned({ logger });
        return;
      }
      if (cluster.isWorker) {
        // The primary stops its workers: its drain request is the one that counts (a terminal's
        // Ctrl-C reaches the whole group, and one signal must never look like two).
        const worker = Number(process.env[WORKER_SLOT_ENV] ?? cluster.worker?.id ?? 0);
        for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => undefined);
        await startBalancer(config, logger.child({ worker }), { worker });
        return;
      }
      const daemon = await startBalancer(config, logger);
      closeOnSignals(daemon, { logger, graceMs: config.graceMs });
      if (process.env.BERTH_SUPERVISED === '1') stopWhenOrphaned({ logger });
    });
}
