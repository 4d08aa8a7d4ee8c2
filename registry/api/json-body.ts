import express, { type NextFunction, type Request, type Response } from 'express';
import { BerthError } from '../../common/errors.js';

export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;

/**
 * Requests that carry a body must send JSON within `limitBytes`: anything else is refused
 * before a handler runs (415 for another type, 413 when too large, 400 when malformed).
 */
export function jsonBody(limitBytes: number) {
  const parse = express.json({ limit: limitBytes, strict: true, type: () => true });
  return (req: Request, res: Response, next: NextFunction) => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (!hasBody) return next();
    if (!req.is('application/json')) return next(new BerthError('unsupported_media_type'));
    if (Number(req.headers['content-length'] ?? 0) > limitBytes) {
      // Refuse on the header alone and drop the connection: the parser would first wait for
      // the whole announced body, which a lying client never sends.
      res.setHeader('Connection', 'close');
      return next(bodyError({ type: 'entity.too.large' }, limitBytes));
    }
    parse(req, res, (err?: unknown) => next(err === undefined ? undefined : bodyError(err, limitBytes)));
  };
}

function bodyError(err: unknown, limitBytes: number): unknown {
  const type = (err as { type?: string }).type;
  if (type === 'entity.too.large') {
    return new BerthError('payload_too_large', `The request body is larger than ${limitBytes} bytes: send a smaller body.`);
  }
  if (type === 'entity.parse.failed') return new BerthError('invalid_json');
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new BerthError('unsupported_media_type', 'Send the body as uncompressed UTF-8 JSON.');
  }
  if (type === 'request.aborted' || type === 'request.size.invalid') {
    return new BerthError('invalid_request', 'The request body ended early or did not match its Content-Length.');
  }
  // Any other 4xx from reading the body (such as bytes that are not the gzip they claim to be)
  // is the client's: say so instead of answering 500.
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new BerthError('invalid_request', 'The request body cannot be read: check that it matches its Content-Encoding.');
  }
  return err;
}
