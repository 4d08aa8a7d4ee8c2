import { connect } from 'node:net';

/** How long one Runtime API command may take (they answer in well under a millisecond). */
const COMMAND_TIMEOUT_MS = 2000;

/**
 * One command on an HAProxy CLI socket (the worker's stats socket, or the master's), and its
 * whole answer. The socket is half-closed after the command, which both CLIs read as "one
 * command, then close" (the master's waits for it).
 */
export function runtimeCommand(socketPath: string, command: string, timeoutMs = COMMAND_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`haproxy did not answer "${command.split(' ', 2).join(' ')}" within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('close', (hadError) => {
      clearTimeout(timer);
      if (!hadError) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    socket.end(`${command}\n`);
  });
}

/**
 * A command whose answer must be empty or one of `ok` (HAProxy answers most changes with an
 * empty line, some with a sentence); anything else is its error, thrown.
 */
export async function runtimeChange(socketPath: string, command: string, ok: RegExp = /^$/): Promise<void> {
  const answer = (await runtimeCommand(socketPath, command)).trim();
  if (!ok.test(answer)) throw new Error(`haproxy refused "${command}": ${answer}`);
}
