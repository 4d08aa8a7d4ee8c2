import type { z } from 'zod';
import { BerthError } from '../../common/errors.js';
import type { CodedIssueParams } from '../../common/names.js';

/** Parses `value` with `schema` or throws one invalid_request naming each bad field (or the code a failure carries). */
export function validate<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'path' | 'query'): z.output<S> {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  // A failure with a code of its own (a reserved path) is answered with that code.
  for (const issue of parsed.error.issues) {
    const code = issue.code === 'custom' ? (issue.params as Partial<CodedIssueParams> | undefined)?.berthCode : undefined;
    if (code !== undefined) throw new BerthError(code, `Invalid ${where}: ${issue.path.length > 0 ? issue.path.join('.') : where}: ${issue.message}.`);
  }
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
