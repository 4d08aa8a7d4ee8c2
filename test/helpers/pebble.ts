import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { ensureLocalCertificates } from '../../balancer/local-certificates.js';
import { getPort } from './get-port.js';
import { waitFor } from './wait-for.js';

/** Whether Debian's pebble and pebble-challtestsrv are installed (scripts/setup as root installs them). */
export const hasPebble = spawnSync('sh', ['-c', 'command -v pebble && command -v pebble-challtestsrv'], { stdio: 'ignore' }).status === 0;

/** A running pebble (Let's Encrypt's ACME test server) with pebble-challtestsrv as its DNS. */
export interface Pebble {
  /** The ACME directory URL (BERTH_ACME_DIRECTORY). */
  directory: string;
  /** PEM file of the CA of pebble's own HTTPS listener (BERTH_ACME_CA_FILE). */
  caFile: string;
  /** PEM of the root that signs the certificates pebble issues. */
  root(): Promise<string>;
  /** Makes `host` resolve to `addresses` for pebble's validation (every other name: 127.0.0.1). */
  resolve(host: string, addresses: string[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts pebble and pebble-challtestsrv on free loopback ports, files under `dir`: every name
 * resolves to 127.0.0.1, and pebble checks HTTP-01 challenges on `httpPort` there (where a
 * balancer's plain-HTTP listener is to be). `env` is pebble's own (PEBBLE_VA_NOSLEEP=1 is set).
 */
export async function startPebble(o: { dir: string; httpPort: number; env?: Record<string, string>; host?: string }): Promise<Pebble> {
  // Where its ACME and management listeners are: loopback, or an address other namespaces reach.
  const host = o.host ?? '127.0.0.1';
  const children: ChildProcess[] = [];
  const start = (command: string, args: string[], env: Record<string, string> = {}) => {
    const child = spawn(command, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    child.once('exit', (code, signal) => {
      if (code !== 0 && signal !== 'SIGTERM') console.warn(`${command} exited (${code ?? signal}): ${output}`);
    });
    children.push(child);
  };
  const stop = async () => {
    for (const child of children) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      // Given 3 s to stop on its own, then killed.
      await waitFor(() => child.exitCode !== null || child.signalCode !== null, { deadlineMs: 3000, what: 'pebble to stop' }).catch(() => child.kill('SIGKILL'));
      await exited;
    }
  };
  try {
    // pebble's own HTTPS listener needs a certificate: one from a CA made here.
    const tls = await ensureLocalCertificates({ dir: join(o.dir, 'pebble-tls'), names: [host] });
    const [acmePort, managementPort, dnsPort, challtestPort, tlsPort] = [await getPort(), await getPort(), await getPort(), await getPort(), await getPort()];
    const challtestsrv = `http://127.0.0.1:${challtestPort}`;
    start('pebble-challtestsrv', ['-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${challtestPort}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '']);
    mkdirSync(join(o.dir, 'pebble'), { recursive: true });
    writeFileSync(
      join(o.dir, 'pebble', 'config.json'),
      JSON.stringify({
        pebble: {
          listenAddress: `${host}:${acmePort}`,
          managementListenAddress: `${host}:${managementPort}`,
          certificate: tls.certPath,
          privateKey: tls.keyPath,
          httpPort: o.httpPort,
          tlsPort,
          ocspResponderURL: '',
          externalAccountBindingRequired: false,
        },
      }),
    );
    start('pebble', ['-config', join(o.dir, 'pebble', 'config.json'), '-dnsserver', `127.0.0.1:${dnsPort}`], { PEBBLE_VA_NOSLEEP: '1', ...o.env });
    const directory = `https://${host}:${acmePort}/dir`;
    const get = (url: string) =>
      new Promise<string>((resolve, reject) => {
        request(url, { agent: new Agent({ ca: tls.caCertPem, keepAlive: false }) }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: ${res.statusCode}`))));
        })
          .on('error', reject)
          .end();
      });
    await waitFor(() => get(directory), { what: 'pebble to serve its directory', deadlineMs: 20_000 });
    const resolveHost = async (host: string, addresses: string[]) => {
      const r = await fetch(`${challtestsrv}/add-a`, { method: 'POST', body: JSON.stringify({ host, addresses }) });
      if (!r.ok) throw new Error(`pebble-challtestsrv refused ${host}: ${r.status}`);
    };
    await waitFor(() => resolveHost('probe.pebble.test', ['127.0.0.1']).then(() => true), { what: 'pebble-challtestsrv to answer' });
    return { directory, caFile: tls.caCertPath, root: () => get(`https://${host}:${managementPort}/roots/0`), resolve: resolveHost, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
