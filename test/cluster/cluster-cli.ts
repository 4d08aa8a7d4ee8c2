// `scripts/cluster up N | down`: a namespace cluster by hand. `up` runs until Ctrl-C (or
// `scripts/cluster down` from another shell) and then takes everything down.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterUnavailable, downAll, startCluster } from './cluster-harness.js';

const [command, count] = process.argv.slice(2);
if (command === 'up') {
  const machines = Number(count ?? '3');
  if (!Number.isInteger(machines) || machines < 1 || machines > 20) {
    process.stderr.write('usage: scripts/cluster up N   (1 to 20 machines)\n');
    process.exit(2);
  }
  const why = clusterUnavailable();
  if (why) {
    process.stderr.write(`cluster: ${why}\n`);
    process.exit(1);
  }
  const cluster = await startCluster({ machines, verbose: true });
  const env = [
    `BERTH_URL=${cluster.registry.url}`,
    `BERTH_TOKEN=${cluster.registry.token}`,
    `# HTTPS through the balancer: curl --cacert /tmp/berth-cluster/${cluster.id}/balancer/tls/ca.pem ${cluster.balancer.url.replace('127.0.0.1', 'localhost')}/<path>`,
    ...cluster.machines.map((m) => `# ${m.name}: ip netns exec ${m.ns} …  proxy ${m.proxyUrl}  load file ${m.loadFile}`),
    `# Redis: ${cluster.redis.localUrl}`,
  ].join('\n');
  const envFile = join('/tmp/berth-cluster', cluster.id, 'env');
  writeFileSync(envFile, `${env}\n`, { mode: 0o600 });
  process.stdout.write(`${env}\n(also in ${envFile}; Ctrl-C or scripts/cluster down stops it)\n`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await cluster.down();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
} else if (command === 'down') {
  const runs = await downAll();
  process.stdout.write(runs.length === 0 ? 'cluster: nothing to take down\n' : `cluster: took down ${runs.join(', ')}\n`);
} else {
  process.stderr.write('usage: scripts/cluster up N | down\n');
  process.exit(2);
}
