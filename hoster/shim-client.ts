import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { onLines, send, type ShimSpec, type ShimToHoster } from './shim-protocol.js';

export type ShimHello = ShimToHoster & { t: 'hello' };
export type ShimExit = ShimToHoster & { t: 'exit' };

/** A shim this hoster is connected to, as it introduced itself. */
export interface OpenShim {
  socket: Socket;
  hello: ShimHello;
}

/** How long a shim just spawned may take to listen, and then to say hello. */
const SPAWN_WAIT_MS = 5000;
/** How often a shim not yet listening is tried again. */
const CONNECT_RETRY_MS = 20;

/**
 * Starts a shim for a new run of an instance: writes its spec where only root (or the
 * hoster's user) can read it, spawns it detached and unreferenced (it must outlive a hoster
 * restart), connects to its socket and reads its hello.
 */
export async function spawnShim(shimPath: string, specFile: string, spec: ShimSpec): Promise<OpenShim> {
  writeFileSync(specFile, JSON.stringify(spec), { mode: 0o600 });
  const child = spawn(process.execPath, [shimPath, specFile], { detached: true, stdio: 'ignore' });
  child.unref();
  return connectShim(spec.socketPath, { waitMs: SPAWN_WAIT_MS, helloMs: SPAWN_WAIT_MS });
}

/**
 * Connects to the shim listening on `socketPath` (one just spawned, or one that survived a
 * previous hoster) and reads its hello. `waitMs`: how long to keep trying while nothing
 * listens yet (0: one try); `helloMs`: how long the hello may take.
 */
export async function connectShim(socketPath: string, options: { waitMs: number; helloMs: number }): Promise<OpenShim> {
  const socket = await connectWhenReady(socketPath, options.waitMs);
  try {
    return { socket, hello: await readHello(socket, options.helloMs) };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

async function connectWhenReady(path: string, waitMs: number): Promise<Socket> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (existsSync(path)) {
      try {
        return await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
      } catch {
        // not listening yet
      }
    }
    if (Date.now() >= deadline) throw new Error(`the instance shim did not open ${path}`);
    await new Promise((r) => setTimeout(r, CONNECT_RETRY_MS));
  }
}

function readHello(socket: Socket, timeoutMs: number): Promise<ShimHello> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stopReading();
      reject(new Error('the instance shim did not answer'));
    }, timeoutMs);
    // What follows the hello (a fast app's lines and exit can come with it) waits for the ShimLink.
    const stopReading = onLines<ShimToHoster>(socket, (m) => {
      if (m.t !== 'hello') return;
      clearTimeout(timer);
      resolve(m);
      return 'stop';
    });
  });
}

export interface ShimLinkHandlers {
  /** A line of the app's output. */
  onLog: (stream: 'out' | 'err', line: string) => void;
  /**
   * The app ended: the shim's word for it, or (`lost`) the connection closed without one (the
   * shim itself died).
   */
  onExit: (exit: ShimExit, lost: boolean) => void;
}

/** The hoster's end of one shim connection: tells it the lease and to stop; hears the app's output and end. */
export class ShimLink {
  /** Settles when the connection has closed (the shim exited, or was let go). */
  readonly closed: Promise<void>;

  constructor(
    readonly socket: Socket,
    handlers: ShimLinkHandlers,
  ) {
    let exited = false;
    this.closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    onLines<ShimToHoster>(socket, (m) => {
      if (m.t === 'log') handlers.onLog(m.s, m.l);
      else if (m.t === 'exit') {
        exited = true;
        handlers.onExit(m, false);
      }
    });
    socket.once('close', () => {
      if (!exited) handlers.onExit({ t: 'exit', code: null, signal: 'shim_lost', why: 'exited' }, true);
    });
    socket.on('error', () => socket.destroy());
    // connectShim paused the socket after the hello, keeping what came next for these handlers.
    socket.resume();
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  /** The app may run this much longer unless told again (the shim stops it in time otherwise). */
  lease(validForMs: number): void {
    send(this.socket, { t: 'lease', validForMs: Math.max(0, validForMs) });
  }

  /** Asks the shim to stop the app (SIGTERM, SIGKILL after graceMs) without waiting. */
  requestStop(graceMs: number): void {
    send(this.socket, { t: 'stop', graceMs });
  }

  /** Stops the app and waits for the shim to go (at most the grace and 2 s more), then lets go. */
  async stop(graceMs: number): Promise<void> {
    if (this.socket.destroyed) return;
    this.requestStop(graceMs);
    const timeout = new Promise<void>((r) => setTimeout(r, graceMs + 2000).unref());
    await Promise.race([this.closed, timeout]);
    this.socket.destroy();
  }

  /** Lets go of the shim; it keeps the app running until its lease deadline. */
  destroy(): void {
    this.socket.destroy();
  }
}
