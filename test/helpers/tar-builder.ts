/**
 * Writes tar archives block by block, for the entries that tar's create API refuses or
 * rewrites (`../x`, absolute names, devices, links to anywhere): a bundle exactly as an
 * attacker would send it.
 */

/** POSIX ustar type flags. */
export const TAR_TYPE = {
  file: '0',
  hardLink: '1',
  symlink: '2',
  charDevice: '3',
  blockDevice: '4',
  directory: '5',
  fifo: '6',
  sparse: 'S',
  paxHeader: 'x',
  paxGlobalHeader: 'g',
} as const;

export interface RawEntry {
  path: string;
  /** @default '0' (a file) */
  type?: string;
  body?: Buffer | string;
  /** @default 0o644 for files, 0o755 for directories */
  mode?: number;
  linkpath?: string;
  /** Size written in the header; by default the body's length. */
  size?: number;
  devmajor?: number;
  devminor?: number;
}

/** One 512-byte ustar header block. */
export function tarHeader(entry: RawEntry): Buffer {
  const type = entry.type ?? TAR_TYPE.file;
  const body = toBuffer(entry.body);
  const block = Buffer.alloc(512);
  writeString(block, 0, 100, entry.path);
  writeOctal(block, 100, 8, entry.mode ?? (type === TAR_TYPE.directory ? 0o755 : 0o644));
  writeOctal(block, 108, 8, 1000);
  writeOctal(block, 116, 8, 1000);
  writeOctal(block, 124, 12, entry.size ?? body.length);
  writeOctal(block, 136, 12, Math.floor(Date.UTC(2024, 0, 1) / 1000));
  block.fill(0x20, 148, 156); // the checksum is computed with its own field as spaces
  writeString(block, 156, 1, type);
  writeString(block, 157, 100, entry.linkpath ?? '');
  writeString(block, 257, 6, 'ustar\0');
  writeString(block, 263, 2, '00');
  writeString(block, 265, 32, 'user');
  writeString(block, 297, 32, 'user');
  writeOctal(block, 329, 8, entry.devmajor ?? 0);
  writeOctal(block, 337, 8, entry.devminor ?? 0);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

/**
 * A header and its body, padded to whole blocks; a name over the header's 100 bytes goes in
 * a pax extended header before it, as tar(1) does.
 */
export function tarEntry(entry: RawEntry): Buffer {
  if (Buffer.byteLength(entry.path) > 100) {
    const pax = tarEntry({ path: 'PaxHeader', type: TAR_TYPE.paxHeader, body: paxRecords({ path: entry.path }) });
    return Buffer.concat([pax, tarEntry({ ...entry, path: entry.path.slice(0, 100) })]);
  }
  const body = toBuffer(entry.body);
  const padding = (512 - (body.length % 512)) % 512;
  return Buffer.concat([tarHeader(entry), body, Buffer.alloc(padding)]);
}

/** The body of a pax header: one "<length> <key>=<value>\n" record per field. */
export function paxRecords(fields: Record<string, string>): string {
  let out = '';
  for (const [key, value] of Object.entries(fields)) {
    const rest = ` ${key}=${value}\n`;
    // The length counts its own digits.
    let length = Buffer.byteLength(rest) + 1;
    while (String(length).length + Buffer.byteLength(rest) !== length) length++;
    out += `${length}${rest}`;
  }
  return out;
}

/** A whole uncompressed archive: the entries, then the two zero blocks that end it. */
export function tarArchive(entries: RawEntry[]): Buffer {
  return Buffer.concat([...entries.map(tarEntry), Buffer.alloc(1024)]);
}

function toBuffer(body: Buffer | string | undefined): Buffer {
  if (body === undefined) return Buffer.alloc(0);
  return typeof body === 'string' ? Buffer.from(body) : body;
}

function writeString(block: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new Error(`tar field at ${offset} holds ${length} bytes; ${JSON.stringify(value)} has ${bytes.length}`);
  bytes.copy(block, offset);
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  writeString(block, offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
}
