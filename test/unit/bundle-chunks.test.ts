// A bundle body of any piece sizes is cut into fixed-size chunks that put back together give the same bytes, and only gzip-like content types are taken as bundles.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isBundleMediaType } from '../../registry/api/bundle-routes.js';
import { ChunkSplitter } from '../../registry/store/bundle-store.js';

function split(bytes: Buffer, pieceSizes: number[], chunkBytes: number): Buffer[] {
  const splitter = new ChunkSplitter(chunkBytes);
  const out: Buffer[] = [];
  let offset = 0;
  for (let i = 0; offset < bytes.length; i++) {
    const n = pieceSizes[i % pieceSizes.length]!;
    out.push(...splitter.push(bytes.subarray(offset, offset + n)));
    offset += n;
  }
  const last = splitter.end();
  if (last !== undefined) out.push(last);
  return out;
}

describe('ChunkSplitter', () => {
  it.each([
    ['one piece, whole chunks', 4000, [4000]],
    ['one piece, a short last chunk', 4321, [4321]],
    ['pieces smaller than a chunk', 4321, [7, 300, 1]],
    ['pieces larger than a chunk', 9999, [2500, 3333]],
    ['pieces exactly a chunk', 5000, [1000]],
    ['empty pieces among others', 2100, [0, 1000, 0, 50]],
  ])('%s', (_name, size, pieces) => {
    const bytes = randomBytes(size);
    const chunks = split(bytes, pieces, 1000);
    expect(chunks.slice(0, -1).every((c) => c.length === 1000)).toBe(true);
    expect(chunks.at(-1)!.length).toBe(size % 1000 || 1000);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
  });

  it('gives nothing for an empty stream', () => {
    const splitter = new ChunkSplitter(1000);
    expect(splitter.push(Buffer.alloc(0))).toEqual([]);
    expect(splitter.end()).toBeUndefined();
  });

  it('refuses a chunk size that is not a positive integer', () => {
    expect(() => new ChunkSplitter(0)).toThrow(RangeError);
    expect(() => new ChunkSplitter(1.5)).toThrow(RangeError);
  });
});

describe('isBundleMediaType', () => {
  it.each(['application/gzip', 'application/x-gzip', 'application/octet-stream', 'Application/GZIP', 'application/gzip; charset=binary'])('takes %j', (type) => {
    expect(isBundleMediaType(type)).toBe(true);
  });

  it.each([undefined, '', 'application/json', 'text/plain', 'application/gzipx', 'multipart/form-data; boundary=x'])('refuses %j', (type) => {
    expect(isBundleMediaType(type)).toBe(false);
  });
});
