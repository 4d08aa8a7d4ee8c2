import type { Duplex, Writable } from 'node:stream';
import { FLUSH, PktLineReader, pktLine, type Packet } from './pkt-line.js';
import { parseRefUpdate, type RefUpdate } from './ref-update.js';

/** What became of one ref: `ok`, or `ng` with the one line git prints after `! [remote rejected]`. */
export type RefResult = { ref: string; ok: true } | { ref: string; ok: false; reason: string };

/** Decides every ref of one push; `say` shows a line to the pusher (`remote: …`). */
export type PushHandler = (updates: RefUpdate[], say: (line: string) => void) => Promise<RefResult[]>;

/**
 * The registry's end of the proc-receive protocol (githooks(5)), reached through the hook's
 * relay: version negotiation, the ref updates, then one `ok`/`ng` per ref in their order.
 * Resolves once the results are sent, or when the hook never ran (a push that changed no ref).
 */
export function serveProcReceive(protocol: Duplex, lines: Writable, handle: PushHandler): Promise<void> {
  return new Promise((resolve) => {
    const reader = new PktLineReader();
    let phase: 'version' | 'commands' | 'deciding' | 'done' = 'version';
    const updates: RefUpdate[] = [];
    const finish = () => {
      if (phase === 'done') return;
      phase = 'done';
      protocol.end();
      lines.end();
      resolve();
    };
    const say = (line: string) => {
      if (!lines.writableEnded && !lines.destroyed) lines.write(`${line.replace(/[\r\n\0]+/g, ' ')}\n`);
    };
    const decide = () => {
      phase = 'deciding';
      handle(updates, say).then(
        (results) => {
          lines.end();
          const out = results.map((r) => pktLine(r.ok ? `ok ${r.ref}` : `ng ${r.ref} ${oneLine(r.reason)}`));
          if (!protocol.destroyed) protocol.write(Buffer.concat([...out, FLUSH]));
          finish();
        },
        () => finish(),
      );
    };
    const onPacket = (packet: Packet) => {
      if (phase === 'version') {
        // "version=1\0<features>" then a flush; berth asks for no feature (no push options, no atomic).
        if (packet === null) {
          protocol.write(Buffer.concat([pktLine('version=1\0'), FLUSH]));
          phase = 'commands';
        }
      } else if (phase === 'commands') {
        if (packet === null) decide();
        else updates.push(parseRefUpdate(packet));
      }
    };
    protocol.on('data', (bytes: Buffer) => {
      try {
        for (const packet of reader.push(bytes)) onPacket(packet);
      } catch {
        // Not the protocol: receive-pack then reports the hook's failure for every ref.
        protocol.destroy();
        finish();
      }
    });
    protocol.once('end', finish);
    protocol.once('close', finish);
    protocol.once('error', finish);
  });
}

/** A reason as one pkt-line carries it: no newlines, at most a few hundred characters. */
export function oneLine(reason: string): string {
  const line = reason.replace(/[\r\n\0]+/g, ' ').trim();
  return line.length > 400 ? `${line.slice(0, 397)}...` : line;
}
