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

/** A command line is read into one of haproxy's buffers (tune.bufsize, 16 KB at least): batches stay well below. */
const BATCH_LINE_BYTES = 8192;

/**
 * Changes sent together, `;`-separated on one connection per ~8 KB (one round trip instead of
 * one connection each: a reconcile of a burst of apps is thousands of commands). haproxy runs
 * them in order and ends each answer with an empty line; each must be empty or match its `ok`,
 * else the first that does not is thrown (those after it ran too: the caller reloads).
 */
export async function runtimeBatch(socketPath: string, changes: { command: string; ok?: RegExp }[]): Promise<void> {
  for (let start = 0; start < changes.length; ) {
    let end = start;
    let bytes = 0;
    while (end < changes.length && (end === start || bytes + changes[end]!.command.length + 2 < BATCH_LINE_BYTES)) bytes += changes[end++]!.command.length + 2;
    const chunk = changes.slice(start, end);
    const answer = await runtimeCommand(socketPath, chunk.map((c) => c.command).join('; '));
    const answers: string[] = [];
    let body: string[] = [];
    for (const line of answer.split('\n')) {
      if (line !== '') body.push(line);
      else if (answers.length < chunk.length) {
        answers.push(body.join('\n'));
        body = [];
      }
    }
    chunk.forEach((c, i) => {
      const got = (answers[i] ?? '(no answer)').trim();
      if (!(c.ok ?? /^$/).test(got)) throw new Error(`haproxy refused "${c.command}": ${got}`);
    });
    start = end;
  }
}
