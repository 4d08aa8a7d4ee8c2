import { checkProcess, RELEASE_PROCESS, WEB_PROCESS, MAX_PROCESS_TYPES, type Procfile } from '../common/procfile.js';
import { BerthError } from '../common/errors.js';
import type { Release } from './store/index.js';

/** The release command's time limit when the release names none. */
export const DEFAULT_RELEASE_TIMEOUT_MS = 10 * 60_000;

/** What a release records of its processes. */
export interface ReleaseProcesses {
  /** Types other than web and release, with their commands. */
  processes: Record<string, string>;
  releaseCommand: string | null;
  releaseTimeoutMs?: number;
}

/**
 * A release's process types: the Procfile's lines (new code), else the base release's (same
 * code), with the ones given by the request (`--process name=command`, `--release-command`)
 * winning over both. `web:` is left to the hoster's start command rules, as before (a given
 * `processes.web` is the release's command); `release:` is the release command. Throws invalid_procfile for a bad given type.
 */
export function releaseProcesses(input: {
  procfile: Procfile | undefined;
  /** The Procfile of the code a release keeps, when a given null asks for its release: line. */
  keptProcfile?: Procfile;
  base?: Release;
  given: { processes?: Record<string, string>; releaseCommand?: string | null; releaseTimeoutMs?: number };
}): ReleaseProcesses {
  const { procfile, keptProcfile, base, given } = input;
  for (const [name, command] of Object.entries(given.processes ?? {})) checkProcess(name, command.trim(), `--process ${name}=…`);
  const fromCode: Record<string, string> = procfile !== undefined ? { ...procfile } : { ...(base?.processes ?? {}) };
  let releaseCommand: string | null = procfile !== undefined ? (procfile[RELEASE_PROCESS] ?? null) : (base?.releaseCommand ?? null);
  const merged: Record<string, string> = { ...fromCode, ...given.processes };
  if (merged[RELEASE_PROCESS] !== undefined && given.processes?.[RELEASE_PROCESS] !== undefined) releaseCommand = merged[RELEASE_PROCESS]!;
  delete merged[WEB_PROCESS];
  delete merged[RELEASE_PROCESS];
  if (given.releaseCommand !== undefined) {
    releaseCommand = given.releaseCommand === null ? ((procfile ?? keptProcfile)?.[RELEASE_PROCESS] ?? null) : given.releaseCommand.trim() || null;
  }
  if (Object.keys(merged).length > MAX_PROCESS_TYPES) throw new BerthError('invalid_procfile', `An app may have at most ${MAX_PROCESS_TYPES} process types.`);
  const timeout = given.releaseTimeoutMs ?? base?.releaseTimeoutMs;
  return {
    processes: Object.fromEntries(Object.entries(merged).map(([k, v]) => [k, v.trim()])),
    releaseCommand,
    ...(timeout === undefined ? {} : { releaseTimeoutMs: timeout }),
  };
}
