import { pktLine } from './pkt-line.js';

/** The sideband band git prints as `remote: …` (gitprotocol-pack(5)). */
const PROGRESS_BAND = 2;

/** Whether the first command of a push (`<old> <new> <ref>\0<capabilities>`) asks for a sideband. */
export function asksForSideband(firstBytes: Buffer): boolean {
  if (firstBytes.length < 4) return false;
  const length = parseInt(firstBytes.subarray(0, 4).toString('latin1'), 16);
  if (!Number.isFinite(length) || length < 4) return false;
  const line = firstBytes.subarray(4, Math.min(length, firstBytes.length)).toString('latin1');
  const capabilities = line.split('\0')[1]?.split(' ') ?? [];
  return capabilities.includes('side-band-64k') || capabilities.includes('side-band');
}

/**
 * Relays receive-pack's output (pkt-lines) whole packet by whole packet, so that berth can
 * slip a line of its own for the pusher in between (a sideband progress packet, which git
 * prints as `remote: …`) without ever cutting one of receive-pack's packets in two.
 */
export class SidebandRelay {
  private pending: Buffer = Buffer.alloc(0);
  private queued: Buffer[] = [];

  constructor(private readonly write: (bytes: Buffer) => void) {}

  /** Takes receive-pack's next bytes; passes on the packets they complete, with berth's lines after the first. */
  push(bytes: Buffer): void {
    this.pending = this.pending.length === 0 ? bytes : Buffer.concat([this.pending, bytes]);
    while (this.pending.length >= 4) {
      const length = parseInt(this.pending.subarray(0, 4).toString('latin1'), 16);
      // Not pkt-lines after all: pass everything on untouched, and inject nothing more.
      if (!Number.isFinite(length) || (length > 0 && length < 4)) return this.passThrough();
      const size = length === 0 ? 4 : length;
      if (this.pending.length < size) break;
      this.write(this.pending.subarray(0, size));
      this.pending = this.pending.subarray(size);
      this.atBoundary();
    }
    if (this.pending.length === 0) this.atBoundary();
  }

  /** Shows `line` to the pusher at the next packet boundary. */
  say(line: string): void {
    this.queued.push(pktLine(Buffer.concat([Buffer.from([PROGRESS_BAND]), Buffer.from(`${line}\n`)])));
    if (this.pending.length === 0) this.atBoundary();
  }

  /** The end of receive-pack's output: whatever is left, as it is. */
  end(): void {
    if (this.pending.length === 0) this.atBoundary();
    if (this.pending.length > 0) this.write(this.pending);
    this.pending = Buffer.alloc(0);
  }

  /** Between two of receive-pack's packets: berth's lines go out here. */
  private atBoundary(): void {
    if (this.queued.length === 0) return;
    for (const packet of this.queued) this.write(packet);
    this.queued = [];
  }

  private passThrough(): void {
    this.write(this.pending);
    this.pending = Buffer.alloc(0);
    this.queued = [];
    this.push = (bytes: Buffer) => this.write(bytes);
    this.say = () => undefined;
  }
}
