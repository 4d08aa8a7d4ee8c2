import { z } from 'zod';
import {
  attributesSchema,
  digestSchema,
  hostSchema,
  instanceIdSchema,
  machineNameSchema,
  nameSchema,
  pathPrefixSchema,
  portNumberSchema,
} from '../../common/names.js';

/** Bodies, parameters and queries of the registry's REST API. Unknown fields are refused. */
export const serviceParams = z.strictObject({ service: nameSchema });
export const instanceParams = z.strictObject({ service: nameSchema, id: instanceIdSchema });

export const registerBody = z.strictObject({
  path: pathPrefixSchema,
  attributes: attributesSchema.optional(),
  files: digestSchema.optional(),
});

export const MIN_LEASE_MS = 1000;
export const MAX_LEASE_MS = 10 * 60_000;
const leaseMsSchema = z.number().int().min(MIN_LEASE_MS).max(MAX_LEASE_MS);
const epochSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

export const claimBody = z.strictObject({
  machine: machineNameSchema,
  host: hostSchema.optional(),
  port: portNumberSchema,
  attributes: attributesSchema.optional(),
  path: pathPrefixSchema.optional(),
  leaseMs: leaseMsSchema.optional(),
  requestId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{8,64}$/, 'must be 8-64 characters of letters, digits, "_" or "-"')
    .optional(),
});

export const runningBody = z.strictObject({
  machine: machineNameSchema,
  epoch: epochSchema,
  pid: z.number().int().min(1).max(2 ** 31),
  /** Restarts in place under this claim, as the holder counts them; absent: left as it is. */
  restarts: z.number().int().min(0).max(2 ** 31).optional(),
});

export const renewBody = z.strictObject({
  machine: machineNameSchema,
  epoch: epochSchema,
  leaseMs: leaseMsSchema.optional(),
});

export const stoppedBody = z.strictObject({
  machine: machineNameSchema,
  epoch: epochSchema,
});

export const releaseBody = z.strictObject({
  machine: machineNameSchema,
  epoch: epochSchema,
  reason: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a short snake_case word such as crash_loop'),
  // The app's own words for the failure; NUL would end the Redis value early in some clients.
  detail: z.string().max(4000).regex(/^[^\0]*$/, 'must not contain NUL').optional(),
});

export const unregisterMatchingQuery = z.strictObject({
  path: pathPrefixSchema,
  host: hostSchema.optional(),
  port: z
    .string()
    .regex(/^[0-9]{1,5}$/, 'must be a port number')
    .transform(Number)
    .pipe(portNumberSchema)
    .optional(),
});

export const eventsQuery = z.strictObject({
  from: z
    .string()
    .regex(/^[0-9]{1,20}-[0-9]{1,20}$/, 'must be an event id such as 1700000000000-0')
    .optional(),
});

export const emptyQuery = z.strictObject({});
