import { createServer } from 'node:net';

/**
 * Hands out loopback ports for app instances from a range, skipping the ones it handed out
 * and any that something else already listens on.
 */
export class PortAllocator {
  private readonly taken = new Set<number>();
  private next: number;

  constructor(private readonly first: number, private readonly last: number) {
    this.next = first;
  }

  /** Marks a port as used (an adopted instance keeps its port). */
  reserve(port: number): void {
    this.taken.add(port);
  }

  release(port: number): void {
    this.taken.delete(port);
  }

  async allocate(): Promise<number> {
    const size = this.last - this.first + 1;
    for (let tried = 0; tried < size; tried++) {
      const port = this.next;
      this.next = port >= this.last ? this.first : port + 1;
      if (this.taken.has(port)) continue;
      if (await isFree(port)) {
        this.taken.add(port);
        return port;
      }
    }
    throw new Error(`No free port in ${this.first}-${this.last}: widen BERTH_PORT_RANGE or run fewer instances here.`);
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}
