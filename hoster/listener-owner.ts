import { readFileSync } from 'node:fs';

const LISTEN = '0A';

/**
 * The uids of the sockets listening on TCP `port` (any address), from the kernel's socket
 * tables. A health check that connects cannot tell who answered: another app could have bound
 * the port first and would then get this instance's traffic. Empty when nothing listens, or
 * where /proc/net is not there (not Linux).
 */
export function listenerUids(port: number, tables: readonly string[] = ['/proc/net/tcp', '/proc/net/tcp6']): number[] {
  const uids = new Set<number>();
  for (const table of tables) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const uid of parseListeners(text, port)) uids.add(uid);
  }
  return [...uids];
}

/** The uids of the LISTEN rows for `port` in one /proc/net/tcp(6) table. */
export function parseListeners(table: string, port: number): number[] {
  const uids: number[] = [];
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8 || fields[3] !== LISTEN) continue;
    const local = fields[1]!;
    if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) !== port) continue;
    uids.push(Number(fields[7]));
  }
  return uids;
}
