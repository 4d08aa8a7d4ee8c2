import WebSocket from 'ws';
import type { BerthClient } from '../sdk/berth-client.js';
import type { Run, RunOutput } from '../sdk/types.js';
import { resolveCredentials } from './api-client.js';
import type { CliContext } from './cli-context.js';

type RunEnd = Extract<RunOutput, { exit: unknown }>['exit'];

/**
 * Joins this terminal to an interactive run over the registry's WebSocket: stdin in raw mode
 * (so Ctrl-C, Ctrl-D and every key go to the run's PTY, not to this process), the PTY's bytes to
 * stdout as they come, the window size at the start and on every change. Resolves with the
 * run's end; the terminal is restored whatever happens.
 */
export async function attachTerminal(ctx: CliContext, client: BerthClient, name: string, run: Run): Promise<RunEnd> {
  const { stdin, stdout } = ctx.terminal;
  const { token } = resolveCredentials(ctx.env);
  const ws = new WebSocket(client.runTerminalUrl(name, run.id), { headers: { authorization: `Bearer ${token}` } });
  const raw = stdin.isTTY === true;
  let end: RunEnd | undefined;
  const sendSize = () => {
    if (ws.readyState === WebSocket.OPEN && stdout.columns > 0) ws.send(JSON.stringify({ resize: { cols: stdout.columns, rows: stdout.rows } }));
  };
  const onKeys = (data: Buffer) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(data, { binary: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          let message = `the registry refused the terminal: HTTP ${res.statusCode}`;
          try {
            message = (JSON.parse(body) as { error: { message: string } }).error.message;
          } catch {
            // not JSON
          }
          reject(new Error(message));
        });
      });
      ws.once('error', reject);
    });
    if (raw) stdin.setRawMode(true);
    stdin.on('data', onKeys);
    stdin.resume();
    stdout.on('resize', sendSize);
    sendSize();
    return await new Promise<RunEnd>((resolve, reject) => {
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) {
          stdout.write(data);
          return;
        }
        const m = JSON.parse(data.toString()) as RunOutput;
        if ('exit' in m) end = m.exit;
      });
      ws.once('close', () => (end ? resolve(end) : reject(new Error(`The terminal's connection closed before the run ended: see berth runs ${name}.`))));
      ws.once('error', (err) => reject(err));
    });
  } finally {
    stdin.off('data', onKeys);
    stdout.off('resize', sendSize);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
    ws.terminate();
  }
}
