import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { BerthError } from '../../common/errors.js';
import { NAME_PATTERN } from '../../common/names.js';
import { waitForReady, type RedisClient } from '../../common/redis-connection.js';
import { StopSignal, STOPPED } from '../../common/stop-signal.js';
import { refusal, forbidden } from '../api/authorize.js';
import type { RunStore, TokenGrant } from '../store/index.js';
import { runOutputOf } from '../store/index.js';

export interface RunTerminalOptions {
  runs: RunStore;
  checkToken: (token: string) => Promise<TokenGrant | undefined>;
  openBlockingConnection: () => RedisClient;
  logger: Logger;
  /** True once the daemon drains: new terminals are refused. */
  isClosing: () => boolean;
}

const PATH = /^\/v1\/apps\/([^/]+)\/runs\/([0-9a-f]{16})\/terminal$/;
/** Largest message a client may send (keys pasted in one go). */
const MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * The WebSocket of an interactive run: `GET /v1/apps/:name/runs/:id/terminal` with an Upgrade,
 * authenticated as every API call (a bearer token; sending keys is a change, so a read-only
 * token is refused, and an app's token reaches its app only).
 *
 * The bytes go through Redis streams, not a connection from here to the hoster: the run's
 * output stream (which the hoster appends the PTY's bytes to) is read here with a blocking
 * XREAD and sent as binary messages; the client's binary messages (keys) and text messages
 * (`{"resize":{"cols":120,"rows":40}}`) are appended to the run's input stream, which the
 * hoster reads the same way. So any registry can serve any run's terminal, the hoster needs
 * no listening port and reaches nothing but Redis, as for everything else, and a terminal
 * survives nothing worse than what Redis survives. The cost: two Redis hops each way (an XADD
 * and the blocking reader's wake-up), well under a millisecond each on a LAN, plus the
 * hoster's 30 ms output batching.
 */
export function runTerminal(options: RunTerminalOptions): { upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void; closeAll: () => void } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const open = new Set<() => void>();

  async function admit(req: IncomingMessage): Promise<{ app: string; id: string }> {
    if (options.isClosing()) throw new BerthError('shutting_down');
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const match = PATH.exec(path);
    if (match === null) throw new BerthError('not_found', `No WebSocket at ${path}: an interactive run's terminal is /v1/apps/:name/runs/:id/terminal.`);
    const app = decodeURIComponent(match[1]!);
    const id = match[2]!;
    if (!NAME_PATTERN.test(app)) throw new BerthError('invalid_request', `Invalid path: ${app} is not an app name.`);
    const header = req.headers.authorization;
    const token = header === undefined ? null : /^Bearer ([\x21-\x7e]{1,512})$/i.exec(header);
    const grant = token === null ? undefined : await options.checkToken(token[1]!);
    if (grant === undefined) throw new BerthError('unauthorized');
    // Keys typed into a terminal change things: judged as a POST to the run.
    const why = refusal(grant, 'POST', `/apps/${match[1]}/runs/${id}/terminal`);
    if (why !== undefined) throw forbidden(why);
    const run = await options.runs.get(id);
    if (run === undefined || run.app !== app) throw new BerthError('run_not_found', `${app} has no run ${id}: list them with berth runs ${app}.`);
    if (!run.interactive) throw new BerthError('run_not_interactive', `Run ${id} was not started with -it: follow its output with berth runs:logs ${app} ${id}.`);
    return { app, id };
  }

  function refuse(socket: Duplex, err: unknown): void {
    const e = err instanceof BerthError ? err : new BerthError('internal_error');
    const body = JSON.stringify(e.toJSON());
    const extra = e.code === 'unauthorized' ? 'WWW-Authenticate: Bearer realm="berth"\r\n' : '';
    socket.end(`HTTP/1.1 ${e.status} ${e.code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`);
  }

  function serve(ws: WebSocket, id: string): void {
    const redis = options.openBlockingConnection();
    const stopSignal = new StopSignal();
    let ended = false;
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      open.delete(close);
      stopSignal.stop();
      redis.disconnect();
      if (ws.readyState === ws.OPEN) ws.close(1000, ended ? 'run ended' : 'closing');
      if (!ended) void options.runs.stop(id, 'client_gone').catch(() => undefined);
    };
    open.add(close);
    ws.on('close', close);
    ws.on('error', close);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      let input: Parameters<RunStore['sendInput']>[1] | undefined;
      if (isBinary) input = { kind: 'keys', data: bytes };
      else {
        try {
          const m = JSON.parse(bytes.toString()) as { resize?: { cols?: unknown; rows?: unknown } };
          const cols = Number(m.resize?.cols);
          const rows = Number(m.resize?.rows);
          if (Number.isInteger(cols) && Number.isInteger(rows) && cols > 0 && rows > 0 && cols <= 1000 && rows <= 1000) input = { kind: 'resize', cols, rows };
        } catch {
          // not a control message: ignored
        }
      }
      if (input !== undefined) void options.runs.sendInput(id, input).catch((err) => options.logger.warn({ err: String(err), run: id }, 'could not pass terminal input on'));
    });
    void (async () => {
      try {
        await waitForReady(redis, 3000);
      } catch {
        close();
        return;
      }
      let position = '0';
      while (!closed) {
        const entries = await stopSignal.race(options.runs.readOutput(redis, id, position, 5000).catch(async () => {
          await new Promise((r) => setTimeout(r, 500));
          return [];
        }));
        if (entries === STOPPED) break;
        for (const entry of entries) {
          position = entry.id;
          if (entry.stream === 'exit') {
            ended = true;
            ws.send(JSON.stringify(runOutputOf(entry)));
          } else if (entry.stream === 'tty') ws.send(entry.data, { binary: true });
        }
        if (ended) break;
      }
      close();
    })();
  }

  return {
    upgrade: (req, socket, head) => {
      socket.on('error', () => socket.destroy());
      admit(req).then(
        ({ id }) => wss.handleUpgrade(req, socket, head, (ws) => serve(ws, id)),
        (err) => refuse(socket, err),
      );
    },
    closeAll: () => {
      for (const close of [...open]) close();
      wss.close();
    },
  };
}
