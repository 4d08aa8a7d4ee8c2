import type { z } from 'zod';
import { BerthError } from '../../common/errors.js';

/** Parses `value` with `schema` or throws one invalid_request naming each bad field. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'path' | 'query'): z.output<S> {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const details = parsed.error.issues
    .slice(0, 5)
    .map((issue) => {
      const field = issue.path.length > 0 ? issue.path.join('.') : where;
      if (issue.code === 'unrecognized_keys') return `${where}: unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      return `${where === 'body' ? '' : `${where} `}${field}: ${issue.message}`;
    })
    .join('; ');
  throw new BerthError('invalid_request', `Invalid ${where}: ${details}.`);
}
