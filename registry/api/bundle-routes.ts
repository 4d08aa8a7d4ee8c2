import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { BerthError, bundleTooLarge } from '../../common/errors.js';
import { digestSchema } from '../../common/names.js';
import type { BundleStore } from '../store/index.js';
import { emptyQuery } from './schemas.js';
import { validate } from './validate.js';

export interface BundleRoutesOptions {
  bundles: BundleStore;
  /** Largest bundle accepted (BERTH_BUNDLE_LIMIT_BYTES). */
  limitBytes: number;
}

const bundleParams = z.strictObject({ sha256: digestSchema });

const BUNDLE_MEDIA_TYPES = new Set(['application/gzip', 'application/x-gzip', 'application/octet-stream']);

/** True when a Content-Type header names a type a bundle may be sent as (parameters ignored). */
export function isBundleMediaType(header: string | undefined): boolean {
  if (header === undefined) return false;
  return BUNDLE_MEDIA_TYPES.has(header.split(';')[0]!.trim().toLowerCase());
}

/**
 * `PUT`, `HEAD` and `GET /v1/bundles/:sha256`: bundles as raw bytes, streamed both ways so
 * that neither side ever holds a whole bundle. Mounted before the JSON body parser.
 * An upload must arrive within the server's request timeout (30 s), like any request.
 */
export function bundleRoutes(options: BundleRoutesOptions): Router {
  const { bundles, limitBytes } = options;
  const r = Router();

  r.put('/bundles/:sha256', async (req: Request, res: Response) => {
    try {
      const { sha256 } = validate(bundleParams, req.params, 'path');
      validate(emptyQuery, req.query, 'query');
      if (!isBundleMediaType(req.headers['content-type'])) {
        throw new BerthError('unsupported_media_type', 'Send the bundle as it is, with "Content-Type: application/gzip".');
      }
      const encoding = req.headers['content-encoding'];
      if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
        throw new BerthError('unsupported_media_type', 'Send the bundle bytes without a Content-Encoding: the digest is of the bytes sent.');
      }
      if (Number(req.headers['content-length'] ?? 0) > limitBytes) {
        throw new BerthError(
          'bundle_too_large',
          `The bundle is ${bundleTooLarge(limitBytes)}`,
        );
      }
      const stored = await bundles.put(sha256, stopWithoutDestroying(req), { limitBytes });
      res
        .status(stored.created ? 201 : 200)
        .location(`/v1/bundles/${sha256}`)
        .json({ digest: sha256, size: stored.size });
    } catch (err) {
      // The client went away mid-upload (put already dropped it): nobody is left to answer.
      if (req.destroyed && !(err instanceof BerthError)) return;
      // Refused before the body was read to its end: answer and close rather than read on,
      // since the rest may be large or may never come.
      if (!req.complete) res.setHeader('Connection', 'close');
      throw err;
    }
  });

  r.head('/bundles/:sha256', async (req: Request, res: Response) => {
    const { sha256 } = validate(bundleParams, req.params, 'path');
    validate(emptyQuery, req.query, 'query');
    const info = await bundles.info(sha256);
    if (info === undefined) {
      res.status(404).end();
      return;
    }
    res.status(200).setHeader('Content-Type', 'application/gzip');
    res.setHeader('Content-Length', String(info.size));
    res.end();
  });

  r.get('/bundles/:sha256', async (req: Request, res: Response) => {
    const { sha256 } = validate(bundleParams, req.params, 'path');
    validate(emptyQuery, req.query, 'query');
    const info = await bundles.info(sha256);
    if (info === undefined) throw new BerthError('bundle_not_found');
    res.status(200).setHeader('Content-Type', 'application/gzip');
    res.setHeader('Content-Length', String(info.size));
    try {
      // pipeline waits for a slow reader, and stops reading Redis when the client goes away.
      await pipeline(Readable.from(bundles.read(sha256)), res);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_STREAM_PREMATURE_CLOSE') return;
      throw err;
    }
  });

  return r;
}

/**
 * The request body as an iterable whose early end (the store refusing it) leaves the request
 * alone: ending the request's own iterator would destroy the socket before the refusal is sent.
 */
function stopWithoutDestroying(req: Request): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]: () => {
      const it = req[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
      return { next: () => it.next() };
    },
  };
}
