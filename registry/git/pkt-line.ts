/**
 * git's pkt-line framing (gitprotocol-common(5)): four hex digits of length (the four
 * included), then the payload; "0000" is a flush. The proc-receive hook speaks it with
 * receive-pack, and berth speaks it through the hook.
 */
export const FLUSH = Buffer.from('0000');

/** Largest payload of one pkt-line (65520 less the four length digits). */
export const MAX_PKT_PAYLOAD = 65516;

/** One pkt-line holding `text` (git adds no newline for the proc-receive protocol's lines; give it if wanted). */
export function pktLine(text: string | Buffer): Buffer {
  const payload = typeof text === 'string' ? Buffer.from(text) : text;
  if (payload.length > MAX_PKT_PAYLOAD) throw new RangeError(`a pkt-line holds at most ${MAX_PKT_PAYLOAD} bytes, not ${payload.length}`);
  return Buffer.concat([Buffer.from((payload.length + 4).toString(16).padStart(4, '0')), payload]);
}

/** A packet as read: its payload as text (one trailing newline dropped), or null for a flush. */
export type Packet = string | null;

/** Cuts a byte stream into packets; bytes of a packet not complete yet wait for the next push. */
export class PktLineReader {
  private pending: Buffer = Buffer.alloc(0);

  /** Takes the next bytes; returns the packets they completed, in order. Throws on bytes that are not pkt-lines. */
  push(bytes: Buffer): Packet[] {
    this.pending = this.pending.length === 0 ? bytes : Buffer.concat([this.pending, bytes]);
    const out: Packet[] = [];
    while (this.pending.length >= 4) {
      const head = this.pending.subarray(0, 4).toString('latin1');
      if (!/^[0-9a-f]{4}$/.test(head)) throw new Error(`not a pkt-line: ${JSON.stringify(head)}`);
      const length = parseInt(head, 16);
      if (length === 0) {
        out.push(null);
        this.pending = this.pending.subarray(4);
        continue;
      }
      if (length < 4) throw new Error(`not a pkt-line length: ${head}`);
      if (this.pending.length < length) break;
      out.push(this.pending.subarray(4, length).toString('utf8').replace(/\n$/, ''));
      this.pending = this.pending.subarray(length);
    }
    return out;
  }
}
