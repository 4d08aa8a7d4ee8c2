import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { BerthError } from '../../common/errors.js';
import { isRedisUnavailable } from '../../common/redis-connection.js';

/**
 * The one place errors become responses: `{"error":{"code","message"}}` with the catalogue's
 * status. Anything unexpected is logged with its stack and answered 500 without it.
 */
export function errorHandler(logger: Logger) {
  // Express recognises an error handler by its four parameters.
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let error: BerthError;
    if (err instanceof BerthError) error = err;
    else if (isRedisUnavailable(err)) error = new BerthError('redis_unavailable');
    else if (err instanceof URIError && (err as { status?: unknown }).status === 400) {
      // The router could not percent-decode a path parameter.
      error = new BerthError('invalid_request', 'The URL path is not valid percent-encoding: encode each parameter with encodeURIComponent.');
    } else {
      logger.error({ err, method: req.method, url: req.originalUrl }, 'request failed unexpectedly');
      error = new BerthError('internal_error');
    }
    if (error.code === 'redis_unavailable' || error.code === 'shutting_down') res.setHeader('Retry-After', '1');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(error.status).json(error.toJSON());
  };
}
