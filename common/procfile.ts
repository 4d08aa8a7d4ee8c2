import { BerthError } from './errors.js';

/** A process type's name: the Procfile's left side, `web`, `worker`, `release`, `queue-2`. */
export const PROCESS_TYPE_PATTERN = /^[a-z][a-z0-9-]{0,29}$/;
/** The type routed on the app's path, health-checked, and scaled by `instances`. */
export const WEB_PROCESS = 'web';
/** The release command's type: run once per release, before any other instance of it. */
export const RELEASE_PROCESS = 'release';
/** What a one-off run (berth run) is installed as: its own command, no port, no route. */
export const RUN_PROCESS = 'run';
/** More types than this is a mistake, not an app. */
export const MAX_PROCESS_TYPES = 20;
const MAX_COMMAND_BYTES = 4096;

/** What a Procfile says: every `name: command` line, by name. */
export type Procfile = Record<string, string>;

/**
 * Parses a Procfile as Heroku does: one `name: command` per line; blank lines and `#`
 * comments are skipped. A line that is not that shape, a repeated name, or an empty command
 * throws `invalid_procfile` naming the line, so a typo is refused at publish rather than a
 * process silently never running.
 */
export function parseProcfile(text: string): Procfile {
  const types: Procfile = {};
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!.trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const at = `Procfile line ${n + 1} ("${raw.slice(0, 60)}")`;
    const colon = raw.indexOf(':');
    if (colon < 0) throw new BerthError('invalid_procfile', `${at} has no "name:": write it as "worker: node worker.js".`);
    const name = raw.slice(0, colon).trim();
    const command = raw.slice(colon + 1).trim();
    checkProcess(name, command, at);
    if (name in types) throw new BerthError('invalid_procfile', `${at} names "${name}" a second time: keep one line per process type.`);
    types[name] = command;
  }
  if (Object.keys(types).length > MAX_PROCESS_TYPES) throw new BerthError('invalid_procfile', `The Procfile has more than ${MAX_PROCESS_TYPES} process types: keep fewer.`);
  return types;
}

/** Checks one process type given as `name` and `command` (a Procfile line, or `--process name=command`). */
export function checkProcess(name: string, command: string, where: string): void {
  if (name === '') throw new BerthError('invalid_procfile', `${where} has no process name before the ":": write it as "worker: node worker.js".`);
  if (!PROCESS_TYPE_PATTERN.test(name)) {
    throw new BerthError('invalid_procfile', `${where}: "${name}" is not a process type name (lowercase letters, digits and dashes, starting with a letter, at most 30).`);
  }
  if (command === '') throw new BerthError('invalid_procfile', `${where} has no command after "${name}:": write it as "${name}: node ${name}.js".`);
  if (Buffer.byteLength(command) > MAX_COMMAND_BYTES) throw new BerthError('invalid_procfile', `${where}: the command of "${name}" is over ${MAX_COMMAND_BYTES} bytes.`);
}
