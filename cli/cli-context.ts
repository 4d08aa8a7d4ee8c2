import type { Readable } from 'node:stream';
import type { Output } from './output.js';

/**
 * What a user-facing command gets from the entry point: the environment (credentials,
 * NO_COLOR), where to print, and where confirmations come from. Commands read nothing else
 * from the process, and throw instead of exiting.
 */
export interface CliContext {
  env: NodeJS.ProcessEnv;
  output: Output;
  /** For confirmations; a prompt is shown only when it is a terminal. */
  stdin: Readable & { isTTY?: boolean };
  /** The process's own streams, for a command that relays bytes (berth run: a run's output, an interactive terminal in raw mode). */
  terminal: { stdin: NodeJS.ReadStream; stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream };
}

/** The `--json` flag every command has, with one wording. */
export const JSON_FLAG = ['--json', 'print the result as JSON on stdout (nothing else goes to stdout)'] as const;
