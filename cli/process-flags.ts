import { InvalidArgumentError } from 'commander';
import { PROCESS_TYPE_PATTERN } from '../common/procfile.js';

/** Collects repeated `--process name=command` flags (`--process worker="node worker.js"`). */
export function collectProcess(text: string, previous: Record<string, string> | undefined): Record<string, string> {
  const eq = text.indexOf('=');
  const name = eq < 0 ? '' : text.slice(0, eq).trim();
  const command = eq < 0 ? '' : text.slice(eq + 1).trim();
  if (!PROCESS_TYPE_PATTERN.test(name) || command === '') {
    throw new InvalidArgumentError('Expected NAME=COMMAND, e.g. --process worker="node worker.js" (a name of lowercase letters, digits and dashes).');
  }
  return { ...previous, [name]: command };
}

const COUNT_WORD = /^(?:([a-z][a-z0-9-]{0,29})=)?(\d{1,6})$/;

/** Checks one word of `berth scale`'s counts as commander reads it, so a bad one is a usage error. */
export function collectCount(text: string, previous: string[] | undefined): string[] {
  if (!COUNT_WORD.test(text)) throw new InvalidArgumentError('Expected a whole number of instances (0 or more) for web, or TYPE=N per process type, e.g. web=2 worker=1.');
  return [...(previous ?? []), text];
}

/**
 * `berth scale`'s counts: `3` (web, as before) or `web=3 worker=2`. Throws a message naming
 * the word that is neither, so nothing is sent.
 */
export function scaleCounts(words: readonly string[], app: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const word of words) {
    const m = COUNT_WORD.exec(word);
    if (m === null) throw new Error(`"${word}" is not a count: give a number (web) or TYPE=N, e.g. berth scale ${app} 3 or berth scale ${app} web=2 worker=1.`);
    const type = m[1] ?? 'web';
    if (type in counts) throw new Error(`${type} is given twice: give each process type once.`);
    counts[type] = Number(m[2]);
  }
  return counts;
}
