import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BerthError, bundleTooLarge } from '../../common/errors.js';
import { SHA256_PATTERN } from '../../common/names.js';
import type { RedisClient } from '../../common/redis-connection.js';
import { registryKeys, DEFAULT_KEY_PREFIX, type RegistryKeys } from './keys.js';
import { asBerthError, defineScripts, redisCall } from './lua-scripts.js';
import * as scripts from './script-declarations.js';

export const DEFAULT_BUNDLE_LIMIT_BYTES = 100 * 1024 * 1024;
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
export const DEFAULT_UPLOAD_TTL_SECONDS = 3600;

export interface BundleStoreOptions {
  /** Name inside the key prefix's hash tag. @default 'berth' */
  keyPrefix?: string;
  /** Largest bundle `put` accepts when the call gives no limit. @default 104857600 (100 MiB) */
  limitBytes?: number;
  /** Size of the pieces a bundle is stored in, one hash field each. @default 1048576 (1 MiB) */
  chunkBytes?: number;
  /**
   * An upload left behind (the registry died mid-upload) disappears this long after its last
   * chunk; every other failure deletes it at once. @default 3600
   */
  uploadTtlSeconds?: number;
}

export interface BundleInfo {
  digest: string;
  size: number;
  chunks: number;
  /** When it was stored (ms since 1970, Redis's clock). */
  storedAt: number;
}

export interface PutResult {
  /** False when the bundle was already stored: nothing changed. */
  created: boolean;
  size: number;
}

const SCRIPTS = [scripts.commitBundle, scripts.deleteBundle];

/**
 * Bundles (an app's code as a .tar.gz) in Redis, stored once under their sha256 digest as a
 * hash of fixed-size chunks, so that no single Redis value grows with the bundle. An upload
 * goes to its own expiring key while it is hashed and counted, and becomes the bundle in one
 * script only once its digest checked out: a reader never sees a partial bundle.
 */
export class BundleStore {
  readonly keys: RegistryKeys;
  readonly limitBytes: number;
  readonly chunkBytes: number;
  private readonly uploadTtlSeconds: number;
  private readonly redis: RedisClient;

  constructor(redis: RedisClient, options: BundleStoreOptions = {}) {
    this.keys = registryKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.limitBytes = positiveInt('limitBytes', options.limitBytes ?? DEFAULT_BUNDLE_LIMIT_BYTES);
    this.chunkBytes = positiveInt('chunkBytes', options.chunkBytes ?? DEFAULT_CHUNK_BYTES);
    this.uploadTtlSeconds = positiveInt('uploadTtlSeconds', options.uploadTtlSeconds ?? DEFAULT_UPLOAD_TTL_SECONDS);
    defineScripts(redis, SCRIPTS);
    this.redis = redis;
  }

  /**
   * Reads `body` to its end and stores it as bundle `digest`. Throws bundle_too_large the
   * moment it passes the limit (stopping the read), digest_mismatch when the bytes are not
   * `digest`. Whatever fails, the upload key is deleted before this returns.
   */
  async put(digest: string, body: AsyncIterable<Uint8Array> | Readable, options: { limitBytes?: number } = {}): Promise<PutResult> {
    if (!SHA256_PATTERN.test(digest)) throw new BerthError('invalid_request', `${JSON.stringify(digest)} is not a sha256 digest: give 64 lowercase hex characters.`);
    const limitBytes = options.limitBytes ?? this.limitBytes;
    const uploadKey = this.keys.upload(randomBytes(12).toString('hex'));
    const hash = createHash('sha256');
    const splitter = new ChunkSplitter(this.chunkBytes);
    let size = 0;
    let chunks = 0;
    try {
      // Leaving this loop early (a throw) ends the body's iterator, which stops the read.
      for await (const piece of body as AsyncIterable<unknown>) {
        const bytes = asBuffer(piece);
        size += bytes.length;
        if (size > limitBytes) {
          throw new BerthError(
            'bundle_too_large',
            `The bundle is ${bundleTooLarge(limitBytes)}`,
          );
        }
        hash.update(bytes);
        for (const chunk of splitter.push(bytes)) await this.writeChunk(uploadKey, chunks++, chunk);
      }
      const actual = hash.digest('hex');
      if (actual !== digest) {
        throw new BerthError(
          'digest_mismatch',
          `The body's sha256 digest is ${actual}, not ${digest} as the URL says: compute it over the exact bytes you send, and send them unaltered.`,
        );
      }
      if (size === 0) throw new BerthError('invalid_request', 'The bundle is empty: send the .tar.gz of the app.');
      const last = splitter.end();
      if (last !== undefined) await this.writeChunk(uploadKey, chunks++, last);
      const k = this.keys;
      // Throws redis_unavailable when the upload vanished under us (Redis restarted or evicted it): the caller may retry.
      const out = await redisCall(() =>
        scripts.commitBundle.run(this.redis, {
          keys: { upload: uploadKey, bundleData: k.bundleData(digest), bundle: k.bundle(digest), bundles: k.bundles },
          args: { digest, size, chunks },
        }),
      );
      return { created: out === 1, size };
    } catch (err) {
      // An upload must not outlive a failed put (client gone, too large, wrong digest, Redis
      // error): its expiry is only the backstop for a registry that died mid-upload.
      await this.redis.del(uploadKey).catch(() => undefined);
      throw asBerthError(err);
    }
  }

  async has(digest: string): Promise<boolean> {
    return (await redisCall(() => this.redis.exists(this.keys.bundle(digest)))) === 1;
  }

  async info(digest: string): Promise<BundleInfo | undefined> {
    const h = await redisCall(() => this.redis.hgetall(this.keys.bundle(digest)));
    if (!h.digest) return undefined;
    return { digest: h.digest, size: Number(h.size), chunks: Number(h.chunks), storedAt: Number(h.storedAt) };
  }

  /**
   * The bundle's bytes, one chunk at a time, so that serving it holds one chunk in memory.
   * Throws bundle_not_found when it is absent, or deleted while being read.
   */
  async *read(digest: string): AsyncGenerator<Buffer> {
    const info = await this.info(digest);
    if (info === undefined) throw new BerthError('bundle_not_found');
    const dataKey = this.keys.bundleData(digest);
    for (let i = 0; i < info.chunks; i++) {
      const chunk = await redisCall(() => this.redis.hgetBuffer(dataKey, String(i)));
      if (chunk === null) throw new BerthError('bundle_not_found', 'The bundle was deleted while it was being read: upload it again.');
      yield chunk;
    }
  }

  /** Deletes the bundle; false when there was none. */
  async delete(digest: string): Promise<boolean> {
    const k = this.keys;
    const out = await redisCall(() =>
      scripts.deleteBundle.run(this.redis, { keys: { bundle: k.bundle(digest), bundleData: k.bundleData(digest), bundles: k.bundles }, args: { digest } }),
    );
    return out === 1;
  }

  /** Every stored bundle, oldest first. */
  async list(): Promise<Array<{ digest: string; storedAt: number }>> {
    const flat = await redisCall(() => this.redis.zrange(this.keys.bundles, 0, -1, 'WITHSCORES'));
    const out: Array<{ digest: string; storedAt: number }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ digest: flat[i]!, storedAt: Number(flat[i + 1]) });
    return out;
  }

  private async writeChunk(uploadKey: string, index: number, bytes: Buffer): Promise<void> {
    // One transaction, so that the upload key never exists without its expiry.
    const replies = await redisCall(() => this.redis.multi().hset(uploadKey, String(index), bytes).expire(uploadKey, this.uploadTtlSeconds).exec());
    for (const [err] of replies ?? []) if (err) throw err;
  }
}

/**
 * Cuts a stream of pieces of any size into chunks of exactly `chunkBytes` (the last may be
 * shorter). Pieces are kept by reference until they are cut, as Node streams never reuse them.
 */
export class ChunkSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(readonly chunkBytes: number) {
    positiveInt('chunkBytes', chunkBytes);
  }

  /** Takes the next piece; returns the chunks it completed, in order. */
  push(piece: Buffer): Buffer[] {
    if (piece.length === 0) return [];
    this.pending.push(piece);
    this.pendingBytes += piece.length;
    if (this.pendingBytes < this.chunkBytes) return [];
    const all = this.pending.length === 1 ? piece : Buffer.concat(this.pending, this.pendingBytes);
    const out: Buffer[] = [];
    let offset = 0;
    for (; all.length - offset >= this.chunkBytes; offset += this.chunkBytes) out.push(all.subarray(offset, offset + this.chunkBytes));
    const rest = all.subarray(offset);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return out;
  }

  /** The short last chunk at the end of the stream, if any bytes are left. */
  end(): Buffer | undefined {
    if (this.pendingBytes === 0) return undefined;
    const last = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    return last;
  }
}

function asBuffer(piece: unknown): Buffer {
  if (Buffer.isBuffer(piece)) return piece;
  if (piece instanceof Uint8Array) return Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
  throw new TypeError('A bundle body must yield bytes (Buffer or Uint8Array): do not set an encoding on the stream.');
}

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`BundleStore option ${name} must be a positive integer, got ${value}.`);
  return value;
}
