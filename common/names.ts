import { z } from 'zod';

/**
 * Names and URL path prefixes as every part accepts them. One definition, so that the API,
 * the proxy's route table and the CLI agree on what is valid.
 */
export const NAME_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;

export const nameSchema = z
  .string()
  .regex(NAME_PATTERN, 'must start with a lowercase letter and contain only a-z, 0-9 and "-" (at most 63 characters)');

/** The prefix berth keeps for its own endpoints on every proxy and balancer. */
export const RESERVED_PREFIX = '/_berth';

const SEGMENT = /^[A-Za-z0-9._~-]+$/;
export const MAX_PATH_LENGTH = 256;

/** Why `path` is not a valid path prefix, or undefined when it is. */
export function pathPrefixProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must start with "/"';
  if (path.length > MAX_PATH_LENGTH) return `must be at most ${MAX_PATH_LENGTH} characters`;
  if (path === '/') return undefined;
  if (path.endsWith('/')) return 'must not end with "/" (write "/payments", not "/payments/")';
  for (const segment of path.slice(1).split('/')) {
    if (segment === '') return 'must not contain empty segments ("//")';
    if (segment === '.' || segment === '..') return 'must not contain "." or ".." segments';
    if (!SEGMENT.test(segment)) {
      return 'segments may contain only letters, digits and "-", "_", ".", "~" (no "%", spaces or control characters)';
    }
  }
  if (isReservedPrefix(path)) return `"${RESERVED_PREFIX}" is reserved for berth's own endpoints: choose a prefix such as /shop`;
  return undefined;
}

/**
 * Why `path`, a valid prefix, may still be given to no app or instance: `/` would lie above
 * every other app's prefix and berth's own `/_berth` (which pathPrefixProblem already refuses).
 */
export function reservedPathProblem(path: string): string | undefined {
  if (path === '/') return 'The path "/" is reserved: it would take every path, berth\'s own /_berth included. Choose a prefix such as /shop.';
  return undefined;
}

/** Whether `path` is berth's own prefix or under it. */
export function isReservedPrefix(path: string): boolean {
  return path === RESERVED_PREFIX || path.startsWith(`${RESERVED_PREFIX}/`);
}

/** A zod issue's params naming the error code the API answers with (see registry/api/validate.ts). */
export interface CodedIssueParams {
  berthCode: 'reserved_path';
}

export const pathPrefixSchema = z.string().superRefine((path, ctx) => {
  const problem = pathPrefixProblem(path);
  if (problem === undefined) return;
  // berth's own prefix is refused as "/" is, with reserved_path rather than invalid_request.
  const params: CodedIssueParams | undefined = isReservedPrefix(path) ? { berthCode: 'reserved_path' } : undefined;
  ctx.addIssue({ code: 'custom', message: problem, ...(params ? { params } : {}) });
});

export const portNumberSchema = z.number().int().min(1).max(65535);

export const SHA256_PATTERN = /^[0-9a-f]{64}$/;
export const digestSchema = z.string().regex(SHA256_PATTERN, 'must be a sha256 digest: 64 lowercase hex characters');

/** Machine names default to the host name, so they allow dots and capitals. */
export const MACHINE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/;

export const machineNameSchema = z
  .string()
  .regex(MACHINE_NAME_PATTERN, 'must be 1-63 letters, digits, "." or "-", starting with a letter or digit');

/**
 * The name inside the Redis key prefix's hash tag (BERTH_KEY_PREFIX, `{berth}:`): no braces,
 * so the hash tag stays whole, and no `*`, which marks where a name goes in a key format.
 */
export const KEY_PREFIX_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export const keyPrefixSchema = z.string().regex(KEY_PREFIX_PATTERN, 'must be 1-64 letters, digits, "_", "." or "-"');

/** A host name, IPv4 or IPv6 address as given in a claim. */
export const hostSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:\-[\]]+$/, 'must be a host name or an IP address');

export const instanceIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be 1-64 characters of a-z, 0-9 and "-"');

/** Names of attributes (requirements, labels). */
export const ATTRIBUTE_KEY_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
export const MAX_ATTRIBUTES = 32;

const ATTRIBUTE_KEY_MESSAGE = 'attribute names are letters, digits, "_", "." or "-", starting with a letter (at most 64)';

/** Requirements and labels: a small flat object of strings, numbers and booleans. */
export const attributesSchema = z
  .unknown()
  // A record silently drops an own "__proto__" key (as JSON.parse makes one) instead of checking it.
  .refine((a) => typeof a !== 'object' || a === null || !Object.hasOwn(a, '__proto__'), { message: ATTRIBUTE_KEY_MESSAGE, abort: true })
  .pipe(z.record(z.string().regex(ATTRIBUTE_KEY_PATTERN, ATTRIBUTE_KEY_MESSAGE), z.union([z.string().max(256), z.number().finite(), z.boolean()])))
  .refine((a) => Object.keys(a).length <= MAX_ATTRIBUTES, `at most ${MAX_ATTRIBUTES} attributes`);
