import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { BerthError } from './errors.js';

/**
 * One configurable option: where it comes from and what it means. Values are resolved once,
 * in the order flag > environment variable > default, and validated by `schema`; a daemon
 * never reads `process.env` after start-up.
 */
export interface OptionSpec<T> {
  /** Environment variable that sets it, e.g. `BERTH_LEASE_MS`. */
  env?: string;
  /** Value when neither a flag nor the environment gives one. */
  default: T;
  /** Parses the raw value (a string from the environment, or a typed flag value). */
  schema: z.ZodType<T, unknown>;
  /** One line for `--help` and docs/configuration.md. */
  describe: string;
  /**
   * A secret (a password, a token): it may come from a file named by `<env>_FILE` instead, so
   * that it stays out of the environment of everything the daemon starts, and it is never
   * echoed in an error.
   */
  secret?: boolean;
}

export type OptionTable = Record<string, OptionSpec<any>>;
export type ResolvedOptions<S extends OptionTable> = { [K in keyof S]: S[K]['default'] };

/** Builds an option spec with its type inferred from the default. */
export function option<T>(spec: OptionSpec<T>): OptionSpec<T> {
  return spec;
}

/**
 * Resolves every option of `table`; throws one `invalid_config` error naming every bad value,
 * so a user fixes them all at once.
 */
export function resolveOptions<S extends OptionTable>(
  table: S,
  flags: Partial<Record<keyof S, unknown>>,
  env: Record<string, string | undefined>,
): ResolvedOptions<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(table)) {
    const flag = flags[key as keyof S];
    let fromEnv = spec.env !== undefined ? env[spec.env] : undefined;
    let source = flag !== undefined ? `--${kebab(key)}` : fromEnv !== undefined && fromEnv !== '' ? spec.env : undefined;
    const file = spec.secret && spec.env !== undefined ? env[`${spec.env}_FILE`] : undefined;
    if (flag === undefined && (fromEnv === undefined || fromEnv === '') && file !== undefined && file !== '') {
      const read = readSecretFile(file);
      if ('problem' in read) {
        problems.push(`${spec.env}_FILE: ${read.problem}`);
        continue;
      }
      fromEnv = read.value;
      source = `${spec.env}_FILE`;
    }
    const raw = flag !== undefined ? flag : fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined;
    if (raw === undefined) {
      out[key] = spec.default;
      continue;
    }
    const parsed = spec.schema.safeParse(raw);
    if (parsed.success) out[key] = parsed.data;
    else {
      const got = spec.secret ? `a secret of ${String(raw).length} characters, not shown` : JSON.stringify(raw);
      problems.push(`${source}: ${parsed.error.issues.map((i) => i.message).join('; ')} (got ${got})`);
    }
  }
  if (problems.length > 0) {
    throw new BerthError('invalid_config', `Invalid configuration, fix these and start again: ${problems.join('; ')}`);
  }
  return out as ResolvedOptions<S>;
}

/** A secret's file: its content without the final newline; refused when others may read it. */
function readSecretFile(path: string): { value: string } | { problem: string } {
  try {
    if ((statSync(path).mode & 0o007) !== 0) return { problem: `${path} is readable by every user: chmod 600 ${path} (or 640 with a group of its own)` };
    return { value: readFileSync(path, 'utf8').replace(/\r?\n$/, '') };
  } catch (err) {
    return { problem: `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)}): write the secret there, or set the variable itself` };
  }
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

// Reusable schemas for raw option values (strings from the environment, or typed flags).
export const portSchema = z.coerce.number().int().min(0).max(65535);
export const positiveMsSchema = z.coerce.number().int().min(1).max(24 * 3600_000);
/** A duration where 0 turns the limit off. */
export const nonNegativeMsSchema = z.coerce.number().int().min(0).max(24 * 3600_000);
export const positiveIntSchema = z.coerce.number().int().min(1);
export const listSchema = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v),
  z.array(z.string().min(1)),
);
export const logLevelSchema = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** A port range given as `low-high` (BERTH_PORT_RANGE, BERTH_ADDON_PORT_RANGE). */
export const portRangeSchema = z
  .string()
  .regex(/^[0-9]{1,5}-[0-9]{1,5}$/, 'must look like 20000-29999')
  .transform((s) => s.split('-').map(Number) as [number, number])
  .refine(([a, b]) => a >= 1024 && b <= 65535 && a <= b, 'must be within 1024-65535, low-high');
