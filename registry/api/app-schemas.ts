import { z } from 'zod';
import { MAX_PROCESS_TYPES, PROCESS_TYPE_PATTERN, RELEASE_PROCESS } from '../../common/procfile.js';
import { attributesSchema, digestSchema, instanceIdSchema, nameSchema, pathPrefixSchema } from '../../common/names.js';

export const ENV_KEY = /^[A-Z_][A-Z0-9_]{0,127}$/;
export const MAX_ENV_KEYS = 200;
export const MAX_ENV_VALUE = 32 * 1024;
export const MAX_ENV_BYTES = 64 * 1024;

/** Set by the hoster for every instance; an app may not override them. */
function reservedEnvKey(key: string): boolean {
  return key === 'PORT' || key === 'HOST' || key.startsWith('BERTH_');
}

const ENV_KEY_MESSAGE = 'variable names are A-Z, 0-9 and "_", not starting with a digit (at most 128)';

export const envKeySchema = z
  .string()
  .regex(ENV_KEY, ENV_KEY_MESSAGE)
  .refine((k) => !reservedEnvKey(k), 'PORT, HOST and BERTH_* are set by berth for every instance');

export const envSchema = z
  .unknown()
  // A record silently drops an own "__proto__" key (as JSON.parse makes one) instead of checking it.
  .refine((e) => typeof e !== 'object' || e === null || !Object.hasOwn(e, '__proto__'), { message: ENV_KEY_MESSAGE, abort: true })
  .pipe(
    z.record(
      envKeySchema,
      // No process can be given a variable holding NUL: refused here rather than at every start.
      z.string().max(MAX_ENV_VALUE, `values are at most ${MAX_ENV_VALUE} characters`).regex(/^[^\0]*$/, 'values must not contain a NUL character'),
    ),
  )
  .refine((env) => Object.keys(env).length <= MAX_ENV_KEYS, `at most ${MAX_ENV_KEYS} variables`)
  .refine((env) => Buffer.byteLength(JSON.stringify(env)) <= MAX_ENV_BYTES, `at most ${MAX_ENV_BYTES} bytes of variables in all`);

export const commandSchema = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^[^\x00-\x1f\x7f]+$/, 'must be one line without control characters');

export const healthCheckSchema = z.strictObject({
  path: z
    .string()
    .max(512)
    .regex(/^\/[\x21-\x7e]*$/, 'must start with "/" and contain no spaces or control characters')
    .optional(),
  status: z.number().int().min(100).max(599).optional(),
  timeoutMs: z.number().int().min(100).max(60_000).optional(),
  attempts: z.number().int().min(1).max(600).optional(),
  intervalMs: z.number().int().min(200).max(300_000).optional(),
  failures: z.number().int().min(1).max(100).optional(),
});

/** Attributes the hoster enforces as limits: whole numbers in a range it can apply. */
const LIMITS: Record<string, [min: number, max: number, what: string]> = {
  maxMemoryMb: [16, 1_048_576, 'a memory limit in MiB, 16 or more (berth publish --memory 512M)'],
  cpuWeight: [1, 10_000, 'a CPU weight from 1 to 10000 (100 is the default)'],
};

/** An app's attributes: any requirement, and its limits checked. */
const appAttributesSchema = attributesSchema.superRefine((attributes, ctx) => {
  for (const [key, [min, max, what]] of Object.entries(LIMITS)) {
    if (!(key in attributes)) continue;
    const v = attributes[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) ctx.addIssue({ code: 'custom', path: [key], message: `must be ${what}` });
  }
});

const processName = z.string().regex(PROCESS_TYPE_PATTERN, 'process type names are lowercase letters, digits and dashes, starting with a letter (at most 30)');

/** Process types and their commands, `{"worker":"node worker.js"}`. */
const processesSchema = z
  .record(processName, commandSchema)
  .refine((p) => Object.keys(p).length <= MAX_PROCESS_TYPES, `at most ${MAX_PROCESS_TYPES} process types`);

/** The release command's time limit: a second to a day. */
const releaseTimeoutSchema = z.number().int().min(1000).max(86_400_000);

export function appSchemas(maxInstances: number) {
  const instances = z.number().int().min(0).max(maxInstances, `at most ${maxInstances} instances (BERTH_MAX_INSTANCES)`);
  const formation = z
    .record(processName, instances)
    .refine((f) => Object.keys(f).length > 0, 'name at least one process type, e.g. {"web":2,"worker":1}')
    .refine((f) => !(RELEASE_PROCESS in f), 'the release command runs once per release: it has no count');
  return {
    appParams: z.strictObject({ name: nameSchema }),
    publish: z.strictObject({
      name: nameSchema,
      path: pathPrefixSchema,
      instances,
      bundle: digestSchema,
      env: envSchema.optional(),
      attributes: appAttributesSchema.optional(),
      command: commandSchema.optional(),
      healthCheck: healthCheckSchema.optional(),
      stripPrefix: z.boolean().optional(),
      processes: processesSchema.optional(),
      releaseCommand: commandSchema.optional(),
      releaseTimeoutMs: releaseTimeoutSchema.optional(),
    }),
    update: z.strictObject({
      bundle: digestSchema.optional(),
      env: envSchema.optional(),
      attributes: appAttributesSchema.optional(),
      command: commandSchema.nullable().optional(),
      healthCheck: healthCheckSchema.optional(),
      instances: instances.optional(),
      stripPrefix: z.boolean().optional(),
      processes: processesSchema.optional(),
      releaseCommand: commandSchema.nullable().optional(),
      releaseTimeoutMs: releaseTimeoutSchema.optional(),
    }),
    scale: z.strictObject({ instances: instances.optional(), stripPrefix: z.boolean().optional(), formation: formation.optional() }),
    rollback: z.strictObject({ version: z.number().int().min(1).optional() }),
    restart: z.strictObject({}),
    instanceParams: z.strictObject({ name: nameSchema, id: instanceIdSchema }),
    autoscale: z
      .strictObject({
        // At least one instance: with none, no load could ever show that the app needs one.
        min: z.number().int().min(1).max(maxInstances, `at most ${maxInstances} instances (BERTH_MAX_INSTANCES)`),
        max: z.number().int().min(1).max(maxInstances, `at most ${maxInstances} instances (BERTH_MAX_INSTANCES)`),
        targetCpu: z.number().min(0.01).max(64).optional(),
        targetInFlight: z.number().min(0.1).max(100_000).optional(),
        cooldownUpSeconds: z.number().int().min(0).max(86_400).optional(),
        cooldownDownSeconds: z.number().int().min(0).max(86_400).optional(),
        // The process type it scales; a type of the current release is checked by the service.
        type: processName.refine((t) => t !== RELEASE_PROCESS, 'the release command runs once per release: it cannot scale').optional(),
      })
      .refine((p) => p.min <= p.max, { message: 'min must not be over max', path: ['min'] }),
    autoscaleQuery: z.strictObject({ type: processName.optional() }),
    scalerLogQuery: z.strictObject({
      app: nameSchema.optional(),
      limit: z
        .string()
        .regex(/^[0-9]{1,4}$/, 'must be a number of decisions, 1-1000')
        .transform(Number)
        .pipe(z.number().int().min(1).max(1000))
        .optional(),
    }),
    config: z.strictObject({
      set: envSchema.optional(),
      unset: z.array(envKeySchema).max(MAX_ENV_KEYS).optional(),
    }),
    logsQuery: z.strictObject({
      lines: z
        .string()
        .regex(/^[0-9]{1,5}$/, 'must be a number of lines, 1-10000')
        .transform(Number)
        .pipe(z.number().int().min(1).max(10_000))
        .optional(),
      follow: z.enum(['0', '1', 'true', 'false']).optional(),
    }),
  };
}
