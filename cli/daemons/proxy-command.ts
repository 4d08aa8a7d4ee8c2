import { availableParallelism } from 'node:os';
import { Command } from 'commander';
import { resolveOptions } from '../../common/config.js';
import { createLogger } from '../../common/logger.js';
import { PROXY_OPTIONS, startProxy } from '../../proxy/index.js';
import { startWorkerPrimary } from '../../common/daemon-workers.js';
import { runWorkerProcesses } from './worker-processes.js';

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
      await runWorkerProcesses({
        logger,
        // HAProxy runs a thread per CPU itself: the haproxy engine is one berth process.
        workers: config.engine === 'node' ? workers : 1,
        graceMs: config.graceMs,
        primary: () => startWorkerPrimary({ name: 'proxy', count: workers, logger, graceMs: config.graceMs }),
        serve: (log, worker) => startProxy(config, log, worker),
      });
    });
}
