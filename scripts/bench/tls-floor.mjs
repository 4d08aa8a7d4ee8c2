// Node's floor for the TLS benchmark, started by scripts/bench/tls: Node's own https server
// with the balancer's TLS settings (certificate, protocols, ciphers, curves, session
// tickets) in front of the same berth proxy, forwarding with floor-forwarder.mjs and doing
// nothing else. What the balancer costs beyond it is berth's; beyond nginx, Node's.
//   node tls-floor.mjs <port> <tls dir> <proxy port>
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { floorForwarder } from './floor-forwarder.mjs';

const { tlsServerOptions } = await import('../../dist/balancer/tls-options.js');
const [port, dir, proxyPort] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
const options = tlsServerOptions({ cert: readFileSync(join(dir, 'server.pem')), key: readFileSync(join(dir, 'server-key.pem')) });
createServer({ ...options, noDelay: true }, await floorForwarder(`http://127.0.0.1:${proxyPort}`)).listen(port, '127.0.0.1');
