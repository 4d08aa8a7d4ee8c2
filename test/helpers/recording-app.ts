import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** What a recording app saw: each request as node:http parsed it, and each request it could not parse. */
export interface Recorded {
  method: string;
  url: string;
  headers: Record<string, string | string[]>;
  body: string;
}

/**
 * A node:http server in a process of its own, as an app is, that writes every request it
 * receives (method, target, headers, body) and every parse error to its stdout, one JSON line
 * each, and answers with what it read. It shows what the proxy really sent on the wire: a
 * request the proxy did not mean to send is there as one of its own.
 */
const SCRIPT = `
const http = require('node:http');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const server = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('latin1');
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    out({ request: { method: req.method, url: req.url, headers: req.headers, body } });
    const text = JSON.stringify({ name: process.env.APP_NAME, method: req.method, url: req.url, body });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  });
});
server.on('clientError', (err, socket) => {
  // Parse errors only: a reset of an idle connection (haproxy closes its own so) is no message.
  if (String(err.code).startsWith('HPE_')) out({ clientError: { code: err.code, raw: err.rawPacket ? err.rawPacket.toString('latin1') : '' } });
  socket.destroy();
});
server.listen(0, '127.0.0.1', () => out({ port: server.address().port }));
`;

export interface RecordingApp {
  port: number;
  requests: Recorded[];
  /** What node:http refused to parse (the proxy sent it something malformed). */
  clientErrors: { code: string; raw: string }[];
  close(): Promise<void>;
}

export async function startRecordingApp(name: string): Promise<RecordingApp> {
  const child = spawn(process.execPath, ['-e', SCRIPT], { env: { ...process.env, APP_NAME: name }, stdio: ['ignore', 'pipe', 'inherit'] });
  const requests: Recorded[] = [];
  const clientErrors: { code: string; raw: string }[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the recording app ${name} exited (${code}) before it listened`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const o = JSON.parse(line) as { port?: number; request?: Recorded; clientError?: { code: string; raw: string } };
      if (o.port !== undefined) resolve(o.port);
      if (o.request) requests.push(o.request);
      if (o.clientError) clientErrors.push(o.clientError);
    });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    port,
    requests,
    clientErrors,
    close: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
