import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { Command } from 'commander';
import { resolveOptions } from '../../common/config.js';
import { closeOnSignals, stopWhenOrphaned } from '../../common/daemon-lifecycle.js';
import { createLogger } from '../../common/logger.js';
import { PROXY_OPTIONS, startProxy } from '../../proxy/proxy-daemon.js';
import { startWorkerPrimary, WORKER_SLOT_ENV } from '../../common/daemon-workers.js';

export function proxyCommand(): Command {
  return new Command('proxy')
    .description("Run this machine's proxy: routes URL path prefixes to running instances (here first, else another machine's proxy) and reports load (/_berth/load, /_berth/culprit).")
    .option('--host <address>', `address to listen on (env BERTH_PROXY_HOST, default ${PROXY_OPTIONS.host.default})`)
    .option('--port <port>', `port to listen on (env BERTH_PROXY_PORT, default ${PROXY_OPTIONS.port.default})`)
    .option('--machine <name>', 'this machine in the registry (env BERTH_MACHINE, default the host name)')
    .option('--engine <engine>', 'node (default) or haproxy: a local haproxy berth starts, supervises and changes at run time (env BERTH_PROXY_ENGINE)')
    .option('--workers <n>', 'proxy processes sharing the port (env BERTH_PROXY_WORKERS, default 0: one per CPU)')
    .option('--log-level <level>', 'log level (env BERTH_LOG_LEVEL, default info)')
    .action(async (flags: Record<string, unknown>) => {
      const config = resolveOptions(PROXY_OPTIONS, flags, process.env);
      const logger = createLogger({ name: 'proxy', level: config.logLevel });
      const workers = config.workers === 0 ? availableParallelism() : config.workers;
      // HAProxy runs a thread per CPU itself: the haproxy engine is one berth process.
      if (workers > 1 && cluster.isPrimary && config.engine === 'node') {
        const primary = startWorkerPrimary({ name: 'proxy', count: workers, logger, graceMs: config.graceMs });
        closeOnSignals(primary, { logger, graceMs: config.graceMs + 2000 });
        if (process.env.BERTH_SUPERVISED === '1') stopWhenOrphaned({ logger });
        return;
      }
      if (cluster.isWorker) {
        // The primary stops its workers (a terminal's Ctrl-C reaches the whole group: the
        // primary's drain request is the one that counts, so one signal never looks like two).
        const worker = Number(process.env[WORKER_SLOT_ENV] ?? cluster.worker?.id ?? 0);
        for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => undefined);
        await startProxy(config, logger.child({ worker }), { worker });
        return;
      }
      const daemon = await startProxy(config, logger);
      closeOnSignals(daemon, { logger, graceMs: config.graceMs });
      if (process.env.BERTH_SUPERVISED === '1') stopWhenOrphaned({ logger });
    });
}
